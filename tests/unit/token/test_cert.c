/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token/cert.c: the certificate object of tokens[].certificate, through the
 * token API against kv_fake; every attribute is compared with OpenSSL's
 * parse of the same DER (PKCS#11 v3.0 §4.6.2, §4.6.3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/config.h"
#include "kv_fake.h"
#include "token/cert.h"
#include "token/object.h"
#include "token/session.h"
#include "token/slot.h"

static struct kv_fake *fake;

static CK_RV factory(const struct akv_token_config *tc, struct akv_kv **out)
{
    (void)tc;
    *out = kv_fake_kv(fake);
    return CKR_OK;
}

static int setup(void **state)
{
    static const char json[] =
        "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"
        "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"}],"
        "\"credential\":{\"type\":\"managed_identity\"},"
        "\"certificate\":\"cmk\",\"key_refresh_s\":0}]}";
    struct akv_config *cfg = NULL;
    char err[256] = "";

    (void)state;
    fake = kv_fake_new();
    kv_fake_add_rsa(fake, "cmk", AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY);
    if (akv_config_parse(json, strlen(json), "test", &cfg, err, sizeof(err))
        != 0) {
        return -1;
    }
    return akv_slot_init(cfg, factory) == CKR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    (void)akv_slot_finalize();
    kv_fake_free(fake);
    fake = NULL;
    return 0;
}

/* Handles of class CLS (at most 4). */
static CK_ULONG find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                     CK_OBJECT_HANDLE *h)
{
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ULONG n = 0;

    assert_int_equal(akv_object_find_init(s, &t, 1), CKR_OK);
    assert_int_equal(akv_object_find(s, h, 4, &n), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    return n;
}

/* The value of TYPE on object O (malloc'ed, *LEN bytes). */
static uint8_t *get(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                    CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    uint8_t *v;

    assert_int_equal(akv_object_get_attrs(s, o, &a, 1), CKR_OK);
    v = malloc(a.ulValueLen + 1);
    a.pValue = v;
    assert_int_equal(akv_object_get_attrs(s, o, &a, 1), CKR_OK);
    *len = a.ulValueLen;
    return v;
}

static void expect_bytes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                         CK_ATTRIBUTE_TYPE type, const void *want, size_t n)
{
    CK_ULONG len = 0;
    uint8_t *v = get(s, o, type, &len);

    assert_int_equal(len, n);
    assert_memory_equal(v, want, n);
    free(v);
}

static void expect_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                         CK_ATTRIBUTE_TYPE type, CK_ULONG want)
{
    expect_bytes(s, o, type, &want, sizeof(want));
}

static void expect_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                        CK_ATTRIBUTE_TYPE type, CK_BBOOL want)
{
    expect_bytes(s, o, type, &want, sizeof(want));
}

/* DER of what I2D makes of P, compared with TYPE. */
#define EXPECT_DER(s, o, type, i2d, p)                                         \
    do {                                                                       \
        unsigned char *d_ = NULL;                                              \
        int l_ = (i2d)((p), &d_);                                              \
        assert_true(l_ > 0);                                                   \
        expect_bytes((s), (o), (type), d_, (size_t)l_);                        \
        OPENSSL_free(d_);                                                      \
    } while (0)

