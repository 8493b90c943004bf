/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers declared in kv.h that every implementation shares: KeyBundle
 * struct ownership, the JsonWebKeyEncryptionAlgorithm names (keys.json
 * "JsonWebKeyEncryptionAlgorithm", API 7.4/7.6) and the once-per-process
 * libcurl initialisation.
 */
#include "kv.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

static const char *const alg_names[AKV_KV_ALG_COUNT] = {
    [AKV_KV_ALG_RSA_OAEP] = "RSA-OAEP",
    [AKV_KV_ALG_RSA_OAEP_256] = "RSA-OAEP-256",
    [AKV_KV_ALG_RSA1_5] = "RSA1_5",
    [AKV_KV_ALG_A128KW] = "A128KW",
    [AKV_KV_ALG_A192KW] = "A192KW",
    [AKV_KV_ALG_A256KW] = "A256KW",
    [AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD] = "CKM_AES_KEY_WRAP_PAD",
    [AKV_KV_ALG_RS256] = "RS256",
    [AKV_KV_ALG_RS384] = "RS384",
    [AKV_KV_ALG_RS512] = "RS512",
    [AKV_KV_ALG_PS256] = "PS256",
    [AKV_KV_ALG_PS384] = "PS384",
    [AKV_KV_ALG_PS512] = "PS512",
    [AKV_KV_ALG_ES256] = "ES256",
    [AKV_KV_ALG_ES384] = "ES384",
    [AKV_KV_ALG_ES512] = "ES512",
    [AKV_KV_ALG_ES256K] = "ES256K",
    [AKV_KV_ALG_RSNULL] = "RSNULL",
};

void akv_kv_key_clear(struct akv_kv_key *key)
{
    if (key == NULL) {
        return;
    }
    free(key->n);
    free(key->e);
    memset(key, 0, sizeof(*key));
}

CK_RV akv_kv_key_copy(struct akv_kv_key *dst, const struct akv_kv_key *src)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_kv_key tmp;

    if (dst == NULL || src == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    tmp = *src;
    tmp.n = NULL;
    tmp.e = NULL;
    if (src->n_len > 0 && src->n != NULL) {
        tmp.n = malloc(src->n_len);
        if (tmp.n == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        memcpy(tmp.n, src->n, src->n_len);
    }
    if (src->e_len > 0 && src->e != NULL) {
        tmp.e = malloc(src->e_len);
        if (tmp.e == NULL) {
            free(tmp.n);
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        memcpy(tmp.e, src->e, src->e_len);
    }
    *dst = tmp;
    rv = CKR_OK;
out:
    return rv;
}

const char *akv_kv_alg_name(enum akv_kv_alg alg)
{
    if ((int)alg < 0 || alg >= AKV_KV_ALG_COUNT) {
        return NULL;
    }
    return alg_names[alg];
}

int akv_kv_alg_parse(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    for (int i = 0; i < (int)AKV_KV_ALG_COUNT; i++) {
        if (strcmp(name, alg_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void init_curl(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CK_RV akv_kv_global_init(void)
{
    CK_RV rv = CKR_GENERAL_ERROR;

    if (pthread_once(&curl_once, init_curl) != 0) {
        goto out;
    }
    if (curl_init_rc != CURLE_OK) {
        AKV_LOG_ERR("curl_global_init failed: %s",
                    curl_easy_strerror(curl_init_rc));
        goto out;
    }
    rv = CKR_OK;
out:
    return rv;
}
