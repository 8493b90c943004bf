/* SPDX-License-Identifier: Apache-2.0 */
/*
 * abuse - hostile PKCS#11 client for the integration tests: NULL pointers,
 * stale and foreign handles, malformed templates, mechanism and operation
 * state abuse, every CKA_* in C_GetAttributeValue, threads sharing one
 * session, and bad configuration files. It uses the module's function list
 * only (dlopen + C_GetFunctionList), like a real consumer, and asserts the
 * exact CK_RV the PKCS#11 v3.0 base specification (§5) gives for each case.
 *
 * Usage: abuse MODULE GROUP [KEYNAME]
 *   GROUP: null | handles | templates | mech | opstate | getattr | threads
 *          | sign (needs tokens[].sign and the sign permission)
 *          | newpaths (key pairs, sign/verify, digest, object and v3.0
 *            message entry points; tokens[].certificate set)
 *          | newpaths-delete (tokens[].allow_delete and .certificate set)
 *          | newpaths-msg (the token's key an oct-HSM key of a Managed HSM)
 *          | newpaths-sign (tokens[].sign and the sign permission)
 *          | init-fail (C_Initialize must give CKR_GENERAL_ERROR)
 * Exit status: 0 when every check passed, 1 when one failed (printed as
 * "FAIL: ..."), 2 for bad usage or a module that does not load.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdbool.h>

#include <p11-kit/pkcs11.h>

#include "../../include/pkcs11/akv-pkcs11.h"

static CK_FUNCTION_LIST *p11;
static void *lib; /* the module, for the v3.0 entry points */
static int failures;
static int checks;
static const char *key_name = "cmk";

#define EXPECT(call, want)                                                     \
    do {                                                                       \
        CK_RV got_ = (call);                                                   \
        checks++;                                                              \
        if (got_ != (CK_RV)(want)) {                                           \
            failures++;                                                        \
            printf("FAIL: %s:%d: %s: got 0x%lx, want %s (0x%lx)\n", __func__,  \
                   __LINE__, #call, (unsigned long)got_, #want,                \
                   (unsigned long)(want));                                     \
        }                                                                      \
    } while (0)

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        checks++;                                                              \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            printf("FAIL: %s:%d: ", __func__, __LINE__);                       \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

/* Every CKA_* defined in p11-kit's pkcs11.h (generated from the header). */
static const CK_ATTRIBUTE_TYPE all_attrs[] = {
    CKA_AC_ISSUER,
    CKA_ALLOWED_MECHANISMS,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_ALWAYS_SENSITIVE,
    CKA_APPLICATION,
    CKA_ATTR_TYPES,
    CKA_AUTH_PIN_FLAGS,
    CKA_BASE,
    CKA_BITS_PER_PIXEL,
    CKA_CERTIFICATE_CATEGORY,
    CKA_CERTIFICATE_TYPE,
    CKA_CHAR_COLUMNS,
    CKA_CHAR_ROWS,
    CKA_CHAR_SETS,
    CKA_CHECK_VALUE,
    CKA_CLASS,
    CKA_COEFFICIENT,
    CKA_COLOR,
    CKA_COPYABLE,
    CKA_DECRYPT,
    CKA_DEFAULT_CMS_ATTRIBUTES,
    CKA_DERIVE,
    CKA_DERIVE_TEMPLATE,
    CKA_DESTROYABLE,
    CKA_ECDSA_PARAMS,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ENCODING_METHODS,
    CKA_ENCRYPT,
    CKA_END_DATE,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_EXTRACTABLE,
    CKA_GOST28147_PARAMS,
    CKA_GOSTR3410_PARAMS,
    CKA_GOSTR3411_PARAMS,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HAS_RESET,
    CKA_HW_FEATURE_TYPE,
    CKA_ID,
    CKA_ISSUER,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_KEY_GEN_MECHANISM,
    CKA_KEY_TYPE,
    CKA_LABEL,
    CKA_LOCAL,
    CKA_MECHANISM_TYPE,
    CKA_MIME_TYPES,
    CKA_MODIFIABLE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_NAME_HASH_ALGORITHM,
    CKA_NEVER_EXTRACTABLE,
    CKA_OBJECT_ID,
    CKA_OTP_CHALLENGE_REQUIREMENT,
    CKA_OTP_COUNTER,
    CKA_OTP_COUNTER_REQUIREMENT,
    CKA_OTP_FORMAT,
    CKA_OTP_LENGTH,
    CKA_OTP_PIN_REQUIREMENT,
    CKA_OTP_SERVICE_IDENTIFIER,
    CKA_OTP_SERVICE_LOGO,
    CKA_OTP_SERVICE_LOGO_TYPE,
    CKA_OTP_TIME,
    CKA_OTP_TIME_INTERVAL,
    CKA_OTP_TIME_REQUIREMENT,
    CKA_OTP_USER_FRIENDLY_MODE,
    CKA_OTP_USER_IDENTIFIER,
    CKA_OWNER,
    CKA_PIXEL_X,
    CKA_PIXEL_Y,
    CKA_PRIME,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_PRIME_BITS,
    CKA_PRIVATE,
    CKA_PRIVATE_EXPONENT,
    CKA_PUBLIC_EXPONENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_REQUIRED_CMS_ATTRIBUTES,
    CKA_RESET_ON_INIT,
    CKA_RESOLUTION,
    CKA_SECONDARY_AUTH,
    CKA_SENSITIVE,
    CKA_SERIAL_NUMBER,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_START_DATE,
    CKA_SUBJECT,
    CKA_SUBPRIME,
    CKA_SUB_PRIME_BITS,
    CKA_SUPPORTED_CMS_ATTRIBUTES,
    CKA_TOKEN,
    CKA_TRUSTED,
    CKA_UNWRAP,
    CKA_UNWRAP_TEMPLATE,
    CKA_URL,
    CKA_VALUE,
    CKA_VALUE_BITS,
    CKA_VALUE_LEN,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_WRAP_TEMPLATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_AKV_KID,
    CKA_AKV_KEY_NAME,
    CKA_AKV_KEY_VERSION,
    CKA_AKV_WRAPPING_KID,
    0x80000000UL,
    0xffffffffUL,
    0x7fffffffUL,
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static CK_SLOT_ID slot0;

static void init_or_die(void)
{
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CK_RV rv = p11->C_Initialize(NULL);

    if (rv != CKR_OK) {
        printf("FAIL: C_Initialize: 0x%lx\n", (unsigned long)rv);
        exit(1);
    }
    rv = p11->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK || n == 0) {
        printf("FAIL: C_GetSlotList: 0x%lx, %lu slots\n", (unsigned long)rv,
               (unsigned long)n);
        exit(1);
    }
    slot0 = slots[0];
}

static CK_SESSION_HANDLE open_rw(void)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv = p11->C_OpenSession(slot0, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                  NULL, NULL, &s);

    if (rv != CKR_OK) {
        printf("FAIL: C_OpenSession: 0x%lx\n", (unsigned long)rv);
        exit(1);
    }
    return s;
}

static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)key_name, strlen(key_name)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    if (p11->C_FindObjectsInit(s, t, 2) == CKR_OK) {
        (void)p11->C_FindObjects(s, &h, 1, &n);
        (void)p11->C_FindObjectsFinal(s);
    }
    if (n != 1) {
        printf("FAIL: vault key %s class %lu not found\n", key_name,
               (unsigned long)cls);
        exit(1);
    }
    return h;
}

/* An AES key of LEN bytes; EXTRACTABLE and WRAP as given. */
static CK_OBJECT_HANDLE gen_aes_ex(CK_SESSION_HANDLE s, CK_ULONG len,
                                   CK_BBOOL extractable, CK_BBOOL sensitive)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_ENCRYPT, &t, sizeof(t)},
        {CKA_DECRYPT, &t, sizeof(t)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    EXPECT(p11->C_GenerateKey(s, &m, tmpl, NELEM(tmpl), &h), CKR_OK);
    return h;
}

static CK_OBJECT_HANDLE gen_aes(CK_SESSION_HANDLE s)
{
    return gen_aes_ex(s, 32, CK_TRUE, CK_FALSE);
}

static CK_OBJECT_HANDLE make_data(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BYTE v[] = "payload";
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_VALUE, v, sizeof(v)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    EXPECT(p11->C_CreateObject(s, t, 2, &h), CKR_OK);
    return h;
}

/* ---- group null: every pointer argument (v3.0 §5.1: CKR_ARGUMENTS_BAD) */

