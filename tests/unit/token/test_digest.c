/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token/digest.c and CKM_AES_CTR in token/cipher.c against kv_fake:
 * FIPS 180-4 / FIPS 202 known answers for every digest mechanism,
 * multi-part equal to single-part, length queries, short buffers and the
 * operation rules (v3.0 §5.12); C_DigestKey on a session key, on a token
 * object (value unwrapped by the vault) and the keys it refuses; AES-CTR
 * with NIST SP 800-38A F.5 vectors and the counter wrap of ulCounterBits
 * (Current Mechanisms v3.0 §2.14); the mechanism list entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "common/config.h"
#include "include/pkcs11/akv-pkcs11.h"
#include "kv_fake.h"
#include "token/cipher.h"
#include "token/digest.h"
#include "token/mech.h"
#include "token/object.h"
#include "token/session.h"
#include "token/slot.h"

#define ALL_OPS                                                                \
    (AKV_KV_OP_ENCRYPT | AKV_KV_OP_DECRYPT | AKV_KV_OP_WRAPKEY                 \
     | AKV_KV_OP_UNWRAPKEY)

static struct kv_fake *fake;
static char store_dir[64];

static CK_RV factory(const struct akv_token_config *tc, struct akv_kv **out)
{
    (void)tc;
    *out = kv_fake_kv(fake);
    return CKR_OK;
}

static int setup(void **state)
{
    char json[512];
    struct akv_config *cfg = NULL;
    char err[256] = "";

    (void)state;
    fake = kv_fake_new();
    kv_fake_add_rsa(fake, "cmk", ALL_OPS);
    snprintf(store_dir, sizeof(store_dir), "/tmp/akv-dig-XXXXXX");
    if (mkdtemp(store_dir) == NULL) {
        return -1;
    }
    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"test-token\",\"vault_url\":"
             "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"}],"
             "\"credential\":{\"type\":\"managed_identity\"},"
             "\"key_refresh_s\":3600,\"store_dir\":\"%s\"}]}",
             store_dir);
    if (akv_config_parse(json, strlen(json), "test", &cfg, err, sizeof(err))
        != 0) {
        fail_msg("config: %s", err);
    }
    return akv_slot_init(cfg, factory) == CKR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    (void)akv_slot_finalize();
    kv_fake_free(fake);
    fake = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", store_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static CK_SESSION_HANDLE open_session(void)
{
    CK_SESSION_HANDLE h = 0;

    assert_int_equal(
        akv_session_open(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, &h), CKR_OK);
    return h;
}

static void unhex(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = strlen(hex) / 2;

    for (size_t i = 0; i < n; i++) {
        unsigned v;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    *len = n;
}

/* A session AES key with VALUE; SENSITIVE as given, extractable. */
static CK_OBJECT_HANDLE create_aes(CK_SESSION_HANDLE s, const uint8_t *value,
                                   CK_ULONG len, CK_BBOOL sensitive)
{
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ULONG kt = CKK_AES;
    CK_BBOOL tr = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_VALUE, (void *)value, len},
                        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
                        {CKA_EXTRACTABLE, &tr, sizeof(tr)}};
    CK_OBJECT_HANDLE h = 0;

    assert_int_equal(akv_object_create(s, t, 5, &h), CKR_OK);
    return h;
}

/* ---- digests ---- */

