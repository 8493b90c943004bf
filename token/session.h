/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sessions: random handles, the state machine (v3.0 §5.6 and §6.7 session
 * states), login per token for all sessions of the application, and the
 * one active operation slot of each session.
 *
 * A session is reference-counted; the table (under the global mutex) holds
 * one reference. A call "claims" a session while it works on its operation
 * state (find, encrypt, decrypt): a second concurrent claim gets
 * CKR_OPERATION_ACTIVE instead of blocking, so no lock is ever held while
 * the vault is asked.
 */
#ifndef AKV_TOKEN_SESSION_H
#define AKV_TOKEN_SESSION_H

#include <pthread.h>
#include <stdbool.h>

#include <p11-kit/pkcs11.h>

#include "token.h"

#define AKV_SESSION_MAGIC 0x414b5353u /* "AKSS" */

struct akv_op;        /* cipher.c */
struct akv_digest_op; /* digest.c */
struct akv_sig_op;    /* sign.c */

struct akv_session {
    uint32_t magic;
    unsigned refs; /* under the global mutex */
    CK_SESSION_HANDLE handle;
    struct akv_token *token;
    CK_FLAGS flags; /* CKF_SERIAL_SESSION [| CKF_RW_SESSION] */
    bool closed;
    pthread_mutex_t lock; /* guards busy */
    bool busy;
    /* Find operation (v3.0 §5.7.7). */
    bool find_active;
    CK_OBJECT_HANDLE *found;
    size_t n_found;
    size_t find_pos;
    /* Encrypt / decrypt operation (cipher.c). */
    struct akv_op *op;
    /* Digest operation (digest.c; its own slot, v3.0 §5.12). */
    struct akv_digest_op *digest;
    /* Sign / verify operation (sign.c): a kind of its own, v3.0 §5.12. */
    struct akv_sig_op *sig;
};

/* akv_session_get - looks up H and takes a reference. CKR_OK or
 * CKR_SESSION_HANDLE_INVALID. */
CK_RV akv_session_get(CK_SESSION_HANDLE h, struct akv_session **out);
/* akv_session_put - drops a reference (the last one frees). NULL-safe. */
void akv_session_put(struct akv_session *s);

/* akv_session_claim - akv_session_get + exclusive use of the operation
 * state. CKR_OK, CKR_SESSION_HANDLE_INVALID, CKR_OPERATION_ACTIVE (another
 * thread is inside a call on this session). Release with
 * akv_session_release. */
CK_RV akv_session_claim(CK_SESSION_HANDLE h, struct akv_session **out);
void akv_session_release(struct akv_session *s);

/* akv_session_is_rw / akv_session_logged_in - state queries. */
bool akv_session_is_rw(const struct akv_session *s);
bool akv_session_logged_in(const struct akv_session *s);

/* C_OpenSession core: CKF_SERIAL_SESSION required
 * (CKR_SESSION_PARALLEL_NOT_SUPPORTED), CKR_SLOT_ID_INVALID, CKR_OK with a
 * random non-zero handle. No network. */
CK_RV akv_session_open(CK_SLOT_ID slot_id, CK_FLAGS flags,
                       CK_SESSION_HANDLE *ph);
/* C_CloseSession core: destroys the session's session objects (wiped).
 * CKR_OK or CKR_SESSION_HANDLE_INVALID. The last session of a token logs
 * the application out (v3.0 §5.6.4). */
CK_RV akv_session_close(CK_SESSION_HANDLE h);
/* C_CloseAllSessions core: CKR_OK or CKR_SLOT_ID_INVALID. */
CK_RV akv_session_close_all(CK_SLOT_ID slot_id);
/* Closes every session of every slot (C_Finalize). */
void akv_session_close_everything(void);
/* Forgets the table without touching it (fork child). */
void akv_session_forget(void);

/* C_GetSessionInfo core (v3.0 §5.6.5): state from RW flag + login. */
CK_RV akv_session_get_info(CK_SESSION_HANDLE h, CK_SESSION_INFO *info);

/*
 * C_Login core (v3.0 §5.6.8). There is no PIN (design.md): CKU_USER with
 * any PIN logs the token in for every session (CKR_USER_ALREADY_LOGGED_IN
 * if it is); CKU_SO -> CKR_USER_TYPE_INVALID (there is no security
 * officer); CKU_CONTEXT_SPECIFIC -> CKR_OPERATION_NOT_INITIALIZED without an
 * active operation, CKR_USER_NOT_LOGGED_IN when not logged in, else CKR_OK
 * (no key needs CKA_ALWAYS_AUTHENTICATE); any other type ->
 * CKR_USER_TYPE_INVALID. pin NULL with pin_len > 0 -> CKR_ARGUMENTS_BAD.
 */
CK_RV akv_session_login(CK_SESSION_HANDLE h, CK_USER_TYPE user,
                        const CK_UTF8CHAR *pin, CK_ULONG pin_len);
/* C_Logout core: CKR_OK or CKR_USER_NOT_LOGGED_IN. */
CK_RV akv_session_logout(CK_SESSION_HANDLE h);

/*
 * akv_session_op_kept - the one rule for whether a call on an active
 * operation (encrypt, decrypt, digest, ...) leaves it active (v3.0 §5.8,
 * §5.9, §5.12: "A call to C_Encrypt always terminates the active
 * encryption operation unless it returns CKR_BUFFER_TOO_SMALL or is a
 * successful call ... to determine the length of the buffer needed"; a
 * failed Update ends it too). True only for CKR_BUFFER_TOO_SMALL, for
 * CKR_OPERATION_ACTIVE (the call was refused as outside the operation's
 * flow - single-part after an Update, or the reverse - and never acted on
 * it), and for CKR_OK when OK_KEEPS (a length query, an Update or
 * C_DigestKey). Every other result - CKR_ARGUMENTS_BAD included - ends it.
 */
bool akv_session_op_kept(CK_RV rv, bool ok_keeps);

/* akv_session_find_reset - ends a find operation (frees its handle list).
 * Caller has claimed the session. */
void akv_session_find_reset(struct akv_session *s);

#endif /* AKV_TOKEN_SESSION_H */
