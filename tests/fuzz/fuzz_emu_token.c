/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the emulator's token checks, on the fixture's fixed keys and
 * fixed clock (emu_harness.h). The first input byte picks the path, the
 * rest is its input:
 *   0: an Authorization header value for the vault (emu_token_check:
 *      Bearer parsing, RS256/PS256 verification, aud/iss/exp/nbf/revoked);
 *   1: an Entra ID token request body (form-encoded) to
 *      POST /TENANT/oauth2/v2.0/token: client secret, client assertion of
 *      a certificate service principal (x5t, signature, aud, iss/sub, exp)
 *      and the workload identity's federated assertion;
 *   2: a compact JWS through emu_jwt_peek_header/_claims and
 *      emu_jwt_verify against the signing key.
 * Invariants (abort on breach): a token check succeeds only for a caller
 * the fixture knows; a 200 token answer holds an access_token that passes
 * emu_token_check when its audience is the vault; every other answer is a
 * 4xx with error and error_description.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
emu_handler_fn emu_entra_handler(void);

static void check_bearer(const char *authz, int must_pass)
{
    struct emu_caller who;
    char msg[512];
    int rc;

    memset(&who, 0, sizeof(who));
    msg[0] = 0;
    pthread_rwlock_rdlock(&emu.lock);
    rc = emu_token_check(authz, &who, msg, sizeof(msg));
    if (rc == 0 && !emu_find_principal_oid(who.oid)) {
        abort();
    }
    pthread_rwlock_unlock(&emu.lock);
    if (rc != 0 && (must_pass || strncmp(msg, "AKV100", 6) != 0)) {
        fprintf(stderr, "token check: %s\n", msg);
        abort();
    }
}

static void token_request(const char *body, size_t len)
{
    struct emu_fuzz_conn conn;
    struct emu_req rq;
    struct emu_resp rs;
    cJSON *j;

    memset(&conn, 0, sizeof(conn));
    conn.hdr_name[0] = "Host";
    conn.hdr_value[0] = "127.0.0.1:33425";
    conn.hdr_name[1] = "Content-Type";
    conn.hdr_value[1] = "application/x-www-form-urlencoded";
    conn.nhdr = 2;
    memset(&rq, 0, sizeof(rq));
    rq.conn = (struct MHD_Connection *)(void *)&conn;
    rq.method = "POST";
    rq.url = "/" EMU_FUZZ_TENANT "/oauth2/v2.0/token";
    rq.body = body;
    rq.len = len;
    rq.is_tls = 1;
    memset(&rs, 0, sizeof(rs));
    rs.retry_after = -1;
    emu_entra_handler()(&rq, &rs);
    if (getenv("EMU_FUZZ_VERBOSE")) {
        /* to see what a seed reaches: EMU_FUZZ_VERBOSE=1 TARGET -runs=0 DIR */
        fprintf(stderr, "%d %.200s\n", rs.status, rs.body ? rs.body : "");
    }
    j = rs.body ? cJSON_ParseWithLength(rs.body, rs.len) : NULL;
    if (!j) {
        abort();
    }
    if (rs.status == 200) {
        const char *tok = emu_json_str(j, "access_token");
        char *authz;
        cJSON *claims;

        if (!tok) {
            abort();
        }
        claims = emu_jwt_peek_claims(tok);
        if (!claims) {
            abort();
        }
        /* the audience is the requested resource as sent (imds.c: "any
         * resource is honoured", like Azure); the vault takes exactly
         * https://vault.azure.net (AKV10022) */
        if (emu_json_str(claims, "aud")
            && strcmp(emu_json_str(claims, "aud"), "https://vault.azure.net")
                   == 0) {
            authz = malloc(strlen(tok) + 8);
            if (!authz) {
                abort();
            }
            sprintf(authz, "Bearer %s", tok);
            check_bearer(authz, 1);
            free(authz);
        }
        cJSON_Delete(claims);
    } else if (rs.status < 400 || rs.status > 499 || !emu_json_str(j, "error")
               || !emu_json_str(j, "error_description")) {
        abort();
    }
    cJSON_Delete(j);
    free(rs.body);
}

static void jws(const char *tok)
{
    cJSON *h = emu_jwt_peek_header(tok);
    cJSON *c = emu_jwt_peek_claims(tok);
    cJSON *claims = NULL;

    if (emu_jwt_verify(tok, emu.signing_key, &claims) == 0) {
        if (!claims || !c) {
            abort();
        }
    } else if (claims) {
        abort();
    }
    cJSON_Delete(claims);
    cJSON_Delete(h);
    cJSON_Delete(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (size < 1) {
        return 0;
    }
    emu_fuzz_init();
    /* the listeners hand over NUL-terminated text */
    s = malloc(size);
    if (!s) {
        return 0;
    }
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    switch (data[0] % 3) {
    case 0:
        check_bearer(s, 0);
        break;
    case 1:
        token_request(s, size - 1);
        break;
    default:
        jws(s);
        break;
    }
    free(s);
    return 0;
}
