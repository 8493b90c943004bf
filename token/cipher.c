/* SPDX-License-Identifier: Apache-2.0 */
#include "cipher.h"

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/secret.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "crypto.h"
#include "mech.h"
#include "rotate.h"
#include "session.h"
#include "token.h"
#include "vault_aes.h"

#define AES_BLOCK 16
#define GCM_MAX_BUFFER                                                         \
    ((size_t)64 * 1024 * 1024) /* bound on buffered GCM input */
#define AKV_CIPHER_MAX_INPUT (256ul * 1024ul * 1024ul) /* per call, bytes */

enum akv_op_kind {
    AKV_OP_ENCRYPT = 1,
    AKV_OP_DECRYPT,
    AKV_OP_MSG_ENCRYPT, /* v3.0 message-based (C_MessageEncryptInit) */
    AKV_OP_MSG_DECRYPT,
};

/*
 * CKM_AES_CTR (Current Mechanisms v3.0 §2.14, CK_AES_CTR_PARAMS; NIST SP
 * 800-38A §B.1 "standard incrementing function"): only the low
 * ulCounterBits bits of the counter block are incremented, modulo
 * 2^ulCounterBits; the other bits (the nonce) never change. OpenSSL
 * increments all 128 bits, so at the wrap point the context restarts with
 * the counter bits zero (ctr_feed). A counter value may not come back under
 * one key (the keystream would repeat): an operation takes at most
 * 2^ulCounterBits blocks, more is CKR_DATA_LEN_RANGE /
 * CKR_ENCRYPTED_DATA_LEN_RANGE. Byte counts saturate at UINT64_MAX ("never"
 * for any real input).
 */
struct ctr_state {
    uint8_t base[16]; /* the counter block with the counter bits zero */
    uint64_t to_wrap; /* bytes until the counter bits wrap to zero */
    uint64_t period;  /* bytes of one whole counter cycle */
    uint64_t left;    /* bytes this operation may still process */
};

struct akv_op {
    enum akv_op_kind kind;
    CK_MECHANISM_TYPE mech;
    struct akv_obj *key; /* reference */
    bool rsa;
    bool remote; /* AES by Managed HSM (token/vault_aes.h) */
    bool vault;  /* the plan's answer to "where does it run" (mech.c) */
    struct akv_vault_aes va;  /* its parameters */
    enum akv_kv_alg alg;      /* RSA: vault / OpenSSL padding */
    size_t mod_len;           /* RSA modulus bytes */
    EVP_CIPHER_CTX *ctx;      /* AES */
    size_t tag_len;           /* GCM tag bytes */
    struct ctr_state ctr;     /* CKM_AES_CTR */
    bool multi;               /* an Update or Final call was made */
    bool single;              /* a single-part call kept a result */
    size_t pending;           /* bytes held inside the EVP context */
    struct akv_secret gcm_in; /* GCM decrypt and remote: buffered input */
    /* A computed result kept for the retry after CKR_BUFFER_TOO_SMALL. */
    bool have_result;
    struct akv_secret result;
    uint8_t *res_in; /* the input it was computed from */
    size_t res_in_len;
};

void akv_cipher_op_free(struct akv_op *op)
{
    if (op == NULL) {
        return;
    }
    akv_obj_unref(op->key);
    EVP_CIPHER_CTX_free(op->ctx);
    akv_vault_aes_clear(&op->va);
    akv_secret_clear(&op->gcm_in);
    akv_secret_clear(&op->result);
    if (op->res_in != NULL) {
        akv_secret_wipe(op->res_in, op->res_in_len);
        free(op->res_in);
    }
    free(op);
}

/* The claiming thread owns s->op; the pointer itself is also changed under
 * s->lock because C_Login(CKU_CONTEXT_SPECIFIC) reads it without claiming
 * the session (akv_session_login). */
static void set_op(struct akv_session *s, struct akv_op *op)
{
    pthread_mutex_lock(&s->lock);
    s->op = op;
    pthread_mutex_unlock(&s->lock);
}

static void end_op(struct akv_session *s)
{
    struct akv_op *op = s->op;

    set_op(s, NULL);
    akv_cipher_op_free(op);
}

/* ---- init ---- */

static uint64_t blocks_to_bytes(uint64_t blocks)
{
    return blocks > UINT64_MAX / AES_BLOCK ? UINT64_MAX : blocks * AES_BLOCK;
}

/* Fills CTR from P (see struct ctr_state). CKR_MECHANISM_PARAM_INVALID
 * unless 0 < ulCounterBits <= 128 (v3.0 §2.14). */
