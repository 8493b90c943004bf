/* SPDX-License-Identifier: Apache-2.0 */
#include "attr.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../include/pkcs11/akv-pkcs11.h"

#define C  AKV_A_CREATE
#define G  AKV_A_GENERATE
#define U  AKV_A_UNWRAP
#define M  AKV_A_MODIFIABLE
#define ST AKV_A_STICKY_TRUE
#define SF AKV_A_STICKY_FALSE
#define CO AKV_A_COPY_ONLY

/*
 * The policy table (v3.0 §4.4 common object attributes, §4.7 key objects,
 * §4.8/4.9 RSA public/private, §4.10 secret keys, §4.5 data objects). Sorted
 * by type; a unit test checks the order. Attributes the module only ever
 * produces itself (CKA_LOCAL, CKA_MODULUS_BITS, the vendor attributes, ...)
 * carry no flag, so any caller template that sets them is
 * CKR_ATTRIBUTE_READ_ONLY.
 */
static const struct akv_attr_policy policy[] = {
    {CKA_CLASS, AKV_AK_ULONG, C | G | U},
    {CKA_TOKEN, AKV_AK_BOOL, C | G | U | CO},
    {CKA_PRIVATE, AKV_AK_BOOL, C | G | U | CO},
    {CKA_LABEL, AKV_AK_BYTES, C | G | U | M},
    {CKA_APPLICATION, AKV_AK_BYTES, C | M},
    {CKA_VALUE, AKV_AK_BYTES, C}, /* fn 4, 6: not gen/unwrap */
    {CKA_OBJECT_ID, AKV_AK_BYTES, C | M},
    /* §4.6 certificates: only the token makes them (read-only). */
    {CKA_CERTIFICATE_TYPE, AKV_AK_ULONG, 0},
    {CKA_ISSUER, AKV_AK_BYTES, 0},
    {CKA_SERIAL_NUMBER, AKV_AK_BYTES, 0},
    {CKA_TRUSTED, AKV_AK_BOOL, 0}, /* fn 10: SO only, no SO here */
    {CKA_CERTIFICATE_CATEGORY, AKV_AK_ULONG, 0},
    {CKA_JAVA_MIDP_SECURITY_DOMAIN, AKV_AK_ULONG, 0},
    {CKA_URL, AKV_AK_BYTES, 0},
    {CKA_HASH_OF_SUBJECT_PUBLIC_KEY, AKV_AK_BYTES, 0},
    {CKA_HASH_OF_ISSUER_PUBLIC_KEY, AKV_AK_BYTES, 0},
    {CKA_NAME_HASH_ALGORITHM, AKV_AK_ULONG, 0},
    {CKA_CHECK_VALUE, AKV_AK_BYTES, 0},
    {CKA_KEY_TYPE, AKV_AK_ULONG, C | G | U},
    {CKA_SUBJECT, AKV_AK_BYTES, C | G | U | M},
    {CKA_ID, AKV_AK_BYTES, C | G | U | M},
    {CKA_SENSITIVE, AKV_AK_BOOL, C | G | U | M | ST},
    {CKA_ENCRYPT, AKV_AK_BOOL, C | G | U | M},
    {CKA_DECRYPT, AKV_AK_BOOL, C | G | U | M},
    {CKA_WRAP, AKV_AK_BOOL, C | G | U | M},
    {CKA_UNWRAP, AKV_AK_BOOL, C | G | U | M},
    {CKA_SIGN, AKV_AK_BOOL, C | G | U | M},
    {CKA_SIGN_RECOVER, AKV_AK_BOOL, C | G | U | M},
    {CKA_VERIFY, AKV_AK_BOOL, C | G | U | M},
    {CKA_VERIFY_RECOVER, AKV_AK_BOOL, C | G | U | M},
    {CKA_DERIVE, AKV_AK_BOOL, C | G | U | M},
    {CKA_START_DATE, AKV_AK_DATE, C | G | U | M},
    {CKA_END_DATE, AKV_AK_DATE, C | G | U | M},
    {CKA_MODULUS, AKV_AK_BYTES, C},      /* public-key import (§2.1.2) */
    {CKA_MODULUS_BITS, AKV_AK_ULONG, G}, /* C_GenerateKeyPair (§2.1.4) */
    {CKA_PUBLIC_EXPONENT, AKV_AK_BYTES, C | G},
    {CKA_PRIVATE_EXPONENT, AKV_AK_BYTES, 0},
    {CKA_PRIME_1, AKV_AK_BYTES, 0},
    {CKA_PRIME_2, AKV_AK_BYTES, 0},
    {CKA_EXPONENT_1, AKV_AK_BYTES, 0},
    {CKA_EXPONENT_2, AKV_AK_BYTES, 0},
    {CKA_COEFFICIENT, AKV_AK_BYTES, 0},
    {CKA_PUBLIC_KEY_INFO, AKV_AK_BYTES, 0}, /* derived from the key */
    {CKA_VALUE_LEN, AKV_AK_ULONG, G | U},   /* fn 2: not on create */
    {CKA_EXTRACTABLE, AKV_AK_BOOL, C | G | U | M | SF},
    {CKA_LOCAL, AKV_AK_BOOL, 0},
    {CKA_NEVER_EXTRACTABLE, AKV_AK_BOOL, 0},
    {CKA_ALWAYS_SENSITIVE, AKV_AK_BOOL, 0},
    {CKA_KEY_GEN_MECHANISM, AKV_AK_ULONG, 0},
    {CKA_MODIFIABLE, AKV_AK_BOOL, C | G | U | CO},
    {CKA_COPYABLE, AKV_AK_BOOL, C | G | U | M | SF},
    {CKA_DESTROYABLE, AKV_AK_BOOL, C | G | U | CO},
    {CKA_EC_PARAMS, AKV_AK_BYTES, C | G}, /* import, key pair gen (§2.3.3) */
    {CKA_EC_POINT, AKV_AK_BYTES, C},
    {CKA_ALWAYS_AUTHENTICATE, AKV_AK_BOOL, 0},
    {CKA_WRAP_WITH_TRUSTED, AKV_AK_BOOL, C | G | U | M | ST},
    /* Attribute arrays: answered (empty), not taken from callers. */
    {CKA_WRAP_TEMPLATE, AKV_AK_BYTES, 0},
    {CKA_UNWRAP_TEMPLATE, AKV_AK_BYTES, 0},
    {CKA_ALLOWED_MECHANISMS, AKV_AK_MECHS, C | G | U},
    {CKA_AKV_KID, AKV_AK_BYTES, 0},
    {CKA_AKV_KEY_NAME, AKV_AK_BYTES, 0},
    {CKA_AKV_KEY_VERSION, AKV_AK_BYTES, 0},
    {CKA_AKV_WRAPPING_KID, AKV_AK_BYTES, 0},
    {CKA_AKV_HSM, AKV_AK_BOOL, G}, /* C_GenerateKeyPair private template */
};

