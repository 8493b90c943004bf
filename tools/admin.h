/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The logic behind akv-pkcs11-tool, kept apart from argument parsing and
 * configuration so unit tests can drive it with a fake struct akv_kv
 * (tests/unit/store/test_rewrap.c).
 *
 * Follows: Key Vault REST 7.4 "Get Key", "Wrap Key", "Unwrap Key" through
 * keyvault/kv.h; the store format and rewrap safety argument in
 * docs/STORE.md.
 */
#ifndef AKV_TOOLS_ADMIN_H
#define AKV_TOOLS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <p11-kit/pkcs11.h>

#include "keyvault/kv.h"
#include "common/config.h"
#include "token/seal.h"
#include "token/store.h"

/*
 * akv_admin_parse_kid - splits a versioned key identifier
 * "http[s]://HOST[:PORT]/keys/NAME/VERSION" (keyvault-protocol.md §1.2).
 * name: AKV_KV_NAME_MAX bytes, receives NAME (1..127 of [0-9A-Za-z-]);
 * version: AKV_KV_VERSION_MAX bytes, receives VERSION lower-cased
 * (1..64 of [0-9A-Za-z]). Returns CKR_OK, or CKR_ARGUMENTS_BAD for anything
 * else (no version, extra segments, query string, bad characters); the
 * outputs are then empty strings.
 */
CK_RV akv_admin_parse_kid(const char *kid, char *name, char *version);

struct akv_rewrap_opts {
    FILE *out; /* one line per record + summary; NULL = silent */
    /* Test hook (docs/STORE.md): raise SIGKILL on ourselves after this many
     * successful record writes; 0 = never. */
    long kill_after_writes;
    /* OUT gets failure lines only; the caller prints the summary. */
    bool failures_only;
    /* A terminal (akv-pkcs11-tool: stdout when isatty): after each record
     * one "\r"-updated line "LABEL: I/N records: rewrapped A, already
     * current B, failed C", erased ("\r" + ESC [K) before any other output
     * and at the end. NULL = none. */
    FILE *progress;
    const char *progress_label; /* shown in the progress line */
};

struct akv_rewrap_stats {
    size_t rewrapped; /* written under the target version */
    size_t current;   /* already under the target version */
    size_t failed;    /* could not be rewrapped (logged and printed) */
    size_t vanished;  /* deleted by another process meanwhile */
};

/*
 * akv_admin_target - GETs each configured key (KEYS, N entries; a pinned
 * version is honoured) and applies the one sealing rule (akv_seal_choose)
 * the module applies too. Returns CKR_OK (OUT filled), the first kv error
 * when no key is usable because a GET failed, CKR_TEMPLATE_INCONSISTENT
 * (no RSA or oct-HSM key), CKR_ARGUMENTS_BAD, CKR_HOST_MEMORY.
 */
CK_RV akv_admin_target(struct akv_kv *kv, const struct akv_key_config *keys,
                       size_t n, struct akv_seal_target *out);

/*
 * akv_admin_rewrap - loads the store secret (creating it and adopting the
 * legacy records on a store's first use, akv_seal_ready), then reseals
 * every record of STORE that is not format 2 under TARGET
 * (akv_seal_is_current): open with the record's own kid and alg, seal anew
 * under TARGET with BINDING (the token's vault URL), write with
 * akv_store_put_if so a record changed by another process in between is
 * never overwritten (re-read and retried once, then counted as failed).
 * Plaintexts are wiped. Returns CKR_OK when every record was processed
 * (even if some failed: see stats), CKR_ARGUMENTS_BAD, CKR_HOST_MEMORY,
 * the errors of akv_seal_ready or of akv_store_list.
 */
CK_RV akv_admin_rewrap(struct akv_kv *kv, struct akv_store *store,
                       const char *binding,
                       const struct akv_seal_target *target,
                       const struct akv_rewrap_opts *opts,
                       struct akv_rewrap_stats *stats);

/* One row of akv_admin_tally: records wrapped under NAME/VERSION. */
struct akv_tally_row {
    char name[AKV_KV_NAME_MAX];
    char version[AKV_KV_VERSION_MAX]; /* "" for an unparsable kid */
    size_t count;
};

/*
 * akv_admin_tally - groups RECS by the key name and version of their kid.
 * *rows: malloc'd array of *n_rows rows sorted by name then version (caller
 * frees). Returns CKR_OK or CKR_HOST_MEMORY.
 */
CK_RV akv_admin_tally(const struct akv_store_record *recs, size_t n,
                      struct akv_tally_row **rows, size_t *n_rows);

struct akv_probe {
    bool get_ok;           /* GET key succeeded */
    bool wrap_ok;          /* wrapKey of 32 random bytes succeeded */
    bool unwrap_ok;        /* unwrapKey gave the same 32 bytes back */
    CK_RV rv;              /* CKR_OK, or the first failing step's error */
    const char *step;      /* "get", "wrapKey", "unwrapKey" or NULL */
    const char *alg;       /* algorithm used for the probe, or NULL */
    struct akv_kv_key key; /* filled when get_ok (caller clears it) */
};

/*
 * akv_admin_probe - checks that the identity can use key NAME (VERSION
 * pinned, or NULL/"" for the current one) right now: get, wrap 32 random
 * bytes (RSA-OAEP-256 for RSA keys, A128KW/A192KW/A256KW for oct-HSM),
 * unwrap with the version that wrapped, compare (CRYPTO_memcmp). Steps after
 * a failure are not attempted. Returns out->rv: CKR_OK when all three
 * succeed; the kv.h error of the failing step; CKR_FUNCTION_FAILED when the
 * unwrapped bytes differ; CKR_KEY_TYPE_INCONSISTENT for a key type that
 * cannot wrap. The caller clears out->key (akv_kv_key_clear).
 */
CK_RV akv_admin_probe(struct akv_kv *kv, const char *name, const char *version,
                      struct akv_probe *out);

/*
 * akv_admin_catalog - the versions of key NAME listed in the token's version
 * catalog STORE_DIR/.versions (token/rotate.c: a magic line, then one
 * "NAME VERSION" line per version seen; hints only, never trusted), in file
 * order, without duplicates, into OUT (at most MAX entries). A missing
 * catalog or STORE_DIR NULL gives 0. Returns the number of entries.
 */
size_t akv_admin_catalog(const char *store_dir, const char *name,
                         char (*out)[AKV_KV_VERSION_MAX], size_t max);

/* akv_admin_rv_name - "CKR_OK", "CKR_DEVICE_ERROR", ... for messages. */
const char *akv_admin_rv_name(CK_RV rv);

#endif /* AKV_TOOLS_ADMIN_H */
