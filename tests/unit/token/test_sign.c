/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C_Sign* / C_Verify* (token/sign.c) against kv_fake: every RSA mechanism
 * signs through the fake vault's "Sign" and verifies locally (and with
 * OpenSSL directly), multi-part equals single-part, length queries make no
 * vault call, PSS parameters Key Vault cannot honour are refused at init,
 * a key or identity without sign is refused, CKA_ALLOWED_MECHANISMS is
 * honoured (token/mech.h akv_mech_plan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/config.h"
#include "kv_fake.h"
#include "token/cipher.h"
#include "token/object.h"
#include "token/session.h"
#include "token/sign.h"
#include "token/slot.h"

#define ALL_OPS                                                                \
    (AKV_KV_OP_ENCRYPT | AKV_KV_OP_DECRYPT | AKV_KV_OP_WRAPKEY                 \
     | AKV_KV_OP_UNWRAPKEY | AKV_KV_OP_SIGN | AKV_KV_OP_VERIFY)

static struct kv_fake *fake;

static CK_RV factory(const struct akv_token_config *tc, struct akv_kv **out)
{
    (void)tc;
    *out = kv_fake_kv(fake);
    return CKR_OK;
}

static void init_token(void)
{
    const char *json =
        "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"
        "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"},"
        "{\"name\":\"nosign\"}],\"credential\":{\"type\":"
        "\"managed_identity\"},\"sign\":true}]}";
    struct akv_config *cfg = NULL;
    char err[256] = "";

    if (akv_config_parse(json, strlen(json), "test", &cfg, err, sizeof(err))
        != 0) {
        fail_msg("config: %s", err);
    }
    assert_int_equal(akv_slot_init(cfg, factory), CKR_OK);
}

static int setup(void **state)
{
    (void)state;
    fake = kv_fake_new();
    kv_fake_add_rsa(fake, "cmk", ALL_OPS);
    kv_fake_add_rsa(fake, "nosign", ALL_OPS & ~AKV_KV_OP_SIGN);
    init_token();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    (void)akv_slot_finalize();
    kv_fake_free(fake);
    fake = NULL;
    return 0;
}

static CK_SESSION_HANDLE open_rw(void)
{
    CK_SESSION_HANDLE h = 0;

    assert_int_equal(
        akv_session_open(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, &h), CKR_OK);
    return h;
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                 const char *label)
{
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h[4];
    CK_ULONG n = 0;

    assert_int_equal(akv_object_find_init(s, t, 2), CKR_OK);
    assert_int_equal(akv_object_find(s, h, 4, &n), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    assert_int_equal(n, 1);
    return h[0];
}

/* The public key as OpenSSL sees it, from CKA_PUBLIC_KEY_INFO. */
static EVP_PKEY *pubkey_of(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub)
{
    uint8_t der[1024];
    const unsigned char *p = der;
    CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, der, sizeof(der)};
    EVP_PKEY *k = NULL;

    assert_int_equal(akv_object_get_attrs(s, pub, &a, 1), CKR_OK);
    k = d2i_PUBKEY(NULL, &p, (long)a.ulValueLen);
    assert_non_null(k);
    return k;
}

/* OpenSSL's own verdict on SIG over MSG (hashed with MD) - independent of
 * the module's verify. PSS: salt = digest length. */
