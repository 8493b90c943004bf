/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for token/store_codec.c and token/store_manifest.c without the
 * disk: each format round-trips, and every single-byte change of an image
 * is refused. Plus golden images: the bytes the store wrote before the
 * formats moved out of store.c (same secret, same records).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "token/store.h"
#include "token/store_codec.h"
#include "token/store_manifest.h"

static const uint8_t KEY[32] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
                                0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
                                0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f};

#define KID "https://v.vault.azure.net/keys/k/abc"

static uint8_t g_wr[300], g_attrs[77], g_sealed[90];

/* The record of the golden images (and of the round trips). */
static struct akv_store_record sample(const char *id, uint64_t gen,
                                      size_t attrs_len)
{
    struct akv_store_record r;

    for (size_t i = 0; i < sizeof(g_wr); i++) {
        g_wr[i] = (uint8_t)(i * 7);
    }
    for (size_t i = 0; i < sizeof(g_attrs); i++) {
        g_attrs[i] = (uint8_t)(i * 3 + 1);
    }
    for (size_t i = 0; i < sizeof(g_sealed); i++) {
        g_sealed[i] = (uint8_t)(i ^ 0x5a);
    }
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    r.generation = gen;
    r.attrs = g_attrs;
    r.attrs_len = attrs_len;
    r.kid = (char *)KID;
    r.alg = (char *)"A256GCM";
    r.wrapped = g_wr;
    r.wrapped_len = sizeof(g_wr);
    r.sealed = g_sealed;
    r.sealed_len = sizeof(g_sealed);
    return r;
}

static void test_record_round_trip_and_flips(void **state)
{
    struct akv_store_record in = sample("rec-1", 42, 77), out;
    uint8_t *img = NULL, other[32];
    size_t len = 0;
    const char *why = NULL;

    (void)state;
    assert_int_equal(akv_store_codec_encode2(KEY, &in, &img, &len), CKR_OK);
    assert_int_equal(len,
                     STORE2_FIXED_LEN + 5 + 77 + strlen(KID) + 7 + 300 + 90);
    assert_int_equal(akv_store_codec_decode(KEY, "rec-1", img, len, &out, &why),
                     CKR_OK);
    assert_string_equal(out.id, "rec-1");
    assert_int_equal(out.format, AKV_STORE_FORMAT_V2);
    assert_int_equal(out.generation, 42);
    assert_int_equal(out.attrs_len, 77);
    assert_memory_equal(out.attrs, g_attrs, 77);
    assert_string_equal(out.kid, KID);
    assert_string_equal(out.alg, "A256GCM");
    assert_int_equal(out.wrapped_len, 300);
    assert_memory_equal(out.wrapped, g_wr, 300);
    assert_int_equal(out.sealed_len, 90);
    assert_memory_equal(out.sealed, g_sealed, 90);
    akv_store_record_clear(&out);

    /* Another id or another key: the HMAC binds both. */
    assert_int_equal(akv_store_codec_decode(KEY, "rec-2", img, len, &out, &why),
                     CKR_SIGNATURE_INVALID);
    memcpy(other, KEY, sizeof(other));
    other[31] ^= 1;
    assert_int_equal(
        akv_store_codec_decode(other, "rec-1", img, len, &out, &why),
        CKR_SIGNATURE_INVALID);
    assert_null(out.kid);

    /* Every byte changed (low bit, all bits) and every truncation. */
    for (size_t i = 0; i < len; i++) {
        for (int m = 0; m < 2; m++) {
            img[i] ^= m == 0 ? 0x01 : 0xff;
            assert_int_not_equal(
                akv_store_codec_decode(KEY, "rec-1", img, len, &out, &why),
                CKR_OK);
            assert_null(out.kid);
            assert_null(out.sealed);
            img[i] ^= m == 0 ? 0x01 : 0xff;
        }
        assert_int_not_equal(
            akv_store_codec_decode(KEY, "rec-1", img, i, &out, &why), CKR_OK);
    }
    free(img);
}

static void test_manifest_round_trip_and_flips(void **state)
{
    struct manifest m = {NULL, 0, 0}, got;
    struct man_entry *e = NULL;
    uint8_t *img = NULL;
    size_t len = 0;
    const char *why = NULL;

    (void)state;
    e = akv_store_manifest_add(&m, "aa");
    assert_non_null(e);
    e->cur = 7;
    e->pending = 0x0102030405060708ull;
    e = akv_store_manifest_add(&m, "legacy_1");
    assert_non_null(e);
    e->flags = MAN_HAS_HASH;
    memset(e->hash, 0xab, sizeof(e->hash));
    assert_int_equal(akv_store_manifest_encode(KEY, &m, &img, &len), CKR_OK);
    assert_int_equal(len, 8 + 4 + (1 + 2 + 17) + (1 + 8 + 17 + 32) + 32);
    assert_int_equal(akv_store_manifest_decode(KEY, img, len, &got, &why),
                     CKR_OK);
    assert_int_equal(got.n, 2);
    e = akv_store_manifest_find(&got, "aa");
    assert_non_null(e);
    assert_int_equal(e->flags, 0);
    assert_int_equal(e->cur, 7);
    assert_int_equal(e->pending, 0x0102030405060708ull);
    e = akv_store_manifest_find(&got, "legacy_1");
    assert_non_null(e);
    assert_int_equal(e->flags, MAN_HAS_HASH);
    assert_memory_equal(e->hash, m.e[1].hash, 32);
    akv_store_manifest_remove(&got, "aa");
    assert_int_equal(got.n, 1);
    assert_null(akv_store_manifest_find(&got, "aa"));
    akv_store_manifest_free(&got);

    for (size_t i = 0; i < len; i++) {
        img[i] ^= 0x01;
        assert_int_not_equal(
            akv_store_manifest_decode(KEY, img, len, &got, &why), CKR_OK);
        assert_int_equal(got.n, 0);
        img[i] ^= 0x01;
        assert_int_not_equal(akv_store_manifest_decode(KEY, img, i, &got, &why),
                             CKR_OK);
    }
    free(img);
    akv_store_manifest_free(&m);
}

