/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encryption and decryption (v3.0 §5.8, §5.9) and random numbers (§5.15).
 * Local AES (ECB, CBC, CBC-PAD, CTR, GCM) on secret keys and RSA encryption
 * with a vault key's public part run in OpenSSL's private context; RSA
 * decryption with a vault private key is served by Key Vault unwrapKey.
 *
 * Output convention (v3.0 §5.2): a NULL output buffer returns the exact
 * length (RSA decrypt and CBC-PAD decrypt: an upper bound) and makes no
 * remote call; a short buffer returns CKR_BUFFER_TOO_SMALL with the exact
 * length and keeps the operation active (a remote result is cached so the
 * retry does not ask the vault again).
 *
 * Ending (v3.0 §5.8, §5.9; one rule, op_settle in cipher.c): any other
 * failure of C_Encrypt/C_Decrypt, of an Update or of a Final call ends the
 * active operation - CKR_ARGUMENTS_BAD for a NULL pointer included, which
 * is why these functions (not module/) check their pointers: IN may be
 * NULL only when IN_LEN is 0, OUT_LEN never. The exceptions:
 * CKR_BUFFER_TOO_SMALL, a successful length query or Update, and
 * CKR_OPERATION_ACTIVE for a call that does not belong to the operation's
 * flow (single-part after an Update, or the reverse).
 */
#ifndef AKV_TOKEN_CIPHER_H
#define AKV_TOKEN_CIPHER_H

#include <stdbool.h>

#include <p11-kit/pkcs11.h>

struct akv_op;

/* akv_cipher_op_free - ends an operation (key reference dropped, buffers
 * wiped). NULL-safe. */
void akv_cipher_op_free(struct akv_op *op);

/*
 * C_EncryptInit / C_DecryptInit cores. Validate the mechanism and its
 * parameters (akv_mech_*) before any network call. Returns CKR_OK,
 * CKR_OPERATION_ACTIVE, CKR_KEY_HANDLE_INVALID, CKR_MECHANISM_INVALID,
 * CKR_MECHANISM_PARAM_INVALID, CKR_KEY_TYPE_INCONSISTENT,
 * CKR_KEY_FUNCTION_NOT_PERMITTED (CKA_ENCRYPT/CKA_DECRYPT false, or the
 * vault refused to unwrap a token object's value), CKR_DEVICE_ERROR.
 */
CK_RV akv_cipher_encrypt_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                              CK_OBJECT_HANDLE key);
CK_RV akv_cipher_decrypt_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                              CK_OBJECT_HANDLE key);

/* C_Encrypt / C_Decrypt (single part). Decrypt: vault 400 ->
 * CKR_ENCRYPTED_DATA_INVALID, wrong length -> CKR_ENCRYPTED_DATA_LEN_RANGE.
 * Encrypt: CKR_DATA_LEN_RANGE. */
CK_RV akv_cipher_encrypt(CK_SESSION_HANDLE h, const CK_BYTE *in,
                         CK_ULONG in_len, CK_BYTE *out, CK_ULONG *out_len);
CK_RV akv_cipher_decrypt(CK_SESSION_HANDLE h, const CK_BYTE *in,
                         CK_ULONG in_len, CK_BYTE *out, CK_ULONG *out_len);

/* Multi-part (AES only; RSA -> CKR_MECHANISM_INVALID and the operation
 * ends). GCM decryption releases plaintext only at the final call, after
 * the tag is verified. */
CK_RV akv_cipher_encrypt_update(CK_SESSION_HANDLE h, const CK_BYTE *in,
                                CK_ULONG in_len, CK_BYTE *out,
                                CK_ULONG *out_len);
CK_RV akv_cipher_encrypt_final(CK_SESSION_HANDLE h, CK_BYTE *out,
                               CK_ULONG *out_len);
CK_RV akv_cipher_decrypt_update(CK_SESSION_HANDLE h, const CK_BYTE *in,
                                CK_ULONG in_len, CK_BYTE *out,
                                CK_ULONG *out_len);
CK_RV akv_cipher_decrypt_final(CK_SESSION_HANDLE h, CK_BYTE *out,
                               CK_ULONG *out_len);

/*
 * Message-based encryption (v3.0 §5.13 C_MessageEncryptInit /
 * C_EncryptMessage / C_MessageEncryptFinal, §5.14 the decrypt side) with
 * CKM_AES_GCM on a Managed HSM oct-HSM key: the way to let the HSM pick
 * the IV (token/vault_aes.h). Init: the mechanism takes no parameter
 * (CKR_MECHANISM_PARAM_INVALID otherwise); a key the token holds the value
 * of is CKR_KEY_TYPE_INCONSISTENT (use C_EncryptInit locally); otherwise as
 * C_EncryptInit. Each message: CK_GCM_MESSAGE_PARAMS with pIv of 12 bytes,
 * pTag, ulTagBits 128; encryption needs ivGenerator CKG_GENERATE or
 * CKG_GENERATE_RANDOM and ulIvFixedBits 0 and returns the HSM's IV in pIv
 * and the tag in pTag; decryption reads both. The output is as long as the
 * input (1..64 KiB): NULL OUT is a length query, a short buffer
 * CKR_BUFFER_TOO_SMALL, neither calls the HSM. A failed message leaves the
 * operation active; C_Message*Final ends it. Begin/Next (multi-part
 * messages) are not offered (CKR_FUNCTION_NOT_SUPPORTED in module/).
 * Errors: CKR_OPERATION_NOT_INITIALIZED, CKR_ARGUMENTS_BAD,
 * CKR_MECHANISM_PARAM_INVALID, CKR_DATA_LEN_RANGE /
 * CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID (wrong tag, IV
 * or aad), kv.h's contract (403 -> CKR_KEY_FUNCTION_NOT_PERMITTED ...).
 */
CK_RV akv_cipher_msg_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                          CK_OBJECT_HANDLE key, bool decrypt);
CK_RV akv_cipher_msg(CK_SESSION_HANDLE h, bool decrypt, void *param,
                     CK_ULONG param_len, const CK_BYTE *aad, CK_ULONG aad_len,
                     const CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                     CK_ULONG *out_len);
CK_RV akv_cipher_msg_final(CK_SESSION_HANDLE h, bool decrypt);

/* C_GenerateRandom: CKR_OK, CKR_SESSION_HANDLE_INVALID,
 * CKR_FUNCTION_FAILED. */
CK_RV akv_cipher_random(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG len);

/* C_SeedRandom: the private DRBG is seeded by the OS and not mixed with
 * caller input -> CKR_RANDOM_SEED_NOT_SUPPORTED (v3.0 §5.15.1). */
CK_RV akv_cipher_seed(CK_SESSION_HANDLE h, const CK_BYTE *seed, CK_ULONG len);

#endif /* AKV_TOKEN_CIPHER_H */
