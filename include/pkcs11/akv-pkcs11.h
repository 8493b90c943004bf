/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-pkcs11 public header: vendor-defined attributes of the Azure Key Vault
 * token, plus the few PKCS#11 v3.0 declarations that p11-kit 0.24's
 * pkcs11.h (Debian 12) lacks. Everything v3.0 is under #ifndef guards so a
 * newer p11-kit (0.25+, which declares them itself) wins.
 *
 * Follows: PKCS#11 Base Specification v3.0 §5.2 (CK_INTERFACE,
 * CK_FUNCTION_LIST_3_0) and the v3.0 pkcs11t.h/pkcs11f.h layouts; vendor
 * range per §4.1 (CKA_VENDOR_DEFINED).
 */
#ifndef AKV_PKCS11_AKV_PKCS11_H
#define AKV_PKCS11_AKV_PKCS11_H

#include <p11-kit/pkcs11.h>

/* "AKV\0": the vendor tag that keeps our attributes out of other vendors'. */
#define AKV_VENDOR_TAG 0x414b5600UL

/* Versioned Key Vault key identifier (kid URL, UTF-8, no NUL). Read-only;
 * present on every object backed by a vault key version. */
#define CKA_AKV_KID (CKA_VENDOR_DEFINED | AKV_VENDOR_TAG | 1UL)
/* Key Vault key name (UTF-8). Read-only. */
#define CKA_AKV_KEY_NAME (CKA_VENDOR_DEFINED | AKV_VENDOR_TAG | 2UL)
/* Key Vault key version as text (usually 32 lower-case hex digits).
 * Read-only; CKA_ID carries the same version as 16 bytes. */
#define CKA_AKV_KEY_VERSION (CKA_VENDOR_DEFINED | AKV_VENDOR_TAG | 3UL)
/* Token objects: the kid of the vault key version that wrapped CKA_VALUE in
 * the store (UTF-8). Read-only. */
#define CKA_AKV_WRAPPING_KID (CKA_VENDOR_DEFINED | AKV_VENDOR_TAG | 4UL)
/* C_GenerateKeyPair private-key template (CK_BBOOL): TRUE creates the vault
 * key HSM-protected (kty RSA-HSM / EC-HSM), FALSE software-protected (RSA /
 * EC); absent = the token's create_hsm setting. Vault keys answer it too
 * (TRUE for -HSM key types). Read-only after creation. */
#define CKA_AKV_HSM (CKA_VENDOR_DEFINED | AKV_VENDOR_TAG | 16UL)

/* ---- PKCS#11 v3.0 additions missing from p11-kit 0.24 ---- */

#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x0000210BUL
#endif

/* SHA-3 digests (Current Mechanisms v3.0 §2.26; FIPS 202). */
#ifndef CKM_SHA3_256
#define CKM_SHA3_256 0x000002B0UL
#endif
#ifndef CKM_SHA3_224
#define CKM_SHA3_224 0x000002B5UL
#endif
#ifndef CKM_SHA3_384
#define CKM_SHA3_384 0x000002C0UL
#endif
#ifndef CKM_SHA3_512
#define CKM_SHA3_512 0x000002D0UL
#endif

#ifndef CKF_INTERFACE_FORK_SAFE
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL

