/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed HSM symmetric encrypt/decrypt on oct-HSM keys (keys.json
 * JsonWebKeyEncryptionAlgorithm, api-version 7.2+): A128GCM, A192GCM,
 * A256GCM (NIST SP 800-38D: the service picks a 12-byte IV on encrypt and
 * answers it with the 16-byte tag; aad optional) and A128CBC, A192CBC,
 * A256CBC (no padding: whole 16-byte blocks), A128CBCPAD, A192CBCPAD,
 * A256CBCPAD (PKCS#7) with the caller's 16-byte iv (SP 800-38A). The
 * alg's size must be the key's.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "emu.h"

struct aes_alg {
    const char *name;
    int bits;
    int gcm; /* 1 GCM, 0 CBC */
    int pad; /* CBC: PKCS#7 */
};

static const struct aes_alg algs[] = {
    {"A128GCM", 128, 1, 0},    {"A192GCM", 192, 1, 0},
    {"A256GCM", 256, 1, 0},    {"A128CBC", 128, 0, 0},
    {"A192CBC", 192, 0, 0},    {"A256CBC", 256, 0, 0},
    {"A128CBCPAD", 128, 0, 1}, {"A192CBCPAD", 192, 0, 1},
    {"A256CBCPAD", 256, 0, 1},
};

static const EVP_CIPHER *cipher_of(const struct aes_alg *a)
{
    switch (a->bits) {
    case 128:
        return a->gcm ? EVP_aes_128_gcm() : EVP_aes_128_cbc();
    case 192:
        return a->gcm ? EVP_aes_192_gcm() : EVP_aes_192_cbc();
    default:
        return a->gcm ? EVP_aes_256_gcm() : EVP_aes_256_cbc();
    }
}

int emu_aes_crypt(const struct emu_keyver *kv, int decrypt, const char *alg,
                  const unsigned char *in, size_t inlen,
                  struct emu_aes_params *p, unsigned char **out, size_t *outlen,
                  const char **err)
{
    const struct aes_alg *a = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    size_t i, cap = inlen + 32;
    int l1 = 0, l2 = 0, rc = -1;

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(alg, algs[i].name) == 0) {
            a = &algs[i];
        }
    }
    if (!a) {
        return 1; /* not ours: emu_key_crypt's algorithms */
    }
    if (strcmp(kv->kty, "oct-HSM") != 0 && strcmp(kv->kty, "oct") != 0) {
        *err = "Invalid algorithm for the key type.";
        return -1;
    }
    if (a->bits != kv->bits) {
        *err = "The algorithm does not match the key size.";
        return -1;
    }
    if (a->gcm) {
        if (!decrypt) {
            /* The service chooses the IV (SP 800-38D 8.2.2, random). */
            p->iv_len = 12;
            if (RAND_bytes(p->iv, 12) != 1) {
                *err = "Internal error.";
                return -1;
            }
        } else if (p->iv_len != 12 || p->tag_len != 16) {
            *err = "AES-GCM decryption needs the 12-byte 'iv' and the "
                   "16-byte 'tag' of the encryption.";
            return -1;
        }
    } else if (p->iv_len != 16) {
        *err = "AES-CBC needs a 16-byte 'iv'.";
        return -1;
    } else if (inlen == 0 || ((!a->pad || decrypt) && inlen % 16 != 0)) {
        *err = "The length of the input is not valid for the algorithm.";
        return -1;
    }
    ctx = EVP_CIPHER_CTX_new();
    buf = malloc(cap);
    if (!ctx || !buf) {
        *err = "Internal error.";
        goto out;
    }
    if (!EVP_CipherInit_ex(ctx, cipher_of(a), NULL, NULL, NULL, !decrypt)
        || (a->gcm
            && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)p->iv_len,
                                    NULL))
        || !EVP_CipherInit_ex(ctx, NULL, NULL, kv->oct, p->iv, !decrypt)
        || !EVP_CIPHER_CTX_set_padding(ctx, a->pad)
        || (a->gcm && p->aad_len
            && !EVP_CipherUpdate(ctx, NULL, &l1, p->aad, (int)p->aad_len))
        || (a->gcm && decrypt
            && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, p->tag))
        || !EVP_CipherUpdate(ctx, buf, &l1, in, (int)inlen)
        || !EVP_CipherFinal_ex(ctx, buf + l1, &l2)) {
        ERR_clear_error();
        *err = decrypt ? "Error occurred while decrypting the data."
                       : "Internal error.";
        goto out;
    }
    if (a->gcm && !decrypt) {
        p->tag_len = 16;
        if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p->tag)) {
            *err = "Internal error.";
            goto out;
        }
    }
    p->answer_iv = 1;
    p->answer_tag = a->gcm && !decrypt;
    *out = buf;
    *outlen = (size_t)(l1 + l2);
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        OPENSSL_cleanse(buf, cap);
    }
    free(buf);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}
