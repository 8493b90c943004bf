/* SPDX-License-Identifier: Apache-2.0 */
#include "json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/b64url.h"
#include "../common/kvid.h"

#define RSA_N_MAX      1024 /* 8192-bit modulus */
#define RSA_E_MAX      8
#define OP_VALUE_MAX   65536
#define TOKEN_LIFE_MAX 604800         /* s (7 days): anything longer is bogus */
#define INTDATE_MAX    253402300799.0 /* 9999-12-31T23:59:59Z */

static cJSON *parse(const char *buf, size_t len)
{
    if (buf == NULL || len == 0 || len > AKV_JSON_MAX_BYTES) {
        return NULL;
    }
    return cJSON_ParseWithLength(buf, len);
}

/* Secret strings live inside the cJSON tree; wipe them before the tree is
 * freed (cJSON_Delete frees without cleansing, and no global hooks are
 * installed: the host process may use cJSON too). The whole tree, not
 * one looked-up member: a duplicated or nested key would otherwise leave
 * a copy that GetObjectItem does not return. Depth is bounded by cJSON's
 * nesting limit. */
static void wipe_tree(cJSON *item) // NOLINT(misc-no-recursion): bounded
{
    for (; item != NULL; item = item->next) {
        if (cJSON_IsString(item) && item->valuestring != NULL) {
            OPENSSL_cleanse(item->valuestring, strlen(item->valuestring));
        }
        wipe_tree(item->child);
    }
}

static void copy_bounded(char *dst, size_t dst_len, const char *src)
{
    size_t n;

    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    /* first line only: service messages carry \r\n-separated details */
    n = strcspn(src, "\r\n");
    if (n >= dst_len) {
        n = dst_len - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    /* other control bytes are escaped by the log formatter (akv_log_write),
     * the one place that makes lines printable */
}

/* A JSON number (or, when ALLOW_STR, a decimal string) that is an integer
 * in [MIN, MAX]. Returns 0 and *OUT, or -1. */
static int get_int(const cJSON *v, int allow_str, double min, double max,
                   int64_t *out)
{
    double d;

    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (allow_str && cJSON_IsString(v) && v->valuestring != NULL) {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        char *end = NULL;
        long long ll;
        if (n == 0 || n > 19 || strspn(s, "0123456789") != n) {
            return -1;
        }
        ll = strtoll(s, &end, 10);
        if (end == NULL || *end != '\0') {
            return -1;
        }
        d = (double)ll;
    } else {
        return -1;
    }
    /* range before the integral test: the cast needs a bounded value */
    if (!isfinite(d) || d < min || d > max || d != (double)(int64_t)d) {
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

static int set_ops(const cJSON *ops, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"encrypt", AKV_KV_OP_ENCRYPT}, {"decrypt", AKV_KV_OP_DECRYPT},
        {"wrapKey", AKV_KV_OP_WRAPKEY}, {"unwrapKey", AKV_KV_OP_UNWRAPKEY},
        {"sign", AKV_KV_OP_SIGN},       {"verify", AKV_KV_OP_VERIFY},
    };
    const cJSON *it;
    unsigned bits = 0;

    if (ops == NULL || cJSON_IsNull(ops)) {
        /* RFC 7517 §4.3: no key_ops = no restriction */
        *out = AKV_KV_OP_ENCRYPT | AKV_KV_OP_DECRYPT | AKV_KV_OP_WRAPKEY
               | AKV_KV_OP_UNWRAPKEY | AKV_KV_OP_SIGN | AKV_KV_OP_VERIFY;
        return 0;
    }
    if (!cJSON_IsArray(ops)) {
        return -1;
    }
    cJSON_ArrayForEach(it, ops)
    {
        if (!cJSON_IsString(it)) {
            return -1;
        }
        /* other names (import, export, release) are valid but unused */
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (strcmp(it->valuestring, names[i].name) == 0) {
                bits |= names[i].bit;
            }
        }
    }
    *out = bits;
    return 0;
}

/* Decodes a base64url JSON string into a malloc'd buffer (<= MAX bytes). */
static int get_b64(const cJSON *v, size_t max, uint8_t **out, size_t *out_len)
{
    size_t n;
    uint8_t *p;
    long r;

    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return -1;
    }
    n = strlen(v->valuestring);
    if (n == 0 || n > (max / 3 + 1) * 4) {
        return -1;
    }
    p = malloc(n); /* decoded length < text length */
    if (p == NULL) {
        return -2;
    }
    r = akv_b64url_decode(v->valuestring, n, p, n);
    if (r <= 0 || (size_t)r > max) {
        free(p);
        return -1;
    }
    *out = p;
    *out_len = (size_t)r;
    return 0;
}

