/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-pkcs11-tool check (check.h). Each step names the cause in words and
 * the command that fixes it; a step whose prerequisite failed is SKIPped so
 * one broken link is counted once. Vault calls go through the module's own
 * client (keyvault/kv.h), so the check proves the path the module takes.
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "common/b64url.h"
#include "common/fsperm.h"
#include "common/secret.h"
#include "keyvault/auth.h"
#include "keyvault/http.h"
#include "keyvault/kv.h"
#include "keyvault/retry.h"

#define TXT_MAX 1024

struct run {
    bool json;
    cJSON *checks;
    int fails;
};

/* What one token's checks learn and later checks need. */
struct tok {
    const struct akv_token_config *tc;
    char vault[256];    /* vault (or HSM) name for az commands */
    bool hsm;           /* Managed HSM URL: RBAC role assignment */
    char who[256];      /* the identity in words */
    char oid[128];      /* object id from the token, else "" */
    char assignee[160]; /* "--object-id OID" or "--spn APPID" */
    bool reach_ok;
    bool cred_ok;
    char tenant[AKV_AUTH_TENANT_MAX]; /* from the vault's challenge */
};

static void emit(struct run *r, const char *token, const char *key,
                 const char *name, const char *state, const char *cause,
                 const char *fix)
{
    if (strcmp(state, "FAIL") == 0) {
        r->fails++;
    }
    if (r->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(r->checks, j);
        if (token != NULL) {
            cJSON_AddStringToObject(j, "token", token);
        }
        if (key != NULL) {
            cJSON_AddStringToObject(j, "key", key);
        }
        cJSON_AddStringToObject(j, "check", name);
        cJSON_AddStringToObject(j, "state", state);
        cJSON_AddStringToObject(j, "cause", cause);
        if (fix != NULL) {
            cJSON_AddStringToObject(j, "fix", fix);
        }
        return;
    }
    printf("%-4s %s%s%s%s%s: %s%s%s\n", state, token != NULL ? token : "",
           key != NULL ? "/" : "", key != NULL ? key : "",
           token != NULL ? " " : "", name, cause, fix != NULL ? "; fix: " : "",
           fix != NULL ? fix : "");
    fflush(stdout);
}

/* Vault name and kind from https://NAME.vault.azure.net or
 * https://NAME.managedhsm.azure.net; other hosts (private endpoints, the
 * emulator) give the first label, or "VAULT" for an address. */
static void vault_name(struct tok *t)
{
    const char *h = strstr(t->tc->vault_url, "://");
    size_t n = 0;

    h = h != NULL ? h + 3 : t->tc->vault_url;
    n = strcspn(h, ".:/");
    t->hsm = strstr(h, ".managedhsm.") != NULL;
    if (n == 0 || n >= sizeof(t->vault) || h[n] != '.'
        || strspn(h, "0123456789") == n) {
        snprintf(t->vault, sizeof(t->vault), "VAULT");
        return;
    }
    memcpy(t->vault, h, n);
    t->vault[n] = '\0';
}

/* The command that grants the module's three permissions on KEY. */
static void grant_fix(const struct tok *t, const char *key, char *buf,
                      size_t len)
{
    if (t->hsm) {
        snprintf(buf, len,
                 "az keyvault role assignment create --hsm-name %s --role "
                 "\"Managed HSM Crypto User\" --assignee-object-id %s "
                 "--scope /keys/%s",
                 t->vault, t->oid[0] != '\0' ? t->oid : "OID", key);
        return;
    }
    snprintf(buf, len,
             "az keyvault set-policy --name %s %s --key-permissions get "
             "wrapKey unwrapKey (RBAC vaults: az role assignment create "
             "--role \"Key Vault Crypto Service Encryption User\" "
             "--assignee-object-id %s --scope <vault id>/keys/%s)",
             t->vault, t->assignee, t->oid[0] != '\0' ? t->oid : "OID", key);
}

static int check_config(struct run *r, const char *path)
{
    char err[512];
    int fd = akv_fsperm_open(path, O_RDONLY, 0, err, sizeof(err));

    if (fd < 0) {
        /* the rules' message carries its own "; fix: COMMAND" */
        char *fix = strstr(err, "; fix: ");
        if (fix != NULL) {
            *fix = '\0';
            fix += strlen("; fix: ");
        }
        emit(r, NULL, NULL, "config", "FAIL", err,
             fix != NULL ? fix : "give --config FILE or set AKV_PKCS11_CONFIG");
        return -1;
    }
    close(fd);
    return 0;
}

