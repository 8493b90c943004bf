/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One HTTP/1.1 exchange: libcurl opens the connection (CURLOPT_CONNECT_ONLY:
 * name lookup, proxy tunnel, TCP, TLS under the module's private OpenSSL
 * library context (common/ossl.h) with plaintext cleansing, verification
 * always on, optional CA file); the request is written and the answer parsed
 * by h1.c over curl_easy_send/curl_easy_recv. Connections are kept alive in
 * a pool (one thread at a time per connection), https only (plain http only
 * where the caller allows it), no redirects, a per-attempt timeout and a
 * bounded response body held in a secret buffer. Retries live in retry.c.
 *
 * Follows: libcurl easy interface (CURLOPT_* as documented for curl 7.88,
 * curl_easy_send/recv), RFC 9112 (HTTP/1.1), RFC 9110 (Retry-After
 * §10.2.3, WWW-Authenticate §11.6.1).
 */
#ifndef AKV_KEYVAULT_HTTP_H
#define AKV_KEYVAULT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "../common/secret.h"

#define AKV_HTTP_BODY_MAX 262144 /* bytes (256 KiB); larger answers fail */

/* akv_http_resp.curl_code when a TLS handshake failed in this process
 * before the ClientHello was sent (the local OpenSSL refused: memory, or
 * the module's OpenSSL context is unusable); not a CURLcode, never retried
 * (retry.c retries only the codes it lists). */
#define AKV_HTTP_E_TLS_LOCAL 1000

enum akv_http_scheme {
    AKV_HTTP_HTTPS_ONLY = 0, /* https:// only */
    AKV_HTTP_LOOPBACK_OK,    /* + http:// to 127.0.0.0/8, ::1, localhost */
    AKV_HTTP_PLAIN_OK,       /* + http:// anywhere (IMDS 169.254.169.254) */
};

struct akv_http_req {
    const char *method;   /* "GET", "POST" or "DELETE" (no body) */
    const char *url;      /* full URL including the query */
    const char *log_path; /* shown in logs instead of the URL (required) */
    /* one header line holding a secret ("Authorization: Bearer ..." or
     * "X-IDENTITY-HEADER: ..."), or NULL; copied only into the request
     * buffer on the stack, wiped once sent */
    const struct akv_secret *secret_header;
    const char *const *headers; /* extra header lines, NULL-terminated */
    const uint8_t *body;      /* POST body (wiped copy on the stack) or NULL */
    size_t body_len;          /* bytes */
    const char *content_type; /* POST only, e.g. "application/json" */
    enum akv_http_scheme scheme;
    /* open a new connection instead of reusing a kept-alive one
     * (CURLOPT_FRESH_CONNECT); the new one is kept for later requests */
    bool fresh_connect;
};

struct akv_http_resp {
    long status;                 /* HTTP status; 0 = no answer */
    int curl_code;               /* CURLcode of the transfer (0 = CURLE_OK) */
    bool too_big;                /* body exceeded AKV_HTTP_BODY_MAX */
    struct akv_secret body;      /* response body (may hold secrets) */
    char request_id[96];         /* x-ms-request-id, "" if absent */
    char www_authenticate[1024]; /* WWW-Authenticate value, "" if absent */
    char retry_after[64];        /* Retry-After value, "" if absent */
    char retry_after_ms[32];     /* retry-after-ms / x-ms-retry-after-ms */
    long elapsed_ms;             /* ms for this attempt */
    /* The request went out on a reused (kept-alive) connection and not one
     * byte of an answer came back before it was given up (no answer within
     * the reuse answer time, akv_http_set_reuse_answer_timeout) or timed
     * out: the connection is most likely dead (a firewall or NAT dropped the
     * idle flow without FIN or RST). curl_code is then
     * CURLE_OPERATION_TIMEDOUT and that connection has been closed. */
    bool reused_unanswered;
};

struct akv_http;

/*
 * akv_http_new - a handle pool. CA_FILE: PEM bundle for CURLOPT_CAINFO, or
 * NULL for the system store (copied). Returns CKR_OK or CKR_HOST_MEMORY.
 */
