/* SPDX-License-Identifier: Apache-2.0 */
#include "sign.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "../common/log.h"
#include "crypto.h"
#include "digest.h"
#include "mech.h"
#include "session.h"
#include "token.h"

#define SIGN_MAX_DATA (64ul * 1024ul) /* unhashed input, bytes */

struct akv_sig_op {
    bool verify;
    struct akv_mech_plan plan;
    struct akv_obj *key; /* reference */
    EVP_MD_CTX *md;      /* hashing mechanisms: the running digest */
    EVP_MAC_CTX *mac;    /* HMAC (local, secret key): the running MAC */
    bool multi;          /* an Update was made */
};

/* The digests Key Vault signs (JsonWebKeySignatureAlgorithm): the OpenSSL
 * name, the RS and PS algorithms, and the DER DigestInfo prefix that
 * precedes the hash (RFC 8017 §9.2 note 1). */
static const struct hash_row {
    CK_MECHANISM_TYPE mech;
    const char *name;
    size_t len;
    enum akv_kv_alg rs;
    enum akv_kv_alg ps;
    uint8_t prefix[19];
} hashes[] = {
    {CKM_SHA256,
     "SHA256",
     32,
     AKV_KV_ALG_RS256,
     AKV_KV_ALG_PS256,
     {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
      0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}},
    {CKM_SHA384,
     "SHA384",
     48,
     AKV_KV_ALG_RS384,
     AKV_KV_ALG_PS384,
     {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
      0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}},
    {CKM_SHA512,
     "SHA512",
     64,
     AKV_KV_ALG_RS512,
     AKV_KV_ALG_PS512,
     {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
      0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40}},
};

#define N_HASHES (sizeof(hashes) / sizeof(hashes[0]))

static const struct hash_row *hash_find(CK_MECHANISM_TYPE mech)
{
    for (size_t i = 0; i < N_HASHES; i++) {
        if (hashes[i].mech == mech) {
            return &hashes[i];
        }
    }
    return NULL;
}

void akv_sign_op_free(struct akv_sig_op *op)
{
    if (op == NULL) {
        return;
    }
    akv_obj_unref(op->key);
    EVP_MD_CTX_free(op->md);
    EVP_MAC_CTX_free(op->mac);
    free(op);
}

/* s->sig changes under s->lock: C_Login(CKU_CONTEXT_SPECIFIC) reads it
 * without claiming the session. */
static void set_op(struct akv_session *s, struct akv_sig_op *op)
{
    pthread_mutex_lock(&s->lock);
    s->sig = op;
    pthread_mutex_unlock(&s->lock);
}

static void end_op(struct akv_session *s)
{
    struct akv_sig_op *op = s->sig;

    set_op(s, NULL);
    akv_sign_op_free(op);
}

/* ---- init ---- */

/* HMAC (RFC 2104) keyed with the secret key's value, in the private
 * context; the value is wiped once OpenSSL holds it. */
static CK_RV hmac_setup(struct akv_session *s, struct akv_sig_op *op)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_secret value = AKV_SECRET_INIT;
    EVP_MAC *mac = NULL;
    OSSL_PARAM params[2];
    const char *name = akv_digest_md_name(op->plan.hash);

    /* A token object's value comes from the vault (unwrapKey). */
    rv = akv_token_obj_value(s->token, op->key, &value);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_GENERAL_ERROR;
    mac = EVP_MAC_fetch(akv_crypto_libctx(), "HMAC", NULL);
    op->mac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    if (op->mac == NULL || name == NULL) {
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(op->mac, value.data, value.len, params) != 1) {
        goto out;
    }
    rv = CKR_OK;
out:
    EVP_MAC_free(mac);
    akv_secret_clear(&value);
    return rv;
}

