/* SPDX-License-Identifier: Apache-2.0 */
#include "retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/log.h"

#define RETRY_AFTER_MAX_MS (86400L * 1000L)

int64_t akv_retry_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool akv_retry_status_retryable(long status, bool imds)
{
    if (status == 408 || status == 429) {
        return true;
    }
    if (status >= 500 && status <= 599) {
        return status != 501 && status != 505;
    }
    if (imds && (status == 404 || status == 410)) {
        return true;
    }
    return false;
}

bool akv_retry_curl_retryable(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

long akv_retry_after_parse(const char *value, time_t now)
{
    size_t n;

    if (value == NULL) {
        return -1;
    }
    while (*value == ' ') {
        value++;
    }
    n = strlen(value);
    while (n > 0 && value[n - 1] == ' ') {
        n--;
    }
    if (n == 0) {
        return -1;
    }
    if (strspn(value, "0123456789") == n) {
        long long s = 0;
        for (size_t i = 0; i < n; i++) {
            s = s * 10 + (value[i] - '0');
            if (s > RETRY_AFTER_MAX_MS / 1000) {
                return RETRY_AFTER_MAX_MS;
            }
        }
        return (long)(s * 1000);
    }
    {
        /* An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete
         * RFC 850 and asctime forms a recipient must also accept): parsed
         * by libcurl rather than by hand. A date always names a weekday or
         * month, so anything without a letter is not one. */
        time_t when;

        if (strpbrk(value,
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
            == NULL) {
            return -1;
        }
        when = curl_getdate(value, NULL);
        if (when == (time_t)-1) {
            return -1;
        }
        if (when <= now) {
            return 0;
        }
        if ((long long)(when - now) > RETRY_AFTER_MAX_MS / 1000) {
            return RETRY_AFTER_MAX_MS;
        }
        return (long)(when - now) * 1000L;
    }
}

long akv_retry_backoff_ms(int retry, uint32_t rnd)
{
    long ceil_ms = AKV_RETRY_BASE_MS;

    for (int i = 0; i < retry && ceil_ms < AKV_RETRY_CAP_MS; i++) {
        ceil_ms *= 2;
    }
    if (ceil_ms > AKV_RETRY_CAP_MS) {
        ceil_ms = AKV_RETRY_CAP_MS;
    }
    return (long)(rnd % (uint32_t)(ceil_ms + 1));
}

/* Jitter needs spread, not secrecy: a lock-free xorshift is enough and
 * avoids the default OpenSSL RAND (the host's provider configuration). */
static uint32_t jitter_rand(void)
{
    static uint32_t state;
    uint32_t x = __atomic_load_n(&state, __ATOMIC_RELAXED);
    uint32_t nx;

    do {
        if (x == 0) {
            struct timespec ts;
            (void)clock_gettime(CLOCK_MONOTONIC, &ts);
            nx =
                (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16) ^ 0x9e3779b9u;
        } else {
            nx = x;
        }
        nx ^= nx << 13;
        nx ^= nx >> 17;
        nx ^= nx << 5;
    } while (!__atomic_compare_exchange_n(&state, &x, nx, false,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return nx;
}

static void sleep_ms(long ms)
{
    struct timespec ts;

    if (ms <= 0) {
        return;
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long akv_retry_server_delay(const struct akv_http_resp *resp, time_t now)
{
    if (resp->retry_after_ms[0] != '\0') {
        size_t n = strlen(resp->retry_after_ms);
        if (n <= 9 && strspn(resp->retry_after_ms, "0123456789") == n) {
            return strtol(resp->retry_after_ms, NULL, 10);
        }
    }
    if (resp->retry_after[0] != '\0') {
        return akv_retry_after_parse(resp->retry_after, now);
    }
    return -1;
}

CK_RV akv_retry_perform(struct akv_http *h, const struct akv_http_req *req,
                        const struct akv_retry_policy *policy,
                        int64_t deadline_ms, struct akv_http_resp *resp,
                        int *attempts)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    int n = 0;
    struct akv_http_req fresh;
    const struct akv_http_req *cur = req;
    bool resent = false;

    if (attempts != NULL) {
        *attempts = 0;
    }
    if (policy == NULL || resp == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    akv_http_resp_clear(resp);
    for (;;) {
        int64_t left = deadline_ms - akv_retry_now_ms();
        long timeout = policy->timeout_ms;
        long delay;
        bool again;

        if (left <= 0) {
            break;
        }
        /* The vault's throttling budget is shared: wait for this process's
         * start slot (keyvault/pace.h), or give up at once when it lies
         * past the deadline. A resend on a new connection (below) keeps the
         * slot of the attempt it replaces. */
        if (cur == req
            && akv_pace_wait(policy->pace, akv_retry_now_ms(), deadline_ms)
                   != 0) {
            AKV_LOG_DEBUG("%s: throttled: no start slot within the budget",
                          req->log_path);
            break;
        }
        left = deadline_ms - akv_retry_now_ms();
        if (left <= 0) {
            break;
        }
        if (timeout > left) {
            timeout = (long)left;
        }
        if (cur == req) {
            n++;
        }
        rv = akv_http_perform(h, cur, timeout, resp);
        cur = req;
        if (rv == CKR_DEVICE_ERROR && resp->reused_unanswered && !resent) {
            /* A kept-alive connection that a firewall or NAT dropped
             * silently: send the request once more, at once, on a new
             * connection, within the same budget. This is neither a retry
             * (not counted against policy->retries, no backoff) nor a new
             * vault request for the pacer: no byte came back, the vault
             * most likely never saw it, and akv_pace_result only counts
             * answers. Sending it twice is safe even when the vault did see
             * it: every call made through here (GET key and versions,
             * wrapKey, unwrapKey, sign, and the access token request) is a
             * pure function of its input and changes nothing on the vault
             * (a second token request just gets a second token). */
            AKV_LOG_INFO("%s: no answer on a kept-alive connection after "
                         "%ld ms (dropped by a firewall or NAT?): resending "
                         "it once on a new connection",
                         req->log_path, resp->elapsed_ms);
            fresh = *req;
            fresh.fresh_connect = true;
            cur = &fresh;
            resent = true;
            continue;
        }
        if (rv == CKR_OK) {
            akv_pace_result(policy->pace, resp->status,
                            resp->status == 429
                                ? akv_retry_server_delay(resp, time(NULL))
                                : -1,
                            akv_retry_now_ms());
            again = akv_retry_status_retryable(resp->status, policy->imds);
        } else if (rv == CKR_DEVICE_ERROR) {
            again = !resp->too_big && akv_retry_curl_retryable(resp->curl_code);
        } else {
            goto out;
        }
        if (!again || n > policy->retries) {
            goto out;
        }
        delay = rv == CKR_OK ? akv_retry_server_delay(resp, time(NULL)) : -1;
        if (delay < 0) {
            delay = akv_retry_backoff_ms(n - 1, jitter_rand());
        }
        left = deadline_ms - akv_retry_now_ms();
        if (delay >= left) {
            /* waiting would overrun the budget: give the answer we have */
            AKV_LOG_DEBUG("%s: no retry: wait %ld ms exceeds budget left "
                          "(%lld ms)",
                          req->log_path, delay, (long long)left);
            goto out;
        }
        AKV_LOG_DEBUG("%s: attempt %d got %ld%s%s; retrying in %ld ms",
                      req->log_path, n, resp->status, rv != CKR_OK ? " " : "",
                      rv != CKR_OK ? akv_http_strerror(resp->curl_code) : "",
                      delay);
        sleep_ms(delay);
    }
    if (n == 0) {
        rv = CKR_DEVICE_ERROR;
        resp->curl_code = CURLE_OPERATION_TIMEDOUT;
    }
out:
    if (attempts != NULL) {
        *attempts = n;
    }
    return rv;
}