#undef C
#undef G
#undef U
#undef M
#undef ST
#undef SF
#undef CO

/*
 * The attributes every key object answers, by class, with the value a key
 * gets when whoever made it (vault key, C_GenerateKey, C_UnwrapKey,
 * C_CreateObject, C_CopyObject, a store record written by an older version)
 * did not set it. akv_attrs_fill_defaults adds the missing ones.
 *   §4.4 storage, §4.7 common key: every key class;
 *   §4.8 public, §4.9 private, §4.10 secret: their own rows.
 * Where v3.0 leaves a default to the token, the module's choice is the one
 * object.h documents for keys made here (sensitive, extractable, encrypt
 * and decrypt for secret keys; every other usage FALSE). CKA_CHECK_VALUE
 * (§4.10) is not answered: a stored key's value is only readable through the
 * vault. CKA_DERIVE_TEMPLATE is not answered: no key derives.
 */
enum akv_dflt {
    AKV_D_EMPTY = 0, /* zero-length value */
    AKV_D_FALSE,
    AKV_D_TRUE,
    AKV_D_UNAVAILABLE, /* CK_ULONG CK_UNAVAILABLE_INFORMATION */
    AKV_D_ZERO,        /* CK_ULONG 0 */
    AKV_D_SHA1,        /* CK_ULONG CKM_SHA_1 (§4.6.3 default) */
};

#define PUB  0x1u
#define PRIV 0x2u
#define SEC  0x4u
#define CERT 0x8u
#define KEY  (PUB | PRIV | SEC)

