/* SPDX-License-Identifier: Apache-2.0 */
#include "keygen.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/x509.h>

#include "../common/kvid.h"
#include "../common/log.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "crypto.h"
#include "mech.h"
#include "session.h"
#include "token.h"

/* The curves this token generates: Key Vault's JsonWebKeyCurveName and the
 * OpenSSL group (the OID is akv_crypto_ec_oid's). */
static const struct {
    const char *crv;
    const char *group;
} curves[] = {
    {"P-256", "prime256v1"},
    {"P-384", "secp384r1"},
    {"P-521", "secp521r1"},
    {"P-256K", "secp256k1"},
};

/* What the templates ask for, once checked. */
struct req {
    CK_KEY_TYPE kt;
    CK_MECHANISM_TYPE mech;
    bool token;
    unsigned bits;    /* RSA */
    uint32_t exp;     /* RSA public exponent */
    size_t curve;     /* EC: index in curves[] */
    unsigned key_ops; /* AKV_KV_OP_* from the usage attributes */
};

/* Usage attributes and the key_ops bit each one asks for, with the
 * template (public or private) that carries it and the default. */
static const struct {
    CK_ATTRIBUTE_TYPE type;
    unsigned op;
    bool priv;
    CK_BBOOL dflt;
    bool rsa_only;
} usages[] = {
    {CKA_SIGN, AKV_KV_OP_SIGN, true, CK_TRUE, false},
    {CKA_VERIFY, AKV_KV_OP_VERIFY, false, CK_TRUE, false},
    {CKA_DECRYPT, AKV_KV_OP_DECRYPT, true, CK_FALSE, true},
    {CKA_ENCRYPT, AKV_KV_OP_ENCRYPT, false, CK_FALSE, true},
    {CKA_UNWRAP, AKV_KV_OP_UNWRAPKEY, true, CK_FALSE, true},
    {CKA_WRAP, AKV_KV_OP_WRAPKEY, false, CK_FALSE, true},
};

static CK_BBOOL tmpl_bool(const CK_ATTRIBUTE *t, CK_ULONG n,
                          CK_ATTRIBUTE_TYPE type, CK_BBOOL dflt)
{
    CK_BBOOL v = dflt;

    (void)akv_attr_tmpl_bool(t, n, type, &v);
    return v;
}

/* CKA_CLASS and CKA_KEY_TYPE, when given, must be the pair's. */
static CK_RV check_kind(const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_CLASS cls,
                        CK_KEY_TYPE kt)
{
    CK_ULONG v = 0;

    if (akv_attr_tmpl_ulong(t, n, CKA_CLASS, &v) && v != cls) {
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (akv_attr_tmpl_ulong(t, n, CKA_KEY_TYPE, &v) && v != kt) {
        return CKR_TEMPLATE_INCONSISTENT;
    }
    return CKR_OK;
}

/* RSA: CKA_MODULUS_BITS and CKA_PUBLIC_EXPONENT (Current Mechanisms
 * §2.1.4). */
static CK_RV check_rsa(const CK_ATTRIBUTE *t, CK_ULONG n, struct req *r)
{
    CK_ULONG bits = 0;
    const CK_ATTRIBUTE *e = akv_attr_tmpl_find(t, n, CKA_PUBLIC_EXPONENT);

    if (!akv_attr_tmpl_ulong(t, n, CKA_MODULUS_BITS, &bits)) {
        return CKR_TEMPLATE_INCOMPLETE;
    }
    if (bits != 2048 && bits != 3072 && bits != 4096) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    r->bits = (unsigned)bits;
    r->exp = 65537;
    if (e != NULL) {
        const uint8_t *p = e->pValue;
        uint64_t v = 0;

        for (CK_ULONG i = 0; i < e->ulValueLen; i++) {
            v = (v << 8) | p[i];
            if (v > 0xffffffffu) {
                return CKR_ATTRIBUTE_VALUE_INVALID;
            }
        }
        if (v < 3 || (v & 1) == 0) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        r->exp = (uint32_t)v;
    }
    return CKR_OK;
}

/* EC: CKA_EC_PARAMS, the DER OID of a named curve (§2.3.3, §2.3.5). */
static CK_RV check_ec(const CK_ATTRIBUTE *t, CK_ULONG n, struct req *r)
{
    const CK_ATTRIBUTE *a = akv_attr_tmpl_find(t, n, CKA_EC_PARAMS);
    const uint8_t *p = NULL;

    if (a == NULL) {
        return CKR_TEMPLATE_INCOMPLETE;
    }
    p = a->pValue;
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        size_t len = 0;
        const uint8_t *oid = akv_crypto_ec_oid(curves[i].crv, &len);

        if (oid != NULL && a->ulValueLen == len && memcmp(p, oid, len) == 0) {
            r->curve = i;
            return CKR_OK;
        }
    }
    /* A well-formed OID of another curve, or explicit parameters: a curve
     * this token does not generate. Anything else is not ECParameters. */
    if (a->ulValueLen >= 2 && (p[0] == 0x06 || p[0] == 0x30)
        && p[1] == a->ulValueLen - 2) {
        return CKR_CURVE_NOT_SUPPORTED;
    }
    return CKR_ATTRIBUTE_VALUE_INVALID;
}

