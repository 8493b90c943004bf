/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encoding and file helpers: base64url (RFC 4648 section 5), GUIDs, IntDate
 * parsing, atomic file writes, form/percent decoding, and the permission /
 * key_ops name tables (Key Vault access policy and JWK key_ops names).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>
#include <sys/stat.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/b64url.h"
#include "emu.h"

/* Thin allocating wrappers: the codec itself is common/b64url.c, shared with
 * the module so the emulator and the client cannot drift apart. */
char *emu_b64url_encode(const unsigned char *in, size_t len)
{
    size_t cap = akv_b64url_encoded_len(len) + 1;
    char *out = malloc(cap);

    if (!out) {
        return NULL;
    }
    if (akv_b64url_encode(in, len, out, cap) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

unsigned char *emu_b64url_decode(const char *in, size_t *out_len)
{
    size_t len = strlen(in), cap = len * 3 / 4 + 1;
    unsigned char *out = malloc(cap);
    long n;

    if (!out) {
        return NULL;
    }
    n = akv_b64url_decode(in, len, out, cap);
    if (n < 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)n;
    return out;
}

const char *emu_json_str(cJSON *o, const char *name)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int emu_json_ll(const cJSON *v, long long *out)
{
    /* both bounds are exact doubles (+-2^63); NaN fails both tests */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9223372036854775808.0)
        || !(v->valuedouble < 9223372036854775808.0)) {
        *out = 0;
        return -1;
    }
    *out = (long long)v->valuedouble;
    return 0;
}

long long emu_json_num(cJSON *o, const char *name, long long dflt)
{
    long long n;

    return emu_json_ll(cJSON_GetObjectItemCaseSensitive(o, name), &n) == 0
               ? n
               : dflt;
}

int emu_valid_name(const char *n, size_t min, size_t max)
{
    size_t l = strlen(n), i;

    if (l < min || l > max) {
        return 0;
    }
    for (i = 0; i < l; i++) {
        char c = n[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-')) {
            return 0;
        }
    }
    return 1;
}

void emu_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    size_t i;

    if (nbytes > sizeof(buf)) {
        nbytes = sizeof(buf);
    }
    RAND_bytes(buf, (int)nbytes);
    for (i = 0; i < nbytes; i++) {
        snprintf(out + 2 * i, 3, "%02x", buf[i]);
    }
    out[2 * nbytes] = 0;
}

void emu_guid(char out[EMU_GUID_LEN + 1])
{
    unsigned char b[16];

    RAND_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, EMU_GUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

long long emu_now(void)
{
    return (long long)time(NULL);
}

int emu_strcaseeq(const char *a, const char *b)
{
    return a && b && strcasecmp(a, b) == 0;
}

long long emu_parse_time(const char *s)
{
    struct tm tm;
    char *end = NULL;
    long long v;

    if (!s || !*s) {
        return -1;
    }
    v = strtoll(s, &end, 10);
    if (end && *end == 0 && v >= 0) {
        return v;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
        if (!end) {
            return -1;
        }
    }
    if (*end == '.') {
        end++;
        while (isdigit((unsigned char)*end)) {
            end++;
        }
    }
    if (*end && strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0) {
        return -1;
    }
    return (long long)timegm(&tm);
}

int emu_write_file_atomic(const char *path, const char *data, size_t len,
                          int mode)
{
    char tmp[PATH_MAX + 32];
    char dirbuf[PATH_MAX];
    int fd = -1, rc = -1, dfd;
    size_t off = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        goto out;
    }
    fchmod(fd, (mode_t)mode);
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        goto out;
    }
    snprintf(dirbuf, sizeof(dirbuf), "%s", path);
    dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        unlink(tmp);
    }
    return rc;
}

char *emu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long sz;

    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0) {
        goto out;
    }
    buf = malloc((size_t)sz + 1);
    if (!buf) {
        goto out;
    }
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[sz] = 0;
    if (len) {
        *len = (size_t)sz;
    }
out:
    fclose(f);
    return buf;
}

void emu_sha256_hex(const char *s, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    int i;

    SHA256((const unsigned char *)s, strlen(s), d);
    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

void emu_url_decode(char *s, int form)
{
    char *w = s;

    for (; *s; s++) {
        if (*s == '%' && hexval((unsigned char)s[1]) >= 0
            && hexval((unsigned char)s[2]) >= 0) {
            *w++ = (char)(hexval((unsigned char)s[1]) * 16
                          + hexval((unsigned char)s[2]));
            s += 2;
        } else if (form && *s == '+') {
            *w++ = ' ';
        } else {
            *w++ = *s;
        }
    }
    *w = 0;
}

char *emu_form_get(const char *body, const char *name)
{
    const char *p = body;

    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t seglen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', seglen);

        if (eq) {
            char *k = strndup(p, (size_t)(eq - p));

            if (k) {
                emu_url_decode(k, 1);
                if (strcmp(k, name) == 0) {
                    char *v = strndup(eq + 1, seglen - (size_t)(eq - p) - 1);

                    free(k);
                    if (v) {
                        emu_url_decode(v, 1);
                    }
                    return v;
                }
                free(k);
            }
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static const char *const perm_names[] = {
    "get",
    "list",
    "create",
    "update",
    "import",
    "delete",
    "recover",
    "backup",
    "restore",
    "purge",
    "encrypt",
    "decrypt",
    "wrapKey",
    "unwrapKey",
    "sign",
    "verify",
    "rotate",
    "getrotationpolicy",
    "setrotationpolicy",
    "release",
};

unsigned emu_perm_parse(const char *name)
{
    size_t i;

    if (emu_strcaseeq(name, "all")) {
        return EMU_P_ALL;
    }
    for (i = 0; i < sizeof(perm_names) / sizeof(perm_names[0]); i++) {
        if (emu_strcaseeq(name, perm_names[i])) {
            return 1u << i;
        }
    }
    return 0;
}

const char *emu_perm_name(unsigned bit)
{
    size_t i;

    for (i = 0; i < sizeof(perm_names) / sizeof(perm_names[0]); i++) {
        if (bit == 1u << i) {
            return perm_names[i];
        }
    }
    return "unknown";
}

cJSON *emu_perms_json(unsigned perms)
{
    cJSON *a = cJSON_CreateArray();
    size_t i;

    for (i = 0; i < sizeof(perm_names) / sizeof(perm_names[0]); i++) {
        if (perms & (1u << i)) {
            cJSON_AddItemToArray(a, cJSON_CreateString(perm_names[i]));
        }
    }
    return a;
}

static const char *const op_names[] = {
    "encrypt", "decrypt",   "sign",   "verify",
    "wrapKey", "unwrapKey", "import", "export",
};

unsigned emu_keyop_parse(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (emu_strcaseeq(name, op_names[i])) {
            return 1u << i;
        }
    }
    return 0;
}

cJSON *emu_keyops_json(unsigned ops)
{
    cJSON *a = cJSON_CreateArray();
    size_t i;

    for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (ops & (1u << i)) {
            cJSON_AddItemToArray(a, cJSON_CreateString(op_names[i]));
        }
    }
    return a;
}
