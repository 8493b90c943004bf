/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for tools/admin.c (akv-pkcs11-tool's rewrap, tally and probe)
 * against an in-memory vault (tests/unit/fake) and a real store in a temp
 * folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/log.h"
#include "common/secret.h"
#include "kv_fake.h"
#include "legacy.h"
#include "tools/admin.h"

#define BINDING "https://fake.vault.azure.net"

#define N_RECS  24

struct fx {
    char dir[64];
    struct akv_store *store;
    struct kv_fake *fake;
    struct akv_kv *kv;         /* view of fake */
    uint8_t plain[N_RECS][32]; /* what record i wraps */
    char ids[N_RECS][AKV_STORE_ID_LEN + 1];
    char ver_a[AKV_KV_VERSION_MAX];
};

static const char *const algs[] = {"RSA-OAEP-256", "RSA-OAEP", "RSA1_5"};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/akv-rewrap-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(akv_store_open(f->dir, &f->store), CKR_OK);
    f->fake = kv_fake_new();
    assert_non_null(f->fake);
    kv_fake_add_rsa(f->fake, "cmk", AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY);
    f->kv = kv_fake_kv(f->fake);
    assert_non_null(kv_fake_version(f->fake, "cmk", 0));
    snprintf(f->ver_a, sizeof(f->ver_a), "%s",
             kv_fake_version(f->fake, "cmk", 0));
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

static void get_target(struct fx *f, struct akv_seal_target *t)
{
    struct akv_key_config kc = {(char *)"cmk", NULL};
    assert_int_equal(akv_admin_target(f->kv, &kc, 1, t), CKR_OK);
}

static struct akv_seal_ctx ctx_of(struct fx *f)
{
    struct akv_seal_ctx c = {f->kv, f->store, BINDING, NULL, NULL};
    return c;
}

/* First use of the store by format 2: S created, legacy records adopted. */
static void adopt(struct fx *f)
{
    struct akv_seal_target t;
    struct akv_seal_ctx c = ctx_of(f);
    get_target(f, &t);
    assert_int_equal(akv_seal_ready(&c, &t), CKR_OK);
}

/* Stores record I holding f->plain[i] under the current version, as the
 * token layer would: a legacy format-1 file (value wrapped directly, with
 * one of three algs) while the store has no secret yet, else sealed. */
static void put_record(struct fx *f, size_t i)
{
    struct akv_store_record rec;
    uint8_t attrs[40];
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    char kid[AKV_KV_KID_MAX];
    int alg = akv_kv_alg_parse(algs[i % 3]);

    assert_true(alg >= 0);
    memset(&rec, 0, sizeof(rec));
    memset(attrs, (int)i, sizeof(attrs));
    if (!akv_store_has_secret(f->store)) {
        assert_int_equal(f->kv->ops->wrap(f->kv, "cmk", NULL,
                                          (enum akv_kv_alg)alg, f->plain[i], 32,
                                          &wrapped, &wrapped_len, kid),
                         CKR_OK);
        assert_int_equal(akv_store_new_id(rec.id), CKR_OK);
        assert_int_equal(legacy_write(f->dir, rec.id, attrs, sizeof(attrs), kid,
                                      algs[i % 3], wrapped, wrapped_len),
                         0);
        free(wrapped);
    } else {
        struct akv_seal_target t;
        struct akv_seal_ctx c = ctx_of(f);
        get_target(f, &t);
        rec.attrs = malloc(sizeof(attrs));
        assert_non_null(rec.attrs);
        memcpy(rec.attrs, attrs, sizeof(attrs));
        rec.attrs_len = sizeof(attrs);
        assert_int_equal(akv_seal_seal(&c, &t, &rec, f->plain[i], 32), CKR_OK);
        assert_int_equal(akv_store_put(f->store, &rec), CKR_OK);
    }
    memcpy(f->ids[i], rec.id, sizeof(f->ids[i]));
    akv_store_record_clear(&rec);
}

static void fill_store(struct fx *f, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        assert_int_equal(RAND_bytes(f->plain[i], 32), 1);
        put_record(f, i);
    }
}

