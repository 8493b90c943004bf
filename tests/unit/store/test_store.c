/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for token/store.c: round trip, atomic replace, compare-and-swap,
 * strict parsing of corrupt files, permissions, concurrent writers from
 * several processes, temp-file sweep and the change stamp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "common/log.h"
#include "legacy.h"
#include "token/store.h"

/* The store secret S of every fixture (tests play a reader who knows it). */
static const uint8_t SECRET[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                   12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                   23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* Reference HKDF-SHA256 (RFC 5869) + HMAC-SHA256 of docs/STORE.md,
 * independent of store.c: the MAC key of records (which 0) or of the
 * manifest (which 1). */
static void ref_key(int which, uint8_t out[32])
{
    const char *info = which == 0 ? "akv-pkcs11 store record v2"
                                  : "akv-pkcs11 store manifest v2";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[4];
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                            (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)SECRET,
                                             sizeof(SECRET));
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                             strlen(info));
    p[3] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_KDF_derive(ctx, out, 32, p), 1);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
}

/* Rewrites the trailing HMAC of a record image (what only a holder of S
 * can do), so only the field checks can reject BUF. */
static void fix_mac(int which, uint8_t *buf, size_t len)
{
    uint8_t k[32];
    unsigned int n = 0;
    ref_key(which, k);
    assert_non_null(
        HMAC(EVP_sha256(), k, 32, buf, len - 32, buf + len - 32, &n));
    assert_int_equal(n, 32);
}

#define KID_A                                                                  \
    "https://v.vault.azure.net/keys/cmk/0123456789abcdef0123456789abcdef"

struct fixture {
    char root[64]; /* mkdtemp folder, removed afterwards */
    char dir[128]; /* the store folder inside it */
    struct akv_store *store;
};

/* Reference CRC-32 (bitwise, independent of the table in store.c). */
static uint32_t ref_crc32(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void rm_rf(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->root, sizeof(f->root), "/tmp/akv-store-test.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof(f->dir), "%s/a/store", f->root);
    assert_int_equal(akv_store_open(f->dir, &f->store), CKR_OK);
    assert_int_equal(akv_store_set_secret(f->store, SECRET, sizeof(SECRET)),
                     CKR_OK);
    *state = f;
    return 0;
}

/* Opens DIR and gives it the fixture's secret, as token/seal.c would. */
static CK_RV open_keyed(const char *dir, struct akv_store **st)
{
    CK_RV rv = akv_store_open(dir, st);
    if (rv == CKR_OK) {
        rv = akv_store_set_secret(*st, SECRET, sizeof(SECRET));
    }
    return rv;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    akv_store_close(f->store);
    rm_rf(f->root);
    free(f);
    return 0;
}

/* A record whose contents are derived from SEED, so readers can check it. */
struct sample {
    struct akv_store_record rec;
    uint8_t attrs[64];
    uint8_t wrapped[256];
    uint8_t sealed[60];
    char kid[200];
    char alg[16];
};

static void sample_make(struct sample *s, const char *id, unsigned seed)
{
    memset(s, 0, sizeof(*s));
    if (id != NULL) {
        snprintf(s->rec.id, sizeof(s->rec.id), "%s", id);
    }
    for (size_t i = 0; i < sizeof(s->attrs); i++) {
        s->attrs[i] = (uint8_t)(seed * 31u + i);
    }
    for (size_t i = 0; i < sizeof(s->wrapped); i++) {
        s->wrapped[i] = (uint8_t)(seed * 7u + i * 13u);
    }
    snprintf(s->kid, sizeof(s->kid), "https://v.vault.azure.net/keys/cmk/%032x",
             seed);
    snprintf(s->alg, sizeof(s->alg), "RSA-OAEP-256");
    s->rec.attrs = s->attrs;
    s->rec.attrs_len = sizeof(s->attrs);
    s->rec.wrapped = s->wrapped;
    s->rec.wrapped_len = sizeof(s->wrapped);
    for (size_t i = 0; i < sizeof(s->sealed); i++) {
        s->sealed[i] = (uint8_t)(seed * 5u + i * 3u);
    }
    s->rec.kid = s->kid;
    s->rec.alg = s->alg;
    s->rec.sealed = s->sealed;
    s->rec.sealed_len = sizeof(s->sealed);
    s->rec.generation = 1000u + seed;
    s->rec.format = AKV_STORE_FORMAT_V2;
}

/* True when R holds exactly what sample_make(SEED) produced. */
static bool sample_matches(const struct akv_store_record *r, unsigned seed)
{
    struct sample s;
    sample_make(&s, NULL, seed);
    return r->attrs_len == sizeof(s.attrs)
           && memcmp(r->attrs, s.attrs, sizeof(s.attrs)) == 0
           && r->wrapped_len == sizeof(s.wrapped)
           && memcmp(r->wrapped, s.wrapped, sizeof(s.wrapped)) == 0
           && strcmp(r->kid, s.kid) == 0 && strcmp(r->alg, s.alg) == 0
           && r->format == AKV_STORE_FORMAT_V2
           && r->generation == s.rec.generation
           && r->sealed_len == sizeof(s.sealed)
           && memcmp(r->sealed, s.sealed, sizeof(s.sealed)) == 0;
}

/* Counts folder entries: *.obj files and temp files. */
static void count_files(const char *dir, int *objs, int *tmps)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    *objs = 0;
    *tmps = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strstr(de->d_name, ".tmp.") != NULL) {
            (*tmps)++;
        } else if (len > 4 && strcmp(de->d_name + len - 4, ".obj") == 0) {
            (*objs)++;
        }
    }
    closedir(d);
}

