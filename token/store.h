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
 * Authentication (docs/STORE.md "Authentication"): every record written is
 * format 2, carrying HMAC-SHA256 under a key derived (HKDF, RFC 5869) from
 * the store secret S; store_dir/.manifest, HMAC'd under S too, names every
 * record and the generation(s) a reader may accept, so a planted, edited,
 * truncated or rolled-back record is refused. S itself lives in
 * store_dir/.storekey wrapped by the vault key; the store layer never calls
 * the vault: token/seal.c unwraps S and hands it over with
 * akv_store_set_secret. Until then every record operation fails.
 *
 * File formats (little-endian), documented in docs/STORE.md:
 *   v1 (read only): "AKVOBJ1\n" | u32 attrs_len | attrs | u16 kid_len | kid |
 *     u16 alg_len | alg | u32 wrapped_len | wrapped | u32 crc32
 *   v2: "AKVOBJ2\n" | u8 id_len | id | u64 generation | u32 attrs_len | attrs
 *     | u16 kid_len | kid | u16 alg_len | alg | u32 wrapped_len | wrapped |
 *     u32 sealed_len | sealed | HMAC-SHA256 (32) of all preceding bytes
 */
#ifndef AKV_TOKEN_STORE_H
#define AKV_TOKEN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#define AKV_STORE_ID_LEN 32 /* hex chars of a record id (16 random bytes) */
/* The largest attribute TLV one record holds, bytes (store.c checks it on
 * write and on read; token.c refuses larger templates up front). */
#define AKV_STORE_ATTRS_MAX  ((size_t)64 * 1024)
#define AKV_STORE_SEALED_MAX 2048u /* bytes of a v2 record's sealed value */
#define AKV_STORE_SECRET_LEN 32u   /* bytes of the store secret S */

#define AKV_STORE_FORMAT_V1  1u /* legacy: value wrapped by the vault key */
#define AKV_STORE_FORMAT_V2  2u /* value sealed (token/seal.h) */

struct akv_store_record {
    char id[AKV_STORE_ID_LEN + 1]; /* file name stem; set by akv_store_put
                                      when empty */
    unsigned format;     /* AKV_STORE_FORMAT_*, set by readers; put always
                            writes V2 */
    uint64_t generation; /* V2: nonzero, unique per write (chosen by the
                            sealer, who binds it into the AEAD) */
    uint8_t *attrs;      /* opaque serialised attributes (malloc) */
    size_t attrs_len;    /* bytes */
    char *kid;           /* versioned kid that wrapped the value (V1) or
                            the record key (V2) */
    char *alg;           /* JOSE alg, e.g. "RSA-OAEP-256" */
    uint8_t *wrapped;    /* V1: wrapped value; V2: wrapped record key */
    size_t wrapped_len;  /* bytes */
    uint8_t *sealed;     /* V2: AEAD nonce | ciphertext | tag (malloc) */
    size_t sealed_len;   /* bytes; 0 for V1 */
};