static CK_RV op_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                     CK_OBJECT_HANDLE hkey, bool verify)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *key = NULL;
    struct akv_sig_op *op = NULL;
    const struct hash_row *hr = NULL;
    EVP_MD *md = NULL;

    rv = akv_session_claim(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    if (s->sig != NULL) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    if (mech == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (akv_token_get_obj(s->token, hkey, &key) != CKR_OK
        || !akv_obj_is_key(key)) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    /* Mechanism, CKA_ALLOWED_MECHANISMS, key type/class, parameters the
     * vault can honour, CKA_SIGN/CKA_VERIFY: token/mech.h. */
    rv = akv_mech_plan(s->token, mech, verify ? CKF_VERIFY : CKF_SIGN, key,
                       &op->plan);
    if (rv != CKR_OK) {
        goto out;
    }
    op->verify = verify;
    op->key = key;
    key = NULL;
    if (op->key->cls == CKO_SECRET_KEY) {
        rv = hmac_setup(s, op);
        if (rv != CKR_OK) {
            goto out;
        }
    } else if (op->plan.row->hash != 0) {
        rv = CKR_GENERAL_ERROR;
        hr = hash_find(op->plan.hash);
        md = hr != NULL ? akv_crypto_md(hr->name) : NULL;
        op->md = EVP_MD_CTX_new();
        if (md == NULL || op->md == NULL
            || EVP_DigestInit_ex2(op->md, md, NULL) != 1) {
            goto out;
        }
    }
    set_op(s, op);
    op = NULL;
    rv = CKR_OK;
out:
    EVP_MD_free(md);
    akv_sign_op_free(op);
    akv_obj_unref(key);
    akv_session_release(s);
    return rv;
}

CK_RV akv_sign_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                    CK_OBJECT_HANDLE key)
{
    return op_init(h, mech, key, false);
}

CK_RV akv_verify_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                      CK_OBJECT_HANDLE key)
{
    return op_init(h, mech, key, true);
}

/* Claims the session with an active sign (VERIFY false) or verify
 * operation. ARGS_OK false -> CKR_ARGUMENTS_BAD, the session stays claimed
 * when the operation is active so that the caller ends it. */
static CK_RV claim_op(CK_SESSION_HANDLE h, bool verify, bool args_ok,
                      struct akv_session **out)
{
    CK_RV rv = akv_session_claim(h, out);

    if (rv != CKR_OK) {
        *out = NULL;
        return rv;
    }
    if ((*out)->sig == NULL || (*out)->sig->verify != verify) {
        akv_session_release(*out);
        *out = NULL;
        return args_ok ? CKR_OPERATION_NOT_INITIALIZED : CKR_ARGUMENTS_BAD;
    }
    return args_ok ? CKR_OK : CKR_ARGUMENTS_BAD;
}

/* ---- the digest to sign ---- */

/*
 * The digest and the Key Vault algorithm for DATA (single part) or for the
 * running digest (DATA NULL after updates). DIG holds 512 bytes.
 */
static CK_RV digest_of(struct akv_sig_op *op, const CK_BYTE *data, CK_ULONG len,
                       uint8_t *dig, size_t *dig_len, enum akv_kv_alg *alg)
{
    const struct akv_mech_plan *p = &op->plan;
    const struct hash_row *hr = NULL;
    unsigned int l = 0;

    if (p->row->hash != 0) {
        if ((data != NULL && len > 0
             && EVP_DigestUpdate(op->md, data, len) != 1)
            || EVP_DigestFinal_ex(op->md, dig, &l) != 1) {
            return CKR_GENERAL_ERROR;
        }
        *dig_len = l;
    } else if (p->row->type == CKM_RSA_PKCS) {
        /* A DER DigestInfo: its OID names the hash (RFC 8017 §9.2). */
        for (size_t i = 0; i < N_HASHES && hr == NULL; i++) {
            if (data != NULL && len == sizeof(hashes[i].prefix) + hashes[i].len
                && memcmp(data, hashes[i].prefix, sizeof(hashes[i].prefix))
                       == 0) {
                hr = &hashes[i];
            }
        }
        if (hr == NULL) {
            /* Another DigestInfo (SHA-1, ...) or TLS's MD5||SHA-1: Key
             * Vault's RSNULL pads exactly as CKM_RSA_PKCS does (RFC 8017
             * §9.2 step 3 onwards), up to k - 11 bytes. */
            if (data == NULL || len == 0 || len + 11 > op->plan.out_len) {
                return CKR_DATA_LEN_RANGE;
            }
            memcpy(dig, data, len);
            *dig_len = len;
            *alg = AKV_KV_ALG_RSNULL;
            return CKR_OK;
        }
        *dig_len = hr->len;
        memcpy(dig, data + sizeof(hr->prefix), hr->len);
        *alg = hr->rs;
        return CKR_OK;
    } else {
        /* CKM_RSA_PKCS_PSS, CKM_ECDSA: the data is the digest. */
        if (data == NULL || len != akv_mech_hash_len(p->hash)) {
            return CKR_DATA_LEN_RANGE;
        }
        memcpy(dig, data, len);
        *dig_len = len;
    }
    hr = hash_find(p->hash);
    if ((p->alg >= AKV_KV_ALG_PS256 && p->alg <= AKV_KV_ALG_ES256K)
        || hr == NULL) {
        *alg = p->alg; /* PS* and ES* were chosen at init */
    } else {
        *alg = hr->rs;
    }
    return CKR_OK;
}

