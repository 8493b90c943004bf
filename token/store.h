/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The persistent store of token objects (design.md "Token objects"): one
 * file per object in store_dir, holding the object's non-secret attributes
 * (an opaque blob serialised by token/) and its value wrapped by the vault
 * key, with the versioned kid and the JOSE alg that wrapped it.
 *
 * Durability: every write is temp file (0600) + fsync + rename + fsync of the
 * folder, so a reader or a process killed at any instant sees either the old
 * or the new record, never a torn one. Concurrent processes are serialised by
 * an flock(2) on store_dir/.lock (exclusive for writes, shared for reads).
 * Stale temp files left by a killed writer are ignored and swept on open.
 *
 * File format (little-endian, version 1), documented in docs/STORE.md:
 *   "AKVOBJ1\n" | u32 attrs_len | attrs | u16 kid_len | kid | u16 alg_len |
 *   alg | u32 wrapped_len | wrapped | u32 crc32 of all preceding bytes
 */
#ifndef AKV_TOKEN_STORE_H
#define AKV_TOKEN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#define AKV_STORE_ID_LEN 32 /* hex chars of a record id (16 random bytes) */
/* The largest attribute TLV one record holds, bytes (store.c checks it on
 * write and on read; token.c refuses larger templates up front). */
#define AKV_STORE_ATTRS_MAX ((size_t)64 * 1024)

struct akv_store_record {
    char id[AKV_STORE_ID_LEN + 1]; /* file name stem; set by akv_store_put
                                      when empty */
    uint8_t *attrs;                /* opaque serialised attributes (malloc) */
    size_t attrs_len;              /* bytes */
    char *kid;                     /* versioned kid that wrapped the value */
    char *alg;                     /* JOSE alg, e.g. "RSA-OAEP-256" */
    uint8_t *wrapped;              /* wrapped value (malloc) */
    size_t wrapped_len;            /* bytes */
};

struct akv_store;

/*
 * akv_store_open - opens (creating with 0700 if missing) the store folder.
 * Returns CKR_OK, CKR_HOST_MEMORY, CKR_DEVICE_ERROR when the folder
 * cannot be created/used (logged with the path and errno text), or
 * CKR_TOKEN_WRITE_PROTECTED when the store is refused under the
 * StrictModes rules of common/fsperm.h (docs/STORE.md "Who may own the
 * store"): the folder or a folder above it, the lock file or a record is
 * owned by another user (not root) or writable by group/other (the store
 * folder itself not even with the sticky bit). The refusal is one ERROR
 * line naming the path, the rule and the fix. Later, a record or lock file
 * that breaks the file rule when it is opened is refused the same way
 * (CKR_DEVICE_ERROR for that call, the record skipped by a list).
 */
CK_RV akv_store_open(const char *dir, struct akv_store **out);

/* akv_store_close - NULL-safe. */
void akv_store_close(struct akv_store *store);

/*
 * akv_store_put - creates or atomically replaces the record REC->id (a new
 * random id is written into rec->id when it is empty). Returns CKR_OK,
 * CKR_HOST_MEMORY, CKR_ARGUMENTS_BAD (bad id/lengths), CKR_DEVICE_ERROR (I/O,
 * logged).
 */
CK_RV akv_store_put(struct akv_store *store, struct akv_store_record *rec);

/*
 * akv_store_put_if - as akv_store_put, but only when the record on disk is
 * still byte-identical to EXPECTED (compare-and-swap under the exclusive
 * lock; used by rewrap so a concurrent change is never overwritten).
 * Returns CKR_OK, CKR_FUNCTION_FAILED when the record changed or vanished,
 * or the errors of akv_store_put.
 */
CK_RV akv_store_put_if(struct akv_store *store,
                       const struct akv_store_record *expected,
                       struct akv_store_record *rec);

/*
 * akv_store_get - reads one record. Returns CKR_OK (out filled; clear with
 * akv_store_record_clear), CKR_OBJECT_HANDLE_INVALID when absent,
 * CKR_DEVICE_ERROR for an unreadable or corrupt file (logged).
 */
CK_RV akv_store_get(struct akv_store *store, const char *id,
                    struct akv_store_record *out);

/* akv_store_delete - removes a record. CKR_OK (also when already absent),
 * CKR_DEVICE_ERROR. */
CK_RV akv_store_delete(struct akv_store *store, const char *id);

/*
 * akv_store_list - loads every valid record, sorted by id. Corrupt files are
 * logged and skipped (never fatal). *out is a malloc'd array of *n records
 * (free with akv_store_records_free). Returns CKR_OK, CKR_HOST_MEMORY,
 * CKR_DEVICE_ERROR (folder unreadable).
 */
CK_RV akv_store_list(struct akv_store *store, struct akv_store_record **out,
                     size_t *n);

/*
 * akv_store_last_unreadable - how many record files (<id>.obj) the last
 * akv_store_list on STORE skipped because they could not be read or failed
 * validation (each was logged). 0 for NULL.
 */
size_t akv_store_last_unreadable(struct akv_store *store);

/*
 * akv_store_stamp - a cheap change indicator (folder mtime in ns plus entry
 * count); callers reload when it differs from the last value they saw.
 */
uint64_t akv_store_stamp(struct akv_store *store);

void akv_store_record_clear(struct akv_store_record *rec);
void akv_store_records_free(struct akv_store_record *recs, size_t n);

#endif /* AKV_TOKEN_STORE_H */
