/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Envelope AEAD for stored values (seal.h, docs/STORE.md). The vault is
 * the only holder of the key that unwraps R and S; nothing here is cached
 * except S (inside the store, as derived MAC keys).
 */
#include "seal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../common/kvid.h"
#include "../common/log.h"
#include "../common/ossl.h"

#define SEAL_LABEL "akv-pkcs11 sealed value"

CK_RV akv_seal_choose(const struct akv_seal_cand *c, size_t n,
                      struct akv_seal_target *out)
{
    /* RSA first: an RSA key's public half also lets the module wrap
     * locally; oct-HSM only when no RSA key is configured. */
    static const struct {
        enum akv_kv_kty kty;
        enum akv_kv_alg alg;
    } rule[] = {
        {AKV_KV_KTY_RSA, AKV_KV_ALG_RSA_OAEP_256},
        {AKV_KV_KTY_OCT_HSM, AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD},
    };

    for (size_t r = 0; r < sizeof(rule) / sizeof(rule[0]); r++) {
        for (size_t i = 0; i < n; i++) {
            if (c[i].kty != rule[r].kty || c[i].name == NULL
                || c[i].version == NULL || c[i].version[0] == '\0'
                || c[i].kid == NULL) {
                continue;
            }
            memset(out, 0, sizeof(*out));
            (void)snprintf(out->name, sizeof(out->name), "%s", c[i].name);
            (void)snprintf(out->version, sizeof(out->version), "%s",
                           c[i].version);
            (void)snprintf(out->kid, sizeof(out->kid), "%s", c[i].kid);
            out->alg = rule[r].alg;
            return CKR_OK;
        }
    }
    return CKR_TEMPLATE_INCONSISTENT;
}

bool akv_seal_kid_split(const char *kid, char *name, char *version)
{
    struct akv_kvid_kid k;

    /* The module's one kid rule (common/kvid.h); a record's kid always
     * names a version. */
    if (akv_kvid_kid_parse(kid, &k) != 0 || k.version[0] == '\0') {
        return false;
    }
    memcpy(name, k.name, sizeof(k.name));
    memcpy(version, k.version, sizeof(k.version));
    return true;
}

bool akv_seal_is_current(const struct akv_store_record *rec,
                         const struct akv_seal_target *t)
{
    char n[AKV_KV_NAME_MAX], v[AKV_KV_VERSION_MAX];

    return rec->format == AKV_STORE_FORMAT_V2
           && akv_seal_kid_split(rec->kid, n, v) && strcasecmp(n, t->name) == 0
           && strcasecmp(v, t->version) == 0 && rec->alg != NULL
           && akv_kv_alg_parse(rec->alg) == (int)t->alg;
}

/* ---- associated data ---- */

struct buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void put_bytes(struct buf *b, const void *p, size_t len)
{
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 24)};
    size_t need = b->len + 4 + len;

    if (b->oom) {
        return;
    }
    if (need > b->cap) {
        size_t cap = need * 2;
        uint8_t *n = realloc(b->p, cap);
        if (n == NULL) {
            b->oom = true;
            return;
        }
        b->p = n;
        b->cap = cap;
    }
    memcpy(b->p + b->len, hdr, 4);
    if (len > 0) {
        memcpy(b->p + b->len + 4, p, len);
    }
    b->len = need;
}

/* The binding is the vault URL as configured, compared as Key Vault does:
 * scheme and host case-insensitive, without a trailing slash. */
static void put_binding(struct buf *b, const char *url)
{
    char canon[512];
    size_t len = url != NULL ? strlen(url) : 0;

    while (len > 0 && url[len - 1] == '/') {
        len--;
    }
    if (len >= sizeof(canon)) {
        len = sizeof(canon) - 1;
    }
    for (size_t i = 0; i < len; i++) {
        canon[i] = (char)tolower((unsigned char)url[i]);
    }
    put_bytes(b, canon, len);
}

CK_RV akv_seal_ad(const char *binding, const struct akv_store_record *rec,
                  uint8_t **out, size_t *out_len)
{
    struct buf b = {NULL, 0, 0, false};
    uint8_t ver[4] = {AKV_STORE_FORMAT_V2, 0, 0, 0};
    uint8_t gen[8];

    for (int i = 0; i < 8; i++) {
        gen[i] = (uint8_t)(rec->generation >> (8 * i));
    }
    put_bytes(&b, SEAL_LABEL, strlen(SEAL_LABEL));
    put_bytes(&b, ver, sizeof(ver));
    put_binding(&b, binding);
    put_bytes(&b, rec->id, strlen(rec->id));
    put_bytes(&b, gen, sizeof(gen));
    put_bytes(&b, rec->attrs, rec->attrs_len);
    put_bytes(&b, rec->kid, rec->kid != NULL ? strlen(rec->kid) : 0);
    put_bytes(&b, rec->alg, rec->alg != NULL ? strlen(rec->alg) : 0);
    put_bytes(&b, rec->wrapped, rec->wrapped_len);
    if (b.oom) {
        free(b.p);
        return CKR_HOST_MEMORY;
    }
    *out = b.p;
    *out_len = b.len;
    return CKR_OK;
}

