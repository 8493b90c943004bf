/* SPDX-License-Identifier: Apache-2.0 */
#include "secret.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Where secret bytes live: pages the module maps itself and marks
 * MADV_DONTDUMP, so a core dump of the host process holds no data key,
 * token or client secret kept in a struct akv_secret (Linux >= 3.4; where
 * the flag is missing the pages are dumped like any heap). The C heap
 * cannot be used for this: madvise works on whole pages, and a heap page
 * is shared with unrelated data and reused after free.
 *
 * Buffers of up to SLOT_MAX bytes are slots of a size class (32 bytes to
 * 2 KiB, powers of two) carved from CHUNK-byte mappings that are kept for
 * the life of the process (a free slot is wiped and reused); larger ones
 * get their own mapping, unmapped on free. Slots need no header: the
 * caller knows the size (akv_secret.cap + 1). One mutex guards the free
 * lists; pthread_atfork keeps it usable in a forked child.
 */
/*
 * Wiping: explicit_bzero (glibc >= 2.25) has OPENSSL_cleanse's guarantee
 * (the stores are not optimised away) at memset's speed; OpenSSL's x86-64
 * OPENSSL_cleanse stores 8 bytes per 4-instruction loop, which made wiping
 * libcurl's freed buffers the largest client cost of a vault call
 * (docs/ARCHITECTURE.md, "Request path costs").
 */
#define WIPE_PIECE 2048u
static void wipe(void *p, size_t n)
{
    /* In pieces below glibc's rep-stosb threshold (2 KiB): vector stores,
     * 32 bytes per instruction, where rep stosb is one instruction per byte
     * to instruction counters such as callgrind. */
    for (size_t off = 0; off < n; off += WIPE_PIECE) {
        explicit_bzero((uint8_t *)p + off,
                       n - off < WIPE_PIECE ? n - off : WIPE_PIECE);
    }
}

#define SLOT_MIN  32
#define SLOT_MAX  2048
#define N_CLASSES 7 /* 32 .. 2048 */
#define CHUNK     65536

struct slot {
    struct slot *next;
};

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *free_slots[N_CLASSES]; /* LOCKED by arena_lock */
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_prepare(void)
{
    pthread_mutex_lock(&arena_lock);
}

static void arena_release(void)
{
    pthread_mutex_unlock(&arena_lock);
}

static void arena_init(void)
{
    (void)pthread_atfork(arena_prepare, arena_release, arena_release);
}

static int size_class(size_t n)
{
    int c = 0;
    size_t sz = SLOT_MIN;

    while (sz < n) {
        sz *= 2;
        c++;
    }
    return c;
}

static void *map_nodump(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);

    if (p == MAP_FAILED) {
        return NULL;
    }
#ifdef MADV_DONTDUMP
    (void)madvise(p, n, MADV_DONTDUMP); /* best effort */
#endif
    return p;
}

static size_t page_round(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);

    return (n + pg - 1) / pg * pg;
}

/* N zeroed bytes out of core dumps, or NULL. */
static uint8_t *arena_alloc(size_t n)
{
    uint8_t *p = NULL;
    int c;

    if (n > SLOT_MAX) {
        return map_nodump(page_round(n)); /* fresh pages are zero */
    }
    (void)pthread_once(&arena_once, arena_init);
    c = size_class(n);
    pthread_mutex_lock(&arena_lock);
    if (free_slots[c] == NULL) {
        size_t sz = (size_t)SLOT_MIN << c;
        uint8_t *chunk = map_nodump(CHUNK);
        if (chunk != NULL) {
            for (size_t off = 0; off + sz <= CHUNK; off += sz) {
                struct slot *s = (struct slot *)(void *)(chunk + off);
                s->next = free_slots[c];
                free_slots[c] = s;
            }
        }
    }
    if (free_slots[c] != NULL) {
        p = (uint8_t *)free_slots[c];
        free_slots[c] = free_slots[c]->next;
    }
    pthread_mutex_unlock(&arena_lock);
    if (p != NULL) {
        memset(p, 0, sizeof(struct slot)); /* the rest is wiped already */
    }
    return p;
}

/* Wipes and releases P of N bytes (as given to arena_alloc). */
static void arena_free(uint8_t *p, size_t n)
{
    int c;
    struct slot *s;

    if (p == NULL) {
        return;
    }
    if (n > SLOT_MAX) {
        wipe(p, n);
        (void)munmap(p, page_round(n));
        return;
    }
    c = size_class(n);
    wipe(p, (size_t)SLOT_MIN << c);
    s = (struct slot *)(void *)p;
    pthread_mutex_lock(&arena_lock);
    s->next = free_slots[c];
    free_slots[c] = s;
    pthread_mutex_unlock(&arena_lock);
}

void akv_secret_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0) {
        wipe(p, len);
    }
}

void akv_secret_free_str(char *str)
{
    if (str != NULL) {
        wipe(str, strlen(str));
        free(str);
    }
}

void akv_secret_clear(struct akv_secret *s)
{
    if (s == NULL) {
        return;
    }
    arena_free(s->data, s->cap + 1);
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
    p = arena_alloc(cap + 1);
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
            arena_free(s->data, s->cap + 1);
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

void akv_secret_wipe_regs(void)
{
#if defined(__x86_64__)
    /* AES-NI / VAES code leaves round keys in vector registers; the
     * dynamic linker's lazy-binding trampoline later saves them all to the
     * stack, and a core file holds them in its register notes. */
    if (__builtin_cpu_supports("avx")) {
        __asm__ volatile("vzeroall" ::
                             : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                               "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                               "xmm12", "xmm13", "xmm14", "xmm15");
    } else {
        __asm__ volatile("pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\t"
                         "pxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t"
                         "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
                         "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\t"
                         "pxor %%xmm8, %%xmm8\n\tpxor %%xmm9, %%xmm9\n\t"
                         "pxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
                         "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\t"
                         "pxor %%xmm14, %%xmm14\n\tpxor %%xmm15, %%xmm15" ::
                             : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                               "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                               "xmm12", "xmm13", "xmm14", "xmm15");
    }
    if (__builtin_cpu_supports("avx512f")) {
        /* the upper 16 vector registers exist only with AVX-512 */
        __asm__ volatile("vpxord %%zmm16, %%zmm16, %%zmm16\n\tvpxord %%zmm17, "
                         "%%zmm17, %%zmm17\n\t"
                         "vpxord %%zmm18, %%zmm18, %%zmm18\n\tvpxord %%zmm19, "
                         "%%zmm19, %%zmm19\n\t"
                         "vpxord %%zmm20, %%zmm20, %%zmm20\n\tvpxord %%zmm21, "
                         "%%zmm21, %%zmm21\n\t"
                         "vpxord %%zmm22, %%zmm22, %%zmm22\n\tvpxord %%zmm23, "
                         "%%zmm23, %%zmm23\n\t"
                         "vpxord %%zmm24, %%zmm24, %%zmm24\n\tvpxord %%zmm25, "
                         "%%zmm25, %%zmm25\n\t"
                         "vpxord %%zmm26, %%zmm26, %%zmm26\n\tvpxord %%zmm27, "
                         "%%zmm27, %%zmm27\n\t"
                         "vpxord %%zmm28, %%zmm28, %%zmm28\n\tvpxord %%zmm29, "
                         "%%zmm29, %%zmm29\n\t"
                         "vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, "
                         "%%zmm31, %%zmm31\n\t"
                         "vzeroupper" ::
                             : "memory");
    }
#endif
}
