/* SPDX-License-Identifier: Apache-2.0 */
#include "kvid.h"

#include <string.h>
#include <strings.h>

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z');
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* ASCII only (the callers checked): no locale. */
static char lower(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return (char)(c - 'A' + 'a');
    }
    return c;
}

bool akv_kvid_name_ok(const char *s, size_t len)
{
    if (s == NULL || len < 1 || len > AKV_KVID_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '-') {
            return false;
        }
    }
    return true;
}

bool akv_kvid_version_ok(const char *s, size_t len)
{
    if (s == NULL || len != AKV_KVID_VERSION_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (hexval(s[i]) < 0) {
            return false;
        }
    }
    return true;
}

int akv_kvid_version_norm(const char *s, size_t len,
                          char out[AKV_KVID_VERSION_LEN + 1])
{
    out[0] = '\0';
    if (!akv_kvid_version_ok(s, len)) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        out[i] = lower(s[i]);
    }
    out[len] = '\0';
    return 0;
}

int akv_kvid_version_to_bytes(const char *s, size_t len, unsigned char out[16])
{
    if (!akv_kvid_version_ok(s, len)) {
        return -1;
    }
    for (size_t i = 0; i < 16; i++) {
        /* akv_kvid_version_ok: every byte is a hex digit, so hexval is
         * 0..15 here */
        out[i] = (unsigned char)((unsigned)hexval(s[2 * i]) << 4
                                 | (unsigned)hexval(s[2 * i + 1]));
    }
    return 0;
}

void akv_kvid_version_from_bytes(const unsigned char in[16],
                                 char out[AKV_KVID_VERSION_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }
    out[AKV_KVID_VERSION_LEN] = '\0';
}

/* 1-3 decimal digits, value 0..255, at S (LEN bytes). */
static bool octet_ok(const char *s, size_t len)
{
    unsigned v = 0;

    if (len < 1 || len > 3) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 255;
}

bool akv_kvid_host_is_loopback(const char *host, size_t len)
{
    size_t start = 4;
    int parts = 1; /* "127" */

    if (host == NULL) {
        return false;
    }
    if ((len == 9 && strncasecmp(host, "localhost", 9) == 0)
        || (len == 5 && memcmp(host, "[::1]", 5) == 0)
        || (len == 3 && memcmp(host, "::1", 3) == 0)) {
        return true;
    }
    if (len < 4 || memcmp(host, "127.", 4) != 0) {
        return false;
    }
    /* 127.0.0.0/8 in full dotted-quad form only */
    for (size_t i = 4; i <= len; i++) {
        if (i == len || host[i] == '.') {
            if (!octet_ok(host + start, i - start)) {
                return false;
            }
            parts++;
            start = i + 1;
        }
    }
    return parts == 4;
}

/* A DNS name: labels of [0-9A-Za-z-] (and '_', seen in private DNS zones)
 * separated by single dots; or a bracketed IPv6 literal. */
static bool host_ok(const char *h, size_t len)
{
    size_t label = 0;

    if (len == 0 || len >= AKV_KVID_HOST_MAX) {
        return false;
    }
    if (h[0] == '[') {
        if (len < 4 || h[len - 1] != ']') {
            return false;
        }
        for (size_t i = 1; i + 1 < len; i++) {
            if (hexval(h[i]) < 0 && h[i] != ':' && h[i] != '.') {
                return false;
            }
        }
        return true;
    }
    for (size_t i = 0; i < len; i++) {
        if (h[i] == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
        } else if (is_alnum(h[i]) || h[i] == '-' || h[i] == '_') {
            label++;
        } else {
            return false;
        }
    }
    return label > 0;
}

int akv_kvid_url_parse(const char *url, struct akv_kvid_url *out)
{
    const char *p;
    size_t n;
    size_t hl;
    unsigned port = 0;

    if (out == NULL) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (url == NULL) {
        return -1;
    }
    n = strnlen(url, AKV_KVID_URL_MAX);
    if (n >= AKV_KVID_URL_MAX) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '@'
            || c == '\\') {
            return -1;
        }
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        out->https = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return -1;
    }
    n = strcspn(p, "/");
    if (p[0] == '[') {
        const char *rb = memchr(p, ']', n);
        hl = rb != NULL ? (size_t)(rb - p) + 1 : n;
    } else {
        hl = strcspn(p, ":/");
    }
    if (hl > n || !host_ok(p, hl)) {
        goto fail;
    }
    for (size_t i = 0; i < hl; i++) {
        out->host[i] = lower(p[i]);
    }
    out->host[hl] = '\0';
    if (hl < n) {
        if (p[hl] != ':' || n - hl < 2 || n - hl > 6) {
            goto fail;
        }
        for (size_t i = hl + 1; i < n; i++) {
            if (p[i] < '0' || p[i] > '9') {
                goto fail;
            }
            port = port * 10 + (unsigned)(p[i] - '0');
        }
        if (port < 1 || port > 65535) {
            goto fail;
        }
    } else {
        port = out->https ? 443 : 80;
    }
    out->port = port;
    out->path = p + n;
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