/* AES-256-GCM: ENC ? seal IN into nonce|ct|tag : open nonce|ct|tag.
 * Returns 0, or -1 (for open: authentication failed). */
static int gcm(bool enc, const uint8_t *key, const uint8_t *ad, size_t ad_len,
               const uint8_t *in, size_t in_len, uint8_t *out)
{
    /* Fetched from the module's private context: the host's providers
     * and default_properties cannot change or break it (common/ossl.h). */
    EVP_CIPHER *aes = EVP_CIPHER_fetch(akv_ossl_libctx(), "AES-256-GCM", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const uint8_t *nonce = enc ? out : in;
    int n = 0, rc = -1;

    if (ctx == NULL || aes == NULL) {
        goto out;
    }
    if (enc) {
        if (RAND_bytes_ex(akv_ossl_libctx(), out, AKV_SEAL_NONCE_LEN, 0) != 1
            || EVP_EncryptInit_ex2(ctx, aes, key, nonce, NULL) != 1
            || EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1
            || EVP_EncryptUpdate(ctx, out + AKV_SEAL_NONCE_LEN, &n, in,
                                 (int)in_len)
                   != 1
            || EVP_EncryptFinal_ex(ctx, out + AKV_SEAL_NONCE_LEN + n, &n) != 1
            || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AKV_SEAL_TAG_LEN,
                                   out + AKV_SEAL_NONCE_LEN + in_len)
                   != 1) {
            goto out;
        }
    } else {
        size_t ct_len = in_len - AKV_SEAL_NONCE_LEN - AKV_SEAL_TAG_LEN;

        if (EVP_DecryptInit_ex2(ctx, aes, key, nonce, NULL) != 1
            || EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1
            || EVP_DecryptUpdate(ctx, out, &n, in + AKV_SEAL_NONCE_LEN,
                                 (int)ct_len)
                   != 1
            || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AKV_SEAL_TAG_LEN,
                                   (void *)(in + in_len - AKV_SEAL_TAG_LEN))
                   != 1
            || EVP_DecryptFinal_ex(ctx, out + n, &n) != 1) {
            goto out;
        }
    }
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(aes);
    return rc;
}

/* ---- the store secret ---- */

static CK_RV unwrap_with(const struct akv_seal_ctx *c, const char *kid,
                         const char *alg_name, const uint8_t *in, size_t in_len,
                         struct akv_secret *out)
{
    char name[AKV_KV_NAME_MAX], version[AKV_KV_VERSION_MAX];
    int alg = akv_kv_alg_parse(alg_name);

    if (!akv_seal_kid_split(kid, name, version) || alg < 0) {
        return CKR_KEY_HANDLE_INVALID;
    }
    /* A network call: the caller holds no lock. */
    return c->kv->ops->unwrap(c->kv, name, version, (enum akv_kv_alg)alg, in,
                              in_len, out);
}

/* Wraps IN with T; *kid_out receives the kid the vault used, which must
 * name T's key and version (else the record could never be opened). */
static CK_RV wrap_with(const struct akv_seal_ctx *c,
                       const struct akv_seal_target *t, const uint8_t *in,
                       size_t in_len, uint8_t **out, size_t *out_len,
                       char kid_out[AKV_KV_KID_MAX])
{
    char n[AKV_KV_NAME_MAX], v[AKV_KV_VERSION_MAX];
    CK_RV rv;

    kid_out[0] = '\0';
    if (c->local_wrap != NULL
        && c->local_wrap(c->local_arg, t, in, in_len, out, out_len) == CKR_OK) {
        (void)snprintf(kid_out, AKV_KV_KID_MAX, "%s", t->kid);
        return CKR_OK;
    }
    rv = c->kv->ops->wrap(c->kv, t->name, t->version, t->alg, in, in_len, out,
                          out_len, kid_out);
    if (rv != CKR_OK) {
        return rv;
    }
    if (kid_out[0] == '\0') {
        (void)snprintf(kid_out, AKV_KV_KID_MAX, "%s", t->kid);
    }
    if (!akv_seal_kid_split(kid_out, n, v) || strcasecmp(n, t->name) != 0
        || strcasecmp(v, t->version) != 0) {
        AKV_LOG_ERR("wrapKey with %s/%s answered for another key version",
                    t->name, t->version);
        free(*out);
        *out = NULL;
        return CKR_DEVICE_ERROR;
    }
    return CKR_OK;
}

