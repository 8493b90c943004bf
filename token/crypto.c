/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto.h"

#include <pthread.h>
#include <string.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/asn1.h>
#include <openssl/decoder.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "../common/log.h"
#include "../common/ossl.h"

static OSSL_LIB_CTX *libctx;

/*
 * Reused RSA encryption contexts: each thread keeps the EVP_PKEY_CTX of its
 * last local RSA encryption (key, padding and digests set, digests fetched
 * once), and reuses it while the key and algorithm stay the same, instead
 * of creating a context and looking the digest names up per operation
 * (docs/ARCHITECTURE.md, "Request path costs"). A context serves one thread
 * at a time, hence per thread. It holds a reference to its key, so the
 * pointer cannot be recycled for another key while cached; a fork (which
 * replaces the library context) bumps enc_gen and retires every entry.
 */
struct enc_cache {
    EVP_PKEY *pkey; /* referenced by ctx */
    enum akv_kv_alg alg;
    unsigned gen;
    EVP_PKEY_CTX *ctx;
};

static pthread_key_t enc_key;
static pthread_once_t enc_once = PTHREAD_ONCE_INIT;
static bool enc_key_ok;
static unsigned enc_gen;

static void enc_cache_free(void *p)
{
    struct enc_cache *c = p;

    if (c != NULL) {
        EVP_PKEY_CTX_free(c->ctx);
        free(c);
    }
}

static void enc_key_make(void)
{
    enc_key_ok = pthread_key_create(&enc_key, enc_cache_free) == 0;
}

/* This thread's cache slot, or NULL (then nothing is cached). */
static struct enc_cache *enc_slot(void)
{
    struct enc_cache *c;