static void check_reach(struct run *r, struct tok *t, struct akv_http *http)
{
    const struct akv_token_config *tc = t->tc;
    struct akv_http_resp resp;
    struct akv_http_req req;
    char url[1024], origin[512], cause[TXT_MAX], fix[TXT_MAX];
    const char *ca =
        tc->http.ca_file != NULL ? tc->http.ca_file : "the system store";
    CK_RV rv;

    memset(&resp, 0, sizeof(resp));
    memset(&req, 0, sizeof(req));
    akv_http_origin(tc->vault_url, origin, sizeof(origin));
    /* Unauthenticated: Key Vault answers 401 with its challenge, which
     * proves DNS, TCP, TLS and the CA without any credential. */
    snprintf(url, sizeof(url), "%s/keys/%s?api-version=%s", tc->vault_url,
             tc->n_keys > 0 ? tc->keys[0].name : "probe",
             tc->api_version != NULL ? tc->api_version : "7.4");
    req.method = "GET";
    req.url = url;
    req.log_path = "check: reachability";
    req.scheme = tc->http.allow_http_loopback ? AKV_HTTP_LOOPBACK_OK
                                              : AKV_HTTP_HTTPS_ONLY;
    rv = akv_http_perform(http, &req, tc->http.timeout_ms, &resp);
    if (rv == CKR_OK && resp.status > 0) {
        struct akv_challenge ch;
        if (akv_auth_parse_challenge(resp.www_authenticate, &ch) == 0) {
            memcpy(t->tenant, ch.tenant, sizeof(t->tenant));
        }
        snprintf(cause, sizeof(cause),
                 "%s answers over TLS (certificate trusted by %s, HTTP %ld)",
                 origin, ca, resp.status);
        emit(r, tc->label, NULL, "vault", "OK", cause, NULL);
        t->reach_ok = true;
        goto out;
    }
    switch (resp.curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(cause, sizeof(cause),
                 "DNS: the vault host of %s does not "
                 "resolve",
                 origin);
        snprintf(fix, sizeof(fix),
                 "check vault_url and the resolver (a "
                 "private endpoint needs its privatelink DNS zone)");
        break;
    case CURLE_COULDNT_CONNECT:
        snprintf(cause, sizeof(cause),
                 "nothing accepts connections at %s "
                 "(refused or no route)",
                 origin);
        snprintf(fix, sizeof(fix),
                 "check vault_url's host and port, the "
                 "firewall and HTTPS_PROXY");
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(cause, sizeof(cause), "%s does not answer within %ld ms",
                 origin, tc->http.timeout_ms);
        snprintf(fix, sizeof(fix),
                 "a firewall or network security group "
                 "drops the traffic; check the vault's network rules");
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(cause, sizeof(cause),
                 "TLS: the certificate of %s is not "
                 "trusted by %s (CA missing)",
                 origin, ca);
        snprintf(fix, sizeof(fix),
                 "set ca_file to the CA bundle that signed "
                 "the vault's certificate, or add that CA to the system store "
                 "(update-ca-certificates)");
        break;
    default:
        snprintf(cause, sizeof(cause), "%s cannot be reached: %s", origin,
                 akv_http_strerror(resp.curl_code));
        snprintf(fix, sizeof(fix), "check vault_url, ca_file and the network");
        break;
    }
    emit(r, tc->label, NULL, "vault", "FAIL", cause, fix);
out:
    akv_http_resp_clear(&resp);
}

/* The oid (and appid) claims of a bearer token, without checking it: the
 * tool only names the identity the endpoint issued the token for. */
static void token_claims(const struct akv_secret *hdr, struct tok *t)
{
    const char *p =
        hdr->data != NULL ? strstr((const char *)hdr->data, "Bearer ") : NULL;
    const char *d1 = NULL, *d2 = NULL;
    uint8_t buf[4096];
    long n;
    cJSON *j = NULL, *oid = NULL;

    if (p == NULL || (d1 = strchr(p, '.')) == NULL
        || (d2 = strchr(d1 + 1, '.')) == NULL) {
        return;
    }
    n = akv_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof(buf) - 1);
    if (n <= 0) {
        return;
    }
    j = cJSON_ParseWithLength((const char *)buf, (size_t)n);
    oid = cJSON_GetObjectItemCaseSensitive(j, "oid");
    if (cJSON_IsString(oid) && strlen(oid->valuestring) < sizeof(t->oid)) {
        snprintf(t->oid, sizeof(t->oid), "%s", oid->valuestring);
        snprintf(t->assignee, sizeof(t->assignee), "--object-id %s", t->oid);
    }
    cJSON_Delete(j);
    OPENSSL_cleanse(buf, sizeof(buf));
}

