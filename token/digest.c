/* SPDX-License-Identifier: Apache-2.0 */
#include "digest.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../common/secret.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "crypto.h"
#include "mech.h"
#include "session.h"
#include "token.h"

struct akv_digest_op {
    EVP_MD_CTX *ctx;
    CK_ULONG len; /* digest bytes */
    bool multi;   /* an Update or Key call was made */
    bool single;  /* a C_Digest call is waiting for a larger buffer */
};

/* Digest mechanism -> OpenSSL algorithm name and output bytes (FIPS 180-4,
 * FIPS 202). The mechanism table (mech.c) says which are offered. */
static const struct {
    CK_MECHANISM_TYPE type;
    const char *name;
    CK_ULONG len;
} algs[] = {
    {CKM_SHA_1, "SHA1", 20},
    {CKM_SHA224, "SHA224", 28},
    {CKM_SHA256, "SHA256", 32},
    {CKM_SHA384, "SHA384", 48},
    {CKM_SHA512, "SHA512", 64},
    {CKM_SHA512_224, "SHA512-224", 28},
    {CKM_SHA512_256, "SHA512-256", 32},
    {CKM_SHA3_224, "SHA3-224", 28},
    {CKM_SHA3_256, "SHA3-256", 32},
    {CKM_SHA3_384, "SHA3-384", 48},
    {CKM_SHA3_512, "SHA3-512", 64},
};

void akv_digest_op_free(struct akv_digest_op *op)
{
    if (op == NULL) {
        return;
    }
    /* EVP_MD_CTX_free cleanses the state (it may hold key bytes). */
    EVP_MD_CTX_free(op->ctx);
    free(op);
}

const char *akv_digest_md_name(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (algs[i].type == type) {
            return algs[i].name;
        }
    }
    return NULL;
}

CK_ULONG akv_digest_len(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (algs[i].type == type) {
            return algs[i].len;
        }
    }
    return 0;
}

static const char *alg_name(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (algs[i].type == type) {
            return algs[i].name;
        }
    }
    return NULL;
}

