/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local cryptography in a private OpenSSL library context (style.md §9.7):
 * a host openssl.cnf that loads a PKCS#11 provider pointing back at this
 * module cannot recurse into us, and we never touch the host's default
 * context, OPENSSL_cleanup or the secure heap.
 */
#ifndef AKV_TOKEN_CRYPTO_H
#define AKV_TOKEN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "../common/secret.h"
#include "../keyvault/kv.h"

/* akv_crypto_init - creates the private OSSL_LIB_CTX with the default
 * provider (idempotent). CKR_OK or CKR_GENERAL_ERROR (logged). */
CK_RV akv_crypto_init(void);

/* akv_crypto_fini - C_Finalize's hook; keeps the context for the next
 * C_Initialize (threads that used it may outlive C_Finalize, see crypto.c). */
void akv_crypto_fini(void);

/* akv_crypto_forget - fork child: drop the reference without freeing. */
void akv_crypto_forget(void);

/* akv_crypto_libctx - the private context (NULL before init). */
OSSL_LIB_CTX *akv_crypto_libctx(void);

/* akv_crypto_random - LEN random bytes (RAND_bytes_ex on the private
 * context). CKR_OK or CKR_FUNCTION_FAILED. */
CK_RV akv_crypto_random(void *buf, size_t len);

/* akv_crypto_handle - a random non-zero handle below 2^31 (apps that keep
 * handles in an int must not be broken). */
CK_ULONG akv_crypto_handle(void);

/* akv_crypto_rsa_pub - RSA public key from big-endian n/e (RFC 8017 §3.1).
 * CKR_OK (*out owned by caller, EVP_PKEY_free), CKR_HOST_MEMORY,
 * CKR_GENERAL_ERROR. */
CK_RV akv_crypto_rsa_pub(const uint8_t *n, size_t n_len, const uint8_t *e,
                         size_t e_len, EVP_PKEY **out);

/*
 * akv_crypto_ec_pub - EC public key from a named-curve OID (DER, as in
 * CKA_EC_PARAMS, v3.0 §2.3.3) and the uncompressed point 04||X||Y (SEC 1
 * §2.3.3), decoded as a SubjectPublicKeyInfo (RFC 5480) in the private
 * context and checked (EVP_PKEY_public_check: on the curve, not infinity).
 * CKR_OK (*out owned by the caller), CKR_ATTRIBUTE_VALUE_INVALID (not a
 * valid point of that curve), CKR_GENERAL_ERROR.
 */
CK_RV akv_crypto_ec_pub(const uint8_t *curve_oid, size_t oid_len,
                        const uint8_t *point, size_t point_len, EVP_PKEY **out);

/*
 * akv_crypto_ec_oid - the DER OBJECT IDENTIFIER of a Key Vault curve
 * (JsonWebKeyCurveName "P-256", "P-384", "P-521", "P-256K"), as
 * CKA_EC_PARAMS holds it (v3.0 §2.3.3 namedCurve; RFC 5480 §2.1.1.1,
 * SEC 2 for secp256k1). Returns a static buffer and *len, or NULL for
 * another name.
 */
const uint8_t *akv_crypto_ec_oid(const char *crv, size_t *len);

/*
 * akv_crypto_rsa_encrypt - RSAES-OAEP / PKCS1-v1_5 encryption (RFC 8017
 * §7) with the padding of ALG (RSA-OAEP, RSA-OAEP-256, RSA1_5). OUT must
 * hold EVP_PKEY_get_size(pkey) bytes; *out_len receives the length.
 * CKR_OK, CKR_DATA_LEN_RANGE (input too long), CKR_GENERAL_ERROR.
 */
CK_RV akv_crypto_rsa_encrypt(EVP_PKEY *pkey, enum akv_kv_alg alg,
                             const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t *out_len);

/*
 * akv_crypto_rsa_decrypt - RSAES-OAEP / PKCS1-v1_5 decryption (RFC 8017
 * §7.1.2, §7.2.2) with the private key PKEY (a local session key pair,
 * token/keygen.h) and the padding of ALG (RSA-OAEP, RSA-OAEP-256, RSA1_5).
 * IN must be the modulus length. On CKR_OK OUT holds the plaintext (a
 * secret; the caller clears it). CKR_ENCRYPTED_DATA_INVALID (the padding
 * check failed), CKR_HOST_MEMORY, CKR_GENERAL_ERROR.
 */
CK_RV akv_crypto_rsa_decrypt(EVP_PKEY *pkey, enum akv_kv_alg alg,
                             const uint8_t *in, size_t in_len,
                             struct akv_secret *out);

/* akv_crypto_aes_cipher - the EVP cipher for an AES mechanism
 * (CKM_AES_ECB/CBC/CBC_PAD/CTR/GCM) and key length 16/24/32 from the private
 * context (akv_crypto_cipher); caller EVP_CIPHER_free()s. NULL when
 * unsupported. */
EVP_CIPHER *akv_crypto_aes_cipher(CK_MECHANISM_TYPE mech, size_t key_len);

/* akv_crypto_md / akv_crypto_cipher - the digest / cipher named NAME (an
 * OpenSSL algorithm name, e.g. "SHA256", "AES-256-GCM") of the private
 * context, fetched once per context and cached: a new reference the caller
 * releases with EVP_MD_free / EVP_CIPHER_free, as after EVP_*_fetch. NULL
 * when NAME is NULL or the provider lacks the algorithm. */
EVP_MD *akv_crypto_md(const char *name);
EVP_CIPHER *akv_crypto_cipher(const char *name);

#endif /* AKV_TOKEN_CRYPTO_H */
