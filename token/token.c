/* SPDX-License-Identifier: Apache-2.0 */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>
#include <openssl/x509.h>

#include "../common/kvid.h"
#include "../common/log.h"
#include "../common/ossl.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "cert.h"
#include "crypto.h"
#include "created.h"
#include "objpool.h"
#include "rotate.h"
#include "seal.h"

int64_t akv_token_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* ---- objects ---- */

struct akv_obj *akv_obj_new(enum akv_obj_origin origin, CK_OBJECT_CLASS cls,
                            CK_KEY_TYPE key_type)
{
    struct akv_obj *o = akv_objpool_get();

    if (o == NULL) {
        return NULL;
    }
    o->magic = AKV_OBJ_MAGIC;
    o->refs = 1;
    o->origin = origin;
    o->cls = cls;
    o->key_type = key_type;
    return o;
}

void akv_obj_ref(struct akv_obj *o)
{
    if (o != NULL) {
        __atomic_add_fetch(&o->refs, 1, __ATOMIC_ACQ_REL);
    }
}

void akv_obj_unref(struct akv_obj *o)
{
    if (o == NULL) {
        return;
    }
    if (__atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    akv_secret_clear(&o->value);
    if (o->vkey != NULL) {
        akv_kv_key_clear(o->vkey);
        free(o->vkey);
    }
    EVP_PKEY_free(o->pub);
    EVP_PKEY_free(o->priv);
    akv_store_record_clear(&o->rec);
    /* attribute values wiped, magic zeroed, record kept or freed */
    akv_objpool_put(o);
}

/* ---- helpers ---- */

bool akv_token_version_from_id(const uint8_t *id, size_t len,
                               char out[AKV_KV_VERSION_MAX])
{
    if (id == NULL) {
        return false;
    }
    if (len == 16) {
        akv_kvid_version_from_bytes(id, out);
        return true;
    }
    return akv_kvid_version_norm((const char *)id, len, out) == 0;
}

/* The CKA_ID of a key version: the 32 hex digits as 16 bytes (design.md
 * "Object model"); a version that is not one (none passes kv_rest's kid
 * check; a test fake might) keeps its raw text, cut to 64 bytes. */
size_t akv_token_id_from_version(const char *version, uint8_t out[64])
{
    size_t len = strlen(version);

    if (akv_kvid_version_to_bytes(version, len, out) == 0) {
        return 16;
    }
    if (len > 64) {
        len = 64;
    }
    memcpy(out, version, len);
    return len;
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t rec_sum(const struct akv_store_record *r)
{
    uint64_t h = 14695981039346656037ull;

    h = fnv(h, r->attrs, r->attrs_len);
    h = fnv(h, r->kid, r->kid != NULL ? strlen(r->kid) : 0);
    h = fnv(h, "|", 1);
    h = fnv(h, r->alg, r->alg != NULL ? strlen(r->alg) : 0);
    h = fnv(h, r->wrapped, r->wrapped_len);
    h = fnv(h, r->sealed, r->sealed_len);
    h = fnv(h, &r->generation, sizeof(r->generation));
    return h;
}

bool akv_obj_is_key(const struct akv_obj *o)
{
    /* cls never changes after creation: no lock needed. */
    return o->cls == CKO_SECRET_KEY || o->cls == CKO_PUBLIC_KEY
           || o->cls == CKO_PRIVATE_KEY;
}

bool akv_obj_is_sensitive(const void *ctx, CK_ATTRIBUTE_TYPE type)
{
    const struct akv_obj *o = ctx;

    if (o->cls == CKO_PRIVATE_KEY) {
        switch (type) {
        case CKA_PRIVATE_EXPONENT:
        case CKA_PRIME_1:
        case CKA_PRIME_2:
        case CKA_EXPONENT_1:
        case CKA_EXPONENT_2:
        case CKA_COEFFICIENT:
            return true;
        default:
            return false;
        }
    }
    if (o->cls == CKO_SECRET_KEY && type == CKA_VALUE) {
        return akv_attrs_bool(&o->attrs, CKA_SENSITIVE, CK_TRUE)
               || !akv_attrs_bool(&o->attrs, CKA_EXTRACTABLE, CK_FALSE);
    }
    return false;
}

/* ---- token lifetime ---- */

CK_RV akv_token_new(const struct akv_token_config *tc, CK_SLOT_ID slot_id,
                    struct akv_kv *kv, struct akv_token **out)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_token *t = calloc(1, sizeof(*t));
    uint8_t md[SHA256_DIGEST_LENGTH];

    if (t == NULL) {
        goto out;
    }
    t->slot_id = slot_id;
    t->cfg = tc;
    t->kv = kv;
    kv = NULL;
    pthread_rwlock_init(&t->lock, NULL);
    pthread_mutex_init(&t->store_mu, NULL);
    /* Serial number: 16 hex chars (CK_TOKEN_INFO), stable per token and
     * distinct for two tokens on one vault (pkcs11: URIs select by it). */
    {
        char who[1024];
        int n = snprintf(who, sizeof(who), "%s\n%s",
                         tc->vault_url != NULL ? tc->vault_url : "",
                         tc->label != NULL ? tc->label : "");

        size_t wlen = n < 0                     ? 0
                      : (size_t)n < sizeof(who) ? (size_t)n
                                                : sizeof(who) - 1;

        /* the module's private context (common/ossl.h), as all its crypto */
        if (EVP_Q_digest(akv_ossl_libctx(), "SHA256", NULL, who, wlen, md, NULL)
            != 1) {
            memset(md, 0, sizeof(md));
        }
    }
    for (int i = 0; i < 8; i++) {
        (void)snprintf(t->serial + (size_t)2 * i, 3, "%02X", md[i]);
    }
    /* Room for the keys it may create: slots never move (token.h). */
    t->cap_keys = tc->n_keys + AKV_CREATED_MAX;
    t->keys = calloc(t->cap_keys, sizeof(*t->keys));
    if (t->keys == NULL) {
        goto out;
    }
    t->n_keys = tc->n_keys;
    for (size_t i = 0; i < tc->n_keys; i++) {
        t->keys[i].cfg = &tc->keys[i];
    }
    if (tc->store_dir != NULL) {
        rv = akv_store_open(tc->store_dir, &t->store);
        if (rv == CKR_TOKEN_WRITE_PROTECTED) {
            /* Refused (logged with the rule and the fix): the token works
             * without token objects rather than trust that folder. */
            t->store_refused = true;
            rv = CKR_OK;
        }
        if (rv != CKR_OK) {
            AKV_LOG_ERR("token '%s': cannot open store_dir %s", tc->label,
                        tc->store_dir);
            goto out;
        }
    }
    *out = t;
    t = NULL;
    rv = CKR_OK;
out:
    if (kv != NULL) {
        kv->ops->destroy(kv);
    }
    akv_token_free(t);
    return rv;
}

void akv_token_free(struct akv_token *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n_objs; i++) {
        t->objs[i]->dead = true;
        akv_obj_unref(t->objs[i]);
    }
    free(t->objs);
    free(t->keys);
    akv_rotate_free(t);
    if (t->store != NULL) {
        akv_store_close(t->store);
    }
    if (t->kv != NULL) {
        t->kv->ops->destroy(t->kv);
    }
    pthread_mutex_destroy(&t->store_mu);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

/* ---- object table ---- */

static struct akv_obj *find_handle_locked(struct akv_token *t,
                                          CK_OBJECT_HANDLE h)
{
    for (size_t i = 0; i < t->n_objs; i++) {
        if (t->objs[i]->handle == h) {
            return t->objs[i];
        }
    }
    return NULL;
}

CK_RV akv_token_get_obj(struct akv_token *t, CK_OBJECT_HANDLE h,
                        struct akv_obj **out)
{
    CK_RV rv = CKR_OBJECT_HANDLE_INVALID;
    struct akv_obj *o = NULL;

    pthread_rwlock_rdlock(&t->lock);
    o = h != CK_INVALID_HANDLE ? find_handle_locked(t, h) : NULL;
    if (o != NULL && !o->dead) {
        akv_obj_ref(o);
        *out = o;
        rv = CKR_OK;
    }
    pthread_rwlock_unlock(&t->lock);
    return rv;
}

CK_RV akv_token_add_obj_locked(struct akv_token *t, struct akv_obj *o)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    CK_OBJECT_HANDLE h;

    if (t->n_objs >= AKV_TOKEN_MAX_OBJECTS) {
        AKV_LOG_ERR("token '%s': object table full (%d)", t->cfg->label,
                    AKV_TOKEN_MAX_OBJECTS);
        rv = CKR_DEVICE_MEMORY;
        goto out;
    }
    if (t->n_objs == t->cap_objs) {
        size_t cap = t->cap_objs == 0 ? 16 : t->cap_objs * 2;
        struct akv_obj **n = realloc(
            t->objs,
            cap * sizeof(*n)); // NOLINT(bugprone-sizeof-expression): pointers

        if (n == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        t->objs = n;
        t->cap_objs = cap;
    }
    do {
        h = akv_crypto_handle();
    } while (find_handle_locked(t, h) != NULL);
    o->handle = h;
    akv_obj_ref(o);
    t->objs[t->n_objs++] = o;
    rv = CKR_OK;
out:
    return rv;
}

void akv_token_remove_obj_locked(struct akv_token *t, struct akv_obj *o)
{
    for (size_t i = 0; i < t->n_objs; i++) {
        if (t->objs[i] == o) {
            t->objs[i] = t->objs[t->n_objs - 1];
            t->n_objs--;
            o->dead = true;
            akv_obj_unref(o);
            return;
        }
    }
}

void akv_token_drop_session_objs(struct akv_token *t, CK_SESSION_HANDLE h)
{
    pthread_rwlock_wrlock(&t->lock);
    for (size_t i = 0; i < t->n_objs;) {
        struct akv_obj *o = t->objs[i];

        if (o->origin == AKV_ORIGIN_SESSION && o->owner == h) {
            akv_token_remove_obj_locked(t, o);
            continue; /* slot i now holds the former last object */
        }
        i++;
    }
    pthread_rwlock_unlock(&t->lock);
}

/* ---- vault key objects ---- */

static CK_RV set_common_key_attrs(struct akv_attrs *a, CK_OBJECT_CLASS cls,
                                  CK_KEY_TYPE kt, const struct akv_kv_key *k)
{
    CK_RV rv = CKR_OK;
    uint8_t id[64];
    size_t id_len = akv_token_id_from_version(k->version, id);
    CK_BBOOL f = CK_FALSE;
    CK_BBOOL tr = CK_TRUE;

    rv |= akv_attrs_set_ulong(a, CKA_CLASS, cls);
    rv |= akv_attrs_set_ulong(a, CKA_KEY_TYPE, kt);
    rv |= akv_attrs_set_bool(a, CKA_TOKEN, tr);
    rv |= akv_attrs_set_bool(a, CKA_PRIVATE, f);
    rv |= akv_attrs_set_bool(a, CKA_MODIFIABLE, f);
    rv |= akv_attrs_set_bool(a, CKA_COPYABLE, f);
    rv |= akv_attrs_set_bool(a, CKA_DESTROYABLE, f);
    rv |= akv_attrs_set(a, CKA_LABEL, k->name, strlen(k->name));
    rv |= akv_attrs_set(a, CKA_ID, id, id_len);
    /* Key Vault does not say whether a key was generated in the vault or
     * imported, so CKA_LOCAL (FALSE) does not claim it: left, with the other
     * §4.7 attributes, to the defaults table (make_vault_obj). */
    rv |= akv_attrs_set(a, CKA_AKV_KID, k->kid, strlen(k->kid));
    rv |= akv_attrs_set(a, CKA_AKV_KEY_NAME, k->name, strlen(k->name));
    rv |= akv_attrs_set(a, CKA_AKV_KEY_VERSION, k->version, strlen(k->version));
    return rv == CKR_OK ? CKR_OK : CKR_HOST_MEMORY;
}

/* 04 || X || Y (SEC 1 §2.3.3) of an EC key version into POINT (1 + 2 *
 * 66 bytes); returns its length. */
static size_t ec_point(const struct akv_kv_key *k, uint8_t *point)
{
    point[0] = 0x04;
    memcpy(point + 1, k->ec_x, k->ec_len);
    memcpy(point + 1 + k->ec_len, k->ec_y, k->ec_len);
    return 1 + 2 * k->ec_len;
}

/* CKA_EC_PARAMS (the named curve's DER OID) and CKA_EC_POINT (the DER
 * OCTET STRING of the uncompressed point, as v3.0 §2.3.3 requires), on
 * both objects: tools read them from whichever they hold. */
static CK_RV set_ec_attrs(struct akv_attrs *a, const struct akv_kv_key *k)
{
    CK_RV r = CKR_OK;
    size_t oid_len = 0;
    const uint8_t *oid = akv_crypto_ec_oid(k->crv, &oid_len);
    uint8_t os[4 + 1 + 2 * 66];
    size_t plen = ec_point(k, os + 3);
    size_t off = plen < 128 ? 1 : 0; /* short or 0x81 long form */

    if (oid == NULL) {
        return CKR_GENERAL_ERROR;
    }
    os[off] = 0x04;
    if (off == 1) {
        os[2] = (uint8_t)plen;
    } else {
        os[1] = 0x81;
        os[2] = (uint8_t)plen;
    }
    r |= akv_attrs_set(a, CKA_EC_PARAMS, oid, oid_len);
    r |= akv_attrs_set(a, CKA_EC_POINT, os + off, plen + 3 - off);
    r |= akv_attrs_set(a, CKA_SUBJECT, NULL, 0);
    return r;
}

static CK_RV make_vault_obj(const struct akv_kv_key *k, CK_OBJECT_CLASS cls,
                            CK_KEY_TYPE kt, EVP_PKEY *pub, struct akv_obj **out)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_obj *o = akv_obj_new(AKV_ORIGIN_VAULT, cls, kt);
    struct akv_attrs *a = NULL;
    unsigned ops = k->key_ops;
    CK_BBOOL f = CK_FALSE;
    CK_BBOOL tr = CK_TRUE;
    CK_RV r = CKR_OK;

    if (o == NULL) {
        goto out;
    }
    a = &o->attrs;
    o->vkey = calloc(1, sizeof(*o->vkey));
    if (o->vkey == NULL || akv_kv_key_copy(o->vkey, k) != CKR_OK) {
        goto out;
    }
    if (set_common_key_attrs(a, cls, kt, k) != CKR_OK) {
        goto out;
    }
    if (pub != NULL) {
        unsigned char *der = NULL;
        int der_len;

        if (EVP_PKEY_up_ref(pub) != 1) {
            goto out;
        }
        o->pub = pub;
        der_len = i2d_PUBKEY(pub, &der);
        if (der_len > 0) {
            r |= akv_attrs_set(a, CKA_PUBLIC_KEY_INFO, der, (CK_ULONG)der_len);
            OPENSSL_free(der);
        }
    }
    if (kt == CKK_RSA) {
        r |= akv_attrs_set(a, CKA_MODULUS, k->n, k->n_len);
        r |= akv_attrs_set(a, CKA_PUBLIC_EXPONENT, k->e, k->e_len);
        r |= akv_attrs_set(a, CKA_SUBJECT, NULL, 0);
    }
    if (kt == CKK_RSA) {
        /* Also on the private key: tools (libp11, p11tool) read the key
         * size from whichever object they hold. */
        r |= akv_attrs_set_ulong(a, CKA_MODULUS_BITS, k->n_len * 8);
    }
    if (kt == CKK_EC) {
        r |= set_ec_attrs(a, k);
    }
    if (cls == CKO_PUBLIC_KEY) {
        r |= akv_attrs_set_bool(
            a, CKA_ENCRYPT,
            (ops & (AKV_KV_OP_ENCRYPT | AKV_KV_OP_WRAPKEY)) ? tr : f);
        r |=
            akv_attrs_set_bool(a, CKA_WRAP, (ops & AKV_KV_OP_WRAPKEY) ? tr : f);
        /* Verification is local with this public key (token/sign.h). */
        r |= akv_attrs_set_bool(
            a, CKA_VERIFY,
            (ops & (AKV_KV_OP_VERIFY | AKV_KV_OP_SIGN)) ? tr : f);
        r |= akv_attrs_set_bool(a, CKA_VERIFY_RECOVER, f);
        r |= akv_attrs_set_bool(a, CKA_TRUSTED, f);
        /* Not public-key attributes in v3.0, but Java SunPKCS11 reads
         * CKA_TOKEN/CKA_SENSITIVE/CKA_EXTRACTABLE together from every key
         * and fails on CKR_ATTRIBUTE_TYPE_INVALID (consumers.md). */
        r |= akv_attrs_set_bool(a, CKA_SENSITIVE, f);
        r |= akv_attrs_set_bool(a, CKA_EXTRACTABLE, tr);
    } else if (cls == CKO_PRIVATE_KEY) {
        /* C_Decrypt is served by unwrapKey (same RSA operation). */
        r |= akv_attrs_set_bool(
            a, CKA_DECRYPT,
            (ops & (AKV_KV_OP_DECRYPT | AKV_KV_OP_UNWRAPKEY)) ? tr : f);
        r |= akv_attrs_set_bool(a, CKA_UNWRAP,
                                (ops & AKV_KV_OP_UNWRAPKEY) ? tr : f);
        /* Key Vault "Sign" (key_ops; the identity's keys/sign permission
         * is only known when the vault answers). */
        r |= akv_attrs_set_bool(a, CKA_SIGN, (ops & AKV_KV_OP_SIGN) ? tr : f);
        r |= akv_attrs_set_bool(a, CKA_SIGN_RECOVER, f);
        r |= akv_attrs_set_bool(a, CKA_ALWAYS_AUTHENTICATE, f);
    } else {
        /* Managed HSM's Get Key does not tell an oct-HSM key's size: then
         * CKA_VALUE_LEN is left out and C_GetAttributeValue answers it with
         * CK_UNAVAILABLE_INFORMATION (v3.0 5.7). */
        if (k->oct_bits != 0) {
            r |= akv_attrs_set_ulong(a, CKA_VALUE_LEN, k->oct_bits / 8);
        }
        /* Managed HSM encrypt/decrypt (AES-GCM/CBC, token/vault_aes.h). */
        r |= akv_attrs_set_bool(a, CKA_ENCRYPT,
                                (ops & AKV_KV_OP_ENCRYPT) ? tr : f);
        r |= akv_attrs_set_bool(a, CKA_DECRYPT,
                                (ops & AKV_KV_OP_DECRYPT) ? tr : f);
        r |= akv_attrs_set_bool(a, CKA_SIGN, f);
        r |= akv_attrs_set_bool(a, CKA_VERIFY, f);
        r |=
            akv_attrs_set_bool(a, CKA_WRAP, (ops & AKV_KV_OP_WRAPKEY) ? tr : f);
        r |= akv_attrs_set_bool(a, CKA_UNWRAP,
                                (ops & AKV_KV_OP_UNWRAPKEY) ? tr : f);
        r |= akv_attrs_set_bool(a, CKA_TRUSTED, f);
    }
    if (cls != CKO_PUBLIC_KEY) {
        r |= akv_attrs_set_bool(a, CKA_SENSITIVE, tr);
        r |= akv_attrs_set_bool(a, CKA_EXTRACTABLE, f);
        r |= akv_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE, tr);
        r |= akv_attrs_set_bool(a, CKA_NEVER_EXTRACTABLE, tr);
        r |= akv_attrs_set_bool(a, CKA_WRAP_WITH_TRUSTED, f);
    }
    /* The rest of v3.0 §4.7-§4.10 (CKA_ALLOWED_MECHANISMS, templates, ...). */
    r |= akv_attrs_fill_defaults(a, cls);
    if (r != CKR_OK) {
        goto out;
    }
    *out = o;
    o = NULL;
    rv = CKR_OK;