static CK_RV ctr_setup(struct ctr_state *ctr, const CK_AES_CTR_PARAMS *p)
{
    CK_ULONG bits = p->ulCounterBits;
    uint64_t hi = 0;
    uint64_t lo = 0;
    uint64_t hi_mask;
    uint64_t to_wrap;

    if (bits == 0 || bits > 128) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | p->cb[i];
        lo = lo << 8 | p->cb[8 + i];
    }
    memcpy(ctr->base, p->cb, AES_BLOCK);
    for (CK_ULONG i = 0; i < bits; i++) {
        ctr->base[15 - i / 8] &= (uint8_t) ~(1u << (i % 8));
    }
    /* Blocks until the counter (its low BITS bits) passes 2^BITS - 1. */
    if (bits < 64) {
        lo &= (UINT64_C(1) << bits) - 1;
        to_wrap = (UINT64_C(1) << bits) - lo;
    } else {
        hi_mask = bits == 128 ? UINT64_MAX : (UINT64_C(1) << (bits - 64)) - 1;
        /* Only when every counter bit above the low 64 is set is the wrap
         * less than 2^64 blocks away. */
        to_wrap = (hi & hi_mask) == hi_mask && lo != 0 ? 0 - lo : UINT64_MAX;
    }
    ctr->to_wrap = blocks_to_bytes(to_wrap);
    ctr->period = bits < 64 ? blocks_to_bytes(UINT64_C(1) << bits) : UINT64_MAX;
    ctr->left = ctr->period;
    return CKR_OK;
}

/* CTR through C (OP's context or a copy) with the counter wrap of struct
 * ctr_state; *TO_WRAP is advanced. The caller has checked LEN against
 * ctr.left. CKR_OK or CKR_GENERAL_ERROR. */
static CK_RV ctr_feed(const struct akv_op *op, EVP_CIPHER_CTX *c,
                      uint64_t *to_wrap, uint8_t *out, const uint8_t *in,
                      size_t len)
{
    int outl = 0;

    while (len > 0) {
        size_t n = (uint64_t)len < *to_wrap ? len : (size_t)*to_wrap;

        if (EVP_CipherUpdate(c, out, &outl, in, (int)n) != 1
            || (size_t)outl != n) {
            return CKR_GENERAL_ERROR;
        }
        out += n;
        in += n;
        len -= n;
        *to_wrap -= n;
        if (*to_wrap == 0) {
            /* At a block boundary: restart at counter zero, same nonce. */
            if (EVP_CipherInit_ex2(c, NULL, NULL, op->ctr.base, -1, NULL)
                != 1) {
                return CKR_GENERAL_ERROR;
            }
            *to_wrap = op->ctr.period;
        }
    }
    return CKR_OK;
}

static CK_RV aes_setup(struct akv_op *op, const CK_MECHANISM *mech,
                       const struct akv_secret *key, int enc)
{
    CK_RV rv = CKR_MECHANISM_PARAM_INVALID;
    EVP_CIPHER *cipher = NULL;
    const uint8_t *iv = NULL;
    const CK_GCM_PARAMS *g = NULL;
    CK_GCM_PARAMS gp;
    int outl = 0;

    switch (mech->mechanism) {
    case CKM_AES_ECB:
        if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
            goto out;
        }
        break;
    case CKM_AES_CBC:
    case CKM_AES_CBC_PAD:
        if (mech->pParameter == NULL || mech->ulParameterLen != AES_BLOCK) {
            goto out;
        }
        iv = mech->pParameter;
        break;
    case CKM_AES_CTR:
        if (mech->pParameter == NULL
            || mech->ulParameterLen != sizeof(CK_AES_CTR_PARAMS)
            || ctr_setup(&op->ctr, mech->pParameter) != CKR_OK) {
            goto out;
        }
        iv = ((const CK_AES_CTR_PARAMS *)mech->pParameter)->cb;
        break;
    case CKM_AES_GCM:
        /* Both CK_GCM_PARAMS layouts (v3.0, v2.40) and the bounds, the
         * AAD's included: token/mech.h. */
        if (akv_mech_gcm_params(mech, &gp) != CKR_OK) {
            goto out;
        }
        g = &gp;
        op->tag_len = g->ulTagBits / 8;
        break;
    default:
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    rv = CKR_GENERAL_ERROR;
    cipher = akv_crypto_aes_cipher(mech->mechanism, key->len);
    op->ctx = EVP_CIPHER_CTX_new();
    if (cipher == NULL) {
        rv = CKR_KEY_SIZE_RANGE;
        goto out;
    }
    if (op->ctx == NULL
        || EVP_CipherInit_ex2(op->ctx, cipher, NULL, NULL, enc, NULL) != 1) {
        goto out;
    }
    if (g != NULL
        && EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_SET_IVLEN, (int)g->ulIvLen,
                               NULL)
               != 1) {
        rv = CKR_MECHANISM_PARAM_INVALID;
        goto out;
    }
    if (EVP_CipherInit_ex2(op->ctx, NULL, key->data, g != NULL ? g->pIv : iv,
                           enc, NULL)
        != 1) {
        goto out;
    }
    EVP_CIPHER_CTX_set_padding(op->ctx,
                               mech->mechanism == CKM_AES_CBC_PAD ? 1 : 0);
    if (g != NULL && g->ulAADLen > 0
        && EVP_CipherUpdate(op->ctx, NULL, &outl, g->pAAD, (int)g->ulAADLen)
               != 1) {
        goto out;
    }
    rv = CKR_OK;
out:
    EVP_CIPHER_free(cipher);
    return rv;
}

