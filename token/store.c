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
#include <zlib.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>

#include "../common/fdio.h"
#include "../common/fsperm.h"
#include "../common/log.h"
#include "../common/ossl.h"
#include "../common/secret.h"

#define STORE_MAGIC     "AKVOBJ1\n"
#define STORE_MAGIC2    "AKVOBJ2\n"
#define STORE_MAGIC_LEN 8
#define STORE_SUFFIX    ".obj"
#define STORE_LOCK_NAME ".lock"
#define STORE_KEY_NAME  ".storekey"
#define STORE_KEY_MAGIC "AKVKEY2\n"
#define STORE_MAN_NAME  ".manifest"
#define STORE_MAN_MAGIC "AKVMAN2\n"
#define STORE_MAC_LEN   32u /* HMAC-SHA256 */
#define STORE_MAN_MAX_N 65536u
/* u8 id_len + id + u8 flags + u64 cur + u64 pending + optional sha256 */
#define STORE_MAN_ENTRY_MAX (1 + AKV_STORE_ID_LEN + 1 + 8 + 8 + 32)
#define STORE_MAN_FILE_MAX                                                     \
    (STORE_MAGIC_LEN + 4 + (size_t)STORE_MAN_MAX_N * STORE_MAN_ENTRY_MAX       \
     + STORE_MAC_LEN)
#define MAN_HAS_HASH 0x01u /* entry adopts a v1 file by its SHA-256 */
/* HKDF info labels (RFC 5869 §3.2): one key per use of S. */
#define LABEL_RECORD      "akv-pkcs11 store record v2"
#define LABEL_MANIFEST    "akv-pkcs11 store manifest v2"
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
/* v2: magic + u8 id_len + u64 gen + u32 + u16 + u16 + u32 + u32 + HMAC */
#define STORE2_FIXED_LEN                                                       \
    (STORE_MAGIC_LEN + 1 + 8 + 4 + 2 + 2 + 4 + 4 + STORE_MAC_LEN)
#define STORE2_FILE_MAX                                                        \
    (STORE2_FIXED_LEN + AKV_STORE_ID_LEN + STORE_ATTRS_MAX + STORE_KID_MAX     \
     + STORE_ALG_MAX + STORE_WRAPPED_MAX + AKV_STORE_SEALED_MAX)
#define STORE_ANY_FILE_MAX                                                     \
    (STORE2_FILE_MAX > STORE_FILE_MAX ? STORE2_FILE_MAX : STORE_FILE_MAX)

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

/* One manifest entry: which generation(s) of record ID a reader accepts. */
struct man_entry {
    char id[AKV_STORE_ID_LEN + 1];
    unsigned flags;   /* MAN_HAS_HASH */
    uint64_t cur;     /* accepted v2 generation; 0 = none */
    uint64_t pending; /* generation being written; 0 = none */
    uint8_t hash[32]; /* SHA-256 of an adopted v1 file */
};

