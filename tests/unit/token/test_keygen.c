/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C_GenerateKeyPair and C_DestroyObject of vault keys (token/keygen.h,
 * token/created.h, README "Creating keys") against kv_fake: the template
 * rules of v3.0 §5.14 / Current Mechanisms §2.1.4 and §2.3.5; local session
 * key pairs on every curve sign and verify (checked by OpenSSL too) and go
 * with their session; a vault key is created only with allow_create, with
 * the parameters and key_ops the templates ask for, never over an existing
 * name, shows at once and - through the created-keys catalog - in the next
 * "process" (slot finalize + init); C_DestroyObject deletes it only with
 * allow_delete.
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
#include <openssl/x509.h>

#include "common/config.h"
#include "include/pkcs11/akv-pkcs11.h"
#include "kv_fake.h"
#include "token/cipher.h"
#include "token/keygen.h"
#include "token/object.h"
#include "token/session.h"
#include "token/sign.h"
#include "token/slot.h"

#define ALL_OPS                                                                \
    (AKV_KV_OP_ENCRYPT | AKV_KV_OP_DECRYPT | AKV_KV_OP_WRAPKEY                 \
     | AKV_KV_OP_UNWRAPKEY | AKV_KV_OP_SIGN | AKV_KV_OP_VERIFY)

static struct kv_fake *fake;
static char store_dir[64];

static CK_RV factory(const struct akv_token_config *tc, struct akv_kv **out)
{
    (void)tc;
    *out = kv_fake_kv(fake);
    return CKR_OK;
}

/* The token's configuration with EXTRA ("" or ",\"k\":v...") added. */
static void init_token(const char *extra)
{
    char json[1024];
    struct akv_config *cfg = NULL;
    char err[256] = "";

    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"
             "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"}],"
             "\"credential\":{\"type\":\"managed_identity\"},\"sign\":true,"
             "\"store_dir\":\"%s\"%s}]}",
             store_dir, extra);
    if (akv_config_parse(json, strlen(json), "test", &cfg, err, sizeof(err))
        != 0) {
        fail_msg("config: %s", err);
    }
    assert_int_equal(akv_slot_init(cfg, factory), CKR_OK);
}

static int setup(void **state)
{
    (void)state;
    snprintf(store_dir, sizeof(store_dir), "/tmp/akv-kg-XXXXXX");
    assert_non_null(mkdtemp(store_dir));
    fake = kv_fake_new();
    kv_fake_add_rsa(fake, "cmk", ALL_OPS);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    (void)akv_slot_finalize();
    kv_fake_free(fake);
    fake = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", store_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static CK_SESSION_HANDLE open_session(bool rw)
{
    CK_SESSION_HANDLE h = 0;

    assert_int_equal(
        akv_session_open(0, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), &h),
        CKR_OK);
    return h;
}

static CK_ULONG count_label(CK_SESSION_HANDLE s, const char *label)
{
    CK_ATTRIBUTE t = {CKA_LABEL, (void *)label, strlen(label)};
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n = 0;

    assert_int_equal(akv_object_find_init(s, &t, 1), CKR_OK);
    assert_int_equal(akv_object_find(s, h, 8, &n), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    return n;
}

static CK_BBOOL tr = CK_TRUE;
static CK_BBOOL fa = CK_FALSE;
static CK_ULONG bits2048 = 2048;
static CK_ULONG bits3072 = 3072;
static CK_ULONG bits1024 = 1024;
static CK_BYTE e65537[] = {1, 0, 1};
static CK_BYTE e_even[] = {1, 0, 0};
static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                         0xce, 0x3d, 0x03, 0x01, 0x07};
static CK_BYTE p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static CK_BYTE p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static CK_BYTE k256[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
static CK_BYTE p224[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21};
static CK_BYTE named[] = {0x13, 0x0a, 'p', 'r', 'i', 'm',
                          'e',  '2',  '5', '6', 'v', '1'}; /* PrintableString */

#define A(t, v)                                                                \
    {                                                                          \
        t, (void *)&(v), sizeof(v)                                             \
    }
#define L(t, s)                                                                \
    {                                                                          \
        t, (void *)(s), sizeof(s) - 1                                          \
    } /* a string, no NUL */

static CK_MECHANISM rsa_gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
static CK_MECHANISM ec_gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};

