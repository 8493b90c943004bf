/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-emulator shared model: principals (managed identities and service
 * principals), vaults with access policies, keys with versions, and the
 * process-wide state they hang off. One rwlock (emu.lock) protects the whole
 * model; readers (GET/wrap/unwrap) take it shared, mutations exclusive.
 * Wire facts follow docs keyvault-protocol.md sections 1, 3, 4, 5, 8.
 */
#ifndef AKV_EMULATOR_EMU_H
#define AKV_EMULATOR_EMU_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <cjson/cJSON.h>

#define EMU_GUID_LEN   36
#define EMU_NAME_MAX   128
#define EMU_VERSION_ID 32
#define EMU_BODY_MAX   (1024 * 1024)

/* Access-policy key permissions (bit per name, "all" = every bit). */
enum emu_perm {
    EMU_P_GET = 1u << 0,
    EMU_P_LIST = 1u << 1,
    EMU_P_CREATE = 1u << 2,
    EMU_P_UPDATE = 1u << 3,
    EMU_P_IMPORT = 1u << 4,
    EMU_P_DELETE = 1u << 5,
    EMU_P_RECOVER = 1u << 6,
    EMU_P_BACKUP = 1u << 7,
    EMU_P_RESTORE = 1u << 8,
    EMU_P_PURGE = 1u << 9,
    EMU_P_ENCRYPT = 1u << 10,
    EMU_P_DECRYPT = 1u << 11,
    EMU_P_WRAPKEY = 1u << 12,
    EMU_P_UNWRAPKEY = 1u << 13,
    EMU_P_SIGN = 1u << 14,
    EMU_P_VERIFY = 1u << 15,
    EMU_P_ROTATE = 1u << 16,
    EMU_P_GETROTATIONPOLICY = 1u << 17,
    EMU_P_SETROTATIONPOLICY = 1u << 18,
    EMU_P_RELEASE = 1u << 19,
};
#define EMU_P_ALL ((1u << 20) - 1)

/* Access-policy certificate permissions served (cert.c). */
enum emu_cert_perm {
    EMU_CP_GET = 1u << 0,
    EMU_CP_LIST = 1u << 1,
};
#define EMU_CP_ALL ((1u << 2) - 1)

/* JWK key_ops bits. */
enum emu_keyop {
    EMU_OP_ENCRYPT = 1u << 0,
    EMU_OP_DECRYPT = 1u << 1,
    EMU_OP_SIGN = 1u << 2,
    EMU_OP_VERIFY = 1u << 3,
    EMU_OP_WRAPKEY = 1u << 4,
    EMU_OP_UNWRAPKEY = 1u << 5,
    EMU_OP_IMPORT = 1u << 6,
    EMU_OP_EXPORT = 1u << 7,
};

/* Operation names used by stats, faults and throttling. */
enum emu_opname {
    EMU_OPN_TOKEN,
    EMU_OPN_IMDS,
    EMU_OPN_GET,
    EMU_OPN_WRAPKEY,
    EMU_OPN_UNWRAPKEY,
    EMU_OPN_ENCRYPT,
    EMU_OPN_DECRYPT,
    EMU_OPN_CREATE,
    EMU_OPN_ROTATE,
    EMU_OPN_UPDATE,
    EMU_OPN_DELETE,
    EMU_OPN_RECOVER,
    EMU_OPN_PURGE,
    EMU_OPN_LIST,
    EMU_OPN_GETDELETED,
    EMU_OPN_IMPORT,
    EMU_OPN_SIGN,
    EMU_OPN_VERIFY,
    EMU_OPN_BACKUP,
    EMU_OPN_RESTORE,
    EMU_OPN_OTHER,
    EMU_OPN_COUNT
};

struct emu_principal {
    int is_sp; /* 0 managed identity, 1 service principal */
    char name[EMU_NAME_MAX];
    char client_id[EMU_GUID_LEN + 1];
    char object_id[EMU_GUID_LEN + 1];
    char secret_sha256[65]; /* hex; empty when no secret */
    char *cert_pem;         /* registered certificate or NULL */
    char x5t[64];           /* b64url SHA-1 of cert DER */
    char x5t256[64];        /* b64url SHA-256 of cert DER */
    EVP_PKEY *cert_pub;
    long long token_gen; /* bumped by revoke-tokens */
};

struct emu_policy {
    char object_id[EMU_GUID_LEN + 1];
    unsigned perms;
    unsigned cert_perms; /* EMU_CP_* */
};