static const struct {
    CK_ATTRIBUTE_TYPE type;
    unsigned classes;
    enum akv_dflt value;
} defaults[] = {
    /* §4.4 (certificates: only the token's own, read-only) */
    {CKA_PRIVATE, KEY | CERT, AKV_D_FALSE},
    {CKA_MODIFIABLE, KEY, AKV_D_TRUE},
    {CKA_COPYABLE, KEY, AKV_D_TRUE},
    {CKA_DESTROYABLE, KEY, AKV_D_TRUE},
    {CKA_MODIFIABLE, CERT, AKV_D_FALSE},
    {CKA_COPYABLE, CERT, AKV_D_FALSE},
    {CKA_DESTROYABLE, CERT, AKV_D_FALSE},
    {CKA_LABEL, KEY | CERT, AKV_D_EMPTY},
    /* §4.6.2 common certificate, §4.6.3 X.509 (CKA_SUBJECT, CKA_VALUE,
     * CKA_ID, ... come from the certificate itself) */
    {CKA_TRUSTED, CERT, AKV_D_FALSE},
    {CKA_CERTIFICATE_CATEGORY, CERT, AKV_D_ZERO},
    {CKA_START_DATE, CERT, AKV_D_EMPTY},
    {CKA_END_DATE, CERT, AKV_D_EMPTY},
    {CKA_URL, CERT, AKV_D_EMPTY},
    {CKA_HASH_OF_SUBJECT_PUBLIC_KEY, CERT, AKV_D_EMPTY},
    {CKA_HASH_OF_ISSUER_PUBLIC_KEY, CERT, AKV_D_EMPTY},
    {CKA_JAVA_MIDP_SECURITY_DOMAIN, CERT, AKV_D_ZERO},
    {CKA_NAME_HASH_ALGORITHM, CERT, AKV_D_SHA1},
    /* §4.7 */
    {CKA_ID, KEY, AKV_D_EMPTY},
    {CKA_START_DATE, KEY, AKV_D_EMPTY},
    {CKA_END_DATE, KEY, AKV_D_EMPTY},
    {CKA_DERIVE, KEY, AKV_D_FALSE},
    {CKA_LOCAL, KEY, AKV_D_FALSE},
    {CKA_KEY_GEN_MECHANISM, KEY, AKV_D_UNAVAILABLE},
    {CKA_ALLOWED_MECHANISMS, KEY, AKV_D_EMPTY},
    /* §4.8 / §4.9 shared */
    {CKA_SUBJECT, PUB | PRIV, AKV_D_EMPTY},
    {CKA_PUBLIC_KEY_INFO, PUB | PRIV, AKV_D_EMPTY},
    /* §4.8 */
    {CKA_ENCRYPT, PUB, AKV_D_FALSE},
    {CKA_VERIFY, PUB | SEC, AKV_D_FALSE},
    {CKA_VERIFY_RECOVER, PUB, AKV_D_FALSE},
    {CKA_WRAP, PUB | SEC, AKV_D_FALSE},
    {CKA_TRUSTED, PUB | SEC, AKV_D_FALSE},
    {CKA_WRAP_TEMPLATE, PUB | SEC, AKV_D_EMPTY},
    /* §4.9 / §4.10 shared */
    {CKA_SENSITIVE, PRIV | SEC, AKV_D_TRUE},
    {CKA_SIGN, PRIV | SEC, AKV_D_FALSE},
    {CKA_UNWRAP, PRIV | SEC, AKV_D_FALSE},
    {CKA_ALWAYS_SENSITIVE, PRIV | SEC, AKV_D_FALSE},
    {CKA_NEVER_EXTRACTABLE, PRIV | SEC, AKV_D_FALSE},
    {CKA_WRAP_WITH_TRUSTED, PRIV | SEC, AKV_D_FALSE},
    {CKA_UNWRAP_TEMPLATE, PRIV | SEC, AKV_D_EMPTY},
    /* §4.9 */
    {CKA_DECRYPT, PRIV, AKV_D_FALSE},
    {CKA_SIGN_RECOVER, PRIV, AKV_D_FALSE},
    {CKA_EXTRACTABLE, PRIV, AKV_D_FALSE},
    {CKA_ALWAYS_AUTHENTICATE, PRIV, AKV_D_FALSE},
    /* §4.10 */
    {CKA_ENCRYPT, SEC, AKV_D_TRUE},
    {CKA_DECRYPT, SEC, AKV_D_TRUE},
    {CKA_EXTRACTABLE, SEC, AKV_D_TRUE},
};

static unsigned class_bit(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PUBLIC_KEY:
        return PUB;
    case CKO_PRIVATE_KEY:
        return PRIV;
    case CKO_SECRET_KEY:
        return SEC;
    case CKO_CERTIFICATE:
        return CERT;
    default:
        return 0;
    }
}

#undef PUB
#undef PRIV
#undef SEC
#undef CERT
#undef KEY

static bool attrs_reserve(struct akv_attrs *a, size_t need);
static CK_RV attrs_put(struct akv_attrs *a, size_t i, CK_ATTRIBUTE_TYPE type,
                       const void *p, CK_ULONG len);

#define N_DEFAULTS (sizeof(defaults) / sizeof(defaults[0]))

/*
 * Plain appends: a key object takes ~25 defaults, and a
 * search of the growing list for each (twice: find, then set) cost more
 * than the rest of building the object. Only the entries A held on entry
 * are searched: a class names a type at most once (unit test
 * test_attr_defaults_unique), so an appended default never shadows a row.
 */
