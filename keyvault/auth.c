/* SPDX-License-Identifier: Apache-2.0 */
#include "auth.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/fsperm.h"
#include "../common/kvid.h"
#include "../common/log.h"
#include "../common/ossl.h"
#include "json.h"
#include "jwt.h"
#include "pcache.h"
#include "retry.h"

#define SECRET_FILE_MAX 4096
#define FED_TOKEN_MAX   16384   /* bytes */
#define FED_REREAD_MS   300000L /* 5 min */
#define IMDS_API        "2018-02-01"
#define APPSVC_API      "2019-08-01"
#define ASSERTION_TYPE  "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* The type actually used: environment resolves to one of the others. */
enum eff_type {
    EFF_IMDS,
    EFF_APP_SERVICE,
    EFF_SECRET,
    EFF_CERT,
    EFF_FEDERATED,
    EFF_NONE, /* environment credential without usable variables */
};

struct akv_auth {
    enum eff_type type;
    const char *type_name; /* for logs */
    char *client_id;
    char *object_id;
    char *resource_id;
    char *tenant;
    char *secret_file;
    char *secret_env;
    char *cert_file;
    char *fed_file;
    char *authority;
    char *endpoint;  /* IMDS endpoint or App Service IDENTITY_ENDPOINT */
    char *cache_dir; /* keyvault/pcache.h; NULL = tokens stay in memory */
    struct akv_secret identity_header; /* "X-IDENTITY-HEADER: ..." */
    enum akv_http_scheme authority_scheme;
    struct akv_http *http;
    struct akv_retry_policy policy;
    OSSL_LIB_CTX *libctx; /* akv_ossl_libctx: host openssl.cnf cannot recurse */

    /* Federated token file content; touched only by the refreshing thread
     * (refreshing == true serialises refreshes). */
    struct akv_secret fed_token;
    int64_t fed_read_ms;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* LOCKED by lock: */
    bool refreshing;
    uint64_t refresh_seq;
    CK_RV last_rv;
    char last_why[256];
    struct akv_secret header; /* "Authorization: Bearer ..." */
    char cache_scope[AKV_AUTH_SCOPE_MAX];
    char cache_tenant[AKV_AUTH_TENANT_MAX];
    int64_t refresh_at; /* wall clock s */
    int64_t expires_at; /* wall clock s; the cached token's end */
    uint64_t generation;
};

/* A cached token that expires within this many seconds is not used (it
 * could expire on the wire): a refresh must succeed first. */
#define AKV_AUTH_EXPIRY_MARGIN_S 2
/* After a failed refresh while the cached token is still valid, the token
 * keeps serving and the refresh is tried again after this many seconds
 * (azure-core's token cycler does the same: "refresh window", "retry
 * interval"); calls in between are not slowed by a failing endpoint. */
#define AKV_AUTH_REFRESH_RETRY_S 10

/* ---- challenge ------------------------------------------------------ */

static int valid_tenant(const char *s, size_t n)
{
    if (n == 0 || n >= AKV_AUTH_TENANT_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
              || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '.')) {
            return 0;
        }
    }
    return 1;
}

