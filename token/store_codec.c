/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Byte formats of the object store (store_codec.h, docs/STORE.md): records
 * v1 and v2, .storekey, and the primitives the manifest format shares. No
 * I/O and no store handle: buffers in, buffers or parsed structs out.
 *
 * Everything decoded here is untrusted: each length is checked against its
 * limit and against the bytes that remain before it is used.
 */
#include "store_codec.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../common/ossl.h"
#include "../common/secret.h"

#define STORE_MAGIC     "AKVOBJ1\n"
#define STORE_MAGIC2    "AKVOBJ2\n"
#define STORE_KEY_MAGIC "AKVKEY2\n"

/* CRC-32 (IEEE 802.3, zlib's) over LEN bytes; zlib takes uInt lengths and
 * records are bounded far below 4 GiB. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t len)
{
    return (uint32_t)crc32((uLong)crc, p, (uInt)len);
}

/* Ids become file names: only [0-9A-Za-z_-], 1..AKV_STORE_ID_LEN chars, so
 * no "/", "..", hidden or temp name can be formed from one. */
bool akv_store_codec_id_valid(const char *id)
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
bool akv_store_codec_text_valid(const uint8_t *p, size_t len, size_t max)
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

bool akv_store_codec_record_valid(const struct akv_store_record *rec)
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
    return akv_store_codec_text_valid((const uint8_t *)rec->kid,
                                      strlen(rec->kid), STORE_KID_MAX)
           && akv_store_codec_text_valid((const uint8_t *)rec->alg,
                                         strlen(rec->alg), STORE_ALG_MAX);
}

