/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration parser. The schema is documented in conf/README.md; every
 * rejection names the file, the JSON path and the problem so that an
 * operator can fix it from the one log line C_Initialize leaves.
 * Unknown keys are warned about (forward compatibility), never fatal;
 * duplicate keys in one object and duplicate token labels are fatal.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsperm.h"
#include "kvid.h"
#include "log.h"

#define CONFIG_MAX_BYTES   1048576 /* 1 MiB */
#define LABEL_MAX          32
#define DEFAULT_PATH       "/etc/akv-pkcs11/config.json"
#define DEFAULT_AUTHORITY  "https://login.microsoftonline.com"
#define DEFAULT_API        "7.4"
#define DEFAULT_SCOPE      "https://vault.azure.net/.default"
#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_BUDGET_MS  30000L
#define DEFAULT_RETRIES    4

/* A SYN that is not answered within this is not answered at all. */
#define DEFAULT_CONNECT_TIMEOUT_MS 3000L
/* Key Vault answers in tens of ms; 2 s without one byte on a connection
 * that was idle in the pool means a dead connection far more often than a
 * slow vault (and resending a slow request costs one extra call only). */
#define DEFAULT_REUSE_ANSWER_MS 2000L

struct ctx {
    const char *name; /* file name for messages */
    char *err;
    size_t err_len;
    int failed;
    struct akv_config *cfg; /* receives warnings once allocated */
};

/* Keeps a warning for the caller to log after the log level from this very
 * file is in force (logging it now would go nowhere: the level is still
 * the default ERROR). */
static void __attribute__((format(printf, 2, 3)))
warn(struct ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    char **w;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    AKV_LOG_DEBUG("%s", msg);
    if (c->cfg == NULL || c->cfg->n_warnings >= AKV_CONFIG_MAX_WARNINGS) {
        return;
    }
    w = realloc(c->cfg->warnings,
                (c->cfg->n_warnings + 1) * sizeof(*c->cfg->warnings));
    if (w == NULL) {
        return;
    }
    c->cfg->warnings = w;
    w[c->cfg->n_warnings] = strdup(msg);
    if (w[c->cfg->n_warnings] != NULL) {
        c->cfg->n_warnings++;
    }
}

/* Records the first error only: later ones are usually consequences. */
static void __attribute__((format(printf, 3, 4)))
fail(struct ctx *c, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (c->failed) {
        return;
    }
    c->failed = 1;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->err != NULL && c->err_len > 0) {
        if (path != NULL && path[0] != '\0') {
            (void)snprintf(c->err, c->err_len, "%s: %s: %s", c->name, path,
                           msg);
        } else {
            (void)snprintf(c->err, c->err_len, "%s: %s", c->name, msg);
        }
    }
}

static void join(char *out, size_t out_len, const char *base, const char *key)
{
    if (base == NULL || base[0] == '\0') {
        (void)snprintf(out, out_len, "%s", key);
    } else {
        (void)snprintf(out, out_len, "%s.%s", base, key);
    }
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        return "string";
    }
    if (cJSON_IsNumber(v)) {
        return "number";
    }
    if (cJSON_IsBool(v)) {
        return "boolean";
    }
    if (cJSON_IsNull(v)) {
        return "null";
    }
    if (cJSON_IsArray(v)) {
        return "array";
    }
    if (cJSON_IsObject(v)) {
        return "object";
    }
    return "invalid value";
}

/*
 * Warns about unknown keys and fails on a key given twice (cJSON keeps both
 * and lookups would silently use the first). KNOWN is NULL-terminated.
 */
static void check_keys(struct ctx *c, const cJSON *obj, const char *path,
                       const char *const *known)
{
    const cJSON *it;
    int members = 0;

    /* bounds the quadratic duplicate check below; real objects have < 20 */
    cJSON_ArrayForEach(it, obj)
    {
        members++;
    }
    if (members > 64) {
        fail(c, path, "too many members (%d, at most 64)", members);
        return;
    }

    cJSON_ArrayForEach(it, obj)
    {
        int found = 0;
        const cJSON *prev;
        char p[256];

        join(p, sizeof(p), path, it->string != NULL ? it->string : "?");
        for (prev = obj->child; prev != NULL && prev != it; prev = prev->next) {
            if (prev->string != NULL && it->string != NULL
                && strcmp(prev->string, it->string) == 0) {
                fail(c, p, "duplicate key");
                return;
            }
        }
        for (size_t i = 0; known[i] != NULL; i++) {
            if (it->string != NULL && strcmp(it->string, known[i]) == 0) {
                found = 1;
                break;
            }
        }
        if (!found) {
            warn(c, "%s: %s: unknown key ignored", c->name, p);
        }
    }
}

/*
 * Optional string: absent or null leaves *out NULL. Empty strings are
 * rejected (they are always a mistake in this schema).
 */
static void get_str(struct ctx *c, const cJSON *obj, const char *path,
                    const char *key, int required, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[256];

    join(p, sizeof(p), path, key);
    if (c->failed) {
        return;
    }
    if (v == NULL || cJSON_IsNull(v)) {
        if (required) {
            fail(c, p, "missing (required string)");
        }
        return;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        fail(c, p, "expected a string, got %s", type_name(v));
        return;
    }
    if (v->valuestring[0] == '\0') {
        fail(c, p, "must not be empty");
        return;
    }
    if (strlen(v->valuestring) > 4096) {
        fail(c, p, "too long (more than 4096 bytes)");
        return;
    }
    *out = strdup(v->valuestring);
    if (*out == NULL) {
        fail(c, p, "out of memory");
    }
}

