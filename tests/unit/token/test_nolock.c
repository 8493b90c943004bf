/* SPDX-License-Identifier: Apache-2.0 */
/*
 * House rule "no lock held across a network call", checked against a slow
 * kv_fake: while one thread waits on the vault (Sign, an on-demand Get
 * Key, Delete Key, the unwrap of a token object's value), another thread's
 * C_GetAttributeValue and C_FindObjects* on objects the token already shows
 * answer at once. A lock taken around the vault call (t->lock, a session or
 * slot lock) would make them wait the whole delay.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "kv_fake.h"
#include "token/object.h"
#include "token/session.h"
#include "token/sign.h"
#include "token/slot.h"

#define DELAY_MS 1500 /* the slow vault call */
#define QUICK_MS 700  /* what the other thread may take at most */

static struct kv_fake *fake;
static CK_OBJECT_HANDLE priv;
static CK_OBJECT_HANDLE other; /* private key of "other", deleted */
static CK_OBJECT_HANDLE aes;   /* a token AES key: its value is unwrapped */
static char store_dir[64];

static CK_RV factory(const struct akv_token_config *tc, struct akv_kv **out)
{
    (void)tc;
    *out = kv_fake_kv(fake);
    return CKR_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    /* key_refresh_s 3600: the quick thread's searches make no Get Key. */
    static const char fmt[] =
        "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"
        "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"},"
        "{\"name\":\"other\"}],\"credential\":{\"type\":"
        "\"managed_identity\"},\"sign\":true,\"allow_delete\":true,"
        "\"key_refresh_s\":3600,\"store_dir\":\"%s\"}]}";
    char json[512];
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE at[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                         {CKA_SENSITIVE, &no, sizeof(no)},
                         {CKA_TOKEN, &yes, sizeof(yes)}};
    struct akv_config *cfg = NULL;
    char err[256] = "";
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, "cmk", 3}};
    CK_SESSION_HANDLE s = 0;
    CK_ULONG n = 0;

    (void)state;
    (void)snprintf(store_dir, sizeof(store_dir), "/tmp/akv-nolock-XXXXXX");
    if (mkdtemp(store_dir) == NULL) {
        return -1;
    }
    (void)snprintf(json, sizeof(json), fmt, store_dir);
    fake = kv_fake_new();
    kv_fake_add_rsa(fake, "cmk",
                    AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY | AKV_KV_OP_SIGN);
    kv_fake_add_rsa(fake, "other", AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY);
    if (akv_config_parse(json, strlen(json), "test", &cfg, err, sizeof(err))
            != 0
        || akv_slot_init(cfg, factory) != CKR_OK
        || akv_session_open(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s)
               != CKR_OK
        || akv_object_generate_key(s, &gen, at, 3, &aes) != CKR_OK
        || akv_object_find_init(s, t, 2) != CKR_OK
        || akv_object_find(s, &priv, 1, &n) != CKR_OK || n != 1
        || akv_object_find_final(s) != CKR_OK) {
        return -1;
    }
    t[1].pValue = "other";
    t[1].ulValueLen = 5;
    if (akv_object_find_init(s, t, 2) != CKR_OK
        || akv_object_find(s, &other, 1, &n) != CKR_OK || n != 1
        || akv_object_find_final(s) != CKR_OK) {
        return -1;
    }
    (void)akv_session_close(s);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    (void)snprintf(cmd, sizeof(cmd), "rm -rf %s", store_dir);
    if (system(cmd) != 0) {
        return -1;
    }
    (void)akv_slot_finalize();
    kv_fake_free(fake);
    fake = NULL;
    return 0;
}

struct slow {
    unsigned op; /* KV_FAKE_SIGN, _GET, _DELETE or _UNWRAP */
    CK_RV rv;
};

