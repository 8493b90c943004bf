/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token/ through its C_*-shaped API against kv_fake: object model, find
 * (empty / CKA_ID / older version on demand), wrap -> rotate -> unwrap,
 * length queries, CKR_BUFFER_TOO_SMALL retries, operation lifetime,
 * sessions and login, local AES known answers, revocation and restore,
 * token objects in a real store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/config.h"
#include "include/pkcs11/akv-pkcs11.h"
#include "kv_fake.h"
#include "token/cipher.h"
#include "token/object.h"
#include "token/session.h"
#include "token/slot.h"
#include "token/seal.h"
#include "token/store.h"
#include "token/wrap.h"

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

/* EXTRA: more token members, e.g. ",\"key_refresh_s\":0". */
static void init_with(const char *extra)
{
    char json[1024];
    struct akv_config *cfg = NULL;
    char err[256] = "";

    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"test-token\",\"vault_url\":"
             "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"}],"
             "\"credential\":{\"type\":\"managed_identity\"}%s}]}",
             extra);
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
    snprintf(store_dir, sizeof(store_dir), "/tmp/akv-tok-XXXXXX");
    if (mkdtemp(store_dir) == NULL) {
        return -1;
    }
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
    if (system(cmd) != 0) {
        return -1;
    }
    return 0;
}

static CK_SESSION_HANDLE open_session(CK_FLAGS rw)
{
    CK_SESSION_HANDLE h = 0;

    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION | rw, &h), CKR_OK);
    assert_true(h != 0);
    return h;
}

static CK_ULONG find(CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n,
                     CK_OBJECT_HANDLE *out, CK_ULONG max)
{
    CK_ULONG count = 0;

    assert_int_equal(akv_object_find_init(s, t, n), CKR_OK);
    assert_int_equal(akv_object_find(s, out, max, &count), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    return count;
}

static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                 const uint8_t *id, size_t id_len)
{
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_ID, (void *)id, id_len}};
    CK_OBJECT_HANDLE h[4];

    assert_int_equal(find(s, t, id != NULL ? 2 : 1, h, 4), 1);
    return h[0];
}

static void version_id(const char *version, uint8_t id[16])
{
    for (int i = 0; i < 16; i++) {
        unsigned v;

        sscanf(version + 2 * i, "%2x", &v);
        id[i] = (uint8_t)v;
    }
}

static CK_OBJECT_HANDLE gen_aes(CK_SESSION_HANDLE s, CK_ULONG len,
                                CK_BBOOL token)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                        {CKA_SENSITIVE, &f, sizeof(f)},
                        {CKA_TOKEN, &token, sizeof(token)}};
    CK_OBJECT_HANDLE h = 0;

    assert_int_equal(akv_object_generate_key(s, &m, t, 3, &h), CKR_OK);
    return h;
}

static CK_ULONG get_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, uint8_t *buf,
                          CK_ULONG len)
{
    CK_ATTRIBUTE t = {CKA_VALUE, buf, len};

    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    return t.ulValueLen;
}

static CK_RSA_PKCS_OAEP_PARAMS oaep256 = {CKM_SHA256, CKG_MGF1_SHA256,
                                          CKZ_DATA_SPECIFIED, NULL, 0};

/* ---- object model and find ---- */

static void test_find_empty_and_attrs(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[8];
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub;
    uint8_t id[16];
    uint8_t buf[600];
    CK_BBOOL b = 9;
    CK_ULONG bits = 0;
    CK_ATTRIBUTE t[3];

    (void)state;
    init_with(",\"key_refresh_s\":3600");
    /* No network in session open / info calls. */
    s = open_session(0);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 0);
    assert_int_equal(find(s, NULL, 0, h, 8), 2);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1);
    version_id(kv_fake_version(fake, "cmk", 0), id);
    priv = find_one(s, CKO_PRIVATE_KEY, id, 16);
    pub = find_one(s, CKO_PUBLIC_KEY, id, 16);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1); /* cached */

    t[0] = (CK_ATTRIBUTE){CKA_LABEL, buf, sizeof(buf)};
    assert_int_equal(akv_object_get_attrs(s, priv, t, 1), CKR_OK);
    assert_int_equal(t[0].ulValueLen, 3);
    assert_memory_equal(buf, "cmk", 3);
    t[0] = (CK_ATTRIBUTE){CKA_SENSITIVE, &b, sizeof(b)};
    assert_int_equal(akv_object_get_attrs(s, priv, t, 1), CKR_OK);
    assert_int_equal(b, CK_TRUE);
    t[0] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &b, sizeof(b)};
    assert_int_equal(akv_object_get_attrs(s, priv, t, 1), CKR_OK);
    assert_int_equal(b, CK_FALSE);
    t[0] = (CK_ATTRIBUTE){CKA_MODULUS, buf, sizeof(buf)};
    assert_int_equal(akv_object_get_attrs(s, priv, t, 1), CKR_OK);
    assert_int_equal(t[0].ulValueLen, 256);
    t[0] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
    assert_int_equal(akv_object_get_attrs(s, pub, t, 1), CKR_OK);
    assert_int_equal(bits, 2048);
    t[0] = (CK_ATTRIBUTE){CKA_AKV_KID, buf, sizeof(buf)};
    assert_int_equal(akv_object_get_attrs(s, pub, t, 1), CKR_OK);
    assert_true(t[0].ulValueLen > 40);
    assert_memory_equal(buf, "https://fake.vault.azure.net/keys/cmk/", 38);
    /* Case 1 (sensitive), 2 (not an attribute), 3 (length) together. */
    t[0] = (CK_ATTRIBUTE){CKA_PRIVATE_EXPONENT, buf, sizeof(buf)};
    t[1] = (CK_ATTRIBUTE){CKA_VALUE, buf, sizeof(buf)};
    t[2] = (CK_ATTRIBUTE){CKA_ID, NULL, 0};
    assert_int_equal(akv_object_get_attrs(s, priv, t, 3),
                     CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(t[2].ulValueLen, 16);
    /* Vault keys are read-only. */
    t[0] = (CK_ATTRIBUTE){CKA_LABEL, "x", 1};
    assert_int_equal(akv_object_set_attrs(s, priv, t, 1),
                     CKR_ACTION_PROHIBITED);
    assert_int_equal(akv_object_destroy(s, priv), CKR_ACTION_PROHIBITED);
    assert_int_equal(akv_object_get_attrs(s, 0x7777, t, 1),
                     CKR_OBJECT_HANDLE_INVALID);
}

static void test_find_rules(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[8];
    CK_ULONG count = 0;
    uint8_t id[16];
    uint8_t unknown_id[16];
    const char *v1;
    CK_ATTRIBUTE t = {CKA_ID, id, 16};

    (void)state;
    v1 = kv_fake_version(fake, "cmk", 0);
    version_id(v1, id);
    kv_fake_rotate(fake, "cmk"); /* current is now v2 */
    init_with(",\"key_refresh_s\":3600");
    s = open_session(0);
    assert_int_equal(akv_object_find(s, h, 8, &count),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_OK);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_OPERATION_ACTIVE);
    assert_int_equal(akv_object_find(s, h, 1, &count), CKR_OK);
    assert_int_equal(count, 1);
    assert_int_equal(akv_object_find(s, h, 8, &count), CKR_OK);
    assert_int_equal(count, 1);
    assert_int_equal(akv_object_find(s, h, 8, &count), CKR_OK);
    assert_int_equal(count, 0);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1);

    /* The older version appears on demand: one GET for it. */
    assert_int_equal(find(s, &t, 1, h, 8), 2);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 2);
    /* Known now: no further call. */
    assert_int_equal(find(s, &t, 1, h, 8), 2);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 2);
    /* Not listed without its CKA_ID. */
    assert_int_equal(find(s, NULL, 0, h, 8), 2);
    /* A version the vault does not have: one GET (404), no match. */
    memset(unknown_id, 0xab, sizeof(unknown_id));
    t.pValue = unknown_id;
    assert_int_equal(find(s, &t, 1, h, 8), 0);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 3);
    /* ... and the miss is remembered for key_refresh_s. */
    assert_int_equal(find(s, &t, 1, h, 8), 0);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 3);
    /* Malformed template. */
    t.pValue = NULL;
    assert_int_equal(akv_object_find_init(s, &t, 1),
                     CKR_ATTRIBUTE_VALUE_INVALID);
}

static void test_find_vault_down(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[8];

    (void)state;
    init_with(",\"key_refresh_s\":0");
    s = open_session(0);
    /* Never fetched + vault down -> CKR_DEVICE_ERROR. */
    kv_fake_fail(fake, KV_FAKE_GET, CKR_DEVICE_ERROR);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_DEVICE_ERROR);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_OK);
    assert_int_equal(find(s, NULL, 0, h, 8), 2);
    /* Known + vault down -> the cached objects. */
    kv_fake_fail(fake, KV_FAKE_GET, CKR_DEVICE_ERROR);
    assert_int_equal(find(s, NULL, 0, h, 8), 2);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_OK);
}

/* A key that was never fetched and just failed is not asked again for a
 * few seconds: libp11 searches three times per URI, and each failed GET can
 * take the whole HTTP budget when the vault is down. */
static void test_find_failure_remembered(void **state)
{
    CK_SESSION_HANDLE s;

    (void)state;
    init_with(",\"key_refresh_s\":3600");
    s = open_session(0);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_DEVICE_ERROR);
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_OK);
}

/* A definite refusal (403) is remembered the same way; the key is simply
 * not shown meanwhile. */
static void test_find_refusal_remembered(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[8];

    (void)state;
    init_with(",\"key_refresh_s\":3600");
    s = open_session(0);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_KEY_FUNCTION_NOT_PERMITTED);
    kv_fake_reset_calls(fake);
    assert_int_equal(find(s, NULL, 0, h, 8), 0);
    assert_int_equal(find(s, NULL, 0, h, 8), 0);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_OK);
}

/* ---- wrap / rotate / unwrap ---- */

static void test_wrap_rotate_unwrap(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek;
    CK_OBJECT_HANDLE pub1;
    CK_OBJECT_HANDLE priv1;
    CK_OBJECT_HANDLE h[8];
    CK_OBJECT_HANDLE back = 0;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    uint8_t wrapped[512];
    CK_ULONG wlen = sizeof(wrapped);
    uint8_t v1[64];
    uint8_t v2[64];
    CK_ULONG class_secret = CKO_SECRET_KEY;
    CK_ULONG kt = CKK_AES;
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &class_secret, sizeof(class_secret)},
                         {CKA_KEY_TYPE, &kt, sizeof(kt)},
                         {CKA_SENSITIVE, &f, sizeof(f)}};
    uint8_t id1[16];

    (void)state;
    /* Fallback off: the current version alone answers (tested on). */
    init_with(",\"key_refresh_s\":0,\"rotation_fallback\":0");
    s = open_session(CKF_RW_SESSION);
    dek = gen_aes(s, 32, CK_FALSE);
    pub1 = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    priv1 = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    version_id(kv_fake_version(fake, "cmk", 0), id1);

    assert_int_equal(akv_wrap_key(s, &m, pub1, dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(wlen, 256);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 1);

    /* Rotate: the next find shows only v2; v1 handles keep working. */
    kv_fake_rotate(fake, "cmk");
    assert_int_equal(find(s, NULL, 0, h, 8), 3); /* v2 pair + the DEK */
    assert_true(h[0] != pub1 && h[0] != priv1);
    assert_int_equal(akv_wrap_unwrap(s, &m, priv1, wrapped, wlen, ut, 3, &back),
                     CKR_OK);
    assert_int_equal(get_value(s, dek, v1, sizeof(v1)), 32);
    assert_int_equal(get_value(s, back, v2, sizeof(v2)), 32);
    assert_memory_equal(v1, v2, 32);
    /* Unwrapping with v2's private key fails like the vault's 400. */
    {
        CK_OBJECT_HANDLE priv2 = 0;
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE ft = {CKA_CLASS, &cls, sizeof(cls)};
        CK_OBJECT_HANDLE x = 0;

        assert_int_equal(find(s, &ft, 1, &priv2, 1), 1);
        assert_true(priv2 != priv1);
        assert_int_equal(
            akv_wrap_unwrap(s, &m, priv2, wrapped, wlen, ut, 3, &x),
            CKR_WRAPPED_KEY_INVALID);
    }
    /* The old version is still found by its CKA_ID. */
    assert_int_equal(find_one(s, CKO_PRIVATE_KEY, id1, 16), priv1);
}

/* Decrypts CT (256 bytes) with the private key found by label only (the
 * current version, as OCI image tooling and libp11 find it). */