/* The content of store_dir/.storekey: S wrapped by the vault key. */
struct akv_store_key {
    char *kid;          /* versioned kid that wrapped S */
    char *alg;          /* JOSE alg */
    uint8_t *wrapped;   /* wrapped S (malloc) */
    size_t wrapped_len; /* bytes */
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

/* akv_store_close - NULL-safe. Wipes the keys derived from S. */
void akv_store_close(struct akv_store *store);

/*
 * akv_store_set_secret - gives the store its secret S (LEN must be
 * AKV_STORE_SECRET_LEN); the record and manifest MAC keys are derived from
 * it (HKDF-SHA256, RFC 5869) and S is not kept. Set once: a later call with
 * another S is refused. Returns CKR_OK, CKR_ARGUMENTS_BAD, CKR_HOST_MEMORY,
 * CKR_FUNCTION_FAILED (a different secret is already set).
 */
CK_RV akv_store_set_secret(struct akv_store *store, const uint8_t *s,
                           size_t len);

/* akv_store_has_secret - true once akv_store_set_secret succeeded. */
bool akv_store_has_secret(struct akv_store *store);

/*
 * akv_store_key_get - reads store_dir/.storekey. Returns CKR_OK (out filled;
 * clear with akv_store_key_clear), CKR_OBJECT_HANDLE_INVALID when absent
 * (a store never used by format 2), CKR_DEVICE_ERROR when unreadable or
 * corrupt (logged), CKR_HOST_MEMORY.
 */
CK_RV akv_store_key_get(struct akv_store *store, struct akv_store_key *out);

/*
 * akv_store_key_create - first use of a store: under the exclusive lock,
 * and only if .storekey is still absent, adopts every legacy v1 record
 * present now into a new manifest by the SHA-256 of its file (trust on
 * first use), writes the manifest (HMAC'd under S), then .storekey (KEY),
 * and sets S as by akv_store_set_secret. Returns CKR_OK,
 * CKR_FUNCTION_FAILED when another process created .storekey meanwhile
 * (read it instead), CKR_ARGUMENTS_BAD, CKR_HOST_MEMORY, CKR_DEVICE_ERROR.
 */
CK_RV akv_store_key_create(struct akv_store *store,
                           const struct akv_store_key *key, const uint8_t *s,
                           size_t len);

/*
 * akv_store_unused - true when the store has neither .storekey nor any
 * record file: nothing to authenticate, so a reader need not create the
 * store secret (no vault call for a token that never stores objects).
 */
bool akv_store_unused(struct akv_store *store);

/* akv_store_key_clear - frees KEY's buffers. NULL-safe. */
void akv_store_key_clear(struct akv_store_key *key);

/*
 * akv_store_put - creates or atomically replaces the record REC->id (a new
 * random id is written into rec->id when it is empty) as a format-2 record
 * (rec->generation nonzero, rec->sealed set). Crash-safe order under the
 * exclusive lock: manifest entry gets the pending generation, record
 * renamed into place, entry gets it as current. Returns CKR_OK,
 * CKR_HOST_MEMORY, CKR_ARGUMENTS_BAD (bad id/lengths), CKR_GENERAL_ERROR (no
 * secret set), CKR_DEVICE_ERROR (I/O or a manifest that fails
 * authentication, logged).
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
 * akv_store_get - reads one record and authenticates it (v2: HMAC and a
 * generation the manifest names; v1: the file's SHA-256 in the manifest).
 * Returns CKR_OK (out filled; clear with akv_store_record_clear),
 * CKR_OBJECT_HANDLE_INVALID when absent, CKR_DEVICE_ERROR for an
 * unreadable, corrupt or refused file (logged), CKR_GENERAL_ERROR when no
 * secret is set.
 */
CK_RV akv_store_get(struct akv_store *store, const char *id,
                    struct akv_store_record *out);

/* akv_store_delete - removes a record: manifest entry first, then the
 * file. CKR_OK (also when already absent), CKR_DEVICE_ERROR,
 * CKR_GENERAL_ERROR (no secret set). */
CK_RV akv_store_delete(struct akv_store *store, const char *id);

/*
 * akv_store_list - loads every valid, authenticated record, sorted by id.
 * Corrupt and refused files are logged and skipped (never fatal). *out is a
 * malloc'd array of *n records (free with akv_store_records_free). Returns
 * CKR_OK, CKR_HOST_MEMORY, CKR_DEVICE_ERROR (folder unreadable).
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
 * akv_store_last_refused - how many of those were refused because they
 * failed authentication (planted, edited, rolled back, not in the
 * manifest). 0 for NULL.
 */
size_t akv_store_last_refused(struct akv_store *store);

/*
 * akv_store_parse - the record reader alone (for the fuzzer and tests):
 * parses the file image BUF (LEN bytes) of record ID and, for v2, checks
 * its HMAC with STORE's key and that the id inside is ID. Does not consult
 * the manifest. Returns CKR_OK (out filled), CKR_HOST_MEMORY,
 * CKR_DEVICE_ERROR (corrupt; *why says which check), CKR_SIGNATURE_INVALID
 * (v2 HMAC or id mismatch), CKR_GENERAL_ERROR (no secret set).
 */
CK_RV akv_store_parse(struct akv_store *store, const char *id,
                      const uint8_t *buf, size_t len,
                      struct akv_store_record *out, const char **why);

/*
 * akv_store_manifest_check - parses and authenticates a manifest image (for
 * the fuzzer and tests). Returns CKR_OK and the entry count, CKR_DEVICE_ERROR
 * (corrupt), CKR_SIGNATURE_INVALID (bad HMAC), CKR_HOST_MEMORY,
 * CKR_GENERAL_ERROR (no secret set).
 */
CK_RV akv_store_manifest_check(struct akv_store *store, const uint8_t *buf,
                               size_t len, size_t *entries);

/*
 * akv_store_stamp - a cheap change indicator (folder mtime in ns plus entry
 * count); callers reload when it differs from the last value they saw.
 */
uint64_t akv_store_stamp(struct akv_store *store);

/* akv_store_new_id - a fresh random record id (32 lower-case hex digits).
 * CKR_OK or CKR_DEVICE_ERROR (getrandom failed). */
CK_RV akv_store_new_id(char id[AKV_STORE_ID_LEN + 1]);

/* akv_store_record_copy - deep copy of SRC into DST (DST's old content is
 * not freed). CKR_OK or CKR_HOST_MEMORY (DST then empty). */
CK_RV akv_store_record_copy(struct akv_store_record *dst,
                            const struct akv_store_record *src);

void akv_store_record_clear(struct akv_store_record *rec);
void akv_store_records_free(struct akv_store_record *recs, size_t n);

#endif /* AKV_TOKEN_STORE_H */
