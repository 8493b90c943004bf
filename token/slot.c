/* SPDX-License-Identifier: Apache-2.0 */
#include "slot.h"

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "crypto.h"
#include "mech.h"
#include "objpool.h"
#include "session.h"

#define AKV_LIB_MAJOR 0
#define AKV_LIB_MINOR 1

struct akv_state {
    struct akv_config *cfg;
    struct akv_token **tokens;
    size_t n_tokens;
};

/* Level 1 of the lock hierarchy. Re-initialised in the fork child. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_idle = PTHREAD_COND_INITIALIZER;
static struct akv_state *g_state; /* NULL = new calls are refused */
/* The state calls in flight use: stays set while C_Finalize waits for them,
 * so they never see it vanish half-way. */
static struct akv_state *g_live;
static unsigned long g_active; /* calls between begin and end */
/* Serialises C_Initialize against C_Finalize (taken before g_lock). */
static pthread_mutex_t g_life = PTHREAD_MUTEX_INITIALIZER;

void akv_slot_lock(void)
{
    pthread_mutex_lock(&g_lock);
}

void akv_slot_unlock(void)
{
    pthread_mutex_unlock(&g_lock);
}

void akv_slot_pad(unsigned char *dst, size_t len, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n > len) {
        n = len;
    }
    memset(dst, ' ', len);
    if (n > 0) {
        /* blank-padded, not NUL-terminated: PKCS#11 labels (v3.0 §3.2) */
        memcpy(dst, src, n); // NOLINT(bugprone-not-null-terminated-result)
    }
}

static void state_free(struct akv_state *st)
{
    if (st == NULL) {
        return;
    }
    for (size_t i = 0; i < st->n_tokens; i++) {
        akv_token_free(st->tokens[i]);
    }
    free(st->tokens);
    akv_config_free(st->cfg);
    free(st);
}

CK_RV akv_slot_init(struct akv_config *cfg, akv_slot_kv_factory factory)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_state *st = NULL;

    if (factory == NULL) {
        factory = akv_kv_rest_new;
    }
    pthread_mutex_lock(&g_life);
    pthread_mutex_lock(&g_lock);
    if (g_state != NULL) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    rv = akv_crypto_init();
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        goto out;
    }
    st->cfg = cfg;
    cfg = NULL;
    if (st->cfg->n_tokens > 0) {
        // NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers
        st->tokens = calloc(st->cfg->n_tokens, sizeof(*st->tokens));
        if (st->tokens == NULL) {
            goto out;
        }
    }
    for (size_t i = 0; i < st->cfg->n_tokens; i++) {
        const struct akv_token_config *tc = &st->cfg->tokens[i];
        struct akv_kv *kv = NULL;

        rv = factory(tc, &kv);
        if (rv != CKR_OK) {
            AKV_LOG_ERR("token '%s': cannot create the Key Vault client for "
                        "%s",
                        tc->label, tc->vault_url);
            rv = rv == CKR_HOST_MEMORY ? rv : CKR_GENERAL_ERROR;
            goto out;
        }
        rv = akv_token_new(tc, (CK_SLOT_ID)i, kv, &st->tokens[i]);
        if (rv != CKR_OK) {
            rv = rv == CKR_HOST_MEMORY ? rv : CKR_GENERAL_ERROR;
            goto out;
        }
        st->n_tokens++;
    }
    g_state = st;
    g_live = st;
    g_active = 0;
    st = NULL;
    rv = CKR_OK;
out:
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_unlock(&g_life);
    state_free(st);
    akv_config_free(cfg);
    return rv;
}

