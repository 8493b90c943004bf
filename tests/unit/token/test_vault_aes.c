/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C_Encrypt / C_Decrypt with a vault oct-HSM key, executed by Managed HSM
 * (token/vault_aes.h) against kv_fake: the Key Vault alg names
 * (akv_kv_aes_crypt_alg), CBC / CBC-PAD / GCM results checked against an
 * independent OpenSSL computation with the fake's key (kv_fake_aes), the
 * key size learnt from the HSM's answers and remembered, GCM encryption
 * refused at init, the HSM's shapes enforced, wrong tag / aad refused, a
 * session key with the same mechanism staying local, multi-part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "include/pkcs11/akv-pkcs11.h"
#include "kv_fake.h"
#include "token/cipher.h"
#include "token/object.h"
#include "token/session.h"
#include "token/slot.h"
#include "token/vault_aes.h"

static struct kv_fake *fake;

static CK_RV factory(const struct akv_token_config *tc, struct akv_kv **out)
{
    (void)tc;
    *out = kv_fake_kv(fake);
    return CKR_OK;
}

static int setup(void **state)
{
    (void)state;
    fake = kv_fake_new();
    akv_vault_aes_forget();
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

/* A token over an HSM holding oct-HSM key NAME of BITS (Get Key hiding the
 * size when HIDE) with KEY_OPS; returns a session and the key's handle. */
static CK_SESSION_HANDLE hsm(const char *name, unsigned bits, bool hide,
                             unsigned key_ops, CK_OBJECT_HANDLE *key)
{
    char json[512];
    struct akv_config *cfg = NULL;
    char err[256] = "";
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_LABEL, (void *)name, strlen(name)}};
    CK_ULONG n = 0;

    kv_fake_add_oct(fake, name, bits, key_ops);
    if (hide) {
        kv_fake_hide_size(fake, name);
    }
    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"hsm\",\"vault_url\":\"https://"
             "fake.managedhsm.azure.net\",\"keys\":[{\"name\":\"%s\"}],"
             "\"credential\":{\"type\":\"managed_identity\"}}]}",
             name);
    if (akv_config_parse(json, strlen(json), "t", &cfg, err, sizeof(err))
        != 0) {
        fail_msg("config: %s", err);
    }
    assert_int_equal(akv_slot_init(cfg, factory), CKR_OK);
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    assert_int_equal(akv_object_find_init(s, t, 2), CKR_OK);
    assert_int_equal(akv_object_find(s, key, 1, &n), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    assert_int_equal(n, 1);
    kv_fake_reset_calls(fake);
    return s;
}

#define ALL                                                                    \
    (AKV_KV_OP_ENCRYPT | AKV_KV_OP_DECRYPT | AKV_KV_OP_WRAPKEY                 \
     | AKV_KV_OP_UNWRAPKEY)

static const uint8_t iv16[16] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
                                 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
                                 0x1c, 0x1d, 0x1e, 0x1f};
static const uint8_t iv12[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const uint8_t msg[] = "forty-one bytes of data for the HSM, ok!";

/* ---- the alg names ---- */

static void test_alg_names(void **state)
{
    static const struct {
        size_t bits;
        enum akv_kv_aes_mode mode;
        const char *name;
    } rows[] = {
        {128, AKV_KV_AES_GCM, "A128GCM"},
        {192, AKV_KV_AES_GCM, "A192GCM"},
        {256, AKV_KV_AES_GCM, "A256GCM"},
        {128, AKV_KV_AES_CBC, "A128CBC"},
        {192, AKV_KV_AES_CBC, "A192CBC"},
        {256, AKV_KV_AES_CBC, "A256CBC"},
        {128, AKV_KV_AES_CBCPAD, "A128CBCPAD"},
        {192, AKV_KV_AES_CBCPAD, "A192CBCPAD"},
        {256, AKV_KV_AES_CBCPAD, "A256CBCPAD"},
    };
    enum akv_kv_alg alg = AKV_KV_ALG_RSA_OAEP;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(akv_kv_aes_crypt_alg(rows[i].bits, rows[i].mode, &alg),
                         0);
        assert_string_equal(akv_kv_alg_name(alg), rows[i].name);
        assert_int_equal(akv_kv_alg_parse(rows[i].name), (int)alg);
    }
    /* No size-free name (unlike CKM_AES_KEY_WRAP), no other sizes. */
    assert_int_equal(akv_kv_aes_crypt_alg(0, AKV_KV_AES_CBC, &alg), -1);
    assert_int_equal(akv_kv_aes_crypt_alg(64, AKV_KV_AES_GCM, &alg), -1);
    assert_int_equal(akv_kv_aes_crypt_alg(512, AKV_KV_AES_CBCPAD, &alg), -1);
    assert_int_equal(akv_kv_aes_crypt_alg(128, (enum akv_kv_aes_mode)7, &alg),
                     -1);
}

