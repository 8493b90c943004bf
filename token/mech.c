/* SPDX-License-Identifier: Apache-2.0 */
#include "mech.h"

#include <string.h>

#include <openssl/core_names.h>

#include "../common/log.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "token.h"

#define RSA_FLAGS (CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)
#define AES_FLAGS (CKF_ENCRYPT | CKF_DECRYPT)
/* v3.0 message-based encryption (§5.13-5.14): AES-GCM with a Managed HSM
 * key, the HSM picking each message's IV (token/vault_aes.h). */
#define MSG_FLAGS (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)
#define KW_FLAGS  (CKF_WRAP | CKF_UNWRAP)
#define NO_KT     AKV_MECH_NO_KT /* no key (digests), or no second type */
#define SIG_FLAGS (CKF_SIGN | CKF_VERIFY)
/* v3.0 §2.3.4: EC mechanisms over prime fields, named curves, uncompressed
 * points. */
#define EC_SIG_FLAGS                                                           \
    (SIG_FLAGS | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)

static CK_RV rsa_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                        struct akv_mech_plan *plan);
static CK_RV aes_kw_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                           struct akv_mech_plan *plan);
static CK_RV pss_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                        struct akv_mech_plan *plan);
static CK_RV ecdsa_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                          struct akv_mech_plan *plan);
static CK_RV local_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                          struct akv_mech_plan *plan);
static CK_RV aes_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                        struct akv_mech_plan *plan);
static CK_RV hmac_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                         struct akv_mech_plan *plan);

/* Sorted by mechanism type (a unit test checks it). Row format: mech.h.
 * Kept one row per line, wider than the usual 80 columns. */
