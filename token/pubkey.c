/* SPDX-License-Identifier: Apache-2.0 */
#include "pubkey.h"

#include <string.h>

#include <openssl/x509.h>

#include "attr.h"
#include "crypto.h"
#include "token.h"

#define RSA_MIN_BITS 1024
#define RSA_MAX_BITS 8192

/* The named curves a CKA_EC_PARAMS may name (v3.0 §2.3.3 "ecParameters"
 * namedCurve choice; RFC 5480 §2.1.1.1 OIDs, DER-encoded). */
static const struct {
    const uint8_t *oid;
    size_t oid_len;
    size_t field; /* bytes of one coordinate */
} curves[] = {
    /* secp256r1 1.2.840.10045.3.1.7 */
    {(const uint8_t *)"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", 10, 32},
    /* secp384r1 1.3.132.0.34 */
    {(const uint8_t *)"\x06\x05\x2b\x81\x04\x00\x22", 7, 48},
    /* secp521r1 1.3.132.0.35 */
    {(const uint8_t *)"\x06\x05\x2b\x81\x04\x00\x23", 7, 66},
};

/* Strips leading zero bytes of a big-endian integer. */
static const uint8_t *strip(const CK_ATTRIBUTE *a, size_t *len)
{
    const uint8_t *p = a->pValue;

    *len = a->ulValueLen;
    while (*len > 0 && p[0] == 0) {
        p++;
        (*len)--;
    }
    return p;
}

static size_t bit_len(const uint8_t *p, size_t len)
{
    size_t bits = len * 8;

    for (uint8_t top = len > 0 ? p[0] : 0; len > 0 && !(top & 0x80);
         top <<= 1) {
        bits--;
    }
    return bits;
}

/* RSA (v3.0 §2.1.2): the checks a public key can be given without its
 * factors. *bits receives the modulus size. */
static CK_RV rsa_key(const CK_ATTRIBUTE *mod, const CK_ATTRIBUTE *exp,
                     EVP_PKEY **pkey, CK_ULONG *bits)
{
    size_t nl;
    size_t el;
    const uint8_t *n = strip(mod, &nl);
    const uint8_t *e = strip(exp, &el);
    size_t nb = bit_len(n, nl);
    size_t eb = bit_len(e, el);

    if (nb < RSA_MIN_BITS || nb > RSA_MAX_BITS || (n[nl - 1] & 1) == 0) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    /* e odd, at least 3, at most 64 bits and below n (RFC 8017 §3.1). */
    if (el == 0 || el > 8 || (e[el - 1] & 1) == 0 || (el == 1 && e[0] < 3)
        || eb >= nb) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    *bits = (CK_ULONG)nb;
    return akv_crypto_rsa_pub(n, nl, e, el, pkey) == CKR_OK
               ? CKR_OK
               : CKR_ATTRIBUTE_VALUE_INVALID;
}

/* EC (v3.0 §2.3.3): CKA_EC_PARAMS a known named curve, CKA_EC_POINT the DER
 * OCTET STRING of its uncompressed point, on the curve. */
static CK_RV ec_key(const CK_ATTRIBUTE *params, const CK_ATTRIBUTE *point,
                    EVP_PKEY **pkey)
{
    const uint8_t *p = point->pValue;
    size_t len = point->ulValueLen;
    size_t off = 2;
    size_t body;
    size_t c = 0;

    for (c = 0; c < sizeof(curves) / sizeof(curves[0]); c++) {
        if (params->ulValueLen == curves[c].oid_len
            && memcmp(params->pValue, curves[c].oid, curves[c].oid_len) == 0) {
            break;
        }
    }
    if (c == sizeof(curves) / sizeof(curves[0]) || len < 2 || p[0] != 0x04) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    body = p[1];
    if (p[1] == 0x81 && len >= 3) {
        body = p[2];
        off = 3;
    } else if (p[1] >= 0x80) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    /* Exactly one OCTET STRING holding 04 || X || Y. */
    if (body != len - off || body != 1 + 2 * curves[c].field
        || p[off] != 0x04) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return akv_crypto_ec_pub(curves[c].oid, curves[c].oid_len, p + off, body,
                             pkey);
}

/* The key material of key type KT: present, not mixed with the other
 * type's, valid. */