/* Key Vault "Sign" with the handle's bound key version. */
static CK_RV vault_sign(struct akv_session *s, const uint8_t *dig,
                        size_t dig_len, enum akv_kv_alg alg, uint8_t **sig_out,
                        size_t *sig_len)
{
    struct akv_token *t = s->token;
    const struct akv_kv_key *k = s->sig->key->vkey;
    CK_RV rv;

    rv = t->kv->ops->sign(t->kv, k->name, k->version, alg, dig, dig_len,
                          sig_out, sig_len);
    /* A refusal (403: no keys/sign permission, disabled, nbf/exp) is
     * logged once, with Key Vault's reason, by the keyvault layer. */
    if (rv == CKR_OK && *sig_len != s->sig->plan.out_len) {
        AKV_LOG_ERR("key %s/%s: Key Vault signed with %zu bytes, expected "
                    "%zu",
                    k->name, k->version, *sig_len, s->sig->plan.out_len);
        free(*sig_out);
        *sig_out = NULL;
        rv = CKR_DEVICE_ERROR;
    }
    return rv;
}

/* The digest name of a Key Vault RSA signature algorithm, NULL for RSNULL
 * (the bytes are signed as given). */
static const char *rsa_md(enum akv_kv_alg alg)
{
    switch (alg) {
    case AKV_KV_ALG_RS256:
    case AKV_KV_ALG_PS256:
        return "SHA256";
    case AKV_KV_ALG_RS384:
    case AKV_KV_ALG_PS384:
        return "SHA384";
    case AKV_KV_ALG_RS512:
    case AKV_KV_ALG_PS512:
        return "SHA512";
    default:
        return NULL;
    }
}

/* DER ECDSA-Sig-Value -> r||s of HALF bytes each (Current Mechanisms
 * §2.3.1). */
static CK_RV ecdsa_raw(const uint8_t *der, size_t der_len, size_t half,
                       uint8_t *out)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r = NULL;
    const BIGNUM *sv = NULL;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (es == NULL) {
        return rv;
    }
    ECDSA_SIG_get0(es, &r, &sv);
    if (BN_bn2binpad(r, out, (int)half) == (int)half
        && BN_bn2binpad(sv, out + half, (int)half) == (int)half) {
        rv = CKR_OK;
    }
    ECDSA_SIG_free(es);
    return rv;
}

/* The same signature as the vault's, made locally with a session key
 * pair's private key (token/keygen.h) in the private context: PKCS#1 v1.5
 * (RFC 8017 §8.2) over the DigestInfo of the digest (RSNULL: over the
 * bytes), PSS with MGF1 of the same hash and salt = hash length, ECDSA
 * r||s. */
static CK_RV local_sign(struct akv_sig_op *op, const uint8_t *dig,
                        size_t dig_len, enum akv_kv_alg alg, uint8_t **sig_out,
                        size_t *sig_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    EVP_PKEY_CTX *c = NULL;
    EVP_MD *md = NULL;
    const char *mdn = rsa_md(alg);
    uint8_t *buf = NULL;
    size_t len = 0;

    c = EVP_PKEY_CTX_new_from_pkey(akv_crypto_libctx(), op->key->priv, NULL);
    if (c == NULL || EVP_PKEY_sign_init(c) != 1) {
        goto out;
    }
    if (op->key->key_type == CKK_RSA) {
        bool pss = alg >= AKV_KV_ALG_PS256 && alg <= AKV_KV_ALG_PS512;

        md = mdn != NULL ? EVP_MD_fetch(akv_crypto_libctx(), mdn, NULL) : NULL;
        if ((mdn != NULL
             && (md == NULL || EVP_PKEY_CTX_set_signature_md(c, md) != 1))
            || EVP_PKEY_CTX_set_rsa_padding(c, pss ? RSA_PKCS1_PSS_PADDING
                                                   : RSA_PKCS1_PADDING)
                   != 1) {
            goto out;
        }
        if (pss
            && (EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) != 1
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(c, (int)dig_len) != 1)) {
            goto out;
        }
    }
    if (EVP_PKEY_sign(c, NULL, &len, dig, dig_len) != 1
        || (buf = malloc(len)) == NULL
        || EVP_PKEY_sign(c, buf, &len, dig, dig_len) != 1) {
        goto out;
    }
    if (op->key->key_type == CKK_EC) {
        *sig_out = malloc(op->plan.out_len);
        if (*sig_out == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        rv = ecdsa_raw(buf, len, op->plan.out_len / 2, *sig_out);
        if (rv != CKR_OK) {
            free(*sig_out);
            *sig_out = NULL;
            goto out;
        }
        *sig_len = op->plan.out_len;
    } else {
        *sig_out = buf;
        *sig_len = len;
        buf = NULL;
        rv = CKR_OK;
    }
out:
    free(buf);
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(c);
    return rv;
}