CK_RV akv_seal_ready(const struct akv_seal_ctx *c,
                     const struct akv_seal_target *t)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_store_key k = {NULL, NULL, NULL, 0};
    struct akv_secret s = AKV_SECRET_INIT;
    uint8_t fresh[AKV_STORE_SECRET_LEN];
    char kid[AKV_KV_KID_MAX];

    for (int attempt = 0; attempt < 2; attempt++) {
        if (akv_store_has_secret(c->store)) {
            rv = CKR_OK;
            goto out;
        }
        rv = akv_store_key_get(c->store, &k);
        if (rv == CKR_OK) {
            rv = unwrap_with(c, k.kid, k.alg, k.wrapped, k.wrapped_len, &s);
            if (rv != CKR_OK) {
                AKV_LOG_ERR("store key: unwrap with %s failed (rv 0x%lx): "
                            "token objects unavailable",
                            k.kid, (unsigned long)rv);
                goto out;
            }
            if (s.len != AKV_STORE_SECRET_LEN) {
                AKV_LOG_ERR("store key: unwrapped to %zu bytes, not %u", s.len,
                            AKV_STORE_SECRET_LEN);
                rv = CKR_DEVICE_ERROR;
                goto out;
            }
            rv = akv_store_set_secret(c->store, s.data, s.len);
            goto out;
        }
        if (rv != CKR_OBJECT_HANDLE_INVALID) {
            goto out;
        }
        /* First use of this store by format 2. */
        if (t == NULL) {
            rv = CKR_TEMPLATE_INCONSISTENT;
            goto out;
        }
        if (RAND_priv_bytes_ex(akv_ossl_libctx(), fresh, sizeof(fresh), 0)
            != 1) {
            rv = CKR_GENERAL_ERROR;
            goto out;
        }
        k.alg = strdup(akv_kv_alg_name(t->alg));
        if (k.alg == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        rv = wrap_with(c, t, fresh, sizeof(fresh), &k.wrapped, &k.wrapped_len,
                       kid);
        if (rv != CKR_OK) {
            goto out;
        }
        /* Once per store lifetime, before anything is sealed under S: the
         * vault must open what was just wrapped. A wrong answer (a hostile
         * or faulty vault) or a local wrap with a public key that is not
         * the vault's (a tampered Get Key answer or cache entry) would
         * otherwise lose every token object made from now on - and hand
         * them to whoever holds that key. One unwrap call. */
        rv = unwrap_with(c, kid, k.alg, k.wrapped, k.wrapped_len, &s);
        /* The vault saying "not made under this key" (400) is the wrong
         * wrap too; other errors (revoked, unreachable) pass through. */
        if (rv == CKR_WRAPPED_KEY_INVALID
            || (rv == CKR_OK
                && (s.len != sizeof(fresh)
                    || CRYPTO_memcmp(s.data, fresh, sizeof(fresh)) != 0))) {
            rv = CKR_DEVICE_ERROR;
        }
        if (rv != CKR_OK) {
            AKV_LOG_ERR("store key: the new store secret wrapped with %s "
                        "does not unwrap back to itself (rv 0x%lx); store "
                        "not created",
                        kid, (unsigned long)rv);
            goto out;
        }
        akv_secret_clear(&s);
        k.kid = strdup(kid);
        if (k.kid == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        rv = akv_store_key_create(c->store, &k, fresh, sizeof(fresh));
        if (rv != CKR_FUNCTION_FAILED) {
            goto out;
        }
        /* Another process created it meanwhile: use theirs. */
        akv_store_key_clear(&k);
    }
out:
    akv_secret_wipe(fresh, sizeof(fresh));
    akv_secret_clear(&s);
    akv_store_key_clear(&k);
    return rv;
}

/* ---- records ---- */

CK_RV akv_seal_seal(const struct akv_seal_ctx *c,
                    const struct akv_seal_target *t,
                    struct akv_store_record *rec, const uint8_t *value,
                    size_t len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    uint8_t r[AKV_SEAL_KEY_LEN];
    uint8_t *ad = NULL;
    size_t ad_len = 0;
    char kid[AKV_KV_KID_MAX];

    if (c == NULL || t == NULL || rec == NULL || value == NULL || len == 0
        || len + AKV_SEAL_NONCE_LEN + AKV_SEAL_TAG_LEN > AKV_STORE_SEALED_MAX) {
        return CKR_ARGUMENTS_BAD;
    }
    if (rec->id[0] == '\0') {
        rv = akv_store_new_id(rec->id);
        if (rv != CKR_OK) {
            return rv;
        }
    }
    /* The generation is random, not a counter: the value is sealed before
     * the store lock is taken (no lock across the vault call), and a
     * reader only needs it to differ from every older copy. */
    do {
        if (RAND_bytes_ex(akv_ossl_libctx(), (uint8_t *)&rec->generation,
                          sizeof(rec->generation), 0)
            != 1) {
            return CKR_GENERAL_ERROR;
        }
    } while (rec->generation == 0);
    if (RAND_priv_bytes_ex(akv_ossl_libctx(), r, sizeof(r), 0) != 1) {
        return CKR_GENERAL_ERROR;
    }
    rv = wrap_with(c, t, r, sizeof(r), &rec->wrapped, &rec->wrapped_len, kid);
    if (rv != CKR_OK) {
        goto out;
    }
    rec->kid = strdup(kid);
    rec->alg = strdup(akv_kv_alg_name(t->alg));
    rec->sealed_len = AKV_SEAL_NONCE_LEN + len + AKV_SEAL_TAG_LEN;
    rec->sealed = malloc(rec->sealed_len);
    if (rec->kid == NULL || rec->alg == NULL || rec->sealed == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    rec->format = AKV_STORE_FORMAT_V2;
    rv = akv_seal_ad(c->binding, rec, &ad, &ad_len);
    if (rv != CKR_OK) {
        goto out;
    }
    if (gcm(true, r, ad, ad_len, value, len, rec->sealed) != 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = CKR_OK;
out:
    akv_secret_wipe(r, sizeof(r));
    free(ad);
    if (rv != CKR_OK) {
        free(rec->kid);
        free(rec->alg);
        free(rec->wrapped);
        free(rec->sealed);
        rec->kid = rec->alg = NULL;
        rec->wrapped = rec->sealed = NULL;
        rec->wrapped_len = rec->sealed_len = 0;
    }
    return rv;
}

CK_RV akv_seal_open(const struct akv_seal_ctx *c,
                    const struct akv_store_record *rec, struct akv_secret *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret r = AKV_SECRET_INIT;
    struct akv_secret v = AKV_SECRET_INIT;
    uint8_t *ad = NULL;
    size_t ad_len = 0;

    if (rec->format == AKV_STORE_FORMAT_V1) {
        /* Legacy: the value itself is vault-wrapped; the store has already
         * matched the file against its adopted SHA-256. */
        return unwrap_with(c, rec->kid, rec->alg, rec->wrapped,
                           rec->wrapped_len, out);
    }
    if (rec->format != AKV_STORE_FORMAT_V2
        || rec->sealed_len <= AKV_SEAL_NONCE_LEN + AKV_SEAL_TAG_LEN) {
        return CKR_KEY_HANDLE_INVALID;
    }
    rv = unwrap_with(c, rec->kid, rec->alg, rec->wrapped, rec->wrapped_len, &r);
    if (rv != CKR_OK) {
        goto out;
    }
    if (r.len != AKV_SEAL_KEY_LEN) {
        AKV_LOG_ERR("store record %s refused: record key unwrapped to %zu "
                    "bytes (not sealed by this token)",
                    rec->id, r.len);
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = akv_seal_ad(c->binding, rec, &ad, &ad_len);
    if (rv != CKR_OK) {
        goto out;
    }
    if (akv_secret_alloc(&v, rec->sealed_len - AKV_SEAL_NONCE_LEN
                                 - AKV_SEAL_TAG_LEN)
        != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (gcm(false, r.data, ad, ad_len, rec->sealed, rec->sealed_len, v.data)
        != 0) {
        AKV_LOG_ERR("store record %s refused: sealed value fails "
                    "authentication (attributes changed, or value moved "
                    "from another record or token)",
                    rec->id);
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    *out = v;
    memset(&v, 0, sizeof(v));
    rv = CKR_OK;
out:
    akv_secret_clear(&r);
    akv_secret_clear(&v);
    free(ad);
    return rv;
}

CK_RV akv_seal_reseal(const struct akv_seal_ctx *c,
                      const struct akv_seal_target *t,
                      const struct akv_store_record *old, const uint8_t *attrs,
                      size_t attrs_len, struct akv_store_record *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret v = AKV_SECRET_INIT;

    memset(out, 0, sizeof(*out));
    memcpy(out->id, old->id, sizeof(out->id));
    if (attrs == NULL) {
        attrs = old->attrs;
        attrs_len = old->attrs_len;
    }
    out->attrs = malloc(attrs_len > 0 ? attrs_len : 1);
    if (out->attrs == NULL) {
        return CKR_HOST_MEMORY;
    }
    if (attrs_len > 0) {
        memcpy(out->attrs, attrs, attrs_len);
    }
    out->attrs_len = attrs_len;
    rv = akv_seal_open(c, old, &v);
    if (rv == CKR_OK) {
        rv = akv_seal_seal(c, t, out, v.data, v.len);
    }
    akv_secret_clear(&v);
    if (rv != CKR_OK) {
        akv_store_record_clear(out);
    }
    return rv;
}
