/* SPDX-License-Identifier: Apache-2.0 */
/* token/objpool.c and the storage rules of token/attr.c it relies on
 * (issue 9, allocations per remote unwrap): a warm object costs no heap
 * allocation, a recycled record carries nothing over, attribute values are
 * wiped before their memory is released, the cache is bounded; object
 * handles draw the random generator once per batch, not once per object.
 * The heap and RAND_bytes_ex are observed through the linker's --wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "include/pkcs11/akv-pkcs11.h"
#include "token/attr.h"
#include "token/crypto.h"
#include "token/objpool.h"
#include "token/token.h"

/* ---- observed heap ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_RAND_bytes_ex(OSSL_LIB_CTX *ctx, unsigned char *buf, size_t num,
                         unsigned int strength);

static int n_alloc;       /* malloc + calloc + realloc calls */
static const void *watch; /* a block whose release is checked */
static size_t watch_len;  /* its bytes */
static int watch_freed;   /* times it was freed */
static int watch_wiped;   /* ... with every byte zero */
static int n_rand;        /* RAND_bytes_ex calls */

void *__wrap_malloc(size_t n)
{
    n_alloc++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    n_alloc++;
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    n_alloc++;
    return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
    if (p != NULL && p == watch) {
        const uint8_t *b = p;
        bool zero = true;

        for (size_t i = 0; i < watch_len; i++) {
            zero = zero && b[i] == 0;
        }
        watch_freed++;
        watch_wiped += zero ? 1 : 0;
        watch = NULL;
    }
    __real_free(p);
}

int __wrap_RAND_bytes_ex(OSSL_LIB_CTX *ctx, unsigned char *buf, size_t num,
                         unsigned int strength)
{
    n_rand++;
    return __real_RAND_bytes_ex(ctx, buf, num, strength);
}

/* What akv_object_make_secret builds for an unwrapped AES key. */
static struct akv_obj *make_secret_key(void)
{
    struct akv_obj *o =
        akv_obj_new(AKV_ORIGIN_SESSION, CKO_SECRET_KEY, CKK_AES);
    struct akv_attrs *a;

    assert_non_null(o);
    a = &o->attrs;
    assert_int_equal(akv_attrs_set_ulong(a, CKA_CLASS, CKO_SECRET_KEY), CKR_OK);
    assert_int_equal(akv_attrs_set_ulong(a, CKA_KEY_TYPE, CKK_AES), CKR_OK);
    assert_int_equal(akv_attrs_set_bool(a, CKA_TOKEN, CK_FALSE), CKR_OK);
    assert_int_equal(akv_attrs_set_bool(a, CKA_LOCAL, CK_FALSE), CKR_OK);
    assert_int_equal(akv_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM,
                                         CK_UNAVAILABLE_INFORMATION),
                     CKR_OK);
    assert_int_equal(akv_attrs_set_ulong(a, CKA_VALUE_LEN, 32), CKR_OK);
    assert_int_equal(akv_attrs_fill_defaults(a, CKO_SECRET_KEY), CKR_OK);
    assert_int_equal(akv_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE, CK_FALSE),
                     CKR_OK);
    assert_int_equal(akv_attrs_set_bool(a, CKA_NEVER_EXTRACTABLE, CK_FALSE),
                     CKR_OK);
    return o;
}

static void test_warm_object_allocates_nothing(void **state)
{
    struct akv_obj *o;
    CK_ULONG v = 0;

    (void)state;
    akv_objpool_drain();
    akv_obj_unref(make_secret_key()); /* warm: one record in the cache */
    assert_int_equal(akv_objpool_count(), 1);
    n_alloc = 0;
    for (int i = 0; i < 10; i++) {
        o = make_secret_key();
        /* the values are the new object's, not left-overs */
        assert_true(akv_attrs_ulong(&o->attrs, CKA_VALUE_LEN, &v));
        assert_int_equal(v, 32);
        assert_int_equal(akv_attrs_bool(&o->attrs, CKA_SENSITIVE, CK_FALSE),
                         CK_TRUE);
        assert_true(o->attrs.n >= 25);
        akv_obj_unref(o);
    }
    assert_int_equal(n_alloc, 0);
    akv_objpool_drain();
    assert_int_equal(akv_objpool_count(), 0);
}

static void test_recycled_record_is_blank(void **state)
{
    struct akv_obj *o = make_secret_key();
    const uint8_t *slot;
    size_t cap = akv_attrs_capacity(&o->attrs);

    (void)state;
    akv_objpool_drain();
    o->handle = 1234;
    o->owner = 77;
    o->dead = true;
    o->listed = true;
    o->value_expiry = 99;
    assert_int_equal(akv_secret_set(&o->value, "0123456789abcdef", 16), 0);
    /* an inline value: its slot stays in the kept block */
    assert_int_equal(akv_attrs_set_ulong(&o->attrs, CKA_VALUE_LEN, 0x5a5a5a5a),
                     CKR_OK);
    slot = akv_attrs_find(&o->attrs, CKA_VALUE_LEN)->pValue;
    akv_obj_unref(o);
    assert_int_equal(akv_objpool_count(), 1);
    for (size_t i = 0; i < sizeof(CK_ULONG); i++) {
        assert_int_equal(slot[i], 0); /* wiped, not just dropped */
    }
    o = akv_obj_new(AKV_ORIGIN_STORE, CKO_DATA, (CK_KEY_TYPE)-1);
    assert_int_equal(akv_objpool_count(), 0);
    assert_int_equal(o->magic, AKV_OBJ_MAGIC);
    assert_int_equal(o->refs, 1);
    assert_int_equal(o->origin, AKV_ORIGIN_STORE);
    assert_int_equal(o->cls, CKO_DATA);
    assert_int_equal(o->handle, 0);
    assert_int_equal(o->owner, 0);
    assert_false(o->dead);
    assert_false(o->listed);
    assert_int_equal(o->value_expiry, 0);
    assert_null(o->value.data);
    assert_int_equal(o->value.len, 0);
    assert_null(o->vkey);
    assert_null(o->pub);
    assert_int_equal(o->attrs.n, 0);
    assert_null(akv_attrs_find(&o->attrs, CKA_CLASS));
    assert_int_equal(akv_attrs_capacity(&o->attrs), cap); /* block kept */
    akv_obj_unref(o);
    akv_objpool_drain();
}