static void test_storekey_round_trip_and_flips(void **state)
{
    struct akv_store_key in = {(char *)KID, (char *)"RSA-OAEP-256", g_wr, 256};
    struct akv_store_key out;
    uint8_t *img = NULL;
    size_t len = 0;

    (void)state;
    (void)sample("x", 1, 0); /* fills g_wr */
    assert_true(akv_store_codec_key_valid(&in));
    assert_int_equal(akv_store_codec_key_encode(&in, &img, &len), CKR_OK);
    assert_int_equal(len, 8 + 2 + strlen(KID) + 2 + 12 + 4 + 256 + 4);
    assert_int_equal(akv_store_codec_key_decode(img, len, &out), CKR_OK);
    assert_string_equal(out.kid, KID);
    assert_string_equal(out.alg, "RSA-OAEP-256");
    assert_int_equal(out.wrapped_len, 256);
    assert_memory_equal(out.wrapped, g_wr, 256);
    akv_store_key_clear(&out);
    for (size_t i = 0; i < len; i++) {
        img[i] ^= 0x01;
        assert_int_equal(akv_store_codec_key_decode(img, len, &out),
                         CKR_DEVICE_ERROR);
        assert_null(out.kid);
        img[i] ^= 0x01;
        assert_int_equal(akv_store_codec_key_decode(img, i, &out),
                         CKR_DEVICE_ERROR);
    }
    free(img);
}

static void sha256_hex(const uint8_t *buf, size_t len, char hex[65])
{
    uint8_t h[32];

    assert_int_equal(EVP_Q_digest(NULL, "SHA256", NULL, buf, len, h, NULL), 1);
    for (size_t i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    }
}

static size_t read_whole(const char *path, uint8_t *buf, size_t max)
{
    FILE *fp = fopen(path, "rb");
    size_t n = 0;

    assert_non_null(fp);
    n = fread(buf, 1, max, fp);
    fclose(fp);
    return n;
}

/* SHA-256 of the files the store wrote (S = 1..32, the records of
 * sample()) before the split into store_codec.c and store_manifest.c:
 * the move must not change one byte on disk. */
static void test_golden_images(void **state)
{
    static const uint8_t s[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                  23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    static const struct {
        const char *name, *sha256;
    } want[] = {
        {"golden.obj",
         "dbd48b63d09a39acca0935eefd0fc4c2dc1f8783b1ff63c409262a04c0de40b5"},
        {"other.obj",
         "2aa9713473642bc9f8a628680c84f2ef07f8947d9e6c7ab742a3d951f7537c6e"},
        {".manifest",
         "febf161a5e96f5e46b02ae1d1fe5a7ce2bd9f13fc61270a2c5e2be40ea293bda"},
    };
    struct akv_store_key key = {(char *)KID, (char *)"RSA-OAEP-256", g_wr, 256};
    struct akv_store *st = NULL;
    struct akv_store_record r = sample("golden", 0x0102030405060708ull, 77);
    char root[] = "/tmp/akv-codec-test.XXXXXX", path[128], hex[65], cmd[160];
    uint8_t buf[1024], *img = NULL;
    size_t len = 0;

    (void)state;
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof(path), "%s/s", root);
    assert_int_equal(akv_store_open(path, &st), CKR_OK);
    assert_int_equal(akv_store_set_secret(st, s, sizeof(s)), CKR_OK);
    assert_int_equal(akv_store_put(st, &r), CKR_OK);
    r = sample("other", 9, 0);
    assert_int_equal(akv_store_put(st, &r), CKR_OK);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(path, sizeof(path), "%s/s/%s", root, want[i].name);
        len = read_whole(path, buf, sizeof(buf));
        sha256_hex(buf, len, hex);
        assert_string_equal(hex, want[i].sha256);
    }
    assert_int_equal(akv_store_codec_key_encode(&key, &img, &len), CKR_OK);
    sha256_hex(img, len, hex);
    assert_string_equal(
        hex,
        "40956c83a14f941729a660c662362cb8a94eaa08c99bed460f14ba417c36dbdf");
    free(img);
    akv_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip_and_flips),
        cmocka_unit_test(test_manifest_round_trip_and_flips),
        cmocka_unit_test(test_storekey_round_trip_and_flips),
        cmocka_unit_test(test_golden_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
