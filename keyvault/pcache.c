/* SPDX-License-Identifier: Apache-2.0 */
#include "pcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../common/fdio.h"
#include "../common/log.h"
#include "../common/ossl.h"

#define MAGIC     "AKVPC1\n"
#define MAGIC_LEN 8 /* incl. the NUL */
#define HDR_MAX   (MAGIC_LEN + 4 + AKV_PCACHE_DESC_MAX + 8 + 4)

char *akv_pcache_default_dir(void)
{
    const char *run = secure_getenv("XDG_RUNTIME_DIR");
    const char *home = secure_getenv("HOME");
    struct passwd pw;
    struct passwd *res = NULL;
    char buf[1024];
    char *out = NULL;

    if (run != NULL && run[0] == '/') {
        return asprintf(&out, "%s/akv-pkcs11", run) < 0 ? NULL : out;
    }
    if ((home == NULL || home[0] != '/')
        && getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0
        && res != NULL) {
        home = pw.pw_dir;
    }
    if (home == NULL || home[0] != '/') {
        return NULL;
    }
    return asprintf(&out, "%s/.cache/akv-pkcs11", home) < 0 ? NULL : out;
}

/* The entry's file name: KIND + "-" + FNV-1a-64 of DESC in hex. */
static bool entry_path(const char *dir, const char *kind, const char *desc,
                       char *out, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    int n;

    if (dir == NULL || dir[0] != '/' || kind == NULL || desc == NULL
        || strspn(kind, "abcdefghijklmnopqrstuvwxyz") != strlen(kind)
        || strlen(desc) > AKV_PCACHE_DESC_MAX) {
        return false;
    }
    for (const char *p = desc; *p != '\0'; p++) {
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    }
    n = snprintf(out, len, "%s/%s-%016llx", dir, kind, (unsigned long long)h);
    return n > 0 && (size_t)n < len;
}

/* Our own, and nobody else's: owned by the effective uid, no group/other
 * access (a folder or file others can write lets them plant entries; one
 * they can read leaks the token). Logged once per process and folder. */
static bool private_ok(const struct stat *st, const char *path, bool dir)
{
    /* Shared by every thread that loads or stores: changed under lock. */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static char warned[256];
    bool first;

    if ((dir ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode))
        && st->st_uid == geteuid() && (st->st_mode & 077) == 0) {
        return true;
    }
    pthread_mutex_lock(&lock);
    first = strncmp(warned, path, sizeof(warned) - 1) != 0;
    if (first) {
        (void)snprintf(warned, sizeof(warned), "%s", path);
    }
    pthread_mutex_unlock(&lock);
    if (first) {
        AKV_LOG_WARN(
            "cache %s: owner uid %u, mode 0%o: must be a %s owned "
            "by uid %u with no group/other access (fix: chmod "
            "go= %s); not used",
            path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777),
            dir ? "folder" : "regular file", (unsigned)geteuid(), path);
    }
    return false;
}

static bool dir_ok(const char *dir)
{
    struct stat st;

    return lstat(dir, &st) == 0 && private_ok(&st, dir, true);
}

/* mkdir -p with 0700 for the folders it makes. */
static bool make_dir(const char *dir)
{
    char tmp[1024];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return false;
            }
            *p = '/';
        }
    }
    return (mkdir(tmp, 0700) == 0 || errno == EEXIST) && dir_ok(dir);
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    for (int i = bytes - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

int akv_pcache_load(const char *dir, const char *kind, const char *desc,
                    struct akv_secret *out, int64_t *stamp)
{
    char path[1200];
    uint8_t *buf = NULL;
    size_t dlen = desc != NULL ? strlen(desc) : 0;
    size_t size = 0;
    size_t clen;
    struct stat st;
    int rc = -1;
    int fd = -1;

    akv_secret_clear(out);
    if (!entry_path(dir, kind, desc, path, sizeof(path)) || !dir_ok(dir)) {
        goto out;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0 || !private_ok(&st, path, false)
        || st.st_size < (off_t)(MAGIC_LEN + 4 + dlen + 12)
        || st.st_size > (off_t)(HDR_MAX + AKV_PCACHE_MAX)) {
        goto out;
    }
    size = (size_t)st.st_size;
    buf = malloc(size);
    if (buf == NULL || akv_fdio_read_all(fd, buf, size) != 0
        || memcmp(buf, MAGIC, MAGIC_LEN) != 0
        || get_le(buf + MAGIC_LEN, 4) != dlen
        || (dlen > 0 && memcmp(buf + MAGIC_LEN + 4, desc, dlen) != 0)) {
        goto out;
    }
    clen = (size_t)get_le(buf + MAGIC_LEN + 4 + dlen + 8, 4);
    if (clen == 0 || clen != size - (MAGIC_LEN + 4 + dlen + 12)
        || akv_secret_set(out, buf + MAGIC_LEN + 16 + dlen, clen) != 0) {
        goto out;
    }
    *stamp = (int64_t)get_le(buf + MAGIC_LEN + 4 + dlen, 8);
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (buf != NULL) {
        OPENSSL_clear_free(buf, size);
    }
    if (rc != 0) {
        akv_secret_clear(out);
    }
    return rc;
}

int akv_pcache_store(const char *dir, const char *kind, const char *desc,
                     const void *data, size_t len, int64_t stamp)
{
    char path[1200];
    char tmp[1300];
    uint8_t hdr[HDR_MAX];
    uint8_t rnd[8];
    size_t dlen = desc != NULL ? strlen(desc) : 0;
    size_t hlen;
    int fd = -1;
    int rc = -1;

    if (data == NULL || len == 0 || len > AKV_PCACHE_MAX
        || !entry_path(dir, kind, desc, path, sizeof(path))
        || RAND_bytes_ex(akv_ossl_libctx(), rnd, sizeof(rnd), 0) != 1) {
        return -1;
    }
    if (!dir_ok(dir) && !make_dir(dir)) {
        AKV_LOG_DEBUG("cache %s: cannot be used", dir);
        return -1;
    }
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%02x%02x%02x%02x", path,
                   (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
    memcpy(hdr, MAGIC, MAGIC_LEN);
    put_le(hdr + MAGIC_LEN, dlen, 4);
    if (dlen > 0) {
        memcpy(hdr + MAGIC_LEN + 4, desc, dlen);
    }
    put_le(hdr + MAGIC_LEN + 4 + dlen, (uint64_t)stamp, 8);
    put_le(hdr + MAGIC_LEN + 12 + dlen, len, 4);
    hlen = MAGIC_LEN + 16 + dlen;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        goto out;
    }
    if (akv_fdio_write_all(fd, hdr, hlen) != 0
        || akv_fdio_write_all(fd, data, len) != 0) {
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    /* rename(2) replaces the entry atomically; no fsync: a cache entry
     * lost in a crash is just a cache miss. */
    if (rename(tmp, path) != 0) {
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        (void)unlink(tmp);
        AKV_LOG_DEBUG("cache %s: entry not written (errno %d)", dir, errno);
    }
    return rc;
}

void akv_pcache_remove(const char *dir, const char *kind, const char *desc)
{
    char path[1200];

    if (entry_path(dir, kind, desc, path, sizeof(path)) && dir_ok(dir)) {
        (void)unlink(path);
    }
}
