/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rewrap, tally and probe for akv-pkcs11-tool (admin.h).
 *
 * Why rewrap is safe to kill at any instant (docs/STORE.md has the long
 * form): each record is replaced by one akv_store_put_if, which is one
 * rename(2) of a complete temp file, so every record on disk is at all times
 * either the old-version record or the new-version record, with the same id
 * and attributes. Nothing is created or deleted, so nothing can be duplicated
 * or lost; a second run simply skips records already under the target.
 */
#include "admin.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "common/kvid.h"
#include "common/log.h"
#include "common/secret.h"
#include "token/seal.h"

CK_RV akv_admin_parse_kid(const char *kid, char *name, char *version)
{
    if (name == NULL || version == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    name[0] = '\0';
    version[0] = '\0';
    /* the module's one kid rule (token/seal.h -> common/kvid.h) */
    return akv_seal_kid_split(kid, name, version) ? CKR_OK : CKR_ARGUMENTS_BAD;
}

static void say(const struct akv_rewrap_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(const struct akv_rewrap_opts *o, const char *fmt, ...)
{
    va_list ap;

    if (o == NULL || o->out == NULL) {
        return;
    }
    if (o->progress != NULL) {
        fputs("\r\033[K", o->progress); /* erase the progress line */
    }
    va_start(ap, fmt);
    vfprintf(o->out, fmt, ap);
    va_end(ap);
    fflush(o->out);
}

/* A line about a record that went well: only when asked for. */
#define say_ok(o, ...)                                                         \
    do {                                                                       \
        if ((o) != NULL && !(o)->failures_only) {                              \
            say((o), __VA_ARGS__);                                             \
        }                                                                      \
    } while (0)

static void progress(const struct akv_rewrap_opts *o, size_t done, size_t n,
                     const struct akv_rewrap_stats *st)
{
    if (o == NULL || o->progress == NULL) {
        return;
    }
    fprintf(o->progress,
            "\r%s: %zu/%zu records: rewrapped %zu, already current %zu, "
            "failed %zu",
            o->progress_label != NULL ? o->progress_label : "rewrap", done, n,
            st->rewrapped, st->current, st->failed);
    fflush(o->progress);
}

enum outcome {
    OUT_REWRAPPED,
    OUT_CURRENT,
    OUT_FAILED,
    OUT_CONFLICT,
    OUT_VANISHED,
};

/* One attempt on one record: reseal under TARGET (open with its own kid and
 * alg, seal anew: also moves a legacy record to format 2), then
 * compare-and-swap. Prints the failure reason; the caller prints
 * success. */
static enum outcome rewrap_one(const struct akv_seal_ctx *c,
                               const struct akv_seal_target *target,
                               const struct akv_store_record *rec,
                               const struct akv_rewrap_opts *o, char *old_ver)
{
    enum outcome res = OUT_FAILED;
    char name[AKV_KV_NAME_MAX];
    struct akv_store_record next;
    CK_RV rv = CKR_GENERAL_ERROR;

    memset(&next, 0, sizeof(next));
    if (akv_admin_parse_kid(rec->kid, name, old_ver) != CKR_OK) {
        say(o, "%s: failed: stored kid is not a versioned key identifier\n",
            rec->id);
        goto out;
    }
    if (akv_seal_is_current(rec, target)) {
        res = OUT_CURRENT;
        goto out;
    }
    rv = akv_seal_reseal(c, target, rec, NULL, 0, &next);
    if (rv != CKR_OK) {
        say(o, "%s: failed: reseal (%s/%s -> %s/%s): %s\n", rec->id, name,
            old_ver, target->name, target->version, akv_admin_rv_name(rv));
        goto out;
    }
    rv = akv_store_put_if(c->store, rec, &next);
    if (rv == CKR_FUNCTION_FAILED) {
        res = OUT_CONFLICT;
        goto out;
    }
    if (rv != CKR_OK) {
        say(o, "%s: failed: store write: %s\n", rec->id, akv_admin_rv_name(rv));
        goto out;
    }
    res = OUT_REWRAPPED;
out:
    akv_store_record_clear(&next);
    return res;
}

CK_RV akv_admin_target(struct akv_kv *kv, const struct akv_key_config *keys,
                       size_t n, struct akv_seal_target *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_kv_key *got = NULL;
    struct akv_seal_cand *c = NULL;
    CK_RV first_err = CKR_OK;

    if (kv == NULL || (keys == NULL && n > 0) || out == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    got = calloc(n > 0 ? n : 1, sizeof(*got));
    c = calloc(n > 0 ? n : 1, sizeof(*c));
    if (got == NULL || c == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rv = kv->ops->get_key(kv, keys[i].name, keys[i].version, &got[i]);
        if (rv != CKR_OK && first_err == CKR_OK) {
            first_err = rv;
        }
        c[i].name = got[i].name;
        c[i].version = got[i].version;
        c[i].kid = got[i].kid;
        c[i].kty = rv == CKR_OK ? got[i].kty : AKV_KV_KTY_OTHER;
    }
    rv = akv_seal_choose(c, n, out);
    if (rv != CKR_OK && first_err != CKR_OK) {
        rv = first_err; /* the vault's reason is the useful one */
    }
out:
    for (size_t i = 0; got != NULL && i < n; i++) {
        akv_kv_key_clear(&got[i]);
    }
    free(got);
    free(c);
    return rv;
}

CK_RV akv_admin_rewrap(struct akv_kv *kv, struct akv_store *store,
                       const char *binding,
                       const struct akv_seal_target *target,
                       const struct akv_rewrap_opts *opts,
                       struct akv_rewrap_stats *stats)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_store_record *recs = NULL;
    size_t n = 0;
    long writes = 0;
    struct akv_seal_ctx c = {kv, store, binding, NULL, NULL};

    if (kv == NULL || store == NULL || target == NULL || stats == NULL
        || binding == NULL || target->name[0] == '\0'
        || target->version[0] == '\0') {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    memset(stats, 0, sizeof(*stats));
    /* Loads S, or on a legacy store's first use creates it and adopts the
     * legacy records (trust on first use, docs/STORE.md). */
    rv = akv_seal_ready(&c, target);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_store_list(store, &recs, &n);
    if (rv != CKR_OK) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct akv_store_record fresh;
        const struct akv_store_record *rec = &recs[i];
        char old_ver[AKV_KV_VERSION_MAX] = "";
        enum outcome res = OUT_FAILED;

        memset(&fresh, 0, sizeof(fresh));
        for (int attempt = 0; attempt < 2; attempt++) {
            res = rewrap_one(&c, target, rec, opts, old_ver);
            if (res != OUT_CONFLICT) {
                break;
            }
            /* Another process changed the record since we listed it:
             * start again from what is on disk now, once. */
            akv_store_record_clear(&fresh);
            rv = akv_store_get(store, recs[i].id, &fresh);
            if (rv == CKR_OBJECT_HANDLE_INVALID) {
                res = OUT_VANISHED;
                break;
            }
            if (rv != CKR_OK) {
                res = OUT_FAILED;
                say(opts,
                    "%s: failed: changed concurrently and now "
                    "unreadable\n",
                    recs[i].id);
                break;
            }
            rec = &fresh;
        }
        switch (res) {
        case OUT_REWRAPPED:
            stats->rewrapped++;
            say_ok(opts, "%s: rewrapped %s%s -> %s\n", rec->id, old_ver,
                   rec->format == AKV_STORE_FORMAT_V1 ? " (legacy format)" : "",
                   target->version);
            writes++;
            if (opts != NULL && opts->kill_after_writes > 0
                && writes >= opts->kill_after_writes) {
                raise(SIGKILL);
            }
            break;
        case OUT_CURRENT:
            stats->current++;
            say_ok(opts, "%s: already current (%s)\n", rec->id, old_ver);
            break;
        case OUT_VANISHED:
            stats->vanished++;
            say_ok(opts, "%s: deleted by another process, skipped\n",
                   recs[i].id);
            break;
        case OUT_CONFLICT:
            stats->failed++;
            say(opts,
                "%s: failed: changed by another process twice, "
                "skipped (run rewrap again)\n",
                recs[i].id);
            break;
        case OUT_FAILED:
            stats->failed++;
            break;
        }
        akv_store_record_clear(&fresh);
        progress(opts, i + 1, n, stats);
    }
    if (opts != NULL && opts->progress != NULL && n > 0) {
        fputs("\r\033[K", opts->progress);
        fflush(opts->progress);
    }
    rv = CKR_OK;
out:
    akv_store_records_free(recs, n);
    return rv;
}

static int cmp_row(const void *a, const void *b)
{
    const struct akv_tally_row *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->version, y->version);
}

CK_RV akv_admin_tally(const struct akv_store_record *recs, size_t n,
                      struct akv_tally_row **rows, size_t *n_rows)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_tally_row *r = NULL;
    size_t used = 0;

    if ((recs == NULL && n > 0) || rows == NULL || n_rows == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    r = calloc(n > 0 ? n : 1, sizeof(*r));
    if (r == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char name[AKV_KV_NAME_MAX], ver[AKV_KV_VERSION_MAX];
        size_t j = 0;
        if (akv_admin_parse_kid(recs[i].kid, name, ver) != CKR_OK) {
            snprintf(name, sizeof(name), "(unparsable kid)");
            ver[0] = '\0';
        }
        for (j = 0; j < used; j++) {
            if (strcasecmp(r[j].name, name) == 0
                && strcmp(r[j].version, ver) == 0) {
                break;
            }
        }
        if (j == used) {
            memcpy(r[j].name, name, sizeof(name));
            memcpy(r[j].version, ver, sizeof(ver));
            used++;
        }
        r[j].count++;
    }
    if (used > 1) {
        qsort(r, used, sizeof(*r), cmp_row);
    }
    *rows = r;
    *n_rows = used;
    r = NULL;
    rv = CKR_OK;
out:
    free(r);
    return rv;
}

CK_RV akv_admin_probe(struct akv_kv *kv, const char *name, const char *version,
                      struct akv_probe *out)
{
    uint8_t probe[32];
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    char kid[AKV_KV_KID_MAX];
    char wn[AKV_KV_NAME_MAX], wv[AKV_KV_VERSION_MAX];
    struct akv_secret plain = AKV_SECRET_INIT;
    enum akv_kv_alg alg = AKV_KV_ALG_RSA_OAEP_256;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (out == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    memset(out, 0, sizeof(*out));
    if (kv == NULL || name == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        out->step = "get";
        goto out;
    }
    out->step = "get";
    rv = kv->ops->get_key(kv, name, version, &out->key);
    if (rv != CKR_OK) {
        goto out;
    }
    out->get_ok = true;
    out->step = "wrapKey";
    if (out->key.kty == AKV_KV_KTY_OCT_HSM) {
        if (akv_kv_aes_kw_alg(out->key.oct_bits, false, &alg) != 0) {
            rv = CKR_KEY_SIZE_RANGE;
            goto out;
        }
    } else if (out->key.kty != AKV_KV_KTY_RSA) {
        rv = CKR_KEY_TYPE_INCONSISTENT;
        goto out;
    }
    out->alg = akv_kv_alg_name(alg);
    if (getrandom(probe, sizeof(probe), 0) != (ssize_t)sizeof(probe)) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    kid[0] = '\0';
    rv = kv->ops->wrap(kv, out->key.name, out->key.version, alg, probe,
                       sizeof(probe), &wrapped, &wrapped_len, kid);
    if (rv != CKR_OK) {
        goto out;
    }
    out->wrap_ok = true;
    out->step = "unwrapKey";
    if (akv_admin_parse_kid(kid, wn, wv) != CKR_OK) {
        memcpy(wv, out->key.version, sizeof(wv));
    }
    rv = kv->ops->unwrap(kv, out->key.name, wv, alg, wrapped, wrapped_len,
                         &plain);
    if (rv != CKR_OK) {
        goto out;
    }
    if (plain.len != sizeof(probe)
        || CRYPTO_memcmp(plain.data, probe, sizeof(probe)) != 0) {
        rv = CKR_FUNCTION_FAILED;
        goto out;
    }
    out->unwrap_ok = true;
    out->step = NULL;
    rv = CKR_OK;
out:
    out->rv = rv;
    OPENSSL_cleanse(probe, sizeof(probe));
    akv_secret_clear(&plain);
    free(wrapped);
    return rv;
}

size_t akv_admin_catalog(const char *store_dir, const char *name,
                         char (*out)[AKV_KV_VERSION_MAX], size_t max)
{
    char path[4096], line[256];
    size_t n = 0, nl = 0;
    FILE *f = NULL;

    if (store_dir == NULL || name == NULL || out == NULL) {
        return 0;
    }
    nl = strlen(name);
    snprintf(path, sizeof(path), "%s/.versions", store_dir);
    f = fopen(path, "re");
    if (f == NULL) {
        return 0;
    }
    while (n < max && fgets(line, sizeof(line), f) != NULL) {
        char *v = line + nl + 1;
        bool dup = false;
        size_t vl = 0;

        if (strncasecmp(line, name, nl) != 0 || line[nl] != ' ') {
            continue;
        }
        v[strcspn(v, "\r\n")] = '\0';
        vl = strlen(v);
        if (vl == 0 || vl >= AKV_KV_VERSION_MAX
            || strspn(v, "0123456789abcdefABCDEF") != vl) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            dup = dup || strcasecmp(out[i], v) == 0;
        }
        if (!dup) {
            memcpy(out[n++], v, vl + 1);
        }
    }
    fclose(f);
    return n;
}

const char *akv_admin_rv_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
        {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].rv == rv) {
            return names[i].name;
        }
    }
    return "CKR_(other)";
}