typedef struct CK_INTERFACE {
    CK_CHAR *pInterfaceName;
    CK_VOID_PTR pFunctionList;
    CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;

typedef CK_RV (*CK_C_GetInterfaceList)(CK_INTERFACE_PTR pInterfacesList,
                                       CK_ULONG_PTR pulCount);
typedef CK_RV (*CK_C_GetInterface)(CK_UTF8CHAR_PTR pInterfaceName,
                                   CK_VERSION_PTR pVersion,
                                   CK_INTERFACE_PTR_PTR ppInterface,
                                   CK_FLAGS flags);
typedef CK_RV (*CK_C_LoginUser)(CK_SESSION_HANDLE hSession,
                                CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                                CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername,
                                CK_ULONG ulUsernameLen);
typedef CK_RV (*CK_C_SessionCancel)(CK_SESSION_HANDLE hSession, CK_FLAGS flags);
typedef CK_RV (*CK_C_MessageEncryptInit)(CK_SESSION_HANDLE hSession,
                                         CK_MECHANISM_PTR pMechanism,
                                         CK_OBJECT_HANDLE hKey);
typedef CK_RV (*CK_C_EncryptMessage)(
    CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
    CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen,
    CK_BYTE_PTR pPlaintext, CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext,
    CK_ULONG_PTR pulCiphertextLen);
typedef CK_RV (*CK_C_EncryptMessageBegin)(CK_SESSION_HANDLE hSession,
                                          CK_VOID_PTR pParameter,
                                          CK_ULONG ulParameterLen,
                                          CK_BYTE_PTR pAssociatedData,
                                          CK_ULONG ulAssociatedDataLen);
typedef CK_RV (*CK_C_EncryptMessageNext)(
    CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
    CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen,
    CK_BYTE_PTR pCiphertextPart, CK_ULONG_PTR pulCiphertextPartLen,
    CK_FLAGS flags);
typedef CK_RV (*CK_C_MessageEncryptFinal)(CK_SESSION_HANDLE hSession);
typedef CK_RV (*CK_C_MessageDecryptInit)(CK_SESSION_HANDLE hSession,
                                         CK_MECHANISM_PTR pMechanism,
                                         CK_OBJECT_HANDLE hKey);
typedef CK_RV (*CK_C_DecryptMessage)(
    CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
    CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen,
    CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext,
    CK_ULONG_PTR pulPlaintextLen);
typedef CK_RV (*CK_C_DecryptMessageBegin)(CK_SESSION_HANDLE hSession,
                                          CK_VOID_PTR pParameter,
                                          CK_ULONG ulParameterLen,
                                          CK_BYTE_PTR pAssociatedData,
                                          CK_ULONG ulAssociatedDataLen);
typedef CK_RV (*CK_C_DecryptMessageNext)(
    CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
    CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen,
    CK_BYTE_PTR pPlaintextPart, CK_ULONG_PTR pulPlaintextPartLen,
    CK_FLAGS flags);
typedef CK_RV (*CK_C_MessageDecryptFinal)(CK_SESSION_HANDLE hSession);
typedef CK_RV (*CK_C_MessageSignInit)(CK_SESSION_HANDLE hSession,
                                      CK_MECHANISM_PTR pMechanism,
                                      CK_OBJECT_HANDLE hKey);
typedef CK_RV (*CK_C_SignMessage)(CK_SESSION_HANDLE hSession,
                                  CK_VOID_PTR pParameter,
                                  CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
                                  CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                                  CK_ULONG_PTR pulSignatureLen);
typedef CK_RV (*CK_C_SignMessageBegin)(CK_SESSION_HANDLE hSession,
                                       CK_VOID_PTR pParameter,
                                       CK_ULONG ulParameterLen);
typedef CK_RV (*CK_C_SignMessageNext)(CK_SESSION_HANDLE hSession,
                                      CK_VOID_PTR pParameter,
                                      CK_ULONG ulParameterLen,
                                      CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                      CK_BYTE_PTR pSignature,
                                      CK_ULONG_PTR pulSignatureLen);
typedef CK_RV (*CK_C_MessageSignFinal)(CK_SESSION_HANDLE hSession);
typedef CK_RV (*CK_C_MessageVerifyInit)(CK_SESSION_HANDLE hSession,
                                        CK_MECHANISM_PTR pMechanism,
                                        CK_OBJECT_HANDLE hKey);
typedef CK_RV (*CK_C_VerifyMessage)(CK_SESSION_HANDLE hSession,
                                    CK_VOID_PTR pParameter,
                                    CK_ULONG ulParameterLen, CK_BYTE_PTR pData,
                                    CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                                    CK_ULONG ulSignatureLen);
typedef CK_RV (*CK_C_VerifyMessageBegin)(CK_SESSION_HANDLE hSession,
                                         CK_VOID_PTR pParameter,
                                         CK_ULONG ulParameterLen);
typedef CK_RV (*CK_C_VerifyMessageNext)(CK_SESSION_HANDLE hSession,
                                        CK_VOID_PTR pParameter,
                                        CK_ULONG ulParameterLen,
                                        CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                        CK_BYTE_PTR pSignature,
                                        CK_ULONG ulSignatureLen);
typedef CK_RV (*CK_C_MessageVerifyFinal)(CK_SESSION_HANDLE hSession);

/* v3.0 §5.2 / pkcs11t.h: the 2.40 list followed by the 3.0 functions, in
 * exactly this order (the ABI). */
typedef struct CK_FUNCTION_LIST_3_0 {
    CK_VERSION version;
    CK_C_Initialize C_Initialize;
    CK_C_Finalize C_Finalize;
    CK_C_GetInfo C_GetInfo;
    CK_C_GetFunctionList C_GetFunctionList;
    CK_C_GetSlotList C_GetSlotList;
    CK_C_GetSlotInfo C_GetSlotInfo;
    CK_C_GetTokenInfo C_GetTokenInfo;
    CK_C_GetMechanismList C_GetMechanismList;
    CK_C_GetMechanismInfo C_GetMechanismInfo;
    CK_C_InitToken C_InitToken;
    CK_C_InitPIN C_InitPIN;
    CK_C_SetPIN C_SetPIN;
    CK_C_OpenSession C_OpenSession;
    CK_C_CloseSession C_CloseSession;
    CK_C_CloseAllSessions C_CloseAllSessions;
    CK_C_GetSessionInfo C_GetSessionInfo;
    CK_C_GetOperationState C_GetOperationState;
    CK_C_SetOperationState C_SetOperationState;
    CK_C_Login C_Login;
    CK_C_Logout C_Logout;
    CK_C_CreateObject C_CreateObject;
    CK_C_CopyObject C_CopyObject;
    CK_C_DestroyObject C_DestroyObject;
    CK_C_GetObjectSize C_GetObjectSize;
    CK_C_GetAttributeValue C_GetAttributeValue;
    CK_C_SetAttributeValue C_SetAttributeValue;
    CK_C_FindObjectsInit C_FindObjectsInit;
    CK_C_FindObjects C_FindObjects;
    CK_C_FindObjectsFinal C_FindObjectsFinal;
    CK_C_EncryptInit C_EncryptInit;
    CK_C_Encrypt C_Encrypt;
    CK_C_EncryptUpdate C_EncryptUpdate;
    CK_C_EncryptFinal C_EncryptFinal;
    CK_C_DecryptInit C_DecryptInit;
    CK_C_Decrypt C_Decrypt;
    CK_C_DecryptUpdate C_DecryptUpdate;
    CK_C_DecryptFinal C_DecryptFinal;
    CK_C_DigestInit C_DigestInit;
    CK_C_Digest C_Digest;
    CK_C_DigestUpdate C_DigestUpdate;
    CK_C_DigestKey C_DigestKey;
    CK_C_DigestFinal C_DigestFinal;
    CK_C_SignInit C_SignInit;
    CK_C_Sign C_Sign;
    CK_C_SignUpdate C_SignUpdate;
    CK_C_SignFinal C_SignFinal;
    CK_C_SignRecoverInit C_SignRecoverInit;
    CK_C_SignRecover C_SignRecover;
    CK_C_VerifyInit C_VerifyInit;
    CK_C_Verify C_Verify;
    CK_C_VerifyUpdate C_VerifyUpdate;
    CK_C_VerifyFinal C_VerifyFinal;
    CK_C_VerifyRecoverInit C_VerifyRecoverInit;
    CK_C_VerifyRecover C_VerifyRecover;
    CK_C_DigestEncryptUpdate C_DigestEncryptUpdate;
    CK_C_DecryptDigestUpdate C_DecryptDigestUpdate;
    CK_C_SignEncryptUpdate C_SignEncryptUpdate;
    CK_C_DecryptVerifyUpdate C_DecryptVerifyUpdate;
    CK_C_GenerateKey C_GenerateKey;
    CK_C_GenerateKeyPair C_GenerateKeyPair;
    CK_C_WrapKey C_WrapKey;
    CK_C_UnwrapKey C_UnwrapKey;
    CK_C_DeriveKey C_DeriveKey;
    CK_C_SeedRandom C_SeedRandom;
    CK_C_GenerateRandom C_GenerateRandom;
    CK_C_GetFunctionStatus C_GetFunctionStatus;
    CK_C_CancelFunction C_CancelFunction;
    CK_C_WaitForSlotEvent C_WaitForSlotEvent;
    /* v3.0 */
    CK_C_GetInterfaceList C_GetInterfaceList;
    CK_C_GetInterface C_GetInterface;
    CK_C_LoginUser C_LoginUser;
    CK_C_SessionCancel C_SessionCancel;
    CK_C_MessageEncryptInit C_MessageEncryptInit;
    CK_C_EncryptMessage C_EncryptMessage;
    CK_C_EncryptMessageBegin C_EncryptMessageBegin;
    CK_C_EncryptMessageNext C_EncryptMessageNext;
    CK_C_MessageEncryptFinal C_MessageEncryptFinal;
    CK_C_MessageDecryptInit C_MessageDecryptInit;
    CK_C_DecryptMessage C_DecryptMessage;
    CK_C_DecryptMessageBegin C_DecryptMessageBegin;
    CK_C_DecryptMessageNext C_DecryptMessageNext;
    CK_C_MessageDecryptFinal C_MessageDecryptFinal;
    CK_C_MessageSignInit C_MessageSignInit;
    CK_C_SignMessage C_SignMessage;
    CK_C_SignMessageBegin C_SignMessageBegin;
    CK_C_SignMessageNext C_SignMessageNext;
    CK_C_MessageSignFinal C_MessageSignFinal;
    CK_C_MessageVerifyInit C_MessageVerifyInit;
    CK_C_VerifyMessage C_VerifyMessage;
    CK_C_VerifyMessageBegin C_VerifyMessageBegin;
    CK_C_VerifyMessageNext C_VerifyMessageNext;
    CK_C_MessageVerifyFinal C_MessageVerifyFinal;
} CK_FUNCTION_LIST_3_0;
typedef CK_FUNCTION_LIST_3_0 *CK_FUNCTION_LIST_3_0_PTR;
typedef CK_FUNCTION_LIST_3_0_PTR *CK_FUNCTION_LIST_3_0_PTR_PTR;

/* The exported v3.0 discovery entry points (the module defines them). */
CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList,
                         CK_ULONG_PTR pulCount);
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);
#endif /* CKF_INTERFACE_FORK_SAFE */

