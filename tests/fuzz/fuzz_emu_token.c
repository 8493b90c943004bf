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
 *      emu_jwt_verify against the signing key;
 *   3: an IMDS or App Service managed identity request line "PATH?QUERY"
 *      (GET, with Metadata: true and the fixture's X-IDENTITY-HEADER).
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
emu_handler_fn emu_imds_handler(void);

static void check_bearer(const char *authz, int must_pass)
{
    struct emu_caller who;
    char msg[512];
    int rc;

    memset(&who, 0, sizeof(who));
    msg[0] = 0;
    pthread_rwlock_rdlock(&emu.lock);
    rc = emu_token_check(authz, 0 /* a vault */, &who, msg, sizeof(msg));
    if (rc == 0 && !emu_find_principal_oid(who.oid)) {
        abort();
    }
    pthread_rwlock_unlock(&emu.lock);
    if (rc != 0 && (must_pass || strncmp(msg, "AKV100", 6) != 0)) {
        fprintf(stderr, "token check: %s\n", msg);
        abort();
    }
}

/* A token answer: 200 with an access_token (that the vault takes when its
 * audience is exactly the vault's) or 4xx with error and
 * error_description. */
static void check_token_answer(const struct emu_resp *rs)
{
    cJSON *j = rs->body ? cJSON_ParseWithLength(rs->body, rs->len) : NULL;

    if (!j) {
        abort();
    }
    if (rs->status == 200) {
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
    } else if (rs->status < 400 || rs->status > 499 || !emu_json_str(j, "error")
               || !emu_json_str(j, "error_description")) {
        abort();
    }
    cJSON_Delete(j);
}

static void verbose(const struct emu_resp *rs)
{
    if (getenv("EMU_FUZZ_VERBOSE")) {
        /* to see what a seed reaches: EMU_FUZZ_VERBOSE=1 TARGET -runs=0 DIR */
        fprintf(stderr, "%d %.200s\n", rs->status, rs->body ? rs->body : "");
    }
}

static void token_request(const char *body, size_t len)
{
    struct emu_fuzz_conn conn;
    struct emu_req rq;
    struct emu_resp rs;

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
    verbose(&rs);
    check_token_answer(&rs);
    free(rs.body);
}

/* GET PATH?QUERY on the IMDS listener, with "Metadata: true" and the
 * App Service X-IDENTITY-HEADER of the fixture. */
static void imds_request(const char *url)
{
    struct emu_fuzz_conn conn;
    struct emu_req rq;
    struct emu_resp rs;
    char *path = strdup(url);
    char *q;

    if (!path) {
        return;
    }
    memset(&conn, 0, sizeof(conn));
    q = strchr(path, '?');
    if (q) {
        *q++ = 0;
        emu_fuzz_conn_query(&conn, strdup(q));
    }
    conn.hdr_name[0] = "Metadata";
    conn.hdr_value[0] = "true";
    conn.hdr_name[1] = "X-IDENTITY-HEADER";
    conn.hdr_value[1] = emu.identity_header;
    conn.nhdr = 2;
    memset(&rq, 0, sizeof(rq));
    rq.conn = (struct MHD_Connection *)(void *)&conn;
    rq.method = "GET";
    rq.url = path;
    rq.body = "";
    memset(&rs, 0, sizeof(rs));
    rs.retry_after = -1;
    emu_imds_handler()(&rq, &rs);
    verbose(&rs);
    check_token_answer(&rs);
    free(rs.body);
    emu_fuzz_conn_free(&conn);
    free(path);
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
    switch (data[0] % 4) {
    case 0:
        check_bearer(s, 0);
        break;
    case 1:
        token_request(s, size - 1);
        break;
    case 2:
        jws(s);
        break;
    default:
        imds_request(s);
        break;
    }
    free(s);
    return 0;
}
