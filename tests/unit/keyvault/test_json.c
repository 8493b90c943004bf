/* SPDX-License-Identifier: Apache-2.0 */
/* keyvault/json.c on answers shaped like keyvault-protocol.md §1.6, §3, §4
 * and on broken ones (wrong types, missing fields, non-base64url, huge
 * numbers, truncation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <malloc.h>

#include "common/b64url.h"
#include "keyvault/json.h"
#include "keyvault/jwk.h"

/* P-256 base point (SEC 2 §2.4.2), base64url */
#define P256_GX "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY"
#define P256_GY "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"

/* 256-byte modulus 0xc1 0x02 0x03 ... and e = 65537 */
static char n_b64[400];
static char n_b64_zero[400]; /* with a leading 0x00 */
static uint8_t n_raw[256];

static int setup(void **state)
{
    uint8_t z[257];
    (void)state;

    for (int i = 0; i < 256; i++) {
        n_raw[i] = (uint8_t)(i + 1);
    }
    n_raw[0] = 0xc1;
    akv_b64url_encode(n_raw, 256, n_b64, sizeof(n_b64));
    z[0] = 0;
    memcpy(z + 1, n_raw, 256);
    akv_b64url_encode(z, 257, n_b64_zero, sizeof(n_b64_zero));
    return 0;
}

static CK_RV bundle(const char *json, struct akv_kv_key *k)
{
    return akv_json_parse_key_bundle(json, strlen(json), k);
}

static void test_key_bundle_rsa(void **state)
{
    char json[2048];
    struct akv_kv_key k;
    (void)state;

    snprintf(json, sizeof(json),
             "{\"key\":{\"kid\":\"https://myvault.vault.azure.net/keys/kek1/"
             "0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7\","
             "\"kty\":\"RSA-HSM\",\"key_ops\":[\"wrapKey\",\"unwrapKey\","
             "\"import\"],\"n\":\"%s\",\"e\":\"AQAB\"},"
             "\"attributes\":{\"enabled\":true,\"created\":1717000000,"
             "\"updated\":1717000001,\"exp\":1900000000,"
             "\"recoveryLevel\":\"Recoverable+Purgeable\","
             "\"recoverableDays\":90,\"hsmPlatform\":\"2\"},"
             "\"tags\":{\"app\":\"p11\"},\"managed\":false,"
             "\"release_policy\":{\"data\":\"x\"}}",
             n_b64);
    assert_int_equal(bundle(json, &k), CKR_OK);
    assert_string_equal(k.kid, "https://myvault.vault.azure.net/keys/kek1/"
                               "0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7");
    assert_string_equal(k.name, "kek1");
    assert_string_equal(k.version, "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7");
    assert_int_equal(k.kty, AKV_KV_KTY_RSA);
    assert_string_equal(k.kty_name, "RSA-HSM");
    assert_int_equal(k.key_ops, AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY);
    assert_int_equal(k.n_len, 256);
    assert_memory_equal(k.n, n_raw, 256);
    assert_int_equal(k.e_len, 3);
    assert_memory_equal(k.e, "\x01\x00\x01", 3);
    assert_true(k.enabled);
    assert_int_equal(k.created, 1717000000);
    assert_int_equal(k.updated, 1717000001);
    assert_int_equal(k.exp, 1900000000);
    assert_int_equal(k.nbf, 0);
    {
        struct akv_kv_key c;
        assert_int_equal(akv_kv_key_copy(&c, &k), CKR_OK);
        assert_ptr_not_equal(c.n, k.n);
        assert_memory_equal(c.n, k.n, 256);
        assert_string_equal(c.kid, k.kid);
        akv_kv_key_clear(&c);
        assert_null(c.n);
    }
    akv_kv_key_clear(&k);
    assert_null(k.n);
    assert_int_equal(k.n_len, 0);
}