/* EC public point (RFC 7518 §6.2.1): a known crv and x, y of exactly the
 * curve's field size (§6.2.1.2/3 require the full length). Whether the
 * point is on the curve is jwk.c's check. Returns 0, -1, or -2 (memory). */
static int parse_ec(const cJSON *key, struct akv_kv_key *k)
{
    static const struct {
        const char *crv;
        size_t len;
    } curves[] = {{"P-256", 32}, {"P-384", 48}, {"P-521", 66}, {"P-256K", 32}};
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(key, "crv");
    uint8_t *x = NULL;
    uint8_t *y = NULL;
    size_t xl = 0;
    size_t yl = 0;
    size_t want = 0;
    int r;

    if (!cJSON_IsString(crv)) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(crv->valuestring, curves[i].crv) == 0) {
            want = curves[i].len;
            memcpy(k->crv, curves[i].crv, strlen(curves[i].crv) + 1);
        }
    }
    if (want == 0) {
        return -1;
    }
    r = get_b64(cJSON_GetObjectItemCaseSensitive(key, "x"), want, &x, &xl);
    if (r == 0) {
        r = get_b64(cJSON_GetObjectItemCaseSensitive(key, "y"), want, &y, &yl);
    }
    if (r == 0 && (xl != want || yl != want)) {
        r = -1;
    }
    if (r == 0) {
        memcpy(k->ec_x, x, want);
        memcpy(k->ec_y, y, want);
        k->ec_len = want;
    }
    free(x);
    free(y);
    return r;
}

static int parse_attributes(const cJSON *attr, struct akv_kv_key *k)
{
    static const struct {
        const char *name;
        size_t off;
    } dates[] = {
        {"nbf", offsetof(struct akv_kv_key, nbf)},
        {"exp", offsetof(struct akv_kv_key, exp)},
        {"created", offsetof(struct akv_kv_key, created)},
        {"updated", offsetof(struct akv_kv_key, updated)},
    };
    const cJSON *en;

    k->enabled = true;
    if (attr == NULL || cJSON_IsNull(attr)) {
        return 0;
    }
    if (!cJSON_IsObject(attr)) {
        return -1;
    }
    en = cJSON_GetObjectItemCaseSensitive(attr, "enabled");
    if (en != NULL && !cJSON_IsNull(en)) {
        if (!cJSON_IsBool(en)) {
            return -1;
        }
        k->enabled = cJSON_IsTrue(en) ? true : false;
    }
    for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(attr, dates[i].name);
        int64_t t = 0;
        if (v == NULL || cJSON_IsNull(v)) {
            continue;
        }
        if (get_int(v, 0, 0, INTDATE_MAX, &t) != 0) {
            return -1;
        }
        memcpy((char *)k + dates[i].off, &t, sizeof(t));
    }
    return 0;
}