static void path_of(const struct fixture *f, const char *name, char *out,
                    size_t len)
{
    snprintf(out, len, "%s/%s", f->dir, name);
}

static size_t read_whole(const char *path, uint8_t *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    size_t n;
    assert_non_null(fp);
    n = fread(buf, 1, cap, fp);
    assert_true(n < cap);
    fclose(fp);
    return n;
}

static void write_whole(const char *path, const uint8_t *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len > 0) {
        assert_int_equal(fwrite(buf, 1, len, fp), len);
    }
    assert_int_equal(fclose(fp), 0);
}

static void test_crc_reference(void **state)
{
    (void)state;
    /* The standard check value of CRC-32/ISO-HDLC. */
    assert_int_equal(ref_crc32((const uint8_t *)"123456789", 9), 0xcbf43926u);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct sample s;
    struct akv_store_record got;
    struct akv_store_record *list = NULL;
    size_t n = 0;
    char id[AKV_STORE_ID_LEN + 1];

    sample_make(&s, NULL, 1);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    /* An empty id is replaced by 32 random lower-case hex digits. */
    assert_int_equal(strlen(s.rec.id), AKV_STORE_ID_LEN);
    assert_int_equal(strspn(s.rec.id, "0123456789abcdef"), AKV_STORE_ID_LEN);
    snprintf(id, sizeof(id), "%s", s.rec.id);

    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, id, &got), CKR_OK);
    assert_string_equal(got.id, id);
    assert_true(sample_matches(&got, 1));
    akv_store_record_clear(&got);
    assert_null(got.kid);
    assert_int_equal(got.wrapped_len, 0);

    assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, id);
    assert_true(sample_matches(&list[0], 1));
    akv_store_records_free(list, n);

    assert_int_equal(akv_store_delete(f->store, id), CKR_OK);
    assert_int_equal(akv_store_get(f->store, id, &got),
                     CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(akv_store_delete(f->store, id), CKR_OK);
    assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
    assert_int_equal(n, 0);
    akv_store_records_free(list, n);
}

static void test_list_sorted_and_empty_attrs(void **state)
{
    struct fixture *f = *state;
    static const char *ids[] = {"zz", "a1", "M-9", "b_2", "00"};
    struct akv_store_record *list = NULL;
    size_t n = 0;

    for (unsigned i = 0; i < 5; i++) {
        struct sample s;
        sample_make(&s, ids[i], i);
        assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    }
    {
        struct sample s;
        sample_make(&s, "noattrs", 9);
        s.rec.attrs = NULL;
        s.rec.attrs_len = 0;
        assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    }
    assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
    assert_int_equal(n, 6);
    for (size_t i = 1; i < n; i++) {
        assert_true(strcmp(list[i - 1].id, list[i].id) < 0);
    }
    assert_string_equal(list[0].id, "00");
    assert_true(sample_matches(&list[0], 4));
    assert_string_equal(list[5].id, "zz");
    assert_string_equal(list[4].id, "noattrs");
    assert_int_equal(list[4].attrs_len, 0);
    assert_int_equal(list[4].wrapped_len, 256);
    akv_store_records_free(list, n);
}

static void test_file_format(void **state)
{
    struct fixture *f = *state;
    struct sample s;
    uint8_t want[1024], have[1024];
    size_t w = 0, h;
    char path[256];

    sample_make(&s, "fmt", 5);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    /* docs/STORE.md, version 2, little-endian. */
    memcpy(want, "AKVOBJ2\n", 8);
    w = 8;
    want[w++] = 3;
    memcpy(want + w, "fmt", 3);
    w += 3;
    want[w++] = (uint8_t)(1005 & 0xff), want[w++] = (uint8_t)(1005 >> 8);
    memset(want + w, 0, 6);
    w += 6;
    want[w++] = 64, want[w++] = 0, want[w++] = 0, want[w++] = 0;
    memcpy(want + w, s.attrs, 64);
    w += 64;
    want[w++] = (uint8_t)strlen(s.kid), want[w++] = 0;
    memcpy(want + w, s.kid, strlen(s.kid));
    w += strlen(s.kid);
    want[w++] = 12, want[w++] = 0;
    memcpy(want + w, "RSA-OAEP-256", 12);
    w += 12;
    want[w++] = 0, want[w++] = 1, want[w++] = 0, want[w++] = 0; /* 256 */
    memcpy(want + w, s.wrapped, 256);
    w += 256;
    want[w++] = 60, want[w++] = 0, want[w++] = 0, want[w++] = 0;
    memcpy(want + w, s.sealed, 60);
    w += 60;
    w += 32;
    fix_mac(0, want, w);
    path_of(f, "fmt.obj", path, sizeof(path));
    h = read_whole(path, have, sizeof(have));
    assert_int_equal(h, w);
    assert_memory_equal(have, want, w);
}

