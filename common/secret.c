/* SPDX-License-Identifier: Apache-2.0 */
#include "secret.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void akv_secret_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0) {
        OPENSSL_cleanse(p, len);
    }
}

void akv_secret_free_str(char *str)
{
    if (str != NULL) {
        OPENSSL_cleanse(str, strlen(str));
        free(str);
    }
}

void akv_secret_clear(struct akv_secret *s)
{
    if (s == NULL) {
        return;
    }
    if (s->data != NULL) {
        OPENSSL_cleanse(s->data, s->cap + 1);
        free(s->data);
    }
    s->data = NULL;
    s->len = 0;
    s->cap = 0;
}

static uint8_t *alloc_secret_buf(size_t cap)
{
    uint8_t *p;

    if (cap == SIZE_MAX) {
        return NULL;
    }
    p = calloc(1, cap + 1);
    if (p != NULL && cap + 1 >= 4096) {
        /* Keep large secret buffers out of core dumps; ignore failure. */
        (void)madvise((void *)((uintptr_t)p & ~(uintptr_t)4095), cap + 1,
                      MADV_DONTDUMP);
    }
    return p;
}

int akv_secret_alloc(struct akv_secret *s, size_t len)
{
    akv_secret_clear(s);
    s->data = alloc_secret_buf(len);
    if (s->data == NULL) {
        return -1;
    }
    s->len = len;
    s->cap = len;
    return 0;
}

int akv_secret_set(struct akv_secret *s, const void *p, size_t len)
{
    if (akv_secret_alloc(s, len) != 0) {
        return -1;
    }
    if (len > 0) {
        memcpy(s->data, p, len);
    }
    return 0;
}

int akv_secret_append(struct akv_secret *s, const void *p, size_t len,
                      size_t limit)
{
    size_t need;
    size_t cap;
    uint8_t *n;

    if (len > SIZE_MAX - s->len - 1) {
        return -1;
    }
    need = s->len + len;
    if (limit != 0 && need > limit) {
        return -1;
    }
    if (need > s->cap) {
        cap = s->cap < 256 ? 256 : s->cap;
        while (cap < need) {
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        }
        n = alloc_secret_buf(cap);
        if (n == NULL) {
            return -1;
        }
        if (s->data != NULL) {
            memcpy(n, s->data, s->len);
            OPENSSL_cleanse(s->data, s->cap + 1);
            free(s->data);
        }
        s->data = n;
        s->cap = cap;
    }
    if (len > 0) {
        memcpy(s->data + s->len, p, len);
    }
    s->len = need;
    s->data[s->len] = '\0';
    return 0;
}

int akv_secret_read_fd(struct akv_secret *s, int fd, size_t len)
{
    if (akv_secret_alloc(s, len) != 0) {
        return -1;
    }
    s->len = 0;
    while (s->len < s->cap) {
        ssize_t r = read(fd, s->data + s->len, s->cap - s->len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        s->len += (size_t)r;
    }
    s->data[s->len] = '\0';
    return 0;
}