/* Both templates, in v3.0's order; fills R. */
static CK_RV check_templates(struct akv_session *s, const CK_MECHANISM *mech,
                             const CK_ATTRIBUTE *pt, CK_ULONG pn,
                             const CK_ATTRIBUTE *kt, CK_ULONG kn, struct req *r)
{
    CK_RV rv = akv_mech_check(mech, CKF_GENERATE_KEY_PAIR, (CK_KEY_TYPE)-1);
    CK_BBOOL ptok;

    if (rv != CKR_OK) {
        return rv;
    }
    if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    r->mech = mech->mechanism;
    r->kt = mech->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN ? CKK_RSA : CKK_EC;
    rv = akv_attr_check_template(pt, pn, AKV_ATTR_OP_GENERATE);
    if (rv == CKR_OK) {
        rv = akv_attr_check_template(kt, kn, AKV_ATTR_OP_GENERATE);
    }
    if (rv == CKR_OK) {
        rv = akv_attr_check_class(pt, pn, CKO_PUBLIC_KEY);
    }
    if (rv == CKR_OK) {
        rv = akv_attr_check_class(kt, kn, CKO_PRIVATE_KEY);
    }
    if (rv == CKR_OK) {
        rv = check_kind(pt, pn, CKO_PUBLIC_KEY, r->kt);
    }
    if (rv == CKR_OK) {
        rv = check_kind(kt, kn, CKO_PRIVATE_KEY, r->kt);
    }
    if (rv != CKR_OK) {
        return rv;
    }
    /* The private key decides where the pair lives; a public key on the
     * other side of that line has nowhere to be. */
    r->token = tmpl_bool(kt, kn, CKA_TOKEN, CK_FALSE) == CK_TRUE;
    ptok = tmpl_bool(pt, pn, CKA_TOKEN, r->token ? CK_TRUE : CK_FALSE);
    if ((ptok == CK_TRUE) != r->token) {
        return CKR_TEMPLATE_INCONSISTENT;
    }
    rv = r->kt == CKK_RSA ? check_rsa(pt, pn, r) : check_ec(pt, pn, r);
    if (rv != CKR_OK) {
        return rv;
    }
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
        bool on = usages[i].priv
                      ? tmpl_bool(kt, kn, usages[i].type, usages[i].dflt)
                      : tmpl_bool(pt, pn, usages[i].type, usages[i].dflt);

        if (on && usages[i].rsa_only && r->kt != CKK_RSA) {
            /* EC keys sign and verify only (Key Vault EC key_ops; no
             * ECDH here). */
            return CKR_TEMPLATE_INCONSISTENT;
        }
        if (on) {
            r->key_ops |= usages[i].op;
        }
    }
    if (r->token && !akv_session_is_rw(s)) {
        return CKR_SESSION_READ_ONLY; /* v3.0 §5.7.1 */
    }
    return CKR_OK;
}

/* ---- in Key Vault ---- */

