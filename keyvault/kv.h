/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Key Vault client interface that token/ uses. token/ never sees HTTP or
 * JSON: it calls through struct akv_kv_ops, which is implemented by the REST
 * client (kv_rest.c, libcurl + cJSON) and, in unit tests, by an in-memory
 * fake (tests/unit/kv_fake.c).
 *
 * Follows: Key Vault REST API 7.4 "Get Key", "Wrap Key", "Unwrap Key", "Sign"
 * (keys.json), RFC 7517/7518 (JWK), RFC 4648 §5 (base64url).
 *
 * Error contract (design.md "Errors: Key Vault -> PKCS#11"), the same for
 * every operation and every implementation:
 *   CKR_OK                          success
 *   CKR_ARGUMENTS_BAD               NULL or out-of-range argument
 *   CKR_HOST_MEMORY                 allocation failure
 *   CKR_WRAPPED_KEY_INVALID         unwrap: 400 BadParameter (bad blob/length)
 *   CKR_ENCRYPTED_DATA_INVALID      (decrypt callers map the above to this)
 *   CKR_KEY_FUNCTION_NOT_PERMITTED  403 (access policy, RBAC, disabled key,
 *                                   nbf/exp), or key_ops lacks the operation
 *   CKR_KEY_HANDLE_INVALID          404 KeyNotFound (deleted key or version)
 *   CKR_DEVICE_ERROR                401 after one token refresh, credential
 *                                   failure, 429/5xx/network after the retry
 *                                   budget, malformed answer from the service
 *   CKR_GENERAL_ERROR               other 4xx (a request the module built
 *                                   wrongly; logged as a bug)
 * Every failure is logged once by the implementation, naming the key, the
 * operation, the HTTP status and Key Vault's error code (never a token,
 * secret or key value).
 *
 * Thread safety: all operations may be called concurrently on one client;
 * no lock is held while a request is on the wire.
 */
#ifndef AKV_KEYVAULT_KV_H
#define AKV_KEYVAULT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "../common/config.h"
#include "../common/secret.h"

#define AKV_KV_KID_MAX     512 /* bytes incl. NUL for a kid URL */
#define AKV_KV_NAME_MAX    128 /* key name 1..127 chars [0-9a-zA-Z-] + NUL */
#define AKV_KV_VERSION_MAX 65  /* version: 32 hex in practice, + NUL */

enum akv_kv_kty {
    AKV_KV_KTY_OTHER = 0, /* EC, oct (software) ...: shown, not usable */
    AKV_KV_KTY_RSA,       /* "RSA" or "RSA-HSM" */
    AKV_KV_KTY_OCT_HSM,   /* "oct-HSM" (Managed HSM AES) */
    AKV_KV_KTY_EC,        /* "EC" or "EC-HSM": validated, not usable */
};

/* JWK key_ops bits (RFC 7517 §4.3 names as Key Vault spells them). */
#define AKV_KV_OP_ENCRYPT   0x01u
#define AKV_KV_OP_DECRYPT   0x02u
#define AKV_KV_OP_WRAPKEY   0x04u
#define AKV_KV_OP_UNWRAPKEY 0x08u
#define AKV_KV_OP_SIGN      0x10u
#define AKV_KV_OP_VERIFY    0x20u

/* JsonWebKeyEncryptionAlgorithm and (from RS256 on)
 * JsonWebKeySignatureAlgorithm values used by this module. */