static void test_key_bundle_leading_zero_and_defaults(void **state)
{
    char json[2048];
    struct akv_kv_key k;
    (void)state;

    /* leading 0x00 stripped; no key_ops = all ops; no attributes =
     * enabled; disabled flag honoured in the second case */
    snprintf(json, sizeof(json),
             "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/k/"
             "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
             "\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}}",
             n_b64_zero);
    assert_int_equal(bundle(json, &k), CKR_OK);
    assert_int_equal(k.n_len, 256);
    assert_int_equal(k.n[0], 0xc1);
    assert_int_equal(k.key_ops, 0x3f);
    assert_true(k.enabled);
    akv_kv_key_clear(&k);

    snprintf(json, sizeof(json),
             "{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/k/"
             "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
             "\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"key_ops\":[]},"
             "\"attributes\":{\"enabled\":false,\"nbf\":1}}",
             n_b64);
    assert_int_equal(bundle(json, &k), CKR_OK);
    assert_false(k.enabled);
    assert_int_equal(k.key_ops, 0);
    assert_int_equal(k.nbf, 1);
    akv_kv_key_clear(&k);
}

static void test_key_bundle_other_types(void **state)
{
    struct akv_kv_key k;
    (void)state;

    assert_int_equal(
        bundle("{\"key\":{\"kid\":\"https://h.managedhsm.azure.net/keys/aes/"
               "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"oct-HSM\",\"key_"
               "ops\":[\"wrapKey\"],"
               "\"key_size\":256}}",
               &k),
        CKR_OK);
    assert_int_equal(k.kty, AKV_KV_KTY_OCT_HSM);
    assert_int_equal(k.oct_bits, 256);
    assert_null(k.n);
    akv_kv_key_clear(&k);

    assert_int_equal(
        bundle("{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/ec/"
               "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
               "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_GX "\","
               "\"y\":\"" P256_GY "\"}}",
               &k),
        CKR_OK);
    assert_int_equal(k.kty, AKV_KV_KTY_EC);
    assert_string_equal(k.kty_name, "EC");
    assert_string_equal(k.crv, "P-256");
    assert_int_equal(k.ec_len, 32);
    assert_int_equal(k.ec_x[0], 0x6b);
    assert_int_equal(k.ec_y[31], 0xf5);
    akv_kv_key_clear(&k);

    /* a kty this module does not know: shown as such, no material read */
    assert_int_equal(
        bundle("{\"key\":{\"kid\":\"https://v.vault.azure.net/keys/ok/"
               "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"}}",
               &k),
        CKR_OK);
    assert_int_equal(k.kty, AKV_KV_KTY_OTHER);
    akv_kv_key_clear(&k);
}

