/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mechanism table (design.md "Mechanisms"): one static row per
 * mechanism with its CK_MECHANISM_INFO, key type and parameter check.
 * C_GetMechanismList/Info are generated from it; every C_*Init validates
 * parameters here before any network call.
 *
 * Follows: PKCS#11 v3.0 §5.5 C_GetMechanismList/C_GetMechanismInfo;
 * PKCS#11 Current Mechanisms v3.0 §2.1.8 (CKM_RSA_PKCS_OAEP), §2.1.6
 * (CKM_RSA_PKCS), §2.14 (AES, CKM_AES_CTR), §2.15 (AES GCM), §2.20 (AES key
 * wrap), the SHA-1, SHA-2 and SHA-3 digest sections;
 * Key Vault JsonWebKeyEncryptionAlgorithm.
 */
#ifndef AKV_TOKEN_MECH_H
#define AKV_TOKEN_MECH_H

#include <p11-kit/pkcs11.h>

#include "../keyvault/kv.h"

struct akv_mech {
    CK_MECHANISM_TYPE type;
    CK_MECHANISM_INFO info; /* key sizes: RSA bits, AES bytes, generic bits */
    CK_KEY_TYPE key_type; /* CKK_RSA, CKK_AES, CKK_GENERIC_SECRET; digests -1 */
};

/* akv_mech_table - the rows (sorted by type), for tests. */
const struct akv_mech *akv_mech_table(size_t *n);

/* akv_mech_find - the row for TYPE or NULL. */
const struct akv_mech *akv_mech_find(CK_MECHANISM_TYPE type);

/*
 * akv_mech_get_list - C_GetMechanismList core (v3.0 §5.5): list NULL ->
 * *count = number; *count too small -> CKR_BUFFER_TOO_SMALL with the number
 * set; else fills. Every token offers the whole table (the key types are
 * only known after a GET key, and these calls must not touch the network).
 */
CK_RV akv_mech_get_list(CK_MECHANISM_TYPE *list, CK_ULONG *count);

/* akv_mech_get_info - CKR_OK or CKR_MECHANISM_INVALID. */
CK_RV akv_mech_get_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);

/*
 * akv_mech_check - MECH is in the table and supports the FLAG
 * (CKF_ENCRYPT/DECRYPT/WRAP/UNWRAP/GENERATE/DIGEST) -> CKR_OK; unknown or wrong
 * use -> CKR_MECHANISM_INVALID; KEY_TYPE (a CKK_*, or (CK_KEY_TYPE)-1 to
 * skip) not the row's -> CKR_KEY_TYPE_INCONSISTENT.
 */
CK_RV akv_mech_check(const CK_MECHANISM *mech, CK_FLAGS flag,
                     CK_KEY_TYPE key_type);

/*
 * akv_mech_rsa_alg - maps an RSA mechanism to the Key Vault alg.
 * CKM_RSA_PKCS (no parameters) -> RSA1_5. CKM_RSA_PKCS_OAEP with
 * CK_RSA_PKCS_OAEP_PARAMS of exactly sizeof(): (CKM_SHA_1, CKG_MGF1_SHA1)
 * -> RSA-OAEP, (CKM_SHA256, CKG_MGF1_SHA256) -> RSA-OAEP-256; source 0 or
 * CKZ_DATA_SPECIFIED with no label. Anything else (NULL/short parameters,
 * another hash, mismatched MGF, a label) -> CKR_MECHANISM_PARAM_INVALID;
 * a non-RSA mechanism -> CKR_MECHANISM_INVALID.
 */
CK_RV akv_mech_rsa_alg(const CK_MECHANISM *mech, enum akv_kv_alg *alg);

/*
 * akv_mech_aes_kw_alg - CKM_AES_KEY_WRAP on an AES key of KEY_BYTES (16,
 * 24, 32) -> A128KW/A192KW/A256KW, of unknown size (KEY_BYTES 0: Managed
 * HSM's Get Key does not say) -> CKM_AES_KEY_WRAP; CKM_AES_KEY_WRAP_KWP ->
 * CKM_AES_KEY_WRAP_PAD (akv_kv_aes_kw_alg). Parameters must be empty (the
 * default IV) -> else CKR_MECHANISM_PARAM_INVALID; any other size ->
 * CKR_KEY_SIZE_RANGE.
 */
CK_RV akv_mech_aes_kw_alg(const CK_MECHANISM *mech, size_t key_bytes,
                          enum akv_kv_alg *alg);

#endif /* AKV_TOKEN_MECH_H */