static int openssl_verify(EVP_PKEY *k, const char *md, bool pss,
                          const uint8_t *msg, size_t len, const uint8_t *sig,
                          size_t sig_len)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok;

    assert_int_equal(EVP_DigestVerifyInit_ex(c, &pc, md, NULL, NULL, k, NULL),
                     1);
    if (pss) {
        assert_int_equal(
            EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    ok = EVP_DigestVerify(c, sig, sig_len, msg, len);
    EVP_MD_CTX_free(c);
    return ok;
}

static void test_rsa_mechanisms(void **state)
{
    static const uint8_t msg[] = "the quick brown fox signs with Key Vault";
    CK_RSA_PKCS_PSS_PARAMS pss256 = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_RSA_PKCS_PSS_PARAMS pss384 = {CKM_SHA384, CKG_MGF1_SHA384, 48};
    CK_RSA_PKCS_PSS_PARAMS pss512 = {CKM_SHA512, CKG_MGF1_SHA512, 64};
    const struct {
        CK_MECHANISM m;
        const char *md;
        bool pss;
    } cases[] = {
        {{CKM_SHA256_RSA_PKCS, NULL, 0}, "SHA256", false},
        {{CKM_SHA384_RSA_PKCS, NULL, 0}, "SHA384", false},
        {{CKM_SHA512_RSA_PKCS, NULL, 0}, "SHA512", false},
        {{CKM_SHA256_RSA_PKCS_PSS, &pss256, sizeof(pss256)}, "SHA256", true},
        {{CKM_SHA384_RSA_PKCS_PSS, &pss384, sizeof(pss384)}, "SHA384", true},
        {{CKM_SHA512_RSA_PKCS_PSS, &pss512, sizeof(pss512)}, "SHA512", true},
    };
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub;
    EVP_PKEY *k;
    uint8_t sig[512];
    uint8_t sig2[512];
    CK_ULONG len;
    CK_ULONG len2;

    (void)state;
    s = open_rw();
    priv = find_key(s, CKO_PRIVATE_KEY, "cmk");
    pub = find_key(s, CKO_PUBLIC_KEY, "cmk");
    k = pubkey_of(s, pub);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const CK_MECHANISM *m = &cases[i].m;

        kv_fake_reset_calls(fake);
        assert_int_equal(akv_sign_init(s, m, priv), CKR_OK);
        /* Length query and short buffer: the modulus, no vault call. */
        assert_int_equal(akv_sign(s, msg, sizeof(msg), NULL, &len), CKR_OK);
        assert_int_equal(len, 256);
        len = 10;
        assert_int_equal(akv_sign(s, msg, sizeof(msg), sig, &len),
                         CKR_BUFFER_TOO_SMALL);
        assert_int_equal(len, 256);
        assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN), 0);
        len = sizeof(sig);
        assert_int_equal(akv_sign(s, msg, sizeof(msg), sig, &len), CKR_OK);
        assert_int_equal(len, 256);
        assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN), 1);
        /* The operation ended. */
        assert_int_equal(akv_sign(s, msg, sizeof(msg), sig, &len),
                         CKR_OPERATION_NOT_INITIALIZED);
        assert_int_equal(openssl_verify(k, cases[i].md, cases[i].pss, msg,
                                        sizeof(msg), sig, len),
                         1);
        /* Multi-part hashes locally: same signature for PKCS#1 v1.5,
         * a valid one for PSS (randomised). */
        assert_int_equal(akv_sign_init(s, m, priv), CKR_OK);
        assert_int_equal(akv_sign_update(s, msg, 10), CKR_OK);
        assert_int_equal(akv_sign_update(s, msg + 10, sizeof(msg) - 10),
                         CKR_OK);
        len2 = sizeof(sig2);
        assert_int_equal(akv_sign_final(s, sig2, &len2), CKR_OK);
        assert_int_equal(len2, 256);
        if (!cases[i].pss) {
            assert_memory_equal(sig, sig2, 256);
        }
        assert_int_equal(openssl_verify(k, cases[i].md, cases[i].pss, msg,
                                        sizeof(msg), sig2, len2),
                         1);
        /* Verify locally, single and multi-part; no vault call. */
        kv_fake_reset_calls(fake);
        assert_int_equal(akv_verify_init(s, m, pub), CKR_OK);
        assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, len), CKR_OK);
        assert_int_equal(akv_verify_init(s, m, pub), CKR_OK);
        assert_int_equal(akv_verify_update(s, msg, 5), CKR_OK);
        assert_int_equal(akv_verify_update(s, msg + 5, sizeof(msg) - 5),
                         CKR_OK);
        assert_int_equal(akv_verify_final(s, sig2, len2), CKR_OK);
        sig[100] ^= 1;
        assert_int_equal(akv_verify_init(s, m, pub), CKR_OK);
        assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, len),
                         CKR_SIGNATURE_INVALID);
        assert_int_equal(akv_verify_init(s, m, pub), CKR_OK);
        assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, 255),
                         CKR_SIGNATURE_LEN_RANGE);
        assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN), 0);
    }
    EVP_PKEY_free(k);
}

/* A vault answer of the right length that is not a signature by the key
 * (another key or version, a corrupted answer) is refused with
 * CKR_DEVICE_ERROR for every mechanism shape (hash-then-sign, PSS,
 * DigestInfo, RSNULL), not handed to the caller; honest answers pass. */