static void test_vault_certificate_object(void **state)
{
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE h[4];
    CK_OBJECT_HANDLE priv[4];
    size_t der_len = 0;
    const uint8_t *der;
    const unsigned char *p;
    X509 *x;
    unsigned char sha1[20];
    CK_ULONG id_len = 0;
    CK_ULONG pid_len = 0;
    uint8_t *id;
    uint8_t *pid;

    (void)state;
    der = kv_fake_add_cert(fake, "cmk", NULL, &der_len);
    assert_non_null(der);
    p = der;
    x = d2i_X509(NULL, &p, (long)der_len);
    assert_non_null(x);
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 1);
    expect_ulong(s, h[0], CKA_CLASS, CKO_CERTIFICATE);
    expect_ulong(s, h[0], CKA_CERTIFICATE_TYPE, CKC_X_509);
    expect_bytes(s, h[0], CKA_VALUE, der, der_len);
    EXPECT_DER(s, h[0], CKA_SUBJECT, i2d_X509_NAME, X509_get_subject_name(x));
    EXPECT_DER(s, h[0], CKA_ISSUER, i2d_X509_NAME, X509_get_issuer_name(x));
    EXPECT_DER(s, h[0], CKA_SERIAL_NUMBER, i2d_ASN1_INTEGER,
               X509_get0_serialNumber(x));
    EXPECT_DER(s, h[0], CKA_PUBLIC_KEY_INFO, i2d_PUBKEY, X509_get0_pubkey(x));
    assert_int_equal(EVP_Digest(der, der_len, sha1, NULL, EVP_sha1(), NULL), 1);
    expect_bytes(s, h[0], CKA_CHECK_VALUE, sha1, 3);
    /* kv_fake: notBefore 1700000000 (2023-11-14), notAfter 1900000000
     * (2030-03-17), UTC. */
    expect_bytes(s, h[0], CKA_START_DATE, "20231114", 8);
    expect_bytes(s, h[0], CKA_END_DATE, "20300317", 8);
    expect_bytes(s, h[0], CKA_LABEL, "cmk", 3);
    expect_bool(s, h[0], CKA_TOKEN, CK_TRUE);
    expect_bool(s, h[0], CKA_PRIVATE, CK_FALSE);
    expect_bool(s, h[0], CKA_MODIFIABLE, CK_FALSE);
    expect_bool(s, h[0], CKA_DESTROYABLE, CK_FALSE);
    expect_bool(s, h[0], CKA_COPYABLE, CK_FALSE);
    expect_bool(s, h[0], CKA_TRUSTED, CK_FALSE);
    expect_ulong(s, h[0], CKA_CERTIFICATE_CATEGORY, 1); /* token user */
    expect_ulong(s, h[0], CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
    expect_bytes(s, h[0], CKA_URL, "", 0);
    /* CKA_ID: the key version, the same bytes as the private key's. */
    assert_int_equal(find(s, CKO_PRIVATE_KEY, priv), 1);
    id = get(s, h[0], CKA_ID, &id_len);
    pid = get(s, priv[0], CKA_ID, &pid_len);
    assert_int_equal(id_len, 16);
    assert_int_equal(pid_len, 16);
    assert_memory_equal(id, pid, 16);
    free(id);
    free(pid);
    /* Read-only. */
    {
        CK_BBOOL t = CK_TRUE;
        CK_ATTRIBUTE a = {CKA_TRUSTED, &t, sizeof(t)};
        CK_ATTRIBUTE l = {CKA_LABEL, "x", 1};

        assert_int_equal(akv_object_set_attrs(s, h[0], &l, 1),
                         CKR_ACTION_PROHIBITED);
        assert_int_not_equal(akv_object_set_attrs(s, h[0], &a, 1), CKR_OK);
        assert_int_equal(akv_object_destroy(s, h[0]), CKR_ACTION_PROHIBITED);
    }
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 1);
    X509_free(x);
    (void)akv_session_close(s);
}

/* No certificates/get permission (403): no certificate, the keys shown. */
static void test_vault_certificate_denied(void **state)
{
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE h[4];
    size_t der_len = 0;

    (void)state;
    assert_non_null(kv_fake_add_cert(fake, "cmk", NULL, &der_len));
    kv_fake_fail(fake, KV_FAKE_CERT, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 0);
    assert_int_equal(find(s, CKO_PRIVATE_KEY, h), 1);
    assert_int_equal(find(s, CKO_PUBLIC_KEY, h), 1);
    /* Access restored: shown at the next search (key_refresh_s 0). */
    kv_fake_fail(fake, KV_FAKE_CERT, CKR_OK);
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 1);
    (void)akv_session_close(s);
}

/* A renewed certificate (new key version) replaces the shown one in the
 * same process: one certificate object, the new DER and CKA_ID. */