static CK_RV cipher_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                         CK_OBJECT_HANDLE hkey, enum akv_op_kind kind)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *key = NULL;
    struct akv_op *op = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    struct akv_token *t = NULL;
    static const CK_FLAGS flags[] = {
        [AKV_OP_ENCRYPT] = CKF_ENCRYPT,
        [AKV_OP_DECRYPT] = CKF_DECRYPT,
        [AKV_OP_MSG_ENCRYPT] = CKF_MESSAGE_ENCRYPT,
        [AKV_OP_MSG_DECRYPT] = CKF_MESSAGE_DECRYPT,
    };
    CK_FLAGS flag = flags[kind];
    struct akv_mech_plan plan;

    rv = akv_session_claim(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    t = s->token;
    if (s->op != NULL) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    /* v3.0 §5.1: a handle of an object that is not a key is
     * CKR_KEY_HANDLE_INVALID too. */
    if (akv_token_get_obj(t, hkey, &key) != CKR_OK || !akv_obj_is_key(key)) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    /* Mechanism, CKA_ALLOWED_MECHANISMS, key type/class, parameters the
     * vault can honour, CKA_ENCRYPT/CKA_DECRYPT: token/mech.h. */
    rv = akv_mech_plan(t, mech, flag, key, &plan);
    if (rv != CKR_OK) {
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    op->kind = kind;
    op->mech = mech->mechanism;
    op->vault = plan.vault;
    if (key->key_type == CKK_RSA) {
        /* Encrypt: local with the public key; decrypt: the vault key
         * version (unwrapKey). */
        op->rsa = true;
        op->alg = plan.alg;
        op->mod_len = plan.out_len;
    } else if (plan.vault
               && (kind == AKV_OP_MSG_ENCRYPT || kind == AKV_OP_MSG_DECRYPT)) {
        /* AES-GCM messages; parameters come with each (akv_cipher_msg). */
        op->remote = true;
        op->va.mode = AKV_KV_AES_GCM;
        op->tag_len = akv_vault_aes_tag_len(&op->va);
    } else if (plan.vault) {
        /* A vault oct-HSM key: Managed HSM encrypts and decrypts. */
        op->remote = true;
        rv = akv_vault_aes_init(&op->va, mech);
        if (rv != CKR_OK) {
            goto out;
        }
        op->tag_len = akv_vault_aes_tag_len(&op->va);
    } else {
        /* A token object's value comes from the vault (unwrapKey). */
        rv = akv_token_obj_value(t, key, &value);
        if (rv != CKR_OK) {
            goto out;
        }
        rv = aes_setup(op, mech, &value, kind == AKV_OP_ENCRYPT ? 1 : 0);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    op->key = key;
    key = NULL;
    set_op(s, op);
    op = NULL;
    rv = CKR_OK;
out:
    akv_secret_clear(&value);
    akv_cipher_op_free(op);
    akv_obj_unref(key);
    akv_session_release(s);
    return rv;
}

CK_RV akv_cipher_encrypt_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                              CK_OBJECT_HANDLE key)
{
    return cipher_init(h, mech, key, AKV_OP_ENCRYPT);
}

CK_RV akv_cipher_decrypt_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                              CK_OBJECT_HANDLE key)
{
    return cipher_init(h, mech, key, AKV_OP_DECRYPT);
}

/* Claims the session and checks that an operation of KIND is active.
 * ARGS_OK false (a required pointer is NULL, v3.0 §5.1
 * CKR_ARGUMENTS_BAD) gives CKR_ARGUMENTS_BAD; *out then stays claimed when
 * the operation is active, so that op_settle ends it like any other error.
 * Otherwise CKR_OK, the claim's errors, or CKR_OPERATION_NOT_INITIALIZED;
 * *out is NULL on every error but that one. */
static CK_RV claim_op(CK_SESSION_HANDLE h, enum akv_op_kind kind, bool args_ok,
                      struct akv_session **out)
{
    CK_RV rv = akv_session_claim(h, out);

    if (rv != CKR_OK) {
        *out = NULL;
        return rv;
    }
    if ((*out)->op == NULL || (*out)->op->kind != kind) {
        akv_session_release(*out);
        *out = NULL;
        return args_ok ? CKR_OPERATION_NOT_INITIALIZED : CKR_ARGUMENTS_BAD;
    }
    return args_ok ? CKR_OK : CKR_ARGUMENTS_BAD;
}

/* Which call of an operation is settling (see op_settle). */
enum akv_op_call {
    AKV_CALL_SINGLE = 0, /* C_Encrypt / C_Decrypt */
    AKV_CALL_UPDATE,     /* C_EncryptUpdate / C_DecryptUpdate */
    AKV_CALL_FINAL,      /* C_EncryptFinal / C_DecryptFinal */
};

/*
 * op_settle - ends the active operation of S unless akv_session_op_kept
 * (session.h: the one rule, v3.0 §5.8/§5.9) says the call leaves it
 * active; a CKR_OK keeps it for a length query (LEN_QUERY: NULL output
 * buffer) or an update. Ending drops the key reference and wipes buffers.
 * S may be NULL (nothing was claimed). Returns RV unchanged.
 */