static void test_key_bundle_broken(void **state)
{
    char json[2048];
    struct akv_kv_key k;
    static const char *const bad[] = {
        "", "null", "[]", "{}", "{\"key\":[]}",
        "{\"key\":{\"kty\":\"RSA\"}}",           /* no kid */
        "{\"key\":{\"kid\":5,\"kty\":\"RSA\"}}", /* kid not string */
        /* base identifier (no version) */
        "{\"key\":{\"kid\":\"https://v/keys/k\",\"kty\":\"OKP\"}}",
        /* wrong collection */
        "{\"key\":{\"kid\":\"https://v/secrets/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
        "\"kty\":\"OKP\"}}",
        /* too many segments */
        "{\"key\":{\"kid\":\"https://v/keys/k/0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7/"
        "2\","
        "\"kty\":\"OKP\"}}",
        /* version not 32 hex digits */
        "{\"key\":{\"kid\":\"https://v/keys/k/abc\",\"kty\":\"OKP\"}}",
        /* name with a character Key Vault refuses */
        "{\"key\":{\"kid\":\"https://v/keys/k_x/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
        "\"kty\":\"OKP\"}}",
        /* EC without crv, unknown crv, short or missing coordinate */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"EC\","
        "\"x\":\"" P256_GX "\",\"y\":\"" P256_GY "\"}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"EC\","
        "\"crv\":\"P-255\",\"x\":\"" P256_GX "\",\"y\":\"" P256_GY "\"}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"EC\","
        "\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"" P256_GY "\"}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"EC-HSM\","
        "\"crv\":\"P-384\",\"x\":\"" P256_GX "\"}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\"}}", /* no kty */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA\","
        "\"e\":\"AQAB\"}}", /* RSA without n */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA\","
        "\"n\":\"AQAB\"}}", /* RSA without e */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA\","
        "\"n\":\"AQ+B\",\"e\":\"AQAB\"}}", /* standard base64 */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA\","
        "\"n\":\"AAAA\",\"e\":\"AQAB\"}}", /* all-zero modulus */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA\","
        "\"n\":\"AQAB\",\"e\":\"AQABAQABAQABAQAB\"}}", /* e > 8 bytes */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\","
        "\"key_ops\":\"sign\"}}", /* key_ops not array */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\","
        "\"key_ops\":[1]}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"},"
        "\"attributes\":{\"enabled\":\"yes\"}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"},"
        "\"attributes\":{\"exp\":\"1700000000\"}}", /* IntDate as string */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"},"
        "\"attributes\":{\"exp\":1e300}}", /* huge */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"},"
        "\"attributes\":{\"created\":1493937.61}}", /* fractional (§1.9) */
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"},"
        "\"attributes\":{\"nbf\":-5}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"},"
        "\"attributes\":7}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":"
        "\"AVeryLongKeyTypeName\"}}",
        "{\"key\":{\"kid\":\"https://v/keys/k/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"OKP\"}", /* cut */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&k, 0xa5, sizeof(k));
        if (bundle(bad[i], &k) != CKR_DEVICE_ERROR) {
            fail_msg("accepted bad[%zu]: %s", i, bad[i]);
        }
        assert_null(k.n);
        assert_int_equal(k.kid[0], 0);
    }
    /* modulus above 8192 bits */
    {
        uint8_t big[1100];
        char txt[1500];
        memset(big, 0x7f, sizeof(big));
        akv_b64url_encode(big, sizeof(big), txt, sizeof(txt));
        snprintf(json, sizeof(json),
                 "{\"key\":{\"kid\":\"https://v/keys/k/"
                 "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA\","
                 "\"n\":\"%s\",\"e\":\"AQAB\"}}",
                 txt);
        assert_int_equal(bundle(json, &k), CKR_DEVICE_ERROR);
    }
    /* NULL / oversize input */
    assert_int_equal(akv_json_parse_key_bundle(NULL, 0, &k), CKR_DEVICE_ERROR);
    assert_int_equal(akv_json_parse_key_bundle("{}", 2, NULL),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(
        akv_json_parse_key_bundle("{}", AKV_JSON_MAX_BYTES + 1, &k),
        CKR_DEVICE_ERROR);
}

/* Get Certificate answers (certificates.json CertificateBundle): "cer" is
 * standard base64 (with '+', '/' and padding), kid a versioned key id. */
static void test_cert_bundle(void **state)
{
    /* DER bytes fb ff bf 3e 00 encode to "+/+/PgA=" (both '+' and '/') */
    static const uint8_t want[] = {0xfb, 0xff, 0xbf, 0x3e, 0x00};
    const char *ok =
        "{\"id\":\"https://v.vault.azure.net/certificates/c1/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kid\":\"https://"
        "v.vault.azure.net/keys/c1/0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7\","
        "\"x5t\":\"abc\",\"cer\":\"+/+/PgA=\",\"attributes\":{}}";
    const char *bad[] = {
        "{\"kid\":\"https://v/keys/c1/0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\"}",
        "{\"cer\":\"+/+/PgA=\"}",
        "{\"kid\":\"https://v/keys/c1\",\"cer\":\"+/+/PgA=\"}",
        "{\"kid\":\"https://v/certificates/c1/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"cer\":\"+/+/PgA=\"}",
        "{\"kid\":\"https://v/keys/c1/0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
        "\"cer\":\"\"}",
        "{\"kid\":\"https://v/keys/c1/0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
        "\"cer\":\"*notbase64*\"}",
        "{\"kid\":\"https://v/keys/c1/0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
        "\"cer\":42}",
        "[]",
    };
    struct akv_kv_cert c;
    (void)state;

    assert_int_equal(akv_json_parse_cert_bundle(ok, strlen(ok), &c), CKR_OK);
    assert_string_equal(c.name, "c1");
    assert_string_equal(c.version, "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7");
    assert_int_equal(c.der_len, sizeof(want));
    assert_memory_equal(c.der, want, sizeof(want));
    akv_kv_cert_clear(&c);
    assert_null(c.der);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(akv_json_parse_cert_bundle(bad[i], strlen(bad[i]), &c),
                         CKR_DEVICE_ERROR);
        assert_null(c.der);
    }
    assert_int_equal(akv_json_parse_cert_bundle(ok, strlen(ok), NULL),
                     CKR_ARGUMENTS_BAD);
}

