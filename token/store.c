/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The persistent object store (store.h, docs/STORE.md).
 *
 * Invariants that the rest of the file relies on:
 *  - A record file <id>.obj only ever appears through rename(2) of a fully
 *    written and fsync'd temp file, so any reader sees an old or a new
 *    complete record (POSIX rename atomicity), never a torn one.
 *  - Temp files (".<id>.tmp.<pid>.<rand>") exist only while their writer
 *    holds the exclusive flock on .lock; one found while we hold that lock
 *    was left by a killed writer.
 *  - Every operation opens .lock afresh: flock(2) locks belong to the open
 *    file description, so a fresh open serialises threads of one process as
 *    well as separate processes (a shared fd would not).
 *  - Everything read from disk is untrusted: each length is checked against
 *    its limit and against the bytes that remain before it is used.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/fsperm.h"
#include "../common/log.h"
#include "../common/secret.h"

#define STORE_MAGIC       "AKVOBJ1\n"
#define STORE_MAGIC_LEN   8
#define STORE_SUFFIX      ".obj"
#define STORE_LOCK_NAME   ".lock"
#define STORE_TMP_TAG     ".tmp."
#define STORE_ATTRS_MAX   AKV_STORE_ATTRS_MAX /* bytes */
#define STORE_KID_MAX     511u                /* bytes, without NUL */
#define STORE_ALG_MAX     31u                 /* bytes, without NUL */
#define STORE_WRAPPED_MAX 4096u               /* bytes */
/* magic + u32 + u16 + u16 + u32 + crc u32 */
#define STORE_FIXED_LEN (STORE_MAGIC_LEN + 4 + 2 + 2 + 4 + 4)
#define STORE_FILE_MAX                                                         \
    (STORE_FIXED_LEN + STORE_ATTRS_MAX + STORE_KID_MAX + STORE_ALG_MAX         \
     + STORE_WRAPPED_MAX)

struct akv_store {
    char *dir;
    int dir_fd; /* O_DIRECTORY; all file operations are relative to it */
    size_t last_unreadable; /* record files the last list skipped (atomic) */
};

/* strerror is not thread-safe and the module runs in unknown threaded
 * hosts; glibc's strerror_r (GNU form under _GNU_SOURCE) is. */
static const char *errtext(int e)
{
    static _Thread_local char buf[128];
    return strerror_r(e, buf, sizeof(buf));
}

/* CRC-32 (IEEE 802.3, zlib's) over LEN bytes; zlib takes uInt lengths and
 * records are bounded far below 4 GiB. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t len)
{
    return (uint32_t)crc32((uLong)crc, p, (uInt)len);
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
           | ((uint32_t)p[3] << 24);
}

/* Ids become file names: only [0-9A-Za-z_-], 1..AKV_STORE_ID_LEN chars, so
 * no "/", "..", hidden or temp name can be formed from one. */
static bool id_valid(const char *id)
{
    size_t len = 0;

    if (id == NULL) {
        return false;
    }
    for (; id[len] != '\0'; len++) {
        char c = id[len];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                  || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
        if (!ok || len >= AKV_STORE_ID_LEN) {
            return false;
        }
    }
    return len > 0;
}

/* kid and alg are stored as counted bytes but used as C strings: printable
 * ASCII only, which also excludes NUL. */
