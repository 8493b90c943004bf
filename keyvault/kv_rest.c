/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The libcurl/cJSON implementation of struct akv_kv_ops: Key Vault REST
 * "Get Key", "Wrap Key", "Unwrap Key", "Sign", "Encrypt", "Decrypt" (keys.json,
 * api-version from the configuration, default 7.4). Composition: auth.c gives
 * the bearer token, retry.c + http.c carry the request, json.c reads the
 * answer, errmap.c turns failures into CK_RV. Each failure that reaches the
 * caller is logged here exactly once.
 */
#include "kv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/kvid.h"
#include "../common/log.h"
#include "auth.h"
#include "errmap.h"
#include "http.h"
#include "json.h"
#include "jwk.h"
#include "pcache.h"
#include "retry.h"

#define WRAPPED_MAX 1024 /* RSA-8192 output; AES-KW output is smaller */
#define WRAP_IN_MAX 1024

struct kv_rest {
    struct akv_kv base; /* must be first */
    char *vault_url;
    struct akv_kvid_url vault; /* vault_url parsed: kids must match it */
    char *api_version;
    char *label;
    struct akv_http *http;
    struct akv_auth *auth;
    struct akv_retry_policy policy;
    long budget_ms;
    bool verify_challenge;
    enum akv_http_scheme scheme;
    char *cache_dir; /* keyvault/pcache.h; NULL = no cross-process cache */
    struct akv_pace *pace; /* shared by every request to this vault */
    long key_ttl_s; /* key_refresh_s: lifetime of a cached Get Key answer */

    pthread_mutex_t lock;
    /* LOCKED by lock: learnt from a 401 challenge */
    char scope[AKV_AUTH_SCOPE_MAX];
    char tenant[AKV_AUTH_TENANT_MAX];
};

