/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small in-memory struct akv_kv for the rewrap tests: one RSA key name
 * with several versions (OpenSSL RSA keys), "rotation" that adds a version,
 * and failure injection. Follows the kv.h contract for the parts used:
 * get_key, wrap/unwrap with RSA-OAEP, RSA-OAEP-256 and RSA1_5.
 */
#ifndef AKV_TESTS_FAKE_KV_H
#define AKV_TESTS_FAKE_KV_H

#include <p11-kit/pkcs11.h>

#include "keyvault/kv.h"

/* fake_kv_new - a vault with key NAME at one version; NULL on failure. */
struct akv_kv *fake_kv_new(const char *name);

/* fake_kv_rotate - adds a new version and makes it current; returns it
 * (32 hex, owned by the fake) or NULL. */
const char *fake_kv_rotate(struct akv_kv *kv);

/* fake_kv_current - the current version (owned by the fake). */
const char *fake_kv_current(struct akv_kv *kv);

/* fake_kv_fail - make every OP ("get", "wrap", "unwrap") touching VERSION
 * (NULL = any) return RV until cleared with RV = CKR_OK. */
void fake_kv_fail(struct akv_kv *kv, const char *op, const char *version,
                  CK_RV rv);

/* fake_kv_calls - how many calls of OP were made. */
unsigned fake_kv_calls(struct akv_kv *kv, const char *op);

#endif /* AKV_TESTS_FAKE_KV_H */
