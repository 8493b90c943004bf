/* SPDX-License-Identifier: Apache-2.0 */
#include "ossl.h"

#include <openssl/ec.h>
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

int akv_ossl_ec_point_ok(int nid, const unsigned char *oct, size_t len)
{
    int ok = 0;
    EC_GROUP *g = NULL;
    EC_POINT *pt = NULL;
    BN_CTX *bn = NULL;

    if (oct == NULL || len < 3 || oct[0] != 0x04) {
        goto out;
    }
    /* Named-curve groups and point arithmetic are built-in code: no
     * provider fetch, so the private context is only passed for form. */
    g = EC_GROUP_new_by_curve_name_ex(akv_ossl_libctx(), NULL, nid);
    bn = BN_CTX_new_ex(akv_ossl_libctx());
    pt = g != NULL ? EC_POINT_new(g) : NULL;
    if (g == NULL || bn == NULL || pt == NULL) {
        goto out;
    }
    /* oct2point refuses a point off the curve (OpenSSL 3); the explicit
     * tests keep the rule visible whatever the version. */
    ok = EC_POINT_oct2point(g, pt, oct, len, bn) == 1
         && EC_POINT_is_on_curve(g, pt, bn) == 1
         && !EC_POINT_is_at_infinity(g, pt);
out:
    EC_POINT_free(pt);
    BN_CTX_free(bn);
    EC_GROUP_free(g);
    return ok;
}