struct emu_keyver {
    char id[EMU_VERSION_ID + 1];
    char kty[8];    /* RSA, RSA-HSM, EC, EC-HSM, oct-HSM */
    int bits;       /* RSA modulus, AES key or EC field size (256/384/521) */
    char crv[8];    /* EC: P-256, P-384, P-521, P-256K; else empty */
    EVP_PKEY *pkey; /* RSA or EC */
    unsigned char oct[32]; /* oct-HSM */
    char *n_b64;           /* RSA public modulus, minimal, b64url */
    char *e_b64;
    char *x_b64, *y_b64; /* EC public point, fixed-size coordinates */
    unsigned ops;
    int enabled;
    long long nbf, exp; /* 0 = unset */
    long long created, updated;
    cJSON *tags;           /* object or NULL */
    int exportable;        /* attributes.exportable (secure key release) */
    cJSON *release_policy; /* KeyReleasePolicy {contentType, data,
                              immutable} or NULL */
    /* The certificate version of the same id (cert.c): DER, or NULL when
     * this key version has none. */
    unsigned char *cer;
    size_t cer_len;
    long long cer_created;
};

struct emu_key {
    char name[EMU_NAME_MAX];
    struct emu_keyver **vers;
    size_t nvers;
    int deleted;
    long long deleted_date, purge_date;
    /* KeyRotationPolicy as PUT (lifetimeActions, attributes with
     * expiryTime, created, updated) or NULL: the service default. */
    cJSON *rotation_policy;
    /* serve --delete-delay-ms: until this time (ms since the epoch) a
     * delete or recover is "in progress" and the key is visible in neither
     * /keys nor /deletedkeys. Not persisted (a restart completes it). */
    long long pending_until_ms;
};

struct emu_throttle;

/* Managed HSM local RBAC (rbac.c). */
struct emu_role {
    const char *name; /* "Managed HSM Crypto User" */
    const char *id;   /* role definition GUID */
    unsigned perms;   /* EMU_P_* key operations its data actions allow */
};
struct emu_role_assignment {
    char name[EMU_GUID_LEN + 1];      /* assignment GUID */
    char principal[EMU_GUID_LEN + 1]; /* object id */
    int role;                         /* index in the built-in role table */
    char scope[EMU_NAME_MAX + 8];     /* "/", "/keys" or "/keys/{name}" */
};

struct emu_vault {
    char name[32];
    int port;
    int hsm; /* 1: a Managed HSM (NAME.managedhsm.azure.net): local RBAC
                (roles) instead of access policies, audience
                https://managedhsm.azure.net */
    struct emu_role_assignment *roles;
    size_t nroles;
    void *daemon; /* struct MHD_Daemon * */
    struct emu_policy *policies;
    size_t npolicies;
    struct emu_key **keys;
    size_t nkeys;
    struct emu_throttle *throttle;
    int premium; /* SKU: 1 premium (HSM keys allowed), 0 standard */
};

struct emu_state {
    pthread_rwlock_t lock;
    char dir[4096];
    char tenant_id[EMU_GUID_LEN + 1];
    char subscription_id[EMU_GUID_LEN + 1];
    char admin_secret[65];
    char identity_header[65]; /* App Service X-IDENTITY-HEADER value */
    char host[64];
    int port, imds_port;
    long long token_lifetime;
    int throttle_on;
    double throttle_scale;
    int nthreads;
    int delete_delay_ms; /* serve --delete-delay-ms (0: instant) */
    char *tls_key_pem, *tls_cert_pem;
    EVP_PKEY *signing_key;
    char signing_kid[64];
    struct emu_principal **principals;
    size_t nprincipals;
    struct emu_vault **vaults;
    size_t nvaults;
};

extern struct emu_state emu;

/* ---- json_util.c ---- */
/* emu_b64url_encode - unpadded base64url (RFC 4648 section 5) of LEN bytes;
 * malloc'ed NUL-terminated string, NULL on allocation failure. */
char *emu_b64url_encode(const unsigned char *in, size_t len);
/* emu_b64url_decode - padded or unpadded base64url (the service's clients
 * send both), via akv_b64url_decode (common/b64url.h). Returns malloc'ed
 * bytes and *out_len, or NULL when IN holds any other character ('+', '/',
 * ...), a bad length or padding, or non-zero trailing bits. */
unsigned char *emu_b64url_decode(const char *in, size_t *out_len);
/* emu_json_str - member NAME of object O (case-sensitive) when it is a
 * string (owned by O), else NULL. */
