/* SPDX-License-Identifier: Apache-2.0 */
/* token/attr.c and token/mech.c: policy table, template validation, the
 * five C_GetAttributeValue cases, TLV round trip, OAEP parameter mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "include/pkcs11/akv-pkcs11.h"
#include "token/attr.h"
#include "token/mech.h"

static bool sens_pexp(const void *ctx, CK_ATTRIBUTE_TYPE t)
{
    (void)ctx;
    return t == CKA_PRIVATE_EXPONENT;
}

static void make_attrs(struct akv_attrs *a)
{
    CK_ULONG cls = CKO_PRIVATE_KEY;

    assert_int_equal(akv_attrs_set(a, CKA_CLASS, &cls, sizeof(cls)), CKR_OK);
    assert_int_equal(akv_attrs_set(a, CKA_LABEL, "cmk", 3), CKR_OK);
    assert_int_equal(akv_attrs_set_bool(a, CKA_SENSITIVE, CK_TRUE), CKR_OK);
}

static void test_policy_sorted(void **state)
{
    size_t n = 0;
    const struct akv_attr_policy *p = akv_attr_policy_table(&n);
    const struct akv_mech *m = akv_mech_table(&n);

    (void)state;
    p = akv_attr_policy_table(&n); /* m's call above overwrote n */
    for (size_t i = 1; i < n; i++) {
        assert_true(p[i - 1].type < p[i].type);
    }
    assert_non_null(akv_attr_policy_find(CKA_AKV_KID));
    assert_null(akv_attr_policy_find(CKA_VENDOR_DEFINED | 0x1234));
    m = akv_mech_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            assert_true(m[i - 1].type < m[i].type);
        }
        assert_true(m[i].info.ulMinKeySize <= m[i].info.ulMaxKeySize);
        assert_true(m[i].info.flags != 0);
    }
}

/* The defaults table (v3.0 §4.7-§4.10): each key class gets its own
 * attributes, nothing already set is changed, other classes get nothing. */