static void test_sign_answer_checked(void **state)
{
    static const uint8_t msg[] = "a hostile vault signs something else";
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    uint8_t di[19 + 32] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                           0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                           0x01, 0x05, 0x00, 0x04, 0x20};
    uint8_t di1[15 + 20] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                            0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
    const struct {
        CK_MECHANISM m;
        const uint8_t *in;
        size_t len;
    } cases[] = {
        {{CKM_SHA256_RSA_PKCS, NULL, 0}, msg, sizeof(msg)},
        {{CKM_SHA384_RSA_PKCS_PSS, &pss, sizeof(pss)}, msg, sizeof(msg)},
        {{CKM_RSA_PKCS_PSS, &pss, sizeof(pss)}, di + 19, 32},
        {{CKM_RSA_PKCS, NULL, 0}, di, sizeof(di)},
        {{CKM_RSA_PKCS, NULL, 0}, di1, sizeof(di1)},
    };
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv;
    uint8_t sig[512];
    CK_ULONG len;

    (void)state;
    pss.hashAlg = CKM_SHA384;
    pss.mgf = CKG_MGF1_SHA384;
    pss.sLen = 48;
    assert_int_equal(SHA256(msg, sizeof(msg), di + 19) != NULL, 1);
    assert_int_equal(SHA1(msg, sizeof(msg), di1 + 15) != NULL, 1);
    s = open_rw();
    priv = find_key(s, CKO_PRIVATE_KEY, "cmk");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CK_MECHANISM m = cases[i].m;
        CK_RSA_PKCS_PSS_PARAMS p256 = {CKM_SHA256, CKG_MGF1_SHA256, 32};

        if (m.mechanism == CKM_RSA_PKCS_PSS) {
            m.pParameter = &p256;
        }
        kv_fake_sign_tamper(fake, 1);
        assert_int_equal(akv_sign_init(s, &m, priv), CKR_OK);
        len = sizeof(sig);
        memset(sig, 0, sizeof(sig));
        assert_int_equal(akv_sign(s, cases[i].in, cases[i].len, sig, &len),
                         CKR_DEVICE_ERROR);
        assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN) > 0, 1);
        kv_fake_sign_tamper(fake, 0);
        assert_int_equal(akv_sign_init(s, &m, priv), CKR_OK);
        len = sizeof(sig);
        assert_int_equal(akv_sign(s, cases[i].in, cases[i].len, sig, &len),
                         CKR_OK);
        assert_int_equal(len, 256);
    }
}

/* CKM_RSA_PKCS takes a DigestInfo: its OID picks RS256/384/512; the raw
 * PSS mechanism takes the hash itself. */
