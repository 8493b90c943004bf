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

/* akv_ossl_ec_point_ok - whether OCT (LEN bytes, an X9.62 / SEC 1 §2.3.3
 * octet-string point: 0x04 || X || Y) is a point of the named curve NID
 * (NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1, NID_secp256k1) that
 * is on the curve and not the point at infinity. All four curves have
 * cofactor 1, so that also puts it in the prime-order group (SEC 1
 * §3.2.2.1). Uses EC_GROUP / EC_POINT arithmetic only, never an EC_KEY:
 * EVP_PKEY_public_check goes through EC_KEY, which takes the host's
 * default ENGINE EC method (libp11's engine sets itself as default for all
 * methods) and then fails every check. Returns 1 or 0 (also on out of
 * memory). */
int akv_ossl_ec_point_ok(int nid, const unsigned char *oct, size_t len);

#endif /* AKV_COMMON_OSSL_H */