static size_t index_of(struct fx *f, const char *id)
{
    for (size_t i = 0; i < N_RECS; i++) {
        if (strcmp(f->ids[i], id) == 0) {
            return i;
        }
    }
    fail_msg("unknown id %s", id);
    return 0;
}

/* Every record is format 2, names VERSION and the one sealing alg, keeps
 * its attrs, and opens (R unwrapped with exactly that version) to the
 * plaintext it was created with. */
static void check_all(struct fx *f, size_t n_expected, const char *version)
{
    struct akv_store_record *recs = NULL;
    size_t n = 0;

    assert_int_equal(akv_store_list(f->store, &recs, &n), CKR_OK);
    assert_int_equal(n, n_expected);
    for (size_t k = 0; k < n; k++) {
        char name[AKV_KV_NAME_MAX], ver[AKV_KV_VERSION_MAX];
        struct akv_secret plain = AKV_SECRET_INIT;
        size_t i = index_of(f, recs[k].id);
        uint8_t attrs[40];
        memset(attrs, (int)i, sizeof(attrs));
        assert_int_equal(akv_admin_parse_kid(recs[k].kid, name, ver), CKR_OK);
        assert_string_equal(name, "cmk");
        assert_string_equal(ver, version);
        assert_int_equal(recs[k].format, AKV_STORE_FORMAT_V2);
        assert_string_equal(recs[k].alg, "RSA-OAEP-256");
        assert_int_equal(recs[k].attrs_len, sizeof(attrs));
        assert_memory_equal(recs[k].attrs, attrs, sizeof(attrs));
        {
            struct akv_seal_ctx c = ctx_of(f);
            assert_int_equal(akv_seal_open(&c, &recs[k], &plain), CKR_OK);
        }
        assert_int_equal(plain.len, 32);
        assert_memory_equal(plain.data, f->plain[i], 32);
        akv_secret_clear(&plain);
    }
    akv_store_records_free(recs, n);
}

static size_t count_lines(const char *buf, const char *needle)
{
    size_t n = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++) {
        n++;
    }
    return n;
}

#define VER32 "0123456789abcdef0123456789abcdef"

