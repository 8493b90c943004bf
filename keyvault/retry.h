/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retry policy for Key Vault and token endpoints (keyvault-protocol.md §5,
 * §8 "C module"): 429 honours Retry-After (RFC 9110 §10.2.3: delay-seconds
 * or HTTP-date; also retry-after-ms / x-ms-retry-after-ms) and otherwise
 * backs off exponentially; 408, 5xx except 501/505 and connection errors or
 * timeouts back off exponentially with full jitter (base 500 ms, cap 8 s);
 * other 4xx are never retried (401 is handled by the caller: refresh the
 * token once). Every call has an absolute deadline: no call waits longer
 * than its budget. wrapkey/unwrapkey are POSTs but change no state, so
 * retrying them is safe.
 */
#ifndef AKV_KEYVAULT_RETRY_H
#define AKV_KEYVAULT_RETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "http.h"
#include "pace.h"

#define AKV_RETRY_BASE_MS 500L
#define AKV_RETRY_CAP_MS  8000L

struct akv_retry_policy {
    int retries;           /* extra attempts after the first (0..10) */
    long timeout_ms;       /* per attempt */
    bool imds;             /* also retry 404/410 (IMDS updating, how-to-use-vm-
                              token.md "Retry guidance") */
    struct akv_pace *pace; /* the vault's pacer (keyvault/pace.h), or NULL */
};

/* akv_retry_now_ms - CLOCK_MONOTONIC in ms (deadlines use this clock). */
int64_t akv_retry_now_ms(void);

/* akv_retry_status_retryable - true for 408, 429, 500..599 except 501 and
 * 505; with IMDS also 404 and 410. */
bool akv_retry_status_retryable(long status, bool imds);

/* akv_retry_curl_retryable - true for transport failures worth another
 * attempt (connect/resolve/send/receive errors, timeouts); false for TLS
 * verification, bad URL, oversize body and other permanent failures. */
bool akv_retry_curl_retryable(int curl_code);

/*
 * akv_retry_after_parse - VALUE of Retry-After: delay-seconds ("120") or an
 * IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT", RFC 9110 §5.6.7); NOW: the
 * current wall-clock time. Returns the delay in ms (0 for a date in the
 * past), or -1 for an absent or unparsable value. Capped at 1 day.
 */
long akv_retry_after_parse(const char *value, time_t now);

/*
 * akv_retry_server_delay - the delay RESP's headers ask for, in ms:
 * retry-after-ms / x-ms-retry-after-ms when it is 1..9 digits, else
 * Retry-After through akv_retry_after_parse with NOW; -1 when neither
 * header gives one.
 */
long akv_retry_server_delay(const struct akv_http_resp *resp, time_t now);

/*
 * akv_retry_backoff_ms - full-jitter delay before retry number RETRY
 * (0 = first retry): uniform in [0, min(AKV_RETRY_CAP_MS, AKV_RETRY_BASE_MS
 * * 2^RETRY)] drawn from RND.
 */
long akv_retry_backoff_ms(int retry, uint32_t rnd);

/*
 * akv_retry_perform - runs REQ until it gets a final answer, the retries
 * are used up or DEADLINE_MS (akv_retry_now_ms() clock) is reached; each
 * attempt's timeout is min(policy->timeout_ms, time left). An attempt
 * that got no answer byte on a reused connection (resp->reused_unanswered:
 * most likely a connection a firewall or NAT dropped) is sent once more at
 * once with req->fresh_connect, without backoff, without a new pacer slot
 * and without counting as an attempt; once per call. RESP holds the last
 * attempt's answer; *ATTEMPTS (may be NULL) the number of attempts.
 * Returns CKR_OK when an HTTP answer was received (any status, including a
 * retryable one after the budget), CKR_DEVICE_ERROR when the last attempt
 * got no answer or the budget was spent before any attempt, and
 * akv_http_perform's CKR_ARGUMENTS_BAD / CKR_HOST_MEMORY.
 */
CK_RV akv_retry_perform(struct akv_http *h, const struct akv_http_req *req,
                        const struct akv_retry_policy *policy,
                        int64_t deadline_ms, struct akv_http_resp *resp,
                        int *attempts);

#endif /* AKV_KEYVAULT_RETRY_H */