out:
    akv_obj_unref(o);
    return rv;
}

/* Builds the objects of one key version off-lock: RSA and EC (a curve Key Vault
 * names) -> public + private; oct-HSM -> one secret key; other key types ->
 * none. */
static CK_RV build_vault_objs(const struct akv_kv_key *k,
                              struct akv_obj *objs[2], size_t *n)
{
    CK_RV rv = CKR_OK;
    EVP_PKEY *pub = NULL;
    size_t oid_len = 0;

    *n = 0;
    if (k->kty == AKV_KV_KTY_RSA) {
        rv = akv_crypto_rsa_pub(k->n, k->n_len, k->e, k->e_len, &pub);
        if (rv == CKR_OK) {
            rv = make_vault_obj(k, CKO_PUBLIC_KEY, CKK_RSA, pub, &objs[0]);
        }
        if (rv == CKR_OK) {
            *n = 1;
            rv = make_vault_obj(k, CKO_PRIVATE_KEY, CKK_RSA, pub, &objs[1]);
        }
        if (rv == CKR_OK) {
            *n = 2;
        }
    } else if (k->kty == AKV_KV_KTY_EC
               && akv_crypto_ec_oid(k->crv, &oid_len) != NULL) {
        uint8_t point[1 + 2 * 66];
        size_t plen = ec_point(k, point);
        const uint8_t *oid = akv_crypto_ec_oid(k->crv, &oid_len);

        rv = akv_crypto_ec_pub(oid, oid_len, point, plen, &pub);
        if (rv == CKR_OK) {
            rv = make_vault_obj(k, CKO_PUBLIC_KEY, CKK_EC, pub, &objs[0]);
        }
        if (rv == CKR_OK) {
            *n = 1;
            rv = make_vault_obj(k, CKO_PRIVATE_KEY, CKK_EC, pub, &objs[1]);
        }
        if (rv == CKR_OK) {
            *n = 2;
        }
    } else if (k->kty == AKV_KV_KTY_OCT_HSM) {
        rv = make_vault_obj(k, CKO_SECRET_KEY, CKK_AES, NULL, &objs[0]);
        if (rv == CKR_OK) {
            *n = 1;
        }
    } else {
        AKV_LOG_INFO("key %s/%s: key type %s is not usable through this "
                     "module; not shown",
                     k->name, k->version, k->kty_name);
    }
    EVP_PKEY_free(pub);
    if (rv != CKR_OK) {
        for (size_t i = 0; i < *n; i++) {
            akv_obj_unref(objs[i]);
        }
        *n = 0;
    }
    return rv;
}

