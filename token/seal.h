/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one sealing component for stored token-object values (docs/STORE.md
 * "Authentication"), used by the token (token.c) and by akv-pkcs11-tool
 * (tools/admin.c).
 *
 * Construction: KMS envelope AEAD, as Google Tink's KmsEnvelopeAead. Each
 * write draws a fresh 32-byte record key R and seals the value with
 * AES-256-GCM (NIST SP 800-38D; 12-byte random nonce, 16-byte tag) under R;
 * R is wrapped by the vault key (Key Vault "Wrap Key") and the associated
 * data binds, in one canonical encoding (akv_seal_ad): the format version,
 * the token (its vault URL), the record id, the generation, the attribute
 * blob, the kid and alg that wrapped R, and wrapped R. Every use unwraps R
 * through the vault ("Unwrap Key"), so revoking the vault key stops every
 * use; any change to an attribute, or a value moved to another record or
 * token, fails the GCM tag before the value or an attribute is trusted.
 *
 * The store secret S (store_dir/.storekey, wrapped by the vault key) keys
 * the record HMACs and the manifest (token/store.h); akv_seal_ready loads
 * or creates it.
 */
#ifndef AKV_TOKEN_SEAL_H
#define AKV_TOKEN_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "../common/secret.h"
#include "../keyvault/kv.h"
#include "store.h"

#define AKV_SEAL_KEY_LEN   32u /* bytes of R */
#define AKV_SEAL_NONCE_LEN 12u
#define AKV_SEAL_TAG_LEN   16u

/* One configured vault key as its owner knows it now. */
struct akv_seal_cand {
    const char *name;    /* configured key name */
    const char *version; /* current version, "" or NULL when never fetched */
    const char *kid;     /* its versioned kid */
    enum akv_kv_kty kty;
};

/* The vault key version and alg that wrap new record keys and S. */
struct akv_seal_target {
    char name[AKV_KV_NAME_MAX];
    char version[AKV_KV_VERSION_MAX];
    char kid[AKV_KV_KID_MAX];
    enum akv_kv_alg alg;
};

struct akv_seal_ctx {
    struct akv_kv *kv;       /* not owned */
    struct akv_store *store; /* not owned */
    const char *binding;     /* the token's vault URL (token binding) */
    /*
     * Optional ("wrap": "local"): wraps IN (IN_LEN bytes) with T's public
     * key exactly as Key Vault wrapKey would (RSAES-OAEP, RFC 8017 §7.1),
     * *out malloc'd (*out_len bytes). Any error falls back to the vault's
     * wrapKey. NULL = always the vault (akv-pkcs11-tool). The value is still
     * opened only through the vault's unwrapKey.
     */
    CK_RV(*local_wrap)
    (void *arg, const struct akv_seal_target *t, const uint8_t *in,
     size_t in_len, uint8_t **out, size_t *out_len);
    void *local_arg;
};

/*
 * akv_seal_choose - THE rule for which key seals: the current version of
 * the first RSA key among C (config order) with RSA-OAEP-256; else the
 * first oct-HSM key with CKM_AES_KEY_WRAP_PAD (RFC 5649). Candidates never
 * fetched are skipped. Returns CKR_OK (OUT filled) or
 * CKR_TEMPLATE_INCONSISTENT (no usable key).
 */
CK_RV akv_seal_choose(const struct akv_seal_cand *c, size_t n,
                      struct akv_seal_target *out);

/*
 * akv_seal_ready - makes sure the store has its secret S: nothing when
 * already loaded; else reads .storekey and unwraps S with the kid and alg
 * written there (one vault call per process); else (a store never used by
 * format 2) draws S, wraps it with T, has the vault unwrap it back (a
 * wrap the vault cannot open - a hostile answer, a local wrap with a public
 * key that is not the vault's - is CKR_DEVICE_ERROR and creates nothing;
 * other unwrap errors, e.g. revoked, are returned as they are)
 * and creates .storekey, adopting the
 * legacy records present (akv_store_key_create). T may be NULL when the
 * caller cannot name a key (creation then fails). Returns CKR_OK, the kv
 * errors of unwrap/wrap (CKR_KEY_FUNCTION_NOT_PERMITTED when revoked, ...),
 * CKR_TEMPLATE_INCONSISTENT (no T to create with), CKR_DEVICE_ERROR
 * (.storekey unreadable or not 32 bytes once unwrapped), CKR_HOST_MEMORY.
 */