    (void)pthread_once(&enc_once, enc_key_make);
    if (!enc_key_ok) {
        return NULL;
    }
    c = pthread_getspecific(enc_key);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c != NULL && pthread_setspecific(enc_key, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

/*
 * Fetched digests and ciphers, once per library context: EVP_MD_fetch and
 * EVP_CIPHER_fetch cost about 10,000 instructions each even when OpenSSL's
 * method store already holds the algorithm (name and property lookup,
 * locks), and every C_DigestInit, C_SignInit/C_VerifyInit with a hash and
 * local AES operation did one (issue 9: fetch once per library context and
 * cache). An entry holds one reference for the life of its context (the
 * process: see akv_ossl_libctx); callers get their own reference. A fork
 * child starts a new context: akv_crypto_forget drops the table without
 * freeing, like the context itself.
 */
enum fetch_kind { FETCH_MD = 0, FETCH_CIPHER };

#define FETCH_MAX      32
#define FETCH_NAME_MAX 32

static struct {
    OSSL_LIB_CTX *ctx;
    enum fetch_kind kind;
    char name[FETCH_NAME_MAX];
    void *alg;           /* EVP_MD * or EVP_CIPHER * */
} fetched[FETCH_MAX];    /* LOCKED by fetch_lock */
static size_t n_fetched; /* LOCKED by fetch_lock */
static pthread_mutex_t fetch_lock = PTHREAD_MUTEX_INITIALIZER;

static void *fetch_new(enum fetch_kind kind, const char *name)
{
    if (kind == FETCH_MD) {
        return EVP_MD_fetch(libctx, name, NULL);
    }
    return EVP_CIPHER_fetch(libctx, name, NULL);
}

static void fetch_up_ref(enum fetch_kind kind, void *alg)
{
    if (kind == FETCH_MD) {
        (void)EVP_MD_up_ref(alg);
    } else {
        (void)EVP_CIPHER_up_ref(alg);
    }
}

/* NAME of KIND from the private context: a new reference, or NULL. */
static void *fetch_cached(enum fetch_kind kind, const char *name)
{
    void *alg = NULL;

    pthread_mutex_lock(&fetch_lock);
    for (size_t i = 0; i < n_fetched; i++) {
        if (fetched[i].ctx == libctx && fetched[i].kind == kind
            && strcmp(fetched[i].name, name) == 0) {
            alg = fetched[i].alg;
            fetch_up_ref(kind, alg);
            goto out;
        }
    }
    alg = fetch_new(kind, name);
    if (alg != NULL && n_fetched < FETCH_MAX && strlen(name) < FETCH_NAME_MAX) {
        fetched[n_fetched].ctx = libctx;
        fetched[n_fetched].kind = kind;
        (void)snprintf(fetched[n_fetched].name, FETCH_NAME_MAX, "%s", name);
        fetched[n_fetched].alg = alg;
        n_fetched++;
        fetch_up_ref(kind, alg); /* the table keeps the first one */
    }
out:
    pthread_mutex_unlock(&fetch_lock);
    return alg;
}

EVP_MD *akv_crypto_md(const char *name)
{
    return name != NULL ? fetch_cached(FETCH_MD, name) : NULL;
}

EVP_CIPHER *akv_crypto_cipher(const char *name)
{
    return name != NULL ? fetch_cached(FETCH_CIPHER, name) : NULL;
}

CK_RV akv_crypto_init(void)
{
    /* the module's one private context (common/ossl.h), shared with the
     * TLS and JWT code; kept for the life of the process */
    libctx = akv_ossl_libctx();
    if (libctx == NULL) {
        AKV_LOG_ERR("cannot create the private OpenSSL library context "
                    "with the default provider");
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

void akv_crypto_fini(void)
{
    /* Nothing to free: see akv_ossl_libctx. It holds no key material:
     * values live in akv_secret buffers. */
}

void akv_crypto_forget(void)
{
    __atomic_add_fetch(&enc_gen, 1, __ATOMIC_RELAXED);
    (void)pthread_mutex_init(&fetch_lock, NULL);
    n_fetched = 0; /* the parent's context's references, not freed */
    akv_ossl_forget();
    libctx = NULL;
}

OSSL_LIB_CTX *akv_crypto_libctx(void)
{
    return libctx;
}

CK_RV akv_crypto_random(void *buf, size_t len)
{
    if (len == 0) {
        return CKR_OK;
    }
    if (RAND_bytes_ex(libctx, buf, len, 0) != 1) {
        AKV_LOG_ERR("RAND_bytes_ex failed");
        return CKR_FUNCTION_FAILED;
    }
    return CKR_OK;
}

/*
 * Handles are drawn from a per-thread buffer of random words refilled
 * HANDLE_BATCH at a time: one RAND_bytes_ex call costs about 6,000
 * instructions whatever its length (DRBG lookup, lock, reseed check, AES-CTR
 * update), and a handle is drawn under the token's write lock for every
 * object made (issue 9: the unwrap path). Per thread, so no lock; a forked
 * child continues its parent's buffer, which only repeats handle values in
 * a different process.
 */
#define HANDLE_BATCH 32
static _Thread_local struct {
    uint32_t v[HANDLE_BATCH];
    unsigned left;
} handle_buf;

static CK_RV next_random_word(uint32_t *out)
{
    if (handle_buf.left == 0) {
        if (akv_crypto_random(handle_buf.v, sizeof(handle_buf.v)) != CKR_OK) {
            return CKR_FUNCTION_FAILED;
        }
        handle_buf.left = HANDLE_BATCH;
    }
    handle_buf.left--;
    *out = handle_buf.v[handle_buf.left];
    handle_buf.v[handle_buf.left] = 0;
    return CKR_OK;
}

CK_ULONG akv_crypto_handle(void)
{
    uint32_t v = 0;

    while (v == 0) {
        if (next_random_word(&v) != CKR_OK) {
            /* RAND failing is not expected; fall back on a counter so a
             * handle is still unique. */
            static uint32_t ctr = 0x1000;

            v = __atomic_add_fetch(&ctr, 1, __ATOMIC_RELAXED);
        }
        v &= 0x7fffffffu;
    }
    return (CK_ULONG)v;
}

/* Appends a DER length (X.690 §8.1.3). */
static size_t der_len(uint8_t *p, size_t len)
{
    if (len < 0x80) {
        p[0] = (uint8_t)len;
        return 1;
    }
    if (len < 0x100) {
        p[0] = 0x81;
        p[1] = (uint8_t)len;
        return 2;
    }
    p[0] = 0x82;
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    return 3;
}

/* Appends a DER INTEGER of the unsigned big-endian value V. */
static size_t der_uint(uint8_t *p, const uint8_t *v, size_t len)
{
    size_t off = 0;
    bool pad;

    while (len > 1 && v[0] == 0) {
        v++;
        len--;
    }
    pad = len > 0 && (v[0] & 0x80) != 0;
    p[off++] = 0x02;
    off += der_len(p + off, len + (pad ? 1 : 0));
    if (pad) {
        p[off++] = 0;
    }
    memcpy(p + off, v, len);
    return off + len;
}

/* DER (LEN bytes) of STRUCTURE ("type-specific", "SubjectPublicKeyInfo")
 * for key TYPE ("RSA", "EC") into a public EVP_PKEY of the private library
 * context, through OpenSSL's provider decoders: EVP_PKEY_CTX_new_from_name
 * or EVP_PKEY_fromdata would pick a host ENGINE's method (e.g. libp11's)
 * over our private context. NULL when it does not decode. */
static EVP_PKEY *decode_public(const uint8_t *der, size_t len,
                               const char *structure, const char *type)
{
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    size_t plen = len;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(
        &pkey, "DER", structure, type, EVP_PKEY_PUBLIC_KEY, libctx, NULL);

    if (dctx == NULL || OSSL_DECODER_from_data(dctx, &p, &plen) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

CK_RV akv_crypto_rsa_pub(const uint8_t *n, size_t n_len, const uint8_t *e,
                         size_t e_len, EVP_PKEY **out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    uint8_t *der = NULL;
    uint8_t *body = NULL;
    size_t blen = 0;
    size_t dlen = 0;
    EVP_PKEY *pkey = NULL;

    /* The key is decoded from an RSAPublicKey (RFC 8017 A.1.1) through
     * OpenSSL's provider decoders: EVP_PKEY_CTX_new_from_name would pick a
     * host ENGINE's RSA method (e.g. libp11's) over our private context. */
    if (n_len == 0 || e_len == 0 || n_len > 1024 || e_len > 16) {
        goto out;
    }
    body = malloc(n_len + e_len + 16);
    der = malloc(n_len + e_len + 32);
    if (body == NULL || der == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    blen = der_uint(body, n, n_len);
    blen += der_uint(body + blen, e, e_len);
    der[0] = 0x30;
    dlen = 1 + der_len(der + 1, blen);
    memcpy(der + dlen, body, blen);
    dlen += blen;
    pkey = decode_public(der, dlen, "type-specific", "RSA");
    if (pkey == NULL) {
        AKV_LOG_ERR("cannot build an RSA public key from the JWK");
        goto out;
    }
    *out = pkey;
    pkey = NULL;
    rv = CKR_OK;
out:
    EVP_PKEY_free(pkey);
    free(body);
    free(der);
    return rv;
}

/* A new context for ALG on PKEY, ready for EVP_PKEY_encrypt; NULL on
 * failure (*RV CKR_MECHANISM_INVALID for an unknown ALG). */
static EVP_PKEY_CTX *rsa_enc_ctx(EVP_PKEY *pkey, enum akv_kv_alg alg, CK_RV *rv)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, NULL);
    bool ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) > 0;

    *rv = CKR_GENERAL_ERROR;
    switch (alg) {
    case AKV_KV_ALG_RSA1_5:
        ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
        break;
    case AKV_KV_ALG_RSA_OAEP:
    case AKV_KV_ALG_RSA_OAEP_256: {
        const char *md = alg == AKV_KV_ALG_RSA_OAEP ? "SHA1" : "SHA256";

        ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0
             && EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) > 0
             && EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) > 0;
        break;
    }
    default:
        *rv = CKR_MECHANISM_INVALID;
        ok = false;
        break;
    }
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

CK_RV akv_crypto_rsa_decrypt(EVP_PKEY *pkey, enum akv_kv_alg alg,
                             const uint8_t *in, size_t in_len,
                             struct akv_secret *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(akv_crypto_libctx(), pkey, NULL);
    const char *md = alg == AKV_KV_ALG_RSA_OAEP ? "SHA1" : "SHA256";
    size_t olen = (size_t)EVP_PKEY_get_size(pkey);

    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1) {
        goto out;
    }
    if (alg == AKV_KV_ALG_RSA1_5) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
            goto out;
        }
    } else if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1
               || EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) != 1
               || EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) != 1) {
        goto out;
    }
    if (akv_secret_alloc(out, olen) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (EVP_PKEY_decrypt(ctx, out->data, &olen, in, in_len) <= 0) {
        akv_secret_clear(out);
        rv = CKR_ENCRYPTED_DATA_INVALID;
        goto out;
    }
    out->len = olen;
    rv = CKR_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

CK_RV akv_crypto_rsa_encrypt(EVP_PKEY *pkey, enum akv_kv_alg alg,
                             const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct enc_cache *c = enc_slot();
    unsigned gen = __atomic_load_n(&enc_gen, __ATOMIC_RELAXED);
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY_CTX *own = NULL;
    size_t k = (size_t)EVP_PKEY_get_size(pkey);
    size_t hlen = alg == AKV_KV_ALG_RSA_OAEP ? 20 : 32;
    size_t max_in = 0;
    size_t olen = k;

    if (c != NULL && c->ctx != NULL && c->pkey == pkey && c->alg == alg
        && c->gen == gen) {
        ctx = c->ctx;
    } else {
        own = rsa_enc_ctx(pkey, alg, &rv);
        if (own == NULL) {
            goto out;
        }
        ctx = own;
        if (c != NULL) {
            EVP_PKEY_CTX_free(c->ctx);
            *c = (struct enc_cache){pkey, alg, gen, own};
            own = NULL;
        }
    }
    /* RFC 8017 §7.1.1 / §7.2.1 input bounds, checked here so the caller
     * gets CKR_DATA_LEN_RANGE rather than a generic failure. */
    if (alg == AKV_KV_ALG_RSA1_5) {
        max_in = k > 11 ? k - 11 : 0;
    } else {
        max_in = k > 2 * hlen + 2 ? k - 2 * hlen - 2 : 0;
    }
    if (in_len > max_in) {
        rv = CKR_DATA_LEN_RANGE;
        goto out;
    }
    if (EVP_PKEY_encrypt(ctx, out, &olen, in, in_len) <= 0) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    *out_len = olen;
    rv = CKR_OK;
out:
    EVP_PKEY_CTX_free(own);
    return rv;
}

EVP_CIPHER *akv_crypto_aes_cipher(CK_MECHANISM_TYPE mech, size_t key_len)
{
    const char *mode = NULL;
    char name[32];

    switch (mech) {
    case CKM_AES_ECB:
        mode = "ECB";
        break;
    case CKM_AES_CBC:
    case CKM_AES_CBC_PAD:
        mode = "CBC";
        break;
    case CKM_AES_GCM:
        mode = "GCM";
        break;
    case CKM_AES_CTR:
        mode = "CTR";
        break;
    default:
        return NULL;
    }
    if (key_len != 16 && key_len != 24 && key_len != 32) {
        return NULL;
    }
    (void)snprintf(name, sizeof(name), "AES-%zu-%s", key_len * 8, mode);
    return akv_crypto_cipher(name);
}

const uint8_t *akv_crypto_ec_oid(const char *crv, size_t *len)
{
    static const struct {
        const char *crv;
        uint8_t oid[10];
        size_t len;
    } t[] = {
        /* secp256r1 1.2.840.10045.3.1.7 */
        {"P-256",
         {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
         10},
        /* secp384r1 1.3.132.0.34 */
        {"P-384", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, 7},
        /* secp521r1 1.3.132.0.35 */
        {"P-521", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, 7},
        /* secp256k1 1.3.132.0.10 */
        {"P-256K", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}, 7},
    };

    for (size_t i = 0; crv != NULL && i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(crv, t[i].crv) == 0) {
            *len = t[i].len;
            return t[i].oid;
        }
    }
    return NULL;
}

