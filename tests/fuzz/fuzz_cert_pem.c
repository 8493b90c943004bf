/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: PEM certificate + private key loading for the
 * client_certificate credential (akv_jwt_parse_pem, the code path
 * akv_jwt_load_pem runs after reading the file). The input is the file's
 * content. Invariants (abort on breach): success gives an RSA key and a
 * thumbprint and a signed assertion can be made with it; failure gives a
 * reason naming the source and no key. An encrypted key must be refused
 * without asking for a passphrase (a prompt would block here).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "keyvault/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EVP_PKEY *key = NULL;
    uint8_t x5t[20];
    char why[256] = "";
    /* a private heap copy: the parser must not read past SIZE bytes */
    uint8_t *copy = malloc(size > 0 ? size : 1);
    CK_RV rv;

    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    rv = akv_jwt_parse_pem(NULL, copy, size, "fuzz.pem", &key, x5t, why,
                           sizeof(why));
    if (rv == CKR_OK) {
        struct akv_secret jwt = AKV_SECRET_INIT;

        if (key == NULL || !EVP_PKEY_is_a(key, "RSA")
            || akv_jwt_assertion(NULL, key, x5t, "cid", "https://aud/t",
                                 1767225600, &jwt)
                   != CKR_OK
            || jwt.len == 0) {
            abort();
        }
        akv_secret_clear(&jwt);
        EVP_PKEY_free(key);
    } else {
        if (key != NULL) {
            abort();
        }
        if (rv == CKR_DEVICE_ERROR
            && strncmp(why, "certificate_file fuzz.pem: ", 27) != 0) {
            abort();
        }
        if (rv != CKR_DEVICE_ERROR && rv != CKR_ARGUMENTS_BAD
            && rv != CKR_HOST_MEMORY) {
            abort();
        }
    }
    free(copy);
    return 0;
}
