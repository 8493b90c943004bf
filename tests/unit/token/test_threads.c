/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token/ under threads, against kv_fake and a real store folder (issue 8
 * "Threads and fork"). Built and run in every tree; in the ThreadSanitizer
 * tree (-DAKV_TSAN=ON, ctest label tsan) a data race fails the test too.
 *
 * - one record, one handle: token keys created in one thread while other
 *   threads search (each search reloads the store) are each found exactly
 *   once, under the handle their creation returned;
 * - a store reload never rewrites what cipher_init reads without the lock:
 *   a record changed by "another process" (a second store handle) while a
 *   thread encrypts with it keeps its handle and its class and key type;
 *   a record whose key type changed becomes a new object instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "kv_fake.h"
#include "token/attr.h"
#include "token/cipher.h"
#include "token/object.h"
#include "token/seal.h"
#include "token/session.h"
#include "token/slot.h"
#include "token/store.h"

#define N_KEYS    120 /* token keys created while others search */
#define N_FINDERS 2

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
    char json[1024];
    struct akv_config *cfg = NULL;
    char err[256] = "";

    (void)state;
    fake = kv_fake_new();
    kv_fake_add_rsa(fake, "cmk",
                    AKV_KV_OP_ENCRYPT | AKV_KV_OP_DECRYPT | AKV_KV_OP_WRAPKEY
                        | AKV_KV_OP_UNWRAPKEY);
    snprintf(store_dir, sizeof(store_dir), "/tmp/akv-thr-XXXXXX");
    if (mkdtemp(store_dir) == NULL) {
        return -1;
    }
    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"
             "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"}],"
             "\"credential\":{\"type\":\"managed_identity\"},"
             "\"key_refresh_s\":3600,\"store_dir\":\"%s\"}]}",
             store_dir);
    if (akv_config_parse(json, strlen(json), "test", &cfg, err, sizeof(err))
        != 0) {
        return -1;
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

static CK_SESSION_HANDLE open_rw(void)
{
    CK_SESSION_HANDLE h = 0;

    assert_int_equal(
        akv_session_open(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, &h), CKR_OK);
    return h;
}

/* All secret keys the token shows now; returns how many (<= MAX). */
static CK_ULONG find_secret(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *out,
                            CK_ULONG max)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ULONG count = 0;

    if (akv_object_find_init(s, &t, 1) != CKR_OK
        || akv_object_find(s, out, max, &count) != CKR_OK
        || akv_object_find_final(s) != CKR_OK) {
        return (CK_ULONG)-1;
    }
    return count;
}

static CK_RV gen_token_aes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL tr = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                        {CKA_TOKEN, &tr, sizeof(tr)}};

    return akv_object_generate_key(s, &m, t, 2, h);
}

static int done; /* atomic: the creating/encrypting thread finished */
static unsigned finder_errors;

static void *finder(void *arg)
{
    CK_SESSION_HANDLE s = open_rw();
    CK_OBJECT_HANDLE hs[4 * N_KEYS];

    (void)arg;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        if (find_secret(s, hs, 4 * N_KEYS) == (CK_ULONG)-1) {
            __atomic_add_fetch(&finder_errors, 1, __ATOMIC_RELAXED);
        }
    }
    (void)akv_session_close(s);
    return NULL;
}

static int cmp_handle(const void *a, const void *b)
{
    CK_OBJECT_HANDLE x = *(const CK_OBJECT_HANDLE *)a;
    CK_OBJECT_HANDLE y = *(const CK_OBJECT_HANDLE *)b;

    return x < y ? -1 : x > y;
}

/* Issue 8: the record was written before its object joined the table, and a
 * search's store reload in between added it a second time (two handles for
 * one record), or dropped the new object because its listing predated the
 * write (the creator's handle then dies). */
static void test_one_record_one_handle(void **state)
{
    CK_SESSION_HANDLE s = open_rw();
    CK_OBJECT_HANDLE made[N_KEYS];
    CK_OBJECT_HANDLE found[4 * N_KEYS];
    pthread_t th[N_FINDERS];
    CK_ULONG n;

    (void)state;
    __atomic_store_n(&done, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < N_FINDERS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, finder, NULL), 0);
    }
    for (int i = 0; i < N_KEYS; i++) {
        assert_int_equal(gen_token_aes(s, &made[i]), CKR_OK);
    }
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < N_FINDERS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(finder_errors, 0);
    n = find_secret(s, found, 4 * N_KEYS);
    assert_int_equal(n, N_KEYS);
    qsort(found, n, sizeof(found[0]), cmp_handle);
    for (CK_ULONG i = 1; i < n; i++) {
        assert_true(found[i] != found[i - 1]);
    }
    for (int i = 0; i < N_KEYS; i++) {
        CK_ULONG len = 0;
        CK_ATTRIBUTE t = {CKA_VALUE_LEN, &len, sizeof(len)};

        assert_non_null(
            bsearch(&made[i], found, n, sizeof(found[0]), cmp_handle));
        assert_int_equal(akv_object_get_attrs(s, made[i], &t, 1), CKR_OK);
        assert_int_equal(len, 32);
    }
    (void)akv_session_close(s);
}

/* ---- reload vs. cipher_init ---- */

#define N_ENCRYPTORS 3
#define N_RELOADS    150

static CK_OBJECT_HANDLE enc_key;
static unsigned enc_errors;
static unsigned enc_count;

/* Encrypts with enc_key until the main thread has reloaded the changed
 * record N_RELOADS times: the race window (between cipher_init's unlock and
 * its next lock) is short, so several threads keep one open most of the
 * time. */