CK_RV akv_json_parse_key_bundle(const char *buf, size_t len,
                                struct akv_kv_key *out)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    cJSON *root = NULL;
    const cJSON *key;
    const cJSON *kid;
    const cJSON *kty;
    struct akv_kv_key k;
    struct akv_kvid_kid id;
    int r;

    memset(&k, 0, sizeof(k));
    if (out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    memset(out, 0, sizeof(*out));
    root = parse(buf, len);
    if (!cJSON_IsObject(root)) {
        goto out;
    }
    key = cJSON_GetObjectItemCaseSensitive(root, "key");
    if (!cJSON_IsObject(key)) {
        goto out;
    }
    kid = cJSON_GetObjectItemCaseSensitive(key, "kid");
    if (!cJSON_IsString(kid) || strlen(kid->valuestring) >= AKV_KV_KID_MAX) {
        goto out;
    }
    /* a versioned key identifier; whose vault and key it names is the
     * caller's check (akv_kvid_kid_check) */
    if (akv_kvid_kid_parse(kid->valuestring, &id) != 0
        || id.version[0] == '\0') {
        goto out;
    }
    memcpy(k.name, id.name, sizeof(id.name));
    memcpy(k.version, id.version, sizeof(id.version));
    memcpy(k.kid, kid->valuestring, strlen(kid->valuestring) + 1);
    kty = cJSON_GetObjectItemCaseSensitive(key, "kty");
    if (!cJSON_IsString(kty) || kty->valuestring[0] == '\0'
        || strlen(kty->valuestring) >= sizeof(k.kty_name)) {
        goto out;
    }
    memcpy(k.kty_name, kty->valuestring, strlen(kty->valuestring) + 1);
    if (strcmp(k.kty_name, "RSA") == 0 || strcmp(k.kty_name, "RSA-HSM") == 0) {
        k.kty = AKV_KV_KTY_RSA;
    } else if (strcmp(k.kty_name, "oct-HSM") == 0) {
        k.kty = AKV_KV_KTY_OCT_HSM;
    } else if (strcmp(k.kty_name, "EC") == 0
               || strcmp(k.kty_name, "EC-HSM") == 0) {
        k.kty = AKV_KV_KTY_EC;
    } else {
        k.kty = AKV_KV_KTY_OTHER;
    }
    if (set_ops(cJSON_GetObjectItemCaseSensitive(key, "key_ops"), &k.key_ops)
        != 0) {
        goto out;
    }
    if (k.kty == AKV_KV_KTY_RSA) {
        size_t skip = 0;
        r = get_b64(cJSON_GetObjectItemCaseSensitive(key, "n"), RSA_N_MAX + 1,
                    &k.n, &k.n_len);
        if (r == -2) {
            rv = CKR_HOST_MEMORY;
        }
        if (r != 0) {
            goto out;
        }
        /* RFC 7518 §6.3.1.1 wants minimal octets; some encoders add a
         * sign byte (.NET before azure-sdk-for-net#8381). */
        while (skip < k.n_len && k.n[skip] == 0) {
            skip++;
        }
        if (skip == k.n_len || k.n_len - skip > RSA_N_MAX) {
            goto out;
        }
        if (skip > 0) {
            memmove(k.n, k.n + skip, k.n_len - skip);
            k.n_len -= skip;
        }
        r = get_b64(cJSON_GetObjectItemCaseSensitive(key, "e"), RSA_E_MAX, &k.e,
                    &k.e_len);
        if (r == -2) {
            rv = CKR_HOST_MEMORY;
        }
        if (r != 0) {
            goto out;
        }
    } else if (k.kty == AKV_KV_KTY_EC) {
        r = parse_ec(key, &k);
        if (r == -2) {
            rv = CKR_HOST_MEMORY;
        }
        if (r != 0) {
            goto out;
        }
    } else if (k.kty == AKV_KV_KTY_OCT_HSM) {
        const cJSON *ks = cJSON_GetObjectItemCaseSensitive(key, "key_size");
        int64_t bits = 0;
        if (ks != NULL && !cJSON_IsNull(ks)) {
            if (get_int(ks, 0, 0, 65536, &bits) != 0) {
                goto out;
            }
        }
        k.oct_bits = (size_t)bits;
    }
    if (parse_attributes(cJSON_GetObjectItemCaseSensitive(root, "attributes"),
                         &k)
        != 0) {
        goto out;
    }
    *out = k;
    memset(&k, 0, sizeof(k));
    rv = CKR_OK;
out:
    akv_kv_key_clear(&k);
    /* GET never releases k (or d, p, q...); wipe them if they came, on
     * every path out. */
    wipe_tree(root);
    cJSON_Delete(root);
    return rv;
}