/* v3.0 §5.14 / Current Mechanisms §2.1.4, §2.3.5: each bad template gets
 * its code before any key is made (no vault call, no object). */
static void test_templates(void **state)
{
    CK_SESSION_HANDLE s, ro;
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    CK_ULONG one = 1;
    CK_OBJECT_CLASS seckey = CKO_SECRET_KEY;
    CK_KEY_TYPE ktec = CKK_EC;
    CK_MECHANISM aes = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM withp = {CKM_RSA_PKCS_KEY_PAIR_GEN, &one, sizeof(one)};
    CK_ATTRIBUTE rsa_ok[] = {A(CKA_MODULUS_BITS, bits2048)};
    CK_ATTRIBUTE rsa_none[] = {A(CKA_VERIFY, tr)};
    CK_ATTRIBUTE rsa_1024[] = {A(CKA_MODULUS_BITS, bits1024)};
    CK_ATTRIBUTE rsa_even[] = {A(CKA_MODULUS_BITS, bits2048),
                               A(CKA_PUBLIC_EXPONENT, e_even)};
    CK_ATTRIBUTE rsa_cls[] = {A(CKA_MODULUS_BITS, bits2048),
                              A(CKA_CLASS, seckey)};
    CK_ATTRIBUTE rsa_kt[] = {A(CKA_MODULUS_BITS, bits2048),
                             A(CKA_KEY_TYPE, ktec)};
    CK_ATTRIBUTE rsa_tok[] = {A(CKA_MODULUS_BITS, bits2048), A(CKA_TOKEN, tr)};
    CK_ATTRIBUTE ec_224[] = {A(CKA_EC_PARAMS, p224)};
    CK_ATTRIBUTE ec_named[] = {A(CKA_EC_PARAMS, named)};
    CK_ATTRIBUTE ec_ok[] = {A(CKA_EC_PARAMS, p256)};
    CK_ATTRIBUTE priv_bits[] = {A(CKA_MODULUS_BITS, bits2048)};
    CK_ATTRIBUTE priv_dec[] = {A(CKA_DECRYPT, tr)};
    CK_ATTRIBUTE priv_tok[] = {A(CKA_TOKEN, tr), L(CKA_LABEL, "NEWKEY")};
    const struct {
        CK_MECHANISM *m;
        CK_ATTRIBUTE *pt;
        CK_ULONG pn;
        CK_ATTRIBUTE *kt;
        CK_ULONG kn;
        CK_RV want;
    } cases[] = {
        {&aes, rsa_ok, 1, NULL, 0, CKR_MECHANISM_INVALID},
        {&withp, rsa_ok, 1, NULL, 0, CKR_MECHANISM_PARAM_INVALID},
        {&rsa_gen, rsa_none, 1, NULL, 0, CKR_TEMPLATE_INCOMPLETE},
        {&rsa_gen, rsa_1024, 1, NULL, 0, CKR_ATTRIBUTE_VALUE_INVALID},
        {&rsa_gen, rsa_even, 2, NULL, 0, CKR_ATTRIBUTE_VALUE_INVALID},
        {&rsa_gen, rsa_cls, 2, NULL, 0, CKR_TEMPLATE_INCONSISTENT},
        {&rsa_gen, rsa_kt, 2, NULL, 0, CKR_TEMPLATE_INCONSISTENT},
        /* a token public key with a session private key: nowhere to be */
        {&rsa_gen, rsa_tok, 2, NULL, 0, CKR_TEMPLATE_INCONSISTENT},
        {&rsa_gen, rsa_ok, 1, priv_bits, 1, CKR_ATTRIBUTE_TYPE_INVALID},
        {&ec_gen, rsa_ok, 1, NULL, 0, CKR_TEMPLATE_INCOMPLETE},
        {&ec_gen, ec_224, 1, NULL, 0, CKR_CURVE_NOT_SUPPORTED},
        {&ec_gen, ec_named, 1, NULL, 0, CKR_ATTRIBUTE_VALUE_INVALID},
        /* EC keys sign and verify only */
        {&ec_gen, ec_ok, 1, priv_dec, 1, CKR_TEMPLATE_INCONSISTENT},
        /* allow_create is off in this configuration */
        {&rsa_gen, rsa_ok, 1, priv_tok, 2, CKR_TEMPLATE_INCONSISTENT},
    };

    (void)state;
    init_token("");
    s = open_session(true);
    ro = open_session(false);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CK_RV rv = akv_keygen_pair(s, cases[i].m, cases[i].pt, cases[i].pn,
                                   cases[i].kt, cases[i].kn, &pub, &priv);
        if (rv != cases[i].want) {
            fail_msg("case %zu: rv 0x%lx, want 0x%lx", i, (unsigned long)rv,
                     (unsigned long)cases[i].want);
        }
    }
    /* v3.0 §5.7.1: no token object from a R/O session. */
    assert_int_equal(
        akv_keygen_pair(ro, &rsa_gen, rsa_ok, 1, priv_tok, 2, &pub, &priv),
        CKR_SESSION_READ_ONLY);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CREATE), 0);
    assert_int_equal(count_label(s, "NEWKEY"), 0);
}