/* ---- CBC ---- */

/* CBC-PAD with a key whose size Get Key tells: one call, the A256CBCPAD
 * name, the same bytes as OpenSSL with the key, and back. */
static void test_cbc_pad_roundtrip(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, false, ALL, &k);
    CK_MECHANISM m = {CKM_AES_CBC_PAD, (void *)iv16, 16};
    uint8_t ref[64];
    uint8_t ct[64];
    uint8_t pt[64];
    CK_ULONG len = 0;
    size_t rlen;

    (void)state;
    rlen = kv_fake_aes(fake, "hsmkey", NULL, AKV_KV_AES_CBCPAD, iv16, NULL, 0,
                       msg, sizeof(msg), ref, NULL);
    assert_int_equal(rlen, 48);
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k), CKR_OK);
    /* Length query: no remote call. */
    assert_int_equal(akv_cipher_encrypt(s, msg, sizeof(msg), NULL, &len),
                     CKR_OK);
    assert_int_equal(len, 48);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
    len = sizeof(ct);
    assert_int_equal(akv_cipher_encrypt(s, msg, sizeof(msg), ct, &len), CKR_OK);
    assert_int_equal(len, 48);
    assert_memory_equal(ct, ref, 48);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 1);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_A256CBCPAD);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt(s, ct, 48, pt, &len), CKR_OK);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(pt, msg, sizeof(msg));
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 2);
}

/* Size unknown (Managed HSM's Get Key): the first operation tries 256 then
 * 128 (the HSM refuses a name of another size), the answer is kept: the
 * next operation is one call with A128CBC. A 192-bit key: three tries. */
static void test_size_learnt(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsm128", 128, true, ALL, &k);
    CK_MECHANISM m = {CKM_AES_CBC, (void *)iv16, 16};
    uint8_t ref[32];
    uint8_t ct[32];
    CK_ULONG len = sizeof(ct);

    (void)state;
    assert_int_equal(kv_fake_aes(fake, "hsm128", NULL, AKV_KV_AES_CBC, iv16,
                                 NULL, 0, msg, 32, ref, NULL),
                     32);
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, msg, 32, ct, &len), CKR_OK);
    assert_memory_equal(ct, ref, 32);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 2);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_A128CBC);
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    len = sizeof(ct);
    assert_int_equal(akv_cipher_decrypt(s, ref, 32, ct, &len), CKR_OK);
    assert_memory_equal(ct, msg, 32);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 1);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_A128CBC);
}

static void test_size_learnt_192(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsm192", 192, true, ALL, &k);
    CK_MECHANISM m = {CKM_AES_CBC_PAD, (void *)iv16, 16};
    uint8_t ct[64];
    CK_ULONG len = sizeof(ct);

    (void)state;
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, msg, 5, ct, &len), CKR_OK);
    assert_int_equal(len, 16);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 3);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_A192CBCPAD);
}

/* A refusal that is not about the size (403: the role lacks decrypt)
 * stops the trial at the first call and reaches the caller. */