static CK_RV decrypt_by_label(CK_SESSION_HANDLE s, CK_MECHANISM *m,
                              const uint8_t *ct, uint8_t *pt, CK_ULONG *len)
{
    CK_OBJECT_HANDLE priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);

    assert_int_equal(akv_cipher_decrypt_init(s, m, priv), CKR_OK);
    return akv_cipher_decrypt(s, (CK_BYTE *)ct, 256, pt, len);
}

/* Rotation that label-only consumers never notice (token/rotate.h). */
static void test_rotation_fallback(void **state)
{
    CK_SESSION_HANDLE s;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    CK_MECHANISM pk = {CKM_RSA_PKCS, NULL, 0};
    static const uint8_t msg[] = "layer-key-0123456789abcdef-0123";
    const char *v1 = kv_fake_version(fake, "cmk", 0);
    uint8_t ct[512];
    uint8_t ct15[512];
    uint8_t pt[512];
    CK_ULONG len = sizeof(pt);

    (void)state;
    init_with(",\"key_refresh_s\":0");
    s = open_session(0);
    (void)find_one(s, CKO_PRIVATE_KEY, NULL, 0); /* v1 is seen */
    assert_int_equal(kv_fake_rsa_encrypt(fake, "cmk", v1,
                                         AKV_KV_ALG_RSA_OAEP_256, msg, 31, ct),
                     256);
    assert_int_equal(
        kv_fake_rsa_encrypt(fake, "cmk", v1, AKV_KV_ALG_RSA1_5, msg, 31, ct15),
        256);
    kv_fake_rotate(fake, "cmk");
    kv_fake_rotate(fake, "cmk"); /* v3 current */
    kv_fake_reset_calls(fake);

    /* Current (v3) refuses; v1 is the only other version this process
     * saw: two unwrap calls, the right bytes. */
    assert_int_equal(decrypt_by_label(s, &m, ct, pt, &len), CKR_OK);
    assert_int_equal(len, 31);
    assert_memory_equal(pt, msg, 31);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 2);

    /* Never for RSA1_5 (no integrity check): one call, refused. */
    kv_fake_reset_calls(fake);
    len = sizeof(pt);
    assert_int_equal(decrypt_by_label(s, &pk, ct15, pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);

    /* Garbage is refused by every known version, each tried once. */
    kv_fake_reset_calls(fake);
    ct[7] ^= 0x55;
    len = sizeof(pt);
    assert_int_equal(decrypt_by_label(s, &m, ct, pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 2);

    /* C_UnwrapKey takes the same path. */
    {
        CK_OBJECT_HANDLE priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
        CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
        CK_KEY_TYPE gk = CKK_GENERIC_SECRET;
        CK_ATTRIBUTE ut[] = {{CKA_CLASS, &sk, sizeof(sk)},
                             {CKA_KEY_TYPE, &gk, sizeof(gk)}};
        CK_OBJECT_HANDLE back = 0;

        ct[7] ^= 0x55;
        assert_int_equal(akv_wrap_unwrap(s, &m, priv, ct, 256, ut, 2, &back),
                         CKR_OK);
        assert_true(back != 0);
    }
}

/* A process that starts after the rotation learns the old version from
 * the store_dir catalog; the bound and the switch are honoured. */
static void test_rotation_fallback_catalog(void **state)
{
    CK_SESSION_HANDLE s;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    static const uint8_t msg[] = "layer-key-0123456789abcdef-0123";
    uint8_t ct[512];
    uint8_t pt[512];
    CK_ULONG len = sizeof(pt);
    char extra[256];
    char path[128];
    FILE *fp;

    (void)state;
    snprintf(extra, sizeof(extra), ",\"key_refresh_s\":0,\"store_dir\":\"%s\"",
             store_dir);
    /* Process 1 sees v1 (and writes it to the catalog). */
    init_with(extra);
    s = open_session(0);
    (void)find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    assert_int_equal(kv_fake_rsa_encrypt(fake, "cmk",
                                         kv_fake_version(fake, "cmk", 0),
                                         AKV_KV_ALG_RSA_OAEP_256, msg, 31, ct),
                     256);
    for (int i = 0; i < 3; i++) {
        kv_fake_rotate(fake, "cmk"); /* v2, v3, v4 (current) */
    }
    /* Process 2 starts after the rotations: it fetches v4, and learns v1
     * from the catalog (one Get Key to confirm it, one unwrap). */
    init_with(extra);
    s = open_session(0);
    kv_fake_reset_calls(fake);
    assert_int_equal(decrypt_by_label(s, &m, ct, pt, &len), CKR_OK);
    assert_memory_equal(pt, msg, 31);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 2);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 2); /* v4, v1 */
    assert_int_equal(akv_slot_finalize(), CKR_OK);

    /* Process 3 has seen v2, v3 as well (catalog: v1, v4; table: v2, v3
     * via CKA_ID); newest first, a bound of 1 tries v3 only. */
    snprintf(extra, sizeof(extra),
             ",\"key_refresh_s\":0,\"store_dir\":\"%s\","
             "\"rotation_fallback\":1",
             store_dir);
    init_with(extra);
    s = open_session(0);
    for (int i = 1; i <= 2; i++) {
        uint8_t id[16];

        version_id(kv_fake_version(fake, "cmk", i), id);
        (void)find_one(s, CKO_PRIVATE_KEY, id, 16);
    }
    kv_fake_reset_calls(fake);
    len = sizeof(pt);
    assert_int_equal(decrypt_by_label(s, &m, ct, pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 2); /* v4, v3 */
    assert_int_equal(akv_slot_finalize(), CKR_OK);

    /* Switched off: one call. */
    snprintf(extra, sizeof(extra),
             ",\"key_refresh_s\":0,\"store_dir\":\"%s\","
             "\"rotation_fallback\":0",
             store_dir);
    init_with(extra);
    s = open_session(0);
    kv_fake_reset_calls(fake);
    len = sizeof(pt);
    assert_int_equal(decrypt_by_label(s, &m, ct, pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    assert_int_equal(akv_slot_finalize(), CKR_OK);

    /* A catalog someone else may write is ignored (and hostile lines are
     * skipped): group-writable -> no fallback to v1. */
    snprintf(path, sizeof(path), "%s/.versions", store_dir);
    fp = fopen(path, "a");
    assert_non_null(fp);
    fputs("cmk ../../x?y\nbad line\ncmk 0000\n", fp);
    fclose(fp);
    assert_int_equal(chmod(path, 0620), 0);
    snprintf(extra, sizeof(extra), ",\"key_refresh_s\":0,\"store_dir\":\"%s\"",
             store_dir);
    init_with(extra);
    s = open_session(0);
    kv_fake_reset_calls(fake);
    len = sizeof(pt);
    assert_int_equal(decrypt_by_label(s, &m, ct, pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    /* Back to 0600: the hostile lines (a path, a line without a version,
     * a version that is not 32 hex digits) are skipped, v1 is found. */
    assert_int_equal(chmod(path, 0600), 0);
    init_with(extra);
    s = open_session(0);
    len = sizeof(pt);
    assert_int_equal(decrypt_by_label(s, &m, ct, pt, &len), CKR_OK);
    assert_memory_equal(pt, msg, 31);
}

/* Someone who can write store_dir plants a FIFO as the version catalog:
 * the token must neither read from it nor block writing to it (an open
 * for writing of a FIFO without a reader waits forever). The token comes
 * up, lists the key, and says nothing was appended. */
static void test_catalog_fifo(void **state)
{
    char extra[160];
    char path[128];
    pid_t pid;
    int status = 0;
    int waited = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/.versions", store_dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(extra, sizeof(extra), ",\"key_refresh_s\":0,\"store_dir\":\"%s\"",
             store_dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        CK_SESSION_HANDLE s;

        init_with(extra);
        s = open_session(0);
        (void)find_one(s, CKO_PRIVATE_KEY, NULL, 0);
        (void)akv_slot_finalize();
        _exit(0);
    }
    while (waitpid(pid, &status, WNOHANG) == 0 && waited < 100) {
        usleep(100000);
        waited++;
    }
    if (waited == 100) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        fail_msg("the token blocked on a FIFO planted as store_dir/.versions");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A session data object (not a key). */
static CK_OBJECT_HANDLE make_data_obj(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    assert_int_equal(akv_object_create(s, t, 1, &h), CKR_OK);
    return h;
}

static void test_wrap_length_and_checks(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek;
    CK_OBJECT_HANDLE pub;
    CK_OBJECT_HANDLE priv;
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    CK_MECHANISM bad = {CKM_RSA_PKCS_OAEP, NULL, 0};
    uint8_t wrapped[512];
    CK_ULONG wlen = 0;
    CK_ULONG kt = CKK_AES;
    CK_ULONG vlen = 16;
    CK_ATTRIBUTE ut[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)},
                         {CKA_VALUE_LEN, &vlen, sizeof(vlen)}};
    CK_OBJECT_HANDLE back = 0;

    (void)state;
    init_with(",\"key_refresh_s\":3600");
    s = open_session(CKF_RW_SESSION);
    dek = gen_aes(s, 32, CK_FALSE);
    pub = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    kv_fake_reset_calls(fake);
    /* Length query: exact, no remote call. */
    assert_int_equal(akv_wrap_key(s, &m, pub, dek, NULL, &wlen), CKR_OK);
    assert_int_equal(wlen, 256);
    wlen = 10;
    assert_int_equal(akv_wrap_key(s, &m, pub, dek, wrapped, &wlen),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(wlen, 256);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 0);
    /* Parameters are checked before any network call. */
    assert_int_equal(akv_wrap_key(s, &bad, pub, dek, wrapped, &wlen),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(akv_wrap_key(s, &m, dek, dek, wrapped, &wlen),
                     CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
    assert_int_equal(akv_wrap_key(s, &m, pub, priv, wrapped, &wlen),
                     CKR_KEY_NOT_WRAPPABLE);
    assert_int_equal(akv_wrap_key(s, &m, 0x1234, dek, wrapped, &wlen),
                     CKR_WRAPPING_KEY_HANDLE_INVALID);
    /* The private key object has no CKA_WRAP (v3.0 §5.18.3), and a data
     * object is not a key at all (§5.1). */
    assert_int_equal(akv_wrap_key(s, &m, priv, dek, wrapped, &wlen),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_wrap_key(s, &m, make_data_obj(s), dek, wrapped, &wlen),
                     CKR_WRAPPING_KEY_HANDLE_INVALID);
    assert_int_equal(akv_wrap_key(s, &m, pub, make_data_obj(s), wrapped, &wlen),
                     CKR_KEY_HANDLE_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 0);
    wlen = sizeof(wrapped);
    assert_int_equal(akv_wrap_key(s, &m, pub, dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 1);
    /* CKA_VALUE_LEN mismatch -> CKR_TEMPLATE_INCONSISTENT after unwrap. */
    assert_int_equal(akv_wrap_unwrap(s, &m, priv, wrapped, wlen, ut, 2, &back),
                     CKR_TEMPLATE_INCONSISTENT);
    vlen = 32;
    assert_int_equal(akv_wrap_unwrap(s, &m, priv, wrapped, wlen, ut, 2, &back),
                     CKR_OK);
    /* Unwrap with the public key object: wrong type, no call. */
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_wrap_unwrap(s, &m, pub, wrapped, wlen, ut, 2, &back),
                     CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    assert_int_equal(akv_wrap_unwrap(s, &m, priv, wrapped, 100, ut, 2, &back),
                     CKR_WRAPPED_KEY_LEN_RANGE);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 0);
}

static void test_wrap_local_mode(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek;
    CK_OBJECT_HANDLE pub;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE back = 0;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    uint8_t wrapped[512];
    CK_ULONG wlen = sizeof(wrapped);
    uint8_t a[32];
    uint8_t b[32];
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE ut[] = {{CKA_SENSITIVE, &f, sizeof(f)}};

    (void)state;
    init_with(",\"key_refresh_s\":3600,\"wrap\":\"local\"");
    s = open_session(0);
    dek = gen_aes(s, 32, CK_FALSE);
    pub = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    assert_int_equal(akv_wrap_key(s, &m, pub, dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 0);
    assert_int_equal(akv_wrap_unwrap(s, &m, priv, wrapped, wlen, ut, 1, &back),
                     CKR_OK);
    assert_int_equal(get_value(s, dek, a, sizeof(a)), 32);
    assert_int_equal(get_value(s, back, b, sizeof(b)), 32);
    assert_memory_equal(a, b, 32);
}

/* "wrap": "local" also wraps the store secret and record keys locally; the
 * value is still opened only through the vault. */
static void test_store_local_wrap(void **state)
{
    char extra[160];
    CK_SESSION_HANDLE rw;
    CK_OBJECT_HANDLE k;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len32 = 32;
    CK_BBOOL tr = CK_TRUE;
    CK_ATTRIBUTE tt[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)},
                         {CKA_TOKEN, &tr, sizeof(tr)}};
    uint8_t iv[16] = {0};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};

    (void)state;
    snprintf(extra, sizeof(extra),
             ",\"key_refresh_s\":3600,\"wrap\":\"local\",\"store_dir\":\"%s\"",
             store_dir);
    init_with(extra);
    rw = open_session(CKF_RW_SESSION);
    (void)find_one(rw, CKO_PUBLIC_KEY, NULL, 0); /* public key cached */
    assert_int_equal(akv_object_generate_key(rw, &gen, tt, 2, &k), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 0);
    /* The new store secret was unwrapped back once (token/seal.h
     * akv_seal_ready), then the record key for the encryption. */
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    assert_int_equal(akv_cipher_encrypt_init(rw, &cbc, k), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 2);
}

/* ---- RSA decrypt through the vault ---- */

static void test_decrypt_lengths(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE pub;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    uint8_t ct[512];
    uint8_t pt[512];
    size_t ct_len;
    CK_ULONG len = 0;
    static const uint8_t msg[] = "envelope-encryption-data-key-32b";

    (void)state;
    init_with(",\"key_refresh_s\":3600");
    s = open_session(0);
    priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    pub = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    ct_len = kv_fake_rsa_encrypt(fake, "cmk", NULL, AKV_KV_ALG_RSA_OAEP_256,
                                 msg, 32, ct);
    assert_int_equal(ct_len, 256);
    kv_fake_reset_calls(fake);

    assert_int_equal(akv_cipher_decrypt_init(s, &m, priv), CKR_OK);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, priv),
                     CKR_OPERATION_ACTIVE);
    /* Length query: the modulus size, no remote call. */
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, NULL, &len), CKR_OK);
    assert_int_equal(len, 256);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 0);
    /* Short buffer: exact length, one remote call, still active. */
    len = 4;
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, pt, &len),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 32);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    len = 32;
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, pt, &len), CKR_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(pt, msg, 32);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    /* The operation ended. */
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, pt, &len),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* A failed decrypt (vault 400) ends the operation. */
    assert_int_equal(akv_cipher_decrypt_init(s, &m, priv), CKR_OK);
    ct[10] ^= 0xff;
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, pt, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, pt, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
    /* Wrong length: checked locally, ends the operation. */
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, priv), CKR_OK);
    assert_int_equal(akv_cipher_decrypt(s, ct, 100, pt, &len),
                     CKR_ENCRYPTED_DATA_LEN_RANGE);
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, pt, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 0);
    /* Multi-part is not offered for RSA. */
    assert_int_equal(akv_cipher_decrypt_init(s, &m, priv), CKR_OK);
    assert_int_equal(akv_cipher_decrypt_update(s, ct, 256, pt, &len),
                     CKR_MECHANISM_INVALID);
    /* Init-time checks. */
    assert_int_equal(akv_cipher_decrypt_init(s, &m, pub),
                     CKR_KEY_TYPE_INCONSISTENT);
    {
        CK_RSA_PKCS_OAEP_PARAMS p = oaep256;
        CK_MECHANISM lm = {CKM_RSA_PKCS_OAEP, &p, sizeof(p)};

        p.pSourceData = "label";
        p.ulSourceDataLen = 5;
        assert_int_equal(akv_cipher_decrypt_init(s, &lm, priv),
                         CKR_MECHANISM_PARAM_INVALID);
    }
    assert_int_equal(akv_cipher_decrypt_init(s, &m, 0x4242),
                     CKR_KEY_HANDLE_INVALID);

    /* Local RSA encrypt with the public key, vault decrypt round trip. */
    assert_int_equal(akv_cipher_encrypt_init(s, &m, pub), CKR_OK);
    len = 0;
    assert_int_equal(akv_cipher_encrypt(s, (CK_BYTE *)msg, 32, NULL, &len),
                     CKR_OK);
    assert_int_equal(len, 256);
    len = sizeof(ct);
    assert_int_equal(akv_cipher_encrypt(s, (CK_BYTE *)msg, 32, ct, &len),
                     CKR_OK);
    assert_int_equal(akv_cipher_decrypt_init(s, &m, priv), CKR_OK);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt(s, ct, 256, pt, &len), CKR_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(pt, msg, 32);
}