static void test_replace_keeps_one_file(void **state)
{
    struct fixture *f = *state;
    struct akv_store_record got;
    int objs, tmps;

    for (unsigned i = 0; i < 10; i++) {
        struct sample s;
        sample_make(&s, "same", i);
        assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    }
    count_files(f->dir, &objs, &tmps);
    assert_int_equal(objs, 1);
    assert_int_equal(tmps, 0);
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, "same", &got), CKR_OK);
    assert_true(sample_matches(&got, 9));
    assert_false(sample_matches(&got, 8));
    akv_store_record_clear(&got);
}

static void test_put_if(void **state)
{
    struct fixture *f = *state;
    struct sample a, b, c;
    struct akv_store_record got;

    sample_make(&a, "cas", 1);
    sample_make(&b, "", 2); /* empty id: taken from expected */
    sample_make(&c, "cas", 3);
    assert_int_equal(akv_store_put(f->store, &a.rec), CKR_OK);

    /* Expected matches the disk: replaced, and the id was filled in. */
    assert_int_equal(akv_store_put_if(f->store, &a.rec, &b.rec), CKR_OK);
    assert_string_equal(b.rec.id, "cas");
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, "cas", &got), CKR_OK);
    assert_true(sample_matches(&got, 2));
    akv_store_record_clear(&got);

    /* Stale expectation (a, but disk has b): refused, disk unchanged. */
    assert_int_equal(akv_store_put_if(f->store, &a.rec, &c.rec),
                     CKR_FUNCTION_FAILED);
    assert_int_equal(akv_store_get(f->store, "cas", &got), CKR_OK);
    assert_true(sample_matches(&got, 2));
    akv_store_record_clear(&got);

    /* A single differing attribute byte is a conflict too. */
    b.attrs[63] ^= 1;
    assert_int_equal(akv_store_put_if(f->store, &b.rec, &c.rec),
                     CKR_FUNCTION_FAILED);
    b.attrs[63] ^= 1;

    /* Mismatched ids are a caller bug. */
    snprintf(c.rec.id, sizeof(c.rec.id), "other");
    assert_int_equal(akv_store_put_if(f->store, &b.rec, &c.rec),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_store_put_if(f->store, NULL, &c.rec),
                     CKR_ARGUMENTS_BAD);

    /* Vanished record: refused, and not re-created. */
    snprintf(c.rec.id, sizeof(c.rec.id), "cas");
    assert_int_equal(akv_store_delete(f->store, "cas"), CKR_OK);
    assert_int_equal(akv_store_put_if(f->store, &b.rec, &c.rec),
                     CKR_FUNCTION_FAILED);
    assert_int_equal(akv_store_get(f->store, "cas", &got),
                     CKR_OBJECT_HANDLE_INVALID);
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    static const char *bad_ids[] = {"../x",
                                    ".lock",
                                    "a/b",
                                    "a.obj",
                                    "a b",
                                    "x.tmp.1",
                                    "0123456789abcdef0123456789abcdef0"};
    struct sample s;
    struct akv_store_record got;
    char big_kid[600];
    uint8_t *big = calloc(1, 64 * 1024 + 1);

    assert_non_null(big);
    memset(&got, 0, sizeof(got));
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        if (strlen(bad_ids[i]) > AKV_STORE_ID_LEN) {
            continue; /* does not fit rec.id; get/delete check it below */
        }
        sample_make(&s, bad_ids[i], 1);
        assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    }
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        assert_int_equal(akv_store_get(f->store, bad_ids[i], &got),
                         CKR_ARGUMENTS_BAD);
        assert_int_equal(akv_store_delete(f->store, bad_ids[i]),
                         CKR_ARGUMENTS_BAD);
    }
    assert_int_equal(akv_store_get(f->store, "", &got), CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_store_get(f->store, NULL, &got), CKR_ARGUMENTS_BAD);

    /* Limits: kid 511, alg 31, attrs 64 KiB, wrapped 4 KiB are accepted;
     * one byte more is refused. */
    memset(big_kid, 'k', sizeof(big_kid));
    sample_make(&s, "lim", 1);
    big_kid[511] = '\0';
    s.rec.kid = big_kid;
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    big_kid[511] = 'k';
    big_kid[512] = '\0';
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    big_kid[511] = '\0';

    sample_make(&s, "lim", 1);
    s.rec.alg = "RSA-OAEP-256-xxxxxxxxxxxxxxxxxx"; /* 31 */
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    s.rec.alg = "RSA-OAEP-256-xxxxxxxxxxxxxxxxxxx"; /* 32 */
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    s.rec.alg = "";
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    s.rec.alg = "RSA\nOAEP";
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    s.rec.alg = NULL;
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);

    sample_make(&s, "lim", 1);
    s.rec.attrs = big;
    s.rec.attrs_len = 64 * 1024;
    s.rec.wrapped = big;
    s.rec.wrapped_len = 4096;
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, "lim", &got), CKR_OK);
    assert_int_equal(got.attrs_len, 64 * 1024);
    assert_int_equal(got.wrapped_len, 4096);
    akv_store_record_clear(&got);
    s.rec.attrs_len = 64 * 1024 + 1;
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    s.rec.attrs_len = 16;
    s.rec.wrapped_len = 4097;
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    s.rec.wrapped_len = 0;
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    s.rec.wrapped_len = 16;
    s.rec.attrs = NULL;
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_store_put(NULL, &s.rec), CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_store_put(f->store, NULL), CKR_ARGUMENTS_BAD);
    free(big);
}