/* ---- sign ---- */

static CK_RV verify_local(struct akv_sig_op *op, const uint8_t *dig,
                          size_t dig_len, const CK_BYTE *sig, CK_ULONG sig_len);

/* The vault's answer is checked like any other (issue 7 §3): a signature of
 * the right length that does not verify under the key's public half -
 * another key or version, a corrupted or hostile answer - is never handed
 * over. One local verification (tens of microseconds) per vault call.
 * IN/IN_LEN: what the key's mechanism verifies (the DigestInfo as given
 * for CKM_RSA_PKCS, else the digest). CKR_OK or CKR_DEVICE_ERROR. */
static CK_RV check_answer(struct akv_session *s, const uint8_t *in,
                          size_t in_len, const uint8_t *sig, size_t sig_len)
{
    const struct akv_kv_key *k = s->sig->key->vkey;
    CK_RV rv = verify_local(s->sig, in, in_len, sig, (CK_ULONG)sig_len);

    if (rv != CKR_OK) {
        AKV_LOG_ERR("key %s/%s: Key Vault's signature does not verify with "
                    "the key's public key (0x%lx); not used",
                    k->name, k->version, (unsigned long)rv);
        rv = CKR_DEVICE_ERROR;
    }
    return rv;
}

/* The HMAC over the data so far and DATA, truncated to plan.out_len
 * (_HMAC_GENERAL) into OUT. */
static CK_RV hmac_final(struct akv_sig_op *op, const CK_BYTE *data,
                        CK_ULONG len, uint8_t *out)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t l = 0;

    if ((data != NULL && len > 0 && EVP_MAC_update(op->mac, data, len) != 1)
        || EVP_MAC_final(op->mac, mac, &l, sizeof(mac)) != 1
        || l < op->plan.out_len) {
        return CKR_GENERAL_ERROR;
    }
    memcpy(out, mac, op->plan.out_len);
    OPENSSL_cleanse(mac, sizeof(mac));
    return CKR_OK;
}