static void test_key_op_result(void **state)
{
    struct akv_secret v = AKV_SECRET_INIT;
    char kid[AKV_KV_KID_MAX];
    const char *ok =
        "{\"kid\":\"https://myvault.vault.azure.net/keys/kek1/"
        "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\","
        "\"value\":\"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc\"}";
    (void)state;

    assert_int_equal(akv_json_parse_key_op_result(ok, strlen(ok), kid, &v),
                     CKR_OK);
    assert_string_equal(kid, "https://myvault.vault.azure.net/keys/kek1/"
                             "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7");
    assert_int_equal(v.len, 32);
    for (size_t i = 0; i < 32; i++) {
        assert_int_equal(v.data[i], 7);
    }
    akv_secret_clear(&v);

    /* padded base64url accepted; kid optional */
    assert_int_equal(
        akv_json_parse_key_op_result("{\"value\":\"Zg==\"}", 16, kid, &v),
        CKR_OK);
    assert_string_equal(kid, "");
    assert_int_equal(v.len, 1);
    akv_secret_clear(&v);

    {
        static const char *const bad[] = {
            "{\"kid\":\"x\"}",              /* no value */
            "{\"value\":\"\"}",             /* empty */
            "{\"value\":\"a+b/\"}",         /* standard base64 */
            "{\"value\":\"Zh\"}",           /* non-canonical */
            "{\"value\":5}",                /* number */
            "{\"value\":\"Zg\",\"kid\":7}", /* kid wrong type */
            "{\"value\":[\"Zg\"]}",
            "\"Zg\"",
            "{\"value\":\"Zg\"",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            if (akv_json_parse_key_op_result(bad[i], strlen(bad[i]), kid, &v)
                != CKR_DEVICE_ERROR) {
                fail_msg("accepted bad[%zu]: %s", i, bad[i]);
            }
            assert_null(v.data);
            assert_string_equal(kid, "");
        }
    }
}

static void test_error_envelope(void **state)
{
    struct akv_json_error e;
    const char *kv = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"The "
                     "user, group or application 'appid=x' does not have keys "
                     "unwrapKey permission.\\r\\nMore\",\"innererror\":{"
                     "\"code\":\"AccessDenied\"}}}";
    const char *aad = "{\"error\":\"invalid_client\",\"error_description\":"
                      "\"AADSTS7000215: Invalid client secret provided.\\r\\n"
                      "Trace ID: x\",\"error_codes\":[7000215]}";
    (void)state;

    assert_int_equal(akv_json_parse_error(kv, strlen(kv), &e), 0);
    assert_string_equal(e.code, "Forbidden");
    assert_string_equal(e.inner, "AccessDenied");
    assert_string_equal(e.message, "The user, group or application 'appid=x' "
                                   "does not have keys unwrapKey permission.");
    assert_int_equal(akv_json_parse_error(aad, strlen(aad), &e), 0);
    assert_string_equal(e.code, "invalid_client");
    assert_string_equal(e.inner, "");
    assert_string_equal(e.message,
                        "AADSTS7000215: Invalid client secret provided.");
    {
        const char *no_inner = "{\"error\":{\"code\":\"KeyNotFound\"}}";
        assert_int_equal(akv_json_parse_error(no_inner, strlen(no_inner), &e),
                         0);
        assert_string_equal(e.code, "KeyNotFound");
        assert_string_equal(e.message, "");
    }
    assert_int_equal(akv_json_parse_error("<html>", 6, &e), -1);
    assert_string_equal(e.code, "");
    assert_int_equal(akv_json_parse_error("{\"error\":5}", 11, &e), -1);
    assert_int_equal(akv_json_parse_error(NULL, 0, &e), -1);
    {
        /* control characters and overlong codes are made safe for one log
         * line */
        char big[600];
        snprintf(big, sizeof(big),
                 "{\"error\":{\"code\":\"%0200d\",\"message\":\"a\\u0007b\"}}",
                 0);
        assert_int_equal(akv_json_parse_error(big, strlen(big), &e), 0);
        assert_int_equal(strlen(e.code), sizeof(e.code) - 1);
        /* kept as sent: the log formatter escapes it (test_log.c) */
        assert_string_equal(e.message, "a\ab");
    }
}