/* Message-based encryption (Base Specification v3.0 §5.13-5.14;
 * mechanism flags §5.10 CK_MECHANISM_INFO) and AES-GCM's per-message
 * parameters (Current Mechanisms v3.0 §2.13.3, CK_GCM_MESSAGE_PARAMS;
 * CK_GENERATOR_FUNCTION values from pkcs11t.h v3.0). */
#ifndef CKF_MESSAGE_ENCRYPT
#define CKF_MESSAGE_ENCRYPT 0x00000002UL
#define CKF_MESSAGE_DECRYPT 0x00000004UL
#endif
#ifndef CKG_NO_GENERATE
typedef CK_ULONG CK_GENERATOR_FUNCTION;
#define CKG_NO_GENERATE          0x00000000UL
#define CKG_GENERATE             0x00000001UL
#define CKG_GENERATE_COUNTER     0x00000002UL
#define CKG_GENERATE_RANDOM      0x00000003UL
#define CKG_GENERATE_COUNTER_XOR 0x00000004UL
typedef struct CK_GCM_MESSAGE_PARAMS {
    CK_BYTE_PTR pIv;
    CK_ULONG ulIvLen;
    CK_ULONG ulIvFixedBits;
    CK_GENERATOR_FUNCTION ivGenerator;
    CK_BYTE_PTR pTag;
    CK_ULONG ulTagBits;
} CK_GCM_MESSAGE_PARAMS;
#endif

#endif /* AKV_PKCS11_AKV_PKCS11_H */