CK_RV akv_seal_ready(const struct akv_seal_ctx *c,
                     const struct akv_seal_target *t);

/*
 * akv_seal_seal - seals VALUE (LEN bytes, 1..AKV_STORE_SEALED_MAX-28) into
 * REC as a format-2 record under target T: draws a generation and R, wraps
 * R (Key Vault wrapKey, kid checked to name T's key and version), fills
 * rec->kid/alg/wrapped/sealed/generation/format. rec->attrs must be set;
 * rec->id is given a new random id when empty. Returns CKR_OK, kv errors,
 * CKR_ARGUMENTS_BAD, CKR_HOST_MEMORY, CKR_DEVICE_ERROR (wrapKey answered
 * with another kid; crypto failure). On failure REC's fields it set are
 * freed.
 */
CK_RV akv_seal_seal(const struct akv_seal_ctx *c,
                    const struct akv_seal_target *t,
                    struct akv_store_record *rec, const uint8_t *value,
                    size_t len);

/*
 * akv_seal_open - the value of REC (as read from the store, so already
 * authenticated by HMAC or legacy hash) into OUT: format 2: unwrap R with
 * rec->kid/alg, then AES-256-GCM open with the associated data; format 1:
 * unwrap the value itself. Returns CKR_OK, the kv errors of unwrap,
 * CKR_KEY_HANDLE_INVALID (unusable kid/alg), CKR_DEVICE_ERROR (the AEAD
 * fails: the record was altered, moved to another record or token;
 * logged), CKR_HOST_MEMORY.
 */
CK_RV akv_seal_open(const struct akv_seal_ctx *c,
                    const struct akv_store_record *rec, struct akv_secret *out);

/*
 * akv_seal_reseal - OLD's value sealed again into OUT (a fresh record with
 * OLD's id) under T, with ATTRS/ATTRS_LEN as the attribute blob (NULL =
 * OLD's). Used for attribute changes, rewrap and the move of legacy
 * records to format 2. Errors of akv_seal_open and akv_seal_seal.
 */
CK_RV akv_seal_reseal(const struct akv_seal_ctx *c,
                      const struct akv_seal_target *t,
                      const struct akv_store_record *old, const uint8_t *attrs,
                      size_t attrs_len, struct akv_store_record *out);

/*
 * akv_seal_is_current - true when REC is format 2 and sealed under T's key
 * name and version (case-insensitive, as Key Vault identifiers) with T's
 * alg: nothing for rewrap to do.
 */
bool akv_seal_is_current(const struct akv_store_record *rec,
                         const struct akv_seal_target *t);

/*
 * akv_seal_kid_split - "https://host[:port]/keys/NAME/VERSION" -> NAME,
 * VERSION by the one kid rule of common/kvid.h (used by the token, the
 * version catalog and akv-pkcs11-tool)
 * (buffers of AKV_KV_NAME_MAX / AKV_KV_VERSION_MAX bytes). false for any
 * other shape.
 */
bool akv_seal_kid_split(const char *kid, char *name, char *version);

/*
 * akv_seal_ad - the canonical associated data (docs/STORE.md): each field
 * as u32 little-endian length + bytes: "akv-pkcs11 sealed value", u32
 * format 2, binding, id, u64 generation, attrs, kid, alg, wrapped R.
 * *out malloc'd (*out_len bytes). CKR_OK or CKR_HOST_MEMORY.
 */
CK_RV akv_seal_ad(const char *binding, const struct akv_store_record *rec,
                  uint8_t **out, size_t *out_len);

#endif /* AKV_TOKEN_SEAL_H */