static void test_fill_defaults(void **state)
{
    struct akv_attrs a = AKV_ATTRS_INIT;
    CK_ULONG v = 0;

    (void)state;
    assert_int_equal(akv_attrs_fill_defaults(&a, CKO_DATA), CKR_OK);
    assert_int_equal(a.n, 0);
    assert_int_equal(akv_attrs_set_bool(&a, CKA_ENCRYPT, CK_FALSE), CKR_OK);
    assert_int_equal(
        akv_attrs_set_ulong(&a, CKA_KEY_GEN_MECHANISM, CKM_AES_KEY_GEN),
        CKR_OK);
    assert_int_equal(akv_attrs_fill_defaults(&a, CKO_SECRET_KEY), CKR_OK);
    /* Kept. */
    assert_int_equal(akv_attrs_bool(&a, CKA_ENCRYPT, CK_TRUE), CK_FALSE);
    assert_true(akv_attrs_ulong(&a, CKA_KEY_GEN_MECHANISM, &v));
    assert_int_equal(v, CKM_AES_KEY_GEN);
    /* Added (§4.7, §4.10), the module's secret-key defaults. */
    assert_int_equal(akv_attrs_bool(&a, CKA_DECRYPT, CK_FALSE), CK_TRUE);
    assert_int_equal(akv_attrs_bool(&a, CKA_SENSITIVE, CK_FALSE), CK_TRUE);
    assert_int_equal(akv_attrs_bool(&a, CKA_EXTRACTABLE, CK_FALSE), CK_TRUE);
    assert_int_equal(akv_attrs_bool(&a, CKA_DERIVE, CK_TRUE), CK_FALSE);
    assert_int_equal(akv_attrs_bool(&a, CKA_LOCAL, CK_TRUE), CK_FALSE);
    assert_non_null(akv_attrs_find(&a, CKA_ALLOWED_MECHANISMS));
    assert_int_equal(akv_attrs_find(&a, CKA_ALLOWED_MECHANISMS)->ulValueLen, 0);
    assert_non_null(akv_attrs_find(&a, CKA_UNWRAP_TEMPLATE));
    assert_non_null(akv_attrs_find(&a, CKA_WRAP_TEMPLATE));
    /* Not secret-key attributes. */
    assert_null(akv_attrs_find(&a, CKA_SUBJECT));
    assert_null(akv_attrs_find(&a, CKA_VERIFY_RECOVER));
    assert_null(akv_attrs_find(&a, CKA_ALWAYS_AUTHENTICATE));
    akv_attrs_clear(&a);
    /* Public: no private/secret ones; KEY_GEN_MECHANISM unavailable. */
    assert_int_equal(akv_attrs_fill_defaults(&a, CKO_PUBLIC_KEY), CKR_OK);
    assert_true(akv_attrs_ulong(&a, CKA_KEY_GEN_MECHANISM, &v));
    assert_int_equal(v, CK_UNAVAILABLE_INFORMATION);
    assert_non_null(akv_attrs_find(&a, CKA_PUBLIC_KEY_INFO));
    assert_int_equal(akv_attrs_bool(&a, CKA_ENCRYPT, CK_TRUE), CK_FALSE);
    assert_null(akv_attrs_find(&a, CKA_SENSITIVE));
    assert_null(akv_attrs_find(&a, CKA_DECRYPT));
    assert_null(akv_attrs_find(&a, CKA_UNWRAP_TEMPLATE));
    akv_attrs_clear(&a);
    /* Private: sensitive, not extractable by default. */
    assert_int_equal(akv_attrs_fill_defaults(&a, CKO_PRIVATE_KEY), CKR_OK);
    assert_int_equal(akv_attrs_bool(&a, CKA_SENSITIVE, CK_FALSE), CK_TRUE);
    assert_int_equal(akv_attrs_bool(&a, CKA_EXTRACTABLE, CK_TRUE), CK_FALSE);
    assert_non_null(akv_attrs_find(&a, CKA_ALWAYS_AUTHENTICATE));
    assert_null(akv_attrs_find(&a, CKA_WRAP_TEMPLATE));
    /* Every default is a known attribute of the policy table. */
    for (size_t i = 0; i < a.n; i++) {
        assert_non_null(akv_attr_policy_find(a.v[i].type));
    }
    akv_attrs_clear(&a);
}

/* The defaults of a class name each type once (akv_attrs_fill_defaults
 * appends without searching, attr.c), and a filled list stays full. */
static void test_attr_defaults_unique(void **state)
{
    static const struct {
        CK_OBJECT_CLASS cls;
        size_t n;
    } want[] = {{CKO_PUBLIC_KEY, 20},
                {CKO_PRIVATE_KEY, 25},
                {CKO_SECRET_KEY, 26},
                {CKO_DATA, 0}};

    (void)state;
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        struct akv_attrs a = AKV_ATTRS_INIT;

        assert_int_equal(akv_attrs_fill_defaults(&a, want[k].cls), CKR_OK);
        assert_int_equal(a.n, want[k].n);
        for (size_t i = 0; i < a.n; i++) {
            for (size_t j = i + 1; j < a.n; j++) {
                assert_true(a.v[i].type != a.v[j].type);
            }
        }
        assert_int_equal(akv_attrs_fill_defaults(&a, want[k].cls), CKR_OK);
        assert_int_equal(a.n, want[k].n);
        akv_attrs_clear(&a);
    }
}

