/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory struct akv_kv shared by the unit tests (tests/unit/token,
 * tests/unit/store): RSA-2048 (OpenSSL) and oct-HSM (AES key wrap) keys with
 * versions, rotation, a switch that makes operations fail with a given CK_RV
 * (optionally only for one version), and call counters. Follows the kv.h
 * contract (get_key, wrap, unwrap, sign, crypt: Managed HSM AES-GCM/CBC on
 * oct-HSM keys, the alg's size checked against the key's; errors as Key Vault
 * would map them); key names and versions match case-insensitively, as in Key
 * Vault.
 */
#ifndef AKV_TESTS_FAKE_KV_FAKE_H
#define AKV_TESTS_FAKE_KV_FAKE_H

#include <p11-kit/pkcs11.h>

#include <openssl/evp.h>

#include "keyvault/kv.h"

#define KV_FAKE_GET    0x1u
#define KV_FAKE_WRAP   0x2u
#define KV_FAKE_UNWRAP 0x4u
#define KV_FAKE_SIGN   0x8u
#define KV_FAKE_CERT   0x10u
#define KV_FAKE_CREATE 0x20u
#define KV_FAKE_DELETE 0x40u
#define KV_FAKE_CRYPT  0x80u /* encrypt and decrypt */

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
/* kv_fake_last_alg - enum akv_kv_alg of the last wrap/unwrap/crypt, -1
 * before any. */
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

/* kv_fake_add_cert - gives NAME's current RSA version a certificate
 * (CN=NAME, O=kv fake, serial 0x1234567890, 2023-11-14..2030-03-17) signed
 * by SIGNER (NULL: the key itself); Get Certificate NAME answers it. Returns
 * its DER (owned by the fake) and *LEN, or NULL. */
const uint8_t *kv_fake_add_cert(struct kv_fake *f, const char *name,
                                EVP_PKEY *signer, size_t *len);
/* kv_fake_rsa - NAME's current RSA private key (owned by the fake). */
EVP_PKEY *kv_fake_rsa(struct kv_fake *f, const char *name);

/* kv_fake_last_create - the parameters of the last successful Create Key
 * (RSA only in the fake), or NULL before any. */
const struct akv_kv_create *kv_fake_last_create(struct kv_fake *f);

/* kv_fake_aes - AES-GCM (12-byte IV, 16-byte tag written to TAG) or CBC /
 * CBC-PAD encryption of IN with version VERSION of oct key NAME, computed
 * here with OpenSSL (an independent reference for the module's remote
 * path). MODE: enum akv_kv_aes_mode. Returns bytes written to OUT, or 0. */
size_t kv_fake_aes(struct kv_fake *f, const char *name, const char *version,
                   int mode, const uint8_t *iv, const uint8_t *aad,
                   size_t aad_len, const uint8_t *in, size_t in_len,
                   uint8_t *out, uint8_t *tag);

#endif /* AKV_TESTS_FAKE_KV_FAKE_H */
