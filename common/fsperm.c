/* SPDX-License-Identifier: Apache-2.0 */
/* StrictModes-style file and folder rules (fsperm.h has the rules and why). */
#include "fsperm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The owners whose files and folders we trust: ourselves and root (root
 * can rewrite anything anyway, and system folders such as / and /etc are
 * root's). */
static bool owner_ok(uid_t owner)
{
    return owner == 0 || owner == geteuid();
}

int akv_fsperm_check_file(const struct stat *st, const char *path, char *err,
                          size_t err_len)
{
    if (!S_ISREG(st->st_mode)) {
        akv_log_fmt(err, err_len,
                    "%s: not a regular file; fix: name a regular file", path);
        return AKV_FSPERM_ERR_RULES;
    }
    if (!owner_ok(st->st_uid)) {
        akv_log_fmt(err, err_len,
                    "%s: owned by uid %u, not by this process's uid %u or "
                    "root, so that user can rewrite it; fix: chown %u %s",
                    path, (unsigned)st->st_uid, (unsigned)geteuid(),
                    (unsigned)geteuid(), path);
        return AKV_FSPERM_ERR_RULES;
    }
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        akv_log_fmt(err, err_len,
                    "%s: mode %04o lets group/other write it; fix: chmod go-w "
                    "%s",
                    path, (unsigned)(st->st_mode & 07777), path);
        return AKV_FSPERM_ERR_RULES;
    }
    return 0;
}

int akv_fsperm_check_dir_stat(const struct stat *st, const char *path,
                              char *err, size_t err_len)
{
    if (!S_ISDIR(st->st_mode)) {
        akv_log_fmt(err, err_len, "%s: not a folder; fix: name a folder", path);
        return AKV_FSPERM_ERR_RULES;
    }
    if (!owner_ok(st->st_uid)) {
        akv_log_fmt(err, err_len,
                    "folder %s: owned by uid %u, not by this process's uid %u "
                    "or root, so that user can replace what it holds; fix: "
                    "chown %u %s",
                    path, (unsigned)st->st_uid, (unsigned)geteuid(),
                    (unsigned)geteuid(), path);
        return AKV_FSPERM_ERR_RULES;
    }
    /* Sticky: others may add entries but not rename or remove ours. */
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0
        && (st->st_mode & S_ISVTX) == 0) {
        akv_log_fmt(err, err_len,
                    "folder %s: mode %04o lets group/other replace what it "
                    "holds; fix: chmod go-w %s",
                    path, (unsigned)(st->st_mode & 07777), path);
        return AKV_FSPERM_ERR_RULES;
    }
    return 0;
}

/* Cuts BUF to its parent folder ("/a/b/" -> "/a", "/a" -> "/", "a" -> no
 * parent). Returns false when there is none. */
static bool parent(char *buf)
{
    size_t n = strlen(buf);
    char *slash;

    while (n > 1 && buf[n - 1] == '/') {
        buf[--n] = '\0';
    }
    slash = strrchr(buf, '/');
    if (slash == NULL || (slash == buf && buf[1] == '\0')) {
        return false;
    }
    if (slash == buf) {
        buf[1] = '\0';
        return true;
    }
    while (slash > buf && *slash == '/') {
        *slash-- = '\0';
    }
    return true;
}

/* The folder rule on BUF and every folder above it (BUF is consumed). */
static int walk_up(char *buf, char *err, size_t err_len)
{
    char ebuf[128];

    for (;;) {
        struct stat st;
        int rc;
        if (stat(buf, &st) != 0) {
            int e = errno;
            akv_log_fmt(err, err_len, "folder %s: %s", buf,
                        strerror_r(e, ebuf, sizeof(ebuf)));
            errno = e;
            return AKV_FSPERM_ERR_IO;
        }
        if (!S_ISDIR(st.st_mode)) {
            /* a path problem, not a permission one */
            akv_log_fmt(err, err_len, "%s: not a folder", buf);
            errno = ENOTDIR;
            return AKV_FSPERM_ERR_IO;
        }
        rc = akv_fsperm_check_dir_stat(&st, buf, err, err_len);
        if (rc != 0) {
            return rc;
        }
        if (!parent(buf)) {
            return 0;
        }
    }
}

int akv_fsperm_check_dirs(const char *dir, char *err, size_t err_len)
{
    char real[PATH_MAX];
    char *as_written = NULL;
    char ebuf[128];
    int rc = AKV_FSPERM_ERR_IO;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (dir == NULL || dir[0] == '\0') {
        akv_log_fmt(err, err_len, "empty folder name");
        errno = EINVAL;
        goto out;
    }
    if (realpath(dir, real) == NULL) {
        int e = errno;
        akv_log_fmt(err, err_len, "folder %s: %s", dir,
                    strerror_r(e, ebuf, sizeof(ebuf)));
        errno = e;
        goto out;
    }
    /* The canonical chain: the folders that really hold each entry. */
    rc = walk_up(real, err, err_len);
    if (rc != 0) {
        goto out;
    }
    /* The chain as written: a folder that holds a symlink named in the
     * path (/etc/akv -> /opt/akv) must be as safe as the target's. */
    as_written = strdup(dir);
    if (as_written == NULL) {
        akv_log_fmt(err, err_len, "out of memory");
        errno = ENOMEM;
        rc = AKV_FSPERM_ERR_IO;
        goto out;
    }
    rc = walk_up(as_written, err, err_len);
out:
    free(as_written);
    return rc;
}