static const char *cred_fix(const struct akv_cred_config *c)
{
    switch (c->type) {
    case AKV_CRED_CLIENT_SECRET:
        return "the secret is wrong, expired or for another app: az ad app "
               "credential reset --id CLIENT_ID --append, and write the new "
               "secret to client_secret_file (mode 0600)";
    case AKV_CRED_CLIENT_CERTIFICATE:
        return "upload the certificate to the app: az ad app credential "
               "reset --id CLIENT_ID --cert @certificate.pem --append";
    case AKV_CRED_MANAGED_IDENTITY:
        return "assign the identity to this machine (az vm identity assign "
               "--identities ID) and check imds_endpoint";
    case AKV_CRED_WORKLOAD_IDENTITY:
        return "check the federated credential (az identity "
               "federated-credential list) and federated_token_file";
    case AKV_CRED_ENVIRONMENT:
        return "check AZURE_CLIENT_ID, AZURE_TENANT_ID and "
               "AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH";
    }
    return "check the credential section";
}

static void check_cred(struct run *r, struct tok *t, struct akv_http *http,
                       const char *type, const char *ident)
{
    const struct akv_token_config *tc = t->tc;
    struct akv_auth *auth = NULL;
    struct akv_secret hdr = AKV_SECRET_INIT;
    uint64_t gen = 0;
    char why[512] = "", cause[TXT_MAX];
    CK_RV rv;

    snprintf(t->who, sizeof(t->who), "%s", ident);
    rv = akv_auth_new(&tc->cred, &tc->http, http, &auth);
    if (rv == CKR_OK) {
        rv = akv_auth_get_header(
            auth,
            tc->scope != NULL ? tc->scope : "https://vault.azure.net/.default",
            t->tenant, 0, akv_retry_now_ms() + tc->http.budget_ms, &hdr, &gen,
            why, sizeof(why));
    } else {
        snprintf(why, sizeof(why),
                 "unusable credential configuration "
                 "(run with -v)");
    }
    if (rv != CKR_OK) {
        snprintf(cause, sizeof(cause), "%s, %s: no token: %s", type, ident,
                 why[0] != '\0' ? why : akv_admin_rv_name(rv));
        emit(r, tc->label, NULL, "credential", "FAIL", cause,
             cred_fix(&tc->cred));
        goto out;
    }
    token_claims(&hdr, t);
    if (t->oid[0] != '\0') {
        snprintf(t->who, sizeof(t->who), "%s (object id %s)", ident, t->oid);
    }
    snprintf(cause, sizeof(cause), "%s, %s: token obtained", type, t->who);
    emit(r, tc->label, NULL, "credential", "OK", cause, NULL);
    t->cred_ok = true;
out:
    akv_secret_clear(&hdr);
    akv_auth_free(auth);
}

static void fmt_time(int64_t s, char *buf, size_t len)
{
    time_t tt = (time_t)s;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, len, "%lld", (long long)s);
    }
}

/* Why the vault refuses OP (an AKV_KV_OP_* bit) on KEY, in words and fix;
 * the key's attributes explain a 403 before the access policy does. */
static void refusal(const struct tok *t, const struct akv_kv_key *k,
                    const char *opname, unsigned op, char *cause, size_t clen,
                    char *fix, size_t flen)
{
    int64_t now = (int64_t)time(NULL);
    char when[40];

    if (!k->enabled) {
        snprintf(cause, clen, "%s refused: key %s version %s is disabled",
                 opname, k->name, k->version);
        snprintf(fix, flen,
                 "az keyvault key set-attributes --vault-name %s "
                 "--name %s --version %s --enabled true",
                 t->vault, k->name, k->version);
    } else if (k->exp != 0 && k->exp <= now) {
        fmt_time(k->exp, when, sizeof(when));
        snprintf(cause, clen, "%s refused: key %s version %s expired at %s",
                 opname, k->name, k->version, when);
        snprintf(fix, flen,
                 "az keyvault key set-attributes --vault-name %s "
                 "--name %s --version %s --expires <later date>, or rotate "
                 "the key",
                 t->vault, k->name, k->version);
    } else if (k->nbf != 0 && k->nbf > now) {
        fmt_time(k->nbf, when, sizeof(when));
        snprintf(cause, clen,
                 "%s refused: key %s version %s is not valid "
                 "before %s",
                 opname, k->name, k->version, when);
        snprintf(fix, flen,
                 "az keyvault key set-attributes --vault-name %s "
                 "--name %s --version %s --not-before <now>",
                 t->vault, k->name, k->version);
    } else if ((k->key_ops & op) == 0) {
        snprintf(cause, clen,
                 "%s refused: the key_ops of %s version %s lack "
                 "%s",
                 opname, k->name, k->version, opname);
        snprintf(fix, flen,
                 "az keyvault key set-attributes --vault-name %s "
                 "--name %s --version %s --ops wrapKey unwrapKey",
                 t->vault, k->name, k->version);
    } else {
        char g[TXT_MAX];
        grant_fix(t, k->name, g, sizeof(g));
        snprintf(cause, clen, "the identity %s lacks %s on %s", t->who, opname,
                 t->tc->vault_url);
        snprintf(fix, flen, "%s", g);
    }
}

