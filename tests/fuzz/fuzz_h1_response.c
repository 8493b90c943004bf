/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: keyvault/h1.c's response parser, the bytes a vault (or
 * anything on the path to it) sends back. The input is parsed twice: whole,
 * and in pieces whose sizes come from the input's first byte (every piece
 * a private heap copy, so over-reads trip ASan). Invariants (abort on
 * breach): both parses end in the same state with the same status and
 * keep-alive verdict, and complete answers with the same body; the body never
 * exceeds AKV_HTTP_BODY_MAX; a complete answer has a status of 200..599, a
 * Content-Length body exactly that long, and the stored header values
 * terminated inside their fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "keyvault/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct akv_h1_parser pa;
static struct akv_h1_parser pb;

static enum akv_h1_state run(struct akv_h1_parser *p, const uint8_t *d,
                             size_t n, size_t step, struct akv_http_resp *r)
{
    enum akv_h1_state st = AKV_H1_STATUS;

    akv_h1_parser_init(p);
    for (size_t off = 0; off < n && st != AKV_H1_ERROR;) {
        size_t k = step == 0 || step > n - off ? n - off : step;
        char *piece = malloc(k);

        if (piece == NULL) {
            abort();
        }
        memcpy(piece, d + off, k);
        st = akv_h1_feed(p, piece, k, r);
        free(piece);
        off += k;
    }
    if (st != AKV_H1_ERROR && st != AKV_H1_DONE) {
        st = akv_h1_feed_eof(p);
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct akv_http_resp a;
    struct akv_http_resp b;
    enum akv_h1_state sa;
    enum akv_h1_state sb;
    size_t step;

    if (size < 1) {
        return 0;
    }
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    step = (size_t)data[0] % 17 + 1;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    sa = run(&pa, data + 1, size - 1, 0, &a);
    sb = run(&pb, data + 1, size - 1, step, &b);
    /* (a body delimited by the connection's end that grows too big fails
     * after a different number of bytes in each run: bodies are compared
     * for complete answers only) */
    if (sa != sb || a.status != b.status
        || akv_h1_reusable(&pa) != akv_h1_reusable(&pb)
        || strcmp(a.retry_after, b.retry_after) != 0
        || (sa == AKV_H1_DONE
            && (a.body.len != b.body.len
                || (a.body.len > 0
                    && memcmp(a.body.data, b.body.data, a.body.len) != 0)))) {
        abort();
    }
    if (a.body.len > AKV_HTTP_BODY_MAX) {
        abort();
    }
    if (sa == AKV_H1_DONE) {
        if (a.status < 200 || a.status > 599) {
            abort();
        }
        if (pa.have_len && !pa.chunked && a.status != 204 && a.status != 304
            && a.body.len != pa.content_len) {
            abort();
        }
        if (strnlen(a.request_id, sizeof(a.request_id)) == sizeof(a.request_id)
            || strnlen(a.retry_after, sizeof(a.retry_after))
                   == sizeof(a.retry_after)) {
            abort();
        }
    }
    akv_http_resp_clear(&a);
    akv_http_resp_clear(&b);
    return 0;
}
