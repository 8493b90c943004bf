/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C_WrapKey / C_UnwrapKey (v3.0 §5.14) with vault keys: the wrapping key
 * is a vault RSA key object (public or private, of whatever version its
 * handle is bound to) or an oct-HSM key; the wrapped key is a local or
 * token secret key. Remote wrap = Key Vault "Wrap Key" on the exact
 * version; "wrap": "local" encrypts with the cached public key (same
 * format); unwrap = Key Vault "Unwrap Key".
 */
#ifndef AKV_TOKEN_WRAP_H
#define AKV_TOKEN_WRAP_H

#include <p11-kit/pkcs11.h>

/*
 * akv_wrap_key - C_WrapKey core. out NULL -> *out_len = exact length
 * (modulus bytes for RSA, RFC 3394/5649 length for AES KW), no remote
 * call; short -> CKR_BUFFER_TOO_SMALL with the length. Errors:
 * CKR_WRAPPING_KEY_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID,
 * CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID,
 * CKR_WRAPPING_KEY_TYPE_INCONSISTENT, CKR_KEY_FUNCTION_NOT_PERMITTED
 * (key_ops lacks wrapKey, or the vault refused), CKR_KEY_NOT_WRAPPABLE
 * (not a local secret key), CKR_KEY_UNEXTRACTABLE, CKR_KEY_SIZE_RANGE,
 * CKR_DEVICE_ERROR; a 404 for the bound version ->
 * CKR_WRAPPING_KEY_HANDLE_INVALID.
 */
CK_RV akv_wrap_key(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                   CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
                   CK_BYTE *out, CK_ULONG *out_len);

/*
 * akv_wrap_unwrap - C_UnwrapKey core: template checked first (no network),
 * then Key Vault unwrapKey with the handle's bound version, then a secret
 * key object (CKA_KEY_TYPE default CKK_GENERIC_SECRET; CKA_VALUE_LEN must
 * match -> else CKR_TEMPLATE_INCONSISTENT; AES must be 16/24/32 bytes ->
 * else CKR_WRAPPED_KEY_INVALID; CKA_TOKEN TRUE -> stored). Errors:
 * CKR_UNWRAPPING_KEY_HANDLE_INVALID (also a 404 for the bound version),
 * CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, CKR_WRAPPED_KEY_LEN_RANGE,
 * CKR_WRAPPED_KEY_INVALID (vault 400), CKR_KEY_FUNCTION_NOT_PERMITTED
 * (revoked/disabled), CKR_DEVICE_ERROR, template errors.
 */
CK_RV akv_wrap_unwrap(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                      CK_OBJECT_HANDLE unwrapping, const CK_BYTE *in,
                      CK_ULONG in_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *ph);

#endif /* AKV_TOKEN_WRAP_H */