const char *emu_json_str(cJSON *o, const char *name);
/* emu_json_ll - V as an integer (truncated) into *OUT: 0, or -1 (*OUT 0)
 * when V is not a number or lies outside the long long range (a JSON
 * number such as 1e300: converting it would be undefined behaviour). */
int emu_json_ll(const cJSON *v, long long *out);
/* emu_json_num - member NAME of object O when it is a number within the
 * long long range (truncated to an integer), else DFLT. */
long long emu_json_num(cJSON *o, const char *name, long long dflt);
/* emu_valid_name - 1 when N is MIN..MAX characters of [0-9a-zA-Z-] (the
 * Key Vault rule for key names, 1..127, and vault names, 3..24), else 0. */
int emu_valid_name(const char *n, size_t min, size_t max);
/* emu_random_hex - 2*NBYTES lowercase hex chars (NBYTES <= 64) + NUL. */
void emu_random_hex(char *out, size_t nbytes);
/* emu_guid - random RFC 4122 version-4 GUID, lowercase. */
void emu_guid(char out[EMU_GUID_LEN + 1]);
/* emu_now - seconds since the epoch (IntDate). */
long long emu_now(void);
/* emu_strcaseeq - ASCII case-insensitive equality; 0 when either is NULL. */
int emu_strcaseeq(const char *a, const char *b);
/* emu_parse_time - "1767225600" (epoch s) or ISO-8601 UTC
 * ("2026-01-01T00:00:00Z", fraction and "+00:00" allowed, or a date);
 * returns seconds, or -1 when S is neither. */
long long emu_parse_time(const char *s);
/* emu_write_file_atomic - temp file with MODE, write, fsync, rename over
 * PATH, fsync of the directory. Returns 0, or -1 (PATH untouched). */
int emu_write_file_atomic(const char *path, const char *data, size_t len,
                          int mode);
/* emu_read_file - whole file, NUL-terminated, malloc'ed; NULL if unreadable.
 * LEN may be NULL. */
char *emu_read_file(const char *path, size_t *len);
/* emu_sha256_hex - lowercase hex SHA-256 of the string S. */
void emu_sha256_hex(const char *s, char out[65]);
/* emu_url_decode - in-place %XX decoding; FORM also maps '+' to ' '
 * (application/x-www-form-urlencoded). Bad escapes are kept as-is. */
void emu_url_decode(char *s, int form);
/* emu_form_get - value of NAME in a form-encoded BODY, decoded and
 * malloc'ed; NULL when absent. */
char *emu_form_get(const char *body, const char *name);

/* ---- permission and key_ops names (json_util.c) ---- */
/* emu_perm_parse - access-policy key permission name (case-insensitive,
 * "all" = every permission) -> EMU_P_* bit(s); 0 when unknown. */
unsigned emu_perm_parse(const char *name);
/* emu_perm_name - canonical name of one EMU_P_* bit ("wrapKey"). */
const char *emu_perm_name(unsigned bit);
/* emu_keyop_parse - JWK key_ops name (case-insensitive) -> EMU_OP_* bit;
 * 0 when unknown. */
unsigned emu_keyop_parse(const char *name);
/* emu_keyops_json / emu_perms_json - new cJSON arrays of names. */
cJSON *emu_keyops_json(unsigned ops);
cJSON *emu_perms_json(unsigned perms);

/* ---- crypto.c (OpenSSL 3) ---- */
/* emu_crypto_ensure_tls - load DIR/{ca,server,server-key}.pem, or create a
 * P-256 CA (ca.pem, ca-key.pem 0600) and a server certificate for
 * localhost + 127.0.0.1 signed by it. Sets emu.tls_*_pem. 0 or -1. */
int emu_crypto_ensure_tls(const char *dir);
/* emu_rsa_generate - new RSA key of BITS (e = 65537); NULL on failure. */
EVP_PKEY *emu_rsa_generate(int bits);
/* emu_rsa_generate_e - new RSA key of BITS with public exponent E (odd,
 * >= 3); NULL on failure. */
EVP_PKEY *emu_rsa_generate_e(int bits, unsigned long e);
/* emu_pkey_to_pem / emu_pkey_from_pem - PKCS#8 PEM private key <-> EVP_PKEY
 * (malloc'ed string / new key); NULL on failure. */
char *emu_pkey_to_pem(EVP_PKEY *k);
EVP_PKEY *emu_pkey_from_pem(const char *pem);
/* emu_rsa_public_b64 - minimal big-endian n and e (RFC 7518 6.3.1.1) as
 * unpadded base64url, malloc'ed. 0 or -1. */
