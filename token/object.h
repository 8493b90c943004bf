/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Object management calls (v3.0 §5.7): find, create, copy, destroy,
 * attribute get/set, object size, and C_GenerateKey (§5.14), plus the
 * secret-key factory shared with C_UnwrapKey.
 *
 * Defaults for secret keys made here (where v3.0 leaves them to the token):
 * CKA_PRIVATE FALSE (every object is visible without login, design.md),
 * CKA_SENSITIVE TRUE, CKA_EXTRACTABLE TRUE (a DEK must be wrappable),
 * CKA_ENCRYPT/CKA_DECRYPT TRUE, other usages FALSE, CKA_MODIFIABLE,
 * CKA_COPYABLE, CKA_DESTROYABLE TRUE.
 */
#ifndef AKV_TOKEN_OBJECT_H
#define AKV_TOKEN_OBJECT_H

#include <p11-kit/pkcs11.h>

#include "../common/secret.h"
#include "attr.h"
#include "session.h"

/* C_FindObjectsInit core: refreshes the token (the first point where the
 * vault is asked), then snapshots the matching handles. Empty template =
 * every object; vault key versions that are no longer current are only
 * matched by a template with their CKA_ID. CKR_OK,
 * CKR_OPERATION_ACTIVE, CKR_ATTRIBUTE_VALUE_INVALID, CKR_DEVICE_ERROR
 * (vault unreachable and a configured key never fetched),
 * CKR_HOST_MEMORY, CKR_SESSION_HANDLE_INVALID. */
CK_RV akv_object_find_init(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl,
                           CK_ULONG n);
/* C_FindObjects core: CKR_OK or CKR_OPERATION_NOT_INITIALIZED. */
CK_RV akv_object_find(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *objs, CK_ULONG max,
                      CK_ULONG *count);
/* C_FindObjectsFinal core: CKR_OK or CKR_OPERATION_NOT_INITIALIZED. */
CK_RV akv_object_find_final(CK_SESSION_HANDLE h);

/* C_CreateObject core: CKO_SECRET_KEY (CKA_KEY_TYPE CKK_AES or
 * CKK_GENERIC_SECRET and CKA_VALUE required), CKO_PUBLIC_KEY (RSA or EC,
 * session only: akv_pubkey_create) or CKO_DATA (session only). No CKA_CLASS
 * -> CKR_TEMPLATE_INCOMPLETE; any other class (private keys, certificates,
 * ...) -> CKR_ATTRIBUTE_VALUE_INVALID before the rest of the template is
 * looked at. Then CKR_TEMPLATE_INCOMPLETE, CKR_TEMPLATE_INCONSISTENT,
 * CKR_ATTRIBUTE_VALUE_INVALID, CKR_ATTRIBUTE_READ_ONLY,
 * CKR_ATTRIBUTE_TYPE_INVALID, CKR_SESSION_READ_ONLY, store/kv errors. */
CK_RV akv_object_create(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *ph);
/* C_CopyObject core: CKR_ACTION_PROHIBITED for non-copyable objects (all
 * vault keys), template errors as C_SetAttributeValue. The copy keeps the
 * source's CKA_TOKEN unless TMPL names it: a token object's copy is a token
 * object (CKR_SESSION_READ_ONLY from a R/O session; v3.0 §5.7). */
CK_RV akv_object_copy(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *ph);
/* C_DestroyObject core: vault keys and CKA_DESTROYABLE FALSE ->
 * CKR_ACTION_PROHIBITED, except the public/private key of a vault key pair
 * on a token with allow_delete: Key Vault "Delete Key" of that key
 * (akv_token_delete_key: every version, soft delete; its objects go).
 * Token objects need a R/W session (CKR_SESSION_READ_ONLY) and delete
 * their store record. */
CK_RV akv_object_destroy(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj);
/* C_GetObjectSize core: approximate bytes (serialised attributes + value). */
CK_RV akv_object_get_size(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                          CK_ULONG *size);
/* C_GetAttributeValue core (akv_attr_get_values; readable CKA_VALUE of a
 * token object is unwrapped by the vault first). */
CK_RV akv_object_get_attrs(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                           CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* C_SetAttributeValue core: vault keys / CKA_MODIFIABLE FALSE ->
 * CKR_ACTION_PROHIBITED; only modifiable attributes (policy table), sticky
 * CKA_SENSITIVE/CKA_EXTRACTABLE/CKA_COPYABLE -> CKR_ATTRIBUTE_READ_ONLY
 * when reversed; token objects need a R/W session. */
CK_RV akv_object_set_attrs(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                           const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* C_GenerateKey core: CKM_AES_KEY_GEN (CKA_VALUE_LEN 16/24/32) or
 * CKM_GENERIC_SECRET_KEY_GEN (CKA_VALUE_LEN 1..512), random bytes from the
 * private OpenSSL context. CKR_MECHANISM_INVALID,
 * CKR_MECHANISM_PARAM_INVALID, CKR_TEMPLATE_INCOMPLETE (no CKA_VALUE_LEN),
 * CKR_ATTRIBUTE_VALUE_INVALID (bad length), template errors. */
CK_RV akv_object_generate_key(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                              const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              CK_OBJECT_HANDLE *ph);

/*
 * akv_object_check_secret_template - the checks on a secret-key template
 * that need no key value (run before any network call): policy (OP),
 * CKA_CLASS must be CKO_SECRET_KEY, CKA_KEY_TYPE CKK_AES or
 * CKK_GENERIC_SECRET (DFLT_KT when absent; (CK_KEY_TYPE)-1 = required),
 * CKA_TOKEN TRUE needs a R/W session and store_dir. *kt receives the key
 * type.
 */
CK_RV akv_object_check_secret_template(struct akv_session *s,
                                       const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                                       enum akv_attr_op op, CK_KEY_TYPE dflt_kt,
                                       CK_KEY_TYPE *kt);

/*
 * akv_object_make_secret - creates a secret key object holding VALUE (its
 * content is moved out; VALUE is empty afterwards) from TMPL with the
 * defaults above; GEN_MECH is the CKA_KEY_GEN_MECHANISM for generated keys
 * (CKA_LOCAL TRUE) or CK_UNAVAILABLE_INFORMATION. A CKA_TOKEN TRUE object
 * is wrapped by the vault and stored. CKA_VALUE_LEN in TMPL must equal the
 * length (else CKR_TEMPLATE_INCONSISTENT); an AES key must be 16/24/32
 * bytes (BAD_LEN_RV otherwise).
 */
CK_RV akv_object_make_secret(struct akv_session *s, const CK_ATTRIBUTE *tmpl,
                             CK_ULONG n, enum akv_attr_op op, CK_KEY_TYPE kt,
                             CK_MECHANISM_TYPE gen_mech, CK_RV bad_len_rv,
                             struct akv_secret *value, CK_OBJECT_HANDLE *ph);

#endif /* AKV_TOKEN_OBJECT_H */