static int group_null(void)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub, priv, dek, h = 0;
    CK_ULONG n = 0, len = 0;
    CK_BYTE buf[512];
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256,
                                  CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CK_C_INITIALIZE_ARGS half = {0};
    CK_FUNCTION_LIST *fl = NULL;

    /* v3.0 interface discovery (§5.4.3/§5.4.4) and the 3.0-only slots. */
    {
        CK_C_GetInterfaceList gil =
            (CK_C_GetInterfaceList)dlsym(lib, "C_GetInterfaceList");
        CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
        CK_INTERFACE list[4];
        CK_INTERFACE *itf = NULL;
        CK_ULONG cnt = 0;
        CK_VERSION v99 = {9, 9};
        CK_FUNCTION_LIST_3_0 *f3;

        CHECK(gil != NULL && gi != NULL, "v3.0 discovery not exported");
        if (gil != NULL && gi != NULL) {
            EXPECT(gil(NULL, NULL), CKR_ARGUMENTS_BAD);
            EXPECT(gil(list, NULL), CKR_ARGUMENTS_BAD);
            EXPECT(gil(NULL, &cnt), CKR_OK);
            CHECK(cnt == 2, "%lu interfaces", (unsigned long)cnt);
            cnt = 1;
            EXPECT(gil(list, &cnt), CKR_BUFFER_TOO_SMALL);
            CHECK(cnt == 2, "%lu interfaces after short buffer",
                  (unsigned long)cnt);
            EXPECT(gi(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
            EXPECT(gi((CK_UTF8CHAR *)"nope", NULL, &itf, 0), CKR_ARGUMENTS_BAD);
            EXPECT(gi(NULL, &v99, &itf, 0), CKR_ARGUMENTS_BAD);
            EXPECT(gi(NULL, NULL, &itf, CKF_INTERFACE_FORK_SAFE),
                   CKR_ARGUMENTS_BAD);
            EXPECT(gi(NULL, NULL, &itf, 0), CKR_OK);
            f3 = itf != NULL ? itf->pFunctionList : NULL;
            if (f3 != NULL) {
                EXPECT(f3->C_LoginUser(1, CKU_USER, NULL, 0, NULL, 0),
                       CKR_CRYPTOKI_NOT_INITIALIZED);
                EXPECT(f3->C_SessionCancel(1, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
                EXPECT(f3->C_EncryptMessage(1, NULL, 0, NULL, 0, NULL, 0, NULL,
                                            NULL),
                       CKR_CRYPTOKI_NOT_INITIALIZED);
                init_or_die();
                EXPECT(f3->C_LoginUser(1, CKU_USER, NULL, 0, NULL, 0),
                       CKR_FUNCTION_NOT_SUPPORTED);
                /* message-based encryption is offered (AES-GCM with a
                 * Managed HSM key); signing and multi-part messages not */
                EXPECT(f3->C_MessageEncryptInit(1, NULL, 0), CKR_ARGUMENTS_BAD);
                EXPECT(f3->C_MessageDecryptFinal(1),
                       CKR_SESSION_HANDLE_INVALID);
                EXPECT(f3->C_MessageSignInit(1, NULL, 0),
                       CKR_FUNCTION_NOT_SUPPORTED);
                EXPECT(f3->C_EncryptMessageBegin(1, NULL, 0, NULL, 0),
                       CKR_FUNCTION_NOT_SUPPORTED);
                EXPECT(f3->C_Finalize(NULL), CKR_OK);
            }
        }
    }
    EXPECT(p11->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetFunctionList(&fl), CKR_OK);
    /* Some but not all mutex callbacks: v3.0 §5.4 */
    half.CreateMutex = (CK_CREATEMUTEX)(void *)1;
    EXPECT(p11->C_Initialize(&half), CKR_ARGUMENTS_BAD);
    init_or_die();
    EXPECT(p11->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    EXPECT(p11->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetSlotList(CK_FALSE, (CK_SLOT_ID *)buf, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetSlotInfo(slot0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetTokenInfo(slot0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetMechanismList(slot0, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetMechanismInfo(slot0, CKM_AES_GCM, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_OpenSession(slot0, CKF_SERIAL_SESSION, NULL, NULL, NULL),
           CKR_ARGUMENTS_BAD);
    s = open_rw();
    pub = find_one(s, CKO_PUBLIC_KEY);
    priv = find_one(s, CKO_PRIVATE_KEY);
    dek = gen_aes(s);
    EXPECT(p11->C_GetSessionInfo(s, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_Login(s, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_CreateObject(s, NULL, 2, &h), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_CreateObject(s, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_CopyObject(s, dek, NULL, 1, &h), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_CopyObject(s, dek, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetObjectSize(s, dek, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GetAttributeValue(s, dek, NULL, 1), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_SetAttributeValue(s, dek, NULL, 1), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_FindObjectsInit(s, NULL, 3), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT(p11->C_FindObjects(s, NULL, 5, &n), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_FindObjects(s, &h, 1, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_FindObjectsFinal(s), CKR_OK);
    EXPECT(p11->C_EncryptInit(s, NULL, dek), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_DecryptInit(s, NULL, dek), CKR_ARGUMENTS_BAD);
    /* A bad argument starts no operation, and ends the active one like any
     * other error (v3.0 §5.8/§5.9: only CKR_BUFFER_TOO_SMALL and a
     * successful length query keep it): the next call finds none, and a
     * new Init is not CKR_OPERATION_ACTIVE. */
    for (int i = 0; i < 10; i++) {
        bool dec = i >= 5;
        CK_RV rv = CKR_OK;

        EXPECT(dec ? p11->C_DecryptInit(s, &ecb, dek)
                   : p11->C_EncryptInit(s, &ecb, dek),
               CKR_OK);
        len = sizeof(buf);
        switch (i) {
        case 0:
            rv = p11->C_Encrypt(s, NULL, 16, buf, &len);
            break;
        case 1:
            rv = p11->C_Encrypt(s, buf, 16, buf, NULL);
            break;
        case 2:
            rv = p11->C_EncryptUpdate(s, NULL, 16, buf, &len);
            break;
        case 3:
            rv = p11->C_EncryptUpdate(s, buf, 16, buf, NULL);
            break;
        case 4:
            rv = p11->C_EncryptFinal(s, buf, NULL);
            break;
        case 5:
            rv = p11->C_Decrypt(s, NULL, 16, buf, &len);
            break;
        case 6:
            rv = p11->C_Decrypt(s, buf, 16, buf, NULL);
            break;
        case 7:
            rv = p11->C_DecryptUpdate(s, NULL, 16, buf, &len);
            break;
        case 8:
            rv = p11->C_DecryptUpdate(s, buf, 16, buf, NULL);
            break;
        default:
            rv = p11->C_DecryptFinal(s, buf, NULL);
            break;
        }
        CHECK(rv == CKR_ARGUMENTS_BAD, "bad argument %d: 0x%lx", i,
              (unsigned long)rv);
        len = sizeof(buf);
        EXPECT(dec ? p11->C_Decrypt(s, buf, 16, buf + 64, &len)
                   : p11->C_Encrypt(s, buf, 16, buf + 64, &len),
               CKR_OPERATION_NOT_INITIALIZED);
        /* Without an operation a bad argument is still that. */
        EXPECT(dec ? p11->C_DecryptFinal(s, buf, NULL)
                   : p11->C_EncryptFinal(s, buf, NULL),
               CKR_ARGUMENTS_BAD);
    }
    EXPECT(p11->C_EncryptInit(s, &ecb, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Encrypt(s, buf, 16, buf + 16, &len), CKR_OK);
    CHECK(len == 16, "ECB encrypt length %lu", (unsigned long)len);
    EXPECT(p11->C_DecryptInit(s, &ecb, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Decrypt(s, buf + 16, 16, buf + 64, &len), CKR_OK);
    CHECK(len == 16 && memcmp(buf, buf + 64, 16) == 0,
          "ECB round trip after bad arguments");
    EXPECT(p11->C_GenerateKey(s, NULL, NULL, 0, &h), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateKey(s, &gen, NULL, 2, &h), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateKey(s, &gen, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_WrapKey(s, NULL, pub, dek, buf, &len), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_WrapKey(s, &oaep, pub, dek, buf, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_WrapKey(s, &oaep, pub, dek, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_UnwrapKey(s, NULL, priv, buf, 256, NULL, 0, &h),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_UnwrapKey(s, &oaep, priv, NULL, 256, NULL, 0, &h),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 256, NULL, 3, &h),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 256, NULL, 0, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateRandom(s, NULL, 16), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateRandom(s, NULL, 0), CKR_OK);
    EXPECT(p11->C_SeedRandom(s, NULL, 16), CKR_ARGUMENTS_BAD);
    /* Legacy parallel functions (v3.0 §5.17): always
     * CKR_FUNCTION_NOT_PARALLEL. */
    EXPECT(p11->C_GetFunctionStatus(s), CKR_FUNCTION_NOT_PARALLEL);
    EXPECT(p11->C_CancelFunction(s), CKR_FUNCTION_NOT_PARALLEL);
    /* Entry points the token does not offer: CKR_FUNCTION_NOT_SUPPORTED
     * whatever the arguments (NULL pointers included), never a crash. */
    EXPECT(p11->C_InitToken(slot0, NULL, 0, NULL), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_InitPIN(s, NULL, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_SetPIN(s, NULL, 0, NULL, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_GetOperationState(s, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_SetOperationState(s, NULL, 0, 0, 0),
           CKR_FUNCTION_NOT_SUPPORTED);
    /* Digests (issue 10): NULL pointers and no active operation. */
    EXPECT(p11->C_DigestInit(s, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_Digest(s, NULL, 0, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_DigestUpdate(s, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DigestKey(s, dek), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DigestFinal(s, NULL, NULL), CKR_ARGUMENTS_BAD);
    /* Sign/verify (token/sign.c): NULL pointers are CKR_ARGUMENTS_BAD, an
     * update without an operation CKR_OPERATION_NOT_INITIALIZED. */
    EXPECT(p11->C_SignInit(s, NULL, dek), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_Sign(s, NULL, 0, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_SignUpdate(s, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_SignFinal(s, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_SignRecoverInit(s, NULL, dek), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_SignRecover(s, NULL, 0, NULL, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_VerifyInit(s, NULL, dek), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_Verify(s, NULL, 0, NULL, 0), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_VerifyUpdate(s, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_VerifyFinal(s, NULL, 0), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_VerifyRecoverInit(s, NULL, dek), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_VerifyRecover(s, NULL, 0, NULL, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_DigestEncryptUpdate(s, NULL, 0, NULL, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_DecryptDigestUpdate(s, NULL, 0, NULL, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_SignEncryptUpdate(s, NULL, 0, NULL, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_DecryptVerifyUpdate(s, NULL, 0, NULL, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    /* Offered since issue 10 ("Creating keys"): NULL pointers are
     * CKR_ARGUMENTS_BAD like every other implemented entry point. */
    EXPECT(p11->C_GenerateKeyPair(s, NULL, NULL, 0, NULL, 0, NULL, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_DeriveKey(s, NULL, dek, NULL, 0, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL),
           CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(p11->C_Finalize(buf), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_CloseSession(s), CKR_OK);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* ---- group handles ---- */

static int group_handles(void)
{
    CK_SESSION_HANDLE s, s2, closed;
    CK_OBJECT_HANDLE pub, priv, dek, data, h = 0;
    CK_INFO info;
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_SESSION_INFO sinfo;
    CK_MECHANISM_INFO mi;
    CK_ULONG n = 4, len = 0;
    CK_BYTE buf[512];
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256,
                                  CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
    CK_ULONG vl = 32;
    CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)}};
    CK_ATTRIBUTE lab = {CKA_LABEL, buf, sizeof(buf)};
    const CK_SESSION_HANDLE bad_sessions[] = {0, 1, 0x7fffffff, 0xdeadbeef,
                                              (CK_SESSION_HANDLE)-1};

    /* Before C_Initialize (v3.0 §5.4: CKR_CRYPTOKI_NOT_INITIALIZED). */
    EXPECT(p11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_GetSlotList(CK_TRUE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s),
           CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_CloseSession(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_EncryptInit(1, &ecb, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_GetFunctionStatus(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_CancelFunction(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_InitToken(0, NULL, 0, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL),
           CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    init_or_die();

    /* Slot ids (CKR_SLOT_ID_INVALID). */
    n = 0;
    EXPECT(p11->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
    for (CK_SLOT_ID bad = n; bad < n + 3; bad++) {
        EXPECT(p11->C_GetSlotInfo(bad, &si), CKR_SLOT_ID_INVALID);
        EXPECT(p11->C_GetTokenInfo(bad, &ti), CKR_SLOT_ID_INVALID);
        EXPECT(p11->C_GetMechanismList(bad, NULL, &n), CKR_SLOT_ID_INVALID);
        EXPECT(p11->C_GetMechanismInfo(bad, CKM_AES_GCM, &mi),
               CKR_SLOT_ID_INVALID);
        EXPECT(p11->C_OpenSession(bad, CKF_SERIAL_SESSION, NULL, NULL, &s),
               CKR_SLOT_ID_INVALID);
        EXPECT(p11->C_CloseAllSessions(bad), CKR_SLOT_ID_INVALID);
    }
    EXPECT(p11->C_GetSlotInfo((CK_SLOT_ID)-1, &si), CKR_SLOT_ID_INVALID);
    /* Short lists: CKR_BUFFER_TOO_SMALL with the needed count (§5.5). */
    {
        CK_SLOT_ID sl[1];
        CK_MECHANISM_TYPE ml[64];
        CK_ULONG want = 0;

        n = 0;
        EXPECT(p11->C_GetSlotList(CK_FALSE, sl, &n), CKR_BUFFER_TOO_SMALL);
        CHECK(n == 2, "slot count %lu", (unsigned long)n);
        EXPECT(p11->C_GetMechanismList(slot0, NULL, &want), CKR_OK);
        CHECK(want > 1 && want < 64, "mechanism count %lu",
              (unsigned long)want);
        n = want - 1;
        EXPECT(p11->C_GetMechanismList(slot0, ml, &n), CKR_BUFFER_TOO_SMALL);
        CHECK(n == want, "mechanism count after short buffer %lu",
              (unsigned long)n);
        n = 64;
        EXPECT(p11->C_GetMechanismList(slot0, ml, &n), CKR_OK);
        CHECK(n == want, "mechanism count %lu", (unsigned long)n);
    }
    EXPECT(p11->C_GetMechanismInfo(slot0, 0x7777UL, &mi),
           CKR_MECHANISM_INVALID);
    EXPECT(p11->C_OpenSession(slot0, 0, NULL, NULL, &s),
           CKR_SESSION_PARALLEL_NOT_SUPPORTED);

    s = open_rw();
    s2 = open_rw();
    closed = open_rw();
    EXPECT(p11->C_CloseSession(closed), CKR_OK);
    pub = find_one(s, CKO_PUBLIC_KEY);
    priv = find_one(s, CKO_PRIVATE_KEY);
    dek = gen_aes(s);
    data = make_data(s);

    for (size_t i = 0; i < NELEM(bad_sessions) + 1; i++) {
        CK_SESSION_HANDLE b =
            i < NELEM(bad_sessions) ? bad_sessions[i] : closed;

        if (b == s || b == s2) {
            continue;
        }
        EXPECT(p11->C_CloseSession(b), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_GetSessionInfo(b, &sinfo), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_Login(b, CKU_USER, NULL, 0), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_Logout(b), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_FindObjectsInit(b, NULL, 0), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_FindObjects(b, &h, 1, &n), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_FindObjectsFinal(b), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_GetAttributeValue(b, dek, &lab, 1),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_SetAttributeValue(b, dek, &lab, 1),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_GetObjectSize(b, dek, &n), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_DestroyObject(b, data), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_CopyObject(b, dek, NULL, 0, &h),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_CreateObject(b, NULL, 0, &h), CKR_SESSION_HANDLE_INVALID);
        /* Sign/verify and digest (issue 10), v3.0 §5.12-§5.14. */
        EXPECT(p11->C_SignInit(b, &hmac, dek), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_VerifyInit(b, &hmac, dek), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_DigestInit(b, &sha256), CKR_SESSION_HANDLE_INVALID);
        len = sizeof(buf);
        EXPECT(p11->C_Digest(b, buf, 3, buf, &len), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_EncryptInit(b, &ecb, dek), CKR_SESSION_HANDLE_INVALID);
        len = sizeof(buf);
        EXPECT(p11->C_Encrypt(b, buf, 16, buf, &len),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_EncryptUpdate(b, buf, 16, buf, &len),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_EncryptFinal(b, buf, &len), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_DecryptInit(b, &ecb, dek), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_Decrypt(b, buf, 16, buf, &len),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_DecryptUpdate(b, buf, 16, buf, &len),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_DecryptFinal(b, buf, &len), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_GenerateKey(b, &gen, gt, 1, &h),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_WrapKey(b, &oaep, pub, dek, NULL, &len),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_UnwrapKey(b, &oaep, priv, buf, 256, NULL, 0, &h),
               CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_GenerateRandom(b, buf, 8), CKR_SESSION_HANDLE_INVALID);
        EXPECT(p11->C_SeedRandom(b, buf, 8), CKR_SESSION_HANDLE_INVALID);
    }

    /* Object handles (CKR_OBJECT_HANDLE_INVALID and the key variants). */
    {
        const CK_OBJECT_HANDLE bad_objs[] = {0, 1, 0x7ffffffe, 0xdeadbeef,
                                             (CK_OBJECT_HANDLE)-1};
        for (size_t i = 0; i < NELEM(bad_objs); i++) {
            CK_OBJECT_HANDLE b = bad_objs[i];

            if (b == pub || b == priv || b == dek || b == data) {
                continue;
            }
            EXPECT(p11->C_GetAttributeValue(s, b, &lab, 1),
                   CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_SetAttributeValue(s, b, &lab, 1),
                   CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_GetObjectSize(s, b, &n), CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_DestroyObject(s, b), CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_CopyObject(s, b, NULL, 0, &h),
                   CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_EncryptInit(s, &ecb, b), CKR_KEY_HANDLE_INVALID);
            EXPECT(p11->C_DecryptInit(s, &ecb, b), CKR_KEY_HANDLE_INVALID);
            EXPECT(p11->C_SignInit(s, &hmac, b), CKR_KEY_HANDLE_INVALID);
            EXPECT(p11->C_VerifyInit(s, &hmac, b), CKR_KEY_HANDLE_INVALID);
            EXPECT(p11->C_WrapKey(s, &oaep, b, dek, NULL, &len),
                   CKR_WRAPPING_KEY_HANDLE_INVALID);
            EXPECT(p11->C_WrapKey(s, &oaep, pub, b, NULL, &len),
                   CKR_KEY_HANDLE_INVALID);
            EXPECT(p11->C_UnwrapKey(s, &oaep, b, buf, 256, NULL, 0, &h),
                   CKR_UNWRAPPING_KEY_HANDLE_INVALID);
        }
    }
    /* Short buffer (v3.0 §5.2): the exact length, the operation still
     * active; then the SHA-256 of "abc" (FIPS 180-2 B.1). */
    {
        static const CK_BYTE abc_sha256[32] = {
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
            0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
            0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

        EXPECT(p11->C_DigestInit(s, &sha256), CKR_OK);
        len = 4;
        EXPECT(p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, buf, &len),
               CKR_BUFFER_TOO_SMALL);
        CHECK(len == 32, "short digest buffer: length %lu, want 32",
              (unsigned long)len);
        len = sizeof(buf);
        EXPECT(p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, buf, &len), CKR_OK);
        CHECK(len == 32 && memcmp(buf, abc_sha256, 32) == 0,
              "SHA-256(abc) through the module");
        EXPECT(p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, buf, &len),
               CKR_OPERATION_NOT_INITIALIZED);
    }
    /* Another slot's session: the objects of slot 0 are not there, and
     * closing all sessions of slot 1 leaves slot 0's alone. */
    {
        CK_SLOT_ID sl[4];
        CK_ULONG ns = 4;
        CK_SESSION_HANDLE o = CK_INVALID_HANDLE;

        EXPECT(p11->C_GetSlotList(CK_TRUE, sl, &ns), CKR_OK);
        CHECK(ns == 2, "abuse.sh handles configures 2 tokens, got %lu",
              (unsigned long)ns);
        if (ns == 2) {
            EXPECT(p11->C_OpenSession(sl[1],
                                      CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                      NULL, &o),
                   CKR_OK);
            lab.ulValueLen = sizeof(buf);
            EXPECT(p11->C_GetAttributeValue(o, dek, &lab, 1),
                   CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_GetAttributeValue(o, pub, &lab, 1),
                   CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_DestroyObject(o, data), CKR_OBJECT_HANDLE_INVALID);
            EXPECT(p11->C_EncryptInit(o, &ecb, dek), CKR_KEY_HANDLE_INVALID);
            EXPECT(p11->C_WrapKey(o, &oaep, pub, dek, NULL, &len),
                   CKR_WRAPPING_KEY_HANDLE_INVALID);
            EXPECT(p11->C_UnwrapKey(o, &oaep, priv, buf, 256, NULL, 0, &h),
                   CKR_UNWRAPPING_KEY_HANDLE_INVALID);
            EXPECT(p11->C_CloseAllSessions(sl[1]), CKR_OK);
            EXPECT(p11->C_GetSessionInfo(o, &sinfo),
                   CKR_SESSION_HANDLE_INVALID);
            EXPECT(p11->C_GetSessionInfo(s, &sinfo), CKR_OK);
            CHECK(sinfo.slotID == slot0, "session slot %lu",
                  (unsigned long)sinfo.slotID);
        }
    }
    /* A data object is not a key (v3.0 §5.1 CKR_KEY_HANDLE_INVALID: "a
     * valid handle for an object which is not a key"). */
    EXPECT(p11->C_EncryptInit(s, &ecb, data), CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_WrapKey(s, &oaep, data, dek, NULL, &len),
           CKR_WRAPPING_KEY_HANDLE_INVALID);
    EXPECT(p11->C_WrapKey(s, &oaep, pub, data, NULL, &len),
           CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_UnwrapKey(s, &oaep, data, buf, 256, NULL, 0, &h),
           CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    /* Session objects are visible to the other session of the same
     * application; once destroyed, the handle is dead in both. */
    lab.pValue = NULL;
    EXPECT(p11->C_GetAttributeValue(s2, dek, &lab, 1), CKR_OK);
    EXPECT(p11->C_DestroyObject(s2, data), CKR_OK);
    EXPECT(p11->C_DestroyObject(s, data), CKR_OBJECT_HANDLE_INVALID);
    EXPECT(p11->C_DestroyObject(s, pub), CKR_ACTION_PROHIBITED);
    /* Objects of a closed session are gone (v3.0 §5.6.3). */
    EXPECT(p11->C_CloseSession(s), CKR_OK);
    EXPECT(p11->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);
    lab.ulValueLen = 0;
    EXPECT(p11->C_GetAttributeValue(s2, dek, &lab, 1),
           CKR_OBJECT_HANDLE_INVALID);
    EXPECT(p11->C_GetAttributeValue(s2, pub, &lab, 1), CKR_OK);
    /* C_CloseAllSessions then old handles are invalid. */
    EXPECT(p11->C_CloseAllSessions(slot0), CKR_OK);
    EXPECT(p11->C_GetSessionInfo(s2, &sinfo), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    /* After C_Finalize, and a second C_Finalize. */
    EXPECT(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_GetSessionInfo(s2, &sinfo), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_CloseAllSessions(slot0), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* Re-initialise: fresh state, old handles still invalid. */
    init_or_die();
    EXPECT(p11->C_GetSessionInfo(s2, &sinfo), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* ---- group templates ---- */

static int group_templates(void)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub, priv, dek, h = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS sk = CKO_SECRET_KEY, pk = CKO_PRIVATE_KEY,
                    pubc = CKO_PUBLIC_KEY, data = CKO_DATA;
    CK_KEY_TYPE aes = CKK_AES, rsa = CKK_RSA;
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_BYTE junk[16] = {0}, key16[16] = {1, 2, 3};
    CK_ULONG four = 4, count_before = 0, count_after = 0;
    CK_BYTE bool4[4] = {1, 0, 0, 0};
    CK_BYTE two = 2;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM ggen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE all[64];

    init_or_die();
    s = open_rw();
    pub = find_one(s, CKO_PUBLIC_KEY);
    priv = find_one(s, CKO_PRIVATE_KEY);
    EXPECT(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT(p11->C_FindObjects(s, all, NELEM(all), &count_before), CKR_OK);
    EXPECT(p11->C_FindObjectsFinal(s), CKR_OK);

    /* CKA_CLASS of 3 bytes; CK_BBOOL of 4 bytes; NULL value with a length;
     * a CK_BBOOL that is neither 0 nor 1 (v3.0 §5.7: invalid value). */
    {
        CK_ATTRIBUTE a[] = {{CKA_CLASS, &sk, 3},
                            {CKA_VALUE, key16, sizeof(key16)},
                            {CKA_KEY_TYPE, &aes, sizeof(aes)}};
        EXPECT(p11->C_CreateObject(s, a, 3, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_FindObjectsInit(s, a, 1), CKR_ATTRIBUTE_VALUE_INVALID);
    }
    {
        CK_ATTRIBUTE a[] = {{CKA_CLASS, &sk, sizeof(sk)},
                            {CKA_KEY_TYPE, &aes, sizeof(aes)},
                            {CKA_VALUE, key16, sizeof(key16)},
                            {CKA_ENCRYPT, bool4, 4}};
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        a[3].pValue = &two;
        a[3].ulValueLen = 1;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        a[3].pValue = NULL;
        a[3].ulValueLen = 16;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_FindObjectsInit(s, &a[3], 1),
               CKR_ATTRIBUTE_VALUE_INVALID);
        /* Duplicate attributes with conflicting values. */
        a[3].type = CKA_KEY_TYPE;
        a[3].pValue = &rsa;
        a[3].ulValueLen = sizeof(rsa);
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_TEMPLATE_INCONSISTENT);
        /* The same duplicate with the same value is harmless. */
        a[3].pValue = &aes;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_OK);
        EXPECT(p11->C_DestroyObject(s, h), CKR_OK);
        /* Unknown attribute type. */
        a[3].type = 0x7fff1234UL;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_TYPE_INVALID);
        /* Read-only attributes (v3.0 §4 table 10 fn 4/6). */
        a[3].type = CKA_LOCAL;
        a[3].pValue = &t;
        a[3].ulValueLen = 1;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
        a[3].type = CKA_NEVER_EXTRACTABLE;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
        a[3].type = CKA_ALWAYS_SENSITIVE;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
        /* Not a secret-key attribute at all (v3.0 §4.10; it is a public
         * key's, §2.1.2): CKR_ATTRIBUTE_TYPE_INVALID. */
        a[3].type = CKA_MODULUS;
        a[3].pValue = junk;
        a[3].ulValueLen = sizeof(junk);
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_TYPE_INVALID);
        a[3].type = CKA_VALUE_LEN; /* fn 2: not on C_CreateObject */
        a[3].pValue = &four;
        a[3].ulValueLen = sizeof(four);
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
        /* An AES value that is not 16/24/32 bytes. */
        a[2].ulValueLen = 15;
        EXPECT(p11->C_CreateObject(s, a, 3, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        a[2].ulValueLen = 0;
        EXPECT(p11->C_CreateObject(s, a, 3, &h), CKR_TEMPLATE_INCOMPLETE);
    }
    /* Classes and key types that cannot be created here
     * (token/README.md): the CKA_CLASS / CKA_KEY_TYPE value is refused
     * (CKR_ATTRIBUTE_VALUE_INVALID) before the generic checker looks at
     * the attributes such a key carries (which would say READ_ONLY). */
    {
        CK_KEY_TYPE dsa = CKK_DSA;
        CK_OBJECT_CLASS cert = CKO_CERTIFICATE;
        CK_ATTRIBUTE a[] = {{CKA_CLASS, &pk, sizeof(pk)},
                            {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
                            {CKA_MODULUS, junk, sizeof(junk)},
                            {CKA_PRIVATE_EXPONENT, junk, sizeof(junk)}};
        EXPECT(p11->C_CreateObject(s, a, 2, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        a[0].pValue = &cert;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        a[0].pValue = &pubc;
        a[1].pValue = &dsa;
        EXPECT(p11->C_CreateObject(s, a, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
        /* An RSA public key is imported, but needs its material. */
        a[1].pValue = &rsa;
        EXPECT(p11->C_CreateObject(s, a, 2, &h), CKR_TEMPLATE_INCOMPLETE);
        EXPECT(p11->C_CreateObject(s, a, 0, &h), CKR_TEMPLATE_INCOMPLETE);
    }
    /* Import the vault key's public part as a session object: junk
     * material is refused, the real one encrypts locally and the vault
     * decrypts it (v3.0 §4.8, §2.1.2). */
    {
        CK_OBJECT_HANDLE vpub = find_one(s, CKO_PUBLIC_KEY);
        CK_OBJECT_HANDLE vpriv = find_one(s, CKO_PRIVATE_KEY);
        CK_BYTE n[1024], e[16], ct[1024], back[64];
        CK_ATTRIBUTE q[] = {{CKA_MODULUS, n, sizeof(n)},
                            {CKA_PUBLIC_EXPONENT, e, sizeof(e)}};
        CK_ATTRIBUTE a[] = {{CKA_CLASS, &pubc, sizeof(pubc)},
                            {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
                            {CKA_MODULUS, n, 0},
                            {CKA_PUBLIC_EXPONENT, e, 0}};
        CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256,
                                      CKZ_DATA_SPECIFIED, NULL, 0};
        CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
        CK_ULONG ctl = sizeof(ct), bl = sizeof(back);
        CK_OBJECT_HANDLE imp = CK_INVALID_HANDLE;

        EXPECT(p11->C_GetAttributeValue(s, vpub, q, 2), CKR_OK);
        a[2].ulValueLen = q[0].ulValueLen;
        a[3].ulValueLen = q[1].ulValueLen;
        n[q[0].ulValueLen - 1] ^= 1; /* even modulus */
        EXPECT(p11->C_CreateObject(s, a, 4, &imp), CKR_ATTRIBUTE_VALUE_INVALID);
        n[q[0].ulValueLen - 1] ^= 1;
        EXPECT(p11->C_CreateObject(s, a, 4, &imp), CKR_OK);
        EXPECT(p11->C_EncryptInit(s, &oaep, imp), CKR_OK);
        EXPECT(p11->C_Encrypt(s, (CK_BYTE *)"imported", 8, ct, &ctl), CKR_OK);
        EXPECT(p11->C_DecryptInit(s, &oaep, vpriv), CKR_OK);
        EXPECT(p11->C_Decrypt(s, ct, ctl, back, &bl), CKR_OK);
        CHECK(bl == 8 && memcmp(back, "imported", 8) == 0,
              "imported public key round trip");
        EXPECT(p11->C_DestroyObject(s, imp), CKR_OK);
    }
    /* Key attributes on a data object are not attributes of that class
     * (v3.0 §5.7: CKR_ATTRIBUTE_TYPE_INVALID). */
    {
        CK_ATTRIBUTE a[] = {{CKA_CLASS, &data, sizeof(data)},
                            {CKA_SENSITIVE, &t, 1}};
        EXPECT(p11->C_CreateObject(s, a, 2, &h), CKR_ATTRIBUTE_TYPE_INVALID);
        a[1].type = CKA_KEY_TYPE;
        a[1].pValue = &aes;
        a[1].ulValueLen = sizeof(aes);
        EXPECT(p11->C_CreateObject(s, a, 2, &h), CKR_ATTRIBUTE_TYPE_INVALID);
    }
    /* C_GenerateKey: CKA_VALUE_LEN 0, 7, 1000000, missing, and CKA_VALUE. */
    {
        CK_ULONG vl = 0;
        CK_ATTRIBUTE a[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                            {CKA_VALUE, key16, sizeof(key16)}};
        const CK_ULONG bad[] = {0, 7, 1000000, 15, 33};

        for (size_t i = 0; i < NELEM(bad); i++) {
            vl = bad[i];
            EXPECT(p11->C_GenerateKey(s, &gen, a, 1, &h),
                   CKR_ATTRIBUTE_VALUE_INVALID);
        }
        vl = 0;
        EXPECT(p11->C_GenerateKey(s, &ggen, a, 1, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        vl = 1000000;
        EXPECT(p11->C_GenerateKey(s, &ggen, a, 1, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_GenerateKey(s, &gen, NULL, 0, &h),
               CKR_TEMPLATE_INCOMPLETE);
        vl = 16;
        EXPECT(p11->C_GenerateKey(s, &gen, a, 2, &h), CKR_ATTRIBUTE_READ_ONLY);
        a[0].ulValueLen = 4;
        EXPECT(p11->C_GenerateKey(s, &gen, a, 1, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        a[0].ulValueLen = sizeof(vl);
        /* A class or key type that contradicts the mechanism. */
        a[1].type = CKA_KEY_TYPE;
        a[1].pValue = &rsa;
        a[1].ulValueLen = sizeof(rsa);
        EXPECT(p11->C_GenerateKey(s, &gen, a, 2, &h),
               CKR_TEMPLATE_INCONSISTENT);
        a[1].type = CKA_CLASS;
        a[1].pValue = &data;
        EXPECT(p11->C_GenerateKey(s, &gen, a, 2, &h),
               CKR_TEMPLATE_INCONSISTENT);
    }
    /* Sticky attributes (v3.0 §4.7 table 25 fn 11/12). */
    dek = gen_aes_ex(s, 16, CK_FALSE, CK_TRUE);
    {
        CK_ATTRIBUTE a = {CKA_SENSITIVE, &f, 1};
        CK_BBOOL got = 0xAA;
        CK_ATTRIBUTE q = {CKA_SENSITIVE, &got, 1};

        EXPECT(p11->C_SetAttributeValue(s, dek, &a, 1),
               CKR_ATTRIBUTE_READ_ONLY);
        EXPECT(p11->C_GetAttributeValue(s, dek, &q, 1), CKR_OK);
        CHECK(got == CK_TRUE, "CKA_SENSITIVE changed to %u", got);
        a.type = CKA_EXTRACTABLE;
        a.pValue = &t;
        EXPECT(p11->C_SetAttributeValue(s, dek, &a, 1),
               CKR_ATTRIBUTE_READ_ONLY);
        q.type = CKA_EXTRACTABLE;
        EXPECT(p11->C_GetAttributeValue(s, dek, &q, 1), CKR_OK);
        CHECK(got == CK_FALSE, "CKA_EXTRACTABLE changed to %u", got);
        /* The other direction is allowed. */
        EXPECT(p11->C_SetAttributeValue(s, dek, &a, 0), CKR_OK);
        /* And through C_CopyObject neither. */
        EXPECT(p11->C_CopyObject(s, dek, &a, 1, &h), CKR_ATTRIBUTE_READ_ONLY);
        a.type = CKA_SENSITIVE;
        a.pValue = &f;
        EXPECT(p11->C_CopyObject(s, dek, &a, 1, &h), CKR_ATTRIBUTE_READ_ONLY);
        /* Read-only attributes via C_SetAttributeValue. */
        a.type = CKA_LOCAL;
        EXPECT(p11->C_SetAttributeValue(s, dek, &a, 1),
               CKR_ATTRIBUTE_READ_ONLY);
        a.type = CKA_NEVER_EXTRACTABLE;
        EXPECT(p11->C_SetAttributeValue(s, dek, &a, 1),
               CKR_ATTRIBUTE_READ_ONLY);
        a.type = CKA_CLASS;
        a.pValue = &data;
        a.ulValueLen = sizeof(data);
        EXPECT(p11->C_SetAttributeValue(s, dek, &a, 1),
               CKR_ATTRIBUTE_READ_ONLY);
        a.type = CKA_VALUE;
        a.pValue = key16;
        a.ulValueLen = 16;
        EXPECT(p11->C_SetAttributeValue(s, dek, &a, 1),
               CKR_ATTRIBUTE_READ_ONLY);
        /* A failing template changes nothing (all or nothing). */
        {
            CK_BYTE lbl[] = "changed";
            CK_ATTRIBUTE two_a[] = {{CKA_LABEL, lbl, 7}, {CKA_LOCAL, &f, 1}};
            CK_ULONG ll = 0;
            CK_ATTRIBUTE lq = {CKA_LABEL, NULL, 0};

            EXPECT(p11->C_SetAttributeValue(s, dek, two_a, 2),
                   CKR_ATTRIBUTE_READ_ONLY);
            EXPECT(p11->C_GetAttributeValue(s, dek, &lq, 1), CKR_OK);
            ll = lq.ulValueLen;
            CHECK(ll == 0, "label set by a failed template (%lu)",
                  (unsigned long)ll);
        }
    }
    /* Vault key objects are not modifiable (v3.0 §4.4 CKA_MODIFIABLE). */
    {
        CK_ATTRIBUTE a = {CKA_MODULUS, junk, sizeof(junk)};
        CK_BBOOL got = 0xAA;
        CK_ATTRIBUTE q = {CKA_MODIFIABLE, &got, 1};

        EXPECT(p11->C_GetAttributeValue(s, pub, &q, 1), CKR_OK);
        CHECK(got == CK_FALSE, "vault public key CKA_MODIFIABLE %u", got);
        EXPECT(p11->C_SetAttributeValue(s, pub, &a, 1), CKR_ACTION_PROHIBITED);
        a.type = CKA_SENSITIVE;
        a.pValue = &f;
        a.ulValueLen = 1;
        EXPECT(p11->C_SetAttributeValue(s, priv, &a, 1), CKR_ACTION_PROHIBITED);
        EXPECT(p11->C_CopyObject(s, priv, NULL, 0, &h), CKR_ACTION_PROHIBITED);
        EXPECT(p11->C_DestroyObject(s, priv), CKR_ACTION_PROHIBITED);
    }
    /* Token objects need a R/W session (v3.0 §5.7.1). */
    {
        CK_SESSION_HANDLE ro = CK_INVALID_HANDLE;
        CK_ULONG vl = 16;
        CK_ATTRIBUTE a[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                            {CKA_TOKEN, &t, 1}};

        CK_OBJECT_CLASS dc = CKO_DATA;
        CK_ATTRIBUTE dt[] = {{CKA_CLASS, &dc, sizeof(dc)}, {CKA_TOKEN, &t, 1}};
        CK_BYTE lbl[] = "ro";
        CK_ATTRIBUTE la = {CKA_LABEL, lbl, 2};
        CK_BYTE wrapped[256] = {0};
        CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256,
                                      CKZ_DATA_SPECIFIED, NULL, 0};
        CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
        CK_OBJECT_HANDLE tk = CK_INVALID_HANDLE;

        EXPECT(p11->C_OpenSession(slot0, CKF_SERIAL_SESSION, NULL, NULL, &ro),
               CKR_OK);
        EXPECT(p11->C_GenerateKey(ro, &gen, a, 2, &h), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_CreateObject(ro, dt, 2, &h), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_CopyObject(ro, dek, &a[1], 1, &h), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_UnwrapKey(ro, &oaep, priv, wrapped, sizeof(wrapped),
                                &a[1], 1, &h),
               CKR_SESSION_READ_ONLY);
        /* Changing or destroying a token object is a write too. */
        EXPECT(p11->C_GenerateKey(s, &gen, a, 2, &tk), CKR_OK);
        EXPECT(p11->C_SetAttributeValue(ro, tk, &la, 1), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_DestroyObject(ro, tk), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_DestroyObject(s, tk), CKR_OK);
        EXPECT(p11->C_CloseSession(ro), CKR_OK);
    }
    /* Token objects: the store keeps at most 64 KiB of attributes per
     * object (docs/store-format); more is refused before the vault is
     * asked, and a refused change leaves the stored object as it was. */
    {
        CK_ULONG vl = 16;
        size_t big = 70000;
        CK_BYTE *lbl = calloc(1, big);
        CK_ATTRIBUTE a[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                            {CKA_TOKEN, &t, 1},
                            {CKA_LABEL, lbl, (CK_ULONG)big}};
        CK_OBJECT_HANDLE tk = CK_INVALID_HANDLE;
        CK_ATTRIBUTE lq = {CKA_LABEL, NULL, 0};

        memset(lbl, 'L', big);
        EXPECT(p11->C_GenerateKey(s, &gen, a, 3, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        a[2].ulValueLen = 5;
        EXPECT(p11->C_GenerateKey(s, &gen, a, 3, &tk), CKR_OK);
        a[2].ulValueLen = (CK_ULONG)big;
        EXPECT(p11->C_SetAttributeValue(s, tk, &a[2], 1),
               CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_CopyObject(s, tk, &a[1], 2, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_GetAttributeValue(s, tk, &lq, 1), CKR_OK);
        CHECK(lq.ulValueLen == 5, "token object label length %lu",
              (unsigned long)lq.ulValueLen);
        EXPECT(p11->C_DestroyObject(s, tk), CKR_OK);
        free(lbl);
    }
    /* CKA_ALLOWED_MECHANISMS is enforced (v3.0 §4.7). */
    {
        CK_ULONG vl = 16;
        CK_MECHANISM_TYPE only_gcm[] = {CKM_AES_GCM};
        CK_MECHANISM_TYPE odd[] = {CKM_AES_GCM, CKM_AES_CBC};
        CK_ATTRIBUTE a[] = {
            {CKA_VALUE_LEN, &vl, sizeof(vl)},
            {CKA_ALLOWED_MECHANISMS, only_gcm, sizeof(only_gcm)}};
        CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
        CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
        CK_BYTE iv[12] = {0};
        CK_GCM_PARAMS gp = {iv, sizeof(iv), 96, NULL, 0, 128};
        CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
        CK_BYTE in[16] = {0}, out[64];
        CK_ULONG len = sizeof(out);

        EXPECT(p11->C_GenerateKey(s, &gen, a, 2, &k), CKR_OK);
        EXPECT(p11->C_EncryptInit(s, &ecb, k), CKR_MECHANISM_INVALID);
        EXPECT(p11->C_DecryptInit(s, &ecb, k), CKR_MECHANISM_INVALID);
        EXPECT(p11->C_EncryptInit(s, &gcm, k), CKR_OK);
        EXPECT(p11->C_Encrypt(s, in, 16, out, &len), CKR_OK);
        /* Not modifiable afterwards (table 25: no fn 8). */
        a[1].pValue = odd;
        a[1].ulValueLen = sizeof(odd);
        EXPECT(p11->C_SetAttributeValue(s, k, &a[1], 1),
               CKR_ATTRIBUTE_READ_ONLY);
        /* A length that is not a whole number of mechanisms. */
        a[1].ulValueLen = 3;
        EXPECT(p11->C_GenerateKey(s, &gen, a, 2, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_DestroyObject(s, k), CKR_OK);
    }
    /* Nothing was created by any refused call. */
    EXPECT(p11->C_DestroyObject(s, dek), CKR_OK);
    EXPECT(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT(p11->C_FindObjects(s, all, NELEM(all), &count_after), CKR_OK);
    EXPECT(p11->C_FindObjectsFinal(s), CKR_OK);
    CHECK(count_after == count_before, "objects before %lu, after %lu",
          (unsigned long)count_before, (unsigned long)count_after);
    /* Exhaustion: the object table is bounded (4096, token.h); the limit
     * is CKR_DEVICE_MEMORY, and closing the session gives the room back. */
    {
        CK_SESSION_HANDLE x = open_rw();
        CK_OBJECT_CLASS dc = CKO_DATA;
        CK_ATTRIBUTE a = {CKA_CLASS, &dc, sizeof(dc)};
        CK_RV rv = CKR_OK;
        int made = 0;

        while (made < 5000) {
            rv = p11->C_CreateObject(x, &a, 1, &h);
            if (rv != CKR_OK) {
                break;
            }
            made++;
        }
        CHECK(rv == CKR_DEVICE_MEMORY && made > 4000 && made <= 4096,
              "object table: %d made, then 0x%lx", made, (unsigned long)rv);
        EXPECT(p11->C_CloseSession(x), CKR_OK);
        EXPECT(p11->C_CreateObject(s, &a, 1, &h), CKR_OK);
        EXPECT(p11->C_DestroyObject(s, h), CKR_OK);
    }
    EXPECT(p11->C_CloseSession(s), CKR_OK);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* ---- group mech ---- */

static int group_mech(void)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub, priv, dek, dek_ne, dek_nowrap, data;
    CK_BYTE buf[1024], iv15[15] = {0}, iv16[16] = {0}, gcm_iv[12] = {0};
    CK_ULONG len;
    CK_MECHANISM unknown = {0x7777UL, NULL, 0};
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM cbc15 = {CKM_AES_CBC, iv15, sizeof(iv15)};
    CK_MECHANISM cbcnull = {CKM_AES_CBC, NULL, 16};
    CK_MECHANISM cbc = {CKM_AES_CBC, iv16, sizeof(iv16)};
    CK_GCM_PARAMS gp = {gcm_iv, sizeof(gcm_iv), 96, NULL, 0, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
    CK_MECHANISM gcm_null = {CKM_AES_GCM, NULL, 0};
    CK_MECHANISM gcm_short = {CKM_AES_GCM, &gp, sizeof(gp) - 1};
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256,
                                  CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0};
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};

    init_or_die();
    s = open_rw();
    pub = find_one(s, CKO_PUBLIC_KEY);
    priv = find_one(s, CKO_PRIVATE_KEY);
    dek = gen_aes(s);
    dek_ne = gen_aes_ex(s, 32, CK_FALSE, CK_TRUE);
    data = make_data(s);
    memset(buf, 0x5a, sizeof(buf));

    EXPECT(p11->C_EncryptInit(s, &unknown, dek), CKR_MECHANISM_INVALID);
    EXPECT(p11->C_DecryptInit(s, &unknown, dek), CKR_MECHANISM_INVALID);
    EXPECT(p11->C_EncryptInit(s, &sha, dek), CKR_MECHANISM_INVALID);
    EXPECT(p11->C_WrapKey(s, &unknown, pub, dek, NULL, &len),
           CKR_MECHANISM_INVALID);
    EXPECT(p11->C_WrapKey(s, &ecb, pub, dek, NULL, &len),
           CKR_MECHANISM_INVALID);
    EXPECT(p11->C_UnwrapKey(s, &unknown, priv, buf, 256, NULL, 0, &len),
           CKR_MECHANISM_INVALID);
    {
        CK_ULONG vl = 16;
        CK_ATTRIBUTE a = {CKA_VALUE_LEN, &vl, sizeof(vl)};
        CK_OBJECT_HANDLE h;
        CK_MECHANISM genp = {CKM_AES_KEY_GEN, buf, 4};

        EXPECT(p11->C_GenerateKey(s, &unknown, &a, 1, &h),
               CKR_MECHANISM_INVALID);
        EXPECT(p11->C_GenerateKey(s, &ecb, &a, 1, &h), CKR_MECHANISM_INVALID);
        EXPECT(p11->C_GenerateKey(s, &genp, &a, 1, &h),
               CKR_MECHANISM_PARAM_INVALID);
    }
    /* AES-GCM parameters (v3.0 Current Mechanisms §2.12.3). */
    EXPECT(p11->C_EncryptInit(s, &gcm_null, dek), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(p11->C_EncryptInit(s, &gcm_short, dek), CKR_MECHANISM_PARAM_INVALID);
    gp.ulIvLen = 0;
    EXPECT(p11->C_EncryptInit(s, &gcm, dek), CKR_MECHANISM_PARAM_INVALID);
    gp.ulIvLen = 12;
    gp.pIv = NULL;
    EXPECT(p11->C_EncryptInit(s, &gcm, dek), CKR_MECHANISM_PARAM_INVALID);
    gp.pIv = gcm_iv;
    gp.ulTagBits = 129;
    EXPECT(p11->C_EncryptInit(s, &gcm, dek), CKR_MECHANISM_PARAM_INVALID);
    gp.ulTagBits = 1024;
    EXPECT(p11->C_DecryptInit(s, &gcm, dek), CKR_MECHANISM_PARAM_INVALID);
    gp.ulTagBits = 128;
    gp.ulAADLen = 5;
    EXPECT(p11->C_EncryptInit(s, &gcm, dek), CKR_MECHANISM_PARAM_INVALID);
    gp.ulAADLen = 0;
    /* CBC IV of 15 bytes, or none. */
    EXPECT(p11->C_EncryptInit(s, &cbc15, dek), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(p11->C_DecryptInit(s, &cbcnull, dek), CKR_MECHANISM_PARAM_INVALID);
    /* ECB with a parameter. */
    {
        CK_MECHANISM ecbp = {CKM_AES_ECB, iv16, 16};
        EXPECT(p11->C_EncryptInit(s, &ecbp, dek), CKR_MECHANISM_PARAM_INVALID);
    }
    /* No refused init left an operation behind. */
    EXPECT(p11->C_EncryptInit(s, &gcm, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Encrypt(s, buf, 10, buf + 100, &len), CKR_OK);
    CHECK(len == 26, "GCM ciphertext length %lu", (unsigned long)len);
    /* ECB / CBC with non-block-multiple input. */
    EXPECT(p11->C_EncryptInit(s, &ecb, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Encrypt(s, buf, 15, buf + 100, &len), CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_Encrypt(s, buf, 16, buf + 100, &len),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DecryptInit(s, &ecb, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Decrypt(s, buf, 17, buf + 100, &len),
           CKR_ENCRYPTED_DATA_LEN_RANGE);
    EXPECT(p11->C_EncryptInit(s, &cbc, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_EncryptUpdate(s, buf, 7, buf + 100, &len), CKR_OK);
    CHECK(len == 0, "CBC update of 7 bytes gave %lu", (unsigned long)len);
    len = sizeof(buf);
    EXPECT(p11->C_EncryptFinal(s, buf + 100, &len), CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_DecryptInit(s, &cbc, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_DecryptUpdate(s, buf, 20, buf + 100, &len), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_DecryptFinal(s, buf + 100, &len),
           CKR_ENCRYPTED_DATA_LEN_RANGE);
    /* GCM decrypt shorter than the tag. */
    EXPECT(p11->C_DecryptInit(s, &gcm, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Decrypt(s, buf, 15, buf + 100, &len),
           CKR_ENCRYPTED_DATA_LEN_RANGE);
    /* GCM decrypt with a bad tag. */
    EXPECT(p11->C_DecryptInit(s, &gcm, dek), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Decrypt(s, buf, 40, buf + 100, &len),
           CKR_ENCRYPTED_DATA_INVALID);

    /* RSA: OAEP-256 takes at most k - 66 bytes (RFC 8017 §7.1.1); checked
     * locally, for the length query too. */
    EXPECT(p11->C_EncryptInit(s, &oaep, pub), CKR_OK);
    len = 0;
    EXPECT(p11->C_Encrypt(s, buf, 256 - 65, NULL, &len), CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_EncryptInit(s, &oaep, pub), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Encrypt(s, buf, 256 - 65, buf + 300, &len),
           CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_EncryptInit(s, &oaep, pub), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Encrypt(s, buf, 256 - 66, buf + 300, &len), CKR_OK);
    CHECK(len == 256, "OAEP ciphertext length %lu", (unsigned long)len);
    EXPECT(p11->C_EncryptInit(s, &pkcs, pub), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Encrypt(s, buf, 256 - 10, buf + 300, &len),
           CKR_DATA_LEN_RANGE);
    /* RSA decrypt of a wrong-size ciphertext never reaches the vault. */
    EXPECT(p11->C_DecryptInit(s, &oaep, priv), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_Decrypt(s, buf, 255, buf + 300, &len),
           CKR_ENCRYPTED_DATA_LEN_RANGE);
    /* Multi-part RSA is not offered (token/README.md). */
    EXPECT(p11->C_EncryptInit(s, &oaep, pub), CKR_OK);
    len = sizeof(buf);
    EXPECT(p11->C_EncryptUpdate(s, buf, 10, buf + 300, &len),
           CKR_MECHANISM_INVALID);

    /* Wrong key for the mechanism / usage. */
    EXPECT(p11->C_DecryptInit(s, &oaep, pub), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_EncryptInit(s, &oaep, priv), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_EncryptInit(s, &oaep, dek), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_EncryptInit(s, &gcm, pub), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_DecryptInit(s, &ecb, priv), CKR_KEY_TYPE_INCONSISTENT);
    {
        CK_BBOOL f = CK_FALSE;
        CK_ATTRIBUTE noenc = {CKA_ENCRYPT, &f, 1};
        CK_OBJECT_HANDLE k2 = gen_aes(s);

        EXPECT(p11->C_SetAttributeValue(s, k2, &noenc, 1), CKR_OK);
        EXPECT(p11->C_EncryptInit(s, &ecb, k2), CKR_KEY_FUNCTION_NOT_PERMITTED);
        EXPECT(p11->C_DecryptInit(s, &ecb, k2), CKR_OK);
        len = sizeof(buf);
        EXPECT(p11->C_Decrypt(s, buf, 16, buf + 100, &len), CKR_OK);
        EXPECT(p11->C_DestroyObject(s, k2), CKR_OK);
    }
    /* C_WrapKey of a non-extractable key; of a data object; of a vault
     * key; with a wrapping key whose CKA_WRAP is FALSE (the private key
     * object has none), with an AES session key (not a vault key). */
    len = 0;
    EXPECT(p11->C_WrapKey(s, &oaep, pub, dek_ne, NULL, &len),
           CKR_KEY_UNEXTRACTABLE);
    EXPECT(p11->C_WrapKey(s, &oaep, pub, priv, NULL, &len),
           CKR_KEY_NOT_WRAPPABLE);
    EXPECT(p11->C_WrapKey(s, &oaep, pub, data, NULL, &len),
           CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_WrapKey(s, &oaep, priv, dek, NULL, &len),
           CKR_KEY_FUNCTION_NOT_PERMITTED);
    EXPECT(p11->C_WrapKey(s, &kw, dek, dek_ne, NULL, &len),
           CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_WrapKey(s, &kw, pub, dek, NULL, &len),
           CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_UnwrapKey(s, &oaep, pub, buf, 256, NULL, 0, &len),
           CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 255, NULL, 0, &len),
           CKR_WRAPPED_KEY_LEN_RANGE);
    /* Bad C_UnwrapKey templates are refused before the vault is asked
     * (abuse.sh mech checks no unwrapkey call): v3.0 §5.18.3. */
    {
        CK_OBJECT_CLASS pk = CKO_PRIVATE_KEY, sk = CKO_SECRET_KEY;
        CK_KEY_TYPE rsa = CKK_RSA;
        CK_BBOOL t = CK_TRUE;
        CK_ATTRIBUTE cls = {CKA_CLASS, &pk, sizeof(pk)};
        CK_ATTRIBUTE cls3 = {CKA_CLASS, &sk, 3};
        CK_ATTRIBUTE kt = {CKA_KEY_TYPE, &rsa, sizeof(rsa)};
        CK_ATTRIBUTE local = {CKA_LOCAL, &t, sizeof(t)};
        CK_ATTRIBUTE unknown_a = {0x7fff1234UL, &t, sizeof(t)};
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

        EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 256, &cls, 1, &h),
               CKR_TEMPLATE_INCONSISTENT);
        EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 256, &cls3, 1, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 256, &kt, 1, &h),
               CKR_TEMPLATE_INCONSISTENT);
        EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 256, &local, 1, &h),
               CKR_ATTRIBUTE_READ_ONLY);
        EXPECT(p11->C_UnwrapKey(s, &oaep, priv, buf, 256, &unknown_a, 1, &h),
               CKR_ATTRIBUTE_TYPE_INVALID);
        CHECK(h == CK_INVALID_HANDLE, "failed unwrap set a handle");
    }
    /* OAEP parameters the vault cannot honour: NULL, short, a label,
     * mismatched hash and MGF (v3.0 §5.1 CKR_MECHANISM_PARAM_INVALID). */
    {
        CK_BYTE label[4] = "lbl";
        CK_RSA_PKCS_OAEP_PARAMS lp = {CKM_SHA256, CKG_MGF1_SHA256,
                                      CKZ_DATA_SPECIFIED, label, sizeof(label)};
        CK_RSA_PKCS_OAEP_PARAMS mix = {CKM_SHA256, CKG_MGF1_SHA1,
                                       CKZ_DATA_SPECIFIED, NULL, 0};
        CK_MECHANISM bad[] = {
            {CKM_RSA_PKCS_OAEP, NULL, 0},
            {CKM_RSA_PKCS_OAEP, &op, sizeof(op) - 1},
            {CKM_RSA_PKCS_OAEP, &lp, sizeof(lp)},
            {CKM_RSA_PKCS_OAEP, &mix, sizeof(mix)},
        };
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

        for (size_t i = 0; i < NELEM(bad); i++) {
            len = 0;
            EXPECT(p11->C_WrapKey(s, &bad[i], pub, dek, NULL, &len),
                   CKR_MECHANISM_PARAM_INVALID);
            EXPECT(p11->C_UnwrapKey(s, &bad[i], priv, buf, 256, NULL, 0, &h),
                   CKR_MECHANISM_PARAM_INVALID);
            EXPECT(p11->C_EncryptInit(s, &bad[i], pub),
                   CKR_MECHANISM_PARAM_INVALID);
            EXPECT(p11->C_DecryptInit(s, &bad[i], priv),
                   CKR_MECHANISM_PARAM_INVALID);
        }
    }
    /* A key that must only be wrapped by a trusted key: none is trusted
     * here (no SO), so it is never wrappable (v3.0 §4.10). */
    {
        CK_BBOOL t = CK_TRUE;
        CK_ULONG vl = 16;
        CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
        CK_ATTRIBUTE a[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                            {CKA_WRAP_WITH_TRUSTED, &t, 1},
                            {CKA_EXTRACTABLE, &t, 1}};
        CK_OBJECT_HANDLE k3 = CK_INVALID_HANDLE;

        EXPECT(p11->C_GenerateKey(s, &gen, a, 3, &k3), CKR_OK);
        EXPECT(p11->C_WrapKey(s, &oaep, pub, k3, NULL, &len),
               CKR_KEY_NOT_WRAPPABLE);
    }
    /* The session still works. */
    len = 0;
    EXPECT(p11->C_WrapKey(s, &oaep, pub, dek, NULL, &len), CKR_OK);
    CHECK(len == 256, "wrap length %lu", (unsigned long)len);
    /* One byte short: CKR_BUFFER_TOO_SMALL with the exact length, and no
     * vault call (v3.0 §5.2). */
    len = 255;
    EXPECT(p11->C_WrapKey(s, &oaep, pub, dek, buf, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 256, "wrap length after short buffer %lu", (unsigned long)len);
    (void)dek_nowrap;
    EXPECT(p11->C_CloseSession(s), CKR_OK);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* ---- group opstate ---- */

static int group_opstate(void)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek, h;
    CK_BYTE pt[64], ct[128], out[128], iv16[16] = {9};
    CK_BYTE gcm_iv[12] = {7};
    CK_ULONG len, n;
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM cbcpad = {CKM_AES_CBC_PAD, iv16, sizeof(iv16)};
    CK_GCM_PARAMS gp = {gcm_iv, sizeof(gcm_iv), 96, NULL, 0, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};

    init_or_die();
    s = open_rw();
    dek = gen_aes(s);
    for (size_t i = 0; i < sizeof(pt); i++) {
        pt[i] = (CK_BYTE)i;
    }
    /* C_DecryptUpdate into a short buffer: CKR_BUFFER_TOO_SMALL with the
     * exact length, and the operation goes on (v3.0 §5.2). */
    EXPECT(p11->C_EncryptInit(s, &ecb, dek), CKR_OK);
    len = sizeof(ct);
    EXPECT(p11->C_Encrypt(s, pt, 32, ct, &len), CKR_OK);
    EXPECT(p11->C_DecryptInit(s, &ecb, dek), CKR_OK);
    len = 31;
    EXPECT(p11->C_DecryptUpdate(s, ct, 32, out, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 32, "ECB decrypt update needs %lu", (unsigned long)len);
    EXPECT(p11->C_DecryptUpdate(s, ct, 32, out, &len), CKR_OK);
    CHECK(len == 32 && memcmp(out, pt, 32) == 0, "ECB decrypt update");
    len = sizeof(out);
    EXPECT(p11->C_DecryptFinal(s, out, &len), CKR_OK);
    CHECK(len == 0, "ECB decrypt final %lu", (unsigned long)len);
    /* Without Init (v3.0 §5.8: CKR_OPERATION_NOT_INITIALIZED). */
    len = sizeof(ct);
    EXPECT(p11->C_Encrypt(s, pt, 16, ct, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_EncryptUpdate(s, pt, 16, ct, &len),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_EncryptFinal(s, ct, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_Decrypt(s, pt, 16, ct, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DecryptUpdate(s, pt, 16, ct, &len),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DecryptFinal(s, ct, &len), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_FindObjects(s, &h, 1, &n), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    /* Init twice. */
    EXPECT(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT(p11->C_FindObjectsInit(s, NULL, 0), CKR_OPERATION_ACTIVE);
    EXPECT(p11->C_FindObjectsFinal(s), CKR_OK);
    EXPECT(p11->C_EncryptInit(s, &ecb, dek), CKR_OK);
    EXPECT(p11->C_EncryptInit(s, &ecb, dek), CKR_OPERATION_ACTIVE);
    /* Encrypt active: decrypt is another operation (one at a time here). */
    EXPECT(p11->C_DecryptInit(s, &ecb, dek), CKR_OPERATION_ACTIVE);
    EXPECT(p11->C_Decrypt(s, pt, 16, ct, &len), CKR_OPERATION_NOT_INITIALIZED);
    /* NULL output: the length, operation stays active. */
    len = 0;
    EXPECT(p11->C_Encrypt(s, pt, 32, NULL, &len), CKR_OK);
    CHECK(len == 32, "ECB length query %lu", (unsigned long)len);
    /* Short buffer: exact length, operation stays active. */
    len = 31;
    EXPECT(p11->C_Encrypt(s, pt, 32, ct, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 32, "ECB short buffer length %lu", (unsigned long)len);
    /* Mixing single- and multi-part after a short buffer is refused and
     * does not end the operation. */
    len = sizeof(out);
    EXPECT(p11->C_EncryptUpdate(s, pt, 16, out, &len), CKR_OPERATION_ACTIVE);
    len = sizeof(out);
    EXPECT(p11->C_EncryptFinal(s, out, &len), CKR_OPERATION_ACTIVE);
    len = 32;
    EXPECT(p11->C_Encrypt(s, pt, 32, ct, &len), CKR_OK);
    CHECK(len == 32, "ECB encrypt %lu", (unsigned long)len);
    /* After single-part C_Encrypt the operation is over. */
    len = sizeof(out);
    EXPECT(p11->C_EncryptUpdate(s, pt, 16, out, &len),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_Encrypt(s, pt, 16, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    /* After C_EncryptUpdate, single-part C_Encrypt is refused. */
    EXPECT(p11->C_EncryptInit(s, &ecb, dek), CKR_OK);
    len = sizeof(out);
    EXPECT(p11->C_EncryptUpdate(s, pt, 16, out, &len), CKR_OK);
    len = sizeof(out);
    EXPECT(p11->C_Encrypt(s, pt, 16, out + 16, &len), CKR_OPERATION_ACTIVE);
    len = sizeof(out);
    EXPECT(p11->C_EncryptUpdate(s, pt + 16, 16, out + 16, &len), CKR_OK);
    /* Final: NULL gives the length, short buffer keeps it active. */
    len = 99;
    EXPECT(p11->C_EncryptFinal(s, NULL, &len), CKR_OK);
    CHECK(len == 0, "ECB final length %lu", (unsigned long)len);
    len = 0;
    EXPECT(p11->C_EncryptFinal(s, out + 32, &len), CKR_OK);
    CHECK(memcmp(out, ct, 32) == 0, "multi-part ECB differs from single");
    EXPECT(p11->C_EncryptFinal(s, out + 32, &len),
           CKR_OPERATION_NOT_INITIALIZED);
    /* CBC-PAD: update short buffer, final short buffer. */
    EXPECT(p11->C_EncryptInit(s, &cbcpad, dek), CKR_OK);
    len = 15;
    EXPECT(p11->C_EncryptUpdate(s, pt, 20, out, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 16, "CBC-PAD update needs %lu", (unsigned long)len);
    len = 16;
    EXPECT(p11->C_EncryptUpdate(s, pt, 20, out, &len), CKR_OK);
    len = 0;
    EXPECT(p11->C_EncryptFinal(s, NULL, &len), CKR_OK);
    CHECK(len == 16, "CBC-PAD final length %lu", (unsigned long)len);
    len = 3;
    EXPECT(p11->C_EncryptFinal(s, out + 16, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 16, "CBC-PAD final short buffer %lu", (unsigned long)len);
    EXPECT(p11->C_EncryptFinal(s, out + 16, &len), CKR_OK);
    CHECK(len == 16, "CBC-PAD final %lu", (unsigned long)len);
    /* The same ciphertext decrypts (short buffer on the way). */
    EXPECT(p11->C_DecryptInit(s, &cbcpad, dek), CKR_OK);
    len = 0;
    EXPECT(p11->C_Decrypt(s, out, 32, NULL, &len), CKR_OK);
    CHECK(len >= 20, "CBC-PAD decrypt bound %lu", (unsigned long)len);
    len = 5;
    EXPECT(p11->C_Decrypt(s, out, 32, ct, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 20, "CBC-PAD decrypt exact %lu", (unsigned long)len);
    len = 20;
    EXPECT(p11->C_Decrypt(s, out, 32, ct, &len), CKR_OK);
    CHECK(len == 20 && memcmp(ct, pt, 20) == 0, "CBC-PAD round trip");
    /* GCM single part: NULL, short, right. */
    EXPECT(p11->C_EncryptInit(s, &gcm, dek), CKR_OK);
    len = 0;
    EXPECT(p11->C_Encrypt(s, pt, 33, NULL, &len), CKR_OK);
    CHECK(len == 49, "GCM length %lu", (unsigned long)len);
    len = 48;
    EXPECT(p11->C_Encrypt(s, pt, 33, ct, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 49, "GCM short %lu", (unsigned long)len);
    EXPECT(p11->C_Encrypt(s, pt, 33, ct, &len), CKR_OK);
    EXPECT(p11->C_DecryptInit(s, &gcm, dek), CKR_OK);
    len = sizeof(out);
    EXPECT(p11->C_DecryptUpdate(s, ct, 20, out, &len), CKR_OK);
    CHECK(len == 0, "GCM decrypt update released %lu", (unsigned long)len);
    len = sizeof(out);
    EXPECT(p11->C_DecryptUpdate(s, ct + 20, 29, out, &len), CKR_OK);
    len = 1;
    EXPECT(p11->C_DecryptFinal(s, out, &len), CKR_BUFFER_TOO_SMALL);
    CHECK(len == 33, "GCM decrypt final needs %lu", (unsigned long)len);
    EXPECT(p11->C_DecryptFinal(s, out, &len), CKR_OK);
    CHECK(len == 33 && memcmp(out, pt, 33) == 0, "GCM multi-part decrypt");
    /* Login context-specific with nothing active. */
    EXPECT(p11->C_Login(s, CKU_CONTEXT_SPECIFIC, NULL, 0),
           CKR_OPERATION_NOT_INITIALIZED);
    /* No SO role here: its PIN is locked (v3.0 §5.6, §3.2). */
    EXPECT(p11->C_Login(s, CKU_SO, NULL, 0), CKR_PIN_LOCKED);
    {
        CK_TOKEN_INFO ti;

        EXPECT(p11->C_GetTokenInfo(slot0, &ti), CKR_OK);
        CHECK(ti.flags & CKF_SO_PIN_LOCKED, "CKF_SO_PIN_LOCKED not set");
    }
    EXPECT(p11->C_Login(s, 42, NULL, 0), CKR_USER_TYPE_INVALID);
    EXPECT(p11->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    EXPECT(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR *)"x", 1), CKR_OK);
    EXPECT(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR *)"x", 1),
           CKR_USER_ALREADY_LOGGED_IN);
    EXPECT(p11->C_Logout(s), CKR_OK);
    /* Closing a session with an active operation frees it (ASan). */
    EXPECT(p11->C_EncryptInit(s, &gcm, dek), CKR_OK);
    EXPECT(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT(p11->C_CloseSession(s), CKR_OK);
    /* And C_Finalize with one active. */
    s = open_rw();
    dek = gen_aes(s);
    EXPECT(p11->C_DecryptInit(s, &cbcpad, dek), CKR_OK);
    len = sizeof(out);
    EXPECT(p11->C_DecryptUpdate(s, out, 16, out + 32, &len), CKR_OK);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* ---- group getattr: every CKA_* on every object ---- */

static size_t fixed_size(CK_ATTRIBUTE_TYPE t)
{
    switch (t) {
    case CKA_TOKEN:
    case CKA_PRIVATE:
    case CKA_TRUSTED:
    case CKA_SENSITIVE:
    case CKA_ENCRYPT:
    case CKA_DECRYPT:
    case CKA_WRAP:
    case CKA_UNWRAP:
    case CKA_SIGN:
    case CKA_SIGN_RECOVER:
    case CKA_VERIFY:
    case CKA_VERIFY_RECOVER:
    case CKA_DERIVE:
    case CKA_EXTRACTABLE:
    case CKA_LOCAL:
    case CKA_NEVER_EXTRACTABLE:
    case CKA_ALWAYS_SENSITIVE:
    case CKA_MODIFIABLE:
    case CKA_COPYABLE:
    case CKA_DESTROYABLE:
    case CKA_ALWAYS_AUTHENTICATE:
    case CKA_WRAP_WITH_TRUSTED:
        return sizeof(CK_BBOOL);
    case CKA_CLASS:
    case CKA_KEY_TYPE:
    case CKA_MODULUS_BITS:
    case CKA_VALUE_LEN:
    case CKA_KEY_GEN_MECHANISM:
    case CKA_CERTIFICATE_TYPE:
    case CKA_CERTIFICATE_CATEGORY:
        return sizeof(CK_ULONG);
    default:
        return 0;
    }
}

static void getattr_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    size_t n = NELEM(all_attrs);
    CK_ATTRIBUTE *t = calloc(n, sizeof(*t));
    CK_RV rv;
    size_t avail = 0;

    for (size_t i = 0; i < n; i++) {
        t[i].type = all_attrs[i];
    }
    rv = p11->C_GetAttributeValue(s, o, t, (CK_ULONG)n);
    CHECK(rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE
              || rv == CKR_ATTRIBUTE_TYPE_INVALID,
          "object 0x%lx: length query gave 0x%lx", (unsigned long)o,
          (unsigned long)rv);
    for (size_t i = 0; i < n; i++) {
        size_t fs = fixed_size(t[i].type);

        if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
            continue;
        }
        avail++;
        CHECK(t[i].ulValueLen < 1u << 20, "attr 0x%lx len %lu",
              (unsigned long)t[i].type, (unsigned long)t[i].ulValueLen);
        CHECK(fs == 0 || t[i].ulValueLen == fs,
              "object 0x%lx attr 0x%lx: length %lu, want %zu", (unsigned long)o,
              (unsigned long)t[i].type, (unsigned long)t[i].ulValueLen, fs);
    }
    CHECK(avail >= 8, "object 0x%lx shows only %zu attributes",
          (unsigned long)o, avail);
    /* Exact buffers (with a guard byte after each). */
    for (size_t i = 0; i < n; i++) {
        if (t[i].ulValueLen != CK_UNAVAILABLE_INFORMATION
            && t[i].ulValueLen < 1u << 20) {
            t[i].pValue = malloc(t[i].ulValueLen + 1);
            ((CK_BYTE *)t[i].pValue)[t[i].ulValueLen] = 0xEE;
        } else {
            t[i].pValue = malloc(8);
            t[i].ulValueLen = 8;
            memset(t[i].pValue, 0xEE, 8);
        }
    }
    {
        CK_ULONG *want = calloc(n, sizeof(*want));

        for (size_t i = 0; i < n; i++) {
            want[i] = t[i].ulValueLen;
        }
        rv = p11->C_GetAttributeValue(s, o, t, (CK_ULONG)n);
        CHECK(rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE
                  || rv == CKR_ATTRIBUTE_TYPE_INVALID,
              "object 0x%lx: exact buffers gave 0x%lx", (unsigned long)o,
              (unsigned long)rv);
        for (size_t i = 0; i < n; i++) {
            if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
                CK_BYTE *p = t[i].pValue;
                CHECK(p[0] == 0xEE && p[7] == 0xEE,
                      "attr 0x%lx unavailable but written",
                      (unsigned long)t[i].type);
                continue;
            }
            CHECK(t[i].ulValueLen == want[i], "attr 0x%lx: length %lu then %lu",
                  (unsigned long)t[i].type, (unsigned long)want[i],
                  (unsigned long)t[i].ulValueLen);
            CHECK(((CK_BYTE *)t[i].pValue)[want[i]] == 0xEE,
                  "attr 0x%lx: wrote past its length",
                  (unsigned long)t[i].type);
            if (fixed_size(t[i].type) == sizeof(CK_BBOOL)) {
                CK_BBOOL b = *(CK_BBOOL *)t[i].pValue;
                CHECK(b == CK_TRUE || b == CK_FALSE, "attr 0x%lx: CK_BBOOL %u",
                      (unsigned long)t[i].type, b);
            }
        }
        free(want);
    }
    /* Buffers one byte short: CKR_BUFFER_TOO_SMALL (or the stronger code),
     * each short entry CK_UNAVAILABLE_INFORMATION. */
    for (size_t i = 0; i < n; i++) {
        if (t[i].ulValueLen != CK_UNAVAILABLE_INFORMATION
            && t[i].ulValueLen > 0) {
            CK_ATTRIBUTE one = {t[i].type, t[i].pValue, t[i].ulValueLen - 1};

            EXPECT(p11->C_GetAttributeValue(s, o, &one, 1),
                   CKR_BUFFER_TOO_SMALL);
            CHECK(one.ulValueLen == CK_UNAVAILABLE_INFORMATION,
                  "attr 0x%lx short: length %lu", (unsigned long)t[i].type,
                  (unsigned long)one.ulValueLen);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(t[i].pValue);
    }
    free(t);
}

/* Every key answers the common key attributes (v3.0 §4.7) and those of its
 * class (§4.8 public, §4.9 private, §4.10 secret). */
static void key_attrs_answered(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    static const CK_ATTRIBUTE_TYPE common[] = {CKA_KEY_TYPE,
                                               CKA_ID,
                                               CKA_START_DATE,
                                               CKA_END_DATE,
                                               CKA_DERIVE,
                                               CKA_LOCAL,
                                               CKA_KEY_GEN_MECHANISM,
                                               CKA_ALLOWED_MECHANISMS,
                                               CKA_MODIFIABLE,
                                               CKA_COPYABLE,
                                               CKA_DESTROYABLE,
                                               CKA_PRIVATE};
    static const CK_ATTRIBUTE_TYPE pub[] = {
        CKA_SUBJECT, CKA_ENCRYPT, CKA_VERIFY,        CKA_VERIFY_RECOVER,
        CKA_WRAP,    CKA_TRUSTED, CKA_WRAP_TEMPLATE, CKA_PUBLIC_KEY_INFO};
    static const CK_ATTRIBUTE_TYPE priv[] = {
        CKA_SUBJECT,           CKA_SENSITIVE,
        CKA_DECRYPT,           CKA_SIGN,
        CKA_SIGN_RECOVER,      CKA_UNWRAP,
        CKA_EXTRACTABLE,       CKA_ALWAYS_SENSITIVE,
        CKA_NEVER_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED,
        CKA_UNWRAP_TEMPLATE,   CKA_ALWAYS_AUTHENTICATE,
        CKA_PUBLIC_KEY_INFO};
    static const CK_ATTRIBUTE_TYPE sec[] = {CKA_SENSITIVE,
                                            CKA_ENCRYPT,
                                            CKA_DECRYPT,
                                            CKA_SIGN,
                                            CKA_VERIFY,
                                            CKA_WRAP,
                                            CKA_UNWRAP,
                                            CKA_EXTRACTABLE,
                                            CKA_ALWAYS_SENSITIVE,
                                            CKA_NEVER_EXTRACTABLE,
                                            CKA_WRAP_WITH_TRUSTED,
                                            CKA_TRUSTED,
                                            CKA_WRAP_TEMPLATE,
                                            CKA_UNWRAP_TEMPLATE};
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE c = {CKA_CLASS, &cls, sizeof(cls)};
    const CK_ATTRIBUTE_TYPE *own = NULL;
    size_t n_own = 0;

    EXPECT(p11->C_GetAttributeValue(s, o, &c, 1), CKR_OK);
    if (cls == CKO_PUBLIC_KEY) {
        own = pub;
        n_own = NELEM(pub);
    } else if (cls == CKO_PRIVATE_KEY) {
        own = priv;
        n_own = NELEM(priv);
    } else if (cls == CKO_SECRET_KEY) {
        own = sec;
        n_own = NELEM(sec);
    } else {
        return;
    }
    for (size_t i = 0; i < NELEM(common) + n_own; i++) {
        CK_ATTRIBUTE a = {
            i < NELEM(common) ? common[i] : own[i - NELEM(common)], NULL, 0};

        EXPECT(p11->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
        CHECK(a.ulValueLen != CK_UNAVAILABLE_INFORMATION,
              "object 0x%lx class %lu: attribute 0x%lx not answered",
              (unsigned long)o, (unsigned long)cls, (unsigned long)a.type);
    }
}

static int group_getattr(void)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE objs[256];
    CK_ULONG n = 0;

    init_or_die();
    s = open_rw();
    (void)find_one(s, CKO_PUBLIC_KEY);
    (void)gen_aes(s);
    (void)gen_aes_ex(s, 16, CK_FALSE, CK_TRUE);
    (void)make_data(s);
    {
        /* A token object with a readable value (vault unwrap on read). */
        CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
        CK_ULONG vl = 24;
        CK_BBOOL t = CK_TRUE, f = CK_FALSE;
        CK_ATTRIBUTE a[] = {{CKA_VALUE_LEN, &vl, sizeof(vl)},
                            {CKA_TOKEN, &t, 1},
                            {CKA_SENSITIVE, &f, 1}};
        CK_OBJECT_HANDLE tk = CK_INVALID_HANDLE;

        EXPECT(p11->C_GenerateKey(s, &gen, a, 3, &tk), CKR_OK);
    }
    {
        /* An imported public key (the vault key's own parts). */
        CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY;
        CK_KEY_TYPE rsa = CKK_RSA;
        CK_BYTE nb[1024], eb[16];
        CK_ATTRIBUTE q[] = {{CKA_MODULUS, nb, sizeof(nb)},
                            {CKA_PUBLIC_EXPONENT, eb, sizeof(eb)}};
        CK_OBJECT_HANDLE imp = CK_INVALID_HANDLE;

        EXPECT(p11->C_GetAttributeValue(s, find_one(s, CKO_PUBLIC_KEY), q, 2),
               CKR_OK);
        {
            CK_ATTRIBUTE a[] = {{CKA_CLASS, &pubc, sizeof(pubc)},
                                {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
                                q[0],
                                q[1]};

            EXPECT(p11->C_CreateObject(s, a, 4, &imp), CKR_OK);
        }
    }
    EXPECT(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    EXPECT(p11->C_FindObjects(s, objs, NELEM(objs), &n), CKR_OK);
    EXPECT(p11->C_FindObjectsFinal(s), CKR_OK);
    CHECK(n >= 7, "only %lu objects", (unsigned long)n);
    for (CK_ULONG i = 0; i < n; i++) {
        getattr_object(s, objs[i]);
        key_attrs_answered(s, objs[i]);
    }
    EXPECT(p11->C_GetAttributeValue(s, objs[0], NULL, 0), CKR_OK);
    EXPECT(p11->C_CloseSession(s), CKR_OK);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    printf("getattr: %lu objects x %zu attributes\n", (unsigned long)n,
           NELEM(all_attrs));
    return failures ? 1 : 0;
}

/* ---- group threads: 8 threads on ONE session ---- */

struct thr {
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek;
    int iters;
    int bad;
    int ok;
    CK_RV bad_rv;
    int fin; /* C_Finalize may happen meanwhile */
};

/* Sharing one session between threads is allowed (v3.0 §5.6, the
 * application serialises); a collision must come back as a clean code,
 * never a crash. */
static bool benign(CK_RV rv)
{
    return rv == CKR_OK || rv == CKR_OPERATION_ACTIVE
           || rv == CKR_OPERATION_NOT_INITIALIZED;
}

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_BYTE in[32] = {1}, out[64];
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n, len;
    CK_RV rv;

    for (int i = 0; i < t->iters; i++) {
        CK_RV rvs[8];
        int k = 0;

        rvs[k++] = rv = p11->C_FindObjectsInit(t->s, NULL, 0);
        rvs[k++] = p11->C_FindObjects(t->s, h, 8, &n);
        rvs[k++] = p11->C_FindObjectsFinal(t->s);
        rvs[k++] = rv = p11->C_EncryptInit(t->s, &ecb, t->dek);
        len = sizeof(out);
        rvs[k++] = rv = p11->C_Encrypt(t->s, in, sizeof(in), out, &len);
        len = sizeof(out);
        rvs[k++] = p11->C_EncryptUpdate(t->s, in, 16, out, &len);
        {
            /* Calls that read session state without claiming it. */
            CK_SESSION_INFO si;
            CK_BYTE lbl[8];
            CK_ATTRIBUTE a = {CKA_VALUE_LEN, lbl, sizeof(lbl)};
            CK_RV r = p11->C_Login(t->s, CKU_CONTEXT_SPECIFIC, NULL, 0);

            if (r != CKR_OPERATION_NOT_INITIALIZED
                && r != CKR_USER_NOT_LOGGED_IN) {
                t->bad++;
                t->bad_rv = r;
            }
            rvs[k++] = p11->C_GetSessionInfo(t->s, &si);
            rvs[k++] = p11->C_GetAttributeValue(t->s, t->dek, &a, 1);
        }
        for (int j = 0; j < k; j++) {
            /* Progress: some call got through (which ones depends on the
             * interleaving; under ASan, C_Encrypt may never win). */
            t->ok += rvs[j] == CKR_OK;
            if (!benign(rvs[j])) {
                t->bad++;
                t->bad_rv = rvs[j];
            }
        }
    }
    return NULL;
}

static void *closer_main(void *arg)
{
    struct thr *t = arg;

    for (int i = 0; i < t->iters; i++) {
        CK_SESSION_HANDLE x = CK_INVALID_HANDLE;

        if (p11->C_OpenSession(slot0, CKF_SERIAL_SESSION, NULL, NULL, &x)
            != CKR_OK) {
            t->bad++;
        }
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    struct thr *t = arg;
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_BYTE in[16] = {2}, out[32];
    CK_ULONG len;

    for (int i = 0; i < t->iters; i++) {
        CK_SESSION_HANDLE x = CK_INVALID_HANDLE;
        CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
        CK_ULONG vl = 16;
        CK_ATTRIBUTE a = {CKA_VALUE_LEN, &vl, sizeof(vl)};
        CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
        CK_RV rv =
            p11->C_OpenSession(slot0, CKF_SERIAL_SESSION, NULL, NULL, &x);

        if (rv == CKR_OK) {
            rv = p11->C_GenerateKey(x, &gen, &a, 1, &k);
        }
        if (rv == CKR_OK) {
            rv = p11->C_EncryptInit(x, &ecb, k);
        }
        if (rv == CKR_OK) {
            len = sizeof(out);
            rv = p11->C_Encrypt(x, in, 16, out, &len);
        }
        /* C_CloseAllSessions from the other thread may close x at any
         * point: then every later call says so and nothing else. */
        if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID
            && rv != CKR_KEY_HANDLE_INVALID && rv != CKR_OBJECT_HANDLE_INVALID
            && !(t->fin && rv == CKR_CRYPTOKI_NOT_INITIALIZED)) {
            t->bad++;
            t->bad_rv = rv;
        }
        (void)p11->C_CloseSession(x);
    }
    return NULL;
}

static int group_threads(void)
{
    enum { NT = 8 };
    pthread_t th[NT];
    struct thr st[NT];
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE dek;
    int total_ok = 0;

    init_or_die();
    s = open_rw();
    dek = gen_aes(s);
    for (int i = 0; i < NT; i++) {
        st[i] = (struct thr){s, dek, 300, 0, 0, CKR_OK, 0};
        pthread_create(&th[i], NULL, thr_main, &st[i]);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK(st[i].bad == 0, "thread %d: %d unexpected codes (last 0x%lx)", i,
              st[i].bad, (unsigned long)st[i].bad_rv);
        total_ok += st[i].ok;
    }
    CHECK(total_ok > 0, "no call from any thread succeeded");
    /* The session is usable afterwards (nothing left claimed). */
    {
        CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
        CK_BYTE in[16] = {0}, out[16];
        CK_ULONG len = sizeof(out);
        CK_RV rv = p11->C_EncryptInit(s, &ecb, dek);

        /* A thread may have left an operation initialised, single- or
         * multi-part (another thread's C_EncryptUpdate). */
        if (rv == CKR_OPERATION_ACTIVE) {
            if (p11->C_Encrypt(s, in, 16, out, &len) == CKR_OPERATION_ACTIVE) {
                len = sizeof(out);
                (void)p11->C_EncryptFinal(s, out, &len);
            }
            len = sizeof(out);
            rv = p11->C_EncryptInit(s, &ecb, dek);
        }
        CHECK(rv == CKR_OK, "EncryptInit after threads: 0x%lx",
              (unsigned long)rv);
        EXPECT(p11->C_Encrypt(s, in, 16, out, &len), CKR_OK);
        rv = p11->C_FindObjectsInit(s, NULL, 0);
        if (rv == CKR_OPERATION_ACTIVE) {
            (void)p11->C_FindObjectsFinal(s);
            rv = p11->C_FindObjectsInit(s, NULL, 0);
        }
        CHECK(rv == CKR_OK, "FindObjectsInit after threads: 0x%lx",
              (unsigned long)rv);
        EXPECT(p11->C_FindObjectsFinal(s), CKR_OK);
    }
    /* C_CloseAllSessions while other threads work. */
    for (int i = 0; i < NT; i++) {
        st[i] = (struct thr){0, 0, 200, 0, 0, CKR_OK, 0};
        pthread_create(&th[i], NULL, i == 0 ? closer_main : worker_main,
                       &st[i]);
    }
    for (int i = 0; i < 50; i++) {
        EXPECT(p11->C_CloseAllSessions(slot0), CKR_OK);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK(st[i].bad == 0, "worker %d: %d unexpected codes (last 0x%lx)", i,
              st[i].bad, (unsigned long)st[i].bad_rv);
    }
    EXPECT(p11->C_CloseAllSessions(slot0), CKR_OK);
    /* C_Finalize while threads still call (v3.0 §5.4.2 leaves the result
     * undefined; here it must be clean): the module waits for calls in
     * flight, later calls get CKR_CRYPTOKI_NOT_INITIALIZED. */
    for (int i = 0; i < NT; i++) {
        st[i] = (struct thr){0, 0, 400, 0, 0, CKR_OK, 1};
        pthread_create(&th[i], NULL, worker_main, &st[i]);
    }
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK(st[i].bad == 0,
              "worker %d during C_Finalize: %d unexpected codes (last 0x%lx)",
              i, st[i].bad, (unsigned long)st[i].bad_rv);
    }
    EXPECT(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    return failures ? 1 : 0;
}

/* A thread that used the module, then outlives C_Finalize and exits. */
struct survivor {
    CK_SESSION_HANDLE s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: worked, 2: finalized, may exit */
    CK_RV rv;
};

static void *survivor_main(void *arg)
{
    struct survivor *v = arg;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG vl = 32;
    CK_ATTRIBUTE a = {CKA_VALUE_LEN, &vl, sizeof(vl)};
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    CK_BYTE rnd[32];

    /* Random bytes and a key: per-thread state inside the module's
     * OpenSSL context. */
    v->rv = p11->C_GenerateRandom(v->s, rnd, sizeof(rnd));
    if (v->rv == CKR_OK) {
        v->rv = p11->C_GenerateKey(v->s, &gen, &a, 1, &k);
    }
    pthread_mutex_lock(&v->mu);
    v->stage = 1;
    pthread_cond_broadcast(&v->cv);
    while (v->stage != 2) {
        pthread_cond_wait(&v->cv, &v->mu);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL; /* thread-exit handlers run now, after C_Finalize */
}

static void survivor_case(void)
{
    struct survivor v = {0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                         0, CKR_OK};
    pthread_t th;

    init_or_die();
    v.s = open_rw();
    pthread_create(&th, NULL, survivor_main, &v);
    pthread_mutex_lock(&v.mu);
    while (v.stage != 1) {
        pthread_cond_wait(&v.cv, &v.mu);
    }
    pthread_mutex_unlock(&v.mu);
    EXPECT(v.rv, CKR_OK);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    pthread_mutex_lock(&v.mu);
    v.stage = 2;
    pthread_cond_broadcast(&v.cv);
    pthread_mutex_unlock(&v.mu);
    pthread_join(th, NULL);
    /* And the module still works after a new C_Initialize. */
    init_or_die();
    v.s = open_rw();
    {
        CK_BYTE rnd[8];
        EXPECT(p11->C_GenerateRandom(v.s, rnd, sizeof(rnd)), CKR_OK);
    }
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
}

/* ---- group sign: signing, verification, HMAC, CTR, digests and public
 * key import under hostile arguments (abuse.sh enables tokens[].sign and
 * grants the sign permission). Every refusal has its documented CK_RV and
 * every accepted answer is checked against an independent computation. */

/* A P-256 public point (04 || X || Y) and its DER OCTET STRING. */
static const CK_BYTE p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                   0xce, 0x3d, 0x03, 0x01, 0x07};
static const CK_BYTE p256_point[] = {
    0x04, 0x41, 0x04, 0xce, 0x45, 0x16, 0x91, 0xa7, 0x83, 0xf4, 0x05, 0xb9,
    0x65, 0x23, 0x3f, 0xff, 0x96, 0x53, 0xae, 0xe3, 0x36, 0x3a, 0x5d, 0x09,
    0x31, 0x43, 0xb1, 0xff, 0x2d, 0x48, 0x54, 0x3f, 0x1b, 0xb9, 0x67, 0x62,
    0x86, 0xec, 0xf8, 0xa9, 0x29, 0xe0, 0xe5, 0x0c, 0x87, 0x76, 0xa6, 0x47,
    0x21, 0xbd, 0x30, 0x47, 0xca, 0xd0, 0x9c, 0x55, 0x07, 0x75, 0x8d, 0xdb,
    0xc2, 0x69, 0xcf, 0xcb, 0x9c, 0xaa, 0x96};

/* A P-521 point: its OCTET STRING needs the long length form (0x81). */
static const CK_BYTE p521_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const CK_BYTE p521_point[] = {
    0x04, 0x81, 0x85, 0x04, 0x01, 0x94, 0x52, 0x69, 0xb4, 0x0b, 0x3f, 0xc6,
    0x7a, 0x03, 0xc0, 0xd5, 0x25, 0x9c, 0x00, 0xbe, 0x35, 0x65, 0xd9, 0x48,
    0x52, 0xce, 0x9f, 0x33, 0x0e, 0x70, 0x24, 0xf1, 0x81, 0xe6, 0x28, 0x6f,
    0x28, 0x63, 0xed, 0x1e, 0x54, 0xa9, 0xdd, 0xde, 0x5f, 0x64, 0x95, 0xf0,
    0x11, 0x5a, 0x16, 0xdc, 0x3e, 0xfa, 0xa5, 0x01, 0x93, 0x23, 0xae, 0x80,
    0x1e, 0x1c, 0xb2, 0x45, 0xc7, 0x4d, 0x48, 0x6a, 0xac, 0x43, 0x01, 0x21,
    0x74, 0xb1, 0x0f, 0x03, 0xef, 0x15, 0x83, 0x93, 0xf3, 0xe8, 0x0d, 0x50,
    0x71, 0x89, 0x81, 0x3e, 0xb1, 0x17, 0xd9, 0xd2, 0x6f, 0x0e, 0xcd, 0x1f,
    0x16, 0x13, 0xdf, 0x87, 0x40, 0x2a, 0xa7, 0x88, 0xd7, 0x1b, 0x0b, 0x64,
    0xec, 0xc2, 0x0d, 0xf4, 0x67, 0xbe, 0xdb, 0xab, 0x57, 0x1d, 0x7e, 0x1f,
    0x06, 0x25, 0xee, 0x96, 0x59, 0xcb, 0xfc, 0x0b, 0x48, 0x5e, 0x59, 0x50,
    0x99, 0xb9, 0x38, 0x21,
};

/* ECDSA (r || s) by that key's private half over the first 32 bytes of
 * sign_import's MSG taken as the digest (made with openssl pkeyutl). */
static const CK_BYTE p256_sig[64] = {
    0x9a, 0x81, 0xd4, 0x61, 0xe0, 0x43, 0xcc, 0x58, 0xf7, 0xa2, 0x3a,
    0x90, 0xb0, 0x6b, 0x60, 0xcc, 0x22, 0x62, 0xb1, 0x97, 0x07, 0x1f,
    0xd8, 0xaa, 0x47, 0x4e, 0x6e, 0x16, 0x95, 0xdc, 0xb5, 0x19, 0x53,
    0x4c, 0x6b, 0x5d, 0x39, 0x23, 0xd4, 0x7c, 0xf8, 0x82, 0x99, 0x4d,
    0x7b, 0xe1, 0xeb, 0x85, 0x9f, 0xa5, 0x59, 0x30, 0xae, 0x1e, 0xf3,
    0x04, 0x50, 0x43, 0x59, 0x7e, 0x34, 0x35, 0x91, 0x7f};

/* C_CreateObject of an EC public key with PARAMS/POINT as given. */
static CK_RV import_ec(CK_SESSION_HANDLE s, const void *params, CK_ULONG plen,
                       const void *point, CK_ULONG len, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_EC_PARAMS, (void *)params, plen},
        {CKA_EC_POINT, (void *)point, len},
    };

    *h = CK_INVALID_HANDLE;
    return p11->C_CreateObject(s, t, NELEM(t), h);
}

/* C_CreateObject of an RSA public key (n, e big-endian). */
static CK_RV import_rsa(CK_SESSION_HANDLE s, const void *n, CK_ULONG nlen,
                        const void *e, CK_ULONG elen, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_MODULUS, (void *)n, nlen},
        {CKA_PUBLIC_EXPONENT, (void *)e, elen},
    };

    *h = CK_INVALID_HANDLE;
    return p11->C_CreateObject(s, t, NELEM(t), h);
}

/* A generic secret (HMAC) session key with VALUE; SENSITIVE as given. */
static CK_OBJECT_HANDLE hmac_key(CK_SESSION_HANDLE s, const void *value,
                                 CK_ULONG len, CK_BBOOL sensitive)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},  {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE, (void *)value, len}, {CKA_SIGN, &t, sizeof(t)},
        {CKA_VERIFY, &t, sizeof(t)},     {CKA_SENSITIVE, &sensitive, 1},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    EXPECT(p11->C_CreateObject(s, tmpl, NELEM(tmpl), &h), CKR_OK);
    return h;
}

static void sign_import(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE vpub,
                        CK_OBJECT_HANDLE vpriv)
{
    CK_BYTE n[1100];
    CK_BYTE e[8];
    CK_BYTE pt[sizeof(p256_point)];
    CK_BYTE big[1100];
    CK_ATTRIBUTE ga[] = {{CKA_MODULUS, n, sizeof(n)},
                         {CKA_PUBLIC_EXPONENT, e, sizeof(e)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CK_MECHANISM sha256rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_BYTE one = 1, three = 3;
    CK_BYTE msg[] = "signed by the vault, verified by an imported key";
    CK_BYTE sig[512];
    CK_ULONG sl = sizeof(sig);

    EXPECT(p11->C_GetAttributeValue(s, vpub, ga, 2), CKR_OK);
    /* RSA: e = 1, e even, n even, n too large, n NULL. */
    EXPECT(import_rsa(s, n, ga[0].ulValueLen, &one, 1, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_rsa(s, n, ga[0].ulValueLen, "\x01\x00\x00", 3, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    memcpy(big, n, ga[0].ulValueLen);
    big[ga[0].ulValueLen - 1] &= 0xfe;
    EXPECT(import_rsa(s, big, ga[0].ulValueLen, &three, 1, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    memset(big, 0xff, sizeof(big)); /* 8800 bits */
    EXPECT(import_rsa(s, big, sizeof(big), &three, 1, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_rsa(s, big, 0, &three, 1, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_rsa(s, n, ga[0].ulValueLen, e, 0, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    /* The vault key's own (n, e) imported verifies the vault's signature. */
    EXPECT(import_rsa(s, n, ga[0].ulValueLen, e, ga[1].ulValueLen, &h), CKR_OK);
    EXPECT(p11->C_SignInit(s, &sha256rsa, vpriv), CKR_OK);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, &sl), CKR_OK);
    EXPECT(p11->C_VerifyInit(s, &sha256rsa, h), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, sizeof(msg), sig, sl), CKR_OK);
    sig[7] ^= 1;
    EXPECT(p11->C_VerifyInit(s, &sha256rsa, h), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, sizeof(msg), sig, sl), CKR_SIGNATURE_INVALID);
    EXPECT(p11->C_DestroyObject(s, h), CKR_OK);

    /* EC: unknown curve, short/long/compressed point, off the curve. */
    EXPECT(import_ec(s, "\x06\x03\x2a\x03\x04", 5, p256_point,
                     sizeof(p256_point), &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_ec(s, p256_oid, sizeof(p256_oid), p256_point,
                     sizeof(p256_point) - 1, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_ec(s, p256_oid, sizeof(p256_oid), p256_point, 2, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_ec(s, p256_oid, sizeof(p256_oid), p256_point, 1, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_ec(s, p256_oid, sizeof(p256_oid), p256_point + 2,
                     sizeof(p256_point) - 2, &h),
           CKR_ATTRIBUTE_VALUE_INVALID); /* no OCTET STRING */
    memcpy(pt, p256_point, sizeof(pt));
    pt[2] = 0x02; /* compressed form tag with a full point */
    EXPECT(import_ec(s, p256_oid, sizeof(p256_oid), pt, sizeof(pt), &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    memcpy(pt, p256_point, sizeof(pt));
    pt[sizeof(pt) - 1] ^= 1; /* Y off by one: not on the curve */
    EXPECT(import_ec(s, p256_oid, sizeof(p256_oid), pt, sizeof(pt), &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(import_ec(s, p256_oid, sizeof(p256_oid), p256_point,
                     sizeof(p256_point), &h),
           CKR_OK);
    /* An imported EC key is for verification (CKA_VERIFY is TRUE). */
    EXPECT(p11->C_VerifyInit(s, &ecdsa, h), CKR_OK);
    memcpy(sig, p256_sig, 64);
    EXPECT(p11->C_Verify(s, msg, 32, sig, 64), CKR_OK);
    EXPECT(p11->C_VerifyInit(s, &ecdsa, h), CKR_OK);
    memset(sig, 0x11, 64);
    EXPECT(p11->C_Verify(s, msg, 32, sig, 64), CKR_SIGNATURE_INVALID);
    EXPECT(p11->C_VerifyInit(s, &ecdsa, h), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, 32, sig, 63), CKR_SIGNATURE_LEN_RANGE);
    EXPECT(p11->C_SignInit(s, &ecdsa, h), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_DestroyObject(s, h), CKR_OK);
    /* P-521 (long-form DER length): accepted; short form or its length
     * byte off by one: refused; the P-256 point under the P-521 OID too. */
    EXPECT(import_ec(s, p521_oid, sizeof(p521_oid), p521_point,
                     sizeof(p521_point), &h),
           CKR_OK);
    EXPECT(p11->C_VerifyInit(s, &ecdsa, h), CKR_OK);
    memset(sig, 0x22, 132);
    EXPECT(p11->C_Verify(s, msg, 32, sig, 132), CKR_SIGNATURE_INVALID);
    EXPECT(p11->C_DestroyObject(s, h), CKR_OK);
    {
        CK_BYTE pt5[sizeof(p521_point)];

        memcpy(pt5, p521_point, sizeof(pt5));
        pt5[2] = 0x84;
        EXPECT(import_ec(s, p521_oid, sizeof(p521_oid), pt5, sizeof(pt5), &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
        EXPECT(import_ec(s, p521_oid, sizeof(p521_oid), p521_point + 1,
                         sizeof(p521_point) - 1, &h),
               CKR_ATTRIBUTE_VALUE_INVALID);
    }
    EXPECT(import_ec(s, p521_oid, sizeof(p521_oid), p256_point,
                     sizeof(p256_point), &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
}

static void sign_params(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE vpriv,
                        CK_OBJECT_HANDLE vpub)
{
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof(pss)};
    CK_MECHANISM raw = {CKM_RSA_PKCS, NULL, 0};
    CK_BYTE data[80] = {0};
    CK_BYTE sig[512];
    CK_ULONG sl;

    m.ulParameterLen = 0;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    m.pParameter = NULL;
    m.ulParameterLen = sizeof(pss);
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    m.pParameter = &pss;
    m.ulParameterLen = sizeof(pss) - 1;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    m.ulParameterLen = (CK_ULONG)1 << 32 | sizeof(pss);
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    m.ulParameterLen = sizeof(pss);
    pss.sLen = 20;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    pss.sLen = (CK_ULONG)1 << 32 | 32;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    pss.sLen = 32;
    pss.mgf = CKG_MGF1_SHA1;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    pss.mgf = CKG_MGF1_SHA256;
    pss.hashAlg = CKM_SHA384; /* not the mechanism's hash */
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_MECHANISM_PARAM_INVALID);
    pss.hashAlg = CKM_SHA256;
    /* The public key does not sign; the private one does not verify. */
    EXPECT(p11->C_SignInit(s, &m, vpub), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_VerifyInit(s, &m, vpriv), CKR_KEY_TYPE_INCONSISTENT);
    /* PSS raw: the data must be a digest of the hash's length. */
    m.mechanism = CKM_RSA_PKCS_PSS;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_OK);
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_OPERATION_ACTIVE);
    sl = sizeof(sig);
    EXPECT(p11->C_Sign(s, data, 33, sig, &sl), CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_SignUpdate(s, data, 32), CKR_OPERATION_NOT_INITIALIZED);
    /* CKM_RSA_PKCS: 2^32 + 5 bytes on a 64-bit CK_ULONG is refused before
     * anything is read; empty data too; k - 11 is the limit. */
    EXPECT(p11->C_SignInit(s, &raw, vpriv), CKR_OK);
    sl = sizeof(sig);
    EXPECT(p11->C_Sign(s, data, (CK_ULONG)1 << 32 | 5, sig, &sl),
           CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_SignInit(s, &raw, vpriv), CKR_OK);
    EXPECT(p11->C_Sign(s, data, 0, sig, &sl), CKR_DATA_LEN_RANGE);
    raw.pParameter = data;
    raw.ulParameterLen = 1;
    EXPECT(p11->C_SignInit(s, &raw, vpriv), CKR_MECHANISM_PARAM_INVALID);
    raw.pParameter = NULL;
    raw.ulParameterLen = 0;
    /* Single-part only: SignUpdate/SignFinal are refused and end it. */
    EXPECT(p11->C_SignInit(s, &raw, vpriv), CKR_OK);
    EXPECT(p11->C_SignUpdate(s, data, 4), CKR_MECHANISM_INVALID);
    EXPECT(p11->C_SignUpdate(s, data, 4), CKR_OPERATION_NOT_INITIALIZED);
    /* ECDSA with an RSA key. */
    m.mechanism = CKM_ECDSA;
    m.pParameter = NULL;
    m.ulParameterLen = 0;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_KEY_TYPE_INCONSISTENT);
}

/* HMAC: RFC 4231 test case 2 (key "Jefe"), _GENERAL lengths, a 2^32 + 32
 * byte signature, interleaving with an encryption on the same session. */
static void sign_hmac(CK_SESSION_HANDLE s, CK_SESSION_HANDLE s2)
{
    static CK_BYTE want[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                               0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                               0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                               0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    CK_BYTE msg[] = "what do ya want for nothing?";
    CK_ULONG mlen = sizeof(msg) - 1;
    CK_OBJECT_HANDLE k = hmac_key(s, "Jefe", 4, CK_FALSE);
    CK_OBJECT_HANDLE ks = hmac_key(s, "Jefe", 4, CK_TRUE);
    CK_OBJECT_HANDLE aes = gen_aes(s);
    CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
    CK_ULONG glen = 16;
    CK_MECHANISM gen = {CKM_SHA256_HMAC_GENERAL, &glen, sizeof(glen)};
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_BYTE mac[64];
    CK_BYTE blk[16] = {0};
    CK_BYTE out[16];
    CK_ULONG l = sizeof(mac);
    CK_ULONG ol = sizeof(out);

    EXPECT(p11->C_SignInit(s, &hm, k), CKR_OK);
    l = 5;
    EXPECT(p11->C_Sign(s, msg, mlen, mac, &l), CKR_BUFFER_TOO_SMALL);
    CHECK(l == 32, "HMAC length %lu", (unsigned long)l);
    /* Another operation in between does not disturb it. */
    EXPECT(p11->C_EncryptInit(s, &ecb, aes), CKR_OK);
    EXPECT(p11->C_Encrypt(s, blk, 16, out, &ol), CKR_OK);
    l = sizeof(mac);
    EXPECT(p11->C_Sign(s, msg, mlen, mac, &l), CKR_OK);
    CHECK(l == 32 && memcmp(mac, want, 32) == 0, "HMAC-SHA256 RFC 4231 #2");
    EXPECT(p11->C_SignUpdate(s, msg, mlen), CKR_OPERATION_NOT_INITIALIZED);
    /* The sensitive copy signs the same (HMAC is what a secret is for). */
    EXPECT(p11->C_SignInit(s2, &hm, ks), CKR_OK);
    EXPECT(p11->C_SignUpdate(s2, msg, 10), CKR_OK);
    EXPECT(p11->C_SignUpdate(s2, msg + 10, mlen - 10), CKR_OK);
    EXPECT(p11->C_Sign(s2, msg, mlen, mac, &l), CKR_OPERATION_ACTIVE);
    l = sizeof(mac);
    EXPECT(p11->C_SignFinal(s2, mac, &l), CKR_OK);
    CHECK(l == 32 && memcmp(mac, want, 32) == 0, "multi-part HMAC");
    EXPECT(p11->C_SignUpdate(s2, msg, mlen), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_SignFinal(s2, mac, &l), CKR_OPERATION_NOT_INITIALIZED);
    /* _GENERAL: CK_MAC_GENERAL_PARAMS is one CK_ULONG of 1..32. */
    EXPECT(p11->C_SignInit(s, &gen, k), CKR_OK);
    l = sizeof(mac);
    EXPECT(p11->C_Sign(s, msg, mlen, mac, &l), CKR_OK);
    CHECK(l == 16 && memcmp(mac, want, 16) == 0, "HMAC_GENERAL 16");
    EXPECT(p11->C_VerifyInit(s, &gen, k), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, mlen, want, 16), CKR_OK);
    EXPECT(p11->C_VerifyInit(s, &gen, k), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, mlen, want, 32), CKR_SIGNATURE_LEN_RANGE);
    gen.ulParameterLen = 4;
    EXPECT(p11->C_SignInit(s, &gen, k), CKR_MECHANISM_PARAM_INVALID);
    gen.ulParameterLen = sizeof(glen);
    gen.pParameter = NULL;
    EXPECT(p11->C_SignInit(s, &gen, k), CKR_MECHANISM_PARAM_INVALID);
    gen.pParameter = &glen;
    for (CK_ULONG bad = 0; bad < 3; bad++) {
        glen = bad == 0 ? 0 : bad == 1 ? 33 : ((CK_ULONG)1 << 32 | 16);
        EXPECT(p11->C_SignInit(s, &gen, k), CKR_MECHANISM_PARAM_INVALID);
    }
    hm.pParameter = &glen;
    hm.ulParameterLen = sizeof(glen);
    EXPECT(p11->C_SignInit(s, &hm, k), CKR_MECHANISM_PARAM_INVALID);
    hm.pParameter = NULL;
    hm.ulParameterLen = 0;
    /* Verify: a 2^32 + 32 byte signature is refused by its length, a
     * changed one as invalid; both end the operation. */
    EXPECT(p11->C_VerifyInit(s, &hm, k), CKR_OK);
    EXPECT(p11->C_VerifyUpdate(s, msg, mlen), CKR_OK);
    EXPECT(p11->C_VerifyFinal(s, want, (CK_ULONG)1 << 32 | 32),
           CKR_SIGNATURE_LEN_RANGE);
    EXPECT(p11->C_VerifyFinal(s, want, 32), CKR_OPERATION_NOT_INITIALIZED);
    memcpy(mac, want, 32);
    mac[31] ^= 0x80;
    EXPECT(p11->C_VerifyInit(s, &hm, k), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, mlen, mac, 32), CKR_SIGNATURE_INVALID);
    EXPECT(p11->C_VerifyInit(s, &hm, k), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, mlen, want, 32), CKR_OK);
    /* An AES key without CKA_SIGN. */
    EXPECT(p11->C_SignInit(s, &hm, aes), CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* Digest of the keys: the sensitive one is indigestible; a key made in
     * another session digests (session objects are shared) until that
     * session closes. */
    {
        CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
        CK_OBJECT_HANDLE other = hmac_key(s2, "Jefe", 4, CK_FALSE);
        CK_BYTE d1[32], d2[32];
        CK_ULONG dl = sizeof(d1);

        EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
        EXPECT(p11->C_DigestKey(s, ks), CKR_KEY_INDIGESTIBLE);
        EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
        EXPECT(p11->C_DigestKey(s, other), CKR_OK);
        EXPECT(p11->C_DigestFinal(s, d1, &dl), CKR_OK);
        dl = sizeof(d2);
        EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
        EXPECT(p11->C_Digest(s, (CK_BYTE_PTR) "Jefe", 4, d2, &dl), CKR_OK);
        CHECK(memcmp(d1, d2, 32) == 0, "DigestKey = digest of the value");
        EXPECT(p11->C_DigestUpdate(s, d1, 1), CKR_OPERATION_NOT_INITIALIZED);
        sha.pParameter = d1;
        sha.ulParameterLen = 1;
        EXPECT(p11->C_DigestInit(s, &sha), CKR_MECHANISM_PARAM_INVALID);
        sha.pParameter = NULL;
        sha.ulParameterLen = 0;
        EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
        EXPECT(p11->C_CloseSession(s2), CKR_OK);
        EXPECT(p11->C_DigestKey(s, other), CKR_KEY_HANDLE_INVALID);
    }
}

/* CKM_AES_CTR: parameter shapes, and a 1-bit counter: two blocks at most,
 * wrapping to counter 0 with the nonce kept (checked against AES-ECB of
 * the two counter blocks). */
static void sign_ctr(CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE k = gen_aes(s);
    CK_AES_CTR_PARAMS cp;
    CK_MECHANISM ctr = {CKM_AES_CTR, &cp, sizeof(cp)};
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_BYTE zero[48] = {0};
    CK_BYTE blocks[32];
    CK_BYTE ks[32];
    CK_BYTE out[48];
    CK_ULONG l;

    memset(&cp, 0, sizeof(cp));
    memset(cp.cb, 0xa5, sizeof(cp.cb));
    cp.cb[15] = 0xa5; /* low bit 1: the counter starts at 1 */
    for (int i = 0; i < 4; i++) {
        static const CK_ULONG bits[] = {0, 129, (CK_ULONG)1 << 32 | 8, 1};
        cp.ulCounterBits = bits[i];
        ctr.ulParameterLen = i == 3 ? sizeof(cp) - 1 : sizeof(cp);
        EXPECT(p11->C_EncryptInit(s, &ctr, k), CKR_MECHANISM_PARAM_INVALID);
    }
    /* GCM: an AAD length of 2^32 + 5 is refused, not truncated to 5. */
    {
        CK_BYTE iv[12] = {0};
        CK_BYTE aad[5] = "aad!";
        CK_GCM_PARAMS gp = {iv, sizeof(iv), 96, aad, (CK_ULONG)1 << 32 | 5,
                            128};
        CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};

        EXPECT(p11->C_EncryptInit(s, &gcm, k), CKR_MECHANISM_PARAM_INVALID);
        gp.ulAADLen = (CK_ULONG)1 << 31;
        EXPECT(p11->C_EncryptInit(s, &gcm, k), CKR_MECHANISM_PARAM_INVALID);
        gp.ulAADLen = 5;
        EXPECT(p11->C_EncryptInit(s, &gcm, k), CKR_OK);
        l = sizeof(out);
        EXPECT(p11->C_Encrypt(s, zero, 16, out, &l), CKR_OK);
        CHECK(l == 32, "GCM length %lu", (unsigned long)l);
    }
    ctr.ulParameterLen = sizeof(cp);
    ctr.pParameter = NULL;
    EXPECT(p11->C_EncryptInit(s, &ctr, k), CKR_MECHANISM_PARAM_INVALID);
    ctr.pParameter = &cp;
    cp.ulCounterBits = 1;
    EXPECT(p11->C_EncryptInit(s, &ctr, k), CKR_OK);
    l = sizeof(out);
    EXPECT(p11->C_Encrypt(s, zero, 48, out, &l), CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_EncryptInit(s, &ctr, k), CKR_OK);
    l = sizeof(out);
    EXPECT(p11->C_Encrypt(s, zero, 32, out, &l), CKR_OK);
    memcpy(blocks, cp.cb, 16);
    memcpy(blocks + 16, cp.cb, 16);
    blocks[31] &= 0xfe;
    EXPECT(p11->C_EncryptInit(s, &ecb, k), CKR_OK);
    {
        CK_ULONG kl = sizeof(ks);
        EXPECT(p11->C_Encrypt(s, blocks, 32, ks, &kl), CKR_OK);
    }
    CHECK(l == 32 && memcmp(out, ks, 32) == 0, "CTR 1-bit counter wraps");
    /* Multi-part: the third block is refused, the operation ends. */
    EXPECT(p11->C_EncryptInit(s, &ctr, k), CKR_OK);
    l = sizeof(out);
    EXPECT(p11->C_EncryptUpdate(s, zero, 20, out, &l), CKR_OK);
    l = sizeof(out);
    EXPECT(p11->C_EncryptUpdate(s, zero, 13, out, &l), CKR_DATA_LEN_RANGE);
    EXPECT(p11->C_EncryptUpdate(s, zero, 1, out, &l),
           CKR_OPERATION_NOT_INITIALIZED);
}

static int group_sign(void)
{
    CK_SESSION_HANDLE s, s2;
    CK_OBJECT_HANDLE priv, pub;

    init_or_die();
    s = open_rw();
    s2 = open_rw();
    priv = find_one(s, CKO_PRIVATE_KEY);
    pub = find_one(s, CKO_PUBLIC_KEY);
    sign_import(s, pub, priv);
    sign_params(s, priv, pub);
    sign_hmac(s, s2);
    sign_ctr(s);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* ---- group newpaths: bad input on the entry points added since the first
 * groups (key pairs, sign/verify, digest, certificate and vault key objects,
 * v3.0 message interface); exact CK_RV of PKCS#11 v3.0 §5 ---- */

/* An EC P-256 session key pair (generated locally); RV the call's answer. */
static CK_RV gen_ec_pair(CK_SESSION_HANDLE s, CK_BBOOL token,
                         CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
                         {CKA_VERIFY, &t, sizeof(t)},
                         {CKA_TOKEN, &token, sizeof(token)}};
    CK_ATTRIBUTE vt[] = {{CKA_SIGN, &t, sizeof(t)},
                         {CKA_TOKEN, &token, sizeof(token)}};

    return p11->C_GenerateKeyPair(s, &m, pt, NELEM(pt), vt, NELEM(vt), pub,
                                  priv);
}

static void newpaths_uninit(void)
{
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM ecg = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE a = 0, b = 0;
    CK_BYTE buf[64];
    CK_ULONG l = sizeof(buf);
    CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
    CK_INTERFACE *itf = NULL;
    CK_FUNCTION_LIST_3_0 *f3 = NULL;

    /* v3.0 §5.4: everything but C_Initialize/C_GetFunctionList/
     * C_GetInterface* says CKR_CRYPTOKI_NOT_INITIALIZED first. */
    EXPECT(p11->C_GenerateKeyPair(1, &ecg, NULL, 0, NULL, 0, &a, &b),
           CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_SignInit(1, &sha, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_Sign(1, buf, 1, buf, &l), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_SignUpdate(1, buf, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_SignFinal(1, buf, &l), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_VerifyInit(1, &sha, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_Verify(1, buf, 1, buf, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_VerifyFinal(1, buf, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_DigestInit(1, &sha), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_Digest(1, buf, 1, buf, &l), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_DigestKey(1, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_DigestFinal(1, buf, &l), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_DestroyObject(1, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_CopyObject(1, 1, NULL, 0, &a), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_SetAttributeValue(1, 1, NULL, 0),
           CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(gi(NULL, NULL, &itf, 0), CKR_OK);
    f3 = itf != NULL ? itf->pFunctionList : NULL;
    CHECK(f3 != NULL, "no v3.0 function list");
    if (f3 == NULL) {
        return;
    }
    {
        CK_C_GetInterfaceList gil =
            (CK_C_GetInterfaceList)dlsym(lib, "C_GetInterfaceList");
        CK_INTERFACE list[5];
        CK_ULONG cnt = 5;
        CK_VERSION v30 = {3, 0}, v240 = {2, 40};
        CK_INTERFACE *i2 = NULL;

        EXPECT(gil(list, &cnt), CKR_OK);
        CHECK(cnt == 2, "%lu interfaces in a larger array", (unsigned long)cnt);
        EXPECT(gi((CK_UTF8CHAR *)"PKCS 11", &v30, &i2, 0), CKR_OK);
        CHECK(i2 != NULL && i2->pFunctionList == (void *)f3,
              "PKCS 11 3.0 is the default interface");
        EXPECT(gi((CK_UTF8CHAR *)"PKCS 11", &v240, &i2, 0), CKR_OK);
        CHECK(i2 != NULL
                  && ((CK_FUNCTION_LIST *)i2->pFunctionList)->version.major
                         == 2,
              "PKCS 11 2.40 interface");
        EXPECT(gi((CK_UTF8CHAR *)"PKCS 11", &v30, NULL, 0), CKR_ARGUMENTS_BAD);
    }
    EXPECT(f3->C_MessageEncryptInit(1, &sha, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(f3->C_MessageDecryptInit(1, &sha, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(f3->C_DecryptMessage(1, NULL, 0, NULL, 0, buf, 1, buf, &l),
           CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(f3->C_MessageEncryptFinal(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(f3->C_MessageDecryptFinal(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(f3->C_EncryptMessageNext(1, NULL, 0, buf, 1, buf, &l, 0),
           CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(f3->C_DecryptMessageBegin(1, NULL, 0, NULL, 0),
           CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* Handles that name nothing: a closed session, a destroyed object. */
static void newpaths_handles(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE vpriv)
{
    CK_FUNCTION_LIST_3_0 *f3 = NULL;
    CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
    CK_INTERFACE *itf = NULL;
    CK_SESSION_HANDLE closed = open_rw();
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
    CK_OBJECT_HANDLE pub = 0, priv = 0, gone = make_data(s), h = 0;
    CK_BYTE buf[64] = {0};
    CK_ULONG l = sizeof(buf);
    CK_BYTE lab[] = "x";
    CK_ATTRIBUTE la = {CKA_LABEL, lab, 1};

    EXPECT(p11->C_CloseSession(closed), CKR_OK);
    EXPECT(p11->C_DestroyObject(s, gone), CKR_OK);
    EXPECT(gen_ec_pair(closed, CK_FALSE, &pub, &priv),
           CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_SignInit(closed, &ecdsa, vpriv), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_VerifyInit(closed, &ecdsa, vpriv),
           CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_Sign(closed, buf, 1, buf, &l), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_VerifyFinal(closed, buf, 1), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_DigestInit(closed, &sha), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_DigestKey(closed, vpriv), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_DigestFinal(closed, buf, &l), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_DestroyObject(closed, vpriv), CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_CopyObject(closed, vpriv, NULL, 0, &h),
           CKR_SESSION_HANDLE_INVALID);
    EXPECT(p11->C_SetAttributeValue(closed, vpriv, &la, 1),
           CKR_SESSION_HANDLE_INVALID);
    /* A key handle that names nothing (v3.0 §5.14-5.16): KEY_HANDLE for the
     * Init and DigestKey calls, OBJECT_HANDLE for the object calls. */
    EXPECT(p11->C_SignInit(s, &hm, gone), CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_VerifyInit(s, &hm, gone), CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_SignInit(s, &hm, CK_INVALID_HANDLE), CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_DigestKey(s, gone), CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_DigestFinal(s, NULL, &l), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DestroyObject(s, gone), CKR_OBJECT_HANDLE_INVALID);
    EXPECT(p11->C_DestroyObject(s, CK_INVALID_HANDLE),
           CKR_OBJECT_HANDLE_INVALID);
    EXPECT(p11->C_CopyObject(s, gone, NULL, 0, &h), CKR_OBJECT_HANDLE_INVALID);
    EXPECT(p11->C_SetAttributeValue(s, gone, &la, 1),
           CKR_OBJECT_HANDLE_INVALID);
    EXPECT(gi(NULL, NULL, &itf, 0), CKR_OK);
    f3 = itf != NULL ? itf->pFunctionList : NULL;
    if (f3 == NULL) {
        return;
    }
    EXPECT(f3->C_MessageEncryptInit(closed, &gcm, vpriv),
           CKR_SESSION_HANDLE_INVALID);
    EXPECT(f3->C_MessageEncryptInit(s, &gcm, gone), CKR_KEY_HANDLE_INVALID);
    EXPECT(f3->C_MessageDecryptInit(s, &gcm, gone), CKR_KEY_HANDLE_INVALID);
    EXPECT(f3->C_EncryptMessage(closed, NULL, 0, NULL, 0, buf, 1, buf, &l),
           CKR_SESSION_HANDLE_INVALID);
    EXPECT(f3->C_MessageEncryptFinal(closed), CKR_SESSION_HANDLE_INVALID);
    /* No message operation: v3.0 §5.13 */
    EXPECT(f3->C_EncryptMessage(s, NULL, 0, NULL, 0, buf, 1, buf, &l),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f3->C_DecryptMessage(s, NULL, 0, NULL, 0, buf, 1, buf, &l),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f3->C_MessageEncryptFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f3->C_MessageDecryptFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f3->C_MessageEncryptInit(s, NULL, vpriv), CKR_ARGUMENTS_BAD);
    /* the RSA vault key does no AES-GCM */
    EXPECT(f3->C_MessageEncryptInit(s, &gcm, vpriv), CKR_KEY_TYPE_INCONSISTENT);
}

static void newpaths_keypair(CK_SESSION_HANDLE s, CK_SESSION_HANDLE ro)
{
    CK_MECHANISM ecg = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM rsag = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_MECHANISM ecgp = {CKM_EC_KEY_PAIR_GEN, &bits, sizeof(bits)};
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    CK_BBOOL t = CK_TRUE;
    CK_OBJECT_CLASS sec = CKO_SECRET_KEY;
    CK_BYTE e3[] = {1, 0, 1};
    CK_ATTRIBUTE ec[] = {{CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)}};
    CK_ATTRIBUTE bad_class[] = {
        {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
        {CKA_CLASS, &sec, sizeof(sec)}};
    CK_ATTRIBUTE bad_len[] = {
        {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
        {CKA_VERIFY, &t, 4}};
    CK_ATTRIBUTE bad_type[] = {
        {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
        {0x7ffffff0UL, &t, 1}};
    CK_ATTRIBUTE rsa_bits_len[] = {{CKA_MODULUS_BITS, &bits, 2},
                                   {CKA_PUBLIC_EXPONENT, e3, 3}};
    CK_ATTRIBUTE rsa_none[] = {{CKA_PUBLIC_EXPONENT, e3, 3}};
    CK_ATTRIBUTE tok[] = {{CKA_TOKEN, &t, sizeof(t)}};
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE bad_tok[] = {
        {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
        {CKA_TOKEN, &f, sizeof(f)}};

    EXPECT(p11->C_GenerateKeyPair(s, &ecg, ec, 1, NULL, 0, NULL, &priv),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, ec, 1, NULL, 0, &pub, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, NULL, 1, NULL, 0, &pub, &priv),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, ec, 1, NULL, 2, &pub, &priv),
           CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_GenerateKeyPair(s, &ecgp, ec, 1, NULL, 0, &pub, &priv),
           CKR_MECHANISM_PARAM_INVALID);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, NULL, 0, NULL, 0, &pub, &priv),
           CKR_TEMPLATE_INCOMPLETE);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, bad_class, 2, NULL, 0, &pub, &priv),
           CKR_TEMPLATE_INCONSISTENT);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, bad_len, 2, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, bad_type, 2, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT(
        p11->C_GenerateKeyPair(s, &rsag, rsa_bits_len, 2, NULL, 0, &pub, &priv),
        CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_GenerateKeyPair(s, &rsag, rsa_none, 1, NULL, 0, &pub, &priv),
           CKR_TEMPLATE_INCOMPLETE);
    EXPECT(p11->C_GenerateKeyPair(ro, &ecg, ec, 1, tok, 1, &pub, &priv),
           CKR_SESSION_READ_ONLY);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, bad_tok, 2, tok, 1, &pub, &priv),
           CKR_TEMPLATE_INCONSISTENT); /* CKA_TOKEN differs */
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, ec, 1, tok, 1, &pub, &priv),
           CKR_TEMPLATE_INCONSISTENT);
    {
        CK_ATTRIBUTE ecenc[] = {
            {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
            {CKA_ENCRYPT, &t, sizeof(t)}};

        /* EC keys sign and verify only (keygen.h) */
        EXPECT(p11->C_GenerateKeyPair(s, &ecg, ecenc, 2, NULL, 0, &pub, &priv),
               CKR_TEMPLATE_INCONSISTENT);
    }
    /* without tokens[].allow_create a token pair is refused (keygen.h) */
    EXPECT(gen_ec_pair(s, CK_TRUE, &pub, &priv), CKR_TEMPLATE_INCONSISTENT);
    EXPECT(gen_ec_pair(ro, CK_TRUE, &pub, &priv), CKR_SESSION_READ_ONLY);
}

static void newpaths_sign(CK_SESSION_HANDLE s, CK_SESSION_HANDLE ro)
{
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CK_MECHANISM ecdsa_p = {CKM_ECDSA_SHA256, (void *)p256_sig, 4};
    CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
    CK_ULONG glen = 16;
    CK_MECHANISM gen3 = {CKM_SHA256_HMAC_GENERAL, &glen, 3};
    CK_MECHANISM genbig = {CKM_SHA256_HMAC_GENERAL, &glen, sizeof(glen)};
    CK_BYTE msg[] = "message";
    CK_BYTE sig[200];
    CK_ULONG sl = 0;
    CK_OBJECT_HANDLE k = hmac_key(s, "Jefe", 4, CK_FALSE);

    EXPECT(gen_ec_pair(s, CK_FALSE, &pub, &priv), CKR_OK);
    EXPECT(p11->C_SignInit(s, &ecdsa_p, priv), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(p11->C_VerifyInit(s, &ecdsa_p, pub), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(p11->C_SignInit(s, &gen3, k), CKR_MECHANISM_PARAM_INVALID);
    glen = 33;
    EXPECT(p11->C_SignInit(s, &genbig, k), CKR_MECHANISM_PARAM_INVALID);
    /* v3.0 §5.2: a NULL buffer asks the length, a short one is
     * CKR_BUFFER_TOO_SMALL with the length; both keep the operation. */
    EXPECT(p11->C_SignInit(s, &ecdsa, priv), CKR_OK);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), NULL, &sl), CKR_OK);
    CHECK(sl == 64, "ECDSA P-256 length query %lu", (unsigned long)sl);
    sl = 63;
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, &sl), CKR_BUFFER_TOO_SMALL);
    CHECK(sl == 64, "ECDSA short buffer length %lu", (unsigned long)sl);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, &sl),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_SignInit(s, &ecdsa, priv), CKR_OK);
    sl = 10;
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, &sl), CKR_BUFFER_TOO_SMALL);
    sl = sizeof(sig);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, &sl), CKR_OK);
    CHECK(sl == 64, "ECDSA signature length %lu", (unsigned long)sl);
    /* multi-part: short final buffer keeps the operation */
    EXPECT(p11->C_SignInit(s, &ecdsa, priv), CKR_OK);
    EXPECT(p11->C_SignUpdate(s, msg, sizeof(msg)), CKR_OK);
    sl = 0;
    EXPECT(p11->C_SignFinal(s, NULL, &sl), CKR_OK);
    CHECK(sl == 64, "SignFinal length query %lu", (unsigned long)sl);
    sl = 1;
    EXPECT(p11->C_SignFinal(s, sig, &sl), CKR_BUFFER_TOO_SMALL);
    CHECK(sl == 64, "SignFinal short length %lu", (unsigned long)sl);
    EXPECT(p11->C_SignFinal(s, sig, &sl), CKR_OK);
    EXPECT(p11->C_VerifyInit(s, &ecdsa, pub), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, sizeof(msg), sig, sl), CKR_OK);
    /* wrong signature length: v3.0 §5.15 CKR_SIGNATURE_LEN_RANGE, and the
     * operation ends */
    EXPECT(p11->C_VerifyInit(s, &ecdsa, pub), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, sizeof(msg), sig, 63),
           CKR_SIGNATURE_LEN_RANGE);
    EXPECT(p11->C_Verify(s, msg, sizeof(msg), sig, 64),
           CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_VerifyInit(s, &ecdsa, pub), CKR_OK);
    EXPECT(p11->C_VerifyUpdate(s, NULL, 3), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_VerifyFinal(s, sig, 64), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_VerifyFinal(s, sig, 64), CKR_OPERATION_NOT_INITIALIZED);
    /* keys of the wrong kind */
    EXPECT(p11->C_SignInit(s, &ecdsa, pub), CKR_KEY_TYPE_INCONSISTENT);
    EXPECT(p11->C_SignInit(s, &hm, priv), CKR_KEY_TYPE_INCONSISTENT);
    /* HMAC short buffer + length query */
    EXPECT(p11->C_SignInit(ro, &hm, k), CKR_OK);
    sl = 0;
    EXPECT(p11->C_Sign(ro, msg, sizeof(msg), NULL, &sl), CKR_OK);
    CHECK(sl == 32, "HMAC length %lu", (unsigned long)sl);
    sl = 31;
    EXPECT(p11->C_Sign(ro, msg, sizeof(msg), sig, &sl), CKR_BUFFER_TOO_SMALL);
    CHECK(sl == 32, "HMAC short length %lu", (unsigned long)sl);
    EXPECT(p11->C_Sign(ro, msg, sizeof(msg), sig, &sl), CKR_OK);
    {
        CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
        CK_BBOOL b = CK_TRUE;
        CK_ATTRIBUTE wide = {CKA_SIGN, &b, 4};

        /* only secret keys are digested (v3.0 §5.12 C_DigestKey) */
        EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
        EXPECT(p11->C_DigestKey(s, priv), CKR_KEY_INDIGESTIBLE);
        /* a CK_BBOOL of 4 bytes (v3.0 §5.7 C_SetAttributeValue) */
        EXPECT(p11->C_SetAttributeValue(s, k, &wide, 1),
               CKR_ATTRIBUTE_VALUE_INVALID);
    }
    EXPECT(p11->C_DestroyObject(s, pub), CKR_OK);
    EXPECT(p11->C_DestroyObject(s, priv), CKR_OK);
}

static void newpaths_digest(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE vpriv)
{
    CK_BYTE p = 0;
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM shap = {CKM_SHA256, &p, 1};
    CK_BYTE msg[] = "abc";
    CK_BYTE d[64];
    CK_ULONG dl = 0;
    CK_OBJECT_HANDLE sens = gen_aes_ex(s, 16, CK_TRUE, CK_TRUE);
    CK_OBJECT_HANDLE plain = gen_aes(s);
    CK_OBJECT_HANDLE data = make_data(s);

    EXPECT(p11->C_DigestInit(s, &shap), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_Digest(s, msg, 3, NULL, &dl), CKR_OK);
    CHECK(dl == 32, "SHA-256 length query %lu", (unsigned long)dl);
    dl = 31;
    EXPECT(p11->C_Digest(s, msg, 3, d, &dl), CKR_BUFFER_TOO_SMALL);
    CHECK(dl == 32, "SHA-256 short length %lu", (unsigned long)dl);
    EXPECT(p11->C_Digest(s, msg, 3, d, &dl), CKR_OK);
    CHECK(dl == 32 && d[0] == 0xba && d[31] == 0xad, "SHA-256(abc)");
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_DigestUpdate(s, msg, 3), CKR_OK);
    EXPECT(p11->C_DigestKey(s, sens), CKR_KEY_INDIGESTIBLE);
    /* v3.0 §5.12: an error other than BUFFER_TOO_SMALL ends it */
    EXPECT(p11->C_DigestUpdate(s, msg, 3), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_DigestKey(s, vpriv), CKR_KEY_INDIGESTIBLE);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_DigestKey(s, data), CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_DigestKey(s, plain), CKR_OK);
    dl = 1;
    EXPECT(p11->C_DigestFinal(s, d, &dl), CKR_BUFFER_TOO_SMALL);
    CHECK(dl == 32, "DigestFinal short length %lu", (unsigned long)dl);
    EXPECT(p11->C_DigestFinal(s, d, &dl), CKR_OK);
}

/* Second batch: template entries with NULL values, unsupported sizes and
 * curves, NULL input on the update calls, read-only copies. */
static void newpaths_more(CK_SESSION_HANDLE s, CK_SESSION_HANDLE ro)
{
    CK_MECHANISM ecg = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM rsag = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_OBJECT_HANDLE pub = 0, priv = 0, h = 0;
    CK_OBJECT_HANDLE k = hmac_key(s, "Jefe", 4, CK_FALSE);
    CK_OBJECT_HANDLE dek = gen_aes(s);
    CK_BYTE junk[] = {0x06, 0x03, 0x2a, 0x03, 0x04};
    CK_BYTE garbage[] = {0xff, 0x01};
    CK_ULONG bits = 1000;
    CK_BYTE e3[] = {1, 0, 1};
    CK_BBOOL t = CK_TRUE;
    CK_BYTE sig[64] = {0};
    CK_BYTE msg[] = "m";
    CK_ATTRIBUTE nullval[] = {{CKA_EC_PARAMS, NULL, sizeof(p256_oid)}};
    CK_ATTRIBUTE zero[] = {{CKA_EC_PARAMS, (void *)p256_oid, 0}};
    CK_ATTRIBUTE curve[] = {{CKA_EC_PARAMS, junk, sizeof(junk)}};
    CK_ATTRIBUTE garb[] = {{CKA_EC_PARAMS, garbage, sizeof(garbage)}};
    CK_ATTRIBUTE rsa1000[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)},
                              {CKA_PUBLIC_EXPONENT, e3, 3}};
    CK_ATTRIBUTE tok[] = {{CKA_TOKEN, &t, sizeof(t)}};
    CK_ATTRIBUTE labnull = {CKA_LABEL, NULL, 4};
    CK_ULONG vl = 16, dl = 0;
    CK_ATTRIBUTE valuelen = {CKA_VALUE_LEN, &vl, sizeof(vl)};

    EXPECT(p11->C_GenerateKeyPair(s, &ecg, nullval, 1, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, zero, 1, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, curve, 1, NULL, 0, &pub, &priv),
           CKR_CURVE_NOT_SUPPORTED);
    EXPECT(p11->C_GenerateKeyPair(s, &ecg, garb, 1, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_VALUE_INVALID);
    /* keygen.h: an unsupported modulus size is a template value the token
     * refuses */
    EXPECT(p11->C_GenerateKeyPair(s, &rsag, rsa1000, 2, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_VALUE_INVALID);
    bits = 2048;
    rsa1000[1].pValue = NULL;
    EXPECT(p11->C_GenerateKeyPair(s, &rsag, rsa1000, 2, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_VALUE_INVALID);
    rsa1000[0].pValue = NULL;
    rsa1000[1].pValue = e3;
    EXPECT(p11->C_GenerateKeyPair(s, &rsag, rsa1000, 2, NULL, 0, &pub, &priv),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_GenerateKeyPair(s, &hm, garb, 1, NULL, 0, &pub, &priv),
           CKR_MECHANISM_INVALID);
    /* NULL data with a length ends the operation (v3.0 §5.2 / §5.15) */
    EXPECT(p11->C_SignInit(s, &hm, k), CKR_OK);
    EXPECT(p11->C_SignUpdate(s, NULL, 5), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_SignUpdate(s, msg, 1), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_VerifyInit(s, &hm, k), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, 1, NULL, 32), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_VerifyInit(s, &hm, k), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, 1, sig, 31), CKR_SIGNATURE_LEN_RANGE);
    EXPECT(p11->C_VerifyInit(s, &hm, k), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, 1, sig, 32), CKR_SIGNATURE_INVALID);
    EXPECT(p11->C_VerifyFinal(s, sig, 32), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_DigestUpdate(s, NULL, 5), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_DigestUpdate(s, msg, 1), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OK);
    EXPECT(p11->C_DigestInit(s, &sha), CKR_OPERATION_ACTIVE);
    dl = sizeof(sig);
    EXPECT(p11->C_DigestFinal(s, sig, &dl), CKR_OK);
    /* token objects from a read-only session (v3.0 §5.7) */
    {
        CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
        CK_ULONG len = 32;
        CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                             {CKA_TOKEN, &t, sizeof(t)}};
        CK_BYTE lab[] = "r";
        CK_ATTRIBUTE la = {CKA_LABEL, lab, 1};
        CK_OBJECT_HANDLE tk = CK_INVALID_HANDLE;

        EXPECT(p11->C_GenerateKey(ro, &gen, gt, 2, &tk), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_GenerateKey(s, &gen, gt, 2, &tk), CKR_OK);
        EXPECT(p11->C_DestroyObject(ro, tk), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_SetAttributeValue(ro, tk, &la, 1), CKR_SESSION_READ_ONLY);
        /* the copy of a token object is one (v3.0 §5.7); before the fix a
         * session object with CKA_TOKEN FALSE, even from a R/O session */
        EXPECT(p11->C_CopyObject(ro, tk, NULL, 0, &h), CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_CopyObject(s, tk, NULL, 0, &h), CKR_OK);
        {
            CK_BBOOL got = CK_FALSE;
            CK_ATTRIBUTE ga = {CKA_TOKEN, &got, sizeof(got)};

            EXPECT(p11->C_GetAttributeValue(s, h, &ga, 1), CKR_OK);
            CHECK(got == CK_TRUE, "copy of a token object: CKA_TOKEN %u",
                  (unsigned)got);
            EXPECT(p11->C_DestroyObject(s, h), CKR_OK);
        }
        {
            CK_BBOOL ff = CK_FALSE;
            CK_ATTRIBUTE sess = {CKA_TOKEN, &ff, sizeof(ff)};

            /* asked for: a session copy, from a R/O session too */
            EXPECT(p11->C_CopyObject(ro, tk, &sess, 1, &h), CKR_OK);
            EXPECT(p11->C_DestroyObject(ro, h), CKR_OK);
        }
        EXPECT(p11->C_SetAttributeValue(s, tk, &la, 1), CKR_OK);
        EXPECT(p11->C_DestroyObject(s, tk), CKR_OK);
    }
    EXPECT(p11->C_CopyObject(ro, dek, tok, 1, &h), CKR_SESSION_READ_ONLY);
    EXPECT(p11->C_SetAttributeValue(s, dek, &labnull, 1),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_SetAttributeValue(s, dek, &valuelen, 1),
           CKR_ATTRIBUTE_READ_ONLY);
}

static CK_OBJECT_HANDLE find_class(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    if (p11->C_FindObjectsInit(s, t, 1) == CKR_OK) {
        (void)p11->C_FindObjects(s, &h, 1, &n);
        (void)p11->C_FindObjectsFinal(s);
    }
    return n == 1 ? h : CK_INVALID_HANDLE;
}

/* Vault keys and certificates are the vault's: without tokens[].allow_delete
 * neither is destroyable nor modifiable (CKR_ACTION_PROHIBITED, v3.0 §4.4.1
 * CKA_DESTROYABLE/CKA_MODIFIABLE false), whatever the session. */
static void newpaths_objects(CK_SESSION_HANDLE s, CK_SESSION_HANDLE ro,
                             CK_OBJECT_HANDLE vpriv)
{
    CK_BYTE lab[] = "renamed";
    CK_ATTRIBUTE la = {CKA_LABEL, lab, sizeof(lab) - 1};
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE tokf = {CKA_TOKEN, &f, 3};
    CK_ATTRIBUTE bogus = {0x7ffffff0UL, &f, 1};
    CK_OBJECT_HANDLE h = 0, cert = find_class(s, CKO_CERTIFICATE);

    EXPECT(p11->C_DestroyObject(ro, vpriv), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_DestroyObject(s, vpriv), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_SetAttributeValue(ro, vpriv, &la, 1), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_SetAttributeValue(s, vpriv, &la, 1), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_CopyObject(s, vpriv, &tokf, 1, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_CopyObject(s, vpriv, &bogus, 1, &h),
           CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT(p11->C_CopyObject(s, vpriv, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_SetAttributeValue(s, vpriv, NULL, 2), CKR_ARGUMENTS_BAD);
    /* abuse.sh configures tokens[].certificate for this group */
    CHECK(cert != CK_INVALID_HANDLE, "no certificate object");
    if (cert == CK_INVALID_HANDLE) {
        return;
    }
    EXPECT(p11->C_DestroyObject(ro, cert), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_DestroyObject(s, cert), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_SetAttributeValue(s, cert, &la, 1), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_SetAttributeValue(s, cert, NULL, 1), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_CopyObject(s, cert, &bogus, 1, &h),
           CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT(p11->C_CopyObject(s, cert, &tokf, 1, &h),
           CKR_ATTRIBUTE_VALUE_INVALID);
    EXPECT(p11->C_CopyObject(s, cert, NULL, 1, &h), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_CopyObject(s, cert, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
}

/* tokens[].allow_delete: the vault key pair is destroyable from a R/W
 * session only (v3.0 §5.7: SESSION_READ_ONLY for token objects), the
 * certificate never; afterwards its handles name nothing. */
static int group_newpaths_delete(void)
{
    CK_SESSION_HANDLE s, ro;
    CK_OBJECT_HANDLE vpriv, vpub, cert;
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0};

    init_or_die();
    s = open_rw();
    EXPECT(p11->C_OpenSession(slot0, CKF_SERIAL_SESSION, NULL, NULL, &ro),
           CKR_OK);
    vpriv = find_one(s, CKO_PRIVATE_KEY);
    vpub = find_one(s, CKO_PUBLIC_KEY);
    cert = find_class(s, CKO_CERTIFICATE);
    CHECK(cert != CK_INVALID_HANDLE, "no certificate object");
    /* tokens[].allow_create: a token pair needs a CKA_LABEL that is a key
     * name and not taken (keygen.h) */
    {
        CK_OBJECT_HANDLE pub = 0, priv = 0;
        CK_BBOOL t = CK_TRUE;
        CK_MECHANISM ecg = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
        CK_ATTRIBUTE pt[] = {
            {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
            {CKA_TOKEN, &t, sizeof(t)}};
        CK_ATTRIBUTE kt[] = {{CKA_TOKEN, &t, sizeof(t)},
                             {CKA_LABEL, (void *)"bad name!", 9}};

        EXPECT(p11->C_GenerateKeyPair(s, &ecg, pt, 2, kt, 1, &pub, &priv),
               CKR_TEMPLATE_INCOMPLETE);
        EXPECT(p11->C_GenerateKeyPair(ro, &ecg, pt, 2, kt, 2, &pub, &priv),
               CKR_SESSION_READ_ONLY);
        EXPECT(p11->C_GenerateKeyPair(s, &ecg, pt, 2, kt, 2, &pub, &priv),
               CKR_ATTRIBUTE_VALUE_INVALID);
        kt[1].pValue = (void *)key_name;
        kt[1].ulValueLen = strlen(key_name);
        EXPECT(p11->C_GenerateKeyPair(s, &ecg, pt, 2, kt, 2, &pub, &priv),
               CKR_ATTRIBUTE_VALUE_INVALID);
    }
    EXPECT(p11->C_DestroyObject(ro, vpriv), CKR_SESSION_READ_ONLY);
    EXPECT(p11->C_DestroyObject(ro, vpub), CKR_SESSION_READ_ONLY);
    EXPECT(p11->C_DestroyObject(ro, cert), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_DestroyObject(s, cert), CKR_ACTION_PROHIBITED);
    EXPECT(p11->C_DestroyObject(s, vpriv), CKR_OK);
    EXPECT(p11->C_DestroyObject(s, vpriv), CKR_OBJECT_HANDLE_INVALID);
    EXPECT(p11->C_DestroyObject(ro, vpriv), CKR_OBJECT_HANDLE_INVALID);
    EXPECT(p11->C_SignInit(s, &sha, vpriv), CKR_KEY_HANDLE_INVALID);
    EXPECT(p11->C_VerifyInit(s, &ecdsa, vpub), CKR_KEY_HANDLE_INVALID);
    {
        CK_OBJECT_HANDLE pub = 0, priv = 0;
        CK_BBOOL t = CK_TRUE;
        CK_MECHANISM ecg = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
        CK_ATTRIBUTE pt[] = {
            {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
            {CKA_TOKEN, &t, sizeof(t)}};
        CK_ATTRIBUTE kt[] = {{CKA_TOKEN, &t, sizeof(t)},
                             {CKA_LABEL, (void *)key_name, strlen(key_name)}};

        /* the deleted key's name stays taken while it is recoverable (409
         * ObjectIsDeletedButRecoverable): like a taken name, keygen.h */
        EXPECT(p11->C_GenerateKeyPair(s, &ecg, pt, 2, kt, 2, &pub, &priv),
               CKR_ATTRIBUTE_VALUE_INVALID);
    }
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

static int group_newpaths(void)
{
    CK_SESSION_HANDLE s, ro;
    CK_OBJECT_HANDLE vpriv;

    newpaths_uninit();
    init_or_die();
    s = open_rw();
    EXPECT(p11->C_OpenSession(slot0, CKF_SERIAL_SESSION, NULL, NULL, &ro),
           CKR_OK);
    vpriv = find_one(s, CKO_PRIVATE_KEY);
    newpaths_handles(s, vpriv);
    newpaths_keypair(s, ro);
    newpaths_sign(s, ro);
    newpaths_digest(s, vpriv);
    newpaths_more(s, ro);
    newpaths_objects(s, ro, vpriv);
    {
        CK_MECHANISM rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
        CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
        CK_OBJECT_HANDLE k = hmac_key(s, "Jefe", 4, CK_FALSE);
        CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};

        /* signing with the vault key is opt-in (tokens[].sign) */
        EXPECT(p11->C_SignInit(s, &rsa, vpriv), CKR_KEY_FUNCTION_NOT_PERMITTED);
        /* operations left active at C_Finalize are freed (ASan checks) */
        EXPECT(p11->C_SignInit(s, &hm, k), CKR_OK);
        EXPECT(p11->C_SignUpdate(s, (CK_BYTE *)"abc", 3), CKR_OK);
        EXPECT(p11->C_DigestInit(ro, &sha), CKR_OK);
        EXPECT(p11->C_DigestUpdate(ro, (CK_BYTE *)"abc", 3), CKR_OK);
    }
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* v3.0 message-based AES-GCM (§5.13/§5.14) with a Managed HSM oct-HSM key
 * (abuse.sh configures one): CK_GCM_MESSAGE_PARAMS checks, length query and
 * short buffer (§5.2: the length, the operation kept), a failed message that
 * keeps the operation, Final ending it. */
static int group_newpaths_msg(void)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
    CK_INTERFACE *itf = NULL;
    CK_FUNCTION_LIST_3_0 *f3 = NULL;
    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
    CK_MECHANISM cbc = {CKM_AES_CBC, NULL, 0};
    CK_BYTE iv[12] = {0};
    CK_BYTE tag[16] = {0};
    CK_GCM_MESSAGE_PARAMS g = {iv,  sizeof(iv), 0, CKG_GENERATE_RANDOM,
                               tag, 128};
    CK_GCM_MESSAGE_PARAMS bad;
    CK_BYTE aad[] = "header";
    CK_BYTE pt[] = "sixteen byte msg and more";
    CK_BYTE ct[64];
    CK_BYTE back[64];
    CK_ULONG l = 0;

    init_or_die();
    s = open_rw();
    {
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
        CK_ULONG n = 0;

        k = CK_INVALID_HANDLE;
        EXPECT(p11->C_FindObjectsInit(s, t, 1), CKR_OK);
        EXPECT(p11->C_FindObjects(s, &k, 1, &n), CKR_OK);
        EXPECT(p11->C_FindObjectsFinal(s), CKR_OK);
        CHECK(n == 1, "no oct-HSM vault key");
    }
    EXPECT(gi(NULL, NULL, &itf, 0), CKR_OK);
    f3 = itf != NULL ? itf->pFunctionList : NULL;
    if (f3 == NULL || k == CK_INVALID_HANDLE) {
        return 1;
    }
    EXPECT(f3->C_MessageEncryptInit(s, &cbc, k), CKR_MECHANISM_INVALID);
    EXPECT(f3->C_MessageEncryptInit(s, &gcm, k), CKR_OK);
    EXPECT(f3->C_MessageEncryptInit(s, &gcm, k), CKR_OPERATION_ACTIVE);
    EXPECT(f3->C_DecryptMessage(s, &g, sizeof(g), NULL, 0, pt, 16, ct, &l),
           CKR_OPERATION_NOT_INITIALIZED);
    /* bad parameters: CKR_MECHANISM_PARAM_INVALID, operation kept */
    EXPECT(f3->C_EncryptMessage(s, NULL, 0, NULL, 0, pt, 16, ct, &l),
           CKR_MECHANISM_PARAM_INVALID);
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g) - 1, NULL, 0, pt, 16, ct, &l),
           CKR_MECHANISM_PARAM_INVALID);
    bad = g;
    bad.pIv = NULL;
    EXPECT(f3->C_EncryptMessage(s, &bad, sizeof(bad), NULL, 0, pt, 16, ct, &l),
           CKR_MECHANISM_PARAM_INVALID);
    bad = g;
    bad.pTag = NULL;
    EXPECT(f3->C_EncryptMessage(s, &bad, sizeof(bad), NULL, 0, pt, 16, ct, &l),
           CKR_MECHANISM_PARAM_INVALID);
    bad = g;
    bad.ulIvLen = 16;
    EXPECT(f3->C_EncryptMessage(s, &bad, sizeof(bad), NULL, 0, pt, 16, ct, &l),
           CKR_MECHANISM_PARAM_INVALID);
    bad = g;
    bad.ulTagBits = 96;
    EXPECT(f3->C_EncryptMessage(s, &bad, sizeof(bad), NULL, 0, pt, 16, ct, &l),
           CKR_MECHANISM_PARAM_INVALID);
    bad = g;
    bad.ivGenerator = CKG_NO_GENERATE;
    EXPECT(f3->C_EncryptMessage(s, &bad, sizeof(bad), NULL, 0, pt, 16, ct, &l),
           CKR_MECHANISM_PARAM_INVALID);
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), NULL, 3, pt, 16, ct, &l),
           CKR_ARGUMENTS_BAD);
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), NULL, 0, NULL, 16, ct, &l),
           CKR_ARGUMENTS_BAD);
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), NULL, 0, pt, 16, ct, NULL),
           CKR_ARGUMENTS_BAD);
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), NULL, 0, pt, 0, ct, &l),
           CKR_DATA_LEN_RANGE);
    /* length query and short buffer (v3.0 §5.2) */
    l = 0;
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), aad, sizeof(aad), pt,
                                sizeof(pt), NULL, &l),
           CKR_OK);
    CHECK(l == sizeof(pt), "GCM length query %lu", (unsigned long)l);
    l = sizeof(pt) - 1;
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), aad, sizeof(aad), pt,
                                sizeof(pt), ct, &l),
           CKR_BUFFER_TOO_SMALL);
    CHECK(l == sizeof(pt), "GCM short buffer length %lu", (unsigned long)l);
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), aad, sizeof(aad), pt,
                                sizeof(pt), ct, &l),
           CKR_OK);
    CHECK(l == sizeof(pt) && memcmp(ct, pt, l) != 0, "GCM ciphertext");
    EXPECT(f3->C_MessageEncryptFinal(s), CKR_OK);
    EXPECT(f3->C_MessageEncryptFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f3->C_EncryptMessage(s, &g, sizeof(g), NULL, 0, pt, 16, ct, &l),
           CKR_OPERATION_NOT_INITIALIZED);
    /* decrypt: the generator fields do not matter; a bad tag fails the
     * message, not the operation */
    EXPECT(f3->C_MessageDecryptInit(s, &gcm, k), CKR_OK);
    bad = g;
    bad.ivGenerator = CKG_NO_GENERATE;
    l = 1;
    EXPECT(f3->C_DecryptMessage(s, &bad, sizeof(bad), aad, sizeof(aad), ct,
                                sizeof(pt), back, &l),
           CKR_BUFFER_TOO_SMALL);
    CHECK(l == sizeof(pt), "GCM decrypt short length %lu", (unsigned long)l);
    bad.pTag = NULL;
    EXPECT(f3->C_DecryptMessage(s, &bad, sizeof(bad), aad, sizeof(aad), ct,
                                sizeof(pt), back, &l),
           CKR_MECHANISM_PARAM_INVALID);
    tag[0] ^= 1;
    EXPECT(f3->C_DecryptMessage(s, &g, sizeof(g), aad, sizeof(aad), ct,
                                sizeof(pt), back, &l),
           CKR_ENCRYPTED_DATA_INVALID);
    tag[0] ^= 1;
    l = sizeof(back);
    EXPECT(f3->C_DecryptMessage(s, &g, sizeof(g), aad, sizeof(aad), ct,
                                sizeof(pt), back, &l),
           CKR_OK);
    CHECK(l == sizeof(pt) && memcmp(back, pt, l) == 0, "GCM round trip");
    EXPECT(f3->C_MessageDecryptFinal(s), CKR_OK);
    EXPECT(f3->C_MessageDecryptFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    /* multi-part messages are not offered, even with an operation */
    EXPECT(f3->C_MessageEncryptInit(s, &gcm, k), CKR_OK);
    EXPECT(f3->C_EncryptMessageBegin(s, &g, sizeof(g), NULL, 0),
           CKR_FUNCTION_NOT_SUPPORTED);
    {
        CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
        CK_SESSION_HANDLE s2 = open_rw();

        /* the HSM key's value never leaves the HSM */
        EXPECT(p11->C_DigestInit(s2, &sha), CKR_OK);
        EXPECT(p11->C_DigestKey(s2, k), CKR_KEY_INDIGESTIBLE);
        /* operations left active: closing and finalizing free them (the
         * ASan build checks for leaks) */
        EXPECT(f3->C_MessageDecryptInit(s2, &gcm, k), CKR_OK);
        EXPECT(p11->C_CloseSession(s2), CKR_OK);
        EXPECT(f3->C_MessageDecryptFinal(s2), CKR_SESSION_HANDLE_INVALID);
    }
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* The vault key signs (tokens[].sign): a length query and a short buffer
 * answer the modulus length and keep the operation (v3.0 §5.2, §5.14),
 * single- and multi-part; the signature then verifies. */
static int group_newpaths_sign(void)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE vpriv, vpub;
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_BYTE n[1024];
    CK_ATTRIBUTE na = {CKA_MODULUS, n, sizeof(n)};
    CK_BYTE msg[] = "signed by the vault";
    CK_BYTE sig[1024];
    CK_ULONG sl = 0, want = 0;

    init_or_die();
    s = open_rw();
    vpriv = find_one(s, CKO_PRIVATE_KEY);
    vpub = find_one(s, CKO_PUBLIC_KEY);
    EXPECT(p11->C_GetAttributeValue(s, vpub, &na, 1), CKR_OK);
    want = na.ulValueLen;
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_OK);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), NULL, &sl), CKR_OK);
    CHECK(sl == want, "vault sign length query %lu, modulus %lu",
          (unsigned long)sl, (unsigned long)want);
    sl = want - 1;
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, &sl), CKR_BUFFER_TOO_SMALL);
    CHECK(sl == want, "vault sign short buffer %lu", (unsigned long)sl);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, &sl), CKR_OK);
    CHECK(sl == want, "vault signature length %lu", (unsigned long)sl);
    EXPECT(p11->C_VerifyInit(s, &m, vpub), CKR_OK);
    EXPECT(p11->C_Verify(s, msg, sizeof(msg), sig, sl), CKR_OK);
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_OK);
    EXPECT(p11->C_SignUpdate(s, msg, 5), CKR_OK);
    EXPECT(p11->C_SignUpdate(s, msg + 5, sizeof(msg) - 5), CKR_OK);
    sl = 0;
    EXPECT(p11->C_SignFinal(s, NULL, &sl), CKR_OK);
    CHECK(sl == want, "vault SignFinal length query %lu", (unsigned long)sl);
    sl = 8;
    EXPECT(p11->C_SignFinal(s, sig, &sl), CKR_BUFFER_TOO_SMALL);
    CHECK(sl == want, "vault SignFinal short buffer %lu", (unsigned long)sl);
    EXPECT(p11->C_SignFinal(s, sig, &sl), CKR_OK);
    EXPECT(p11->C_SignFinal(s, sig, &sl), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(p11->C_VerifyInit(s, &m, vpub), CKR_OK);
    EXPECT(p11->C_VerifyUpdate(s, msg, sizeof(msg)), CKR_OK);
    EXPECT(p11->C_VerifyFinal(s, sig, sl - 1), CKR_SIGNATURE_LEN_RANGE);
    EXPECT(p11->C_VerifyInit(s, &m, vpub), CKR_OK);
    EXPECT(p11->C_VerifyUpdate(s, msg, sizeof(msg)), CKR_OK);
    EXPECT(p11->C_VerifyFinal(s, sig, sl), CKR_OK);
    /* a failed sign ends it (NULL length pointer) */
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_OK);
    EXPECT(p11->C_Sign(s, msg, sizeof(msg), sig, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(p11->C_SignInit(s, &m, vpriv), CKR_OK);
    EXPECT(p11->C_Finalize(NULL), CKR_OK);
    return failures ? 1 : 0;
}

/* ---- group init-fail: a bad configuration ---- */

static int group_init_fail(void)
{
    CK_INFO info;

    EXPECT(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
    EXPECT(p11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    EXPECT(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* A second attempt fails the same way (nothing half-initialised). */
    EXPECT(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
    /* (abuse.sh also feeds configurations that are valid - null on an
     * optional key - so leave nothing initialised either way.) */
    (void)p11->C_Finalize(NULL);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    CK_C_GetFunctionList gfl;
    int rc = 2;

    if (argc < 3) {
        fprintf(stderr, "usage: %s MODULE GROUP [KEYNAME]\n", argv[0]);
        return 2;
    }
    if (argc > 3) {
        key_name = argv[3];
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (gfl == NULL || gfl(&p11) != CKR_OK) {
        fprintf(stderr, "C_GetFunctionList failed\n");
        return 2;
    }
    if (strcmp(argv[2], "null") == 0) {
        rc = group_null();
    } else if (strcmp(argv[2], "handles") == 0) {
        rc = group_handles();
    } else if (strcmp(argv[2], "templates") == 0) {
        rc = group_templates();
    } else if (strcmp(argv[2], "mech") == 0) {
        rc = group_mech();
    } else if (strcmp(argv[2], "opstate") == 0) {
        rc = group_opstate();
    } else if (strcmp(argv[2], "getattr") == 0) {
        rc = group_getattr();
    } else if (strcmp(argv[2], "threads") == 0) {
        /* Deterministic first: a thread that exits after C_Finalize. */
        survivor_case();
        rc = group_threads();
    } else if (strcmp(argv[2], "sign") == 0) {
        rc = group_sign();
    } else if (strcmp(argv[2], "newpaths") == 0) {
        rc = group_newpaths();
    } else if (strcmp(argv[2], "newpaths-delete") == 0) {
        rc = group_newpaths_delete();
    } else if (strcmp(argv[2], "newpaths-msg") == 0) {
        rc = group_newpaths_msg();
    } else if (strcmp(argv[2], "newpaths-sign") == 0) {
        rc = group_newpaths_sign();
    } else if (strcmp(argv[2], "init-fail") == 0) {
        rc = group_init_fail();
    } else {
        fprintf(stderr, "unknown group %s\n", argv[2]);
        return 2;
    }
    printf("%s: %d checks, %d failed\n", argv[2], checks, failures);
    dlclose(lib);
    return rc;
}
