/* SPDX-License-Identifier: Apache-2.0 */
#include "ossl.h"

#include <openssl/provider.h>
#include <pthread.h>

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static OSSL_LIB_CTX *libctx; /* LOCKED by ctx_lock */

OSSL_LIB_CTX *akv_ossl_libctx(void)
{
    OSSL_LIB_CTX *ctx;

    pthread_mutex_lock(&ctx_lock);
    if (libctx == NULL) {
        ctx = OSSL_LIB_CTX_new();
        /* the provider stays loaded as long as the context lives */
        if (ctx != NULL && OSSL_PROVIDER_load(ctx, "default") == NULL) {
            OSSL_LIB_CTX_free(ctx);
            ctx = NULL;
        }
        libctx = ctx;
    }
    ctx = libctx;
    pthread_mutex_unlock(&ctx_lock);
    return ctx;
}

void akv_ossl_forget(void)
{
    (void)pthread_mutex_init(&ctx_lock, NULL);
    libctx = NULL;
}
