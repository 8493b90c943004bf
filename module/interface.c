/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The function lists and the v3.0 interface discovery (PKCS#11 v3.0 §5.4.3
 * C_GetInterfaceList, §5.4.4 C_GetInterface). Two interfaces, both named
 * "PKCS 11": version 3.0 (CK_FUNCTION_LIST_3_0: message-based encryption
 * and decryption with AES-GCM on a Managed HSM key, token/cipher.h; the
 * other 3.0-only functions return CKR_FUNCTION_NOT_SUPPORTED) and 2.40
 * (the C_GetFunctionList list).
 * No flags: the module is not CKF_INTERFACE_FORK_SAFE (a child must call
 * C_Initialize again). Every slot in both lists is a real function.
 */
#include <string.h>

#include "../common/secret.h"
#include "../token/cipher.h"
#include "../token/slot.h"
#include "module.h"

/* ---- v3.0-only functions not supported (all but message encryption) ---- */

/* Like every other entry point, these say CKR_CRYPTOKI_NOT_INITIALIZED
 * before C_Initialize (v3.0 §5.4) and CKR_FUNCTION_NOT_SUPPORTED after. */
static CK_RV not_supported(void)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        akv_slot_end();
        rv = CKR_FUNCTION_NOT_SUPPORTED;
    }
    return rv;
}

static CK_RV login_user(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
                        CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                        CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
    return not_supported();
}

static CK_RV session_cancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
    return not_supported();
}

static CK_RV msg_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                      CK_OBJECT_HANDLE hKey)
{
    return not_supported();
}

static CK_RV msg_crypt_begin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                             CK_ULONG ulParameterLen,
                             CK_BYTE_PTR pAssociatedData,
                             CK_ULONG ulAssociatedDataLen)
{
    return not_supported();
}

static CK_RV msg_crypt_next(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                            CK_ULONG ulParameterLen, CK_BYTE_PTR pIn,
                            CK_ULONG ulInLen, CK_BYTE_PTR pOut,
                            CK_ULONG_PTR pulOutLen, CK_FLAGS flags)
{
    return not_supported();
}

static CK_RV msg_final(CK_SESSION_HANDLE hSession)
{
    return not_supported();
}

/* ---- v3.0 message-based encryption: AES-GCM with a Managed HSM key
 * (token/cipher.h akv_cipher_msg*); Begin/Next stay unsupported ---- */

/* One call into token/ between akv_slot_begin and akv_slot_end. */
#define MSG_CALL(expr)                                                         \
    do {                                                                       \
        CK_RV rv_ = akv_slot_begin();                                          \
        if (rv_ == CKR_OK) {                                                   \
            rv_ = (expr);                                                      \
            akv_slot_end();                                                    \
            akv_secret_wipe_regs();                                            \
        }                                                                      \
        return rv_;                                                            \
    } while (0)

static CK_RV msg_encrypt_init(CK_SESSION_HANDLE hSession,
                              CK_MECHANISM_PTR pMechanism,
                              CK_OBJECT_HANDLE hKey)
{
    MSG_CALL(pMechanism != NULL
                 ? akv_cipher_msg_init(hSession, pMechanism, hKey, false)
                 : CKR_ARGUMENTS_BAD);
}

static CK_RV msg_decrypt_init(CK_SESSION_HANDLE hSession,
                              CK_MECHANISM_PTR pMechanism,
                              CK_OBJECT_HANDLE hKey)
{
    MSG_CALL(pMechanism != NULL
                 ? akv_cipher_msg_init(hSession, pMechanism, hKey, true)
                 : CKR_ARGUMENTS_BAD);
}

static CK_RV encrypt_message(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                             CK_ULONG ulParameterLen,
                             CK_BYTE_PTR pAssociatedData,
                             CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pIn,
                             CK_ULONG ulInLen, CK_BYTE_PTR pOut,
                             CK_ULONG_PTR pulOutLen)
{
    MSG_CALL(akv_cipher_msg(hSession, false, pParameter, ulParameterLen,
                            pAssociatedData, ulAssociatedDataLen, pIn, ulInLen,
                            pOut, pulOutLen));
}

static CK_RV decrypt_message(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                             CK_ULONG ulParameterLen,
                             CK_BYTE_PTR pAssociatedData,
                             CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pIn,
                             CK_ULONG ulInLen, CK_BYTE_PTR pOut,
                             CK_ULONG_PTR pulOutLen)
{
    MSG_CALL(akv_cipher_msg(hSession, true, pParameter, ulParameterLen,
                            pAssociatedData, ulAssociatedDataLen, pIn, ulInLen,
                            pOut, pulOutLen));
}

static CK_RV msg_encrypt_final(CK_SESSION_HANDLE hSession)
{
    MSG_CALL(akv_cipher_msg_final(hSession, false));
}

static CK_RV msg_decrypt_final(CK_SESSION_HANDLE hSession)
{
    MSG_CALL(akv_cipher_msg_final(hSession, true));
}