static void *encryptor(void *arg)
{
    CK_SESSION_HANDLE s = open_rw();
    CK_BYTE iv[16] = {0};
    CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    CK_BYTE msg[20] = "twenty bytes of data";
    CK_BYTE out[64];

    (void)arg;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        CK_ULONG len = sizeof(out);

        if (akv_cipher_encrypt_init(s, &m, enc_key) != CKR_OK
            || akv_cipher_encrypt(s, msg, sizeof(msg), out, &len) != CKR_OK
            || len != 32) {
            __atomic_add_fetch(&enc_errors, 1, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(&enc_count, 1, __ATOMIC_RELAXED);
    }
    (void)akv_session_close(s);
    return NULL;
}

/* Rewrites the one record on disk with attribute TYPE = VALUE (LEN bytes),
 * as another process would: through its own store handle and the sealing
 * component (the attributes are the sealed value's associated data, so a
 * change is a reseal under the store secret - docs/STORE.md). */
static void rewrite_on_disk(struct akv_store *other, CK_ATTRIBUTE_TYPE type,
                            const void *value, size_t len)
{
    struct akv_seal_ctx c = {kv_fake_kv(fake), other,
                             "https://fake.vault.azure.net", NULL, NULL};
    char kid[AKV_KV_KID_MAX];
    struct akv_seal_cand cand = {"cmk", kv_fake_version(fake, "cmk", 0), kid,
                                 AKV_KV_KTY_RSA};
    struct akv_seal_target tg;
    struct akv_store_record *recs = NULL;
    struct akv_store_record out;
    size_t n = 0;
    struct akv_attrs a = AKV_ATTRS_INIT;
    uint8_t *blob = NULL;
    size_t blob_len = 0;

    snprintf(kid, sizeof(kid), "https://fake.vault.azure.net/keys/cmk/%s",
             cand.version);
    memset(&out, 0, sizeof(out));
    assert_int_equal(akv_seal_choose(&cand, 1, &tg), CKR_OK);
    assert_int_equal(akv_seal_ready(&c, &tg), CKR_OK);
    assert_int_equal(akv_store_list(other, &recs, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(akv_attrs_parse(recs[0].attrs, recs[0].attrs_len, &a),
                     CKR_OK);
    assert_int_equal(akv_attrs_set(&a, type, value, (CK_ULONG)len), CKR_OK);
    assert_int_equal(akv_attrs_serialise(&a, &blob, &blob_len), CKR_OK);
    assert_int_equal(akv_seal_reseal(&c, &tg, &recs[0], blob, blob_len, &out),
                     CKR_OK);
    assert_int_equal(akv_store_put(other, &out), CKR_OK);
    free(blob);
    akv_store_record_clear(&out);
    akv_attrs_clear(&a);
    akv_store_records_free(recs, n);
}

/* Issue 8 (TSan): reload_store rewrote have->cls / have->key_type of a live
 * object while cipher_init read them after dropping the lock. */
static void test_reload_vs_cipher_init(void **state)
{
    CK_SESSION_HANDLE s = open_rw();
    struct akv_store *other = NULL;
    pthread_t th[N_ENCRYPTORS];
    CK_OBJECT_HANDLE found[4];
    char label[32] = "";
    char got[32] = "";
    CK_ATTRIBUTE t = {CKA_LABEL, got, sizeof(got)};

    (void)state;
    assert_int_equal(gen_token_aes(s, &enc_key), CKR_OK);
    assert_int_equal(akv_store_open(store_dir, &other), CKR_OK);
    __atomic_store_n(&done, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < N_ENCRYPTORS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, encryptor, NULL), 0);
    }
    for (int round = 0; round < N_RELOADS; round++) {
        snprintf(label, sizeof(label), "round-%d", round);
        rewrite_on_disk(other, CKA_LABEL, label, strlen(label));
        /* the search reloads the changed record: same handle */
        assert_int_equal(find_secret(s, found, 4), 1);
        assert_int_equal(found[0], enc_key);
    }
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < N_ENCRYPTORS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(enc_errors, 0);
    assert_true(enc_count > 0);
    t.ulValueLen = sizeof(got);
    assert_int_equal(akv_object_get_attrs(s, enc_key, &t, 1), CKR_OK);
    assert_int_equal(t.ulValueLen, strlen(label));
    assert_memory_equal(got, label, strlen(label));
    akv_store_close(other);
    (void)akv_session_close(s);
}

/* A record whose key type changed on disk (only another program can do
 * that: CKA_KEY_TYPE is not modifiable) becomes a new object with a new
 * handle; the live object keeps its key type and its handle dies. */
static void test_reload_replaces_changed_key_type(void **state)
{
    CK_SESSION_HANDLE s = open_rw();
    struct akv_store *other = NULL;
    CK_OBJECT_HANDLE h = 0;
    CK_OBJECT_HANDLE found[4];
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_KEY_TYPE got = 0;
    CK_ATTRIBUTE t = {CKA_KEY_TYPE, &got, sizeof(got)};

    (void)state;
    assert_int_equal(gen_token_aes(s, &h), CKR_OK);
    assert_int_equal(akv_store_open(store_dir, &other), CKR_OK);
    rewrite_on_disk(other, CKA_KEY_TYPE, &kt, sizeof(kt));
    assert_int_equal(find_secret(s, found, 4), 1);
    assert_true(found[0] != h);
    assert_int_equal(akv_object_get_attrs(s, h, &t, 1),
                     CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(akv_object_get_attrs(s, found[0], &t, 1), CKR_OK);
    assert_int_equal(got, CKK_GENERIC_SECRET);
    akv_store_close(other);
    (void)akv_session_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_record_one_handle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reload_vs_cipher_init, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reload_replaces_changed_key_type,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
