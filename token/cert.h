/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token's certificate object: a CKO_CERTIFICATE / CKC_X_509 token
 * object for the configured certificate (tokens[].certificate, a Key Vault
 * certificate; or tokens[].certificate_file, a PEM file), with the CKA_ID
 * of the key version it certifies, so that Java's KeyStore, TLS servers and
 * p11tool pair it with that key the usual way. Read-only (origin vault:
 * C_DestroyObject / C_SetAttributeValue / C_CopyObject answer
 * CKR_ACTION_PROHIBITED).
 *
 * Follows: PKCS#11 v3.0 §4.6 (certificate objects), §4.6.3 (X.509 public
 * key certificate objects); Key Vault REST 7.4 "Get Certificate"; RFC 5280.
 */
#ifndef AKV_TOKEN_CERT_H
#define AKV_TOKEN_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "token.h"

/*
 * akv_cert_obj_new - the certificate object for the DER X.509 certificate
 * DER (LEN bytes) of key NAME, version VERSION (CKA_LABEL = NAME, CKA_ID =
 * the key objects' CKA_ID for VERSION): CKA_CLASS CKO_CERTIFICATE,
 * CKA_CERTIFICATE_TYPE CKC_X_509, CKA_VALUE (the DER), CKA_SUBJECT,
 * CKA_ISSUER, CKA_SERIAL_NUMBER (DER of each), CKA_PUBLIC_KEY_INFO (DER
 * SubjectPublicKeyInfo), CKA_CHECK_VALUE (first 3 bytes of SHA-1 of the
 * DER, v3.0 §4.6.2), CKA_START_DATE / CKA_END_DATE (notBefore / notAfter
 * as CK_DATE, UTC), CKA_TOKEN TRUE, CKA_PRIVATE / CKA_MODIFIABLE /
 * CKA_COPYABLE / CKA_DESTROYABLE / CKA_TRUSTED FALSE, CKA_CERTIFICATE_
 * CATEGORY 1 (token user: its private key is on the token),
 * CKA_JAVA_MIDP_SECURITY_DOMAIN 0, CKA_URL and the hash attributes empty
 * (defaults table). Origin vault, listed. Returns CKR_OK with *OUT (one
 * reference), CKR_ARGUMENTS_BAD (NULL argument), CKR_DEVICE_ERROR (DER is
 * not one X.509 certificate, or has trailing bytes) or CKR_HOST_MEMORY.
 */
CK_RV akv_cert_obj_new(const uint8_t *der, size_t len, const char *name,
                       const char *version, struct akv_obj **out);

/*
 * akv_cert_refresh - brings T's certificate object up to date (called by
 * akv_token_refresh after the keys): a Key Vault certificate is fetched
 * when key_refresh_s has passed since the last answer (a renewed
 * certificate replaces the object); a certificate_file is read once per
 * token. The certificate's public key must be that of the key version it
 * names (file: of a configured key's current version), else it is refused.
 * Never fails the caller's operation: a refusal, a 403 (no certificates/get
 * permission), a 404 or an unreadable file is one log line naming the
 * certificate and the reason, and the keys are shown as without it (a
 * failed fetch is retried after key_refresh_s). No lock held during I/O.
 */
void akv_cert_refresh(struct akv_token *t);

#endif /* AKV_TOKEN_CERT_H */