static CK_RV op_settle(struct akv_session *s, CK_RV rv, enum akv_op_call call,
                       bool len_query)
{
    bool keep = akv_session_op_kept(rv, len_query || call == AKV_CALL_UPDATE);

    if (s != NULL && !keep) {
        end_op(s);
    }
    return rv;
}

/* Whether OP may take a multi-part (update / final) call: not while a
 * single-part call waits for its retry with a larger buffer (switching now
 * would mix the two: the final call would hand back the single-part result),
 * CKR_OPERATION_ACTIVE (the operation stays, see op_settle); not for RSA,
 * which is single-part only (CKR_MECHANISM_INVALID). CKR_OK otherwise. */
static CK_RV check_multi_part(const struct akv_op *op)
{
    if (op->single) {
        return CKR_OPERATION_ACTIVE;
    }
    if (op->rsa) {
        return CKR_MECHANISM_INVALID;
    }
    return CKR_OK;
}

/* ---- single part ---- */

static bool same_input(const struct akv_op *op, const CK_BYTE *in,
                       CK_ULONG in_len)
{
    return op->have_result && op->res_in_len == in_len
           && (in_len == 0 || memcmp(op->res_in, in, in_len) == 0);
}

static CK_RV keep_result(struct akv_op *op, const CK_BYTE *in, CK_ULONG in_len,
                         struct akv_secret *res)
{
    akv_secret_clear(&op->result);
    if (op->res_in != NULL) {
        akv_secret_wipe(op->res_in, op->res_in_len);
        free(op->res_in);
    }
    op->res_in = malloc(in_len + 1);
    if (op->res_in == NULL) {
        op->have_result = false;
        return CKR_HOST_MEMORY;
    }
    if (in_len > 0) {
        memcpy(op->res_in, in, in_len);
    }
    op->res_in_len = in_len;
    op->result = *res;
    memset(res, 0, sizeof(*res));
    op->have_result = true;
    return CKR_OK;
}

/* One-shot AES on a copy of the context (so a retry can recompute). */
static CK_RV aes_oneshot(struct akv_op *op, const CK_BYTE *in, size_t in_len,
                         struct akv_secret *res)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    bool enc = op->kind == AKV_OP_ENCRYPT;
    bool gcm = op->mech == CKM_AES_GCM;
    size_t data_len = (gcm && !enc) ? in_len - op->tag_len : in_len;
    int l1 = 0;
    int l2 = 0;

    if (c == NULL || EVP_CIPHER_CTX_copy(c, op->ctx) != 1) {
        goto out;
    }
    if (akv_secret_alloc(res, in_len + AES_BLOCK + op->tag_len) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (gcm && !enc
        && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, (int)op->tag_len,
                               (void *)(in + data_len))
               != 1) {
        goto out;
    }
    if (op->mech == CKM_AES_CTR) {
        uint64_t to_wrap = op->ctr.to_wrap;

        if (ctr_feed(op, c, &to_wrap, res->data, in, data_len) != CKR_OK) {
            goto out;
        }
        l1 = (int)data_len;
    } else if (data_len > 0
               && EVP_CipherUpdate(c, res->data, &l1, in, (int)data_len) != 1) {
        goto out;
    }
    if (EVP_CipherFinal_ex(c, res->data + l1, &l2) != 1) {
        /* Bad padding or a failed GCM tag check. */
        rv = enc ? CKR_GENERAL_ERROR : CKR_ENCRYPTED_DATA_INVALID;
        goto out;
    }
    res->len = (size_t)l1 + (size_t)l2;
    if (gcm && enc) {
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, (int)op->tag_len,
                                res->data + res->len)
            != 1) {
            goto out;
        }
        res->len += op->tag_len;
    }
    rv = CKR_OK;
out:
    EVP_CIPHER_CTX_free(c);
    return rv;
}

/* Largest RSA plaintext for the padding of OP (RFC 8017 §7.1.1: k - 2hLen
 * - 2 for OAEP, §7.2.1: k - 11 for PKCS #1 v1.5). */
static size_t rsa_max_in(const struct akv_op *op)
{
    size_t over = op->alg == AKV_KV_ALG_RSA1_5     ? 11
                  : op->alg == AKV_KV_ALG_RSA_OAEP ? 2 * 20 + 2
                                                   : 2 * 32 + 2;

    return op->mod_len > over ? op->mod_len - over : 0;
}

/* Exact output length of a single-part call, or an upper bound for RSA /
 * CBC-PAD decryption; input-length errors. */