static CK_RV sign_common(CK_SESSION_HANDLE h, bool final, const CK_BYTE *data,
                         CK_ULONG len, CK_BYTE *sig, CK_ULONG *sig_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    uint8_t dig[512];
    size_t dig_len = 0;
    enum akv_kv_alg alg = AKV_KV_ALG_RS256;
    uint8_t *out = NULL;
    size_t out_len = 0;
    bool keep = false;

    rv = claim_op(h, false,
                  sig_len != NULL && (final || data != NULL || len == 0), &s);
    if (rv != CKR_OK) {
        goto out;
    }
    if (final && s->sig->plan.row->hash == 0) {
        rv = CKR_MECHANISM_INVALID; /* single-part mechanism */
        goto out;
    }
    if (!final && s->sig->multi) {
        rv = CKR_OPERATION_ACTIVE;
        keep = true;
        goto out;
    }
    if (!final && s->sig->plan.row->hash == 0 && len > SIGN_MAX_DATA) {
        rv = CKR_DATA_LEN_RANGE;
        goto out;
    }
    /* The length is the key's: no computation, no vault call. */
    if (sig == NULL || *sig_len < s->sig->plan.out_len) {
        rv = sig == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        *sig_len = s->sig->plan.out_len;
        keep = true;
        goto out;
    }
    if (s->sig->mac != NULL) {
        rv = hmac_final(s->sig, final ? NULL : data, final ? 0 : len, sig);
        if (rv == CKR_OK) {
            *sig_len = (CK_ULONG)s->sig->plan.out_len;
        }
        goto out;
    }
    rv = digest_of(s->sig, final ? NULL : data, final ? 0 : len, dig, &dig_len,
                   &alg);
    if (rv != CKR_OK) {
        goto out;
    }
    /* No lock is held: the session is only claimed. */
    rv = s->sig->plan.vault
             ? vault_sign(s, dig, dig_len, alg, &out, &out_len)
             : local_sign(s->sig, dig, dig_len, alg, &out, &out_len);
    if (rv == CKR_OK && s->sig->plan.vault) {
        /* A vault signature is checked with the public half before it is
         * handed over (a hostile or faulty answer of the right length). */
        rv = s->sig->plan.row->type == CKM_RSA_PKCS
                 ? check_answer(s, data, len, out, out_len)
                 : check_answer(s, dig, dig_len, out, out_len);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    memcpy(sig, out, out_len);
    *sig_len = (CK_ULONG)out_len;
out:
    free(out);
    if (s != NULL && !keep) {
        end_op(s);
    }
    akv_session_release(s);
    return rv;
}

CK_RV akv_sign(CK_SESSION_HANDLE h, const CK_BYTE *data, CK_ULONG len,
               CK_BYTE *sig, CK_ULONG *sig_len)
{
    return sign_common(h, false, data, len, sig, sig_len);
}

CK_RV akv_sign_final(CK_SESSION_HANDLE h, CK_BYTE *sig, CK_ULONG *sig_len)
{
    return sign_common(h, true, NULL, 0, sig, sig_len);
}

/* Update for sign and verify: hashes the part; an error ends the op. */
static CK_RV update(CK_SESSION_HANDLE h, bool verify, const CK_BYTE *part,
                    CK_ULONG len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;

    rv = claim_op(h, verify, part != NULL || len == 0, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    if (s->sig->plan.row->hash == 0) {
        rv = CKR_MECHANISM_INVALID; /* single-part mechanism */
        goto out;
    }
    s->sig->multi = true;
    if (s->sig->mac != NULL) {
        rv = len == 0 || EVP_MAC_update(s->sig->mac, part, len) == 1
                 ? CKR_OK
                 : CKR_GENERAL_ERROR;
        goto out;
    }
    rv = len == 0 || EVP_DigestUpdate(s->sig->md, part, len) == 1
             ? CKR_OK
             : CKR_GENERAL_ERROR;
out:
    if (s != NULL && rv != CKR_OK) {
        end_op(s);
    }
    akv_session_release(s);
    return rv;
}

CK_RV akv_sign_update(CK_SESSION_HANDLE h, const CK_BYTE *part, CK_ULONG len)
{
    return update(h, false, part, len);
}

/* ---- verify (local) ---- */

/* r||s (each HALF bytes) -> DER ECDSA-Sig-Value (RFC 5480 / SEC 1). */
static CK_RV ecdsa_der(const CK_BYTE *sig, size_t half, uint8_t **der,
                       size_t *der_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL);
    BIGNUM *sv = BN_bin2bn(sig + half, (int)half, NULL);
    int l;

    *der = NULL;
    if (es == NULL || r == NULL || sv == NULL
        || ECDSA_SIG_set0(es, r, sv) != 1) {
        BN_free(r);
        BN_free(sv);
        goto out;
    }
    l = i2d_ECDSA_SIG(es, der);
    if (l <= 0) {
        goto out;
    }
    *der_len = (size_t)l;
    rv = CKR_OK;
out:
    ECDSA_SIG_free(es);
    return rv;
}

static CK_RV verify_local(struct akv_sig_op *op, const uint8_t *dig,
                          size_t dig_len, const CK_BYTE *sig, CK_ULONG sig_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    const struct akv_mech_plan *p = &op->plan;
    EVP_PKEY_CTX *c = NULL;
    EVP_MD *md = NULL;
    const struct hash_row *hr = hash_find(p->hash);
    uint8_t *der = NULL;
    size_t der_len = 0;
    int ok;

    if (sig_len != p->out_len) {
        rv = CKR_SIGNATURE_LEN_RANGE;
        goto out;
    }
    c = EVP_PKEY_CTX_new_from_pkey(akv_crypto_libctx(), op->key->pub, NULL);
    if (c == NULL || EVP_PKEY_verify_init(c) != 1) {
        goto out;
    }
    if (op->key->key_type == CKK_EC) {
        rv = ecdsa_der(sig, sig_len / 2, &der, &der_len);
        if (rv != CKR_OK) {
            goto out;
        }
        sig = der;
        sig_len = (CK_ULONG)der_len;
    } else if (p->row->type == CKM_RSA_PKCS) {
        /* The DigestInfo as given (RFC 8017 §8.2.2 with EM compared). */
        if (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1) {
            goto out;
        }
    } else {
        md = hr != NULL ? akv_crypto_md(hr->name) : NULL;
        if (md == NULL || EVP_PKEY_CTX_set_signature_md(c, md) != 1) {
            goto out;
        }
        if (p->alg >= AKV_KV_ALG_PS256 && p->alg <= AKV_KV_ALG_PS512
            && (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) != 1
                || EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) != 1
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(c, (int)p->salt_len)
                       != 1)) {
            goto out;
        }
    }
    ok = EVP_PKEY_verify(c, sig, sig_len, dig, dig_len);
    rv = ok == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
