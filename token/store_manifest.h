/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the object store: the manifest (docs/STORE.md ".manifest"),
 * which names, per record id, the generation(s) a reader accepts. Its
 * in-memory model and its byte format; store.c reads and writes the file.
 */
#ifndef AKV_TOKEN_STORE_MANIFEST_H
#define AKV_TOKEN_STORE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "store_codec.h"

#define STORE_MAN_MAX_N 65536u /* entries */
/* u8 id_len + id + u8 flags + u64 cur + u64 pending + optional sha256 */
#define STORE_MAN_ENTRY_MAX (1 + AKV_STORE_ID_LEN + 1 + 8 + 8 + 32)
/* bytes: magic + u32 count + entries + HMAC */
#define STORE_MAN_FILE_MAX                                                     \
    (STORE_MAGIC_LEN + 4 + (size_t)STORE_MAN_MAX_N * STORE_MAN_ENTRY_MAX       \
     + STORE_MAC_LEN)
#define MAN_HAS_HASH 0x01u /* entry adopts a v1 file by its SHA-256 */

/* One manifest entry: which generation(s) of record ID a reader accepts. */
struct man_entry {
    char id[AKV_STORE_ID_LEN + 1];
    unsigned flags;   /* MAN_HAS_HASH */
    uint64_t cur;     /* accepted v2 generation; 0 = none */
    uint64_t pending; /* generation being written; 0 = none */
    uint8_t hash[32]; /* SHA-256 of an adopted v1 file */
};

/* N entries in E (capacity CAP); {NULL, 0, 0} is the empty manifest. */
struct manifest {
    struct man_entry *e;
    size_t n, cap;
};

/* Frees M's entries and leaves it empty. */
void akv_store_manifest_free(struct manifest *m);

/* The entry of ID in M, or NULL. */
struct man_entry *akv_store_manifest_find(struct manifest *m, const char *id);

/* A new zeroed entry for ID (valid, not present in M). NULL on ENOMEM or
 * when M already holds STORE_MAN_MAX_N entries. Pointers into M are
 * invalidated. */
struct man_entry *akv_store_manifest_add(struct manifest *m, const char *id);

/* Removes ID's entry from M if present (the last entry takes its place). */
void akv_store_manifest_remove(struct manifest *m, const char *id);

/*
 * Authenticates (HMAC-SHA256 under the 32-byte manifest KEY, before any
 * field is read) and parses the LEN-byte manifest image BUF into M (M is
 * overwritten; empty on failure). CKR_OK, CKR_HOST_MEMORY,
 * CKR_SIGNATURE_INVALID (HMAC mismatch), CKR_DEVICE_ERROR (size, magic,
 * count, a bad or duplicate id, unknown flags, trailing bytes). *WHY names
 * the check that failed (a static string).
 */
CK_RV akv_store_manifest_decode(const uint8_t key[STORE_MAC_LEN],
                                const uint8_t *buf, size_t len,
                                struct manifest *m, const char **why);

/*
 * Serialises M with its HMAC under the 32-byte manifest KEY. On CKR_OK
 * *OUT is a malloc'd image of *OUT_LEN bytes (at most STORE_MAN_FILE_MAX).
 * CKR_HOST_MEMORY, or CKR_GENERAL_ERROR when the HMAC fails.
 */
CK_RV akv_store_manifest_encode(const uint8_t key[STORE_MAC_LEN],
                                const struct manifest *m, uint8_t **out,
                                size_t *out_len);

#endif