enum akv_kv_alg {
    AKV_KV_ALG_RSA_OAEP = 0, /* "RSA-OAEP": SHA-1, MGF1-SHA1, no label */
    AKV_KV_ALG_RSA_OAEP_256, /* "RSA-OAEP-256": SHA-256, MGF1-SHA256 */
    AKV_KV_ALG_RSA1_5,       /* "RSA1_5": PKCS#1 v1.5 */
    AKV_KV_ALG_A128KW,       /* RFC 3394, Managed HSM */
    AKV_KV_ALG_A192KW,
    AKV_KV_ALG_A256KW,
    AKV_KV_ALG_CKM_AES_KEY_WRAP_PAD, /* RFC 5649, Managed HSM, 7.6+ */
    AKV_KV_ALG_CKM_AES_KEY_WRAP,     /* RFC 3394 at the key's own size */
    AKV_KV_ALG_RS256, /* RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) with SHA-256 */
    AKV_KV_ALG_RS384,
    AKV_KV_ALG_RS512,
    AKV_KV_ALG_PS256, /* RSASSA-PSS, MGF1 same hash, salt = hash length */
    AKV_KV_ALG_PS384,
    AKV_KV_ALG_PS512,
    AKV_KV_ALG_ES256,  /* ECDSA P-256 + SHA-256; signature r||s */
    AKV_KV_ALG_ES384,  /* P-384 */
    AKV_KV_ALG_ES512,  /* P-521 */
    AKV_KV_ALG_ES256K, /* secp256k1 */
    AKV_KV_ALG_RSNULL, /* PKCS#1 v1.5 signature padding over the given
                          bytes (RFC 8017 §9.2 step 2 onwards): a
                          DigestInfo the caller built */
    /* Managed HSM encrypt/decrypt on oct-HSM keys (api-version 7.2+); the
     * name carries the key size, which must be the key's. */
    AKV_KV_ALG_A128GCM, /* AES-GCM (SP 800-38D): the service picks the
                           12-byte iv on encrypt, 16-byte tag, aad */
    AKV_KV_ALG_A192GCM,
    AKV_KV_ALG_A256GCM,
    AKV_KV_ALG_A128CBC, /* AES-CBC (SP 800-38A), caller's 16-byte iv, whole
                           blocks */
    AKV_KV_ALG_A192CBC,
    AKV_KV_ALG_A256CBC,
    AKV_KV_ALG_A128CBCPAD, /* AES-CBC with PKCS#7 padding */
    AKV_KV_ALG_A192CBCPAD,
    AKV_KV_ALG_A256CBCPAD,
    AKV_KV_ALG_COUNT
};

/* A KeyBundle as the token needs it (GET /keys/{name}[/{version}]). */
struct akv_kv_key {
    char kid[AKV_KV_KID_MAX];         /* versioned kid URL */
    char name[AKV_KV_NAME_MAX];       /* parsed from kid */
    char version[AKV_KV_VERSION_MAX]; /* parsed from kid (lower-case) */
    enum akv_kv_kty kty;
    char kty_name[16]; /* as sent: "RSA", "RSA-HSM", "oct-HSM", "EC" ... */
    unsigned key_ops;  /* AKV_KV_OP_* bits */
    uint8_t *n;        /* RSA modulus, minimal big-endian (malloc) */
    size_t n_len;      /* bytes */
    uint8_t *e;        /* RSA public exponent, big-endian (malloc) */
    size_t e_len;      /* bytes */
    size_t oct_bits;   /* oct-HSM key size in bits (from key_size), or 0 */
    char crv[8];       /* EC/EC-HSM: "P-256", "P-384", "P-521", "P-256K" */
    uint8_t ec_x[66];  /* EC public point, big-endian coordinates of */
    uint8_t ec_y[66];  /* ec_len bytes each (the curve's field size) */
    size_t ec_len;     /* bytes per coordinate; 0 when not EC */
    bool enabled;      /* attributes.enabled (absent = true) */
    int64_t nbf;       /* attributes.nbf, s since epoch; 0 = absent */
    int64_t exp;       /* attributes.exp, s since epoch; 0 = absent */
    int64_t created;   /* s since epoch; 0 = absent */
    int64_t updated;   /* s since epoch; 0 = absent */
};

/* A CertificateBundle as the token needs it (GET /certificates/{name}
 * [/{version}], certificates.json): the X.509 certificate and the key
 * version it certifies (its kid). */
struct akv_kv_cert {
    char kid[AKV_KV_KID_MAX];         /* versioned kid of the key */
    char name[AKV_KV_NAME_MAX];       /* key name, parsed from kid */
    char version[AKV_KV_VERSION_MAX]; /* key version (lower-case) */
    uint8_t *der;                     /* "cer": DER certificate (malloc) */
    size_t der_len;                   /* bytes, 1..AKV_KV_CERT_MAX */
};

#define AKV_KV_CERT_MAX 65536 /* bytes of DER accepted */