/* Key attributes as the module needs them: enabled, in its validity
 * window, a type that wraps, key_ops with wrapKey and unwrapKey. */
static void check_attrs(struct run *r, const struct tok *t,
                        const struct akv_kv_key *k)
{
    char cause[TXT_MAX], fix[TXT_MAX], exp[40] = "never";
    unsigned need = AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY;
    int64_t now = (int64_t)time(NULL);
    const char *label = t->tc->label;

    if (k->kty == AKV_KV_KTY_EC) {
        /* An EC key signs (tokens[].sign), it never wraps: judged by that
         * use, not as a failed wrap key. */
        need = AKV_KV_OP_SIGN;
        if (!t->tc->sign) {
            snprintf(cause, sizeof(cause),
                     "key %s is %s: EC keys only sign, and signing is off "
                     "for this token",
                     k->name, k->kty_name);
            emit(r, label, k->name, "key", "FAIL", cause,
                 "set \"sign\": true in the token's configuration "
                 "(conf/README.md), or configure an RSA key to wrap");
            return;
        }
        if (!k->enabled || (k->exp != 0 && k->exp <= now)
            || (k->nbf != 0 && k->nbf > now) || (k->key_ops & need) != need) {
            refusal(t, k, "sign", AKV_KV_OP_SIGN, cause, sizeof(cause), fix,
                    sizeof(fix));
            emit(r, label, k->name, "key", "FAIL", cause, fix);
            return;
        }
        snprintf(cause, sizeof(cause),
                 "%s %s version %s: enabled, key_ops include sign", k->kty_name,
                 k->crv, k->version);
        emit(r, label, k->name, "key", "OK", cause, NULL);
        return;
    }
    if (k->kty != AKV_KV_KTY_RSA && k->kty != AKV_KV_KTY_OCT_HSM) {
        snprintf(cause, sizeof(cause),
                 "key %s is %s: only RSA and oct-HSM "
                 "keys wrap",
                 k->name, k->kty_name);
        emit(r, label, k->name, "key", "FAIL", cause,
             "create an RSA key: az keyvault key create --kty RSA-HSM "
             "--size 3072 --ops wrapKey unwrapKey");
        return;
    }
    if (!k->enabled || (k->exp != 0 && k->exp <= now)
        || (k->nbf != 0 && k->nbf > now) || (k->key_ops & need) != need) {
        unsigned op = (k->key_ops & AKV_KV_OP_WRAPKEY) == 0
                          ? AKV_KV_OP_WRAPKEY
                          : AKV_KV_OP_UNWRAPKEY;
        refusal(t, k, op == AKV_KV_OP_WRAPKEY ? "wrapKey" : "unwrapKey", op,
                cause, sizeof(cause), fix, sizeof(fix));
        /* "X refused: ..." -> the attribute part only */
        emit(r, label, k->name, "key", "FAIL",
             strstr(cause, ": ") != NULL && strncmp(cause, "the ", 4) != 0
                 ? strstr(cause, ": ") + 2
                 : cause,
             fix);
        return;
    }
    if (k->exp != 0) {
        fmt_time(k->exp, exp, sizeof(exp));
    }
    snprintf(cause, sizeof(cause),
             "%s version %s: enabled, expires %s, "
             "key_ops include wrapKey unwrapKey",
             k->kty_name, k->version, exp);
    emit(r, label, k->name, "key", "OK", cause, NULL);
}

/* get, wrapKey and unwrapKey of 32 random bytes with the module's client;
 * fills KEY when get works (caller clears). Returns true when all work. */
static bool check_key_ops(struct run *r, const struct tok *t, struct akv_kv *kv,
                          const struct akv_key_config *kc,
                          struct akv_kv_key *key)
{
    const char *label = t->tc->label;
    uint8_t probe[32];
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    struct akv_secret plain = AKV_SECRET_INIT;
    enum akv_kv_alg alg = AKV_KV_ALG_RSA_OAEP_256;
    char cause[TXT_MAX], fix[TXT_MAX], g[TXT_MAX];
    bool ok = false;
    CK_RV rv;