/* FIPS 180-4 / FIPS 202 examples (NIST CSRC "Example Values"): "abc". */
static const struct {
    CK_MECHANISM_TYPE mech;
    const char *abc;
} kat[] = {
    {CKM_SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {CKM_SHA224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
    {CKM_SHA256,
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {CKM_SHA384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5"
                 "bed8086072ba1e7cc2358baeca134c825a7"},
    {CKM_SHA512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d"
                 "39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa5"
                 "4ca49f"},
    {CKM_SHA512_224,
     "4634270f707b6a54daae7530460842e20e37ed265ceee9a43e8924aa"},
    {CKM_SHA512_256,
     "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"},
    {CKM_SHA3_224, "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"},
    {CKM_SHA3_256,
     "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"},
    {CKM_SHA3_384, "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e4"
                   "9be4b298d88cea927ac7f539f1edf228376d25"},
    {CKM_SHA3_512, "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240"
                   "d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f"
                   "8274eec53f0"},
};

static void test_digest_known_answers(void **state)
{
    CK_SESSION_HANDLE s;
    uint8_t want[64];
    uint8_t out[80];
    size_t wlen;
    CK_ULONG len;
    CK_MECHANISM_INFO info;
    /* FIPS 180-4 two-block message (SHA-256) and the empty message
     * (SHA3-256). */
    static const char two[] =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    (void)state;
    s = open_session();
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        CK_MECHANISM m = {kat[i].mech, NULL, 0};

        unhex(kat[i].abc, want, &wlen);
        assert_int_equal(akv_digest_len(kat[i].mech), wlen);
        assert_int_equal(akv_mech_get_info(kat[i].mech, &info), CKR_OK);
        assert_int_equal(info.flags, CKF_DIGEST);
        assert_int_equal(info.ulMinKeySize, 0);
        assert_int_equal(info.ulMaxKeySize, 0);

        /* Single part. */
        assert_int_equal(akv_digest_init(s, &m), CKR_OK);
        len = sizeof(out);
        assert_int_equal(akv_digest(s, (CK_BYTE *)"abc", 3, out, &len), CKR_OK);
        assert_int_equal(len, wlen);
        assert_memory_equal(out, want, wlen);

        /* Multi part equals single part (an empty update too). */
        assert_int_equal(akv_digest_init(s, &m), CKR_OK);
        assert_int_equal(akv_digest_update(s, (CK_BYTE *)"a", 1), CKR_OK);
        assert_int_equal(akv_digest_update(s, NULL, 0), CKR_OK);
        assert_int_equal(akv_digest_update(s, (CK_BYTE *)"bc", 2), CKR_OK);
        len = sizeof(out);
        memset(out, 0, sizeof(out));
        assert_int_equal(akv_digest_final(s, out, &len), CKR_OK);
        assert_int_equal(len, wlen);
        assert_memory_equal(out, want, wlen);
        assert_int_equal(akv_digest_final(s, out, &len),
                         CKR_OPERATION_NOT_INITIALIZED);
    }
    {
        CK_MECHANISM m = {CKM_SHA256, NULL, 0};

        unhex(
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            want, &wlen);
        assert_int_equal(akv_digest_init(s, &m), CKR_OK);
        len = sizeof(out);
        assert_int_equal(akv_digest(s, (CK_BYTE *)two, strlen(two), out, &len),
                         CKR_OK);
        assert_memory_equal(out, want, 32);
    }
    {
        CK_MECHANISM m = {CKM_SHA3_256, NULL, 0};

        unhex(
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
            want, &wlen);
        assert_int_equal(akv_digest_init(s, &m), CKR_OK);
        len = sizeof(out);
        assert_int_equal(akv_digest(s, NULL, 0, out, &len), CKR_OK);
        assert_memory_equal(out, want, 32);
    }
}

static void test_digest_rules(void **state)
{
    CK_SESSION_HANDLE s;
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    uint8_t param[4] = {0};
    CK_MECHANISM with_param = {CKM_SHA256, param, sizeof(param)};
    uint8_t want[32];
    uint8_t out[64];
    size_t wlen;
    CK_ULONG len;
    uint8_t key[16] = {1, 2, 3};
    CK_OBJECT_HANDLE k;

    (void)state;
    s = open_session();
    unhex(kat[2].abc, want, &wlen);
    /* Wrong mechanisms and parameters. */
    assert_int_equal(akv_digest_init(s, &ecb), CKR_MECHANISM_INVALID);
    assert_int_equal(akv_digest_init(s, &with_param),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"a", 1),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(akv_digest_init(0x7fffffff, &sha),
                     CKR_SESSION_HANDLE_INVALID);

    /* One digest operation per session. */
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OPERATION_ACTIVE);

    /* Length query and a short buffer keep the operation. */
    len = 0;
    assert_int_equal(akv_digest(s, (CK_BYTE *)"abc", 3, NULL, &len), CKR_OK);
    assert_int_equal(len, 32);
    len = 31;
    assert_int_equal(akv_digest(s, (CK_BYTE *)"abc", 3, out, &len),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 32);
    /* Waiting for the retry: no switching to multi-part. */
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"a", 1),
                     CKR_OPERATION_ACTIVE);
    assert_int_equal(akv_digest_final(s, out, &len), CKR_OPERATION_ACTIVE);
    len = 32;
    assert_int_equal(akv_digest(s, (CK_BYTE *)"abc", 3, out, &len), CKR_OK);
    assert_memory_equal(out, want, 32);
    assert_int_equal(akv_digest(s, (CK_BYTE *)"abc", 3, out, &len),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* A digest runs beside an encryption in the same session. */
    k = create_aes(s, key, 16, CK_FALSE);
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, k), CKR_OK);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"ab", 2), CKR_OK);
    /* Single-part after an update: refused, the operation stays. */
    len = sizeof(out);
    assert_int_equal(akv_digest(s, (CK_BYTE *)"c", 1, out, &len),
                     CKR_OPERATION_ACTIVE);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"c", 1), CKR_OK);
    len = 0;
    assert_int_equal(akv_digest_final(s, NULL, &len), CKR_OK);
    assert_int_equal(len, 32);
    len = 8;
    assert_int_equal(akv_digest_final(s, out, &len), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 32);
    len = sizeof(out);
    assert_int_equal(akv_digest_final(s, out, &len), CKR_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(out, want, 32);
    /* The encryption is still active. */
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, key, 16, out, &len), CKR_OK);

    /* A NULL pointer ends the operation (v3.0 §5.12 / §5.1). */
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest(s, (CK_BYTE *)"abc", 3, out, NULL),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"a", 1),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_update(s, NULL, 3), CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_digest_final(s, out, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_final(s, out, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_digest_final(s, out, &len),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* Closing the session with a digest active frees it (ASan/LSan). */
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"a", 1), CKR_OK);
    assert_int_equal(akv_session_close(s), CKR_OK);
}

