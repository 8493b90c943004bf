/* SPDX-License-Identifier: Apache-2.0 */
#include "kv_fake.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#define MAX_KEYS     4
#define MAX_VERSIONS 8

struct fake_version {
    char version[33];
    EVP_PKEY *rsa;
    uint8_t aes[32];
    uint8_t *cert; /* kv_fake_add_cert: DER, or NULL */
    size_t cert_len;
};

struct fake_key {
    char name[64];
    enum akv_kv_kty kty;
    unsigned key_ops;
    unsigned bits;
    bool hide_size; /* Get Key leaves key_size out (Managed HSM) */
    struct fake_version v[MAX_VERSIONS];
    int n;
};

struct kv_fake {
    struct akv_kv base; /* first member */
    struct fake_key keys[MAX_KEYS];
    int n_keys;
    unsigned fail_ops;
    CK_RV fail_rv;
    char fail_version[AKV_KV_VERSION_MAX]; /* "" = any */
    unsigned delay_ops; /* ops that sleep delay_ms before answering */
    long delay_ms;
    unsigned calls_get;
    unsigned calls_wrap;
    unsigned calls_unwrap;
    int last_alg; /* alg of the last wrap/unwrap, -1 before any */
    unsigned calls_sign;
    unsigned calls_cert;

    unsigned calls_create;
    unsigned calls_delete;
    struct akv_kv_create last_create; /* kty/crv point into last_kty */
    char last_kty[16];
    unsigned calls_crypt;
    int sign_tamper; /* kv_fake_sign_tamper */
};

static struct fake_key *find_key(struct kv_fake *f, const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (int i = 0; i < f->n_keys; i++) {
        if (strcasecmp(f->keys[i].name, name) == 0) {
            return &f->keys[i];
        }
    }
    return NULL;
}

static struct fake_version *find_version(struct fake_key *k,
                                         const char *version)
{
    if (k == NULL || k->n == 0) {
        return NULL;
    }
    if (version == NULL || version[0] == '\0') {
        return &k->v[k->n - 1];
    }
    for (int i = 0; i < k->n; i++) {
        if (strcasecmp(k->v[i].version, version) == 0) {
            return &k->v[i];
        }
    }
    return NULL;
}

static const char *new_version(struct fake_key *k)
{
    struct fake_version *v = NULL;
    uint8_t r[16];

    if (k == NULL || k->n >= MAX_VERSIONS || RAND_bytes(r, sizeof(r)) != 1) {
        return NULL;
    }
    v = &k->v[k->n];
    for (int i = 0; i < 16; i++) {
        snprintf(v->version + 2 * i, 3, "%02x", r[i]);
    }
    if (k->kty == AKV_KV_KTY_RSA) {
        v->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        if (v->rsa == NULL) {
            return NULL;
        }
    } else if (RAND_bytes(v->aes, (int)(k->bits / 8)) != 1) {
        return NULL;
    }
    k->n++;
    return v->version;
}

