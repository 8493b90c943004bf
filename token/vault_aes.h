/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AES encryption and decryption executed by Managed HSM with a vault
 * oct-HSM key (Key Vault REST "Encrypt" / "Decrypt", keys.json
 * JsonWebKeyEncryptionAlgorithm A128GCM..A256GCM, A128CBC..A256CBC,
 * A128CBCPAD..A256CBCPAD; NIST SP 800-38A CBC, SP 800-38D GCM; PKCS#7
 * padding as CKM_AES_CBC_PAD, Current Mechanisms v3.0 §2.14). token/cipher.c
 * calls it when the mechanism plan (token/mech.h) puts an operation in the
 * vault.
 *
 * Parameters (checked by akv_mech_plan, copied here):
 *   CKM_AES_CBC, CKM_AES_CBC_PAD  the caller's 16-byte IV (sent as "iv")
 *   CKM_AES_GCM decrypt           CK_GCM_PARAMS with a 12-byte IV and
 *                                 ulTagBits 128 (Managed HSM's only
 *                                 shapes); the input is ciphertext || tag,
 *                                 as for any PKCS#11 GCM decryption; pAAD
 *                                 sent as "aad"
 *   CKM_AES_GCM encrypt           C_EncryptInit: refused with
 *                                 CKR_MECHANISM_PARAM_INVALID: Managed HSM
 *                                 picks the IV itself (answered beside the
 *                                 ciphertext) and takes none from the
 *                                 caller, and C_Encrypt has no way to hand
 *                                 a token-chosen IV back; silently using
 *                                 another IV than CK_GCM_PARAMS names
 *                                 would make the data undecryptable.
 *                                 v3.0 message-based encryption
 *                                 (C_EncryptMessage, CK_GCM_MESSAGE_PARAMS
 *                                 with CKG_GENERATE_RANDOM) is the way:
 *                                 the HSM's IV comes back in pIv
 *                                 (token/cipher.h akv_cipher_msg).
 *
 * The key size. The algorithm names carry it and Managed HSM's Get Key
 * does not say it (akv_kv_key.oct_bits 0). When it is unknown the first
 * operation tries 256, 128 and 192 bits in turn: the HSM refuses a name
 * whose size is not the key's (400), and the size it accepts is remembered
 * for that key version (process-wide, by kid). A refusal for another
 * reason (403, 404, 5xx) stops the trial at once. Decryption whose data is
 * refused at every size (a wrong tag, say) costs three calls and returns
 * CKR_ENCRYPTED_DATA_INVALID. No configuration and nothing
 * emulator-specific: the real service answers the same way.
 */
#ifndef AKV_TOKEN_VAULT_AES_H
#define AKV_TOKEN_VAULT_AES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "../common/secret.h"
#include "../keyvault/kv.h"

struct akv_token;

/* An operation's parameters, copied at C_EncryptInit / C_DecryptInit. */
struct akv_vault_aes {
    enum akv_kv_aes_mode mode;
    uint8_t iv[16];
    size_t iv_len;
    uint8_t *aad; /* malloc'd copy, or NULL */
    size_t aad_len;
};

/* akv_vault_aes_init - copies MECH's parameters (CKM_AES_CBC, _CBC_PAD,
 * _GCM, as akv_mech_plan accepted them) into P. CKR_OK,
 * CKR_MECHANISM_INVALID (another mechanism), CKR_MECHANISM_PARAM_INVALID,
 * CKR_HOST_MEMORY. */
CK_RV akv_vault_aes_init(struct akv_vault_aes *p, const CK_MECHANISM *mech);

/* akv_vault_aes_clear - frees the aad copy. NULL-safe. */
void akv_vault_aes_clear(struct akv_vault_aes *p);

/* akv_vault_aes_tag_len - bytes of tag at the end of a GCM ciphertext (16),
 * 0 for CBC. */
size_t akv_vault_aes_tag_len(const struct akv_vault_aes *p);

/*
 * akv_vault_aes_run - one Encrypt / Decrypt call (or up to three while the
 * key's size is learnt, see above) with version VKEY of T's vault. IN:
 * plaintext (1..AKV_KV_CRYPT_MAX bytes) or ciphertext (GCM: ciphertext ||
 * 16-byte tag). On CKR_OK OUT holds the result (a secret; caller clears)
 * and EXTRA (may be NULL) the answer's iv and tag (GCM encryption).
 * No lock is held. Errors: kv.h's contract (403 ->
 * CKR_KEY_FUNCTION_NOT_PERMITTED, 404 -> CKR_KEY_HANDLE_INVALID, ...);
 * decryption refused -> CKR_ENCRYPTED_DATA_INVALID; encryption refused at
 * every size -> CKR_GENERAL_ERROR (a request the HSM does not take; the
 * HSM's messages are in the debug log); IN of a length the mode cannot
 * send -> CKR_DATA_LEN_RANGE / CKR_ENCRYPTED_DATA_LEN_RANGE.
 */
CK_RV akv_vault_aes_run(struct akv_token *t, const struct akv_kv_key *vkey,
                        const struct akv_vault_aes *p, bool decrypt,
                        const uint8_t *in, size_t in_len,
                        struct akv_secret *out, struct akv_kv_crypt_out *extra);

/* akv_vault_aes_forget - empties the learnt-size cache (unit tests). */
void akv_vault_aes_forget(void);

#endif /* AKV_TOKEN_VAULT_AES_H */