/* ---- sessions and login ---- */

static void test_sessions_login(void **state)
{
    CK_SESSION_HANDLE ro;
    CK_SESSION_HANDLE rw;
    CK_SESSION_HANDLE x = 0;
    CK_SESSION_INFO info;
    CK_TOKEN_INFO ti;

    (void)state;
    init_with("");
    assert_int_equal(akv_session_open(0, 0, &x),
                     CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    assert_int_equal(akv_session_open(5, CKF_SERIAL_SESSION, &x),
                     CKR_SLOT_ID_INVALID);
    ro = open_session(0);
    rw = open_session(CKF_RW_SESSION);
    assert_true(ro != rw);
    assert_int_equal(akv_slot_get_token_info(0, &ti), CKR_OK);
    assert_int_equal(ti.ulSessionCount, 2);
    assert_int_equal(ti.ulRwSessionCount, 1);
    assert_int_equal(akv_session_get_info(ro, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RO_PUBLIC_SESSION);
    assert_int_equal(info.flags, CKF_SERIAL_SESSION);
    assert_int_equal(akv_session_get_info(rw, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RW_PUBLIC_SESSION);

    assert_int_equal(akv_session_logout(ro), CKR_USER_NOT_LOGGED_IN);
    /* No SO role: a locked SO PIN (v3.0 §3.2 CKF_SO_PIN_LOCKED, §5.6). */
    assert_true(ti.flags & CKF_SO_PIN_LOCKED);
    assert_int_equal(akv_session_login(ro, CKU_SO, NULL, 0), CKR_PIN_LOCKED);
    assert_int_equal(akv_session_login(ro, CKU_SO, (CK_UTF8CHAR *)"x", 1),
                     CKR_PIN_LOCKED);
    assert_int_equal(akv_session_login(ro, 42, NULL, 0), CKR_USER_TYPE_INVALID);
    assert_int_equal(akv_session_login(ro, CKU_CONTEXT_SPECIFIC, NULL, 0),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(akv_session_login(ro, CKU_USER, NULL, 5),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(
        akv_session_login(ro, CKU_USER, (CK_UTF8CHAR *)"anything", 8), CKR_OK);
    /* Login is per token: both sessions are user sessions now. */
    assert_int_equal(akv_session_get_info(ro, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RO_USER_FUNCTIONS);
    assert_int_equal(akv_session_get_info(rw, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RW_USER_FUNCTIONS);
    assert_int_equal(akv_session_login(rw, CKU_USER, NULL, 0),
                     CKR_USER_ALREADY_LOGGED_IN);
    assert_int_equal(akv_session_logout(rw), CKR_OK);
    assert_int_equal(akv_session_get_info(ro, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RO_PUBLIC_SESSION);

    /* Closing the last session logs out. */
    assert_int_equal(akv_session_login(rw, CKU_USER, NULL, 0), CKR_OK);
    assert_int_equal(akv_session_close(ro), CKR_OK);
    assert_int_equal(akv_session_close(ro), CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(akv_session_get_info(ro, &info),
                     CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(akv_session_get_info(rw, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RW_USER_FUNCTIONS);
    assert_int_equal(akv_session_close_all(0), CKR_OK);
    assert_int_equal(akv_session_close_all(9), CKR_SLOT_ID_INVALID);
    rw = open_session(CKF_RW_SESSION);
    assert_int_equal(akv_session_get_info(rw, &info), CKR_OK);
    assert_int_equal(info.state, CKS_RW_PUBLIC_SESSION);
}

static void test_session_objects_die_with_session(void **state)
{
    CK_SESSION_HANDLE a;
    CK_SESSION_HANDLE b;
    CK_OBJECT_HANDLE k;
    uint8_t v[32];
    CK_ATTRIBUTE t = {CKA_VALUE, v, sizeof(v)};

    (void)state;
    init_with(",\"key_refresh_s\":3600");
    a = open_session(0);
    b = open_session(0);
    k = gen_aes(a, 16, CK_FALSE);
    /* Visible from every session of the application. */
    assert_int_equal(akv_object_get_attrs(b, k, &t, 1), CKR_OK);
    assert_int_equal(akv_session_close(a), CKR_OK);
    t.ulValueLen = sizeof(v);
    assert_int_equal(akv_object_get_attrs(b, k, &t, 1),
                     CKR_OBJECT_HANDLE_INVALID);
}

/* ---- local AES: known answers ---- */

static CK_OBJECT_HANDLE create_aes(CK_SESSION_HANDLE s, const uint8_t *key,
                                   CK_ULONG len)
{
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ULONG kt = CKK_AES;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_VALUE, (void *)key, len}};
    CK_OBJECT_HANDLE h = 0;

    assert_int_equal(akv_object_create(s, t, 3, &h), CKR_OK);
    return h;
}

static void test_aes_known_answers(void **state)
{
    /* NIST SP 800-38A F.1.1 / F.2.1 (AES-128 ECB / CBC). */
    static const uint8_t key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae,
                                    0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88,
                                    0x09, 0xcf, 0x4f, 0x3c};
    static const uint8_t iv[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                   8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t p1[16] = {0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40,
                                   0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11,
                                   0x73, 0x93, 0x17, 0x2a};
    static const uint8_t ecb1[16] = {0x3a, 0xd7, 0x7b, 0xb4, 0x0d, 0x7a,
                                     0x36, 0x60, 0xa8, 0x9e, 0xca, 0xf3,
                                     0x24, 0x66, 0xef, 0x97};
    static const uint8_t cbc1[16] = {0x76, 0x49, 0xab, 0xac, 0x81, 0x19,
                                     0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b,
                                     0x12, 0xe9, 0x19, 0x7d};
    /* GCM spec test case 2: K = 0^128, IV = 0^96, P = 0^128. */
    static const uint8_t zero[16] = {0};
    static const uint8_t gcm_c[16] = {0x03, 0x88, 0xda, 0xce, 0x60, 0xb6,
                                      0xa3, 0x92, 0xf3, 0x28, 0xc2, 0xb9,
                                      0x71, 0xb2, 0xfe, 0x78};
    static const uint8_t gcm_t[16] = {0xab, 0x6e, 0x47, 0xd4, 0x2c, 0xec,
                                      0x13, 0xbd, 0xf5, 0x3a, 0x67, 0xb2,
                                      0x12, 0x57, 0xbd, 0xdf};
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    CK_OBJECT_HANDLE kz;
    uint8_t out[64];
    uint8_t back[64];
    CK_ULONG len;
    CK_ULONG l2;
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM cbc = {CKM_AES_CBC, (void *)iv, 16};
    CK_MECHANISM cbcpad = {CKM_AES_CBC_PAD, (void *)iv, 16};
    CK_GCM_PARAMS gp = {(CK_BYTE *)zero, 12, 96, NULL, 0, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};

    (void)state;
    init_with("");
    s = open_session(0);
    k = create_aes(s, key, 16);
    kz = create_aes(s, zero, 16);

    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, p1, 16, out, &len), CKR_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(out, ecb1, 16);

    assert_int_equal(akv_cipher_encrypt_init(s, &cbc, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, p1, 16, out, &len), CKR_OK);
    assert_memory_equal(out, cbc1, 16);
    assert_int_equal(akv_cipher_encrypt_init(s, &cbc, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, p1, 15, out, &len),
                     CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_cipher_encrypt(s, p1, 16, out, &len),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* CBC-PAD: first block is the CBC answer, a full pad block follows. */
    assert_int_equal(akv_cipher_encrypt_init(s, &cbcpad, k), CKR_OK);
    len = 0;
    assert_int_equal(akv_cipher_encrypt(s, p1, 16, NULL, &len), CKR_OK);
    assert_int_equal(len, 32);
    len = 31;
    assert_int_equal(akv_cipher_encrypt(s, p1, 16, out, &len),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 32);
    assert_int_equal(akv_cipher_encrypt(s, p1, 16, out, &len), CKR_OK);
    assert_memory_equal(out, cbc1, 16);
    assert_int_equal(akv_cipher_decrypt_init(s, &cbcpad, k), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len), CKR_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(back, p1, 16);
    /* Multi-part CBC-PAD decrypt gives the same. */
    assert_int_equal(akv_cipher_decrypt_init(s, &cbcpad, k), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_decrypt_update(s, out, 20, back, &len), CKR_OK);
    assert_int_equal(len, 16);
    l2 = sizeof(back) - len;
    assert_int_equal(
        akv_cipher_decrypt_update(s, out + 20, 12, back + len, &l2), CKR_OK);
    assert_int_equal(l2, 0); /* last block held back */
    l2 = 0;
    assert_int_equal(akv_cipher_decrypt_final(s, NULL, &l2), CKR_OK);
    assert_int_equal(l2, 16);
    assert_int_equal(akv_cipher_decrypt_final(s, back + len, &l2), CKR_OK);
    assert_int_equal(l2, 0);
    assert_memory_equal(back, p1, 16);
    /* Bad padding ends the operation. */
    out[31] ^= 0x5a;
    assert_int_equal(akv_cipher_decrypt_init(s, &cbcpad, k), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len),
                     CKR_OPERATION_NOT_INITIALIZED);

    /* GCM. */
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, kz), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, zero, 16, out, &len), CKR_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(out, gcm_c, 16);
    assert_memory_equal(out + 16, gcm_t, 16);
    assert_int_equal(akv_cipher_decrypt_init(s, &gcm, kz), CKR_OK);
    len = 0;
    assert_int_equal(akv_cipher_decrypt(s, out, 32, NULL, &len), CKR_OK);
    assert_int_equal(len, 16);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len), CKR_OK);
    assert_memory_equal(back, zero, 16);
    /* Multi-part GCM encrypt = single part. */
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, kz), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_encrypt_update(s, zero, 7, back, &len), CKR_OK);
    assert_int_equal(len, 7);
    l2 = sizeof(back) - 7;
    assert_int_equal(akv_cipher_encrypt_update(s, zero, 9, back + 7, &l2),
                     CKR_OK);
    assert_int_equal(l2, 9);
    l2 = sizeof(back) - 16;
    assert_int_equal(akv_cipher_encrypt_final(s, back + 16, &l2), CKR_OK);
    assert_int_equal(l2, 16);
    assert_memory_equal(back, out, 32);
    /* Tampered tag. */
    out[31] ^= 1;
    assert_int_equal(akv_cipher_decrypt_init(s, &gcm, kz), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    /* Bad GCM parameters. */
    gp.ulTagBits = 100;
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, kz),
                     CKR_MECHANISM_PARAM_INVALID);
    gcm.ulParameterLen = 8;
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, kz),
                     CKR_MECHANISM_PARAM_INVALID);
}