static void get_long(struct ctx *c, const cJSON *obj, const char *path,
                     const char *key, long min, long max, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[256];
    double d;

    join(p, sizeof(p), path, key);
    if (c->failed || v == NULL || cJSON_IsNull(v)) {
        return;
    }
    if (!cJSON_IsNumber(v)) {
        fail(c, p, "expected an integer, got %s", type_name(v));
        return;
    }
    d = v->valuedouble;
    /* range first: the integral test casts, which needs a bounded value */
    if (!isfinite(d) || d < (double)min || d > (double)max) {
        fail(c, p, "out of range (%ld..%ld)", min, max);
        return;
    }
    if (d != (double)(long)d) {
        fail(c, p, "expected an integer");
        return;
    }
    *out = (long)d;
}

static void get_bool(struct ctx *c, const cJSON *obj, const char *path,
                     const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[256];

    join(p, sizeof(p), path, key);
    if (c->failed || v == NULL || cJSON_IsNull(v)) {
        return;
    }
    if (!cJSON_IsBool(v)) {
        fail(c, p, "expected true or false, got %s", type_name(v));
        return;
    }
    *out = cJSON_IsTrue(v) ? true : false;
}

/* Object or absent/null (returns NULL); anything else is an error. */
static const cJSON *get_obj(struct ctx *c, const cJSON *obj, const char *path,
                            const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[256];

    join(p, sizeof(p), path, key);
    if (c->failed || v == NULL || cJSON_IsNull(v)) {
        return NULL;
    }
    if (!cJSON_IsObject(v)) {
        fail(c, p, "expected an object, got %s", type_name(v));
        return NULL;
    }
    return v;
}

int akv_config_identity_host_ok(const char *url, const char *allowed_host)
{
    struct akv_kvid_url u;
    size_t hl;

    /* One URL parser and one loopback rule for the whole module
     * (common/kvid.h). */
    if (url == NULL || akv_kvid_url_parse(url, &u) != 0) {
        return 0;
    }
    hl = strlen(u.host);
    if (akv_kvid_host_is_loopback(u.host, hl)
        || strcmp(u.host, "169.254.169.254") == 0) {
        return 1;
    }
    return allowed_host != NULL && strcasecmp(u.host, allowed_host) == 0;
}

/*
 * Validates an absolute http(s) URL used as a base (vault, authority, IMDS):
 * no user info, query or fragment; trailing '/' removed in place. HTTP_OK:
 * 0 = https only, 1 = http to loopback, 2 = http anywhere (IMDS is plain
 * HTTP to a link-local address by design).
 */
static void check_url(struct ctx *c, const char *p, char *url, int http_ok,
                      int allow_path)
{
    const char *host;
    size_t host_len;
    size_t n;
    struct akv_kvid_url u;

    if (c->failed || url == NULL) {
        return;
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        host = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        host = url + 7;
        if (http_ok == 0) {
            fail(c, p,
                 "\"%s\" must use https:// (http:// is allowed only to a "
                 "loopback address with http.allow_http_loopback true)",
                 url);
            return;
        }
    } else {
        fail(c, p, "\"%s\" is not an https:// URL", url);
        return;
    }
    host_len = strcspn(host, "/?#");
    if (host_len == 0) {
        fail(c, p, "\"%s\" has no host", url);
        return;
    }
    if (memchr(host, '@', host_len) != NULL || strchr(url, '?') != NULL
        || strchr(url, '#') != NULL) {
        fail(c, p, "\"%s\" must not contain user info, a query or a fragment",
             url);
        return;
    }
    for (const char *s = url; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            fail(c, p, "contains a space or non-ASCII character");
            return;
        }
    }
    /* host and port syntax: the rule the module applies to every URL and
     * kid (common/kvid.h) */
    if (akv_kvid_url_parse(url, &u) != 0) {
        fail(c, p, "\"%s\" has an invalid host or port", url);
        return;
    }
    if (http_ok == 1 && !u.https) {
        if (!akv_kvid_host_is_loopback(u.host, strlen(u.host))) {
            fail(c, p, "\"%s\": http:// is allowed only to a loopback address",
                 url);
            return;
        }
    }
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/') {
        url[--n] = '\0';
    }
    if (!allow_path && host[host_len] != '\0') {
        fail(c, p, "\"%s\" must be a bare scheme://host[:port]", url);
    }
}

/* Secret-bearing files: the design forbids inline or world-readable ones,
 * and the StrictModes rules (fsperm.h) apply as to every file we are
 * pointed at: another user's file, or one in a folder others can write,
 * could be swapped for a secret of the attacker's choosing. */
static void check_private_file(struct ctx *c, const char *p, const char *file)
{
    struct stat st;
    char msg[512];
    int fd;

    if (c->failed || file == NULL) {
        return;
    }
    fd = akv_fsperm_open(file, O_RDONLY, 0, msg, sizeof(msg));
    if (fd == AKV_FSPERM_ERR_IO) {
        char buf[128];
        fail(c, p, "\"%s\": %s", file, strerror_r(errno, buf, sizeof(buf)));
        return;
    }
    if (fd < 0) {
        fail(c, p, "refused: %s", msg);
        return;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH) != 0) {
        fail(c, p,
             "\"%s\" is world-readable (mode %04o); it holds a secret: "
             "chmod o-rwx it",
             file, (unsigned)(st.st_mode & 07777));
    }
    (void)close(fd);
}