int emu_rsa_public_b64(EVP_PKEY *k, char **n_b64, char **e_b64);
/* emu_key_crypt - Key Vault encrypt/wrapkey (DECRYPT 0) or decrypt/unwrapkey
 * (DECRYPT 1) with ALG: RSA-OAEP (SHA-1), RSA-OAEP-256, RSA1_5 on RSA keys;
 * A128KW/A192KW/A256KW, CKM_AES_KEY_WRAP (RFC 3394) and
 * CKM_AES_KEY_WRAP_PAD (RFC 5649) on oct-HSM keys. Returns 0 with a
 * malloc'ed *out and *outlen, or -1 with *err = the 400 BadParameter message
 * (e.g. "Error occurred while decoding OAEP padding."). */
int emu_key_crypt(const struct emu_keyver *kv, int decrypt, const char *alg,
                  const unsigned char *in, size_t inlen, unsigned char **out,
                  size_t *outlen, const char **err);
/* ---- aes.c (Managed HSM AES-GCM / AES-CBC on oct-HSM keys) ---- */
struct emu_aes_params {
    unsigned char iv[16]; /* in: CBC iv, GCM decrypt iv; out: GCM iv */
    size_t iv_len;
    unsigned char tag[16]; /* in: GCM decrypt tag; out: GCM encrypt tag */
    size_t tag_len;
    const unsigned char *aad; /* GCM additional data (may be NULL) */
    size_t aad_len;
    int answer_iv, answer_tag; /* out: the answer carries iv / tag */
};
/* emu_aes_crypt - Key Vault encrypt (DECRYPT 0) / decrypt (1) with ALG =
 * A128GCM/A192GCM/A256GCM (12-byte IV chosen by the service on encrypt,
 * 16-byte tag) or A128CBC.../A256CBCPAD (caller's 16-byte iv) on an oct
 * key of the alg's size. Returns 1 when ALG is none of these (the caller
 * tries emu_key_crypt), 0 with a malloc'ed *out of *outlen bytes and P's
 * outputs set, or -1 with *err = the 400 BadParameter message. */
int emu_aes_crypt(const struct emu_keyver *kv, int decrypt, const char *alg,
                  const unsigned char *in, size_t inlen,
                  struct emu_aes_params *p, unsigned char **out, size_t *outlen,
                  const char **err);
/* emu_backup_seal / emu_backup_open - Key Vault key backup blobs: AES-256-GCM
 * under a key derived from this emulator's token-signing key (so a blob
 * restores only into the emulator instance, i.e. DIR, that made it, as a
 * real backup restores only within its geography). Blob = "AKVB1" || 12-byte
 * IV || ciphertext || 16-byte tag. Both return 0 with a malloc'ed *out of
 * *outlen bytes, or -1 (open: corrupt or foreign blob). */
int emu_backup_seal(const unsigned char *in, size_t inlen, unsigned char **out,
                    size_t *outlen);
int emu_backup_open(const unsigned char *in, size_t inlen, unsigned char **out,
                    size_t *outlen);
/* emu_ec_generate - new EC key on CRV (JWK name: P-256, P-384, P-521,
 * P-256K); NULL when the curve is unknown. */
EVP_PKEY *emu_ec_generate(const char *crv);
/* emu_ec_public_b64 - the public point of an EC key as JWK x and y
 * (RFC 7518 6.2.1.2: fixed coordinate length), unpadded base64url,
 * malloc'ed; also its JWK curve name into CRV. 0 or -1. */
int emu_ec_public_b64(EVP_PKEY *k, char crv[8], char **x_b64, char **y_b64);
/* emu_key_sign - Key Vault sign: DIGEST (already hashed by the caller, the
 * service does not hash) signed with ALG = RS256/384/512 (PKCS#1 v1.5 with
 * DigestInfo), PS256/384/512 (PSS, MGF1 same hash, salt = hash length) or
 * RSNULL (PKCS#1 v1.5 over the raw digest bytes) on an RSA key, ES256 /
 * ES384 / ES512 / ES256K on the matching EC curve, signature as r || s
 * (RFC 7518 3.4) (protocol.md 1.8; RFC 8017 8.1, 8.2). Returns 0 with a
 * malloc'ed *sig of *siglen bytes, or -1 with *err = the 400 BadParameter
 * message (wrong digest length, alg not for this key). */
int emu_key_sign(const struct emu_keyver *kv, const char *alg,
                 const unsigned char *digest, size_t dlen, unsigned char **sig,
                 size_t *siglen, const char **err);
