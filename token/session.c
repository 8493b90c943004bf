/* SPDX-License-Identifier: Apache-2.0 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "cipher.h"
#include "digest.h"
#include "sign.h"
#include "crypto.h"
#include "slot.h"

/* The session table; under the global mutex (akv_slot_lock). */
static struct akv_session **table;
static size_t n_table;
static size_t cap_table;

static struct akv_session *find_locked(CK_SESSION_HANDLE h)
{
    for (size_t i = 0; i < n_table; i++) {
        if (table[i]->handle == h) {
            return table[i];
        }
    }
    return NULL;
}

static void session_free(struct akv_session *s)
{
    akv_session_find_reset(s);
    akv_cipher_op_free(s->op);
    s->op = NULL;
    akv_digest_op_free(s->digest);
    s->digest = NULL;
    akv_sign_op_free(s->sig);
    s->sig = NULL;
    pthread_mutex_destroy(&s->lock);
    s->magic = 0;
    free(s);
}

CK_RV akv_session_get(CK_SESSION_HANDLE h, struct akv_session **out)
{
    CK_RV rv = CKR_SESSION_HANDLE_INVALID;
    struct akv_session *s = NULL;

    akv_slot_lock();
    s = h != CK_INVALID_HANDLE ? find_locked(h) : NULL;
    if (s != NULL && !s->closed) {
        s->refs++;
        *out = s;
        rv = CKR_OK;
    }
    akv_slot_unlock();
    return rv;
}

void akv_session_put(struct akv_session *s)
{
    bool last = false;

    if (s == NULL) {
        return;
    }
    akv_slot_lock();
    last = --s->refs == 0;
    akv_slot_unlock();
    if (last) {
        session_free(s);
    }
}

CK_RV akv_session_claim(CK_SESSION_HANDLE h, struct akv_session **out)
{
    CK_RV rv = akv_session_get(h, out);

    if (rv != CKR_OK) {
        return rv;
    }
    pthread_mutex_lock(&(*out)->lock);
    if ((*out)->busy) {
        rv = CKR_OPERATION_ACTIVE;
    } else {
        (*out)->busy = true;
    }
    pthread_mutex_unlock(&(*out)->lock);
    if (rv != CKR_OK) {
        akv_session_put(*out);
        *out = NULL;
    }
    return rv;
}

void akv_session_release(struct akv_session *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->busy = false;
    pthread_mutex_unlock(&s->lock);
    akv_session_put(s);
}

bool akv_session_is_rw(const struct akv_session *s)
{
    return (s->flags & CKF_RW_SESSION) != 0;
}

bool akv_session_logged_in(const struct akv_session *s)
{
    bool in;

    akv_slot_lock();
    in = s->token->logged_in;
    akv_slot_unlock();
    return in;
}