static void test_forbidden_stops_trial(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, true, ALL, &k);
    CK_MECHANISM m = {CKM_AES_CBC, (void *)iv16, 16};
    uint8_t ct[32];
    CK_ULONG len = sizeof(ct);

    (void)state;
    kv_fake_fail(fake, KV_FAKE_CRYPT, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_decrypt(s, msg, 32, ct, &len),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 1);
    /* The operation ended (v3.0 §5.9). */
    assert_int_equal(akv_cipher_decrypt(s, msg, 32, ct, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
}

/* key_ops without encrypt: CKA_ENCRYPT is FALSE, C_EncryptInit refuses
 * before any call; decrypt is allowed. */
static void test_key_ops(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s =
        hsm("hsmkey", 256, false, AKV_KV_OP_DECRYPT | AKV_KV_OP_UNWRAPKEY, &k);
    CK_MECHANISM m = {CKM_AES_CBC_PAD, (void *)iv16, 16};
    CK_BBOOL enc = CK_TRUE;
    CK_BBOOL dec = CK_FALSE;
    CK_ATTRIBUTE q[] = {{CKA_ENCRYPT, &enc, sizeof(enc)},
                        {CKA_DECRYPT, &dec, sizeof(dec)}};

    (void)state;
    assert_int_equal(akv_object_get_attrs(s, k, q, 2), CKR_OK);
    assert_int_equal(enc, CK_FALSE);
    assert_int_equal(dec, CK_TRUE);
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
}

/* Lengths Managed HSM cannot take are refused here, without a call. */
static void test_lengths(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, false, ALL, &k);
    CK_MECHANISM cbc = {CKM_AES_CBC, (void *)iv16, 16};
    CK_MECHANISM pad = {CKM_AES_CBC_PAD, (void *)iv16, 16};
    CK_MECHANISM bad = {CKM_AES_CBC, (void *)iv16, 8};
    uint8_t out[64];
    CK_ULONG len = sizeof(out);
    static uint8_t big[AKV_KV_CRYPT_MAX + 16];

    (void)state;
    assert_int_equal(akv_cipher_encrypt_init(s, &bad, k),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_cipher_encrypt_init(s, &cbc, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, msg, 15, out, &len),
                     CKR_DATA_LEN_RANGE);
    /* CBC of nothing is nothing, asked of no one. */
    assert_int_equal(akv_cipher_encrypt_init(s, &cbc, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, msg, 0, out, &len), CKR_OK);
    assert_int_equal(len, 0);
    /* CBC-PAD of nothing would need an empty value, which the HSM does
     * not take. */
    assert_int_equal(akv_cipher_encrypt_init(s, &pad, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, msg, 0, out, &len),
                     CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_cipher_encrypt_init(s, &pad, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(
        akv_cipher_encrypt(s, big, AKV_KV_CRYPT_MAX + 1, NULL, &len),
        CKR_DATA_LEN_RANGE);
    /* CBC-PAD's answer would be a block over the bound: one byte less is
     * the largest plaintext it takes; CBC takes the bound itself. */
    assert_int_equal(akv_cipher_encrypt_init(s, &pad, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, big, AKV_KV_CRYPT_MAX, NULL, &len),
                     CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_cipher_encrypt_init(s, &pad, k), CKR_OK);
    assert_int_equal(
        akv_cipher_encrypt(s, big, AKV_KV_CRYPT_MAX - 1, NULL, &len), CKR_OK);
    assert_int_equal(len, AKV_KV_CRYPT_MAX);
    /* (a length query keeps the operation: a new session ends it) */
    assert_int_equal(akv_session_close(s), CKR_OK);
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    assert_int_equal(akv_cipher_encrypt_init(s, &cbc, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, big, AKV_KV_CRYPT_MAX, NULL, &len),
                     CKR_OK);
    assert_int_equal(len, AKV_KV_CRYPT_MAX);
    assert_int_equal(akv_session_close(s), CKR_OK);
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    assert_int_equal(akv_cipher_decrypt_init(s, &pad, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt(s, msg, 20, out, &len),
                     CKR_ENCRYPTED_DATA_LEN_RANGE);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
}

/* Multi-part: everything comes at the final call (one remote call), the
 * same bytes as single-part. */
static void test_multi_part(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, false, ALL, &k);
    CK_MECHANISM m = {CKM_AES_CBC_PAD, (void *)iv16, 16};
    uint8_t ref[64];
    uint8_t ct[64];
    uint8_t pt[64];
    CK_ULONG len = sizeof(ct);
    CK_ULONG got = 0;

    (void)state;
    assert_int_equal(kv_fake_aes(fake, "hsmkey", NULL, AKV_KV_AES_CBCPAD, iv16,
                                 NULL, 0, msg, sizeof(msg), ref, NULL),
                     48);
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt_update(s, msg, 20, ct, &len), CKR_OK);
    assert_int_equal(len, 0);
    len = sizeof(ct);
    assert_int_equal(
        akv_cipher_encrypt_update(s, msg + 20, sizeof(msg) - 20, ct, &len),
        CKR_OK);
    assert_int_equal(len, 0);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
    assert_int_equal(akv_cipher_encrypt_final(s, NULL, &len), CKR_OK);
    assert_int_equal(len, 48);
    len = 10;
    assert_int_equal(akv_cipher_encrypt_final(s, ct, &len),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 48);
    assert_int_equal(akv_cipher_encrypt_final(s, ct, &len), CKR_OK);
    assert_memory_equal(ct, ref, 48);
    /* The retry after CKR_BUFFER_TOO_SMALL did not ask again. */
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 1);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt_update(s, ct, 17, pt, &len), CKR_OK);
    assert_int_equal(len, 0);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt_update(s, ct + 17, 31, pt, &len),
                     CKR_OK);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt_final(s, pt + got, &len), CKR_OK);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(pt, msg, sizeof(msg));
}

