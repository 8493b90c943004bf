/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unwrap_driver - the client side of the request-path benchmark
 * (client_bench.sh): drives the module through its function list only, the
 * way a consumer does, and times one operation in a loop.
 *
 *   unwrap_driver MODULE unwrap LABEL THREADS ITERS
 *       each thread: own session, one C_WrapKey (RSA-OAEP-256) of a fresh
 *       AES-256 key and one warm-up C_UnwrapKey (token, key, connection),
 *       then ITERS timed C_UnwrapKey (Key Vault unwrapKey) + C_DestroyObject.
 *       ITERS 0 measures only the set-up (callgrind/memcheck subtract it).
 *       ITERS given as "Ns" (e.g. 5s): every thread runs until N seconds
 *       after the start line instead, and ops_per_s is the calls completed
 *       in that time over it - what wrk reports for its connections, all of
 *       them busy until the end. (A fixed count per thread times the
 *       slowest thread: threads whose connections share a busier server
 *       worker finish last, and the others stop before them.)
 *   unwrap_driver MODULE wrap LABEL THREADS ITERS
 *       the same with ITERS timed C_WrapKey (with "wrap": "local": a local
 *       RSA-OAEP-256 public-key operation).
 *   unwrap_driver - evp ITERS
 *       the plain OpenSSL loop the local wrap is measured against: one
 *       RSA-2048 key, one EVP_PKEY_CTX set up once, ITERS RSA-OAEP-256
 *       encryptions of 32 bytes.
 * Prints one line "op=... threads=T iters=I failures=F seconds=S ops_per_s=X"
 * (I: timed calls completed per thread, on average).
 * Exit status 0 when every call succeeded, 1 otherwise, 2 for bad usage.
 */
#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *p11;
static pthread_barrier_t start_line;
/* ITERS "Ns": the workers' common end (now_s), set once they all wait at
 * the start line */
static _Atomic double stop_at;

struct worker {
    const char *label;
    int wrap;
    int iters;
    int fails;
    int done; /* timed calls completed */
    double secs;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                 const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    if (p11->C_FindObjectsInit(s, t, 2) == CKR_OK) {
        (void)p11->C_FindObjects(s, &h, 1, &n);
        (void)p11->C_FindObjectsFinal(s);
    }
    return n == 1 ? h : CK_INVALID_HANDLE;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    CK_SLOT_ID slot[4];
    CK_ULONG ns = 4, wl = 0;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE dek = CK_INVALID_HANDLE, out;
    CK_RSA_PKCS_OAEP_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256,
                                 CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &p, sizeof(p)};
    CK_MECHANISM gm = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                         {CKA_TOKEN, &f, sizeof(f)},
                         {CKA_EXTRACTABLE, &t, sizeof(t)}};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_KEY_TYPE, &kt, sizeof(kt)}};
    CK_BYTE wrapped[1024];
    double t0;

    if (p11->C_GetSlotList(CK_TRUE, slot, &ns) != CKR_OK || ns == 0
        || p11->C_OpenSession(slot[0], CKF_SERIAL_SESSION | CKF_RW_SESSION,
                              NULL, NULL, &s)
               != CKR_OK) {
        w->fails++;
        goto wait;
    }
    pub = find_key(s, CKO_PUBLIC_KEY, w->label);
    priv = find_key(s, CKO_PRIVATE_KEY, w->label);
    wl = sizeof(wrapped);
    if (p11->C_GenerateKey(s, &gm, gt, 3, &dek) != CKR_OK
        || p11->C_WrapKey(s, &m, pub, dek, wrapped, &wl) != CKR_OK
        || p11->C_UnwrapKey(s, &m, priv, wrapped, wl, ut, 2, &out) != CKR_OK) {
        w->fails++;
    } else {
        (void)p11->C_DestroyObject(s, out);
    }
