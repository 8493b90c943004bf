/* SPDX-License-Identifier: Apache-2.0 */
#include "objpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A cached record is poisoned for AddressSanitizer: the cache must not hide
 * a use after C_DestroyObject that free() would have shown. */
#if defined(__SANITIZE_ADDRESS__)
#define OBJPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OBJPOOL_ASAN 1
#endif
#endif
#ifdef OBJPOOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(o)   ASAN_POISON_MEMORY_REGION((o), sizeof(*(o)))
#define UNPOISON(o) ASAN_UNPOISON_MEMORY_REGION((o), sizeof(*(o)))
#else
#define POISON(o)   ((void)(o))
#define UNPOISON(o) ((void)(o))
#endif

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct akv_obj *pool[AKV_OBJPOOL_MAX]; /* LOCKED by pool_lock */
static size_t pool_n;                         /* LOCKED by pool_lock */

struct akv_obj *akv_objpool_get(void)
{
    struct akv_obj *o = NULL;

    pthread_mutex_lock(&pool_lock);
    if (pool_n > 0) {
        o = pool[--pool_n];
        pool[pool_n] = NULL;
        if (o != NULL) {
            UNPOISON(o);
        }
    }
    pthread_mutex_unlock(&pool_lock);
    if (o == NULL) {
        o = calloc(1, sizeof(*o));
    }
    return o;
}

void akv_objpool_put(struct akv_obj *o)
{
    struct akv_attrs keep;
    bool kept = false;

    if (o == NULL) {
        return;
    }
    akv_attrs_reset(&o->attrs);
    keep = o->attrs;
    memset(o, 0, sizeof(*o));
    o->attrs = keep;
    if (akv_attrs_capacity(&keep) <= AKV_OBJPOOL_MAX_ATTRS) {
        pthread_mutex_lock(&pool_lock);
        if (pool_n < AKV_OBJPOOL_MAX) {
            pool[pool_n++] = o;
            POISON(o);
            kept = true;
        }
        pthread_mutex_unlock(&pool_lock);
    }
    if (!kept) {
        akv_attrs_clear(&o->attrs);
        free(o);
    }
}

void akv_objpool_drain(void)
{
    struct akv_obj *take[AKV_OBJPOOL_MAX];
    size_t n;

    pthread_mutex_lock(&pool_lock);
    n = pool_n;
    memcpy(take, pool,
           n * sizeof(take[0])); // NOLINT(bugprone-sizeof-expression): pointers
    memset(pool, 0, sizeof(pool));
    pool_n = 0;
    pthread_mutex_unlock(&pool_lock);
    for (size_t i = 0; i < n; i++) {
        if (take[i] != NULL) {
            UNPOISON(take[i]);
            akv_attrs_clear(&take[i]->attrs);
            free(take[i]);
        }
    }
}

size_t akv_objpool_count(void)
{
    size_t n;

    pthread_mutex_lock(&pool_lock);
    n = pool_n;
    pthread_mutex_unlock(&pool_lock);
    return n;
}

/* The records stay: a parent thread caught inside get/put leaves at worst a
 * NULL entry below pool_n (get then falls back to calloc, drain skips it)
 * or one record outside the cache (its own, lost with the thread). */
void akv_objpool_forget(void)
{
    pthread_mutex_init(&pool_lock, NULL);
}
