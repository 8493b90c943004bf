/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C_Initialize / C_Finalize (PKCS#11 v3.0 §5.4.1, §5.4.2).
 *
 * Init-args matrix (v3.0 §5.4.1, style.md §9.5; kmsp11's policy):
 *   pInitArgs NULL                                   -> OS locking
 *   all four mutex callbacks NULL, any flags          -> OS locking
 *   all four set, CKF_OS_LOCKING_OK                    -> OS locking
 *   all four set, no CKF_OS_LOCKING_OK                 -> CKR_CANT_LOCK
 *   some but not all set                               -> CKR_ARGUMENTS_BAD
 *   CKF_LIBRARY_CANT_CREATE_OS_THREADS                 -> accepted (see below)
 * pReserved: the configuration string ("config=/path", as p11-kit's
 * x-init-reserved passes it) - allowed, unlike the spec's NULL rule. No
 * network I/O here: the Key Vault clients are only created.
 *
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS: GnuTLS (p11tool, every GnuTLS program)
 * sets it on every module it loads, so answering CKR_NEED_TO_CREATE_THREADS
 * would make the token unusable there. The module itself never starts a
 * thread; libcurl's threaded resolver may run a short-lived helper thread
 * while it looks up a host name (never for an IP-literal vault_url). The flag
 * is therefore accepted and that fact logged at INFO.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../keyvault/kv.h"
#include "../token/slot.h"
#include "module.h"

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    akv_slot_fork_child();
}

static void register_atfork(void)
{
    if (pthread_atfork(NULL, NULL, fork_child) != 0) {
        AKV_LOG_WARN("pthread_atfork failed; a forked child must not use "
                     "this module");
    }
}

static CK_RV check_args(const CK_C_INITIALIZE_ARGS *a)
{
    int set = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL)
              + (a->LockMutex != NULL) + (a->UnlockMutex != NULL);

    if (set != 0 && set != 4) {
        return CKR_ARGUMENTS_BAD;
    }
    if (set == 4 && !(a->flags & CKF_OS_LOCKING_OK)) {
        return CKR_CANT_LOCK;
    }
    return CKR_OK;
}

CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    const CK_C_INITIALIZE_ARGS *a = pInitArgs;
    const char *reserved = NULL;
    char *path = NULL;
    struct akv_config *cfg = NULL;
    char err[512] = "";

    if (a != NULL) {
        rv = check_args(a);
        if (rv != CKR_OK) {
            goto out;
        }
        reserved = a->pReserved;
    }
    if (akv_slot_begin() == CKR_OK) {
        akv_slot_end();
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    pthread_once(&atfork_once, register_atfork);
    path = akv_config_locate(reserved);
    if (path == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (akv_config_load(path, &cfg, err, sizeof(err)) != 0) {
        AKV_LOG_ERR("configuration: %s", err);
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    if (akv_log_configure(cfg->log_level, cfg->log_target) != 0) {
        /* Still on stderr: say so rather than drop the log silently. */
        AKV_LOG_ERR("%s: log.target %s cannot be opened for append; "
                    "logging to stderr",
                    path, cfg->log_target);
    }
    /* Shown at the default level on purpose: an unknown key is most
     * often a typo that silently changes behaviour ("stor_dir"). */
    for (size_t i = 0; i < cfg->n_warnings; i++) {
        AKV_LOG_ERR("configuration warning: %s", cfg->warnings[i]);
    }
    rv = akv_kv_global_init();
    if (rv != CKR_OK) {
        goto out;
    }
    /* Takes ownership of cfg, also on failure. */
    rv = akv_slot_init(cfg, NULL);
    cfg = NULL;
    if (rv == CKR_OK) {
        AKV_LOG_INFO("initialised from %s", path);
    }
out:
    akv_config_free(cfg);
    free(path);
    return rv;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
    CK_RV rv = CKR_GENERAL_ERROR;

    if (pReserved != NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = akv_slot_finalize();
out:
    return rv;
}