static void copy_param(char *dst, size_t dst_len, const char *v, size_t n)
{
    if (n >= dst_len) {
        n = dst_len - 1;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

int akv_auth_parse_challenge(const char *header, struct akv_challenge *out)
{
    const char *s = header;
    char val[512];

    if (out == NULL) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        return -1;
    }
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (strncasecmp(s, "Bearer", 6) != 0 || (s[6] != ' ' && s[6] != '\t')) {
        return -1;
    }
    s += 6;
    while (*s != '\0') {
        const char *key;
        size_t klen;
        size_t vlen = 0;

        while (*s == ' ' || *s == '\t' || *s == ',') {
            s++;
        }
        if (*s == '\0') {
            break;
        }
        key = s;
        while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
               || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-') {
            s++;
        }
        klen = (size_t)(s - key);
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (klen == 0 || *s != '=') {
            goto fail;
        }
        s++;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (*s == '"') {
            s++;
            while (*s != '\0' && *s != '"') {
                if (*s == '\\' && s[1] != '\0') {
                    s++;
                }
                if (vlen < sizeof(val) - 1) {
                    val[vlen++] = *s;
                }
                s++;
            }
            if (*s != '"') {
                goto fail;
            }
            s++;
        } else {
            while (*s != '\0' && *s != ',' && *s != ' ' && *s != '\t') {
                if (vlen < sizeof(val) - 1) {
                    val[vlen++] = *s;
                }
                s++;
            }
        }
        val[vlen] = '\0';
        if ((klen == 13 && strncasecmp(key, "authorization", 13) == 0)
            || (klen == 17 && strncasecmp(key, "authorization_uri", 17) == 0)) {
            if (out->authorization[0] == '\0') {
                copy_param(out->authorization, sizeof(out->authorization), val,
                           vlen);
            }
        } else if (klen == 8 && strncasecmp(key, "resource", 8) == 0) {
            copy_param(out->resource, sizeof(out->resource), val, vlen);
        } else if (klen == 5 && strncasecmp(key, "scope", 5) == 0) {
            /* several scopes may be space-separated; Key Vault sends one */
            copy_param(out->scope, sizeof(out->scope), val, strcspn(val, " "));
        }
    }
    if (out->authorization[0] != '\0') {
        const char *p = strstr(out->authorization, "://");
        if (p != NULL) {
            p = strchr(p + 3, '/');
        }
        if (p != NULL) {
            size_t n;
            p++;
            n = strcspn(p, "/?#");
            if (valid_tenant(p, n)) {
                copy_param(out->tenant, sizeof(out->tenant), p, n);
            }
        }
    }
    if (out->resource[0] != '\0') {
        char r[256];
        size_t n = strlen(out->resource);
        memcpy(r, out->resource, n + 1);
        while (n > 0 && r[n - 1] == '/') {
            r[--n] = '\0';
        }
        (void)snprintf(out->scope, sizeof(out->scope), "%s/.default", r);
    }
    if (strncasecmp(out->scope, "https://", 8) != 0) {
        goto fail;
    }
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

bool akv_auth_challenge_host_ok(const char *vault_url,
                                const struct akv_challenge *ch)
{
    struct akv_kvid_url vault;
    struct akv_kvid_url res;

    if (ch == NULL || akv_kvid_url_parse(vault_url, &vault) != 0) {
        return false;
    }
    /* the resource is a bare origin; a scope may end in "/.default" */
    if (akv_kvid_url_parse(ch->resource[0] != '\0' ? ch->resource : ch->scope,
                           &res)
        != 0) {
        return false;
    }
    return akv_kvid_resource_host_ok(vault.host, res.host);
}

int64_t akv_auth_refresh_at(int64_t obtained, int64_t lifetime_s)
{
    if (lifetime_s < 600) {
        return obtained + lifetime_s / 2;
    }
    return obtained + lifetime_s - 300;
}

/* ---- construction ---------------------------------------------------- */

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0') {
        return 0;
    }
    *dst = strdup(src);
    return *dst == NULL ? -1 : 0;
}

static char *strip_slashes(char *s)
{
    size_t n;

    if (s == NULL) {
        return NULL;
    }
    n = strlen(s);
    while (n > 0 && s[n - 1] == '/') {
        s[--n] = '\0';
    }
    return s;
}

/* environment credential (EnvironmentCredential + WorkloadIdentity in the
 * Azure SDKs, keyvault-protocol.md §4.6): resolved once, here. */
static int resolve_env(struct akv_auth *a)
{
    const char *tenant = secure_getenv("AZURE_TENANT_ID");
    const char *client = secure_getenv("AZURE_CLIENT_ID");
    const char *secret = secure_getenv("AZURE_CLIENT_SECRET");
    const char *cert = secure_getenv("AZURE_CLIENT_CERTIFICATE_PATH");
    const char *fed = secure_getenv("AZURE_FEDERATED_TOKEN_FILE");
    const char *authority = secure_getenv("AZURE_AUTHORITY_HOST");

    a->type = EFF_NONE;
    /* only the environment counts for this type: drop configured ids
     * (config.c already warned that they are unused) */
    free(a->tenant);
    free(a->client_id);
    free(a->secret_file);
    free(a->secret_env);
    free(a->cert_file);
    free(a->fed_file);
    a->tenant = NULL;
    a->client_id = NULL;
    a->secret_file = NULL;
    a->secret_env = NULL;
    a->cert_file = NULL;
    a->fed_file = NULL;
    if (authority != NULL && authority[0] != '\0') {
        free(a->authority);
        a->authority = strdup(authority);
        if (a->authority == NULL) {
            return -1;
        }
        strip_slashes(a->authority);
    }
    if (tenant == NULL || tenant[0] == '\0' || client == NULL
        || client[0] == '\0') {
        return 0;
    }
    if (!valid_tenant(tenant, strlen(tenant))) {
        AKV_LOG_ERR("environment credential: AZURE_TENANT_ID is not a tenant "
                    "id (GUID or domain name)");
        return 0;
    }
    if (dup_opt(&a->tenant, tenant) != 0
        || dup_opt(&a->client_id, client) != 0) {
        return -1;
    }
    if (secret != NULL && secret[0] != '\0') {
        a->type = EFF_SECRET;
        return dup_opt(&a->secret_env, "AZURE_CLIENT_SECRET");
    }
    if (cert != NULL && cert[0] != '\0') {
        a->type = EFF_CERT;
        return dup_opt(&a->cert_file, cert);
    }
    if (fed != NULL && fed[0] != '\0') {
        a->type = EFF_FEDERATED;
        return dup_opt(&a->fed_file, fed);
    }
    return 0;
}