/* A slow vault (or a black-holed one until the HTTP budget ends). */
static void maybe_delay(const struct kv_fake *f, unsigned op)
{
    struct timespec ts;

    if (!(f->delay_ops & op) || f->delay_ms <= 0) {
        return;
    }
    ts.tv_sec = f->delay_ms / 1000;
    ts.tv_nsec = (f->delay_ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The injected failure comes before the lookup (as a 403 or a transport
 * error would); a version-bound one needs the call to resolve to it. */
static CK_RV check_fail(struct kv_fake *f, unsigned op,
                        const struct fake_version *v)
{
    if (!(f->fail_ops & op)) {
        return CKR_OK;
    }
    if (f->fail_version[0] != '\0'
        && (v == NULL || strcmp(f->fail_version, v->version) != 0)) {
        return CKR_OK;
    }
    return f->fail_rv;
}

static CK_RV bn_param(EVP_PKEY *pk, const char *name, uint8_t **out,
                      size_t *len)
{
    BIGNUM *bn = NULL;

    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1) {
        return CKR_GENERAL_ERROR;
    }
    *len = (size_t)BN_num_bytes(bn);
    *out = malloc(*len);
    BN_bn2bin(bn, *out);
    BN_free(bn);
    return CKR_OK;
}

static CK_RV fake_get_key(struct akv_kv *kv, const char *name,
                          const char *version, struct akv_kv_key *out)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = find_version(k, version);
    CK_RV rv;

    __atomic_add_fetch(&f->calls_get, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_GET);
    rv = check_fail(f, KV_FAKE_GET, v);
    if (rv != CKR_OK) {
        return rv;
    }
    if (v == NULL) {
        return CKR_KEY_HANDLE_INVALID;
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->kid, sizeof(out->kid),
             "https://fake.vault.azure.net/keys/%s/%s", k->name, v->version);
    snprintf(out->name, sizeof(out->name), "%s", k->name);
    snprintf(out->version, sizeof(out->version), "%s", v->version);
    out->kty = k->kty;
    snprintf(out->kty_name, sizeof(out->kty_name), "%s",
             k->kty == AKV_KV_KTY_RSA ? "RSA-HSM" : "oct-HSM");
    out->key_ops = k->key_ops;
    out->enabled = true;
    /* Versions are created one minute apart, oldest first (Key Vault's
     * attributes.created; the rotation fallback orders by it). */
    out->created = 1700000000 + 60 * (int64_t)(v - k->v);
    if (k->kty == AKV_KV_KTY_RSA) {
        bn_param(v->rsa, OSSL_PKEY_PARAM_RSA_N, &out->n, &out->n_len);
        bn_param(v->rsa, OSSL_PKEY_PARAM_RSA_E, &out->e, &out->e_len);
    } else {
        out->oct_bits = k->hide_size ? 0 : k->bits;
    }
    return CKR_OK;
}

static int set_padding(EVP_PKEY_CTX *c, enum akv_kv_alg alg)
{
    const char *md = alg == AKV_KV_ALG_RSA_OAEP ? "SHA1" : "SHA256";

    if (alg == AKV_KV_ALG_RSA1_5) {
        return EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0;
    }
    if (alg != AKV_KV_ALG_RSA_OAEP && alg != AKV_KV_ALG_RSA_OAEP_256) {
        return 0;
    }
    return EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0
           && EVP_PKEY_CTX_set_rsa_oaep_md_name(c, md, NULL) > 0
           && EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, md, NULL) > 0;
}

static const char *kw_name(unsigned bits, enum akv_kv_alg alg)
{
    bool pad = alg == AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD;

    switch (bits) {
    case 128:
        return pad ? "AES-128-WRAP-PAD" : "AES-128-WRAP";
    case 192:
        return pad ? "AES-192-WRAP-PAD" : "AES-192-WRAP";
    default:
        return pad ? "AES-256-WRAP-PAD" : "AES-256-WRAP";
    }
}

static CK_RV aes_kw(struct fake_key *k, struct fake_version *v,
                    enum akv_kv_alg alg, int enc, const uint8_t *in,
                    size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, kw_name(k->bits, alg), NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0;
    int l2 = 0;
    CK_RV rv = enc ? CKR_GENERAL_ERROR : CKR_WRAPPED_KEY_INVALID;
    /* As the service: A128KW/A192KW/A256KW name the key's size (400
     * otherwise); CKM_AES_KEY_WRAP(_PAD) work at any size. */
    unsigned named = alg == AKV_KV_ALG_A128KW   ? 128
                     : alg == AKV_KV_ALG_A192KW ? 192
                     : alg == AKV_KV_ALG_A256KW ? 256
                                                : k->bits;

    if (named != k->bits) {
        rv = CKR_MECHANISM_INVALID;
    } else if (EVP_CipherInit_ex2(ctx, c, v->aes, NULL, enc, NULL) == 1

               && EVP_CipherUpdate(ctx, out, &l1, in, (int)in_len) == 1
               && EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1) {
        *out_len = (size_t)(l1 + l2);
        rv = CKR_OK;
    }
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return rv;
}