CK_RV akv_attrs_fill_defaults(struct akv_attrs *a, CK_OBJECT_CLASS cls)
{
    CK_RV rv = CKR_OK;
    unsigned bit = class_bit(cls);
    size_t n0 = a->n;

    for (size_t j = 0; j < N_DEFAULTS && rv == CKR_OK; j++) {
        CK_BBOOL b = defaults[j].value == AKV_D_TRUE ? CK_TRUE : CK_FALSE;
        CK_ULONG u = CK_UNAVAILABLE_INFORMATION;
        size_t i = 0;

        if ((defaults[j].classes & bit) == 0) {
            continue;
        }
        while (i < n0 && a->v[i].type != defaults[j].type) {
            i++;
        }
        if (i < n0) {
            continue; /* set by the caller: kept */
        }
        /* Values of at most ATTR_INLINE bytes: once there is room, no
         * allocation and so no failure. */
        if (!attrs_reserve(a, a->n + 1)) {
            rv = CKR_HOST_MEMORY;
            break;
        }
        switch (defaults[j].value) {
        case AKV_D_EMPTY:
            rv = attrs_put(a, a->n, defaults[j].type, NULL, 0);
            break;
        case AKV_D_FALSE:
        case AKV_D_TRUE:
            rv = attrs_put(a, a->n, defaults[j].type, &b, sizeof(b));
            break;
        case AKV_D_UNAVAILABLE:
            rv = attrs_put(a, a->n, defaults[j].type, &u, sizeof(u));
            break;
        case AKV_D_ZERO:
            u = 0;
            rv = attrs_put(a, a->n, defaults[j].type, &u, sizeof(u));
            break;
        case AKV_D_SHA1:
            u = CKM_SHA_1;
            rv = attrs_put(a, a->n, defaults[j].type, &u, sizeof(u));
            break;
        }
    }
    return rv;
}

#undef N_DEFAULTS

const struct akv_attr_policy *akv_attr_policy_table(size_t *n)
{
    *n = sizeof(policy) / sizeof(policy[0]);
    return policy;
}

const struct akv_attr_policy *akv_attr_policy_find(CK_ATTRIBUTE_TYPE type)
{
    size_t lo = 0;
    size_t hi = sizeof(policy) / sizeof(policy[0]);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (policy[mid].type == type) {
            return &policy[mid];
        }
        if (policy[mid].type < type) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* Shape check shared by every template use (v3.0 §5.7: a CK_BBOOL or
 * CK_ULONG of the wrong size is an invalid value). */
static CK_RV check_shape(const CK_ATTRIBUTE *at, enum akv_attr_kind kind)
{
    if (at->pValue == NULL && at->ulValueLen > 0) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    switch (kind) {
    case AKV_AK_BOOL:
        if (at->ulValueLen != sizeof(CK_BBOOL)) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        if (*(const CK_BBOOL *)at->pValue > CK_TRUE) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        break;
    case AKV_AK_ULONG:
        if (at->ulValueLen != sizeof(CK_ULONG)) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        break;
    case AKV_AK_DATE:
        if (at->ulValueLen != 0 && at->ulValueLen != sizeof(CK_DATE)) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        break;
    case AKV_AK_MECHS:
        if (at->ulValueLen % sizeof(CK_MECHANISM_TYPE) != 0) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        break;
    case AKV_AK_BYTES:
        break;
    }
    return CKR_OK;
}

static bool same_value(const CK_ATTRIBUTE *a, const CK_ATTRIBUTE *b)
{
    if (a->ulValueLen != b->ulValueLen) {
        return false;
    }
    return a->ulValueLen == 0
           || memcmp(a->pValue, b->pValue, a->ulValueLen) == 0;
}

static unsigned op_flags(enum akv_attr_op op)
{
    switch (op) {
    case AKV_ATTR_OP_CREATE:
        return AKV_A_CREATE;
    case AKV_ATTR_OP_GENERATE:
        return AKV_A_GENERATE;
    case AKV_ATTR_OP_UNWRAP:
        return AKV_A_UNWRAP;
    case AKV_ATTR_OP_COPY:
        return AKV_A_MODIFIABLE | AKV_A_COPY_ONLY;
    case AKV_ATTR_OP_SET:
        return AKV_A_MODIFIABLE;
    }
    return 0;
}

CK_RV akv_attr_check_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              enum akv_attr_op op)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    unsigned need = op_flags(op);

    if (tmpl == NULL && n > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        const struct akv_attr_policy *p = akv_attr_policy_find(tmpl[i].type);

        if (tmpl[i].pValue == NULL && tmpl[i].ulValueLen > 0) {
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
            goto out;
        }
        if (p == NULL) {
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
            goto out;
        }
        rv = check_shape(&tmpl[i], p->kind);
        if (rv != CKR_OK) {
            goto out;
        }
        if ((p->flags & need) == 0) {
            rv = CKR_ATTRIBUTE_READ_ONLY;
            goto out;
        }
        for (CK_ULONG j = 0; j < i; j++) {
            if (tmpl[j].type == tmpl[i].type
                && !same_value(&tmpl[j], &tmpl[i])) {
                rv = CKR_TEMPLATE_INCONSISTENT;
                goto out;
            }
        }
    }
    rv = CKR_OK;
