/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory struct akv_kv shared by the unit tests (tests/unit/token,
 * tests/unit/store): RSA-2048 (OpenSSL) and oct-HSM (AES key wrap) keys with
 * versions, rotation, a switch that makes operations fail with a given CK_RV
 * (optionally only for one version), and call counters. Follows the kv.h
 * contract (get_key, wrap, unwrap; errors as Key Vault would map them); key
 * names and versions match case-insensitively, as in Key Vault.
 */
#ifndef AKV_TESTS_FAKE_KV_FAKE_H
#define AKV_TESTS_FAKE_KV_FAKE_H

#include <p11-kit/pkcs11.h>

#include "keyvault/kv.h"

#define KV_FAKE_GET    0x1u
#define KV_FAKE_WRAP   0x2u
#define KV_FAKE_UNWRAP 0x4u
#define KV_FAKE_SIGN   0x8u

struct kv_fake;

/* kv_fake_new - an empty vault. */
struct kv_fake *kv_fake_new(void);
/* kv_fake_free - frees the fake (its ops->destroy is a no-op). */
void kv_fake_free(struct kv_fake *f);
/* kv_fake_kv - the struct akv_kv view. */
struct akv_kv *kv_fake_kv(struct kv_fake *f);
/* kv_fake_add_rsa - adds RSA key NAME (first version) with KEY_OPS bits. */
void kv_fake_add_rsa(struct kv_fake *f, const char *name, unsigned key_ops);
/* kv_fake_add_oct - adds oct-HSM key NAME of BITS. */
void kv_fake_add_oct(struct kv_fake *f, const char *name, unsigned bits,
                     unsigned key_ops);
/* kv_fake_hide_size - Get Key of oct-HSM key NAME answers no key_size
 * (oct_bits 0), as Managed HSM does. */
void kv_fake_hide_size(struct kv_fake *f, const char *name);
/* kv_fake_last_alg - enum akv_kv_alg of the last wrap/unwrap, -1 before
 * any. */
int kv_fake_last_alg(struct kv_fake *f);
/* kv_fake_rotate - new current version of NAME; returns it (owned), or
 * NULL when NAME is unknown or already has the maximum of 8 versions. */
const char *kv_fake_rotate(struct kv_fake *f, const char *name);
/* kv_fake_version - version I (0 = first) of NAME, or NULL. */
const char *kv_fake_version(struct kv_fake *f, const char *name, int i);
/* kv_fake_fail - operations in OPS mask fail with RV (CKR_OK clears).
 * Replaces any earlier failure setting. */
void kv_fake_fail(struct kv_fake *f, unsigned ops, CK_RV rv);
/* kv_fake_fail_version - as kv_fake_fail, but only calls that resolve to
 * version VERSION (NULL = any) of a key fail. */
void kv_fake_fail_version(struct kv_fake *f, unsigned ops, const char *version,
                          CK_RV rv);
/* kv_fake_delay - calls of the ops in OPS sleep MS milliseconds before
 * answering (after counting, before any injected failure); 0 clears. */
void kv_fake_delay(struct kv_fake *f, unsigned ops, long ms);
/* kv_fake_sign_tamper - ON nonzero: Sign answers a signature of the right
 * length with one bit changed (a hostile or faulty vault); 0 clears. */
void kv_fake_sign_tamper(struct kv_fake *f, int on);
/* kv_fake_calls - number of calls of the ops in the OPS mask. */
unsigned kv_fake_calls(struct kv_fake *f, unsigned ops);
/* kv_fake_reset_calls - counters back to 0. */
void kv_fake_reset_calls(struct kv_fake *f);
/* kv_fake_rsa_encrypt - encrypts IN with version VERSION of NAME's public
 * key under ALG (for decrypt tests). Returns bytes written or 0. */
size_t kv_fake_rsa_encrypt(struct kv_fake *f, const char *name,
                           const char *version, enum akv_kv_alg alg,
                           const uint8_t *in, size_t in_len, uint8_t *out);

#endif /* AKV_TESTS_FAKE_KV_FAKE_H */