/* emu_key_verify - Key Vault verify of SIG over DIGEST with ALG as for
 * emu_key_sign. Returns 0 with *ok = 1 (valid) or 0 (invalid signature), or
 * -1 with *err = the 400 BadParameter message. */
int emu_key_verify(const struct emu_keyver *kv, const char *alg,
                   const unsigned char *digest, size_t dlen,
                   const unsigned char *sig, size_t siglen, int *ok,
                   const char **err);
/* emu_rsa_from_jwk - private RSA key from base64url JWK members n, e, d,
 * p, q, dp, dq, qi (RFC 7518 6.3.2; all required: the key file stores
 * PKCS#8, which needs p and q); NULL when a member is missing
 * or not base64url, or the key fails the pairwise check. */
EVP_PKEY *emu_rsa_from_jwk(cJSON *jwk);
/* emu_make_client_cert - self-signed RSA-2048 client certificate for CN;
 * returns cert PEM + key PEM in one malloc'ed string and the cert alone in
 * *cert_only; NULL on failure. */
char *emu_make_client_cert(const char *cn, char **cert_only);
/* emu_cert_thumbprints - x5t (SHA-1) and x5t#S256 (SHA-256) of the DER
 * certificate as base64url, plus its public key in *pub. 0 or -1. */
int emu_cert_thumbprints(const char *cert_pem, char x5t[64], char x5t256[64],
                         EVP_PKEY **pub);

/* ---- jwt.c (RFC 7515/7519) ---- */
/* emu_jwt_sign - compact RS256 JWS of CLAIMS with header kid/x5t = KID;
 * malloc'ed, NULL on failure. */
char *emu_jwt_sign(EVP_PKEY *key, const char *kid, cJSON *claims);
/* emu_jwt_verify - verify a compact JWS with alg RS256 or PS256 (salt =
 * digest length) against KEY; 0 with *claims (caller frees) or -1. Does not
 * look at any claim. */
int emu_jwt_verify(const char *jwt, EVP_PKEY *key, cJSON **claims);
/* emu_jwt_peek_header / _claims - decoded, unverified parts (or NULL). */
cJSON *emu_jwt_peek_header(const char *jwt);
cJSON *emu_jwt_peek_claims(const char *jwt);

struct emu_caller {
    char oid[EMU_GUID_LEN + 1];
    char appid[EMU_GUID_LEN + 1];
};
/* emu_token_check - validate an "Authorization: Bearer <jwt>" value as Key
 * Vault does: signature by the emulator key, aud exactly
 * https://vault.azure.net, or https://managedhsm.azure.net when MHSM
 * (AKV10022), iss https://sts.windows.net/{tid}/
 * (AKV10032), exp/nbf (AKV10013), not revoked (AKV10014). Verified tokens
 * are cached by hash. Caller holds emu.lock shared. Returns 0 and fills
 * WHO, or -1 with the 401 message in MSGBUF. */
int emu_token_check(const char *authz, int mhsm, struct emu_caller *who,
                    char *msgbuf, size_t msglen);
/* emu_token_issue - access token for P with audience AUD, lifetime
 * emu.token_lifetime s; malloc'ed JWT, *exp_out = expiry (epoch s). */
char *emu_token_issue(const struct emu_principal *p, const char *aud,
                      long long *exp_out);
/* emu_token_issued_json - {"tokens":[jwt...],"assertions":[jwt...]}: the
 * last 16 access tokens issued and client assertions received (oldest
 * first), for tests that search a client's memory. */
cJSON *emu_token_issued_json(void);
/* emu_assertion_seen - remember a client_assertion received (NULL-safe). */
void emu_assertion_seen(const char *assertion);
/* emu_token_cache_clear - forget every verified token. */
void emu_token_cache_clear(void);

/* ---- store.c (persistence in emu.dir; callers hold emu.lock) ---- */
/* emu_store_load - signing key, identity header, state.json and every key
 * file; creates a new tenant on first start. 0 or -1. */
int emu_store_load(void);
/* emu_store_parse_state - the state.json part of emu_store_load: TEXT
 * (NUL-terminated JSON; PATH names it in messages) sets the tenant and
 * subscription and appends its principals and vaults (each vault's keys
 * read from emu.dir/keys/VAULT/) to emu. 0, or -1 (corrupt: no tenantId,
 * not JSON, out of memory) with whatever was appended before kept. */
int emu_store_parse_state(const char *text, const char *path);
/* emu_store_save_state - rewrite state.json (principals, vaults, policies);
 * exclusive lock held. 0 or -1. */
