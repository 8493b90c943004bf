/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the emulator's Key Vault keys API (emulator/vault_api.c) on
 * in-process requests: routing, query arguments, JSON request bodies
 * (create/import/rotate/update/restore/wrapkey/unwrapkey/encrypt/decrypt/
 * sign/verify) and the key model behind them, authorised with a real
 * access token of the fixture's service principal.
 *
 * Input: "METHOD URL[?query]\n" then the body (the rest). After a request
 * that changed the vault, its keys are rebuilt from the fixture snapshot so
 * every input starts from the same state. Invariants (abort on breach):
 * every answer has a status 200..599 and, but for 204, a JSON body; error
 * bodies carry error.code and error.message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct emu_vault *vault;
static emu_handler_fn handler;
static char *bearer;
static cJSON **snapshot;
static size_t nsnapshot;

static void setup(void)
{
    struct emu_principal *p;
    char *tok;
    long long exp = 0;

    emu_fuzz_init();
    vault = emu_find_vault(EMU_FUZZ_VAULT);
    p = emu_find_principal_oid(EMU_FUZZ_SP_SECRET_OID);
    if (!vault || !p) {
        abort();
    }
    handler = emu_fuzz_vault_handler(vault);
    tok = emu_token_issue(p, "https://vault.azure.net", &exp);
    if (!tok || exp <= EMU_FUZZ_NOW) {
        abort();
    }
    bearer = malloc(strlen(tok) + 8);
    if (!bearer) {
        abort();
    }
    sprintf(bearer, "Bearer %s", tok);
    free(tok);
    snapshot = calloc(vault->nkeys, sizeof(*snapshot));
    for (size_t i = 0; snapshot && i < vault->nkeys; i++) {
        snapshot[i] = emu_key_to_json(vault->keys[i]);
        if (!snapshot[i]) {
            abort();
        }
    }
    nsnapshot = vault->nkeys;
}

static void restore_vault(void)
{
    for (size_t i = 0; i < vault->nkeys; i++) {
        emu_key_free(vault->keys[i]);
    }
    free(vault->keys);
    vault->keys = calloc(nsnapshot, sizeof(*vault->keys));
    vault->nkeys = 0;
    if (!vault->keys) {
        abort();
    }
    for (size_t i = 0; i < nsnapshot; i++) {
        vault->keys[i] = emu_key_from_json(snapshot[i]);
        if (!vault->keys[i]) {
            abort();
        }
        vault->nkeys++;
    }
    emu_fuzz_clear_dirty();
}

static void check_answer(const struct emu_resp *rs)
{
    cJSON *j, *e;

    if (rs->status < 200 || rs->status > 599) {
        abort();
    }
    if (rs->status == 204 || rs->hang) {
        return;
    }
    j = rs->body ? cJSON_ParseWithLength(rs->body, rs->len) : NULL;
    if (!j) {
        fprintf(stderr, "status %d without a JSON body\n", rs->status);
        abort();
    }
    if (rs->status >= 400) {
        e = cJSON_GetObjectItem(j, "error");
        if (!cJSON_IsString(cJSON_GetObjectItem(e, "code"))
            || !cJSON_IsString(cJSON_GetObjectItem(e, "message"))) {
            abort();
        }
    }
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct emu_fuzz_conn conn;
    struct emu_req rq;
    struct emu_resp rs;
    const uint8_t *nl = memchr(data, '\n', size);
    char line[2048], *sp, *q, *body;
    size_t llen, blen;

    if (!ready) {
        setup();
        ready = 1;
    }
    if (!nl || (llen = (size_t)(nl - data)) >= sizeof(line)) {
        return 0;
    }
    memcpy(line, data, llen);
    line[llen] = 0;
    sp = strchr(line, ' ');
    if (!sp || memchr(line, 0, llen)) {
        return 0;
    }
    *sp++ = 0;
    blen = size - llen - 1;
    /* the listener hands a NUL-terminated copy of exactly the body */
    body = malloc(blen + 1);
    if (!body) {
        return 0;
    }
    memcpy(body, nl + 1, blen);
    body[blen] = 0;
    memset(&conn, 0, sizeof(conn));
    q = strchr(sp, '?');
    if (q) {
        *q++ = 0;
        emu_fuzz_conn_query(&conn, strdup(q));
    }
    conn.hdr_name[0] = "Host";
    conn.hdr_value[0] = "127.0.0.1:42365";
    conn.hdr_name[1] = "Authorization";
    conn.hdr_value[1] = bearer;
    conn.hdr_name[2] = "Content-Type";
    conn.hdr_value[2] = "application/json";
    conn.nhdr = 3;
    memset(&rq, 0, sizeof(rq));
    rq.conn = (struct MHD_Connection *)(void *)&conn;
    rq.method = line;
    rq.url = sp;
    rq.body = body;
    rq.len = blen;
    rq.ctx = vault;
    rq.is_tls = 1;
    memset(&rs, 0, sizeof(rs));
    rs.retry_after = -1;
    handler(&rq, &rs);
    if (getenv("EMU_FUZZ_VERBOSE")) {
        /* to see what a seed reaches: EMU_FUZZ_VERBOSE=1 TARGET -runs=0 DIR */
        fprintf(stderr, "%d %.200s\n", rs.status, rs.body ? rs.body : "");
    }
    check_answer(&rs);
    free(rs.body);
    free(body);
    emu_fuzz_conn_free(&conn);
    if (emu_fuzz_dirty()) {
        restore_vault();
    }
    return 0;
}