static void parse_keys(struct ctx *c, const cJSON *tok, const char *path,
                       struct akv_token_config *t)
{
    static const char *const known[] = {"name", "version", NULL};
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(tok, "keys");
    char p[256];
    int n;

    join(p, sizeof(p), path, "keys");
    if (keys == NULL || cJSON_IsNull(keys)) {
        fail(c, p, "missing (required array of key names)");
        return;
    }
    if (!cJSON_IsArray(keys)) {
        fail(c, p, "expected an array, got %s", type_name(keys));
        return;
    }
    n = cJSON_GetArraySize(keys);
    if (n < 1) {
        fail(c, p, "must name at least one key");
        return;
    }
    if (n > 256) {
        fail(c, p, "too many keys (at most 256)");
        return;
    }
    t->keys = calloc((size_t)n, sizeof(*t->keys));
    if (t->keys == NULL) {
        fail(c, p, "out of memory");
        return;
    }
    for (int i = 0; i < n && !c->failed; i++) {
        const cJSON *k = cJSON_GetArrayItem(keys, i);
        struct akv_key_config *kc = &t->keys[i];
        char kp[288];

        (void)snprintf(kp, sizeof(kp), "%s[%d]", p, i);
        t->n_keys = (size_t)i + 1;
        if (cJSON_IsString(k)) {
            kc->name = strdup(k->valuestring);
            if (kc->name == NULL) {
                fail(c, kp, "out of memory");
                return;
            }
        } else if (cJSON_IsObject(k)) {
            check_keys(c, k, kp, known);
            get_str(c, k, kp, "name", 1, &kc->name);
            if (c->failed) {
                return;
            }
            {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(k, "version");
                char vp[256];
                join(vp, sizeof(vp), kp, "version");
                if (v != NULL && !cJSON_IsNull(v)) {
                    if (!cJSON_IsString(v)) {
                        fail(c, vp, "expected a string or null, got %s",
                             type_name(v));
                        return;
                    }
                    if (v->valuestring[0] != '\0'
                        && !akv_kvid_version_ok(v->valuestring,
                                                strlen(v->valuestring))) {
                        fail(c, vp,
                             "\"%.80s\" is not a key version (32 hex "
                             "digits)",
                             v->valuestring);
                        return;
                    }
                    if (v->valuestring[0] != '\0') {
                        kc->version = strdup(v->valuestring);
                        if (kc->version == NULL) {
                            fail(c, vp, "out of memory");
                            return;
                        }
                        /* versions compare case-insensitively; keep one
                         * spelling */
                        for (char *s = kc->version; *s != '\0'; s++) {
                            if (*s >= 'A' && *s <= 'Z') {
                                *s = (char)(*s - 'A' + 'a');
                            }
                        }
                    }
                }
            }
        } else {
            fail(c, kp, "expected a key name or {\"name\",\"version\"}, got %s",
                 type_name(k));
            return;
        }
        if (!akv_kvid_name_ok(kc->name, strlen(kc->name))) {
            fail(c, kp,
                 "\"%.80s\" is not a Key Vault key name (1-127 characters "
                 "0-9 a-z A-Z -)",
                 kc->name);
            return;
        }
        for (int j = 0; j < i; j++) {
            const struct akv_key_config *o = &t->keys[j];
            int same_ver = (o->version == NULL && kc->version == NULL)
                           || (o->version != NULL && kc->version != NULL
                               && strcmp(o->version, kc->version) == 0);
            if (strcasecmp(o->name, kc->name) == 0 && same_ver) {
                fail(c, kp, "key \"%s\" listed twice", kc->name);
                return;
            }
        }
    }
}

static const char *const cred_type_names[] = {
    [AKV_CRED_MANAGED_IDENTITY] = "managed_identity",
    [AKV_CRED_CLIENT_SECRET] = "client_secret",
    [AKV_CRED_CLIENT_CERTIFICATE] = "client_certificate",
    [AKV_CRED_WORKLOAD_IDENTITY] = "workload_identity",
    [AKV_CRED_ENVIRONMENT] = "environment",
};

/* Keys that do not apply to a credential type are ignored with a warning:
 * a leftover client_id from a previous type should not stop the module. */
static void warn_unused(struct ctx *c, const cJSON *cred, const char *path,
                        const char *type, const char *const *unused)
{
    for (size_t i = 0; unused[i] != NULL; i++) {
        if (cJSON_GetObjectItemCaseSensitive(cred, unused[i]) != NULL) {
            warn(c, "%s: %s.%s: not used by credential type %s", c->name, path,
                 unused[i], type);
        }
    }
}

static void parse_cred(struct ctx *c, const cJSON *tok, const char *path,
                       struct akv_token_config *t, int http_loopback)
{
    static const char *const known[] = {"type",
                                        "client_id",
                                        "object_id",
                                        "resource_id",
                                        "tenant_id",
                                        "client_secret_file",
                                        "client_secret_env",
                                        "certificate_file",
                                        "federated_token_file",
                                        "authority_host",
                                        "imds_endpoint",
                                        "allow_imds_host",
                                        NULL};
    struct akv_cred_config *cr = &t->cred;
    const cJSON *cred;
    const cJSON *type;
    char p[256];
    char tp[256];
    int found = -1;

