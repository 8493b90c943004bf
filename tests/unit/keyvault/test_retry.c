/* SPDX-License-Identifier: Apache-2.0 */
/* keyvault/retry.c pure parts: which answers are retried, Retry-After
 * (RFC 9110 §10.2.3: seconds or IMF-fixdate), full-jitter bounds. The
 * network loop is exercised in test_kv_rest.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "keyvault/retry.h"

static void test_status_classes(void **state)
{
    (void)state;
    assert_true(akv_retry_status_retryable(408, false));
    assert_true(akv_retry_status_retryable(429, false));
    assert_true(akv_retry_status_retryable(500, false));
    assert_true(akv_retry_status_retryable(502, false));
    assert_true(akv_retry_status_retryable(503, false));
    assert_true(akv_retry_status_retryable(504, false));
    assert_false(akv_retry_status_retryable(501, false));
    assert_false(akv_retry_status_retryable(505, false));
    assert_false(akv_retry_status_retryable(200, false));
    assert_false(akv_retry_status_retryable(400, false));
    assert_false(akv_retry_status_retryable(401, false));
    assert_false(akv_retry_status_retryable(403, false));
    assert_false(akv_retry_status_retryable(404, false));
    assert_false(akv_retry_status_retryable(409, false));
    assert_false(akv_retry_status_retryable(410, false));
    /* IMDS: 404 and 410 while the endpoint updates */
    assert_true(akv_retry_status_retryable(404, true));
    assert_true(akv_retry_status_retryable(410, true));
    assert_false(akv_retry_status_retryable(400, true));
}

static void test_curl_classes(void **state)
{
    (void)state;
    assert_true(akv_retry_curl_retryable(CURLE_COULDNT_CONNECT));
    assert_true(akv_retry_curl_retryable(CURLE_OPERATION_TIMEDOUT));
    assert_true(akv_retry_curl_retryable(CURLE_RECV_ERROR));
    assert_true(akv_retry_curl_retryable(CURLE_GOT_NOTHING));
    assert_false(akv_retry_curl_retryable(CURLE_PEER_FAILED_VERIFICATION));
    assert_false(akv_retry_curl_retryable(CURLE_SSL_CACERT_BADFILE));
    assert_false(akv_retry_curl_retryable(CURLE_URL_MALFORMAT));
    assert_false(akv_retry_curl_retryable(CURLE_UNSUPPORTED_PROTOCOL));
    assert_false(akv_retry_curl_retryable(CURLE_WRITE_ERROR));
    assert_false(akv_retry_curl_retryable(CURLE_OK));
}

static void test_retry_after(void **state)
{
    /* 2015-10-21T07:28:00Z */
    const time_t now = 1445412480;
    (void)state;

    assert_int_equal(akv_retry_after_parse("0", now), 0);
    assert_int_equal(akv_retry_after_parse("1", now), 1000);
    assert_int_equal(akv_retry_after_parse(" 120 ", now), 120000);
    assert_int_equal(akv_retry_after_parse("99999999999999", now),
                     86400L * 1000L);
    assert_int_equal(
        akv_retry_after_parse("Wed, 21 Oct 2015 07:28:10 GMT", now), 10000);
    assert_int_equal(
        akv_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", now), 0);
    assert_int_equal(
        akv_retry_after_parse("Tue, 20 Oct 2015 07:28:00 GMT", now),
        0); /* in the past */
    assert_int_equal(
        akv_retry_after_parse("Sat, 31 Dec 2016 00:00:00 GMT", now),
        86400L * 1000L); /* capped at a day */
    assert_int_equal(akv_retry_after_parse("", now), -1);
    assert_int_equal(akv_retry_after_parse(NULL, now), -1);
    assert_int_equal(akv_retry_after_parse("-1", now), -1);
    assert_int_equal(akv_retry_after_parse("1.5", now), -1);
    assert_int_equal(akv_retry_after_parse("soon", now), -1);
    assert_int_equal(
        akv_retry_after_parse("Wed, 21 Foo 2015 07:28:10 GMT", now), -1);
    assert_int_equal(
        akv_retry_after_parse("Wed, 21 Oct 2015 25:28:10 GMT", now), -1);
    /* RFC 9110 §5.6.7: the obsolete RFC 850 and asctime forms must be
     * accepted too. */
    assert_int_equal(
        akv_retry_after_parse("Wednesday, 21-Oct-15 07:28:10 GMT", now), 10000);
    assert_int_equal(akv_retry_after_parse("Wed Oct 21 07:28:20 2015", now),
                     20000);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    /* the ceiling doubles from 500 ms and stops at 8 s */
    assert_int_equal(akv_retry_backoff_ms(0, 500), 500);
    assert_int_equal(akv_retry_backoff_ms(0, 501), 0);
    assert_int_equal(akv_retry_backoff_ms(1, 1000), 1000);
    assert_int_equal(akv_retry_backoff_ms(3, 4000), 4000);
    assert_int_equal(akv_retry_backoff_ms(4, 8000), 8000);
    assert_int_equal(akv_retry_backoff_ms(30, 8000), 8000);
    assert_int_equal(akv_retry_backoff_ms(30, UINT32_MAX), UINT32_MAX % 8001);
    for (int r = 0; r < 12; r++) {
        long ceil_ms = 500L << (r < 5 ? r : 5);
        if (ceil_ms > 8000) {
            ceil_ms = 8000;
        }
        for (uint32_t x = 0; x < 100000; x += 997) {
            long d = akv_retry_backoff_ms(r, x * 2654435761u);
            assert_true(d >= 0);
            assert_true(d <= ceil_ms);
        }
    }
}

static void test_budget_spent(void **state)
{
    struct akv_http_resp resp = {0};
    struct akv_retry_policy pol = {3, 1000, false, NULL};
    struct akv_http_req req = {0};
    int attempts = -1;
    (void)state;

    req.method = "GET";
    req.url = "https://127.0.0.1:1/";
    req.log_path = "/";
    /* a deadline already in the past: no attempt at all */
    assert_int_equal(akv_retry_perform(NULL, &req, &pol, akv_retry_now_ms() - 1,
                                       &resp, &attempts),
                     CKR_DEVICE_ERROR);
    assert_int_equal(attempts, 0);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.curl_code, CURLE_OPERATION_TIMEDOUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_curl_classes),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_budget_spent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
