/* SPDX-License-Identifier: Apache-2.0 */
#include "fake_kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "common/secret.h"

#define FAKE_MAX_VERSIONS 8

struct fake_kv {
    struct akv_kv base; /* first, as kv.h requires */
    char name[AKV_KV_NAME_MAX];
    EVP_PKEY *keys[FAKE_MAX_VERSIONS];
    char versions[FAKE_MAX_VERSIONS][AKV_KV_VERSION_MAX];
    int n;
    struct {
        char op[8];
        char version[AKV_KV_VERSION_MAX]; /* "" = any */
        CK_RV rv;
    } fail;
    unsigned n_get, n_wrap, n_unwrap;
};

static struct fake_kv *self(struct akv_kv *kv)
{
    return (struct fake_kv *)kv;
}

static int find(struct fake_kv *f, const char *name, const char *version)
{
    if (name == NULL || strcasecmp(name, f->name) != 0) {
        return -1;
    }
    if (version == NULL || version[0] == '\0') {
        return f->n - 1;
    }
    for (int i = 0; i < f->n; i++) {
        if (strcasecmp(version, f->versions[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static CK_RV injected(struct fake_kv *f, const char *op, int idx)
{
    if (f->fail.rv == CKR_OK || strcmp(f->fail.op, op) != 0) {
        return CKR_OK;
    }
    if (f->fail.version[0] != '\0'
        && (idx < 0 || strcmp(f->fail.version, f->versions[idx]) != 0)) {
        return CKR_OK;
    }
    return f->fail.rv;
}

static void make_kid(struct fake_kv *f, int idx, char *kid)
{
    snprintf(kid, AKV_KV_KID_MAX, "https://fake.vault.azure.net/keys/%s/%s",
             f->name, f->versions[idx]);
}

static CK_RV fake_get_key(struct akv_kv *kv, const char *name,
                          const char *version, struct akv_kv_key *out)
{
    struct fake_kv *f = self(kv);
    int idx = find(f, name, version);
    CK_RV rv;

    f->n_get++;
    rv = injected(f, "get", idx);
    if (rv != CKR_OK) {
        return rv;
    }
    if (idx < 0) {
        return CKR_KEY_HANDLE_INVALID;
    }
    memset(out, 0, sizeof(*out));
    make_kid(f, idx, out->kid);
    snprintf(out->name, sizeof(out->name), "%s", f->name);
    snprintf(out->version, sizeof(out->version), "%s", f->versions[idx]);
    out->kty = AKV_KV_KTY_RSA;
    snprintf(out->kty_name, sizeof(out->kty_name), "RSA");
    out->key_ops = AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY;
    out->enabled = true;
    return CKR_OK;
}

static int set_padding(EVP_PKEY_CTX *ctx, enum akv_kv_alg alg)
{
    switch (alg) {
    case AKV_KV_ALG_RSA_OAEP:
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0
               && EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) > 0;
    case AKV_KV_ALG_RSA_OAEP_256:
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0
               && EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) > 0
               && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0;
    case AKV_KV_ALG_RSA1_5:
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    default:
        return 0;
    }
}

static CK_RV fake_wrap(struct akv_kv *kv, const char *name, const char *version,
                       enum akv_kv_alg alg, const uint8_t *in, size_t in_len,
                       uint8_t **out, size_t *out_len, char *kid_out)
{
    struct fake_kv *f = self(kv);
    int idx = find(f, name, version);
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    CK_RV rv = CKR_GENERAL_ERROR;

    f->n_wrap++;
    rv = injected(f, "wrap", idx);
    if (rv != CKR_OK) {
        goto out;
    }
    if (idx < 0) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    rv = CKR_GENERAL_ERROR;
    ctx = EVP_PKEY_CTX_new(f->keys[idx], NULL);
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 || !set_padding(ctx, alg)
        || EVP_PKEY_encrypt(ctx, NULL, &len, in, in_len) <= 0) {
        goto out;
    }
    buf = malloc(len);
    if (buf == NULL || EVP_PKEY_encrypt(ctx, buf, &len, in, in_len) <= 0) {
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    if (kid_out != NULL) {
        make_kid(f, idx, kid_out);
    }
    rv = CKR_OK;
out:
    free(buf);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

static CK_RV fake_unwrap(struct akv_kv *kv, const char *name,
                         const char *version, enum akv_kv_alg alg,
                         const uint8_t *in, size_t in_len,
                         struct akv_secret *out)
{
    struct fake_kv *f = self(kv);
    int idx = find(f, name, version);
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = 0;
    CK_RV rv = CKR_GENERAL_ERROR;

    f->n_unwrap++;
    rv = injected(f, "unwrap", idx);
    if (rv != CKR_OK) {
        goto out;
    }
    if (idx < 0) {
        rv = CKR_KEY_HANDLE_INVALID;
        goto out;
    }
    rv = CKR_GENERAL_ERROR;
    ctx = EVP_PKEY_CTX_new(f->keys[idx], NULL);
    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) <= 0 || !set_padding(ctx, alg)
        || EVP_PKEY_decrypt(ctx, NULL, &len, in, in_len) <= 0) {
        goto out;
    }
    if (akv_secret_alloc(out, len) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (EVP_PKEY_decrypt(ctx, out->data, &len, in, in_len) <= 0) {
        /* As Key Vault: 400 BadParameter for a blob of another version. */
        akv_secret_clear(out);
        rv = CKR_WRAPPED_KEY_INVALID;
        goto out;
    }
    out->len = len;
    rv = CKR_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

static void fake_destroy(struct akv_kv *kv)
{
    struct fake_kv *f = self(kv);
    if (f == NULL) {
        return;
    }
    for (int i = 0; i < f->n; i++) {
        EVP_PKEY_free(f->keys[i]);
    }
    free(f);
}

static const struct akv_kv_ops fake_ops = {
    fake_get_key,
    fake_wrap,
    fake_unwrap,
    fake_destroy,
};

const char *fake_kv_rotate(struct akv_kv *kv)
{
    struct fake_kv *f = self(kv);
    uint8_t rnd[16];
    EVP_PKEY *k = NULL;

    if (f->n >= FAKE_MAX_VERSIONS || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NULL;
    }
    k = EVP_RSA_gen(2048);
    if (k == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        snprintf(f->versions[f->n] + 2 * i, 3, "%02x", rnd[i]);
    }
    f->keys[f->n] = k;
    f->n++;
    return f->versions[f->n - 1];
}

struct akv_kv *fake_kv_new(const char *name)
{
    struct fake_kv *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return NULL;
    }
    f->base.ops = &fake_ops;
    snprintf(f->name, sizeof(f->name), "%s", name);
    if (fake_kv_rotate(&f->base) == NULL) {
        free(f);
        return NULL;
    }
    return &f->base;
}

const char *fake_kv_current(struct akv_kv *kv)
{
    return self(kv)->versions[self(kv)->n - 1];
}

void fake_kv_fail(struct akv_kv *kv, const char *op, const char *version,
                  CK_RV rv)
{
    struct fake_kv *f = self(kv);
    snprintf(f->fail.op, sizeof(f->fail.op), "%s", op);
    snprintf(f->fail.version, sizeof(f->fail.version), "%s",
             version != NULL ? version : "");
    f->fail.rv = rv;
}

unsigned fake_kv_calls(struct akv_kv *kv, const char *op)
{
    struct fake_kv *f = self(kv);
    if (strcmp(op, "get") == 0) {
        return f->n_get;
    }
    if (strcmp(op, "wrap") == 0) {
        return f->n_wrap;
    }
    return f->n_unwrap;
}
