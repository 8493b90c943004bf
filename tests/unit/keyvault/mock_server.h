/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A scripted plain-HTTP server on 127.0.0.1 (libmicrohttpd) for the
 * keyvault unit tests: each request takes the first queued answer whose
 * path prefix matches; unmatched token requests get a fresh token
 * ("tok-N", 3600 s); anything else gets 599. Every request is recorded.
 */
#ifndef AKV_TESTS_MOCK_SERVER_H
#define AKV_TESTS_MOCK_SERVER_H

#include <stddef.h>

#define MOCK_MAX_REC 128

struct mock_rec {
    char method[8];
    char path[512];  /* path only */
    char query[512]; /* raw query string without '?' */
    char auth[256];  /* Authorization header */
    char metadata[32];
    char identity_header[64];
    char content_type[64];
    char body[4096];
};

struct mock_server;

struct mock_server *mock_start(void);
void mock_stop(struct mock_server *m);
int mock_port(const struct mock_server *m);
/* base URL "http://127.0.0.1:PORT" */
const char *mock_url(const struct mock_server *m);

/* Queue an answer for the first request whose path starts with PREFIX.
 * HDR: one "Name: value" header line or NULL. DELAY_MS before answering. */
void mock_push(struct mock_server *m, const char *prefix, int status,
               const char *body, const char *hdr, int delay_ms);

/* Requests seen so far (copied out under the server's lock). */
size_t mock_count(struct mock_server *m, const char *prefix);
int mock_get(struct mock_server *m, size_t i, struct mock_rec *out);
size_t mock_total(struct mock_server *m);

/* Lifetime of auto-issued tokens (default 3600). */
void mock_set_token_lifetime(struct mock_server *m, int seconds);
/* Answer delay for auto-issued tokens. */
void mock_set_token_delay(struct mock_server *m, int ms);

/* Answer for requests under PREFIX that no queued answer matches (BODY up
 * to 255 bytes). */
void mock_set_default(struct mock_server *m, const char *prefix, int status,
                      const char *body);

#endif