/* The thread that waits on the vault. */
static void *slow_call(void *arg)
{
    struct slow *w = arg;
    CK_SESSION_HANDLE s = 0;

    w->rv = akv_session_open(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, &s);
    if (w->rv != CKR_OK) {
        return NULL;
    }
    if (w->op == KV_FAKE_SIGN) {
        CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
        static const CK_BYTE msg[] = "no lock across the vault call";
        CK_BYTE sig[512];
        CK_ULONG len = sizeof(sig);

        w->rv = akv_sign_init(s, &m, priv);
        if (w->rv == CKR_OK) {
            w->rv = akv_sign(s, msg, sizeof(msg), sig, &len);
        }
    } else if (w->op == KV_FAKE_UNWRAP) {
        /* a token object's value: its record key unwrapped by the vault */
        uint8_t v[32];
        CK_ATTRIBUTE a = {CKA_VALUE, v, sizeof(v)};

        w->rv = akv_object_get_attrs(s, aes, &a, 1);
        if (w->rv == CKR_OK && a.ulValueLen != sizeof(v)) {
            w->rv = CKR_GENERAL_ERROR;
        }
    } else if (w->op == KV_FAKE_DELETE) {
        /* C_DestroyObject of a vault key pair (allow_delete) */
        w->rv = akv_object_destroy(s, other);
    } else {
        /* a 16-byte CKA_ID names a key version: one Get Key on demand */
        static const CK_BYTE id[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2,  3,  4,
                                       5,    6,    7,    8,    9, 10, 11, 12};
        CK_ATTRIBUTE t = {CKA_ID, (void *)id, sizeof(id)};

        w->rv = akv_object_find_init(s, &t, 1);
        if (w->rv == CKR_OK) {
            w->rv = akv_object_find_final(s);
        }
    }
    (void)akv_session_close(s);
    return NULL;
}

/* Runs OP slowly in a thread; meanwhile reads and searches must be quick. */
static void check_quick_during(unsigned op)
{
    struct slow w = {op, CKR_GENERAL_ERROR};
    pthread_t th;
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE found[8];
    CK_ULONG n = 0;
    char label[64];
    CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
    int64_t t0;
    int64_t took;

    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    kv_fake_reset_calls(fake);
    kv_fake_delay(fake, op, DELAY_MS);
    assert_int_equal(pthread_create(&th, NULL, slow_call, &w), 0);
    /* until the slow thread is inside the vault call */
    for (int i = 0; i < 200 && kv_fake_calls(fake, op) == 0; i++) {
        usleep(5000);
    }
    assert_int_equal(kv_fake_calls(fake, op), 1);
    t0 = now_ms();
    assert_int_equal(akv_object_get_attrs(s, priv, &a, 1), CKR_OK);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_OK);
    assert_int_equal(akv_object_find(s, found, 8, &n), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    took = now_ms() - t0;
    assert_true(n >= 2);
    assert_int_equal(pthread_join(th, NULL), 0);
    kv_fake_delay(fake, op, 0);
    if (took >= QUICK_MS) {
        fail_msg("C_GetAttributeValue + C_FindObjects took %lld ms while "
                 "another thread waited %d ms on the vault",
                 (long long)took, DELAY_MS);
    }
    (void)akv_session_close(s);
    /* a signature, a deletion; for the Get Key, a miss (not an error) */
    assert_int_equal(w.rv, CKR_OK);
}

static void test_quick_during_sign(void **state)
{
    (void)state;
    check_quick_during(KV_FAKE_SIGN);
}

static void test_quick_during_get_key(void **state)
{
    (void)state;
    check_quick_during(KV_FAKE_GET);
}

static void test_quick_during_delete_key(void **state)
{
    (void)state;
    check_quick_during(KV_FAKE_DELETE);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_DELETE), 1);
}

static void test_quick_during_unwrap(void **state)
{
    (void)state;
    check_quick_during(KV_FAKE_UNWRAP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quick_during_sign, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quick_during_get_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quick_during_delete_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quick_during_unwrap, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
