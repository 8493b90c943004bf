/* SPDX-License-Identifier: Apache-2.0 */
#include "h1.h"

#include <string.h>
#include <strings.h>

/* Most body bytes a Content-Length or chunk size may announce before it is
 * refused outright (far above AKV_HTTP_BODY_MAX; keeps sums from
 * overflowing). */
#define H1_LEN_MAX ((uint64_t)1 << 40)

static bool visible(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

int akv_h1_url_split(const char *url, struct akv_h1_url *out)
{
    const char *a;
    const char *end;
    const char *colon;
    size_t skip;

    if (url == NULL || out == NULL) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    for (const char *q = url; *q != '\0'; q++) {
        if (!visible((unsigned char)*q)) {
            return -1;
        }
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        out->https = true;
        skip = 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
    } else {
        return -1;
    }
    a = url + skip;
    end = a + strcspn(a, "/?#");
    if (end == a || memchr(a, '@', (size_t)(end - a)) != NULL) {
        return -1;
    }
    out->origin = url;
    out->origin_len = (size_t)(end - url);
    out->authority = a;
    out->authority_len = (size_t)(end - a);
    if (*a == '[') {
        const char *rb = memchr(a, ']', (size_t)(end - a));

        if (rb == NULL || rb == a + 1) {
            return -1;
        }
        out->host = a + 1;
        out->host_len = (size_t)(rb - a - 1);
        colon = rb + 1 < end ? rb + 1 : NULL;
        if (colon != NULL && *colon != ':') {
            return -1;
        }
    } else {
        colon = memchr(a, ':', (size_t)(end - a));
        out->host = a;
        out->host_len = (size_t)((colon != NULL ? colon : end) - a);
        if (out->host_len == 0) {
            return -1;
        }
    }
    if (colon != NULL) {
        const char *p = colon + 1;

        if (p == end) {
            return -1;
        }
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') {
                return -1;
            }
        }
    }
    if (*end == '/') {
        out->target = end;
        out->target_len = strcspn(end, "#");
    } else if (*end == '?') {
        return -1; /* a query without a path has no origin-form here */
    } else {
        out->target = "/";
        out->target_len = 1;
    }
    return 0;
}

/* RFC 9110 §5.6.2 tchar */
static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value byte RFC 9110 §5.5 forbids: a control other than HTAB. */
static bool bad_value_byte(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Bytes of V (N bytes) are all fit for a field value. A token is ~1.1 KB,
 * checked on every request: 8 bytes at a time, with the usual bit tricks
 * flagging a word that may hold a byte < 0x20 or 0x7f (exact for ASCII,
 * possibly a false alarm next to bytes >= 0x80), and only such a word
 * checked byte by byte. */
static bool value_ok(const char *v, size_t n)
{
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t highs = 0x8080808080808080u;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        uint64_t del;

        memcpy(&x, v + i, 8);
        del = x ^ (0x7f * ones);
        if ((((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs) {
            for (size_t k = i; k < i + 8; k++) {
                if (bad_value_byte((unsigned char)v[k])) {
                    return false;
                }
            }
        }
    }
    for (; i < n; i++) {
        if (bad_value_byte((unsigned char)v[i])) {
            return false;
        }
    }
    return true;
}

bool akv_h1_field_ok(const char *line)
{
    const char *p = line;

    if (line == NULL || !tchar((unsigned char)*p)) {
        return false;
    }
    while (*p != '\0' && tchar((unsigned char)*p)) {
        p++;
    }
    if (*p != ':') {
        return false;
    }
    p++;
    return value_ok(p, strlen(p));
}

/* Appends N bytes of S at *OFF in DST (CAP bytes); false when full. */
static bool put(char *dst, size_t cap, size_t *off, const char *s, size_t n)
{
    if (n > cap - *off) {
        return false;
    }
    memcpy(dst + *off, s, n);
    *off += n;
    return true;
}

size_t akv_h1_write_head(char *dst, size_t cap, const char *method,
                         const struct akv_h1_url *url, const char *const *lines,
                         size_t n_lines, bool has_body, size_t body_len)
{
    size_t off = 0;
    bool ok;
    char num[24];
    size_t k = sizeof(num);

    if (dst == NULL || method == NULL || url == NULL) {
        return 0;
    }
    ok = put(dst, cap, &off, method, strlen(method))
         && put(dst, cap, &off, " ", 1)
         && put(dst, cap, &off, url->target, url->target_len)
         && put(dst, cap, &off, " HTTP/1.1\r\nHost: ", 17)
         && put(dst, cap, &off, url->authority, url->authority_len)
         && put(dst, cap, &off, "\r\n", 2);
    for (size_t i = 0; ok && i < n_lines; i++) {
        ok = put(dst, cap, &off, lines[i], strlen(lines[i]))
             && put(dst, cap, &off, "\r\n", 2);
    }
    if (ok && has_body) {
        do {
            num[--k] = (char)('0' + body_len % 10);
            body_len /= 10;
        } while (body_len > 0);
        ok = put(dst, cap, &off, "Content-Length: ", 16)
             && put(dst, cap, &off, num + k, sizeof(num) - k)
             && put(dst, cap, &off, "\r\n", 2);
    }
    ok = ok && put(dst, cap, &off, "\r\n", 2);
    return ok ? off : 0;
}

void akv_h1_parser_init(struct akv_h1_parser *p)
{
    p->state = AKV_H1_STATUS;
    p->http11 = false;
    p->conn_close = false;
    p->chunked = false;
    p->have_len = false;
    p->extra = false;
    p->remaining = 0;
    p->content_len = 0;
    p->n_lines = 0;
    p->line_len = 0;
    p->received = 0;
}

/* Trims optional whitespace (RFC 9110 §5.6.3) around *V of *N bytes. */
static void trim_ows(const char **v, size_t *n)
{
    while (*n > 0 && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*n)--;
    }
    while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t')) {
        (*n)--;
    }
}

/* The comma-separated list V (N bytes) holds TOKEN (case-insensitive). */
static bool list_has(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);

    while (n > 0) {
        const char *comma = memchr(v, ',', n);
        size_t el = comma != NULL ? (size_t)(comma - v) : n;
        const char *e = v;
        size_t en = el;

        trim_ows(&e, &en);
        if (en == tl && strncasecmp(e, token, tl) == 0) {
            return true;
        }
        if (comma == NULL) {
            break;
        }
        v += el + 1;
        n -= el + 1;
    }
    return false;
}

