/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The persistent object store (store.h, docs/STORE.md): file I/O, locking
 * and the store operations. The byte formats are in store_codec.c, the
 * manifest's model and format in store_manifest.c.
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
#include <pthread.h>
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

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>

#include "../common/fdio.h"
#include "../common/fsperm.h"
#include "../common/log.h"
#include "../common/ossl.h"
#include "../common/secret.h"
#include "store_codec.h"
#include "store_manifest.h"

#define STORE_SUFFIX    ".obj"
#define STORE_LOCK_NAME ".lock"
#define STORE_KEY_NAME  ".storekey"
#define STORE_MAN_NAME  ".manifest"
/* HKDF info labels (RFC 5869 §3.2): one key per use of S. */
#define LABEL_RECORD   "akv-pkcs11 store record v2"
#define LABEL_MANIFEST "akv-pkcs11 store manifest v2"
#define STORE_TMP_TAG  ".tmp."

struct akv_store {
    char *dir;
    int dir_fd; /* O_DIRECTORY; all file operations are relative to it */
    size_t last_unreadable;   /* record files the last list skipped (atomic) */
    size_t last_refused;      /* ... of which failed authentication (atomic) */
    pthread_mutex_t key_lock; /* serialises akv_store_set_secret */
    bool keyed;               /* keys valid (atomic, release/acquire) */
    /* HKDF(S, LABEL_RECORD) | HKDF(S, LABEL_MANIFEST); wiped on close. */
    struct akv_secret keys;
};

/* The 32-byte HMAC keys derived from S (docs/STORE.md "Construction").
 * Caller checked akv_store_has_secret. */
static const uint8_t *record_key(struct akv_store *store)
{
    return store->keys.data;
}

static const uint8_t *manifest_key(struct akv_store *store)
{
    return store->keys.data + STORE_MAC_LEN;
}

/* strerror is not thread-safe and the module runs in unknown threaded
 * hosts; glibc's strerror_r (GNU form under _GNU_SOURCE) is. */
