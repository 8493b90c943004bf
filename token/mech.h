/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mechanism table (design.md "Mechanisms"): one static row per
 * mechanism decides everything an operation needs to know before it runs.
 * C_GetMechanismList/Info are generated from it and every C_*Init (encrypt,
 * decrypt, sign, verify, wrap, unwrap) asks akv_mech_plan, which checks in
 * one place and one order: the row and its flag, CKA_ALLOWED_MECHANISMS,
 * the key's type/class/origin, the parameters, the usage attribute.
 *
 * Adding a mechanism = adding a row (sorted by type; a unit test checks
 * it) and, if it takes parameters, a parameter function:
 *
 *   {type, {min, max, flags}, key_type, key_type2, vault, hash, params}
 *
 *   type       CKM_*
 *   info       CK_MECHANISM_INFO: key sizes (RSA/EC bits, AES bytes,
 *              generic secret bits) and the CKF_* operations offered
 *   key_type   CKK_* the key must have; key_type2 a second accepted type
 *              or AKV_MECH_NO_KT (HMAC: generic secret and AES)
 *   vault      the subset of info.flags Key Vault performs (on a vault
 *              key version, its key_ops and the identity's permission);
 *              every other flag runs locally in the private OpenSSL
 *              context (token/crypto.c). One exception (akv_mech_plan):
 *              a secret key whose value the token holds encrypts and
 *              decrypts locally even where the row names the vault, which
 *              then means "Managed HSM, for a vault oct-HSM key" (AES
 *              CBC, CBC-PAD, GCM)
 *   hash       sign/verify: the digest computed locally over the data
 *              before the (vault or local) signature, or 0 (the caller
 *              passes the digest / DigestInfo itself)
 *   params     NULL: the mechanism takes no parameter (any -> PARAM
 *              INVALID), else a function that checks them against the key
 *              and sets plan->alg (Key Vault algorithm), hash and salt
 *
 * Which object class and usage attribute an operation needs is derived
 * from the key type and the flag (one rule, akv_mech_plan): asymmetric
 * keys encrypt/verify/wrap with the public object and decrypt/sign/unwrap
 * with the private one; secret keys use the secret key object; the usage
 * attribute is CKA_ENCRYPT/DECRYPT/SIGN/VERIFY/WRAP/UNWRAP for the flag.
 *
 * Digests (token/digest.c) are rows with key_type AKV_MECH_NO_KT and the
 * CKF_DIGEST flag only.
 *
 * Follows: PKCS#11 v3.0 §5.5 C_GetMechanismList/C_GetMechanismInfo, §4.7
 * CKA_ALLOWED_MECHANISMS; PKCS#11 Current Mechanisms v3.0 §2.1.6
 * (CKM_RSA_PKCS), §2.1.8 (OAEP), §2.1.10-11 (PSS), §2.3.6-7 (ECDSA), §2.14
 * (AES, CKM_AES_CTR), §2.15 (AES GCM), §2.20 (AES key wrap), the SHA-1,
 * SHA-2 and SHA-3 digest sections; Key Vault JsonWebKeyEncryptionAlgorithm
 * and JsonWebKeySignatureAlgorithm.
 */
#ifndef AKV_TOKEN_MECH_H
#define AKV_TOKEN_MECH_H

#include <stdbool.h>

#include <p11-kit/pkcs11.h>

#include "../keyvault/kv.h"

#define AKV_MECH_NO_KT ((CK_KEY_TYPE)-1)

struct akv_obj;
struct akv_token;
struct akv_mech_plan;

/* Checks MECH's parameters for use with KEY and fills plan->alg (and, for
 * PSS, hash and salt_len). CKR_OK, CKR_MECHANISM_PARAM_INVALID,
 * CKR_KEY_SIZE_RANGE, CKR_KEY_TYPE_INCONSISTENT (a curve Key Vault cannot
 * sign with). */
typedef CK_RV (*akv_mech_params_fn)(const CK_MECHANISM *mech,
                                    const struct akv_obj *key,
                                    struct akv_mech_plan *plan);

struct akv_mech {
    CK_MECHANISM_TYPE type;
    CK_MECHANISM_INFO info; /* sizes: RSA/EC bits, AES bytes, generic bits */
    CK_KEY_TYPE key_type;   /* CKK_RSA, CKK_EC, CKK_AES, CKK_GENERIC_SECRET */
    CK_KEY_TYPE key_type2;  /* another accepted key type or AKV_MECH_NO_KT */
    CK_FLAGS vault;         /* flags Key Vault performs; others are local */
    CK_MECHANISM_TYPE hash; /* sign/verify: local digest first, or 0 */
    akv_mech_params_fn params; /* NULL: no parameters */
};

/* What akv_mech_plan decided for one operation. */
struct akv_mech_plan {
    const struct akv_mech *row;
    CK_FLAGS op;            /* the one CKF_* flag of the operation */
    bool vault;             /* Key Vault performs it (else local) */
    enum akv_kv_alg alg;    /* Key Vault algorithm (or the local twin) */
    CK_MECHANISM_TYPE hash; /* digest (row's or the PSS hashAlg), or 0 */
    size_t salt_len;        /* PSS salt bytes (= hash length) */
    size_t out_len;         /* fixed output bytes (RSA modulus, ECDSA
                               r||s); 0 = depends on the input */
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
 * skip) not the row's -> CKR_KEY_TYPE_INCONSISTENT. For operations
 * without a key object (C_GenerateKey); keyed ones use akv_mech_plan.
 */
CK_RV akv_mech_check(const CK_MECHANISM *mech, CK_FLAGS flag,
                     CK_KEY_TYPE key_type);

/*
 * akv_mech_plan - plans operation OP (one of CKF_ENCRYPT, CKF_DECRYPT,
 * CKF_SIGN, CKF_VERIFY, CKF_WRAP, CKF_UNWRAP, CKF_MESSAGE_ENCRYPT,
 * CKF_MESSAGE_DECRYPT) of MECH with KEY (a key
 * object of token T; its attributes are read under T's lock). Checks, in
 * this order, and returns the first failure:
 *   CKR_MECHANISM_INVALID           not in the table or OP not offered, or
 *                                   not in the key's CKA_ALLOWED_MECHANISMS
 *                                   (v3.0 §4.7)
 *   CKR_KEY_TYPE_INCONSISTENT       key type or class not the row's; a
 *                                   vault operation on a key that is not a
 *                                   vault key version, a local one on a key
 *                                   without local material (callers of
 *                                   wrap/unwrap map this to their code)
 *   CKR_MECHANISM_PARAM_INVALID     parameters (row's params function);
 *                                   CKR_KEY_SIZE_RANGE from it
 *   CKR_KEY_FUNCTION_NOT_PERMITTED  the usage attribute is FALSE (for
 *                                   vault keys it mirrors key_ops)
 * On CKR_OK *PLAN is filled.
 */
CK_RV akv_mech_plan(struct akv_token *t, const CK_MECHANISM *mech, CK_FLAGS op,
                    struct akv_obj *key, struct akv_mech_plan *plan);

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

#define AKV_MECH_GCM_MAX_IV  256 /* bytes: bound on a CK_GCM_PARAMS IV */
#define AKV_MECH_GCM_MAX_AAD (256ul * 1024ul * 1024ul) /* bytes: AAD bound */
#define AKV_MECH_HSM_GCM_IV  12 /* bytes: Managed HSM's AES-GCM IV */

/*
 * akv_mech_gcm_params - MECH's CK_GCM_PARAMS (Current Mechanisms v3.0
 * §2.13.3, or the v2.40 layout without ulIvBits, told apart by
 * ulParameterLen) into *OUT. CKR_MECHANISM_PARAM_INVALID unless: the
 * length is one of the two, pIv is set with 1..256 bytes, pAAD is set when
 * ulAADLen > 0, ulTagBits is 32..128 in whole bytes. Local and vault GCM
 * both start here; the vault adds its own limits (token/vault_aes.h).
 */
CK_RV akv_mech_gcm_params(const CK_MECHANISM *mech, CK_GCM_PARAMS *out);

/* akv_mech_hash_len - output bytes of CKM_SHA_1/SHA224/256/384/512, or 0. */
size_t akv_mech_hash_len(CK_MECHANISM_TYPE hash);

#endif /* AKV_TOKEN_MECH_H */