/* Decimal (HEX false) or hexadecimal digits V (N bytes, at least one) into
 * *OUT; false for anything else or a value over H1_LEN_MAX. */
static bool parse_num(const char *v, size_t n, bool hex, uint64_t *out)
{
    uint64_t x = 0;

    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        unsigned d;

        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (hex && c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (hex && c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return false;
        }
        x = x * (hex ? 16 : 10) + d;
        if (x > H1_LEN_MAX) {
            return false;
        }
    }
    *out = x;
    return true;
}

static enum akv_h1_state on_status(struct akv_h1_parser *p, const char *l,
                                   size_t n, struct akv_http_resp *resp)
{
    long status;

    /* HTTP-version SP 3DIGIT SP [reason] (RFC 9112 §4; a missing SP
     * after the code is tolerated) */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' || l[7] > '9'
        || l[8] != ' ' || l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9'
        || l[11] < '0' || l[11] > '9' || (n > 12 && l[12] != ' ')) {
        return AKV_H1_ERROR;
    }
    status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (status == 101) {
        return AKV_H1_ERROR; /* no upgrade was asked for */
    }
    p->http11 = l[7] >= '1';
    p->conn_close = false;
    p->chunked = false;
    p->have_len = false;
    resp->status = status;
    akv_http_header_line(resp, l, n);
    return AKV_H1_FIELDS;
}

/* The empty line ending the fields: how the body is delimited. */
static enum akv_h1_state on_head_end(struct akv_h1_parser *p,
                                     struct akv_http_resp *resp)
{
    if (resp->status < 200) {
        p->n_lines = 0;
        return AKV_H1_STATUS; /* interim response: the real one follows */
    }
    if (resp->status == 204 || resp->status == 304) {
        return AKV_H1_DONE;
    }
    if (p->chunked) {
        /* both framings: a smuggling attempt (RFC 9112 §6.3 item 3) */
        return p->have_len ? AKV_H1_ERROR : AKV_H1_CHUNK_SIZE;
    }
    if (p->have_len) {
        if (p->content_len > AKV_HTTP_BODY_MAX) {
            resp->too_big = true;
            return AKV_H1_ERROR;
        }
        p->remaining = p->content_len;
        return p->remaining == 0 ? AKV_H1_DONE : AKV_H1_BODY_LEN;
    }
    return AKV_H1_BODY_EOF;
}

static enum akv_h1_state on_field(struct akv_h1_parser *p, const char *l,
                                  size_t n, struct akv_http_resp *resp)
{
    const char *colon;
    const char *v;
    size_t name_len;
    size_t vn;

    if (n == 0) {
        return on_head_end(p, resp);
    }
    colon = memchr(l, ':', n);
    if (colon == NULL || colon == l) {
        return AKV_H1_ERROR;
    }
    name_len = (size_t)(colon - l);
    for (size_t i = 0; i < name_len; i++) {
        /* no obs-fold, no whitespace before the colon (RFC 9112 §5) */
        if (!tchar((unsigned char)l[i])) {
            return AKV_H1_ERROR;
        }
    }
    v = colon + 1;
    vn = n - name_len - 1;
    trim_ows(&v, &vn);
    if (name_len == 14 && strncasecmp(l, "Content-Length", 14) == 0) {
        uint64_t len;

        if (!parse_num(v, vn, false, &len)
            || (p->have_len && len != p->content_len)) {
            return AKV_H1_ERROR;
        }
        p->have_len = true;
        p->content_len = len;
    } else if (name_len == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0) {
        /* nothing but chunked was asked for (no TE, no Accept-Encoding) */
        if (vn != 7 || strncasecmp(v, "chunked", 7) != 0 || p->chunked) {
            return AKV_H1_ERROR;
        }
        p->chunked = true;
    } else if (name_len == 10 && strncasecmp(l, "Connection", 10) == 0) {
        p->conn_close = p->conn_close || list_has(v, vn, "close");
    }
    akv_http_header_line(resp, l, n);
    return AKV_H1_FIELDS;
}

