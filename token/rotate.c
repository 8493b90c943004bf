/* SPDX-License-Identifier: Apache-2.0 */
#include "rotate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fdio.h"
#include "../common/fsperm.h"
#include "../common/kvid.h"
#include "../common/log.h"
#include "seal.h"
#include "token.h"

#define CATALOG_NAME  ".versions"
#define CATALOG_MAGIC "akv-pkcs11 versions 1\n"

/* One known version: a hint until Get Key confirmed it. */
struct cand {
    char version[AKV_KV_VERSION_MAX];
    int64_t created; /* s since epoch, from Get Key; 0 = unknown */
    bool confirmed;  /* Get Key answered for it (in this process) */
};

/* Names and versions follow the one rule of common/kvid.h; anything else in
 * the catalog is skipped, so a line can never smuggle a path or query into
 * a request. */
static bool name_ok(const char *s, size_t len)
{
    return akv_kvid_name_ok(s, len);
}

static bool version_ok(const char *s, size_t len)
{
    return akv_kvid_version_ok(s, len);
}

static bool seen_has_locked(const struct akv_token *t, const char *name,
                            const char *version)
{
    for (size_t i = 0; i < t->n_seen; i++) {
        if (strcmp(t->seen[i].name, name) == 0
            && strcasecmp(t->seen[i].version, version) == 0) {
            return true;
        }
    }
    return false;
}

/* Adds NAME/VERSION to the remembered set; false when already there or
 * the set is full (the oldest entries are kept: they are the ones a
 * long-lived store still needs). */
static bool seen_add_locked(struct akv_token *t, const char *name,
                            const char *version)
{
    if (seen_has_locked(t, name, version)) {
        return false;
    }
    if (t->seen == NULL) {
        t->seen = calloc(AKV_ROTATE_SEEN_MAX, sizeof(*t->seen));
        if (t->seen == NULL) {
            return false;
        }
    }
    if (t->n_seen >= AKV_ROTATE_SEEN_MAX) {
        return false;
    }
    (void)snprintf(t->seen[t->n_seen].name, sizeof(t->seen[0].name), "%s",
                   name);
    (void)snprintf(t->seen[t->n_seen].version, sizeof(t->seen[0].version), "%s",
                   version);
    t->n_seen++;
    return true;
}

static bool catalog_path(const struct akv_token *t, char *buf, size_t len)
{
    int n;

    if (t->cfg->store_dir == NULL) {
        return false;
    }
    n = snprintf(buf, len, "%s/%s", t->cfg->store_dir, CATALOG_NAME);
    return n > 0 && (size_t)n < len;
}

/* The catalog is trusted for nothing, but it must still be ours: the
 * store's StrictModes file rule (common/fsperm.h: a regular file owned by
 * us or root, not writable by group/other - otherwise someone else could
 * make us spend calls), and a bounded size. */
static bool catalog_file_ok(int fd, const char *path)
{
    struct stat st;
    char why[512];

    if (fstat(fd, &st) != 0) {
        return false;
    }
    if (akv_fsperm_check_file(&st, path, why, sizeof(why)) != 0) {
        AKV_LOG_WARN("version catalog ignored: %s", why);
        return false;
    }
    return st.st_size <= (off_t)(2 * AKV_ROTATE_CATALOG_MAX);
}

/* Parses catalog text BUF (LEN bytes) into the remembered set. A line
 * without its newline (a writer killed mid-append) and malformed lines are
 * skipped. */
static void catalog_parse_locked(struct akv_token *t, const char *buf,
                                 size_t len)
{
    size_t pos = strlen(CATALOG_MAGIC);

    if (len < pos || memcmp(buf, CATALOG_MAGIC, pos) != 0) {
        return;
    }
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        const char *sp = NULL;
        char name[AKV_KV_NAME_MAX];
        char version[AKV_KV_VERSION_MAX];
        size_t llen;

        if (nl == NULL) {
            break;
        }
        llen = (size_t)(nl - line);
        pos += llen + 1;
        sp = memchr(line, ' ', llen);
        if (sp == NULL || !name_ok(line, (size_t)(sp - line))
            || !version_ok(sp + 1, (size_t)(nl - sp - 1))) {
            continue;
        }
        memcpy(name, line, (size_t)(sp - line));
        name[sp - line] = '\0';
        memcpy(version, sp + 1, (size_t)(nl - sp - 1));
        version[nl - sp - 1] = '\0';
        (void)seen_add_locked(t, name, version);
    }
}