static const char *reason(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

/* Arguments the module itself passes: a key name, and a version that is
 * NULL or "" (current) or a Key Vault version. */
static bool valid_name(const char *s)
{
    return s != NULL && akv_kvid_name_ok(s, strlen(s));
}

static bool valid_version(const char *s)
{
    return s == NULL || s[0] == '\0' || akv_kvid_version_ok(s, strlen(s));
}

struct call {
    enum akv_errmap_op op;
    const char *name;
    const char *method;
    const char *url;
    const char *log_path;
    const uint8_t *body;
    size_t body_len;
    /* An expected status (a probe's 400, a name-must-be-new GET's 404):
     * mapped and returned as any other, logged at DEBUG only. 0 = none. */
    long quiet;
};

/*
 * Runs one Key Vault call: token, request with retries, one challenge /
 * token refresh on 401, then maps a non-2xx answer. On CKR_OK RESP holds a
 * 2xx answer. Logs the failure line itself.
 */
static CK_RV do_call(struct kv_rest *kv, const struct call *c,
                     struct akv_http_resp *resp)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret hdr = AKV_SECRET_INIT;
    struct akv_http_req req;
    struct akv_json_error err;
    int64_t t0 = akv_retry_now_ms();
    int64_t deadline = t0 + kv->budget_ms;
    uint64_t gen = 0;
    uint64_t stale = 0;
    int attempts = 0;
    char why[512] = "";
    const char *op = akv_errmap_op_name(c->op);

    memset(&req, 0, sizeof(req));
    req.method = c->method;
    req.url = c->url;
    req.log_path = c->log_path;
    req.body = c->body;
    req.body_len = c->body_len;
    req.content_type = "application/json";
    req.scheme = kv->scheme;
    req.secret_header = &hdr;

    for (int round = 0; round < 2; round++) {
        char scope[AKV_AUTH_SCOPE_MAX];
        char tenant[AKV_AUTH_TENANT_MAX];
        struct akv_challenge ch;

        pthread_mutex_lock(&kv->lock);
        memcpy(scope, kv->scope, sizeof(scope));
        memcpy(tenant, kv->tenant, sizeof(tenant));
        pthread_mutex_unlock(&kv->lock);

        rv = akv_auth_get_header(kv->auth, scope, tenant, stale, deadline, &hdr,
                                 &gen, why, sizeof(why));
        if (rv != CKR_OK) {
            if (rv != CKR_HOST_MEMORY) {
                rv = CKR_DEVICE_ERROR;
            }
            AKV_LOG_ERR("key %s op %s: cannot get an access token: %s", c->name,
                        op, why[0] != '\0' ? why : "unknown error");
            goto out;
        }
        rv = akv_retry_perform(kv->http, &req, &kv->policy, deadline, resp,
                               &attempts);
        if (rv == CKR_HOST_MEMORY) {
            goto out;
        }
        if (rv != CKR_OK) {
            char origin[256];
            akv_http_origin(req.url, origin, sizeof(origin));
            AKV_LOG_ERR(
                "key %s op %s: %s failed after %d "
                "attempt(s) in %lld ms: %s",
                c->name, op, origin, attempts,
                (long long)(akv_retry_now_ms() - t0),
                rv == CKR_ARGUMENTS_BAD
                    ? "URL refused (https only; http only to loopback with "
                      "http.allow_http_loopback)"
                    : akv_http_strerror(resp->curl_code));
            rv = rv == CKR_ARGUMENTS_BAD ? CKR_GENERAL_ERROR : CKR_DEVICE_ERROR;
            goto out;
        }
        if (resp->status != 401 || round == 1) {
            break;
        }
        /* 401: learn scope/tenant from the challenge, refresh once */
        if (resp->www_authenticate[0] == '\0'
            || akv_auth_parse_challenge(resp->www_authenticate, &ch) != 0) {
            AKV_LOG_DEBUG("key %s op %s: 401 without a usable Bearer "
                          "challenge",
                          c->name, op);
            break;
        }
        if (!akv_auth_challenge_host_ok(kv->vault_url, &ch)) {
            if (kv->verify_challenge) {
                AKV_LOG_ERR("key %s op %s: HTTP 401 challenge resource %s "
                            "does not match the vault host of %s; not "
                            "sending a token for it (set "
                            "http.verify_challenge_resource false for an "
                            "emulator) (request-id %s)",
                            c->name, op,
                            ch.resource[0] != '\0' ? ch.resource : ch.scope,
                            kv->vault_url,
                            resp->request_id[0] ? resp->request_id : "-");
                rv = CKR_DEVICE_ERROR;
                goto out;
            }
            AKV_LOG_DEBUG("challenge resource %s does not match %s "
                          "(verification disabled)",
                          ch.resource[0] != '\0' ? ch.resource : ch.scope,
                          kv->vault_url);
        }
        pthread_mutex_lock(&kv->lock);
        (void)snprintf(kv->scope, sizeof(kv->scope), "%s", ch.scope);
        (void)snprintf(kv->tenant, sizeof(kv->tenant), "%s", ch.tenant);
        pthread_mutex_unlock(&kv->lock);
        stale = gen;
        AKV_LOG_DEBUG("key %s op %s: 401, refreshing the token for %s", c->name,
                      op, ch.scope);
    }
    if (resp->status >= 200 && resp->status <= 299) {
        rv = CKR_OK;
        goto out;
    }
    (void)akv_json_parse_error((const char *)resp->body.data, resp->body.len,
                               &err);
    rv = akv_errmap_rv(c->op, resp->status, err.code, err.inner);
    {
        char what[160];
        const char *code =
            err.code[0] != '\0' ? err.code : reason(resp->status);
        (void)snprintf(what, sizeof(what), "%s%s%s", code,
                       err.inner[0] != '\0' ? "/" : "", err.inner);
        AKV_LOG_AT(
            c->quiet != 0 && resp->status == c->quiet ? AKV_LOG_LEVEL_DEBUG
                                                      : AKV_LOG_LEVEL_ERROR,
            "key %s op %s: HTTP %ld%s%s%s%s (request-id %s)%s%s%s", c->name, op,
            resp->status, what[0] != '\0' ? " " : "", what,
            err.message[0] != '\0' ? ": " : "", err.message,
            resp->request_id[0] != '\0' ? resp->request_id : "-",
            stale != 0 && resp->status == 401 ? ", after a token refresh" : "",
            attempts > 1 && akv_retry_status_retryable(resp->status, false)
                ? ", retries exhausted"
                : "",
            rv == CKR_GENERAL_ERROR
                ? " [unexpected request error: please report]"
                : "");
    }
out:
    akv_secret_clear(&hdr);
    return rv;
}

