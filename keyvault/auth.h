/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Access tokens for Key Vault: the five credential types of config.h, a
 * token cache with single-flight refresh, and the parsing of Key Vault's
 * 401 challenge.
 *
 * Follows: keyvault-protocol.md §4 (Entra ID v2 client credentials with a
 * secret or a JWT assertion, IMDS 2018-02-01, App Service 2019-08-01,
 * workload identity), §4.7 (challenge), RFC 6749 §4.4 (client credentials),
 * RFC 7523 (JWT client assertion), RFC 9110 §11.6.1 (WWW-Authenticate).
 *
 * Threads: akv_auth_get_header may be called concurrently. One caller
 * refreshes at a time; others wait on a condition variable (the mutex is
 * released while they wait and while the refresher is on the network).
 */
#ifndef AKV_KEYVAULT_AUTH_H
#define AKV_KEYVAULT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "../common/config.h"
#include "../common/secret.h"
#include "http.h"

#define AKV_AUTH_TENANT_MAX 128
#define AKV_AUTH_SCOPE_MAX  320

/* A parsed 401 challenge. Empty strings for absent parameters. */
struct akv_challenge {
    char authorization[512];          /* authorization or authorization_uri */
    char tenant[AKV_AUTH_TENANT_MAX]; /* first path segment of it */
    char resource[256];               /* resource parameter */
    char scope[AKV_AUTH_SCOPE_MAX];   /* resource + "/.default", or scope */
};

/*
 * akv_auth_parse_challenge - HEADER: a WWW-Authenticate value such as
 * `Bearer authorization="https://login.microsoftonline.com/TID",
 * resource="https://vault.azure.net"`. Accepts "," with or without spaces
 * between parameters, quoted or bare values, authorization_uri as an alias,
 * a trailing '/' after the tenant (which, unlike the JS SDK, is not made
 * part of the tenant). Returns 0 when the scheme is Bearer and a scope could
 * be derived, -1 otherwise (OUT zeroed).
 */
int akv_auth_parse_challenge(const char *header, struct akv_challenge *out);

/*
 * akv_auth_challenge_host_ok - the challenge's resource (or scope) host H
 * may receive a token for VAULT_URL's host: akv_kvid_resource_host_ok (H
 * has two labels at least and equals the vault host or is a suffix of it
 * at a label boundary; keyvault-protocol.md §4.7 step 3, tightened: the
 * SDKs' endsWith("." + H) accepts "https://net"). Returns true when it
 * may.
 */
bool akv_auth_challenge_host_ok(const char *vault_url,
                                const struct akv_challenge *ch);

/*
 * akv_auth_refresh_at - when to refresh a token obtained at OBTAINED (s)
 * that lives LIFETIME_S seconds: 5 min before expiry, or at half its life
 * when it lives less than 10 min. Returns s since epoch.
 */
int64_t akv_auth_refresh_at(int64_t obtained, int64_t lifetime_s);

struct akv_auth;

/*
 * akv_auth_new - a credential from CRED (copied; the environment type reads
 * AZURE_* variables here), sending requests through HTTP (not owned) with
 * the retry settings of HC. ALLOW_HTTP_LOOPBACK extends to the authority
 * host. Returns CKR_OK, CKR_HOST_MEMORY, CKR_GENERAL_ERROR (unusable
 * configuration, logged). No network I/O.
 */
CK_RV akv_auth_new(const struct akv_cred_config *cred,
                   const struct akv_http_config *hc, struct akv_http *http,
                   struct akv_auth **out);

/*
 * akv_auth_set_cache - keeps tokens in the cross-process cache folder DIR
 * too (keyvault/pcache.h; NULL = memory only, the default): a token another
 * process of this user obtained for the same identity and scope is used
 * until its refresh time instead of asking the identity endpoint again; a
 * token the vault refused (STALE in akv_auth_get_header) is never taken
 * from the cache. Call before the first akv_auth_get_header.
 */
void akv_auth_set_cache(struct akv_auth *a, const char *dir);

/* akv_auth_free - wipes the cached token. NULL-safe. */
void akv_auth_free(struct akv_auth *a);

/*
 * akv_auth_get_header - "Authorization: Bearer <token>" for SCOPE into
 * HEADER (a secret), from the cache or a fresh token request. TENANT: the
 * tenant a challenge named, or NULL/""; used only when the credential has
 * no tenant of its own. STALE: 0, or the generation of a token the service
 * just refused (forces a refresh unless another thread already replaced
 * it). *GENERATION receives the returned token's generation. DEADLINE_MS:
 * absolute akv_retry_now_ms() time limit for the whole call including
 * waiting for another thread's refresh. WHY (WHY_LEN bytes, may be NULL)
 * receives a one-line reason on failure.
 * A token due for refresh (akv_auth_refresh_at) but more than 2 s from
 * expiry and not refused (STALE) is still valid: its refresh gets at most
 * half of the time left before DEADLINE_MS, and when that refresh fails
 * (endpoint error, 503, timeout) the valid token is returned with CKR_OK,
 * the failure logged at WARN and the refresh retried 10 s later (or at the
 * token's last usable second); threads arriving while another refreshes
 * get the valid token at once. (azure-core's token cycler behaves alike.)
 * Returns CKR_OK, CKR_DEVICE_ERROR (no valid token: credential, endpoint or
 * budget failure), CKR_HOST_MEMORY, CKR_ARGUMENTS_BAD.
 */
CK_RV akv_auth_get_header(struct akv_auth *a, const char *scope,
                          const char *tenant, uint64_t stale,
                          int64_t deadline_ms, struct akv_secret *header,
                          uint64_t *generation, char *why, size_t why_len);

#endif /* AKV_KEYVAULT_AUTH_H */
