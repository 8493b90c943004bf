/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Importing a public key with C_CreateObject (v3.0 §4.8 public key objects):
 * RSA (§2.1.2: CKA_MODULUS, CKA_PUBLIC_EXPONENT) and EC (§2.3.3:
 * CKA_EC_PARAMS = the DER OID of a named curve P-256/P-384/P-521,
 * CKA_EC_POINT = the DER OCTET STRING of the uncompressed point). Session
 * objects only: the store holds vault-wrapped secrets.
 */
#ifndef AKV_TOKEN_PUBKEY_H
#define AKV_TOKEN_PUBKEY_H

#include <p11-kit/pkcs11.h>

#include "session.h"

/*
 * akv_pubkey_create - the C_CreateObject core for CKO_PUBLIC_KEY. Checks, in
 * this order: CKA_KEY_TYPE present (CKR_TEMPLATE_INCOMPLETE) and CKK_RSA or
 * CKK_EC (else CKR_ATTRIBUTE_VALUE_INVALID: a key type this token does not
 * import); the template (akv_attr_check_template / akv_attr_check_class:
 * CKR_ATTRIBUTE_VALUE_INVALID, CKR_ATTRIBUTE_TYPE_INVALID for an attribute
 * that is not a public-key one, CKR_ATTRIBUTE_READ_ONLY,
 * CKR_TEMPLATE_INCONSISTENT); CKA_TOKEN TRUE -> CKR_SESSION_READ_ONLY from a
 * R/O session, else CKR_TEMPLATE_INCONSISTENT; the key material - missing
 * -> CKR_TEMPLATE_INCOMPLETE, the other type's -> CKR_TEMPLATE_INCONSISTENT,
 * invalid -> CKR_ATTRIBUTE_VALUE_INVALID (RSA: a modulus of 1024..8192
 * bits that is odd, an odd exponent >= 3 below it; EC: a known curve and a
 * point on it). The object gets CKA_MODULUS_BITS (RSA), CKA_PUBLIC_KEY_INFO
 * (the DER SubjectPublicKeyInfo), CKA_LOCAL FALSE, CKA_ENCRYPT (RSA) and
 * CKA_VERIFY TRUE unless the template says otherwise, and every other §4.7/§4.8
 * attribute (akv_attrs_fill_defaults). An RSA key can then encrypt locally
 * (C_EncryptInit with CKM_RSA_PKCS / CKM_RSA_PKCS_OAEP); RSA and EC keys
 * verify locally (C_VerifyInit, token/sign.h). Returns CKR_OK and
 * *ph, or the errors above, CKR_HOST_MEMORY, CKR_DEVICE_MEMORY (table full).
 */
CK_RV akv_pubkey_create(struct akv_session *s, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *ph);

#endif /* AKV_TOKEN_PUBKEY_H */