/* "{vault}/keys/{name}[/{version}][/{suffix}]?api-version=..." */
static CK_RV build_url(const struct kv_rest *kv, const char *name,
                       const char *version, const char *suffix, char *url,
                       size_t url_len, char *log_path, size_t log_len)
{
    int n;

    if (suffix != NULL) {
        /* an empty version segment means "current" (as the JS SDK sends
         * /keys/{name}//wrapkey) */
        n = snprintf(url, url_len, "%s/keys/%s/%s/%s?api-version=%s",
                     kv->vault_url, name, version != NULL ? version : "",
                     suffix, kv->api_version);
        (void)snprintf(log_path, log_len, "/keys/%s/%s/%s", name,
                       version != NULL ? version : "", suffix);
    } else if (version != NULL && version[0] != '\0') {
        n = snprintf(url, url_len, "%s/keys/%s/%s?api-version=%s",
                     kv->vault_url, name, version, kv->api_version);
        (void)snprintf(log_path, log_len, "/keys/%s/%s", name, version);
    } else {
        n = snprintf(url, url_len, "%s/keys/%s?api-version=%s", kv->vault_url,
                     name, kv->api_version);
        (void)snprintf(log_path, log_len, "/keys/%s", name);
    }
    return n > 0 && (size_t)n < url_len ? CKR_OK : CKR_ARGUMENTS_BAD;
}

/* A cached Get Key answer for URL into RESP's body when one exists and is
 * younger than key_refresh_s. */
static bool key_from_cache(struct kv_rest *kv, const char *url,
                           struct akv_http_resp *resp)
{
    struct akv_secret body = AKV_SECRET_INIT;
    int64_t now = (int64_t)time(NULL);
    int64_t stamp = 0;
    bool hit = false;

    if (kv->cache_dir == NULL || kv->key_ttl_s <= 0
        || akv_pcache_load(kv->cache_dir, "key", url, &body, &stamp) != 0) {
        return false;
    }
    if (stamp <= now && now - stamp < kv->key_ttl_s
        && akv_secret_set(&resp->body, body.data, body.len) == 0) {
        resp->status = 200;
        hit = true;
    }
    akv_secret_clear(&body);
    return hit;
}

/* The checks every Get Key answer gets, from the network or the cache:
 * a KeyBundle, its kid the key (and version) asked for in the configured
 * vault (the token shows and later uses this kid), a public key fit for
 * "wrap": "local" (a weak one would give data keys away). WHY receives the
 * reason of a refusal. CKR_OK, CKR_DEVICE_ERROR, CKR_HOST_MEMORY. */
static CK_RV bundle_check(struct kv_rest *kv, const char *name,
                          const char *version, const struct akv_http_resp *resp,
                          struct akv_kv_key *k, char *why, size_t why_len)
{
    char jwk_why[160];
    CK_RV rv = akv_json_parse_key_bundle((const char *)resp->body.data,
                                         resp->body.len, k);
    enum akv_kvid_kid_err e;

    why[0] = '\0';
    if (rv == CKR_DEVICE_ERROR) {
        (void)snprintf(why, why_len, "the KeyBundle is malformed");
        return rv;
    }
    if (rv != CKR_OK) {
        return rv;
    }
    e = akv_kvid_kid_check(&kv->vault, k->kid, name, version, NULL);
    if (e != AKV_KVID_KID_OK) {
        (void)snprintf(why, why_len, "the answer's kid \"%s\" %s", k->kid,
                       akv_kvid_kid_strerror(e));
        return CKR_DEVICE_ERROR;
    }
    rv = akv_jwk_check(k, jwk_why, sizeof(jwk_why));
    if (rv != CKR_OK) {
        (void)snprintf(why, why_len, "the public key is refused: %s", jwk_why);
    }
    return rv;
}