static void test_vault_certificate_renewed(void **state)
{
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE h[4];
    size_t len1 = 0;
    size_t len2 = 0;
    const uint8_t *der2;
    uint8_t id2[16];
    CK_ULONG n = 0;
    uint8_t *id;

    (void)state;
    assert_non_null(kv_fake_add_cert(fake, "cmk", NULL, &len1));
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 1);
    assert_non_null(kv_fake_rotate(fake, "cmk"));
    der2 = kv_fake_add_cert(fake, "cmk", NULL, &len2);
    assert_non_null(der2);
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 1);
    expect_bytes(s, h[0], CKA_VALUE, der2, len2);
    for (int i = 0; i < 16; i++) {
        unsigned v = 0;

        assert_int_equal(
            sscanf(kv_fake_version(fake, "cmk", 1) + 2 * i, "%2x", &v), 1);
        id2[i] = (uint8_t)v;
    }
    id = get(s, h[0], CKA_ID, &n);
    assert_int_equal(n, 16);
    assert_memory_equal(id, id2, 16);
    free(id);
    (void)akv_session_close(s);
}

/* Concurrent searches while every search refetches the certificate
 * (key_refresh_s 0): never two certificate objects, never none once shown,
 * and the rotation to a renewed certificate in the middle is seen. */
#define N_CERT_THREADS 4
#define N_CERT_ROUNDS  40

static void *cert_finder(void *arg)
{
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_OBJECT_HANDLE h[4];
    long bad = 0;

    (void)arg;
    if (akv_session_open(0, CKF_SERIAL_SESSION, &s) != CKR_OK) {
        return (void *)1;
    }
    for (int i = 0; i < N_CERT_ROUNDS; i++) {
        CK_ULONG n = 0;

        if (akv_object_find_init(s, &t, 1) != CKR_OK
            || akv_object_find(s, h, 4, &n) != CKR_OK
            || akv_object_find_final(s) != CKR_OK || n != 1) {
            bad++;
        }
    }
    (void)akv_session_close(s);
    return (void *)bad;
}

static void test_vault_certificate_threads(void **state)
{
    pthread_t th[N_CERT_THREADS];
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE h[4];
    size_t len = 0;
    long bad = 0;

    (void)state;
    assert_non_null(kv_fake_add_cert(fake, "cmk", NULL, &len));
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 1);
    for (int i = 0; i < N_CERT_THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, cert_finder, NULL), 0);
    }
    for (int i = 0; i < N_CERT_THREADS; i++) {
        void *r = NULL;

        pthread_join(th[i], &r);
        bad += (long)r;
    }
    assert_int_equal(bad, 0);
    assert_int_equal(find(s, CKO_CERTIFICATE, h), 1);
    (void)akv_session_close(s);
}

/* A certificate that is not one: refused by akv_cert_obj_new. */
static void test_cert_obj_bad_der(void **state)
{
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    struct akv_obj *o = NULL;
    size_t der_len = 0;
    const uint8_t *der;
    uint8_t *longer;

    (void)state;
    assert_int_equal(akv_cert_obj_new(junk, sizeof(junk), "cmk",
                                      "0123456789abcdef0123456789abcdef", &o),
                     CKR_DEVICE_ERROR);
    assert_null(o);
    der = kv_fake_add_cert(fake, "cmk", NULL, &der_len);
    assert_non_null(der);
    /* trailing bytes after the certificate */
    longer = malloc(der_len + 1);
    memcpy(longer, der, der_len);
    longer[der_len] = 0;
    assert_int_equal(akv_cert_obj_new(longer, der_len + 1, "cmk",
                                      "0123456789abcdef0123456789abcdef", &o),
                     CKR_DEVICE_ERROR);
    assert_int_equal(akv_cert_obj_new(der, der_len, "cmk",
                                      "0123456789abcdef0123456789abcdef", &o),
                     CKR_OK);
    assert_non_null(o);
    akv_obj_unref(o);
    free(longer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vault_certificate_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_vault_certificate_denied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_vault_certificate_renewed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_vault_certificate_threads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cert_obj_bad_der, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