CK_RV akv_http_new(const char *ca_file, struct akv_http **out);

/*
 * akv_http_set_connect_timeout - limit MS (milliseconds; 0 = none beyond the
 * attempt's timeout) for the connection phase of every later attempt on H:
 * name lookup, TCP connect and TLS handshake (CURLOPT_CONNECTTIMEOUT_MS).
 * Set once after akv_http_new, before requests run. NULL-safe.
 */
void akv_http_set_connect_timeout(struct akv_http *h, long ms);

/*
 * akv_http_set_reuse_answer_timeout - MS (milliseconds; 0 = off): a request
 * sent on a reused keep-alive connection that has received no byte of an
 * answer after MS is given up and reported with resp->reused_unanswered
 * (retry.c then sends it once more on a new connection). Requests on new
 * connections are never cut short, nor an answer that has started. The
 * wait for the first answer byte ends MS after the request went out. Set once
 * after akv_http_new, before requests run. NULL-safe.
 */
void akv_http_set_reuse_answer_timeout(struct akv_http *h, long ms);

/* akv_http_free - closes every pooled connection. NULL-safe. Must not be called
 * while a request is running on the pool. */
void akv_http_free(struct akv_http *h);

/*
 * akv_http_perform - one attempt of REQ with TIMEOUT_MS (whole exchange:
 * connecting when no pooled connection to the origin is alive, sending,
 * receiving). A pooled connection that turns out closed before any byte of
 * the answer arrived is replaced by a new one and the request sent again,
 * once, within the same TIMEOUT_MS. RESP is reset first, then filled.
 * Holds no lock while the request is on the wire. Returns:
 *   CKR_OK           an HTTP answer was received (any status)
 *   CKR_DEVICE_ERROR no answer (resp->curl_code says why: a CURLcode, e.g.
 *                    CURLE_OPERATION_TIMEDOUT, CURLE_GOT_NOTHING,
 *                    CURLE_PARTIAL_FILE, CURLE_WEIRD_SERVER_REPLY for a
 *                    malformed answer, CURLE_WRITE_ERROR with too_big)
 *   CKR_ARGUMENTS_BAD bad request: a malformed URL (h1.h), a scheme/host
 *                    REQ->scheme forbids, a header line with CR/LF or
 *                    another control byte, more than 16 header lines, or a
 *                    head over 64 KiB
 *   CKR_HOST_MEMORY
 */
CK_RV akv_http_perform(struct akv_http *h, const struct akv_http_req *req,
                       long timeout_ms, struct akv_http_resp *resp);

/*
 * akv_http_header_line - one raw header line as libcurl hands it over (PTR, N
 * bytes, not NUL-terminated, usually ending in CRLF): a status line
 * ("HTTP/...") forgets the headers of an earlier response (100 Continue,
 * redirects); "Name: value" for x-ms-request-id, WWW-Authenticate,
 * Retry-After, retry-after-ms and x-ms-retry-after-ms (names case-
 * insensitive, RFC 9110 §5.1) stores the value, trimmed of OWS and CRLF,
 * cut to the field's size, control bytes replaced by '?', into RESP.
 * Other lines are ignored.
 */
void akv_http_header_line(struct akv_http_resp *resp, const char *ptr,
                          size_t n);

/* akv_http_resp_clear - wipes the body, zeroes RESP. NULL-safe. */
void akv_http_resp_clear(struct akv_http_resp *resp);

/* akv_http_strerror - text for resp->curl_code (curl_easy_strerror, with
 * hints for the failures a user can fix, and AKV_HTTP_E_TLS_LOCAL). */
const char *akv_http_strerror(int curl_code);

/* akv_http_origin - "scheme://host[:port]" of URL (no path, no query: safe
 * to log) into OUT (OUT_LEN bytes, always NUL-terminated). */
void akv_http_origin(const char *url, char *out, size_t out_len);

#endif /* AKV_KEYVAULT_HTTP_H */
