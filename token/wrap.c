/* SPDX-License-Identifier: Apache-2.0 */
#include "wrap.h"

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "crypto.h"
#include "mech.h"
#include "object.h"
#include "rotate.h"
#include "session.h"
#include "token.h"

/* The plan for wrapping / unwrapping with K (token/mech.h), with the
 * key-type code of C_WrapKey / C_UnwrapKey (v3.0 §5.18). */
static CK_RV plan_for(struct akv_token *t, const CK_MECHANISM *mech,
                      struct akv_obj *k, bool unwrap, struct akv_mech_plan *p)
{
    CK_RV rv = akv_mech_plan(t, mech, unwrap ? CKF_UNWRAP : CKF_WRAP, k, p);

    if (rv == CKR_KEY_TYPE_INCONSISTENT) {
        rv = unwrap ? CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
                    : CKR_WRAPPING_KEY_TYPE_INCONSISTENT;
    }
    return rv;
}

/* Exact wrapped length for a key of LEN bytes (RFC 8017, 3394, 5649). */
static CK_RV wrapped_len(const struct akv_obj *wk, enum akv_kv_alg alg,
                         size_t len, CK_ULONG *out)
{
    size_t k = wk->pub != NULL ? (size_t)EVP_PKEY_get_size(wk->pub) : 0;

    switch (alg) {
    case AKV_KV_ALG_RSA1_5:
        if (len == 0 || len + 11 > k) {
            return CKR_KEY_SIZE_RANGE;
        }
        *out = k;
        return CKR_OK;
    case AKV_KV_ALG_RSA_OAEP:
    case AKV_KV_ALG_RSA_OAEP_256: {
        size_t hl = alg == AKV_KV_ALG_RSA_OAEP ? 20 : 32;

        if (len == 0 || len + 2 * hl + 2 > k) {
            return CKR_KEY_SIZE_RANGE;
        }
        *out = k;
        return CKR_OK;
    }
    case AKV_KV_ALG_A128KW:
    case AKV_KV_ALG_A192KW:
    case AKV_KV_ALG_A256KW:
    case AKV_KV_ALG_CKM_AES_KEY_WRAP:
        if (len < 16 || len % 8 != 0) {
            return CKR_KEY_SIZE_RANGE;
        }
        *out = len + 8;
        return CKR_OK;
    case AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD:
        if (len == 0) {
            return CKR_KEY_SIZE_RANGE;
        }
        *out = (len + 7) / 8 * 8 + 8;
        return CKR_OK;
    default:
        return CKR_MECHANISM_INVALID;
    }
}