bool akv_kvid_same_origin(const struct akv_kvid_url *a,
                          const struct akv_kvid_url *b)
{
    return a != NULL && b != NULL && a->https == b->https && a->port == b->port
           && a->host[0] != '\0'
           && strcmp(a->host, b->host) == 0; /* both lower-cased */
}

int akv_kvid_kid_parse(const char *kid, struct akv_kvid_kid *out)
{
    const char *seg;
    size_t n;

    if (out == NULL) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (akv_kvid_url_parse(kid, &out->url) != 0
        || strncasecmp(out->url.path, "/keys/", 6) != 0) {
        goto fail;
    }
    seg = out->url.path + 6;
    n = strcspn(seg, "/");
    if (!akv_kvid_name_ok(seg, n)) {
        goto fail;
    }
    memcpy(out->name, seg, n);
    out->name[n] = '\0';
    seg += n;
    if (seg[0] == '\0' || strcmp(seg, "/") == 0) {
        return 0; /* base identifier */
    }
    seg++;
    if (akv_kvid_version_norm(seg, strlen(seg), out->version) != 0) {
        goto fail;
    }
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

enum akv_kvid_kid_err akv_kvid_kid_check(const struct akv_kvid_url *vault,
                                         const char *kid, const char *name,
                                         const char *version,
                                         struct akv_kvid_kid *out)
{
    struct akv_kvid_kid k;

    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (akv_kvid_kid_parse(kid, &k) != 0) {
        return AKV_KVID_KID_MALFORMED;
    }
    if (!akv_kvid_same_origin(vault, &k.url)) {
        return AKV_KVID_KID_ORIGIN;
    }
    if (name == NULL || strcasecmp(k.name, name) != 0) {
        return AKV_KVID_KID_NAME;
    }
    if (k.version[0] == '\0'
        || (version != NULL && version[0] != '\0'
            && strcasecmp(k.version, version) != 0)) {
        return AKV_KVID_KID_VERSION;
    }
    if (out != NULL) {
        *out = k;
        out->url.path = NULL; /* pointed into KID */
    }
    return AKV_KVID_KID_OK;
}

const char *akv_kvid_kid_strerror(enum akv_kvid_kid_err err)
{
    static const char *const why[] = {
        [AKV_KVID_KID_OK] = "ok",
        [AKV_KVID_KID_MALFORMED] = "is not https://HOST/keys/NAME/VERSION",
        [AKV_KVID_KID_ORIGIN] = "names another vault (scheme, host or port)",
        [AKV_KVID_KID_NAME] = "names another key",
        [AKV_KVID_KID_VERSION] = "lacks the version or names another one",
    };

    if ((unsigned)err >= sizeof(why) / sizeof(why[0])) {
        return "unknown";
    }
    return why[err];
}

bool akv_kvid_resource_host_ok(const char *vault_host,
                               const char *resource_host)
{
    size_t vl;
    size_t rl;

    if (vault_host == NULL || resource_host == NULL) {
        return false;
    }
    vl = strlen(vault_host);
    rl = strlen(resource_host);
    /* a real registrable-domain suffix: two labels at least */
    if (!host_ok(resource_host, rl) || resource_host[0] == '['
        || strchr(resource_host, '.') == NULL || !host_ok(vault_host, vl)) {
        return false;
    }
    /* an IP address has no parent domain: "0.0.1" is no suffix of
     * 127.0.0.1 in the sense meant here */
    if (vault_host[0] == '[' || strspn(vault_host, "0123456789.") == vl) {
        return false;
    }
    /* a proper suffix, as the SDKs test it: the resource names a service
     * domain, never one vault */
    return vl > rl + 1 && vault_host[vl - rl - 1] == '.'
           && strcasecmp(vault_host + vl - rl, resource_host) == 0;
}
