/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers declared in kv.h that every implementation shares: KeyBundle
 * struct ownership, the JsonWebKeyEncryptionAlgorithm names (keys.json
 * "JsonWebKeyEncryptionAlgorithm", API 7.4/7.6) and the once-per-process
 * libcurl initialisation.
 */
#include "kv.h"

#include <curl/curl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/secret.h"

static const char *const alg_names[AKV_KV_ALG_COUNT] = {
    [AKV_KV_ALG_RSA_OAEP] = "RSA-OAEP",
    [AKV_KV_ALG_RSA_OAEP_256] = "RSA-OAEP-256",
    [AKV_KV_ALG_RSA1_5] = "RSA1_5",
    [AKV_KV_ALG_A128KW] = "A128KW",
    [AKV_KV_ALG_A192KW] = "A192KW",
    [AKV_KV_ALG_A256KW] = "A256KW",
    [AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD] = "CKM_AES_KEY_WRAP_PAD",
    [AKV_KV_ALG_CKM_AES_KEY_WRAP] = "CKM_AES_KEY_WRAP",
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
    [AKV_KV_ALG_A128GCM] = "A128GCM",
    [AKV_KV_ALG_A192GCM] = "A192GCM",
    [AKV_KV_ALG_A256GCM] = "A256GCM",
    [AKV_KV_ALG_A128CBC] = "A128CBC",
    [AKV_KV_ALG_A192CBC] = "A192CBC",
    [AKV_KV_ALG_A256CBC] = "A256CBC",
    [AKV_KV_ALG_A128CBCPAD] = "A128CBCPAD",
    [AKV_KV_ALG_A192CBCPAD] = "A192CBCPAD",
    [AKV_KV_ALG_A256CBCPAD] = "A256CBCPAD",
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

void akv_kv_cert_clear(struct akv_kv_cert *c)
{
    if (c == NULL) {
        return;
    }
    free(c->der);
    memset(c, 0, sizeof(*c));
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

int akv_kv_aes_kw_alg(size_t bits, bool pad, enum akv_kv_alg *alg)
{
    static const struct {
        size_t bits;
        enum akv_kv_alg alg;
    } by_size[] = {
        {0, AKV_KV_ALG_CKM_AES_KEY_WRAP},
        {128, AKV_KV_ALG_A128KW},
        {192, AKV_KV_ALG_A192KW},
        {256, AKV_KV_ALG_A256KW},
    };

    for (size_t i = 0; i < sizeof(by_size) / sizeof(by_size[0]); i++) {
        if (by_size[i].bits == bits) {
            *alg = pad ? AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD : by_size[i].alg;
            return 0;
        }
    }
    return -1;
}

int akv_kv_aes_crypt_alg(size_t bits, enum akv_kv_aes_mode mode,
                         enum akv_kv_alg *alg)
{
    /* [mode][size]: keys.json JsonWebKeyEncryptionAlgorithm. */
    static const enum akv_kv_alg names[3][3] = {
        [AKV_KV_AES_GCM] = {AKV_KV_ALG_A128GCM, AKV_KV_ALG_A192GCM,
                            AKV_KV_ALG_A256GCM},
        [AKV_KV_AES_CBC] = {AKV_KV_ALG_A128CBC, AKV_KV_ALG_A192CBC,
                            AKV_KV_ALG_A256CBC},
        [AKV_KV_AES_CBCPAD] = {AKV_KV_ALG_A128CBCPAD, AKV_KV_ALG_A192CBCPAD,
                               AKV_KV_ALG_A256CBCPAD},
    };
    static const size_t sizes[3] = {128, 192, 256};

    if ((unsigned)mode > AKV_KV_AES_CBCPAD) {
        return -1;
    }
    for (size_t i = 0; i < 3; i++) {
        if (sizes[i] == bits) {
            *alg = names[mode][i];
            return 0;
        }
    }
    return -1;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static bool curl_hooks_ok;

/*
 * libcurl's allocator, installed with curl_global_init_mem: every block
 * libcurl frees or moves is wiped first (its usable size, as malloc reports
 * it), so the request buffer (Authorization header, request body), the
 * receive buffer (tokens, unwrapped keys) and the header buffers leave no
 * copy in freed heap. Blocks come from the C library's malloc as before.
 */
static atomic_ulong curl_allocs;

static void *wipe_malloc(size_t n)
{
    curl_allocs++;
    return malloc(n);
}

static void wipe_free(void *p)
{
    if (p != NULL) {
        akv_secret_wipe(p, malloc_usable_size(p));
        free(p);
    }
}

static void *wipe_realloc(void *p, size_t n)
{
    size_t old;
    void *q;

    if (p == NULL) {
        return wipe_malloc(n);
    }
    if (n == 0) {
        wipe_free(p);
        return NULL;
    }
    /* never let realloc move a block without wiping the old one */
    old = malloc_usable_size(p);
    if (n <= old) {
        return p;
    }
    q = malloc(n);
    if (q == NULL) {
        return NULL;
    }
    memcpy(q, p, old);
    wipe_free(p);
    return q;
}

static char *wipe_strdup(const char *s)
{
    return strdup(s);
}

static void *wipe_calloc(size_t n, size_t size)
{
    curl_allocs++;
    return calloc(n, size);
}

static void init_curl(void)
{
    unsigned long before = curl_allocs;
    char *probe;

    /* If the host program initialised libcurl first, curl keeps its
     * allocator and this call only counts a reference. */
    curl_init_rc =
        curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free,
                             wipe_realloc, wipe_strdup, wipe_calloc);
    if (curl_init_rc != CURLE_OK) {
        return;
    }
    probe = curl_easy_escape(NULL, "probe", 5);
    curl_hooks_ok = curl_allocs != before;
    curl_free(probe);
    if (!curl_hooks_ok) {
        AKV_LOG_INFO("libcurl was initialised by the host program before this "
                     "module: its buffers are freed without wiping (see "
                     "docs/SECURITY.md, Secrets in memory)");
    }
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