static CK_RV rest_get_key(struct akv_kv *base, const char *name,
                          const char *version, struct akv_kv_key *out)
{
    bool from_cache = false;
    CK_RV rv = CKR_GENERAL_ERROR;
    struct kv_rest *kv = (struct kv_rest *)base;
    struct akv_http_resp resp;
    struct akv_kv_key k;
    struct call c;
    char url[1024];
    char log_path[256];
    char why[AKV_KV_KID_MAX + 256];

    memset(&resp, 0, sizeof(resp));
    memset(&k, 0, sizeof(k));
    if (kv == NULL || out == NULL || !valid_name(name)
        || !valid_version(version)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = build_url(kv, name, version, NULL, url, sizeof(url), log_path,
                   sizeof(log_path));
    if (rv != CKR_OK) {
        goto out;
    }
    /* A previous process's answer for the same URL, younger than
     * key_refresh_s (public data; checked exactly like a network answer). */
    from_cache = key_from_cache(kv, url, &resp);
    rv = from_cache
             ? bundle_check(kv, name, version, &resp, &k, why, sizeof(why))
             : CKR_GENERAL_ERROR;
    if (from_cache && rv != CKR_OK) {
        /* A cached answer that fails a check (a planted or corrupted file,
         * one an older release accepted) is dropped and the vault asked:
         * it must not fail the token until key_refresh_s passes. */
        AKV_LOG_WARN("key %s op get: the cached answer is not used: %s; "
                     "asking the vault",
                     name, why[0] != '\0' ? why : "error");
        akv_pcache_remove(kv->cache_dir, "key", url);
        akv_kv_key_clear(&k);
        memset(&k, 0, sizeof(k));
        akv_http_resp_clear(&resp);
        memset(&resp, 0, sizeof(resp));
        from_cache = false;
    }
    if (!from_cache) {
        c = (struct call){.op = AKV_ERRMAP_GET,
                          .name = name,
                          .method = "GET",
                          .url = url,
                          .log_path = log_path};
        rv = do_call(kv, &c, &resp);
        if (rv != CKR_OK) {
            goto out;
        }
        rv = bundle_check(kv, name, version, &resp, &k, why, sizeof(why));
        if (rv != CKR_OK && why[0] != '\0') {
            AKV_LOG_ERR("key %s op get: HTTP %ld but %s (request-id %s)", name,
                        resp.status, why,
                        resp.request_id[0] ? resp.request_id : "-");
        }
    }
    if (rv == CKR_OK && !from_cache && kv->cache_dir != NULL
        && kv->key_ttl_s > 0) {
        (void)akv_pcache_store(kv->cache_dir, "key", url, resp.body.data,
                               resp.body.len, (int64_t)time(NULL));
    }
    if (rv == CKR_OK) {
        *out = k;
        memset(&k, 0, sizeof(k));
    }
out:
    akv_kv_key_clear(&k);
    akv_http_resp_clear(&resp);
    return rv;
}

static CK_RV rest_get_certificate(struct akv_kv *base, const char *name,
                                  const char *version, struct akv_kv_cert *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct kv_rest *kv = (struct kv_rest *)base;
    struct akv_http_resp resp;
    struct akv_kv_cert cert;
    struct call c;
    char url[1024];
    char log_path[256];
    enum akv_kvid_kid_err e;
    int n;

    memset(&resp, 0, sizeof(resp));
    memset(&cert, 0, sizeof(cert));
    if (kv == NULL || out == NULL || !valid_name(name)
        || !valid_version(version)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (version == NULL) {
        version = "";
    }
    n = snprintf(url, sizeof(url), "%s/certificates/%s%s%s?api-version=%s",
                 kv->vault_url, name, version[0] != '\0' ? "/" : "", version,
                 kv->api_version);
    (void)snprintf(log_path, sizeof(log_path), "/certificates/%s%s%s", name,
                   version[0] != '\0' ? "/" : "", version);
    if (n <= 0 || (size_t)n >= sizeof(url)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    c = (struct call){.op = AKV_ERRMAP_GET_CERT,
                      .name = name,
                      .method = "GET",
                      .url = url,
                      .log_path = log_path};
    rv = do_call(kv, &c, &resp);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_json_parse_cert_bundle((const char *)resp.body.data, resp.body.len,
                                    &cert);
    if (rv == CKR_DEVICE_ERROR) {
        AKV_LOG_ERR("key %s op getcertificate: HTTP %ld but the "
                    "CertificateBundle is malformed (request-id %s)",
                    name, resp.status,
                    resp.request_id[0] ? resp.request_id : "-");
        goto out;
    }
    if (rv != CKR_OK) {
        goto out;
    }
    /* A certificate owns the key of its own name (Key Vault creates both
     * together); the token shows the certificate next to that key. */
    e = akv_kvid_kid_check(&kv->vault, cert.kid, name, NULL, NULL);
    if (e != AKV_KVID_KID_OK) {
        AKV_LOG_ERR("key %s op getcertificate: HTTP %ld but the answer's kid "
                    "\"%s\" %s (request-id %s)",
                    name, resp.status, cert.kid, akv_kvid_kid_strerror(e),
                    resp.request_id[0] ? resp.request_id : "-");
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    *out = cert;
    memset(&cert, 0, sizeof(cert));
out:
    akv_kv_cert_clear(&cert);
    akv_http_resp_clear(&resp);
    return rv;
}

/* Shared by wrap, unwrap and sign (KeyOperationsParameters and
 * KeySignParameters have the same {alg, value} shape, and both answers are
 * a KeyOperationResult {kid, value}): RESULT receives the decoded
 * "value". */
static CK_RV post_op(struct kv_rest *kv, enum akv_errmap_op op,
                     const char *name, const char *version,
                     const struct akv_secret *body, bool quiet_400,
                     size_t result_max, struct akv_secret *result,
                     char *kid_out, struct akv_kv_crypt_out *extra);

/* QUIET_400: a 400 answer is expected (akv_kv_ops.unwrap_probe): DEBUG. */
static CK_RV key_op(struct kv_rest *kv, enum akv_errmap_op op, const char *name,
                    const char *version, enum akv_kv_alg alg, const uint8_t *in,
                    size_t in_len, bool quiet_400, struct akv_secret *result,
                    char *kid_out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret body = AKV_SECRET_INIT;

    if (kv == NULL || akv_kv_alg_name(alg) == NULL || in == NULL || in_len == 0
        || in_len > WRAP_IN_MAX) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = akv_json_build_key_op(alg, in, in_len, &body);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = post_op(kv, op, name, version, &body, quiet_400, WRAPPED_MAX, result,
                 kid_out, NULL);
out:
    akv_secret_clear(&body);
    return rv;
}

/* POSTs BODY to the key operation OP of NAME/VERSION and reads the
 * KeyOperationResult: RESULT receives its "value" (at most RESULT_MAX
 * bytes, else CKR_DEVICE_ERROR), KID_OUT its checked kid, EXTRA (when not
 * NULL) its "iv" and "tag". */
static CK_RV post_op(struct kv_rest *kv, enum akv_errmap_op op,
                     const char *name, const char *version,
                     const struct akv_secret *body, bool quiet_400,
                     size_t result_max, struct akv_secret *result,
                     char *kid_out, struct akv_kv_crypt_out *extra)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_http_resp resp;
    struct call c;
    char url[1024];
    char log_path[256];
    char kid[AKV_KV_KID_MAX];
    const char *opname = akv_errmap_op_name(op);

    memset(&resp, 0, sizeof(resp));
    if (!valid_name(name) || !valid_version(version)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = build_url(kv, name, version, opname, url, sizeof(url), log_path,
                   sizeof(log_path));
    if (rv != CKR_OK) {
        goto out;
    }
    c = (struct call){.op = op,
                      .name = name,
                      .method = "POST",
                      .url = url,
                      .log_path = log_path,
                      .body = body->data,
                      .body_len = body->len,
                      .quiet = quiet_400 ? 400 : 0};
    rv = do_call(kv, &c, &resp);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_json_parse_key_op_result((const char *)resp.body.data,
                                      resp.body.len, kid, result);
    if (rv == CKR_OK && extra != NULL
        && akv_json_parse_crypt_extra((const char *)resp.body.data,
                                      resp.body.len, extra)
               != CKR_OK) {
        akv_secret_clear(result);
        rv = CKR_DEVICE_ERROR;
    }
    if (rv == CKR_OK && result->len > result_max) {
        akv_secret_clear(result);
        rv = CKR_DEVICE_ERROR;
    }
    if (rv == CKR_DEVICE_ERROR) {
        AKV_LOG_ERR("key %s op %s: HTTP %ld but the result is malformed "
                    "(request-id %s)",
                    name, opname, resp.status,
                    resp.request_id[0] ? resp.request_id : "-");
        goto out;
    }
    /* the token stores a wrap answer's kid with the wrapped blob and
     * unwraps with it later: it must name the key (and version) that was
     * asked for, in the configured vault. Unwrap and decrypt answers may
     * omit it. */
    if (rv == CKR_OK
        && (kid[0] != '\0'
            || (op != AKV_ERRMAP_UNWRAP && op != AKV_ERRMAP_DECRYPT))) {
        enum akv_kvid_kid_err e =
            akv_kvid_kid_check(&kv->vault, kid, name, version, NULL);
        if (e != AKV_KVID_KID_OK) {
            AKV_LOG_ERR("key %s op %s: HTTP %ld but the answer's kid \"%s\" "
                        "%s (request-id %s)",
                        name, opname, resp.status, kid,
                        akv_kvid_kid_strerror(e),
                        resp.request_id[0] ? resp.request_id : "-");
            akv_secret_clear(result);
            rv = CKR_DEVICE_ERROR;
            goto out;
        }
    }
    if (rv == CKR_OK && kid_out != NULL) {
        memcpy(kid_out, kid, sizeof(kid));
    }
out:
    akv_http_resp_clear(&resp);
    return rv;
}

/* Hands over RES (an answer's value that is not secret: a wrapped key, a
 * signature) as plain heap memory the caller frees: *OUT, *OUT_LEN.
 * CKR_OK or CKR_HOST_MEMORY. */
static CK_RV public_copy(const struct akv_secret *res, uint8_t **out,
                         size_t *out_len)
{
    *out = malloc(res->len);
    if (*out == NULL) {
        return CKR_HOST_MEMORY;
    }
    memcpy(*out, res->data, res->len);
    *out_len = res->len;
    return CKR_OK;
}

static CK_RV rest_wrap(struct akv_kv *base, const char *name,
                       const char *version, enum akv_kv_alg alg,
                       const uint8_t *in, size_t in_len, uint8_t **out,
                       size_t *out_len, char *kid_out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret res = AKV_SECRET_INIT;

    if (out == NULL || out_len == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = key_op((struct kv_rest *)base, AKV_ERRMAP_WRAP, name, version, alg, in,
                in_len, false, &res, kid_out);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = public_copy(&res, out, out_len);
out:
    akv_secret_clear(&res);
    return rv;
}

static CK_RV unwrap_op(struct akv_kv *base, const char *name,
                       const char *version, enum akv_kv_alg alg,
                       const uint8_t *in, size_t in_len, bool quiet_400,
                       struct akv_secret *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;

    if (out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = key_op((struct kv_rest *)base, AKV_ERRMAP_UNWRAP, name, version, alg,
                in, in_len, quiet_400, out, NULL);
out:
    return rv;
}

static CK_RV rest_unwrap(struct akv_kv *base, const char *name,
                         const char *version, enum akv_kv_alg alg,
                         const uint8_t *in, size_t in_len,
                         struct akv_secret *out)
{
    return unwrap_op(base, name, version, alg, in, in_len, false, out);
}

static CK_RV rest_unwrap_probe(struct akv_kv *base, const char *name,
                               const char *version, enum akv_kv_alg alg,
                               const uint8_t *in, size_t in_len,
                               struct akv_secret *out)
{
    return unwrap_op(base, name, version, alg, in, in_len, true, out);
}

static CK_RV rest_sign(struct akv_kv *base, const char *name,
                       const char *version, enum akv_kv_alg alg,
                       const uint8_t *digest, size_t digest_len, uint8_t **out,
                       size_t *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret res = AKV_SECRET_INIT;

    if (out == NULL || out_len == NULL || alg < AKV_KV_ALG_RS256
        || alg > AKV_KV_ALG_RSNULL
        || (alg == AKV_KV_ALG_RSNULL
                ? digest_len == 0 || digest_len > 512
                : digest_len != 32 && digest_len != 48 && digest_len != 64)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = key_op((struct kv_rest *)base, AKV_ERRMAP_SIGN, name, version, alg,
                digest, digest_len, false, &res, NULL);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = public_copy(&res, out, out_len);
out:
    akv_secret_clear(&res);
    return rv;
}

/* The KeyBundle of a create answer, checked by the one rule a Get Key
 * answer gets (bundle_check; any version of NAME), a refusal logged. */
static CK_RV bundle_of(struct kv_rest *kv, const char *name, const char *op,
                       const struct akv_http_resp *resp, struct akv_kv_key *k)
{
    char why[320];
    CK_RV rv = bundle_check(kv, name, NULL, resp, k, why, sizeof(why));

    if (rv != CKR_OK && why[0] != '\0') {
        AKV_LOG_ERR("key %s op %s: HTTP %ld but %s (request-id %s)", name, op,
                    resp->status, why,
                    resp->request_id[0] ? resp->request_id : "-");
    }
    return rv;
}

static CK_RV rest_create_key(struct akv_kv *base, const char *name,
                             const struct akv_kv_create *req,
                             struct akv_kv_key *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct kv_rest *kv = (struct kv_rest *)base;
    struct akv_http_resp resp;
    struct akv_kv_key k;
    struct call c;
    char url[1024];
    char log_path[256];
    char *body = NULL;

    memset(&resp, 0, sizeof(resp));
    memset(&k, 0, sizeof(k));
    if (kv == NULL || out == NULL || req == NULL || !valid_name(name)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    /* "{vault}/keys/{name}/create": the create suffix with no version. */
    if (snprintf(url, sizeof(url), "%s/keys/%s/create?api-version=%s",
                 kv->vault_url, name, kv->api_version)
        >= (int)sizeof(url)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (req->new_only) {
        /* Create Key on an existing name adds a version: a rotation the
         * caller did not ask for. A 404 is the expected answer here, so it
         * is not logged as a failure. */
        char gurl[1024];
        char glog[256];

        rv = build_url(kv, name, NULL, NULL, gurl, sizeof(gurl), glog,
                       sizeof(glog));
        if (rv != CKR_OK) {
            goto out;
        }
        c = (struct call){.op = AKV_ERRMAP_GET,
                          .name = name,
                          .method = "GET",
                          .url = gurl,
                          .log_path = glog,
                          .quiet = 404};
        rv = do_call(kv, &c, &resp);
        akv_http_resp_clear(&resp);
        if (rv == CKR_OK) {
            AKV_LOG_ERR("key %s op create: a key of that name already exists; "
                        "not adding a version to it",
                        name);
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
            goto out;
        }
        if (rv != CKR_KEY_HANDLE_INVALID) {
            goto out; /* logged */
        }
    }
    (void)snprintf(log_path, sizeof(log_path), "/keys/%s/create", name);
    rv = akv_json_build_create_key(req, &body);
    if (rv != CKR_OK) {
        goto out;
    }
    c = (struct call){.op = AKV_ERRMAP_CREATE,
                      .name = name,
                      .method = "POST",
                      .url = url,
                      .log_path = log_path,
                      .body = (const uint8_t *)body,
                      .body_len = strlen(body)};
    rv = do_call(kv, &c, &resp);
    if (rv == CKR_OK) {
        rv = bundle_of(kv, name, "create", &resp, &k);
    }
    if (rv == CKR_OK) {
        *out = k;
        memset(&k, 0, sizeof(k));
    }
out:
    free(body);
    akv_kv_key_clear(&k);
    akv_http_resp_clear(&resp);
    return rv;
}

static CK_RV rest_delete_key(struct akv_kv *base, const char *name)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct kv_rest *kv = (struct kv_rest *)base;
    struct akv_http_resp resp;
    struct call c;
    char url[1024];
    char log_path[256];

    memset(&resp, 0, sizeof(resp));
    if (kv == NULL || !valid_name(name)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = build_url(kv, name, NULL, NULL, url, sizeof(url), log_path,
                   sizeof(log_path));
    if (rv != CKR_OK) {
        goto out;
    }
    c = (struct call){.op = AKV_ERRMAP_DELETE,
                      .name = name,
                      .method = "DELETE",
                      .url = url,
                      .log_path = log_path};
    rv = do_call(kv, &c, &resp);
    if (rv == CKR_OK && kv->cache_dir != NULL) {
        /* A cached Get Key answer must not bring the key back. */
        akv_pcache_remove(kv->cache_dir, "key", url);
    }
out:
    akv_http_resp_clear(&resp);
    return rv;
}

static CK_RV rest_crypt(struct akv_kv *base, const char *name,
                        const char *version, bool decrypt, enum akv_kv_alg alg,
                        const struct akv_kv_crypt_in *in,
                        struct akv_secret *out, struct akv_kv_crypt_out *extra)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret body = AKV_SECRET_INIT;

    if (base == NULL || in == NULL || out == NULL || alg < AKV_KV_ALG_A128GCM
        || alg >= AKV_KV_ALG_COUNT) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = akv_json_build_crypt(alg, in, &body);
    if (rv != CKR_OK) {
        goto out;
    }
    /* the answer: the value, plus at most one padding block */
    rv = post_op((struct kv_rest *)base,
                 decrypt ? AKV_ERRMAP_DECRYPT : AKV_ERRMAP_ENCRYPT, name,
                 version, &body, in->probe, in->value_len + 16, out, NULL,
                 extra);
out:
    akv_secret_clear(&body);
    return rv;
}

static void rest_destroy(struct akv_kv *base)
{
    struct kv_rest *kv = (struct kv_rest *)base;

    if (kv == NULL) {
        return;
    }
    akv_auth_free(kv->auth);
    akv_http_free(kv->http);
    akv_pace_free(kv->pace);
    free(kv->cache_dir);
    free(kv->vault_url);
    free(kv->api_version);
    free(kv->label);
    (void)pthread_mutex_destroy(&kv->lock);
    free(kv);
}

static const struct akv_kv_ops rest_ops = {
    .get_key = rest_get_key,
    .wrap = rest_wrap,
    .unwrap = rest_unwrap,
    .sign = rest_sign,
    .crypt = rest_crypt,
    .destroy = rest_destroy,
    .get_certificate = rest_get_certificate,
    .create_key = rest_create_key,
    .delete_key = rest_delete_key,
    .unwrap_probe = rest_unwrap_probe,
};

/* vault_url check, repeated here because a config struct may be built by
 * hand (tests, tools) rather than by config.c; the rule itself is kvid's.
 * URL: the vault URL without trailing '/'. OUT receives it parsed. */
static CK_RV check_vault_url(const struct akv_token_config *tc, const char *url,
                             struct akv_kvid_url *out)
{
    const char *label = tc->label != NULL ? tc->label : "?";

    if (akv_kvid_url_parse(url, out) != 0 || out->path[0] != '\0') {
        AKV_LOG_ERR("token %s: vault_url %s is not https://HOST[:PORT]", label,
                    url);
        return CKR_GENERAL_ERROR;
    }
    if (out->https) {
        return CKR_OK;
    }
    if (!tc->http.allow_http_loopback
        || !akv_kvid_host_is_loopback(out->host, strlen(out->host))) {
        AKV_LOG_ERR("token %s: vault_url %s: https:// is required (http:// "
                    "only to a loopback address with "
                    "http.allow_http_loopback)",
                    label, url);
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

CK_RV akv_kv_rest_new(const struct akv_token_config *tc, struct akv_kv **out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct kv_rest *kv = NULL;
    size_t n;

    if (tc == NULL || out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (tc->vault_url == NULL) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    /* idempotent; makes the client usable even if the caller forgot */
    rv = akv_kv_global_init();
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    kv = calloc(1, sizeof(*kv));
    if (kv == NULL) {
        goto out;
    }
    if (pthread_mutex_init(&kv->lock, NULL) != 0) {
        free(kv);
        kv = NULL;
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    kv->base.ops = &rest_ops;
    kv->vault_url = strdup(tc->vault_url);
    kv->api_version = strdup(tc->api_version != NULL ? tc->api_version : "7.4");
    kv->label = strdup(tc->label != NULL ? tc->label : "");
    if (kv->vault_url == NULL || kv->api_version == NULL || kv->label == NULL) {
        goto out;
    }
    n = strlen(kv->vault_url);
    while (n > 0 && kv->vault_url[n - 1] == '/') {
        kv->vault_url[--n] = '\0';
    }
    rv = check_vault_url(tc, kv->vault_url, &kv->vault);
    if (rv != CKR_OK) {
        goto out;
    }
    kv->vault.path = NULL; /* pointed into vault_url: not needed */
    (void)snprintf(kv->scope, sizeof(kv->scope), "%s",
                   tc->scope != NULL ? tc->scope
                                     : "https://vault.azure.net/.default");
    kv->policy.retries = tc->http.retries;
    kv->policy.timeout_ms =
        tc->http.timeout_ms > 0 ? tc->http.timeout_ms : 10000;
    kv->policy.imds = false;
    kv->pace = akv_pace_new();
    kv->policy.pace = kv->pace;
    if (kv->pace == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    kv->budget_ms = tc->http.budget_ms > 0 ? tc->http.budget_ms : 30000;
    kv->verify_challenge = tc->http.verify_challenge_resource;
    kv->scheme = tc->http.allow_http_loopback ? AKV_HTTP_LOOPBACK_OK
                                              : AKV_HTTP_HTTPS_ONLY;
    rv = akv_http_new(tc->http.ca_file, &kv->http);
    if (rv != CKR_OK) {
        goto out;
    }
    akv_http_set_connect_timeout(kv->http, tc->http.connect_timeout_ms);
    akv_http_set_reuse_answer_timeout(kv->http, tc->http.reuse_answer_ms);
    rv = akv_auth_new(&tc->cred, &tc->http, kv->http, &kv->auth);
    if (rv != CKR_OK) {
        goto out;
    }
    if (tc->cache) {
        kv->cache_dir = tc->cache_dir != NULL ? strdup(tc->cache_dir)
                                              : akv_pcache_default_dir();
        kv->key_ttl_s = tc->key_refresh_s;
        akv_auth_set_cache(kv->auth, kv->cache_dir);
    }
    *out = &kv->base;
    kv = NULL;
    rv = CKR_OK;
out:
    if (kv != NULL) {
        rest_destroy(&kv->base);
    }
    return rv;
}