/* OpenSSL's verdict on SIG (PKCS#11 form) over MSG with the public key of
 * object PUB (CKA_PUBLIC_KEY_INFO). */
static int ossl_verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
                       const char *md, const uint8_t *msg, size_t len,
                       const uint8_t *sig, size_t sig_len, bool ec)
{
    uint8_t der[1024];
    const unsigned char *p = der;
    CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, der, sizeof(der)};
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char *dsig = NULL;
    size_t dlen = sig_len;
    int ok;

    assert_int_equal(akv_object_get_attrs(s, pub, &a, 1), CKR_OK);
    k = d2i_PUBKEY(NULL, &p, (long)a.ulValueLen);
    assert_non_null(k);
    if (ec) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)sig_len / 2, NULL);
        BIGNUM *sv = BN_bin2bn(sig + sig_len / 2, (int)sig_len / 2, NULL);
        int l;

        ECDSA_SIG_set0(es, r, sv);
        l = i2d_ECDSA_SIG(es, &dsig);
        dlen = (size_t)l;
        ECDSA_SIG_free(es);
    }
    ok = EVP_DigestVerifyInit(c, NULL, EVP_get_digestbyname(md), NULL, k) == 1
         && EVP_DigestVerify(c, dsig != NULL ? dsig : sig, dlen, msg, len) == 1;
    OPENSSL_free(dsig);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    return ok;
}

/* CKA_TOKEN FALSE: a local pair on each curve and RSA signs (locally: no
 * vault call), verifies, is checked by OpenSSL and leaves with its
 * session. */
