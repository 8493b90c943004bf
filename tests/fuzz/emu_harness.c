/* SPDX-License-Identifier: Apache-2.0 */
#include "emu_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

long long __wrap_emu_now(void);
int __wrap_emu_write_file_atomic(const char *path, const char *data, size_t len,
                                 int mode);
int __wrap_emu_store_save_key(const struct emu_vault *v,
                              const struct emu_key *k);
int __wrap_emu_store_remove_key(const struct emu_vault *v,
                                const struct emu_key *k);
int __wrap_emu_store_save_state(void);
struct MHD_Daemon *__wrap_emu_http_start(const char *host, int port, int tls,
                                         emu_handler_fn fn, void *ctx);
int __wrap_emu_http_port(struct MHD_Daemon *d);
void __wrap_emu_http_stop(struct MHD_Daemon *d);
const char *__wrap_emu_req_header(struct emu_req *rq, const char *name);
const char *__wrap_emu_req_arg(struct emu_req *rq, const char *name);

static int dirty;
static emu_handler_fn started_fn;
static char fake_daemon;

long long __wrap_emu_now(void)
{
    return EMU_FUZZ_NOW;
}

int __wrap_emu_write_file_atomic(const char *path, const char *data, size_t len,
                                 int mode)
{
    (void)path;
    (void)data;
    (void)len;
    (void)mode;
    dirty = 1;
    return 0;
}

int __wrap_emu_store_save_key(const struct emu_vault *v,
                              const struct emu_key *k)
{
    /* what would be written must serialise and read back */
    cJSON *j = emu_key_to_json(k);
    struct emu_key *back = j ? emu_key_from_json(j) : NULL;

    (void)v;
    if (!back) {
        fprintf(stderr, "emu fuzz: key %s does not round-trip\n", k->name);
        abort();
    }
    emu_key_free(back);
    cJSON_Delete(j);
    dirty = 1;
    return 0;
}

int __wrap_emu_store_remove_key(const struct emu_vault *v,
                                const struct emu_key *k)
{
    (void)v;
    (void)k;
    dirty = 1;
    return 0;
}

int __wrap_emu_store_save_state(void)
{
    dirty = 1;
    return 0;
}

struct MHD_Daemon *__wrap_emu_http_start(const char *host, int port, int tls,
                                         emu_handler_fn fn, void *ctx)
{
    (void)host;
    (void)port;
    (void)tls;
    (void)ctx;
    started_fn = fn;
    return (struct MHD_Daemon *)(void *)&fake_daemon;
}

int __wrap_emu_http_port(struct MHD_Daemon *d)
{
    (void)d;
    return 42365; /* the fixture vault's port */
}

void __wrap_emu_http_stop(struct MHD_Daemon *d)
{
    (void)d;
}

const char *__wrap_emu_req_header(struct emu_req *rq, const char *name)
{
    const struct emu_fuzz_conn *c = (const void *)rq->conn;

    for (size_t i = 0; c && i < c->nhdr; i++) {
        if (emu_strcaseeq(c->hdr_name[i], name)) {
            return c->hdr_value[i];
        }
    }
    return NULL;
}

const char *__wrap_emu_req_arg(struct emu_req *rq, const char *name)
{
    const struct emu_fuzz_conn *c = (const void *)rq->conn;

    for (size_t i = 0; c && i < c->narg; i++) {
        if (strcmp(c->arg_name[i], name) == 0) {
            return c->arg_value[i];
        }
    }
    return NULL;
}

void emu_fuzz_conn_query(struct emu_fuzz_conn *c, char *query)
{
    char *save = NULL;

    c->query = query;
    /* as libmicrohttpd: split on '&' then '=', %XX-decode both parts */
    for (char *p = strtok_r(query, "&", &save); p && c->narg < 16;
         p = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(p, '=');

        if (eq) {
            *eq++ = 0;
            emu_url_decode(eq, 0);
        } else {
            eq = p + strlen(p); /* "" */
        }
        emu_url_decode(p, 0);
        c->arg_name[c->narg] = p;
        c->arg_value[c->narg] = eq;
        c->narg++;
    }
}

void emu_fuzz_conn_free(struct emu_fuzz_conn *c)
{
    free(c->query);
    memset(c, 0, sizeof(*c));
}

int emu_fuzz_dirty(void)
{
    return dirty;
}

void emu_fuzz_clear_dirty(void)
{
    dirty = 0;
}

emu_handler_fn emu_fuzz_vault_handler(struct emu_vault *v)
{
    started_fn = NULL;
    if (emu_vault_start(v) != 0 || !started_fn) {
        abort();
    }
    return started_fn;
}

void emu_fuzz_free_model(void)
{
    for (size_t i = 0; i < emu.nprincipals; i++) {
        free(emu.principals[i]->cert_pem);
        EVP_PKEY_free(emu.principals[i]->cert_pub);
        free(emu.principals[i]);
    }
    free(emu.principals);
    emu.principals = NULL;
    emu.nprincipals = 0;
    for (size_t i = 0; i < emu.nvaults; i++) {
        struct emu_vault *v = emu.vaults[i];

        for (size_t k = 0; k < v->nkeys; k++) {
            emu_key_free(v->keys[k]);
        }
        free(v->keys);
        free(v->policies);
        free(v->roles);
        free(v);
    }
    free(emu.vaults);
    emu.vaults = NULL;
    emu.nvaults = 0;
}

void emu_fuzz_init(void)
{
    static int done;

    if (done) {
        return;
    }
    done = 1;
    pthread_rwlock_init(&emu.lock, NULL);
    snprintf(emu.dir, sizeof(emu.dir), "%s", AKV_FUZZ_EMU_FIXTURE);
    snprintf(emu.host, sizeof(emu.host), "127.0.0.1");
    emu.port = 33425; /* the fixture's main port (assertion audience) */
    emu.imds_port = 44129;
    emu.token_lifetime = 3600;
    emu.throttle_scale = 1.0;
    emu.nthreads = 1;
    snprintf(emu.admin_secret, sizeof(emu.admin_secret), "%064d", 0);
    if (emu_store_load() != 0 || emu.nvaults != 1
        || strcmp(emu.tenant_id, EMU_FUZZ_TENANT) != 0) {
        fprintf(stderr, "emu fuzz: cannot load the fixture %s\n", emu.dir);
        abort();
    }
    dirty = 0;
}