static void test_rsa_raw_inputs(void **state)
{
    static const uint8_t msg[] = "hash me";
    uint8_t di[19 + 64];
    uint8_t dig[64];
    unsigned dlen = 0;
    static const uint8_t sha384_prefix[19] = {
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
        0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
    uint8_t big[256] = {7};
    uint8_t sha1_di[35] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                           0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA384, CKG_MGF1_SHA384, 48};
    CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0};
    CK_MECHANISM raw_pss = {CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub;
    EVP_PKEY *k;
    uint8_t sig[512];
    CK_ULONG len = sizeof(sig);

    (void)state;
    s = open_rw();
    priv = find_key(s, CKO_PRIVATE_KEY, "cmk");
    pub = find_key(s, CKO_PUBLIC_KEY, "cmk");
    k = pubkey_of(s, pub);
    assert_int_equal(
        EVP_Digest(msg, sizeof(msg), dig, &dlen, EVP_sha384(), NULL), 1);
    memcpy(di, sha384_prefix, 19);
    memcpy(di + 19, dig, 48);
    assert_int_equal(akv_sign_init(s, &pkcs, priv), CKR_OK);
    assert_int_equal(akv_sign(s, di, 19 + 48, sig, &len), CKR_OK);
    assert_int_equal(
        openssl_verify(k, "SHA384", false, msg, sizeof(msg), sig, len), 1);
    assert_int_equal(akv_verify_init(s, &pkcs, pub), CKR_OK);
    assert_int_equal(akv_verify(s, di, 19 + 48, sig, len), CKR_OK);
    /* Multi-part is not defined for CKM_RSA_PKCS: the operation ends. */
    assert_int_equal(akv_sign_init(s, &pkcs, priv), CKR_OK);
    assert_int_equal(akv_sign_update(s, di, 10), CKR_MECHANISM_INVALID);
    assert_int_equal(akv_sign(s, di, 19 + 48, sig, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
    /* SHA-1 (no RS1 in Key Vault): RSNULL pads the DigestInfo as given,
     * so OpenSSL verifies it as a SHA-1 signature. */
    assert_int_equal(
        EVP_Digest(msg, sizeof(msg), sha1_di + 15, &dlen, EVP_sha1(), NULL), 1);
    assert_int_equal(akv_sign_init(s, &pkcs, priv), CKR_OK);
    len = sizeof(sig);
    assert_int_equal(akv_sign(s, sha1_di, sizeof(sha1_di), sig, &len), CKR_OK);
    assert_int_equal(
        openssl_verify(k, "SHA1", false, msg, sizeof(msg), sig, len), 1);
    assert_int_equal(akv_verify_init(s, &pkcs, pub), CKR_OK);
    assert_int_equal(akv_verify(s, sha1_di, sizeof(sha1_di), sig, len), CKR_OK);
    /* Longer than k - 11 or empty: refused without a vault call. */
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_sign_init(s, &pkcs, priv), CKR_OK);
    assert_int_equal(akv_sign(s, big, 246, sig, &len), CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_sign_init(s, &pkcs, priv), CKR_OK);
    assert_int_equal(akv_sign(s, big, 0, sig, &len), CKR_DATA_LEN_RANGE);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN), 0);
    assert_int_equal(akv_sign_init(s, &pkcs, priv), CKR_OK);
    len = sizeof(sig);
    assert_int_equal(akv_sign(s, big, 245, sig, &len), CKR_OK);
    assert_int_equal(akv_verify_init(s, &pkcs, pub), CKR_OK);
    assert_int_equal(akv_verify(s, big, 245, sig, len), CKR_OK);
    /* Raw PSS: the data is the SHA-384 hash. */
    assert_int_equal(akv_sign_init(s, &raw_pss, priv), CKR_OK);
    len = sizeof(sig);
    assert_int_equal(akv_sign(s, dig, 32, sig, &len), CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_sign_init(s, &raw_pss, priv), CKR_OK);
    len = sizeof(sig);
    assert_int_equal(akv_sign(s, dig, 48, sig, &len), CKR_OK);
    assert_int_equal(
        openssl_verify(k, "SHA384", true, msg, sizeof(msg), sig, len), 1);
    assert_int_equal(akv_verify_init(s, &raw_pss, pub), CKR_OK);
    assert_int_equal(akv_verify(s, dig, 48, sig, len), CKR_OK);
    EVP_PKEY_free(k);
}