/* The v2.40 document's CK_GCM_PARAMS (no ulIvBits), 40 bytes on LP64: Java
 * SunPKCS11 sends it first to a 2.40 module and only falls back to the v3.0
 * layout after CKR_MECHANISM_PARAM_INVALID; older callers never do. */
struct gcm_params_v240 {
    CK_BYTE_PTR pIv;
    CK_ULONG ulIvLen;
    CK_BYTE_PTR pAAD;
    CK_ULONG ulAADLen;
    CK_ULONG ulTagBits;
};

/* v3.0 §5.8/§5.9: every failure of C_Encrypt/C_Decrypt, an Update or a Final
 * ends the operation, NULL pointers included; only CKR_BUFFER_TOO_SMALL, a
 * successful length query or Update, and a call refused as not part of the
 * operation's flow (CKR_OPERATION_ACTIVE) keep it. */
static void test_error_ends_operation(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    uint8_t iv[16] = {0};
    CK_MECHANISM cbcpad = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    uint8_t in[64] = {1, 2, 3};
    uint8_t out[64];
    CK_ULONG len;

    (void)state;
    init_with("");
    s = open_session(CKF_RW_SESSION);
    k = gen_aes(s, 16, CK_FALSE);
    /* NULL pointers (the checks live in token/ now). */
    for (int i = 0; i < 6; i++) {
        CK_RV rv;

        assert_int_equal(i < 3 ? akv_cipher_encrypt_init(s, &ecb, k)
                               : akv_cipher_decrypt_init(s, &ecb, k),
                         CKR_OK);
        len = sizeof(out);
        switch (i) {
        case 0:
            rv = akv_cipher_encrypt(s, NULL, 16, out, &len);
            break;
        case 1:
            rv = akv_cipher_encrypt_update(s, in, 16, out, NULL);
            break;
        case 2:
            rv = akv_cipher_encrypt_final(s, out, NULL);
            break;
        case 3:
            rv = akv_cipher_decrypt(s, in, 16, out, NULL);
            break;
        case 4:
            rv = akv_cipher_decrypt_update(s, NULL, 16, out, &len);
            break;
        default:
            rv = akv_cipher_decrypt_final(s, out, NULL);
            break;
        }
        assert_int_equal(rv, CKR_ARGUMENTS_BAD);
        len = sizeof(out);
        assert_int_equal(i < 3 ? akv_cipher_encrypt_final(s, out, &len)
                               : akv_cipher_decrypt_final(s, out, &len),
                         CKR_OPERATION_NOT_INITIALIZED);
    }
    /* A failing length query ends it too (ECB needs whole blocks). */
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, in, 15, NULL, &len),
                     CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, k), CKR_OK);
    /* ... while a successful one, a short buffer and an Update keep it. */
    len = 0;
    assert_int_equal(akv_cipher_encrypt(s, in, 16, NULL, &len), CKR_OK);
    len = 3;
    assert_int_equal(akv_cipher_encrypt(s, in, 16, out, &len),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 16);
    assert_int_equal(akv_cipher_encrypt(s, in, 16, out, &len), CKR_OK);
    /* Update then a Final with a partial block: ends with the error. */
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt_update(s, in, 20, out, &len), CKR_OK);
    assert_int_equal(len, 16);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt_final(s, out, &len),
                     CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_cipher_encrypt_final(s, out, &len),
                     CKR_OPERATION_NOT_INITIALIZED);
    /* Bad CBC padding at the final call ends the decryption. */
    assert_int_equal(akv_cipher_decrypt_init(s, &cbcpad, k), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt_update(s, in, 16, out, &len), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt_final(s, out, &len),
                     CKR_ENCRYPTED_DATA_INVALID);
    assert_int_equal(akv_cipher_decrypt_init(s, &cbcpad, k), CKR_OK);
    /* Single-part during a multi-part operation: refused, not ended. */
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt_update(s, in, 16, out, &len), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt(s, in, 16, out, &len),
                     CKR_OPERATION_ACTIVE);
    len = sizeof(out);
    assert_int_equal(akv_cipher_decrypt_update(s, in, 16, out, &len), CKR_OK);
}

/* ---- public-key import and the common key attributes ---- */

static const uint8_t p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                   0xce, 0x3d, 0x03, 0x01, 0x07};

/* N and E of a fresh RSA key (big-endian, N_LEN/E_LEN in/out). */
static EVP_PKEY *rsa_parts(uint8_t *n, size_t *n_len, uint8_t *e, size_t *e_len)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIGNUM *bn = NULL;
    BIGNUM *be = NULL;

    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &be), 1);
    *n_len = (size_t)BN_bn2bin(bn, n);
    *e_len = (size_t)BN_bn2bin(be, e);
    BN_free(bn);
    BN_free(be);
    return k;
}

/* CKA_EC_POINT of a fresh P-256 key: DER OCTET STRING of 04||X||Y. */
static size_t p256_point(uint8_t *out)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    size_t len = 0;

    assert_non_null(k);
    out[0] = 0x04;
    out[1] = 65;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        out + 2, 65, &len),
        1);
    assert_int_equal(len, 65);
    EVP_PKEY_free(k);
    return 67;
}

