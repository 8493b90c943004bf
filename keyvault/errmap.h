/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one table that turns a Key Vault answer (HTTP status, error.code,
 * error.innererror.code) into a CK_RV, following kv.h's error contract and
 * design.md "Errors: Key Vault -> PKCS#11". Sources for the codes:
 * keyvault-protocol.md §3.2 (Key Vault REST error envelope, common.json).
 */
#ifndef AKV_KEYVAULT_ERRMAP_H
#define AKV_KEYVAULT_ERRMAP_H

#include <p11-kit/pkcs11.h>

enum akv_errmap_op {
    AKV_ERRMAP_ANY = 0,  /* table wildcard; not passed by callers */
    AKV_ERRMAP_GET,      /* GET /keys/{name}[/{version}] */
    AKV_ERRMAP_WRAP,     /* POST .../wrapkey */
    AKV_ERRMAP_UNWRAP,   /* POST .../unwrapkey */
    AKV_ERRMAP_SIGN,     /* POST .../sign */
    AKV_ERRMAP_TOKEN,    /* Entra ID / managed-identity token endpoints */
    AKV_ERRMAP_GET_CERT, /* GET /certificates/{name}[/{version}] */
    AKV_ERRMAP_CREATE,   /* POST /keys/{name}/create */
    AKV_ERRMAP_DELETE,   /* DELETE /keys/{name} */
    AKV_ERRMAP_ENCRYPT,  /* POST .../encrypt */
    AKV_ERRMAP_DECRYPT,  /* POST .../decrypt */
};

/*
 * akv_errmap_rv - STATUS: HTTP status of the final answer (0 = no answer:
 * connection error or timeout after the retry budget). CODE / INNER: Key
 * Vault error.code / innererror.code, or NULL/"" when absent. Never returns
 * CKR_OK (call it for non-2xx answers only; a 2xx gives CKR_GENERAL_ERROR).
 */
CK_RV akv_errmap_rv(enum akv_errmap_op op, long status, const char *code,
                    const char *inner);

/* akv_errmap_op_name - "get", "wrapkey", "unwrapkey", "sign", "token",
 * "getcertificate", "create", "delete", "encrypt", "decrypt" for logs.
 */
const char *akv_errmap_op_name(enum akv_errmap_op op);

#endif /* AKV_KEYVAULT_ERRMAP_H */