/* Parameters Key Vault cannot honour, wrong key class, usage off. */
static void test_refusals(void **state)
{
    CK_RSA_PKCS_PSS_PARAMS salt20 = {CKM_SHA256, CKG_MGF1_SHA256, 20};
    CK_RSA_PKCS_PSS_PARAMS mgf = {CKM_SHA256, CKG_MGF1_SHA1, 32};
    CK_RSA_PKCS_PSS_PARAMS hash = {CKM_SHA384, CKG_MGF1_SHA384, 48};
    CK_MECHANISM m_salt = {CKM_SHA256_RSA_PKCS_PSS, &salt20, sizeof(salt20)};
    CK_MECHANISM m_mgf = {CKM_SHA256_RSA_PKCS_PSS, &mgf, sizeof(mgf)};
    CK_MECHANISM m_hash = {CKM_SHA256_RSA_PKCS_PSS, &hash, sizeof(hash)};
    CK_MECHANISM m_short = {CKM_RSA_PKCS_PSS, &salt20, 8};
    CK_MECHANISM m_param = {CKM_SHA256_RSA_PKCS, &salt20, sizeof(salt20)};
    CK_MECHANISM sha256 = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, NULL, 0};
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub;
    CK_OBJECT_HANDLE nosign;
    CK_BBOOL b = CK_TRUE;
    CK_ATTRIBUTE a = {CKA_SIGN, &b, sizeof(b)};
    uint8_t sig[512];
    CK_ULONG len = sizeof(sig);

    (void)state;
    s = open_rw();
    priv = find_key(s, CKO_PRIVATE_KEY, "cmk");
    pub = find_key(s, CKO_PUBLIC_KEY, "cmk");
    nosign = find_key(s, CKO_PRIVATE_KEY, "nosign");
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_sign_init(s, &m_salt, priv),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_sign_init(s, &m_mgf, priv),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_sign_init(s, &m_hash, priv),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_sign_init(s, &m_short, priv),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_sign_init(s, &m_param, priv),
                     CKR_MECHANISM_PARAM_INVALID);
    /* Encryption-only mechanism; signing needs the private object. */
    assert_int_equal(akv_sign_init(s, &oaep, priv), CKR_MECHANISM_INVALID);
    assert_int_equal(akv_sign_init(s, &sha256, pub), CKR_KEY_TYPE_INCONSISTENT);
    assert_int_equal(akv_verify_init(s, &sha256, priv),
                     CKR_KEY_TYPE_INCONSISTENT);
    /* key_ops without sign: CKA_SIGN FALSE. */
    assert_int_equal(akv_object_get_attrs(s, nosign, &a, 1), CKR_OK);
    assert_int_equal(b, CK_FALSE);
    assert_int_equal(akv_sign_init(s, &sha256, nosign),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN), 0);
    /* An identity without keys/sign: the vault's 403, and the operation
     * ends. */
    kv_fake_fail(fake, KV_FAKE_SIGN, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_sign_init(s, &sha256, priv), CKR_OK);
    assert_int_equal(akv_sign(s, (const CK_BYTE *)"x", 1, sig, &len),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_sign(s, (const CK_BYTE *)"x", 1, sig, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
    kv_fake_fail(fake, KV_FAKE_SIGN, CKR_OK);
    /* Wrap/unwrap on the same key are untouched by sign. */
    assert_int_equal(akv_sign_init(s, &sha256, priv), CKR_OK);
    assert_int_equal(akv_sign_init(s, &sha256, priv), CKR_OPERATION_ACTIVE);
    assert_int_equal(akv_sign(s, NULL, 5, sig, &len), CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_sign(s, (const CK_BYTE *)"x", 1, sig, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
}

/* CKA_ALLOWED_MECHANISMS (v3.0 §4.7) is checked by the plan for every
 * operation: an imported public key limited to SHA256-RSA-PKCS verifies
 * the vault's signature with it and nothing else. */
static void test_allowed_mechanisms(void **state)
{
    static const uint8_t msg[] = "allowed";
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub;
    CK_OBJECT_HANDLE imp = 0;
    uint8_t n[512];
    uint8_t e[16];
    CK_ATTRIBUTE get[2] = {{CKA_MODULUS, n, sizeof(n)},
                           {CKA_PUBLIC_EXPONENT, e, sizeof(e)}};
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_MECHANISM_TYPE allowed[1] = {CKM_SHA256_RSA_PKCS};
    CK_BBOOL tr = CK_TRUE;
    CK_MECHANISM sha256 = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_MECHANISM sha512 = {CKM_SHA512_RSA_PKCS, NULL, 0};
    CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0};
    uint8_t sig[512];
    CK_ULONG len = sizeof(sig);

    (void)state;
    s = open_rw();
    priv = find_key(s, CKO_PRIVATE_KEY, "cmk");
    pub = find_key(s, CKO_PUBLIC_KEY, "cmk");
    assert_int_equal(akv_object_get_attrs(s, pub, get, 2), CKR_OK);
    {
        CK_ATTRIBUTE t[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_KEY_TYPE, &kt, sizeof(kt)},
            {CKA_MODULUS, n, get[0].ulValueLen},
            {CKA_PUBLIC_EXPONENT, e, get[1].ulValueLen},
            {CKA_VERIFY, &tr, sizeof(tr)},
            {CKA_ENCRYPT, &tr, sizeof(tr)},
            {CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed)},
        };
        assert_int_equal(akv_object_create(s, t, 7, &imp), CKR_OK);
    }
    assert_int_equal(akv_sign_init(s, &sha256, priv), CKR_OK);
    assert_int_equal(akv_sign(s, msg, sizeof(msg), sig, &len), CKR_OK);
    assert_int_equal(akv_verify_init(s, &sha512, imp), CKR_MECHANISM_INVALID);
    assert_int_equal(akv_cipher_encrypt_init(s, &pkcs, imp),
                     CKR_MECHANISM_INVALID);
    assert_int_equal(akv_verify_init(s, &sha256, imp), CKR_OK);
    assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, len), CKR_OK);
}

/* HMAC (local) with generic-secret and AES keys: RFC 4231 test case 1
 * known answer, _GENERAL truncation, multi-part, verify, refusals. */
