/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C_GenerateKeyPair (PKCS#11 v3.0 §5.14; Current Mechanisms §2.1.4
 * CKM_RSA_PKCS_KEY_PAIR_GEN, §2.3.5 CKM_EC_KEY_PAIR_GEN), README "Creating
 * keys":
 *
 *   CKA_TOKEN TRUE (private template) - Key Vault "Create Key" (POST
 *     /keys/{name}/create, keys/create permission) on a token whose
 *     configuration says allow_create. The key name is CKA_LABEL (a Key
 *     Vault name: 1-127 of [0-9A-Za-z-]); a name that already exists in the
 *     vault is refused (Create Key would add a version to it - a rotation
 *     of someone else's key). kty RSA/EC, or RSA-HSM/EC-HSM when the
 *     private template's CKA_AKV_HSM (or else tokens[].create_hsm) is TRUE;
 *     key_ops from the usage attributes (private CKA_SIGN/DECRYPT/UNWRAP,
 *     public CKA_VERIFY/ENCRYPT/WRAP; CKA_SIGN and CKA_VERIFY default TRUE,
 *     the others FALSE). The new version's objects are vault objects like a
 *     configured key's (token/token.h akv_token_add_created): found at once
 *     by every session and, through the created-keys catalog in store_dir,
 *     by other processes. The vault decides CKA_ID (the version): a
 *     template CKA_ID is refused.
 *   CKA_TOKEN FALSE - a local key pair generated in the private OpenSSL
 *     context: session objects that sign and (RSA, CKA_DECRYPT TRUE)
 *     decrypt (private), verify and encrypt (public) locally and go with
 *     the session. The private parts are never
 *     an attribute (CKA_SENSITIVE TRUE, CKA_EXTRACTABLE FALSE by default).
 *
 * Template rules, checked before any key is made (v3.0 §5.14, §2.1.4,
 * §2.3.5): RSA needs CKA_MODULUS_BITS (2048, 3072, 4096) in the public
 * template, CKA_PUBLIC_EXPONENT optional (an odd value 3..2^32-1, default
 * 65537); EC needs CKA_EC_PARAMS, the DER OID of P-256, P-384, P-521 or
 * secp256k1.
 */
#ifndef AKV_TOKEN_KEYGEN_H
#define AKV_TOKEN_KEYGEN_H

#include <p11-kit/pkcs11.h>

/*
 * akv_keygen_pair - the C_GenerateKeyPair core. On CKR_OK *PUB and *PRIV are
 * the new objects' handles. Errors, in this order:
 *   CKR_SESSION_HANDLE_INVALID / CKR_SESSION_CLOSED
 *   CKR_MECHANISM_INVALID           not a key pair mechanism of the table
 *   CKR_MECHANISM_PARAM_INVALID     the mechanism has a parameter
 *   template shape (akv_attr_check_template / akv_attr_check_class):
 *     CKR_ATTRIBUTE_VALUE_INVALID, CKR_ATTRIBUTE_TYPE_INVALID,
 *     CKR_ATTRIBUTE_READ_ONLY, CKR_TEMPLATE_INCONSISTENT
 *   CKR_TEMPLATE_INCONSISTENT       CKA_CLASS / CKA_KEY_TYPE not the pair's,
 *                                   CKA_TOKEN differing between templates
 *   CKR_TEMPLATE_INCOMPLETE         no CKA_MODULUS_BITS / CKA_EC_PARAMS
 *   CKR_ATTRIBUTE_VALUE_INVALID     a size, exponent or EC_PARAMS encoding
 *                                   this token does not generate
 *   CKR_CURVE_NOT_SUPPORTED         a curve other than the four above
 *   CKA_TOKEN TRUE only:
 *     CKR_SESSION_READ_ONLY         from a R/O session
 *     CKR_TEMPLATE_INCONSISTENT     allow_create not set (logged), an
 *                                   attribute a vault key cannot have (a
 *                                   CKA_ID, CKA_EXTRACTABLE TRUE, CKA_SENSITIVE
 *                                   FALSE, CKA_DERIVE TRUE, EC with
 *                                   encrypt/decrypt/wrap/unwrap, ...; logged)
 *     CKR_TEMPLATE_INCOMPLETE       no CKA_LABEL
 *     CKR_ATTRIBUTE_VALUE_INVALID   CKA_LABEL not a key name, a key of that
 *                                   name already exists (logged) or is
 *                                   deleted but recoverable (409), the vault
 *                                   refused a parameter (400)
 *     CKR_KEY_FUNCTION_NOT_PERMITTED the identity lacks keys/create (403,
 *                                   one log line from the client)
 *     CKR_DEVICE_ERROR              vault unreachable
 *   CKR_HOST_MEMORY, CKR_DEVICE_MEMORY (object table full),
 *   CKR_FUNCTION_FAILED (OpenSSL could not generate).
 */
CK_RV akv_keygen_pair(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                      const CK_ATTRIBUTE *pub_t, CK_ULONG pub_n,
                      const CK_ATTRIBUTE *priv_t, CK_ULONG priv_n,
                      CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);

#endif /* AKV_TOKEN_KEYGEN_H */