static void test_parse_kid(void **state)
{
    char n[AKV_KV_NAME_MAX], v[AKV_KV_VERSION_MAX];
    char long_name[200];
    static const char *const bad[] = {
        NULL,
        "",
        "cmk",
        "https://v.vault.azure.net/keys/cmk",
        "https://v.vault.azure.net/keys/cmk/",
        "https://v.vault.azure.net/keys//0123456789abcdef0123456789abcdef",
        "https://v.vault.azure.net/keys/cmk/0123456789abcdef0123456789abcdef/"
        "extra",
        "https://v.vault.azure.net/keys/cmk/"
        "0123456789abcdef0123456789abcdef?api-version=7.4",
        "https://v.vault.azure.net/secrets/cmk/"
        "0123456789abcdef0123456789abcdef",
        "https:///keys/cmk/0123456789abcdef0123456789abcdef",
        "ftp://v/keys/cmk/0123456789abcdef0123456789abcdef",
        "https://v.vault.azure.net/keys/c_k/0123456789abcdef0123456789abcdef",
        "https://v.vault.azure.net/keys/cmk/ab-c",
        "https://v.vault.azure.net/keys/cmk/v1", /* not 32 hex digits */
        "https://v.vault.azure.net/keys/cmk/"
        "0123456789012345678901234567890123456789012345678901234567890123"
        "4",
    };
    (void)state;

    assert_int_equal(
        akv_admin_parse_kid("https://v.vault.azure.net/keys/"
                            "My-Key/0123456789ABCDEF0123456789abcdef",
                            n, v),
        CKR_OK);
    assert_string_equal(n, "My-Key");
    assert_string_equal(v, "0123456789abcdef0123456789abcdef");
    assert_int_equal(
        akv_admin_parse_kid(
            "HTTP://127.0.0.1:8443/KEYS/k/0123456789ABCDEF0123456789ABCDEF", n,
            v),
        CKR_OK);
    assert_string_equal(n, "k");
    assert_string_equal(v, "0123456789abcdef0123456789abcdef");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(n, sizeof(n), "junk");
        snprintf(v, sizeof(v), "junk");
        assert_int_equal(akv_admin_parse_kid(bad[i], n, v), CKR_ARGUMENTS_BAD);
        assert_string_equal(n, "");
        assert_string_equal(v, "");
    }
    /* Name: 127 characters fit, 128 do not. */
    memset(long_name, 'a', sizeof(long_name));
    snprintf(
        long_name, sizeof(long_name), "https://h/keys/%.*s/" VER32, 127,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(akv_admin_parse_kid(long_name, n, v), CKR_OK);
    assert_int_equal(strlen(n), 127);
    snprintf(
        long_name, sizeof(long_name), "https://h/keys/%.*s/" VER32, 128,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(akv_admin_parse_kid(long_name, n, v), CKR_ARGUMENTS_BAD);
}

/* The main story: a store built under A, rotation to B, rewrap. */
static void test_rewrap_after_rotation(void **state)
{
    struct fx *f = *state;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    struct akv_rewrap_opts o = {NULL, 0, false, NULL, NULL};
    char *out = NULL;
    size_t out_len = 0;
    char ver_b[AKV_KV_VERSION_MAX];
    char line[256];
    unsigned wraps;

    /* A legacy store (format 1, three algs) from before format 2. */
    fill_store(f, 0, N_RECS);
    snprintf(ver_b, sizeof(ver_b), "%s", kv_fake_rotate(f->fake, "cmk"));
    assert_string_not_equal(ver_b, f->ver_a);
    get_target(f, &target);
    assert_string_equal(target.version, ver_b);

    o.out = open_memstream(&out, &out_len);
    assert_non_null(o.out);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, &o, &st), CKR_OK);
    fclose(o.out);
    assert_int_equal(st.rewrapped, N_RECS);
    assert_int_equal(st.current, 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.vanished, 0);
    snprintf(line, sizeof(line), "rewrapped %s (legacy format) -> %s\n",
             f->ver_a, ver_b);
    assert_int_equal(count_lines(out, line), N_RECS);
    free(out);
    check_all(f, N_RECS, ver_b);

    /* Idempotent: a second run only counts, never calls the vault. */
    wraps = kv_fake_calls(f->fake, KV_FAKE_WRAP);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, NULL, &st), CKR_OK);
    assert_int_equal(st.rewrapped, 0);
    assert_int_equal(st.current, N_RECS);
    assert_int_equal(st.failed, 0);
    assert_int_equal(kv_fake_calls(f->fake, KV_FAKE_WRAP), wraps);
    check_all(f, N_RECS, ver_b);
}

static void test_rewrap_mixed_versions(void **state)
{
    struct fx *f = *state;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    char ver_c[AKV_KV_VERSION_MAX];

    fill_store(f, 0, 8); /* legacy, under A */
    adopt(f);
    kv_fake_rotate(f->fake, "cmk");
    fill_store(f, 8, 16); /* sealed under B */
    snprintf(ver_c, sizeof(ver_c), "%s", kv_fake_rotate(f->fake, "cmk"));
    fill_store(f, 16, N_RECS); /* sealed under C */
    get_target(f, &target);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, NULL, &st), CKR_OK);
    assert_int_equal(st.rewrapped, 16);
    assert_int_equal(st.current, N_RECS - 16);
    assert_int_equal(st.failed, 0);
    check_all(f, N_RECS, ver_c);
}

