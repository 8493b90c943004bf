/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.1 on the wire, without I/O: split a request URL, write a request
 * head into a caller's buffer, parse a response fed in pieces. http.c moves
 * the bytes (over a libcurl CONNECT_ONLY connection); this file decides
 * what they are. No allocation except the response body (a secret buffer).
 *
 * Follows: RFC 9112 (HTTP/1.1 message syntax: §3 request line, §4 status
 * line, §5 fields, §6 message body length, §7.1 chunked coding, §9.3
 * persistence), RFC 9110 (§5.5 field values: no CR, LF or NUL), RFC 3986
 * (§3 URI components).
 */
#ifndef AKV_KEYVAULT_H1_H
#define AKV_KEYVAULT_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* Longest response header line (status line or one field), bytes. */
#define AKV_H1_LINE_MAX 8192
/* Most response header lines (status line + fields) per response. */
#define AKV_H1_LINES_MAX 128

/* The parts of an absolute http(s) URL, pointing into it (not copied). */
struct akv_h1_url {
    bool https;            /* scheme https (else http) */
    const char *origin;    /* "scheme://authority" */
    size_t origin_len;     /* bytes */
    const char *authority; /* "host[:port]" (the Host field) */
    size_t authority_len;  /* bytes */
    const char *host;      /* host without port or IPv6 brackets */
    size_t host_len;       /* bytes */
    const char *target;    /* "/path?query" (origin-form), fragment cut */
    size_t target_len;     /* bytes; "/" when the URL has no path */
};

/*
 * akv_h1_url_split - URL (NUL-terminated) into OUT. Accepts
 * "http[s]://authority[/path][?query][#fragment]" (scheme case-insensitive)
 * whose every byte is visible ASCII (0x21-0x7e: no space, control or
 * non-ASCII byte can reach the request line), with a non-empty authority
 * without userinfo ('@'). Returns 0, or -1 for anything else.
 */
int akv_h1_url_split(const char *url, struct akv_h1_url *out);

/*
 * akv_h1_field_ok - LINE is one header field line "Name: value" fit to
 * send: a token name (RFC 9110 §5.6.2) followed by ':', and no CR, LF or
 * other control byte except HTAB in the value (RFC 9110 §5.5). Returns
 * true or false.
 */
bool akv_h1_field_ok(const char *line);

/*
 * akv_h1_write_head - writes the request head into DST (CAP bytes):
 *   METHOD SP URL->target SP "HTTP/1.1" CRLF
 *   "Host: " URL->authority CRLF
 *   each of the N_LINES LINES (already checked with akv_h1_field_ok) CRLF
 *   "Content-Length: " BODY_LEN CRLF   (when HAS_BODY)
 *   CRLF
 * Returns the head's length in bytes (not NUL-terminated), or 0 when it
 * does not fit in CAP.
 */
size_t akv_h1_write_head(char *dst, size_t cap, const char *method,
                         const struct akv_h1_url *url, const char *const *lines,
                         size_t n_lines, bool has_body, size_t body_len);

enum akv_h1_state {
    AKV_H1_STATUS = 0, /* reading the status line */
    AKV_H1_FIELDS,     /* reading header fields */
    AKV_H1_BODY_LEN,   /* reading a Content-Length body */
    AKV_H1_BODY_EOF,   /* reading a body delimited by the connection's end */
    AKV_H1_CHUNK_SIZE, /* reading a chunk-size line */
    AKV_H1_CHUNK_DATA, /* reading chunk data */
    AKV_H1_CHUNK_CRLF, /* reading the CRLF after chunk data */
    AKV_H1_TRAILER,    /* reading trailer fields */
    AKV_H1_DONE,       /* the response is complete */
    AKV_H1_ERROR,      /* malformed response (no further input accepted) */
};

/* Response parser; zero-initialise (or akv_h1_parser_init) before use. */
struct akv_h1_parser {
    enum akv_h1_state state;
    bool http11;          /* HTTP/1.1 (or later 1.x) status line */
    bool conn_close;      /* "Connection: close" seen */
    bool chunked;         /* Transfer-Encoding: chunked */
    bool have_len;        /* Content-Length seen */
    bool extra;           /* bytes followed the complete response */
    uint64_t remaining;   /* body or chunk bytes still to come */
    uint64_t content_len; /* Content-Length value */
    size_t n_lines;       /* header lines of this response so far */
    size_t line_len;      /* bytes in line */
    uint64_t received;    /* bytes fed in total */
    char line[AKV_H1_LINE_MAX];
};

/* akv_h1_parser_init - resets P for a new response. */
void akv_h1_parser_init(struct akv_h1_parser *p);

/*
 * akv_h1_feed - parses N bytes of DATA, the next bytes of the answer:
 * interim (1xx) responses are skipped; each header line of the final
 * response goes to akv_http_header_line(RESP, ...) (the status line too),
 * RESP->status gets the status code, the body (Content-Length, chunked or
 * until the connection's end, RFC 9112 §6.3; none for 204 and 304) is
 * appended to RESP->body up to AKV_HTTP_BODY_MAX bytes. Returns the state
 * after the input: AKV_H1_DONE once the response is complete (later bytes
 * set P->extra), AKV_H1_ERROR for a malformed response or a body over
 * AKV_HTTP_BODY_MAX (RESP->too_big set), otherwise the state expecting
 * more input.
 */
enum akv_h1_state akv_h1_feed(struct akv_h1_parser *p, const char *data,
                              size_t n, struct akv_http_resp *resp);

/*
 * akv_h1_feed_eof - the connection ended: completes a body delimited by
 * the connection's end (AKV_H1_DONE); any other unfinished response is
 * AKV_H1_ERROR. Returns the final state.
 */
enum akv_h1_state akv_h1_feed_eof(struct akv_h1_parser *p);

/* akv_h1_reusable - the complete response in P leaves its connection fit
 * for another request: HTTP/1.1, no "Connection: close", body not
 * delimited by the connection's end, no stray bytes after it. */
bool akv_h1_reusable(const struct akv_h1_parser *p);

#endif /* AKV_KEYVAULT_H1_H */
