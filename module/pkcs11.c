/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every PKCS#11 2.40 entry point: init check (akv_slot_begin/end, which
 * also fails after a fork until C_Initialize), required-pointer checks,
 * dispatch into token/. The pointers of C_Encrypt/C_Decrypt/C_Digest and
 * their Update/Final calls are checked in token/cipher.c and digest.c,
 * where a CKR_ARGUMENTS_BAD ends the active operation like any other error
 * (v3.0 §5.8/§5.9/§5.12). Parameter names are the spec's. Semantic checks
 * (mechanisms, templates, key usage) live in token/.
 * Follows: PKCS#11 Base Specification v3.0 §5.
 */
#include <p11-kit/pkcs11.h>

#include "../common/log.h"
#include "../common/secret.h"
#include "../token/cipher.h"
#include "../token/digest.h"
#include "../token/keygen.h"
#include "../token/object.h"
#include "../token/session.h"
#include "../token/sign.h"
#include "../token/slot.h"
#include "../token/wrap.h"
#include "module.h"

/* The end of every call: the in-flight count drops, and the result is
 * logged by name of the entry point (DEBUG; WARN for the two codes that
 * mean "look at the log"). Returns RV unchanged. */
static CK_RV end_call(const char *fn, CK_RV rv)
{
    akv_slot_end();
    /* the work is done: no round key may stay in a vector register
     * (docs/SECURITY.md "Secrets in memory") */
    akv_secret_wipe_regs();
    if (rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_ERROR) {
        AKV_LOG_WARN("%s: rv 0x%lx", fn, (unsigned long)rv);
    } else if (rv != CKR_OK) {
        AKV_LOG_DEBUG("%s: rv 0x%lx", fn, (unsigned long)rv);
    }
    return rv;
}

/* Functions this token does not offer (v3.0 §5: CKR_FUNCTION_NOT_SUPPORTED),
 * after the usual initialisation check. */
static CK_RV unsupported(void)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = CKR_FUNCTION_NOT_SUPPORTED;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pInfo != NULL ? akv_slot_get_info(pInfo) : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

AKV_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (ppFunctionList == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    *ppFunctionList = &akv_interface_list_240;
    return CKR_OK;
}

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
                    CK_ULONG_PTR pulCount)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pulCount != NULL
                 ? akv_slot_get_list(tokenPresent, pSlotList, pulCount)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pInfo != NULL ? akv_slot_get_slot_info(slotID, pInfo)
                           : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pInfo != NULL ? akv_slot_get_token_info(slotID, pInfo)
                           : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID,
                         CK_MECHANISM_TYPE_PTR pMechanismList,
                         CK_ULONG_PTR pulCount)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pulCount != NULL
                 ? akv_slot_get_mech_list(slotID, pMechanismList, pulCount)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
                         CK_MECHANISM_INFO_PTR pInfo)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pInfo != NULL ? akv_slot_get_mech_info(slotID, type, pInfo)
                           : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                  CK_UTF8CHAR_PTR pLabel)
{
    return unsupported();
}

CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin,
                CK_ULONG ulPinLen)
{
    return unsupported();
}

CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin,
               CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
    return unsupported();
}

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                    CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
    CK_RV rv = akv_slot_begin();

    /* Notify callbacks are never made (no surrender points). */
    if (rv == CKR_OK) {
        rv = phSession != NULL ? akv_session_open(slotID, flags, phSession)
                               : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_session_close(hSession);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_session_close_all(slotID);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pInfo != NULL ? akv_session_get_info(hSession, pInfo)
                           : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession,
                          CK_BYTE_PTR pOperationState,
                          CK_ULONG_PTR pulOperationStateLen)
{
    return unsupported();
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession,
                          CK_BYTE_PTR pOperationState,
                          CK_ULONG ulOperationStateLen,
                          CK_OBJECT_HANDLE hEncryptionKey,
                          CK_OBJECT_HANDLE hAuthenticationKey)
{
    return unsupported();
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
              CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_session_login(hSession, userType, pPin, ulPinLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_session_logout(hSession);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                     CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = phObject != NULL && (pTemplate != NULL || ulCount == 0)
                 ? akv_object_create(hSession, pTemplate, ulCount, phObject)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                   CK_OBJECT_HANDLE_PTR phNewObject)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = phNewObject != NULL && (pTemplate != NULL || ulCount == 0)
                 ? akv_object_copy(hSession, hObject, pTemplate, ulCount,
                                   phNewObject)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_object_destroy(hSession, hObject);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                      CK_ULONG_PTR pulSize)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pulSize != NULL ? akv_object_get_size(hSession, hObject, pulSize)
                             : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                          CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pTemplate != NULL || ulCount == 0
                 ? akv_object_get_attrs(hSession, hObject, pTemplate, ulCount)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                          CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pTemplate != NULL || ulCount == 0
                 ? akv_object_set_attrs(hSession, hObject, pTemplate, ulCount)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                        CK_ULONG ulCount)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pTemplate != NULL || ulCount == 0
                 ? akv_object_find_init(hSession, pTemplate, ulCount)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = (phObject != NULL || ulMaxObjectCount == 0)
                     && pulObjectCount != NULL
                 ? akv_object_find(hSession, phObject, ulMaxObjectCount,
                                   pulObjectCount)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_object_find_final(hSession);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                    CK_OBJECT_HANDLE hKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pMechanism != NULL
                 ? akv_cipher_encrypt_init(hSession, pMechanism, hKey)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
                CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData,
                CK_ULONG_PTR pulEncryptedDataLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        /* Pointers are checked in token/ (op_settle: a
         * CKR_ARGUMENTS_BAD ends the operation, v3.0 §5.8). */
        rv = akv_cipher_encrypt(hSession, pData, ulDataLen, pEncryptedData,
                                pulEncryptedDataLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                      CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,
                      CK_ULONG_PTR pulEncryptedPartLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_cipher_encrypt_update(hSession, pPart, ulPartLen,
                                       pEncryptedPart, pulEncryptedPartLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                     CK_ULONG_PTR pulLastEncryptedPartLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_cipher_encrypt_final(hSession, pLastEncryptedPart,
                                      pulLastEncryptedPartLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                    CK_OBJECT_HANDLE hKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pMechanism != NULL
                 ? akv_cipher_decrypt_init(hSession, pMechanism, hKey)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData,
                CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData,
                CK_ULONG_PTR pulDataLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_cipher_decrypt(hSession, pEncryptedData, ulEncryptedDataLen,
                                pData, pulDataLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,
                      CK_ULONG_PTR pulPartLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_cipher_decrypt_update(hSession, pEncryptedPart,
                                       ulEncryptedPartLen, pPart, pulPartLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart,
                     CK_ULONG_PTR pulLastPartLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_cipher_decrypt_final(hSession, pLastPart, pulLastPartLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pMechanism != NULL ? akv_digest_init(hSession, pMechanism)
                                : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
               CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
               CK_ULONG_PTR pulDigestLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        /* Pointers are checked in token/digest.c (a CKR_ARGUMENTS_BAD
         * ends the operation, v3.0 §5.12). */
        rv = akv_digest(hSession, pData, ulDataLen, pDigest, pulDigestLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                     CK_ULONG ulPartLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_digest_update(hSession, pPart, ulPartLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_digest_key(hSession, hKey);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest,
                    CK_ULONG_PTR pulDigestLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_digest_final(hSession, pDigest, pulDigestLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                 CK_OBJECT_HANDLE hKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_sign_init(hSession, pMechanism, hKey);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
             CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_sign(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                   CK_ULONG ulPartLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_sign_update(hSession, pPart, ulPartLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                  CK_ULONG_PTR pulSignatureLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_sign_final(hSession, pSignature, pulSignatureLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_OBJECT_HANDLE hKey)
{
    return unsupported();
}

CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
                    CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                    CK_ULONG_PTR pulSignatureLen)
{
    return unsupported();
}

CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                   CK_OBJECT_HANDLE hKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_verify_init(hSession, pMechanism, hKey);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
               CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
               CK_ULONG ulSignatureLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_verify(hSession, pData, ulDataLen, pSignature, ulSignatureLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                     CK_ULONG ulPartLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_verify_update(hSession, pPart, ulPartLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                    CK_ULONG ulSignatureLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = akv_verify_final(hSession, pSignature, ulSignatureLen);
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession,
                          CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return unsupported();
}

CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                      CK_ULONG ulSignatureLen, CK_BYTE_PTR pData,
                      CK_ULONG_PTR pulDataLen)
{
    return unsupported();
}

CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                            CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,
                            CK_ULONG_PTR pulEncryptedPartLen)
{
    return unsupported();
}

CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession,
                            CK_BYTE_PTR pEncryptedPart,
                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,
                            CK_ULONG_PTR pulPartLen)
{
    return unsupported();
}

CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                          CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,
                          CK_ULONG_PTR pulEncryptedPartLen)
{
    return unsupported();
}

CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession,
                            CK_BYTE_PTR pEncryptedPart,
                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,
                            CK_ULONG_PTR pulPartLen)
{
    return unsupported();
}

CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                    CK_OBJECT_HANDLE_PTR phKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pMechanism != NULL && phKey != NULL
                     && (pTemplate != NULL || ulCount == 0)
                 ? akv_object_generate_key(hSession, pMechanism, pTemplate,
                                           ulCount, phKey)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_ATTRIBUTE_PTR pPublicKeyTemplate,
                        CK_ULONG ulPublicKeyAttributeCount,
                        CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
                        CK_ULONG ulPrivateKeyAttributeCount,
                        CK_OBJECT_HANDLE_PTR phPublicKey,
                        CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pMechanism != NULL && phPublicKey != NULL && phPrivateKey != NULL
                     && (pPublicKeyTemplate != NULL
                         || ulPublicKeyAttributeCount == 0)
                     && (pPrivateKeyTemplate != NULL
                         || ulPrivateKeyAttributeCount == 0)
                 ? akv_keygen_pair(
                     hSession, pMechanism, pPublicKeyTemplate,
                     ulPublicKeyAttributeCount, pPrivateKeyTemplate,
                     ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
                CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pMechanism != NULL && pulWrappedKeyLen != NULL
                 ? akv_wrap_key(hSession, pMechanism, hWrappingKey, hKey,
                                pWrappedKey, pulWrappedKeyLen)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                  CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
                  CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                  CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pMechanism != NULL && phKey != NULL
                     && (pWrappedKey != NULL || ulWrappedKeyLen == 0)
                     && (pTemplate != NULL || ulAttributeCount == 0)
                 ? akv_wrap_unwrap(hSession, pMechanism, hUnwrappingKey,
                                   pWrappedKey, ulWrappedKeyLen, pTemplate,
                                   ulAttributeCount, phKey)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                  CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,
                  CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    return unsupported();
}

CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed,
                   CK_ULONG ulSeedLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = pSeed != NULL || ulSeedLen == 0
                 ? akv_cipher_seed(hSession, pSeed, ulSeedLen)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData,
                       CK_ULONG ulRandomLen)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = RandomData != NULL || ulRandomLen == 0
                 ? akv_cipher_random(hSession, RandomData, ulRandomLen)
                 : CKR_ARGUMENTS_BAD;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
    CK_RV rv = akv_slot_begin();

    /* Legacy (v3.0 §5.17): parallel functions do not exist. */
    if (rv == CKR_OK) {
        rv = CKR_FUNCTION_NOT_PARALLEL;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
    CK_RV rv = akv_slot_begin();

    if (rv == CKR_OK) {
        rv = CKR_FUNCTION_NOT_PARALLEL;
        rv = end_call(__func__, rv);
    }
    return rv;
}

CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot,
                         CK_VOID_PTR pReserved)
{
    /* Tokens never appear or disappear. */
    return unsupported();
}
