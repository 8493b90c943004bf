/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client assertion for the certificate credential: a JWT (RFC 7519) signed
 * RS256 (RFC 7515/7518 §3.3) with header {"alg":"RS256","typ":"JWT",
 * "x5t":"<base64url SHA-1 of the certificate DER>"} and claims aud (token
 * endpoint URL), iss = sub = client id, jti (random GUID), nbf = iat = now,
 * exp = now + 600 — the "previous version" format that Entra ID still
 * accepts and MSAL's ClientAssertion.fromCertificate builds
 * (learn.microsoft.com/entra/identity-platform/certificate-credentials).
 * All crypto runs in the caller's private OSSL_LIB_CTX.
 */
#ifndef AKV_KEYVAULT_JWT_H
#define AKV_KEYVAULT_JWT_H

#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/types.h>
#include <p11-kit/pkcs11.h>

#include "../common/secret.h"

#define AKV_JWT_LIFETIME_S 600

/*
 * akv_jwt_load_pem - reads PATH (PEM holding the certificate and its RSA
 * private key, in any order; refused when world-readable) into *KEY (caller
 * frees with EVP_PKEY_free) and X5T (SHA-1 of the certificate DER, 20
 * bytes). Checks that the key matches the certificate. WHY (WHY_LEN bytes,
 * may be NULL) receives a one-line reason on failure (nothing is logged
 * here: the caller logs once). Returns CKR_OK, CKR_DEVICE_ERROR
 * (unreadable, malformed, mismatched, not RSA), CKR_HOST_MEMORY.
 */
CK_RV akv_jwt_load_pem(OSSL_LIB_CTX *libctx, const char *path, EVP_PKEY **key,
                       uint8_t x5t[20], char *why, size_t why_len);

/*
 * akv_jwt_parse_pem - the parsing half of akv_jwt_load_pem on PEM_LEN bytes
 * at PEM_DATA (1..65536 bytes, need not be NUL-terminated; the caller
 * wipes them): same outputs and checks; PATH names the source in WHY.
 * Returns CKR_OK, CKR_DEVICE_ERROR (malformed, encrypted, mismatched, not
 * RSA), CKR_HOST_MEMORY, CKR_ARGUMENTS_BAD (NULL or empty input, or
 * longer than 65536 bytes).
 */
CK_RV akv_jwt_parse_pem(OSSL_LIB_CTX *libctx, const uint8_t *pem_data,
                        size_t pem_len, const char *path, EVP_PKEY **key,
                        uint8_t x5t[20], char *why, size_t why_len);

/*
 * akv_jwt_assertion - builds and signs the assertion into OUT
 * ("header.claims.signature", base64url parts). NOW: s since epoch.
 * Returns CKR_OK, CKR_ARGUMENTS_BAD, CKR_DEVICE_ERROR (signing failed),
 * CKR_HOST_MEMORY.
 */
CK_RV akv_jwt_assertion(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                        const uint8_t x5t[20], const char *client_id,
                        const char *aud, int64_t now, struct akv_secret *out);

#endif /* AKV_KEYVAULT_JWT_H */