bool akv_store_codec_record2_valid(const struct akv_store_record *rec)
{
    return akv_store_codec_record_valid(rec) && rec->generation != 0
           && rec->sealed != NULL && rec->sealed_len > 0
           && rec->sealed_len <= AKV_STORE_SEALED_MAX;
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

/* The fields of a record image both formats share (docs/STORE.md "Record
 * format, version 2" and "version 1"), pointing into the image. */
struct fields {
    const uint8_t *attrs, *kid, *alg, *wrapped, *sealed; /* sealed: v2 */
    uint32_t attrs_len, wrapped_len, sealed_len;
    uint16_t kid_len, alg_len;
};

/* Takes attrs, kid, alg and wrapped from C into X; false with *WHY naming
 * the first field out of its limits or past the end. */
static bool take_shared(struct cursor *c, struct fields *x, const char **why)
{
    const uint8_t *f = NULL;

    if (!take(c, 4, &f) || (x->attrs_len = get_le32(f)) > STORE_ATTRS_MAX
        || !take(c, x->attrs_len, &x->attrs)) {
        *why = "bad attrs length";
        return false;
    }
    if (!take(c, 2, &f) || (x->kid_len = get_le16(f)) > STORE_KID_MAX
        || !take(c, x->kid_len, &x->kid)
        || !akv_store_codec_text_valid(x->kid, x->kid_len, STORE_KID_MAX)) {
        *why = "bad kid";
        return false;
    }
    if (!take(c, 2, &f) || (x->alg_len = get_le16(f)) > STORE_ALG_MAX
        || !take(c, x->alg_len, &x->alg)
        || !akv_store_codec_text_valid(x->alg, x->alg_len, STORE_ALG_MAX)) {
        *why = "bad alg";
        return false;
    }
    if (!take(c, 4, &f) || (x->wrapped_len = get_le32(f)) > STORE_WRAPPED_MAX
        || x->wrapped_len == 0 || !take(c, x->wrapped_len, &x->wrapped)) {
        *why = "bad wrapped length";
        return false;
    }
    return true;
}

/* Copies X into O as malloc'd fields (sealed only when X has one).
 * CKR_OK, or CKR_HOST_MEMORY with O cleared. */
static CK_RV copy_out(const struct fields *x, struct akv_store_record *o)
{
    o->attrs = malloc(x->attrs_len > 0 ? x->attrs_len : 1);
    o->kid = dup_text(x->kid, x->kid_len);
    o->alg = dup_text(x->alg, x->alg_len);
    o->wrapped = malloc(x->wrapped_len);
    if (x->sealed != NULL) {
        o->sealed = malloc(x->sealed_len);
    }
    if (o->attrs == NULL || o->kid == NULL || o->alg == NULL
        || o->wrapped == NULL || (x->sealed != NULL && o->sealed == NULL)) {
        akv_store_record_clear(o);
        return CKR_HOST_MEMORY;
    }
    if (x->attrs_len > 0) {
        memcpy(o->attrs, x->attrs, x->attrs_len);
    }
    o->attrs_len = x->attrs_len;
    memcpy(o->wrapped, x->wrapped, x->wrapped_len);
    o->wrapped_len = x->wrapped_len;
    if (x->sealed != NULL) {
        memcpy(o->sealed, x->sealed, x->sealed_len);
        o->sealed_len = x->sealed_len;
    }
    return CKR_OK;
}

CK_RV akv_store_codec_decode1(const uint8_t *buf, size_t len,
                              struct akv_store_record *o, const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct cursor c = {buf, len};
    const uint8_t *magic = NULL;
    struct fields x;

    memset(&x, 0, sizeof(x));

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
    if (!take_shared(&c, &x, why)) {
        goto out;
    }
    if (c.left != 0) {
        *why = "trailing bytes";
        goto out;
    }
    *why = "out of memory";
    rv = copy_out(&x, o);
out:
    return rv;
}

int akv_store_codec_mac(const uint8_t key[STORE_MAC_LEN], const uint8_t *buf,
                        size_t len, uint8_t mac_out[STORE_MAC_LEN])
{
    size_t out_len = 0;

    /* In the module's private context (common/ossl.h): the host's providers
     * cannot change or break it. */
    if (EVP_Q_mac(akv_ossl_libctx(), "HMAC", NULL, "SHA256", NULL, key, 32, buf,
                  len, mac_out, STORE_MAC_LEN, &out_len)
            == NULL
        || out_len != STORE_MAC_LEN) {
        return -1;
    }
    return 0;
}

bool akv_store_codec_mac_ok(const uint8_t key[STORE_MAC_LEN],
                            const uint8_t *buf, size_t len)
{
    uint8_t m[STORE_MAC_LEN];
    bool ok =
        len >= STORE_MAC_LEN
        && akv_store_codec_mac(key, buf, len - STORE_MAC_LEN, m) == 0
        && CRYPTO_memcmp(m, buf + len - STORE_MAC_LEN, STORE_MAC_LEN) == 0;

    akv_secret_wipe(m, sizeof(m));
    return ok;
}

CK_RV akv_store_codec_encode2(const uint8_t key[STORE_MAC_LEN],
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
    if (akv_store_codec_mac(key, buf, (size_t)(p - buf), p) != 0) {
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

CK_RV akv_store_codec_open_authed(const uint8_t key[STORE_MAC_LEN],
                                  const char *magic, const uint8_t *buf,
                                  size_t len, size_t min, size_t max,
                                  const char *mac_why, struct cursor *c,
                                  const char **why)
{
    const uint8_t *f = NULL;

    if (len < min || len > max) {
        *why = "file size out of range";
        return CKR_DEVICE_ERROR;
    }
    /* The MAC first: nothing an attacker wrote is parsed further. */
    if (!akv_store_codec_mac_ok(key, buf, len)) {
        *why = mac_why;
        return CKR_SIGNATURE_INVALID;
    }
    c->p = buf;
    c->left = len - STORE_MAC_LEN;
    if (!take(c, STORE_MAGIC_LEN, &f)
        || memcmp(f, magic, STORE_MAGIC_LEN) != 0) {
        *why = "bad magic";
        return CKR_DEVICE_ERROR;
    }
    return CKR_OK;
}

/* Parses a v2 file image of record ID (akv_store_codec_decode). */
static CK_RV decode2(const uint8_t key[STORE_MAC_LEN], const char *id,
                     const uint8_t *buf, size_t len, struct akv_store_record *o,
                     const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct cursor c;
    const uint8_t *f = NULL, *rid = NULL;
    struct fields x;
    uint8_t id_len = 0;
    uint64_t gen = 0;

    memset(&x, 0, sizeof(x));
    rv = akv_store_codec_open_authed(
        key, STORE_MAGIC2, buf, len, STORE2_FIXED_LEN, STORE2_FILE_MAX,
        "HMAC mismatch: not written by this token, or edited", &c, why);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_DEVICE_ERROR;
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
    if (!take_shared(&c, &x, why)) {
        goto out;
    }
    if (!take(&c, 4, &f) || (x.sealed_len = get_le32(f)) > AKV_STORE_SEALED_MAX
        || x.sealed_len == 0 || !take(&c, x.sealed_len, &x.sealed)) {
        *why = "bad sealed length";
        goto out;
    }
    if (c.left != 0) {
        *why = "trailing bytes";
        goto out;
    }
    *why = "out of memory";
    rv = copy_out(&x, o);
    if (rv == CKR_OK) {
        o->generation = gen;
        o->format = AKV_STORE_FORMAT_V2;
    }
out:
    return rv;
}

CK_RV akv_store_codec_decode(const uint8_t key[STORE_MAC_LEN], const char *id,
                             const uint8_t *buf, size_t len,
                             struct akv_store_record *out, const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;

    memset(out, 0, sizeof(*out));
    if (len >= STORE_MAGIC_LEN
        && memcmp(buf, STORE_MAGIC2, STORE_MAGIC_LEN) == 0) {
        rv = decode2(key, id, buf, len, out, why);
    } else {
        rv = akv_store_codec_decode1(buf, len, out, why);
        if (rv == CKR_OK) {
            out->format = AKV_STORE_FORMAT_V1;
        }
    }
    if (rv == CKR_OK) {
        memcpy(out->id, id, strlen(id) + 1);
    }
    return rv;
}

/* ---- .storekey ---- */

bool akv_store_codec_key_valid(const struct akv_store_key *key)
{
    return key != NULL && key->kid != NULL && key->alg != NULL
           && key->wrapped != NULL && key->wrapped_len != 0
           && key->wrapped_len <= STORE_WRAPPED_MAX
           && akv_store_codec_text_valid((const uint8_t *)key->kid,
                                         strlen(key->kid), STORE_KID_MAX)
           && akv_store_codec_text_valid((const uint8_t *)key->alg,
                                         strlen(key->alg), STORE_ALG_MAX);
}

CK_RV akv_store_codec_key_encode(const struct akv_store_key *key, uint8_t **out,
                                 size_t *out_len)
{
    size_t kid_len = strlen(key->kid);
    size_t alg_len = strlen(key->alg);
    size_t blen =
        STORE_MAGIC_LEN + 2 + kid_len + 2 + alg_len + 4 + key->wrapped_len + 4;
    uint8_t *buf = malloc(blen);
    uint8_t *p = buf;

    if (buf == NULL) {
        return CKR_HOST_MEMORY;
    }
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
    *out = buf;
    *out_len = blen;
    return CKR_OK;
}

CK_RV akv_store_codec_key_decode(const uint8_t *buf, size_t len,
                                 struct akv_store_key *out)
{
    struct cursor c;
    const uint8_t *f = NULL, *kid = NULL, *alg = NULL, *wr = NULL;
    uint16_t kid_len = 0, alg_len = 0;
    uint32_t wr_len = 0;

    memset(out, 0, sizeof(*out));
    c.p = buf;
    c.left = len >= 4 ? len - 4 : 0;
    if (len < STORE_MAGIC_LEN + 12
        || crc32_update(0, buf, len - 4) != get_le32(buf + len - 4)
        || !take(&c, STORE_MAGIC_LEN, &f)
        || memcmp(f, STORE_KEY_MAGIC, STORE_MAGIC_LEN) != 0 || !take(&c, 2, &f)
        || (kid_len = get_le16(f)) > STORE_KID_MAX || !take(&c, kid_len, &kid)
        || !akv_store_codec_text_valid(kid, kid_len, STORE_KID_MAX)
        || !take(&c, 2, &f) || (alg_len = get_le16(f)) > STORE_ALG_MAX
        || !take(&c, alg_len, &alg)
        || !akv_store_codec_text_valid(alg, alg_len, STORE_ALG_MAX)
        || !take(&c, 4, &f) || (wr_len = get_le32(f)) == 0
        || wr_len > STORE_WRAPPED_MAX || !take(&c, wr_len, &wr)
        || c.left != 0) {
        return CKR_DEVICE_ERROR;
    }
    out->kid = dup_text(kid, kid_len);
    out->alg = dup_text(alg, alg_len);
    out->wrapped = malloc(wr_len);
    if (out->kid == NULL || out->alg == NULL || out->wrapped == NULL) {
        akv_store_key_clear(out);
        return CKR_HOST_MEMORY;
    }
    memcpy(out->wrapped, wr, wr_len);
    out->wrapped_len = wr_len;
    return CKR_OK;
}