out:
    return rv;
}

/* True when TYPE is an attribute of class CLS that a caller may name. */
static bool class_allows(CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type)
{
    switch (type) {
    case CKA_CLASS:
    case CKA_TOKEN:
    case CKA_PRIVATE:
    case CKA_LABEL:
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DESTROYABLE:
        return true; /* common storage attributes (§4.4) */
    case CKA_APPLICATION:
    case CKA_OBJECT_ID:
        return cls == CKO_DATA; /* §4.5 only */
    case CKA_VALUE:
        return cls == CKO_DATA || cls == CKO_SECRET_KEY;
    case CKA_MODULUS_BITS:
    case CKA_MODULUS:
    case CKA_PUBLIC_EXPONENT:
    case CKA_EC_PARAMS:
    case CKA_EC_POINT:
        return cls == CKO_PUBLIC_KEY; /* §2.1.2, §2.3.3: imports */
    case CKA_VALUE_LEN:
    case CKA_SENSITIVE:
    case CKA_EXTRACTABLE:
    case CKA_DECRYPT:
    case CKA_UNWRAP:
    case CKA_SIGN:
    case CKA_SIGN_RECOVER:
    case CKA_WRAP_WITH_TRUSTED:
        /* Not public-key attributes (§4.8). */
        return cls != CKO_DATA && cls != CKO_PUBLIC_KEY;
    case CKA_AKV_HSM:
        return cls == CKO_PRIVATE_KEY; /* where the vault key is made */
    default:
        /* Key attributes: the policy table already limits them to
         * what a key of this module can hold. */
        return cls != CKO_DATA;
    }
}

CK_RV akv_attr_check_class(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_CLASS cls)
{
    CK_RV rv = CKR_GENERAL_ERROR;

    for (CK_ULONG i = 0; tmpl != NULL && i < n; i++) {
        if (!class_allows(cls, tmpl[i].type)) {
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
            goto out;
        }
    }
    rv = CKR_OK;
out:
    return rv;
}

bool akv_attrs_mech_allowed(const struct akv_attrs *a, CK_MECHANISM_TYPE mech)
{
    const CK_ATTRIBUTE *list = akv_attrs_find(a, CKA_ALLOWED_MECHANISMS);
    size_t n = 0;

    if (list == NULL || list->ulValueLen == 0 || list->pValue == NULL) {
        return true;
    }
    n = list->ulValueLen / sizeof(CK_MECHANISM_TYPE);
    for (size_t i = 0; i < n; i++) {
        CK_MECHANISM_TYPE m;

        /* The stored copy may be unaligned for CK_ULONG (a TLV slice). */
        memcpy(&m, (const uint8_t *)list->pValue + i * sizeof(m), sizeof(m));
        if (m == mech) {
            return true;
        }
    }
    return false;
}

CK_RV akv_attr_check_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_RV rv = CKR_GENERAL_ERROR;

    if (tmpl == NULL && n > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        const struct akv_attr_policy *p = akv_attr_policy_find(tmpl[i].type);

        if (tmpl[i].pValue == NULL && tmpl[i].ulValueLen > 0) {
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
            goto out;
        }
        if (p != NULL && (p->kind == AKV_AK_BOOL || p->kind == AKV_AK_ULONG)) {
            rv = check_shape(&tmpl[i], p->kind);
            if (rv != CKR_OK) {
                goto out;
            }
        }
    }
    rv = CKR_OK;
out:
    return rv;
}

const CK_ATTRIBUTE *akv_attr_tmpl_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                                       CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; tmpl != NULL && i < n; i++) {
        if (tmpl[i].type == type) {
            return &tmpl[i];
        }
    }
    return NULL;
}

bool akv_attr_tmpl_bool(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_ATTRIBUTE_TYPE type, CK_BBOOL *out)
{
    const CK_ATTRIBUTE *a = akv_attr_tmpl_find(tmpl, n, type);

    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(CK_BBOOL)) {
        return false;
    }
    *out = *(const CK_BBOOL *)a->pValue ? CK_TRUE : CK_FALSE;
    return true;
}