    join(p, sizeof(p), path, "credential");
    cred = cJSON_GetObjectItemCaseSensitive(tok, "credential");
    if (cred == NULL || cJSON_IsNull(cred)) {
        fail(c, p, "missing (required object with a \"type\")");
        return;
    }
    if (!cJSON_IsObject(cred)) {
        fail(c, p, "expected an object, got %s", type_name(cred));
        return;
    }
    check_keys(c, cred, p, known);
    join(tp, sizeof(tp), p, "type");
    type = cJSON_GetObjectItemCaseSensitive(cred, "type");
    if (type == NULL || cJSON_IsNull(type)) {
        fail(c, tp,
             "missing (expected managed_identity, client_secret, "
             "client_certificate, workload_identity, environment)");
        return;
    }
    if (!cJSON_IsString(type)) {
        fail(c, tp, "expected a string, got %s", type_name(type));
        return;
    }
    for (int i = 0; i <= (int)AKV_CRED_ENVIRONMENT; i++) {
        if (strcmp(type->valuestring, cred_type_names[i]) == 0) {
            found = i;
        }
    }
    if (found < 0) {
        fail(c, tp,
             "unknown value \"%.64s\" (expected managed_identity, "
             "client_secret, client_certificate, workload_identity, "
             "environment)",
             type->valuestring);
        return;
    }
    cr->type = (enum akv_cred_type)found;

    get_str(c, cred, p, "client_id", 0, &cr->client_id);
    get_str(c, cred, p, "object_id", 0, &cr->object_id);
    get_str(c, cred, p, "resource_id", 0, &cr->resource_id);
    get_str(c, cred, p, "tenant_id", 0, &cr->tenant_id);
    get_str(c, cred, p, "client_secret_file", 0, &cr->client_secret_file);
    get_str(c, cred, p, "client_secret_env", 0, &cr->client_secret_env);
    get_str(c, cred, p, "certificate_file", 0, &cr->certificate_file);
    get_str(c, cred, p, "federated_token_file", 0, &cr->federated_token_file);
    get_str(c, cred, p, "authority_host", 0, &cr->authority_host);
    get_str(c, cred, p, "imds_endpoint", 0, &cr->imds_endpoint);
    get_str(c, cred, p, "allow_imds_host", 0, &cr->allow_imds_host);
    if (c->failed) {
        return;
    }

    if (cr->tenant_id != NULL) {
        /* the tenant becomes a URL path segment */
        for (const char *s = cr->tenant_id; *s != '\0'; s++) {
            if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z')
                  || (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '.')) {
                char q[256];
                join(q, sizeof(q), p, "tenant_id");
                fail(c, q, "\"%.64s\" is not a tenant id (GUID or domain name)",
                     cr->tenant_id);
                return;
            }
        }
    }

    switch (cr->type) {
    case AKV_CRED_MANAGED_IDENTITY: {
        static const char *const unused[] = {"tenant_id",
                                             "client_secret_file",
                                             "client_secret_env",
                                             "certificate_file",
                                             "federated_token_file",
                                             "authority_host",
                                             NULL};
        int ids = (cr->client_id != NULL) + (cr->object_id != NULL)
                  + (cr->resource_id != NULL);
        if (ids > 1) {
            fail(c, p,
                 "give at most one of client_id, object_id, resource_id "
                 "for a user-assigned managed identity");
            return;
        }
        warn_unused(c, cred, p, "managed_identity", unused);
        if (cr->imds_endpoint != NULL) {
            char q[256];
            join(q, sizeof(q), p, "imds_endpoint");
            check_url(c, q, cr->imds_endpoint, 2, 1);
            if (!c->failed
                && !akv_config_identity_host_ok(cr->imds_endpoint,
                                                cr->allow_imds_host)) {
                fail(c, q,
                     "\"%s\": the managed-identity token comes back from "
                     "here over plain HTTP, so only a loopback address or "
                     "169.254.169.254 is allowed; name this host in "
                     "credential.allow_imds_host if it is really yours",
                     cr->imds_endpoint);
            }
        }
        break;
    }
    case AKV_CRED_CLIENT_SECRET: {
        static const char *const unused[] = {"object_id",
                                             "resource_id",
                                             "certificate_file",
                                             "federated_token_file",
                                             "imds_endpoint",
                                             "allow_imds_host",
                                             NULL};
        if (cr->tenant_id == NULL || cr->client_id == NULL) {
            fail(c, p, "type client_secret needs tenant_id and client_id");
            return;
        }
        if ((cr->client_secret_file == NULL)
            == (cr->client_secret_env == NULL)) {
            fail(c, p,
                 "type client_secret needs exactly one of client_secret_file "
                 "or client_secret_env (the secret is never inline)");
            return;
        }
        warn_unused(c, cred, p, "client_secret", unused);
        {
            char q[256];
            join(q, sizeof(q), p, "client_secret_file");
            check_private_file(c, q, cr->client_secret_file);
        }
        break;
    }
    case AKV_CRED_CLIENT_CERTIFICATE: {
        static const char *const unused[] = {"object_id",
                                             "resource_id",
                                             "client_secret_file",
                                             "client_secret_env",
                                             "federated_token_file",
                                             "imds_endpoint",
                                             "allow_imds_host",
                                             NULL};
        char q[256];
        if (cr->tenant_id == NULL || cr->client_id == NULL
            || cr->certificate_file == NULL) {
            fail(c, p,
                 "type client_certificate needs tenant_id, client_id and "
                 "certificate_file");
            return;
        }
        warn_unused(c, cred, p, "client_certificate", unused);
        join(q, sizeof(q), p, "certificate_file");
        check_private_file(c, q, cr->certificate_file);
        break;
    }
    case AKV_CRED_WORKLOAD_IDENTITY: {
        static const char *const unused[] = {
            "object_id",          "resource_id",
            "client_secret_file", "client_secret_env",
            "certificate_file",   "imds_endpoint",
            "allow_imds_host",    NULL};
        if (cr->tenant_id == NULL || cr->client_id == NULL
            || cr->federated_token_file == NULL) {
            fail(c, p,
                 "type workload_identity needs tenant_id, client_id and "
                 "federated_token_file (or use type environment)");
            return;
        }
        warn_unused(c, cred, p, "workload_identity", unused);
        break;
    }
    case AKV_CRED_ENVIRONMENT: {
        static const char *const unused[] = {"client_id",
                                             "object_id",
                                             "resource_id",
                                             "tenant_id",
                                             "client_secret_file",
                                             "client_secret_env",
                                             "certificate_file",
                                             "federated_token_file",
                                             "imds_endpoint",
                                             "allow_imds_host",
                                             NULL};
        warn_unused(c, cred, p, "environment", unused);
        break;
    }
    }
    if (c->failed) {
        return;
    }
    if (cr->authority_host != NULL) {
        char q[256];
        join(q, sizeof(q), p, "authority_host");
        check_url(c, q, cr->authority_host, http_loopback ? 1 : 0, 0);
    } else if (cr->type != AKV_CRED_MANAGED_IDENTITY) {
        cr->authority_host = strdup(DEFAULT_AUTHORITY);
        if (cr->authority_host == NULL) {
            fail(c, p, "out of memory");
        }
    }
    /* imds_endpoint stays NULL when absent: the credential then prefers
     * the App Service endpoint (IDENTITY_ENDPOINT) over the IMDS default. */
}

