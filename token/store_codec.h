/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the object store (store.c, store_manifest.c): the byte
 * formats of docs/STORE.md. No I/O and no store handle; where a format is
 * authenticated the caller passes the 32-byte HMAC-SHA256 key (the record
 * or the manifest key derived from S, docs/STORE.md "Construction").
 * Multi-byte integers are little-endian throughout.
 */
#ifndef AKV_TOKEN_STORE_CODEC_H
#define AKV_TOKEN_STORE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_MAGIC_LEN   8   /* bytes of every file's magic */
#define STORE_MAC_LEN     32u /* bytes of an HMAC-SHA256 (and of its key) */
#define STORE_ATTRS_MAX   AKV_STORE_ATTRS_MAX /* bytes */
#define STORE_KID_MAX     511u                /* bytes, without NUL */
#define STORE_ALG_MAX     31u                 /* bytes, without NUL */
#define STORE_WRAPPED_MAX 4096u               /* bytes */
/* v1: magic + u32 + u16 + u16 + u32 + crc u32 */
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
/* The largest record file of either format (bytes). */
#define STORE_ANY_FILE_MAX                                                     \
    (STORE2_FILE_MAX > STORE_FILE_MAX ? STORE2_FILE_MAX : STORE_FILE_MAX)
/* "AKVKEY2\n" | u16 kid_len | kid | u16 alg_len | alg | u32 wrapped_len |
 * wrapped | u32 crc32. Not MAC'd: S cannot be checked before it is
 * unwrapped; a replaced .storekey makes the manifest fail instead. */
#define STORE_KEY_FILE_MAX                                                     \
    (STORE_MAGIC_LEN + 2 + STORE_KID_MAX + 2 + STORE_ALG_MAX + 4               \
     + STORE_WRAPPED_MAX + 4)

static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
           | ((uint32_t)p[3] << 24);
}

static inline uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

/* Bounded cursor over untrusted bytes. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

/* Takes the next N bytes of C into *OUT; false (C unchanged) when fewer
 * than N remain. */