static void test_import_public_key(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY;
    CK_OBJECT_CLASS privc = CKO_PRIVATE_KEY;
    CK_OBJECT_CLASS certc = CKO_CERTIFICATE;
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_KEY_TYPE ec = CKK_EC;
    CK_KEY_TYPE dsa = CKK_DSA;
    CK_BBOOL tr = CK_TRUE;
    uint8_t n[600];
    uint8_t e[16];
    uint8_t bad[600];
    uint8_t pt[80];
    size_t nl = 0;
    size_t el = 0;
    size_t ptl = p256_point(pt);
    EVP_PKEY *k = rsa_parts(n, &nl, e, &el);
    CK_OBJECT_HANDLE h = 0;
    CK_OBJECT_HANDLE hc = 0;
    CK_ULONG bits = 0;
    uint8_t buf[700];
    CK_ATTRIBUTE ta[1] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)}};
    CK_RSA_PKCS_OAEP_PARAMS op = oaep256;
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    uint8_t ct[256];
    uint8_t pt2[256];
    CK_ULONG ctl = sizeof(ct);
    size_t pt2l = sizeof(pt2);
    EVP_PKEY_CTX *dctx = NULL;

    (void)state;
    init_with("");
    s = open_session(CKF_RW_SESSION);
    /* Classes and key types this token does not import: said as such,
     * not CKR_ATTRIBUTE_READ_ONLY from the generic checker. */
    {
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &privc, sizeof(privc)},
                            {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
                            {CKA_MODULUS, n, nl},
                            {CKA_PRIVATE_EXPONENT, n, nl}};

        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[0].pValue = &certc;
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[0].pValue = &pubc;
        t[1].pValue = &dsa;
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        /* RSA public key with a private-key attribute: not one of §4.8. */
        t[1].pValue = &rsa;
        t[3] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e, el};
        assert_int_equal(akv_object_create(s, t, 3, &h),
                         CKR_TEMPLATE_INCOMPLETE);
        t[2] = (CK_ATTRIBUTE){CKA_DECRYPT, &tr, 1};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_TYPE_INVALID);
        t[2] = (CK_ATTRIBUTE){CKA_EC_POINT, pt, ptl};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_TEMPLATE_INCONSISTENT);
        assert_int_equal(akv_object_create(s, t, 1, &h),
                         CKR_TEMPLATE_INCOMPLETE);
    }
    /* Bad RSA material: even modulus, short modulus, even / 1 / huge
     * exponent. */
    {
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &pubc, sizeof(pubc)},
                            {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
                            {CKA_MODULUS, bad, nl},
                            {CKA_PUBLIC_EXPONENT, e, el}};
        uint8_t e2[] = {0x01, 0x00, 0x00};
        uint8_t e1[] = {0x00, 0x01};

        memcpy(bad, n, nl);
        bad[nl - 1] &= 0xfe;
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[2] = (CK_ATTRIBUTE){CKA_MODULUS, n, 64};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[2] = (CK_ATTRIBUTE){CKA_MODULUS, n, nl};
        t[3] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e2, sizeof(e2)};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[3] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e1, sizeof(e1)};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[3] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, n, nl};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[3] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e, el};
        /* Token objects: from a R/O session no; the store keeps secrets
         * only. */
        {
            CK_ATTRIBUTE t5[5];
            CK_SESSION_HANDLE ro = open_session(0);

            memcpy(t5, t, sizeof(t));
            t5[4] = (CK_ATTRIBUTE){CKA_TOKEN, &tr, 1};
            assert_int_equal(akv_object_create(ro, t5, 5, &h),
                             CKR_SESSION_READ_ONLY);
            assert_int_equal(akv_object_create(s, t5, 5, &h),
                             CKR_TEMPLATE_INCONSISTENT);
        }
        /* The good key. */
        assert_int_equal(akv_object_create(s, t, 4, &h), CKR_OK);
        assert_int_equal(akv_object_get_attrs(s, h, ta, 1), CKR_OK);
        assert_int_equal(bits, 2048);
        ta[0] = (CK_ATTRIBUTE){CKA_MODULUS, buf, sizeof(buf)};
        assert_int_equal(akv_object_get_attrs(s, h, ta, 1), CKR_OK);
        assert_int_equal(ta[0].ulValueLen, nl);
        assert_memory_equal(buf, n, nl);
        ta[0] = (CK_ATTRIBUTE){CKA_PUBLIC_KEY_INFO, buf, sizeof(buf)};
        assert_int_equal(akv_object_get_attrs(s, h, ta, 1), CKR_OK);
        {
            const unsigned char *p = buf;
            EVP_PKEY *back = d2i_PUBKEY(NULL, &p, (long)ta[0].ulValueLen);

            assert_non_null(back);
            assert_int_equal(EVP_PKEY_eq(back, k), 1);
            EVP_PKEY_free(back);
        }
    }
    /* Local encryption with it, decrypted by the private key here. */
    assert_int_equal(akv_cipher_encrypt_init(s, &oaep, h), CKR_OK);
    assert_int_equal(
        akv_cipher_encrypt(s, (CK_BYTE *)"sixteen byte key", 16, ct, &ctl),
        CKR_OK);
    assert_int_equal(ctl, 256);
    dctx = EVP_PKEY_CTX_new(k, NULL);
    assert_non_null(dctx);
    assert_int_equal(EVP_PKEY_decrypt_init(dctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(dctx, RSA_PKCS1_OAEP_PADDING),
                     1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(dctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(dctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_decrypt(dctx, pt2, &pt2l, ct, ctl), 1);
    assert_int_equal(pt2l, 16);
    assert_memory_equal(pt2, "sixteen byte key", 16);
    EVP_PKEY_CTX_free(dctx);
    /* A public key cannot decrypt (v3.0 §5.9: not a decryption key). */
    assert_int_equal(akv_cipher_decrypt_init(s, &oaep, h),
                     CKR_KEY_TYPE_INCONSISTENT);
    /* EC: good point, point off the curve, unknown curve, raw point. */
    {
        uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
        uint8_t brainpool[] = {0x06, 0x09, 0x2b, 0x24, 0x03, 0x03,
                               0x02, 0x08, 0x01, 0x01, 0x07};
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &pubc, sizeof(pubc)},
                            {CKA_KEY_TYPE, &ec, sizeof(ec)},
                            {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                            {CKA_EC_POINT, pt, ptl}};
        CK_BBOOL b = 9;

        assert_int_equal(akv_object_create(s, t, 4, &hc), CKR_OK);
        ta[0] = (CK_ATTRIBUTE){CKA_VERIFY, &b, 1};
        assert_int_equal(akv_object_get_attrs(s, hc, ta, 1), CKR_OK);
        assert_int_equal(b, CK_TRUE);
        ta[0] = (CK_ATTRIBUTE){CKA_EC_POINT, buf, sizeof(buf)};
        assert_int_equal(akv_object_get_attrs(s, hc, ta, 1), CKR_OK);
        assert_int_equal(ta[0].ulValueLen, ptl);
        assert_memory_equal(buf, pt, ptl);
        memcpy(buf, pt, ptl);
        buf[ptl - 1] ^= 0x01; /* Y changed: not on the curve */
        t[3] = (CK_ATTRIBUTE){CKA_EC_POINT, buf, ptl};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[3] = (CK_ATTRIBUTE){CKA_EC_POINT, pt + 2, 65}; /* not DER */
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[3] = (CK_ATTRIBUTE){CKA_EC_POINT, pt, ptl};
        t[2] = (CK_ATTRIBUTE){CKA_EC_PARAMS, p384, sizeof(p384)};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        t[2] = (CK_ATTRIBUTE){CKA_EC_PARAMS, brainpool, sizeof(brainpool)};
        assert_int_equal(akv_object_create(s, t, 4, &h),
                         CKR_ATTRIBUTE_VALUE_INVALID);
        /* An EC key does not encrypt here. */
        assert_int_equal(akv_cipher_encrypt_init(s, &oaep, hc),
                         CKR_KEY_TYPE_INCONSISTENT);
    }
    EVP_PKEY_free(k);
}

/* Reads every attribute of v3.0 §4.4/§4.7 and of the class's own table
 * (§4.8 public, §4.9 private, §4.10 secret) from key H: each must be
 * answered; the defaults every kind shares are checked, and
 * CKA_ALLOWED_MECHANISMS must hold ALLOWED_LEN bytes. */
static void check_key_attrs(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                            CK_OBJECT_CLASS cls, CK_ULONG allowed_len)
{
    static const CK_ATTRIBUTE_TYPE common[] = {CKA_CLASS,
                                               CKA_TOKEN,
                                               CKA_PRIVATE,
                                               CKA_MODIFIABLE,
                                               CKA_LABEL,
                                               CKA_COPYABLE,
                                               CKA_DESTROYABLE,
                                               CKA_KEY_TYPE,
                                               CKA_ID,
                                               CKA_START_DATE,
                                               CKA_END_DATE,
                                               CKA_DERIVE,
                                               CKA_LOCAL,
                                               CKA_KEY_GEN_MECHANISM,
                                               CKA_ALLOWED_MECHANISMS};
    static const CK_ATTRIBUTE_TYPE pub[] = {
        CKA_SUBJECT, CKA_ENCRYPT, CKA_VERIFY,        CKA_VERIFY_RECOVER,
        CKA_WRAP,    CKA_TRUSTED, CKA_WRAP_TEMPLATE, CKA_PUBLIC_KEY_INFO};
    static const CK_ATTRIBUTE_TYPE priv[] = {
        CKA_SUBJECT,           CKA_SENSITIVE,
        CKA_DECRYPT,           CKA_SIGN,
        CKA_SIGN_RECOVER,      CKA_UNWRAP,
        CKA_EXTRACTABLE,       CKA_ALWAYS_SENSITIVE,
        CKA_NEVER_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED,
        CKA_UNWRAP_TEMPLATE,   CKA_ALWAYS_AUTHENTICATE,
        CKA_PUBLIC_KEY_INFO};
    static const CK_ATTRIBUTE_TYPE sec[] = {CKA_SENSITIVE,
                                            CKA_ENCRYPT,
                                            CKA_DECRYPT,
                                            CKA_SIGN,
                                            CKA_VERIFY,
                                            CKA_WRAP,
                                            CKA_UNWRAP,
                                            CKA_EXTRACTABLE,
                                            CKA_ALWAYS_SENSITIVE,
                                            CKA_NEVER_EXTRACTABLE,
                                            CKA_WRAP_WITH_TRUSTED,
                                            CKA_TRUSTED,
                                            CKA_WRAP_TEMPLATE,
                                            CKA_UNWRAP_TEMPLATE,
                                            CKA_VALUE_LEN};
    const CK_ATTRIBUTE_TYPE *lists[2] = {common, NULL};
    size_t lens[2] = {sizeof(common) / sizeof(common[0]), 0};
    uint8_t buf[1024];
    CK_ULONG ul = 0;
    CK_BBOOL b = 9;
    CK_ATTRIBUTE t = {0, NULL, 0};

    if (cls == CKO_PUBLIC_KEY) {
        lists[1] = pub;
        lens[1] = sizeof(pub) / sizeof(pub[0]);
    } else if (cls == CKO_PRIVATE_KEY) {
        lists[1] = priv;
        lens[1] = sizeof(priv) / sizeof(priv[0]);
    } else {
        lists[1] = sec;
        lens[1] = sizeof(sec) / sizeof(sec[0]);
    }
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < lens[l]; i++) {
            t = (CK_ATTRIBUTE){lists[l][i], buf, sizeof(buf)};
            if (akv_object_get_attrs(s, h, &t, 1) != CKR_OK) {
                fail_msg("class %lu: attribute 0x%lx not answered",
                         (unsigned long)cls, (unsigned long)lists[l][i]);
            }
        }
    }
    /* Values every kind shares. */
    t = (CK_ATTRIBUTE){CKA_CLASS, &ul, sizeof(ul)};
    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    assert_int_equal(ul, cls);
    t = (CK_ATTRIBUTE){CKA_ALLOWED_MECHANISMS, buf, sizeof(buf)};
    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    assert_int_equal(t.ulValueLen, allowed_len); /* 0: no restriction */
    t = (CK_ATTRIBUTE){CKA_START_DATE, buf, sizeof(buf)};
    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    assert_int_equal(t.ulValueLen, 0);
    t = (CK_ATTRIBUTE){CKA_END_DATE, buf, sizeof(buf)};
    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    assert_int_equal(t.ulValueLen, 0);
    t = (CK_ATTRIBUTE){CKA_DERIVE, &b, 1};
    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    assert_int_equal(b, CK_FALSE);
    if (cls != CKO_PRIVATE_KEY) {
        t = (CK_ATTRIBUTE){CKA_TRUSTED, &b, 1};
        assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
        assert_int_equal(b, CK_FALSE);
        t = (CK_ATTRIBUTE){CKA_WRAP_TEMPLATE, buf, sizeof(buf)};
        assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
        assert_int_equal(t.ulValueLen, 0);
    }
    if (cls != CKO_PUBLIC_KEY) {
        t = (CK_ATTRIBUTE){CKA_UNWRAP_TEMPLATE, buf, sizeof(buf)};
        assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
        assert_int_equal(t.ulValueLen, 0);
        t = (CK_ATTRIBUTE){CKA_SIGN, &b, 1};
        assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
        assert_int_equal(b, CK_FALSE);
    }
}

static CK_BBOOL attr_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                          CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL b = 9;
    CK_ATTRIBUTE t = {type, &b, 1};

    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    return b;
}

static CK_ULONG attr_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                           CK_ATTRIBUTE_TYPE type)
{
    CK_ULONG v = 0;
    CK_ATTRIBUTE t = {type, &v, sizeof(v)};

    assert_int_equal(akv_object_get_attrs(s, h, &t, 1), CKR_OK);
    return v;
}

static void test_key_attrs_every_kind(void **state)
{
    char extra[160];
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE gen;
    CK_OBJECT_HANDLE tok;
    CK_OBJECT_HANDLE imp;
    CK_OBJECT_HANDLE h[8];
    CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY;
    CK_KEY_TYPE ec = CKK_EC;
    uint8_t pt[80];
    size_t ptl = p256_point(pt);
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &pubc, sizeof(pubc)},
                        {CKA_KEY_TYPE, &ec, sizeof(ec)},
                        {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                        {CKA_EC_POINT, pt, ptl}};
    CK_MECHANISM_TYPE aes_gcm = CKM_AES_GCM;
    CK_ATTRIBUTE allow = {CKA_ALLOWED_MECHANISMS, &aes_gcm, sizeof(aes_gcm)};
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE derive = {CKA_DERIVE, &f, 1};

    (void)state;
    snprintf(extra, sizeof(extra), ",\"store_dir\":\"%s\"", store_dir);
    init_with(extra);
    s = open_session(CKF_RW_SESSION);
    assert_int_equal(find(s, NULL, 0, h, 8), 2);
    pub = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    gen = gen_aes(s, 32, CK_FALSE);
    tok = gen_aes(s, 16, CK_TRUE);
    assert_int_equal(akv_object_create(s, t, 4, &imp), CKR_OK);

    check_key_attrs(s, pub, CKO_PUBLIC_KEY, 0);
    check_key_attrs(s, priv, CKO_PRIVATE_KEY, 0);
    check_key_attrs(s, gen, CKO_SECRET_KEY, 0);
    check_key_attrs(s, tok, CKO_SECRET_KEY, 0);
    check_key_attrs(s, imp, CKO_PUBLIC_KEY, 0);
    /* Values that differ by kind. */
    assert_int_equal(attr_bool(s, pub, CKA_LOCAL), CK_FALSE);
    assert_int_equal(attr_ulong(s, pub, CKA_KEY_GEN_MECHANISM),
                     CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(attr_bool(s, pub, CKA_ENCRYPT), CK_TRUE); /* key_ops */
    assert_int_equal(attr_bool(s, pub, CKA_VERIFY), CK_FALSE);
    assert_int_equal(attr_bool(s, pub, CKA_MODIFIABLE), CK_FALSE);
    assert_int_equal(attr_bool(s, priv, CKA_SENSITIVE), CK_TRUE);
    assert_int_equal(attr_bool(s, priv, CKA_ALWAYS_SENSITIVE), CK_TRUE);
    assert_int_equal(attr_bool(s, priv, CKA_DECRYPT), CK_TRUE);
    assert_int_equal(attr_bool(s, priv, CKA_ALWAYS_AUTHENTICATE), CK_FALSE);
    assert_int_equal(attr_bool(s, gen, CKA_LOCAL), CK_TRUE);
    assert_int_equal(attr_ulong(s, gen, CKA_KEY_GEN_MECHANISM),
                     CKM_AES_KEY_GEN);
    assert_int_equal(attr_bool(s, gen, CKA_ENCRYPT), CK_TRUE);
    assert_int_equal(attr_bool(s, gen, CKA_WRAP), CK_FALSE);
    assert_int_equal(attr_bool(s, gen, CKA_MODIFIABLE), CK_TRUE);
    assert_int_equal(attr_ulong(s, gen, CKA_VALUE_LEN), 32);
    assert_int_equal(attr_bool(s, tok, CKA_TOKEN), CK_TRUE);
    assert_int_equal(attr_ulong(s, tok, CKA_VALUE_LEN), 16);
    assert_int_equal(attr_bool(s, imp, CKA_LOCAL), CK_FALSE);
    assert_int_equal(attr_bool(s, imp, CKA_VERIFY), CK_TRUE);
    assert_int_equal(attr_bool(s, imp, CKA_ENCRYPT), CK_FALSE);
    assert_int_equal(attr_ulong(s, imp, CKA_KEY_GEN_MECHANISM),
                     CK_UNAVAILABLE_INFORMATION);
    /* A find template with a defaulted attribute matches (v3.0 §5.7.7). */
    assert_int_equal(find(s, &derive, 1, h, 8), 5);
    /* A given CKA_ALLOWED_MECHANISMS is kept, and survives the store. */
    {
        CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
        CK_ULONG len = 16;
        CK_BBOOL tr = CK_TRUE;
        CK_ATTRIBUTE gt[] = {
            {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &tr, 1}, allow};
        CK_OBJECT_HANDLE k = 0;
        CK_MECHANISM_TYPE got[4];
        CK_ATTRIBUTE q = {CKA_ALLOWED_MECHANISMS, got, sizeof(got)};

        assert_int_equal(akv_object_generate_key(s, &m, gt, 3, &k), CKR_OK);
        assert_int_equal(akv_object_get_attrs(s, k, &q, 1), CKR_OK);
        assert_int_equal(q.ulValueLen, sizeof(CK_MECHANISM_TYPE));
        assert_int_equal(got[0], CKM_AES_GCM);
    }
    /* The store objects read back by another process image answer too. */
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    init_with(extra);
    s = open_session(CKF_RW_SESSION);
    {
        CK_ATTRIBUTE tt = {CKA_TOKEN, &f, 1};
        CK_BBOOL tr = CK_TRUE;
        CK_OBJECT_CLASS sc = CKO_SECRET_KEY;
        CK_ATTRIBUTE ft[] = {{CKA_TOKEN, &tr, 1}, {CKA_CLASS, &sc, sizeof(sc)}};

        CK_ATTRIBUTE none = {CKA_ALLOWED_MECHANISMS, NULL, 0};

        (void)tt;
        assert_int_equal(find(s, ft, 2, h, 8), 2);
        /* One with no restriction, one with the list it was given. */
        assert_int_equal(find(s, &none, 1, h, 8), 3);
        assert_int_equal(find(s, &allow, 1, h, 8), 1);
        check_key_attrs(s, h[0], CKO_SECRET_KEY, sizeof(CK_MECHANISM_TYPE));
        ft[0] = none;
        assert_int_equal(find(s, ft, 2, h, 8), 1);
        check_key_attrs(s, h[0], CKO_SECRET_KEY, 0);
    }
}