/* Key Vault's token audience by cloud: "NAME.vault.SUFFIX" ->
 * https://vault.SUFFIX/.default, "NAME.managedhsm.SUFFIX" ->
 * https://managedhsm.SUFFIX/.default (keyvault-protocol.md §1.1, §8). */
static char *derive_scope(const char *vault_url)
{
    const char *host = strstr(vault_url, "://");
    const char *dot;
    size_t hl;
    char hostbuf[256];
    char out[320];

    if (host == NULL) {
        return strdup(DEFAULT_SCOPE);
    }
    host += 3;
    hl = strcspn(host, ":/");
    if (hl == 0 || hl >= sizeof(hostbuf)) {
        return strdup(DEFAULT_SCOPE);
    }
    memcpy(hostbuf, host, hl);
    hostbuf[hl] = '\0';
    dot = strchr(hostbuf, '.');
    if (dot != NULL
        && (strncasecmp(dot + 1, "vault.", 6) == 0
            || strncasecmp(dot + 1, "managedhsm.", 11) == 0)) {
        (void)snprintf(out, sizeof(out), "https://%s/.default", dot + 1);
        for (char *s = out; *s != '\0'; s++) {
            if (*s >= 'A' && *s <= 'Z') {
                *s = (char)(*s - 'A' + 'a');
            }
        }
        return strdup(out);
    }
    return strdup(DEFAULT_SCOPE);
}

static void parse_http(struct ctx *c, const cJSON *tok, const char *path,
                       struct akv_token_config *t)
{
    static const char *const known[] = {"timeout_ms",
                                        "budget_ms",
                                        "connect_timeout_ms",
                                        "retries",
                                        "verify_challenge_resource",
                                        "allow_http_loopback",
                                        "ca_file",
                                        "reuse_answer_ms",
                                        NULL};
    const cJSON *h = get_obj(c, tok, path, "http");
    char p[256];
    long retries = DEFAULT_RETRIES;

    join(p, sizeof(p), path, "http");
    t->http.timeout_ms = DEFAULT_TIMEOUT_MS;
    t->http.budget_ms = DEFAULT_BUDGET_MS;
    t->http.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    t->http.reuse_answer_ms = DEFAULT_REUSE_ANSWER_MS;
    t->http.retries = DEFAULT_RETRIES;
    t->http.verify_challenge_resource = true;
    t->http.allow_http_loopback = false;
    if (h == NULL) {
        return;
    }
    check_keys(c, h, p, known);
    get_long(c, h, p, "timeout_ms", 100, 600000, &t->http.timeout_ms);
    get_long(c, h, p, "budget_ms", 100, 3600000, &t->http.budget_ms);
    get_long(c, h, p, "connect_timeout_ms", 100, 600000,
             &t->http.connect_timeout_ms);
    get_long(c, h, p, "reuse_answer_ms", 0, 600000, &t->http.reuse_answer_ms);
    get_long(c, h, p, "retries", 0, 10, &retries);
    t->http.retries = (int)retries;
    get_bool(c, h, p, "verify_challenge_resource",
             &t->http.verify_challenge_resource);
    get_bool(c, h, p, "allow_http_loopback", &t->http.allow_http_loopback);
    get_str(c, h, p, "ca_file", 0, &t->http.ca_file);
    if (!c->failed && t->http.budget_ms < t->http.timeout_ms) {
        char q[256];
        join(q, sizeof(q), p, "budget_ms");
        fail(c, q, "%ld is less than http.timeout_ms (%ld)", t->http.budget_ms,
             t->http.timeout_ms);
    }
}