static void test_rewrap_failures_leave_records(void **state)
{
    struct fx *f = *state;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    struct akv_store_record *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    char ver_b[AKV_KV_VERSION_MAX];
    struct akv_rewrap_opts o = {NULL, 0, false, NULL, NULL};
    char *out = NULL;
    size_t out_len = 0;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    fill_store(f, 0, 5);
    adopt(f);
    fill_store(f, 5, 10); /* 5 legacy, 5 sealed */
    snprintf(ver_b, sizeof(ver_b), "%s", kv_fake_rotate(f->fake, "cmk"));
    get_target(f, &target);
    assert_int_equal(akv_store_list(f->store, &before, &nb), CKR_OK);

    /* Revoked access: every unwrap fails; nothing may change on disk. */
    kv_fake_fail(f->fake, KV_FAKE_UNWRAP, CKR_KEY_FUNCTION_NOT_PERMITTED);
    o.out = open_memstream(&out, &out_len);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, &o, &st), CKR_OK);
    fclose(o.out);
    assert_int_equal(st.failed, 10);
    assert_int_equal(st.rewrapped, 0);
    assert_int_equal(count_lines(out, "failed: reseal (cmk/"), 10);
    assert_int_equal(count_lines(out, "CKR_KEY_FUNCTION_NOT_PERMITTED"), 10);
    free(out);
    /* wrap failing after a good unwrap: also nothing written. */
    kv_fake_fail_version(f->fake, KV_FAKE_WRAP, ver_b, CKR_DEVICE_ERROR);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, NULL, &st), CKR_OK);
    assert_int_equal(st.failed, 10);
    assert_int_equal(akv_store_list(f->store, &after, &na), CKR_OK);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(after[i].id, before[i].id);
        assert_string_equal(after[i].kid, before[i].kid);
        assert_int_equal(after[i].wrapped_len, before[i].wrapped_len);
        assert_memory_equal(after[i].wrapped, before[i].wrapped,
                            before[i].wrapped_len);
    }
    akv_store_records_free(after, na);
    akv_store_records_free(before, nb);

    /* Access restored: everything goes through. */
    kv_fake_fail(f->fake, KV_FAKE_WRAP, CKR_OK);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, NULL, &st), CKR_OK);
    assert_int_equal(st.rewrapped, 10);
    assert_int_equal(st.failed, 0);
    check_all(f, 10, ver_b);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

static void test_rewrap_bad_records(void **state)
{
    struct fx *f = *state;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    struct akv_store_record rec, got;
    uint8_t blob[16] = {1};

    fill_store(f, 0, 3);
    adopt(f);
    kv_fake_rotate(f->fake, "cmk");
    memset(&rec, 0, sizeof(rec));
    rec.generation = 7;
    rec.sealed = blob;
    rec.sealed_len = sizeof(blob);
    snprintf(rec.id, sizeof(rec.id), "badkid");
    rec.kid = "not-a-kid";
    rec.alg = "RSA-OAEP-256";
    rec.wrapped = blob;
    rec.wrapped_len = sizeof(blob);
    assert_int_equal(akv_store_put(f->store, &rec), CKR_OK);
    memset(rec.id, 0, sizeof(rec.id));
    snprintf(rec.id, sizeof(rec.id), "badalg");
    rec.kid = "https://fake.vault.azure.net/keys/cmk/"
              "00000000000000000000000000000000";
    rec.alg = "ROT13";
    assert_int_equal(akv_store_put(f->store, &rec), CKR_OK);
    memset(rec.id, 0, sizeof(rec.id));
    snprintf(rec.id, sizeof(rec.id), "badblob");
    rec.alg = "RSA-OAEP-256";
    {
        char kid[AKV_KV_KID_MAX];
        snprintf(kid, sizeof(kid), "https://fake.vault.azure.net/keys/cmk/%s",
                 f->ver_a);
        rec.kid = kid;
        assert_int_equal(akv_store_put(f->store, &rec), CKR_OK);
    }
    get_target(f, &target);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, NULL, &st), CKR_OK);
    assert_int_equal(st.rewrapped, 3);
    assert_int_equal(st.failed, 3);
    /* Failed records are left exactly as they were. */
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, "badkid", &got), CKR_OK);
    assert_string_equal(got.kid, "not-a-kid");
    akv_store_record_clear(&got);
    assert_int_equal(akv_admin_rewrap(f->kv, NULL, BINDING, &target, NULL, &st),
                     CKR_ARGUMENTS_BAD);
}