static CK_RV fake_wrap(struct akv_kv *kv, const char *name, const char *version,
                       enum akv_kv_alg alg, const uint8_t *in, size_t in_len,
                       uint8_t **out, size_t *out_len, char *kid_out)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = find_version(k, version);
    CK_RV rv;

    __atomic_add_fetch(&f->calls_wrap, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_WRAP);

    __atomic_store_n(&f->last_alg, (int)alg, __ATOMIC_RELAXED);
    rv = check_fail(f, KV_FAKE_WRAP, v);
    if (rv != CKR_OK) {
        return rv;
    }
    if (v == NULL) {
        return CKR_KEY_HANDLE_INVALID;
    }
    if (!(k->key_ops & AKV_KV_OP_WRAPKEY)) {
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    *out = malloc(in_len + 1024);
    if (k->kty == AKV_KV_KTY_RSA) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(v->rsa, NULL);

        *out_len = 512;
        if (EVP_PKEY_encrypt_init(c) != 1 || !set_padding(c, alg)
            || EVP_PKEY_encrypt(c, *out, out_len, in, in_len) != 1) {
            rv = CKR_GENERAL_ERROR;
        }
        EVP_PKEY_CTX_free(c);
    } else {
        rv = aes_kw(k, v, alg, 1, in, in_len, *out, out_len);
    }
    if (rv != CKR_OK) {
        free(*out);
        *out = NULL;
        return rv;
    }
    if (kid_out != NULL) {
        snprintf(kid_out, AKV_KV_KID_MAX,
                 "https://fake.vault.azure.net/keys/%s/%s", k->name,
                 v->version);
    }
    return CKR_OK;
}

static CK_RV fake_unwrap(struct akv_kv *kv, const char *name,
                         const char *version, enum akv_kv_alg alg,
                         const uint8_t *in, size_t in_len,
                         struct akv_secret *out)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = find_version(k, version);
    uint8_t buf[1024];
    size_t len = sizeof(buf);
    CK_RV rv;

    __atomic_add_fetch(&f->calls_unwrap, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_UNWRAP);

    __atomic_store_n(&f->last_alg, (int)alg, __ATOMIC_RELAXED);
    rv = check_fail(f, KV_FAKE_UNWRAP, v);
    if (rv != CKR_OK) {
        return rv;
    }
    if (v == NULL) {
        return CKR_KEY_HANDLE_INVALID;
    }
    if (!(k->key_ops & AKV_KV_OP_UNWRAPKEY)) {
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (k->kty == AKV_KV_KTY_RSA) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(v->rsa, NULL);

        if (EVP_PKEY_decrypt_init(c) != 1 || !set_padding(c, alg)
            || EVP_PKEY_decrypt(c, buf, &len, in, in_len) != 1) {
            rv = CKR_WRAPPED_KEY_INVALID; /* the vault's 400 */
        }
        EVP_PKEY_CTX_free(c);
    } else if (in_len > sizeof(buf)) {
        rv = CKR_WRAPPED_KEY_INVALID;
    } else {
        rv = aes_kw(k, v, alg, 0, in, in_len, buf, &len);
    }
    if (rv == CKR_OK && akv_secret_set(out, buf, len) != 0) {
        rv = CKR_HOST_MEMORY;
    }
    akv_secret_wipe(buf, sizeof(buf));
    return rv;
}

/* Key Vault "Sign": RS256..PS512 over the given digest with the version's
 * RSA key (PSS salt = hash length, as Key Vault does). */
static CK_RV fake_sign(struct akv_kv *kv, const char *name, const char *version,
                       enum akv_kv_alg alg, const uint8_t *dig, size_t dig_len,
                       uint8_t **out, size_t *out_len)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = find_version(k, version);
    EVP_PKEY_CTX *c = NULL;
    const char *md = NULL;
    size_t len = 0;
    CK_RV rv;

    __atomic_add_fetch(&f->calls_sign, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_SIGN);
    rv = check_fail(f, KV_FAKE_SIGN, v);
    if (rv != CKR_OK) {
        return rv;
    }
    if (v == NULL) {
        return CKR_KEY_HANDLE_INVALID;
    }
    if (!(k->key_ops & AKV_KV_OP_SIGN) || k->kty != AKV_KV_KTY_RSA) {
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    switch (alg) {
    case AKV_KV_ALG_RS256:
    case AKV_KV_ALG_PS256:
        md = "SHA256";
        break;
    case AKV_KV_ALG_RS384:
    case AKV_KV_ALG_PS384:
        md = "SHA384";
        break;
    case AKV_KV_ALG_RS512:
    case AKV_KV_ALG_PS512:
        md = "SHA512";
        break;
    case AKV_KV_ALG_RSNULL:
        break; /* PKCS#1 v1.5 over the bytes as given */
    default:
        return CKR_GENERAL_ERROR; /* the vault's 400 for a bad alg */
    }
    rv = CKR_GENERAL_ERROR;
    c = EVP_PKEY_CTX_new(v->rsa, NULL);
    len = (size_t)EVP_PKEY_get_size(v->rsa);
    *out = malloc(len);
    if (c == NULL || *out == NULL || EVP_PKEY_sign_init(c) != 1
        || (md != NULL
            && EVP_PKEY_CTX_set_signature_md(c, EVP_get_digestbyname(md))
                   != 1)) {
        goto out;
    }
    if (alg >= AKV_KV_ALG_PS256 && alg <= AKV_KV_ALG_PS512
        && (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST)
                   != 1)) {
        goto out;
    }
    if (EVP_PKEY_sign(c, *out, &len, dig, dig_len) != 1) {
        goto out;
    }
    if (f->sign_tamper) {
        (*out)[len / 2] ^= 0x01; /* right length, not a signature */
    }
    *out_len = len;
    rv = CKR_OK;