static void parse_token(struct ctx *c, const cJSON *tok, const char *path,
                        struct akv_token_config *t)
{
    /* The keys a token object may have (new keys: one line each). */
    /* clang-format off */
    static const char *const known[] = {
        "label", "vault_url", "keys", "credential", "ca_file", "store_dir",
        "wrap", "http", "api_version", "scope", "key_refresh_s",
        "dek_cache_ttl_s",
        "rotation_fallback",
        "cache",
        "cache_dir",
        "sign",
        "certificate",
        "certificate_file",

        "allow_create",
        "create_hsm",
        "allow_delete",
        NULL};
    /* clang-format on */
    char *ca = NULL;
    char *wrap = NULL;
    char p[256];

    if (!cJSON_IsObject(tok)) {
        fail(c, path, "expected an object, got %s", type_name(tok));
        return;
    }
    check_keys(c, tok, path, known);
    t->key_refresh_s = 60;
    t->dek_cache_ttl_s = 0;
    t->rotation_fallback = 4;
    t->cache = true;
    t->sign = false;
    t->wrap = AKV_WRAP_REMOTE;

    get_str(c, tok, path, "label", 1, &t->label);
    if (!c->failed && t->label == NULL) { /* required: get_str failed it */
        join(p, sizeof(p), path, "label");
        fail(c, p, "is required");
        return;
    }
    if (!c->failed) {
        for (const char *q = t->label; *q != '\0'; q++) {
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                join(p, sizeof(p), path, "label");
                fail(c, p, "contains a control character");
                return;
            }
        }
    }
    if (!c->failed && strlen(t->label) > LABEL_MAX) {
        join(p, sizeof(p), path, "label");
        fail(c, p, "\"%s\" is longer than %d bytes (PKCS#11 token label)",
             t->label, LABEL_MAX);
        return;
    }
    parse_http(c, tok, path, t);
    get_str(c, tok, path, "vault_url", 1, &t->vault_url);
    join(p, sizeof(p), path, "vault_url");
    check_url(c, p, t->vault_url, t->http.allow_http_loopback ? 1 : 0, 0);
    parse_keys(c, tok, path, t);
    parse_cred(c, tok, path, t, t->http.allow_http_loopback);

    get_str(c, tok, path, "ca_file", 0, &ca);
    if (!c->failed && ca != NULL) {
        if (t->http.ca_file != NULL && strcmp(ca, t->http.ca_file) != 0) {
            join(p, sizeof(p), path, "ca_file");
            fail(c, p, "differs from http.ca_file; give one of them");
            free(ca);
            return;
        }
        free(t->http.ca_file);
        t->http.ca_file = ca;
        ca = NULL;
    }
    free(ca);
    if (!c->failed && t->http.ca_file != NULL
        && access(t->http.ca_file, R_OK) != 0) {
        char buf[128];
        join(p, sizeof(p), path, "ca_file");
        fail(c, p, "\"%s\": %s", t->http.ca_file,
             strerror_r(errno, buf, sizeof(buf)));
        return;
    }

    get_str(c, tok, path, "store_dir", 0, &t->store_dir);
    if (!c->failed && t->store_dir != NULL && t->store_dir[0] != '/') {
        join(p, sizeof(p), path, "store_dir");
        fail(c, p, "\"%s\" must be an absolute path", t->store_dir);
        return;
    }
    get_str(c, tok, path, "wrap", 0, &wrap);
    if (!c->failed && wrap != NULL) {
        if (strcmp(wrap, "remote") == 0) {
            t->wrap = AKV_WRAP_REMOTE;
        } else if (strcmp(wrap, "local") == 0) {
            t->wrap = AKV_WRAP_LOCAL;
        } else {
            join(p, sizeof(p), path, "wrap");
            fail(c, p, "unknown value \"%.32s\" (expected remote, local)",
                 wrap);
        }
    }
    free(wrap);

    get_str(c, tok, path, "api_version", 0, &t->api_version);
    if (!c->failed && t->api_version != NULL) {
        size_t n = strlen(t->api_version);
        if (n > 32
            || strspn(t->api_version, "0123456789abcdefghijklmnopqrstu"
                                      "vwxyz.-")
                   != n) {
            join(p, sizeof(p), path, "api_version");
            fail(c, p, "\"%.32s\" is not an api-version (e.g. 7.4)",
                 t->api_version);
            return;
        }
    }
    if (!c->failed && t->api_version == NULL) {
        t->api_version = strdup(DEFAULT_API);
    }
    get_str(c, tok, path, "scope", 0, &t->scope);
    if (!c->failed && t->scope != NULL
        && strncmp(t->scope, "https://", 8) != 0) {
        join(p, sizeof(p), path, "scope");
        fail(c, p, "\"%.64s\" must be an https:// scope URI", t->scope);
        return;
    }
    if (!c->failed && t->scope == NULL && t->vault_url != NULL) {
        t->scope = derive_scope(t->vault_url);
    }
    get_long(c, tok, path, "key_refresh_s", 0, 86400, &t->key_refresh_s);
    get_long(c, tok, path, "dek_cache_ttl_s", 0, 86400, &t->dek_cache_ttl_s);
    get_long(c, tok, path, "rotation_fallback", 0, 16, &t->rotation_fallback);
    get_bool(c, tok, path, "cache", &t->cache);
    get_bool(c, tok, path, "sign", &t->sign);
    get_str(c, tok, path, "certificate", 0, &t->certificate);
    if (!c->failed && t->certificate != NULL
        && !akv_kvid_name_ok(t->certificate, strlen(t->certificate))) {
        join(p, sizeof(p), path, "certificate");
        fail(c, p,
             "\"%.64s\" is not a Key Vault certificate name (1-127 of "
             "0-9, a-z, A-Z, -)",
             t->certificate);
        return;
    }
    get_str(c, tok, path, "certificate_file", 0, &t->certificate_file);
    if (!c->failed && t->certificate_file != NULL
        && t->certificate_file[0] != '/') {
        join(p, sizeof(p), path, "certificate_file");
        fail(c, p, "\"%.64s\" must be an absolute path", t->certificate_file);
        return;
    }
    if (!c->failed && t->certificate != NULL && t->certificate_file != NULL) {
        join(p, sizeof(p), path, "certificate_file");
        fail(c, p, "give certificate or certificate_file, not both");
        return;
    }

    get_bool(c, tok, path, "allow_create", &t->allow_create);
    get_bool(c, tok, path, "create_hsm", &t->create_hsm);
    get_bool(c, tok, path, "allow_delete", &t->allow_delete);
    get_str(c, tok, path, "cache_dir", 0, &t->cache_dir);
    if (!c->failed && t->cache_dir != NULL && t->cache_dir[0] != '/') {
        join(p, sizeof(p), path, "cache_dir");
        fail(c, p, "\"%.64s\" must be an absolute path", t->cache_dir);
        return;
    }
    if (!c->failed && (t->api_version == NULL || t->scope == NULL)) {
        fail(c, path, "out of memory");
    }
}