static bool vault_obj_is(const struct akv_obj *o, const char *name,
                         const char *version)
{
    return o->origin == AKV_ORIGIN_VAULT && o->vkey != NULL
           && strcmp(o->vkey->name, name) == 0
           && (version == NULL || strcasecmp(o->vkey->version, version) == 0);
}

static bool version_pinned(const struct akv_token *t, const char *name,
                           const char *version)
{
    for (size_t i = 0; i < akv_token_n_keys(t); i++) {
        const struct akv_key_config *kc = t->keys[i].cfg;

        if (kc->version != NULL && strcmp(kc->name, name) == 0
            && strcasecmp(kc->version, version) == 0) {
            return true;
        }
    }
    return false;
}

/* Installs the built objects of key version K unless the version is already
 * known; LISTED marks the version as shown by templates without CKA_ID. */
static CK_RV install_locked(struct akv_token *t, const struct akv_kv_key *k,
                            struct akv_obj *objs[2], size_t n, bool listed)
{
    CK_RV rv = CKR_OK;
    bool known = false;

    for (size_t i = 0; i < t->n_objs; i++) {
        if (vault_obj_is(t->objs[i], k->name, k->version)) {
            known = true;
            t->objs[i]->listed = t->objs[i]->listed || listed;
        }
    }
    if (known) {
        goto out;
    }
    for (size_t i = 0; i < n && rv == CKR_OK; i++) {
        objs[i]->listed = listed;
        rv = akv_token_add_obj_locked(t, objs[i]);
    }
out:
    return rv;
}