/* akv_kv_cert_clear - frees der and zeroes the struct. NULL-safe. */
void akv_kv_cert_clear(struct akv_kv_cert *c);

/* akv_kv_key_clear - frees n/e and zeroes the struct. NULL-safe. */
void akv_kv_key_clear(struct akv_kv_key *key);

/* akv_kv_key_copy - deep copy. Returns CKR_OK or CKR_HOST_MEMORY. */
CK_RV akv_kv_key_copy(struct akv_kv_key *dst, const struct akv_kv_key *src);

/* akv_kv_alg_name - "RSA-OAEP-256" etc.; NULL for an invalid value. */
const char *akv_kv_alg_name(enum akv_kv_alg alg);

/* akv_kv_alg_parse - inverse of akv_kv_alg_name; returns -1 if unknown. */
int akv_kv_alg_parse(const char *name);

/* akv_kv_aes_kw_alg - the one rule for the Key Vault alg of an AES key wrap
 * on an oct-HSM key of BITS (the KeyBundle's key_size; 0 = not sent, as
 * Managed HSM's Get Key answers): PAD -> "CKM_AES_KEY_WRAP_PAD" (RFC 5649);
 * else 128/192/256 -> "A128KW"/"A192KW"/"A256KW" (RFC 3394 with the size
 * named, so a wrong size is caught by the service) and 0 ->
 * "CKM_AES_KEY_WRAP" (RFC 3394 at whatever size the key has; keys.json
 * JsonWebKeyEncryptionAlgorithm, Managed HSM). Returns 0 with *ALG, or -1
 * for any other BITS (no AES key has it). */
int akv_kv_aes_kw_alg(size_t bits, bool pad, enum akv_kv_alg *alg);

/* KeyCreateParameters (Key Vault REST "Create Key") as the module sends
 * them. */
struct akv_kv_create {
    const char *kty;  /* "RSA", "RSA-HSM", "EC", "EC-HSM" */
    unsigned bits;    /* RSA: key_size in bits (2048, 3072, 4096); else 0 */
    uint32_t exp;     /* RSA: public_exponent; 0 = the vault's (65537) */
    const char *crv;  /* EC: "P-256", "P-384", "P-521", "P-256K"; else NULL */
    unsigned key_ops; /* AKV_KV_OP_* bits; 0 = the vault's default (all) */
    bool new_only;    /* a new key only: when NAME exists (a Get Key
                         answers it, keys/get) -> CKR_ATTRIBUTE_VALUE_INVALID
                         and no Create Key call */
};

/* The three AES modes of Managed HSM's encrypt/decrypt. */
enum akv_kv_aes_mode {
    AKV_KV_AES_GCM = 0, /* A128GCM / A192GCM / A256GCM */
    AKV_KV_AES_CBC,     /* A128CBC / A192CBC / A256CBC */
    AKV_KV_AES_CBCPAD,  /* A128CBCPAD / A192CBCPAD / A256CBCPAD */
};

/* akv_kv_aes_crypt_alg - the one rule for the Key Vault alg of an AES
 * encrypt/decrypt on an oct-HSM key of BITS (128, 192, 256) in MODE
 * (keys.json JsonWebKeyEncryptionAlgorithm: the size is part of the name;
 * the service refuses a name whose size is not the key's). Returns 0 with
 * *ALG, or -1 for any other BITS or MODE (0 = unknown size included: there
 * is no size-free name, unlike CKM_AES_KEY_WRAP). */
int akv_kv_aes_crypt_alg(size_t bits, enum akv_kv_aes_mode mode,
                         enum akv_kv_alg *alg);

/* Inputs of an encrypt/decrypt (KeyOperationsParameters, keys.json): the
 * value and the optional symmetric fields, each sent only when its length
 * is not 0. */
struct akv_kv_crypt_in {
    const uint8_t *value; /* plaintext (encrypt) / ciphertext (decrypt) */
    size_t value_len;     /* 1..AKV_KV_CRYPT_MAX bytes */
    const uint8_t *iv;    /* "iv": CBC 16 bytes; GCM decrypt 12 bytes */
    size_t iv_len;
    const uint8_t *aad; /* "aad": GCM additional authenticated data */
    size_t aad_len;     /* 0..AKV_KV_CRYPT_MAX bytes */
    const uint8_t *tag; /* "tag": GCM decrypt, 16 bytes */
    size_t tag_len;
    /* The caller is learning the key's size by trying the sizes' names:
     * a 400 answer is expected and logged at debug level only (the caller
     * logs the outcome). */
    bool probe;
};

