/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The module's private OpenSSL library context: every OpenSSL call the
 * module makes (local crypto, JWT signing, and libcurl's TLS, which http.c
 * runs under it) uses this context, so the host program's providers,
 * default_properties and OPENSSL_CONF cannot change what the module's TLS,
 * certificate checks and crypto do. It loads the "default" provider
 * explicitly and never reads a configuration file (OSSL_LIB_CTX_new does
 * not; only OpenSSL's global default context loads OPENSSL_CONF).
 *
 * Follows: OpenSSL 3.0 OSSL_LIB_CTX(3), OSSL_PROVIDER(3).
 */
#ifndef AKV_COMMON_OSSL_H
#define AKV_COMMON_OSSL_H

#include <openssl/crypto.h>

/* akv_ossl_libctx - the context, created on first use and kept for the life
 * of the process (OpenSSL 3.0 keeps per-thread state keyed to a context and
 * frees it when each thread exits, so freeing the context while host
 * threads that called us live on crashes them). Returns NULL only when it
 * cannot be created (out of memory, no default provider); callers fail
 * with CKR_GENERAL_ERROR / CKR_DEVICE_ERROR then. Thread-safe. */
OSSL_LIB_CTX *akv_ossl_libctx(void);

/* akv_ossl_forget - in a forked child: abandon the parent's context (it may
 * be mid-use by a thread that does not exist in the child); the next
 * akv_ossl_libctx creates a new one. */
void akv_ossl_forget(void);

#endif /* AKV_COMMON_OSSL_H */