static void test_token_responses(void **state)
{
    struct akv_secret t = AKV_SECRET_INIT;
    int64_t exp = 0;
    int64_t life = 0;
    const char *entra =
        "{\"token_type\":\"Bearer\",\"expires_in\":3599,"
        "\"ext_expires_in\":3599,\"access_token\":\"eyJ0.a.b\"}";
    const char *imds = "{\"access_token\":\"eyJ0.c.d\",\"refresh_token\":\"\","
                       "\"expires_in\":\"3599\",\"expires_on\":\"1506484173\","
                       "\"not_before\":\"1506480273\",\"resource\":"
                       "\"https://vault.azure.net\",\"token_type\":\"Bearer\"}";
    const char *appsvc = "{\"access_token\":\"eyJ0.e.f\",\"expires_on\":"
                         "\"1000600\",\"resource\":\"https://vault.azure.net\","
                         "\"token_type\":\"Bearer\",\"client_id\":\"x\"}";
    (void)state;

    assert_int_equal(
        akv_json_parse_token(entra, strlen(entra), 1000, &t, &exp, &life),
        CKR_OK);
    assert_string_equal((char *)t.data, "eyJ0.a.b");
    assert_int_equal(life, 3599);
    assert_int_equal(exp, 1000 + 3599);
    assert_int_equal(
        akv_json_parse_token(imds, strlen(imds), 1000, &t, &exp, &life),
        CKR_OK);
    assert_string_equal((char *)t.data, "eyJ0.c.d");
    assert_int_equal(life, 3599);
    assert_int_equal(
        akv_json_parse_token(appsvc, strlen(appsvc), 1000000, &t, &exp, &life),
        CKR_OK);
    assert_int_equal(life, 600);
    assert_int_equal(exp, 1000600);
    akv_secret_clear(&t);

    {
        static const char *const bad[] = {
            "{\"expires_in\":10}",                       /* no token */
            "{\"access_token\":\"\",\"expires_in\":10}", /* empty */
            "{\"access_token\":5,\"expires_in\":10}",
            "{\"access_token\":\"a\"}", /* no expiry */
            "{\"access_token\":\"a\",\"expires_in\":\"ten\"}",
            "{\"access_token\":\"a\",\"expires_in\":\"-5\"}",
            "{\"access_token\":\"a\",\"expires_in\":0}",
            "{\"access_token\":\"a\",\"expires_in\":1e300}",
            "{\"access_token\":\"a\",\"expires_in\":99999999999999999999}",
            "{\"access_token\":\"a\",\"expires_in\":\"99999999999999999999\"}",
            "{\"access_token\":\"a\",\"expires_in\":1.5}",
            "{\"access_token\":\"a\",\"expires_on\":\"999\"}", /* past */
            "{\"access_token\":\"a b\",\"expires_in\":10}",    /* space */
            "{\"access_token\":\"a\\r\\nX-Evil: 1\",\"expires_in\":10}",
            "{\"access_token\":\"a\",\"expires_in\":10,\"token_type\":\"pop\"}",
            "{\"access_token\":\"a\",\"expires_in\":10,\"token_type\":1}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            if (akv_json_parse_token(bad[i], strlen(bad[i]), 1000, &t, &exp,
                                     &life)
                != CKR_DEVICE_ERROR) {
                fail_msg("accepted bad[%zu]: %s", i, bad[i]);
            }
            assert_null(t.data);
        }
    }
}