int emu_store_save_state(void);
/* emu_store_save_key / _remove_key - keys/VAULT/KEY.json (0600). */
int emu_store_save_key(const struct emu_vault *v, const struct emu_key *k);
int emu_store_remove_key(const struct emu_vault *v, const struct emu_key *k);
/* Lookups (case-insensitive); NULL when absent. emu_find_version with an
 * empty or NULL VER returns the current (latest) version. */
struct emu_principal *emu_find_principal_oid(const char *oid);
struct emu_principal *emu_find_principal_client(const char *cid);
struct emu_principal *emu_find_principal_name(const char *name, int is_sp);
struct emu_vault *emu_find_vault(const char *name);
struct emu_key *emu_find_key(struct emu_vault *v, const char *name);
struct emu_keyver *emu_find_version(struct emu_key *k, const char *ver);
void emu_keyver_free(struct emu_keyver *kv);
/* emu_key_to_json - every version of K with private material, as stored in
 * keys/<vault>/<key>.json (and sealed in backups); NULL on failure. */
cJSON *emu_key_to_json(const struct emu_key *k);
/* emu_key_from_json - the inverse; NULL when ROOT is not a valid key with
 * at least one version. */
struct emu_key *emu_key_from_json(cJSON *root);
void emu_key_free(struct emu_key *k);
/* emu_keyver_new - new version of KTY (RSA, RSA-HSM: 2048/3072/4096,
 * default 2048; oct-HSM/oct: 128/192/256, default 256; EC, EC-HSM: curve
 * CRV P-256 (default), P-384, P-521, P-256K, or from BITS 256/384/521 when
 * CRV is NULL) with the default key_ops, enabled, new 32-hex id. NULL with
 * *err (400 message). */
struct emu_keyver *emu_keyver_new(const char *kty, int bits, const char *crv,
                                  const char **err);
/* emu_keyver_new_e - emu_keyver_new with the RSA public exponent PUBEXP
 * (KeyCreateParameters.public_exponent): 0 = 65537; 3 and 65537 are
 * accepted for RSA / RSA-HSM; any other value, or a non-zero PUBEXP for
 * another key type, is NULL with *err (400 BadParameter message); so is a
 * non-empty CRV for a key type other than EC / EC-HSM. */
struct emu_keyver *emu_keyver_new_e(const char *kty, int bits, const char *crv,
                                    long long pubexp, const char **err);
/* emu_vault_kty_allowed - vault SKU rule (Key Vault pricing tiers: HSM-
 * protected keys need a premium vault). Returns 1 when V may hold KTY,
 * else 0 with *err = the service's 403 Forbidden message. */
int emu_vault_kty_allowed(const struct emu_vault *v, const char *kty,
                          const char **err);

/* emu_keyver_import - new version from an imported key: a JWK (RSA with
 * private members, or oct with k) or, when JWK is NULL, PEM (PKCS#8 / PKCS#1
 * RSA private key). HSM selects RSA-HSM. NULL with *err (400 message). */
struct emu_keyver *emu_keyver_import(cJSON *jwk, const char *pem, int hsm,
                                     const char **err);

/* ---- key_policy.c (rotation and release policies, keys.json) ---- */
/* emu_iso_duration - ISO 8601 duration "PnYnMnWnDTnHnMnS" in seconds
 * (a month = 30 days, a year = 365 days); -1 when S is not one. */
long long emu_iso_duration(const char *s);
/* emu_rotation_policy_parse - the KeyRotationPolicy body of PUT
 * /keys/{name}/rotationpolicy checked (action type Rotate|Notify, one of
 * each; exactly one trigger, >= P7D and >= 7 days before expiryTime;
 * Notify only timeBeforeExpiry; timeBeforeExpiry needs expiryTime;
 * expiryTime >= P28D) and made canonical: {lifetimeActions, attributes:
 * {expiryTime?, created (kept from PREV), updated}}, with the default
 * Notify P30D appended when none is given. New object, or NULL with *err
 * = the 400 BadParameter message. */
cJSON *emu_rotation_policy_parse(cJSON *body, const cJSON *prev,
                                 const char **err);
/* emu_rotation_policy_json - the KeyRotationPolicy answer for K (id =
 * BASE/keys/{name}/rotationpolicy): its policy, or the service default
 * (Notify P30D before expiry) when none was set. New object. */
cJSON *emu_rotation_policy_json(const char *base, const struct emu_key *k);
/* emu_rotation_policy_expiry - the policy's expiryTime in seconds, 0 when
 * POLICY is NULL or has none. */