/* clang-format off */
static const struct akv_mech table[] = {
    /* C_GenerateKeyPair: CKA_TOKEN TRUE -> vault "Create Key" (kty RSA/RSA-HSM, keys/create and
     * tokens[].allow_create); FALSE -> a local session key pair. Bits 2048/3072/4096 (token/keygen.h). */
    {CKM_RSA_PKCS_KEY_PAIR_GEN, {2048, 4096, CKF_GENERATE_KEY_PAIR}, CKK_RSA, NO_KT, CKF_GENERATE_KEY_PAIR, 0, NULL},
    /* Decrypt/unwrap: vault RSA1_5; encrypt local (public key); wrap vault (or local with "wrap": "local");
     * sign: vault RS256/384/512 by the DigestInfo's OID; verify local. Key sizes in bits. */
    {CKM_RSA_PKCS,            {2048, 4096, RSA_FLAGS | SIG_FLAGS}, CKK_RSA, NO_KT, CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP | CKF_SIGN, 0, rsa_params},
    /* As CKM_RSA_PKCS with RSA-OAEP / RSA-OAEP-256 (akv_mech_rsa_alg). */
    {CKM_RSA_PKCS_OAEP,       {2048, 4096, RSA_FLAGS}, CKK_RSA, NO_KT, CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP, 0, rsa_params},
    /* Sign: vault PS256/384/512 over the given hash; verify local. */
    {CKM_RSA_PKCS_PSS,        {2048, 4096, SIG_FLAGS}, CKK_RSA, NO_KT, CKF_SIGN, 0, pss_params},
    /* Hashed locally, then vault RS* / PS*; verify local. */
    {CKM_SHA256_RSA_PKCS,     {2048, 4096, SIG_FLAGS}, CKK_RSA, NO_KT, CKF_SIGN, CKM_SHA256, NULL},
    {CKM_SHA384_RSA_PKCS,     {2048, 4096, SIG_FLAGS}, CKK_RSA, NO_KT, CKF_SIGN, CKM_SHA384, NULL},
    {CKM_SHA512_RSA_PKCS,     {2048, 4096, SIG_FLAGS}, CKK_RSA, NO_KT, CKF_SIGN, CKM_SHA512, NULL},
    {CKM_SHA256_RSA_PKCS_PSS, {2048, 4096, SIG_FLAGS}, CKK_RSA, NO_KT, CKF_SIGN, CKM_SHA256, pss_params},
    {CKM_SHA384_RSA_PKCS_PSS, {2048, 4096, SIG_FLAGS}, CKK_RSA, NO_KT, CKF_SIGN, CKM_SHA384, pss_params},
    {CKM_SHA512_RSA_PKCS_PSS, {2048, 4096, SIG_FLAGS}, CKK_RSA, NO_KT, CKF_SIGN, CKM_SHA512, pss_params},
    /* HMAC (Current Mechanisms §2.22-2.25), local in the private context with generic-secret and AES keys;
     * _GENERAL takes the MAC length (CK_MAC_GENERAL_PARAMS). Key sizes in bytes. */
    /* Local digests (token/digest.c); no key, sizes 0. */
    {CKM_SHA512_224,           {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA512_256,           {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA_1,                {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA_1_HMAC,          {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA_1, hmac_params},
    {CKM_SHA_1_HMAC_GENERAL,  {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA_1, hmac_params},
    {CKM_SHA256,               {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA256_HMAC,         {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA256, hmac_params},
    {CKM_SHA256_HMAC_GENERAL, {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA256, hmac_params},
    {CKM_SHA224,               {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA384,               {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA384_HMAC,         {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA384, hmac_params},
    {CKM_SHA384_HMAC_GENERAL, {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA384, hmac_params},
    {CKM_SHA512,               {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA512_HMAC,         {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA512, hmac_params},
    {CKM_SHA512_HMAC_GENERAL, {1, 512, SIG_FLAGS}, CKK_GENERIC_SECRET, CKK_AES, 0, CKM_SHA512, hmac_params},
    {CKM_SHA3_256,             {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA3_224,             {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA3_384,             {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    {CKM_SHA3_512,             {0, 0, CKF_DIGEST}, NO_KT, NO_KT, 0, 0, NULL},
    /* Local; sizes in bits (Current Mechanisms §2.39). */
    {CKM_GENERIC_SECRET_KEY_GEN, {8, 4096, CKF_GENERATE}, CKK_GENERIC_SECRET, NO_KT, 0, 0, NULL},
    /* As CKM_RSA_PKCS_KEY_PAIR_GEN with kty EC/EC-HSM: P-256, P-384, P-521, secp256k1 (field bits). */
    {CKM_EC_KEY_PAIR_GEN,     {256, 521, CKF_GENERATE_KEY_PAIR | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS}, CKK_EC, NO_KT, CKF_GENERATE_KEY_PAIR, 0, NULL},
    /* Sign: vault ES256/384/512/ES256K by the key's curve over the given hash (r||s); verify local.
     * Key sizes in bits (field size). */
    {CKM_ECDSA,               {256, 521, EC_SIG_FLAGS}, CKK_EC, NO_KT, CKF_SIGN, 0, ecdsa_params},
    /* Hashed locally, then as CKM_ECDSA (the hash must be the curve's for Key Vault to sign). */
    {CKM_ECDSA_SHA256,        {256, 521, EC_SIG_FLAGS}, CKK_EC, NO_KT, CKF_SIGN, CKM_SHA256, ecdsa_params},
    {CKM_ECDSA_SHA384,        {256, 521, EC_SIG_FLAGS}, CKK_EC, NO_KT, CKF_SIGN, CKM_SHA384, ecdsa_params},
    {CKM_ECDSA_SHA512,        {256, 521, EC_SIG_FLAGS}, CKK_EC, NO_KT, CKF_SIGN, CKM_SHA512, ecdsa_params},
    /* Local; AES sizes are in bytes (Current Mechanisms §2.14). */
    {CKM_AES_KEY_GEN,         {16, 32, CKF_GENERATE}, CKK_AES, NO_KT, 0, 0, NULL},
    {CKM_AES_ECB,             {16, 32, AES_FLAGS}, CKK_AES, NO_KT, 0, 0, local_params},
    /* CBC, CBC-PAD, GCM: local on a key the token holds; Managed HSM encrypt/decrypt on a vault oct-HSM
     * key (A128CBC.../A128CBCPAD.../A128GCM..., token/vault_aes.h; GCM: C_Decrypt, and both directions
     * through the message functions, which let the HSM pick the IV; message functions: vault keys only). */
    {CKM_AES_CBC,             {16, 32, AES_FLAGS}, CKK_AES, NO_KT, AES_FLAGS, 0, aes_params},
    {CKM_AES_CBC_PAD,         {16, 32, AES_FLAGS}, CKK_AES, NO_KT, AES_FLAGS, 0, aes_params},
    {CKM_AES_CTR,             {16, 32, AES_FLAGS}, CKK_AES, NO_KT, 0, 0, local_params},
    {CKM_AES_GCM,             {16, 32, AES_FLAGS | MSG_FLAGS}, CKK_AES, NO_KT, AES_FLAGS | MSG_FLAGS, 0, aes_params},
    /* Vault (Managed HSM oct-HSM keys): A128KW/A192KW/A256KW; bytes. */
    {CKM_AES_KEY_WRAP,        {16, 32, KW_FLAGS}, CKK_AES, NO_KT, KW_FLAGS, 0, aes_kw_params},
    /* Vault: CKM_AES_KEY_WRAP_PAD (RFC 5649); bytes. */
    {CKM_AES_KEY_WRAP_KWP,    {16, 32, KW_FLAGS}, CKK_AES, NO_KT, KW_FLAGS, 0, aes_kw_params},
};
/* clang-format on */

#define N_ROWS (sizeof(table) / sizeof(table[0]))

const struct akv_mech *akv_mech_table(size_t *n)
{
    *n = N_ROWS;
    return table;
}

const struct akv_mech *akv_mech_find(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < N_ROWS; i++) {
        if (table[i].type == type) {
            return &table[i];
        }
    }
    return NULL;
}

CK_RV akv_mech_get_list(CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    CK_ULONG n = (CK_ULONG)N_ROWS;

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
    if (key_type != (CK_KEY_TYPE)-1 && key_type != m->key_type
        && key_type != m->key_type2) {
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    return CKR_OK;
}

/* ---- the plan ---- */

/* Which object of an asymmetric key pair does an operation. */
enum side { PUBLIC, PRIVATE, EITHER };

/* The usage attribute each operation needs (v3.0 §4.7-§4.10). */
static const struct {
    CK_FLAGS op;
    CK_ATTRIBUTE_TYPE usage;
    enum side side;
} ops[] = {
    {CKF_ENCRYPT, CKA_ENCRYPT, PUBLIC},
    {CKF_DECRYPT, CKA_DECRYPT, PRIVATE},
    {CKF_MESSAGE_ENCRYPT, CKA_ENCRYPT, PUBLIC},
    {CKF_MESSAGE_DECRYPT, CKA_DECRYPT, PRIVATE},
    {CKF_SIGN, CKA_SIGN, PRIVATE},
    {CKF_VERIFY, CKA_VERIFY, PUBLIC},
    /* The vault wraps with the key version whichever object names it; the
     * private object has no CKA_WRAP (v3.0 §5.18.3), which refuses it. */
    {CKF_WRAP, CKA_WRAP, EITHER},
    {CKF_UNWRAP, CKA_UNWRAP, PRIVATE},
};

/* Key type, class and origin against the row and the operation. */
static bool key_fits(const struct akv_mech *m, const struct akv_obj *key,
                     enum side side, bool vault)
{
    bool asym = key->key_type == CKK_RSA || key->key_type == CKK_EC;

    if (key->key_type != m->key_type && key->key_type != m->key_type2) {
        return false;
    }
    if (asym && side != EITHER
        && key->cls != (side == PUBLIC ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY)) {
        return false;
    }
    if (!asym && key->cls != CKO_SECRET_KEY) {
        return false;
    }
    if (vault) {
        return key->origin == AKV_ORIGIN_VAULT && key->vkey != NULL;
    }
    /* Local: a public key object's material, a local private key (session
     * key pairs sign locally; token/keygen.h), or a secret value the token
     * holds (a vault oct-HSM key's value never leaves the vault). */
    if (asym && key->cls == CKO_PRIVATE_KEY) {
        return key->priv != NULL && m->vault != 0;
    }
    return asym ? key->pub != NULL && key->cls == CKO_PUBLIC_KEY
                : key->origin != AKV_ORIGIN_VAULT;
}

/* Where OP runs: in Key Vault when the row says so (m->vault) - except
 * that a secret key whose value the token holds (session or store object)
 * encrypts and decrypts locally with the same mechanism: the row's vault
 * flags then name what Managed HSM does for a vault oct-HSM key. Wrap and
 * unwrap with a secret key are vault-only (no local AES key wrap). */
static bool runs_in_vault(const struct akv_mech *m, CK_FLAGS op,
                          const struct akv_obj *key)
{
    if ((m->vault & op) == 0) {
        return false;
    }
    /* What the vault does for its keys runs locally for a key pair the
     * token generated in this process (token/keygen.h): signing and RSA
     * decryption (not unwrapping into a key object: that stays the
     * vault's; akv_mech_plan refuses the other operations on it). */
    if (key->priv != NULL) {
        return false;
    }
    return !(key->cls == CKO_SECRET_KEY && key->origin != AKV_ORIGIN_VAULT
             && (op & (CKF_ENCRYPT | CKF_DECRYPT)) != 0);
}

CK_RV akv_mech_plan(struct akv_token *t, const CK_MECHANISM *mech, CK_FLAGS op,
                    struct akv_obj *key, struct akv_mech_plan *plan)
{
    CK_RV rv = CKR_MECHANISM_INVALID;
    const struct akv_mech *m = akv_mech_find(mech->mechanism);
    size_t i = 0;
    bool mech_ok;
    bool allowed;

    for (i = 0; i < sizeof(ops) / sizeof(ops[0]) && ops[i].op != op; i++) {
    }
    if (m == NULL || (m->info.flags & op) == 0
        || i == sizeof(ops) / sizeof(ops[0])) {
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    mech_ok = akv_attrs_mech_allowed(&key->attrs, mech->mechanism);
    allowed = akv_attrs_bool(&key->attrs, ops[i].usage, CK_FALSE);
    pthread_rwlock_unlock(&t->lock);
    /* v3.0 §4.7 CKA_ALLOWED_MECHANISMS: the key may not be used with any
     * other mechanism. */
    if (!mech_ok) {
        goto out;
    }
    memset(plan, 0, sizeof(*plan));
    plan->row = m;
    plan->op = op;
    plan->vault = runs_in_vault(m, op, key);
    if (key->priv != NULL && op != CKF_SIGN && op != CKF_DECRYPT) {
        rv = CKR_KEY_TYPE_INCONSISTENT;
        goto out;
    }
    plan->hash = m->hash;
    if (!key_fits(m, key, ops[i].side, plan->vault)) {
        rv = CKR_KEY_TYPE_INCONSISTENT;
        goto out;
    }
    if (key->pub != NULL && key->key_type == CKK_RSA) {
        plan->out_len = (size_t)EVP_PKEY_get_size(key->pub);
    }
    rv = CKR_MECHANISM_PARAM_INVALID;
    if (m->params == NULL
        && (mech->pParameter != NULL || mech->ulParameterLen != 0)) {
        goto out;
    }
    if (m->params != NULL) {
        rv = m->params(mech, key, plan);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    rv = allowed ? CKR_OK : CKR_KEY_FUNCTION_NOT_PERMITTED;
out:
    return rv;
}

/* ---- parameter functions ---- */

static CK_RV rsa_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                        struct akv_mech_plan *plan)
{
    (void)key;
    return akv_mech_rsa_alg(mech, &plan->alg);
}

static CK_RV aes_kw_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                           struct akv_mech_plan *plan)
{
    return akv_mech_aes_kw_alg(mech, key->vkey->oct_bits / 8, &plan->alg);
}

/* The MGF1 generator for each hash (v3.0 Current Mechanisms §2.1.7). */
static CK_RSA_PKCS_MGF_TYPE mgf_of(CK_MECHANISM_TYPE hash)
{
    switch (hash) {
    case CKM_SHA256:
        return CKG_MGF1_SHA256;
    case CKM_SHA384:
        return CKG_MGF1_SHA384;
    case CKM_SHA512:
        return CKG_MGF1_SHA512;
    default:
        return 0;
    }
}

/* CK_RSA_PKCS_PSS_PARAMS (Current Mechanisms §2.1.11) that Key Vault's
 * PS256/384/512 can honour: hashAlg the mechanism's (any of SHA-256/384/512
 * for CKM_RSA_PKCS_PSS), MGF1 with the same hash, sLen = the hash length.
 * Verification is held to the same rule (the same mechanisms). */
static CK_RV pss_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                        struct akv_mech_plan *plan)
{
    const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
    static const enum akv_kv_alg ps[] = {AKV_KV_ALG_PS256, AKV_KV_ALG_PS384,
                                         AKV_KV_ALG_PS512};
    static const CK_MECHANISM_TYPE h[] = {CKM_SHA256, CKM_SHA384, CKM_SHA512};

    (void)key;
    if (p == NULL || mech->ulParameterLen != sizeof(*p)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if ((plan->row->hash != 0 && p->hashAlg != plan->row->hash)
        || mgf_of(p->hashAlg) == 0 || p->mgf != mgf_of(p->hashAlg)
        || p->sLen != akv_mech_hash_len(p->hashAlg)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        if (h[i] == p->hashAlg) {
            plan->alg = ps[i];
        }
    }
    plan->hash = p->hashAlg;
    plan->salt_len = p->sLen;
    return CKR_OK;
}

/* The curves Key Vault signs on (JsonWebKeyCurveName), by OpenSSL group
 * name: the algorithm, its hash and the field size in bytes. */
static const struct {
    const char *group;
    enum akv_kv_alg alg;
    CK_MECHANISM_TYPE hash;
    size_t field;
} curves[] = {
    {"prime256v1", AKV_KV_ALG_ES256, CKM_SHA256, 32},
    {"secp384r1", AKV_KV_ALG_ES384, CKM_SHA384, 48},
    {"secp521r1", AKV_KV_ALG_ES512, CKM_SHA512, 66},
    {"secp256k1", AKV_KV_ALG_ES256K, CKM_SHA256, 32},
};

/* CKM_ECDSA*: no parameters; the key's curve picks the algorithm and the
 * r||s length. Signing in the vault needs the mechanism's hash to be the
 * algorithm's (ES384 signs a SHA-384 digest): else
 * CKR_KEY_TYPE_INCONSISTENT. */
static CK_RV ecdsa_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                          struct akv_mech_plan *plan)
{
    char group[32] = "";
    size_t i = 0;

    if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (key->pub == NULL
        || EVP_PKEY_get_utf8_string_param(key->pub, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), NULL)
               != 1) {
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(curves[i].group, group) == 0) {
            break;
        }
    }
    if (i == sizeof(curves) / sizeof(curves[0])) {
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    if (plan->vault && plan->row->hash != 0
        && plan->row->hash != curves[i].hash) {
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    plan->alg = curves[i].alg;
    if (plan->row->hash == 0) {
        plan->hash = curves[i].hash;
    }
    plan->out_len = 2 * curves[i].field;
    return CKR_OK;
}

/* CKM_SHA*_HMAC: no parameters, the MAC is the hash length;
 * CKM_SHA*_HMAC_GENERAL: CK_MAC_GENERAL_PARAMS (a CK_ULONG) of 1..hash
 * length bytes (Current Mechanisms §2.22.4). */
static CK_RV hmac_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                         struct akv_mech_plan *plan)
{
    size_t full = akv_mech_hash_len(plan->row->hash);
    CK_MECHANISM_TYPE t = plan->row->type;
    bool general = t == CKM_SHA_1_HMAC_GENERAL || t == CKM_SHA256_HMAC_GENERAL
                   || t == CKM_SHA384_HMAC_GENERAL
                   || t == CKM_SHA512_HMAC_GENERAL;
    CK_ULONG n = 0;

    (void)key;
    if (!general) {
        if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
            return CKR_MECHANISM_PARAM_INVALID;
        }
        plan->out_len = full;
        return CKR_OK;
    }
    if (mech->pParameter == NULL || mech->ulParameterLen != sizeof(n)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    memcpy(&n, mech->pParameter, sizeof(n));
    if (n == 0 || n > full) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    plan->out_len = n;
    return CKR_OK;
}

/* Local ciphers check their parameters where they set up OpenSSL
 * (cipher.c aes_setup): their shapes are OpenSSL's, not Key Vault's. */
static CK_RV local_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                          struct akv_mech_plan *plan)
{
    (void)mech;
    (void)key;
    (void)plan;
    return CKR_OK;
}

/* CK_GCM_PARAMS as the PKCS#11 v2.40 document (§2.12.3) defines it, without
 * the ulIvBits of the v2.40 errata header and of v3.0 (§2.13.3). */
struct gcm_params_v240 {
    CK_BYTE_PTR pIv;
    CK_ULONG ulIvLen;
    CK_BYTE_PTR pAAD;
    CK_ULONG ulAADLen;
    CK_ULONG ulTagBits;
};

CK_RV akv_mech_gcm_params(const CK_MECHANISM *mech, CK_GCM_PARAMS *out)
{
    const CK_GCM_PARAMS *g = mech->pParameter;

    if (mech->pParameter == NULL) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (mech->ulParameterLen == sizeof(CK_GCM_PARAMS)) {
        *out = *g;
    } else if (mech->ulParameterLen == sizeof(struct gcm_params_v240)) {
        /* The v2.40 layout (see struct gcm_params_v240): Java SunPKCS11
         * sends it first to a module whose version is 2.40, and other 2.40
         * callers only know it. The lengths tell the two apart. */
        const struct gcm_params_v240 *o = mech->pParameter;

        memset(out, 0, sizeof(*out));
        out->pIv = o->pIv;
        out->ulIvLen = o->ulIvLen;
        out->ulIvBits = o->ulIvLen * 8;
        out->pAAD = o->pAAD;
        out->ulAADLen = o->ulAADLen;
        out->ulTagBits = o->ulTagBits;
    } else {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    /* The AAD goes to OpenSSL in one int-sized call: a longer one (2^32 + 5
     * on a 64-bit CK_ULONG) was truncated to its low bits, a silently
     * wrong tag. */
    if (out->pIv == NULL || out->ulIvLen == 0
        || out->ulIvLen > AKV_MECH_GCM_MAX_IV
        || (out->pAAD == NULL && out->ulAADLen > 0)
        || out->ulAADLen > AKV_MECH_GCM_MAX_AAD || out->ulTagBits < 32
        || out->ulTagBits > 128 || out->ulTagBits % 8 != 0) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    return CKR_OK;
}

/* CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_GCM: on a local key, OpenSSL's
 * shapes (checked in cipher.c); on a vault oct-HSM key, what Managed HSM's
 * encrypt/decrypt can honour (token/vault_aes.h "Parameters"). */
static CK_RV aes_params(const CK_MECHANISM *mech, const struct akv_obj *key,
                        struct akv_mech_plan *plan)
{
    CK_GCM_PARAMS g;
    CK_RV rv;

    if (!plan->vault) {
        return local_params(mech, key, plan);
    }
    if (plan->op == CKF_MESSAGE_ENCRYPT || plan->op == CKF_MESSAGE_DECRYPT) {
        /* Parameters come with each message (CK_GCM_MESSAGE_PARAMS). */
        return mech->pParameter == NULL && mech->ulParameterLen == 0
                   ? CKR_OK
                   : CKR_MECHANISM_PARAM_INVALID;
    }
    if (mech->mechanism != CKM_AES_GCM) {
        return mech->pParameter != NULL && mech->ulParameterLen == 16
                   ? CKR_OK
                   : CKR_MECHANISM_PARAM_INVALID;
    }
    rv = akv_mech_gcm_params(mech, &g);
    if (rv != CKR_OK) {
        return rv;
    }
    if (plan->op == CKF_ENCRYPT) {
        AKV_LOG_ERR("key %s: C_EncryptInit(CKM_AES_GCM) with a Managed HSM "
                    "key is refused: the HSM chooses the IV itself and "
                    "cannot use the one in CK_GCM_PARAMS (use "
                    "C_MessageEncryptInit + C_EncryptMessage with "
                    "CKG_GENERATE_RANDOM, which returns the HSM's IV; "
                    "C_Decrypt works)",
                    key->vkey->name);
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (g.ulIvLen != AKV_MECH_HSM_GCM_IV || g.ulTagBits != 128
        || g.ulAADLen > AKV_KV_CRYPT_MAX) {
        AKV_LOG_ERR("key %s: CKM_AES_GCM decryption with a Managed HSM key "
                    "takes a 12-byte IV and a 128-bit tag (given %lu bytes, "
                    "%lu bits)",
                    key->vkey->name, (unsigned long)g.ulIvLen,
                    (unsigned long)g.ulTagBits);
        return CKR_MECHANISM_PARAM_INVALID;
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

size_t akv_mech_hash_len(CK_MECHANISM_TYPE hash)
{
    switch (hash) {
    case CKM_SHA_1:
        return 20;
    case CKM_SHA224:
        return 28;
    case CKM_SHA256:
        return 32;
    case CKM_SHA384:
        return 48;
    case CKM_SHA512:
        return 64;
    default:
        return 0;
    }
}
