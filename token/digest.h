/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Message digesting (PKCS#11 v3.0 §5.12): C_DigestInit, C_Digest,
 * C_DigestUpdate, C_DigestKey, C_DigestFinal with CKM_SHA_1, CKM_SHA224,
 * CKM_SHA256, CKM_SHA384, CKM_SHA512, CKM_SHA512_224, CKM_SHA512_256 (FIPS
 * 180-4) and CKM_SHA3_224/256/384/512 (FIPS 202); no mechanism takes
 * parameters (Current Mechanisms v3.0, the SHA-1, SHA-2 and SHA-3 digest
 * sections). All local, in
 * the module's private OpenSSL library context (token/crypto.h); nothing
 * asks the vault except C_DigestKey on a token object (its value is
 * unwrapped by the vault key, akv_token_obj_value).
 *
 * Each session has one digest operation slot, separate from the
 * encrypt/decrypt one (v3.0 §5.1: one active operation of each kind).
 *
 * Output and ending follow token/cipher.h: a NULL output buffer returns the
 * digest length; a short buffer returns CKR_BUFFER_TOO_SMALL with the
 * length; both keep the operation active, and so does
 * CKR_OPERATION_ACTIVE for a call outside the operation's flow (C_Digest
 * after an Update/Key call, or Update/Key/Final after a C_Digest that
 * returned CKR_BUFFER_TOO_SMALL). Any other error of C_Digest,
 * C_DigestUpdate, C_DigestKey or C_DigestFinal ends the operation -
 * CKR_ARGUMENTS_BAD for a NULL pointer included (these functions check
 * their pointers; DATA may be NULL only when DATA_LEN is 0).
 */
#ifndef AKV_TOKEN_DIGEST_H
#define AKV_TOKEN_DIGEST_H

#include <p11-kit/pkcs11.h>

struct akv_digest_op;

/* akv_digest_op_free - ends a digest operation (context freed). NULL-safe. */
void akv_digest_op_free(struct akv_digest_op *op);

/* akv_digest_md_name - the OpenSSL algorithm name of digest mechanism TYPE
 * (CKM_SHA_1, CKM_SHA224 ... CKM_SHA3_512), or NULL for another type. The
 * one CKM -> digest table; sign.c uses it for the hash-then-sign
 * mechanisms and HMAC. */
const char *akv_digest_md_name(CK_MECHANISM_TYPE type);

/*
 * akv_digest_len - the output length in bytes of digest mechanism TYPE
 * (20 for CKM_SHA_1 ... 64 for CKM_SHA512/CKM_SHA3_512), 0 for any other
 * mechanism.
 */
CK_ULONG akv_digest_len(CK_MECHANISM_TYPE type);

/*
 * C_DigestInit core. CKR_OK, CKR_SESSION_HANDLE_INVALID,
 * CKR_OPERATION_ACTIVE (a digest operation is active, or another thread is
 * inside a call on the session), CKR_MECHANISM_INVALID (not a digest
 * mechanism of the table, or the OpenSSL build lacks it),
 * CKR_MECHANISM_PARAM_INVALID (any parameter), CKR_HOST_MEMORY,
 * CKR_GENERAL_ERROR.
 */
CK_RV akv_digest_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech);

/* C_Digest (single part): DATA (DATA_LEN bytes) -> OUT (*OUT_LEN in: size,
 * out: digest length). CKR_OK, CKR_BUFFER_TOO_SMALL,
 * CKR_OPERATION_NOT_INITIALIZED, CKR_OPERATION_ACTIVE, CKR_ARGUMENTS_BAD,
 * CKR_GENERAL_ERROR. */
CK_RV akv_digest(CK_SESSION_HANDLE h, const CK_BYTE *data, CK_ULONG data_len,
                 CK_BYTE *out, CK_ULONG *out_len);

/* C_DigestUpdate: continues with PART (PART_LEN bytes). Errors as
 * akv_digest (no CKR_BUFFER_TOO_SMALL). */
CK_RV akv_digest_update(CK_SESSION_HANDLE h, const CK_BYTE *part,
                        CK_ULONG part_len);

/*
 * C_DigestKey (v3.0 §5.12): continues with the CKA_VALUE of secret key KEY
 * (a token object's value comes from the vault). CKR_KEY_HANDLE_INVALID
 * (no such object, or not a key); CKR_KEY_INDIGESTIBLE (not a secret key,
 * a vault key whose value never leaves Key Vault, or a value that
 * C_GetAttributeValue would not reveal: CKA_SENSITIVE true or
 * CKA_EXTRACTABLE false - a digest of a short key would give it away to an
 * exhaustive search); the vault's errors for a token object
 * (CKR_KEY_FUNCTION_NOT_PERMITTED when it refuses to unwrap,
 * CKR_DEVICE_ERROR); else as akv_digest_update.
 */
CK_RV akv_digest_key(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key);

/* C_DigestFinal: the digest of everything given by Update/Key calls. Errors
 * as akv_digest. */
CK_RV akv_digest_final(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len);

#endif /* AKV_TOKEN_DIGEST_H */