static void test_gcm_v240_params(void **state)
{
    /* GCM spec test case 2 again, and a v3.0 round trip with AAD. */
    static const uint8_t zero[16] = {0};
    static const uint8_t gcm_c[16] = {0x03, 0x88, 0xda, 0xce, 0x60, 0xb6,
                                      0xa3, 0x92, 0xf3, 0x28, 0xc2, 0xb9,
                                      0x71, 0xb2, 0xfe, 0x78};
    static const uint8_t gcm_t[16] = {0xab, 0x6e, 0x47, 0xd4, 0x2c, 0xec,
                                      0x13, 0xbd, 0xf5, 0x3a, 0x67, 0xb2,
                                      0x12, 0x57, 0xbd, 0xdf};
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE kz;
    uint8_t out[64];
    uint8_t back[64];
    CK_ULONG len;
    struct gcm_params_v240 old = {(CK_BYTE *)zero, 12, NULL, 0, 128};
    CK_MECHANISM gcm_old = {CKM_AES_GCM, &old, sizeof(old)};
    CK_GCM_PARAMS gp = {(CK_BYTE *)zero, 12, 96, (CK_BYTE *)"aad", 3, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};

    (void)state;
    assert_int_not_equal(sizeof(old), sizeof(gp));
    init_with("");
    s = open_session(0);
    kz = create_aes(s, zero, 16);

    assert_int_equal(akv_cipher_encrypt_init(s, &gcm_old, kz), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, zero, 16, out, &len), CKR_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(out, gcm_c, 16);
    assert_memory_equal(out + 16, gcm_t, 16);
    assert_int_equal(akv_cipher_decrypt_init(s, &gcm_old, kz), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len), CKR_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(back, zero, 16);

    /* AAD through the old layout: what v3.0 encrypts, it decrypts. */
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, kz), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, zero, 16, out, &len), CKR_OK);
    old.pAAD = (CK_BYTE *)"aad";
    old.ulAADLen = 3;
    assert_int_equal(akv_cipher_decrypt_init(s, &gcm_old, kz), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len), CKR_OK);
    assert_memory_equal(back, zero, 16);
    old.ulAADLen = 2;
    assert_int_equal(akv_cipher_decrypt_init(s, &gcm_old, kz), CKR_OK);
    len = sizeof(back);
    assert_int_equal(akv_cipher_decrypt(s, out, 32, back, &len),
                     CKR_ENCRYPTED_DATA_INVALID);

    /* The old layout is checked like the new one; other lengths refused. */
    old.ulTagBits = 100;
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm_old, kz),
                     CKR_MECHANISM_PARAM_INVALID);
    old.ulTagBits = 128;
    old.pAAD = NULL;
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm_old, kz),
                     CKR_MECHANISM_PARAM_INVALID);
    old.ulAADLen = 0;
    gcm_old.ulParameterLen = sizeof(old) + 4;
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm_old, kz),
                     CKR_MECHANISM_PARAM_INVALID);
    gcm_old.ulParameterLen = sizeof(old);
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm_old, kz), CKR_OK);
}

static void test_generated_key_roundtrip(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM ggen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    uint8_t iv[12] = {1, 2, 3};
    CK_GCM_PARAMS gp = {iv, 12, 96, (CK_BYTE *)"aad", 3, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
    uint8_t msg[100];
    uint8_t ct[200];
    uint8_t pt[200];
    CK_ULONG len;
    CK_ULONG clen;
    CK_ULONG bad_len = 20;
    CK_ULONG kt = CKK_AES;
    CK_ATTRIBUTE bad[] = {{CKA_VALUE_LEN, &bad_len, sizeof(bad_len)}};
    CK_ATTRIBUTE none[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)}};
    CK_OBJECT_HANDLE x;
    CK_BBOOL b = 0;
    CK_ATTRIBUTE q = {CKA_LOCAL, &b, sizeof(b)};

    (void)state;
    init_with("");
    s = open_session(0);
    k = gen_aes(s, 32, CK_FALSE);
    assert_int_equal(akv_object_get_attrs(s, k, &q, 1), CKR_OK);
    assert_int_equal(b, CK_TRUE);
    memset(msg, 0x61, sizeof(msg));
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, k), CKR_OK);
    clen = sizeof(ct);
    assert_int_equal(akv_cipher_encrypt(s, msg, sizeof(msg), ct, &clen),
                     CKR_OK);
    assert_int_equal(clen, sizeof(msg) + 16);
    assert_int_equal(akv_cipher_decrypt_init(s, &gcm, k), CKR_OK);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt_update(s, ct, 50, pt, &len), CKR_OK);
    assert_int_equal(len, 0);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt_update(s, ct + 50, clen - 50, pt, &len),
                     CKR_OK);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt_final(s, pt, &len), CKR_OK);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(pt, msg, sizeof(msg));

    assert_int_equal(akv_object_generate_key(s, &gen, bad, 1, &x),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(akv_object_generate_key(s, &gen, none, 1, &x),
                     CKR_TEMPLATE_INCOMPLETE);
    kt = CKK_GENERIC_SECRET;
    assert_int_equal(akv_object_generate_key(s, &gen, none, 1, &x),
                     CKR_TEMPLATE_INCONSISTENT);
    assert_int_equal(akv_object_generate_key(s, &ggen, bad, 1, &x), CKR_OK);
    /* Generic secrets are not AES keys. */
    assert_int_equal(akv_cipher_encrypt_init(s, &gcm, x),
                     CKR_KEY_TYPE_INCONSISTENT);
}

static void test_set_copy_destroy(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    CK_OBJECT_HANDLE c = 0;
    CK_BBOOL f = CK_FALSE;
    CK_BBOOL t = CK_TRUE;
    CK_ULONG cls = CKO_DATA;
    CK_ATTRIBUTE label = {CKA_LABEL, "dek-1", 5};
    CK_ATTRIBUTE unsens = {CKA_SENSITIVE, &f, sizeof(f)};
    CK_ATTRIBUTE extr = {CKA_EXTRACTABLE, &f, sizeof(f)};
    CK_ATTRIBUTE extr_t = {CKA_EXTRACTABLE, &t, sizeof(t)};
    CK_ATTRIBUTE klass = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ATTRIBUTE sens = {CKA_SENSITIVE, &t, sizeof(t)};
    char buf[16];
    CK_ATTRIBUTE q = {CKA_LABEL, buf, sizeof(buf)};
    CK_ATTRIBUTE data[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_VALUE, "hello", 5}};
    CK_ULONG size = 0;

    (void)state;
    init_with("");
    s = open_session(0);
    k = gen_aes(s, 16, CK_FALSE);
    assert_int_equal(akv_object_set_attrs(s, k, &label, 1), CKR_OK);
    assert_int_equal(akv_object_get_attrs(s, k, &q, 1), CKR_OK);
    assert_int_equal(q.ulValueLen, 5);
    assert_memory_equal(buf, "dek-1", 5);
    assert_int_equal(akv_object_set_attrs(s, k, &klass, 1),
                     CKR_ATTRIBUTE_READ_ONLY);
    assert_int_equal(akv_object_set_attrs(s, k, &sens, 1), CKR_OK);
    assert_int_equal(akv_object_set_attrs(s, k, &unsens, 1),
                     CKR_ATTRIBUTE_READ_ONLY);
    assert_int_equal(akv_object_set_attrs(s, k, &extr, 1), CKR_OK);
    assert_int_equal(akv_object_set_attrs(s, k, &extr_t, 1),
                     CKR_ATTRIBUTE_READ_ONLY);
    assert_int_equal(akv_object_get_size(s, k, &size), CKR_OK);
    assert_true(size > 16);
    assert_int_equal(akv_object_copy(s, k, &label, 1, &c), CKR_OK);
    assert_true(c != k);
    assert_int_equal(akv_object_destroy(s, k), CKR_OK);
    assert_int_equal(akv_object_destroy(s, k), CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(akv_object_get_attrs(s, c, &q, 1), CKR_OK);
    /* Data objects. */
    assert_int_equal(akv_object_create(s, data, 2, &c), CKR_OK);
    q.type = CKA_VALUE;
    q.ulValueLen = sizeof(buf);
    assert_int_equal(akv_object_get_attrs(s, c, &q, 1), CKR_OK);
    assert_memory_equal(buf, "hello", 5);
    /* Missing CKA_CLASS / CKA_VALUE. */
    assert_int_equal(akv_object_create(s, &data[1], 1, &c),
                     CKR_TEMPLATE_INCOMPLETE);
}

/* ---- token objects and revocation ---- */

static void test_token_objects_and_revocation(void **state)
{
    char extra[160];
    CK_SESSION_HANDLE ro;
    CK_SESSION_HANDLE rw;
    CK_OBJECT_HANDLE k;
    CK_OBJECT_HANDLE h[8];
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len32 = 32;
    CK_BBOOL tr = CK_TRUE;
    CK_BBOOL fa = CK_FALSE;
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tt[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)},
                         {CKA_TOKEN, &tr, sizeof(tr)},
                         {CKA_LABEL, "stored", 6},
                         {CKA_SENSITIVE, &fa, sizeof(fa)}};
    CK_ATTRIBUTE fc = {CKA_CLASS, &cls, sizeof(cls)};
    uint8_t iv[16] = {0};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
    uint8_t ct[64];
    uint8_t pt[64];
    CK_ULONG len;
    CK_TOKEN_INFO ti;

    (void)state;
    snprintf(extra, sizeof(extra),
             ",\"key_refresh_s\":3600,\"store_dir\":\"%s\"", store_dir);
    init_with(extra);
    assert_int_equal(akv_slot_get_token_info(0, &ti), CKR_OK);
    assert_false(ti.flags & CKF_WRITE_PROTECTED);
    ro = open_session(0);
    rw = open_session(CKF_RW_SESSION);
    assert_int_equal(akv_object_generate_key(ro, &gen, tt, 4, &k),
                     CKR_SESSION_READ_ONLY);
    assert_int_equal(akv_object_generate_key(rw, &gen, tt, 4, &k), CKR_OK);
    /* First use of the store: the store secret S, then the record key R
     * (docs/STORE.md "Authentication"). */
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 2);
    /* ... and S was unwrapped back once before anything was sealed. */
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    assert_int_equal(akv_cipher_encrypt_init(rw, &cbc, k), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 2);
    len = sizeof(ct);
    assert_int_equal(akv_cipher_encrypt(rw, (CK_BYTE *)"secret", 6, ct, &len),
                     CKR_OK);
    assert_int_equal(len, 16);

    /* Length of a readable token-object value: no vault call. */
    {
        CK_ATTRIBUTE lq = {CKA_VALUE, NULL, 0};
        unsigned before = kv_fake_calls(fake, KV_FAKE_UNWRAP);
        uint8_t v[32];

        assert_int_equal(akv_object_get_attrs(rw, k, &lq, 1), CKR_OK);
        assert_int_equal(lq.ulValueLen, 32);
        assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), before);
        assert_int_equal(get_value(rw, k, v, sizeof(v)), 32);
        assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), before + 1);
    }

    /* "Another process": a fresh token on the same store and vault. */
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    init_with(extra);
    ro = open_session(0);
    assert_int_equal(find(ro, &fc, 1, h, 8), 1);
    k = h[0];
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_cipher_decrypt_init(ro, &cbc, k), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt(ro, ct, 16, pt, &len), CKR_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(pt, "secret", 6);

    /* Revoke: the store is locked; restore: same session works again. */
    kv_fake_fail(fake, KV_FAKE_UNWRAP, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_cipher_decrypt_init(ro, &cbc, k),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    kv_fake_fail(fake, KV_FAKE_UNWRAP, CKR_OK);
    assert_int_equal(akv_cipher_decrypt_init(ro, &cbc, k), CKR_OK);
    len = sizeof(pt);
    assert_int_equal(akv_cipher_decrypt(ro, ct, 16, pt, &len), CKR_OK);
    assert_memory_equal(pt, "secret", 6);

    /* Destroying a token object needs a R/W session and removes it. */
    assert_int_equal(akv_object_destroy(ro, k), CKR_SESSION_READ_ONLY);
    rw = open_session(CKF_RW_SESSION);
    assert_int_equal(akv_object_destroy(rw, k), CKR_OK);
    assert_int_equal(find(ro, &fc, 1, h, 8), 0);
}