/* Common tail of the two opens: O_NOFOLLOW already applied; FD is open.
 * Applies the file rule and restores blocking mode. Closes FD on error. */
static int check_opened(int fd, const char *path, char *err, size_t err_len)
{
    struct stat st;
    int fl;
    char ebuf[128];

    if (fstat(fd, &st) != 0) {
        int e = errno;
        akv_log_fmt(err, err_len, "%s: fstat: %s", path,
                    strerror_r(e, ebuf, sizeof(ebuf)));
        (void)close(fd);
        errno = e;
        return AKV_FSPERM_ERR_IO;
    }
    if (akv_fsperm_check_file(&st, path, err, err_len) != 0) {
        (void)close(fd);
        return AKV_FSPERM_ERR_RULES;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK) != 0) {
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    return fd;
}

/* The message for a failed open: a symlink gets its own rule text. */
static int open_failed(const char *path, char *err, size_t err_len)
{
    int e = errno;
    char ebuf[128];

    if (e == ELOOP) {
        akv_log_fmt(err, err_len,
                    "%s: is a symbolic link, which is never followed; fix: "
                    "name the file itself (readlink -f %s)",
                    path, path);
        errno = e;
        return AKV_FSPERM_ERR_RULES;
    }
    akv_log_fmt(err, err_len, "%s: %s", path,
                strerror_r(e, ebuf, sizeof(ebuf)));
    errno = e;
    return AKV_FSPERM_ERR_IO;
}

#define OPEN_FLAGS (O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

int akv_fsperm_open(const char *path, int flags, mode_t mode, char *err,
                    size_t err_len)
{
    char *dir = NULL;
    char msg[512];
    struct stat pre;
    int fd;
    int rc;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (path == NULL || path[0] == '\0') {
        akv_log_fmt(err, err_len, "empty file name");
        errno = EINVAL;
        return AKV_FSPERM_ERR_IO;
    }
    /* Judge what is there before opening it: opening a device node can
     * have side effects (a watchdog, a tape drive), so only a regular
     * file - or nothing yet, for O_CREAT - is opened at all. The fd is
     * judged again below; this is not the check that counts. */
    if (lstat(path, &pre) == 0 && !S_ISREG(pre.st_mode)) {
        if (S_ISLNK(pre.st_mode)) {
            errno = ELOOP;
            return open_failed(path, err, err_len);
        }
        return akv_fsperm_check_file(&pre, path, err, err_len);
    }
    fd = open(path, flags | OPEN_FLAGS, mode);
    if (fd < 0) {
        return open_failed(path, err, err_len);
    }
    fd = check_opened(fd, path, err, err_len);
    if (fd < 0) {
        return fd;
    }
    /* The folders above: "." for a bare file name. */
    dir = strdup(path);
    if (dir == NULL) {
        akv_log_fmt(err, err_len, "out of memory");
        (void)close(fd);
        errno = ENOMEM;
        return AKV_FSPERM_ERR_IO;
    }
    if (!parent(dir)) {
        /* a bare name: dir holds at least 2 bytes (open(path) worked, so
         * path is not empty) */
        dir[0] = '.';
        dir[1] = '\0';
    }
    rc = akv_fsperm_check_dirs(dir, msg, sizeof(msg));
    free(dir);
    if (rc != 0) {
        int e = errno;
        /* Name the file too: the folder alone does not say what for. */
        akv_log_fmt(err, err_len, "%s: %s", path, msg);
        (void)close(fd);
        errno = e;
        return rc;
    }
    return fd;
}

int akv_fsperm_openat(int dir_fd, const char *dir, const char *name, int flags,
                      mode_t mode, char *err, size_t err_len)
{
    char path[PATH_MAX];
    struct stat pre;
    int fd;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (name == NULL) {
        name = "";
    }
    (void)snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : ".", name);
    if (name[0] == '\0' || strchr(name, '/') != NULL) {
        akv_log_fmt(err, err_len, "%s: not a plain file name", path);
        errno = EINVAL;
        return AKV_FSPERM_ERR_IO;
    }
    /* as in akv_fsperm_open: never open a non-regular file */
    if (fstatat(dir_fd, name, &pre, AT_SYMLINK_NOFOLLOW) == 0
        && !S_ISREG(pre.st_mode)) {
        if (S_ISLNK(pre.st_mode)) {
            errno = ELOOP;
            return open_failed(path, err, err_len);
        }
        return akv_fsperm_check_file(&pre, path, err, err_len);
    }
    fd = openat(dir_fd, name, flags | OPEN_FLAGS, mode);
    if (fd < 0) {
        return open_failed(path, err, err_len);
    }
    return check_opened(fd, path, err, err_len);
}