CK_RV akv_json_parse_key_op_result(const char *buf, size_t len, char *kid_out,
                                   struct akv_secret *value)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    cJSON *root = NULL;
    cJSON *val = NULL;
    const cJSON *kid;
    size_t n;
    long r;

    if (value == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    akv_secret_clear(value);
    if (kid_out != NULL) {
        kid_out[0] = '\0';
    }
    root = parse(buf, len);
    if (!cJSON_IsObject(root)) {
        goto out;
    }
    val = cJSON_GetObjectItemCaseSensitive(root, "value");
    if (!cJSON_IsString(val) || val->valuestring == NULL) {
        goto out;
    }
    kid = cJSON_GetObjectItemCaseSensitive(root, "kid");
    if (kid != NULL && !cJSON_IsNull(kid)) {
        if (!cJSON_IsString(kid)
            || strlen(kid->valuestring) >= AKV_KV_KID_MAX) {
            goto out;
        }
        if (kid_out != NULL) {
            memcpy(kid_out, kid->valuestring, strlen(kid->valuestring) + 1);
        }
    }
    n = strlen(val->valuestring);
    if (n == 0 || n > (size_t)(OP_VALUE_MAX / 3 + 1) * 4) {
        goto out;
    }
    if (akv_secret_alloc(value, n) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    r = akv_b64url_decode(val->valuestring, n, value->data, value->cap);
    if (r <= 0 || r > OP_VALUE_MAX) {
        akv_secret_clear(value);
        goto out;
    }
    value->len = (size_t)r;
    value->data[value->len] = '\0';
    rv = CKR_OK;
out:
    if (rv != CKR_OK && kid_out != NULL) {
        kid_out[0] = '\0';
    }
    wipe_tree(root);
    cJSON_Delete(root);
    return rv;
}

int akv_json_parse_error(const char *buf, size_t len,
                         struct akv_json_error *out)
{
    int rc = -1;
    cJSON *root = NULL;
    const cJSON *err;

    if (out == NULL) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    root = parse(buf, len);
    if (!cJSON_IsObject(root)) {
        goto out;
    }
    err = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(err)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        const cJSON *inner =
            cJSON_GetObjectItemCaseSensitive(err, "innererror");
        if (cJSON_IsString(code)) {
            copy_bounded(out->code, sizeof(out->code), code->valuestring);
        }
        if (cJSON_IsString(msg)) {
            copy_bounded(out->message, sizeof(out->message), msg->valuestring);
        }
        if (cJSON_IsObject(inner)) {
            const cJSON *ic = cJSON_GetObjectItemCaseSensitive(inner, "code");
            if (cJSON_IsString(ic)) {
                copy_bounded(out->inner, sizeof(out->inner), ic->valuestring);
            }
        }
        rc = 0;
    } else if (cJSON_IsString(err)) {
        const cJSON *desc =
            cJSON_GetObjectItemCaseSensitive(root, "error_description");
        copy_bounded(out->code, sizeof(out->code), err->valuestring);
        if (cJSON_IsString(desc)) {
            copy_bounded(out->message, sizeof(out->message), desc->valuestring);
        }
        rc = 0;
    }
out:
    cJSON_Delete(root);
    return rc;
}

bool akv_json_token_ok(const void *p, size_t n)
{
    const unsigned char *c = p;

    if (p == NULL || n == 0 || n > AKV_JSON_TOKEN_MAX) {
        return false;
    }
    /* the token goes into an HTTP header: refuse anything that could split
     * or corrupt it */
    for (size_t i = 0; i < n; i++) {
        if (c[i] <= 0x20 || c[i] >= 0x7f) {
            return false;
        }
    }
    return true;
}