long long emu_rotation_policy_expiry(const cJSON *policy);
/* emu_keyver_rotated - make KV, the version Rotate Key just generated
 * for K, follow K's current version CUR: key_ops, tags, exportable and
 * release policy copied, exp = created + the rotation policy's expiryTime
 * (when K has one). Used by POST /keys/{name}/rotate and the CLI's
 * `keyvault key rotate`. */
void emu_keyver_rotated(struct emu_keyver *kv, const struct emu_keyver *cur,
                        const struct emu_key *k);
/* emu_release_on_create - attributes.exportable and release_policy of a
 * create or import BODY (KeyCreateParameters / KeyImportParameters) onto
 * KV (kty already set) in vault V at api-version API: 0, or -1 with *err =
 * the 400 BadParameter message (AKV.SKR.1001 standard vault or api < 7.3,
 * 1006 not an -HSM key, 1004 exportable without policy, 1005 policy
 * without exportable, or a policy whose data is not base64url JSON). */
int emu_release_on_create(cJSON *body, const struct emu_vault *v,
                          const char *api, struct emu_keyver *kv,
                          const char **err);
/* emu_release_on_update - the same members of a PATCH (KeyUpdateParameters)
 * BODY against the current version KV: 0 with *policy = the new canonical
 * release policy (caller owns) or NULL when none is given, or -1 with *err
 * (AKV.SKR.1003 exportable changed, 1005 policy on a non-exportable key,
 * 1020 immutable policy, invalid policy). */
int emu_release_on_update(cJSON *body, const struct emu_keyver *kv,
                          cJSON **policy, const char **err);

/* ---- vault_api.c (Key Vault keys REST, one listener per vault) ---- */
/* emu_vault_start - listen for V on 127.0.0.1:V->port (0 = pick one and
 * store it in V->port). 0 or -1. emu_vault_stop - stop that listener. */
int emu_vault_start(struct emu_vault *v);
void emu_vault_stop(struct emu_vault *v);
/* emu_keybundle_json - KeyBundle (or DeletedKeyBundle when DELETED) with
 * kid = BASE/keys/{name}/{version}; new cJSON object. */
cJSON *emu_keybundle_json(const char *base, const struct emu_key *k,
                          const struct emu_keyver *kv, int deleted);

/* ---- rbac.c (Managed HSM local RBAC; callers hold emu.lock) ---- */
/* emu_role_find - built-in role by name ("Managed HSM Crypto User",
 * case-insensitive), GUID or role definition id
 * (Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/
 * GUID); NULL when none. emu_role_at - the I-th role, NULL past the end. */
const struct emu_role *emu_role_find(const char *name_or_id);
const struct emu_role *emu_role_at(size_t i);
/* emu_rbac_scope_valid - 1 for "/", "/keys" or "/keys/{valid key name}". */
int emu_rbac_scope_valid(const char *scope);
/* emu_rbac_check - 0 when an assignment of WHO on Managed HSM V at a scope
 * covering KEY (NULL: the key collection) grants PERM (one EMU_P_* bit);
 * else -1 with the 403 message (Forbidden / ForbiddenByRbac) in MSG. */
int emu_rbac_check(const struct emu_vault *v, const struct emu_caller *who,
                   unsigned perm, const char *key, char *msg, size_t msglen);
/* emu_rbac_assign - add (or find the identical) assignment of ROLE to
 * object id OID at SCOPE (valid) on V; 0 with *OUT (owned by V), -1 on
 * a too long OID or out of memory. */
int emu_rbac_assign(struct emu_vault *v, const struct emu_role *role,
                    const char *oid, const char *scope,
                    struct emu_role_assignment **out);
/* emu_rbac_assignment_json - `az keyvault role assignment` shape. */
cJSON *emu_rbac_assignment_json(const struct emu_role_assignment *ra);
/* emu_rbac_save / _load - V's assignments as stored in state.json
 * (name, roleId, principalId, scope); load returns -1 on a bad entry. */
cJSON *emu_rbac_save(const struct emu_vault *v);
int emu_rbac_load(struct emu_vault *v, cJSON *arr);

/* ---- cert.c (certificates.json; callers hold emu.lock) ---- */
struct emu_resp;
/* emu_cert_perm_parse - certificate permission name ("get", "list",
 * "all"; case-insensitive) -> EMU_CP_* bits; 0 when unknown.
 * emu_cert_perm_name - the name of one bit. emu_cert_perms_json - new
 * array of names. */