static void test_cache_is_bounded(void **state)
{
    struct akv_obj *objs[AKV_OBJPOOL_MAX + 6];
    struct akv_obj *big;

    (void)state;
    akv_objpool_drain();
    for (size_t i = 0; i < AKV_OBJPOOL_MAX + 6; i++) {
        objs[i] = make_secret_key();
    }
    for (size_t i = 0; i < AKV_OBJPOOL_MAX + 6; i++) {
        akv_obj_unref(objs[i]);
    }
    assert_int_equal(akv_objpool_count(), AKV_OBJPOOL_MAX);
    akv_objpool_drain();
    /* a record grown past AKV_OBJPOOL_MAX_ATTRS entries is not kept */
    big = akv_obj_new(AKV_ORIGIN_SESSION, CKO_DATA, (CK_KEY_TYPE)-1);
    for (CK_ULONG i = 0; i <= AKV_OBJPOOL_MAX_ATTRS; i++) {
        assert_int_equal(akv_attrs_set_ulong(&big->attrs, 0x80000000ul + i, i),
                         CKR_OK);
    }
    assert_true(akv_attrs_capacity(&big->attrs) > AKV_OBJPOOL_MAX_ATTRS);
    akv_obj_unref(big);
    assert_int_equal(akv_objpool_count(), 0);
}

/* A value too large to be inline is wiped before free(): when replaced,
 * removed, cleared, and when its object is recycled. */
static void watch_value(const struct akv_attrs *a, CK_ATTRIBUTE_TYPE t)
{
    const CK_ATTRIBUTE *e = akv_attrs_find(a, t);

    assert_non_null(e);
    assert_true(e->ulValueLen > sizeof(CK_ULONG));
    watch = e->pValue;
    watch_len = e->ulValueLen;
    watch_freed = 0;
    watch_wiped = 0;
}

static void test_values_wiped_before_free(void **state)
{
    struct akv_attrs a = AKV_ATTRS_INIT;
    struct akv_obj *o;
    uint8_t label[100];
    uint8_t id[40];

    (void)state;
    memset(label, 0xaa, sizeof(label));
    memset(id, 0x55, sizeof(id));
    assert_int_equal(akv_attrs_set(&a, CKA_LABEL, label, sizeof(label)),
                     CKR_OK);
    assert_int_equal(akv_attrs_set(&a, CKA_ID, id, sizeof(id)), CKR_OK);
    /* replaced by a new value */
    watch_value(&a, CKA_LABEL);
    assert_int_equal(akv_attrs_set(&a, CKA_LABEL, "new", 3), CKR_OK);
    assert_int_equal(watch_freed, 1);
    assert_int_equal(watch_wiped, 1);
    assert_memory_equal(akv_attrs_find(&a, CKA_LABEL)->pValue, "new", 3);
    /* removed */
    watch_value(&a, CKA_ID);
    akv_attrs_remove(&a, CKA_ID);
    assert_int_equal(watch_freed, 1);
    assert_int_equal(watch_wiped, 1);
    /* cleared */
    assert_int_equal(akv_attrs_set(&a, CKA_ID, id, sizeof(id)), CKR_OK);
    watch_value(&a, CKA_ID);
    akv_attrs_clear(&a);
    assert_int_equal(watch_freed, 1);
    assert_int_equal(watch_wiped, 1);
    /* an object's values when it is destroyed (record recycled) */
    o = make_secret_key();
    assert_int_equal(akv_attrs_set(&o->attrs, CKA_LABEL, label, sizeof(label)),
                     CKR_OK);
    watch_value(&o->attrs, CKA_LABEL);
    akv_obj_unref(o);
    assert_int_equal(watch_freed, 1);
    assert_int_equal(watch_wiped, 1);
    akv_objpool_drain();
}

static void test_handles_batch_random(void **state)
{
    CK_ULONG h[256];

    (void)state;
    n_rand = 0;
    for (size_t i = 0; i < 256; i++) {
        h[i] = akv_crypto_handle();
        assert_true(h[i] != 0);
        assert_true(h[i] < 0x80000000ul);
    }
    /* 256 handles, one RAND call per batch (32 words) rather than each */
    assert_true(n_rand >= 1);
    assert_true(n_rand <= 9);
    /* random, not a counter: consecutive handles are not in sequence */
    {
        int seq = 0;

        for (size_t i = 1; i < 256; i++) {
            seq += h[i] == h[i - 1] + 1 ? 1 : 0;
        }
        assert_true(seq < 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warm_object_allocates_nothing),
        cmocka_unit_test(test_recycled_record_is_blank),
        cmocka_unit_test(test_cache_is_bounded),
        cmocka_unit_test(test_values_wiped_before_free),
        cmocka_unit_test(test_handles_batch_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