/* A vault wrapper whose wrap also simulates another process acting on the
 * record in between list and put_if. */
struct racing_kv {
    struct akv_kv base;
    struct akv_kv *inner;
    struct fx *f;
    int modify; /* how many wraps rewrite the record under the old key */
    struct akv_seal_target old; /* the key "another process" seals with */
    bool delete_it;
    char id[AKV_STORE_ID_LEN + 1];
};

static CK_RV racing_get(struct akv_kv *kv, const char *n, const char *v,
                        struct akv_kv_key *out)
{
    struct racing_kv *r = (struct racing_kv *)kv;
    return r->inner->ops->get_key(r->inner, n, v, out);
}

static CK_RV racing_unwrap(struct akv_kv *kv, const char *n, const char *v,
                           enum akv_kv_alg alg, const uint8_t *in,
                           size_t in_len, struct akv_secret *out)
{
    struct racing_kv *r = (struct racing_kv *)kv;
    return r->inner->ops->unwrap(r->inner, n, v, alg, in, in_len, out);
}

static CK_RV racing_wrap(struct akv_kv *kv, const char *n, const char *v,
                         enum akv_kv_alg alg, const uint8_t *in, size_t in_len,
                         uint8_t **out, size_t *out_len, char *kid_out)
{
    struct racing_kv *r = (struct racing_kv *)kv;
    CK_RV rv = r->inner->ops->wrap(r->inner, n, v, alg, in, in_len, out,
                                   out_len, kid_out);
    if (r->delete_it) {
        assert_int_equal(akv_store_delete(r->f->store, r->id), CKR_OK);
        r->delete_it = false;
    } else if (r->modify > 0) {
        /* Another process changes the attributes (same value, old key),
         * resealing as the token does (through the inner vault). */
        struct akv_store_record cur, next;
        struct akv_seal_ctx c = {r->inner, r->f->store, BINDING, NULL, NULL};
        uint8_t attrs[64];
        memset(&cur, 0, sizeof(cur));
        assert_int_equal(akv_store_get(r->f->store, r->id, &cur), CKR_OK);
        assert_true(cur.attrs_len <= sizeof(attrs));
        memcpy(attrs, cur.attrs, cur.attrs_len);
        attrs[0] ^= 0x80;
        assert_int_equal(
            akv_seal_reseal(&c, &r->old, &cur, attrs, cur.attrs_len, &next),
            CKR_OK);
        assert_int_equal(akv_store_put(r->f->store, &next), CKR_OK);
        akv_store_record_clear(&next);
        akv_store_record_clear(&cur);
        r->modify--;
    }
    return rv;
}

static void racing_destroy(struct akv_kv *kv)
{
    (void)kv;
}

static const struct akv_kv_ops racing_ops = {
    .get_key = racing_get,
    .wrap = racing_wrap,
    .unwrap = racing_unwrap,
    .destroy = racing_destroy,
};