wait:
    (void)pthread_barrier_wait(&start_line);
    t0 = now_s();
    for (int i = 0;
         (w->iters >= 0 ? i < w->iters : now_s() < stop_at) && w->fails == 0;
         i++) {
        CK_ULONG l = sizeof(wrapped);

        if (w->wrap) {
            if (p11->C_WrapKey(s, &m, pub, dek, wrapped, &l) != CKR_OK) {
                w->fails++;
            }
        } else if (p11->C_UnwrapKey(s, &m, priv, wrapped, wl, ut, 2, &out)
                   != CKR_OK) {
            w->fails++;
        } else {
            (void)p11->C_DestroyObject(s, out);
        }
        w->done += w->fails == 0;
    }
    w->secs = now_s() - t0;
    if (s != CK_INVALID_HANDLE) {
        (void)p11->C_CloseSession(s);
    }
    return NULL;
}

static int run_module(const char *module, const char *op, const char *label,
                      int nthreads, int iters, double run_s)
{
    CK_C_GetFunctionList gfl;
    CK_C_INITIALIZE_ARGS ia = {0};
    pthread_t th[64];
    struct worker w[64];
    double secs = 0;
    int fails = 0;
    long done = 0;
    void *lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL || nthreads < 1 || nthreads > 64
        || (iters < 0 && run_s <= 0)) {
        fprintf(stderr, "cannot load %s or bad thread count\n", module);
        return 2;
    }
    gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    ia.flags = CKF_OS_LOCKING_OK;
    if (gfl == NULL || gfl(&p11) != CKR_OK
        || p11->C_Initialize(&ia) != CKR_OK) {
        fprintf(stderr, "C_Initialize failed\n");
        return 1;
    }
    (void)pthread_barrier_init(&start_line, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        w[i] = (struct worker){
            label, strcmp(op, "wrap") == 0, run_s > 0 ? -1 : iters, 0, 0, 0};
        (void)pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    stop_at = now_s() + 1e9;
    (void)pthread_barrier_wait(&start_line);
    if (run_s > 0) {
        stop_at = now_s() + run_s;
    }
    for (int i = 0; i < nthreads; i++) {
        (void)pthread_join(th[i], NULL);
        fails += w[i].fails;
        done += w[i].done;
        secs = w[i].secs > secs ? w[i].secs : secs;
    }
    (void)p11->C_Finalize(NULL);
    printf("op=%s threads=%d iters=%d failures=%d seconds=%.3f "
           "ops_per_s=%.1f\n",
           op, nthreads, (int)(done / nthreads), fails, secs,
           secs > 0 ? (double)done / secs : 0.0);
    return fails == 0 ? 0 : 1;
}

static int run_evp(int iters)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    EVP_PKEY_CTX *ctx = key != NULL ? EVP_PKEY_CTX_new(key, NULL) : NULL;
    unsigned char in[32] = {1}, out[256];
    int fails = 0;
    double t0;

    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0
        || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0
        || EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0
        || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0) {
        fprintf(stderr, "OpenSSL set-up failed\n");
        return 1;
    }
    t0 = now_s();
    for (int i = 0; i < iters; i++) {
        size_t ol = sizeof(out);

        fails += EVP_PKEY_encrypt(ctx, out, &ol, in, sizeof(in)) <= 0;
    }
    t0 = now_s() - t0;
    printf("op=evp threads=1 iters=%d failures=%d seconds=%.3f "
           "ops_per_s=%.1f\n",
           iters, fails, t0, t0 > 0 ? iters / t0 : 0.0);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    return fails == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[2], "evp") == 0) {
        return run_evp(atoi(argv[3]));
    }
    if (argc == 6
        && (strcmp(argv[2], "unwrap") == 0 || strcmp(argv[2], "wrap") == 0)) {
        /* "Ns": run for N seconds (see the top of this file) */
        return run_module(argv[1], argv[2], argv[3], atoi(argv[4]),
                          atoi(argv[5]),
                          strchr(argv[5], 's') != NULL ? atof(argv[5]) : 0);
    }
    fprintf(stderr, "usage: unwrap_driver MODULE unwrap|wrap LABEL THREADS "
                    "ITERS\n       unwrap_driver - evp ITERS\n");
    return 2;
}
