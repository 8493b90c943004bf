/* SPDX-License-Identifier: Apache-2.0 */
#include "vault_aes.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "mech.h"
#include "token.h"

#define GCM_TAG    16 /* bytes: Managed HSM's AES-GCM tag */
#define SIZE_SLOTS 64 /* learnt key sizes kept (key versions) */

/* Learnt sizes of oct-HSM key versions, by versioned kid; a small ring. */
static struct {
    char kid[AKV_KV_KID_MAX];
    size_t bits;
} sizes[SIZE_SLOTS];
static size_t sizes_next;
static pthread_mutex_t sizes_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t size_get(const char *kid)
{
    size_t bits = 0;

    pthread_mutex_lock(&sizes_mu);
    for (size_t i = 0; i < SIZE_SLOTS && bits == 0; i++) {
        if (sizes[i].bits != 0 && strcmp(sizes[i].kid, kid) == 0) {
            bits = sizes[i].bits;
        }
    }
    pthread_mutex_unlock(&sizes_mu);
    return bits;
}

static void size_put(const char *kid, size_t bits)
{
    pthread_mutex_lock(&sizes_mu);
    (void)snprintf(sizes[sizes_next].kid, sizeof(sizes[0].kid), "%s", kid);
    sizes[sizes_next].bits = bits;
    sizes_next = (sizes_next + 1) % SIZE_SLOTS;
    pthread_mutex_unlock(&sizes_mu);
}

void akv_vault_aes_forget(void)
{
    pthread_mutex_lock(&sizes_mu);
    memset(sizes, 0, sizeof(sizes));
    sizes_next = 0;
    pthread_mutex_unlock(&sizes_mu);
}

CK_RV akv_vault_aes_init(struct akv_vault_aes *p, const CK_MECHANISM *mech)
{
    CK_GCM_PARAMS g;
    CK_RV rv;

    memset(p, 0, sizeof(*p));
    switch (mech->mechanism) {
    case CKM_AES_CBC:
    case CKM_AES_CBC_PAD:
        if (mech->pParameter == NULL || mech->ulParameterLen != 16) {
            return CKR_MECHANISM_PARAM_INVALID;
        }
        p->mode =
            mech->mechanism == CKM_AES_CBC ? AKV_KV_AES_CBC : AKV_KV_AES_CBCPAD;
        memcpy(p->iv, mech->pParameter, 16);
        p->iv_len = 16;
        return CKR_OK;
    case CKM_AES_GCM:
        rv = akv_mech_gcm_params(mech, &g);
        if (rv != CKR_OK || g.ulIvLen != AKV_MECH_HSM_GCM_IV
            || g.ulTagBits != (CK_ULONG)8 * GCM_TAG
            || g.ulAADLen > AKV_KV_CRYPT_MAX) {
            return CKR_MECHANISM_PARAM_INVALID;
        }
        p->mode = AKV_KV_AES_GCM;
        memcpy(p->iv, g.pIv, g.ulIvLen);
        p->iv_len = g.ulIvLen;
        if (g.ulAADLen > 0) {
            p->aad = malloc(g.ulAADLen);
            if (p->aad == NULL) {
                return CKR_HOST_MEMORY;
            }
            memcpy(p->aad, g.pAAD, g.ulAADLen);
            p->aad_len = g.ulAADLen;
        }
        return CKR_OK;
    default:
        return CKR_MECHANISM_INVALID;
    }
}

void akv_vault_aes_clear(struct akv_vault_aes *p)
{
    if (p == NULL) {
        return;
    }
    free(p->aad);
    memset(p, 0, sizeof(*p));
}

size_t akv_vault_aes_tag_len(const struct akv_vault_aes *p)
{
    return p->mode == AKV_KV_AES_GCM ? GCM_TAG : 0;
}

CK_RV akv_vault_aes_run(struct akv_token *t, const struct akv_kv_key *vkey,
                        const struct akv_vault_aes *p, bool decrypt,
                        const uint8_t *in, size_t in_len,
                        struct akv_secret *out, struct akv_kv_crypt_out *extra)
{
    /* Most oct-HSM keys are AES-256: tried first. */
    static const size_t trial[] = {256, 128, 192};
    CK_RV rv = CKR_GENERAL_ERROR;
    CK_RV refused = decrypt ? CKR_ENCRYPTED_DATA_INVALID : CKR_DATA_INVALID;
    struct akv_kv_crypt_in ci;
    size_t known = vkey->oct_bits != 0 ? vkey->oct_bits : size_get(vkey->kid);
    size_t n = known != 0 ? 1 : sizeof(trial) / sizeof(trial[0]);
    size_t tag = decrypt ? akv_vault_aes_tag_len(p) : 0;
    const char *what = decrypt ? "decrypt" : "encrypt";

    if (in_len <= tag || in_len - tag > AKV_KV_CRYPT_MAX) {
        return decrypt ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
    }
    memset(&ci, 0, sizeof(ci));
    ci.value = in;
    ci.value_len = in_len - tag;
    ci.tag = tag != 0 ? in + in_len - tag : NULL;
    ci.tag_len = tag;
    ci.iv = p->iv;
    ci.iv_len = p->iv_len;
    ci.aad = p->aad;
    ci.aad_len = p->aad_len;
    ci.probe = n > 1;
    for (size_t i = 0; i < n; i++) {
        size_t bits = known != 0 ? known : trial[i];
        enum akv_kv_alg alg;

        if (akv_kv_aes_crypt_alg(bits, p->mode, &alg) != 0) {
            AKV_LOG_ERR("key %s/%s: oct-HSM key size %zu bits is not an AES "
                        "size",
                        vkey->name, vkey->version, bits);
            return CKR_KEY_SIZE_RANGE;
        }
        rv = t->kv->ops->crypt(t->kv, vkey->name, vkey->version, decrypt, alg,
                               &ci, out, extra);
        if (rv == CKR_OK && known == 0) {
            AKV_LOG_DEBUG("key %s/%s: the HSM took %s: the key is %zu bits",
                          vkey->name, vkey->version, akv_kv_alg_name(alg),
                          bits);
            size_put(vkey->kid, bits);
        }
        if (rv != refused) {
            break;
        }
    }
    if (rv == refused && n > 1) {
        AKV_LOG_ERR("key %s/%s op %s: Managed HSM refused the request at each "
                    "AES key size (256, 128, 192 bits; its messages are in "
                    "the debug log)",
                    vkey->name, vkey->version, what);
    }
    if (rv == CKR_DATA_INVALID) {
        /* Lengths were checked here: the HSM does not take a request this
         * module built (design.md: 4xx -> CKR_GENERAL_ERROR). */
        rv = CKR_GENERAL_ERROR;
    }
    return rv;
}