bool akv_attr_tmpl_ulong(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                         CK_ATTRIBUTE_TYPE type, CK_ULONG *out)
{
    const CK_ATTRIBUTE *a = akv_attr_tmpl_find(tmpl, n, type);

    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG)) {
        return false;
    }
    memcpy(out, a->pValue, sizeof(CK_ULONG));
    return true;
}

const CK_ATTRIBUTE *akv_attrs_find(const struct akv_attrs *a,
                                   CK_ATTRIBUTE_TYPE type)
{
    return akv_attr_tmpl_find(a->v, (CK_ULONG)a->n, type);
}

CK_BBOOL akv_attrs_bool(const struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                        CK_BBOOL dflt)
{
    CK_BBOOL v = dflt;

    (void)akv_attr_tmpl_bool(a->v, (CK_ULONG)a->n, type, &v);
    return v;
}

bool akv_attrs_ulong(const struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                     CK_ULONG *out)
{
    return akv_attr_tmpl_ulong(a->v, (CK_ULONG)a->n, type, out);
}

/*
 * Storage of a struct akv_attrs: one block per list, a header holding its
 * capacity, then CAP entries (a->v, usable as a CK_ATTRIBUTE template), then
 * CAP inline slots of ATTR_INLINE bytes. A value of 1..ATTR_INLINE bytes
 * (CK_BBOOL, CK_ULONG: most of the ~27 attributes of a key) lives in its
 * entry's slot; a larger one gets its own malloc block. The capacity starts
 * at ATTR_CAP_MIN and doubles, so building a key object costs one or two
 * allocations instead of two per attribute (docs/ARCHITECTURE.md, "Request
 * path costs"). Callers may still move a list by copying the struct and
 * resetting v/n: the capacity travels with the block.
 */
#define ATTR_INLINE  sizeof(CK_ULONG)
#define ATTR_CAP_MIN 32u
#define ATTR_HDR     16u /* keeps the entries 16-byte aligned */

static size_t attrs_cap(const struct akv_attrs *a)
{
    size_t cap;

    if (a->v == NULL) {
        return 0;
    }
    memcpy(&cap, (const uint8_t *)a->v - ATTR_HDR, sizeof(cap));
    return cap;
}

static uint8_t *attr_slot(CK_ATTRIBUTE *v, size_t cap, size_t i)
{
    return (uint8_t *)(v + cap) + i * ATTR_INLINE;
}

static bool attr_inline(const struct akv_attrs *a, size_t i)
{
    return a->v[i].pValue != NULL
           && a->v[i].pValue == attr_slot(a->v, attrs_cap(a), i);
}

/* Wipes a value (inline slot or its own block) and releases the block:
 * attributes are not secrets, but a data object's CKA_VALUE or a label may
 * be private, and freed heap memory is reused by anyone. */
static void attr_value_free(struct akv_attrs *a, size_t i)
{
    if (attr_inline(a, i)) {
        explicit_bzero(a->v[i].pValue, ATTR_INLINE);
    } else if (a->v[i].pValue != NULL) {
        explicit_bzero(a->v[i].pValue, a->v[i].ulValueLen);
        free(a->v[i].pValue);
    }
    a->v[i].pValue = NULL;
}

/* Makes room for NEED entries; false on allocation failure (A unchanged). */
static bool attrs_reserve(struct akv_attrs *a, size_t need)
{
    size_t cap = attrs_cap(a);
    size_t ncap = ATTR_CAP_MIN;
    uint8_t *blk;
    CK_ATTRIBUTE *nv;

    if (need <= cap) {
        return true;
    }
    while (ncap < need) {
        ncap *= 2;
    }
    blk = malloc(ATTR_HDR + ncap * (sizeof(CK_ATTRIBUTE) + ATTR_INLINE));
    if (blk == NULL) {
        return false;
    }
    memcpy(blk, &ncap, sizeof(ncap));
    nv = (CK_ATTRIBUTE *)(void *)(blk + ATTR_HDR);
    for (size_t i = 0; i < a->n; i++) {
        nv[i] = a->v[i];
        if (attr_inline(a, i)) {
            memcpy(attr_slot(nv, ncap, i), a->v[i].pValue, ATTR_INLINE);
            nv[i].pValue = attr_slot(nv, ncap, i);
        }
    }
    if (a->v != NULL) {
        explicit_bzero(attr_slot(a->v, cap, 0), cap * ATTR_INLINE);
        free((uint8_t *)a->v - ATTR_HDR);
    }
    a->v = nv;
    return true;
}