    rv = kv->ops->get_key(kv, kc->name, kc->version, key);
    if (rv != CKR_OK) {
        grant_fix(t, kc->name, g, sizeof(g));
        if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
            snprintf(cause, sizeof(cause), "the identity %s lacks get on %s",
                     t->who, t->tc->vault_url);
            emit(r, label, kc->name, "get", "FAIL", cause, g);
        } else if (rv == CKR_KEY_HANDLE_INVALID) {
            snprintf(cause, sizeof(cause),
                     "key %s%s%s does not exist in %s "
                     "(deleted or misspelt)",
                     kc->name, kc->version != NULL ? " version " : "",
                     kc->version != NULL ? kc->version : "", t->tc->vault_url);
            snprintf(fix, sizeof(fix),
                     "az keyvault key list --vault-name %s; "
                     "a soft-deleted key: az keyvault key recover --vault-name "
                     "%s --name %s",
                     t->vault, t->vault, kc->name);
            emit(r, label, kc->name, "get", "FAIL", cause, fix);
        } else {
            snprintf(cause, sizeof(cause), "Get Key failed: %s",
                     akv_admin_rv_name(rv));
            emit(r, label, kc->name, "get", "FAIL", cause,
                 "run with -v to see the vault's answer");
        }
        emit(r, label, kc->name, "wrapKey", "SKIP", "needs get", NULL);
        emit(r, label, kc->name, "unwrapKey", "SKIP", "needs get", NULL);
        return false;
    }
    snprintf(cause, sizeof(cause), "%s", key->kid);
    emit(r, label, kc->name, "get", "OK", cause, NULL);
    check_attrs(r, t, key);
    if (key->kty == AKV_KV_KTY_OCT_HSM) {
        alg = key->oct_bits == 128   ? AKV_KV_ALG_A128KW
              : key->oct_bits == 192 ? AKV_KV_ALG_A192KW
                                     : AKV_KV_ALG_A256KW;
    } else if (key->kty != AKV_KV_KTY_RSA) {
        emit(r, label, kc->name, "wrapKey", "SKIP", "key type (signs only)",
             NULL);
        emit(r, label, kc->name, "unwrapKey", "SKIP", "key type (signs only)",
             NULL);
        return false;
    }
    if (getrandom(probe, sizeof(probe), 0) != (ssize_t)sizeof(probe)) {
        emit(r, label, kc->name, "wrapKey", "FAIL", "no random bytes", NULL);
        goto out;
    }
    rv = kv->ops->wrap(kv, key->name, key->version, alg, probe, sizeof(probe),
                       &wrapped, &wrapped_len, NULL);
    if (rv != CKR_OK) {
        if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
            refusal(t, key, "wrapKey", AKV_KV_OP_WRAPKEY, cause, sizeof(cause),
                    fix, sizeof(fix));
        } else {
            snprintf(cause, sizeof(cause), "Wrap Key failed: %s",
                     akv_admin_rv_name(rv));
            snprintf(fix, sizeof(fix), "run with -v to see the vault's answer");
        }
        emit(r, label, kc->name, "wrapKey", "FAIL", cause, fix);
        emit(r, label, kc->name, "unwrapKey", "SKIP", "needs wrapKey", NULL);
        goto out;
    }
    snprintf(cause, sizeof(cause), "32 random bytes wrapped with %s",
             akv_kv_alg_name(alg));
    emit(r, label, kc->name, "wrapKey", "OK", cause, NULL);
    rv = kv->ops->unwrap(kv, key->name, key->version, alg, wrapped, wrapped_len,
                         &plain);
    if (rv == CKR_OK
        && (plain.len != sizeof(probe)
            || CRYPTO_memcmp(plain.data, probe, sizeof(probe)) != 0)) {
        emit(r, label, kc->name, "unwrapKey", "FAIL",
             "the vault unwrapped different bytes than it wrapped",
             "report it: the vault or a proxy in between answers wrongly");
        goto out;
    }
    if (rv != CKR_OK) {
        if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
            refusal(t, key, "unwrapKey", AKV_KV_OP_UNWRAPKEY, cause,
                    sizeof(cause), fix, sizeof(fix));
        } else {
            snprintf(cause, sizeof(cause), "Unwrap Key failed: %s",
                     akv_admin_rv_name(rv));
            snprintf(fix, sizeof(fix), "run with -v to see the vault's answer");
        }
        emit(r, label, kc->name, "unwrapKey", "FAIL", cause, fix);
        goto out;
    }
    emit(r, label, kc->name, "unwrapKey", "OK",
         "unwrapped them back, bytes equal", NULL);
    ok = true;