/* ---- GCM ---- */

/* Decryption of what AES-GCM with the key, a 12-byte IV and an aad made
 * (as Managed HSM's own encrypt answers it): the plaintext; a changed tag,
 * aad or ciphertext: CKR_ENCRYPTED_DATA_INVALID. */
static void test_gcm_decrypt(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, true, ALL, &k);
    uint8_t aad[] = "header";
    CK_GCM_PARAMS g = {(CK_BYTE_PTR)iv12, 12, 96, aad, 6, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &g, sizeof(g)};
    uint8_t in[64 + 16];
    uint8_t out[64];
    CK_ULONG len = sizeof(out);
    size_t n;

    (void)state;
    n = kv_fake_aes(fake, "hsmkey", NULL, AKV_KV_AES_GCM, iv12, aad, 6, msg,
                    sizeof(msg), in, in + sizeof(msg));
    assert_int_equal(n, sizeof(msg));
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_decrypt(s, in, n + 16, NULL, &len), CKR_OK);
    assert_int_equal(len, sizeof(msg));
    assert_int_equal(akv_cipher_decrypt(s, in, n + 16, out, &len), CKR_OK);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_A256GCM);
    /* A flipped tag bit (size now known: one call). */
    kv_fake_reset_calls(fake);
    in[n + 3] ^= 1;
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt(s, in, n + 16, out, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 1);
    in[n + 3] ^= 1;
    /* Another aad: the tag binds it. */
    aad[0] = 'H';
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt(s, in, n + 16, out, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    aad[0] = 'h';
    /* Multi-part, released at the final call. */
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt_update(s, in, 30, out, &len), CKR_OK);
    assert_int_equal(len, 0);
    len = sizeof(out);
    assert_int_equal(
        akv_cipher_decrypt_update(s, in + 30, n + 16 - 30, out, &len), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt_final(s, out, &len), CKR_OK);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
}

/* A wrong tag with the size not yet known: refused at every size (three
 * calls), CKR_ENCRYPTED_DATA_INVALID, nothing remembered. */
static void test_gcm_bad_tag_size_unknown(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 128, true, ALL, &k);
    CK_GCM_PARAMS g = {(CK_BYTE_PTR)iv12, 12, 96, NULL, 0, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &g, sizeof(g)};
    uint8_t in[64 + 16];
    uint8_t out[64];
    CK_ULONG len = sizeof(out);
    size_t n;

    (void)state;
    n = kv_fake_aes(fake, "hsmkey", NULL, AKV_KV_AES_GCM, iv12, NULL, 0, msg,
                    16, in, in + 16);
    assert_int_equal(n, 16);
    in[20] ^= 0x80;
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_decrypt(s, in, 32, out, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 3);
    in[20] ^= 0x80;
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt(s, in, 32, out, &len), CKR_OK);
    assert_memory_equal(out, msg, 16);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 2);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_A128GCM);
}

/* GCM encryption: Managed HSM picks the IV and cannot use the caller's:
 * refused at C_EncryptInit. Decryption takes only the HSM's shapes (a
 * 12-byte IV, a 128-bit tag); the v2.40 CK_GCM_PARAMS layout is read. */