/* One complete line L (N bytes, CRLF or LF cut) in state P->state. */
static enum akv_h1_state on_line(struct akv_h1_parser *p, const char *l,
                                 size_t n, struct akv_http_resp *resp)
{
    if (++p->n_lines > AKV_H1_LINES_MAX) {
        return AKV_H1_ERROR;
    }
    switch (p->state) {
    case AKV_H1_STATUS:
        return on_status(p, l, n, resp);
    case AKV_H1_FIELDS:
        return on_field(p, l, n, resp);
    case AKV_H1_CHUNK_SIZE: {
        const char *semi = memchr(l, ';', n);
        size_t sl = semi != NULL ? (size_t)(semi - l) : n;

        trim_ows(&l, &sl);
        if (!parse_num(l, sl, true, &p->remaining)) {
            return AKV_H1_ERROR;
        }
        if (p->remaining > AKV_HTTP_BODY_MAX - resp->body.len) {
            resp->too_big = true;
            return AKV_H1_ERROR;
        }
        return p->remaining == 0 ? AKV_H1_TRAILER : AKV_H1_CHUNK_DATA;
    }
    case AKV_H1_CHUNK_CRLF:
        return n == 0 ? AKV_H1_CHUNK_SIZE : AKV_H1_ERROR;
    case AKV_H1_TRAILER:
        return n == 0 ? AKV_H1_DONE : AKV_H1_TRAILER;
    default:
        return AKV_H1_ERROR;
    }
}

static bool line_state(enum akv_h1_state s)
{
    return s == AKV_H1_STATUS || s == AKV_H1_FIELDS || s == AKV_H1_CHUNK_SIZE
           || s == AKV_H1_CHUNK_CRLF || s == AKV_H1_TRAILER;
}

/* Appends body bytes; false (too_big when over the limit) on failure. */
static bool body(const char *d, size_t k, struct akv_http_resp *resp)
{
    if (akv_secret_append(&resp->body, d, k, AKV_HTTP_BODY_MAX) != 0) {
        resp->too_big = resp->body.len + k > AKV_HTTP_BODY_MAX;
        return false;
    }
    return true;
}

enum akv_h1_state akv_h1_feed(struct akv_h1_parser *p, const char *data,
                              size_t n, struct akv_http_resp *resp)
{
    size_t i = 0;

    p->received += n;
    while (i < n && p->state != AKV_H1_ERROR) {
        const char *d = data + i;
        size_t left = n - i;

        if (p->state == AKV_H1_DONE) {
            p->extra = true;
            break;
        }
        if (line_state(p->state)) {
            const char *lf = memchr(d, '\n', left);
            size_t k = lf != NULL ? (size_t)(lf - d) : left;

            if (k > sizeof(p->line) - p->line_len) {
                p->state = AKV_H1_ERROR;
                break;
            }
            memcpy(p->line + p->line_len, d, k);
            p->line_len += k;
            i += k;
            if (lf == NULL) {
                break;
            }
            i++; /* the LF */
            if (p->line_len > 0 && p->line[p->line_len - 1] == '\r') {
                p->line_len--;
            }
            p->state = on_line(p, p->line, p->line_len, resp);
            /* a header line may hold a secret (an identity endpoint's
             * Set-Cookie): wiped once parsed, not kept until overwritten */
            akv_secret_wipe(p->line, p->line_len);
            p->line_len = 0;
        } else if (p->state == AKV_H1_BODY_EOF) {
            if (!body(d, left, resp)) {
                p->state = AKV_H1_ERROR;
            }
            i = n;
        } else { /* AKV_H1_BODY_LEN or AKV_H1_CHUNK_DATA */
            size_t k = left < p->remaining ? left : (size_t)p->remaining;

            if (!body(d, k, resp)) {
                p->state = AKV_H1_ERROR;
                break;
            }
            i += k;
            p->remaining -= k;
            if (p->remaining == 0) {
                p->state = p->state == AKV_H1_BODY_LEN ? AKV_H1_DONE
                                                       : AKV_H1_CHUNK_CRLF;
            }
        }
    }
    /* the line buffer may hold header bytes (a Set-Cookie, a token in a
     * chunk): keep nothing once the response is parsed */
    if (p->state == AKV_H1_DONE || p->state == AKV_H1_ERROR) {
        akv_secret_wipe(p->line, p->line_len);
        p->line_len = 0;
    }
    return p->state;
}

enum akv_h1_state akv_h1_feed_eof(struct akv_h1_parser *p)
{
    if (p->state == AKV_H1_BODY_EOF) {
        p->state = AKV_H1_DONE;
        p->conn_close = true;
    } else if (p->state != AKV_H1_DONE) {
        p->state = AKV_H1_ERROR;
    }
    return p->state;
}

bool akv_h1_reusable(const struct akv_h1_parser *p)
{
    return p->state == AKV_H1_DONE && p->http11 && !p->conn_close && !p->extra;
}