CK_RV akv_digest_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_digest_op *op = NULL;
    EVP_MD *md = NULL;
    const char *name = NULL;

    rv = akv_session_claim(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    if (s->digest != NULL) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    rv = akv_mech_check(mech, CKF_DIGEST, (CK_KEY_TYPE)-1);
    if (rv != CKR_OK) {
        goto out;
    }
    name = alg_name(mech->mechanism);
    if (name == NULL) {
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
        rv = CKR_MECHANISM_PARAM_INVALID;
        goto out;
    }
    md = akv_crypto_md(name);
    if (md == NULL) {
        /* An OpenSSL build (or provider) without this algorithm. */
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    op->len = akv_digest_len(mech->mechanism);
    op->ctx = EVP_MD_CTX_new();
    if (op->ctx == NULL || EVP_DigestInit_ex2(op->ctx, md, NULL) != 1
        || (CK_ULONG)EVP_MD_get_size(md) != op->len) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    /* s->op (cipher.c) is read under s->lock by C_Login; the digest slot
     * is only touched by the claiming thread. */
    s->digest = op;
    op = NULL;
    rv = CKR_OK;
out:
    EVP_MD_free(md);
    akv_digest_op_free(op);
    akv_session_release(s);
    return rv;
}

/* Claims H and checks that a digest operation is active. ARGS_OK false ->
 * CKR_ARGUMENTS_BAD with *out still claimed when the operation is active,
 * so that settle() ends it (as claim_op in cipher.c). */
static CK_RV claim(CK_SESSION_HANDLE h, bool args_ok, struct akv_session **out)
{
    CK_RV rv = akv_session_claim(h, out);

    if (rv != CKR_OK) {
        *out = NULL;
        return rv;
    }
    if ((*out)->digest == NULL) {
        akv_session_release(*out);
        *out = NULL;
        return args_ok ? CKR_OPERATION_NOT_INITIALIZED : CKR_ARGUMENTS_BAD;
    }
    return args_ok ? CKR_OK : CKR_ARGUMENTS_BAD;
}

/* Ends the digest operation of S unless akv_session_op_kept (v3.0 §5.12,
 * the rule shared with cipher.c). KEEP_OK: a CKR_OK that keeps it (length
 * query, Update, Key). S may be NULL. Releases S; returns RV. */
static CK_RV settle(struct akv_session *s, CK_RV rv, bool keep_ok)
{
    if (s != NULL && !akv_session_op_kept(rv, keep_ok)) {
        akv_digest_op_free(s->digest);
        s->digest = NULL;
    }
    akv_session_release(s);
    return rv;
}

/* Writes the digest of OP's context so far (on a copy: the operation
 * stays usable) into OUT (op->len bytes). */
static CK_RV finish_copy(const struct akv_digest_op *op, CK_BYTE *out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;

    if (c != NULL && EVP_MD_CTX_copy_ex(c, op->ctx) == 1
        && EVP_DigestFinal_ex(c, out, &n) == 1 && n == op->len) {
        rv = CKR_OK;
    }
    EVP_MD_CTX_free(c);
    return rv;
}

/* Output-buffer rule shared by C_Digest and C_DigestFinal: NULL -> length
 * (CKR_OK), short -> CKR_BUFFER_TOO_SMALL with the length, else
 * CKR_OK meaning "go on and write". */
static CK_RV check_out(const struct akv_digest_op *op, const CK_BYTE *out,
                       CK_ULONG *out_len)
{
    CK_ULONG have = *out_len;

    *out_len = op->len;
    if (out != NULL && have < op->len) {
        return CKR_BUFFER_TOO_SMALL;
    }
    return CKR_OK;
}

CK_RV akv_digest(CK_SESSION_HANDLE h, const CK_BYTE *data, CK_ULONG data_len,
                 CK_BYTE *out, CK_ULONG *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_digest_op *op = NULL;
    EVP_MD_CTX *c = NULL;
    unsigned int n = 0;

    rv = claim(h, (data != NULL || data_len == 0) && out_len != NULL, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    op = s->digest;
    if (op->multi) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    rv = check_out(op, out, out_len);
    if (rv != CKR_OK || out == NULL) {
        if (rv == CKR_BUFFER_TOO_SMALL) {
            op->single = true;
        }
        goto out;
    }
    /* On a copy: the context stays fresh, so an error cannot leave it half
     * fed (and the operation ends anyway). */
    rv = CKR_GENERAL_ERROR;
    c = EVP_MD_CTX_new();
    if (c == NULL || EVP_MD_CTX_copy_ex(c, op->ctx) != 1
        || (data_len > 0 && EVP_DigestUpdate(c, data, data_len) != 1)
        || EVP_DigestFinal_ex(c, out, &n) != 1 || n != op->len) {
        goto out;
    }
    rv = CKR_OK;
out:
    EVP_MD_CTX_free(c);
    return settle(s, rv, out == NULL);
}

/* Update/Key precondition: not in the middle of a single-part call. */
static CK_RV feed(struct akv_digest_op *op, const void *data, size_t len)
{
    if (op->single) {
        return CKR_OPERATION_ACTIVE;
    }
    op->multi = true;
    if (len > 0 && EVP_DigestUpdate(op->ctx, data, len) != 1) {
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

CK_RV akv_digest_update(CK_SESSION_HANDLE h, const CK_BYTE *part,
                        CK_ULONG part_len)
{
    struct akv_session *s = NULL;
    CK_RV rv = claim(h, part != NULL || part_len == 0, &s);

    if (rv == CKR_OK) {
        rv = feed(s->digest, part, part_len);
    }
    return settle(s, rv, true);
}

CK_RV akv_digest_key(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE hkey)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *key = NULL;
    struct akv_token *t = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    bool digestible = false;

    rv = claim(h, true, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    if (s->digest->single) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    t = s->token;
    /* v3.0 §5.1: a handle of an object that is not a key is
     * CKR_KEY_HANDLE_INVALID. */
    if (akv_token_get_obj(t, hkey, &key) != CKR_OK || !akv_obj_is_key(key)) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    /* One rule with C_GetAttributeValue: the value may go into a digest
     * only if it could be read (v3.0 §5.12 lets a token refuse with
     * CKR_KEY_INDIGESTIBLE). */
    digestible = key->cls == CKO_SECRET_KEY && key->origin != AKV_ORIGIN_VAULT
                 && !akv_obj_is_sensitive(key, CKA_VALUE);
    pthread_rwlock_unlock(&t->lock);
    if (!digestible) {
        rv = CKR_KEY_INDIGESTIBLE;
        goto out;
    }
    /* A token object's value is unwrapped by the vault; the session is only
     * claimed (no lock held). */
    rv = akv_token_obj_value(t, key, &value);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = feed(s->digest, value.data, value.len);
out:
    akv_secret_clear(&value);
    akv_obj_unref(key);
    return settle(s, rv, true);
}

CK_RV akv_digest_final(CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len)
{
    struct akv_session *s = NULL;
    CK_RV rv = claim(h, out_len != NULL, &s);

    if (rv != CKR_OK) {
        goto out;
    }
    if (s->digest->single) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    s->digest->multi = true;
    rv = check_out(s->digest, out, out_len);
    if (rv == CKR_OK && out != NULL) {
        rv = finish_copy(s->digest, out);
    }
out:
    return settle(s, rv, out == NULL);
}