static void test_build_key_op(void **state)
{
    struct akv_secret b = AKV_SECRET_INIT;
    uint8_t dek[32];
    (void)state;

    memset(dek, 7, sizeof(dek));
    assert_int_equal(
        akv_json_build_key_op(AKV_KV_ALG_RSA_OAEP_256, dek, 32, &b), CKR_OK);
    /* protocol.md §1.6 example, byte for byte */
    assert_string_equal((char *)b.data,
                        "{\"alg\":\"RSA-OAEP-256\",\"value\":"
                        "\"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc\"}");
    assert_int_equal(b.len, strlen((char *)b.data));
    assert_int_equal(
        akv_json_build_key_op(AKV_KV_ALG_RSA1_5, (const uint8_t *)"f", 1, &b),
        CKR_OK);
    assert_string_equal((char *)b.data,
                        "{\"alg\":\"RSA1_5\",\"value\":\"Zg\"}");
    assert_int_equal(akv_json_build_key_op(AKV_KV_ALG_COUNT, dek, 32, &b),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_json_build_key_op(AKV_KV_ALG_RSA_OAEP, NULL, 3, &b),
                     CKR_ARGUMENTS_BAD);
    akv_secret_clear(&b);
}

/* KeyCreateParameters (Key Vault REST "Create Key") as keygen sends them. */
static void test_build_create_key(void **state)
{
    struct akv_kv_create rsa = {"RSA-HSM",
                                3072,
                                65537,
                                NULL,
                                AKV_KV_OP_SIGN | AKV_KV_OP_VERIFY
                                    | AKV_KV_OP_DECRYPT,
                                true};
    struct akv_kv_create ec = {"EC", 0, 0, "P-256K", AKV_KV_OP_SIGN, true};
    struct akv_kv_create none = {NULL, 0, 0, NULL, 0, false};
    char *out = NULL;

    (void)state;
    assert_int_equal(akv_json_build_create_key(&rsa, &out), CKR_OK);
    assert_string_equal(out, "{\"kty\":\"RSA-HSM\",\"key_size\":3072,"
                             "\"public_exponent\":65537,\"key_ops\":"
                             "[\"decrypt\",\"sign\",\"verify\"]}");
    free(out);
    assert_int_equal(akv_json_build_create_key(&ec, &out), CKR_OK);
    assert_string_equal(out, "{\"kty\":\"EC\",\"crv\":\"P-256K\",\"key_ops\":"
                             "[\"sign\"]}");
    free(out);
    assert_int_equal(akv_json_build_create_key(&none, &out), CKR_ARGUMENTS_BAD);
}

/* Encrypt / decrypt bodies (keys.json KeyOperationsParameters): iv, aad,
 * tag only when given, each base64url without padding. */
static void test_build_crypt(void **state)
{
    struct akv_secret b = AKV_SECRET_INIT;
    uint8_t iv[16];
    uint8_t tag[16];
    struct akv_kv_crypt_in in;
    (void)state;

    memset(iv, 0, sizeof(iv));
    memset(tag, 0xff, sizeof(tag));
    memset(&in, 0, sizeof(in));
    in.value = (const uint8_t *)"f";
    in.value_len = 1;
    in.iv = iv;
    in.iv_len = 16;
    assert_int_equal(akv_json_build_crypt(AKV_KV_ALG_A256CBCPAD, &in, &b),
                     CKR_OK);
    assert_string_equal((char *)b.data,
                        "{\"alg\":\"A256CBCPAD\",\"value\":\"Zg\",\"iv\":"
                        "\"AAAAAAAAAAAAAAAAAAAAAA\"}");
    assert_int_equal(b.len, strlen((char *)b.data));
    in.iv_len = 12;
    in.aad = (const uint8_t *)"header";
    in.aad_len = 6;
    in.tag = tag;
    in.tag_len = 16;
    assert_int_equal(akv_json_build_crypt(AKV_KV_ALG_A128GCM, &in, &b), CKR_OK);
    assert_string_equal((char *)b.data,
                        "{\"alg\":\"A128GCM\",\"value\":\"Zg\",\"iv\":"
                        "\"AAAAAAAAAAAAAAAA\",\"aad\":\"aGVhZGVy\",\"tag\":"
                        "\"_____________________w\"}");
    assert_int_equal(b.len, strlen((char *)b.data));
    in.tag_len = 17;
    assert_int_equal(akv_json_build_crypt(AKV_KV_ALG_A128GCM, &in, &b),
                     CKR_ARGUMENTS_BAD);
    in.tag_len = 16;
    in.value_len = 0;
    assert_int_equal(akv_json_build_crypt(AKV_KV_ALG_A128GCM, &in, &b),
                     CKR_ARGUMENTS_BAD);
    in.value_len = 65537;
    assert_int_equal(akv_json_build_crypt(AKV_KV_ALG_A128GCM, &in, &b),
                     CKR_ARGUMENTS_BAD);
    in.value_len = 1;
    in.aad = NULL;
    assert_int_equal(akv_json_build_crypt(AKV_KV_ALG_A128GCM, &in, &b),
                     CKR_ARGUMENTS_BAD);
    akv_secret_clear(&b);
}