/* Exactly one valid record ("good") must survive any number of bad files. */
static void expect_only_good(struct fixture *f)
{
    struct akv_store_record *list = NULL;
    size_t n = 0;
    assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "good");
    assert_true(sample_matches(&list[0], 7));
    akv_store_records_free(list, n);
}

static void expect_corrupt(struct fixture *f, const uint8_t *buf, size_t len)
{
    char path[256];
    struct akv_store_record got;
    path_of(f, "bad.obj", path, sizeof(path));
    write_whole(path, buf, len);
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, "bad", &got), CKR_DEVICE_ERROR);
    assert_null(got.kid);
    expect_only_good(f);
}

/* A holder of S re-MACs after each edit, so only the field checks can
 * reject BUF. */
#define fix_crc(buf, len) fix_mac(0, (buf), (len))

static void test_corrupt_files(void **state)
{
    struct fixture *f = *state;
    struct sample s;
    uint8_t good[1024], buf[1024];
    size_t len;
    char path[256];
    size_t kid_off, alg_off, wr_off;

    /* Silence the expected "corrupt, skipped" lines. */
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    sample_make(&s, "good", 7);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    path_of(f, "good.obj", path, sizeof(path));
    len = read_whole(path, good, sizeof(good));
    /* v2: magic, id_len "good", generation, then as v1 */
    kid_off = 8 + 1 + 4 + 8 + 4 + 64;
    alg_off = kid_off + 2 + strlen(s.kid);
    wr_off = alg_off + 2 + 12;

    /* An identical copy under another name is refused: the id is inside
     * the MAC'd record (a value moved between records). */
    {
        struct akv_store_record got;
        char p2[256];
        memset(&got, 0, sizeof(got));
        path_of(f, "copy.obj", p2, sizeof(p2));
        write_whole(p2, good, len);
        assert_int_equal(akv_store_get(f->store, "copy", &got),
                         CKR_DEVICE_ERROR);
        assert_null(got.kid);
        assert_int_equal(unlink(p2), 0);
    }
    /* Truncated at every offset, including the zero-length file. */
    for (size_t cut = 0; cut < len; cut++) {
        expect_corrupt(f, good, cut);
    }
    /* One extra byte. */
    memcpy(buf, good, len);
    buf[len] = 0;
    expect_corrupt(f, buf, len + 1);
    /* Every byte flipped, one at a time (low bit and all bits). */
    for (size_t i = 0; i < len; i++) {
        memcpy(buf, good, len);
        buf[i] ^= 0x01;
        expect_corrupt(f, buf, len);
        buf[i] ^= 0xff;
        expect_corrupt(f, buf, len);
    }
    /* Huge or inconsistent length fields with a valid CRC. */
    {
        static const uint8_t ff4[4] = {0xff, 0xff, 0xff, 0xff};
        const size_t at = kid_off - 64 - 4; /* attrs_len */
        memcpy(buf, good, len);
        memcpy(buf + at, ff4, 4); /* attrs_len = 4 GiB - 1 */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[at] = 0x01, buf[at + 1] = 0x00, buf[at + 2] = 0x01;
        buf[at + 3] = 0x00;
        fix_crc(buf, len); /* attrs_len 64 KiB + 1 */
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[8] = 0; /* id_len 0 */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        memset(buf + 13, 0, 8); /* generation 0 */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        memcpy(buf + len - 32 - 60 - 4, ff4, 4); /* sealed_len huge */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[kid_off] = 0xff, buf[kid_off + 1] = 0xff;
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[kid_off] = 0, buf[kid_off + 1] = 0; /* empty kid */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[kid_off + 5] = 0; /* NUL inside the kid */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[alg_off] = 40; /* alg_len > 31 */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        memcpy(buf + wr_off, ff4, 4);
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[wr_off] = 0, buf[wr_off + 1] = 0x10, buf[wr_off + 2] = 0;
        buf[wr_off + 3] = 0; /* 4096: within limit but past the end */
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        buf[wr_off] = 0xff; /* wrapped shorter than the file says */
        buf[wr_off + 1] = 0;
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);

        memcpy(buf, good, len);
        memcpy(buf, "AKVOBJ3\n", 8);
        fix_crc(buf, len);
        expect_corrupt(f, buf, len);
    }
    /* Garbage of many sizes. */
    for (size_t sz = 1; sz < sizeof(buf); sz += 37) {
        for (size_t i = 0; i < sz; i++) {
            buf[i] = (uint8_t)(i * 151u + sz);
        }
        expect_corrupt(f, buf, sz);
    }
    path_of(f, "bad.obj", path, sizeof(path));
    assert_int_equal(unlink(path), 0);

    /* A file larger than any valid record (sparse, so cheap). */
    {
        int fd;
        path_of(f, "huge.obj", path, sizeof(path));
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 1024 * 1024 * 1024), 0);
        close(fd);
        expect_only_good(f);
        assert_int_equal(unlink(path), 0);
    }
    /* A directory, a symlink to a valid record, a FIFO, a dangling link. */
    {
        char target[256];
        struct akv_store_record got;
        memset(&got, 0, sizeof(got));
        path_of(f, "dir.obj", path, sizeof(path));
        assert_int_equal(mkdir(path, 0700), 0);
        path_of(f, "good.obj", target, sizeof(target));
        path_of(f, "link.obj", path, sizeof(path));
        assert_int_equal(symlink(target, path), 0);
        path_of(f, "dangling.obj", path, sizeof(path));
        assert_int_equal(symlink("/nonexistent/x", path), 0);
        path_of(f, "fifo.obj", path, sizeof(path));
        assert_int_equal(mkfifo(path, 0600), 0);
        /* Not records at all: ignored without a read. */
        path_of(f, "README", path, sizeof(path));
        write_whole(path, (const uint8_t *)"x", 1);
        path_of(f, "good.obj.bak", path, sizeof(path));
        write_whole(path, good, len);

        expect_only_good(f);
        assert_int_equal(akv_store_get(f->store, "link", &got),
                         CKR_DEVICE_ERROR);
        assert_int_equal(akv_store_get(f->store, "dir", &got),
                         CKR_DEVICE_ERROR);
        assert_int_equal(akv_store_get(f->store, "fifo", &got),
                         CKR_DEVICE_ERROR);
    }
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