static CK_RV key_material(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE kt,
                          EVP_PKEY **pkey, CK_ULONG *bits)
{
    const CK_ATTRIBUTE *mod = akv_attr_tmpl_find(tmpl, n, CKA_MODULUS);
    const CK_ATTRIBUTE *exp = akv_attr_tmpl_find(tmpl, n, CKA_PUBLIC_EXPONENT);
    const CK_ATTRIBUTE *par = akv_attr_tmpl_find(tmpl, n, CKA_EC_PARAMS);
    const CK_ATTRIBUTE *pt = akv_attr_tmpl_find(tmpl, n, CKA_EC_POINT);

    if (kt == CKK_RSA) {
        if (par != NULL || pt != NULL) {
            return CKR_TEMPLATE_INCONSISTENT;
        }
        if (mod == NULL || exp == NULL) {
            return CKR_TEMPLATE_INCOMPLETE;
        }
        return rsa_key(mod, exp, pkey, bits);
    }
    if (mod != NULL || exp != NULL) {
        return CKR_TEMPLATE_INCONSISTENT;
    }
    if (par == NULL || pt == NULL) {
        return CKR_TEMPLATE_INCOMPLETE;
    }
    return ec_key(par, pt, pkey);
}

CK_RV akv_pubkey_create(struct akv_session *s, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    CK_ULONG kt = 0;
    CK_ULONG bits = 0;
    CK_BBOOL tok = CK_FALSE;
    EVP_PKEY *pkey = NULL;
    struct akv_obj *o = NULL;
    unsigned char *der = NULL;
    int der_len = 0;
    CK_RV r = CKR_OK;

    /* The key type decides first: a type this token does not import is
     * refused as such, not by the generic checker over its attributes. */
    if (akv_attr_tmpl_find(tmpl, n, CKA_KEY_TYPE) == NULL) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto out;
    }
    if (!akv_attr_tmpl_ulong(tmpl, n, CKA_KEY_TYPE, &kt)
        || (kt != CKK_RSA && kt != CKK_EC)) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto out;
    }
    rv = akv_attr_check_template(tmpl, n, AKV_ATTR_OP_CREATE);
    if (rv == CKR_OK) {
        rv = akv_attr_check_class(tmpl, n, CKO_PUBLIC_KEY);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    (void)akv_attr_tmpl_bool(tmpl, n, CKA_TOKEN, &tok);
    if (tok) {
        /* v3.0 §5.7.1 first; then the store, which keeps vault-wrapped
         * secrets only. */
        rv = akv_session_is_rw(s) ? CKR_TEMPLATE_INCONSISTENT
                                  : CKR_SESSION_READ_ONLY;
        goto out;
    }
    rv = key_material(tmpl, n, kt, &pkey, &bits);
    if (rv != CKR_OK) {
        goto out;
    }
    o = akv_obj_new(AKV_ORIGIN_SESSION, CKO_PUBLIC_KEY, kt);
    if (o == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    der_len = i2d_PUBKEY(pkey, &der);
    if (der_len <= 0) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    r |= akv_attrs_set_ulong(&o->attrs, CKA_CLASS, CKO_PUBLIC_KEY);
    r |= akv_attrs_set_ulong(&o->attrs, CKA_KEY_TYPE, kt);
    r |= akv_attrs_set_bool(&o->attrs, CKA_TOKEN, CK_FALSE);
    /* Imported to be used: encrypt (RSA) and verify unless the template
     * says otherwise. */
    r |= akv_attrs_set_bool(&o->attrs, CKA_ENCRYPT,
                            kt == CKK_RSA ? CK_TRUE : CK_FALSE);
    r |= akv_attrs_set_bool(&o->attrs, CKA_VERIFY, CK_TRUE);
    r |= akv_attrs_merge(&o->attrs, tmpl, n, (CK_ATTRIBUTE_TYPE)-1);
    if (kt == CKK_RSA) {
        r |= akv_attrs_set_ulong(&o->attrs, CKA_MODULUS_BITS, bits);
    }
    r |= akv_attrs_set(&o->attrs, CKA_PUBLIC_KEY_INFO, der, (CK_ULONG)der_len);
    r |= akv_attrs_fill_defaults(&o->attrs, CKO_PUBLIC_KEY);
    if (r != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    /* For local C_Encrypt (RSA) and C_Verify (RSA and EC: without it an EC
     * key showing CKA_VERIFY TRUE was refused by C_VerifyInit). */
    o->pub = pkey;
    pkey = NULL;
    o->owner = s->handle;
    pthread_rwlock_wrlock(&s->token->lock);
    rv = akv_token_add_obj_locked(s->token, o);
    pthread_rwlock_unlock(&s->token->lock);
    if (rv == CKR_OK) {
        *ph = o->handle;
    }
out:
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    akv_obj_unref(o);
    return rv;
}