static void parse_log(struct ctx *c, const cJSON *root, struct akv_config *cfg)
{
    static const char *const known[] = {"level", "target", NULL};
    const cJSON *log = get_obj(c, root, "", "log");
    char *lvl = NULL;
    char *lvl2 = NULL;
    const char *lp = "log_level";

    cfg->log_level = AKV_LOG_LEVEL_ERROR;
    get_str(c, root, "", "log_level", 0, &lvl);
    if (log != NULL) {
        check_keys(c, log, "log", known);
        get_str(c, log, "log", "level", 0, &lvl2);
        get_str(c, log, "log", "target", 0, &cfg->log_target);
    }
    if (!c->failed && lvl != NULL && lvl2 != NULL) {
        fail(c, "log.level", "given together with log_level; keep one");
    }
    if (lvl2 != NULL) {
        free(lvl);
        lvl = lvl2;
        lp = "log.level";
    }
    if (!c->failed && lvl != NULL) {
        int v = akv_log_level_parse(lvl);
        if (v < 0) {
            fail(c, lp,
                 "unknown value \"%.32s\" (expected none, error, warn, info, "
                 "debug, trace)",
                 lvl);
        } else {
            cfg->log_level = v;
        }
    }
    free(lvl);
}

static void parse_root(struct ctx *c, const cJSON *root, struct akv_config *cfg)
{
    static const char *const known[] = {"log_level", "log", "tokens", NULL};
    const cJSON *tokens;
    int n;

    if (!cJSON_IsObject(root)) {
        fail(c, "", "top level must be a JSON object, got %s", type_name(root));
        return;
    }
    check_keys(c, root, "", known);
    parse_log(c, root, cfg);
    if (c->failed) {
        return;
    }
    tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (tokens == NULL || cJSON_IsNull(tokens)) {
        fail(c, "tokens", "missing (required array with at least one token)");
        return;
    }
    if (!cJSON_IsArray(tokens)) {
        fail(c, "tokens", "expected an array, got %s", type_name(tokens));
        return;
    }
    n = cJSON_GetArraySize(tokens);
    if (n < 1 || n > 64) {
        fail(c, "tokens", "must hold 1 to 64 tokens (has %d)", n);
        return;
    }
    cfg->tokens = calloc((size_t)n, sizeof(*cfg->tokens));
    if (cfg->tokens == NULL) {
        fail(c, "tokens", "out of memory");
        return;
    }
    for (int i = 0; i < n && !c->failed; i++) {
        char p[64];
        (void)snprintf(p, sizeof(p), "tokens[%d]", i);
        cfg->n_tokens = (size_t)i + 1;
        parse_token(c, cJSON_GetArrayItem(tokens, i), p, &cfg->tokens[i]);
        for (int j = 0; j < i && !c->failed; j++) {
            if (strcmp(cfg->tokens[j].label, cfg->tokens[i].label) == 0) {
                char lp[80];
                (void)snprintf(lp, sizeof(lp), "%s.label", p);
                fail(c, lp, "\"%s\" is already used by tokens[%d]",
                     cfg->tokens[i].label, j);
            }
        }
    }
}