static CK_RV single_len(const struct akv_op *op, CK_ULONG in_len, CK_ULONG *len)
{
    bool enc = op->kind == AKV_OP_ENCRYPT;

    /* EVP takes int lengths. */
    if (in_len > AKV_CIPHER_MAX_INPUT) {
        return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
    }
    /* Managed HSM takes a non-empty value of at most AKV_KV_CRYPT_MAX
     * bytes (CBC with nothing to encrypt or decrypt needs no call), and its
     * answer must fit the same bound (CBC-PAD adds up to one block). */
    if (op->remote
        && ((in_len <= op->tag_len && (op->mech != CKM_AES_CBC || in_len != 0))
            || in_len - op->tag_len > AKV_KV_CRYPT_MAX
            || (enc && op->mech == CKM_AES_CBC_PAD
                && in_len >= AKV_KV_CRYPT_MAX))) {
        return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
    }
    if (op->rsa) {
        if (!enc && in_len != op->mod_len) {
            return CKR_ENCRYPTED_DATA_LEN_RANGE;
        }
        /* RFC 8017 §7.1.1 / §7.2.1: also refused on a length query. */
        if (enc && in_len > rsa_max_in(op)) {
            return CKR_DATA_LEN_RANGE;
        }
        *len = op->mod_len;
        return CKR_OK;
    }
    switch (op->mech) {
    case CKM_AES_ECB:
    case CKM_AES_CBC:
        if (in_len % AES_BLOCK != 0) {
            return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
        }
        *len = in_len;
        return CKR_OK;
    case CKM_AES_CBC_PAD:
        if (enc) {
            *len = (in_len / AES_BLOCK + 1) * AES_BLOCK;
        } else if (in_len == 0 || in_len % AES_BLOCK != 0) {
            return CKR_ENCRYPTED_DATA_LEN_RANGE;
        } else {
            *len = in_len;
        }
        return CKR_OK;
    case CKM_AES_CTR:
        if (in_len > op->ctr.left) {
            return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
        }
        *len = in_len;
        return CKR_OK;
    case CKM_AES_GCM:
        if (enc) {
            *len = in_len + op->tag_len;
        } else if (in_len < op->tag_len) {
            return CKR_ENCRYPTED_DATA_LEN_RANGE;
        } else {
            *len = in_len - op->tag_len;
        }
        return CKR_OK;
    default:
        return CKR_GENERAL_ERROR;
    }
}

static CK_RV compute_single(struct akv_session *s, const CK_BYTE *in,
                            CK_ULONG in_len, struct akv_secret *res)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_op *op = s->op;
    struct akv_token *t = s->token;

    if (op->remote) {
        if (in_len == 0) {
            /* CKM_AES_CBC of nothing (single_len): nothing to ask. */
            return akv_secret_alloc(res, 0) == 0 ? CKR_OK : CKR_HOST_MEMORY;
        }
        /* No lock held (the session is only claimed). */
        return akv_vault_aes_run(t, op->key->vkey, &op->va,
                                 op->kind == AKV_OP_DECRYPT, in, in_len, res,
                                 NULL);
    }
    if (!op->rsa) {
        return aes_oneshot(op, in, in_len, res);
    }
    if (op->kind == AKV_OP_ENCRYPT) {
        size_t olen = 0;

        if (akv_secret_alloc(res, op->mod_len) != 0) {
            return CKR_HOST_MEMORY;
        }
        rv = akv_crypto_rsa_encrypt(op->key->pub, op->alg, in, in_len,
                                    res->data, &olen);
        res->len = olen;
        return rv;
    }
    /* RSA decrypt = Key Vault unwrapKey on the handle's bound version (then,
     * for OAEP, the key's other known versions: token/rotate.h); no lock
     * held (the session is only claimed). */
    if (!op->vault) {
        /* The plan ran it locally: a session key pair (token/keygen.h). */
        return op->key->priv != NULL ? akv_crypto_rsa_decrypt(
                   op->key->priv, op->alg, in, in_len, res)
                                     : CKR_KEY_TYPE_INCONSISTENT;
    }
    rv = akv_rotate_unwrap(t, op->key->vkey, op->alg, in, in_len, res);
    if (rv == CKR_WRAPPED_KEY_INVALID) {
        rv = CKR_ENCRYPTED_DATA_INVALID;
    }
    return rv;
}