/* Builds and installs the objects of key version KEY (the sign rule of
 * tokens[].sign applied to its key_ops first). */
static CK_RV install_key(struct akv_token *t, struct akv_kv_key *key,
                         bool listed)
{
    CK_RV rv = CKR_OK;
    struct akv_obj *objs[2] = {NULL, NULL};
    size_t n = 0;

    if (!t->cfg->sign) {
        /* Signing is opt-in (tokens[].sign): without it the key shows
         * CKA_SIGN FALSE whatever its key_ops, so the three-permission CMK
         * identity is never offered an operation the vault would refuse
         * (pkcs11-tool --test, p11tool, libp11 probe by CKA_SIGN). */
        key->key_ops &= ~AKV_KV_OP_SIGN;
    }
    rv = build_vault_objs(key, objs, &n);
    for (size_t i = 0; rv == CKR_OK && i < n; i++) {
        /* A key pair's objects say what C_DestroyObject will do
         * (tokens[].allow_delete deletes the vault key). */
        if ((objs[i]->cls == CKO_PRIVATE_KEY || objs[i]->cls == CKO_PUBLIC_KEY)
            && t->cfg->allow_delete) {
            rv = akv_attrs_set_bool(&objs[i]->attrs, CKA_DESTROYABLE, CK_TRUE);
        }
    }
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_wrlock(&t->lock);
    rv = install_locked(t, key, objs, n, listed);
    pthread_rwlock_unlock(&t->lock);
    if (rv == CKR_OK) {
        akv_rotate_note(t, key);
    }
out:
    for (size_t i = 0; i < n; i++) {
        akv_obj_unref(objs[i]);
    }
    return rv;
}

static CK_RV fetch_and_install(struct akv_token *t, const char *name,
                               const char *version, bool listed,
                               struct akv_kv_key *key)
{
    CK_RV rv = t->kv->ops->get_key(t->kv, name, version, key);

    if (rv == CKR_OK) {
        rv = install_key(t, key, listed);
    }
    return rv;
}

/* ---- keys the token created (token/created.h) ---- */

size_t akv_token_n_keys(const struct akv_token *t)
{
    return __atomic_load_n(&t->n_keys, __ATOMIC_ACQUIRE);
}

/* The slot of key NAME (any state), or NULL. Caller holds the lock. */
static struct akv_keyslot *slot_find_locked(struct akv_token *t,
                                            const char *name)
{
    for (size_t i = 0; i < akv_token_n_keys(t); i++) {
        if (strcasecmp(t->keys[i].cfg->name, name) == 0) {
            return &t->keys[i];
        }
    }
    return NULL;
}

/* A created slot for NAME (an existing one of that name revived), or NULL
 * when every slot is taken. Caller holds the write lock. */
static struct akv_keyslot *slot_add_locked(struct akv_token *t,
                                           const char *name)
{
    struct akv_keyslot *ks = slot_find_locked(t, name);
    size_t n = akv_token_n_keys(t);

    if (ks != NULL) {
        ks->gone = false;
        return ks;
    }
    if (n == t->cap_keys) {
        return NULL;
    }
    ks = &t->keys[n];
    memset(ks, 0, sizeof(*ks));
    (void)snprintf(ks->own_name, sizeof(ks->own_name), "%s", name);
    ks->own.name = ks->own_name;
    ks->own.version = NULL;
    ks->cfg = &ks->own;
    ks->created = true;
    /* Complete before it is counted (readers load n_keys with acquire). */
    __atomic_store_n(&t->n_keys, n + 1, __ATOMIC_RELEASE);
    return ks;
}

/* Drops every vault object of key NAME. Caller holds the write lock. */
static void drop_key_objs_locked(struct akv_token *t, const char *name)
{
    for (size_t i = 0; i < t->n_objs;) {
        if (vault_obj_is(t->objs[i], name, NULL)) {
            akv_token_remove_obj_locked(t, t->objs[i]);
            continue;
        }
        i++;
    }
}

/* Brings the created slots in line with the catalog when it changed (a
 * stat otherwise): new names get a slot (fetched by refresh_keys like a
 * configured key), created slots whose name left it (another process
 * deleted the key) are skipped and their objects dropped. */
static void load_created(struct akv_token *t)
{
    struct akv_created_list *l = NULL;
    uint64_t stamp;
    int rc;

    if (t->cfg->store_dir == NULL || t->store == NULL) {
        return;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return;
    }
    pthread_rwlock_rdlock(&t->lock);
    stamp = t->created_stamp;
    pthread_rwlock_unlock(&t->lock);
    rc = akv_created_read(t->cfg->store_dir, &stamp, l);
    if (rc == 0) {
        goto out;
    }
    pthread_rwlock_wrlock(&t->lock);
    t->created_stamp = stamp;
    for (size_t i = 0; rc == 1 && i < akv_token_n_keys(t); i++) {
        struct akv_keyslot *ks = &t->keys[i];
        bool listed = false;

        for (size_t j = 0; j < l->n && !listed; j++) {
            listed = strcasecmp(l->names[j], ks->cfg->name) == 0;
        }
        if (ks->created && !ks->gone && !ks->local_only && !listed) {
            ks->gone = true;
            drop_key_objs_locked(t, ks->cfg->name);
        }
    }
    for (size_t j = 0; rc == 1 && j < l->n; j++) {
        struct akv_keyslot *ks = slot_find_locked(t, l->names[j]);

        if (ks == NULL && slot_add_locked(t, l->names[j]) == NULL) {
            AKV_LOG_WARN("token '%s': created key %s not shown: more than %d "
                         "keys",
                         t->cfg->label, l->names[j], AKV_CREATED_MAX);
        } else if (ks != NULL && ks->created && ks->gone) {
            ks->gone = false; /* created again by another process */
            ks->ever = false;
            ks->failed_at = 0;
        }
    }
    pthread_rwlock_unlock(&t->lock);
out:
    free(l);
}

/* The handles of key version K's public and private objects. */
static void pair_handles_locked(struct akv_token *t, const struct akv_kv_key *k,
                                CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    for (size_t i = 0; i < t->n_objs; i++) {
        const struct akv_obj *o = t->objs[i];

        if (vault_obj_is(o, k->name, k->version)) {
            if (o->cls == CKO_PUBLIC_KEY) {
                *pub = o->handle;
            } else if (o->cls == CKO_PRIVATE_KEY) {
                *priv = o->handle;
            }
        }
    }
}

