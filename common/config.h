/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The module's configuration, parsed from JSON (cJSON) into plain structs.
 * Schema and defaults: conf/README.md (the documented reference).
 *
 * Lookup order (akv_config_locate): the "config=PATH" string in
 * C_Initialize's pReserved, then $AKV_PKCS11_CONFIG, then
 * /etc/akv-pkcs11/config.json.
 */
#ifndef AKV_COMMON_CONFIG_H
#define AKV_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum akv_cred_type {
    AKV_CRED_MANAGED_IDENTITY = 0,
    AKV_CRED_CLIENT_SECRET,
    AKV_CRED_CLIENT_CERTIFICATE,
    AKV_CRED_WORKLOAD_IDENTITY,
    AKV_CRED_ENVIRONMENT,
};

enum akv_wrap_mode {
    AKV_WRAP_REMOTE = 0, /* C_WrapKey calls Key Vault wrapKey (audited) */
    AKV_WRAP_LOCAL,      /* C_WrapKey uses the cached public key */
};

struct akv_cred_config {
    enum akv_cred_type type;
    char *client_id;            /* user-assigned MI, or the app's client id */
    char *object_id;            /* MI by object id (IMDS object_id) */
    char *resource_id;          /* MI by ARM resource id (IMDS msi_res_id) */
    char *tenant_id;            /* Entra tenant (GUID or domain) */
    char *client_secret_file;   /* file holding the client secret */
    char *client_secret_env;    /* or: name of an env var holding it */
    char *certificate_file;     /* PEM: certificate + private key */
    char *federated_token_file; /* workload identity token file */
    char *authority_host;       /* default https://login.microsoftonline.com */
    char
        *imds_endpoint;    /* full IMDS token URL; default
                              http://169.254.169.254/metadata/identity/oauth2/token
                            */
    char *allow_imds_host; /* one more host imds_endpoint / IDENTITY_ENDPOINT
                              may name (akv_config_identity_host_ok) */
};

struct akv_http_config {
    long timeout_ms; /* one attempt (connect + transfer); default 10000 */
    long budget_ms;  /* whole call incl. retries; default 30000 */
    int retries;     /* extra attempts after the first; default 4 */
    char *ca_file;   /* PEM bundle; NULL = system store */
    bool allow_http_loopback; /* permit http:// to 127.0.0.0/8, ::1 only */
    bool verify_challenge_resource; /* challenge resource must match host;
                                       default true */
    /* Connection phase of one attempt (name lookup, TCP, TLS), ms; default
     * 3000. Separate from timeout_ms so a black-holed address fails fast. */
    long connect_timeout_ms;
    /* A request on a reused keep-alive connection with no answer byte after
     * this many ms is sent once more on a new connection (a firewall or NAT
     * dropped the idle connection silently); 0 = off; default 2000. */
    long reuse_answer_ms;
};

struct akv_key_config {
    char *name;    /* Key Vault key name */
    char *version; /* pinned version (32 hex), or NULL = current */
};

struct akv_token_config {
    char *label;       /* token label, <= 32 bytes */
    char *vault_url;   /* https://NAME.vault.azure.net (no trailing slash) */
    char *api_version; /* default "7.4" */
    char *scope;       /* default derived: https://vault.azure.net/.default */
    struct akv_key_config *keys;
    size_t n_keys;
    struct akv_cred_config cred;
    struct akv_http_config http;
    char *store_dir; /* token objects; NULL = no token objects */
    enum akv_wrap_mode wrap;
    long key_refresh_s;   /* GET key cache lifetime; default 60 */
    long dek_cache_ttl_s; /* unwrapped token-object cache; 0 = none */
    /* After a decryption failure under a key's version, how many other
     * known versions of the same key to try (OAEP only); 0 = off. Default 4
     * (conf/README.md "rotation_fallback"). */
    long rotation_fallback;
    /* The per-user cache shared by processes (keyvault/pcache.h): access
     * tokens and Get Key answers. cache: default true; cache_dir: absolute
     * folder, NULL = akv_pcache_default_dir(). */
    bool cache;
    char *cache_dir;
    /* Vault keys may sign (Key Vault "Sign"): CKA_SIGN follows key_ops only
     * when true. Default false, so the least-privilege CMK identity (get,
     * wrapKey, unwrapKey) is never offered an operation it cannot do. */
    bool sign;
    /* The token's certificate object (token/cert.h), at most one of: the
     * name of a Key Vault certificate (needs certificates/get), or an
     * absolute path of a PEM certificate file (StrictModes, common/
     * fsperm.h) whose public key is a configured vault key's. NULL = none. */
    char *certificate;
    char *certificate_file;

    /* C_GenerateKeyPair with CKA_TOKEN TRUE creates the key in Key Vault
     * ("Create Key", keys/create permission) only when allow_create is true
     * (default false: the CMK identity has get/wrapKey/unwrapKey only).
     * create_hsm: default kty RSA-HSM/EC-HSM instead of RSA/EC (the
     * template's CKA_AKV_HSM overrides it). allow_delete: C_DestroyObject of
     * a vault key deletes it ("Delete Key", keys/delete; soft delete),
     * default false (CKR_ACTION_PROHIBITED). README "Creating keys". */
    bool allow_create;
    bool create_hsm;
    bool allow_delete;
};

struct akv_config {
    char *path;       /* the file it was read from */
    int log_level;    /* enum akv_log_level */
    char *log_target; /* "stderr", "syslog" or a file path */
    struct akv_token_config *tokens;
    size_t n_tokens;
    /* Non-fatal findings (unknown keys, keys unused by the credential
     * type), kept so the caller can log them once the configured log
     * level and target are in force; at most AKV_CONFIG_MAX_WARNINGS. */
    char **warnings;
    size_t n_warnings;
};

#define AKV_CONFIG_MAX_WARNINGS 32

/*
 * akv_config_locate - picks the configuration path by the lookup order
 * above. reserved: C_Initialize's pReserved as a string, or NULL. Returns a
 * heap string (caller frees) or NULL on allocation failure.
 */
char *akv_config_locate(const char *reserved);

/*
 * akv_config_load - reads and validates PATH. On success returns 0 and
 * *out owns a new config (free with akv_config_free). On failure returns -1
 * and writes a message naming the file, the JSON path and the problem into
 * err (err_len bytes, always NUL-terminated); nothing is allocated.
 */
int akv_config_load(const char *path, struct akv_config **out, char *err,
                    size_t err_len);

/* akv_config_parse - as akv_config_load, from a buffer (used by fuzzing
 * and unit tests); name is used in messages only. */
int akv_config_parse(const char *json, size_t len, const char *name,
                     struct akv_config **out, char *err, size_t err_len);

/*
 * akv_config_identity_host_ok - where a managed-identity token may be asked
 * for (imds_endpoint, and the App Service IDENTITY_ENDPOINT): the token is
 * sent back over plain HTTP, so only to a loopback host (127.0.0.0/8,
 * [::1], localhost), the link-local IMDS address 169.254.169.254, or
 * ALLOWED_HOST (credential.allow_imds_host; NULL = none), compared ASCII
 * case-insensitively with URL's host without its port. URL: an http(s)
 * URL. Returns 1 when allowed, 0 otherwise (also for a URL without a
 * host or with user info). conf/README.md documents the rule.
 */
int akv_config_identity_host_ok(const char *url, const char *allowed_host);

/* akv_config_free - NULL-safe. */
void akv_config_free(struct akv_config *cfg);

#endif /* AKV_COMMON_CONFIG_H */