static void test_rewrap_concurrent_change(void **state)
{
    struct fx *f = *state;
    struct racing_kv r;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    struct akv_store_record got;
    char name[AKV_KV_NAME_MAX], ver[AKV_KV_VERSION_MAX];

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    adopt(f);
    fill_store(f, 0, 1);
    memset(&r, 0, sizeof(r));
    get_target(f, &r.old);
    kv_fake_rotate(f->fake, "cmk");
    get_target(f, &target);
    r.base.ops = &racing_ops;
    r.inner = f->kv;
    r.f = f;
    memcpy(r.id, f->ids[0], sizeof(r.id));

    /* Changed once: the change is kept and rewrapped on the retry. */
    r.modify = 1;
    assert_int_equal(
        akv_admin_rewrap(&r.base, f->store, BINDING, &target, NULL, &st),
        CKR_OK);
    assert_int_equal(st.rewrapped, 1);
    assert_int_equal(st.failed, 0);
    memset(&got, 0, sizeof(got));
    assert_int_equal(akv_store_get(f->store, r.id, &got), CKR_OK);
    assert_int_equal(got.attrs[0], 0x80); /* the other process's change */
    assert_int_equal(akv_admin_parse_kid(got.kid, name, ver), CKR_OK);
    assert_string_equal(ver, target.version);
    akv_store_record_clear(&got);

    /* Changed on every attempt: skipped as failed, the change survives. */
    r.old = target;
    kv_fake_rotate(f->fake, "cmk");
    get_target(f, &target);
    r.modify = 2;
    assert_int_equal(
        akv_admin_rewrap(&r.base, f->store, BINDING, &target, NULL, &st),
        CKR_OK);
    assert_int_equal(st.rewrapped, 0);
    assert_int_equal(st.failed, 1);
    assert_int_equal(akv_store_get(f->store, r.id, &got), CKR_OK);
    assert_int_equal(got.attrs[0], 0x80); /* flipped twice more */
    assert_int_equal(akv_admin_parse_kid(got.kid, name, ver), CKR_OK);
    assert_string_not_equal(ver, target.version);
    akv_store_record_clear(&got);

    /* Deleted meanwhile: not re-created. */
    r.delete_it = true;
    assert_int_equal(
        akv_admin_rewrap(&r.base, f->store, BINDING, &target, NULL, &st),
        CKR_OK);
    assert_int_equal(st.vanished, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(akv_store_get(f->store, r.id, &got),
                     CKR_OBJECT_HANDLE_INVALID);
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

/* Killed after 5 writes (the documented test hook): every record is either
 * fully old or fully new, none lost; a second run finishes the job. */
static void test_rewrap_killed_midway(void **state)
{
    struct fx *f = *state;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    struct akv_store_record *recs = NULL;
    size_t n = 0, on_new = 0;
    int status;
    pid_t pid;

    fill_store(f, 0, N_RECS);
    kv_fake_rotate(f->fake, "cmk");
    get_target(f, &target);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct akv_rewrap_opts o = {NULL, 5, false, NULL, NULL};
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, &o, &st);
        _exit(0); /* not reached: SIGKILL after the 5th write */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    /* The child created the store secret; this process loads it. */
    {
        struct akv_seal_ctx c = ctx_of(f);
        assert_int_equal(akv_seal_ready(&c, NULL), CKR_OK);
    }
    assert_int_equal(akv_store_list(f->store, &recs, &n), CKR_OK);
    assert_int_equal(n, N_RECS);
    for (size_t i = 0; i < n; i++) {
        if (akv_seal_is_current(&recs[i], &target)) {
            on_new++;
        }
    }
    assert_int_equal(on_new, 5);
    akv_store_records_free(recs, n);

    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, NULL, &st), CKR_OK);
    assert_int_equal(st.rewrapped, N_RECS - 5);
    assert_int_equal(st.current, 5);
    check_all(f, N_RECS, target.version);
}

#define VA  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define VB  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define VBU "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static void test_tally(void **state)
{
    struct akv_store_record r[5];
    struct akv_tally_row *rows = NULL;
    size_t n = 0;
    (void)state;

    memset(r, 0, sizeof(r));
    r[0].kid = "https://v/keys/cmk/" VB;
    r[1].kid = "https://v/keys/cmk/" VA;
    r[2].kid = "https://v/keys/cmk/" VBU;
    r[3].kid = "https://v/keys/other/" VA;
    r[4].kid = "nonsense";
    assert_int_equal(akv_admin_tally(r, 5, &rows, &n), CKR_OK);
    assert_int_equal(n, 4);
    assert_string_equal(rows[0].name, "(unparsable kid)");
    assert_int_equal(rows[0].count, 1);
    assert_string_equal(rows[1].name, "cmk");
    assert_string_equal(rows[1].version, VA);
    assert_int_equal(rows[1].count, 1);
    assert_string_equal(rows[2].version, VB);
    assert_int_equal(rows[2].count, 2);
    assert_string_equal(rows[3].name, "other");
    free(rows);
    assert_int_equal(akv_admin_tally(NULL, 0, &rows, &n), CKR_OK);
    assert_int_equal(n, 0);
    free(rows);
}