static void test_digest_key(void **state)
{
    static const uint8_t key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae,
                                    0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88,
                                    0x09, 0xcf, 0x4f, 0x3c};
    CK_SESSION_HANDLE s;
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len32 = 32;
    CK_BBOOL tr = CK_TRUE;
    CK_BBOOL fa = CK_FALSE;
    CK_ATTRIBUTE tt[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)},
                         {CKA_TOKEN, &tr, sizeof(tr)},
                         {CKA_SENSITIVE, &fa, sizeof(fa)},
                         {CKA_EXTRACTABLE, &tr, sizeof(tr)}};
    CK_OBJECT_HANDLE k;
    CK_OBJECT_HANDLE ks;
    CK_OBJECT_HANDLE tok;
    CK_OBJECT_HANDLE priv = 0;
    CK_OBJECT_CLASS pcls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE fp = {CKA_CLASS, &pcls, sizeof(pcls)};
    CK_ULONG n = 0;
    uint8_t want[32];
    uint8_t out[32];
    uint8_t value[32];
    uint8_t msg[64];
    size_t wlen;
    CK_ULONG len;
    unsigned unwraps;

    (void)state;
    s = open_session();
    k = create_aes(s, key, 16, CK_FALSE);
    /* SHA-256("abc" || key || "de"), computed by Python hashlib. */
    unhex("b9d11ae4a16c7a54d9df7e5a25e27f6dbe3e131f3f5ae6a33693aef4c861140b",
          want, &wlen);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"abc", 3), CKR_OK);
    assert_int_equal(akv_digest_key(s, k), CKR_OK);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"de", 2), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_digest_final(s, out, &len), CKR_OK);
    assert_memory_equal(out, want, 32);

    /* Not initialised; not a key handle. */
    assert_int_equal(akv_digest_key(s, k), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_key(s, 0x7ffffffe), CKR_KEY_HANDLE_INVALID);
    /* ... which ended the operation. */
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"a", 1),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* A sensitive key is indigestible (it could not be read either), and
     * the refusal ends the operation. */
    ks = create_aes(s, key, 16, CK_TRUE);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_key(s, ks), CKR_KEY_INDIGESTIBLE);
    assert_int_equal(akv_digest_final(s, out, &len),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* The vault key: its private part never leaves Key Vault. */
    assert_int_equal(akv_object_find_init(s, &fp, 1), CKR_OK);
    assert_int_equal(akv_object_find(s, &priv, 1, &n), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_key(s, priv), CKR_KEY_INDIGESTIBLE);

    /* A token object: the value is unwrapped by the vault for the digest. */
    assert_int_equal(akv_object_generate_key(s, &gen, tt, 4, &tok), CKR_OK);
    unwraps = kv_fake_calls(fake, KV_FAKE_UNWRAP);
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    assert_int_equal(akv_digest_update(s, (CK_BYTE *)"abc", 3), CKR_OK);
    assert_int_equal(akv_digest_key(s, tok), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), unwraps + 1);
    len = sizeof(out);
    assert_int_equal(akv_digest_final(s, out, &len), CKR_OK);
    {
        CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
        unsigned int dl = 0;

        assert_int_equal(akv_object_get_attrs(s, tok, &v, 1), CKR_OK);
        assert_int_equal(v.ulValueLen, 32);
        memcpy(msg, "abc", 3);
        memcpy(msg + 3, value, 32);
        assert_int_equal(EVP_Digest(msg, 35, want, &dl, EVP_sha256(), NULL), 1);
        assert_memory_equal(out, want, 32);
    }

    /* The vault refuses to unwrap (revoked key): the vault's error, and the
     * operation ends. */
    kv_fake_fail(fake, KV_FAKE_UNWRAP, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_session_close(s), CKR_OK);
    s = open_session();
    assert_int_equal(akv_digest_init(s, &sha), CKR_OK);
    /* dek_cache_ttl_s is 0 here: the vault is asked again. */
    assert_int_equal(akv_digest_key(s, tok), CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_digest_final(s, out, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
}

/* ---- AES-CTR ---- */

static CK_RV ctr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, CK_ULONG bits,
                 const uint8_t cb[16], int enc, const uint8_t *in, CK_ULONG n,
                 uint8_t *out)
{
    CK_AES_CTR_PARAMS p;
    CK_MECHANISM m = {CKM_AES_CTR, &p, sizeof(p)};
    CK_ULONG len = n;
    CK_RV rv;

    p.ulCounterBits = bits;
    memcpy(p.cb, cb, 16);
    rv = enc ? akv_cipher_encrypt_init(s, &m, k)
             : akv_cipher_decrypt_init(s, &m, k);
    assert_int_equal(rv, CKR_OK);
    rv = enc ? akv_cipher_encrypt(s, in, n, out, &len)
             : akv_cipher_decrypt(s, in, n, out, &len);
    if (rv == CKR_OK) {
        assert_int_equal(len, n);
    }
    return rv;
}