static void test_gcm_shapes(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, false, ALL, &k);
    uint8_t iv[16] = {0};
    CK_GCM_PARAMS g = {iv, 12, 96, NULL, 0, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &g, sizeof(g)};
    struct {
        CK_BYTE_PTR pIv;
        CK_ULONG ulIvLen;
        CK_BYTE_PTR pAAD;
        CK_ULONG ulAADLen;
        CK_ULONG ulTagBits;
    } old = {iv, 12, NULL, 0, 128};
    CK_MECHANISM mo = {CKM_AES_GCM, &old, sizeof(old)};

    (void)state;
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OK);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k), CKR_OPERATION_ACTIVE);
    assert_int_equal(akv_session_close(s), CKR_OK);
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    g.ulIvLen = 16;
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k),
                     CKR_MECHANISM_PARAM_INVALID);
    g.ulIvLen = 12;
    g.ulTagBits = 96;
    assert_int_equal(akv_cipher_decrypt_init(s, &m, k),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_cipher_decrypt_init(s, &mo, k), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
}

/* The same mechanisms with a session key run locally (the row's vault
 * flags are for vault keys): no HSM call, GCM encryption allowed. */
static void test_session_key_local(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, false, ALL, &k);
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG vlen = 32;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &vlen, sizeof(vlen)}};
    CK_OBJECT_HANDLE dek = 0;
    CK_GCM_PARAMS g = {(CK_BYTE_PTR)iv12, 12, 96, NULL, 0, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &g, sizeof(g)};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, (void *)iv16, 16};
    uint8_t out[96];
    CK_ULONG len = sizeof(out);

    (void)state;
    assert_int_equal(akv_object_generate_key(s, &gen, t, 1, &dek), CKR_OK);
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, dek), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, msg, sizeof(msg), out, &len),
                     CKR_OK);
    assert_int_equal(len, sizeof(msg) + 16);
    assert_int_equal(akv_cipher_encrypt_init(s, &cbc, dek), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, msg, sizeof(msg), out, &len),
                     CKR_OK);
    assert_int_equal(len, 48);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
}

/* ---- message-based GCM (v3.0 §5.13-5.14): the HSM picks the IV ---- */

/* C_EncryptMessage returns the HSM's IV in pIv and the tag in pTag; the
 * ciphertext is AES-GCM of the plaintext under that IV and aad (checked
 * with OpenSSL); C_DecryptMessage gives the plaintext back, refuses a
 * changed tag or aad, and a failed message leaves the operation active. */
