/* SPDX-License-Identifier: Apache-2.0 */
#include "mech.h"

#include <string.h>

#include "../include/pkcs11/akv-pkcs11.h"

#define RSA_FLAGS (CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)
#define AES_FLAGS (CKF_ENCRYPT | CKF_DECRYPT)
#define NO_KEY    ((CK_KEY_TYPE)-1) /* digests use no key */

/* Sorted by mechanism type (a unit test checks it). */
static const struct akv_mech table[] = {
    /* Vault: RSA1_5; C_Encrypt local. Key sizes in bits. */
    {CKM_RSA_PKCS, {2048, 4096, RSA_FLAGS}, CKK_RSA},
    /* Vault: RSA-OAEP / RSA-OAEP-256 (akv_mech_rsa_alg); bits. */
    {CKM_RSA_PKCS_OAEP, {2048, 4096, RSA_FLAGS}, CKK_RSA},
    /* Local digests (token/digest.c); no key, sizes 0. */
    {CKM_SHA512_224, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA512_256, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA_1, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA256, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA224, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA384, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA512, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA3_256, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA3_224, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA3_384, {0, 0, CKF_DIGEST}, NO_KEY},
    {CKM_SHA3_512, {0, 0, CKF_DIGEST}, NO_KEY},
    /* Local; sizes in bits (Current Mechanisms §2.39). */
    {CKM_GENERIC_SECRET_KEY_GEN, {8, 4096, CKF_GENERATE}, CKK_GENERIC_SECRET},
    /* Local; AES sizes are in bytes (Current Mechanisms §2.14). */
    {CKM_AES_KEY_GEN, {16, 32, CKF_GENERATE}, CKK_AES},
    {CKM_AES_ECB, {16, 32, AES_FLAGS}, CKK_AES},
    {CKM_AES_CBC, {16, 32, AES_FLAGS}, CKK_AES},
    {CKM_AES_CBC_PAD, {16, 32, AES_FLAGS}, CKK_AES},
    {CKM_AES_CTR, {16, 32, AES_FLAGS}, CKK_AES},
    {CKM_AES_GCM, {16, 32, AES_FLAGS}, CKK_AES},
    /* Vault (Managed HSM oct-HSM keys): A128KW/A192KW/A256KW; bytes. */
    {CKM_AES_KEY_WRAP, {16, 32, CKF_WRAP | CKF_UNWRAP}, CKK_AES},
    /* Vault: CKM_AES_KEY_WRAP_PAD (RFC 5649); bytes. */
    {CKM_AES_KEY_WRAP_KWP, {16, 32, CKF_WRAP | CKF_UNWRAP}, CKK_AES},
};

const struct akv_mech *akv_mech_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

const struct akv_mech *akv_mech_find(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].type == type) {
            return &table[i];
        }
    }
    return NULL;
}

CK_RV akv_mech_get_list(CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    CK_ULONG n = (CK_ULONG)(sizeof(table) / sizeof(table[0]));

    if (list == NULL) {
        *count = n;
        rv = CKR_OK;
        goto out;
    }
    if (*count < n) {
        *count = n;
        rv = CKR_BUFFER_TOO_SMALL;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        list[i] = table[i].type;
    }
    *count = n;
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_mech_get_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    const struct akv_mech *m = akv_mech_find(type);

    if (m == NULL) {
        return CKR_MECHANISM_INVALID;
    }
    *info = m->info;
    return CKR_OK;
}

CK_RV akv_mech_check(const CK_MECHANISM *mech, CK_FLAGS flag,
                     CK_KEY_TYPE key_type)
{
    const struct akv_mech *m = akv_mech_find(mech->mechanism);

    if (m == NULL || (m->info.flags & flag) == 0) {
        return CKR_MECHANISM_INVALID;
    }
    if (key_type != (CK_KEY_TYPE)-1 && key_type != m->key_type) {
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    return CKR_OK;
}

CK_RV akv_mech_rsa_alg(const CK_MECHANISM *mech, enum akv_kv_alg *alg)
{
    CK_RV rv = CKR_MECHANISM_PARAM_INVALID;
    const CK_RSA_PKCS_OAEP_PARAMS *p = NULL;

    if (mech->mechanism == CKM_RSA_PKCS) {
        if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
            goto out;
        }
        *alg = AKV_KV_ALG_RSA1_5;
        rv = CKR_OK;
        goto out;
    }
    if (mech->mechanism != CKM_RSA_PKCS_OAEP) {
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    if (mech->pParameter == NULL
        || mech->ulParameterLen != sizeof(CK_RSA_PKCS_OAEP_PARAMS)) {
        goto out;
    }
    p = mech->pParameter;
    /* The vault takes no OAEP label: only "no label" is representable. */
    if (p->source != 0 && p->source != CKZ_DATA_SPECIFIED) {
        goto out;
    }
    if (p->pSourceData != NULL || p->ulSourceDataLen != 0) {
        goto out;
    }
    if (p->hashAlg == CKM_SHA_1 && p->mgf == CKG_MGF1_SHA1) {
        *alg = AKV_KV_ALG_RSA_OAEP;
    } else if (p->hashAlg == CKM_SHA256 && p->mgf == CKG_MGF1_SHA256) {
        *alg = AKV_KV_ALG_RSA_OAEP_256;
    } else {
        goto out;
    }
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_mech_aes_kw_alg(const CK_MECHANISM *mech, size_t key_bytes,
                          enum akv_kv_alg *alg)
{
    CK_RV rv = CKR_MECHANISM_PARAM_INVALID;

    if (mech->mechanism != CKM_AES_KEY_WRAP
        && mech->mechanism != CKM_AES_KEY_WRAP_KWP) {
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
        goto out;
    }
    if (akv_kv_aes_kw_alg(key_bytes * 8,
                          mech->mechanism == CKM_AES_KEY_WRAP_KWP, alg)
        != 0) {
        rv = CKR_KEY_SIZE_RANGE;
        goto out;
    }
    rv = CKR_OK;
out:
    return rv;
}