CK_RV akv_json_parse_token(const char *buf, size_t len, int64_t now,
                           struct akv_secret *token, int64_t *expires_at,
                           int64_t *lifetime_s)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    cJSON *root = NULL;
    cJSON *at = NULL;
    const cJSON *tt;
    const cJSON *ein;
    const cJSON *eon;
    int64_t life = 0;
    size_t n;

    if (token == NULL || expires_at == NULL || lifetime_s == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    akv_secret_clear(token);
    root = parse(buf, len);
    if (!cJSON_IsObject(root)) {
        goto out;
    }
    at = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    if (!cJSON_IsString(at) || at->valuestring == NULL) {
        goto out;
    }
    n = strlen(at->valuestring);
    if (!akv_json_token_ok(at->valuestring, n)) {
        goto out;
    }
    tt = cJSON_GetObjectItemCaseSensitive(root, "token_type");
    if (tt != NULL && !cJSON_IsNull(tt)
        && (!cJSON_IsString(tt)
            || strcasecmp(tt->valuestring, "Bearer") != 0)) {
        goto out;
    }
    ein = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    eon = cJSON_GetObjectItemCaseSensitive(root, "expires_on");
    if (ein != NULL && !cJSON_IsNull(ein)) {
        if (get_int(ein, 1, 1, (double)TOKEN_LIFE_MAX, &life) != 0) {
            goto out;
        }
    } else if (eon != NULL && !cJSON_IsNull(eon)) {
        int64_t when = 0;
        if (get_int(eon, 1, 1, INTDATE_MAX, &when) != 0 || when <= now
            || when - now > TOKEN_LIFE_MAX) {
            goto out;
        }
        life = when - now;
    } else {
        goto out;
    }
    if (akv_secret_set(token, at->valuestring, n) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    *expires_at = now + life;
    *lifetime_s = life;
    rv = CKR_OK;
out:
    wipe_tree(root);
    cJSON_Delete(root);
    return rv;
}

CK_RV akv_json_build_key_op(enum akv_kv_alg alg, const uint8_t *in,
                            size_t in_len, struct akv_secret *body)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    const char *name = akv_kv_alg_name(alg);
    size_t b64 = akv_b64url_encoded_len(in_len);
    int head;
    long w;

    if (name == NULL || body == NULL || (in == NULL && in_len > 0)
        || in_len > OP_VALUE_MAX) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    /* {"alg":"","value":""} is 22 bytes; alg names are short ASCII */
    if (akv_secret_alloc(body, 22 + strlen(name) + b64) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    head = snprintf((char *)body->data, body->cap + 1,
                    "{\"alg\":\"%s\",\"value\":\"", name);
    if (head < 0 || (size_t)head + b64 + 2 > body->cap) {
        akv_secret_clear(body);
        goto out;
    }
    w = akv_b64url_encode(in, in_len, (char *)body->data + head,
                          body->cap + 1 - (size_t)head);
    if (w < 0) {
        akv_secret_clear(body);
        goto out;
    }
    memcpy(body->data + head + w, "\"}", 3);
    body->len = (size_t)head + (size_t)w + 2;
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_json_parse_cert_bundle(const char *buf, size_t len,
                                 struct akv_kv_cert *out)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    cJSON *root = NULL;
    const cJSON *kid;
    const cJSON *cer;
    struct akv_kvid_kid id;
    struct akv_kv_cert c;
    char *text = NULL;
    size_t n;
    int r;

    memset(&c, 0, sizeof(c));
    if (out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    memset(out, 0, sizeof(*out));
    root = parse(buf, len);
    kid = cJSON_GetObjectItemCaseSensitive(root, "kid");
    cer = cJSON_GetObjectItemCaseSensitive(root, "cer");
    if (!cJSON_IsObject(root) || !cJSON_IsString(kid) || !cJSON_IsString(cer)
        || strlen(kid->valuestring) >= AKV_KV_KID_MAX
        || akv_kvid_kid_parse(kid->valuestring, &id) != 0
        || id.version[0] == '\0') {
        goto out;
    }
    memcpy(c.name, id.name, sizeof(id.name));
    memcpy(c.version, id.version, sizeof(id.version));
    memcpy(c.kid, kid->valuestring, strlen(kid->valuestring) + 1);
    /* "cer" is format byte (standard base64): the one base64url decoder
     * reads it once '+' and '/' are spelled the url way. */
    n = strlen(cer->valuestring);
    if (n == 0 || n > ((size_t)AKV_KV_CERT_MAX / 3 + 1) * 4) {
        goto out;
    }
    text = malloc(n + 1);
    c.der = malloc(n);
    if (text == NULL || c.der == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (size_t i = 0; i <= n; i++) {
        char ch = cer->valuestring[i];
        text[i] = (char)(ch == '+' ? '-' : ch == '/' ? '_' : ch);
    }
    r = (int)akv_b64url_decode(text, n, c.der, n);
    if (r <= 0 || (size_t)r > AKV_KV_CERT_MAX) {
        goto out;
    }
    c.der_len = (size_t)r;
    *out = c;
    memset(&c, 0, sizeof(c));
    rv = CKR_OK;
out:
    free(text);
    akv_kv_cert_clear(&c);
    cJSON_Delete(root);
    return rv;
}

CK_RV akv_json_build_create_key(const struct akv_kv_create *req, char **out)
{
    static const struct {
        unsigned bit;
        const char *name;
    } ops[] = {
        {AKV_KV_OP_ENCRYPT, "encrypt"}, {AKV_KV_OP_DECRYPT, "decrypt"},
        {AKV_KV_OP_WRAPKEY, "wrapKey"}, {AKV_KV_OP_UNWRAPKEY, "unwrapKey"},
        {AKV_KV_OP_SIGN, "sign"},       {AKV_KV_OP_VERIFY, "verify"},
    };
    CK_RV rv = CKR_HOST_MEMORY;
    cJSON *o = NULL;
    cJSON *a = NULL;

    if (req == NULL || req->kty == NULL || out == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    *out = NULL;
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "kty", req->kty) == NULL) {
        goto out;
    }
    if (req->bits != 0
        && cJSON_AddNumberToObject(o, "key_size", (double)req->bits) == NULL) {
        goto out;
    }
    if (req->exp != 0
        && cJSON_AddNumberToObject(o, "public_exponent", (double)req->exp)
               == NULL) {
        goto out;
    }
    if (req->crv != NULL
        && cJSON_AddStringToObject(o, "crv", req->crv) == NULL) {
        goto out;
    }
    if (req->key_ops != 0) {
        a = cJSON_AddArrayToObject(o, "key_ops");
        if (a == NULL) {
            goto out;
        }
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
            if ((req->key_ops & ops[i].bit) != 0
                && !cJSON_AddItemToArray(a, cJSON_CreateString(ops[i].name))) {
                goto out;
            }
        }
    }
    *out = cJSON_PrintUnformatted(o);
    rv = *out != NULL ? CKR_OK : CKR_HOST_MEMORY;
out:
    cJSON_Delete(o);
    return rv;
}

/* Appends ,"NAME":"<base64url of IN>" at BODY's end (room checked by the
 * caller's allocation). */
static void add_b64_field(struct akv_secret *body, const char *name,
                          const uint8_t *in, size_t in_len)
{
    int head;
    long w;

    head = snprintf((char *)body->data + body->len, body->cap + 1 - body->len,
                    ",\"%s\":\"", name);
    body->len += (size_t)head;
    w = akv_b64url_encode(in, in_len, (char *)body->data + body->len,
                          body->cap + 1 - body->len);
    body->len += (size_t)w;
    body->data[body->len++] = '"';
    body->data[body->len] = '\0';
}

CK_RV akv_json_build_crypt(enum akv_kv_alg alg,
                           const struct akv_kv_crypt_in *in,
                           struct akv_secret *body)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    const char *name = akv_kv_alg_name(alg);
    size_t need;

    if (name == NULL || in == NULL || body == NULL || in->value == NULL
        || in->value_len == 0 || in->value_len > OP_VALUE_MAX
        || (in->iv == NULL && in->iv_len > 0) || in->iv_len > 16
        || (in->tag == NULL && in->tag_len > 0) || in->tag_len > 16
        || (in->aad == NULL && in->aad_len > 0) || in->aad_len > OP_VALUE_MAX) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    /* {"alg":"","value":""} is 22 bytes; each optional field adds its
     * name, 6 bytes of punctuation and its encoding. */
    need = 22 + strlen(name) + akv_b64url_encoded_len(in->value_len)
           + (size_t)3 * 9 + akv_b64url_encoded_len(in->iv_len)
           + akv_b64url_encoded_len(in->aad_len)
           + akv_b64url_encoded_len(in->tag_len);
    if (akv_secret_alloc(body, need) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    body->len = (size_t)snprintf((char *)body->data, body->cap + 1,
                                 "{\"alg\":\"%s\"", name);
    add_b64_field(body, "value", in->value, in->value_len);
    if (in->iv_len > 0) {
        add_b64_field(body, "iv", in->iv, in->iv_len);
    }
    if (in->aad_len > 0) {
        add_b64_field(body, "aad", in->aad, in->aad_len);
    }
    if (in->tag_len > 0) {
        add_b64_field(body, "tag", in->tag, in->tag_len);
    }
    body->data[body->len++] = '}';
    body->data[body->len] = '\0';
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_json_parse_crypt_extra(const char *buf, size_t len,
                                 struct akv_kv_crypt_out *out)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    cJSON *root = parse(buf, len);
    static const char *const names[2] = {"iv", "tag"};

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root)) {
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, names[i]);
        uint8_t *dst = i == 0 ? out->iv : out->tag;
        size_t *dlen = i == 0 ? &out->iv_len : &out->tag_len;
        long r;

        if (x == NULL || cJSON_IsNull(x)) {
            continue;
        }
        if (!cJSON_IsString(x) || strlen(x->valuestring) > 24) {
            goto out;
        }
        r = akv_b64url_decode(x->valuestring, strlen(x->valuestring), dst, 16);
        if (r < 0 || r > 16) {
            goto out;
        }
        *dlen = (size_t)r;
    }
    rv = CKR_OK;
out:
    if (rv != CKR_OK) {
        memset(out, 0, sizeof(*out));
    }
    /* The same answer carries "value" (an encrypt's ciphertext, a
     * decrypt's plaintext): remote crypt data is wiped like a data key. */
    wipe_tree(root);
    cJSON_Delete(root);
    return rv;
}