static const char *errtext(int e)
{
    static _Thread_local char buf[128];
    return strerror_r(e, buf, sizeof(buf));
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

/* ---- keys derived from the store secret ---- */

/* HKDF-SHA256 (RFC 5869) of S with INFO, no salt, 32 bytes into OUT.
 * Returns 0 or -1. */
static int hkdf(const uint8_t *s, size_t len, const char *info, uint8_t *out)
{
    EVP_KDF *kdf = EVP_KDF_fetch(akv_ossl_libctx(), "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[4];
    int rc = -1;

    if (ctx == NULL) {
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[1] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)s, len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                  (void *)info, strlen(info));
    params[3] = OSSL_PARAM_construct_end();
    rc = EVP_KDF_derive(ctx, out, 32, params) == 1 ? 0 : -1;
out:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

CK_RV akv_store_set_secret(struct akv_store *store, const uint8_t *s,
                           size_t len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    uint8_t k[64];

    if (store == NULL || s == NULL || len != AKV_STORE_SECRET_LEN) {
        return CKR_ARGUMENTS_BAD;
    }
    if (hkdf(s, len, LABEL_RECORD, k) != 0
        || hkdf(s, len, LABEL_MANIFEST, k + 32) != 0) {
        AKV_LOG_ERR("store %s: key derivation failed", store->dir);
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    pthread_mutex_lock(&store->key_lock);
    if (__atomic_load_n(&store->keyed, __ATOMIC_ACQUIRE)) {
        /* Set once: keys in use by other threads never change. */
        rv = CRYPTO_memcmp(store->keys.data, k, sizeof(k)) == 0
                 ? CKR_OK
                 : CKR_FUNCTION_FAILED;
    } else if (akv_secret_set(&store->keys, k, sizeof(k)) != 0) {
        rv = CKR_HOST_MEMORY;
    } else {
        __atomic_store_n(&store->keyed, true, __ATOMIC_RELEASE);
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&store->key_lock);
out:
    akv_secret_wipe(k, sizeof(k));
    return rv;
}

bool akv_store_has_secret(struct akv_store *store)
{
    return store != NULL && __atomic_load_n(&store->keyed, __ATOMIC_ACQUIRE);
}

/* SHA-256 of BUF into OUT in the module's private context. 0 or -1. */
static int sha256(const uint8_t *buf, size_t len, uint8_t out[32])
{
    return EVP_Q_digest(akv_ossl_libctx(), "SHA256", NULL, buf, len, out, NULL)
                   == 1
               ? 0
               : -1;
}

CK_RV akv_store_parse(struct akv_store *store, const char *id,
                      const uint8_t *buf, size_t len,
                      struct akv_store_record *out, const char **why)
{
    *why = "";
    if (!akv_store_has_secret(store)) {
        *why = "store secret not loaded";
        return CKR_GENERAL_ERROR;
    }
    return akv_store_codec_decode(record_key(store), id, buf, len, out, why);
}

CK_RV akv_store_manifest_check(struct akv_store *store, const uint8_t *buf,
                               size_t len, size_t *entries)
{
    struct manifest m;
    const char *why = "";
    CK_RV rv;

    if (!akv_store_has_secret(store)) {
        return CKR_GENERAL_ERROR;
    }
    rv = akv_store_manifest_decode(manifest_key(store), buf, len, &m, &why);
    if (rv == CKR_OK && entries != NULL) {
        *entries = m.n;
    }
    akv_store_manifest_free(&m);
    return rv;
}

/*
 * Reads NAME (at most MAX bytes) into a malloc'd buffer. Returns CKR_OK,
 * CKR_OBJECT_HANDLE_INVALID (absent), CKR_HOST_MEMORY, or CKR_DEVICE_ERROR
 * (not a regular file, a symlink, too big, I/O error; logged).
 */
static CK_RV read_file(struct akv_store *store, const char *name, size_t max,
                       uint8_t **out, size_t *out_len)
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
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
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

/*
 * Reads MANIFEST (caller holds a lock). Absent = empty (a store whose
 * .storekey exists but whose manifest is gone accepts no record). CKR_OK,
 * CKR_HOST_MEMORY, CKR_DEVICE_ERROR (unreadable or failing authentication:
 * logged), CKR_GENERAL_ERROR (no secret set).
 */
static CK_RV man_load(struct akv_store *store, struct manifest *m)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    uint8_t *buf = NULL;
    size_t len = 0;
    const char *why = "";

    memset(m, 0, sizeof(*m));
    if (!akv_store_has_secret(store)) {
        AKV_LOG_ERR("store %s: store secret not loaded", store->dir);
        goto out;
    }
    rv = read_file(store, STORE_MAN_NAME, STORE_MAN_FILE_MAX, &buf, &len);
    if (rv == CKR_OBJECT_HANDLE_INVALID) {
        rv = CKR_OK;
        goto out;
    }
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_store_manifest_decode(manifest_key(store), buf, len, m, &why);
    if (rv == CKR_SIGNATURE_INVALID || rv == CKR_DEVICE_ERROR) {
        AKV_LOG_ERR("store %s: %s refused (%s): no record can be trusted; "
                    "was the store tampered with?",
                    store->dir, STORE_MAN_NAME, why);
        rv = CKR_DEVICE_ERROR;
    }
out:
    free(buf);
    return rv;
}

/*
 * Is the parsed record REC (file image BUF/LEN) one this token wrote and
 * still current? NULL when accepted, else the reason (for the log line).
 */
static const char *man_accepts(const struct manifest *m,
                               const struct akv_store_record *rec,
                               const uint8_t *buf, size_t len)
{
    const struct man_entry *e =
        akv_store_manifest_find((struct manifest *)m, rec->id);

    if (e == NULL) {
        return "not in the manifest: planted, or deleted";
    }
    if (rec->format == AKV_STORE_FORMAT_V1) {
        uint8_t h[32];
        bool ok = (e->flags & MAN_HAS_HASH) != 0;

        ok = ok && sha256(buf, len, h) == 0
             && CRYPTO_memcmp(h, e->hash, 32) == 0;
        return ok ? NULL
                  : "legacy record whose SHA-256 is not the one adopted: "
                    "edited or planted";
    }
    if (rec->generation == e->cur
        || (e->pending != 0 && rec->generation == e->pending)) {
        return NULL;
    }
    return "generation not current: an older copy (rolled back)";
}

/* Load outcomes besides the CK_RVs of read_file. */
#define LOAD_REFUSED CKR_SIGNATURE_INVALID

/* Reads, parses and authenticates record ID against manifest M. CKR_OK,
 * CKR_OBJECT_HANDLE_INVALID (absent), CKR_HOST_MEMORY, CKR_DEVICE_ERROR
 * (corrupt), LOAD_REFUSED (failed authentication); each failure logged
 * once (never the contents). */
static CK_RV load(struct akv_store *store, const struct manifest *m,
                  const char *id, struct akv_store_record *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];
    uint8_t *buf = NULL;
    size_t len = 0;
    const char *why = "";

    (void)snprintf(name, sizeof(name), "%s%s", id, STORE_SUFFIX);
    rv = read_file(store, name, STORE_ANY_FILE_MAX, &buf, &len);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_store_parse(store, id, buf, len, out, &why);
    if (rv == CKR_OK) {
        why = man_accepts(m, out, buf, len);
        if (why != NULL) {
            akv_store_record_clear(out);
            rv = LOAD_REFUSED;
        }
    }
    if (rv == LOAD_REFUSED) {
        AKV_LOG_ERR("store %s: record %s refused: %s", store->dir, id, why);
    } else if (rv == CKR_DEVICE_ERROR) {
        AKV_LOG_ERR("store %s: %s is corrupt (%s, %zu bytes), skipped",
                    store->dir, name, why, len);
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
    pthread_mutex_init(&store->key_lock, NULL);
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
    akv_secret_clear(&store->keys);
    pthread_mutex_destroy(&store->key_lock);
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

/*
 * Writes BUF as NAME (a record "<id>.obj", the manifest or .storekey):
 * temp file, fsync, rename, fsync of the folder. Caller holds the exclusive
 * lock. Returns CKR_OK or CKR_DEVICE_ERROR (logged; the temp file is
 * removed).
 */
static CK_RV write_locked(struct akv_store *store, const char *name,
                          const uint8_t *buf, size_t len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    char tmp[AKV_STORE_ID_LEN + 64];
    char rnd[AKV_STORE_ID_LEN + 1];
    int fd = -1;
    bool created = false;

    if (new_id(rnd) != CKR_OK) {
        goto out;
    }
    /* ".<name>.tmp.<pid>.<rand>": never a record name, swept on open. */
    (void)snprintf(tmp, sizeof(tmp), ".%.40s%s%ld.%.8s", name, STORE_TMP_TAG,
                   (long)getpid(), rnd);
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
    if (fchmod(fd, 0600) != 0 || akv_fdio_write_all(fd, buf, len) != 0
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

/* Writes M as the manifest. Caller holds the exclusive lock. */
static CK_RV man_save(struct akv_store *store, const struct manifest *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    CK_RV rv = akv_store_manifest_encode(manifest_key(store), m, &buf, &len);

    if (rv == CKR_OK) {
        rv = write_locked(store, STORE_MAN_NAME, buf, len);
    }
    free(buf);
    return rv;
}

static bool bytes_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* Same record content (not compared: id). */
static bool record_eq(const struct akv_store_record *a,
                      const struct akv_store_record *b)
{
    return a->format == b->format && a->generation == b->generation
           && bytes_eq(a->attrs, a->attrs_len, b->attrs, b->attrs_len)
           && strcmp(a->kid, b->kid) == 0 && strcmp(a->alg, b->alg) == 0
           && bytes_eq(a->wrapped, a->wrapped_len, b->wrapped, b->wrapped_len)
           && bytes_eq(a->sealed, a->sealed_len, b->sealed, b->sealed_len);
}

/*
 * A writer killed between renaming its record into place and the final
 * manifest write left entry E with a pending generation that may be the
 * one on disk. Before E's pending slot is reused, make whatever is on disk
 * the current generation, or a later write killed after its first step
 * would leave that record refused. Caller holds the exclusive lock.
 */
static void settle_locked(struct akv_store *store, struct manifest *m,
                          struct man_entry *e)
{
    struct akv_store_record on_disk;

    memset(&on_disk, 0, sizeof(on_disk));
    if (load(store, m, e->id, &on_disk) == CKR_OK
        && on_disk.format == AKV_STORE_FORMAT_V2
        && on_disk.generation == e->pending) {
        e->cur = e->pending;
        e->flags &= ~MAN_HAS_HASH;
        memset(e->hash, 0, sizeof(e->hash));
    }
    e->pending = 0;
    akv_store_record_clear(&on_disk);
}

/* Shared body of put and put_if; EXPECTED NULL means unconditional. */
static CK_RV put(struct akv_store *store,
                 const struct akv_store_record *expected,
                 struct akv_store_record *rec)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    uint8_t *buf = NULL;
    size_t len = 0;
    int lfd = -1;
    struct manifest m = {NULL, 0, 0};
    struct akv_store_record have;
    struct man_entry *e = NULL;

    memset(&have, 0, sizeof(have));
    if (store == NULL || !akv_store_codec_record2_valid(rec)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (expected != NULL) {
        if (!akv_store_codec_record_valid(expected)
            || !akv_store_codec_id_valid(expected->id)) {
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
    } else if (rec->id[0] == '\0') {
        rv = new_id(rec->id);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    if (!akv_store_codec_id_valid(rec->id)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    lfd = lock(store, LOCK_EX);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    /* Checked and used under the lock: a first-use creation that fails
     * (akv_store_key_create, which holds the lock) forgets S again. */
    if (!akv_store_has_secret(store)) {
        AKV_LOG_ERR("store %s: store secret not loaded", store->dir);
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    rv = akv_store_codec_encode2(record_key(store), rec, &buf, &len);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = man_load(store, &m);
    if (rv != CKR_OK) {
        goto out;
    }
    if (expected != NULL) {
        /* Compare-and-swap against what a reader would accept now. */
        rv = load(store, &m, rec->id, &have);
        if (rv == CKR_HOST_MEMORY) {
            goto out;
        }
        if (rv != CKR_OK || !record_eq(&have, expected)) {
            AKV_LOG_INFO("store %s: %s changed since it was read; not "
                         "replaced",
                         store->dir, rec->id);
            rv = CKR_FUNCTION_FAILED;
            goto out;
        }
    }
    /* 1. The manifest names the new generation as pending (the old one
     *    stays valid), 2. the record is renamed into place, 3. the new
     *    generation becomes the only one. A kill between any two steps
     *    leaves a record that a reader accepts: the old or the new. */
    e = akv_store_manifest_find(&m, rec->id);
    if (e != NULL && e->pending != 0) {
        settle_locked(store, &m, e);
    }
    if (e == NULL) {
        e = akv_store_manifest_add(&m, rec->id);
        if (e == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
    }
    e->pending = rec->generation;
    rv = man_save(store, &m);
    if (rv != CKR_OK) {
        goto out;
    }
    {
        char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];

        (void)snprintf(name, sizeof(name), "%s%s", rec->id, STORE_SUFFIX);
        rv = write_locked(store, name, buf, len);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    e->cur = rec->generation;
    e->pending = 0;
    e->flags &= ~MAN_HAS_HASH; /* a v1 original is no longer acceptable */
    memset(e->hash, 0, sizeof(e->hash));
    rv = man_save(store, &m);
out:
    unlock(lfd);
    akv_store_manifest_free(&m);
    akv_store_record_clear(&have);
    if (buf != NULL) {
        akv_secret_wipe(buf, len);
    }
    free(buf);
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
    struct manifest m = {NULL, 0, 0};

    if (store == NULL || out == NULL || !akv_store_codec_id_valid(id)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    memset(out, 0, sizeof(*out));
    lfd = lock(store, LOCK_SH);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = man_load(store, &m);
    if (rv == CKR_OK) {
        rv = load(store, &m, id, out);
    }
    if (rv == LOAD_REFUSED) {
        rv = CKR_DEVICE_ERROR;
    }
out:
    unlock(lfd);
    akv_store_manifest_free(&m);
    return rv;
}

CK_RV akv_store_delete(struct akv_store *store, const char *id)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];
    int lfd = -1;
    struct manifest m = {NULL, 0, 0};

    if (store == NULL || !akv_store_codec_id_valid(id)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    (void)snprintf(name, sizeof(name), "%s%s", id, STORE_SUFFIX);
    lfd = lock(store, LOCK_EX);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    /* The entry goes first: killed before the unlink, the file is then
     * refused (it was being deleted), never resurrected later. */
    rv = man_load(store, &m);
    if (rv != CKR_OK) {
        goto out;
    }
    if (akv_store_manifest_find(&m, id) != NULL) {
        akv_store_manifest_remove(&m, id);
        rv = man_save(store, &m);
        if (rv != CKR_OK) {
            goto out;
        }
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
    akv_store_manifest_free(&m);
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
    return akv_store_codec_id_valid(id);
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
    struct manifest m = {NULL, 0, 0};

    if (store == NULL || out == NULL || n == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    lfd = lock(store, LOCK_SH);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = man_load(store, &m);
    if (rv != CKR_OK) {
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
    __atomic_store_n(&store->last_refused, 0, __ATOMIC_RELAXED);
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
        lrv = load(store, &m, id, &recs[count]);
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
            if (lrv == LOAD_REFUSED) {
                __atomic_add_fetch(&store->last_refused, 1, __ATOMIC_RELAXED);
            }
        }
        /* Anything else (corrupt, refused, vanished, not a file) was
         * logged by load() and is skipped: one bad file must not hide the
         * rest. */
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
    akv_store_manifest_free(&m);
    akv_store_records_free(recs, count);
    return rv;
}

size_t akv_store_last_unreadable(struct akv_store *store)
{
    return store != NULL
               ? __atomic_load_n(&store->last_unreadable, __ATOMIC_RELAXED)
               : 0;
}

size_t akv_store_last_refused(struct akv_store *store)
{
    return store != NULL
               ? __atomic_load_n(&store->last_refused, __ATOMIC_RELAXED)
               : 0;
}

/* ---- .storekey ---- */

bool akv_store_unused(struct akv_store *store)
{
    struct stat st;
    int fd = -1;
    DIR *d = NULL;
    struct dirent *de = NULL;
    bool unused = true;

    if (store == NULL) {
        return false;
    }
    if (fstatat(store->dir_fd, STORE_KEY_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0
        || errno != ENOENT) {
        return false;
    }
    fd = openat(store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    while (unused && (de = readdir(d)) != NULL) {
        char id[AKV_STORE_ID_LEN + 1];
        unused = !record_name(de->d_name, id);
    }
    closedir(d);
    return unused;
}

void akv_store_key_clear(struct akv_store_key *key)
{
    if (key == NULL) {
        return;
    }
    free(key->kid);
    free(key->alg);
    free(key->wrapped);
    memset(key, 0, sizeof(*key));
}

CK_RV akv_store_key_get(struct akv_store *store, struct akv_store_key *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    uint8_t *buf = NULL;
    size_t len = 0;
    int lfd = -1;

    if (store == NULL || out == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    memset(out, 0, sizeof(*out));
    lfd = lock(store, LOCK_SH);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    rv = read_file(store, STORE_KEY_NAME, STORE_KEY_FILE_MAX, &buf, &len);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_store_codec_key_decode(buf, len, out);
    if (rv == CKR_DEVICE_ERROR) {
        AKV_LOG_ERR("store %s: %s is corrupt (%zu bytes)", store->dir,
                    STORE_KEY_NAME, len);
    }
out:
    unlock(lfd);
    free(buf);
    return rv;
}

/* Adds every legacy v1 record present now to M by the SHA-256 of its
 * file (trust on first use). Caller holds the exclusive lock. */
static CK_RV adopt_v1_locked(struct akv_store *store, struct manifest *m)
{
    CK_RV rv = CKR_OK;
    int fd = openat(store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de = NULL;

    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        AKV_LOG_ERR("store %s: cannot read folder: %s", store->dir,
                    errtext(errno));
        return CKR_DEVICE_ERROR;
    }
    while ((de = readdir(d)) != NULL && rv == CKR_OK) {
        char id[AKV_STORE_ID_LEN + 1];
        uint8_t *buf = NULL;
        size_t len = 0;
        const char *why = "";
        struct akv_store_record r;
        struct man_entry *e = NULL;

        if (!record_name(de->d_name, id)
            || read_file(store, de->d_name, STORE_FILE_MAX, &buf, &len)
                   != CKR_OK) {
            continue;
        }
        memset(&r, 0, sizeof(r));
        if (akv_store_codec_decode1(buf, len, &r, &why) == CKR_OK) {
            e = akv_store_manifest_add(m, id);
            if (e == NULL) {
                rv = CKR_HOST_MEMORY;
            } else {
                e->flags = MAN_HAS_HASH;
                if (sha256(buf, len, e->hash) != 0) {
                    e->flags = 0; /* never matches: the record is refused */
                }
                AKV_LOG_INFO("store %s: legacy record %s adopted (trust on "
                             "first use)",
                             store->dir, id);
            }
        }
        akv_store_record_clear(&r);
        akv_secret_wipe(buf, len);
        free(buf);
    }
    closedir(d);
    return rv;
}

CK_RV akv_store_key_create(struct akv_store *store,
                           const struct akv_store_key *key, const uint8_t *s,
                           size_t len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    int lfd = -1;
    struct manifest m = {NULL, 0, 0};
    struct stat st;
    uint8_t *buf = NULL;
    size_t blen = 0;

    if (store == NULL || !akv_store_codec_key_valid(key) || s == NULL
        || len != AKV_STORE_SECRET_LEN) {
        return CKR_ARGUMENTS_BAD;
    }
    lfd = lock(store, LOCK_EX);
    if (lfd < 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (fstatat(store->dir_fd, STORE_KEY_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0
        || errno != ENOENT) {
        rv = CKR_FUNCTION_FAILED; /* another process was first */
        goto out;
    }
    if (akv_store_has_secret(store)) {
        rv = CKR_FUNCTION_FAILED;
        goto out;
    }
    rv = akv_store_set_secret(store, s, len);
    if (rv != CKR_OK) {
        goto out;
    }
    /* Manifest first, then .storekey: killed in between, the store still
     * has no .storekey and the next first use starts over. */
    rv = adopt_v1_locked(store, &m);
    if (rv == CKR_OK) {
        rv = man_save(store, &m);
    }
    if (rv != CKR_OK) {
        goto fail;
    }
    rv = akv_store_codec_key_encode(key, &buf, &blen);
    if (rv != CKR_OK) {
        goto fail;
    }
    rv = write_locked(store, STORE_KEY_NAME, buf, blen);
    if (rv == CKR_OK) {
        AKV_LOG_INFO("store %s: store key created, %zu legacy record%s "
                     "adopted",
                     store->dir, m.n, m.n == 1 ? "" : "s");
        goto out;
    }
fail:
    /* Not usable without its .storekey: forget S again. */
    pthread_mutex_lock(&store->key_lock);
    __atomic_store_n(&store->keyed, false, __ATOMIC_RELEASE);
    akv_secret_clear(&store->keys);
    pthread_mutex_unlock(&store->key_lock);
out:
    unlock(lfd);
    akv_store_manifest_free(&m);
    free(buf);
    return rv;
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

CK_RV akv_store_new_id(char id[AKV_STORE_ID_LEN + 1])
{
    return new_id(id);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len, bool *oom)
{
    uint8_t *d = NULL;

    if (p == NULL) {
        return NULL;
    }
    d = malloc(len > 0 ? len : 1);
    if (d == NULL) {
        *oom = true;
        return NULL;
    }
    if (len > 0) {
        memcpy(d, p, len);
    }
    return d;
}

CK_RV akv_store_record_copy(struct akv_store_record *dst,
                            const struct akv_store_record *src)
{
    bool oom = false;

    *dst = *src;
    dst->attrs = dup_bytes(src->attrs, src->attrs_len, &oom);
    dst->wrapped = dup_bytes(src->wrapped, src->wrapped_len, &oom);
    dst->sealed = dup_bytes(src->sealed, src->sealed_len, &oom);
    dst->kid = src->kid != NULL ? strdup(src->kid) : NULL;
    dst->alg = src->alg != NULL ? strdup(src->alg) : NULL;
    if (oom || (src->kid != NULL && dst->kid == NULL)
        || (src->alg != NULL && dst->alg == NULL)) {
        akv_store_record_clear(dst);
        return CKR_HOST_MEMORY;
    }
    return CKR_OK;
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
    if (rec->sealed != NULL) {
        akv_secret_wipe(rec->sealed, rec->sealed_len);
    }
    free(rec->sealed);
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