/* What an encrypt answers beside the value (KeyOperationResult "iv",
 * "tag"): Managed HSM's AES-GCM encryption picks a 12-byte IV and returns
 * it with the 16-byte tag. Lengths 0 when absent. */
struct akv_kv_crypt_out {
    uint8_t iv[16];
    size_t iv_len;
    uint8_t tag[16];
    size_t tag_len;
};

/* Bound on an encrypt/decrypt value and aad (bytes): the body's JSON
 * layer bound (keyvault/json.c). */
#define AKV_KV_CRYPT_MAX 65536

struct akv_kv;

struct akv_kv_ops {
    /*
     * get_key - GET {vault}/keys/{name}[/{version}] ("Get Key").
     * name: key name; version: 32-hex version or NULL/"" for the current one.
     * out: filled on CKR_OK (caller clears with akv_kv_key_clear); untouched
     * otherwise.
     */
    CK_RV(*get_key)
    (struct akv_kv *kv, const char *name, const char *version,
     struct akv_kv_key *out);
    /*
     * wrap - POST {vault}/keys/{name}/{version}/wrapkey ("Wrap Key").
     * in: the key bytes to wrap (in_len bytes). On CKR_OK *out is a malloc'd
     * buffer of *out_len bytes (the wrapped key; caller frees) and kid_out
     * (AKV_KV_KID_MAX bytes, may be NULL) receives the versioned kid the
     * service used.
     */
    CK_RV(*wrap)
    (struct akv_kv *kv, const char *name, const char *version,
     enum akv_kv_alg alg, const uint8_t *in, size_t in_len, uint8_t **out,
     size_t *out_len, char *kid_out);
    /*
     * unwrap - POST {vault}/keys/{name}/{version}/unwrapkey ("Unwrap Key").
     * in: wrapped bytes. On CKR_OK out holds the plaintext key bytes (a
     * secret; caller clears). Also serves C_Decrypt on vault RSA keys: it is
     * the same RSA private-key operation and needs only unwrapKey.
     */
    CK_RV(*unwrap)
    (struct akv_kv *kv, const char *name, const char *version,
     enum akv_kv_alg alg, const uint8_t *in, size_t in_len,
     struct akv_secret *out);
    /* destroy - frees the client and all its resources. NULL-safe. */
    void (*destroy)(struct akv_kv *kv);
    /*
     * sign - POST {vault}/keys/{name}/{version}/sign ("Sign", needs the
     * keys/sign permission). alg: one of RS256..RSNULL; digest: the hash
     * the algorithm names (digest_len bytes: 32, 48 or 64; RSNULL: 1..512
     * bytes, at most the modulus length - 11). On CKR_OK *out
     * is a malloc'd signature of *out_len bytes (caller frees): RSA
     * modulus-length bytes, ECDSA r||s of twice the field size. Errors:
     * the contract above (403 -> CKR_KEY_FUNCTION_NOT_PERMITTED).
     */
    CK_RV(*sign)
    (struct akv_kv *kv, const char *name, const char *version,
     enum akv_kv_alg alg, const uint8_t *digest, size_t digest_len,
     uint8_t **out, size_t *out_len);
    /*
     * get_certificate - GET {vault}/certificates/{name}[/{version}] ("Get
     * Certificate", needs the certificates/get permission). version: NULL
     * or "" for the newest. out: filled on CKR_OK (kid checked to be a key
     * named NAME in this vault; clear with akv_kv_cert_clear). Errors: the
     * contract above (403 -> CKR_KEY_FUNCTION_NOT_PERMITTED, 404
     * CertificateNotFound -> CKR_KEY_HANDLE_INVALID, malformed bundle ->
     * CKR_DEVICE_ERROR). May be NULL in an implementation without
     * certificates (callers treat that as CKR_FUNCTION_NOT_SUPPORTED).
     */
    CK_RV(*get_certificate)
    (struct akv_kv *kv, const char *name, const char *version,
     struct akv_kv_cert *out);
    /*
     * create_key - POST {vault}/keys/{name}/create ("Create Key", needs the
     * keys/create permission): a new key (or, when NAME exists, a new
     * version of it) with the parameters of REQ. On CKR_OK OUT holds the
     * new version's KeyBundle as get_key returns it (caller clears).
     * Errors: the contract above; 400 BadParameter (a size, exponent or
     * curve the vault refuses, or NAME exists with req->new_only) ->
     * CKR_ATTRIBUTE_VALUE_INVALID, 409 (the name belongs to a
     * soft-deleted key) -> CKR_ATTRIBUTE_VALUE_INVALID too. NULL in
     * implementations that cannot create (callers answer
     * CKR_FUNCTION_NOT_SUPPORTED).
     */
    CK_RV(*create_key)
    (struct akv_kv *kv, const char *name, const struct akv_kv_create *req,
     struct akv_kv_key *out);
    /*
     * delete_key - DELETE {vault}/keys/{name} ("Delete Key", keys/delete
     * permission): every version of NAME goes (soft delete when the vault
     * has it on: recoverable for its retention period). CKR_OK or the
     * contract's errors (404 -> CKR_KEY_HANDLE_INVALID). NULL as above.
     */
    CK_RV (*delete_key)(struct akv_kv *kv, const char *name);
    /*
     * crypt - POST {vault}/keys/{name}/{version}/encrypt or /decrypt
     * ("Encrypt", "Decrypt": keys/encrypt, keys/decrypt permission; Managed
     * HSM "Crypto User" role, not "Crypto Service Encryption User"). alg:
     * A128GCM..A256CBCPAD. On CKR_OK OUT holds the answer's value (a
     * secret on decrypt; caller clears). Errors: the contract above, and
     * 400 BadParameter -> CKR_ENCRYPTED_DATA_INVALID (decrypt: wrong tag,
     * padding or key size) / CKR_DATA_INVALID (encrypt: wrong key size or
     * length). EXTRA (may be NULL) receives the answer's "iv" and "tag"
     * (AES-GCM encrypt: the IV the HSM picked and the tag; an answer whose
     * iv or tag is longer than 16 bytes is CKR_DEVICE_ERROR).
     */
    CK_RV(*crypt)
    (struct akv_kv *kv, const char *name, const char *version, bool decrypt,
     enum akv_kv_alg alg, const struct akv_kv_crypt_in *in,
     struct akv_secret *out, struct akv_kv_crypt_out *extra);
    /*
     * unwrap_probe - unwrap, for a caller that expects the vault may refuse
     * the ciphertext (the rotation fallback, token/rotate.h, tries the
     * versions a ciphertext may have been made under): a 400 answer is
     * logged at DEBUG, not ERROR - the caller logs the outcome. Same
     * arguments, results and errors as unwrap. May be NULL (callers use
     * unwrap then).
     */
    CK_RV(*unwrap_probe)
    (struct akv_kv *kv, const char *name, const char *version,
     enum akv_kv_alg alg, const uint8_t *in, size_t in_len,
     struct akv_secret *out);
};

/* Every implementation embeds this as its first member. */
struct akv_kv {
    const struct akv_kv_ops *ops;
};

/*
 * akv_kv_rest_new - the libcurl/cJSON implementation for one token.
 * tc: the token's configuration (vault_url, cred, http, api_version, scope),
 * copied; the client does no network I/O until its first operation.
 * Returns CKR_OK, CKR_HOST_MEMORY, or CKR_GENERAL_ERROR for an unusable
 * configuration (e.g. http:// to a non-loopback host), logged.
 */
CK_RV akv_kv_rest_new(const struct akv_token_config *tc, struct akv_kv **out);

/*
 * akv_kv_global_init - curl_global_init_mem once per process (idempotent,
 * thread-safe), with an allocator that wipes every block libcurl frees or
 * moves; when the host initialised libcurl first its allocator stays (logged
 * at INFO; docs/SECURITY.md "Secrets in memory"). Returns CKR_OK or
 * CKR_GENERAL_ERROR.
 */
CK_RV akv_kv_global_init(void);

#endif /* AKV_KEYVAULT_KV_H */
