/* SPDX-License-Identifier: Apache-2.0 */
#include "created.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fdio.h"
#include "../common/fsperm.h"
#include "../common/kvid.h"
#include "../common/log.h"

#define CREATED_NAME  ".created-keys"
#define CREATED_LOCK  ".created-keys.lock"
#define CREATED_MAGIC "akv-pkcs11 created keys 1\n"
#define CREATED_BYTES (AKV_CREATED_MAX * AKV_KV_NAME_MAX + 64)

static bool path_of(const char *dir, const char *file, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", dir, file);

    return n > 0 && (size_t)n < len;
}

/* Text BUF (LEN bytes) -> OUT; malformed lines and a last line without its
 * newline are skipped, duplicates kept once. */
static void parse(const char *buf, size_t len, struct akv_created_list *out)
{
    size_t pos = strlen(CREATED_MAGIC);

    out->n = 0;
    if (len < pos || memcmp(buf, CREATED_MAGIC, pos) != 0) {
        return;
    }
    while (pos < len && out->n < AKV_CREATED_MAX) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t l;
        bool dup = false;

        if (nl == NULL) {
            break;
        }
        l = (size_t)(nl - line);
        pos += l + 1;
        if (!akv_kvid_name_ok(line, l)) {
            continue;
        }
        for (size_t i = 0; i < out->n && !dup; i++) {
            dup = strlen(out->names[i]) == l
                  && strncasecmp(out->names[i], line, l) == 0;
        }
        if (!dup) {
            memcpy(out->names[out->n], line, l);
            out->names[out->n][l] = '\0';
            out->n++;
        }
    }
}

/* Reads FD (the catalog, checked) into OUT. */
static int read_fd(int fd, const char *path, struct stat *st,
                   struct akv_created_list *out)
{
    char buf[CREATED_BYTES];
    char why[512];

    if (akv_fsperm_check_file(st, path, why, sizeof(why)) != 0) {
        AKV_LOG_WARN("created-keys catalog ignored: %s", why);
        return -1;
    }
    if (st->st_size > (off_t)sizeof(buf)) {
        AKV_LOG_WARN("created-keys catalog %s ignored: larger than %zu bytes",
                     path, sizeof(buf));
        return -1;
    }
    if (akv_fdio_read_all(fd, buf, (size_t)st->st_size) != 0) {
        return -1;
    }
    parse(buf, (size_t)st->st_size, out);
    return 0;
}

int akv_created_read(const char *dir, uint64_t *stamp,
                     struct akv_created_list *out)
{
    char path[4096];
    struct stat st;
    uint64_t now = 0;
    int fd = -1;
    int rc = -1;

    out->n = 0;
    if (dir == NULL || !path_of(dir, CREATED_NAME, path, sizeof(path))) {
        return 0;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        now = 1; /* "no file": read once as empty */
        rc = *stamp == now ? 0 : 1;
        *stamp = now;
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        goto out;
    }
    now = ((uint64_t)st.st_mtim.tv_sec * 1000000000ull
           + (uint64_t)st.st_mtim.tv_nsec)
          ^ ((uint64_t)st.st_size << 48) ^ (uint64_t)st.st_ino;
    now |= 2; /* never 0 (not read) or 1 (no file) */
    if (now == *stamp) {
        rc = 0;
        goto out;
    }
    *stamp = now;
    rc = read_fd(fd, path, &st, out) == 0 ? 1 : -1;
out:
    close(fd);
    return rc;
}

static int write_list(const char *dir, const struct akv_created_list *l)
{
    char path[4096];
    char tmp[4096];
    char buf[CREATED_BYTES];
    size_t len = strlen(CREATED_MAGIC);
    int fd = -1;
    int rc = -1;

    memcpy(buf, CREATED_MAGIC, len);
    for (size_t i = 0; i < l->n; i++) {
        size_t nl = strlen(l->names[i]);

        memcpy(buf + len, l->names[i], nl);
        buf[len + nl] = '\n';
        len += nl + 1;
    }
    if (!path_of(dir, CREATED_NAME, path, sizeof(path))
        || !path_of(dir, CREATED_NAME ".tmp", tmp, sizeof(tmp))) {
        return -1;
    }
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || akv_fdio_write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    rc = rename(tmp, path);
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        (void)unlink(tmp);
    }
    return rc;
}

int akv_created_update(const char *dir, const char *name, bool add)
{
    char path[4096];
    char lock[4096];
    struct akv_created_list *l = NULL;
    struct stat st;
    int lfd = -1;
    int fd = -1;
    int rc = -1;
    size_t i;

    if (dir == NULL || name == NULL || !akv_kvid_name_ok(name, strlen(name))
        || !path_of(dir, CREATED_NAME, path, sizeof(path))
        || !path_of(dir, CREATED_LOCK, lock, sizeof(lock))) {
        return -1;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return -1;
    }
    lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
        goto out;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0 && (fstat(fd, &st) != 0 || read_fd(fd, path, &st, l) != 0)) {
        goto out;
    }
    for (i = 0; i < l->n && strcasecmp(l->names[i], name) != 0; i++) {
    }
    if (add && i == l->n) {
        if (l->n == AKV_CREATED_MAX) {
            AKV_LOG_ERR("created-keys catalog %s is full (%d keys)", path,
                        AKV_CREATED_MAX);
            goto out;
        }
        (void)snprintf(l->names[l->n++], AKV_KV_NAME_MAX, "%s", name);
    } else if (!add && i < l->n) {
        memmove(l->names[i], l->names[i + 1],
                (l->n - i - 1) * sizeof(l->names[0]));
        l->n--;
    } else {
        rc = 0; /* already so */
        goto out;
    }
    rc = write_list(dir, l);
out:
    if (rc != 0) {
        AKV_LOG_WARN("created-keys catalog %s: key %s not %s (errno %d); other "
                     "processes will not see the change",
                     path, name, add ? "added" : "removed", errno);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (lfd >= 0) {
        close(lfd); /* releases the flock */
    }
    free(l);
    return rc;
}