out:
    OPENSSL_cleanse(probe, sizeof(probe));
    akv_secret_clear(&plain);
    free(wrapped);
    return ok;
}

/* The older versions of KEY the catalog names, comma-separated into LIST
 * (LEN bytes); returns how many. */
static size_t catalog_versions(const char *store_dir, const char *name,
                               const char *current, char *list, size_t len)
{
    char vers[32][AKV_KV_VERSION_MAX];
    size_t n = akv_admin_catalog(store_dir, name, vers, 32), known = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(vers[i], current) == 0) {
            continue;
        }
        snprintf(list + strlen(list), len - strlen(list), "%s%s",
                 list[0] != '\0' ? ", " : "", vers[i]);
        known++;
    }
    return known;
}

static void check_rotation(struct run *r, const struct tok *t,
                           const struct akv_kv_key *key,
                           const struct akv_tally_row *rows, size_t n_rows)
{
    char older[2048] = "", cause[3072];
    size_t known = catalog_versions(t->tc->store_dir, key->name, key->version,
                                    older, sizeof(older));
    size_t stale = 0;

    for (size_t i = 0; i < n_rows; i++) {
        if (strcasecmp(rows[i].name, key->name) != 0
            || strcmp(rows[i].version, key->version) == 0) {
            continue;
        }
        stale += rows[i].count;
    }
    snprintf(cause, sizeof(cause),
             "current version %s; %zu older version%s "
             "known to the token%s%s%s",
             key->version, known, known == 1 ? "" : "s", known > 0 ? " (" : "",
             older, known > 0 ? ")" : "");
    if (stale > 0) {
        snprintf(cause + strlen(cause), sizeof(cause) - strlen(cause),
                 "; %zu stored object%s under older versions (run rewrap)",
                 stale, stale == 1 ? "" : "s");
    }
    emit(r, t->tc->label, key->name, "rotation", "OK", cause, NULL);
}

/* Opens the store, loads its secret, lists (authenticates) every record;
 * *rows gets the tally (caller frees). */
static void check_store(struct run *r, const struct tok *t, struct akv_kv *kv,
                        struct akv_tally_row **rows, size_t *n_rows)
{
    const struct akv_token_config *tc = t->tc;
    struct akv_store *store = NULL;
    struct akv_store_record *recs = NULL;
    size_t n = 0;
    char cause[TXT_MAX];
    struct stat sb;
    CK_RV rv;

    if (stat(tc->store_dir, &sb) != 0 && errno == ENOENT) {
        snprintf(cause, sizeof(cause), "%s not created yet (0 objects)",
                 tc->store_dir);
        emit(r, tc->label, NULL, "store", "OK", cause, NULL);
        return;
    }
    rv = akv_store_open(tc->store_dir, &store);
    if (rv == CKR_OK) {
        struct akv_seal_ctx sc = {kv, store, tc->vault_url, NULL, NULL};
        rv = akv_seal_ready(&sc, NULL);
        if (rv != CKR_OK && rv != CKR_TEMPLATE_INCONSISTENT) {
            struct akv_store_key sk;
            char fix[TXT_MAX];

            memset(&sk, 0, sizeof(sk));
            (void)akv_store_key_get(store, &sk);
            snprintf(cause, sizeof(cause),
                     "%s: the store secret (.storekey, wrapped by %s) cannot "
                     "be unwrapped: %s",
                     tc->store_dir, sk.kid != NULL ? sk.kid : "?",
                     akv_admin_rv_name(rv));
            snprintf(fix, sizeof(fix),
                     "that key version must stay enabled with unwrapKey "
                     "allowed (az keyvault key set-attributes --vault-name %s "
                     "--name NAME --version VERSION --enabled true)",
                     t->vault);
            akv_store_key_clear(&sk);
            emit(r, tc->label, NULL, "store", "FAIL", cause, fix);
            goto out;
        }
        if (rv == CKR_TEMPLATE_INCONSISTENT) {
            snprintf(cause, sizeof(cause),
                     akv_store_unused(store)
                         ? "%s: empty store (.storekey is made with the "
                           "first token object)"
                         : "%s: legacy store without "
                           ".storekey (adopted on first use or by rewrap)",
                     tc->store_dir);
            emit(r, tc->label, NULL, "store", "OK", cause, NULL);
            goto out;
        }
    }
    if (rv == CKR_OK) {
        rv = akv_store_list(store, &recs, &n);
    }
    if (rv == CKR_OK) {
        rv = akv_admin_tally(recs, n, rows, n_rows);
    }
    if (rv != CKR_OK) {
        snprintf(cause, sizeof(cause), "%s cannot be read: %s (run with -v)",
                 tc->store_dir, akv_admin_rv_name(rv));
        emit(r, tc->label, NULL, "store", "FAIL", cause,
             "the folder and its files must belong to this user, mode 0700/"
             "0600; .storekey must unwrap with the token's key");
        goto out;
    }
    {
        size_t bad = akv_store_last_unreadable(store);
        size_t refused = akv_store_last_refused(store);

        if (bad > 0) {
            snprintf(cause, sizeof(cause),
                     "%s: %zu object%s readable, %zu "
                     "record%s unreadable, of which %zu refused (fail "
                     "authentication: planted, edited, moved or rolled back)",
                     tc->store_dir, n, n == 1 ? "" : "s", bad,
                     bad == 1 ? "" : "s", refused);
            emit(r, tc->label, NULL, "store", "FAIL", cause,
                 "restore the named records from a backup or delete them "
                 "(docs/STORE.md \"Refusals\"; the log names them with -v)");
            goto out;
        }
        snprintf(cause, sizeof(cause),
                 "%s: %zu object%s, all authenticated, "
                 "0 refused",
                 tc->store_dir, n, n == 1 ? "" : "s");
        emit(r, tc->label, NULL, "store", "OK", cause, NULL);
    }
out:
    akv_store_records_free(recs, n);
    akv_store_close(store);
}