CK_RV akv_session_open(CK_SLOT_ID slot_id, CK_FLAGS flags,
                       CK_SESSION_HANDLE *ph)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_token *t = akv_slot_token(slot_id);
    struct akv_session *s = NULL;

    if (t == NULL) {
        rv = CKR_SLOT_ID_INVALID;
        goto out;
    }
    if ((flags & CKF_SERIAL_SESSION) == 0) {
        rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    s->magic = AKV_SESSION_MAGIC;
    s->refs = 1; /* the table's */
    s->token = t;
    s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
    pthread_mutex_init(&s->lock, NULL);
    akv_slot_lock();
    if (n_table == cap_table) {
        size_t cap = cap_table == 0 ? 16 : cap_table * 2;
        struct akv_session **n = realloc(
            table,
            cap * sizeof(*n)); // NOLINT(bugprone-sizeof-expression): pointers

        if (n == NULL) {
            akv_slot_unlock();
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        table = n;
        cap_table = cap;
    }
    do {
        s->handle = akv_crypto_handle();
    } while (find_locked(s->handle) != NULL);
    table[n_table++] = s;
    t->n_sessions++;
    if (s->flags & CKF_RW_SESSION) {
        t->n_rw_sessions++;
    }
    *ph = s->handle;
    s = NULL;
    akv_slot_unlock();
    rv = CKR_OK;
out:
    if (s != NULL) {
        session_free(s);
    }
    return rv;
}

/* Removes S from the table; the caller holds the global mutex. */
static void unlink_locked(struct akv_session *s)
{
    struct akv_token *t = s->token;

    for (size_t i = 0; i < n_table; i++) {
        if (table[i] == s) {
            table[i] = table[--n_table];
            break;
        }
    }
    s->closed = true;
    t->n_sessions--;
    if (s->flags & CKF_RW_SESSION) {
        t->n_rw_sessions--;
    }
    /* v3.0 §5.6.4: closing the last session logs the application out. */
    if (t->n_sessions == 0) {
        t->logged_in = false;
    }
}

static void finish_close(struct akv_session *s)
{
    akv_token_drop_session_objs(s->token, s->handle);
    akv_session_put(s); /* the table's reference */
}

CK_RV akv_session_close(CK_SESSION_HANDLE h)
{
    struct akv_session *s = NULL;

    akv_slot_lock();
    s = h != CK_INVALID_HANDLE ? find_locked(h) : NULL;
    if (s == NULL || s->closed) {
        akv_slot_unlock();
        return CKR_SESSION_HANDLE_INVALID;
    }
    unlink_locked(s);
    akv_slot_unlock();
    finish_close(s);
    return CKR_OK;
}

static void close_matching(struct akv_token *t)
{
    for (;;) {
        struct akv_session *s = NULL;

        akv_slot_lock();
        for (size_t i = 0; i < n_table && s == NULL; i++) {
            if (t == NULL || table[i]->token == t) {
                s = table[i];
            }
        }
        if (s != NULL) {
            unlink_locked(s);
        }
        akv_slot_unlock();
        if (s == NULL) {
            break;
        }
        finish_close(s);
    }
}

CK_RV akv_session_close_all(CK_SLOT_ID slot_id)
{
    struct akv_token *t = akv_slot_token(slot_id);

    if (t == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    close_matching(t);
    return CKR_OK;
}

void akv_session_close_everything(void)
{
    close_matching(NULL);
    akv_slot_lock();
    free(table);
    table = NULL;
    n_table = 0;
    cap_table = 0;
    akv_slot_unlock();
}

void akv_session_forget(void)
{
    table = NULL;
    n_table = 0;
    cap_table = 0;
}

CK_RV akv_session_get_info(CK_SESSION_HANDLE h, CK_SESSION_INFO *info)
{
    struct akv_session *s = NULL;
    CK_RV rv = akv_session_get(h, &s);
    bool rw;
    bool in;

    if (rv != CKR_OK) {
        return rv;
    }
    rw = akv_session_is_rw(s);
    in = akv_session_logged_in(s);
    memset(info, 0, sizeof(*info));
    info->slotID = s->token->slot_id;
    info->flags = s->flags;
    info->ulDeviceError = 0;
    if (rw) {
        info->state = in ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION;
    } else {
        info->state = in ? CKS_RO_USER_FUNCTIONS : CKS_RO_PUBLIC_SESSION;
    }
    akv_session_put(s);
    return CKR_OK;
}

CK_RV akv_session_login(CK_SESSION_HANDLE h, CK_USER_TYPE user,
                        const CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;
    bool op_active = false;

    rv = akv_session_get(h, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    if (pin == NULL && pin_len > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    op_active = s->op != NULL || s->sig != NULL;
    pthread_mutex_unlock(&s->lock);
    akv_slot_lock();
    switch (user) {
    case CKU_USER:
        if (s->token->logged_in) {
            rv = CKR_USER_ALREADY_LOGGED_IN;
        } else {
            s->token->logged_in = true;
            rv = CKR_OK;
        }
        break;
    case CKU_CONTEXT_SPECIFIC:
        if (!op_active) {
            rv = CKR_OPERATION_NOT_INITIALIZED;
        } else if (!s->token->logged_in) {
            rv = CKR_USER_NOT_LOGGED_IN;
        } else {
            rv = CKR_OK;
        }
        break;
    case CKU_SO:
        /* The token has no Security Officer (no PIN; the Azure identity
         * is the credential). CKR_USER_TYPE_INVALID would say CKU_SO is
         * not a user type at all (v3.0 §5.1.6), which it is, and
         * CKR_FUNCTION_NOT_SUPPORTED is not among C_Login's codes
         * (§5.6). The spec's way to say "SO login is not possible" is a
         * locked SO PIN: CK_TOKEN_INFO's CKF_SO_PIN_LOCKED (§3.2, set by
         * akv_slot_get_token_info) and CKR_PIN_LOCKED from C_Login
         * (§5.6; Google's Cloud KMS module answers the same). */
        rv = CKR_PIN_LOCKED;
        break;
    default:
        rv = CKR_USER_TYPE_INVALID;
        break;
    }
    akv_slot_unlock();
out:
    akv_session_put(s);
    return rv;
}

CK_RV akv_session_logout(CK_SESSION_HANDLE h)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_session *s = NULL;

    rv = akv_session_get(h, &s);
    if (rv != CKR_OK) {
        goto out;
    }
    akv_slot_lock();
    if (!s->token->logged_in) {
        rv = CKR_USER_NOT_LOGGED_IN;
    } else {
        s->token->logged_in = false;
        rv = CKR_OK;
    }
    akv_slot_unlock();
out:
    akv_session_put(s);
    return rv;
}

void akv_session_find_reset(struct akv_session *s)
{
    free(s->found);
    s->found = NULL;
    s->n_found = 0;
    s->find_pos = 0;
    s->find_active = false;
}

bool akv_session_op_kept(CK_RV rv, bool ok_keeps)
{
    return rv == CKR_BUFFER_TOO_SMALL || rv == CKR_OPERATION_ACTIVE
           || (rv == CKR_OK && ok_keeps);
}