out:
    OPENSSL_free(der);
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(c);
    return rv;
}

static CK_RV verify_common(CK_SESSION_HANDLE h, bool final, const CK_BYTE *data,
                           CK_ULONG len, const CK_BYTE *sig, CK_ULONG sig_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_sig_op *op = NULL;
    uint8_t dig[512];
    size_t dig_len = 0;
    enum akv_kv_alg alg = AKV_KV_ALG_RS256;
    bool keep = false;

    rv = claim_op(h, true, sig != NULL && (final || data != NULL || len == 0),
                  &s);
    if (rv != CKR_OK) {
        goto out;
    }
    op = s->sig;
    if (final && op->plan.row->hash == 0) {
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    if (!final && op->multi) {
        rv = CKR_OPERATION_ACTIVE;
        keep = true;
        goto out;
    }
    if (op->mac != NULL) {
        uint8_t mac[EVP_MAX_MD_SIZE];

        /* v3.0 §5.13: a signature of the wrong length is
         * CKR_SIGNATURE_LEN_RANGE; else compared in constant time. */
        if (sig_len != op->plan.out_len) {
            rv = CKR_SIGNATURE_LEN_RANGE;
            goto out;
        }
        rv = hmac_final(op, final ? NULL : data, final ? 0 : len, mac);
        if (rv == CKR_OK && CRYPTO_memcmp(mac, sig, sig_len) != 0) {
            rv = CKR_SIGNATURE_INVALID;
        }
        OPENSSL_cleanse(mac, sizeof(mac));
        goto out;
    }
    if (!final && op->plan.row->hash == 0) {
        /* CKM_RSA_PKCS: the DigestInfo itself is verified; PSS/ECDSA: the
         * digest. */
        if (len > SIGN_MAX_DATA) {
            rv = CKR_DATA_LEN_RANGE;
            goto out;
        }
        if (op->plan.row->type != CKM_RSA_PKCS && op->key->key_type != CKK_EC
            && len != akv_mech_hash_len(op->plan.hash)) {
            rv = CKR_DATA_LEN_RANGE;
            goto out;
        }
        rv = verify_local(op, data, len, sig, sig_len);
        goto out;
    }
    rv = digest_of(op, final ? NULL : data, final ? 0 : len, dig, &dig_len,
                   &alg);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = verify_local(op, dig, dig_len, sig, sig_len);
out:
    if (s != NULL && !keep) {
        end_op(s);
    }
    akv_session_release(s);
    return rv;
}

CK_RV akv_verify(CK_SESSION_HANDLE h, const CK_BYTE *data, CK_ULONG len,
                 const CK_BYTE *sig, CK_ULONG sig_len)
{
    return verify_common(h, false, data, len, sig, sig_len);
}

CK_RV akv_verify_update(CK_SESSION_HANDLE h, const CK_BYTE *part, CK_ULONG len)
{
    return update(h, true, part, len);
}

CK_RV akv_verify_final(CK_SESSION_HANDLE h, const CK_BYTE *sig,
                       CK_ULONG sig_len)
{
    return verify_common(h, true, NULL, 0, sig, sig_len);
}