/* tokens[].certificate: Key Vault Get Certificate (certificates/get) as
 * the module makes it; its kid names the key version it certifies. */
static void check_cert(struct run *r, const struct tok *t, struct akv_kv *kv)
{
    const char *name = t->tc->certificate;
    const char *label = t->tc->label;
    struct akv_kv_cert c;
    char cause[768];
    char fix[512];
    CK_RV rv;

    memset(&c, 0, sizeof(c));
    rv = kv->ops->get_certificate(kv, name, NULL, &c);
    if (rv == CKR_OK) {
        snprintf(cause, sizeof(cause),
                 "%s: %zu bytes, certifies key %s version %s", name, c.der_len,
                 c.name, c.version);
        emit(r, label, NULL, "certificate", "OK", cause, NULL);
    } else if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
        snprintf(cause, sizeof(cause),
                 "the identity (%s) lacks certificates/get on %s: the token "
                 "shows its keys without the certificate %s",
                 t->who, t->tc->vault_url, name);
        snprintf(fix, sizeof(fix),
                 "az keyvault set-policy --name %s %s "
                 "--certificate-permissions get (RBAC vaults: role \"Key "
                 "Vault Certificate User\")",
                 t->vault, t->assignee);
        emit(r, label, NULL, "certificate", "FAIL", cause, fix);
    } else if (rv == CKR_KEY_HANDLE_INVALID) {
        snprintf(cause, sizeof(cause), "no certificate %s in %s", name,
                 t->tc->vault_url);
        emit(r, label, NULL, "certificate", "FAIL", cause,
             "name an existing certificate in tokens[].certificate");
    } else {
        snprintf(cause, sizeof(cause),
                 "Get Certificate %s failed (rv 0x%lx; see the log line "
                 "above)",
                 name, (unsigned long)rv);
        emit(r, label, NULL, "certificate", "FAIL", cause, NULL);
    }
    akv_kv_cert_clear(&c);
}