static void test_store_shared_between_processes(void **state)
{
    char extra[160];
    CK_SESSION_HANDLE rw;
    CK_OBJECT_HANDLE k;
    CK_OBJECT_HANDLE c = 0;
    CK_OBJECT_HANDLE h[8];
    CK_BBOOL tr = CK_TRUE;
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE fc = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ATTRIBUTE to_token[] = {{CKA_TOKEN, &tr, sizeof(tr)},
                               {CKA_LABEL, "copied", 6}};
    struct akv_store *other = NULL;
    struct akv_store_record *recs = NULL;
    size_t n = 0;

    (void)state;
    snprintf(extra, sizeof(extra),
             ",\"key_refresh_s\":3600,\"store_dir\":\"%s\"", store_dir);
    init_with(extra);
    rw = open_session(CKF_RW_SESSION);
    k = gen_aes(rw, 32, CK_FALSE);
    /* C_CopyObject of a session key into a token object. */
    assert_int_equal(akv_object_copy(rw, k, to_token, 2, &c), CKR_OK);
    assert_int_equal(find(rw, &fc, 1, h, 8), 2);
    /* "Another process" deletes the record: the next find drops it. */
    assert_int_equal(akv_store_open(store_dir, &other), CKR_OK);
    {
        struct akv_seal_ctx sc = {kv_fake_kv(fake), other,
                                  "https://fake.vault.azure.net", NULL, NULL};
        assert_int_equal(akv_seal_ready(&sc, NULL), CKR_OK);
    }
    assert_int_equal(akv_store_list(other, &recs, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(akv_store_delete(other, recs[0].id), CKR_OK);
    akv_store_records_free(recs, n);
    akv_store_close(other);
    assert_int_equal(find(rw, &fc, 1, h, 8), 1);
    assert_int_equal(h[0], k);
}

static void test_unwrap_revoked_then_restored(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek;
    CK_OBJECT_HANDLE pub;
    CK_OBJECT_HANDLE priv;
    CK_OBJECT_HANDLE back = 0;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    uint8_t wrapped[512];
    CK_ULONG wlen = sizeof(wrapped);

    (void)state;
    init_with(",\"key_refresh_s\":3600");
    s = open_session(0);
    dek = gen_aes(s, 16, CK_FALSE);
    pub = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    assert_int_equal(akv_wrap_key(s, &m, pub, dek, wrapped, &wlen), CKR_OK);
    kv_fake_fail(fake, KV_FAKE_UNWRAP | KV_FAKE_WRAP,
                 CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(
        akv_wrap_unwrap(s, &m, priv, wrapped, wlen, NULL, 0, &back),
        CKR_KEY_FUNCTION_NOT_PERMITTED);
    wlen = sizeof(wrapped);
    assert_int_equal(akv_wrap_key(s, &m, pub, dek, wrapped, &wlen),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    kv_fake_fail(fake, KV_FAKE_UNWRAP | KV_FAKE_WRAP, CKR_OK);
    wlen = sizeof(wrapped);
    assert_int_equal(akv_wrap_key(s, &m, pub, dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(
        akv_wrap_unwrap(s, &m, priv, wrapped, wlen, NULL, 0, &back), CKR_OK);
    /* A vault version deleted (404) -> CKR_KEY_HANDLE_INVALID. */
    kv_fake_fail(fake, KV_FAKE_UNWRAP, CKR_KEY_HANDLE_INVALID);
    assert_int_equal(
        akv_wrap_unwrap(s, &m, priv, wrapped, wlen, NULL, 0, &back),
        CKR_KEY_HANDLE_INVALID);
    kv_fake_fail(fake, KV_FAKE_UNWRAP, CKR_OK);
}

static void test_oct_hsm(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[8];
    CK_OBJECT_HANDLE oct = 0;
    CK_OBJECT_HANDLE dek;
    CK_OBJECT_HANDLE back = 0;
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE fc[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_LABEL, "hsmkey", 6}};
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_KWP, NULL, 0};
    uint8_t wrapped[64];
    CK_ULONG wlen = 0;
    uint8_t a[32];
    uint8_t b[32];
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE ut[] = {{CKA_SENSITIVE, &f, sizeof(f)}};

    (void)state;
    kv_fake_add_oct(fake, "hsmkey", 256, ALL_OPS);
    {
        char json[] = "{\"tokens\":[{\"label\":\"hsm\",\"vault_url\":"
                      "\"https://fake.managedhsm.azure.net\",\"keys\":[{"
                      "\"name\":\"hsmkey\"}],\"credential\":{\"type\":"
                      "\"managed_identity\"}}]}";
        struct akv_config *cfg = NULL;
        char err[256];

        assert_int_equal(
            akv_config_parse(json, strlen(json), "t", &cfg, err, sizeof(err)),
            0);
        assert_int_equal(akv_slot_init(cfg, factory), CKR_OK);
    }
    s = open_session(0);
    assert_int_equal(find(s, fc, 2, h, 8), 1);
    oct = h[0];
    dek = gen_aes(s, 32, CK_FALSE);
    assert_int_equal(akv_wrap_key(s, &kw, oct, dek, NULL, &wlen), CKR_OK);
    assert_int_equal(wlen, 40);
    assert_int_equal(akv_wrap_key(s, &kw, oct, dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(akv_wrap_unwrap(s, &kw, oct, wrapped, wlen, ut, 1, &back),
                     CKR_OK);
    assert_int_equal(get_value(s, dek, a, sizeof(a)), 32);
    assert_int_equal(get_value(s, back, b, sizeof(b)), 32);
    assert_memory_equal(a, b, 32);
    wlen = sizeof(wrapped);
    assert_int_equal(akv_wrap_key(s, &kwp, oct, dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(wlen, 40);
    assert_int_equal(akv_wrap_unwrap(s, &kwp, oct, wrapped, wlen, ut, 1, &back),
                     CKR_OK);
}

/* Managed HSM's Get Key does not say an oct-HSM key's size: C_WrapKey /
 * C_UnwrapKey still work (CKM_AES_KEY_WRAP at the key's own size, not an
 * AxxxKW that would have to name it) and CKA_VALUE_LEN is unavailable. */
static void test_oct_hsm_size_unknown(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[8];
    CK_OBJECT_HANDLE dek;
    CK_OBJECT_HANDLE back = 0;
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ULONG vlen = 7;
    CK_ATTRIBUTE fc[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_LABEL, "hsm128", 6}};
    CK_ATTRIBUTE q = {CKA_VALUE_LEN, &vlen, sizeof(vlen)};
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_KWP, NULL, 0};
    uint8_t wrapped[64];
    CK_ULONG wlen = sizeof(wrapped);
    uint8_t a[24];
    uint8_t b[24];
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE ut[] = {{CKA_SENSITIVE, &f, sizeof(f)}};
    char json[] = "{\"tokens\":[{\"label\":\"hsm\",\"vault_url\":"
                  "\"https://fake.managedhsm.azure.net\",\"keys\":[{"
                  "\"name\":\"hsm128\"}],\"credential\":{\"type\":"
                  "\"managed_identity\"}}]}";
    struct akv_config *cfg = NULL;
    char err[256];

    (void)state;
    kv_fake_add_oct(fake, "hsm128", 128, ALL_OPS);
    kv_fake_hide_size(fake, "hsm128");
    assert_int_equal(
        akv_config_parse(json, strlen(json), "t", &cfg, err, sizeof(err)), 0);
    assert_int_equal(akv_slot_init(cfg, factory), CKR_OK);
    s = open_session(0);
    assert_int_equal(find(s, fc, 2, h, 8), 1);
    assert_int_equal(akv_object_get_attrs(s, h[0], &q, 1),
                     CKR_ATTRIBUTE_TYPE_INVALID);
    assert_int_equal(q.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    dek = gen_aes(s, 24, CK_FALSE);
    assert_int_equal(akv_wrap_key(s, &kw, h[0], dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(wlen, 32);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_CKM_AES_KEY_WRAP);
    assert_int_equal(akv_wrap_unwrap(s, &kw, h[0], wrapped, wlen, ut, 1, &back),
                     CKR_OK);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_CKM_AES_KEY_WRAP);
    assert_int_equal(get_value(s, dek, a, sizeof(a)), 24);
    assert_int_equal(get_value(s, back, b, sizeof(b)), 24);
    assert_memory_equal(a, b, 24);
    wlen = sizeof(wrapped);
    assert_int_equal(akv_wrap_key(s, &kwp, h[0], dek, wrapped, &wlen), CKR_OK);
    assert_int_equal(kv_fake_last_alg(fake), AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD);
    assert_int_equal(
        akv_wrap_unwrap(s, &kwp, h[0], wrapped, wlen, ut, 1, &back), CKR_OK);
}

static void test_pinned_version(void **state)
{
    char json[512];
    struct akv_config *cfg = NULL;
    char err[256];
    const char *v1 = kv_fake_version(fake, "cmk", 0);
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h[8];
    uint8_t id[16];
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ATTRIBUTE q = {CKA_ID, id, sizeof(id)};

    (void)state;
    kv_fake_rotate(fake, "cmk");
    /* Current and a pinned older version, both listed. */
    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"p\",\"vault_url\":\"https://fake."
             "vault.azure.net\",\"keys\":[{\"name\":\"cmk\"},{\"name\":"
             "\"cmk\",\"version\":\"%s\"}],\"credential\":{\"type\":"
             "\"managed_identity\"}}]}",
             v1);
    assert_int_equal(
        akv_config_parse(json, strlen(json), "t", &cfg, err, sizeof(err)), 0);
    assert_int_equal(akv_slot_init(cfg, factory), CKR_OK);
    s = open_session(0);
    assert_int_equal(find(s, &t, 1, h, 8), 2);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 2);
    version_id(v1, id);
    assert_int_equal(find(s, &q, 1, h, 8), 2);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 2);
}

static void test_dek_cache_ttl(void **state)
{
    char extra[200];
    CK_SESSION_HANDLE rw;
    CK_OBJECT_HANDLE k;
    uint8_t iv[16] = {0};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};

    (void)state;
    snprintf(extra, sizeof(extra),
             ",\"key_refresh_s\":3600,\"dek_cache_ttl_s\":300,"
             "\"store_dir\":\"%s\"",
             store_dir);
    init_with(extra);
    rw = open_session(CKF_RW_SESSION);
    k = gen_aes(rw, 16, CK_TRUE);
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_cipher_encrypt_init(rw, &cbc, k), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
    assert_int_equal(akv_session_close(rw), CKR_OK);
    rw = open_session(CKF_RW_SESSION);
    assert_int_equal(akv_cipher_encrypt_init(rw, &cbc, k), CKR_OK);
    /* Served from the DEK cache. */
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_UNWRAP), 1);
}

#define HAMMER_THREADS 8
#define HAMMER_ROUNDS  25

static CK_OBJECT_HANDLE hammer_pub;
static CK_OBJECT_HANDLE hammer_priv;

static void *hammer(void *arg)
{
    CK_SESSION_HANDLE s = 0;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                        {CKA_SENSITIVE, &f, sizeof(f)}};
    uintptr_t bad = 0;

    (void)arg;
    if (akv_session_open(0, CKF_SERIAL_SESSION, &s) != CKR_OK) {
        return (void *)1;
    }
    for (int i = 0; i < HAMMER_ROUNDS && bad == 0; i++) {
        CK_OBJECT_HANDLE k = 0;
        CK_OBJECT_HANDLE back = 0;
        CK_OBJECT_HANDLE found[8];
        CK_ULONG n = 0;
        uint8_t w[256];
        CK_ULONG wl = sizeof(w);
        uint8_t a[32];
        uint8_t b[32];
        CK_ATTRIBUTE qa = {CKA_VALUE, a, sizeof(a)};
        CK_ATTRIBUTE qb = {CKA_VALUE, b, sizeof(b)};

        if (akv_object_generate_key(s, &gen, t, 2, &k) != CKR_OK
            || akv_wrap_key(s, &m, hammer_pub, k, w, &wl) != CKR_OK
            || akv_wrap_unwrap(s, &m, hammer_priv, w, wl, t + 1, 1, &back)
                   != CKR_OK
            || akv_object_get_attrs(s, k, &qa, 1) != CKR_OK
            || akv_object_get_attrs(s, back, &qb, 1) != CKR_OK
            || memcmp(a, b, 32) != 0
            || akv_object_find_init(s, NULL, 0) != CKR_OK
            || akv_object_find(s, found, 8, &n) != CKR_OK
            || akv_object_find_final(s) != CKR_OK
            || akv_object_destroy(s, k) != CKR_OK
            || akv_object_destroy(s, back) != CKR_OK) {
            bad = 2;
        }
    }
    if (akv_session_close(s) != CKR_OK) {
        bad = 3;
    }
    return (void *)bad;
}