out:
    if (rv != CKR_OK) {
        free(*out);
        *out = NULL;
    }
    EVP_PKEY_CTX_free(c);
    return rv;
}

/* Create Key: RSA keys only (the fake's key type); an existing name with
 * new_only -> CKR_ATTRIBUTE_VALUE_INVALID, as kv.h says. */
static CK_RV fake_create_key(struct akv_kv *kv, const char *name,
                             const struct akv_kv_create *req,
                             struct akv_kv_key *out)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    CK_RV rv;

    __atomic_add_fetch(&f->calls_create, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_CREATE);
    rv = check_fail(f, KV_FAKE_CREATE, NULL);
    if (rv != CKR_OK) {
        return rv;
    }
    if (req->new_only && find_key(f, name) != NULL) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (strncmp(req->kty, "RSA", 3) != 0 || f->n_keys == MAX_KEYS) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    f->last_create = *req;
    snprintf(f->last_kty, sizeof(f->last_kty), "%s", req->kty);
    f->last_create.kty = f->last_kty;
    f->last_create.crv = NULL;
    kv_fake_add_rsa(f, name, req->key_ops);
    return fake_get_key(kv, name, NULL, out);
}

/* Delete Key: every version goes (Get Key answers 404 afterwards). */
static CK_RV fake_delete_key(struct akv_kv *kv, const char *name)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    struct fake_key *k = find_key(f, name);
    CK_RV rv;

    __atomic_add_fetch(&f->calls_delete, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_DELETE);
    rv = check_fail(f, KV_FAKE_DELETE, NULL);
    if (rv != CKR_OK) {
        return rv;
    }
    if (k == NULL || k->n == 0) {
        return CKR_KEY_HANDLE_INVALID;
    }
    for (int j = 0; j < k->n; j++) {
        EVP_PKEY_free(k->v[j].rsa);
        k->v[j].rsa = NULL;
    }
    k->n = 0;
    k->name[0] = '\0';
    return CKR_OK;
}

const struct akv_kv_create *kv_fake_last_create(struct kv_fake *f)
{
    return f->last_create.kty != NULL ? &f->last_create : NULL;
}

void kv_fake_sign_tamper(struct kv_fake *f, int on)
{
    f->sign_tamper = on;
}

static void fake_destroy(struct akv_kv *kv)
{
    /* The test owns the fake (kv_fake_free), so a token can be finalised
     * and re-created against the same vault. */
    (void)kv;
}

void kv_fake_free(struct kv_fake *f)
{
    if (f == NULL) {
        return;
    }
    for (int i = 0; i < f->n_keys; i++) {
        for (int j = 0; j < f->keys[i].n; j++) {
            EVP_PKEY_free(f->keys[i].v[j].rsa);
            free(f->keys[i].v[j].cert);
        }
    }
    free(f);
}

/* Get Certificate: a self-signed certificate of the key's version that
 * kv_fake_add_cert made (the newest such one without VERSION). */