CK_RV akv_token_add_created(struct akv_token *t, const struct akv_kv_key *k,
                            CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_kv_key key;
    struct akv_keyslot *ks = NULL;

    memset(&key, 0, sizeof(key));
    *pub = CK_INVALID_HANDLE;
    *priv = CK_INVALID_HANDLE;
    if (akv_kv_key_copy(&key, k) != CKR_OK) {
        goto out;
    }
    pthread_rwlock_wrlock(&t->lock);
    ks = slot_add_locked(t, key.name);
    if (ks != NULL) {
        ks->local_only = ks->created;
        (void)snprintf(ks->current, sizeof(ks->current), "%s", key.version);
        (void)snprintf(ks->kid, sizeof(ks->kid), "%s", key.kid);
        ks->kty = key.kty;
        ks->ever = true;
        ks->fetched = akv_token_now();
        ks->failed_at = 0;
    }
    pthread_rwlock_unlock(&t->lock);
    if (ks == NULL) {
        AKV_LOG_ERR("token '%s': key %s was created but is not shown: the "
                    "token already shows %d created keys",
                    t->cfg->label, key.name, AKV_CREATED_MAX);
        rv = CKR_DEVICE_MEMORY;
        goto out;
    }
    rv = install_key(t, &key, true);
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    pair_handles_locked(t, &key, pub, priv);
    pthread_rwlock_unlock(&t->lock);
    if (*pub == CK_INVALID_HANDLE || *priv == CK_INVALID_HANDLE) {
        rv = CKR_GENERAL_ERROR; /* not a key pair type: not shown */
        goto out;
    }
    if (t->store != NULL && ks->created) {
        /* Other processes find it from now on (a failure is logged: this
         * process still shows it, as its own). */
        if (akv_created_update(t->cfg->store_dir, key.name, true) == 0) {
            pthread_rwlock_wrlock(&t->lock);
            ks->local_only = false;
            pthread_rwlock_unlock(&t->lock);
        }
    } else if (t->store == NULL) {
        AKV_LOG_INFO("token '%s': created key %s is shown by this process "
                     "only (no store_dir)",
                     t->cfg->label, key.name);
    }
out:
    akv_kv_key_clear(&key);
    return rv;
}

CK_RV akv_token_delete_key(struct akv_token *t, struct akv_obj *o)
{
    CK_RV rv = CKR_FUNCTION_NOT_SUPPORTED;
    char name[AKV_KV_NAME_MAX];
    struct akv_keyslot *ks = NULL;
    bool created = false;

    if (o->vkey == NULL || t->kv->ops->delete_key == NULL) {
        goto out;
    }
    (void)snprintf(name, sizeof(name), "%s", o->vkey->name);
    /* A network call: no lock held. */
    rv = t->kv->ops->delete_key(t->kv, name);
    if (rv == CKR_KEY_HANDLE_INVALID) {
        rv = CKR_OK; /* already deleted */
    } else if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
        rv = CKR_ACTION_PROHIBITED; /* v3.0 §5.7.4: logged by the client */
    } else if (rv == CKR_ARGUMENTS_BAD || rv == CKR_GENERAL_ERROR) {
        rv = CKR_DEVICE_ERROR;
    }
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_wrlock(&t->lock);
    drop_key_objs_locked(t, name);
    ks = slot_find_locked(t, name);
    if (ks != NULL) {
        ks->gone = true;
        created = ks->created;
    }
    pthread_rwlock_unlock(&t->lock);
    if (created && t->store != NULL) {
        (void)akv_created_update(t->cfg->store_dir, name, false);
    }
    AKV_LOG_INFO("token '%s': key %s deleted from %s (C_DestroyObject, "
                 "allow_delete)",
                 t->cfg->label, name, t->cfg->vault_url);
out:
    return rv;
}

CK_RV akv_token_fetch_version(struct akv_token *t, const char *name,
                              const char *version, struct akv_kv_key *out)
{
    return fetch_and_install(t, name, version, false, out);
}

/* Re-GETs configured keys whose cache is stale. */
static CK_RV refresh_keys(struct akv_token *t)
{
    CK_RV result = CKR_OK;
    int64_t now = akv_token_now();
    long ttl = t->cfg->key_refresh_s;

    load_created(t);
    for (size_t i = 0; i < akv_token_n_keys(t); i++) {
        struct akv_keyslot *ks = &t->keys[i];
        const struct akv_key_config *kc = ks->cfg;
        struct akv_kv_key key;
        bool stale;
        int64_t end;
        CK_RV rv;

        memset(&key, 0, sizeof(key));
        pthread_rwlock_rdlock(&t->lock);
        if (ks->gone) {
            pthread_rwlock_unlock(&t->lock);
            continue;
        }
        stale = !ks->ever || ttl <= 0 || now - ks->fetched >= ttl;
        /* key_refresh_s 0 means "always ask": no failure memory then. */
        rv =
            !ks->ever && ks->failed_at != 0
                    && now - ks->failed_at
                           < (ttl < AKV_TOKEN_RETRY_S ? ttl : AKV_TOKEN_RETRY_S)
                ? ks->failed_rv
                : CKR_OK;
        pthread_rwlock_unlock(&t->lock);
        if (rv != CKR_OK) {
            /* Same answer as a moment ago, already logged: no new GET. */
            if (rv != CKR_KEY_HANDLE_INVALID
                && rv != CKR_KEY_FUNCTION_NOT_PERMITTED) {
                result = rv == CKR_HOST_MEMORY ? rv : CKR_DEVICE_ERROR;
            }
            continue;
        }
        if (!stale) {
            continue;
        }
        rv = fetch_and_install(t, kc->name, kc->version, true, &key);
        /* A failure is remembered from when it ended: a GET that took the
         * whole HTTP budget must not have expired by the time it returns. */
        end = akv_token_now();
        pthread_rwlock_wrlock(&t->lock);
        if (rv == CKR_OK) {
            if (kc->version == NULL && ks->ever
                && strcasecmp(ks->current, key.version) != 0) {
                /* Rotation: the old current version keeps its handles
                 * (bound forever) but is only found by its CKA_ID now. */
                for (size_t j = 0; j < t->n_objs; j++) {
                    struct akv_obj *o = t->objs[j];

                    if (vault_obj_is(o, kc->name, ks->current)
                        && !version_pinned(t, kc->name, ks->current)) {
                        o->listed = false;
                    }
                }
                AKV_LOG_INFO("key %s rotated: %s -> %s", kc->name, ks->current,
                             key.version);
            }
            (void)snprintf(ks->current, sizeof(ks->current), "%s", key.version);
            (void)snprintf(ks->kid, sizeof(ks->kid), "%s", key.kid);
            ks->kty = key.kty;
            ks->ever = true;
            ks->fetched = now;
            ks->failed_at = 0;
        } else if (ks->ever) {
            /* Keep serving the cached version; retry after the TTL. */
            ks->fetched = end;
            AKV_LOG_WARN("key %s: refresh failed (rv 0x%lx); using the "
                         "cached version %s",
                         kc->name, (unsigned long)rv, ks->current);
        } else if (rv == CKR_KEY_HANDLE_INVALID) {
            ks->failed_at = end > 0 ? end : 1;
            ks->failed_rv = rv;
            AKV_LOG_ERR("key %s%s%s: not found in %s; not shown", kc->name,
                        kc->version != NULL ? "/" : "",
                        kc->version != NULL ? kc->version : "",
                        t->cfg->vault_url);
        } else if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
            /* A definite "no" from the vault (access revoked, key
             * disabled): the key is not shown, but the token's stored
             * objects still are, so using them fails where it should, with
             * CKR_KEY_FUNCTION_NOT_PERMITTED from the unwrap. */
            ks->failed_at = end > 0 ? end : 1;
            ks->failed_rv = rv;
            AKV_LOG_ERR("key %s: access refused by %s; not shown", kc->name,
                        t->cfg->vault_url);
        } else {
            ks->failed_at = end > 0 ? end : 1;
            ks->failed_rv = rv;
            AKV_LOG_ERR("key %s: cannot be fetched from %s (rv 0x%lx)",
                        kc->name, t->cfg->vault_url, (unsigned long)rv);
            result = rv == CKR_HOST_MEMORY ? rv : CKR_DEVICE_ERROR;
        }
        pthread_rwlock_unlock(&t->lock);
        akv_kv_key_clear(&key);
    }
    return result;
}