CK_RV akv_wrap_key(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                   CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
                   CK_BYTE *out, CK_ULONG *out_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_token *t = NULL;
    struct akv_obj *wk = NULL;
    struct akv_obj *k = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    enum akv_kv_alg alg = AKV_KV_ALG_RSA_OAEP;
    CK_ULONG vlen = 0;
    CK_ULONG need = 0;
    CK_BBOOL extractable;
    struct akv_mech_plan plan;
    CK_BBOOL trusted;
    CK_BBOOL need_trusted;
    uint8_t *wrapped = NULL;
    size_t wlen = 0;

    rv = akv_session_get(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    t = s->token;
    rv = akv_mech_check(mech, CKF_WRAP, (CK_KEY_TYPE)-1);
    if (rv != CKR_OK) {
        goto out;
    }
    /* v3.0 §5.1: a handle of a non-key object is an invalid key handle. */
    if (akv_token_get_obj(t, wrapping, &wk) != CKR_OK || !akv_obj_is_key(wk)) {
        rv = CKR_WRAPPING_KEY_HANDLE_INVALID;
        goto out;
    }
    if (akv_token_get_obj(t, key, &k) != CKR_OK || !akv_obj_is_key(k)) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    /* v3.0 §5.18.3: the wrapping key needs CKA_WRAP TRUE (for vault keys
     * it mirrors key_ops wrapKey), its type the mechanism's, parameters the
     * vault can honour (token/mech.h). */
    rv = plan_for(t, mech, wk, false, &plan);
    if (rv != CKR_OK) {
        goto out;
    }
    alg = plan.alg;
    pthread_rwlock_rdlock(&t->lock);
    /* A key with CKA_WRAP_WITH_TRUSTED needs a CKA_TRUSTED wrapping key
     * (§4.10). */
    trusted = akv_attrs_bool(&wk->attrs, CKA_TRUSTED, CK_FALSE);
    extractable = akv_attrs_bool(&k->attrs, CKA_EXTRACTABLE, CK_FALSE);
    need_trusted = akv_attrs_bool(&k->attrs, CKA_WRAP_WITH_TRUSTED, CK_FALSE);
    (void)akv_attrs_ulong(&k->attrs, CKA_VALUE_LEN, &vlen);
    pthread_rwlock_unlock(&t->lock);
    if (k->cls != CKO_SECRET_KEY || k->origin == AKV_ORIGIN_VAULT) {
        rv = CKR_KEY_NOT_WRAPPABLE;
        goto out;
    }
    if (!extractable) {
        rv = CKR_KEY_UNEXTRACTABLE;
        goto out;
    }
    if (need_trusted && !trusted) {
        rv = CKR_KEY_NOT_WRAPPABLE;
        goto out;
    }
    rv = wrapped_len(wk, alg, vlen, &need);
    if (rv != CKR_OK) {
        goto out;
    }
    if (out == NULL) {
        *out_len = need; /* no remote call */
        rv = CKR_OK;
        goto out;
    }
    if (*out_len < need) {
        *out_len = need;
        rv = CKR_BUFFER_TOO_SMALL;
        goto out;
    }
    rv = akv_token_obj_value(t, k, &value);
    if (rv != CKR_OK) {
        goto out;
    }
    if (t->cfg->wrap == AKV_WRAP_LOCAL && wk->pub != NULL) {
        /* Same RSAES output as the vault; saves a round trip. */
        rv = akv_crypto_rsa_encrypt(wk->pub, alg, value.data, value.len, out,
                                    &wlen);
        if (rv == CKR_DATA_LEN_RANGE) {
            rv = CKR_KEY_SIZE_RANGE;
        }
        if (rv == CKR_OK) {
            *out_len = (CK_ULONG)wlen;
        }
        goto out;
    }
    rv = t->kv->ops->wrap(t->kv, wk->vkey->name, wk->vkey->version, alg,
                          value.data, value.len, &wrapped, &wlen, NULL);
    if (rv != CKR_OK) {
        goto out;
    }
    /* NEED is exact (RFC 8017, 3394, 5649): a shorter answer is not a
     * wrapped key either, and handing it over would lose the key. */
    if (wlen != need) {
        AKV_LOG_ERR("wrapKey answered %zu bytes, expected %lu", wlen,
                    (unsigned long)need);
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    memcpy(out, wrapped, wlen);
    *out_len = (CK_ULONG)wlen;
    rv = CKR_OK;
out:
    free(wrapped);
    akv_secret_clear(&value);
    akv_obj_unref(k);
    akv_obj_unref(wk);
    akv_session_put(s);
    return rv;
}

CK_RV akv_wrap_unwrap(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                      CK_OBJECT_HANDLE unwrapping, const CK_BYTE *in,
                      CK_ULONG in_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_token *t = NULL;
    struct akv_obj *uk = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    enum akv_kv_alg alg = AKV_KV_ALG_RSA_OAEP;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    struct akv_mech_plan plan;

    rv = akv_session_get(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    t = s->token;
    rv = akv_mech_check(mech, CKF_UNWRAP, (CK_KEY_TYPE)-1);
    if (rv != CKR_OK) {
        goto out;
    }
    if (akv_token_get_obj(t, unwrapping, &uk) != CKR_OK
        || !akv_obj_is_key(uk)) {
        rv = CKR_UNWRAPPING_KEY_HANDLE_INVALID;
        goto out;
    }
    /* Type, CKA_ALLOWED_MECHANISMS, parameters, CKA_UNWRAP: mech.h. */
    rv = plan_for(t, mech, uk, true, &plan);
    if (rv != CKR_OK) {
        goto out;
    }
    alg = plan.alg;
    if (uk->pub != NULL) {
        if (in_len != (CK_ULONG)EVP_PKEY_get_size(uk->pub)) {
            rv = CKR_WRAPPED_KEY_LEN_RANGE;
            goto out;
        }
    } else if (in_len < 16 || in_len % 8 != 0) {
        rv = CKR_WRAPPED_KEY_LEN_RANGE;
        goto out;
    }
    /* Everything that can be checked locally is checked before the
     * vault is asked. */
    rv = akv_object_check_secret_template(s, tmpl, n, AKV_ATTR_OP_UNWRAP,
                                          CKK_GENERIC_SECRET, &kt);
    if (rv != CKR_OK) {
        goto out;
    }
    /* The bound version, then (OAEP) the key's other known versions:
     * token/rotate.h. */
    rv = akv_rotate_unwrap(t, uk->vkey, alg, in, in_len, &value);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_object_make_secret(s, tmpl, n, AKV_ATTR_OP_UNWRAP, kt,
                                CK_UNAVAILABLE_INFORMATION,
                                CKR_WRAPPED_KEY_INVALID, &value, ph);
out:
    akv_secret_clear(&value);
    akv_obj_unref(uk);
    akv_session_put(s);
    return rv;
}