static void test_msg_gcm(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 192, true, ALL, &k);
    CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
    uint8_t iv[12] = {0};
    uint8_t tag[16] = {0};
    uint8_t ref[64];
    uint8_t reftag[16];
    uint8_t ct[64];
    uint8_t pt[64];
    CK_GCM_MESSAGE_PARAMS g = {iv, 12, 0, CKG_GENERATE_RANDOM, tag, 128};
    CK_ULONG len = 0;
    static const uint8_t aad[] = "header";

    (void)state;
    assert_int_equal(akv_cipher_msg_init(s, &m, k, false), CKR_OK);
    assert_int_equal(akv_cipher_encrypt_init(s, &m, k), CKR_OPERATION_ACTIVE);
    assert_int_equal(akv_cipher_msg(s, false, &g, sizeof(g), aad, 6, msg,
                                    sizeof(msg), NULL, &len),
                     CKR_OK);
    assert_int_equal(len, sizeof(msg));
    len = 3;
    assert_int_equal(akv_cipher_msg(s, false, &g, sizeof(g), aad, 6, msg,
                                    sizeof(msg), ct, &len),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, sizeof(msg));
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
    assert_int_equal(akv_cipher_msg(s, false, &g, sizeof(g), aad, 6, msg,
                                    sizeof(msg), ct, &len),
                     CKR_OK);
    assert_int_equal(len, sizeof(msg));
    /* 192 bits, size hidden: 256, 128, then 192. */
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 3);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_A192GCM);
    assert_int_equal(kv_fake_aes(fake, "hsmkey", NULL, AKV_KV_AES_GCM, iv, aad,
                                 6, msg, sizeof(msg), ref, reftag),
                     sizeof(msg));
    assert_memory_equal(ct, ref, sizeof(msg));
    assert_memory_equal(tag, reftag, 16);
    /* The caller may not choose the IV. */
    g.ivGenerator = CKG_NO_GENERATE;
    len = sizeof(ct);
    assert_int_equal(akv_cipher_msg(s, false, &g, sizeof(g), NULL, 0, msg,
                                    sizeof(msg), ct, &len),
                     CKR_MECHANISM_PARAM_INVALID);
    g.ivGenerator = CKG_GENERATE;
    g.ulIvFixedBits = 32;
    assert_int_equal(akv_cipher_msg(s, false, &g, sizeof(g), NULL, 0, msg,
                                    sizeof(msg), ct, &len),
                     CKR_MECHANISM_PARAM_INVALID);
    g.ulIvFixedBits = 0;
    /* Still active after a failed message. */
    assert_int_equal(akv_cipher_msg_final(s, false), CKR_OK);
    assert_int_equal(akv_cipher_msg_final(s, false),
                     CKR_OPERATION_NOT_INITIALIZED);
    /* Decrypt: the IV and tag of the encryption. */
    g.ivGenerator = CKG_NO_GENERATE;
    assert_int_equal(akv_cipher_msg_init(s, &m, k, true), CKR_OK);
    kv_fake_reset_calls(fake);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_msg(s, true, &g, sizeof(g), aad, 6, ref,
                                    sizeof(msg), pt, &len),
                     CKR_OK);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(pt, msg, sizeof(msg));
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 1); /* size known */
    tag[0] ^= 1;
    len = sizeof(pt);
    assert_int_equal(akv_cipher_msg(s, true, &g, sizeof(g), aad, 6, ref,
                                    sizeof(msg), pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    tag[0] ^= 1;
    len = sizeof(pt);
    assert_int_equal(akv_cipher_msg(s, true, &g, sizeof(g), aad, 5, ref,
                                    sizeof(msg), pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_msg(s, true, &g, sizeof(g), aad, 6, ref,
                                    sizeof(msg), pt, &len),
                     CKR_OK);
    assert_int_equal(akv_cipher_msg_final(s, true), CKR_OK);
}

/* The message functions: parameters only per message, vault keys only. */
static void test_msg_init_rules(void **state)
{
    CK_OBJECT_HANDLE k = 0;
    CK_SESSION_HANDLE s = hsm("hsmkey", 256, false, ALL, &k);
    CK_GCM_PARAMS gp = {(CK_BYTE_PTR)iv12, 12, 96, NULL, 0, 128};
    CK_MECHANISM withp = {CKM_AES_GCM, &gp, sizeof(gp)};
    CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, NULL, 0};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG vlen = 32;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &vlen, sizeof(vlen)}};
    CK_OBJECT_HANDLE dek = 0;
    CK_ULONG len = 0;
    uint8_t out[64];

    (void)state;
    assert_int_equal(akv_cipher_msg_init(s, &withp, k, false),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_cipher_msg_init(s, &cbc, k, false),
                     CKR_MECHANISM_INVALID);
    assert_int_equal(akv_object_generate_key(s, &gen, t, 1, &dek), CKR_OK);
    assert_int_equal(akv_cipher_msg_init(s, &m, dek, false),
                     CKR_KEY_TYPE_INCONSISTENT);
    len = sizeof(out);
    assert_int_equal(
        akv_cipher_msg(s, false, NULL, 0, NULL, 0, msg, 16, out, &len),
        CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(akv_cipher_msg_init(s, &m, k, true), CKR_OK);
    /* A decrypt operation does not encrypt. */
    assert_int_equal(
        akv_cipher_msg(s, false, NULL, 0, NULL, 0, msg, 16, out, &len),
        CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(
        akv_cipher_msg(s, true, NULL, 0, NULL, 0, msg, 16, out, &len),
        CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_CRYPT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test_setup_teardown(test_cbc_pad_roundtrip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_size_learnt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_learnt_192, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forbidden_stops_trial, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_key_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gcm_decrypt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gcm_bad_tag_size_unknown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gcm_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_key_local, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msg_gcm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msg_init_rules, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