struct manifest {
    struct man_entry *e;
    size_t n, cap;
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

/* ---- keys derived from the store secret ---- */

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

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

/* HMAC-SHA256 of BUF under key WHICH (0 record, 1 manifest) into MAC.
 * Caller checked akv_store_has_secret. Returns 0 or -1. */
static int mac(struct akv_store *store, int which, const uint8_t *buf,
               size_t len, uint8_t mac_out[STORE_MAC_LEN])
{
    size_t out_len = 0;

    /* In the module's private context (common/ossl.h): the host's providers
     * cannot change or break it. */
    if (EVP_Q_mac(akv_ossl_libctx(), "HMAC", NULL, "SHA256", NULL,
                  store->keys.data + 32 * which, 32, buf, len, mac_out,
                  STORE_MAC_LEN, &out_len)
            == NULL
        || out_len != STORE_MAC_LEN) {
        return -1;
    }
    return 0;
}

/* True when the last 32 bytes of BUF are the HMAC of the rest. */
static bool mac_ok(struct akv_store *store, int which, const uint8_t *buf,
                   size_t len)
{
    uint8_t m[STORE_MAC_LEN];
    bool ok =
        len >= STORE_MAC_LEN
        && mac(store, which, buf, len - STORE_MAC_LEN, m) == 0
        && CRYPTO_memcmp(m, buf + len - STORE_MAC_LEN, STORE_MAC_LEN) == 0;

    akv_secret_wipe(m, sizeof(m));
    return ok;
}

/* ---- format 2 records ---- */

static bool record2_valid(const struct akv_store_record *rec)
{
    return record_valid(rec) && rec->generation != 0 && rec->sealed != NULL
           && rec->sealed_len > 0 && rec->sealed_len <= AKV_STORE_SEALED_MAX;
}

/* Serialises REC (validated, id set) as a v2 record with its HMAC. */
static CK_RV encode2(struct akv_store *store,
                     const struct akv_store_record *rec, uint8_t **out,
                     size_t *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    size_t id_len = strlen(rec->id);
    size_t kid_len = strlen(rec->kid);
    size_t alg_len = strlen(rec->alg);
    size_t len = STORE2_FIXED_LEN + id_len + rec->attrs_len + kid_len + alg_len
                 + rec->wrapped_len + rec->sealed_len;
    uint8_t *buf = malloc(len);
    uint8_t *p = buf;

    if (buf == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    memcpy(p, STORE_MAGIC2, STORE_MAGIC_LEN);
    p += STORE_MAGIC_LEN;
    *p++ = (uint8_t)id_len;
    memcpy(p, rec->id, id_len);
    p += id_len;
    put_le64(p, rec->generation);
    p += 8;
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
    put_le32(p, (uint32_t)rec->sealed_len);
    p += 4;
    memcpy(p, rec->sealed, rec->sealed_len);
    p += rec->sealed_len;
    if (mac(store, 0, buf, (size_t)(p - buf), p) != 0) {
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    rv = CKR_OK;
out:
    if (buf != NULL) {
        akv_secret_wipe(buf, len);
    }
    free(buf);
    return rv;
}

/*
 * Parses a v2 file image of record ID. CKR_OK, CKR_HOST_MEMORY,
 * CKR_DEVICE_ERROR (structure; *why), CKR_SIGNATURE_INVALID (HMAC, or the
 * id inside is not ID: a record copied to another name).
 */
static CK_RV decode2(struct akv_store *store, const char *id,
                     const uint8_t *buf, size_t len, struct akv_store_record *o,
                     const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct cursor c = {buf, len};
    const uint8_t *f = NULL, *rid = NULL, *attrs = NULL, *kid = NULL;
    const uint8_t *alg = NULL, *wrapped = NULL, *sealed = NULL;
    uint32_t attrs_len = 0, wrapped_len = 0, sealed_len = 0;
    uint16_t kid_len = 0, alg_len = 0;
    uint8_t id_len = 0;
    uint64_t gen = 0;

    if (len < STORE2_FIXED_LEN || len > STORE2_FILE_MAX) {
        *why = "file size out of range";
        goto out;
    }
    /* The MAC first: nothing an attacker wrote is parsed further. */
    if (!mac_ok(store, 0, buf, len)) {
        *why = "HMAC mismatch: not written by this token, or edited";
        rv = CKR_SIGNATURE_INVALID;
        goto out;
    }
    c.left = len - STORE_MAC_LEN;
    if (!take(&c, STORE_MAGIC_LEN, &f)
        || memcmp(f, STORE_MAGIC2, STORE_MAGIC_LEN) != 0) {
        *why = "bad magic";
        goto out;
    }
    if (!take(&c, 1, &f) || (id_len = f[0]) == 0 || id_len > AKV_STORE_ID_LEN
        || !take(&c, id_len, &rid)) {
        *why = "bad id";
        goto out;
    }
    if (strlen(id) != id_len || memcmp(rid, id, id_len) != 0) {
        *why = "record of another id (moved or copied)";
        rv = CKR_SIGNATURE_INVALID;
        goto out;
    }
    if (!take(&c, 8, &f) || (gen = get_le64(f)) == 0) {
        *why = "bad generation";
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
    if (!take(&c, 4, &f) || (sealed_len = get_le32(f)) > AKV_STORE_SEALED_MAX
        || sealed_len == 0 || !take(&c, sealed_len, &sealed)) {
        *why = "bad sealed length";
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
    o->sealed = malloc(sealed_len);
    if (o->attrs == NULL || o->kid == NULL || o->alg == NULL
        || o->wrapped == NULL || o->sealed == NULL) {
        akv_store_record_clear(o);
        goto out;
    }
    if (attrs_len > 0) {
        memcpy(o->attrs, attrs, attrs_len);
    }
    o->attrs_len = attrs_len;
    memcpy(o->wrapped, wrapped, wrapped_len);
    o->wrapped_len = wrapped_len;
    memcpy(o->sealed, sealed, sealed_len);
    o->sealed_len = sealed_len;
    o->generation = gen;
    o->format = AKV_STORE_FORMAT_V2;
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_store_parse(struct akv_store *store, const char *id,
                      const uint8_t *buf, size_t len,
                      struct akv_store_record *out, const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;

    *why = "";
    if (!akv_store_has_secret(store)) {
        *why = "store secret not loaded";
        return CKR_GENERAL_ERROR;
    }
    memset(out, 0, sizeof(*out));
    if (len >= STORE_MAGIC_LEN
        && memcmp(buf, STORE_MAGIC2, STORE_MAGIC_LEN) == 0) {
        rv = decode2(store, id, buf, len, out, why);
    } else {
        rv = decode(buf, len, out, why);
        if (rv == CKR_OK) {
            out->format = AKV_STORE_FORMAT_V1;
        }
    }
    if (rv == CKR_OK) {
        memcpy(out->id, id, strlen(id) + 1);
    }
    return rv;
}

/* ---- the manifest ---- */

static void man_free(struct manifest *m)
{
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static struct man_entry *man_find(struct manifest *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->e[i].id, id) == 0) {
            return &m->e[i];
        }
    }
    return NULL;
}

/* A new zeroed entry for ID (which must not be present). NULL on ENOMEM or
 * when the manifest is full. */
static struct man_entry *man_add(struct manifest *m, const char *id)
{
    if (m->n >= STORE_MAN_MAX_N) {
        return NULL;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct man_entry *e = realloc(m->e, cap * sizeof(*e));
        if (e == NULL) {
            return NULL;
        }
        m->e = e;
        m->cap = cap;
    }
    memset(&m->e[m->n], 0, sizeof(m->e[m->n]));
    memcpy(m->e[m->n].id, id, strlen(id) + 1);
    return &m->e[m->n++];
}

static void man_remove(struct manifest *m, const char *id)
{
    struct man_entry *e = man_find(m, id);

    if (e != NULL) {
        *e = m->e[m->n - 1];
        m->n--;
    }
}

/* Parses and authenticates a manifest image into M. CKR_OK,
 * CKR_HOST_MEMORY, CKR_DEVICE_ERROR (structure), CKR_SIGNATURE_INVALID. */
static CK_RV man_decode(struct akv_store *store, const uint8_t *buf, size_t len,
                        struct manifest *m, const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct cursor c = {buf, len};
    const uint8_t *f = NULL;
    uint32_t n = 0;

    memset(m, 0, sizeof(*m));
    if (len < STORE_MAGIC_LEN + 4 + STORE_MAC_LEN || len > STORE_MAN_FILE_MAX) {
        *why = "file size out of range";
        goto out;
    }
    if (!mac_ok(store, 1, buf, len)) {
        *why = "HMAC mismatch";
        rv = CKR_SIGNATURE_INVALID;
        goto out;
    }
    c.left = len - STORE_MAC_LEN;
    if (!take(&c, STORE_MAGIC_LEN, &f)
        || memcmp(f, STORE_MAN_MAGIC, STORE_MAGIC_LEN) != 0) {
        *why = "bad magic";
        goto out;
    }
    if (!take(&c, 4, &f) || (n = get_le32(f)) > STORE_MAN_MAX_N) {
        *why = "bad entry count";
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        char id[AKV_STORE_ID_LEN + 1];
        const uint8_t *rid = NULL;
        struct man_entry *e = NULL;
        uint8_t id_len = 0;

        if (!take(&c, 1, &f) || (id_len = f[0]) == 0
            || id_len > AKV_STORE_ID_LEN || !take(&c, id_len, &rid)) {
            *why = "bad entry id";
            goto out;
        }
        memcpy(id, rid, id_len);
        id[id_len] = '\0';
        if (!id_valid(id) || man_find(m, id) != NULL) {
            *why = "bad or duplicate entry id";
            goto out;
        }
        e = man_add(m, id);
        if (e == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        if (!take(&c, 1 + 8 + 8, &f) || (f[0] & ~MAN_HAS_HASH) != 0) {
            *why = "bad entry";
            goto out;
        }
        e->flags = f[0];
        e->cur = get_le64(f + 1);
        e->pending = get_le64(f + 9);
        if ((e->flags & MAN_HAS_HASH) != 0) {
            if (!take(&c, 32, &f)) {
                *why = "bad entry hash";
                goto out;
            }
            memcpy(e->hash, f, 32);
        }
    }
    if (c.left != 0) {
        *why = "trailing bytes";
        goto out;
    }
    rv = CKR_OK;
out:
    if (rv != CKR_OK) {
        man_free(m);
    }
    return rv;
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
    rv = man_decode(store, buf, len, &m, &why);
    if (rv == CKR_OK && entries != NULL) {
        *entries = m.n;
    }
    man_free(&m);
    return rv;
}

static CK_RV man_encode(struct akv_store *store, const struct manifest *m,
                        uint8_t **out, size_t *out_len)
{
    size_t len = STORE_MAGIC_LEN + 4 + STORE_MAC_LEN;
    uint8_t *buf = NULL, *p = NULL;

    for (size_t i = 0; i < m->n; i++) {
        len += 1 + strlen(m->e[i].id) + 1 + 8 + 8
               + ((m->e[i].flags & MAN_HAS_HASH) ? 32 : 0);
    }
    buf = malloc(len);
    if (buf == NULL) {
        return CKR_HOST_MEMORY;
    }
    p = buf;
    memcpy(p, STORE_MAN_MAGIC, STORE_MAGIC_LEN);
    p += STORE_MAGIC_LEN;
    put_le32(p, (uint32_t)m->n);
    p += 4;
    for (size_t i = 0; i < m->n; i++) {
        const struct man_entry *e = &m->e[i];
        size_t id_len = strlen(e->id);
        *p++ = (uint8_t)id_len;
        memcpy(p, e->id, id_len);
        p += id_len;
        *p++ = (uint8_t)e->flags;
        put_le64(p, e->cur);
        put_le64(p + 8, e->pending);
        p += 16;
        if ((e->flags & MAN_HAS_HASH) != 0) {
            memcpy(p, e->hash, 32);
            p += 32;
        }
    }
    if (mac(store, 1, buf, (size_t)(p - buf), p) != 0) {
        free(buf);
        return CKR_GENERAL_ERROR;
    }
    *out = buf;
    *out_len = len;
    return CKR_OK;
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
    rv = man_decode(store, buf, len, m, &why);
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
    const struct man_entry *e = man_find((struct manifest *)m, rec->id);

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

    snprintf(name, sizeof(name), "%s%s", id, STORE_SUFFIX);
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
    snprintf(tmp, sizeof(tmp), ".%.40s%s%ld.%.8s", name, STORE_TMP_TAG,
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
    CK_RV rv = man_encode(store, m, &buf, &len);

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
    if (store == NULL || !record2_valid(rec)) {
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
    rv = encode2(store, rec, &buf, &len);
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
    e = man_find(&m, rec->id);
    if (e != NULL && e->pending != 0) {
        settle_locked(store, &m, e);
    }
    if (e == NULL) {
        e = man_add(&m, rec->id);
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

        snprintf(name, sizeof(name), "%s%s", rec->id, STORE_SUFFIX);
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
    man_free(&m);
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

    if (store == NULL || out == NULL || !id_valid(id)) {
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
    man_free(&m);
    return rv;
}

CK_RV akv_store_delete(struct akv_store *store, const char *id)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    char name[AKV_STORE_ID_LEN + sizeof(STORE_SUFFIX)];
    int lfd = -1;
    struct manifest m = {NULL, 0, 0};

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
    /* The entry goes first: killed before the unlink, the file is then
     * refused (it was being deleted), never resurrected later. */
    rv = man_load(store, &m);
    if (rv != CKR_OK) {
        goto out;
    }
    if (man_find(&m, id) != NULL) {
        man_remove(&m, id);
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
    man_free(&m);
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
    man_free(&m);
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

/* "AKVKEY2\n" | u16 kid_len | kid | u16 alg_len | alg | u32 wrapped_len |
 * wrapped | u32 crc32. Not MAC'd: S cannot be checked before it is
 * unwrapped; a replaced .storekey makes the manifest fail instead. */
#define STORE_KEY_FILE_MAX                                                     \
    (STORE_MAGIC_LEN + 2 + STORE_KID_MAX + 2 + STORE_ALG_MAX + 4               \
     + STORE_WRAPPED_MAX + 4)

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
    struct cursor c;
    const uint8_t *f = NULL, *kid = NULL, *alg = NULL, *wr = NULL;
    uint16_t kid_len = 0, alg_len = 0;
    uint32_t wr_len = 0;

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
    rv = CKR_DEVICE_ERROR;
    c.p = buf;
    c.left = len >= 4 ? len - 4 : 0;
    if (len < STORE_MAGIC_LEN + 12
        || crc32_update(0, buf, len - 4) != get_le32(buf + len - 4)
        || !take(&c, STORE_MAGIC_LEN, &f)
        || memcmp(f, STORE_KEY_MAGIC, STORE_MAGIC_LEN) != 0 || !take(&c, 2, &f)
        || (kid_len = get_le16(f)) > STORE_KID_MAX || !take(&c, kid_len, &kid)
        || !text_valid(kid, kid_len, STORE_KID_MAX) || !take(&c, 2, &f)
        || (alg_len = get_le16(f)) > STORE_ALG_MAX || !take(&c, alg_len, &alg)
        || !text_valid(alg, alg_len, STORE_ALG_MAX) || !take(&c, 4, &f)
        || (wr_len = get_le32(f)) == 0 || wr_len > STORE_WRAPPED_MAX
        || !take(&c, wr_len, &wr) || c.left != 0) {
        AKV_LOG_ERR("store %s: %s is corrupt (%zu bytes)", store->dir,
                    STORE_KEY_NAME, len);
        goto out;
    }
    out->kid = dup_text(kid, kid_len);
    out->alg = dup_text(alg, alg_len);
    out->wrapped = malloc(wr_len);
    if (out->kid == NULL || out->alg == NULL || out->wrapped == NULL) {
        akv_store_key_clear(out);
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    memcpy(out->wrapped, wr, wr_len);
    out->wrapped_len = wr_len;
    rv = CKR_OK;
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
        if (decode(buf, len, &r, &why) == CKR_OK) {
            e = man_add(m, id);
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
    uint8_t *buf = NULL, *p = NULL;
    size_t kid_len = 0, alg_len = 0, blen = 0;

    if (store == NULL || key == NULL || key->kid == NULL || key->alg == NULL
        || key->wrapped == NULL || key->wrapped_len == 0
        || key->wrapped_len > STORE_WRAPPED_MAX || s == NULL
        || len != AKV_STORE_SECRET_LEN
        || !text_valid((const uint8_t *)key->kid, strlen(key->kid),
                       STORE_KID_MAX)
        || !text_valid((const uint8_t *)key->alg, strlen(key->alg),
                       STORE_ALG_MAX)) {
        return CKR_ARGUMENTS_BAD;
    }
    kid_len = strlen(key->kid);
    alg_len = strlen(key->alg);
    blen =
        STORE_MAGIC_LEN + 2 + kid_len + 2 + alg_len + 4 + key->wrapped_len + 4;
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
    buf = malloc(blen);
    if (buf == NULL) {
        rv = CKR_HOST_MEMORY;
        goto fail;
    }
    p = buf;
    memcpy(p, STORE_KEY_MAGIC, STORE_MAGIC_LEN);
    p += STORE_MAGIC_LEN;
    put_le16(p, (uint16_t)kid_len);
    memcpy(p + 2, key->kid, kid_len);
    p += 2 + kid_len;
    put_le16(p, (uint16_t)alg_len);
    memcpy(p + 2, key->alg, alg_len);
    p += 2 + alg_len;
    put_le32(p, (uint32_t)key->wrapped_len);
    memcpy(p + 4, key->wrapped, key->wrapped_len);
    p += 4 + key->wrapped_len;
    put_le32(p, crc32_update(0, buf, (size_t)(p - buf)));
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
    man_free(&m);
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
