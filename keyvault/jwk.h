/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strength checks on a vault's public key before the module uses it: a
 * hostile or broken vault (or a network path to it) must not be able to
 * hand over a key that leaks what is wrapped with it locally ("wrap":
 * "local" encrypts data keys with this public key, no vault involved).
 *
 * Follows: RFC 7518 §6.2 / §6.3 (JWK EC and RSA members); Key Vault key
 * types and sizes ("About keys": RSA 2048, 3072, 4096; EC P-256, P-384,
 * P-521, P-256K); NIST SP 800-89 §5.3.3 / FIPS 186-5 §A.1.1 (the
 * exponent is odd and > 1); SEC 1 §3.2.2.1 (public point on the curve).
 */
#ifndef AKV_KEYVAULT_JWK_H
#define AKV_KEYVAULT_JWK_H

#include <stddef.h>

#include "kv.h"

#define AKV_JWK_RSA_MIN_BITS 2048 /* the smallest key Key Vault creates */
#define AKV_JWK_RSA_MAX_BITS 4096 /* the largest key Key Vault holds */

/*
 * akv_jwk_check - K (a parsed KeyBundle) is a public key the module may
 * use:
 *   RSA / RSA-HSM: modulus of 2048..4096 bits and odd; public exponent
 *     odd and 3 <= e <= 2^32 - 1. Key Vault issues e = 65537; the upper
 *     bound keeps e to the sizes RSA implementations accept (OpenSSL caps
 *     e at 64 bits for small moduli) while allowing imported keys with
 *     e = 3 or other odd values. e = 1 would make RSA "encryption" the
 *     identity (the data key lands in clear in the wrapped blob), an even
 *     e cannot be inverted (the data key is lost).
 *   EC / EC-HSM: the point (x, y) lies on its curve (P-256, P-384, P-521,
 *     P-256K = secp256k1) and is not the point at infinity. Checked with
 *     OpenSSL's EC_POINT arithmetic, which runs built-in code and fetches
 *     no algorithm from any provider, so the host's OpenSSL configuration
 *     cannot change the answer.
 *   oct-HSM and other types carry no public material: accepted.
 * WHY (WHY_LEN bytes, may be NULL) receives a one-line reason on refusal.
 * Returns CKR_OK, CKR_DEVICE_ERROR (refused: the vault's answer is not a
 * usable key), CKR_HOST_MEMORY, CKR_ARGUMENTS_BAD (K NULL).
 */
CK_RV akv_jwk_check(const struct akv_kv_key *k, char *why, size_t why_len);

#endif /* AKV_KEYVAULT_JWK_H */