CK_RV akv_auth_new(const struct akv_cred_config *cred,
                   const struct akv_http_config *hc, struct akv_http *http,
                   struct akv_auth **out)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_auth *a = NULL;
    pthread_condattr_t ca;
    int bad = 0;

    if (cred == NULL || hc == NULL || http == NULL || out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        goto out;
    }
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        a = NULL;
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    if (pthread_condattr_init(&ca) != 0) {
        (void)pthread_mutex_destroy(&a->lock);
        free(a);
        a = NULL;
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    /* waiters use monotonic deadlines */
    (void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&a->cond, &ca) != 0) {
        (void)pthread_condattr_destroy(&ca);
        (void)pthread_mutex_destroy(&a->lock);
        free(a);
        a = NULL;
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    (void)pthread_condattr_destroy(&ca);
    a->http = http;
    a->policy.retries = hc->retries;
    a->policy.timeout_ms = hc->timeout_ms;
    a->authority_scheme =
        hc->allow_http_loopback ? AKV_HTTP_LOOPBACK_OK : AKV_HTTP_HTTPS_ONLY;
    a->last_rv = CKR_OK;
    bad |= dup_opt(&a->client_id, cred->client_id);
    bad |= dup_opt(&a->object_id, cred->object_id);
    bad |= dup_opt(&a->resource_id, cred->resource_id);
    bad |= dup_opt(&a->tenant, cred->tenant_id);
    bad |= dup_opt(&a->secret_file, cred->client_secret_file);
    bad |= dup_opt(&a->secret_env, cred->client_secret_env);
    bad |= dup_opt(&a->cert_file, cred->certificate_file);
    bad |= dup_opt(&a->fed_file, cred->federated_token_file);
    bad |= dup_opt(&a->authority, cred->authority_host != NULL
                                      ? cred->authority_host
                                      : "https://login.microsoftonline.com");
    if (bad) {
        goto out;
    }
    strip_slashes(a->authority);

    switch (cred->type) {
    case AKV_CRED_MANAGED_IDENTITY: {
        /* App Service / Functions / Container Apps publish their endpoint
         * in the environment; an explicit imds_endpoint wins. */
        const char *ie = secure_getenv("IDENTITY_ENDPOINT");
        const char *ih = secure_getenv("IDENTITY_HEADER");
        a->type_name = "managed_identity";
        if (cred->imds_endpoint == NULL && ie != NULL && ie[0] != '\0'
            && ih != NULL && ih[0] != '\0') {
            /* The same rule as imds_endpoint (config.h): App Service,
             * Functions, Container Apps and Arc publish a loopback URL. */
            if (!akv_config_identity_host_ok(ie, cred->allow_imds_host)) {
                AKV_LOG_ERR("managed_identity: IDENTITY_ENDPOINT %.200s is "
                            "not a loopback address (the token would come "
                            "back over plain HTTP from another host); name "
                            "its host in credential.allow_imds_host if it "
                            "is really yours",
                            ie);
                rv = CKR_GENERAL_ERROR;
                goto out;
            }
            a->type = EFF_APP_SERVICE;
            if (dup_opt(&a->endpoint, ie) != 0
                || akv_secret_append(&a->identity_header,
                                     "X-IDENTITY-HEADER: ", 19, 0)
                       != 0
                || akv_secret_append(&a->identity_header, ih, strlen(ih), 0)
                       != 0) {
                goto out;
            }
        } else {
            a->type = EFF_IMDS;
            if (dup_opt(&a->endpoint,
                        cred->imds_endpoint != NULL
                            ? cred->imds_endpoint
                            : "http://169.254.169.254/metadata/identity/"
                              "oauth2/token")
                != 0) {
                goto out;
            }
        }
        a->policy.imds = true;
        break;
    }
    case AKV_CRED_CLIENT_SECRET:
        a->type_name = "client_secret";
        a->type = EFF_SECRET;
        break;
    case AKV_CRED_CLIENT_CERTIFICATE:
        a->type_name = "client_certificate";
        a->type = EFF_CERT;
        break;
    case AKV_CRED_WORKLOAD_IDENTITY:
        a->type_name = "workload_identity";
        a->type = EFF_FEDERATED;
        break;
    case AKV_CRED_ENVIRONMENT:
        a->type_name = "environment";
        if (resolve_env(a) != 0) {
            goto out;
        }
        break;
    default:
        rv = CKR_GENERAL_ERROR;
        AKV_LOG_ERR("unknown credential type %d", (int)cred->type);
        goto out;
    }
    if (a->type == EFF_CERT) {
        a->libctx = akv_ossl_libctx();
        if (a->libctx == NULL) {
            goto out;
        }
    }
    *out = a;
    a = NULL;
    rv = CKR_OK;
out:
    akv_auth_free(a);
    return rv;
}

