/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for token/seal.c (envelope AEAD of stored values, the one
 * sealing rule) against an in-memory vault (tests/unit/fake): every change
 * an attacker with store write access can make to a sealed record, and a
 * record key made with the vault's PUBLIC key, fail authentication.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include "common/log.h"
#include "kv_fake.h"
#include "token/seal.h"

#define BINDING "https://fake.vault.azure.net"

struct fx {
    char dir[64];
    struct akv_store *store;
    struct kv_fake *fake;
    struct akv_seal_ctx c;
    struct akv_seal_target t;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct akv_kv_key k;
    struct akv_seal_cand cand;
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/akv-seal-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(akv_store_open(f->dir, &f->store), CKR_OK);
    f->fake = kv_fake_new();
    kv_fake_add_rsa(f->fake, "cmk", AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY);
    f->c.kv = kv_fake_kv(f->fake);
    f->c.store = f->store;
    f->c.binding = BINDING;
    memset(&k, 0, sizeof(k));
    assert_int_equal(f->c.kv->ops->get_key(f->c.kv, "cmk", NULL, &k), CKR_OK);
    cand.name = k.name;
    cand.version = k.version;
    cand.kid = k.kid;
    cand.kty = k.kty;
    assert_int_equal(akv_seal_choose(&cand, 1, &f->t), CKR_OK);
    akv_kv_key_clear(&k);
    assert_int_equal(akv_seal_ready(&f->c, &f->t), CKR_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    akv_store_close(f->store);
    kv_fake_free(f->fake);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void seal_one(struct fx *f, const char *id, const uint8_t *v,
                     struct akv_store_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->id, sizeof(rec->id), "%s", id);
    rec->attrs = malloc(8);
    assert_non_null(rec->attrs);
    memcpy(rec->attrs, "AKA1\0\0\0\0", 8);
    rec->attrs_len = 8;
    assert_int_equal(akv_seal_seal(&f->c, &f->t, rec, v, 32), CKR_OK);
}

static void expect_open_fails(struct fx *f, struct akv_store_record *rec)
{
    struct akv_secret out = AKV_SECRET_INIT;
    assert_int_equal(akv_seal_open(&f->c, rec, &out), CKR_DEVICE_ERROR);
    assert_null(out.data);
}

static void test_choose_rule(void **state)
{
    struct akv_seal_target t;
    struct akv_seal_cand c[3] = {
        {"hsm", "v1", "https://h/keys/hsm/v1", AKV_KV_KTY_OCT_HSM},
        {"never", "", "", AKV_KV_KTY_RSA},
        {"rsa", "v2", "https://h/keys/rsa/v2", AKV_KV_KTY_RSA},
    };
    (void)state;
    /* RSA first (RSA-OAEP-256), even after an oct-HSM key in config. */
    assert_int_equal(akv_seal_choose(c, 3, &t), CKR_OK);
    assert_string_equal(t.name, "rsa");
    assert_string_equal(t.version, "v2");
    assert_int_equal(t.alg, AKV_KV_ALG_RSA_OAEP_256);
    /* No RSA key: oct-HSM with the AES key wrap. */
    assert_int_equal(akv_seal_choose(c, 2, &t), CKR_OK);
    assert_string_equal(t.name, "hsm");
    assert_int_equal(t.alg, AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD);
    /* Never fetched or unusable: none. */
    assert_int_equal(akv_seal_choose(c + 1, 1, &t), CKR_TEMPLATE_INCONSISTENT);
    c[0].kty = AKV_KV_KTY_OTHER;
    assert_int_equal(akv_seal_choose(c, 2, &t), CKR_TEMPLATE_INCONSISTENT);
}

static void test_round_trip_and_tamper(void **state)
{
    struct fx *f = *state;
    struct akv_store_record a, b;
    struct akv_secret out = AKV_SECRET_INIT;
    uint8_t va[32], vb[32];

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    assert_int_equal(RAND_bytes(va, 32), 1);
    assert_int_equal(RAND_bytes(vb, 32), 1);
    seal_one(f, "aaa", va, &a);
    seal_one(f, "bbb", vb, &b);
    assert_int_equal(a.format, AKV_STORE_FORMAT_V2);
    assert_true(a.generation != 0 && a.generation != b.generation);
    assert_true(akv_seal_is_current(&a, &f->t));
    assert_int_equal(akv_seal_open(&f->c, &a, &out), CKR_OK);
    assert_int_equal(out.len, 32);
    assert_memory_equal(out.data, va, 32);
    akv_secret_clear(&out);

    /* Any attribute byte. */
    a.attrs[5] ^= 1;
    expect_open_fails(f, &a);
    a.attrs[5] ^= 1;
    /* Another id (a value moved to another record). */
    a.id[0] = 'x';
    expect_open_fails(f, &a);
    a.id[0] = 'a';
    /* Another generation. */
    a.generation ^= 1;
    expect_open_fails(f, &a);
    a.generation ^= 1;
    /* Another token (vault URL). */
    f->c.binding = "https://other.vault.azure.net";
    expect_open_fails(f, &a);
    f->c.binding = BINDING "/"; /* canonical form: same token */
    assert_int_equal(akv_seal_open(&f->c, &a, &out), CKR_OK);
    akv_secret_clear(&out);
    f->c.binding = BINDING;
    /* Sealed values swapped between records. */
    {
        uint8_t *s = a.sealed;
        a.sealed = b.sealed;
        b.sealed = s;
        expect_open_fails(f, &a);
        expect_open_fails(f, &b);
        b.sealed = a.sealed;
        a.sealed = s;
    }
    /* Wrapped R swapped between records. */
    {
        uint8_t *w = a.wrapped;
        a.wrapped = b.wrapped;
        b.wrapped = w;
        expect_open_fails(f, &a);
        b.wrapped = a.wrapped;
        a.wrapped = w;
    }
    /* The attacker's own R, wrapped with the PUBLIC key: the AEAD was made
     * under the real R, so this R does not open it. */
    {
        uint8_t r[32], wr[512];
        size_t n;
        assert_int_equal(RAND_bytes(r, 32), 1);
        n = kv_fake_rsa_encrypt(f->fake, "cmk", f->t.version,
                                AKV_KV_ALG_RSA_OAEP_256, r, 32, wr);
        assert_true(n > 0 && n <= a.wrapped_len);
        memcpy(a.wrapped, wr, n);
        a.wrapped_len = n;
        expect_open_fails(f, &a);
    }
    akv_store_record_clear(&a);
    akv_store_record_clear(&b);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

static void test_reseal(void **state)
{
    struct fx *f = *state;
    struct akv_store_record a, b;
    struct akv_secret out = AKV_SECRET_INIT;
    uint8_t va[32];
    uint8_t attrs[12] = "AKA1\0\0\0\0xyz";

    assert_int_equal(RAND_bytes(va, 32), 1);
    seal_one(f, "aaa", va, &a);
    assert_int_equal(
        akv_seal_reseal(&f->c, &f->t, &a, attrs, sizeof(attrs), &b), CKR_OK);
    assert_string_equal(b.id, "aaa");
    assert_int_equal(b.attrs_len, sizeof(attrs));
    assert_true(b.generation != a.generation);
    assert_int_equal(akv_seal_open(&f->c, &b, &out), CKR_OK);
    assert_memory_equal(out.data, va, 32);
    akv_secret_clear(&out);
    /* Revoked: reseal fails, nothing produced. */
    kv_fake_fail(f->fake, KV_FAKE_UNWRAP, CKR_KEY_FUNCTION_NOT_PERMITTED);
    akv_store_record_clear(&b);
    assert_int_equal(akv_seal_reseal(&f->c, &f->t, &a, NULL, 0, &b),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_null(b.sealed);
    akv_store_record_clear(&a);
}

/* A second process loads the same S from .storekey (one unwrap). */
static void test_ready_loads_existing(void **state)
{
    struct fx *f = *state;
    struct akv_store *other = NULL;
    struct akv_seal_ctx c2;
    unsigned before = kv_fake_calls(f->fake, KV_FAKE_UNWRAP);

    assert_int_equal(akv_store_open(f->dir, &other), CKR_OK);
    c2 = f->c;
    c2.store = other;
    assert_int_equal(akv_seal_ready(&c2, NULL), CKR_OK);
    assert_int_equal(akv_seal_ready(&c2, NULL), CKR_OK);
    assert_int_equal(kv_fake_calls(f->fake, KV_FAKE_UNWRAP), before + 1);
    akv_store_close(other);
    /* Revoked and not yet loaded: no S, no store. */
    assert_int_equal(akv_store_open(f->dir, &other), CKR_OK);
    c2.store = other;
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    kv_fake_fail(f->fake, KV_FAKE_UNWRAP, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_seal_ready(&c2, &f->t),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_false(akv_store_has_secret(other));
    akv_store_close(other);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

/* "wrap": "local" with a public key that is not the vault's (a tampered
 * Get Key answer or cache entry): the new store secret would be wrapped to
 * that key - every token object lost, and open to its holder. Creating the
 * store has the vault unwrap it back first, so nothing is created. */
static EVP_PKEY *attacker_key;

static CK_RV wrap_to_attacker(void *arg, const struct akv_seal_target *t,
                              const uint8_t *in, size_t in_len, uint8_t **out,
                              size_t *out_len)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(attacker_key, NULL);
    size_t len = 0;

    (void)arg;
    (void)t;
    *out = NULL;
    if (c == NULL || EVP_PKEY_encrypt_init(c) != 1
        || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) != 1
        || EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) != 1
        || EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) != 1
        || EVP_PKEY_encrypt(c, NULL, &len, in, in_len) != 1
        || (*out = malloc(len)) == NULL
        || EVP_PKEY_encrypt(c, *out, &len, in, in_len) != 1) {
        EVP_PKEY_CTX_free(c);
        free(*out);
        *out = NULL;
        return CKR_GENERAL_ERROR;
    }
    EVP_PKEY_CTX_free(c);
    *out_len = len;
    return CKR_OK;
}

static void test_ready_refuses_foreign_wrap(void **state)
{
    struct fx *f = *state;
    struct akv_store *fresh = NULL;
    struct akv_seal_ctx c2;
    char dir[64];
    char path[128];
    char cmd[128];

    attacker_key = EVP_RSA_gen(2048);
    assert_non_null(attacker_key);
    snprintf(dir, sizeof(dir), "/tmp/akv-seal-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(akv_store_open(dir, &fresh), CKR_OK);
    c2 = f->c;
    c2.store = fresh;
    c2.local_wrap = wrap_to_attacker;
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    assert_int_equal(akv_seal_ready(&c2, &f->t), CKR_DEVICE_ERROR);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
    assert_false(akv_store_has_secret(fresh));
    snprintf(path, sizeof(path), "%s/.storekey", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    /* The honest local wrap (the vault's own key) creates it. */
    c2.local_wrap = NULL;
    assert_int_equal(akv_seal_ready(&c2, &f->t), CKR_OK);
    assert_true(akv_store_has_secret(fresh));
    assert_int_equal(access(path, F_OK), 0);
    akv_store_close(fresh);
    EVP_PKEY_free(attacker_key);
    attacker_key = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose_rule),
        cmocka_unit_test_setup_teardown(test_round_trip_and_tamper, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reseal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_loads_existing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ready_refuses_foreign_wrap, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