/* The keystream block E(K, CB) through CKM_AES_ECB (its own known answers
 * are in test_token). */
static void ecb_block(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k,
                      const uint8_t cb[16], uint8_t out[16])
{
    CK_MECHANISM m = {CKM_AES_ECB, NULL, 0};
    CK_ULONG len = 16;

    assert_int_equal(akv_cipher_encrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, cb, 16, out, &len), CKR_OK);
}

static void test_aes_ctr(void **state)
{
    /* NIST SP 800-38A F.5.1 (CTR-AES128) and F.5.5 (CTR-AES256). */
    static const char *k128 = "2b7e151628aed2a6abf7158809cf4f3c";
    static const char *k256 = "603deb1015ca71be2b73aef0857d7781"
                              "1f352c073b6108d72d9810a30914dff4";
    static const char *pt = "6bc1bee22e409f96e93d7e117393172a"
                            "ae2d8a571e03ac9c9eb76fac45af8e51"
                            "30c81c46a35ce411e5fbc1191a0a52ef"
                            "f69f2445df4f9b17ad2b417be66c3710";
    static const char *ct128 = "874d6191b620e3261bef6864990db6ce"
                               "9806f66b7970fdff8617187bb9fffdff"
                               "5ae4df3edbd5d35e5b4f09020db03eab"
                               "1e031dda2fbe03d1792170a0f3009cee";
    static const char *ct256 = "601ec313775789a5b7a7f504bbf3d228"
                               "f443e3ca4d62b59aca84e990cacaf5c5"
                               "2b0930daa23de94ce87017ba2d84988d"
                               "dfc9c58db67aada613c2dd08457941a6";
    uint8_t cb[16];
    uint8_t key[32];
    uint8_t p[64];
    uint8_t c[64];
    uint8_t out[4200];
    uint8_t out2[4200];
    uint8_t big[4200];
    uint8_t ks[16];
    uint8_t blk[16];
    size_t n;
    size_t klen;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    CK_OBJECT_HANDLE k2;
    CK_ULONG len;
    CK_ULONG total;
    CK_MECHANISM_INFO info;
    CK_AES_CTR_PARAMS prm;
    CK_MECHANISM m = {CKM_AES_CTR, &prm, sizeof(prm)};

    (void)state;
    assert_int_equal(akv_mech_get_info(CKM_AES_CTR, &info), CKR_OK);
    assert_int_equal(info.flags, CKF_ENCRYPT | CKF_DECRYPT);
    assert_int_equal(info.ulMinKeySize, 16);
    assert_int_equal(info.ulMaxKeySize, 32);
    s = open_session();
    unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", cb, &n);
    unhex(pt, p, &n);

    /* Single part, both key sizes, both directions. */
    unhex(k128, key, &klen);
    k = create_aes(s, key, (CK_ULONG)klen, CK_FALSE);
    unhex(ct128, c, &n);
    assert_int_equal(ctr(s, k, 128, cb, 1, p, 64, out), CKR_OK);
    assert_memory_equal(out, c, 64);
    assert_int_equal(ctr(s, k, 128, cb, 0, c, 64, out), CKR_OK);
    assert_memory_equal(out, p, 64);
    unhex(k256, key, &klen);
    k2 = create_aes(s, key, (CK_ULONG)klen, CK_FALSE);
    unhex(ct256, c, &n);
    assert_int_equal(ctr(s, k2, 128, cb, 1, p, 64, out), CKR_OK);
    assert_memory_equal(out, c, 64);

    /* Multi part in uneven pieces equals the vector; length query. */
    prm.ulCounterBits = 128;
    memcpy(prm.cb, cb, 16);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k2), CKR_OK);
    total = 0;
    for (size_t off = 0; off < 64;) {
        size_t piece = off == 0 ? 5 : (off < 40 ? 17 : 64 - off);

        len = 0;
        assert_int_equal(
            akv_cipher_decrypt_update(s, c + off, piece, NULL, &len), CKR_OK);
        assert_int_equal(len, piece);
        assert_int_equal(
            akv_cipher_decrypt_update(s, c + off, piece, out + total, &len),
            CKR_OK);
        assert_int_equal(len, piece);
        total += len;
        off += piece;
    }
    len = 0;
    assert_int_equal(akv_cipher_decrypt_final(s, NULL, &len), CKR_OK);
    assert_int_equal(len, 0);
    assert_int_equal(akv_cipher_decrypt_final(s, out + total, &len), CKR_OK);
    assert_int_equal(len, 0);
    assert_int_equal(total, 64);
    assert_memory_equal(out, p, 64);

    /* Short buffer keeps the operation; the retry gives the vector. */
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k2), CKR_OK);
    len = 63;
    assert_int_equal(akv_cipher_encrypt(s, p, 64, out, &len),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 64);
    assert_int_equal(akv_cipher_encrypt(s, p, 64, out, &len), CKR_OK);
    assert_memory_equal(out, c, 64);

    /* Parameters: 0 < ulCounterBits <= 128, exact structure size. */
    prm.ulCounterBits = 0;
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k),
                     CKR_MECHANISM_PARAM_INVALID);
    prm.ulCounterBits = 129;
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k),
                     CKR_MECHANISM_PARAM_INVALID);
    prm.ulCounterBits = 64;
    m.ulParameterLen = 16;
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k),
                     CKR_MECHANISM_PARAM_INVALID);
    m.ulParameterLen = sizeof(prm);
    m.pParameter = NULL;
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k),
                     CKR_MECHANISM_PARAM_INVALID);
    m.pParameter = &prm;

    /* ulCounterBits 8 from F.5's counter (low byte 0xff): the second block
     * uses counter 0x00 with the nonce f0..fe unchanged - not f0..fdff00 as
     * a 128-bit counter would give. */
    assert_int_equal(ctr(s, k, 8, cb, 1, p, 32, out), CKR_OK);
    unhex(ct128, c, &n);
    assert_memory_equal(out, c, 16);
    memcpy(blk, cb, 16);
    blk[15] = 0x00;
    ecb_block(s, k, blk, ks);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(out[16 + i], (uint8_t)(p[16 + i] ^ ks[i]));
    }
    assert_memory_not_equal(out + 16, c + 16, 16);

    /* 8 counter bits give 256 distinct blocks: 4096 bytes, no more. The
     * whole keystream is E(nonce || j) for j = 0xff, 0x00, ..., 0xfe. */
    memset(big, 0, sizeof(big));
    assert_int_equal(ctr(s, k, 8, cb, 1, big, 4096, out), CKR_OK);
    for (int j = 0; j < 256; j++) {
        blk[15] = (uint8_t)(0xff + j);
        ecb_block(s, k, blk, ks);
        assert_memory_equal(out + 16 * j, ks, 16);
    }
    assert_int_equal(ctr(s, k, 8, cb, 1, big, 4097, out), CKR_DATA_LEN_RANGE);
    assert_int_equal(ctr(s, k, 8, cb, 0, big, 4097, out),
                     CKR_ENCRYPTED_DATA_LEN_RANGE);
    /* Multi-part in 7-byte pieces (wrap inside a piece) equals single part,
     * and the 4097th byte is refused there too. */
    prm.ulCounterBits = 8;
    memcpy(prm.cb, cb, 16);
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k), CKR_OK);
    for (size_t off = 0; off < 4096; off += 7) {
        size_t piece = 4096 - off < 7 ? 4096 - off : 7;

        len = sizeof(out2) - off;
        assert_int_equal(
            akv_cipher_encrypt_update(s, big + off, piece, out2 + off, &len),
            CKR_OK);
        assert_int_equal(len, piece);
    }
    assert_memory_equal(out2, out, 4096);
    len = sizeof(out2);
    assert_int_equal(akv_cipher_encrypt_update(s, big, 1, out2, &len),
                     CKR_DATA_LEN_RANGE);
    len = sizeof(out2);
    assert_int_equal(akv_cipher_encrypt_final(s, out2, &len),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* 64 counter bits, counter all ones: wraps to nonce || 0^64. */
    memset(blk, 0xff, 16);
    memcpy(blk, "NONCE-64", 8);
    assert_int_equal(ctr(s, k, 64, blk, 1, big, 32, out), CKR_OK);
    ecb_block(s, k, blk, ks);
    assert_memory_equal(out, ks, 16);
    memset(blk + 8, 0, 8);
    ecb_block(s, k, blk, ks);
    assert_memory_equal(out + 16, ks, 16);

    /* 128 counter bits, all ones: wraps to 0^128. */
    memset(blk, 0xff, 16);
    assert_int_equal(ctr(s, k, 128, blk, 1, big, 32, out), CKR_OK);
    memset(blk, 0, 16);
    ecb_block(s, k, blk, ks);
    assert_memory_equal(out + 16, ks, 16);

    /* 1 counter bit: two blocks; a third is refused. */
    assert_int_equal(ctr(s, k, 1, cb, 1, big, 32, out), CKR_OK);
    assert_int_equal(ctr(s, k, 1, cb, 1, big, 33, out), CKR_DATA_LEN_RANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_digest_known_answers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_digest_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aes_ctr, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