static bool text_valid(const uint8_t *p, size_t len, size_t max)
{
    if (len == 0 || len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static bool record_valid(const struct akv_store_record *rec)
{
    if (rec == NULL || rec->kid == NULL || rec->alg == NULL) {
        return false;
    }
    if (rec->attrs_len > STORE_ATTRS_MAX
        || (rec->attrs_len > 0 && rec->attrs == NULL)) {
        return false;
    }
    if (rec->wrapped == NULL || rec->wrapped_len == 0
        || rec->wrapped_len > STORE_WRAPPED_MAX) {
        return false;
    }
    return text_valid((const uint8_t *)rec->kid, strlen(rec->kid),
                      STORE_KID_MAX)
           && text_valid((const uint8_t *)rec->alg, strlen(rec->alg),
                         STORE_ALG_MAX);
}

/* Serialises REC (already validated) into a malloc'd buffer. */
static CK_RV encode(const struct akv_store_record *rec, uint8_t **out,
                    size_t *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    size_t kid_len = strlen(rec->kid);
    size_t alg_len = strlen(rec->alg);
    size_t len =
        STORE_FIXED_LEN + rec->attrs_len + kid_len + alg_len + rec->wrapped_len;
    uint8_t *buf = malloc(len);
    uint8_t *p = buf;

    if (buf == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    memcpy(p, STORE_MAGIC, STORE_MAGIC_LEN);
    p += STORE_MAGIC_LEN;
    put_le32(p, (uint32_t)rec->attrs_len);
    p += 4;
    if (rec->attrs_len > 0) {
        memcpy(p, rec->attrs, rec->attrs_len);
        p += rec->attrs_len;
    }
    put_le16(p, (uint16_t)kid_len);
    p += 2;
    memcpy(p, rec->kid, kid_len);
    p += kid_len;
    put_le16(p, (uint16_t)alg_len);
    p += 2;
    memcpy(p, rec->alg, alg_len);
    p += alg_len;
    put_le32(p, (uint32_t)rec->wrapped_len);
    p += 4;
    memcpy(p, rec->wrapped, rec->wrapped_len);
    p += rec->wrapped_len;
    put_le32(p, crc32_update(0, buf, (size_t)(p - buf)));
    *out = buf;
    *out_len = len;
    buf = NULL;
    rv = CKR_OK;
out:
    free(buf);
    return rv;
}

/* Bounded cursor over untrusted bytes. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static bool take(struct cursor *c, size_t n, const uint8_t **out)
{
    if (n > c->left) {
        return false;
    }
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static char *dup_text(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);

    if (s != NULL) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/*
 * Parses a whole file image. Returns CKR_OK, CKR_HOST_MEMORY, or
 * CKR_DEVICE_ERROR with *why naming the first check that failed.
 */
static CK_RV decode(const uint8_t *buf, size_t len, struct akv_store_record *o,
                    const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct cursor c = {buf, len};
    const uint8_t *magic = NULL, *f = NULL, *attrs = NULL, *kid = NULL;
    const uint8_t *alg = NULL, *wrapped = NULL;
    uint32_t attrs_len = 0, wrapped_len = 0;
    uint16_t kid_len = 0, alg_len = 0;

    if (len < STORE_FIXED_LEN || len > STORE_FILE_MAX) {
        *why = "file size out of range";
        goto out;
    }
    /* Checked before the fields so a flipped length byte is reported as
     * corruption rather than as an implausible length. */
    if (crc32_update(0, buf, len - 4) != get_le32(buf + len - 4)) {
        *why = "crc32 mismatch";
        goto out;
    }
    c.left = len - 4;
    if (!take(&c, STORE_MAGIC_LEN, &magic)
        || memcmp(magic, STORE_MAGIC, STORE_MAGIC_LEN) != 0) {
        *why = "bad magic";
        goto out;
    }
    if (!take(&c, 4, &f) || (attrs_len = get_le32(f)) > STORE_ATTRS_MAX
        || !take(&c, attrs_len, &attrs)) {
        *why = "bad attrs length";
        goto out;
    }
    if (!take(&c, 2, &f) || (kid_len = get_le16(f)) > STORE_KID_MAX
        || !take(&c, kid_len, &kid)
        || !text_valid(kid, kid_len, STORE_KID_MAX)) {
        *why = "bad kid";
        goto out;
    }
    if (!take(&c, 2, &f) || (alg_len = get_le16(f)) > STORE_ALG_MAX
        || !take(&c, alg_len, &alg)
        || !text_valid(alg, alg_len, STORE_ALG_MAX)) {
        *why = "bad alg";
        goto out;
    }
    if (!take(&c, 4, &f) || (wrapped_len = get_le32(f)) > STORE_WRAPPED_MAX
        || wrapped_len == 0 || !take(&c, wrapped_len, &wrapped)) {
        *why = "bad wrapped length";
        goto out;
    }
    if (c.left != 0) {
        *why = "trailing bytes";
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    *why = "out of memory";
    o->attrs = malloc(attrs_len > 0 ? attrs_len : 1);
    o->kid = dup_text(kid, kid_len);
    o->alg = dup_text(alg, alg_len);
    o->wrapped = malloc(wrapped_len);
    if (o->attrs == NULL || o->kid == NULL || o->alg == NULL
        || o->wrapped == NULL) {
        akv_store_record_clear(o);
        goto out;
    }
    if (attrs_len > 0) {
        memcpy(o->attrs, attrs, attrs_len);
    }
    o->attrs_len = attrs_len;
    memcpy(o->wrapped, wrapped, wrapped_len);
    o->wrapped_len = wrapped_len;
    rv = CKR_OK;
out:
    return rv;
}

/* The StrictModes file rule (fsperm.h) on record NAME: a record another
 * user owns or can write was not written by this token. Logs the refusal
 * (path, rule, fix) at the default level. */
static bool record_perms_ok(struct akv_store *store, const char *name,
                            const struct stat *st)
{
    char path[512];
    char msg[768];

    (void)snprintf(path, sizeof(path), "%s/%s", store->dir, name);
    if (akv_fsperm_check_file(st, path, msg, sizeof(msg)) != 0) {
        AKV_LOG_ERR("store %s: record refused: %s", store->dir, msg);
        return false;
    }
    return true;
}

/*
 * Reads <id>.obj into a malloc'd buffer. Returns CKR_OK,
 * CKR_OBJECT_HANDLE_INVALID (absent), CKR_HOST_MEMORY, or CKR_DEVICE_ERROR
 * (not a regular file, a symlink, too big, I/O error; logged).
 */
static CK_RV read_file(struct akv_store *store, const char *name, uint8_t **out,
                       size_t *out_len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0, got = 0;
    /* O_NOFOLLOW: a planted symlink must not make us read another file;
     * O_NONBLOCK: a FIFO named x.obj must not hang us. */
    int fd = openat(store->dir_fd, name,
                    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0) {
        if (errno == ENOENT) {
            rv = CKR_OBJECT_HANDLE_INVALID;
        } else {
            AKV_LOG_ERR("store %s: cannot open %s: %s", store->dir, name,
                        errtext(errno));
        }
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        AKV_LOG_ERR("store %s: %s is not a regular file, skipped", store->dir,
                    name);
        goto out;
    }
    if (!record_perms_ok(store, name, &st)) {
        goto out;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > STORE_FILE_MAX) {
        AKV_LOG_ERR("store %s: %s: size %lld out of range, skipped", store->dir,
                    name, (long long)st.st_size);
        goto out;
    }
    len = (size_t)st.st_size;
    /* One byte more than the size so growth after fstat is noticed. */
    buf = malloc(len + 1);
    if (buf == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    while (got < len + 1) {
        ssize_t n = read(fd, buf + got, len + 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            AKV_LOG_ERR("store %s: read %s: %s", store->dir, name,
                        errtext(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    if (got != len) {
        AKV_LOG_ERR("store %s: %s changed size while read, skipped", store->dir,
                    name);
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    rv = CKR_OK;
out:
    if (buf != NULL) {
        akv_secret_wipe(buf, len + 1);
    }
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    return rv;
}

/* Reads and parses record ID; errors as read_file (corruption is
 * CKR_DEVICE_ERROR, logged without contents). */
static CK_RV load(struct akv_store *store, const char *id,
                  struct akv_store_record *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];
    uint8_t *buf = NULL;
    size_t len = 0;
    const char *why = "";

    snprintf(name, sizeof(name), "%s%s", id, STORE_SUFFIX);
    rv = read_file(store, name, &buf, &len);
    if (rv != CKR_OK) {
        goto out;
    }
    memset(out, 0, sizeof(*out));
    rv = decode(buf, len, out, &why);
    if (rv == CKR_DEVICE_ERROR) {
        AKV_LOG_ERR("store %s: %s is corrupt (%s, %zu bytes), skipped",
                    store->dir, name, why, len);
    }
    if (rv == CKR_OK) {
        memcpy(out->id, id, strlen(id) + 1);
    }
out:
    if (buf != NULL) {
        akv_secret_wipe(buf, len);
    }
    free(buf);
    return rv;
}

/*
 * Takes the store lock (LOCK_EX or LOCK_SH) on a fresh open file description.
 * Returns the fd to pass to unlock(), -2 when the lock file breaks the
 * fsperm.h rules, or -1 (both logged).
 */
static int lock(struct akv_store *store, int how)
{
    char msg[768];
    /* StrictModes rules (fsperm.h): a lock file another user owns or can
     * write lets them hold our writers off or follow our lock protocol. */
    int fd = akv_fsperm_openat(store->dir_fd, store->dir, STORE_LOCK_NAME,
                               O_RDWR | O_CREAT, 0600, msg, sizeof(msg));

    if (fd == AKV_FSPERM_ERR_RULES) {
        AKV_LOG_ERR("store %s refused: lock file %s", store->dir, msg);
        return -2;
    }
    if (fd < 0) {
        AKV_LOG_ERR("store %s: cannot open %s: %s", store->dir, STORE_LOCK_NAME,
                    errtext(errno));
        return -1;
    }
    while (flock(fd, how) != 0) {
        if (errno != EINTR) {
            AKV_LOG_ERR("store %s: flock: %s", store->dir, errtext(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void unlock(int fd)
{
    if (fd >= 0) {
        /* close releases the flock of this open file description. */
        close(fd);
    }
}

static bool is_tmp_name(const char *name)
{
    return name[0] == '.' && strstr(name, STORE_TMP_TAG) != NULL;
}

/* Caller holds the exclusive lock: every temp file is a dead writer's. */
static void sweep_locked(struct akv_store *store)
{
    int fd = openat(store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de = NULL;
    time_t now = time(NULL);

    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (!is_tmp_name(de->d_name)) {
            continue;
        }
        if (fstatat(store->dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;
        }
        if (unlinkat(store->dir_fd, de->d_name, 0) == 0) {
            AKV_LOG_INFO("store %s: removed temp file %s left by a killed "
                         "writer (age %lld s)",
                         store->dir, de->d_name,
                         (long long)(now - st.st_mtime));
        }
    }
    closedir(d);
}

/* Caller holds the lock: every regular record file must pass the file rule
 * of fsperm.h (non-regular ones are skipped by the readers anyway). Returns
 * false with the first refusal in MSG. */
static bool records_perms_ok_locked(struct akv_store *store, char *msg,
                                    size_t msg_len)
{
    int fd = openat(store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de = NULL;
    bool ok = true;

    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return true; /* the list reports an unreadable folder itself */
    }
    while (ok && (de = readdir(d)) != NULL) {
        struct stat st;
        size_t n = strlen(de->d_name);
        char path[512];
        if (n <= strlen(STORE_SUFFIX)
            || strcmp(de->d_name + n - strlen(STORE_SUFFIX), STORE_SUFFIX) != 0
            || fstatat(store->dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0
            || !S_ISREG(st.st_mode)) {
            continue;
        }
        (void)snprintf(path, sizeof(path), "%s/%s", store->dir, de->d_name);
        ok = akv_fsperm_check_file(&st, path, msg, msg_len) == 0;
    }
    closedir(d);
    return ok;
}

/* mkdir -p with 0700 for the folders it creates. Returns 0 or -1 (errno). */
static int make_dirs(const char *dir)
{
    char *p = strdup(dir);
    int rc = -1;

    if (p == NULL) {
        errno = ENOMEM;
        goto out;
    }
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/') {
            continue;
        }
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            goto out;
        }
        *s = '/';
    }
    if (mkdir(p, 0700) != 0) {
        if (errno != EEXIST) {
            goto out;
        }
    } else if (chmod(p, 0700) != 0) {
        /* A restrictive umask must not leave the folder unusable. */
        goto out;
    }
    rc = 0;
out:
    free(p);
    return rc;
}

CK_RV akv_store_open(const char *dir, struct akv_store **out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_store *store = NULL;
    struct stat st;
    int lfd = -1;
    int rc;
    char msg[768];

    if (dir == NULL || dir[0] == '\0' || out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    store = calloc(1, sizeof(*store));
    if (store == NULL || (store->dir = strdup(dir)) == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    store->dir_fd = -1;
    if (make_dirs(dir) != 0) {
        AKV_LOG_ERR("store %s: cannot create folder: %s", dir, errtext(errno));
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    /* StrictModes (fsperm.h): the folder chain, then the opened folder
     * itself (fstat: the one we use, not the path). */
    rc = akv_fsperm_check_dirs(dir, msg, sizeof(msg));
    if (rc == AKV_FSPERM_ERR_RULES) {
        goto refused;
    }
    if (rc != 0) {
        AKV_LOG_ERR("store %s: cannot open folder: %s", dir, msg);
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    store->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (store->dir_fd < 0 || fstat(store->dir_fd, &st) != 0) {
        AKV_LOG_ERR("store %s: cannot open folder: %s", dir, errtext(errno));
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (akv_fsperm_check_dir_stat(&st, dir, msg, sizeof(msg)) != 0) {
        goto refused;
    }
    /* Stricter than a folder on the path: not even sticky group/other
     * write, since anyone who can add a file can plant a record. */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        akv_log_fmt(msg, sizeof(msg),
                    "folder %s: mode %04o lets group/other add records; fix: "
                    "chmod 0700 %s",
                    dir, (unsigned)(st.st_mode & 07777), dir);
        goto refused;
    }
    if ((st.st_mode & 077) != 0) {
        AKV_LOG_WARN("store %s: folder mode %03o allows group/other access; "
                     "0700 is expected",
                     dir, (unsigned)(st.st_mode & 0777));
    }
    lfd = lock(store, LOCK_EX);
    if (lfd < 0) {
        /* -2: refused, already logged with the rule and the fix */
        rv = lfd == -2 ? CKR_TOKEN_WRITE_PROTECTED : CKR_DEVICE_ERROR;
        goto out;
    }
    if (!records_perms_ok_locked(store, msg, sizeof(msg))) {
        goto refused;
    }
    sweep_locked(store);
    *out = store;
    store = NULL;
    rv = CKR_OK;
    goto out;
refused:
    AKV_LOG_ERR("store %s refused, token objects unavailable: %s", dir, msg);
    rv = CKR_TOKEN_WRITE_PROTECTED;
out:
    unlock(lfd);
    akv_store_close(store);
    return rv;
}

void akv_store_close(struct akv_store *store)
{
    if (store == NULL) {
        return;
    }
    if (store->dir_fd >= 0) {
        close(store->dir_fd);
    }
    free(store->dir);
    free(store);
}

static CK_RV new_id(char id[AKV_STORE_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t rnd[AKV_STORE_ID_LEN / 2];
    size_t got = 0;

    while (got < sizeof(rnd)) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            AKV_LOG_ERR("getrandom: %s", errtext(errno));
            return CKR_DEVICE_ERROR;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        id[2 * i] = hex[rnd[i] >> 4];
        id[2 * i + 1] = hex[rnd[i] & 0x0f];
    }
    id[AKV_STORE_ID_LEN] = '\0';
    return CKR_OK;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Writes BUF as <id>.obj: temp file, fsync, rename, fsync of the folder.
 * Caller holds the exclusive lock. Returns CKR_OK or CKR_DEVICE_ERROR
 * (logged; the temp file is removed).
 */
static CK_RV write_locked(struct akv_store *store, const char *id,
                          const uint8_t *buf, size_t len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    char tmp[AKV_STORE_ID_LEN + 64];
    char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];
    char rnd[AKV_STORE_ID_LEN + 1];
    int fd = -1;
    bool created = false;

    if (new_id(rnd) != CKR_OK) {
        goto out;
    }
    snprintf(tmp, sizeof(tmp), ".%s%s%ld.%.8s", id, STORE_TMP_TAG,
             (long)getpid(), rnd);
    snprintf(name, sizeof(name), "%s%s", id, STORE_SUFFIX);
    fd = openat(store->dir_fd, tmp,
                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        AKV_LOG_ERR("store %s: create temp file: %s", store->dir,
                    errtext(errno));
        goto out;
    }
    created = true;
    /* The umask may have removed bits; it cannot have added any, but be
     * explicit about the mode the design promises. */
    if (fchmod(fd, 0600) != 0 || write_all(fd, buf, len) != 0
        || fsync(fd) != 0) {
        AKV_LOG_ERR("store %s: write %s: %s", store->dir, name, errtext(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        AKV_LOG_ERR("store %s: close %s: %s", store->dir, name, errtext(errno));
        goto out;
    }
    fd = -1;
    if (renameat(store->dir_fd, tmp, store->dir_fd, name) != 0) {
        AKV_LOG_ERR("store %s: rename to %s: %s", store->dir, name,
                    errtext(errno));
        goto out;
    }
    created = false;
    /* Makes the rename itself durable (the new directory entry). */
    if (fsync(store->dir_fd) != 0) {
        AKV_LOG_ERR("store %s: fsync folder: %s", store->dir, errtext(errno));
        goto out;
    }
    rv = CKR_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (created) {
        unlinkat(store->dir_fd, tmp, 0);
    }
    return rv;
}

/* Shared body of put and put_if; EXPECTED NULL means unconditional. */
static CK_RV put(struct akv_store *store,
                 const struct akv_store_record *expected,
                 struct akv_store_record *rec)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    uint8_t *buf = NULL, *want = NULL, *have = NULL;
    size_t len = 0, want_len = 0, have_len = 0;
    int lfd = -1;

    if (store == NULL || !record_valid(rec)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (expected != NULL) {
        if (!record_valid(expected) || !id_valid(expected->id)) {
            rv = CKR_ARGUMENTS_BAD;
            goto out;
        }
        if (rec->id[0] == '\0') {
            memcpy(rec->id, expected->id, sizeof(rec->id));
        }
        if (strcmp(rec->id, expected->id) != 0) {
            rv = CKR_ARGUMENTS_BAD;
            goto out;
        }
        rv = encode(expected, &want, &want_len);
        if (rv != CKR_OK) {
            goto out;
        }
    } else if (rec->id[0] == '\0') {
        rv = new_id(rec->id);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    if (!id_valid(rec->id)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = encode(rec, &buf, &len);
    if (rv != CKR_OK) {
        goto out;
    }
    lfd = lock(store, LOCK_EX);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (expected != NULL) {
        char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];
        snprintf(name, sizeof(name), "%s%s", rec->id, STORE_SUFFIX);
        rv = read_file(store, name, &have, &have_len);
        if (rv == CKR_HOST_MEMORY) {
            goto out;
        }
        if (rv != CKR_OK || have_len != want_len
            || memcmp(have, want, want_len) != 0) {
            AKV_LOG_INFO("store %s: %s changed since it was read; not "
                         "replaced",
                         store->dir, name);
            rv = CKR_FUNCTION_FAILED;
            goto out;
        }
    }
    rv = write_locked(store, rec->id, buf, len);
out:
    unlock(lfd);
    if (buf != NULL) {
        akv_secret_wipe(buf, len);
    }
    if (want != NULL) {
        akv_secret_wipe(want, want_len);
    }
    if (have != NULL) {
        akv_secret_wipe(have, have_len);
    }
    free(buf);
    free(want);
    free(have);
    return rv;
}

CK_RV akv_store_put(struct akv_store *store, struct akv_store_record *rec)
{
    return put(store, NULL, rec);
}

CK_RV akv_store_put_if(struct akv_store *store,
                       const struct akv_store_record *expected,
                       struct akv_store_record *rec)
{
    if (expected == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    return put(store, expected, rec);
}

CK_RV akv_store_get(struct akv_store *store, const char *id,
                    struct akv_store_record *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    int lfd = -1;

    if (store == NULL || out == NULL || !id_valid(id)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    lfd = lock(store, LOCK_SH);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = load(store, id, out);
out:
    unlock(lfd);
    return rv;
}

CK_RV akv_store_delete(struct akv_store *store, const char *id)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];
    int lfd = -1;

    if (store == NULL || !id_valid(id)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    snprintf(name, sizeof(name), "%s%s", id, STORE_SUFFIX);
    lfd = lock(store, LOCK_EX);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (unlinkat(store->dir_fd, name, 0) != 0 && errno != ENOENT) {
        AKV_LOG_ERR("store %s: delete %s: %s", store->dir, name,
                    errtext(errno));
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (fsync(store->dir_fd) != 0) {
        AKV_LOG_ERR("store %s: fsync folder: %s", store->dir, errtext(errno));
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = CKR_OK;
out:
    unlock(lfd);
    return rv;
}

/* Copies the stem of "<id>.obj" into ID; false for any other name. */
static bool record_name(const char *name, char id[AKV_STORE_ID_LEN + 1])
{
    size_t len = strlen(name);
    size_t suf = sizeof(STORE_SUFFIX) - 1;

    if (len <= suf || len - suf > AKV_STORE_ID_LEN
        || strcmp(name + len - suf, STORE_SUFFIX) != 0) {
        return false;
    }
    memcpy(id, name, len - suf);
    id[len - suf] = '\0';
    return id_valid(id);
}

static int cmp_record(const void *a, const void *b)
{
    return strcmp(((const struct akv_store_record *)a)->id,
                  ((const struct akv_store_record *)b)->id);
}

CK_RV akv_store_list(struct akv_store *store, struct akv_store_record **out,
                     size_t *n)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_store_record *recs = NULL;
    size_t count = 0, cap = 0;
    int lfd = -1, fd = -1;
    DIR *d = NULL;
    struct dirent *de = NULL;

    if (store == NULL || out == NULL || n == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    lfd = lock(store, LOCK_SH);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    /* A fresh description: readdir must not share an offset with dir_fd. */
    fd = openat(store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        AKV_LOG_ERR("store %s: cannot read folder: %s", store->dir,
                    errtext(errno));
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    fd = -1;
    __atomic_store_n(&store->last_unreadable, 0, __ATOMIC_RELAXED);
    while ((de = readdir(d)) != NULL) {
        char id[AKV_STORE_ID_LEN + 1];
        CK_RV lrv = CKR_GENERAL_ERROR;
        if (!record_name(de->d_name, id)) {
            continue;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct akv_store_record *nr = realloc(recs, ncap * sizeof(*nr));
            if (nr == NULL) {
                rv = CKR_HOST_MEMORY;
                goto out;
            }
            recs = nr;
            cap = ncap;
        }
        memset(&recs[count], 0, sizeof(recs[count]));
        lrv = load(store, id, &recs[count]);
        if (lrv == CKR_HOST_MEMORY) {
            rv = lrv;
            goto out;
        }
        if (lrv == CKR_OK) {
            count++;
        } else if (lrv != CKR_OBJECT_HANDLE_INVALID) {
            /* A corrupt record may be a lost data key: count it so that
             * `akv-pkcs11-tool status` can fail on it. */
            __atomic_add_fetch(&store->last_unreadable, 1, __ATOMIC_RELAXED);
        }
        /* Anything else (corrupt, vanished, not a file) was logged by
         * load() and is skipped: one bad file must not hide the rest. */
    }
    if (count > 1) {
        qsort(recs, count, sizeof(*recs), cmp_record);
    }
    *out = recs;
    *n = count;
    recs = NULL;
    count = 0;
    rv = CKR_OK;
out:
    if (d != NULL) {
        closedir(d);
    }
    if (fd >= 0) {
        close(fd);
    }
    unlock(lfd);
    akv_store_records_free(recs, count);
    return rv;
}

size_t akv_store_last_unreadable(struct akv_store *store)
{
    return store != NULL
               ? __atomic_load_n(&store->last_unreadable, __ATOMIC_RELAXED)
               : 0;
}

/* splitmix64 finaliser: spreads each input over all 64 bits. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t akv_store_stamp(struct akv_store *store)
{
    struct stat st;
    uint64_t h = 0, count = 0, sum = 0;
    int fd = -1;
    DIR *d = NULL;
    struct dirent *de = NULL;

    if (store == NULL || fstat(store->dir_fd, &st) != 0) {
        return 0;
    }
    h = mix((uint64_t)st.st_mtim.tv_sec * 1000000000ull
            + (uint64_t)st.st_mtim.tv_nsec);
    fd = openat(store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return h;
    }
    /* The mtime alone can miss two changes inside one timestamp tick; a
     * replaced record always has a new inode (it is a renamed temp file),
     * and d_ino comes with readdir at no extra cost. The sum is
     * order-independent, as readdir order is unspecified. */
    while ((de = readdir(d)) != NULL) {
        char id[AKV_STORE_ID_LEN + 1];
        uint64_t nh = 1469598103934665603ull; /* FNV-1a over the name */
        if (!record_name(de->d_name, id)) {
            continue;
        }
        for (const char *p = de->d_name; *p != '\0'; p++) {
            nh = (nh ^ (uint8_t)*p) * 1099511628211ull;
        }
        sum += mix(nh ^ (uint64_t)de->d_ino);
        count++;
    }
    closedir(d);
    return mix(h ^ mix(count)) ^ sum;
}

void akv_store_record_clear(struct akv_store_record *rec)
{
    if (rec == NULL) {
        return;
    }
    if (rec->attrs != NULL) {
        akv_secret_wipe(rec->attrs, rec->attrs_len);
    }
    if (rec->wrapped != NULL) {
        akv_secret_wipe(rec->wrapped, rec->wrapped_len);
    }
    free(rec->attrs);
    free(rec->kid);
    free(rec->alg);
    free(rec->wrapped);
    memset(rec, 0, sizeof(*rec));
}

void akv_store_records_free(struct akv_store_record *recs, size_t n)
{
    if (recs == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        akv_store_record_clear(&recs[i]);
    }
    free(recs);
}