static void test_threads(void **state)
{
    pthread_t th[HAMMER_THREADS];
    CK_SESSION_HANDLE s;

    (void)state;
    init_with(",\"key_refresh_s\":0");
    s = open_session(0);
    hammer_pub = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    hammer_priv = find_one(s, CKO_PRIVATE_KEY, NULL, 0);
    for (int i = 0; i < HAMMER_THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    }
    for (int i = 0; i < HAMMER_THREADS; i++) {
        void *r = NULL;

        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP),
                     HAMMER_THREADS * HAMMER_ROUNDS);
}

/* Regressions found by tests/integration/abuse.c. */
static void test_abuse_regressions(void **state)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek;
    CK_OBJECT_HANDLE pub;
    CK_OBJECT_HANDLE data;
    CK_OBJECT_HANDLE h = 0;
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &oaep256, sizeof(oaep256)};
    CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0};
    uint8_t in[256] = {1, 2, 3};
    uint8_t out[512];
    uint8_t single[32];
    CK_ULONG len;
    CK_OBJECT_CLASS dc = CKO_DATA;
    CK_OBJECT_CLASS sc = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL t = CK_TRUE;
    uint8_t key16[16] = {0};
    uint8_t app[] = "app";

    (void)state;
    init_with("");
    s = open_session(CKF_RW_SESSION);
    dek = gen_aes(s, 16, CK_FALSE);
    pub = find_one(s, CKO_PUBLIC_KEY, NULL, 0);
    data = make_data_obj(s);

    /* 1. C_Encrypt short buffer, then C_EncryptUpdate/Final: refused, the
     * single-part result is not handed out by the final call. */
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, dek), CKR_OK);
    len = 1;
    assert_int_equal(akv_cipher_encrypt(s, in, 32, single, &len),
                     CKR_BUFFER_TOO_SMALL);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt_update(s, in, 16, out, &len),
                     CKR_OPERATION_ACTIVE);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt_final(s, out, &len),
                     CKR_OPERATION_ACTIVE);
    len = sizeof(single);
    assert_int_equal(akv_cipher_encrypt(s, in, 32, single, &len), CKR_OK);
    assert_int_equal(len, 32);
    /* ... and a final call's kept block is not a single-part answer. */
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, dek), CKR_OK);
    len = 0;
    assert_int_equal(akv_cipher_encrypt_final(s, NULL, &len), CKR_OK);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, in, 16, out, &len),
                     CKR_OPERATION_ACTIVE);
    assert_int_equal(akv_cipher_encrypt_final(s, out, &len), CKR_OK);

    /* 2. RSA encrypt input bound, also on the length query (RFC 8017). */
    assert_int_equal(akv_cipher_encrypt_init(s, &oaep, pub), CKR_OK);
    len = 0;
    assert_int_equal(akv_cipher_encrypt(s, in, 256 - 65, NULL, &len),
                     CKR_DATA_LEN_RANGE);
    assert_int_equal(akv_cipher_encrypt_init(s, &oaep, pub), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, in, 256 - 66, NULL, &len), CKR_OK);
    assert_int_equal(len, 256);
    len = sizeof(out);
    assert_int_equal(akv_cipher_encrypt(s, in, 256 - 66, out, &len), CKR_OK);
    assert_int_equal(akv_cipher_encrypt_init(s, &pkcs, pub), CKR_OK);
    assert_int_equal(akv_cipher_encrypt(s, in, 256 - 10, NULL, &len),
                     CKR_DATA_LEN_RANGE);

    /* 3. A data object is not a key. */
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, data),
                     CKR_KEY_HANDLE_INVALID);
    assert_int_equal(akv_cipher_decrypt_init(s, &ecb, data),
                     CKR_KEY_HANDLE_INVALID);
    assert_int_equal(akv_wrap_unwrap(s, &pkcs, data, in, 256, NULL, 0, &h),
                     CKR_UNWRAPPING_KEY_HANDLE_INVALID);

    /* 4. Attributes of another class (v3.0 §4.5 / §4.10). */
    {
        CK_ATTRIBUTE d[] = {{CKA_CLASS, &dc, sizeof(dc)},
                            {CKA_SENSITIVE, &t, 1}};
        CK_ATTRIBUTE k[] = {{CKA_CLASS, &sc, sizeof(sc)},
                            {CKA_KEY_TYPE, &aes, sizeof(aes)},
                            {CKA_VALUE, key16, sizeof(key16)},
                            {CKA_APPLICATION, app, 3}};

        assert_int_equal(akv_object_create(s, d, 2, &h),
                         CKR_ATTRIBUTE_TYPE_INVALID);
        assert_int_equal(akv_object_create(s, k, 4, &h),
                         CKR_ATTRIBUTE_TYPE_INVALID);
        assert_int_equal(akv_object_set_attrs(s, data, &d[1], 1),
                         CKR_ATTRIBUTE_TYPE_INVALID);
        assert_int_equal(akv_object_set_attrs(s, dek, &k[3], 1),
                         CKR_ATTRIBUTE_TYPE_INVALID);
        assert_int_equal(akv_object_copy(s, data, &d[1], 1, &h),
                         CKR_ATTRIBUTE_TYPE_INVALID);
    }

    /* 5. CKA_WRAP_WITH_TRUSTED: no trusted wrapping key exists here. */
    {
        CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
        CK_ULONG vl = 16;
        CK_ATTRIBUTE g[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                            {CKA_WRAP_WITH_TRUSTED, &t, 1}};
        CK_OBJECT_HANDLE k = 0;

        assert_int_equal(akv_object_generate_key(s, &gen, g, 2, &k), CKR_OK);
        kv_fake_reset_calls(fake);
        len = 0;
        assert_int_equal(akv_wrap_key(s, &pkcs, pub, k, NULL, &len),
                         CKR_KEY_NOT_WRAPPABLE);
        assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 0);
    }
}

/* More regressions from tests/integration/abuse.c: CKA_ALLOWED_MECHANISMS
 * was not enforced; a token object whose attributes exceed the store's
 * record limit failed only after the vault call; an over-long GCM
 * ciphertext gave an encrypt-side code. */
static void test_abuse_regressions_2(void **state)
{
    char extra[160];
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k = 0;
    CK_OBJECT_HANDLE h = 0;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM_TYPE only_gcm[] = {CKM_AES_GCM};
    CK_ULONG vl = 16;
    CK_BBOOL tr = CK_TRUE;
    CK_ATTRIBUTE am[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                         {CKA_ALLOWED_MECHANISMS, only_gcm, sizeof(only_gcm)}};
    uint8_t iv[12] = {0};
    CK_GCM_PARAMS gp = {iv, sizeof(iv), 96, NULL, 0, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
    size_t big = 70000;
    uint8_t *lbl = calloc(1, big);
    CK_ATTRIBUTE tok[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                          {CKA_TOKEN, &tr, 1},
                          {CKA_LABEL, lbl, (CK_ULONG)big}};
    size_t huge = 64u * 1024u * 1024u + 16u;
    uint8_t *ct = calloc(1, huge);
    uint8_t out[16];
    CK_ULONG len;

    (void)state;
    assert_non_null(lbl);
    assert_non_null(ct);
    snprintf(extra, sizeof(extra),
             ",\"key_refresh_s\":3600,\"store_dir\":\"%s\"", store_dir);
    init_with(extra);
    s = open_session(CKF_RW_SESSION);
    /* CKA_ALLOWED_MECHANISMS (v3.0 §4.7). */
    assert_int_equal(akv_object_generate_key(s, &gen, am, 2, &k), CKR_OK);
    assert_int_equal(akv_cipher_encrypt_init(s, &ecb, k),
                     CKR_MECHANISM_INVALID);
    assert_int_equal(akv_cipher_decrypt_init(s, &ecb, k),
                     CKR_MECHANISM_INVALID);
    assert_int_equal(akv_cipher_decrypt_init(s, &gcm, k), CKR_OK);
    /* GCM decrypt input beyond the buffer bound: ciphertext-side code. */
    len = sizeof(out);
    assert_int_equal(
        akv_cipher_decrypt_update(s, ct, (CK_ULONG)huge, out, &len),
        CKR_ENCRYPTED_DATA_LEN_RANGE);
    /* Token object attributes over the store limit: no vault call. */
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_object_generate_key(s, &gen, tok, 3, &h),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_WRAP), 0);
    tok[2].ulValueLen = 4;
    assert_int_equal(akv_object_generate_key(s, &gen, tok, 3, &h), CKR_OK);
    tok[2].ulValueLen = (CK_ULONG)big;
    assert_int_equal(akv_object_set_attrs(s, h, &tok[2], 1),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    free(lbl);
    free(ct);
}

/* A thread that used the token's OpenSSL context and outlives
 * akv_slot_finalize must exit cleanly (OpenSSL runs per-thread cleanup
 * for the context at thread exit; the context used to be freed). */
static pthread_mutex_t surv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t surv_cv = PTHREAD_COND_INITIALIZER;
static int surv_stage;

static void *survivor(void *arg)
{
    CK_SESSION_HANDLE s = *(CK_SESSION_HANDLE *)arg;
    uint8_t rnd[32];
    CK_RV rv = akv_cipher_random(s, rnd, sizeof(rnd));

    pthread_mutex_lock(&surv_mu);
    surv_stage = 1;
    pthread_cond_broadcast(&surv_cv);
    while (surv_stage != 2) {
        pthread_cond_wait(&surv_cv, &surv_mu);
    }
    pthread_mutex_unlock(&surv_mu);
    return rv == CKR_OK ? NULL : (void *)1;
}

static void test_thread_outlives_finalize(void **state)
{
    CK_SESSION_HANDLE s;
    pthread_t th;
    void *r = (void *)2;
    uint8_t rnd[8];

    (void)state;
    init_with("");
    s = open_session(0);
    surv_stage = 0;
    assert_int_equal(pthread_create(&th, NULL, survivor, &s), 0);
    pthread_mutex_lock(&surv_mu);
    while (surv_stage != 1) {
        pthread_cond_wait(&surv_cv, &surv_mu);
    }
    pthread_mutex_unlock(&surv_mu);
    assert_int_equal(akv_slot_finalize(), CKR_OK);
    pthread_mutex_lock(&surv_mu);
    surv_stage = 2;
    pthread_cond_broadcast(&surv_cv);
    pthread_mutex_unlock(&surv_mu);
    assert_int_equal(pthread_join(th, &r), 0);
    assert_null(r);
    /* The context is reused by the next initialisation. */
    init_with("");
    s = open_session(0);
    assert_int_equal(akv_cipher_random(s, rnd, sizeof(rnd)), CKR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_find_empty_and_attrs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_find_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_vault_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_failure_remembered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_find_refusal_remembered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rotation_fallback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_fallback_catalog, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrap_rotate_unwrap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrap_length_and_checks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrap_local_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_local_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decrypt_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_objects_die_with_session,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_aes_known_answers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_ends_operation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_import_public_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_key_attrs_every_kind, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gcm_v240_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_key_roundtrip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_copy_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_objects_and_revocation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_revoked_then_restored,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_oct_hsm_size_unknown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_oct_hsm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pinned_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_shared_between_processes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dek_cache_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abuse_regressions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_abuse_regressions_2, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_thread_outlives_finalize, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
