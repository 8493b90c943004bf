/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An adaptive per-process request pacer for one vault (registry scale:
 * "throttling across a fleet").
 *
 * Key Vault limits a vault to a number of operations per 10 s window
 * (service limits: e.g. 4,000 RSA-2048 software-key operations, 2,000 for
 * HSM keys) and answers 429 with Retry-After past it. Many processes and
 * threads that simply retry after Retry-After turn a burst into a storm of
 * 429s; this pacer turns it into a steady rate:
 *  - until the first 429 it does nothing (no cost when the vault is not
 *    busy);
 *  - on a 429 every thread of the process holds until Retry-After (at
 *    most 60 s: a longer one is re-learnt from the next 429, never a
 *    process locked out for days by one header);
 *  - the first 429 sets the rate to what this process got through in the
 *    last 10 s window (its share of the vault's budget) x 0.95, at least
 *    0.5/s, and the rate then grows x1.5 a second until the next 429 (a
 *    process that came late to a burst has no share yet: TCP's slow
 *    start);
 *  - a later 429 halves the rate (AIMD), but never below the measured
 *    share, and at most once a second, so the 429s of requests already in
 *    flight do not collapse it; from there the rate probes upward by 3 % a
 *    second (at least 0.25 requests/s), so a process whose neighbours went
 *    quiet takes over their share;
 *  - requests are given start slots 1/rate apart; a request whose slot
 *    lies beyond its deadline fails at once instead of waiting in vain.
 * No lock is held while a caller waits.
 *
 * Follows: Azure Key Vault service limits and throttling guidance ("Azure
 * Key Vault throttling guidance": back off on 429, honour Retry-After).
 */
#ifndef AKV_KEYVAULT_PACE_H
#define AKV_KEYVAULT_PACE_H

#include <stdint.h>

struct akv_pace;

/* akv_pace_new - a pacer with no limit yet. NULL on ENOMEM. */
struct akv_pace *akv_pace_new(void);

/* akv_pace_free - NULL-safe. No thread may be waiting in it. */
void akv_pace_free(struct akv_pace *p);

/*
 * akv_pace_wait - takes the next start slot and sleeps until it (no lock
 * held while sleeping). NOW_MS and DEADLINE_MS are akv_retry_now_ms()
 * times. Returns 0 when the request may start; -1 (without waiting) when
 * its slot is at or past DEADLINE_MS. NULL P: returns 0 at once.
 */
int akv_pace_wait(struct akv_pace *p, int64_t now_ms, int64_t deadline_ms);

/*
 * akv_pace_result - feeds one answer back: STATUS is the HTTP status (429
 * = throttled; anything else counts as a request the vault accepted),
 * RETRY_AFTER_MS the server's delay for a 429 (-1 when absent), NOW_MS an
 * akv_retry_now_ms() time. NULL-safe.
 */
void akv_pace_result(struct akv_pace *p, long status, long retry_after_ms,
                     int64_t now_ms);

/* akv_pace_rate - the current limit in requests per second (0 = none);
 * for logs and tests. */
double akv_pace_rate(struct akv_pace *p);

#endif /* AKV_KEYVAULT_PACE_H */