static void test_kid_and_alg(void **state)
{
    /* kid parsing is common/kvid.c's (tests/unit/common/test_kvid.c) */
    (void)state;

    for (int a = 0; a < AKV_KV_ALG_COUNT; a++) {
        assert_non_null(akv_kv_alg_name((enum akv_kv_alg)a));
        assert_int_equal(akv_kv_alg_parse(akv_kv_alg_name((enum akv_kv_alg)a)),
                         a);
    }
    assert_string_equal(akv_kv_alg_name(AKV_KV_ALG_RSA_OAEP_256),
                        "RSA-OAEP-256");
    assert_null(akv_kv_alg_name(AKV_KV_ALG_COUNT));
    assert_int_equal(akv_kv_alg_parse("rsa-oaep"), -1);
    assert_int_equal(akv_kv_alg_parse(NULL), -1);
}

/* keyvault/jwk.c at its bounds: what Key Vault can hold passes, one step
 * beyond does not. */
static void test_jwk_bounds(void **state)
{
    static const struct {
        size_t bits;   /* modulus size */
        const char *e; /* exponent bytes */
        size_t e_len;
        bool even; /* make the modulus even */
        CK_RV rv;
    } t[] = {
        {2048, "\x01\x00\x01", 3, false, CKR_OK},
        {3072, "\x01\x00\x01", 3, false, CKR_OK},
        {4096, "\x01\x00\x01", 3, false, CKR_OK},
        {2048, "\x03", 1, false, CKR_OK},
        {2048, "\x00\x03", 2, false, CKR_OK}, /* leading zero */
        {2048, "\xff\xff\xff\xff", 4, false, CKR_OK},
        {2047, "\x01\x00\x01", 3, false, CKR_DEVICE_ERROR},
        {4097, "\x01\x00\x01", 3, false, CKR_DEVICE_ERROR},
        {1024, "\x01\x00\x01", 3, false, CKR_DEVICE_ERROR},
        {8, "\x01\x00\x01", 3, false, CKR_DEVICE_ERROR},
        {2048, "\x01\x00\x01", 3, true, CKR_DEVICE_ERROR},
        {2048, "\x01", 1, false, CKR_DEVICE_ERROR},
        {2048, "\x00", 1, false, CKR_DEVICE_ERROR},
        {2048, "\x02", 1, false, CKR_DEVICE_ERROR},
        {2048, "\x01\x00\x00", 3, false, CKR_DEVICE_ERROR},
        {2048, "\x01\x00\x00\x00\x01", 5, false, CKR_DEVICE_ERROR},
    };
    uint8_t n[520];
    char why[160];
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct akv_kv_key k;
        size_t len = (t[i].bits + 7) / 8;
        unsigned top = (unsigned)(t[i].bits - (len - 1) * 8); /* 1..8 */

        memset(&k, 0, sizeof(k));
        memset(n, 0xa5, len);
        n[0] = (uint8_t)(1u << (top - 1)) | (top > 1 ? 1 : 0);
        n[len - 1] = t[i].even ? 0xa4 : 0xa5;
        k.kty = AKV_KV_KTY_RSA;
        k.n = n;
        k.n_len = len;
        k.e = (uint8_t *)(uintptr_t)t[i].e;
        k.e_len = t[i].e_len;
        if (akv_jwk_check(&k, why, sizeof(why)) != t[i].rv) {
            fail_msg("row %zu (%zu bits, e %zu bytes): expected 0x%lx (%s)", i,
                     t[i].bits, t[i].e_len, (unsigned long)t[i].rv, why);
        }
        if (t[i].rv != CKR_OK) {
            assert_true(why[0] != '\0');
        }
    }
    /* EC: curve and coordinate length must agree; oct-HSM has no public
     * material to check */
    {
        struct akv_kv_key k;
        memset(&k, 0, sizeof(k));
        k.kty = AKV_KV_KTY_EC;
        memcpy(k.crv, "P-521", 6);
        k.ec_len = 32;
        assert_int_equal(akv_jwk_check(&k, why, sizeof(why)), CKR_DEVICE_ERROR);
        k.kty = AKV_KV_KTY_OCT_HSM;
        assert_int_equal(akv_jwk_check(&k, why, sizeof(why)), CKR_OK);
        assert_int_equal(akv_jwk_check(NULL, why, sizeof(why)),
                         CKR_ARGUMENTS_BAD);
    }
}