static inline bool take(struct cursor *c, size_t n, const uint8_t **out)
{
    if (n > c->left) {
        return false;
    }
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

/* True when ID (NUL-terminated) is 1..AKV_STORE_ID_LEN chars of
 * [0-9A-Za-z_-]: ids become file names (docs/STORE.md "Folder layout"). */
bool akv_store_codec_id_valid(const char *id);

/* True when the LEN bytes at P are 1..MAX bytes of printable ASCII
 * (0x20..0x7e, so no NUL): kid and alg are stored counted but used as C
 * strings. */
bool akv_store_codec_text_valid(const uint8_t *p, size_t len, size_t max);

/* True when REC's kid, alg, attrs and wrapped fit the limits above (the
 * fields both formats share; id not checked). */
bool akv_store_codec_record_valid(const struct akv_store_record *rec);

/* akv_store_codec_record_valid plus the v2 fields: generation != 0 and
 * 1..AKV_STORE_SEALED_MAX bytes of sealed. */
bool akv_store_codec_record2_valid(const struct akv_store_record *rec);

/* HMAC-SHA256 (RFC 2104) under the 32-byte KEY of the LEN bytes at BUF
 * into MAC_OUT (32 bytes). Returns 0, or -1 when OpenSSL fails. */
int akv_store_codec_mac(const uint8_t key[STORE_MAC_LEN], const uint8_t *buf,
                        size_t len, uint8_t mac_out[STORE_MAC_LEN]);

/* True when the last 32 bytes of the LEN bytes at BUF are the HMAC under
 * KEY of the bytes before them (constant-time compare). */
bool akv_store_codec_mac_ok(const uint8_t key[STORE_MAC_LEN],
                            const uint8_t *buf, size_t len);

/*
 * Opens an authenticated image (the v2 record, the manifest): LEN within
 * MIN..MAX bytes, then the trailing HMAC under the 32-byte KEY checked
 * before any field, then the 8-byte MAGIC. On CKR_OK *C covers the bytes
 * after the magic up to the HMAC. CKR_DEVICE_ERROR ("file size out of
 * range", "bad magic") or CKR_SIGNATURE_INVALID (*WHY = MAC_WHY).
 */
CK_RV akv_store_codec_open_authed(const uint8_t key[STORE_MAC_LEN],
                                  const char *magic, const uint8_t *buf,
                                  size_t len, size_t min, size_t max,
                                  const char *mac_why, struct cursor *c,
                                  const char **why);

/*
 * Serialises REC (akv_store_codec_record2_valid, id valid) as a v2 record
 * file image (docs/STORE.md "Record format, version 2") ending in its
 * HMAC under the 32-byte record KEY. On CKR_OK *OUT is a malloc'd image of
 * *OUT_LEN bytes (at most STORE2_FILE_MAX) holding secret material: wipe
 * and free it. CKR_HOST_MEMORY, or CKR_GENERAL_ERROR when the HMAC fails.
 */
CK_RV akv_store_codec_encode2(const uint8_t key[STORE_MAC_LEN],
                              const struct akv_store_record *rec, uint8_t **out,
                              size_t *out_len);

/*
 * Parses the LEN-byte file image BUF of record ID (a valid id): v2 when it
 * starts with "AKVOBJ2\n" (docs/STORE.md "Record format, version 2", the
 * HMAC under the 32-byte record KEY checked before any field), otherwise
 * v1 (docs/STORE.md "Record format, version 1": CRC-32; KEY unused).
 * Zeroes *OUT first; on CKR_OK it holds malloc'd copies (free with
 * akv_store_record_clear), its id, format and, for v2, generation.
 * Returns CKR_OK, CKR_HOST_MEMORY, CKR_DEVICE_ERROR (structure: size,
 * crc, magic, a length or text field, trailing bytes) or, v2 only,
 * CKR_SIGNATURE_INVALID (HMAC mismatch, or the id inside is not ID: a
 * record copied to another name). *WHY names the check that failed (a
 * static string, for the log; never contents).
 */
CK_RV akv_store_codec_decode(const uint8_t key[STORE_MAC_LEN], const char *id,
                             const uint8_t *buf, size_t len,
                             struct akv_store_record *out, const char **why);

/*
 * Parses the LEN-byte v1 file image BUF (docs/STORE.md "Record format,
 * version 1"; CRC-32 checked before any field) into *OUT, which the caller
 * zeroed: malloc'd attrs, kid, alg and wrapped (free with
 * akv_store_record_clear); id, format, generation and sealed untouched.
 * CKR_OK, CKR_HOST_MEMORY, or CKR_DEVICE_ERROR (size, crc, magic, a length
 * or text field, trailing bytes) with *WHY naming the check.
 */
CK_RV akv_store_codec_decode1(const uint8_t *buf, size_t len,
                              struct akv_store_record *out, const char **why);

/* True when KEY's kid and alg are 1..511 and 1..31 bytes of printable
 * ASCII and its wrapped value 1..4096 bytes (docs/STORE.md ".storekey"). */
bool akv_store_codec_key_valid(const struct akv_store_key *key);

/*
 * Serialises KEY (akv_store_codec_key_valid) as a .storekey image
 * (docs/STORE.md ".storekey"). On CKR_OK *OUT is a malloc'd image of
 * *OUT_LEN bytes (at most STORE_KEY_FILE_MAX). CKR_HOST_MEMORY otherwise.
 */
CK_RV akv_store_codec_key_encode(const struct akv_store_key *key, uint8_t **out,
                                 size_t *out_len);

/*
 * Parses the LEN-byte .storekey image BUF into *OUT (zeroed first; on
 * CKR_OK malloc'd copies, free with akv_store_key_clear). CKR_OK,
 * CKR_HOST_MEMORY, or CKR_DEVICE_ERROR (size, crc, magic, a field out of
 * its limits, trailing bytes).
 */
CK_RV akv_store_codec_key_decode(const uint8_t *buf, size_t len,
                                 struct akv_store_key *out);

#endif