static void check_token(struct run *r, const struct akv_token_config *tc,
                        const char *type, const char *ident)
{
    struct tok t;
    struct akv_http *http = NULL;
    struct akv_kv *kv = NULL;
    struct akv_tally_row *rows = NULL;
    struct akv_kv_key *keys = NULL;
    size_t n_rows = 0;
    bool keys_ok = true;
    const char *label = tc->label;

    memset(&t, 0, sizeof(t));
    t.tc = tc;
    vault_name(&t);
    if (tc->cred.client_id != NULL) {
        snprintf(t.assignee, sizeof(t.assignee), "--spn %s",
                 tc->cred.client_id);
    } else {
        snprintf(t.assignee, sizeof(t.assignee), "--object-id OID");
    }
    if (akv_http_new(tc->http.ca_file, &http) != CKR_OK) {
        emit(r, label, NULL, "vault", "FAIL", "out of memory", NULL);
        return;
    }
    akv_http_set_connect_timeout(http, tc->http.connect_timeout_ms);
    check_reach(r, &t, http);
    check_cred(r, &t, http, type, ident);
    if (!t.reach_ok || !t.cred_ok || akv_kv_rest_new(tc, &kv) != CKR_OK) {
        const char *why = !t.reach_ok ? "needs the vault" : "needs a token";
        for (size_t k = 0; k < tc->n_keys; k++) {
            emit(r, label, tc->keys[k].name, "get", "SKIP", why, NULL);
        }
        if (tc->store_dir != NULL) {
            emit(r, label, NULL, "store", "SKIP", why, NULL);
        }
        if (tc->certificate != NULL) {
            emit(r, label, NULL, "certificate", "SKIP", why, NULL);
        }
        goto out;
    }
    keys = calloc(tc->n_keys > 0 ? tc->n_keys : 1, sizeof(*keys));
    if (keys == NULL) {
        emit(r, label, NULL, "get", "FAIL", "out of memory", NULL);
        goto out;
    }
    for (size_t k = 0; k < tc->n_keys; k++) {
        if (!check_key_ops(r, &t, kv, &tc->keys[k], &keys[k])) {
            keys_ok = false;
        }
    }
    /* The store's secret opens only through unwrapKey: after the keys. */
    if (tc->store_dir != NULL && keys_ok) {
        check_store(r, &t, kv, &rows, &n_rows);
    } else if (tc->store_dir != NULL) {
        emit(r, label, NULL, "store", "SKIP", "needs get, wrapKey, unwrapKey",
             NULL);
    }
    for (size_t k = 0; k < tc->n_keys; k++) {
        if (keys[k].kid[0] != '\0') {
            check_rotation(r, &t, &keys[k], rows, n_rows);
        }
    }
    if (tc->certificate != NULL) {
        check_cert(r, &t, kv);
    }
out:
    for (size_t k = 0; keys != NULL && k < tc->n_keys; k++) {
        akv_kv_key_clear(&keys[k]);
    }
    free(keys);
    free(rows);
    if (kv != NULL) {
        kv->ops->destroy(kv);
    }
    akv_http_free(http);
}

/* Declared in main.c: the credential in words, shared with status. */
const char *akv_tool_cred_type_name(enum akv_cred_type t);
void akv_tool_cred_identity(const struct akv_cred_config *c, char *buf,
                            size_t len);

int akv_check_run(const char *path, const char *only_token, bool json)
{
    struct run r;
    struct akv_config *cfg = NULL;
    cJSON *doc = cJSON_CreateObject();
    char err[512];
    bool matched = only_token == NULL;

    memset(&r, 0, sizeof(r));
    r.json = json;
    r.checks = cJSON_AddArrayToObject(doc, "checks");
    cJSON_AddStringToObject(doc, "config", path);
    if (check_config(&r, path) != 0) {
        goto out;
    }
    if (akv_config_load(path, &cfg, err, sizeof(err)) != 0) {
        emit(&r, NULL, NULL, "config", "FAIL", err,
             "correct the file (schema: conf/README.md)");
        goto out;
    }
    emit(&r, NULL, NULL, "config", "OK", "readable, owner and mode safe, valid",
         NULL);
    if (akv_kv_global_init() != CKR_OK) {
        emit(&r, NULL, NULL, "libcurl", "FAIL", "initialisation failed", NULL);
        goto out;
    }
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        char ident[512];
        struct akv_token_config *tc = &cfg->tokens[i];

        if (only_token != NULL && strcmp(only_token, tc->label) != 0) {
            continue;
        }
        matched = true;
        tc->cache = false; /* the vault's answer now, never the cache */
        akv_tool_cred_identity(&tc->cred, ident, sizeof(ident));
        check_token(&r, tc, akv_tool_cred_type_name(tc->cred.type), ident);
    }
    if (!matched) {
        snprintf(err, sizeof(err), "no token labelled \"%s\" in %s",
                 only_token != NULL ? only_token : "", path);
        emit(&r, NULL, NULL, "token", "FAIL", err,
             "give a label from the configuration's tokens[].label");
    }
out:
    if (r.fails > AKV_CHECK_MAX_FAILS) {
        r.fails = AKV_CHECK_MAX_FAILS;
    }
    cJSON_AddNumberToObject(doc, "failures", r.fails);
    cJSON_AddBoolToObject(doc, "ok", r.fails == 0);
    if (json) {
        char *s = cJSON_Print(doc);
        if (s != NULL) {
            printf("%s\n", s);
            cJSON_free(s);
        }
    } else {
        printf("check: %d failure%s\n", r.fails, r.fails == 1 ? "" : "s");
    }
    cJSON_Delete(doc);
    akv_config_free(cfg);
    return r.fails;
}
