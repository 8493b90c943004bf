/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the HTTP response header path of keyvault/. The input is a raw
 * header block (status line, "Name: value" lines, LF or CRLF); each line
 * goes through akv_http_header_line exactly as libcurl's header callback
 * hands it over (not NUL-terminated, ASan-bounded copy), then the stored
 * values through the Retry-After delay (akv_retry_server_delay, fixed
 * clock) and the WWW-Authenticate challenge parser. Invariants (abort on
 * breach): stored values are NUL-terminated inside their fields, trimmed,
 * free of control bytes; a delay is -1 or 0..1 day; a parsed challenge has
 * an https scope.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "keyvault/auth.h"
#include "keyvault/http.h"
#include "keyvault/retry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXED_NOW 1767225600 /* 2026-01-01T00:00:00Z */

static void check_field(const char *f, size_t cap)
{
    size_t n = strnlen(f, cap);

    if (n == cap) {
        abort(); /* not terminated inside the field */
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)f[i] < 0x20 || f[i] == 0x7f) {
            abort();
        }
    }
    if (n > 0 && (f[0] == ' ' || f[0] == '\t')) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct akv_http_resp resp;
    struct akv_challenge ch;
    size_t off = 0;
    long delay;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    memset(&resp, 0, sizeof(resp));
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl != NULL ? (size_t)(nl - (data + off)) + 1 : size - off;
        /* a private heap copy of exactly the line: over-reads trip ASan */
        char *line = malloc(len);

        if (line == NULL) {
            return 0;
        }
        memcpy(line, data + off, len);
        akv_http_header_line(&resp, line, len);
        free(line);
        off += len;
    }
    check_field(resp.request_id, sizeof(resp.request_id));
    check_field(resp.www_authenticate, sizeof(resp.www_authenticate));
    check_field(resp.retry_after, sizeof(resp.retry_after));
    check_field(resp.retry_after_ms, sizeof(resp.retry_after_ms));
    delay = akv_retry_server_delay(&resp, FIXED_NOW);
    if (delay < -1 || (resp.retry_after_ms[0] == '\0' && delay > 86400000L)) {
        abort();
    }
    if (resp.retry_after[0] == '\0' && resp.retry_after_ms[0] == '\0'
        && delay != -1) {
        abort();
    }
    if (akv_auth_parse_challenge(resp.www_authenticate, &ch) == 0) {
        if (strncasecmp(ch.scope, "https://", 8) != 0) {
            abort();
        }
        (void)akv_auth_challenge_host_ok("https://v.vault.azure.net", &ch);
    }
    return 0;
}
