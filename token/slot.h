/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Module-wide state: the configuration, one token per slot, initialise /
 * finalise / fork, the "call in progress" count, and the slot- and
 * token-level information calls.
 *
 * Follows: PKCS#11 v3.0 §5.4 (C_Initialize, C_Finalize, C_GetInfo), §5.5
 * (C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList,
 * C_GetMechanismInfo). None of these calls touches the network
 * (design.md "Quiet and quick where consumers probe").
 */
#ifndef AKV_TOKEN_SLOT_H
#define AKV_TOKEN_SLOT_H

#include <stdbool.h>

#include <p11-kit/pkcs11.h>

#include "../common/config.h"
#include "../keyvault/kv.h"
#include "token.h"

/* Creates the Key Vault client of one token (akv_kv_rest_new in the
 * module; a fake in unit tests). Must do no I/O. */
typedef CK_RV (*akv_slot_kv_factory)(const struct akv_token_config *tc,
                                     struct akv_kv **out);

/*
 * akv_slot_init - builds the state from CFG (ownership taken, also on
 * failure): a token and kv client per tokens[] entry (FACTORY; NULL means
 * akv_kv_rest_new), the private OpenSSL context. Returns CKR_OK,
 * CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_HOST_MEMORY, CKR_GENERAL_ERROR
 * (a client or store could not be set up; logged).
 */
CK_RV akv_slot_init(struct akv_config *cfg, akv_slot_kv_factory factory);

/*
 * akv_slot_finalize - waits for calls in progress, closes every session
 * (session objects wiped) and frees the state. CKR_OK or
 * CKR_CRYPTOKI_NOT_INITIALIZED.
 */
CK_RV akv_slot_finalize(void);

/* akv_slot_fork_child - pthread_atfork child handler: forgets the parent's
 * state without touching it (curl handles, locks held by vanished threads)
 * so the child sees CKR_CRYPTOKI_NOT_INITIALIZED until C_Initialize. */
void akv_slot_fork_child(void);

/* akv_slot_begin - every C_* call except C_Initialize/C_Finalize/C_Get*List
 * starts here: CKR_OK (then call akv_slot_end) or
 * CKR_CRYPTOKI_NOT_INITIALIZED. */
CK_RV akv_slot_begin(void);
void akv_slot_end(void);

/* akv_slot_lock / akv_slot_unlock - the global mutex (level 1 of the lock
 * hierarchy): session table, login state, session counts. */
void akv_slot_lock(void);
void akv_slot_unlock(void);

/* akv_slot_token - the token of SLOT_ID or NULL (valid between begin/end). */
struct akv_token *akv_slot_token(CK_SLOT_ID slot_id);

/* C_GetInfo core (strings blank-padded, v3.0 §5.4.4). */
CK_RV akv_slot_get_info(CK_INFO *info);

/* C_GetSlotList core: list NULL -> count; too small -> CKR_BUFFER_TOO_SMALL
 * with the count; every slot has its token (token_present is irrelevant). */
CK_RV akv_slot_get_list(CK_BBOOL token_present, CK_SLOT_ID *list,
                        CK_ULONG *count);

/* C_GetSlotInfo / C_GetTokenInfo cores: CKR_OK or CKR_SLOT_ID_INVALID. */
CK_RV akv_slot_get_slot_info(CK_SLOT_ID slot_id, CK_SLOT_INFO *info);
CK_RV akv_slot_get_token_info(CK_SLOT_ID slot_id, CK_TOKEN_INFO *info);

/* C_GetMechanismList / C_GetMechanismInfo: CKR_SLOT_ID_INVALID, else as
 * akv_mech_get_list / akv_mech_get_info. */
CK_RV akv_slot_get_mech_list(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE *list,
                             CK_ULONG *count);
CK_RV akv_slot_get_mech_info(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type,
                             CK_MECHANISM_INFO *info);

/* akv_slot_pad - copies SRC into a blank-padded, non-NUL-terminated field
 * of LEN bytes (truncated at LEN). */
void akv_slot_pad(unsigned char *dst, size_t len, const char *src);

#endif /* AKV_TOKEN_SLOT_H */