static void test_permissions(void **state)
{
    struct fixture *f = *state;
    char dir[256], path[512];
    struct akv_store *st = NULL;
    struct sample s;
    struct stat sb;
    mode_t old = umask(0);

    /* Even with umask 0: folder 0700, records and lock file 0600. */
    snprintf(dir, sizeof(dir), "%s/perm/deeper", f->root);
    assert_int_equal(open_keyed(dir, &st), CKR_OK);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    sample_make(&s, "p", 1);
    assert_int_equal(akv_store_put(st, &s.rec), CKR_OK);
    snprintf(path, sizeof(path), "%s/p.obj", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    snprintf(path, sizeof(path), "%s/.lock", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    akv_store_close(st);
    st = NULL;

    /* A strict umask must not leave an unusable folder either. */
    umask(0777);
    snprintf(dir, sizeof(dir), "%s/perm2", f->root);
    assert_int_equal(open_keyed(dir, &st), CKR_OK);
    umask(old);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    assert_int_equal(akv_store_put(st, &s.rec), CKR_OK);
    snprintf(path, sizeof(path), "%s/p.obj", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    akv_store_close(st);
    st = NULL;

    /* A path that is a regular file cannot be a store. */
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    assert_int_equal(akv_store_open(path, &st), CKR_DEVICE_ERROR);
    assert_null(st);
    snprintf(dir, sizeof(dir), "%.200s/sub", path);
    assert_int_equal(akv_store_open(dir, &st), CKR_DEVICE_ERROR);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
    assert_int_equal(akv_store_open(NULL, &st), CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_store_open("", &st), CKR_ARGUMENTS_BAD);
}

#define WRITERS    4
#define PER_WRITER 50

/* Child: 50 new records plus a replace of the shared record each time. */
static int writer_main(const char *dir, unsigned w)
{
    struct akv_store *st = NULL;
    if (open_keyed(dir, &st) != CKR_OK) {
        return 10;
    }
    for (unsigned i = 0; i < PER_WRITER; i++) {
        struct sample s;
        char id[AKV_STORE_ID_LEN + 1];
        unsigned seed = 1000u * (w + 1) + i;
        snprintf(id, sizeof(id), "w%u-%03u", w, i);
        sample_make(&s, id, seed);
        if (akv_store_put(st, &s.rec) != CKR_OK) {
            return 11;
        }
        sample_make(&s, "shared", seed);
        if (akv_store_put(st, &s.rec) != CKR_OK) {
            return 12;
        }
    }
    akv_store_close(st);
    return 0;
}

/* Child: reads the shared record until told to stop; any torn or corrupt
 * read is a failure. */
static int reader_main(const char *dir, const char *stop_file)
{
    struct akv_store *st = NULL;
    unsigned ok = 0;
    if (open_keyed(dir, &st) != CKR_OK) {
        return 20;
    }
    while (access(stop_file, F_OK) != 0) {
        struct akv_store_record got;
        CK_RV rv;
        memset(&got, 0, sizeof(got));
        rv = akv_store_get(st, "shared", &got);
        if (rv == CKR_OK) {
            unsigned seed = 0;
            bool match = false;
            for (unsigned w = 0; w < WRITERS && !match; w++) {
                for (unsigned i = 0; i < PER_WRITER && !match; i++) {
                    seed = 1000u * (w + 1) + i;
                    match = sample_matches(&got, seed);
                }
            }
            akv_store_record_clear(&got);
            if (!match) {
                return 21;
            }
            ok++;
        } else if (rv != CKR_OBJECT_HANDLE_INVALID) {
            return 22;
        }
    }
    akv_store_close(st);
    return ok > 0 ? 0 : 23;
}

static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    pid_t pids[WRITERS + 1];
    char stop_file[256];
    struct akv_store_record *list = NULL;
    size_t n = 0;
    int objs, tmps, status;

    snprintf(stop_file, sizeof(stop_file), "%s/stop", f->root);
    for (unsigned w = 0; w <= WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            _exit(w < WRITERS ? writer_main(f->dir, w)
                              : reader_main(f->dir, stop_file));
        }
    }
    for (unsigned w = 0; w < WRITERS; w++) {
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    write_whole(stop_file, (const uint8_t *)"", 0);
    assert_int_equal(waitpid(pids[WRITERS], &status, 0), pids[WRITERS]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
    assert_int_equal(n, WRITERS * PER_WRITER + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned w, k;
        if (strcmp(list[i].id, "shared") == 0) {
            /* The last write wins: one writer's final record. */
            bool last = false;
            for (w = 0; w < WRITERS; w++) {
                last = last
                       || sample_matches(&list[i],
                                         1000u * (w + 1) + PER_WRITER - 1);
            }
            assert_true(last);
            continue;
        }
        assert_int_equal(sscanf(list[i].id, "w%u-%u", &w, &k), 2);
        assert_true(sample_matches(&list[i], 1000u * (w + 1) + k));
    }
    akv_store_records_free(list, n);
    count_files(f->dir, &objs, &tmps);
    assert_int_equal(objs, WRITERS * PER_WRITER + 1);
    assert_int_equal(tmps, 0);
}

static void test_temp_sweep(void **state)
{
    struct fixture *f = *state;
    char path[256];
    struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    struct akv_store *st = NULL;
    struct akv_store_record *list = NULL;
    size_t n = 0;
    struct sample s;
    int objs, tmps;

    sample_make(&s, "keep", 3);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    /* What a writer killed after creating its temp file leaves behind: one
     * an hour old, one fresh (its writer cannot be alive either, because
     * writers hold the exclusive lock while their temp file exists). */
    path_of(f, ".keep.tmp.12345.abcdefgh", path, sizeof(path));
    write_whole(path, (const uint8_t *)"partial", 7);
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    path_of(f, ".new.tmp.999.zzzzzzzz", path, sizeof(path));
    write_whole(path, (const uint8_t *)"AKVOBJ1\n", 8);

    /* Never listed as records. */
    assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
    assert_int_equal(n, 1);
    akv_store_records_free(list, n);
    count_files(f->dir, &objs, &tmps);
    assert_int_equal(tmps, 2);

    assert_int_equal(open_keyed(f->dir, &st), CKR_OK);
    count_files(f->dir, &objs, &tmps);
    assert_int_equal(tmps, 0);
    assert_int_equal(objs, 1);
    akv_store_close(st);
}

/* While another process holds the exclusive lock (a live writer), open must
 * wait instead of sweeping that writer's temp file. */
static void test_sweep_waits_for_live_writer(void **state)
{
    struct fixture *f = *state;
    char lock_path[256], tmp_path[256], ready[256];
    struct akv_store *st = NULL;
    int status, objs, tmps;
    pid_t pid;

    path_of(f, ".lock", lock_path, sizeof(lock_path));
    path_of(f, ".live.tmp.1.aaaaaaaa", tmp_path, sizeof(tmp_path));
    snprintf(ready, sizeof(ready), "%s/ready", f->root);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(lock_path, O_RDWR);
        if (fd < 0 || flock(fd, LOCK_EX) != 0) {
            _exit(1);
        }
        write_whole(tmp_path, (const uint8_t *)"x", 1);
        write_whole(ready, (const uint8_t *)"", 0);
        usleep(300 * 1000);
        /* The live writer finishes: its temp file is gone. */
        unlink(tmp_path);
        _exit(0);
    }
    while (access(ready, F_OK) != 0) {
        usleep(1000);
    }
    count_files(f->dir, &objs, &tmps);
    assert_int_equal(tmps, 1);
    {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(open_keyed(f->dir, &st), CKR_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* Waited for the writer (≈300 ms), did not race it. */
        assert_true((t1.tv_sec - t0.tv_sec) * 1000
                        + (t1.tv_nsec - t0.tv_nsec) / 1000000
                    >= 150);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    akv_store_close(st);
}

static void test_stamp(void **state)
{
    struct fixture *f = *state;
    struct sample s;
    uint64_t s0, s1, s2, s3, s4;
    struct akv_store *other = NULL;

    s0 = akv_store_stamp(f->store);
    assert_int_equal(akv_store_stamp(f->store), s0);
    sample_make(&s, "st", 1);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    s1 = akv_store_stamp(f->store);
    assert_true(s1 != s0);
    assert_int_equal(akv_store_stamp(f->store), s1);

    /* A replace by another handle (count unchanged, possibly the same
     * mtime tick) is still noticed. */
    assert_int_equal(open_keyed(f->dir, &other), CKR_OK);
    sample_make(&s, "st", 2);
    {
        struct stat before;
        struct timespec ts[2];
        assert_int_equal(stat(f->dir, &before), 0);
        assert_int_equal(akv_store_put(other, &s.rec), CKR_OK);
        /* Simulate a coarse timestamp: the folder mtime is unchanged. */
        ts[0] = before.st_atim;
        ts[1] = before.st_mtim;
        assert_int_equal(utimensat(AT_FDCWD, f->dir, ts, 0), 0);
    }
    s2 = akv_store_stamp(f->store);
    assert_true(s2 != s1);
    assert_int_equal(akv_store_stamp(other), s2);

    assert_int_equal(akv_store_delete(other, "st"), CKR_OK);
    s3 = akv_store_stamp(f->store);
    assert_true(s3 != s2);
    /* Reads change nothing. */
    {
        struct akv_store_record *list = NULL;
        size_t n = 0;
        assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
        akv_store_records_free(list, n);
    }
    s4 = akv_store_stamp(f->store);
    assert_int_equal(s4, s3);
    akv_store_close(other);
    assert_int_equal(akv_store_stamp(NULL), 0);
}

/* Expects record ID to be refused now (get fails, list skips and counts
 * it as refused). */
static void expect_refused(struct fixture *f, const char *id, size_t n_ok)
{
    struct akv_store_record got, *list = NULL;
    size_t n = 0;
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, id, &got), CKR_DEVICE_ERROR);
    assert_null(got.kid);
    assert_int_equal(akv_store_list(f->store, &list, &n), CKR_OK);
    assert_int_equal(n, n_ok);
    assert_true(akv_store_last_refused(f->store) >= 1);
    akv_store_records_free(list, n);
}

/* A record written under another store secret (a store of the attacker's,
 * or one planted beside ours), or not in the manifest, is refused. */
static void test_auth_planted(void **state)
{
    struct fixture *f = *state;
    struct sample s;
    struct akv_store *other = NULL;
    uint8_t evil[32];
    char dir[256], path[512];
    uint8_t buf[2048];
    size_t len;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    sample_make(&s, "good", 7);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    /* The attacker's own store with their own S. */
    memset(evil, 0xee, sizeof(evil));
    snprintf(dir, sizeof(dir), "%s/evil", f->root);
    assert_int_equal(akv_store_open(dir, &other), CKR_OK);
    assert_int_equal(akv_store_set_secret(other, evil, sizeof(evil)), CKR_OK);
    assert_int_equal(akv_store_set_secret(other, SECRET, sizeof(SECRET)),
                     CKR_FUNCTION_FAILED); /* set once */
    sample_make(&s, "planted", 8);
    assert_int_equal(akv_store_put(other, &s.rec), CKR_OK);
    akv_store_close(other);
    snprintf(path, sizeof(path), "%s/planted.obj", dir);
    len = read_whole(path, buf, sizeof(buf));
    path_of(f, "planted.obj", path, sizeof(path));
    write_whole(path, buf, len);
    expect_refused(f, "planted", 1);
    /* Even with a correct HMAC (a holder of S), no manifest entry: refused. */
    fix_mac(0, buf, len);
    write_whole(path, buf, len);
    expect_refused(f, "planted", 1);
    /* The attacker's manifest is refused as a whole. */
    snprintf(path, sizeof(path), "%s/.manifest", dir);
    len = read_whole(path, buf, sizeof(buf));
    path_of(f, ".manifest", path, sizeof(path));
    write_whole(path, buf, len);
    {
        struct akv_store_record *list = NULL;
        size_t n = 0;
        assert_int_equal(akv_store_list(f->store, &list, &n), CKR_DEVICE_ERROR);
    }
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

/* An older copy of a record, or a deleted record brought back, is refused;
 * the current one is accepted. */
static void test_auth_rollback(void **state)
{
    struct fixture *f = *state;
    struct sample s;
    char path[256];
    uint8_t old[2048], cur[2048];
    size_t old_len, cur_len;
    struct akv_store_record got;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    sample_make(&s, "rb", 1);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    path_of(f, "rb.obj", path, sizeof(path));
    old_len = read_whole(path, old, sizeof(old));
    sample_make(&s, "rb", 2);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    cur_len = read_whole(path, cur, sizeof(cur));
    write_whole(path, old, old_len);
    expect_refused(f, "rb", 0);
    write_whole(path, cur, cur_len);
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, "rb", &got), CKR_OK);
    assert_true(sample_matches(&got, 2));
    akv_store_record_clear(&got);
    /* Deleted, then the last copy brought back. */
    assert_int_equal(akv_store_delete(f->store, "rb"), CKR_OK);
    write_whole(path, cur, cur_len);
    expect_refused(f, "rb", 0);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

/* Legacy records: adopted by hash on first use; edited (CRC recomputed) or
 * planted afterwards: refused; moved to format 2 by their next write. */
static void test_auth_legacy(void **state)
{
    struct fixture *f = *state;
    char dir[256], path[512];
    struct akv_store *st = NULL;
    struct akv_store_key k;
    uint8_t attrs[16], w[64];
    struct akv_store_record got, *list = NULL;
    size_t n = 0;
    struct sample s;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    memset(attrs, 0x11, sizeof(attrs));
    memset(w, 0x22, sizeof(w));
    snprintf(dir, sizeof(dir), "%s/legacy", f->root);
    assert_int_equal(akv_store_open(dir, &st), CKR_OK);
    assert_int_equal(legacy_write(dir, "old1", attrs, sizeof(attrs), KID_A,
                                  "RSA-OAEP-256", w, sizeof(w)),
                     0);
    assert_int_equal(legacy_write(dir, "old2", attrs, sizeof(attrs), KID_A,
                                  "RSA-OAEP", w, sizeof(w)),
                     0);
    /* No secret yet: nothing is readable. */
    assert_false(akv_store_has_secret(st));
    assert_int_equal(akv_store_list(st, &list, &n), CKR_GENERAL_ERROR);
    assert_int_equal(akv_store_key_get(st, &k), CKR_OBJECT_HANDLE_INVALID);
    k.kid = (char *)KID_A;
    k.alg = (char *)"RSA-OAEP-256";
    k.wrapped = w;
    k.wrapped_len = sizeof(w);
    assert_int_equal(akv_store_key_create(st, &k, SECRET, sizeof(SECRET)),
                     CKR_OK);
    assert_int_equal(akv_store_key_create(st, &k, SECRET, sizeof(SECRET)),
                     CKR_FUNCTION_FAILED);
    assert_int_equal(akv_store_list(st, &list, &n), CKR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].format, AKV_STORE_FORMAT_V1);
    assert_string_equal(list[1].alg, "RSA-OAEP");
    akv_store_records_free(list, n);
    /* .storekey round trip */
    memset(&k, 0, sizeof(k));
    assert_int_equal(akv_store_key_get(st, &k), CKR_OK);
    assert_string_equal(k.kid, KID_A);
    assert_int_equal(k.wrapped_len, sizeof(w));
    akv_store_key_clear(&k);
    /* Edited after adoption, CRC recomputed: refused. */
    attrs[0] = 0x12;
    assert_int_equal(legacy_write(dir, "old1", attrs, sizeof(attrs), KID_A,
                                  "RSA-OAEP-256", w, sizeof(w)),
                     0);
    /* Planted after adoption: refused. */
    assert_int_equal(legacy_write(dir, "new1", attrs, sizeof(attrs), KID_A,
                                  "RSA-OAEP-256", w, sizeof(w)),
                     0);
    assert_int_equal(akv_store_list(st, &list, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "old2");
    assert_int_equal(akv_store_last_refused(st), 2);
    akv_store_records_free(list, n);
    /* Next write moves old2 to format 2; the legacy file is then refused. */
    snprintf(path, sizeof(path), "%s/old2.obj", dir);
    {
        uint8_t v1[512];
        size_t v1_len;
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        v1_len = fread(v1, 1, sizeof(v1), fp);
        fclose(fp);
        sample_make(&s, "old2", 3);
        assert_int_equal(akv_store_put(st, &s.rec), CKR_OK);
        memset(&got, 0, sizeof(got));
        assert_int_equal(akv_store_get(st, "old2", &got), CKR_OK);
        assert_int_equal(got.format, AKV_STORE_FORMAT_V2);
        akv_store_record_clear(&got);
        fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(v1, 1, v1_len, fp), v1_len);
        fclose(fp);
        assert_int_equal(akv_store_get(st, "old2", &got), CKR_DEVICE_ERROR);
    }
    akv_store_close(st);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

/* kill -9 at random instants while a writer replaces a record over and
 * over: the record on disk is always accepted (the old or the new one),
 * never refused or lost. */
static void test_auth_kill_anywhere(void **state)
{
    struct fixture *f = *state;
    struct sample s;
    unsigned seen_new = 0;

    sample_make(&s, "k", 1);
    assert_int_equal(akv_store_put(f->store, &s.rec), CKR_OK);
    for (int round = 0; round < 40; round++) {
        struct akv_store_record got;
        struct timespec ts = {0, (long)(2000 + rand() % 40000) * 1000L};
        int status;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct akv_store *st = NULL;
            if (open_keyed(f->dir, &st) != CKR_OK) {
                _exit(3);
            }
            for (unsigned i = 0;; i++) {
                struct sample c;
                sample_make(&c, "k", 100 + (i % 50));
                c.rec.generation = 5000u + (unsigned)round * 100000u + i;
                (void)akv_store_put(st, &c.rec);
            }
        }
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        memset(&got, 0, sizeof(got));
        assert_int_equal(akv_store_get(f->store, "k", &got), CKR_OK);
        seen_new += got.generation != s.rec.generation;
        akv_store_record_clear(&got);
    }
    assert_true(seen_new > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_reference),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_sorted_and_empty_attrs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_keeps_one_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_put_if, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_temp_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_waits_for_live_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_planted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_kill_anywhere, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