/* Reads the catalog once per token (off-lock), merging it into memory. */
static void catalog_load(struct akv_token *t)
{
    char path[4096];
    char *buf = NULL;
    ssize_t got = 0;
    int fd = -1;
    bool loaded;

    pthread_rwlock_rdlock(&t->lock);
    loaded = t->seen_loaded;
    pthread_rwlock_unlock(&t->lock);
    if (loaded) {
        return;
    }
    if (catalog_path(t, path, sizeof(path))) {
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    }
    if (fd >= 0 && catalog_file_ok(fd, path)) {
        buf = malloc(2 * AKV_ROTATE_CATALOG_MAX + 1);
        while (buf != NULL && (size_t)got < 2 * AKV_ROTATE_CATALOG_MAX) {
            ssize_t r =
                read(fd, buf + got, 2 * AKV_ROTATE_CATALOG_MAX - (size_t)got);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                break;
            }
            got += r;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    pthread_rwlock_wrlock(&t->lock);
    if (!t->seen_loaded && buf != NULL) {
        catalog_parse_locked(t, buf, (size_t)got);
    }
    t->seen_loaded = true;
    pthread_rwlock_unlock(&t->lock);
    free(buf);
}

/* Appends one "NAME VERSION\n" line. O_APPEND makes a small write land
 * whole at the end even with several processes appending at once; a
 * process killed mid-write leaves at most one line without its newline,
 * which readers skip. A new file gets the magic first (O_EXCL decides who
 * writes it). */
static void catalog_append(const struct akv_token *t, const char *name,
                           const char *version)
{
    char path[4096];
    char line[AKV_KV_NAME_MAX + AKV_KV_VERSION_MAX + 2];
    int fd;
    int n;

    if (!catalog_path(t, path, sizeof(path))) {
        return;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (akv_fdio_write_all(fd, CATALOG_MAGIC, strlen(CATALOG_MAGIC)) != 0) {
            AKV_LOG_DEBUG("version catalog %s: write failed", path);
        }
        close(fd);
    }
    /* O_NONBLOCK: a FIFO planted by someone who can write store_dir would
     * otherwise block this open until a reader comes (the file check
     * below then refuses it); no effect on a regular file. */
    fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        AKV_LOG_DEBUG("version catalog %s: cannot open (errno %d)", path,
                      errno);
        return;
    }
    n = snprintf(line, sizeof(line), "%s %s\n", name, version);
    if (!catalog_file_ok(fd, path) || n <= 0 || (size_t)n >= sizeof(line)
        || akv_fdio_write_all(fd, line, (size_t)n) != 0) {
        AKV_LOG_DEBUG("version catalog %s: not appended", path);
    }
    close(fd);
}

void akv_rotate_note(struct akv_token *t, const struct akv_kv_key *key)
{
    bool added;

    if (t == NULL || key == NULL || key->kty != AKV_KV_KTY_RSA
        || !name_ok(key->name, strlen(key->name))
        || !version_ok(key->version, strlen(key->version))) {
        return;
    }
    catalog_load(t);
    pthread_rwlock_wrlock(&t->lock);
    added = seen_add_locked(t, key->name, key->version);
    pthread_rwlock_unlock(&t->lock);
    if (added) {
        catalog_append(t, key->name, key->version);
    }
}

void akv_rotate_free(struct akv_token *t)
{
    if (t != NULL) {
        free(t->seen);
        t->seen = NULL;
        t->n_seen = 0;
    }
}

/* Adds VERSION to the candidate list unless it is there or is BOUND. */
static void cand_add(struct cand *c, size_t *n, size_t cap, const char *bound,
                     const char *version, int64_t created, bool confirmed)
{
    if (strcasecmp(version, bound) == 0) {
        return;
    }
    for (size_t i = 0; i < *n; i++) {
        if (strcasecmp(c[i].version, version) == 0) {
            if (confirmed && !c[i].confirmed) {
                c[i].created = created;
                c[i].confirmed = true;
            }
            return;
        }
    }
    if (*n >= cap) {
        return;
    }
    (void)snprintf(c[*n].version, sizeof(c[*n].version), "%s", version);
    c[*n].created = created;
    c[*n].confirmed = confirmed;
    (*n)++;
}

/* True when version K can decrypt IN_LEN-byte RSA ciphertext at all. */
static bool usable(const struct akv_kv_key *k, size_t in_len)
{
    return k->kty == AKV_KV_KTY_RSA && k->enabled && k->n_len == in_len;
}

/* Collects the other versions of BOUND's key the token knows: object
 * table (confirmed: fetched in this process), stored objects' kids and the
 * catalog (hints). */
