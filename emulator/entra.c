/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entra ID v2 on the main HTTPS port (client credentials grant, RFC 6749
 * 4.4 + RFC 7523 client assertions as Entra implements them):
 *   GET  /{tenant}/v2.0/.well-known/openid-configuration
 *   GET  /{tenant}/discovery/v2.0/keys
 *   GET  /common/discovery/instance   (MSAL instance discovery)
 *   POST /{tenant}/oauth2/v2.0/token  (client_secret | certificate
 *        assertion RS256+x5t / PS256+x5t#S256 | federated token)
 * plus the control plane POST /_emulator/cli (bearer admin secret).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "emu.h"
#include "http.h"

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

static void entra_error(struct emu_resp *rs, int status, const char *error,
                        int code, const char *desc)
{
    cJSON *j = cJSON_CreateObject(), *codes;
    char full[1200], trace[EMU_GUID_LEN + 1], corr[EMU_GUID_LEN + 1];
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;

    emu_guid(trace);
    emu_guid(corr);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
    snprintf(full, sizeof(full),
             "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\n"
             "Timestamp: %s",
             code, desc, trace, corr, ts);
    cJSON_AddStringToObject(j, "error", error);
    cJSON_AddStringToObject(j, "error_description", full);
    codes = cJSON_AddArrayToObject(j, "error_codes");
    cJSON_AddItemToArray(codes, cJSON_CreateNumber(code));
    cJSON_AddStringToObject(j, "timestamp", ts);
    cJSON_AddStringToObject(j, "trace_id", trace);
    cJSON_AddStringToObject(j, "correlation_id", corr);
    cJSON_AddStringToObject(j, "error_uri",
                            "https://login.microsoftonline.com/error");
    emu_resp_json(rs, status, j);
    cJSON_Delete(j);
}

static void host_base(struct emu_req *rq, char *out, size_t n)
{
    const char *host = emu_req_header(rq, "Host");

    if (host && strlen(host) < 200 && !strpbrk(host, "/\"\\ ")) {
        snprintf(out, n, "https://%s", host);
    } else {
        snprintf(out, n, "https://%s:%d", emu.host, emu.port);
    }
}

static void openid_config(struct emu_req *rq, struct emu_resp *rs)
{
    char base[300], buf[600];
    cJSON *j = cJSON_CreateObject(), *a;

    host_base(rq, base, sizeof(base));
#define URL(field, fmt)                                                        \
    do {                                                                       \
        snprintf(buf, sizeof(buf), fmt, base, emu.tenant_id);                  \
        cJSON_AddStringToObject(j, field, buf);                                \
    } while (0)
    URL("token_endpoint", "%s/%s/oauth2/v2.0/token");
    a = cJSON_AddArrayToObject(j, "token_endpoint_auth_methods_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("client_secret_post"));
    cJSON_AddItemToArray(a, cJSON_CreateString("private_key_jwt"));
    cJSON_AddItemToArray(a, cJSON_CreateString("client_secret_basic"));
    URL("jwks_uri", "%s/%s/discovery/v2.0/keys");
    a = cJSON_AddArrayToObject(j, "response_modes_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("query"));
    cJSON_AddItemToArray(a, cJSON_CreateString("fragment"));
    cJSON_AddItemToArray(a, cJSON_CreateString("form_post"));
    a = cJSON_AddArrayToObject(j, "subject_types_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("pairwise"));
    a = cJSON_AddArrayToObject(j, "id_token_signing_alg_values_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("RS256"));
    a = cJSON_AddArrayToObject(j, "response_types_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("code"));
    cJSON_AddItemToArray(a, cJSON_CreateString("id_token"));
    a = cJSON_AddArrayToObject(j, "scopes_supported");
    cJSON_AddItemToArray(a, cJSON_CreateString("openid"));
    cJSON_AddItemToArray(a, cJSON_CreateString("offline_access"));
    URL("issuer", "%s/%s/v2.0");
    cJSON_AddBoolToObject(j, "request_uri_parameter_supported", 0);
    URL("authorization_endpoint", "%s/%s/oauth2/v2.0/authorize");
    URL("device_authorization_endpoint", "%s/%s/oauth2/v2.0/devicecode");
    URL("end_session_endpoint", "%s/%s/oauth2/v2.0/logout");
    URL("userinfo_endpoint", "%s/%s/openid/userinfo");
#undef URL
    cJSON_AddNullToObject(j, "tenant_region_scope");
    cJSON_AddStringToObject(j, "cloud_instance_name", "microsoftonline.com");
    cJSON_AddStringToObject(j, "cloud_graph_host_name", "graph.windows.net");
    cJSON_AddStringToObject(j, "msgraph_host", "graph.microsoft.com");
    emu_resp_json(rs, 200, j);
    cJSON_Delete(j);
}

static void instance_discovery(struct emu_req *rq, struct emu_resp *rs)
{
    char base[300], buf[600];
    const char *host;
    cJSON *j = cJSON_CreateObject(), *md, *m, *al;

    host_base(rq, base, sizeof(base));
    host = base + strlen("https://");
    snprintf(buf, sizeof(buf), "%s/%s/v2.0/.well-known/openid-configuration",
             base, emu.tenant_id);
    cJSON_AddStringToObject(j, "tenant_discovery_endpoint", buf);
    cJSON_AddStringToObject(j, "api-version", "1.1");
    md = cJSON_AddArrayToObject(j, "metadata");
    m = cJSON_CreateObject();
    cJSON_AddItemToArray(md, m);
    cJSON_AddStringToObject(m, "preferred_network", host);
    cJSON_AddStringToObject(m, "preferred_cache", host);
    al = cJSON_AddArrayToObject(m, "aliases");
    cJSON_AddItemToArray(al, cJSON_CreateString(host));
    emu_resp_json(rs, 200, j);
    cJSON_Delete(j);
}

static void jwks(struct emu_resp *rs)
{
    cJSON *j = cJSON_CreateObject(), *keys = cJSON_AddArrayToObject(j, "keys");
    cJSON *k = cJSON_CreateObject();
    char *n = NULL, *e = NULL;

    emu_rsa_public_b64(emu.signing_key, &n, &e);
    cJSON_AddItemToArray(keys, k);
    cJSON_AddStringToObject(k, "kty", "RSA");
    cJSON_AddStringToObject(k, "use", "sig");
    cJSON_AddStringToObject(k, "kid", emu.signing_kid);
    cJSON_AddStringToObject(k, "x5t", emu.signing_kid);
    cJSON_AddStringToObject(k, "n", n ? n : "");
    cJSON_AddStringToObject(k, "e", e ? e : "");
    free(n);
    free(e);
    emu_resp_json(rs, 200, j);
    cJSON_Delete(j);
}

/* Checks a client assertion for P. Returns 0 or fills the error. */
static int check_assertion(struct emu_req *rq, struct emu_resp *rs,
                           const struct emu_principal *p, const char *jwt)
{
    cJSON *hdr = emu_jwt_peek_header(jwt), *claims = NULL;
    const char *x5t, *x5t256, *aud, *iss, *sub;
    char want[400], base[300];
    long long exp, now = emu_now();
    int rc = -1;

    if (!hdr) {
        entra_error(rs, 400, "invalid_client", 50027,
                    "JWT token is invalid or malformed.");
        goto out;
    }
    if (p->is_sp) {
        x5t = emu_json_str(hdr, "x5t");
        x5t256 = emu_json_str(hdr, "x5t#S256");
        if (!p->cert_pub
            || !((x5t && strcmp(x5t, p->x5t) == 0)
                 || (x5t256 && strcmp(x5t256, p->x5t256) == 0))) {
            entra_error(rs, 401, "invalid_client", 700027,
                        "The certificate with identifier used to sign the "
                        "client assertion is not registered on application.");
            goto out;
        }
        if (emu_jwt_verify(jwt, p->cert_pub, &claims) != 0) {
            entra_error(rs, 401, "invalid_client", 700027,
                        "Client assertion failed signature validation.");
            goto out;
        }
        aud = emu_json_str(claims, "aud");
        host_base(rq, base, sizeof(base));
        snprintf(want, sizeof(want), "%s/%s/oauth2/v2.0/token", base,
                 emu.tenant_id);
        if (!aud || !emu_strcaseeq(aud, want)) {
            char alt[400];

            snprintf(alt, sizeof(alt), "https://%s:%d/%s/oauth2/v2.0/token",
                     emu.host, emu.port, emu.tenant_id);
            if (!aud || !emu_strcaseeq(aud, alt)) {
                entra_error(rs, 401, "invalid_client", 700022,
                            "The audience claim of the client assertion does "
                            "not match the token endpoint.");
                goto out;
            }
        }
        iss = emu_json_str(claims, "iss");
        sub = emu_json_str(claims, "sub");
        if (!iss || !sub || !emu_strcaseeq(iss, p->client_id)
            || !emu_strcaseeq(sub, p->client_id)) {
            entra_error(rs, 401, "invalid_client", 700021,
                        "Client assertion application identifier doesn't "
                        "match 'client_id' parameter.");
            goto out;
        }
    } else {
        char subj[300];

        if (emu_jwt_verify(jwt, emu.signing_key, &claims) != 0) {
            entra_error(rs, 401, "invalid_client", 700211,
                        "No matching federated identity record found for "
                        "presented assertion issuer.");
            goto out;
        }
        snprintf(subj, sizeof(subj), "system:serviceaccount:akv-emulator:%s",
                 p->name);
        aud = emu_json_str(claims, "aud");
        sub = emu_json_str(claims, "sub");
        if (!aud || strcmp(aud, "api://AzureADTokenExchange") != 0 || !sub
            || strcmp(sub, subj) != 0) {
            entra_error(rs, 400, "invalid_request", 70021,
                        "No matching federated identity record found for "
                        "presented assertion.");
            goto out;
        }
    }
    exp = emu_json_num(claims, "exp", -1);
    if (exp <= now) {
        entra_error(rs, 401, "invalid_client", 700024,
                    "Client assertion is not within its valid time range.");
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    return rc;
}

static void token(struct emu_req *rq, struct emu_resp *rs, const char *tenant)
{
    char *grant = emu_form_get(rq->body, "grant_type");
    char *cid = emu_form_get(rq->body, "client_id");
    char *scope = emu_form_get(rq->body, "scope");
    char *secret = emu_form_get(rq->body, "client_secret");
    char *assertion = emu_form_get(rq->body, "client_assertion");
    char *atype = emu_form_get(rq->body, "client_assertion_type");
    char msg[600], aud[300], hash[65];
    struct emu_principal *p;
    char *tok = NULL;
    long long exp = 0;
    cJSON *j;

    pthread_rwlock_rdlock(&emu.lock);
    emu_assertion_seen(assertion);
    if (!emu_strcaseeq(tenant, emu.tenant_id)) {
        snprintf(msg, sizeof(msg),
                 "Tenant '%.60s' not found. Check to make sure you have the "
                 "correct tenant ID and are signing into the correct cloud.",
                 tenant);
        entra_error(rs, 400, "invalid_request", 90002, msg);
        goto out;
    }
    if (!grant || strcmp(grant, "client_credentials") != 0) {
        entra_error(rs, 400, "unsupported_grant_type", 70003,
                    "The app requested an unsupported grant type.");
        goto out;
    }
    if (!cid || !*cid) {
        entra_error(rs, 400, "invalid_request", 900144,
                    "The request body must contain the following parameter: "
                    "'client_id'.");
        goto out;
    }
    if (!scope || strlen(scope) < 10 || strlen(scope) > 250) {
        entra_error(rs, 400, "invalid_request", 900144,
                    "The request body must contain the following parameter: "
                    "'scope'.");
        goto out;
    }
    {
        /* First scope of a space-separated list must be RESOURCE/.default. */
        char *sp = strchr(scope, ' ');
        size_t l;

        if (sp) {
            *sp = 0;
        }
        l = strlen(scope);
        if (l <= 9 || strcmp(scope + l - 9, "/.default") != 0) {
            snprintf(msg, sizeof(msg),
                     "The provided value for the input parameter 'scope' is "
                     "not valid. The scope %.200s is not valid.",
                     scope);
            entra_error(rs, 400, "invalid_scope", 70011, msg);
            goto out;
        }
        snprintf(aud, sizeof(aud), "%.*s", (int)(l - 9), scope);
    }
    p = emu_find_principal_client(cid);
    if (!p) {
        snprintf(msg, sizeof(msg),
                 "Application with identifier '%.60s' was not found in the "
                 "directory '%s'. This can happen if the application has not "
                 "been installed by the administrator of the tenant.",
                 cid, emu.tenant_id);
        entra_error(rs, 400, "unauthorized_client", 700016, msg);
        goto out;
    }
    if (secret) {
        emu_sha256_hex(secret, hash);
        if (!p->secret_sha256[0]
            || CRYPTO_memcmp(hash, p->secret_sha256, 64) != 0) {
            snprintf(msg, sizeof(msg),
                     "Invalid client secret provided. Ensure the secret being "
                     "sent in the request is the client secret value, not the "
                     "client secret ID, for a secret added to app '%s'.",
                     p->client_id);
            entra_error(rs, 401, "invalid_client", 7000215, msg);
            goto out;
        }
    } else if (assertion) {
        if (!atype || strcmp(atype, ASSERTION_TYPE) != 0) {
            entra_error(rs, 400, "invalid_request", 50027,
                        "Invalid client_assertion_type.");
            goto out;
        }
        if (check_assertion(rq, rs, p, assertion) != 0) {
            goto out;
        }
    } else {
        entra_error(rs, 401, "invalid_client", 7000218,
                    "The request body must contain the following parameter: "
                    "'client_assertion' or 'client_secret'.");
        goto out;
    }
    tok = emu_token_issue(p, aud, &exp);
    if (!tok) {
        entra_error(rs, 500, "server_error", 50000, "Token signing failed.");
        goto out;
    }
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "token_type", "Bearer");
    cJSON_AddNumberToObject(j, "expires_in", (double)emu.token_lifetime);
    cJSON_AddNumberToObject(j, "ext_expires_in", (double)emu.token_lifetime);
    cJSON_AddStringToObject(j, "access_token", tok);
    emu_resp_json(rs, 200, j);
    cJSON_Delete(j);
out:
    pthread_rwlock_unlock(&emu.lock);
    free(tok);
    free(grant);
    free(cid);
    free(scope);
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
    }
    free(secret);
    free(assertion);
    free(atype);
}

static void admin(struct emu_req *rq, struct emu_resp *rs)
{
    const char *authz = emu_req_header(rq, "Authorization");
    cJSON *body = NULL, *argv;
    char *out = NULL;
    int status;

    if (!authz || strncmp(authz, "Bearer ", 7) != 0
        || strlen(authz + 7) != strlen(emu.admin_secret)
        || CRYPTO_memcmp(authz + 7, emu.admin_secret, strlen(emu.admin_secret))
               != 0) {
        emu_resp_text(rs, 401, "application/json",
                      "{\"error\":\"bad admin secret\"}");
        return;
    }
    body = cJSON_ParseWithLength(rq->body, rq->len);
    argv = cJSON_GetObjectItem(body, "argv");
    if (!cJSON_IsArray(argv)) {
        emu_resp_text(rs, 400, "application/json",
                      "{\"error\":\"argv array required\"}");
        goto out;
    }
    status = emu_admin_run(argv, &out);
    emu_resp_text(rs, status, "application/json; charset=utf-8",
                  out ? out : "");
out:
    free(out);
    cJSON_Delete(body);
}

static void apply_status_fault(struct emu_resp *rs,
                               const struct emu_fault_hit *h)
{
    rs->retry_after = h->retry_after;
    entra_error(rs, h->status,
                h->status == 429 ? "temporarily_unavailable" : "server_error",
                h->status == 429 ? 50196 : 50000, "Injected fault.");
}

static void main_handler(struct emu_req *rq, struct emu_resp *rs)
{
    char tenant[80];
    const char *u = rq->url, *slash;
    struct emu_fault_hit fh;

    if (strncmp(u, "/_emulator/", 11) == 0) {
        if (strcmp(rq->method, "POST") == 0
            && strcmp(u, "/_emulator/cli") == 0) {
            admin(rq, rs);
        } else {
            emu_resp_text(rs, 200, "application/json", "{\"status\":\"ok\"}");
        }
        return;
    }
    if (strcmp(u, "/common/discovery/instance") == 0
        || strcmp(u, "/organizations/discovery/instance") == 0) {
        instance_discovery(rq, rs);
        return;
    }
    slash = strchr(u + 1, '/');
    if (*u != '/' || !slash || (size_t)(slash - u - 1) >= sizeof(tenant)) {
        entra_error(rs, 404, "not_found", 90002, "Unknown endpoint.");
        return;
    }
    snprintf(tenant, sizeof(tenant), "%.*s", (int)(slash - u - 1), u + 1);
    if (strcmp(slash, "/v2.0/.well-known/openid-configuration") == 0) {
        openid_config(rq, rs);
        return;
    }
    if (strcmp(slash, "/discovery/v2.0/keys") == 0
        || strcmp(slash, "/discovery/keys") == 0) {
        jwks(rs);
        return;
    }
    if (strcmp(slash, "/oauth2/v2.0/token") == 0) {
        emu_stats_count(EMU_OPN_TOKEN);
        if (strcmp(rq->method, "POST") != 0) {
            entra_error(rs, 405, "invalid_request", 900561,
                        "The endpoint only accepts POST requests.");
            return;
        }
        if (emu_fault_match(EMU_OPN_TOKEN, u, &fh)) {
            rs->trickle_ms = fh.trickle_ms;
            if (fh.kind == EMU_FAULT_HANG) {
                rs->hang = 1;
                return;
            }
            if (fh.kind == EMU_FAULT_STATUS) {
                apply_status_fault(rs, &fh);
                return;
            }
            if (fh.kind == EMU_FAULT_DELAY) {
                rs->delay_ms = fh.delay_ms;
            }
        }
        token(rq, rs, tenant);
        if (fh.kind == EMU_FAULT_CLOSE) {
            rs->close_mid = 1;
        } else if (fh.kind == EMU_FAULT_MALFORMED && rs->status == 200) {
            rs->len /= 2;
            rs->body[rs->len] = 0;
        }
        return;
    }
    entra_error(rs, 404, "not_found", 90002, "Unknown endpoint.");
}

emu_handler_fn emu_entra_handler(void);
emu_handler_fn emu_entra_handler(void)
{
    return main_handler;
}