static bool id_known_locked(struct akv_token *t, const CK_ATTRIBUTE *id)
{
    for (size_t i = 0; i < t->n_objs; i++) {
        if (akv_attrs_match(&t->objs[i]->attrs, id, 1)) {
            return true;
        }
    }
    return false;
}

/* A CKA_ID that named no version of any configured key within the last
 * key_refresh_s: not asked again (bounded, like every cache). */
static bool recent_miss_locked(const struct akv_token *t, const char *version)
{
    long ttl = t->cfg->key_refresh_s;
    int64_t now = akv_token_now();

    for (size_t i = 0; ttl > 0 && i < AKV_TOKEN_MISSES; i++) {
        if (t->misses[i].version[0] != '\0'
            && strcmp(t->misses[i].version, version) == 0
            && now - t->misses[i].at < ttl) {
            return true;
        }
    }
    return false;
}

/* design.md: a CKA_ID naming a version the token has not seen makes one
 * GET /keys/{name}/{version} per configured key name. Key Vault versions
 * are 32 hex digits, i.e. a 16-byte CKA_ID; any other CKA_ID (an
 * application's id for its own data key, e.g. pkcs11-tool --id 41) cannot
 * name a version and must not cost a vault call. */
static CK_RV fetch_id_on_demand(struct akv_token *t, const CK_ATTRIBUTE *id)
{
    char version[AKV_KV_VERSION_MAX];
    bool known;

    if (id == NULL || id->ulValueLen != 16 || id->pValue == NULL
        || !akv_token_version_from_id(id->pValue, id->ulValueLen, version)) {
        return CKR_OK;
    }
    pthread_rwlock_rdlock(&t->lock);
    known = id_known_locked(t, id) || recent_miss_locked(t, version);
    pthread_rwlock_unlock(&t->lock);
    if (known) {
        return CKR_OK;
    }
    for (size_t i = 0; i < akv_token_n_keys(t); i++) {
        const char *name = t->keys[i].cfg->name;
        bool dup = false;
        bool gone;

        pthread_rwlock_rdlock(&t->lock);
        gone = t->keys[i].gone;
        pthread_rwlock_unlock(&t->lock);
        if (gone) {
            continue; /* deleted: no version of it to find */
        }
        struct akv_kv_key key;
        CK_RV rv;

        for (size_t j = 0; j < i && !dup; j++) {
            dup = strcmp(t->keys[j].cfg->name, name) == 0;
        }
        if (dup) {
            continue;
        }
        memset(&key, 0, sizeof(key));
        rv = fetch_and_install(t, name, version, false, &key);
        akv_kv_key_clear(&key);
        if (rv == CKR_OK) {
            break;
        }
        if (rv != CKR_KEY_HANDLE_INVALID) {
            AKV_LOG_WARN("key %s/%s: on-demand fetch failed (rv 0x%lx)", name,
                         version, (unsigned long)rv);
            return CKR_OK; /* not a proven miss: do not remember it */
        }
    }
    pthread_rwlock_wrlock(&t->lock);
    if (!id_known_locked(t, id)) {
        struct akv_miss *m = &t->misses[t->next_miss];

        (void)snprintf(m->version, sizeof(m->version), "%s", version);
        m->at = akv_token_now();
        t->next_miss = (t->next_miss + 1) % AKV_TOKEN_MISSES;
    }
    pthread_rwlock_unlock(&t->lock);
    return CKR_OK;
}