CK_RV akv_slot_finalize(void)
{
    CK_RV rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    struct akv_state *st = NULL;

    pthread_mutex_lock(&g_life);
    pthread_mutex_lock(&g_lock);
    if (g_state == NULL) {
        pthread_mutex_unlock(&g_lock);
        pthread_mutex_unlock(&g_life);
        goto out;
    }
    /* New calls now fail; wait for the ones in flight (each is bounded by
     * the HTTP budget). */
    st = g_state;
    g_state = NULL;
    while (g_active > 0) {
        pthread_cond_wait(&g_idle, &g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    akv_session_close_everything();
    g_live = NULL;
    state_free(st);
    akv_objpool_drain();
    akv_crypto_fini();
    pthread_mutex_unlock(&g_life);
    rv = CKR_OK;
out:
    return rv;
}

void akv_slot_fork_child(void)
{
    /* Locks may be held by threads that do not exist in the child; the
     * state references the parent's curl handles. Abandon both. */
    pthread_mutex_init(&g_lock, NULL);
    pthread_mutex_init(&g_life, NULL);
    pthread_cond_init(&g_idle, NULL);
    g_state = NULL;
    g_live = NULL;
    g_active = 0;
    akv_session_forget();
    akv_crypto_forget();
    akv_objpool_forget();
}

CK_RV akv_slot_begin(void)
{
    CK_RV rv = CKR_CRYPTOKI_NOT_INITIALIZED;

    pthread_mutex_lock(&g_lock);
    if (g_state != NULL) {
        g_active++;
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&g_lock);
    return rv;
}

void akv_slot_end(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_active > 0) {
        g_active--;
    }
    if (g_active == 0) {
        pthread_cond_broadcast(&g_idle);
    }
    pthread_mutex_unlock(&g_lock);
}

struct akv_token *akv_slot_token(CK_SLOT_ID slot_id)
{
    struct akv_state *st = g_live;

    /* g_live cannot change while a call holds begin (finalize waits). */
    if (st == NULL || slot_id >= st->n_tokens) {
        return NULL;
    }
    return st->tokens[slot_id];
}

CK_RV akv_slot_get_info(CK_INFO *info)
{
    memset(info, 0, sizeof(*info));
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    akv_slot_pad(info->manufacturerID, sizeof(info->manufacturerID),
                 "akv-pkcs11");
    info->flags = 0;
    akv_slot_pad(info->libraryDescription, sizeof(info->libraryDescription),
                 "Azure Key Vault PKCS#11 module");
    info->libraryVersion.major = AKV_LIB_MAJOR;
    info->libraryVersion.minor = AKV_LIB_MINOR;
    return CKR_OK;
}

CK_RV akv_slot_get_list(CK_BBOOL token_present, CK_SLOT_ID *list,
                        CK_ULONG *count)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_state *st = g_live;
    CK_ULONG n = st != NULL ? (CK_ULONG)st->n_tokens : 0;

    (void)token_present; /* every slot always holds its token */
    if (list == NULL) {
        *count = n;
        rv = CKR_OK;
        goto out;
    }
    if (*count < n) {
        *count = n;
        rv = CKR_BUFFER_TOO_SMALL;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        list[i] = i;
    }
    *count = n;
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_slot_get_slot_info(CK_SLOT_ID slot_id, CK_SLOT_INFO *info)
{
    struct akv_token *t = akv_slot_token(slot_id);
    char desc[128];

    if (t == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    memset(info, 0, sizeof(*info));
    (void)snprintf(desc, sizeof(desc), "Azure Key Vault %s",
                   t->cfg->vault_url != NULL ? t->cfg->vault_url : "");
    akv_slot_pad(info->slotDescription, sizeof(info->slotDescription), desc);
    akv_slot_pad(info->manufacturerID, sizeof(info->manufacturerID),
                 "akv-pkcs11");
    info->flags = CKF_TOKEN_PRESENT;
    info->hardwareVersion.major = AKV_LIB_MAJOR;
    info->hardwareVersion.minor = AKV_LIB_MINOR;
    info->firmwareVersion.major = AKV_LIB_MAJOR;
    info->firmwareVersion.minor = AKV_LIB_MINOR;
    return CKR_OK;
}

CK_RV akv_slot_get_token_info(CK_SLOT_ID slot_id, CK_TOKEN_INFO *info)
{
    struct akv_token *t = akv_slot_token(slot_id);

    if (t == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    memset(info, 0, sizeof(*info));
    akv_slot_pad(info->label, sizeof(info->label), t->cfg->label);
    akv_slot_pad(info->manufacturerID, sizeof(info->manufacturerID),
                 "akv-pkcs11");
    akv_slot_pad(info->model, sizeof(info->model), "Azure Key Vault");
    akv_slot_pad(info->serialNumber, sizeof(info->serialNumber), t->serial);
    /* No PIN (design.md): login is optional and accepts any PIN, so
     * CKF_LOGIN_REQUIRED is clear; CKF_USER_PIN_INITIALIZED tells tools
     * that C_Login(CKU_USER) will work. CKF_WRITE_PROTECTED stays clear:
     * session objects are always writable (token objects need
     * store_dir). CKF_SO_PIN_LOCKED: there is no SO role, so SO login
     * is never possible (v3.0 §3.2; C_Login(CKU_SO) -> CKR_PIN_LOCKED). */
    info->flags = CKF_TOKEN_INITIALIZED | CKF_RNG | CKF_USER_PIN_INITIALIZED
                  | CKF_SO_PIN_LOCKED;
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    pthread_mutex_lock(&g_lock);
    info->ulSessionCount = t->n_sessions;
    info->ulRwSessionCount = t->n_rw_sessions;
    pthread_mutex_unlock(&g_lock);
    info->ulMaxPinLen = 256;
    info->ulMinPinLen = 0;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion.major = AKV_LIB_MAJOR;
    info->hardwareVersion.minor = AKV_LIB_MINOR;
    info->firmwareVersion.major = AKV_LIB_MAJOR;
    info->firmwareVersion.minor = AKV_LIB_MINOR;
    /* No CKF_CLOCK_ON_TOKEN: the time field is blank. */
    akv_slot_pad(info->utcTime, sizeof(info->utcTime), "");
    return CKR_OK;
}

CK_RV akv_slot_get_mech_list(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE *list,
                             CK_ULONG *count)
{
    if (akv_slot_token(slot_id) == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    return akv_mech_get_list(list, count);
}

CK_RV akv_slot_get_mech_info(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type,
                             CK_MECHANISM_INFO *info)
{
    if (akv_slot_token(slot_id) == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    return akv_mech_get_info(type, info);
}