/* Turns a byte offset into "line L, column C" for the parse error. */
static void offset_to_line(const char *json, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (json[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

int akv_config_parse(const char *json, size_t len, const char *name,
                     struct akv_config **out, char *err, size_t err_len)
{
    struct ctx c = {name != NULL ? name : "config", err, err_len, 0, NULL};
    struct akv_config *cfg = NULL;
    cJSON *root = NULL;
    const char *end = NULL;
    int rc = -1;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (out == NULL || (json == NULL && len > 0)) {
        fail(&c, "", "internal error: bad arguments");
        goto out;
    }
    *out = NULL;
    if (len > CONFIG_MAX_BYTES) {
        fail(&c, "", "larger than %d bytes", CONFIG_MAX_BYTES);
        goto out;
    }
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL) {
        int line;
        int col;
        size_t off = (end != NULL && end >= json && end <= json + len)
                         ? (size_t)(end - json)
                         : 0;
        offset_to_line(json, off, &line, &col);
        fail(&c, "", "invalid JSON at line %d, column %d", line, col);
        goto out;
    }
    /* trailing non-space after the document is a truncated/merged file */
    if (end != NULL) {
        size_t off = (size_t)(end - json);
        while (off < len
               && (json[off] == ' ' || json[off] == '\n' || json[off] == '\r'
                   || json[off] == '\t' || json[off] == '\0')) {
            off++;
        }
        if (off < len) {
            int line;
            int col;
            offset_to_line(json, off, &line, &col);
            fail(&c, "",
                 "unexpected text after the JSON document at line %d, "
                 "column %d",
                 line, col);
            goto out;
        }
    }
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        fail(&c, "", "out of memory");
        goto out;
    }
    cfg->path = strdup(c.name);
    if (cfg->path == NULL) {
        fail(&c, "", "out of memory");
        goto out;
    }
    c.cfg = cfg;
    parse_root(&c, root, cfg);
    if (c.failed) {
        goto out;
    }
    *out = cfg;
    cfg = NULL;
    rc = 0;
out:
    cJSON_Delete(root);
    akv_config_free(cfg);
    return rc;
}

int akv_config_load(const char *path, struct akv_config **out, char *err,
                    size_t err_len)
{
    struct ctx c = {path != NULL ? path : "(null)", err, err_len, 0, NULL};
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = -1;
    int rc = -1;
    char ebuf[512];

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (path == NULL || out == NULL) {
        fail(&c, "", "internal error: bad arguments");
        goto out;
    }
    *out = NULL;
    /* Whoever can write the file, or replace it through a folder, can
     * point authority_host or vault_url at themselves and collect the
     * credential: StrictModes rules (fsperm.h). */
    fd = akv_fsperm_open(path, O_RDONLY, 0, ebuf, sizeof(ebuf));
    if (fd == AKV_FSPERM_ERR_RULES) {
        /* the message already starts with the path */
        if (err != NULL && err_len > 0) {
            (void)snprintf(err, err_len, "%s", ebuf);
        }
        goto out;
    }
    if (fd < 0) {
        fail(&c, "", "cannot open: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        fail(&c, "", "cannot stat: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    if (st.st_size > CONFIG_MAX_BYTES) {
        fail(&c, "", "larger than %d bytes", CONFIG_MAX_BYTES);
        goto out;
    }
    /* zeroed: a short read leaves no uninitialised byte below len */
    buf = calloc((size_t)st.st_size + 1, 1);
    if (buf == NULL) {
        fail(&c, "", "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            fail(&c, "", "cannot read: %s",
                 strerror_r(errno, ebuf, sizeof(ebuf)));
            goto out;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    rc = akv_config_parse(buf, got, path, out, err, err_len);
out:
    if (fd >= 0) {
        (void)close(fd);
    }
    free(buf);
    return rc;
}

char *akv_config_locate(const char *reserved)
{
    const char *env;

    if (reserved != NULL) {
        const char *s = reserved;
        while (*s != '\0') {
            size_t n;
            s += strspn(s, "; \t\r\n");
            n = strcspn(s, "; \t\r\n");
            if (n > 7 && strncmp(s, "config=", 7) == 0) {
                return strndup(s + 7, n - 7);
            }
            s += n;
        }
    }
    env = secure_getenv("AKV_PKCS11_CONFIG");
    if (env != NULL && env[0] != '\0') {
        return strdup(env);
    }
    return strdup(DEFAULT_PATH);
}

static void free_cred(struct akv_cred_config *cr)
{
    free(cr->client_id);
    free(cr->object_id);
    free(cr->resource_id);
    free(cr->tenant_id);
    free(cr->client_secret_file);
    free(cr->client_secret_env);
    free(cr->certificate_file);
    free(cr->federated_token_file);
    free(cr->authority_host);
    free(cr->imds_endpoint);
    free(cr->allow_imds_host);
}

void akv_config_free(struct akv_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        struct akv_token_config *t = &cfg->tokens[i];
        free(t->label);
        free(t->vault_url);
        free(t->api_version);
        free(t->scope);
        for (size_t k = 0; k < t->n_keys; k++) {
            free(t->keys[k].name);
            free(t->keys[k].version);
        }
        free(t->keys);
        free_cred(&t->cred);
        free(t->http.ca_file);
        free(t->store_dir);
        free(t->certificate);
        free(t->certificate_file);
        free(t->cache_dir);
    }
    free(cfg->tokens);
    free(cfg->path);
    free(cfg->log_target);
    for (size_t i = 0; i < cfg->n_warnings; i++) {
        free(cfg->warnings[i]);
    }
    free(cfg->warnings);
    free(cfg);
}