/* The NID of a DER OBJECT IDENTIFIER (tag, length, value); NID_undef when
 * it is malformed or unknown. */
static int oid_nid(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    ASN1_OBJECT *o = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    int nid = o != NULL ? OBJ_obj2nid(o) : NID_undef;

    ASN1_OBJECT_free(o);
    return nid;
}

CK_RV akv_crypto_ec_pub(const uint8_t *curve_oid, size_t oid_len,
                        const uint8_t *point, size_t point_len, EVP_PKEY **out)
{
    /* id-ecPublicKey (RFC 5480 §2.1.1) */
    static const uint8_t ec_alg[] = {0x06, 0x07, 0x2a, 0x86, 0x48,
                                     0xce, 0x3d, 0x02, 0x01};
    CK_RV rv = CKR_ATTRIBUTE_VALUE_INVALID;
    uint8_t alg[64];
    uint8_t bits[300];
    uint8_t der[400];
    size_t alen = 0;
    size_t blen = 0;
    size_t dlen = 0;
    EVP_PKEY *pkey = NULL;

    if (oid_len == 0 || oid_len > sizeof(alg) - sizeof(ec_alg) - 4
        || point_len == 0 || point_len > sizeof(bits) - 5) {
        goto out;
    }
    /* SubjectPublicKeyInfo (RFC 5480 §2): SEQUENCE { SEQUENCE { alg,
     * curve }, BIT STRING (0 unused bits) point }. */
    alg[alen++] = 0x30;
    alen += der_len(alg + alen, sizeof(ec_alg) + oid_len);
    memcpy(alg + alen, ec_alg, sizeof(ec_alg));
    alen += sizeof(ec_alg);
    memcpy(alg + alen, curve_oid, oid_len);
    alen += oid_len;
    bits[blen++] = 0x03;
    blen += der_len(bits + blen, point_len + 1);
    bits[blen++] = 0x00;
    memcpy(bits + blen, point, point_len);
    blen += point_len;
    der[dlen++] = 0x30;
    dlen += der_len(der + dlen, alen + blen);
    memcpy(der + dlen, alg, alen);
    dlen += alen;
    memcpy(der + dlen, bits, blen);
    dlen += blen;
    pkey = decode_public(der, dlen, "SubjectPublicKeyInfo", "EC");
    /* The decoder refuses a point that is not on the curve; the explicit
     * check (on curve, not at infinity) is common/ossl.h's one rule, with
     * no EC_KEY involved: EVP_PKEY_public_check would run the host's
     * default ENGINE EC method (libp11's engine) and fail every key. */
    if (pkey == NULL
        || !akv_ossl_ec_point_ok(oid_nid(curve_oid, oid_len), point,
                                 point_len)) {
        goto out;
    }
    *out = pkey;
    pkey = NULL;
    rv = CKR_OK;
out:
    EVP_PKEY_free(pkey);
    return rv;
}
