/* SPDX-License-Identifier: Apache-2.0 */
#include "pace.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../common/log.h"

#define BUCKETS    100 /* the 10 s window in 100 ms buckets */
#define BUCKET_MS  100
#define WINDOW_MS  (BUCKETS * BUCKET_MS)
#define SHARE      0.95 /* rate >= accepted in the window / 10 s * this */
#define BACKOFF    0.5  /* ... and >= the old rate * this (AIMD decrease) */
#define PROBE_MUL  0.03 /* + this share of the rate per second without 429 */
#define PROBE_ADD  0.25 /* ... but at least this many requests/s */
#define MIN_RATE   0.5  /* requests/s: a process never starves */
#define SLOW_START 1.5  /* growth a second below ssthresh */
#define DEFAULT_RA 1000 /* ms to hold when a 429 carries no Retry-After */
/* The longest process-wide hold one 429 can impose. Key Vault's window is
 * 10 s; a longer Retry-After (a proxy's mistake, or a hostile answer:
 * retry-after-ms takes 9 digits, 11.5 days) would fail every request of a
 * long-lived process long after the vault recovered. Past this the next
 * request probes; a vault still throttling answers 429 and a new hold. */
#define HOLD_MAX_MS 60000

struct akv_pace {
    pthread_mutex_t lock;
    /* LOCKED by lock: */
    double rate;                /* requests/s; 0 = no limit */
    double ssthresh;            /* below it the rate grows x1.5 a second */
    int64_t next_ms;            /* the next free start slot */
    int64_t hold_until;         /* no start before this (Retry-After) */
    int64_t last_change;        /* when rate last went down or up */
    int64_t bucket_at[BUCKETS]; /* which 100 ms period a bucket counts */
    unsigned bucket_ok[BUCKETS];
};

struct akv_pace *akv_pace_new(void)
{
    struct akv_pace *p = calloc(1, sizeof(*p));

    if (p != NULL && pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        p = NULL;
    }
    return p;
}

void akv_pace_free(struct akv_pace *p)
{
    if (p != NULL) {
        (void)pthread_mutex_destroy(&p->lock);
        free(p);
    }
}

static void sleep_until(int64_t now_ms, int64_t until_ms)
{
    int64_t ms = until_ms - now_ms;
    struct timespec ts;

    if (ms <= 0) {
        return;
    }
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int akv_pace_wait(struct akv_pace *p, int64_t now_ms, int64_t deadline_ms)
{
    int64_t start;

    if (p == NULL) {
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    start = now_ms;
    if (start < p->hold_until) {
        start = p->hold_until;
    }
    if (p->rate > 0 && start < p->next_ms) {
        start = p->next_ms;
    }
    if (start > now_ms && start >= deadline_ms) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    if (p->rate > 0) {
        p->next_ms = start + (int64_t)(1000.0 / p->rate);
    }
    pthread_mutex_unlock(&p->lock);
    sleep_until(now_ms, start);
    return 0;
}

/* Requests the vault accepted in the last 10 s. LOCKED. */
static unsigned window_ok_locked(const struct akv_pace *p, int64_t now_ms)
{
    int64_t period = now_ms / BUCKET_MS;
    unsigned sum = 0;

    for (int i = 0; i < BUCKETS; i++) {
        if (p->bucket_at[i] > period - BUCKETS) {
            sum += p->bucket_ok[i];
        }
    }
    return sum;
}

void akv_pace_result(struct akv_pace *p, long status, long retry_after_ms,
                     int64_t now_ms)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (status == 429) {
        int64_t hold = now_ms
                       + (retry_after_ms < 0             ? DEFAULT_RA
                          : retry_after_ms > HOLD_MAX_MS ? HOLD_MAX_MS
                                                         : retry_after_ms);

        if (hold > p->hold_until) {
            p->hold_until = hold;
        }
        if (p->rate == 0) {
            /* First 429: start from this process's share of the budget
             * (what it got through in the 10 s window) and grow fast
             * (x1.5 a second, like TCP's slow start) until the next 429:
             * a process that came late to a burst has no share yet. */
            double share = window_ok_locked(p, now_ms) * 1000.0 / WINDOW_MS;

            p->rate = share * SHARE < MIN_RATE ? MIN_RATE : share * SHARE;
            p->ssthresh = HUGE_VAL;
            p->last_change = now_ms;
        } else if (now_ms - p->last_change >= 1000) {
            /* Later 429s: multiplicative decrease (AIMD), but never below
             * what this process just got through: the processes of a fleet
             * converge on shares that add up to the budget. */
            double share = window_ok_locked(p, now_ms) * 1000.0 / WINDOW_MS;
            double rate = share * SHARE;

            if (rate < p->rate * BACKOFF) {
                rate = p->rate * BACKOFF;
            }
            if (rate > p->rate) {
                rate = p->rate;
            }
            p->rate = rate < MIN_RATE ? MIN_RATE : rate;
            p->ssthresh = p->rate;
            p->last_change = now_ms;
            AKV_LOG_INFO("vault throttled (429): pacing at %.1f requests/s, "
                         "holding %ld ms",
                         p->rate, (long)(hold - now_ms));
        }
    } else {
        int64_t period = now_ms / BUCKET_MS;
        int i = (int)(period % BUCKETS);

        if (p->bucket_at[i] != period) {
            p->bucket_at[i] = period;
            p->bucket_ok[i] = 0;
        }
        p->bucket_ok[i]++;
        if (p->rate > 0 && now_ms - p->last_change >= 1000) {
            /* Below the threshold grow fast; above it, additive increase
             * probes for a share others left. */
            double up = p->rate * PROBE_MUL;

            if (p->rate < p->ssthresh) {
                p->rate *= SLOW_START;
            } else {
                p->rate += up > PROBE_ADD ? up : PROBE_ADD;
            }
            p->last_change = now_ms;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

double akv_pace_rate(struct akv_pace *p)
{
    double r;

    if (p == NULL) {
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    r = p->rate;
    pthread_mutex_unlock(&p->lock);
    return r;
}
