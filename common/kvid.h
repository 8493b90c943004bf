/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key Vault identifiers: the one place that decides what a key name, a key
 * version, a kid, a vault URL and a loopback host are. The configuration
 * (common/config.c), the HTTP layer (keyvault/http.c), the REST client
 * (keyvault/kv_rest.c: URLs it builds and every kid the vault answers
 * with), the 401-challenge check (keyvault/auth.c) and the token
 * (token/token.c: CKA_ID <-> version, stored kids) all call these, so a
 * rule is written once.
 *
 * Follows: Key Vault "About keys, secrets and certificates" (object
 * identifiers: https://{vault}/keys/{name}[/{version}], name 1-127 of
 * [0-9a-zA-Z-], version a system-generated 32-character string, observed
 * as 32 hex digits; identifiers compare case-insensitively) and
 * keyvault-protocol.md §1.2; RFC 3986 §3.2 (authority) for URLs.
 *
 * Pure functions on bytes: no allocation, no locale, no network.
 */
#ifndef AKV_COMMON_KVID_H
#define AKV_COMMON_KVID_H

#include <stdbool.h>
#include <stddef.h>

#define AKV_KVID_NAME_MAX    127 /* chars in a key name */
#define AKV_KVID_VERSION_LEN 32  /* hex digits in a key version */
#define AKV_KVID_HOST_MAX    256 /* bytes incl. NUL for a host */
#define AKV_KVID_URL_MAX     512 /* bytes incl. NUL for a URL or kid */

/* An absolute http(s) URL split into its origin (and whether a path
 * follows). HOST is lower-cased, an IPv6 literal keeps its brackets; PORT
 * is the explicit port or the scheme's default (443, 80). */
struct akv_kvid_url {
    bool https;                   /* scheme https (else http) */
    char host[AKV_KVID_HOST_MAX]; /* "myvault.vault.azure.net", "[::1]" */
    unsigned port;                /* 1..65535 */
    const char *path;             /* points into the parsed text: "" or
                                     "/..." (valid while the text lives) */
};

/* A parsed kid: origin + key name + version ("" for a base identifier). */
struct akv_kvid_kid {
    struct akv_kvid_url url;
    char name[AKV_KVID_NAME_MAX + 1];
    char version[AKV_KVID_VERSION_LEN + 1]; /* lower-case hex, or "" */
};

/* akv_kvid_name_ok - S (LEN bytes) is a key name: 1-127 of [0-9A-Za-z-]. */
bool akv_kvid_name_ok(const char *s, size_t len);

/* akv_kvid_version_ok - S (LEN bytes) is a key version: exactly 32 hex
 * digits (either case: identifiers compare case-insensitively). */
bool akv_kvid_version_ok(const char *s, size_t len);

/* akv_kvid_version_norm - copies a valid version (LEN bytes) into OUT (33
 * bytes) in lower case, the form Key Vault issues. Returns 0, or -1 when
 * S is not a version (OUT is then ""). */
int akv_kvid_version_norm(const char *s, size_t len,
                          char out[AKV_KVID_VERSION_LEN + 1]);

/* akv_kvid_version_to_bytes / _from_bytes - a version <-> its 16 bytes
 * (the token's CKA_ID). to_bytes returns 0, or -1 for a non-version;
 * from_bytes writes 32 lower-case hex digits + NUL. */
int akv_kvid_version_to_bytes(const char *s, size_t len, unsigned char out[16]);
void akv_kvid_version_from_bytes(const unsigned char in[16],
                                 char out[AKV_KVID_VERSION_LEN + 1]);

/*
 * akv_kvid_host_is_loopback - HOST (LEN bytes, no port) is "localhost"
 * (any case), an IPv4 address 127.a.b.c in dotted decimal (each part
 * 0-255, 1-3 digits) or the IPv6 loopback "::1" / "[::1]". Nothing else:
 * "127.1", "127.0.0.1.nip.io", "localhost.example" are not loopback.
 */
bool akv_kvid_host_is_loopback(const char *host, size_t len);

/*
 * akv_kvid_url_parse - URL (NUL-terminated, < AKV_KVID_URL_MAX bytes):
 * "http(s)://host[:port][/path]" with no user info, query, fragment,
 * space, control or non-ASCII byte; host a DNS name ([0-9A-Za-z.-], no
 * empty label) or a bracketed IPv6 literal; port 1..65535 decimal.
 * Returns 0 and OUT, or -1 (OUT zeroed).
 */
int akv_kvid_url_parse(const char *url, struct akv_kvid_url *out);

/* akv_kvid_same_origin - same scheme, host (case-insensitive) and port
 * (":443" equals no port on https). */
bool akv_kvid_same_origin(const struct akv_kvid_url *a,
                          const struct akv_kvid_url *b);

/*
 * akv_kvid_kid_parse - KID "https://host[:port]/keys/NAME[/VERSION]" (http
 * too: the caller compares the origin with its vault) -> OUT. NAME per
 * akv_kvid_name_ok, VERSION per akv_kvid_version_ok (lower-cased), a
 * trailing "/" after NAME allowed as a base identifier. Returns 0, or -1
 * when KID is not a key identifier (OUT zeroed).
 */
int akv_kvid_kid_parse(const char *kid, struct akv_kvid_kid *out);

/* Why akv_kvid_kid_check refused a kid (0 = accepted). */
enum akv_kvid_kid_err {
    AKV_KVID_KID_OK = 0,
    AKV_KVID_KID_MALFORMED, /* not a key identifier */
    AKV_KVID_KID_ORIGIN,    /* another scheme, host or port than the vault */
    AKV_KVID_KID_NAME,      /* another key name */
    AKV_KVID_KID_VERSION,   /* no version, or not the version asked for */
};

/*
 * akv_kvid_kid_check - a kid from a vault answer is for VAULT (the
 * configured vault URL, parsed), key NAME (case-insensitive) and carries a
 * version, equal to VERSION when VERSION is non-NULL and non-empty. OUT
 * (may be NULL) receives the parsed kid on success. Returns an
 * enum akv_kvid_kid_err; akv_kvid_kid_strerror names it for a log line.
 */
enum akv_kvid_kid_err akv_kvid_kid_check(const struct akv_kvid_url *vault,
                                         const char *kid, const char *name,
                                         const char *version,
                                         struct akv_kvid_kid *out);
const char *akv_kvid_kid_strerror(enum akv_kvid_kid_err err);

/*
 * akv_kvid_resource_host_ok - the host of a 401 challenge's resource
 * (RESOURCE_HOST) may receive a token for VAULT_HOST: it has at least two
 * non-empty labels and is a proper suffix of VAULT_HOST at a label
 * boundary (case-insensitive). "vault.azure.net" for
 * "myvault.vault.azure.net": yes; "net", "azure.net.evil.com",
 * "ault.azure.net", "vault.azure.net" for itself: no. The Azure SDKs
 * (keyvault-common verifyChallengeResource) test only
 * `vaultHost.endsWith("." + host)`, which lets "net" and "com" through;
 * the two-label floor closes that.
 */
bool akv_kvid_resource_host_ok(const char *vault_host,
                               const char *resource_host);

#endif /* AKV_COMMON_KVID_H */