static CK_RV msg_sign(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                      CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
                      CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                      CK_ULONG_PTR pulSignatureLen)
{
    return not_supported();
}

static CK_RV msg_sign_begin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                            CK_ULONG ulParameterLen)
{
    return not_supported();
}

static CK_RV msg_verify(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                        CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
                        CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                        CK_ULONG ulSignatureLen)
{
    return not_supported();
}

/* ---- the lists ---- */

#define AKV_240_FUNCTIONS                                                      \
    C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList,     \
        C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, \
        C_InitToken, C_InitPIN, C_SetPIN, C_OpenSession, C_CloseSession,       \
        C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState,             \
        C_SetOperationState, C_Login, C_Logout, C_CreateObject, C_CopyObject,  \
        C_DestroyObject, C_GetObjectSize, C_GetAttributeValue,                 \
        C_SetAttributeValue, C_FindObjectsInit, C_FindObjects,                 \
        C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate,         \
        C_EncryptFinal, C_DecryptInit, C_Decrypt, C_DecryptUpdate,             \
        C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,   \
        C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal,          \
        C_SignRecoverInit, C_SignRecover, C_VerifyInit, C_Verify,              \
        C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,   \
        C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate,     \
        C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair, C_WrapKey,    \
        C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom,              \
        C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent

CK_FUNCTION_LIST akv_interface_list_240 = {
    {2, 40},
    AKV_240_FUNCTIONS,
};

CK_FUNCTION_LIST_3_0 akv_interface_list_30 = {
    {3, 0},
    AKV_240_FUNCTIONS,
    C_GetInterfaceList,
    C_GetInterface,
    login_user,
    session_cancel,
    msg_encrypt_init,  /* C_MessageEncryptInit */
    encrypt_message,   /* C_EncryptMessage */
    msg_crypt_begin,   /* C_EncryptMessageBegin */
    msg_crypt_next,    /* C_EncryptMessageNext */
    msg_encrypt_final, /* C_MessageEncryptFinal */
    msg_decrypt_init,  /* C_MessageDecryptInit */
    decrypt_message,   /* C_DecryptMessage */
    msg_crypt_begin,   /* C_DecryptMessageBegin */
    msg_crypt_next,    /* C_DecryptMessageNext */
    msg_decrypt_final, /* C_MessageDecryptFinal */
    msg_init,          /* C_MessageSignInit */
    msg_sign,          /* C_SignMessage */
    msg_sign_begin,    /* C_SignMessageBegin */
    msg_sign,          /* C_SignMessageNext */
    msg_final,         /* C_MessageSignFinal */
    msg_init,          /* C_MessageVerifyInit */
    msg_verify,        /* C_VerifyMessage */
    msg_sign_begin,    /* C_VerifyMessageBegin */
    msg_verify,        /* C_VerifyMessageNext */
    msg_final,         /* C_MessageVerifyFinal */
};

static CK_CHAR interface_name[] = "PKCS 11";

static CK_INTERFACE interfaces[] = {
    {interface_name, &akv_interface_list_30, 0},
    {interface_name, &akv_interface_list_240, 0},
};

#define N_INTERFACES (sizeof(interfaces) / sizeof(interfaces[0]))

AKV_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList,
                                    CK_ULONG_PTR pulCount)
{
    CK_RV rv = CKR_GENERAL_ERROR;

    if (pulCount == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (pInterfacesList == NULL) {
        *pulCount = N_INTERFACES;
        rv = CKR_OK;
        goto out;
    }
    if (*pulCount < N_INTERFACES) {
        *pulCount = N_INTERFACES;
        rv = CKR_BUFFER_TOO_SMALL;
        goto out;
    }
    memcpy(pInterfacesList, interfaces, sizeof(interfaces));
    *pulCount = N_INTERFACES;
    rv = CKR_OK;
out:
    return rv;
}

AKV_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName,
                                CK_VERSION_PTR pVersion,
                                CK_INTERFACE_PTR_PTR ppInterface,
                                CK_FLAGS flags)
{
    CK_RV rv = CKR_ARGUMENTS_BAD;

    if (ppInterface == NULL) {
        goto out;
    }
    /* First match wins, so "no version" means 3.0. */
    for (size_t i = 0; i < N_INTERFACES; i++) {
        const CK_VERSION *v = interfaces[i].pFunctionList;

        if (pInterfaceName != NULL
            && strcmp((const char *)pInterfaceName,
                      (const char *)interfaces[i].pInterfaceName)
                   != 0) {
            continue;
        }
        if (pVersion != NULL
            && (pVersion->major != v->major || pVersion->minor != v->minor)) {
            continue;
        }
        if ((flags & interfaces[i].flags) != flags) {
            continue;
        }
        *ppInterface = &interfaces[i];
        rv = CKR_OK;
        goto out;
    }
out:
    return rv;
}