static void test_hmac(void **state)
{
    static const uint8_t want[32] = {
        0xb0, 0x34, 0x4c, 0x61, 0xd8, 0xdb, 0x38, 0x53, 0x5c, 0xa8, 0xaf,
        0xce, 0xaf, 0x0b, 0xf1, 0x2b, 0x88, 0x1d, 0xc2, 0x00, 0xc9, 0x83,
        0x3d, 0xa7, 0x26, 0xe9, 0x37, 0x6c, 0x2e, 0x32, 0xcf, 0xf7};
    static const uint8_t data[] = "Hi There";
    uint8_t keyv[20];
    uint8_t aesv[16] = {1, 2, 3};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE gen = CKK_GENERIC_SECRET;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL tr = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &gen, sizeof(gen)},
                        {CKA_VALUE, keyv, sizeof(keyv)},
                        {CKA_SIGN, &tr, sizeof(tr)},
                        {CKA_VERIFY, &tr, sizeof(tr)}};
    CK_ULONG mlen = 16;
    CK_ULONG badlen = 33;
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
    CK_MECHANISM gen16 = {CKM_SHA256_HMAC_GENERAL, &mlen, sizeof(mlen)};
    CK_MECHANISM gen33 = {CKM_SHA256_HMAC_GENERAL, &badlen, sizeof(badlen)};
    CK_MECHANISM h512 = {CKM_SHA512_HMAC, NULL, 0};
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k = 0;
    CK_OBJECT_HANDLE ka = 0;
    CK_OBJECT_HANDLE nosign = 0;
    uint8_t mac[64];
    uint8_t ref[64];
    unsigned ref_len = 0;
    CK_ULONG len = sizeof(mac);

    (void)state;
    memset(keyv, 0x0b, sizeof(keyv));
    s = open_rw();
    assert_int_equal(akv_object_create(s, t, 5, &k), CKR_OK);
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_sign_init(s, &hmac, k), CKR_OK);
    assert_int_equal(akv_sign(s, data, 8, NULL, &len), CKR_OK);
    assert_int_equal(len, 32);
    assert_int_equal(akv_sign(s, data, 8, mac, &len), CKR_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(mac, want, 32);
    assert_int_equal(akv_sign_init(s, &gen16, k), CKR_OK);
    len = sizeof(mac);
    assert_int_equal(akv_sign_update(s, data, 3), CKR_OK);
    assert_int_equal(akv_sign_update(s, data + 3, 5), CKR_OK);
    assert_int_equal(akv_sign_final(s, mac, &len), CKR_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(mac, want, 16);
    assert_int_equal(akv_verify_init(s, &hmac, k), CKR_OK);
    assert_int_equal(akv_verify(s, data, 8, want, 32), CKR_OK);
    assert_int_equal(akv_verify_init(s, &gen16, k), CKR_OK);
    assert_int_equal(akv_verify(s, data, 8, want, 32), CKR_SIGNATURE_LEN_RANGE);
    assert_int_equal(akv_verify_init(s, &hmac, k), CKR_OK);
    assert_int_equal(akv_verify(s, data, 7, want, 32), CKR_SIGNATURE_INVALID);
    assert_int_equal(akv_sign_init(s, &gen33, k), CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN | KV_FAKE_UNWRAP), 0);
    /* An AES key, against OpenSSL's HMAC-SHA512. */
    t[1].pValue = &aes;
    t[2].pValue = aesv;
    t[2].ulValueLen = sizeof(aesv);
    assert_int_equal(akv_object_create(s, t, 5, &ka), CKR_OK);
    assert_non_null(
        HMAC(EVP_sha512(), aesv, sizeof(aesv), data, 8, ref, &ref_len));
    assert_int_equal(akv_sign_init(s, &h512, ka), CKR_OK);
    len = sizeof(mac);
    assert_int_equal(akv_sign(s, data, 8, mac, &len), CKR_OK);
    assert_int_equal(len, 64);
    assert_memory_equal(mac, ref, 64);
    /* CKA_SIGN FALSE (the default for secret keys). */
    assert_int_equal(akv_object_create(s, t, 3, &nosign), CKR_OK);
    assert_int_equal(akv_sign_init(s, &hmac, nosign),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* A vault key is not an HMAC key. */
    assert_int_equal(
        akv_sign_init(s, &hmac, find_key(s, CKO_PRIVATE_KEY, "cmk")),
        CKR_KEY_TYPE_INCONSISTENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rsa_mechanisms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_raw_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_answer_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_allowed_mechanisms, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hmac, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