/* Attributes a vault key pair cannot carry as asked, with why. */
static CK_RV vault_only(struct akv_token *t, const CK_ATTRIBUTE *pt,
                        CK_ULONG pn, const CK_ATTRIBUTE *kt, CK_ULONG kn)
{
    static const struct {
        CK_ATTRIBUTE_TYPE type;
        CK_BBOOL ok; /* the only value a vault key has */
        const char *why;
    } fixed[] = {
        {CKA_SENSITIVE, CK_TRUE, "a vault private key is always sensitive"},
        {CKA_EXTRACTABLE, CK_FALSE, "a vault private key never leaves it"},
        {CKA_DERIVE, CK_FALSE, "no vault key derives"},
        {CKA_SIGN_RECOVER, CK_FALSE, "Key Vault has no sign-recover"},
        {CKA_VERIFY_RECOVER, CK_FALSE, "Key Vault has no verify-recover"},
        {CKA_MODIFIABLE, CK_FALSE, "vault key objects are read-only"},
        {CKA_COPYABLE, CK_FALSE, "vault key objects are not copied"},
        {CKA_WRAP_WITH_TRUSTED, CK_FALSE, "Key Vault has no trusted wrap"},
        {CKA_TRUSTED, CK_FALSE, "Key Vault has no trusted wrap"},
    };
    static const CK_ATTRIBUTE_TYPE refused[] = {
        CKA_ID,
        CKA_SUBJECT,
        CKA_START_DATE,
        CKA_END_DATE,
        CKA_ALLOWED_MECHANISMS,
        CKA_WRAP_TEMPLATE,
        CKA_UNWRAP_TEMPLATE,
    };

    for (int side = 0; side < 2; side++) {
        const CK_ATTRIBUTE *tm = side == 0 ? pt : kt;
        CK_ULONG n = side == 0 ? pn : kn;

        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
            CK_BBOOL v;

            if (fixed[i].type == CKA_DERIVE
                && akv_attr_tmpl_bool(tm, n, CKA_DERIVE, &v) && v) {
                /* pkcs11-tool asks it for every EC key pair: refusing would
                 * make EC keys unreachable from it. Said, and answered as
                 * it is. */
                AKV_LOG_WARN("token '%s': C_GenerateKeyPair: CKA_DERIVE TRUE "
                             "ignored: vault keys do not derive (the objects "
                             "show CKA_DERIVE FALSE)",
                             t->cfg->label);
                continue;
            }
            if (akv_attr_tmpl_bool(tm, n, fixed[i].type, &v)
                && v != fixed[i].ok) {
                AKV_LOG_ERR("token '%s': C_GenerateKeyPair: attribute 0x%lx "
                            "refused for a vault key: %s",
                            t->cfg->label, (unsigned long)fixed[i].type,
                            fixed[i].why);
                return CKR_TEMPLATE_INCONSISTENT;
            }
        }
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
            const CK_ATTRIBUTE *a = akv_attr_tmpl_find(tm, n, refused[i]);

            if (a != NULL && a->ulValueLen > 0) {
                AKV_LOG_ERR("token '%s': C_GenerateKeyPair: attribute 0x%lx "
                            "refused for a vault key (the vault decides it: "
                            "CKA_ID is the key version)",
                            t->cfg->label, (unsigned long)refused[i]);
                return CKR_TEMPLATE_INCONSISTENT;
            }
        }
    }
    return CKR_OK;
}

