/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON <-> structs for the Key Vault and Entra ID answers the module reads.
 * Every parser takes untrusted bytes (BUF, LEN bytes, not necessarily
 * NUL-terminated), is bounded (at most AKV_JSON_MAX_BYTES, cJSON nesting
 * limit) and is a libFuzzer target (tests/fuzz/fuzz_kv_response.c).
 * Secret strings (access tokens, unwrapped values) are wiped inside the
 * cJSON tree with OPENSSL_cleanse before cJSON_Delete.
 *
 * Follows: Key Vault REST 7.4 keys.json (KeyBundle, JsonWebKey,
 * KeyAttributes, KeyOperationResult) and common.json (KeyVaultError);
 * RFC 7517/7518 (JWK); RFC 6749 §5.1/§5.2 (token response / error).
 */
#ifndef AKV_KEYVAULT_JSON_H
#define AKV_KEYVAULT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/secret.h"
#include "kv.h"

#define AKV_JSON_MAX_BYTES 262144 /* 256 KiB, same cap as HTTP bodies */
#define AKV_JSON_TOKEN_MAX 16384  /* access token length cap */

/* Key Vault error envelope, or an OAuth2 error (code = "error" string). */
struct akv_json_error {
    char code[64];     /* error.code (KV) or error (OAuth2); "" if absent */
    char inner[64];    /* error.innererror.code; "" if absent */
    char message[512]; /* error.message / error_description, first line */
};

/*
 * akv_json_parse_key_bundle - KeyBundle (GET key) -> OUT.
 * Requires key.kid (a versioned key identifier per akv_kvid_kid_parse:
 * which vault and key it names is the caller's check), key.kty; for RSA
 * keys n (<= 1024 bytes, leading zero bytes stripped) and e (<= 8 bytes);
 * for EC / EC-HSM a known crv and x, y of the curve's field size. The key's
 * strength (modulus size, exponent, point on curve) is akv_jwk_check's. key_ops
 * absent = all operations (RFC 7517 §4.3); attributes absent = enabled, no
 * dates. Unknown fields are ignored. Returns CKR_OK (OUT owned by the caller,
 * clear with akv_kv_key_clear), CKR_DEVICE_ERROR for a malformed answer (OUT
 * zeroed), CKR_HOST_MEMORY.
 */
CK_RV akv_json_parse_key_bundle(const char *buf, size_t len,
                                struct akv_kv_key *out);

/*
 * akv_json_parse_cert_bundle - a CertificateBundle (certificates.json):
 * "kid" a versioned key identifier (akv_kvid_kid_parse; which vault and
 * key is the caller's check), "cer" the DER certificate in base64 (the
 * service sends standard base64; base64url is accepted too), 1..
 * AKV_KV_CERT_MAX bytes. CKR_OK (OUT filled; akv_kv_cert_clear),
 * CKR_HOST_MEMORY, CKR_ARGUMENTS_BAD (OUT NULL) or CKR_DEVICE_ERROR
 * (malformed). The certificate bytes are not parsed here.
 */
CK_RV akv_json_parse_cert_bundle(const char *buf, size_t len,
                                 struct akv_kv_cert *out);

/*
 * akv_json_parse_key_op_result - KeyOperationResult {kid, value} of
 * wrapkey/unwrapkey. KID_OUT (AKV_KV_KID_MAX bytes, may be NULL) receives
 * kid ("" if absent). VALUE receives the decoded value (1..65536 bytes).
 * Returns CKR_OK, CKR_DEVICE_ERROR (malformed; VALUE cleared),
 * CKR_HOST_MEMORY.
 */
CK_RV akv_json_parse_key_op_result(const char *buf, size_t len, char *kid_out,
                                   struct akv_secret *value);

/*
 * akv_json_parse_error - {"error":{"code","message","innererror":{"code"}}}
 * (Key Vault) or {"error":"...","error_description":"..."} (OAuth2, RFC 6749
 * §5.2). OUT is always filled (empty strings when absent). Returns 0 when
 * an envelope was recognised, -1 otherwise.
 */
int akv_json_parse_error(const char *buf, size_t len,
                         struct akv_json_error *out);

/*
 * akv_json_token_ok - whether the N bytes at P can be sent as a bearer
 * token: 1..AKV_JSON_TOKEN_MAX bytes, each printable ASCII without space
 * (0x21..0x7e), so nothing can split or corrupt the Authorization header
 * (RFC 6750 §2.1 b64token is a subset). The one rule for a token from the
 * network (akv_json_parse_token) and from the per-user cache
 * (keyvault/pcache.h). Returns true or false.
 */
bool akv_json_token_ok(const void *p, size_t n);

/*
 * akv_json_parse_token - access-token answer of Entra ID v2 (expires_in is
 * a number), IMDS / App Service (numbers as strings; App Service gives only
 * expires_on). NOW: current time in s since epoch. TOKEN receives the
 * access token; *EXPIRES_AT the absolute expiry (s since epoch); *LIFETIME_S
 * the lifetime from NOW (s). token_type, if present, must be "Bearer".
 * Returns CKR_OK, CKR_DEVICE_ERROR (malformed; TOKEN cleared),
 * CKR_HOST_MEMORY.
 */
CK_RV akv_json_parse_token(const char *buf, size_t len, int64_t now,
                           struct akv_secret *token, int64_t *expires_at,
                           int64_t *lifetime_s);

/*
 * akv_json_build_key_op - KeyOperationsParameters body
 * {"alg":"<alg>","value":"<unpadded base64url>"} into BODY (a secret: it
 * carries a plaintext key on wrap). Returns CKR_OK, CKR_ARGUMENTS_BAD (bad
 * alg, IN NULL with IN_LEN > 0, IN_LEN > 65536), CKR_HOST_MEMORY.
 */
CK_RV akv_json_build_key_op(enum akv_kv_alg alg, const uint8_t *in,
                            size_t in_len, struct akv_secret *body);

/*
 * akv_json_build_create_key - KeyCreateParameters body (Key Vault REST
 * "Create Key"): {"kty", "key_size" (RSA), "public_exponent" (RSA, when
 * not 0), "crv" (EC), "key_ops" (when not 0, RFC 7517 §4.3 names)} into
 * OUT (a malloc'd NUL-terminated string; not secret). CKR_OK,
 * CKR_ARGUMENTS_BAD (no kty), CKR_HOST_MEMORY.
 */
CK_RV akv_json_build_create_key(const struct akv_kv_create *req, char **out);

/*
 * akv_json_build_crypt - KeyOperationsParameters body of an encrypt /
 * decrypt (keys.json): {"alg","value"} and, each only when its length is
 * not 0, "iv", "aad", "tag" (unpadded base64url) into BODY (a secret: it
 * carries plaintext on encrypt). Returns CKR_OK, CKR_ARGUMENTS_BAD (bad
 * alg, NULL pointer with a length, value empty or over 65536 bytes, aad
 * over 65536, iv or tag over 16), CKR_HOST_MEMORY.
 */
CK_RV akv_json_build_crypt(enum akv_kv_alg alg,
                           const struct akv_kv_crypt_in *in,
                           struct akv_secret *body);

/*
 * akv_json_parse_crypt_extra - the optional "iv" and "tag" of an encrypt
 * answer (KeyOperationResult) into OUT (zeroed first; lengths 0 when
 * absent). Returns CKR_OK, CKR_DEVICE_ERROR (not JSON, not base64url, or
 * longer than 16 bytes).
 */
CK_RV akv_json_parse_crypt_extra(const char *buf, size_t len,
                                 struct akv_kv_crypt_out *out);

#endif /* AKV_KEYVAULT_JSON_H */