static CK_RV fake_get_certificate(struct akv_kv *kv, const char *name,
                                  const char *version, struct akv_kv_cert *out)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = NULL;
    CK_RV rv;

    __atomic_add_fetch(&f->calls_cert, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_CERT);
    for (int i = k != NULL ? k->n - 1 : -1; i >= 0 && v == NULL; i--) {
        if (k->v[i].cert != NULL
            && (version == NULL || version[0] == '\0'
                || strcasecmp(version, k->v[i].version) == 0)) {
            v = &k->v[i];
        }
    }
    rv = check_fail(f, KV_FAKE_CERT, v);
    if (rv != CKR_OK) {
        return rv;
    }
    if (v == NULL) {
        return CKR_KEY_HANDLE_INVALID;
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->kid, sizeof(out->kid),
             "https://fake.vault.azure.net/keys/%s/%s", k->name, v->version);
    snprintf(out->name, sizeof(out->name), "%s", k->name);
    snprintf(out->version, sizeof(out->version), "%s", v->version);
    out->der = malloc(v->cert_len);
    if (out->der == NULL) {
        return CKR_HOST_MEMORY;
    }
    memcpy(out->der, v->cert, v->cert_len);
    out->der_len = v->cert_len;
    return CKR_OK;
}

/* AES in MODE (enum akv_kv_aes_mode) with the version's key of BITS;
 * GCM: 12-byte IV, 16-byte tag read from / written to TAG. 0 or -1. */
static int aes_run(const uint8_t *key, unsigned bits, int mode, int enc,
                   const uint8_t *iv, const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t *out_len, uint8_t *tag)
{
    char name[32];
    EVP_CIPHER *c = NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0;
    int l2 = 0;
    int rc = -1;
    bool gcm = mode == AKV_KV_AES_GCM;

    snprintf(name, sizeof(name), "AES-%u-%s", bits, gcm ? "GCM" : "CBC");
    c = EVP_CIPHER_fetch(NULL, name, NULL);
    if (c == NULL || ctx == NULL
        || EVP_CipherInit_ex2(ctx, c, NULL, NULL, enc, NULL) != 1
        || (gcm
            && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1)
        || EVP_CipherInit_ex2(ctx, NULL, key, iv, enc, NULL) != 1
        || EVP_CIPHER_CTX_set_padding(ctx, mode == AKV_KV_AES_CBCPAD) != 1
        || (gcm && aad_len > 0
            && EVP_CipherUpdate(ctx, NULL, &l1, aad, (int)aad_len) != 1)
        || (gcm && !enc
            && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1)
        || EVP_CipherUpdate(ctx, out, &l1, in, (int)in_len) != 1
        || EVP_CipherFinal_ex(ctx, out + l1, &l2) != 1
        || (gcm && enc
            && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)) {
        goto out;
    }
    *out_len = (size_t)(l1 + l2);
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return rc;
}

/* Managed HSM "Encrypt" / "Decrypt" on oct-HSM keys: the alg names the
 * size (400 -> CKR_DATA_INVALID / CKR_ENCRYPTED_DATA_INVALID when it is not
 * the key's, as any refused input); GCM encrypt picks the IV itself. */
static CK_RV fake_crypt(struct akv_kv *kv, const char *name,
                        const char *version, bool decrypt, enum akv_kv_alg alg,
                        const struct akv_kv_crypt_in *in,
                        struct akv_secret *out, struct akv_kv_crypt_out *extra)
{
    struct kv_fake *f = (struct kv_fake *)kv;
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = find_version(k, version);
    CK_RV bad = decrypt ? CKR_ENCRYPTED_DATA_INVALID : CKR_DATA_INVALID;
    int a = (int)alg - (int)AKV_KV_ALG_A128GCM;
    int mode = a / 3;
    unsigned bits = 128 + 64 * (unsigned)(a % 3);
    uint8_t tag[16];
    size_t len = 0;
    CK_RV rv;