static void test_session_pairs(void **state)
{
    static const uint8_t msg[] = "a session key pair signs locally";
    static const struct {
        CK_BYTE *oid;
        size_t oid_len;
        CK_MECHANISM_TYPE sign;
        const char *md;
        size_t sig_len;
    } ecs[] = {
        {p256, sizeof(p256), CKM_ECDSA_SHA256, "SHA256", 64},
        {p384, sizeof(p384), CKM_ECDSA_SHA384, "SHA384", 96},
        {p521, sizeof(p521), CKM_ECDSA_SHA512, "SHA512", 132},
        {k256, sizeof(k256), CKM_ECDSA_SHA256, "SHA256", 64},
    };
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    uint8_t sig[512];
    CK_ULONG sig_len;
    CK_BBOOL b[4];
    CK_ATTRIBUTE q[] = {{CKA_TOKEN, &b[0], 1},
                        {CKA_LOCAL, &b[1], 1},
                        {CKA_ALWAYS_SENSITIVE, &b[2], 1},
                        {CKA_NEVER_EXTRACTABLE, &b[3], 1}};
    CK_ATTRIBUTE pe = {CKA_PRIVATE_EXPONENT, sig, sizeof(sig)};

    (void)state;
    init_token("");
    s = open_session(false); /* session objects need no R/W session */
    kv_fake_reset_calls(fake);
    for (size_t i = 0; i < sizeof(ecs) / sizeof(ecs[0]); i++) {
        CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, ecs[i].oid, ecs[i].oid_len},
                             L(CKA_LABEL, "sess")};
        CK_MECHANISM m = {ecs[i].sign, NULL, 0};

        assert_int_equal(
            akv_keygen_pair(s, &ec_gen, pt, 2, NULL, 0, &pub, &priv), CKR_OK);
        assert_int_equal(akv_sign_init(s, &m, priv), CKR_OK);
        sig_len = sizeof(sig);
        assert_int_equal(akv_sign(s, msg, sizeof(msg), sig, &sig_len), CKR_OK);
        assert_int_equal(sig_len, ecs[i].sig_len);
        assert_int_equal(akv_verify_init(s, &m, pub), CKR_OK);
        assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, sig_len), CKR_OK);
        assert_true(ossl_verify(s, pub, ecs[i].md, msg, sizeof(msg), sig,
                                sig_len, true));
    }
    {
        CK_ATTRIBUTE pt[] = {A(CKA_MODULUS_BITS, bits2048),
                             A(CKA_PUBLIC_EXPONENT, e65537),
                             L(CKA_LABEL, "sess")};
        CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
        CK_MECHANISM ms[] = {{CKM_SHA256_RSA_PKCS, NULL, 0},
                             {CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof(pss)}};

        assert_int_equal(
            akv_keygen_pair(s, &rsa_gen, pt, 3, NULL, 0, &pub, &priv), CKR_OK);
        for (size_t i = 0; i < 2; i++) {
            assert_int_equal(akv_sign_init(s, &ms[i], priv), CKR_OK);
            sig_len = sizeof(sig);
            assert_int_equal(akv_sign(s, msg, sizeof(msg), sig, &sig_len),
                             CKR_OK);
            assert_int_equal(sig_len, 256);
            assert_int_equal(akv_verify_init(s, &ms[i], pub), CKR_OK);
            assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, sig_len),
                             CKR_OK);
            sig[7] ^= 1;
            assert_int_equal(akv_verify_init(s, &ms[i], pub), CKR_OK);
            assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, sig_len),
                             CKR_SIGNATURE_INVALID);
            sig[7] ^= 1;
            if (i == 0) {
                assert_true(ossl_verify(s, pub, "SHA256", msg, sizeof(msg), sig,
                                        sig_len, false));
            }
        }
        {
            /* A copy of the private key signs like the original. */
            CK_OBJECT_HANDLE cp = 0;

            assert_int_equal(akv_object_copy(s, priv, NULL, 0, &cp), CKR_OK);
            assert_int_equal(akv_sign_init(s, &ms[0], cp), CKR_OK);
            sig_len = sizeof(sig);
            assert_int_equal(akv_sign(s, msg, sizeof(msg), sig, &sig_len),
                             CKR_OK);
            assert_int_equal(akv_verify_init(s, &ms[0], pub), CKR_OK);
            assert_int_equal(akv_verify(s, msg, sizeof(msg), sig, sig_len),
                             CKR_OK);
            assert_int_equal(akv_object_destroy(s, cp), CKR_OK);
        }
        assert_int_equal(akv_object_get_attrs(s, priv, q, 4), CKR_OK);
        assert_int_equal(b[0], CK_FALSE);
        assert_int_equal(b[1], CK_TRUE);
        assert_int_equal(b[2], CK_TRUE);
        assert_int_equal(b[3], CK_TRUE);
        assert_int_equal(akv_object_get_attrs(s, priv, &pe, 1),
                         CKR_ATTRIBUTE_SENSITIVE);
    }
    {
        /* RSA encrypt (public) / decrypt (private), both local. */
        CK_ATTRIBUTE pt[] = {A(CKA_MODULUS_BITS, bits2048), A(CKA_ENCRYPT, tr)};
        CK_ATTRIBUTE kt[] = {A(CKA_DECRYPT, tr)};
        CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256,
                                        CKZ_DATA_SPECIFIED, NULL, 0};
        CK_MECHANISM mo = {CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep)};
        uint8_t ct[256];
        uint8_t pt2[256];
        CK_ULONG ct_len = sizeof(ct);
        CK_ULONG pt_len = sizeof(pt2);

        assert_int_equal(
            akv_keygen_pair(s, &rsa_gen, pt, 2, kt, 1, &pub, &priv), CKR_OK);
        assert_int_equal(akv_cipher_encrypt_init(s, &mo, pub), CKR_OK);
        assert_int_equal(akv_cipher_encrypt(s, msg, sizeof(msg), ct, &ct_len),
                         CKR_OK);
        assert_int_equal(ct_len, 256);
        assert_int_equal(akv_cipher_decrypt_init(s, &mo, priv), CKR_OK);
        assert_int_equal(akv_cipher_decrypt(s, ct, ct_len, pt2, &pt_len),
                         CKR_OK);
        assert_int_equal(pt_len, sizeof(msg));
        assert_memory_equal(pt2, msg, sizeof(msg));
    }
    assert_int_equal(
        kv_fake_calls(fake, KV_FAKE_SIGN | KV_FAKE_CREATE | KV_FAKE_UNWRAP), 0);
    /* the labels were given to the public keys only: 5 of them */
    assert_int_equal(count_label(s, "sess"), 5);
    assert_int_equal(akv_session_close(s), CKR_OK);
    s = open_session(false);
    assert_int_equal(count_label(s, "sess"), 0);
}

