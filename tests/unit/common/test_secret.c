/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/secret.c: contents survive alloc/set/append growth; every buffer,
 * small (size-class slot) or large (own mapping), lies in pages the kernel
 * marks "dd" (MADV_DONTDUMP: left out of core dumps) in /proc/self/smaps;
 * a released slot is wiped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/secret.h"

/* 1 when the mapping holding P has the "dd" VmFlag, 0 when not, -1 when P
 * is in no mapping (or smaps cannot be read). */
static int dontdump(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    uintptr_t a = (uintptr_t)p;
    int in = 0;
    int rc = -1;

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            in = a >= lo && a < hi;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            rc = strstr(line, " dd") != NULL ? 1 : 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static void test_roundtrip(void **state)
{
    struct akv_secret s = AKV_SECRET_INIT;
    uint8_t want[6000];
    (void)state;

    for (size_t i = 0; i < sizeof(want); i++) {
        want[i] = (uint8_t)(i * 7 + 1);
    }
    for (size_t n = 1; n <= sizeof(want); n += 97) {
        assert_int_equal(akv_secret_set(&s, want, n), 0);
        assert_int_equal(s.len, n);
        assert_memory_equal(s.data, want, n);
        assert_int_equal(s.data[n], 0);
    }
    akv_secret_clear(&s);
    for (size_t n = 0; n < sizeof(want); n += 333) {
        size_t k = sizeof(want) - n < 333 ? sizeof(want) - n : 333;
        assert_int_equal(akv_secret_append(&s, want + n, k, 0), 0);
    }
    assert_int_equal(s.len, sizeof(want));
    assert_memory_equal(s.data, want, sizeof(want));
    akv_secret_clear(&s);
    assert_null(s.data);
}

static void test_not_in_core_dumps(void **state)
{
    static const size_t sizes[] = {1,    31,   32,   33,    200,
                                   2047, 2048, 5000, 300000};
    (void)state;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct akv_secret s = AKV_SECRET_INIT;
        assert_int_equal(akv_secret_alloc(&s, sizes[i]), 0);
        if (dontdump(s.data) != 1) {
            fail_msg("a %zu-byte secret is not in a MADV_DONTDUMP mapping",
                     sizes[i]);
        }
        akv_secret_clear(&s);
    }
}

static void test_slot_wiped(void **state)
{
    struct akv_secret s = AKV_SECRET_INIT;
    uint8_t *slot;
    uint8_t zero[64] = {0};
    (void)state;

    assert_int_equal(akv_secret_set(&s,
                                    "0123456789abcdef0123456789abcdef"
                                    "0123456789abcdef0123456789abcd",
                                    62),
                     0);
    slot = s.data;
    akv_secret_clear(&s);
    /* the slot stays mapped (the arena keeps its pages): past the free-list
     * link it must hold zeros now */
    assert_memory_equal(slot + sizeof(void *), zero, 63 - sizeof(void *));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: before any large buffer exists, whose page rounding
         * could mark heap pages by accident */
        cmocka_unit_test(test_not_in_core_dumps),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_slot_wiped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