    __atomic_add_fetch(&f->calls_crypt, 1, __ATOMIC_RELAXED);
    maybe_delay(f, KV_FAKE_CRYPT);
    __atomic_store_n(&f->last_alg, (int)alg, __ATOMIC_RELAXED);
    rv = check_fail(f, KV_FAKE_CRYPT, v);
    if (rv != CKR_OK) {
        return rv;
    }
    if (v == NULL) {
        return CKR_KEY_HANDLE_INVALID;
    }
    if (!(k->key_ops & (decrypt ? AKV_KV_OP_DECRYPT : AKV_KV_OP_ENCRYPT))) {
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (a < 0 || alg >= AKV_KV_ALG_COUNT || k->kty != AKV_KV_KTY_OCT_HSM
        || bits != k->bits || in->value_len == 0) {
        return bad;
    }
    if (mode == AKV_KV_AES_GCM ? (
            decrypt ? in->iv_len != 12 || in->tag_len != 16 : in->iv_len != 0)
                               : in->iv_len != 16) {
        return bad;
    }
    if (decrypt && mode == AKV_KV_AES_GCM) {
        memcpy(tag, in->tag, 16);
    }
    if (akv_secret_alloc(out, in->value_len + 16) != 0) {
        return CKR_HOST_MEMORY;
    }
    if (aes_run(v->aes, bits, mode, !decrypt,
                mode == AKV_KV_AES_GCM && !decrypt
                    ? (const uint8_t *)"123456789012"
                    : in->iv,
                in->aad, in->aad_len, in->value, in->value_len, out->data, &len,
                tag)
        != 0) {
        akv_secret_clear(out);
        return bad;
    }
    out->len = len;
    if (extra != NULL) {
        memset(extra, 0, sizeof(*extra));
        if (mode == AKV_KV_AES_GCM && !decrypt) {
            /* The HSM's IV and the tag, as Managed HSM answers them. */
            memcpy(extra->iv, "123456789012", 12);
            extra->iv_len = 12;
            memcpy(extra->tag, tag, 16);
            extra->tag_len = 16;
        }
    }
    return CKR_OK;
}

size_t kv_fake_aes(struct kv_fake *f, const char *name, const char *version,
                   int mode, const uint8_t *iv, const uint8_t *aad,
                   size_t aad_len, const uint8_t *in, size_t in_len,
                   uint8_t *out, uint8_t *tag)
{
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = find_version(k, version);
    size_t len = 0;

    if (v == NULL || k->kty != AKV_KV_KTY_OCT_HSM
        || aes_run(v->aes, k->bits, mode, 1, iv, aad, aad_len, in, in_len, out,
                   &len, tag)
               != 0) {
        return 0;
    }
    return len;
}

/* Designated: a new operation in kv.h is NULL here until the fake has it. */
static const struct akv_kv_ops fake_ops = {
    .get_key = fake_get_key,
    .wrap = fake_wrap,
    .unwrap = fake_unwrap,
    .destroy = fake_destroy,
    .sign = fake_sign,
    .get_certificate = fake_get_certificate,
    .create_key = fake_create_key,
    .delete_key = fake_delete_key,
    .crypt = fake_crypt,
    .unwrap_probe = fake_unwrap,
};

const uint8_t *kv_fake_add_cert(struct kv_fake *f, const char *name,
                                EVP_PKEY *signer, size_t *len)
{
    struct fake_key *k = find_key(f, name);
    struct fake_version *v = find_version(k, NULL);
    X509 *x = NULL;
    X509_NAME *nm;
    unsigned char *der = NULL;
    int l = -1;

    if (v == NULL || v->rsa == NULL || (x = X509_new()) == NULL) {
        return NULL;
    }
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                               (const unsigned char *)name, -1, -1, 0);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC,
                               (const unsigned char *)"kv fake", -1, -1, 0);
    X509_set_issuer_name(x, nm);
    ASN1_INTEGER_set_int64(X509_get_serialNumber(x), 0x1234567890LL);
    X509_set_version(x, 2);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)1700000000);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)1900000000);
    X509_set_pubkey(x, v->rsa);
    if (X509_sign(x, signer != NULL ? signer : v->rsa, EVP_sha256()) > 0) {
        l = i2d_X509(x, &der);
    }
    X509_free(x);
    if (l <= 0) {
        return NULL;
    }
    free(v->cert);
    v->cert = malloc((size_t)l);
    if (v->cert == NULL) {
        OPENSSL_free(der);
        return NULL;
    }
    memcpy(v->cert, der, (size_t)l);
    v->cert_len = (size_t)l;
    OPENSSL_free(der);
    *len = v->cert_len;
    return v->cert;
}

EVP_PKEY *kv_fake_rsa(struct kv_fake *f, const char *name)
{
    struct fake_version *v = find_version(find_key(f, name), NULL);

    return v != NULL ? v->rsa : NULL;
}

struct kv_fake *kv_fake_new(void)
{
    struct kv_fake *f = calloc(1, sizeof(*f));

    if (f != NULL) {
        f->base.ops = &fake_ops;
        f->last_alg = -1;
    }
    return f;
}

struct akv_kv *kv_fake_kv(struct kv_fake *f)
{
    return &f->base;
}