unsigned emu_cert_perm_parse(const char *name);
const char *emu_cert_perm_name(unsigned bit);
cJSON *emu_cert_perms_json(unsigned perms);
/* emu_cert_version - the key version of K holding certificate version VER
 * (NULL/"": the newest one with a certificate); NULL when none. */
struct emu_keyver *emu_cert_version(struct emu_key *k, const char *ver);
/* emu_cert_bundle_json - CertificateBundle {id, kid, sid, x5t (base64url
 * SHA-1 of the DER), cer (base64 DER), attributes, tags} of KV (which has
 * a certificate) under BASE; new object. */
cJSON *emu_cert_bundle_json(const char *base, const struct emu_key *k,
                            const struct emu_keyver *kv);
/* emu_cert_versions_json - CertificateListResult {value: [CertificateItem
 * {id, x5t, attributes, tags}], nextLink: null} of K (NULL: empty). */
cJSON *emu_cert_versions_json(const char *base, const struct emu_key *k);
/* emu_cert_not_found - 404 CertificateNotFound for NAME[/VER]. */
void emu_cert_not_found(struct emu_resp *rs, const char *name, const char *ver);
/* emu_cert_make - gives key version KV (RSA or EC) its certificate: PEM
 * (an X.509 certificate whose public key must be KV's) or, when PEM is
 * NULL, one self-signed by KV's key for SUBJECT ("CN=x/O=y"; NULL:
 * CN=akv-emulator) valid DAYS (1..36500). 0, or -1 with *err (400
 * message); KV keeps its previous certificate on failure. */
int emu_cert_make(struct emu_keyver *kv, const char *subject, long days,
                  const char *pem, const char **err);

/* ---- admin.c (control plane) ---- */
/* emu_vault_json - `az keyvault show` shape of V. */
cJSON *emu_vault_json(const struct emu_vault *v);
/* emu_admin_run - run one control command (ARGV = JSON array of strings,
 * without --dir). Returns an HTTP status (200 ok, 400 usage or bad value,
 * 404 unknown vault/key/identity, 409 deleted name) and a malloc'ed answer
 * in *out: the az-shaped JSON, or {"error":"message"} plus "usage":true
 * when the command line itself is wrong (the CLI then exits 2). */
int emu_admin_run(cJSON *argv, char **out);

/* ---- faults.c (stats, fault injection, throttling) ---- */
enum emu_fault_kind {
    EMU_FAULT_NONE,
    EMU_FAULT_STATUS,
    EMU_FAULT_DELAY,
    EMU_FAULT_HANG,
    EMU_FAULT_CLOSE,
    EMU_FAULT_MALFORMED
};
struct emu_fault_hit {
    int kind;
    int status;
    int retry_after; /* seconds, < 0: no Retry-After */
    int delay_ms;
    char malformed[16]; /* truncated | bad-base64 | wrong-length | jwk-e1 |
                           jwk-n8 | kid-host | kid-newline */
    int trickle_ms;     /* > 0: send the body one byte per trickle_ms ms;
                           combines with any kind but hang */
};
/* Operation names (token, imds, get, wrapkey, ...) <-> enum emu_opname;
 * parse returns -1 when unknown. */
const char *emu_opname_str(int op);
int emu_opname_parse(const char *s);
/* emu_stats_count - count one request of OP (lock-free). */
void emu_stats_count(int op);
/* emu_stats_throttled - count one request refused with 429 by the
 * throttle (also counted by emu_stats_count under its op): the stats'
 * "throttled", so "ops served" = the op counts minus it. */
void emu_stats_throttled(void);
/* emu_stats_json - {"get":N,...}; RESET zeroes after reading. */
cJSON *emu_stats_json(int reset);
/* emu_fault_match - first rule matching OP or a substring of PATH (and its
 * --fraction roll); consumes one --count. Returns 1 with *hit, else 0 (hit
 * zeroed, retry_after -1). */
int emu_fault_match(int op, const char *path, struct emu_fault_hit *hit);
/* emu_fault_admin - "fault add|clear|list" from ARGV[ARGI...]; HTTP status
 * and malloc'ed JSON in *out as emu_admin_run. */
int emu_fault_admin(cJSON *argv, int argi, char **out);
/* emu_throttle_take - charge one OP on vault V against the per-10-s budget
 * of the service-limits table (protocol.md 5.1) scaled by
 * emu.throttle_scale; KV (or NULL) weighs RSA size/HSM. Returns 0 when
 * allowed, else the Retry-After seconds (nothing charged). */
int emu_throttle_take(struct emu_vault *v, int op, const struct emu_keyver *kv);

#endif