/* Cases 1-5 of v3.0 §5.7.5, one entry each, in one call. */
static void test_get_values_cases(void **state)
{
    struct akv_attrs a = AKV_ATTRS_INIT;
    CK_ULONG cls = 0xdead;
    char small[2] = {'x', 'y'};
    char label[16];
    CK_BBOOL sens = 7;
    CK_ATTRIBUTE t[] = {
        {CKA_PRIVATE_EXPONENT, label, sizeof(label)}, /* 1 sensitive */
        {CKA_MODULUS, label, sizeof(label)},          /* 2 not present */
        {CKA_LABEL, NULL, 99},                        /* 3 length query */
        {CKA_CLASS, &cls, sizeof(cls)},               /* 4 fits */
        {CKA_LABEL, small, sizeof(small)},            /* 5 too small */
        {CKA_SENSITIVE, &sens, sizeof(sens)},
    };

    (void)state;
    make_attrs(&a);
    memset(label, 'z', sizeof(label));
    assert_int_equal(akv_attr_get_values(&a, sens_pexp, NULL, t, 6),
                     CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(t[2].ulValueLen, 3);
    assert_int_equal(t[3].ulValueLen, sizeof(CK_ULONG));
    assert_int_equal(cls, CKO_PRIVATE_KEY);
    assert_int_equal(t[4].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(sens, CK_TRUE);
    /* pValue never written on error entries */
    assert_int_equal(label[0], 'z');
    assert_int_equal(small[0], 'x');

    /* Precedence without a sensitive entry: TYPE_INVALID > TOO_SMALL. */
    t[0].type = CKA_LABEL;
    t[0].pValue = label;
    t[0].ulValueLen = sizeof(label);
    t[4].ulValueLen = sizeof(small);
    t[1].ulValueLen = sizeof(label);
    assert_int_equal(akv_attr_get_values(&a, sens_pexp, NULL, t, 6),
                     CKR_ATTRIBUTE_TYPE_INVALID);
    assert_int_equal(t[0].ulValueLen, 3);
    assert_memory_equal(label, "cmk", 3);
    /* Only too small. */
    t[4].ulValueLen = sizeof(small);
    assert_int_equal(akv_attr_get_values(&a, sens_pexp, NULL, &t[4], 1),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(t[4].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    /* All fine. */
    assert_int_equal(akv_attr_get_values(&a, sens_pexp, NULL, &t[3], 1),
                     CKR_OK);
    akv_attrs_clear(&a);
}

static void test_template_validation(void **state)
{
    CK_BBOOL tr = CK_TRUE;
    CK_BBOOL bad = 2;
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ULONG cls2 = CKO_DATA;
    uint32_t short_ulong = 4;
    CK_ULONG len = 32;
    CK_ATTRIBUTE ok[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_TOKEN, &tr, sizeof(tr)},
                         {CKA_LABEL, "x", 1}};
    CK_ATTRIBUTE null_val[] = {{CKA_LABEL, NULL, 3}};
    CK_ATTRIBUTE bool_size[] = {{CKA_TOKEN, &cls, sizeof(cls)}};
    CK_ATTRIBUTE bool_val[] = {{CKA_TOKEN, &bad, sizeof(bad)}};
    CK_ATTRIBUTE ulong_size[] = {{CKA_CLASS, &short_ulong, 4}};
    CK_ATTRIBUTE ro[] = {{CKA_LOCAL, &tr, sizeof(tr)}};
    CK_ATTRIBUTE vlen[] = {{CKA_VALUE_LEN, &len, sizeof(len)}};
    CK_ATTRIBUTE conflict[] = {{CKA_CLASS, &cls, sizeof(cls)},
                               {CKA_CLASS, &cls2, sizeof(cls2)}};
    CK_ATTRIBUTE unknown[] = {{CKA_VENDOR_DEFINED | 7, "x", 1}};
    CK_ATTRIBUTE set_token[] = {{CKA_TOKEN, &tr, sizeof(tr)}};

    (void)state;
    assert_int_equal(akv_attr_check_template(ok, 3, AKV_ATTR_OP_CREATE),
                     CKR_OK);
    assert_int_equal(akv_attr_check_template(NULL, 0, AKV_ATTR_OP_CREATE),
                     CKR_OK);
    assert_int_equal(akv_attr_check_template(null_val, 1, AKV_ATTR_OP_CREATE),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(akv_attr_check_template(bool_size, 1, AKV_ATTR_OP_CREATE),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(akv_attr_check_template(bool_val, 1, AKV_ATTR_OP_CREATE),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(akv_attr_check_template(ulong_size, 1, AKV_ATTR_OP_CREATE),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(akv_attr_check_template(ro, 1, AKV_ATTR_OP_CREATE),
                     CKR_ATTRIBUTE_READ_ONLY);
    /* CKA_VALUE_LEN: generate/unwrap yes, create no (fn 2). */
    assert_int_equal(akv_attr_check_template(vlen, 1, AKV_ATTR_OP_GENERATE),
                     CKR_OK);
    assert_int_equal(akv_attr_check_template(vlen, 1, AKV_ATTR_OP_CREATE),
                     CKR_ATTRIBUTE_READ_ONLY);
    assert_int_equal(akv_attr_check_template(conflict, 2, AKV_ATTR_OP_CREATE),
                     CKR_TEMPLATE_INCONSISTENT);
    assert_int_equal(akv_attr_check_template(unknown, 1, AKV_ATTR_OP_CREATE),
                     CKR_ATTRIBUTE_TYPE_INVALID);
    /* CKA_TOKEN: copy may set it, set may not. */
    assert_int_equal(akv_attr_check_template(set_token, 1, AKV_ATTR_OP_SET),
                     CKR_ATTRIBUTE_READ_ONLY);
    assert_int_equal(akv_attr_check_template(set_token, 1, AKV_ATTR_OP_COPY),
                     CKR_OK);
    /* Find: unknown types are fine, malformed are not. */
    assert_int_equal(akv_attr_check_find(unknown, 1), CKR_OK);
    assert_int_equal(akv_attr_check_find(null_val, 1),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(akv_attr_check_find(bool_size, 1),
                     CKR_ATTRIBUTE_VALUE_INVALID);
}

/* akv_attr_check_class: attributes of another class are not attributes of
 * the object (v3.0 §4.5, §4.10; found by tests/integration/abuse.c). */
static void test_class_attributes(void **state)
{
    CK_BBOOL tr = CK_TRUE;
    CK_ULONG kt = CKK_AES;
    uint8_t v[4] = {1, 2, 3, 4};
    CK_ATTRIBUTE data_ok[] = {{CKA_LABEL, v, 4},
                              {CKA_APPLICATION, v, 4},
                              {CKA_OBJECT_ID, v, 4},
                              {CKA_VALUE, v, 4},
                              {CKA_TOKEN, &tr, 1}};
    CK_ATTRIBUTE key_attr[] = {{CKA_SENSITIVE, &tr, 1},
                               {CKA_KEY_TYPE, &kt, sizeof(kt)},
                               {CKA_ENCRYPT, &tr, 1}};
    CK_ATTRIBUTE app[] = {{CKA_APPLICATION, v, 4}};

    (void)state;
    assert_int_equal(akv_attr_check_class(data_ok, 5, CKO_DATA), CKR_OK);
    assert_int_equal(akv_attr_check_class(NULL, 0, CKO_DATA), CKR_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(akv_attr_check_class(&key_attr[i], 1, CKO_DATA),
                         CKR_ATTRIBUTE_TYPE_INVALID);
        assert_int_equal(akv_attr_check_class(&key_attr[i], 1, CKO_SECRET_KEY),
                         CKR_OK);
    }
    assert_int_equal(akv_attr_check_class(app, 1, CKO_SECRET_KEY),
                     CKR_ATTRIBUTE_TYPE_INVALID);
    assert_int_equal(akv_attr_check_class(&data_ok[3], 1, CKO_SECRET_KEY),
                     CKR_OK);
}

static void test_tlv_roundtrip(void **state)
{
    struct akv_attrs a = AKV_ATTRS_INIT;
    struct akv_attrs b = AKV_ATTRS_INIT;
    uint8_t *buf = NULL;
    size_t len = 0;

    (void)state;
    make_attrs(&a);
    assert_int_equal(akv_attrs_set(&a, CKA_ID, NULL, 0), CKR_OK);
    assert_int_equal(akv_attrs_serialise(&a, &buf, &len), CKR_OK);
    assert_int_equal(len, akv_attrs_size(&a));
    assert_int_equal(akv_attrs_parse(buf, len, &b), CKR_OK);
    assert_int_equal(b.n, a.n);
    assert_true(akv_attrs_match(&b, a.v, (CK_ULONG)a.n));
    /* Truncated and trailing-garbage blobs are rejected. */
    assert_int_equal(akv_attrs_parse(buf, len - 1, &b), CKR_DEVICE_ERROR);
    buf[0] = 'X';
    assert_int_equal(akv_attrs_parse(buf, len, &b), CKR_DEVICE_ERROR);
    free(buf);
    akv_attrs_clear(&a);
    akv_attrs_clear(&b);
}

struct oaep_case {
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
    CK_ULONG source;
    const char *label;
    CK_RV rv;
    enum akv_kv_alg alg;
};

static void test_oaep_mapping(void **state)
{
    static const struct oaep_case cases[] = {
        {CKM_SHA_1, CKG_MGF1_SHA1, 0, NULL, CKR_OK, AKV_KV_ALG_RSA_OAEP},
        {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, CKR_OK,
         AKV_KV_ALG_RSA_OAEP},
        {CKM_SHA256, CKG_MGF1_SHA256, 0, NULL, CKR_OK, AKV_KV_ALG_RSA_OAEP_256},
        {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, CKR_OK,
         AKV_KV_ALG_RSA_OAEP_256},
        {CKM_SHA256, CKG_MGF1_SHA1, 0, NULL, CKR_MECHANISM_PARAM_INVALID, 0},
        {CKM_SHA_1, CKG_MGF1_SHA256, 0, NULL, CKR_MECHANISM_PARAM_INVALID, 0},
        {CKM_SHA384, CKG_MGF1_SHA384, 0, NULL, CKR_MECHANISM_PARAM_INVALID, 0},
        {CKM_SHA512, CKG_MGF1_SHA512, 0, NULL, CKR_MECHANISM_PARAM_INVALID, 0},
        {CKM_SHA224, CKG_MGF1_SHA224, 0, NULL, CKR_MECHANISM_PARAM_INVALID, 0},
        {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, "label",
         CKR_MECHANISM_PARAM_INVALID, 0},
        {CKM_SHA256, CKG_MGF1_SHA256, 2, NULL, CKR_MECHANISM_PARAM_INVALID, 0},
    };
    CK_RSA_PKCS_OAEP_PARAMS p;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &p, sizeof(p)};
    enum akv_kv_alg alg;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&p, 0, sizeof(p));
        p.hashAlg = cases[i].hash;
        p.mgf = cases[i].mgf;
        p.source = cases[i].source;
        p.pSourceData = (void *)cases[i].label;
        p.ulSourceDataLen = cases[i].label ? strlen(cases[i].label) : 0;
        alg = AKV_KV_ALG_COUNT;
        assert_int_equal(akv_mech_rsa_alg(&m, &alg), cases[i].rv);
        if (cases[i].rv == CKR_OK) {
            assert_int_equal(alg, cases[i].alg);
        }
    }
    /* NULL / short parameters. */
    m.pParameter = NULL;
    assert_int_equal(akv_mech_rsa_alg(&m, &alg), CKR_MECHANISM_PARAM_INVALID);
    m.pParameter = &p;
    m.ulParameterLen = sizeof(p) - 1;
    assert_int_equal(akv_mech_rsa_alg(&m, &alg), CKR_MECHANISM_PARAM_INVALID);
    /* Empty label pointer with length 0 but non-NULL pointer: a label. */
    memset(&p, 0, sizeof(p));
    p.hashAlg = CKM_SHA256;
    p.mgf = CKG_MGF1_SHA256;
    p.pSourceData = "x";
    p.ulSourceDataLen = 0;
    m.ulParameterLen = sizeof(p);
    assert_int_equal(akv_mech_rsa_alg(&m, &alg), CKR_MECHANISM_PARAM_INVALID);
    /* PKCS#1 v1.5: no parameters. */
    m.mechanism = CKM_RSA_PKCS;
    m.pParameter = NULL;
    m.ulParameterLen = 0;
    assert_int_equal(akv_mech_rsa_alg(&m, &alg), CKR_OK);
    assert_int_equal(alg, AKV_KV_ALG_RSA1_5);
    m.pParameter = &p;
    m.ulParameterLen = sizeof(p);
    assert_int_equal(akv_mech_rsa_alg(&m, &alg), CKR_MECHANISM_PARAM_INVALID);
    m.mechanism = CKM_AES_GCM;
    assert_int_equal(akv_mech_rsa_alg(&m, &alg), CKR_MECHANISM_INVALID);
}

static void test_mech_info_and_kw(void **state)
{
    CK_MECHANISM_INFO info;
    CK_MECHANISM_TYPE list[64];
    CK_ULONG n = 0;
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_KWP, NULL, 0};
    enum akv_kv_alg alg;

    (void)state;
    assert_int_equal(akv_mech_get_info(CKM_RSA_PKCS_OAEP, &info), CKR_OK);
    assert_int_equal(info.ulMinKeySize, 2048);
    assert_int_equal(info.ulMaxKeySize, 4096);
    assert_true(info.flags & CKF_UNWRAP);
    assert_true(info.flags & CKF_DECRYPT);
    assert_int_equal(akv_mech_get_info(CKM_MD5, &info), CKR_MECHANISM_INVALID);
    assert_int_equal(akv_mech_get_list(NULL, &n), CKR_OK);
    assert_int_equal(n, 43);
    n = 3;
    assert_int_equal(akv_mech_get_list(list, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 43);
    assert_int_equal(akv_mech_get_list(list, &n), CKR_OK);
    assert_int_equal(list[0], CKM_RSA_PKCS_KEY_PAIR_GEN);
    assert_int_equal(list[1], CKM_RSA_PKCS);
    /* Key pair generation (README "Creating keys"): RSA 2048..4096 bits,
     * EC over the named prime curves P-256..P-521, nothing else. */
    assert_int_equal(akv_mech_get_info(CKM_RSA_PKCS_KEY_PAIR_GEN, &info),
                     CKR_OK);
    assert_int_equal(info.ulMinKeySize, 2048);
    assert_int_equal(info.ulMaxKeySize, 4096);
    assert_int_equal(info.flags, CKF_GENERATE_KEY_PAIR);
    assert_int_equal(akv_mech_get_info(CKM_EC_KEY_PAIR_GEN, &info), CKR_OK);
    assert_int_equal(info.ulMinKeySize, 256);
    assert_int_equal(info.ulMaxKeySize, 521);
    assert_int_equal(info.flags, CKF_GENERATE_KEY_PAIR | CKF_EC_F_P
                                     | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS);
    assert_int_equal(akv_mech_aes_kw_alg(&kw, 16, &alg), CKR_OK);
    assert_int_equal(alg, AKV_KV_ALG_A128KW);
    assert_int_equal(akv_mech_aes_kw_alg(&kw, 32, &alg), CKR_OK);
    assert_int_equal(alg, AKV_KV_ALG_A256KW);
    assert_int_equal(akv_mech_aes_kw_alg(&kwp, 24, &alg), CKR_OK);
    assert_int_equal(alg, AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD);
    assert_int_equal(akv_mech_aes_kw_alg(&kw, 20, &alg), CKR_KEY_SIZE_RANGE);
    /* size unknown (Managed HSM): the size-free Key Vault algorithms */
    assert_int_equal(akv_mech_aes_kw_alg(&kw, 0, &alg), CKR_OK);
    assert_int_equal(alg, AKV_KV_ALG_CKM_AES_KEY_WRAP);
    assert_int_equal(akv_mech_aes_kw_alg(&kwp, 0, &alg), CKR_OK);
    assert_int_equal(alg, AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD);
    assert_string_equal(akv_kv_alg_name(AKV_KV_ALG_CKM_AES_KEY_WRAP),
                        "CKM_AES_KEY_WRAP");
    kw.pParameter = &alg;
    kw.ulParameterLen = 8;
    assert_int_equal(akv_mech_aes_kw_alg(&kw, 16, &alg),
                     CKR_MECHANISM_PARAM_INVALID);
}

/* Attribute lists grow past their first block (32 entries) and shrink by
 * moving the last entry into the hole: inline (<= 8-byte) and heap values
 * keep their bytes through every move, a value may be set from the list
 * itself, and copies are independent. */
static void test_attrs_storage(void **state)
{
    struct akv_attrs a = AKV_ATTRS_INIT;
    struct akv_attrs b = AKV_ATTRS_INIT;
    uint8_t big[40];
    CK_ULONG v;

    (void)state;
    memset(big, 0xab, sizeof(big));
    for (CK_ULONG i = 0; i < 100; i++) {
        if (i % 3 == 0) {
            big[0] = (uint8_t)i;
            assert_int_equal(
                akv_attrs_set(&a, 0x80000000ul + i, big, sizeof(big)), CKR_OK);
        } else {
            assert_int_equal(akv_attrs_set_ulong(&a, 0x80000000ul + i, i * 7),
                             CKR_OK);
        }
    }
    assert_int_equal(a.n, 100);
    /* remove from the front: the last entry (inline or not) moves */
    for (CK_ULONG i = 0; i < 50; i++) {
        akv_attrs_remove(&a, 0x80000000ul + i);
    }
    assert_int_equal(a.n, 50);
    for (CK_ULONG i = 50; i < 100; i++) {
        const CK_ATTRIBUTE *e = akv_attrs_find(&a, 0x80000000ul + i);

        assert_non_null(e);
        if (i % 3 == 0) {
            assert_int_equal(e->ulValueLen, sizeof(big));
            assert_int_equal(((const uint8_t *)e->pValue)[0], (uint8_t)i);
        } else {
            assert_true(akv_attrs_ulong(&a, 0x80000000ul + i, &v));
            assert_int_equal(v, i * 7);
        }
    }
    /* append after the moves, and set from a value inside the list */
    assert_int_equal(akv_attrs_set_ulong(&a, CKA_CLASS, CKO_SECRET_KEY),
                     CKR_OK);
    assert_int_equal(akv_attrs_set(&a, CKA_KEY_TYPE,
                                   akv_attrs_find(&a, CKA_CLASS)->pValue,
                                   sizeof(CK_ULONG)),
                     CKR_OK);
    assert_true(akv_attrs_ulong(&a, CKA_KEY_TYPE, &v));
    assert_int_equal(v, CKO_SECRET_KEY);
    assert_true(akv_attrs_ulong(&a, 0x80000000ul + 52, &v));
    assert_int_equal(v, 52 * 7);
    assert_int_equal(akv_attrs_copy(&b, &a), CKR_OK);
    akv_attrs_clear(&a);
    assert_int_equal(b.n, 52);
    assert_true(akv_attrs_ulong(&b, 0x80000000ul + 98, &v));
    assert_int_equal(v, 98 * 7);
    assert_int_equal(
        ((const uint8_t *)akv_attrs_find(&b, 0x80000000ul + 99)->pValue)[0],
        99);
    akv_attrs_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_sorted),
        cmocka_unit_test(test_fill_defaults),
        cmocka_unit_test(test_attr_defaults_unique),
        cmocka_unit_test(test_get_values_cases),
        cmocka_unit_test(test_template_validation),
        cmocka_unit_test(test_class_attributes),
        cmocka_unit_test(test_tlv_roundtrip),
        cmocka_unit_test(test_attrs_storage),
        cmocka_unit_test(test_oaep_mapping),
        cmocka_unit_test(test_mech_info_and_kw),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