/* CKA_TOKEN TRUE with allow_create: Key Vault Create Key with the
 * templates' parameters; the objects show at once and in the next
 * process; an existing name is refused; a 403 is the error table's. */
static void test_vault_create(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    CK_ATTRIBUTE pt[] = {A(CKA_MODULUS_BITS, bits3072), A(CKA_TOKEN, tr),
                         A(CKA_ENCRYPT, fa)};
    CK_ATTRIBUTE kt[] = {A(CKA_TOKEN, tr), L(CKA_LABEL, "NEWKEY"),
                         A(CKA_DECRYPT, tr), A(CKA_AKV_HSM, tr)};
    CK_ATTRIBUTE dup[] = {A(CKA_TOKEN, tr), L(CKA_LABEL, "cmk")};
    CK_ATTRIBUTE other[] = {A(CKA_TOKEN, tr), L(CKA_LABEL, "OTHER")};
    CK_ATTRIBUTE withid[] = {A(CKA_TOKEN, tr), L(CKA_LABEL, "IDKEY"),
                             A(CKA_ID, e65537)};
    const struct akv_kv_create *cr = NULL;
    char name[32];
    CK_ATTRIBUTE an = {CKA_AKV_KEY_NAME, name, sizeof(name)};
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    uint8_t sig[512];
    CK_ULONG sig_len = sizeof(sig);

    (void)state;
    init_token(",\"allow_create\":true");
    s = open_session(true);
    assert_int_equal(akv_keygen_pair(s, &rsa_gen, pt, 3, kt, 4, &pub, &priv),
                     CKR_OK);
    cr = kv_fake_last_create(fake);
    assert_non_null(cr);
    assert_string_equal(cr->kty, "RSA-HSM");
    assert_int_equal(cr->bits, 3072);
    assert_int_equal(cr->exp, 65537);
    assert_true(cr->new_only);
    assert_int_equal(cr->key_ops,
                     AKV_KV_OP_SIGN | AKV_KV_OP_VERIFY | AKV_KV_OP_DECRYPT);
    assert_int_equal(akv_object_get_attrs(s, priv, &an, 1), CKR_OK);
    assert_int_equal(an.ulValueLen, 6);
    assert_memory_equal(name, "NEWKEY", 6);
    assert_int_equal(count_label(s, "NEWKEY"), 2);
    /* It signs in the vault (the fake's Sign). */
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_sign_init(s, &m, priv), CKR_OK);
    assert_int_equal(akv_sign(s, (const CK_BYTE *)"x", 1, sig, &sig_len),
                     CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_SIGN), 1);
    /* Never a new version of an existing key. */
    assert_int_equal(akv_keygen_pair(s, &rsa_gen, pt, 2, dup, 2, &pub, &priv),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_string_equal(kv_fake_version(fake, "cmk", 1) == NULL ? "one" : "two",
                        "one");
    /* The vault decides CKA_ID (the version). */
    assert_int_equal(
        akv_keygen_pair(s, &rsa_gen, pt, 2, withid, 3, &pub, &priv),
        CKR_TEMPLATE_INCONSISTENT);
    /* An identity without keys/create: the error table's code. */
    kv_fake_fail(fake, KV_FAKE_CREATE, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_keygen_pair(s, &rsa_gen, pt, 2, other, 2, &pub, &priv),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    kv_fake_fail(fake, 0, CKR_OK);
    assert_int_equal(count_label(s, "OTHER"), 0);
    /* The next process finds it through the created-keys catalog. */
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    init_token(",\"allow_create\":true");
    s = open_session(false);
    assert_int_equal(count_label(s, "NEWKEY"), 2);
}

/* C_DestroyObject of a vault key: refused without allow_delete; with it,
 * Key Vault Delete Key and every object of the key goes, here and in the
 * next process. Secret/session objects are unaffected (other tests). */
static void test_vault_delete(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    CK_ATTRIBUTE pt[] = {A(CKA_MODULUS_BITS, bits2048), A(CKA_TOKEN, tr)};
    CK_ATTRIBUTE kt[] = {A(CKA_TOKEN, tr), L(CKA_LABEL, "DELME")};
    CK_BBOOL d = CK_TRUE;
    CK_ATTRIBUTE da = {CKA_DESTROYABLE, &d, 1};

    (void)state;
    init_token(",\"allow_create\":true");
    s = open_session(true);
    assert_int_equal(akv_keygen_pair(s, &rsa_gen, pt, 2, kt, 2, &pub, &priv),
                     CKR_OK);
    assert_int_equal(akv_object_get_attrs(s, priv, &da, 1), CKR_OK);
    assert_int_equal(d, CK_FALSE);
    assert_int_equal(akv_object_destroy(s, priv), CKR_ACTION_PROHIBITED);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_DELETE), 0);
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    init_token(",\"allow_create\":true,\"allow_delete\":true");
    s = open_session(true);
    assert_int_equal(count_label(s, "DELME"), 2);
    {
        CK_OBJECT_CLASS c = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE t[] = {A(CKA_CLASS, c), L(CKA_LABEL, "DELME")};
        CK_ULONG n = 0;

        assert_int_equal(akv_object_find_init(s, t, 2), CKR_OK);
        assert_int_equal(akv_object_find(s, &priv, 1, &n), CKR_OK);
        assert_int_equal(akv_object_find_final(s), CKR_OK);
        assert_int_equal(n, 1);
    }
    d = CK_FALSE;
    assert_int_equal(akv_object_get_attrs(s, priv, &da, 1), CKR_OK);
    assert_int_equal(d, CK_TRUE);
    assert_int_equal(akv_object_destroy(open_session(false), priv),
                     CKR_SESSION_READ_ONLY);
    assert_int_equal(akv_object_destroy(s, priv), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_DELETE), 1);
    assert_int_equal(count_label(s, "DELME"), 0);
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    init_token(",\"allow_delete\":true");
    s = open_session(false);
    assert_int_equal(count_label(s, "DELME"), 0);
    assert_int_equal(count_label(s, "cmk"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vault_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vault_delete, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
