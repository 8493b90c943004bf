/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyvault/pace.c: the adaptive per-process pacer. Times are given by the
 * test (akv_retry_now_ms() scale), so the arithmetic is checked exactly;
 * only the slot spacing test sleeps, a few ms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keyvault/pace.h"
#include "keyvault/retry.h"

static void test_unlimited_until_throttled(void **state)
{
    struct akv_pace *p = akv_pace_new();
    int64_t t = akv_retry_now_ms();

    (void)state;
    assert_non_null(p);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(akv_pace_wait(p, t, t + 1), 0);
        akv_pace_result(p, 200, -1, t);
    }
    assert_true(akv_pace_rate(p) == 0);
    /* NULL pacer: never waits, never fails */
    assert_int_equal(akv_pace_wait(NULL, t, t), 0);
    akv_pace_result(NULL, 429, 5, t);
    akv_pace_free(p);
}

static void test_throttled_sets_share_and_holds(void **state)
{
    struct akv_pace *p = akv_pace_new();
    int64_t t = akv_retry_now_ms();
    double r;

    (void)state;
    /* 200 accepted over the last 10 s: this process's share is 20/s */
    for (int i = 0; i < 200; i++) {
        akv_pace_result(p, 200, -1, t - 9000 + i * 45);
    }
    akv_pace_result(p, 429, 3000, t);
    assert_true(akv_pace_rate(p) > 18.99 && akv_pace_rate(p) < 19.01);
    /* every thread holds until Retry-After: a request due before fails at
     * once, one with budget left waits */
    assert_int_equal(akv_pace_wait(p, t, t + 2999), -1);
    /* a second 429 right after (in flight before the hold) does not cut
     * the rate again */
    akv_pace_result(p, 429, 3000, t + 10);
    assert_true(akv_pace_rate(p) > 18.99 && akv_pace_rate(p) < 19.01);
    /* one a second later does: never above the rate it had, never below
     * the measured share (about 19/s: a few of the 200 left the window) */
    akv_pace_result(p, 429, 1000, t + 1100);
    r = akv_pace_rate(p);
    assert_true(r > 18.0 && r <= 19.0);
    /* without 429s the rate probes upward: + 3 % (>= 0.25/s) a second */
    akv_pace_result(p, 200, -1, t + 2200);
    assert_true(akv_pace_rate(p) > r * 1.0299 && akv_pace_rate(p) < r * 1.0301);
    r = akv_pace_rate(p);
    akv_pace_result(p, 200, -1, t + 2300); /* within the second: no change */
    assert_true(akv_pace_rate(p) == r);
    /* a process that got little through halves (AIMD), not to its share */
    akv_pace_result(p, 429, 0, t + 30000);
    assert_true(akv_pace_rate(p) > r * 0.4999 && akv_pace_rate(p) < r * 0.5001);
    akv_pace_free(p);
}

static void test_floor_and_no_history(void **state)
{
    struct akv_pace *p = akv_pace_new();
    int64_t t = akv_retry_now_ms();

    (void)state;
    /* a 429 with nothing accepted in the window: the floor, 0.5/s, and
     * a missing Retry-After holds 1 s */
    akv_pace_result(p, 429, -1, t);
    assert_true(akv_pace_rate(p) > 0.499 && akv_pace_rate(p) < 0.501);
    assert_int_equal(akv_pace_wait(p, t, t + 999), -1);
    /* after a first 429 the rate grows x1.5 a second (slow start): a
     * process late to a burst catches up in seconds, not minutes */
    akv_pace_result(p, 200, -1, t + 1000);
    assert_true(akv_pace_rate(p) > 0.749 && akv_pace_rate(p) < 0.751);
    akv_pace_result(p, 200, -1, t + 2000);
    assert_true(akv_pace_rate(p) > 1.124 && akv_pace_rate(p) < 1.126);
    /* accepted requests older than 10 s do not count */
    akv_pace_free(p);
    p = akv_pace_new();
    for (int i = 0; i < 100; i++) {
        akv_pace_result(p, 200, -1, t - 20000 + i);
    }
    akv_pace_result(p, 429, 0, t);
    assert_true(akv_pace_rate(p) > 0.499 && akv_pace_rate(p) < 0.501);
    akv_pace_free(p);
}

/* A hostile or broken Retry-After (retry-after-ms 999999999: 11.5 days)
 * holds the process at most 60 s, after which requests start again. */
static void test_hold_bounded(void **state)
{
    struct akv_pace *p = akv_pace_new();
    int64_t t = akv_retry_now_ms();

    (void)state;
    akv_pace_result(p, 429, 999999999L, t);
    assert_int_equal(akv_pace_wait(p, t + 59000, t + 59500), -1);
    /* 60 s later a request with a 1 s budget gets a slot */
    assert_int_equal(akv_pace_wait(p, t + 60000, t + 61000), 0);
    akv_pace_result(p, 429, 86400000L, t + 60000);
    assert_int_equal(akv_pace_wait(p, t + 120000, t + 121000), 0);
    akv_pace_free(p);
}

static void test_slots_are_spaced(void **state)
{
    struct akv_pace *p = akv_pace_new();
    int64_t t = akv_retry_now_ms();
    int64_t t0;
    int64_t t1;

    (void)state;
    for (int i = 0; i < 2000; i++) {
        akv_pace_result(p, 200, -1, t - 5000 + i);
    }
    akv_pace_result(p, 429, 0, t); /* 190/s: slots ~5 ms apart */
    t0 = akv_retry_now_ms();
    for (int i = 0; i < 20; i++) {
        assert_int_equal(akv_pace_wait(p, akv_retry_now_ms(), t0 + 10000), 0);
    }
    t1 = akv_retry_now_ms();
    /* 20 slots 5 ms apart: the last starts >= 95 ms after the first */
    assert_true(t1 - t0 >= 90);
    assert_true(t1 - t0 < 2000);
    /* a caller whose slot lies past its deadline fails without waiting */
    assert_int_equal(akv_pace_wait(p, akv_retry_now_ms(), akv_retry_now_ms()),
                     -1);
    akv_pace_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited_until_throttled),
        cmocka_unit_test(test_throttled_sets_share_and_holds),
        cmocka_unit_test(test_floor_and_no_history),
        cmocka_unit_test(test_slots_are_spaced),
        cmocka_unit_test(test_hold_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