static CK_RV obj_from_record(struct akv_store_record *r, struct akv_obj **out)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct akv_attrs a = AKV_ATTRS_INIT;
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ULONG kt = (CK_ULONG)-1;
    struct akv_obj *o = NULL;

    rv = akv_attrs_parse(r->attrs, r->attrs_len, &a);
    if (rv != CKR_OK) {
        AKV_LOG_WARN("store record %s: malformed attributes; skipped", r->id);
        goto out;
    }
    (void)akv_attrs_ulong(&a, CKA_CLASS, &cls);
    (void)akv_attrs_ulong(&a, CKA_KEY_TYPE, &kt);
    o = akv_obj_new(AKV_ORIGIN_STORE, cls, kt);
    if (o == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    o->attrs = a;
    a.v = NULL;
    a.n = 0;
    /* Records written before an attribute was answered get it here. */
    if (akv_attrs_fill_defaults(&o->attrs, cls) != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (r->kid != NULL
        && akv_attrs_set(&o->attrs, CKA_AKV_WRAPPING_KID, r->kid,
                         strlen(r->kid))
               != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    o->rec_sum = rec_sum(r);
    /* Take the record's buffers; the attrs blob is kept: it is associated
     * data of the sealed value (seal.h). */
    o->rec = *r;
    memset(r, 0, sizeof(*r));
    *out = o;
    o = NULL;
    rv = CKR_OK;
out:
    akv_attrs_clear(&a);
    akv_obj_unref(o);
    return rv;
}

/* ---- sealing (token/seal.h) ---- */

/* "wrap": "local": the record key and S are wrapped with the cached
 * public key of the target version (same RSAES-OAEP output as wrapKey, no
 * round trip, not audited by Key Vault: docs/SECURITY.md). */
static CK_RV local_wrap(void *arg, const struct akv_seal_target *tg,
                        const uint8_t *in, size_t in_len, uint8_t **out,
                        size_t *out_len)
{
    struct akv_token *t = arg;
    EVP_PKEY *pub = NULL;
    CK_RV rv = CKR_KEY_HANDLE_INVALID;
    size_t len = 0;

    if (tg->alg != AKV_KV_ALG_RSA_OAEP_256) {
        return rv;
    }
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->n_objs && pub == NULL; i++) {
        const struct akv_obj *o = t->objs[i];

        if (o->origin == AKV_ORIGIN_VAULT && o->pub != NULL && o->vkey != NULL
            && strcmp(o->vkey->name, tg->name) == 0
            && strcasecmp(o->vkey->version, tg->version) == 0
            && EVP_PKEY_up_ref(o->pub) == 1) {
            pub = o->pub;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    if (pub == NULL) {
        return rv;
    }
    *out = malloc((size_t)EVP_PKEY_get_size(pub));
    if (*out == NULL) {
        rv = CKR_HOST_MEMORY;
    } else {
        rv = akv_crypto_rsa_encrypt(pub, tg->alg, in, in_len, *out, &len);
    }
    if (rv == CKR_OK) {
        *out_len = len;
    } else {
        free(*out);
        *out = NULL;
    }
    EVP_PKEY_free(pub);
    return rv;
}

static struct akv_seal_ctx seal_ctx(struct akv_token *t)
{
    struct akv_seal_ctx c = {t->kv, t->store, t->cfg->vault_url, NULL, NULL};

    if (t->cfg->wrap == AKV_WRAP_LOCAL) {
        c.local_wrap = local_wrap;
        c.local_arg = t;
    }
    return c;
}

/* The key that seals new records now: akv_seal_choose over the configured
 * keys as last fetched. CKR_OK or CKR_TEMPLATE_INCONSISTENT. */
static CK_RV seal_target(struct akv_token *t, struct akv_seal_target *out)
{
    struct akv_seal_cand c[16];
    size_t n = 0;
    CK_RV rv;

    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < akv_token_n_keys(t) && n < sizeof(c) / sizeof(c[0]);
         i++) {
        const struct akv_keyslot *ks = &t->keys[i];

        /* Keys the token created never seal the store: its records stay
         * under the configured CMK. */
        if (!ks->ever || ks->created || ks->gone) {
            continue;
        }
        c[n].name = ks->cfg->name;
        c[n].version = ks->current;
        c[n].kid = ks->kid;
        c[n].kty = ks->kty;
        n++;
    }
    rv = akv_seal_choose(c, n, out);
    pthread_rwlock_unlock(&t->lock);
    return rv;
}

/* Loads (or on first use creates) the store secret; network, no lock. */
static CK_RV seal_ready(struct akv_token *t)
{
    struct akv_seal_ctx c = seal_ctx(t);
    struct akv_seal_target tg;
    bool have_tg = false;

    if (akv_store_has_secret(t->store)) {
        return CKR_OK;
    }
    have_tg = seal_target(t, &tg) == CKR_OK;
    return akv_seal_ready(&c, have_tg ? &tg : NULL);
}

/* Brings one record into the table (caller holds the write lock): an
 * unknown record becomes a new object; a record another process changed
 * keeps its handle and gets the new attributes and wrapped value, unless
 * its class or key type changed - those are immutable on a live object
 * (cipher and wrap code read them without the lock), so the old object is
 * dropped and a new one takes its place. */
static void reload_one_locked(struct akv_token *t, struct akv_store_record *r)
{
    struct akv_obj *have = NULL;
    struct akv_obj *o = NULL;

    for (size_t i = 0; i < t->n_objs && have == NULL; i++) {
        if (t->objs[i]->origin == AKV_ORIGIN_STORE
            && strcmp(t->objs[i]->rec.id, r->id) == 0) {
            have = t->objs[i];
        }
    }
    if (have != NULL && have->rec_sum == rec_sum(r)) {
        return;
    }
    if (obj_from_record(r, &o) != CKR_OK) {
        return;
    }
    if (have != NULL && have->cls == o->cls && have->key_type == o->key_type) {
        /* Changed by another process: same handle, new content. */
        akv_attrs_clear(&have->attrs);
        have->attrs = o->attrs;
        o->attrs.v = NULL;
        o->attrs.n = 0;
        akv_store_record_clear(&have->rec);
        have->rec = o->rec;
        memset(&o->rec, 0, sizeof(o->rec));
        have->rec_sum = o->rec_sum;
        akv_secret_clear(&have->value);
    } else {
        if (have != NULL) {
            akv_token_remove_obj_locked(t, have);
        }
        if (akv_token_add_obj_locked(t, o) != CKR_OK) {
            AKV_LOG_WARN("token '%s': store object %s not loaded",
                         t->cfg->label, o->rec.id);
        }
    }
    akv_obj_unref(o);
}

/* Whether the store changed since the last reload (a stat of the folder). */
static bool store_changed(struct akv_token *t, uint64_t *stamp)
{
    bool need;

    *stamp = akv_store_stamp(t->store);
    pthread_rwlock_rdlock(&t->lock);
    need = !t->store_loaded || *stamp != t->store_stamp;
    pthread_rwlock_unlock(&t->lock);
    return need;
}

/* Under t->store_mu from the stamp check to the table update: this
 * process's own creates and destroys (which change disk and table under the
 * same mutex) are then either fully before or fully after the listing. The
 * common "nothing changed" case is decided without the mutex. */
static CK_RV reload_store(struct akv_token *t)
{
    CK_RV rv = CKR_OK;
    uint64_t stamp;
    bool locked = false;
    struct akv_store_record *recs = NULL;
    size_t n = 0;

    if (t->store == NULL || !store_changed(t, &stamp)) {
        goto out;
    }
    if (!akv_store_has_secret(t->store) && akv_store_unused(t->store)) {
        /* Nothing stored yet: no store secret (and no vault call) until the
         * first token object is created. */
        rv = CKR_OK;
        goto out;
    }
    /* The store secret (an unwrapKey, once per process) before the store
     * mutex: no lock is held across a vault call. */
    rv = seal_ready(t);
    if (rv != CKR_OK) {
        AKV_LOG_WARN("token '%s': store key not available (rv 0x%lx); token "
                     "objects not loaded",
                     t->cfg->label, (unsigned long)rv);
        rv = CKR_OK;
        goto out;
    }
    pthread_mutex_lock(&t->store_mu);
    locked = true;
    if (!store_changed(t, &stamp)) {
        goto out; /* another thread reloaded meanwhile */
    }
    rv = akv_store_list(t->store, &recs, &n);
    if (rv != CKR_OK) {
        AKV_LOG_WARN("token '%s': store not readable; token objects not "
                     "refreshed",
                     t->cfg->label);
        rv = CKR_OK;
        goto out;
    }
    pthread_rwlock_wrlock(&t->lock);
    /* Drop objects whose record vanished (another process destroyed it). */
    for (size_t i = 0; i < t->n_objs;) {
        struct akv_obj *o = t->objs[i];
        bool present = false;

        for (size_t j = 0; o->origin == AKV_ORIGIN_STORE && j < n; j++) {
            present = strcmp(recs[j].id, o->rec.id) == 0;
            if (present) {
                break;
            }
        }
        if (o->origin == AKV_ORIGIN_STORE && !present) {
            akv_token_remove_obj_locked(t, o);
            continue;
        }
        i++;
    }
    for (size_t j = 0; j < n; j++) {
        reload_one_locked(t, &recs[j]);
    }
    t->store_stamp = stamp;
    t->store_loaded = true;
    pthread_rwlock_unlock(&t->lock);
out:
    if (locked) {
        pthread_mutex_unlock(&t->store_mu);
    }
    akv_store_records_free(recs, n);
    return rv;
}

CK_RV akv_token_refresh(struct akv_token *t, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n)
{
    CK_RV rv = refresh_keys(t);
    CK_RV rv2 = CKR_OK;

    if (rv == CKR_OK) {
        rv = fetch_id_on_demand(t, akv_attr_tmpl_find(tmpl, n, CKA_ID));
    }
    /* After the keys: the certificate is shown next to its key version. */
    akv_cert_refresh(t);
    rv2 = reload_store(t);
    return rv != CKR_OK ? rv : rv2;
}

/* ---- values of secret keys ---- */

CK_RV akv_token_obj_value(struct akv_token *t, struct akv_obj *o,
                          struct akv_secret *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_store_record rec;
    struct akv_seal_ctx c = seal_ctx(t);
    struct akv_secret plain = AKV_SECRET_INIT;
    long ttl = t->cfg->dek_cache_ttl_s;

    memset(&rec, 0, sizeof(rec));

    if (o->origin == AKV_ORIGIN_SESSION) {
        if (o->value.data == NULL) {
            rv = CKR_KEY_HANDLE_INVALID;
            goto out;
        }
        rv = akv_secret_set(out, o->value.data, o->value.len) == 0
                 ? CKR_OK
                 : CKR_HOST_MEMORY;
        goto out;
    }
    if (o->origin != AKV_ORIGIN_STORE) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    if (ttl > 0 && o->value.data != NULL && akv_token_now() < o->value_expiry) {
        rv = akv_secret_set(out, o->value.data, o->value.len) == 0
                 ? CKR_OK
                 : CKR_HOST_MEMORY;
        pthread_rwlock_unlock(&t->lock);
        goto out;
    }
    rv = akv_store_record_copy(&rec, &o->rec);
    pthread_rwlock_unlock(&t->lock);
    if (rv != CKR_OK) {
        goto out;
    }
    /* No lock held: unwrap is a network call. */
    rv = akv_seal_open(&c, &rec, &plain);
    if (rv != CKR_OK) {
        AKV_LOG_WARN("token object %s: value not available (rv 0x%lx)", rec.id,
                     (unsigned long)rv);
        /* An expired cached value is never served again: wipe it now
         * rather than keep the plaintext until a later unwrap succeeds
         * (re-checked under the write lock: another thread may have
         * refreshed it meanwhile). */
        pthread_rwlock_wrlock(&t->lock);
        if (o->value.data != NULL && akv_token_now() >= o->value_expiry) {
            akv_secret_clear(&o->value);
        }
        pthread_rwlock_unlock(&t->lock);
        goto out;
    }
    if (ttl > 0) {
        pthread_rwlock_wrlock(&t->lock);
        if (akv_secret_set(&o->value, plain.data, plain.len) == 0) {
            o->value_expiry = akv_token_now() + ttl;
        }
        pthread_rwlock_unlock(&t->lock);
    }
    *out = plain;
    plain.data = NULL;
    plain.len = 0;
    plain.cap = 0;
    rv = CKR_OK;
out:
    akv_secret_clear(&plain);
    akv_store_record_clear(&rec);
    return rv;
}

/* Serialises O's attributes without the vendor attribute that is derived
 * from the record itself. */
static CK_RV serialise_attrs(const struct akv_attrs *src, uint8_t **out,
                             size_t *out_len)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_attrs tmp = AKV_ATTRS_INIT;

    rv = akv_attrs_copy(&tmp, src);
    if (rv == CKR_OK) {
        akv_attrs_remove(&tmp, CKA_AKV_WRAPPING_KID);
        akv_attrs_remove(&tmp, CKA_VALUE);
        /* A record the store cannot hold would fail after the vault call
         * (or, if written, be skipped on reload): refuse it up front as a
         * value that is too long. */
        rv = akv_attrs_size(&tmp) > AKV_STORE_ATTRS_MAX
                 ? CKR_ATTRIBUTE_VALUE_INVALID
                 : akv_attrs_serialise(&tmp, out, out_len);
    }
    akv_attrs_clear(&tmp);
    return rv;
}

CK_RV akv_token_persist(struct akv_token *t, struct akv_obj *o,
                        const struct akv_secret *value)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_seal_ctx c = seal_ctx(t);
    struct akv_seal_target tg;
    struct akv_store_record rec;

    memset(&rec, 0, sizeof(rec));
    if (t->store == NULL && t->store_refused) {
        AKV_LOG_ERR("token '%s': CKA_TOKEN=TRUE refused: store_dir %s was "
                    "refused at C_Initialize (see that log line)",
                    t->cfg->label, t->cfg->store_dir);
        rv = CKR_TOKEN_WRITE_PROTECTED;
        goto out;
    }
    if (t->store == NULL) {
        AKV_LOG_ERR("token '%s': CKA_TOKEN=TRUE needs store_dir in the "
                    "configuration",
                    t->cfg->label);
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    /* Attributes first: a template the store cannot hold is refused
     * before any vault call. */
    rv = serialise_attrs(&o->attrs, &rec.attrs, &rec.attrs_len);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = refresh_keys(t);
    if (seal_target(t, &tg) != CKR_OK) {
        AKV_LOG_ERR("token '%s': no usable vault key to wrap token objects",
                    t->cfg->label);
        rv = rv != CKR_OK ? rv : CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    /* Sealing (a vault call) runs before the store mutex is taken. */
    rv = akv_seal_ready(&c, &tg);
    if (rv == CKR_OK) {
        rv = akv_seal_seal(&c, &tg, &rec, value->data, value->len);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    /* Disk and table change together: a reload in another thread sees
     * either neither or both (one record, one handle). */
    pthread_mutex_lock(&t->store_mu);
    rv = akv_store_put(t->store, &rec);
    if (rv == CKR_OK) {
        o->rec_sum = rec_sum(&rec);
        akv_store_record_clear(&o->rec);
        o->rec = rec;
        memset(&rec, 0, sizeof(rec));
        rv = akv_attrs_set(&o->attrs, CKA_AKV_WRAPPING_KID, o->rec.kid,
                           strlen(o->rec.kid));
        if (rv == CKR_OK) {
            pthread_rwlock_wrlock(&t->lock);
            rv = akv_token_add_obj_locked(t, o);
            pthread_rwlock_unlock(&t->lock);
        }
        if (rv != CKR_OK) {
            (void)akv_store_delete(t->store, o->rec.id);
        }
    }
    pthread_mutex_unlock(&t->store_mu);
out:
    akv_store_record_clear(&rec);
    return rv;
}

CK_RV akv_token_forget(struct akv_token *t, struct akv_obj *o)
{
    CK_RV rv = CKR_OK;
    char id[AKV_STORE_ID_LEN + 1];

    pthread_mutex_lock(&t->store_mu);
    if (o->origin == AKV_ORIGIN_STORE) {
        pthread_rwlock_rdlock(&t->lock);
        memcpy(id, o->rec.id, sizeof(id));
        pthread_rwlock_unlock(&t->lock);
        rv = akv_store_delete(t->store, id);
    }
    if (rv == CKR_OK) {
        pthread_rwlock_wrlock(&t->lock);
        if (!o->dead) {
            akv_token_remove_obj_locked(t, o);
        }
        pthread_rwlock_unlock(&t->lock);
    }
    pthread_mutex_unlock(&t->store_mu);
    return rv;
}

CK_RV akv_token_rewrite_attrs(struct akv_token *t, struct akv_obj *o,
                              struct akv_attrs *attrs)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_seal_ctx c = seal_ctx(t);
    struct akv_seal_target tg;
    struct akv_store_record old, rec;
    uint8_t *blob = NULL;
    size_t blob_len = 0;

    memset(&old, 0, sizeof(old));
    memset(&rec, 0, sizeof(rec));
    rv = serialise_attrs(attrs, &blob, &blob_len);
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    rv = akv_store_record_copy(&old, &o->rec);
    pthread_rwlock_unlock(&t->lock);
    if (rv != CKR_OK) {
        goto out;
    }
    /* The attributes are associated data of the sealed value: a change
     * reseals it (and moves a legacy record to format 2) under the
     * current sealing key. Sealing is a vault call: no mutex held. */
    (void)refresh_keys(t);
    rv = seal_target(t, &tg);
    if (rv == CKR_OK) {
        rv = akv_seal_ready(&c, &tg);
    }
    if (rv == CKR_OK) {
        rv = akv_seal_reseal(&c, &tg, &old, blob, blob_len, &rec);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    /* The caller installs ATTRS as the object's attributes: it must name
     * the key that now wraps the record key. */
    rv = akv_attrs_set(attrs, CKA_AKV_WRAPPING_KID, rec.kid, strlen(rec.kid));
    if (rv != CKR_OK) {
        goto out;
    }
    /* Disk and table change together (one record, one handle). */
    pthread_mutex_lock(&t->store_mu);
    rv = akv_store_put(t->store, &rec);
    if (rv == CKR_OK) {
        pthread_rwlock_wrlock(&t->lock);
        o->rec_sum = rec_sum(&rec);
        akv_store_record_clear(&o->rec);
        o->rec = rec;
        memset(&rec, 0, sizeof(rec));
        pthread_rwlock_unlock(&t->lock);
    }
    pthread_mutex_unlock(&t->store_mu);
out:
    free(blob);
    akv_store_record_clear(&old);
    akv_store_record_clear(&rec);
    return rv;
}