/* CKA_LABEL of either template (equal when both give it) -> NAME. */
static CK_RV vault_name(struct akv_token *t, const CK_ATTRIBUTE *pt,
                        CK_ULONG pn, const CK_ATTRIBUTE *kt, CK_ULONG kn,
                        char name[AKV_KV_NAME_MAX])
{
    const CK_ATTRIBUTE *a = akv_attr_tmpl_find(kt, kn, CKA_LABEL);
    const CK_ATTRIBUTE *b = akv_attr_tmpl_find(pt, pn, CKA_LABEL);

    if (a == NULL) {
        a = b;
    }
    if (a == NULL || a->ulValueLen == 0) {
        AKV_LOG_ERR("token '%s': C_GenerateKeyPair with CKA_TOKEN TRUE needs "
                    "CKA_LABEL: the Key Vault key name",
                    t->cfg->label);
        return CKR_TEMPLATE_INCOMPLETE;
    }
    if (b != NULL
        && (b->ulValueLen != a->ulValueLen
            || memcmp(b->pValue, a->pValue, a->ulValueLen) != 0)) {
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (!akv_kvid_name_ok(a->pValue, a->ulValueLen)) {
        AKV_LOG_ERR("token '%s': C_GenerateKeyPair: CKA_LABEL is not a Key "
                    "Vault key name (1-127 of 0-9, a-z, A-Z, '-')",
                    t->cfg->label);
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    memcpy(name, a->pValue, a->ulValueLen);
    name[a->ulValueLen] = '\0';
    return CKR_OK;
}

static CK_RV gen_vault(struct akv_session *s, const struct req *r,
                       const CK_ATTRIBUTE *pt, CK_ULONG pn,
                       const CK_ATTRIBUTE *kt, CK_ULONG kn,
                       CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    struct akv_token *t = s->token;
    struct akv_kv_create cr;
    struct akv_kv_key k;
    char name[AKV_KV_NAME_MAX];
    CK_BBOOL hsm = t->cfg->create_hsm ? CK_TRUE : CK_FALSE;
    CK_RV rv;

    memset(&k, 0, sizeof(k));
    memset(&cr, 0, sizeof(cr));
    if (!t->cfg->allow_create) {
        AKV_LOG_ERR("token '%s': C_GenerateKeyPair with CKA_TOKEN TRUE "
                    "creates a Key Vault key: set tokens[].allow_create (and "
                    "grant the identity keys/create); CKA_TOKEN FALSE makes a "
                    "session key pair",
                    t->cfg->label);
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    if (t->kv->ops->create_key == NULL) {
        rv = CKR_FUNCTION_NOT_SUPPORTED;
        goto out;
    }
    rv = vault_only(t, pt, pn, kt, kn);
    if (rv == CKR_OK) {
        rv = vault_name(t, pt, pn, kt, kn, name);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    (void)akv_attr_tmpl_bool(kt, kn, CKA_AKV_HSM, &hsm);
    if (r->kt == CKK_RSA) {
        cr.kty = hsm ? "RSA-HSM" : "RSA";
        cr.bits = r->bits;
        cr.exp = r->exp;
    } else {
        cr.kty = hsm ? "EC-HSM" : "EC";
        cr.crv = curves[r->curve].crv;
    }
    cr.key_ops = r->key_ops;
    /* Create Key on an existing name adds a version: a rotation of a key
     * that is not this call's to rotate (refused by the client). */
    cr.new_only = true;
    rv = t->kv->ops->create_key(t->kv, name, &cr, &k);
    if (rv != CKR_OK) {
        goto out; /* one log line from the client (403: keys/create) */
    }
    AKV_LOG_INFO("token '%s': created key %s (%s) in %s", t->cfg->label, k.kid,
                 cr.kty, t->cfg->vault_url);
    rv = akv_token_add_created(t, &k, pub, priv);
out:
    akv_kv_key_clear(&k);
    return rv;
}

/* ---- local session key pair ---- */

static EVP_PKEY *gen_local(const struct req *r)
{
    EVP_PKEY_CTX *c = NULL;
    EVP_PKEY *k = NULL;
    BIGNUM *e = NULL;

    if (r->kt == CKK_RSA) {
        c = EVP_PKEY_CTX_new_from_name(akv_crypto_libctx(), "RSA", NULL);
        e = BN_new();
        if (c == NULL || e == NULL || BN_set_word(e, r->exp) != 1
            || EVP_PKEY_keygen_init(c) != 1
            || EVP_PKEY_CTX_set_rsa_keygen_bits(c, (int)r->bits) != 1
            || EVP_PKEY_CTX_set1_rsa_keygen_pubexp(c, e) != 1) {
            goto out;
        }
    } else {
        c = EVP_PKEY_CTX_new_from_name(akv_crypto_libctx(), "EC", NULL);
        if (c == NULL || EVP_PKEY_keygen_init(c) != 1
            || EVP_PKEY_CTX_set_group_name(c, curves[r->curve].group) != 1) {
            goto out;
        }
    }
    if (EVP_PKEY_generate(c, &k) != 1) {
        k = NULL;
    }
out:
    BN_free(e);
    EVP_PKEY_CTX_free(c);
    return k;
}

/* Big-endian bytes of BN parameter NAME of K into A as TYPE. */
static CK_RV set_bn(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                    const EVP_PKEY *k, const char *name)
{
    BIGNUM *bn = NULL;
    uint8_t buf[1024];
    int len;
    CK_RV rv = CKR_FUNCTION_FAILED;

    if (EVP_PKEY_get_bn_param(k, name, &bn) == 1
        && (len = BN_bn2bin(bn, buf)) > 0 && (size_t)len <= sizeof(buf)) {
        rv = akv_attrs_set(a, type, buf, (CK_ULONG)len);
    }
    BN_free(bn);
    return rv;
}

/* The public material of K as v3.0 attributes: RSA CKA_MODULUS,
 * CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS; EC CKA_EC_PARAMS and CKA_EC_POINT
 * (a DER OCTET STRING of the uncompressed point); CKA_PUBLIC_KEY_INFO. */
static CK_RV set_public(struct akv_attrs *a, const struct req *r,
                        const EVP_PKEY *k)
{
    CK_RV rv = CKR_OK;
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(k, &der);

    if (der_len <= 0) {
        return CKR_FUNCTION_FAILED;
    }
    rv |= akv_attrs_set(a, CKA_PUBLIC_KEY_INFO, der, (CK_ULONG)der_len);
    OPENSSL_free(der);
    if (r->kt == CKK_RSA) {
        rv |= set_bn(a, CKA_MODULUS, k, OSSL_PKEY_PARAM_RSA_N);
        rv |= set_bn(a, CKA_PUBLIC_EXPONENT, k, OSSL_PKEY_PARAM_RSA_E);
        rv |= akv_attrs_set_ulong(a, CKA_MODULUS_BITS, r->bits);
    } else {
        uint8_t pt[3 + 1 + 2 * 66];
        size_t plen = 0;
        size_t oid_len = 0;
        const uint8_t *oid = akv_crypto_ec_oid(curves[r->curve].crv, &oid_len);
        size_t off;

        if (oid == NULL
            || EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
                                               pt + 3, sizeof(pt) - 3, &plen)
                   != 1) {
            return CKR_FUNCTION_FAILED;
        }
        off = plen < 128 ? 1 : 0; /* short or 0x81 long form */
        pt[off] = 0x04;
        if (off == 0) {
            pt[1] = 0x81;
        }
        pt[2] = (uint8_t)plen;
        rv |= akv_attrs_set(a, CKA_EC_PARAMS, oid, (CK_ULONG)oid_len);
        rv |= akv_attrs_set(a, CKA_EC_POINT, pt + off,
                            (CK_ULONG)(plen + 3 - off));
    }
    return rv == CKR_OK ? CKR_OK : CKR_HOST_MEMORY;
}

/* One session object of the pair: CLS with the public material of K,
 * the caller's template, the generated-key attributes, the defaults. */
static CK_RV make_local(struct akv_session *s, const struct req *r,
                        CK_OBJECT_CLASS cls, const CK_ATTRIBUTE *tm, CK_ULONG n,
                        EVP_PKEY *k, struct akv_obj **out)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_obj *o = akv_obj_new(AKV_ORIGIN_SESSION, cls, r->kt);
    struct akv_attrs *a = NULL;
    CK_RV x = CKR_OK;

    if (o == NULL) {
        goto out;
    }
    a = &o->attrs;
    x |= akv_attrs_set_ulong(a, CKA_CLASS, cls);
    x |= akv_attrs_set_ulong(a, CKA_KEY_TYPE, r->kt);
    x |= akv_attrs_set_bool(a, CKA_TOKEN, CK_FALSE);
    x |= akv_attrs_set_bool(a, CKA_LOCAL, CK_TRUE);
    x |= akv_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM, r->mech);
    x |= akv_attrs_set_bool(a, cls == CKO_PUBLIC_KEY ? CKA_VERIFY : CKA_SIGN,
                            CK_TRUE);
    x |= akv_attrs_merge(a, tm, n, (CK_ATTRIBUTE_TYPE)-1);
    if (x == CKR_OK) {
        rv = set_public(a, r, k);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    /* Everything else of v3.0 §4.7-§4.9 from the defaults table (private:
     * CKA_SENSITIVE TRUE, CKA_EXTRACTABLE FALSE). */
    x |= akv_attrs_fill_defaults(a, cls);
    if (cls == CKO_PRIVATE_KEY) {
        /* §4.9: generated, so "always" and "never" are what it is now. */
        x |= akv_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE,
                                akv_attrs_bool(a, CKA_SENSITIVE, CK_TRUE));
        x |= akv_attrs_set_bool(
            a, CKA_NEVER_EXTRACTABLE,
            akv_attrs_bool(a, CKA_EXTRACTABLE, CK_FALSE) ? CK_FALSE : CK_TRUE);
        akv_attrs_remove(a, CKA_AKV_HSM);
    }
    if (x != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (EVP_PKEY_up_ref(k) != 1) {
        rv = CKR_FUNCTION_FAILED;
        goto out;
    }
    o->pub = k; /* sizes, curve, verify/encrypt */
    if (cls == CKO_PRIVATE_KEY) {
        if (EVP_PKEY_up_ref(k) != 1) {
            rv = CKR_FUNCTION_FAILED;
            goto out;
        }
        o->priv = k; /* local signing (token/sign.c) */
    }
    o->owner = s->handle;
    *out = o;
    o = NULL;
    rv = CKR_OK;
out:
    akv_obj_unref(o);
    return rv;
}

static CK_RV gen_session(struct akv_session *s, const struct req *r,
                         const CK_ATTRIBUTE *pt, CK_ULONG pn,
                         const CK_ATTRIBUTE *kt, CK_ULONG kn,
                         CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_RV rv = CKR_FUNCTION_FAILED;
    struct akv_token *t = s->token;
    EVP_PKEY *k = gen_local(r);
    struct akv_obj *po = NULL;
    struct akv_obj *ko = NULL;

    if (k == NULL) {
        AKV_LOG_ERR("token '%s': local key pair generation failed",
                    t->cfg->label);
        goto out;
    }
    rv = make_local(s, r, CKO_PUBLIC_KEY, pt, pn, k, &po);
    if (rv == CKR_OK) {
        rv = make_local(s, r, CKO_PRIVATE_KEY, kt, kn, k, &ko);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_wrlock(&t->lock);
    rv = akv_token_add_obj_locked(t, po);
    if (rv == CKR_OK) {
        rv = akv_token_add_obj_locked(t, ko);
        if (rv != CKR_OK) {
            akv_token_remove_obj_locked(t, po);
        }
    }
    pthread_rwlock_unlock(&t->lock);
    if (rv == CKR_OK) {
        *pub = po->handle;
        *priv = ko->handle;
    }
out:
    akv_obj_unref(po);
    akv_obj_unref(ko);
    EVP_PKEY_free(k);
    return rv;
}

CK_RV akv_keygen_pair(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                      const CK_ATTRIBUTE *pub_t, CK_ULONG pub_n,
                      const CK_ATTRIBUTE *priv_t, CK_ULONG priv_n,
                      CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct req r;

    memset(&r, 0, sizeof(r));
    rv = akv_session_get(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    rv = check_templates(s, mech, pub_t, pub_n, priv_t, priv_n, &r);
    if (rv != CKR_OK) {
        goto out;
    }
    /* The vault path makes network calls: only the session reference is
     * held, no lock. */
    rv = r.token ? gen_vault(s, &r, pub_t, pub_n, priv_t, priv_n, pub, priv)
                 : gen_session(s, &r, pub_t, pub_n, priv_t, priv_n, pub, priv);
out:
    akv_session_put(s);
    return rv;
}