/* cJSON frees through these hooks in this test only: each freed block is
 * searched for MARK (the base64url of a plaintext), so a secret string
 * left in a freed tree is seen (cJSON_Delete does not cleanse). */
#define MARK "UExBSU5URVhUX09GX0FfUkVNT1RFX0RFQ1JZUFQ"
static int marked_frees;

static void marked_free(void *p)
{
    if (p != NULL) {
        size_t n = malloc_usable_size(p);

        if (n >= strlen(MARK) && memmem(p, n, MARK, strlen(MARK)) != NULL) {
            marked_frees++;
        }
    }
    free(p);
}

/* A decrypt answer's "value" is plaintext: no copy of it may reach free()
 * uncleansed, whichever parser read the body (key op result or the
 * AES iv/tag extras). */
static void test_crypt_answer_wiped(void **state)
{
    cJSON_Hooks h = {malloc, marked_free};
    cJSON_Hooks plain = {NULL, NULL};
    const char *answer = "{\"kid\":\"\",\"value\":\"" MARK "\","
                         "\"iv\":\"AAAAAAAAAAAAAAAA\","
                         "\"tag\":\"AAAAAAAAAAAAAAAAAAAAAA\"}";
    struct akv_kv_crypt_out extra;
    struct akv_secret v = AKV_SECRET_INIT;
    char kid[AKV_KV_KID_MAX];
    (void)state;

    cJSON_InitHooks(&h);
    marked_frees = 0;
    assert_int_equal(
        akv_json_parse_key_op_result(answer, strlen(answer), kid, &v), CKR_OK);
    assert_int_equal(akv_json_parse_crypt_extra(answer, strlen(answer), &extra),
                     CKR_OK);
    assert_int_equal(extra.iv_len, 12);
    assert_int_equal(extra.tag_len, 16);
    cJSON_InitHooks(&plain);
    assert_int_equal(marked_frees, 0);
    akv_secret_clear(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwk_bounds),
        cmocka_unit_test(test_key_bundle_rsa),
        cmocka_unit_test(test_key_bundle_leading_zero_and_defaults),
        cmocka_unit_test(test_key_bundle_other_types),
        cmocka_unit_test(test_key_bundle_broken),
        cmocka_unit_test(test_key_op_result),
        cmocka_unit_test(test_error_envelope),
        cmocka_unit_test(test_token_responses),
        cmocka_unit_test(test_build_key_op),
        cmocka_unit_test(test_build_create_key),
        cmocka_unit_test(test_build_crypt),
        cmocka_unit_test(test_kid_and_alg),
        cmocka_unit_test(test_cert_bundle),
        cmocka_unit_test(test_crypt_answer_wiped),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
