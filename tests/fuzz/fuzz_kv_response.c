/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: every parser in keyvault/json.c (plus the challenge and
 * Retry-After parsers) on the same bytes; none may crash, leak or read out
 * of bounds, and every success must leave consistent output. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64url.h"
#include "common/kvid.h"
#include "common/log.h"
#include "keyvault/auth.h"
#include "keyvault/json.h"
#include "keyvault/jwk.h"
#include "keyvault/retry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct akv_kv_key k;
    struct akv_secret s = AKV_SECRET_INIT;
    struct akv_json_error e;
    struct akv_challenge ch;
    char kid[AKV_KV_KID_MAX];
    int64_t exp = 0;
    int64_t life = 0;
    char *str;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    if (akv_json_parse_key_bundle(buf, size, &k) == CKR_OK) {
        if (k.kty == AKV_KV_KTY_RSA && (k.n_len == 0 || k.n[0] == 0)) {
            abort(); /* modulus must be minimal and non-empty */
        }
        if (strlen(k.kid) >= AKV_KV_KID_MAX || k.version[0] == '\0') {
            abort();
        }
        {
            char why[160];
            CK_RV jr = akv_jwk_check(&k, why, sizeof(why));
            if (jr != CKR_OK && jr != CKR_DEVICE_ERROR) {
                abort();
            }
        }
        akv_kv_key_clear(&k);
    }
    {
        struct akv_kv_cert c;

        if (akv_json_parse_cert_bundle(buf, size, &c) == CKR_OK) {
            if (c.der == NULL || c.der_len == 0 || c.der_len > AKV_KV_CERT_MAX
                || c.version[0] == '\0' || strlen(c.kid) >= AKV_KV_KID_MAX) {
                abort();
            }
            akv_kv_cert_clear(&c);
        }
    }
    if (akv_json_parse_key_op_result(buf, size, kid, &s) == CKR_OK) {
        if (s.len == 0 || strlen(kid) >= AKV_KV_KID_MAX) {
            abort();
        }
    }
    akv_secret_clear(&s);
    {
        /* an encrypt answer's iv / tag: at most 16 bytes each, or refused
         * with both lengths 0 */
        struct akv_kv_crypt_out x;
        CK_RV xr = akv_json_parse_crypt_extra(buf, size, &x);

        if (x.iv_len > 16 || x.tag_len > 16
            || (xr != CKR_OK && (x.iv_len != 0 || x.tag_len != 0))) {
            abort();
        }
    }
    (void)akv_json_parse_error(buf, size, &e);
    if (strlen(e.code) >= sizeof(e.code)
        || strlen(e.message) >= sizeof(e.message)) {
        abort();
    }
    if (akv_json_parse_token(buf, size, 1700000000, &s, &exp, &life)
        == CKR_OK) {
        if (life <= 0 || exp != 1700000000 + life || s.len == 0) {
            abort();
        }
    }
    akv_secret_clear(&s);

    /* header-shaped parsers take NUL-terminated text */
    str = malloc(size + 1);
    if (str == NULL) {
        return 0;
    }
    memcpy(str, data, size);
    str[size] = '\0';
    if (akv_auth_parse_challenge(str, &ch) == 0) {
        if (strncasecmp(ch.scope, "https://", 8) != 0) {
            abort();
        }
        (void)akv_auth_challenge_host_ok("https://v.vault.azure.net", &ch);
    }
    (void)akv_retry_after_parse(str, 1700000000);
    {
        struct akv_kvid_kid id;
        struct akv_kvid_url u;
        if (akv_kvid_kid_parse(str, &id) == 0
            && (!akv_kvid_name_ok(id.name, strlen(id.name))
                || (id.version[0] != '\0'
                    && !akv_kvid_version_ok(id.version, 32)))) {
            abort();
        }
        (void)akv_kvid_url_parse(str, &u);
        (void)akv_kvid_host_is_loopback(str, strlen(str));
    }
    {
        uint8_t out[512];
        long n =
            akv_b64url_decode(str, size < 600 ? size : 600, out, sizeof(out));
        if (n > 0) {
            char txt[1024];
            uint8_t back[512];
            long m = akv_b64url_encode(out, (size_t)n, txt, sizeof(txt));
            if (m < 0
                || akv_b64url_decode(txt, (size_t)m, back, sizeof(back)) != n
                || memcmp(out, back, (size_t)n) != 0) {
                abort();
            }
        }
    }
    free(str);
    return 0;
}
