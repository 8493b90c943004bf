/* SPDX-License-Identifier: Apache-2.0 */
#include "errmap.h"

#include <stddef.h>
#include <string.h>

/*
 * First matching row wins. status_lo..status_hi inclusive; op, code and
 * inner NULL/ANY = any. Keep specific rows above general ones.
 */
struct row {
    long status_lo;
    long status_hi;
    enum akv_errmap_op op;
    const char *code;
    const char *inner;
    CK_RV rv;
};

static const struct row table[] = {
    /* Token endpoints: every failure is "the credential cannot get a
     * token" (design.md: CKR_DEVICE_ERROR, logged with the identity's
     * error). */
    {0, 999, AKV_ERRMAP_TOKEN, NULL, NULL, CKR_DEVICE_ERROR},
    /* No answer within the budget (connection refused, DNS, TLS,
     * timeout). */
    {0, 0, AKV_ERRMAP_ANY, NULL, NULL, CKR_DEVICE_ERROR},
    /* Unwrap with the wrong key version or a corrupt blob: "Error occurred
     * while decoding OAEP padding." (azure-sdk-for-net#36269). */
    {400, 400, AKV_ERRMAP_UNWRAP, "BadParameter", NULL,
     CKR_WRAPPED_KEY_INVALID},
    /* Create Key: a key size, exponent or curve the vault does not offer
     * (the template asked for it). */
    {400, 400, AKV_ERRMAP_CREATE, "BadParameter", NULL,
     CKR_ATTRIBUTE_VALUE_INVALID},
    /* Managed HSM decrypt: a wrong GCM tag, aad or iv, bad CBC padding, or
     * an alg whose size is not the key's; encrypt: the size, or a length
     * the algorithm does not take. */
    {400, 400, AKV_ERRMAP_DECRYPT, "BadParameter", NULL,
     CKR_ENCRYPTED_DATA_INVALID},
    {400, 400, AKV_ERRMAP_ENCRYPT, "BadParameter", NULL, CKR_DATA_INVALID},
    /* Still 401 after one token refresh. */
    {401, 401, AKV_ERRMAP_ANY, NULL, NULL, CKR_DEVICE_ERROR},
    /* Access policy / RBAC / firewall / disabled key / nbf-exp window:
     * all 403s mean "this identity may not do this to this key now". */
    {403, 403, AKV_ERRMAP_ANY, NULL, NULL, CKR_KEY_FUNCTION_NOT_PERMITTED},
    /* KeyNotFound: deleted (incl. soft-deleted) key or unknown version. */
    {404, 404, AKV_ERRMAP_ANY, NULL, NULL, CKR_KEY_HANDLE_INVALID},
    /* Create Key on the name of a deleted (recoverable) key: the label
     * names a key this call cannot create (keygen.h: like a taken name,
     * CKR_ATTRIBUTE_VALUE_INVALID; v3.0 §5.1.6 ATTRIBUTE_VALUE_INVALID). */
    {409, 409, AKV_ERRMAP_CREATE, NULL, NULL, CKR_ATTRIBUTE_VALUE_INVALID},
    /* 409 during a delete: the key is going away. */
    {409, 409, AKV_ERRMAP_ANY, NULL, "ObjectIsBeingDeleted",
     CKR_KEY_HANDLE_INVALID},
    {409, 409, AKV_ERRMAP_ANY, NULL, "ObjectIsDeletedButRecoverable",
     CKR_KEY_HANDLE_INVALID},
    /* Any other 409 is service-side state, not a request the module built
     * wrongly: device error rather than the "bug" code. */
    {409, 409, AKV_ERRMAP_ANY, NULL, NULL, CKR_DEVICE_ERROR},
    /* Retryable classes that exhausted the retry budget. */
    {408, 408, AKV_ERRMAP_ANY, NULL, NULL, CKR_DEVICE_ERROR},
    {429, 429, AKV_ERRMAP_ANY, NULL, NULL, CKR_DEVICE_ERROR},
    {500, 599, AKV_ERRMAP_ANY, NULL, NULL, CKR_DEVICE_ERROR},
    /* Any other 4xx: a request the module built wrongly (logged as a bug). */
    {400, 499, AKV_ERRMAP_ANY, NULL, NULL, CKR_GENERAL_ERROR},
    /* 1xx/3xx (redirects are never followed) and anything else. */
    {1, 999, AKV_ERRMAP_ANY, NULL, NULL, CKR_DEVICE_ERROR},
};

static int match_str(const char *want, const char *have)
{
    if (want == NULL) {
        return 1;
    }
    return have != NULL && strcmp(want, have) == 0;
}

CK_RV akv_errmap_rv(enum akv_errmap_op op, long status, const char *code,
                    const char *inner)
{
    if (status >= 200 && status <= 299) {
        return CKR_GENERAL_ERROR;
    }
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const struct row *r = &table[i];
        if (status < r->status_lo || status > r->status_hi) {
            continue;
        }
        if (r->op != AKV_ERRMAP_ANY && r->op != op) {
            continue;
        }
        if (!match_str(r->code, code) || !match_str(r->inner, inner)) {
            continue;
        }
        return r->rv;
    }
    return CKR_DEVICE_ERROR;
}

const char *akv_errmap_op_name(enum akv_errmap_op op)
{
    switch (op) {
    case AKV_ERRMAP_GET:
        return "get";
    case AKV_ERRMAP_WRAP:
        return "wrapkey";
    case AKV_ERRMAP_UNWRAP:
        return "unwrapkey";
    case AKV_ERRMAP_SIGN:
        return "sign";
    case AKV_ERRMAP_TOKEN:
        return "token";
    case AKV_ERRMAP_GET_CERT:
        return "getcertificate";

    case AKV_ERRMAP_CREATE:
        return "create";
    case AKV_ERRMAP_DELETE:
        return "delete";
    case AKV_ERRMAP_ENCRYPT:
        return "encrypt";
    case AKV_ERRMAP_DECRYPT:
        return "decrypt";
    case AKV_ERRMAP_ANY:
        break;
    }
    return "?";
}