void akv_auth_free(struct akv_auth *a)
{
    if (a == NULL) {
        return;
    }
    free(a->client_id);
    free(a->object_id);
    free(a->resource_id);
    free(a->tenant);
    free(a->secret_file);
    free(a->secret_env);
    free(a->cert_file);
    free(a->fed_file);
    free(a->authority);
    free(a->endpoint);
    free(a->cache_dir);
    akv_secret_clear(&a->identity_header);
    akv_secret_clear(&a->fed_token);
    akv_secret_clear(&a->header);
    (void)pthread_cond_destroy(&a->cond);
    (void)pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- token requests -------------------------------------------------- */

/* Reads a small file into OUT with trailing whitespace trimmed. PRIVATE:
 * a secret: the StrictModes rules of fsperm.h (owner, modes, folders, no
 * symlink) and not world-readable. Not PRIVATE (the federated token file):
 * opened as named, because Kubernetes projects it as a symlink into a
 * ..data folder it swaps atomically. */
static CK_RV read_small_file(const char *what, const char *path, size_t max,
                             bool private_file, struct akv_secret *out,
                             char *why, size_t why_len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct stat st;
    int fd = -1;
    char ebuf[512];

    akv_secret_clear(out);
    if (private_file) {
        fd = akv_fsperm_open(path, O_RDONLY, 0, ebuf, sizeof(ebuf));
        if (fd < 0) {
            akv_log_fmt(why, why_len, "%s refused: %s", what, ebuf);
            goto out;
        }
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    }
    if (fd < 0) {
        akv_log_fmt(why, why_len, "%s %s: %s", what, path,
                    strerror_r(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        akv_log_fmt(why, why_len, "%s %s: not a regular file", what, path);
        goto out;
    }
    if (private_file && (st.st_mode & S_IROTH) != 0) {
        akv_log_fmt(why, why_len,
                    "%s %s is world-readable (mode %04o); refusing to use it",
                    what, path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size <= 0 || (size_t)st.st_size > max) {
        akv_log_fmt(why, why_len, "%s %s: size must be 1..%zu bytes", what,
                    path, max);
        goto out;
    }
    if (akv_secret_read_fd(out, fd, (size_t)st.st_size) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    while (out->len > 0
           && (out->data[out->len - 1] == '\n'
               || out->data[out->len - 1] == '\r'
               || out->data[out->len - 1] == ' '
               || out->data[out->len - 1] == '\t')) {
        out->len--;
    }
    out->data[out->len] = '\0';
    if (out->len == 0) {
        akv_log_fmt(why, why_len, "%s %s is empty", what, path);
        akv_secret_clear(out);
        goto out;
    }
    rv = CKR_OK;
out:
    if (fd >= 0) {
        (void)close(fd);
    }
    return rv;
}

/* Appends "[&]key=<urlencoded value>" to a form body held in a secret;
 * curl_easy_escape's copy is wiped before it is freed. */
static int form_add(struct akv_secret *body, const char *key, const char *val,
                    size_t val_len)
{
    char *esc;
    int rc = -1;

    if (val_len > 0x7fffffff) {
        return -1;
    }
    esc = curl_easy_escape(NULL, val, (int)val_len);
    if (esc == NULL) {
        return -1;
    }
    if ((body->len == 0 || akv_secret_append(body, "&", 1, 0) == 0)
        && akv_secret_append(body, key, strlen(key), 0) == 0
        && akv_secret_append(body, "=", 1, 0) == 0
        && akv_secret_append(body, esc, strlen(esc), 0) == 0) {
        rc = 0;
    }
    OPENSSL_cleanse(esc, strlen(esc));
    curl_free(esc);
    return rc;
}

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

/*
 * Sends a token request and parses the answer. Failures leave a one-line
 * reason naming the endpoint, the HTTP status and the identity platform's
 * error (never the body or a secret).
 */
static CK_RV token_call(struct akv_auth *a, struct akv_http_req *req,
                        int64_t deadline_ms, struct akv_secret *token,
                        int64_t *lifetime, char *why, size_t why_len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct akv_http_resp resp;
    struct akv_json_error err;
    int64_t expires_at = 0;
    int attempts = 0;

    memset(&resp, 0, sizeof(resp));
    rv = akv_retry_perform(a->http, req, &a->policy, deadline_ms, &resp,
                           &attempts);
    if (rv == CKR_HOST_MEMORY) {
        goto out;
    }
    if (rv != CKR_OK) {
        char origin[256];
        akv_http_origin(req->url, origin, sizeof(origin));
        akv_log_fmt(why, why_len,
                    "%s credential: %s%s%s: failed after %d "
                    "attempt(s): %s",
                    a->type_name, origin,
                    req->log_path != NULL && req->log_path[0] == '/' ? "" : " ",
                    req->log_path != NULL ? req->log_path : "", attempts,
                    rv == CKR_ARGUMENTS_BAD
                        ? "URL refused (https only; http only to loopback with "
                          "http.allow_http_loopback)"
                        : akv_http_strerror(resp.curl_code));
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (resp.status != 200) {
        (void)akv_json_parse_error((const char *)resp.body.data, resp.body.len,
                                   &err);
        akv_log_fmt(why, why_len, "%s credential: %s: HTTP %ld %s%s%s",
                    a->type_name, req->log_path, resp.status, err.code,
                    err.message[0] != '\0' ? ": " : "", err.message);
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = akv_json_parse_token((const char *)resp.body.data, resp.body.len,
                              wall_now(), token, &expires_at, lifetime);
    if (rv != CKR_OK) {
        akv_log_fmt(why, why_len, "%s credential: %s: malformed token response",
                    a->type_name, req->log_path);
    }
out:
    akv_http_resp_clear(&resp);
    return rv;
}

/* "https://vault.azure.net/.default" -> "https://vault.azure.net" (the
 * v1 resource managed-identity endpoints want: no trailing slash, §4.3). */
static int scope_to_resource(const char *scope, char *out, size_t out_len)
{
    size_t n = strlen(scope);

    if (n >= 9 && strcmp(scope + n - 9, "/.default") == 0) {
        n -= 9;
    }
    while (n > 0 && scope[n - 1] == '/') {
        n--;
    }
    if (n == 0 || n >= out_len) {
        return -1;
    }
    memcpy(out, scope, n);
    out[n] = '\0';
    return 0;
}

static CK_RV fetch_managed(struct akv_auth *a, const char *scope,
                           int64_t deadline_ms, struct akv_secret *token,
                           int64_t *lifetime, char *why, size_t why_len)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_secret url = AKV_SECRET_INIT;
    struct akv_secret query = AKV_SECRET_INIT;
    static const char *const imds_headers[] = {"Metadata: true", NULL};
    struct akv_http_req req;
    char resource[AKV_AUTH_SCOPE_MAX];
    const char *id_key = NULL;
    const char *id_val = NULL;
    bool appsvc = a->type == EFF_APP_SERVICE;

    if (scope_to_resource(scope, resource, sizeof(resource)) != 0) {
        rv = CKR_DEVICE_ERROR;
        akv_log_fmt(why, why_len, "managed_identity: bad scope");
        goto out;
    }
    if (a->client_id != NULL) {
        id_key = "client_id";
        id_val = a->client_id;
    } else if (a->object_id != NULL) {
        id_key = appsvc ? "principal_id" : "object_id";
        id_val = a->object_id;
    } else if (a->resource_id != NULL) {
        /* note the different names: IMDS msi_res_id, App Service mi_res_id */
        id_key = appsvc ? "mi_res_id" : "msi_res_id";
        id_val = a->resource_id;
    }
    if (form_add(&query, "api-version", appsvc ? APPSVC_API : IMDS_API,
                 strlen(appsvc ? APPSVC_API : IMDS_API))
            != 0
        || form_add(&query, "resource", resource, strlen(resource)) != 0
        || (id_key != NULL
            && form_add(&query, id_key, id_val, strlen(id_val)) != 0)
        || akv_secret_append(&url, a->endpoint, strlen(a->endpoint), 0) != 0
        || akv_secret_append(&url, "?", 1, 0) != 0
        || akv_secret_append(&url, query.data, query.len, 0) != 0) {
        goto out;
    }
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = (const char *)url.data;
    req.log_path =
        appsvc ? "managed identity (App Service)" : "managed identity (IMDS)";
    req.scheme = AKV_HTTP_PLAIN_OK; /* IMDS is plain HTTP by design */
    if (appsvc) {
        req.secret_header = &a->identity_header;
    } else {
        req.headers = imds_headers;
    }
    rv = token_call(a, &req, deadline_ms, token, lifetime, why, why_len);
out:
    akv_secret_clear(&query);
    akv_secret_clear(&url);
    return rv;
}

/* Entra ID v2 token endpoint, client credentials grant. */
static CK_RV fetch_entra(struct akv_auth *a, const char *scope,
                         const char *tenant, int64_t deadline_ms,
                         struct akv_secret *token, int64_t *lifetime, char *why,
                         size_t why_len)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_secret body = AKV_SECRET_INIT;
    struct akv_secret cred = AKV_SECRET_INIT;
    struct akv_http_req req;
    char url[768];
    EVP_PKEY *key = NULL;
    uint8_t x5t[20];
    char detail[200] = "";
    int n;

    if (tenant == NULL || tenant[0] == '\0') {
        rv = CKR_DEVICE_ERROR;
        akv_log_fmt(why, why_len, "%s credential: no tenant (set tenant_id)",
                    a->type_name);
        goto out;
    }
    n = snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", a->authority,
                 tenant);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        rv = CKR_DEVICE_ERROR;
        akv_log_fmt(why, why_len, "%s credential: authority URL too long",
                    a->type_name);
        goto out;
    }
    if (form_add(&body, "grant_type", "client_credentials", 18) != 0
        || form_add(&body, "client_id", a->client_id, strlen(a->client_id)) != 0
        || form_add(&body, "scope", scope, strlen(scope)) != 0) {
        goto out;
    }
    switch (a->type) {
    case EFF_SECRET:
        if (a->secret_file != NULL) {
            rv = read_small_file("client_secret_file", a->secret_file,
                                 SECRET_FILE_MAX, true, &cred, why, why_len);
            if (rv != CKR_OK) {
                goto out;
            }
        } else {
            const char *v = secure_getenv(a->secret_env);
            if (v == NULL || v[0] == '\0') {
                rv = CKR_DEVICE_ERROR;
                akv_log_fmt(why, why_len,
                            "%s credential: environment variable %s is not set",
                            a->type_name, a->secret_env);
                goto out;
            }
            if (akv_secret_set(&cred, v, strlen(v)) != 0) {
                rv = CKR_HOST_MEMORY;
                goto out;
            }
        }
        rv = CKR_HOST_MEMORY;
        if (form_add(&body, "client_secret", (const char *)cred.data, cred.len)
            != 0) {
            goto out;
        }
        break;
    case EFF_CERT:
        /* reloaded on every token request (about hourly): a renewed
         * certificate is picked up without a restart */
        rv = akv_jwt_load_pem(a->libctx, a->cert_file, &key, x5t, detail,
                              sizeof(detail));
        if (rv != CKR_OK) {
            akv_log_fmt(why, why_len, "%s credential: %s", a->type_name,
                        detail);
            goto out;
        }
        rv = akv_jwt_assertion(a->libctx, key, x5t, a->client_id, url,
                               wall_now(), &cred);
        if (rv != CKR_OK) {
            akv_log_fmt(why, why_len,
                        "%s credential: cannot sign the assertion",
                        a->type_name);
            goto out;
        }
        rv = CKR_HOST_MEMORY;
        if (form_add(&body, "client_assertion_type", ASSERTION_TYPE,
                     strlen(ASSERTION_TYPE))
                != 0
            || form_add(&body, "client_assertion", (const char *)cred.data,
                        cred.len)
                   != 0) {
            goto out;
        }
        break;
    case EFF_FEDERATED: {
        int64_t now = akv_retry_now_ms();
        /* the kubelet rotates the projected token; re-read it at most
         * every 5 minutes (as the Azure SDKs do) */
        if (a->fed_token.len == 0 || now - a->fed_read_ms >= FED_REREAD_MS) {
            rv = read_small_file("federated_token_file", a->fed_file,
                                 FED_TOKEN_MAX, false, &a->fed_token, why,
                                 why_len);
            if (rv != CKR_OK) {
                goto out;
            }
            a->fed_read_ms = now;
        }
        rv = CKR_HOST_MEMORY;
        if (form_add(&body, "client_assertion_type", ASSERTION_TYPE,
                     strlen(ASSERTION_TYPE))
                != 0
            || form_add(&body, "client_assertion",
                        (const char *)a->fed_token.data, a->fed_token.len)
                   != 0) {
            goto out;
        }
        break;
    }
    default:
        rv = CKR_DEVICE_ERROR;
        akv_log_fmt(why, why_len, "%s credential: not usable", a->type_name);
        goto out;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.log_path = "token endpoint /oauth2/v2.0/token";
    req.body = body.data;
    req.body_len = body.len;
    req.content_type = "application/x-www-form-urlencoded";
    req.scheme = a->authority_scheme;
    rv = token_call(a, &req, deadline_ms, token, lifetime, why, why_len);
out:
    EVP_PKEY_free(key);
    akv_secret_clear(&cred);
    akv_secret_clear(&body);
    return rv;
}

static CK_RV fetch(struct akv_auth *a, const char *scope, const char *tenant,
                   int64_t deadline_ms, struct akv_secret *token,
                   int64_t *lifetime, char *why, size_t why_len)
{
    switch (a->type) {
    case EFF_IMDS:
    case EFF_APP_SERVICE:
        return fetch_managed(a, scope, deadline_ms, token, lifetime, why,
                             why_len);
    case EFF_SECRET:
    case EFF_CERT:
    case EFF_FEDERATED:
        return fetch_entra(a, scope, tenant, deadline_ms, token, lifetime, why,
                           why_len);
    case EFF_NONE:
        break;
    }
    akv_log_fmt(
        why, why_len,
        "environment credential: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
        "one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, "
        "AZURE_FEDERATED_TOKEN_FILE");
    return CKR_DEVICE_ERROR;
}

/* ---- cache ------------------------------------------------------------- */

/* The identity a token belongs to, as the cross-process cache's key: the
 * credential type and ids, the tenant, the endpoint it came from, the
 * scope. Never a secret. */
static int disk_desc(const struct akv_auth *a, const char *scope,
                     const char *tenant, char *out, size_t len)
{
    int n = snprintf(out, len, "token\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s",
                     a->type_name, a->client_id ? a->client_id : "",
                     a->object_id ? a->object_id : "",
                     a->resource_id ? a->resource_id : "", tenant,
                     a->authority ? a->authority : "",
                     a->endpoint ? a->endpoint : "", scope);

    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* A token a previous process of this user obtained for the same identity
 * and scope, still before its refresh time. Entry content:
 * "<lifetime s>\n<token>". Returns 0 with TOKEN, OBTAINED and LIFETIME
 * filled, -1 otherwise. */
static int disk_load(const struct akv_auth *a, const char *scope,
                     const char *tenant, struct akv_secret *token,
                     int64_t *obtained, int64_t *lifetime)
{
    struct akv_secret entry = AKV_SECRET_INIT;
    char desc[2048];
    int64_t stamp = 0;
    long long life = 0;
    const char *nl = NULL;
    const char *tok = NULL;
    size_t tok_len = 0;
    int rc = -1;

    if (a->cache_dir == NULL || disk_desc(a, scope, tenant, desc, sizeof(desc))
        || akv_pcache_load(a->cache_dir, "token", desc, &entry, &stamp) != 0) {
        goto out;
    }
    nl = memchr(entry.data, '\n', entry.len);
    if (nl == NULL || nl == (const char *)entry.data
        || (size_t)(nl - (const char *)entry.data) > 10
        || sscanf((const char *)entry.data, "%10lld", &life) != 1 || life <= 0
        || life > 86400LL * 30 || stamp > wall_now()
        || wall_now() >= akv_auth_refresh_at(stamp, life)) {
        goto out;
    }
    /* The network's rule (an entry is checked like an Entra answer): a
     * token with CR/LF, space or control bytes would split the
     * Authorization header. */
    tok = nl + 1;
    tok_len = entry.len - (size_t)(tok - (const char *)entry.data);
    if (!akv_json_token_ok(tok, tok_len)
        || akv_secret_set(token, tok, tok_len) != 0) {
        goto out;
    }
    *obtained = stamp;
    *lifetime = life;
    rc = token->len > 0 ? 0 : -1;
out:
    akv_secret_clear(&entry);
    return rc;
}

static void disk_store(const struct akv_auth *a, const char *scope,
                       const char *tenant, const struct akv_secret *token,
                       int64_t obtained, int64_t lifetime)
{
    struct akv_secret entry = AKV_SECRET_INIT;
    char desc[2048];
    char life[24];
    int n;

    if (a->cache_dir == NULL || disk_desc(a, scope, tenant, desc, sizeof(desc))
        || lifetime <= 0) {
        return;
    }
    n = snprintf(life, sizeof(life), "%lld\n", (long long)lifetime);
    if (n > 0 && akv_secret_append(&entry, life, (size_t)n, 0) == 0
        && akv_secret_append(&entry, token->data, token->len, 0) == 0) {
        (void)akv_pcache_store(a->cache_dir, "token", desc, entry.data,
                               entry.len, obtained);
    }
    akv_secret_clear(&entry);
}

void akv_auth_set_cache(struct akv_auth *a, const char *dir)
{
    if (a != NULL) {
        free(a->cache_dir);
        a->cache_dir = dir != NULL ? strdup(dir) : NULL;
    }
}

/* LOCKED: a->lock held. */
static bool cache_usable_locked(const struct akv_auth *a, const char *scope,
                                const char *tenant, uint64_t stale)
{
    return a->header.len > 0 && a->generation != stale
           && strcmp(a->cache_scope, scope) == 0
           && strcmp(a->cache_tenant, tenant) == 0
           && wall_now() < a->refresh_at;
}

/* LOCKED: a->lock held. The cached token for SCOPE/TENANT is not yet
 * expired (its refresh may be due) and the service has not refused it. */
static bool cache_valid_locked(const struct akv_auth *a, const char *scope,
                               const char *tenant, uint64_t stale)
{
    return a->header.len > 0 && a->generation != stale
           && strcmp(a->cache_scope, scope) == 0
           && strcmp(a->cache_tenant, tenant) == 0
           && wall_now() < a->expires_at - AKV_AUTH_EXPIRY_MARGIN_S;
}

static void deadline_ts(int64_t deadline_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(deadline_ms / 1000);
    ts->tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
}

CK_RV akv_auth_get_header(struct akv_auth *a, const char *scope,
                          const char *tenant, uint64_t stale,
                          int64_t deadline_ms, struct akv_secret *header,
                          uint64_t *generation, char *why, size_t why_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret token = AKV_SECRET_INIT;
    struct akv_secret fresh = AKV_SECRET_INIT;
    const char *eff_tenant;
    int64_t lifetime = 0;
    int64_t obtained;
    int64_t refresh_deadline;
    bool have_valid;
    char local_why[256] = "";
    bool locked = false;

    if (a == NULL || scope == NULL || header == NULL || generation == NULL
        || strlen(scope) >= AKV_AUTH_SCOPE_MAX) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    /* the configured tenant wins; a challenge can only fill a gap */
    eff_tenant = a->tenant != NULL ? a->tenant : (tenant != NULL ? tenant : "");
    /* warn only when a challenge just arrived (stale != 0), not on every
     * later call that passes the remembered challenge tenant */
    if (stale != 0 && a->tenant != NULL && tenant != NULL && tenant[0] != '\0'
        && strcasecmp(tenant, a->tenant) != 0) {
        AKV_LOG_WARN("challenge names tenant %s but the credential is for "
                     "tenant %s; keeping %s",
                     tenant, a->tenant, a->tenant);
    }
    if (strlen(eff_tenant) >= AKV_AUTH_TENANT_MAX) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }

    pthread_mutex_lock(&a->lock);
    locked = true;
    for (;;) {
        uint64_t seq;
        struct timespec ts;

        if (cache_usable_locked(a, scope, eff_tenant, stale)) {
            rv = akv_secret_set(header, a->header.data, a->header.len) == 0
                     ? CKR_OK
                     : CKR_HOST_MEMORY;
            *generation = a->generation;
            goto out;
        }
        if (!a->refreshing) {
            break;
        }
        if (cache_valid_locked(a, scope, eff_tenant, stale)) {
            /* another thread refreshes; the valid token serves meanwhile */
            rv = akv_secret_set(header, a->header.data, a->header.len) == 0
                     ? CKR_OK
                     : CKR_HOST_MEMORY;
            *generation = a->generation;
            goto out;
        }
        /* single flight: wait for the refresher, not on the network */
        seq = a->refresh_seq;
        deadline_ts(deadline_ms, &ts);
        while (a->refreshing && akv_retry_now_ms() < deadline_ms) {
            (void)pthread_cond_timedwait(&a->cond, &a->lock, &ts);
        }
        if (a->refreshing) {
            rv = CKR_DEVICE_ERROR;
            akv_log_fmt(why, why_len,
                        "%s credential: timed out waiting for a "
                        "token refresh by another thread",
                        a->type_name);
            goto out;
        }
        if (a->refresh_seq != seq && a->last_rv != CKR_OK) {
            /* the refresh we waited for failed: fail fast with its reason
             * instead of spending our budget on the same failure */
            rv = a->last_rv;
            akv_log_fmt(why, why_len, "%s", a->last_why);
            goto out;
        }
    }
    have_valid = cache_valid_locked(a, scope, eff_tenant, stale);
    a->refreshing = true;
    pthread_mutex_unlock(&a->lock);
    /* kept true to the lock state for any later goto out */
    locked = false; // NOLINT(clang-analyzer-deadcode.DeadStores)

    /* UNLOCKED: the cross-process cache, then the network. With a valid
     * token in hand the refresh may use at most half of the time left, so
     * a slow identity endpoint still leaves the call the other half. */
    refresh_deadline = deadline_ms;
    if (have_valid) {
        int64_t left = deadline_ms - akv_retry_now_ms();

        refresh_deadline = deadline_ms - (left > 0 ? left / 2 : 0);
    }
    obtained = wall_now();
    if (stale != 0
        || disk_load(a, scope, eff_tenant, &token, &obtained, &lifetime) != 0) {
        obtained = wall_now();
        rv = fetch(a, scope, eff_tenant, refresh_deadline, &token, &lifetime,
                   local_why, sizeof(local_why));
        if (rv == CKR_OK) {
            disk_store(a, scope, eff_tenant, &token, obtained, lifetime);
        }
    } else {
        rv = CKR_OK;
        AKV_LOG_DEBUG("%s credential: token for %s from the cache %s",
                      a->type_name, scope, a->cache_dir);
    }
    if (rv == CKR_OK) {
        if (akv_secret_append(&fresh, "Authorization: Bearer ", 22, 0) != 0
            || akv_secret_append(&fresh, token.data, token.len, 0) != 0) {
            rv = CKR_HOST_MEMORY;
        }
    }

    pthread_mutex_lock(&a->lock);
    locked = true;
    if (rv == CKR_OK) {
        akv_secret_clear(&a->header);
        a->header = fresh;
        fresh.data = NULL;
        fresh.len = 0;
        fresh.cap = 0;
        (void)snprintf(a->cache_scope, sizeof(a->cache_scope), "%s", scope);
        (void)snprintf(a->cache_tenant, sizeof(a->cache_tenant), "%s",
                       eff_tenant);
        a->refresh_at = akv_auth_refresh_at(obtained, lifetime);
        a->expires_at = obtained + lifetime;
        a->generation++;
        *generation = a->generation;
        if (akv_secret_set(header, a->header.data, a->header.len) != 0) {
            rv = CKR_HOST_MEMORY;
        }
        AKV_LOG_DEBUG("%s credential: new token for %s, lifetime %lld s",
                      a->type_name, scope, (long long)lifetime);
    } else if (rv != CKR_HOST_MEMORY
               && cache_valid_locked(a, scope, eff_tenant, stale)) {
        /* The refresh failed but the token it was to replace is still
         * valid: use it, and try again later rather than fail the call. */
        int64_t now = wall_now();
        int64_t retry = now + AKV_AUTH_REFRESH_RETRY_S;
        int64_t last = a->expires_at - AKV_AUTH_EXPIRY_MARGIN_S;

        a->refresh_at = retry < last ? retry : last;
        AKV_LOG_WARN("%s; using the cached token (valid %lld s more), "
                     "refresh retried in %lld s",
                     local_why, (long long)(a->expires_at - now),
                     (long long)(a->refresh_at - now));
        local_why[0] = '\0';
        *generation = a->generation;
        rv = akv_secret_set(header, a->header.data, a->header.len) == 0
                 ? CKR_OK
                 : CKR_HOST_MEMORY;
    }
    a->last_rv = rv;
    (void)snprintf(a->last_why, sizeof(a->last_why), "%s", local_why);
    a->refresh_seq++;
    a->refreshing = false;
    (void)pthread_cond_broadcast(&a->cond);
    akv_log_fmt(why, why_len, "%s", local_why);
out:
    if (locked) {
        pthread_mutex_unlock(&a->lock);
    }
    akv_secret_clear(&token);
    akv_secret_clear(&fresh);
    if (rv != CKR_OK && header != NULL) {
        akv_secret_clear(header);
    }
    return rv;
}