/* Stores TYPE = LEN bytes at P in entry I (I == a->n appends; the caller
 * has reserved room). P may point into A itself: it is copied before A
 * changes. CKR_OK, or CKR_HOST_MEMORY with A unchanged. */
static CK_RV attrs_put(struct akv_attrs *a, size_t i, CK_ATTRIBUTE_TYPE type,
                       const void *p, CK_ULONG len)
{
    CK_RV rv = CKR_HOST_MEMORY;
    uint8_t small[ATTR_INLINE] = {0};
    void *copy = NULL;

    if (len > ATTR_INLINE) {
        copy = malloc(len);
        if (copy == NULL) {
            goto out;
        }
        memcpy(copy, p, len);
    } else if (len > 0) {
        memcpy(small, p, len);
    }
    if (i < a->n) {
        attr_value_free(a, i);
    } else {
        a->n++;
    }
    if (len > 0 && len <= ATTR_INLINE) {
        copy = attr_slot(a->v, attrs_cap(a), i);
        memcpy(copy, small, ATTR_INLINE);
    }
    a->v[i].type = type;
    a->v[i].pValue = copy;
    a->v[i].ulValueLen = len;
    copy = NULL;
    rv = CKR_OK;
out:
    free(copy);
    if (len > 0 && len <= ATTR_INLINE) {
        explicit_bzero(small, sizeof(small));
    }
    return rv;
}

CK_RV akv_attrs_set(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type, const void *p,
                    CK_ULONG len)
{
    size_t i = 0;

    while (i < a->n && a->v[i].type != type) {
        i++;
    }
    if (i == a->n && !attrs_reserve(a, a->n + 1)) {
        return CKR_HOST_MEMORY;
    }
    return attrs_put(a, i, type, p, len);
}

CK_RV akv_attrs_set_bool(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                         CK_BBOOL v)
{
    return akv_attrs_set(a, type, &v, sizeof(v));
}

CK_RV akv_attrs_set_ulong(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                          CK_ULONG v)
{
    return akv_attrs_set(a, type, &v, sizeof(v));
}

CK_RV akv_attrs_merge(struct akv_attrs *a, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_ATTRIBUTE_TYPE skip)
{
    CK_RV rv = CKR_OK;

    for (CK_ULONG i = 0; i < n && rv == CKR_OK; i++) {
        if (tmpl[i].type != skip) {
            rv = akv_attrs_set(a, tmpl[i].type, tmpl[i].pValue,
                               tmpl[i].ulValueLen);
        }
    }
    return rv;
}

void akv_attrs_remove(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].type == type) {
            size_t last = a->n - 1;

            attr_value_free(a, i);
            if (i != last) {
                bool in = attr_inline(a, last);

                a->v[i] = a->v[last];
                if (in) {
                    uint8_t *dst = attr_slot(a->v, attrs_cap(a), i);

                    memcpy(dst, a->v[last].pValue, ATTR_INLINE);
                    explicit_bzero(a->v[last].pValue, ATTR_INLINE);
                    a->v[i].pValue = dst;
                }
            }
            a->n--;
            return;
        }
    }
}

CK_RV akv_attrs_copy(struct akv_attrs *dst, const struct akv_attrs *src)
{
    CK_RV rv = CKR_OK;
    struct akv_attrs tmp = AKV_ATTRS_INIT;

    for (size_t i = 0; i < src->n && rv == CKR_OK; i++) {
        rv = akv_attrs_set(&tmp, src->v[i].type, src->v[i].pValue,
                           src->v[i].ulValueLen);
    }
    if (rv != CKR_OK) {
        akv_attrs_clear(&tmp);
        goto out;
    }
    akv_attrs_clear(dst);
    *dst = tmp;
out:
    return rv;
}

/* Every value wiped and released; the inline slots in one pass (a key's
 * ~27 small values would otherwise be ~27 explicit_bzero calls). */
static void attrs_wipe_values(struct akv_attrs *a)
{
    size_t cap = attrs_cap(a);

    for (size_t i = 0; i < a->n; i++) {
        if (!attr_inline(a, i) && a->v[i].pValue != NULL) {
            attr_value_free(a, i);
        }
    }
    if (cap > 0) {
        explicit_bzero(attr_slot(a->v, cap, 0), cap * ATTR_INLINE);
    }
    a->n = 0;
}

void akv_attrs_reset(struct akv_attrs *a)
{
    attrs_wipe_values(a);
}

size_t akv_attrs_capacity(const struct akv_attrs *a)
{
    return attrs_cap(a);
}

void akv_attrs_clear(struct akv_attrs *a)
{
    if (a == NULL) {
        return;
    }
    attrs_wipe_values(a);
    if (a->v != NULL) {
        free((uint8_t *)a->v - ATTR_HDR);
    }
    a->v = NULL;
}