static CK_RV single(CK_SESSION_HANDLE h, enum akv_op_kind kind,
                    const CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                    CK_ULONG *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_secret res = AKV_SECRET_INIT;
    CK_ULONG len = 0;

    rv = claim_op(h, kind, (in != NULL || in_len == 0) && out_len != NULL, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    if (s->op->multi) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    rv = single_len(s->op, in_len, &len);
    if (rv != CKR_OK) {
        goto out;
    }
    if (out == NULL) {
        /* Length query: no computation, no remote call. */
        *out_len = same_input(s->op, in, in_len) ? s->op->result.len : len;
        rv = CKR_OK;
        goto out;
    }
    if (!same_input(s->op, in, in_len)) {
        rv = compute_single(s, in, in_len, &res);
        if (rv != CKR_OK) {
            goto out;
        }
        rv = keep_result(s->op, in, in_len, &res);
        if (rv != CKR_OK) {
            goto out;
        }
        s->op->single = true;
    }
    if (*out_len < s->op->result.len) {
        *out_len = s->op->result.len;
        rv = CKR_BUFFER_TOO_SMALL;
        goto out;
    }
    if (s->op->result.len > 0) {
        memcpy(out, s->op->result.data, s->op->result.len);
    }
    *out_len = s->op->result.len;
    rv = CKR_OK;
out:
    akv_secret_clear(&res);
    rv = op_settle(s, rv, AKV_CALL_SINGLE, out == NULL);
    akv_session_release(s);
    return rv;
}

CK_RV akv_cipher_encrypt(CK_SESSION_HANDLE h, const CK_BYTE *in,
                         CK_ULONG in_len, CK_BYTE *out, CK_ULONG *out_len)
{
    return single(h, AKV_OP_ENCRYPT, in, in_len, out, out_len);
}

CK_RV akv_cipher_decrypt(CK_SESSION_HANDLE h, const CK_BYTE *in,
                         CK_ULONG in_len, CK_BYTE *out, CK_ULONG *out_len)
{
    return single(h, AKV_OP_DECRYPT, in, in_len, out, out_len);
}

/* ---- multi part ---- */

/* Bytes an EVP update releases for TOTAL buffered+new bytes. OpenSSL keeps
 * the last full block back when decrypting with padding. */
static size_t update_len(const struct akv_op *op, size_t total)
{
    size_t full = total - total % AES_BLOCK;

    if (op->mech == CKM_AES_GCM || op->mech == CKM_AES_CTR) {
        return total;
    }
    if (op->kind == AKV_OP_DECRYPT && op->mech == CKM_AES_CBC_PAD
        && total % AES_BLOCK == 0 && full > 0) {
        full -= AES_BLOCK;
    }
    return full;
}

static CK_RV update(CK_SESSION_HANDLE h, enum akv_op_kind kind,
                    const CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                    CK_ULONG *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_op *op = NULL;
    size_t len;
    int outl = 0;

    rv = claim_op(h, kind, (in != NULL || in_len == 0) && out_len != NULL, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    op = s->op;
    rv = check_multi_part(op);
    if (rv != CKR_OK) {
        goto out;
    }
    if ((op->mech == CKM_AES_GCM && kind == AKV_OP_DECRYPT) || op->remote) {
        /* Buffered until the tag is checked at the final call; for
         * Managed HSM, until the one remote call at the final call. */
        *out_len = 0;
        if (out == NULL) {
            rv = CKR_OK;
            goto out;
        }
        if (akv_secret_append(&op->gcm_in, in, in_len,
                              op->remote ? AKV_KV_CRYPT_MAX + op->tag_len
                                         : GCM_MAX_BUFFER)
            != 0) {
            /* Input over the bound: the side's code (v3.0 §5.2). */
            rv = kind == AKV_OP_ENCRYPT ? CKR_DATA_LEN_RANGE
                                        : CKR_ENCRYPTED_DATA_LEN_RANGE;
            goto out;
        }
        op->multi = true;
        rv = CKR_OK;
        goto out;
    }
    if (in_len > AKV_CIPHER_MAX_INPUT
        || (op->mech == CKM_AES_CTR && in_len > op->ctr.left)) {
        rv = kind == AKV_OP_ENCRYPT ? CKR_DATA_LEN_RANGE
                                    : CKR_ENCRYPTED_DATA_LEN_RANGE;
        goto out;
    }
    len = update_len(op, op->pending + in_len);
    if (out == NULL) {
        *out_len = len;
        rv = CKR_OK;
        goto out;
    }
    if (*out_len < len) {
        *out_len = len;
        rv = CKR_BUFFER_TOO_SMALL;
        goto out;
    }
    op->multi = true;
    rv = CKR_GENERAL_ERROR;
    if (op->mech == CKM_AES_CTR) {
        if (ctr_feed(op, op->ctx, &op->ctr.to_wrap, out, in, in_len)
            != CKR_OK) {
            goto out;
        }
        op->ctr.left -= in_len;
        outl = (int)in_len;
    } else if (in_len > 0
               && EVP_CipherUpdate(op->ctx, out, &outl, in, (int)in_len) != 1) {
        goto out;
    }
    if ((size_t)outl != len) {
        AKV_LOG_ERR("AES update produced %d bytes, expected %zu", outl, len);
        goto out;
    }
    op->pending = op->pending + in_len - len;
    *out_len = len;
    rv = CKR_OK;
out:
    rv = op_settle(s, rv, AKV_CALL_UPDATE, out == NULL);
    akv_session_release(s);
    return rv;
}

CK_RV akv_cipher_encrypt_update(CK_SESSION_HANDLE h, const CK_BYTE *in,
                                CK_ULONG in_len, CK_BYTE *out,
                                CK_ULONG *out_len)
{
    return update(h, AKV_OP_ENCRYPT, in, in_len, out, out_len);
}

CK_RV akv_cipher_decrypt_update(CK_SESSION_HANDLE h, const CK_BYTE *in,
                                CK_ULONG in_len, CK_BYTE *out,
                                CK_ULONG *out_len)
{
    return update(h, AKV_OP_DECRYPT, in, in_len, out, out_len);
}

/* Computes the final block(s) into op->result once. */
static CK_RV compute_final(struct akv_session *s)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_op *op = s->op;
    struct akv_secret res = AKV_SECRET_INIT;
    bool enc = op->kind == AKV_OP_ENCRYPT;
    int l1 = 0;
    int l2 = 0;
    CK_ULONG len = 0;

    if (op->remote) {
        /* The whole buffered input in one remote call. */
        rv = single_len(op, op->gcm_in.len, &len);
        if (rv == CKR_OK) {
            rv = compute_single(s, op->gcm_in.data, op->gcm_in.len, &res);
        }
        if (rv != CKR_OK) {
            goto out;
        }
        goto keep;
    }
    if (op->mech == CKM_AES_GCM && !enc) {
        rv = op->gcm_in.len < op->tag_len
                 ? CKR_ENCRYPTED_DATA_LEN_RANGE
                 : aes_oneshot(op, op->gcm_in.data, op->gcm_in.len, &res);
        if (rv != CKR_OK) {
            goto out;
        }
        goto keep;
    }
    if ((op->mech == CKM_AES_ECB || op->mech == CKM_AES_CBC)
        && op->pending != 0) {
        rv = enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
        goto out;
    }
    if (op->mech == CKM_AES_CBC_PAD && !enc && op->pending != AES_BLOCK) {
        rv = CKR_ENCRYPTED_DATA_LEN_RANGE;
        goto out;
    }
    if (akv_secret_alloc(&res, AES_BLOCK + op->tag_len) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (EVP_CipherFinal_ex(op->ctx, res.data, &l1) != 1) {
        rv = enc ? CKR_GENERAL_ERROR : CKR_ENCRYPTED_DATA_INVALID;
        goto out;
    }
    res.len = (size_t)l1;
    if (op->mech == CKM_AES_GCM) {
        if (EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_GET_TAG, (int)op->tag_len,
                                res.data + res.len)
            != 1) {
            goto out;
        }
        res.len += op->tag_len;
    }
    (void)l2;
keep:
    akv_secret_clear(&op->result);
    op->result = res;
    memset(&res, 0, sizeof(res));
    op->have_result = true;
    rv = CKR_OK;
out:
    akv_secret_clear(&res);
    return rv;
}

static CK_RV final(CK_SESSION_HANDLE h, enum akv_op_kind kind, CK_BYTE *out,
                   CK_ULONG *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_op *op = NULL;

    rv = claim_op(h, kind, out_len != NULL, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    op = s->op;
    rv = check_multi_part(op);
    if (rv != CKR_OK) {
        goto out;
    }
    /* From here on this is a multi-part operation: a single-part call
     * must not pick up the final block kept for a retry. */
    op->multi = true;
    if (out == NULL && !op->have_result) {
        /* Length query without computing. */
        rv = CKR_OK;
        if (op->remote) {
            /* Everything comes at the final call (an upper bound for
             * CBC-PAD decryption). */
            rv = single_len(op, op->gcm_in.len, out_len);
        } else if (op->mech == CKM_AES_GCM) {
            *out_len = kind == AKV_OP_ENCRYPT
                           ? op->tag_len
                           : (op->gcm_in.len >= op->tag_len
                                  ? op->gcm_in.len - op->tag_len
                                  : 0);
        } else if (op->mech == CKM_AES_CBC_PAD) {
            *out_len = AES_BLOCK; /* decrypt: upper bound */
        } else {
            *out_len = 0;
        }
        goto out;
    }
    if (!op->have_result) {
        rv = compute_final(s);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    if (out == NULL) {
        *out_len = op->result.len;
        rv = CKR_OK;
        goto out;
    }
    if (*out_len < op->result.len) {
        *out_len = op->result.len;
        rv = CKR_BUFFER_TOO_SMALL;
        goto out;
    }
    if (op->result.len > 0) {
        memcpy(out, op->result.data, op->result.len);
    }
    *out_len = op->result.len;
    rv = CKR_OK;
out:
    rv = op_settle(s, rv, AKV_CALL_FINAL, out == NULL);
    akv_session_release(s);
    return rv;
}

CK_RV akv_cipher_encrypt_final(CK_SESSION_HANDLE h, CK_BYTE *out,
                               CK_ULONG *out_len)
{
    return final(h, AKV_OP_ENCRYPT, out, out_len);
}

CK_RV akv_cipher_decrypt_final(CK_SESSION_HANDLE h, CK_BYTE *out,
                               CK_ULONG *out_len)
{
    return final(h, AKV_OP_DECRYPT, out, out_len);
}

/* ---- message-based encryption (v3.0 §5.13, §5.14) ---- */

CK_RV akv_cipher_msg_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                          CK_OBJECT_HANDLE key, bool decrypt)
{
    return cipher_init(h, mech, key,
                       decrypt ? AKV_OP_MSG_DECRYPT : AKV_OP_MSG_ENCRYPT);
}

/* CK_GCM_MESSAGE_PARAMS that Managed HSM can honour (see cipher.h). */
static CK_RV msg_params(const void *param, CK_ULONG len, bool decrypt,
                        CK_GCM_MESSAGE_PARAMS *g)
{
    if (param == NULL || len != sizeof(*g)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    memcpy(g, param, sizeof(*g));
    if (g->pIv == NULL || g->ulIvLen != AKV_MECH_HSM_GCM_IV || g->pTag == NULL
        || g->ulTagBits != 128) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    /* Decryption ignores the generator fields (Current Mechanisms v3.0
     * §2.13.3); encryption must let the token (the HSM) pick the IV. */
    if (!decrypt
        && (g->ulIvFixedBits != 0
            || (g->ivGenerator != CKG_GENERATE
                && g->ivGenerator != CKG_GENERATE_RANDOM))) {
        AKV_LOG_ERR("C_EncryptMessage with a Managed HSM key: the HSM "
                    "picks the IV; CK_GCM_MESSAGE_PARAMS needs ivGenerator "
                    "CKG_GENERATE or CKG_GENERATE_RANDOM and ulIvFixedBits 0");
        return CKR_MECHANISM_PARAM_INVALID;
    }
    return CKR_OK;
}

CK_RV akv_cipher_msg(CK_SESSION_HANDLE h, bool decrypt, void *param,
                     CK_ULONG param_len, const CK_BYTE *aad, CK_ULONG aad_len,
                     const CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                     CK_ULONG *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_op *op = NULL;
    struct akv_vault_aes va;
    struct akv_kv_crypt_out extra;
    struct akv_secret res = AKV_SECRET_INIT;
    struct akv_secret buf = AKV_SECRET_INIT;
    CK_GCM_MESSAGE_PARAMS g;

    rv = claim_op(h, decrypt ? AKV_OP_MSG_DECRYPT : AKV_OP_MSG_ENCRYPT, true,
                  &s);
    if (rv != CKR_OK) {
        return rv;
    }
    op = s->op;
    if (out_len == NULL || (in == NULL && in_len > 0)
        || (aad == NULL && aad_len > 0)) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = msg_params(param, param_len, decrypt, &g);
    if (rv != CKR_OK) {
        goto out;
    }
    if (in_len == 0 || in_len > AKV_KV_CRYPT_MAX
        || aad_len > AKV_KV_CRYPT_MAX) {
        rv = decrypt ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
        goto out;
    }
    /* GCM keeps the length; no remote call for a query or a short buffer. */
    if (out == NULL || *out_len < in_len) {
        rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        *out_len = in_len;
        goto out;
    }
    va = op->va;
    va.aad = (uint8_t *)aad;
    va.aad_len = aad_len;
    if (decrypt) {
        /* ciphertext || tag, as akv_vault_aes_run takes it */
        memcpy(va.iv, g.pIv, AKV_MECH_HSM_GCM_IV);
        va.iv_len = AKV_MECH_HSM_GCM_IV;
        if (akv_secret_alloc(&buf, in_len + op->tag_len) != 0) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        memcpy(buf.data, in, in_len);
        memcpy(buf.data + in_len, g.pTag, op->tag_len);
        rv = akv_vault_aes_run(s->token, op->key->vkey, &va, true, buf.data,
                               buf.len, &res, NULL);
    } else {
        va.iv_len = 0; /* the HSM picks it */
        rv = akv_vault_aes_run(s->token, op->key->vkey, &va, false, in, in_len,
                               &res, &extra);
        if (rv == CKR_OK
            && (extra.iv_len != AKV_MECH_HSM_GCM_IV
                || extra.tag_len != op->tag_len)) {
            AKV_LOG_ERR("key %s: the HSM's AES-GCM answer has a %zu-byte iv "
                        "and a %zu-byte tag (expected 12 and 16)",
                        op->key->vkey->name, extra.iv_len, extra.tag_len);
            rv = CKR_DEVICE_ERROR;
        }
    }
    if (rv == CKR_OK && res.len != in_len) {
        rv = CKR_DEVICE_ERROR;
    }
    if (rv != CKR_OK) {
        goto out;
    }
    memcpy(out, res.data, res.len);
    *out_len = res.len;
    if (!decrypt) {
        /* v3.0 §2.13.3: the generated IV is returned in pIv */
        memcpy(g.pIv, extra.iv, AKV_MECH_HSM_GCM_IV);
        memcpy(g.pTag, extra.tag, op->tag_len);
    }
out:
    /* A message's failure does not end the message-based operation: only
     * C_Message*Final does (v3.0 §5.13). */
    akv_secret_clear(&res);
    akv_secret_clear(&buf);
    akv_session_release(s);
    return rv;
}

CK_RV akv_cipher_msg_final(CK_SESSION_HANDLE h, bool decrypt)
{
    struct akv_session *s = NULL;
    CK_RV rv = claim_op(h, decrypt ? AKV_OP_MSG_DECRYPT : AKV_OP_MSG_ENCRYPT,
                        true, &s);

    if (rv == CKR_OK) {
        end_op(s);
        akv_session_release(s);
    }
    return rv;
}

/* ---- random ---- */

CK_RV akv_cipher_random(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG len)
{
    struct akv_session *s = NULL;
    CK_RV rv = akv_session_get(h, &s);

    if (rv == CKR_OK) {
        rv = akv_crypto_random(out, len);
        akv_session_put(s);
    }
    return rv;
}

CK_RV akv_cipher_seed(CK_SESSION_HANDLE h, const CK_BYTE *seed, CK_ULONG len)
{
    struct akv_session *s = NULL;
    CK_RV rv = akv_session_get(h, &s);

    (void)seed;
    (void)len;
    if (rv == CKR_OK) {
        rv = CKR_RANDOM_SEED_NOT_SUPPORTED;
        akv_session_put(s);
    }
    return rv;
}
