/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Thin libmicrohttpd wrapper shared by the vault, Entra/admin and IMDS
 * listeners: body accumulation with a 1 MiB cap (413 above it), one dispatch
 * call per complete request, standard Key Vault response headers, and the
 * fault-injection transport effects (delay, hang, close mid-response,
 * trickled body).
 */
#ifndef AKV_EMULATOR_HTTP_H
#define AKV_EMULATOR_HTTP_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct MHD_Connection;
struct MHD_Daemon;

struct emu_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const char *body;
    size_t len;
    void *ctx; /* listener context (struct emu_vault * for vaults) */
    int is_tls;
};

struct emu_resp {
    int status;
    char *body; /* malloc'ed */
    size_t len;
    const char *ctype;
    char www_auth[320];
    int retry_after; /* < 0: none */
    int hang;
    int close_mid;
    int trickle_ms; /* > 0: one body byte per trickle_ms ms (--trickle-ms) */
    /* > 0: the answer leaves after this many ms (--delay-ms); the
     * connection is suspended meanwhile, so its worker thread serves the
     * other connections (http.c, "Delayed answers") */
    int delay_ms;
};

typedef void (*emu_handler_fn)(struct emu_req *rq, struct emu_resp *rs);

/* emu_http_start - listen on HOST:PORT (0 = any free port), TLS when tls
 * is nonzero (uses emu.tls_*_pem). Returns the daemon or NULL. */
struct MHD_Daemon *emu_http_start(const char *host, int port, int tls,
                                  emu_handler_fn fn, void *ctx);
int emu_http_port(struct MHD_Daemon *d);
void emu_http_stop(struct MHD_Daemon *d);
/* Wake every connection parked by a --hang fault so that it is closed, and
 * end every body being sent by a --trickle-ms fault. */
void emu_http_release_hung(void);

const char *emu_req_header(struct emu_req *rq, const char *name);
/* Query argument by decoded name (MHD decodes %XX in names and values). */
const char *emu_req_arg(struct emu_req *rq, const char *name);

void emu_resp_json(struct emu_resp *rs, int status, cJSON *json);
void emu_resp_text(struct emu_resp *rs, int status, const char *ctype,
                   const char *text);
/* Key Vault error envelope {"error":{code,message,innererror?}}. */
void emu_resp_kv_error(struct emu_resp *rs, int status, const char *code,
                       const char *msg, const char *inner);

#endif