bool akv_attrs_match(const struct akv_attrs *a, const CK_ATTRIBUTE *tmpl,
                     CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *have = akv_attrs_find(a, tmpl[i].type);

        if (have == NULL || !same_value(have, &tmpl[i])) {
            return false;
        }
    }
    return true;
}

#define TLV_MAGIC     "AKA1"
#define TLV_MAGIC_LEN 4
#define TLV_MAX_ATTRS 256u
#define TLV_MAX_VALUE ((size_t)64 * 1024)

size_t akv_attrs_size(const struct akv_attrs *a)
{
    size_t sz = TLV_MAGIC_LEN + 4;

    for (size_t i = 0; i < a->n; i++) {
        sz += 8 + 4 + a->v[i].ulValueLen;
    }
    return sz;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

CK_RV akv_attrs_serialise(const struct akv_attrs *a, uint8_t **out,
                          size_t *out_len)
{
    CK_RV rv = CKR_HOST_MEMORY;
    size_t len = akv_attrs_size(a);
    uint8_t *buf = malloc(len);
    uint8_t *p = buf;

    if (buf == NULL) {
        goto out;
    }
    memcpy(p, TLV_MAGIC, TLV_MAGIC_LEN);
    p += TLV_MAGIC_LEN;
    put_le(p, a->n, 4);
    p += 4;
    for (size_t i = 0; i < a->n; i++) {
        put_le(p, a->v[i].type, 8);
        p += 8;
        put_le(p, a->v[i].ulValueLen, 4);
        p += 4;
        if (a->v[i].ulValueLen > 0) {
            memcpy(p, a->v[i].pValue, a->v[i].ulValueLen);
            p += a->v[i].ulValueLen;
        }
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    rv = CKR_OK;
out:
    free(buf);
    return rv;
}

CK_RV akv_attrs_parse(const uint8_t *in, size_t len, struct akv_attrs *a)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct akv_attrs tmp = AKV_ATTRS_INIT;
    size_t off = TLV_MAGIC_LEN + 4;
    uint64_t count;

    if (in == NULL || len < off || memcmp(in, TLV_MAGIC, TLV_MAGIC_LEN) != 0) {
        goto out;
    }
    count = get_le(in + TLV_MAGIC_LEN, 4);
    if (count > TLV_MAX_ATTRS) {
        goto out;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint64_t type;
        uint64_t vlen;

        if (len - off < 12) {
            goto out;
        }
        type = get_le(in + off, 8);
        vlen = get_le(in + off + 8, 4);
        off += 12;
        if (vlen > TLV_MAX_VALUE || vlen > len - off) {
            goto out;
        }
        rv = akv_attrs_set(&tmp, (CK_ATTRIBUTE_TYPE)type, in + off,
                           (CK_ULONG)vlen);
        if (rv != CKR_OK) {
            goto out;
        }
        rv = CKR_DEVICE_ERROR;
        off += vlen;
    }
    if (off != len) {
        goto out;
    }
    akv_attrs_clear(a);
    *a = tmp;
    tmp.v = NULL;
    tmp.n = 0;
    rv = CKR_OK;
out:
    akv_attrs_clear(&tmp);
    return rv;
}

CK_RV akv_attr_get_values(const struct akv_attrs *a,
                          akv_attr_sensitive_fn is_sensitive, const void *ctx,
                          CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    bool sensitive = false;
    bool invalid = false;
    bool small = false;

    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *have = NULL;

        /* Case 1: exists but cannot be revealed. */
        if (is_sensitive != NULL && is_sensitive(ctx, tmpl[i].type)) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            sensitive = true;
            continue;
        }
        /* Case 2: not an attribute of this object. */
        have = akv_attrs_find(a, tmpl[i].type);
        if (have == NULL) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            invalid = true;
            continue;
        }
        /* Case 3: length query. */
        if (tmpl[i].pValue == NULL) {
            tmpl[i].ulValueLen = have->ulValueLen;
            continue;
        }
        /* Case 4 / 5. */
        if (tmpl[i].ulValueLen >= have->ulValueLen) {
            if (have->ulValueLen > 0) {
                memcpy(tmpl[i].pValue, have->pValue, have->ulValueLen);
            }
            tmpl[i].ulValueLen = have->ulValueLen;
        } else {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            small = true;
        }
    }
    if (sensitive) {
        return CKR_ATTRIBUTE_SENSITIVE;
    }
    if (invalid) {
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
    if (small) {
        return CKR_BUFFER_TOO_SMALL;
    }
    return CKR_OK;
}