void kv_fake_add_rsa(struct kv_fake *f, const char *name, unsigned key_ops)
{
    struct fake_key *k = &f->keys[f->n_keys++];

    snprintf(k->name, sizeof(k->name), "%s", name);
    k->kty = AKV_KV_KTY_RSA;
    k->key_ops = key_ops;
    (void)new_version(k);
}

void kv_fake_add_oct(struct kv_fake *f, const char *name, unsigned bits,
                     unsigned key_ops)
{
    struct fake_key *k = &f->keys[f->n_keys++];

    snprintf(k->name, sizeof(k->name), "%s", name);
    k->kty = AKV_KV_KTY_OCT_HSM;
    k->key_ops = key_ops;
    k->bits = bits;
    (void)new_version(k);
}

void kv_fake_hide_size(struct kv_fake *f, const char *name)
{
    struct fake_key *k = find_key(f, name);

    if (k != NULL) {
        k->hide_size = true;
    }
}

int kv_fake_last_alg(struct kv_fake *f)
{
    return __atomic_load_n(&f->last_alg, __ATOMIC_RELAXED);
}

const char *kv_fake_rotate(struct kv_fake *f, const char *name)
{
    return new_version(find_key(f, name));
}

const char *kv_fake_version(struct kv_fake *f, const char *name, int i)
{
    struct fake_key *k = find_key(f, name);

    return k != NULL && i < k->n ? k->v[i].version : NULL;
}

void kv_fake_delay(struct kv_fake *f, unsigned ops, long ms)
{
    f->delay_ops = ms > 0 ? ops : 0;
    f->delay_ms = ms;
}

void kv_fake_fail(struct kv_fake *f, unsigned ops, CK_RV rv)
{
    kv_fake_fail_version(f, ops, NULL, rv);
}

void kv_fake_fail_version(struct kv_fake *f, unsigned ops, const char *version,
                          CK_RV rv)
{
    f->fail_ops = rv == CKR_OK ? 0 : ops;
    f->fail_rv = rv;
    snprintf(f->fail_version, sizeof(f->fail_version), "%s",
             version != NULL ? version : "");
}

unsigned kv_fake_calls(struct kv_fake *f, unsigned ops)
{
    /* read while a vault call of another thread may count (test_nolock) */
    unsigned n = 0;

    n += (ops & KV_FAKE_GET) ? __atomic_load_n(&f->calls_get, __ATOMIC_RELAXED)
                             : 0;
    n += (ops & KV_FAKE_WRAP)
             ? __atomic_load_n(&f->calls_wrap, __ATOMIC_RELAXED)
             : 0;
    n += (ops & KV_FAKE_UNWRAP)
             ? __atomic_load_n(&f->calls_unwrap, __ATOMIC_RELAXED)
             : 0;
    n += (ops & KV_FAKE_SIGN)
             ? __atomic_load_n(&f->calls_sign, __ATOMIC_RELAXED)
             : 0;
    n += (ops & KV_FAKE_CREATE)
             ? __atomic_load_n(&f->calls_create, __ATOMIC_RELAXED)
             : 0;
    n += (ops & KV_FAKE_DELETE)
             ? __atomic_load_n(&f->calls_delete, __ATOMIC_RELAXED)
             : 0;
    n += (ops & KV_FAKE_CERT)
             ? __atomic_load_n(&f->calls_cert, __ATOMIC_RELAXED)
             : 0;
    n += (ops & KV_FAKE_CRYPT)
             ? __atomic_load_n(&f->calls_crypt, __ATOMIC_RELAXED)
             : 0;
    return n;
}

void kv_fake_reset_calls(struct kv_fake *f)
{
    __atomic_store_n(&f->calls_get, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->calls_wrap, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->calls_unwrap, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->calls_sign, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->calls_create, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->calls_delete, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->calls_crypt, 0, __ATOMIC_RELAXED);
}

size_t kv_fake_rsa_encrypt(struct kv_fake *f, const char *name,
                           const char *version, enum akv_kv_alg alg,
                           const uint8_t *in, size_t in_len, uint8_t *out)
{
    struct fake_version *v = find_version(find_key(f, name), version);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(v->rsa, NULL);
    size_t len = 512;

    if (EVP_PKEY_encrypt_init(c) != 1 || !set_padding(c, alg)
        || EVP_PKEY_encrypt(c, out, &len, in, in_len) != 1) {
        len = 0;
    }
    EVP_PKEY_CTX_free(c);
    return len;
}