static void test_probe(void **state)
{
    struct fx *f = *state;
    struct akv_probe p;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    assert_int_equal(akv_admin_probe(f->kv, "cmk", NULL, &p), CKR_OK);
    assert_true(p.get_ok && p.wrap_ok && p.unwrap_ok);
    assert_null(p.step);
    assert_string_equal(p.alg, "RSA-OAEP-256");
    assert_string_equal(p.key.version, f->ver_a);
    akv_kv_key_clear(&p.key);

    /* Pinned version after a rotation: the pinned one is probed. */
    kv_fake_rotate(f->fake, "cmk");
    assert_int_equal(akv_admin_probe(f->kv, "cmk", f->ver_a, &p), CKR_OK);
    assert_string_equal(p.key.version, f->ver_a);
    akv_kv_key_clear(&p.key);

    kv_fake_fail(f->fake, KV_FAKE_UNWRAP, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(akv_admin_probe(f->kv, "cmk", NULL, &p),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_true(p.get_ok && p.wrap_ok);
    assert_false(p.unwrap_ok);
    assert_string_equal(p.step, "unwrapKey");
    akv_kv_key_clear(&p.key);

    kv_fake_fail(f->fake, KV_FAKE_GET, CKR_DEVICE_ERROR);
    assert_int_equal(akv_admin_probe(f->kv, "cmk", NULL, &p), CKR_DEVICE_ERROR);
    assert_false(p.get_ok || p.wrap_ok || p.unwrap_ok);
    assert_string_equal(p.step, "get");
    assert_int_equal(p.rv, CKR_DEVICE_ERROR);
    akv_kv_key_clear(&p.key);

    kv_fake_fail(f->fake, KV_FAKE_GET, CKR_OK);
    assert_int_equal(akv_admin_probe(f->kv, "nokey", NULL, &p),
                     CKR_KEY_HANDLE_INVALID);
    akv_kv_key_clear(&p.key);
    assert_string_equal(akv_admin_rv_name(CKR_DEVICE_ERROR),
                        "CKR_DEVICE_ERROR");
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
}

/* The tool's quiet form: no line per record, a "\r"-updated progress
 * line per record on the terminal, erased at the end. */
static void test_rewrap_progress(void **state)
{
    struct fx *f = *state;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    struct akv_rewrap_opts o = {NULL, 0, true, NULL, "tok"};
    char *out = NULL, *prog = NULL;
    size_t out_len = 0, prog_len = 0;
    char line[128];

    fill_store(f, 0, N_RECS);
    (void)kv_fake_rotate(f->fake, "cmk");
    get_target(f, &target);
    o.out = open_memstream(&out, &out_len);
    o.progress = open_memstream(&prog, &prog_len);
    assert_non_null(o.out);
    assert_non_null(o.progress);
    assert_int_equal(
        akv_admin_rewrap(f->kv, f->store, BINDING, &target, &o, &st), CKR_OK);
    fclose(o.out);
    fclose(o.progress);
    assert_int_equal(st.rewrapped, N_RECS);
    assert_int_equal(out_len, 0); /* nothing failed: no line */
    for (size_t i = 1; i <= N_RECS; i++) {
        snprintf(line, sizeof(line),
                 "\rtok: %zu/%d records: rewrapped %zu, "
                 "already current 0, failed 0",
                 i, N_RECS, i);
        assert_non_null(strstr(prog, line));
    }
    assert_int_equal(count_lines(prog, "\n"), 0);
    assert_true(prog_len >= 4);
    assert_string_equal(prog + prog_len - 4, "\r\033[K");
    free(out);
    free(prog);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_kid),
        cmocka_unit_test(test_tally),
        cmocka_unit_test_setup_teardown(test_rewrap_after_rotation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_mixed_versions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_failures_leave_records,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_bad_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_concurrent_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_killed_midway, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_progress, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
