/* SPDX-License-Identifier: Apache-2.0 */
#include "object.h"

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "crypto.h"
#include "mech.h"
#include "pubkey.h"
#include "token.h"

#define GENERIC_MAX_BYTES 512

/* ---- find ---- */

static bool visible_match(const struct akv_obj *o, const CK_ATTRIBUTE *tmpl,
                          CK_ULONG n, bool has_id)
{
    if (o->dead) {
        return false;
    }
    if (o->origin == AKV_ORIGIN_VAULT && !o->listed && !has_id) {
        return false;
    }
    return akv_attrs_match(&o->attrs, tmpl, n);
}

CK_RV akv_object_find_init(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl,
                           CK_ULONG n)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_token *t = NULL;
    bool has_id = akv_attr_tmpl_find(tmpl, n, CKA_ID) != NULL;

    rv = akv_session_claim(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    t = s->token;
    if (s->find_active) {
        rv = CKR_OPERATION_ACTIVE;
        goto out;
    }
    rv = akv_attr_check_find(tmpl, n);
    if (rv != CKR_OK) {
        goto out;
    }
    /* Network I/O (GET key) happens here, with no lock held. */
    rv = akv_token_refresh(t, tmpl, n);
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    s->found = calloc(t->n_objs + 1, sizeof(*s->found));
    if (s->found == NULL) {
        pthread_rwlock_unlock(&t->lock);
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < t->n_objs; i++) {
        if (visible_match(t->objs[i], tmpl, n, has_id)) {
            s->found[s->n_found++] = t->objs[i]->handle;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    s->find_pos = 0;
    s->find_active = true;
    rv = CKR_OK;
out:
    akv_session_release(s);
    return rv;
}

CK_RV akv_object_find(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *objs, CK_ULONG max,
                      CK_ULONG *count)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    CK_ULONG k = 0;

    rv = akv_session_claim(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    if (!s->find_active) {
        rv = CKR_OPERATION_NOT_INITIALIZED;
        goto out;
    }
    while (k < max && s->find_pos < s->n_found) {
        objs[k++] = s->found[s->find_pos++];
    }
    *count = k;
    rv = CKR_OK;
out:
    akv_session_release(s);
    return rv;
}

CK_RV akv_object_find_final(CK_SESSION_HANDLE h)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;

    rv = akv_session_claim(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    if (!s->find_active) {
        rv = CKR_OPERATION_NOT_INITIALIZED;
        goto out;
    }
    akv_session_find_reset(s);
    rv = CKR_OK;
out:
    akv_session_release(s);
    return rv;
}

/* ---- secret keys ---- */

/* CKA_TOKEN of TMPL (DFLT when absent) into *IS_TOKEN; a token object only
 * from a R/W session with a usable store. */
static CK_RV check_token_flag(struct akv_session *s, const CK_ATTRIBUTE *tmpl,
                              CK_ULONG n, CK_BBOOL dflt, bool *is_token)
{
    CK_BBOOL tok = dflt;

    (void)akv_attr_tmpl_bool(tmpl, n, CKA_TOKEN, &tok);
    *is_token = tok == CK_TRUE;
    if (!*is_token) {
        return CKR_OK;
    }
    /* v3.0 §5.7.1: token objects only from R/W sessions. */
    if (!akv_session_is_rw(s)) {
        return CKR_SESSION_READ_ONLY;
    }
    if (s->token->store == NULL && s->token->store_refused) {
        /* docs/STORE.md "Who may own the store" */
        AKV_LOG_ERR("token '%s': CKA_TOKEN=TRUE refused: store_dir %s was "
                    "refused at C_Initialize (see that log line)",
                    s->token->cfg->label, s->token->cfg->store_dir);
        return CKR_TOKEN_WRITE_PROTECTED;
    }
    if (s->token->store == NULL) {
        AKV_LOG_ERR("token '%s': CKA_TOKEN=TRUE needs store_dir",
                    s->token->cfg->label);
        return CKR_TEMPLATE_INCONSISTENT;
    }
    return CKR_OK;
}

CK_RV akv_object_check_secret_template(struct akv_session *s,
                                       const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                                       enum akv_attr_op op, CK_KEY_TYPE dflt_kt,
                                       CK_KEY_TYPE *kt)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ULONG k = dflt_kt;
    bool is_token = false;

    rv = akv_attr_check_template(tmpl, n, op);
    if (rv != CKR_OK) {
        goto out;
    }
    if (akv_attr_tmpl_ulong(tmpl, n, CKA_CLASS, &cls)
        && cls != CKO_SECRET_KEY) {
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    rv = akv_attr_check_class(tmpl, n, CKO_SECRET_KEY);
    if (rv != CKR_OK) {
        goto out;
    }
    if (!akv_attr_tmpl_ulong(tmpl, n, CKA_KEY_TYPE, &k)
        && k == (CK_KEY_TYPE)-1) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto out;
    }
    if (k != CKK_AES && k != CKK_GENERIC_SECRET) {
        rv = op == AKV_ATTR_OP_CREATE ? CKR_ATTRIBUTE_VALUE_INVALID
                                      : CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    rv = check_token_flag(s, tmpl, n, CK_FALSE, &is_token);
    if (rv != CKR_OK) {
        goto out;
    }
    *kt = k;
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_object_make_secret(struct akv_session *s, const CK_ATTRIBUTE *tmpl,
                             CK_ULONG n, enum akv_attr_op op, CK_KEY_TYPE kt,
                             CK_MECHANISM_TYPE gen_mech, CK_RV bad_len_rv,
                             struct akv_secret *value, CK_OBJECT_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_token *t = s->token;
    struct akv_obj *o = NULL;
    struct akv_attrs *a = NULL;
    CK_ULONG want_len = 0;
    bool is_token = false;
    bool generated = gen_mech != CK_UNAVAILABLE_INFORMATION;
    CK_RV r = CKR_OK;

    if (akv_attr_tmpl_ulong(tmpl, n, CKA_VALUE_LEN, &want_len)
        && want_len != value->len) {
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    if (kt == CKK_AES && value->len != 16 && value->len != 24
        && value->len != 32) {
        rv = bad_len_rv;
        goto out;
    }
    if (value->len == 0) {
        rv = bad_len_rv;
        goto out;
    }
    rv = check_token_flag(s, tmpl, n, CK_FALSE, &is_token);
    if (rv != CKR_OK) {
        goto out;
    }
    o = akv_obj_new(is_token ? AKV_ORIGIN_STORE : AKV_ORIGIN_SESSION,
                    CKO_SECRET_KEY, kt);
    if (o == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    a = &o->attrs;
    r |= akv_attrs_set_ulong(a, CKA_CLASS, CKO_SECRET_KEY);
    r |= akv_attrs_set_ulong(a, CKA_KEY_TYPE, kt);
    r |= akv_attrs_set_bool(a, CKA_TOKEN, is_token ? CK_TRUE : CK_FALSE);
    r |= akv_attrs_set_bool(a, CKA_LOCAL, generated ? CK_TRUE : CK_FALSE);
    r |= akv_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM, gen_mech);
    r |= akv_attrs_set_ulong(a, CKA_VALUE_LEN, (CK_ULONG)value->len);
    r |= akv_attrs_merge(a, tmpl, n, CKA_VALUE);
    /* Everything else a secret key answers (v3.0 §4.4, §4.7, §4.10), with
     * the defaults above, from the table in attr.c. */
    r |= akv_attrs_fill_defaults(a, CKO_SECRET_KEY);
    if (r != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    /* v3.0 §4.10: ALWAYS_SENSITIVE / NEVER_EXTRACTABLE are only TRUE for
     * keys that were generated so; created and unwrapped keys get FALSE. */
    r |= akv_attrs_set_bool(
        a, CKA_ALWAYS_SENSITIVE,
        generated ? akv_attrs_bool(a, CKA_SENSITIVE, CK_FALSE) : CK_FALSE);
    r |= akv_attrs_set_bool(
        a, CKA_NEVER_EXTRACTABLE,
        generated ? !akv_attrs_bool(a, CKA_EXTRACTABLE, CK_TRUE) : CK_FALSE);
    if (r != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    (void)op;
    if (is_token) {
        /* Network (wrapKey) + disk + table (akv_token_persist). */
        rv = akv_token_persist(t, o, value);
        akv_secret_clear(value);
    } else {
        o->value = *value;
        value->data = NULL;
        value->len = 0;
        value->cap = 0;
        o->owner = s->handle;
        pthread_rwlock_wrlock(&t->lock);
        rv = akv_token_add_obj_locked(t, o);
        pthread_rwlock_unlock(&t->lock);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    *ph = o->handle;
out:
    akv_obj_unref(o);
    return rv;
}

CK_RV akv_object_generate_key(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                              const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              CK_OBJECT_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    CK_KEY_TYPE kt = CKK_AES;
    CK_KEY_TYPE want;
    CK_ULONG len = 0;

    rv = akv_session_get(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    rv = akv_mech_check(mech, CKF_GENERATE, (CK_KEY_TYPE)-1);
    if (rv != CKR_OK) {
        goto out;
    }
    if (mech->pParameter != NULL || mech->ulParameterLen != 0) {
        rv = CKR_MECHANISM_PARAM_INVALID;
        goto out;
    }
    want = mech->mechanism == CKM_AES_KEY_GEN ? CKK_AES : CKK_GENERIC_SECRET;
    rv = akv_object_check_secret_template(s, tmpl, n, AKV_ATTR_OP_GENERATE,
                                          want, &kt);
    if (rv != CKR_OK) {
        goto out;
    }
    if (kt != want) {
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    if (!akv_attr_tmpl_ulong(tmpl, n, CKA_VALUE_LEN, &len)) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto out;
    }
    if ((kt == CKK_AES && len != 16 && len != 24 && len != 32)
        || (kt == CKK_GENERIC_SECRET
            && (len == 0 || len > GENERIC_MAX_BYTES))) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto out;
    }
    if (akv_secret_alloc(&value, len) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    rv = akv_crypto_random(value.data, len);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_object_make_secret(s, tmpl, n, AKV_ATTR_OP_GENERATE, kt,
                                mech->mechanism, CKR_ATTRIBUTE_VALUE_INVALID,
                                &value, ph);
out:
    akv_secret_clear(&value);
    akv_session_put(s);
    return rv;
}

static CK_RV create_data(struct akv_session *s, const CK_ATTRIBUTE *tmpl,
                         CK_ULONG n, CK_OBJECT_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_obj *o = NULL;
    CK_BBOOL tok = CK_FALSE;
    CK_RV r = CKR_OK;

    rv = akv_attr_check_class(tmpl, n, CKO_DATA);
    if (rv != CKR_OK) {
        goto out;
    }
    (void)akv_attr_tmpl_bool(tmpl, n, CKA_TOKEN, &tok);
    if (tok && !akv_session_is_rw(s)) {
        /* v3.0 §5.7.1: no token object from a R/O session; said first,
         * as check_token_flag does for keys, so the caller learns the
         * session is the problem whatever the object class. */
        rv = CKR_SESSION_READ_ONLY;
        goto out;
    }
    if (tok) {
        /* The store holds wrapped secrets only; data objects live for
         * the session. */
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    o = akv_obj_new(AKV_ORIGIN_SESSION, CKO_DATA, (CK_KEY_TYPE)-1);
    if (o == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    r |= akv_attrs_set_ulong(&o->attrs, CKA_CLASS, CKO_DATA);
    r |= akv_attrs_set_bool(&o->attrs, CKA_TOKEN, CK_FALSE);
    r |= akv_attrs_set_bool(&o->attrs, CKA_PRIVATE, CK_FALSE);
    r |= akv_attrs_set_bool(&o->attrs, CKA_MODIFIABLE, CK_TRUE);
    r |= akv_attrs_set_bool(&o->attrs, CKA_COPYABLE, CK_TRUE);
    r |= akv_attrs_set_bool(&o->attrs, CKA_DESTROYABLE, CK_TRUE);
    r |= akv_attrs_set(&o->attrs, CKA_LABEL, NULL, 0);
    r |= akv_attrs_set(&o->attrs, CKA_APPLICATION, NULL, 0);
    r |= akv_attrs_set(&o->attrs, CKA_OBJECT_ID, NULL, 0);
    r |= akv_attrs_set(&o->attrs, CKA_VALUE, NULL, 0);
    r |= akv_attrs_merge(&o->attrs, tmpl, n, (CK_ATTRIBUTE_TYPE)-1);
    if (r != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    o->owner = s->handle;
    pthread_rwlock_wrlock(&s->token->lock);
    rv = akv_token_add_obj_locked(s->token, o);
    pthread_rwlock_unlock(&s->token->lock);
    if (rv == CKR_OK) {
        *ph = o->handle;
    }
out:
    akv_obj_unref(o);
    return rv;
}

CK_RV akv_object_create(CK_SESSION_HANDLE h, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    const CK_ATTRIBUTE *v = NULL;
    CK_ULONG cls = 0;
    CK_KEY_TYPE kt = 0;

    rv = akv_session_get(h, &s);
    if (rv != CKR_OK) {
        s = NULL;
        goto out;
    }
    /* The class decides first (v3.0 §5.7.1): a class this token does not
     * import is CKR_ATTRIBUTE_VALUE_INVALID (the CKA_CLASS value), whatever
     * attributes such an object would carry; each class then checks its
     * own template. */
    if (akv_attr_tmpl_find(tmpl, n, CKA_CLASS) == NULL) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto out;
    }
    if (!akv_attr_tmpl_ulong(tmpl, n, CKA_CLASS, &cls)) {
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto out;
    }
    if (cls == CKO_PUBLIC_KEY) {
        rv = akv_pubkey_create(s, tmpl, n, ph);
        goto out;
    }
    if (cls != CKO_DATA && cls != CKO_SECRET_KEY) {
        /* Private keys stay in the vault; no certificates, ... */
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
        goto out;
    }
    rv = akv_attr_check_template(tmpl, n, AKV_ATTR_OP_CREATE);
    if (rv != CKR_OK) {
        goto out;
    }
    if (cls == CKO_DATA) {
        rv = create_data(s, tmpl, n, ph);
        goto out;
    }
    rv = akv_object_check_secret_template(s, tmpl, n, AKV_ATTR_OP_CREATE,
                                          (CK_KEY_TYPE)-1, &kt);
    if (rv != CKR_OK) {
        goto out;
    }
    v = akv_attr_tmpl_find(tmpl, n, CKA_VALUE);
    if (v == NULL || v->ulValueLen == 0) {
        rv = CKR_TEMPLATE_INCOMPLETE;
        goto out;
    }
    if (akv_secret_set(&value, v->pValue, v->ulValueLen) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    rv = akv_object_make_secret(s, tmpl, n, AKV_ATTR_OP_CREATE, kt,
                                CK_UNAVAILABLE_INFORMATION,
                                CKR_ATTRIBUTE_VALUE_INVALID, &value, ph);
out:
    akv_secret_clear(&value);
    akv_session_put(s);
    return rv;
}

/* ---- copy / destroy / set / get / size ---- */

/* v3.0 §4 fn 11/12 and CKA_COPYABLE: the one-way attributes. */
static CK_RV check_sticky(const struct akv_attrs *cur, const CK_ATTRIBUTE *tmpl,
                          CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        const struct akv_attr_policy *p = akv_attr_policy_find(tmpl[i].type);
        CK_BBOOL now;
        CK_BBOOL want;

        if (p == NULL || p->kind != AKV_AK_BOOL) {
            continue;
        }
        want = *(const CK_BBOOL *)tmpl[i].pValue;
        now = akv_attrs_bool(cur, tmpl[i].type, want);
        if ((p->flags & AKV_A_STICKY_TRUE) && now == CK_TRUE
            && want == CK_FALSE) {
            return CKR_ATTRIBUTE_READ_ONLY;
        }
        if ((p->flags & AKV_A_STICKY_FALSE) && now == CK_FALSE
            && want == CK_TRUE) {
            return CKR_ATTRIBUTE_READ_ONLY;
        }
    }
    return CKR_OK;
}

/* Looks up session H and object OBJ of its token, taking a reference on
 * each; the caller drops them with akv_obj_unref / akv_session_put (both
 * NULL-safe, and *s / *o stay NULL when their lookup fails). CKR_OK or
 * the lookup's error (CKR_SESSION_HANDLE_INVALID, ..._CLOSED,
 * CKR_OBJECT_HANDLE_INVALID). */
static CK_RV get_session_obj(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                             struct akv_session **s, struct akv_obj **o)
{
    CK_RV rv = CKR_GENERAL_ERROR;

    rv = akv_session_get(h, s);
    if (rv != CKR_OK) {
        *s = NULL;
        goto out;
    }
    rv = akv_token_get_obj((*s)->token, obj, o);
out:
    return rv;
}

/* Whether session S may change object O (PKCS#11 v3.0 §5.7 C_DestroyObject,
 * C_SetAttributeValue): never a vault key or an object whose FLAG
 * (CKA_DESTROYABLE, CKA_MODIFIABLE) is false (CKR_ACTION_PROHIBITED); a
 * token object only from an R/W session (CKR_SESSION_READ_ONLY). CKR_OK
 * otherwise. Caller holds the token lock. */
static CK_RV check_changeable(const struct akv_session *s,
                              const struct akv_obj *o, CK_ATTRIBUTE_TYPE flag)
{
    CK_RV rv = CKR_OK;

    if (o->origin == AKV_ORIGIN_VAULT
        || !akv_attrs_bool(&o->attrs, flag, CK_TRUE)) {
        rv = CKR_ACTION_PROHIBITED;
    } else if (o->origin == AKV_ORIGIN_STORE && !akv_session_is_rw(s)) {
        rv = CKR_SESSION_READ_ONLY;
    }
    return rv;
}

CK_RV akv_object_copy(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *src = NULL;
    struct akv_obj *o = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    struct akv_token *t = NULL;
    bool is_token = false;

    rv = get_session_obj(h, obj, &s, &src);
    if (rv != CKR_OK) {
        goto out;
    }
    t = s->token;
    rv = akv_attr_check_template(tmpl, n, AKV_ATTR_OP_COPY);
    if (rv == CKR_OK) {
        rv = akv_attr_check_class(tmpl, n, src->cls);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    /* v3.0 §5.7 C_CopyObject: the copy keeps the attributes the template
     * does not name, CKA_TOKEN included (a token copy: R/W only) */
    rv = check_token_flag(s, tmpl, n,
                          src->origin == AKV_ORIGIN_STORE ? CK_TRUE : CK_FALSE,
                          &is_token);
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    if (src->origin == AKV_ORIGIN_VAULT
        || !akv_attrs_bool(&src->attrs, CKA_COPYABLE, CK_TRUE)) {
        rv = CKR_ACTION_PROHIBITED;
    } else {
        rv = check_sticky(&src->attrs, tmpl, n);
    }
    if (rv == CKR_OK) {
        o = akv_obj_new(is_token ? AKV_ORIGIN_STORE : AKV_ORIGIN_SESSION,
                        src->cls, src->key_type);
        rv = o == NULL ? CKR_HOST_MEMORY
                       : akv_attrs_copy(&o->attrs, &src->attrs);
    }
    pthread_rwlock_unlock(&t->lock);
    if (rv != CKR_OK) {
        goto out;
    }
    akv_attrs_remove(&o->attrs, CKA_AKV_WRAPPING_KID);
    if (akv_attrs_merge(&o->attrs, tmpl, n, (CK_ATTRIBUTE_TYPE)-1) != CKR_OK
        || akv_attrs_set_bool(&o->attrs, CKA_TOKEN,
                              is_token ? CK_TRUE : CK_FALSE)
               != CKR_OK) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (src->pub != NULL && EVP_PKEY_up_ref(src->pub) == 1) {
        o->pub = src->pub; /* an imported RSA public key encrypts too */
    }
    if (src->priv != NULL && EVP_PKEY_up_ref(src->priv) == 1) {
        o->priv = src->priv; /* a session key pair's copy signs too */
    }
    if (src->cls == CKO_SECRET_KEY) {
        rv = akv_token_obj_value(t, src, &value);
        if (rv != CKR_OK) {
            goto out;
        }
    } else if (is_token) {
        rv = CKR_TEMPLATE_INCONSISTENT;
        goto out;
    }
    if (is_token) {
        /* Network (wrapKey) + disk + table (akv_token_persist). */
        rv = akv_token_persist(t, o, &value);
    } else {
        o->value = value;
        memset(&value, 0, sizeof(value));
        o->owner = s->handle;
        pthread_rwlock_wrlock(&t->lock);
        rv = akv_token_add_obj_locked(t, o);
        pthread_rwlock_unlock(&t->lock);
    }
    if (rv == CKR_OK) {
        *ph = o->handle;
    }
out:
    akv_secret_clear(&value);
    akv_obj_unref(o);
    akv_obj_unref(src);
    akv_session_put(s);
    return rv;
}

CK_RV akv_object_destroy(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *o = NULL;
    struct akv_token *t = NULL;

    rv = get_session_obj(h, obj, &s, &o);
    if (rv != CKR_OK) {
        goto out;
    }
    t = s->token;
    if (o->origin == AKV_ORIGIN_VAULT
        && (o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY)
        && t->cfg->allow_delete) {
        /* tokens[].allow_delete: the vault key itself goes (README
         * "Creating keys"); a token object, so from a R/W session only.
         * Only a key pair's objects: a certificate object (also of vault
         * origin) stays read-only whatever the setting. */
        rv = akv_session_is_rw(s) ? akv_token_delete_key(t, o)
                                  : CKR_SESSION_READ_ONLY;
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    rv = check_changeable(s, o, CKA_DESTROYABLE);
    pthread_rwlock_unlock(&t->lock);
    if (rv != CKR_OK) {
        goto out;
    }
    /* Store record and table entry go together (akv_token_forget). */
    rv = akv_token_forget(t, o);
out:
    akv_obj_unref(o);
    akv_session_put(s);
    return rv;
}

CK_RV akv_object_get_size(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                          CK_ULONG *size)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *o = NULL;

    rv = get_session_obj(h, obj, &s, &o);
    if (rv != CKR_OK) {
        goto out;
    }
    pthread_rwlock_rdlock(&s->token->lock);
    *size = (CK_ULONG)(akv_attrs_size(&o->attrs) + o->value.len
                       + o->rec.wrapped_len);
    pthread_rwlock_unlock(&s->token->lock);
    rv = CKR_OK;
out:
    akv_obj_unref(o);
    akv_session_put(s);
    return rv;
}

/* True when every CKA_VALUE entry of TMPL only asks for the length. */
static bool value_len_query(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (tmpl[i].type == CKA_VALUE && tmpl[i].pValue != NULL) {
            return false;
        }
    }
    return true;
}

CK_RV akv_object_get_attrs(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                           CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *o = NULL;
    struct akv_token *t = NULL;
    struct akv_secret value = AKV_SECRET_INIT;
    struct akv_attrs view = AKV_ATTRS_INIT;
    bool want_value = false;

    rv = get_session_obj(h, obj, &s, &o);
    if (rv != CKR_OK) {
        goto out;
    }
    t = s->token;
    pthread_rwlock_rdlock(&t->lock);
    want_value = o->cls == CKO_SECRET_KEY
                 && akv_attr_tmpl_find(tmpl, n, CKA_VALUE) != NULL
                 && !akv_obj_is_sensitive(o, CKA_VALUE);
    if (want_value && value_len_query(tmpl, n)) {
        /* Length only (Java SunPKCS11 asks this first): CKA_VALUE_LEN
         * answers it without asking the vault. */
        CK_ULONG vlen = 0;

        (void)akv_attrs_ulong(&o->attrs, CKA_VALUE_LEN, &vlen);
        rv = akv_secret_alloc(&value, vlen) == 0 ? CKR_OK : CKR_HOST_MEMORY;
        pthread_rwlock_unlock(&t->lock);
        if (rv != CKR_OK) {
            goto out;
        }
    } else {
        pthread_rwlock_unlock(&t->lock);
        if (want_value) {
            /* A readable token-object value is unwrapped by the vault
             * first (no lock held). */
            rv = akv_token_obj_value(t, o, &value);
            if (rv != CKR_OK) {
                goto out;
            }
        }
    }
    pthread_rwlock_rdlock(&t->lock);
    if (want_value) {
        rv = akv_attrs_copy(&view, &o->attrs);
        if (rv == CKR_OK) {
            rv = akv_attrs_set(&view, CKA_VALUE, value.data,
                               (CK_ULONG)value.len);
        }
        if (rv == CKR_OK) {
            rv = akv_attr_get_values(&view, akv_obj_is_sensitive, o, tmpl, n);
        }
    } else {
        rv = akv_attr_get_values(&o->attrs, akv_obj_is_sensitive, o, tmpl, n);
    }
    pthread_rwlock_unlock(&t->lock);
out:
    /* The view may hold the key value: wipe before freeing. */
    for (size_t i = 0; i < view.n; i++) {
        akv_secret_wipe(view.v[i].pValue, view.v[i].ulValueLen);
    }
    akv_attrs_clear(&view);
    akv_secret_clear(&value);
    akv_obj_unref(o);
    akv_session_put(s);
    return rv;
}

CK_RV akv_object_set_attrs(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                           const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    struct akv_obj *o = NULL;
    struct akv_token *t = NULL;
    struct akv_attrs next = AKV_ATTRS_INIT;

    rv = get_session_obj(h, obj, &s, &o);
    if (rv != CKR_OK) {
        goto out;
    }
    t = s->token;
    pthread_rwlock_rdlock(&t->lock);
    rv = check_changeable(s, o, CKA_MODIFIABLE);
    if (rv == CKR_OK) {
        rv = akv_attr_check_template(tmpl, n, AKV_ATTR_OP_SET);
    }
    if (rv == CKR_OK) {
        rv = akv_attr_check_class(tmpl, n, o->cls);
    }
    if (rv == CKR_OK) {
        rv = check_sticky(&o->attrs, tmpl, n);
    }
    if (rv == CKR_OK) {
        rv = akv_attrs_copy(&next, &o->attrs);
    }
    pthread_rwlock_unlock(&t->lock);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_attrs_merge(&next, tmpl, n, (CK_ATTRIBUTE_TYPE)-1);
    if (rv != CKR_OK) {
        goto out;
    }
    if (o->origin == AKV_ORIGIN_STORE) {
        rv = akv_token_rewrite_attrs(t, o, &next);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    pthread_rwlock_wrlock(&t->lock);
    akv_attrs_clear(&o->attrs);
    o->attrs = next;
    next.v = NULL;
    next.n = 0;
    pthread_rwlock_unlock(&t->lock);
    rv = CKR_OK;
out:
    akv_attrs_clear(&next);
    akv_obj_unref(o);
    akv_session_put(s);
    return rv;
}