static size_t collect(struct akv_token *t, const struct akv_kv_key *bound,
                      size_t in_len, struct cand *c, size_t cap)
{
    size_t n = 0;

    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->n_objs; i++) {
        const struct akv_obj *o = t->objs[i];
        char name[AKV_KV_NAME_MAX];
        char version[AKV_KV_VERSION_MAX];

        if (o->origin == AKV_ORIGIN_VAULT && o->vkey != NULL
            && strcmp(o->vkey->name, bound->name) == 0) {
            if (usable(o->vkey, in_len)) {
                cand_add(c, &n, cap, bound->version, o->vkey->version,
                         o->vkey->created, true);
            }
        } else if (o->origin == AKV_ORIGIN_STORE && o->rec.kid != NULL
                   && akv_seal_kid_split(o->rec.kid, name, version)
                   && strcmp(name, bound->name) == 0
                   && version_ok(version, strlen(version))) {
            cand_add(c, &n, cap, bound->version, version, 0, false);
        }
    }
    for (size_t i = 0; i < t->n_seen; i++) {
        if (strcmp(t->seen[i].name, bound->name) == 0) {
            cand_add(c, &n, cap, bound->version, t->seen[i].version, 0, false);
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return n;
}

static int newest_first(const void *a, const void *b)
{
    const struct cand *x = a;
    const struct cand *y = b;

    return (x->created < y->created) - (x->created > y->created);
}

/* One unwrap whose refusal (400) is expected: logged at DEBUG by the
 * client, the outcome by akv_rotate_unwrap. */
static CK_RV unwrap_try(struct akv_token *t, const char *name,
                        const char *version, enum akv_kv_alg alg,
                        const uint8_t *in, size_t in_len,
                        struct akv_secret *out)
{
    return t->kv->ops->unwrap_probe != NULL
               ? t->kv->ops->unwrap_probe(t->kv, name, version, alg, in, in_len,
                                          out)
               : t->kv->ops->unwrap(t->kv, name, version, alg, in, in_len, out);
}

CK_RV akv_rotate_unwrap(struct akv_token *t, const struct akv_kv_key *bound,
                        enum akv_kv_alg alg, const uint8_t *in, size_t in_len,
                        struct akv_secret *out)
{
    long budget = t->cfg->rotation_fallback;
    /* With a fallback to come, the bound version's refusal is no error yet
     * (data made under an older version, as every old image layer is after
     * a rotation): one line says how it ended. */
    bool fallback =
        budget > 0
        && (alg == AKV_KV_ALG_RSA_OAEP || alg == AKV_KV_ALG_RSA_OAEP_256);
    CK_RV rv = fallback ? unwrap_try(t, bound->name, bound->version, alg, in,
                                     in_len, out)
                        : t->kv->ops->unwrap(t->kv, bound->name, bound->version,
                                             alg, in, in_len, out);
    struct cand *c = NULL;
    size_t n = 0;
    size_t tried = 0;
    size_t gets = 0;

    if (rv != CKR_WRAPPED_KEY_INVALID || !fallback) {
        return rv;
    }
    catalog_load(t);
    c = calloc(AKV_ROTATE_SEEN_MAX, sizeof(*c));
    if (c == NULL) {
        goto out;
    }
    n = collect(t, bound, in_len, c, AKV_ROTATE_SEEN_MAX);
    /* Hints are confirmed by Get Key (bounded: at most twice the fallback
     * budget, so a planted catalog costs a handful of calls at worst). */
    for (size_t i = 0; i < n; i++) {
        struct akv_kv_key k;
        CK_RV grv;

        if (c[i].confirmed) {
            continue;
        }
        if (gets >= (size_t)budget * 2) {
            c[i].version[0] = '\0';
            continue;
        }
        gets++;
        memset(&k, 0, sizeof(k));
        grv = akv_token_fetch_version(t, bound->name, c[i].version, &k);
        if (grv == CKR_OK && usable(&k, in_len)
            && strcmp(k.name, bound->name) == 0) {
            c[i].created = k.created;
            c[i].confirmed = true;
        } else {
            c[i].version[0] = '\0';
            if (grv == CKR_DEVICE_ERROR || grv == CKR_HOST_MEMORY) {
                akv_kv_key_clear(&k);
                rv = grv;
                goto out;
            }
        }
        akv_kv_key_clear(&k);
    }
    qsort(c, n, sizeof(*c), newest_first);
    for (size_t i = 0; i < n && tried < (size_t)budget; i++) {
        CK_RV trv;

        if (!c[i].confirmed || c[i].version[0] == '\0') {
            continue;
        }
        tried++;
        akv_secret_clear(out);
        trv = unwrap_try(t, bound->name, c[i].version, alg, in, in_len, out);
        if (trv == CKR_OK) {
            AKV_LOG_INFO("key %s: data made under version %s decrypted with "
                         "it after version %s refused it (rotation fallback, "
                         "attempt %zu)",
                         bound->name, c[i].version, bound->version, tried);
            rv = CKR_OK;
            goto out;
        }
        if (trv == CKR_DEVICE_ERROR || trv == CKR_HOST_MEMORY) {
            rv = trv;
            goto out;
        }
        /* 400 (not this version), 403 (this version refused), 404 (gone):
         * try the next one. */
    }
out:
    if (rv == CKR_WRAPPED_KEY_INVALID) {
        AKV_LOG_ERR("key %s: version %s refused the ciphertext (HTTP 400: "
                    "not made under it, or damaged) and %zu other known "
                    "version(s) did too",
                    bound->name, bound->version, tried);
    }
    if (rv != CKR_OK) {
        akv_secret_clear(out);
    }
    free(c);
    return rv;
}
