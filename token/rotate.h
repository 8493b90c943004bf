/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rotation that label-only consumers never notice.
 *
 * OCI image tooling (ocicrypt's PKCS#11 scheme) and libp11 name a vault key
 * by label only, so they always reach the object of the key's CURRENT
 * version. Key Vault's customer-managed-key rule is "the latest version
 * encrypts, the stored version decrypts": after a rotation, data made under
 * an older version reaches the current version's object. When Key Vault
 * answers that such an OAEP decryption failed (400 BadParameter ->
 * CKR_WRAPPED_KEY_INVALID), the token tries the other versions of the same
 * key that it knows, newest first, and returns the first success.
 *
 * Which versions the token knows (without the `list` permission, which the
 * least-privilege identity lacks): every version in the object table (the
 * current version at each refresh, pinned versions, versions named by a
 * CKA_ID search), the versions whose kids wrapped stored objects, and the
 * version catalog in store_dir (`.versions`, written whenever a new version
 * is seen, so a process that starts after a rotation still knows the old
 * version). Catalog entries are hints, never trusted as such: each is
 * confirmed by Key Vault "Get Key" (GET /keys/{name}/{version}: the version
 * exists, is enabled, is RSA with a modulus as long as the ciphertext)
 * before it is tried, and RSA-OAEP's integrity check means a wrong version
 * can only fail, never "succeed" (docs/SECURITY.md "Rotation fallback").
 *
 * Never for RSA1_5 (CKM_RSA_PKCS): PKCS#1 v1.5 decryption under a wrong key
 * can pass its padding check and return garbage.
 */
#ifndef AKV_TOKEN_ROTATE_H
#define AKV_TOKEN_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "../common/secret.h"
#include "../keyvault/kv.h"

struct akv_token;

/* Bound on remembered versions per token (catalog and memory). */
#define AKV_ROTATE_SEEN_MAX 256
/* The catalog file is compacted when it grows past this many bytes. */
#define AKV_ROTATE_CATALOG_MAX ((size_t)64 * 1024)

/*
 * akv_rotate_unwrap - the vault RSA private-key operation behind
 * C_UnwrapKey and C_Decrypt (Key Vault "Unwrap Key") on version BOUND of a
 * key, with the rotation fallback described above.
 *   bound: the key version the handle is bound to (name, version, modulus).
 *   alg: the JOSE algorithm; the fallback runs for RSA-OAEP and RSA-OAEP-256
 *        only, and only when tokens[].rotation_fallback > 0.
 *   in/in_len: the ciphertext (bytes).
 *   out: on CKR_OK the plaintext (a secret; the caller clears it).
 * Returns the kv unwrap result for BOUND when it is not
 * CKR_WRAPPED_KEY_INVALID; otherwise CKR_OK when another known version
 * decrypted it (one INFO log line names both versions), else
 * CKR_WRAPPED_KEY_INVALID, or CKR_DEVICE_ERROR / CKR_HOST_MEMORY when a
 * fallback attempt could not reach the vault. At most rotation_fallback
 * other versions are tried (each one unwrap call, plus one Get Key for a
 * version the token has not fetched in this process). No lock is held
 * during vault calls.
 */
CK_RV akv_rotate_unwrap(struct akv_token *t, const struct akv_kv_key *bound,
                        enum akv_kv_alg alg, const uint8_t *in, size_t in_len,
                        struct akv_secret *out);

/*
 * akv_rotate_note - records that version KEY->version of KEY->name exists
 * (called after every successful Get Key): appends it to the store_dir
 * catalog when it is new. Best effort: catalog I/O errors are logged at
 * DEBUG and ignored (the catalog is a hint). Takes the token lock briefly;
 * no lock is held during file I/O.
 */
void akv_rotate_note(struct akv_token *t, const struct akv_kv_key *key);

/* akv_rotate_free - releases the token's remembered versions. */
void akv_rotate_free(struct akv_token *t);

#endif /* AKV_TOKEN_ROTATE_H */
