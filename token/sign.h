/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing and verification (v3.0 §5.12 C_Sign*, §5.13 C_Verify*) for the
 * mechanisms whose mechanism-table row (token/mech.h) offers CKF_SIGN /
 * CKF_VERIFY. Signing with a vault private key is Key Vault "Sign" (POST
 * /keys/{name}/{version}/sign, keys/sign permission) over a digest made
 * locally: CKM_RSA_PKCS takes a DER DigestInfo (RFC 8017 §9.2) whose
 * SHA-256/384/512 OID picks RS256/384/512 (any other input of at most
 * k - 11 bytes - a SHA-1 DigestInfo, TLS 1.0's MD5||SHA-1 - is signed
 * with RSNULL, the same PKCS#1 v1.5 padding over the bytes as given);
 * CKM_SHA*_RSA_PKCS hash the data and use RS*; CKM_RSA_PKCS_PSS (the data is
 * the hash) and CKM_SHA*_RSA_PKCS_PSS use PS*; CKM_ECDSA (the data is the hash)
 * and CKM_ECDSA_SHA* use ES256/ES384/ES512/ES256K by the key's curve, and the
 * vault's r||s is the PKCS#11 ECDSA signature (Current Mechanisms §2.3.1).
 * Verification runs locally with the public key object in the private
 * OpenSSL context (no vault call).
 *
 * Output convention (v3.0 §5.2): the signature length is known from the
 * key (RSA modulus bytes, ECDSA twice the field size), so a NULL or short
 * signature buffer gets the exact length without a vault call.
 *
 * Ending (v3.0 §5.12, §5.13): C_Sign / C_SignFinal end the operation unless
 * they return CKR_BUFFER_TOO_SMALL or answer a length query; an Update
 * that fails ends it; C_Verify / C_VerifyFinal always end it. A NULL
 * pointer (data with a length, the length pointer) is CKR_ARGUMENTS_BAD
 * and ends it too.
 */
#ifndef AKV_TOKEN_SIGN_H
#define AKV_TOKEN_SIGN_H

#include <p11-kit/pkcs11.h>

struct akv_sig_op;

/* akv_sign_op_free - ends an operation (key reference dropped, digest
 * context freed). NULL-safe. */
void akv_sign_op_free(struct akv_sig_op *op);

/*
 * C_SignInit / C_VerifyInit cores: akv_mech_plan (CKR_MECHANISM_INVALID,
 * CKR_KEY_TYPE_INCONSISTENT, CKR_MECHANISM_PARAM_INVALID - PSS parameters
 * Key Vault cannot honour: a hash or MGF other than the mechanism's, a
 * salt length other than the hash length -, CKR_KEY_FUNCTION_NOT_PERMITTED
 * for CKA_SIGN/CKA_VERIFY FALSE), CKR_KEY_HANDLE_INVALID,
 * CKR_OPERATION_ACTIVE, CKR_HOST_MEMORY. No network.
 */
CK_RV akv_sign_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                    CK_OBJECT_HANDLE key);
CK_RV akv_verify_init(CK_SESSION_HANDLE h, const CK_MECHANISM *mech,
                      CK_OBJECT_HANDLE key);

/*
 * C_Sign: DATA (a DigestInfo, a digest or the message, by mechanism) ->
 * SIG. CKR_DATA_LEN_RANGE (a digest of the wrong length for the
 * algorithm; CKM_RSA_PKCS input empty or over k - 11 bytes),
 * CKR_KEY_FUNCTION_NOT_PERMITTED (the identity lacks keys/sign, the key is
 * disabled or expired: one log line), CKR_KEY_HANDLE_INVALID (the version
 * is gone), CKR_DEVICE_ERROR, CKR_BUFFER_TOO_SMALL,
 * CKR_OPERATION_NOT_INITIALIZED, CKR_ARGUMENTS_BAD.
 */
CK_RV akv_sign(CK_SESSION_HANDLE h, const CK_BYTE *data, CK_ULONG len,
               CK_BYTE *sig, CK_ULONG *sig_len);
/* C_SignUpdate / C_SignFinal: only the hashing mechanisms (others:
 * CKR_MECHANISM_INVALID, the operation ends); errors as akv_sign. */
CK_RV akv_sign_update(CK_SESSION_HANDLE h, const CK_BYTE *part, CK_ULONG len);
CK_RV akv_sign_final(CK_SESSION_HANDLE h, CK_BYTE *sig, CK_ULONG *sig_len);

/* C_Verify / C_VerifyUpdate / C_VerifyFinal: CKR_OK, CKR_SIGNATURE_INVALID,
 * CKR_SIGNATURE_LEN_RANGE, CKR_DATA_LEN_RANGE, CKR_ARGUMENTS_BAD,
 * CKR_OPERATION_NOT_INITIALIZED. */
CK_RV akv_verify(CK_SESSION_HANDLE h, const CK_BYTE *data, CK_ULONG len,
                 const CK_BYTE *sig, CK_ULONG sig_len);
CK_RV akv_verify_update(CK_SESSION_HANDLE h, const CK_BYTE *part, CK_ULONG len);
CK_RV akv_verify_final(CK_SESSION_HANDLE h, const CK_BYTE *sig,
                       CK_ULONG sig_len);

#endif /* AKV_TOKEN_SIGN_H */
