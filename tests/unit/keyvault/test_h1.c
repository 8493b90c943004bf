/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyvault/h1.c: URL splitting, the request head byte for byte, and the
 * response parser on real answers fed whole and split at every byte
 * (Content-Length, chunked, until close, 100 Continue, Connection: close,
 * HTTP/1.0) and on malformed ones (both framings, bad lengths, obs-fold,
 * an over-long line, a body over AKV_HTTP_BODY_MAX).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyvault/h1.h"

static void test_url_split(void **state)
{
    struct akv_h1_url u;
    (void)state;

    assert_int_equal(akv_h1_url_split("https://v.vault.azure.net/keys/k/1/"
                                      "unwrapkey?api-version=7.4#frag",
                                      &u),
                     0);
    assert_true(u.https);
    assert_int_equal(u.origin_len, strlen("https://v.vault.azure.net"));
    assert_memory_equal(u.authority, "v.vault.azure.net", u.authority_len);
    assert_int_equal(u.host_len, strlen("v.vault.azure.net"));
    assert_int_equal(u.target_len,
                     strlen("/keys/k/1/unwrapkey?api-version=7.4"));
    assert_memory_equal(u.target, "/keys/k/1/unwrapkey?api-version=7.4",
                        u.target_len);

    assert_int_equal(akv_h1_url_split("HTTP://127.0.0.1:8080", &u), 0);
    assert_false(u.https);
    assert_memory_equal(u.authority, "127.0.0.1:8080", u.authority_len);
    assert_int_equal(u.authority_len, 14);
    assert_memory_equal(u.host, "127.0.0.1", u.host_len);
    assert_int_equal(u.host_len, 9);
    assert_string_equal(u.target, "/");

    assert_int_equal(akv_h1_url_split("https://[::1]:443/x", &u), 0);
    assert_memory_equal(u.host, "::1", u.host_len);
    assert_int_equal(u.host_len, 3);
    assert_memory_equal(u.authority, "[::1]:443", u.authority_len);
    assert_int_equal(u.authority_len, 9);

    /* refused: a byte that could end the request line or start a header,
     * userinfo, no authority, a bad port, another scheme, query w/o path */
    assert_int_equal(akv_h1_url_split("https://h/a b", &u), -1);
    assert_int_equal(akv_h1_url_split("https://h/a\r\nX: y", &u), -1);
    assert_int_equal(akv_h1_url_split("https://h/\xc3\xa9", &u), -1);
    assert_int_equal(akv_h1_url_split("https://u:p@h/", &u), -1);
    assert_int_equal(akv_h1_url_split("https:///x", &u), -1);
    assert_int_equal(akv_h1_url_split("https://h:/x", &u), -1);
    assert_int_equal(akv_h1_url_split("https://h:8a/x", &u), -1);
    assert_int_equal(akv_h1_url_split("https://[::1/x", &u), -1);
    assert_int_equal(akv_h1_url_split("ftp://h/x", &u), -1);
    assert_int_equal(akv_h1_url_split("https://h?x=1", &u), -1);
}

static void test_field_ok(void **state)
{
    (void)state;
    assert_true(akv_h1_field_ok("Authorization: Bearer abc.def-_"));
    assert_true(akv_h1_field_ok("x-ms-client-request-id:\tv"));
    assert_true(akv_h1_field_ok("Empty:"));
    assert_false(akv_h1_field_ok("Authorization: Bearer a\r\nX-Evil: 1"));
    assert_false(akv_h1_field_ok("Authorization: a\nb"));
    assert_false(akv_h1_field_ok("Bad Name: v"));
    assert_false(akv_h1_field_ok(": v"));
    assert_false(akv_h1_field_ok("NoColon"));
    assert_false(akv_h1_field_ok("X: \x7f"));

    /* every control byte (but HTAB) and DEL at every offset of a value
     * longer than a few 8-byte words is caught; HTAB and bytes >= 0x80 are
     * not controls */
    for (size_t at = 0; at < 41; at++) {
        char line[64] = "Authorization: ";
        size_t base = strlen(line);

        memset(line + base, 'A', 41);
        line[base + 41] = '\0';
        assert_true(akv_h1_field_ok(line));
        for (int c = 1; c < 0x100; c++) {
            bool bad = (c < 0x20 && c != '\t') || c == 0x7f;

            line[base + at] = (char)c;
            assert_int_equal(akv_h1_field_ok(line), !bad);
        }
    }
}

static void test_write_head(void **state)
{
    struct akv_h1_url u;
    const char *lines[] = {"Accept: application/json",
                           "Authorization: Bearer t0k"};
    const char want[] = "POST /keys/k/unwrapkey?api-version=7.4 HTTP/1.1\r\n"
                        "Host: 127.0.0.1:4443\r\n"
                        "Accept: application/json\r\n"
                        "Authorization: Bearer t0k\r\n"
                        "Content-Length: 1234\r\n"
                        "\r\n";
    const char want_get[] = "GET / HTTP/1.1\r\n"
                            "Host: h\r\n"
                            "\r\n";
    char buf[256];
    size_t n;
    (void)state;

    assert_int_equal(
        akv_h1_url_split(
            "https://127.0.0.1:4443/keys/k/unwrapkey?api-version=7.4", &u),
        0);
    n = akv_h1_write_head(buf, sizeof(buf), "POST", &u, lines, 2, true, 1234);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    /* exactly the head's size fits; one byte less does not */
    assert_int_equal(akv_h1_write_head(buf, sizeof(want) - 1, "POST", &u, lines,
                                       2, true, 1234),
                     sizeof(want) - 1);
    assert_int_equal(akv_h1_write_head(buf, sizeof(want) - 2, "POST", &u, lines,
                                       2, true, 1234),
                     0);
    /* a POST with an empty body still says Content-Length: 0 */
    n = akv_h1_write_head(buf, sizeof(buf), "POST", &u, NULL, 0, true, 0);
    assert_non_null(strstr(buf, "\r\nContent-Length: 0\r\n\r\n"));
    assert_int_equal(akv_h1_url_split("https://h", &u), 0);
    n = akv_h1_write_head(buf, sizeof(buf), "GET", &u, NULL, 0, false, 0);
    assert_int_equal(n, sizeof(want_get) - 1);
    assert_memory_equal(buf, want_get, n);
}

/* Feeds ANSWER whole (STEP 0) or in STEP-byte pieces; returns the state. */
static enum akv_h1_state parse(const char *answer, size_t len, size_t step,
                               struct akv_h1_parser *p,
                               struct akv_http_resp *resp)
{
    enum akv_h1_state st = AKV_H1_STATUS;

    akv_http_resp_clear(resp);
    akv_h1_parser_init(p);
    for (size_t off = 0; off < len;) {
        size_t k = step == 0 || step > len - off ? len - off : step;

        st = akv_h1_feed(p, answer + off, k, resp);
        off += k;
        if (st == AKV_H1_ERROR) {
            break;
        }
    }
    return st;
}

/* ANSWER parses to STATUS and BODY at every split, and REUSE says
 * whether the connection may carry another request. */
static void expect_ok(const char *answer, long status, const char *body,
                      bool reuse, bool need_eof)
{
    struct akv_h1_parser *p = malloc(sizeof(*p));
    struct akv_http_resp resp = {0};
    size_t len = strlen(answer);

    assert_non_null(p);
    for (size_t step = 0; step <= len; step++) {
        enum akv_h1_state st = parse(answer, len, step, p, &resp);

        if (need_eof) {
            assert_int_equal(st, AKV_H1_BODY_EOF);
            st = akv_h1_feed_eof(p);
        }
        assert_int_equal(st, AKV_H1_DONE);
        assert_int_equal(resp.status, status);
        assert_int_equal(resp.body.len, strlen(body));
        if (resp.body.len > 0) {
            assert_memory_equal(resp.body.data, body, resp.body.len);
        }
        assert_int_equal(akv_h1_reusable(p), reuse);
    }
    akv_http_resp_clear(&resp);
    free(p);
}

static void expect_error(const char *answer, size_t len)
{
    struct akv_h1_parser *p = malloc(sizeof(*p));
    struct akv_http_resp resp = {0};

    assert_non_null(p);
    for (size_t step = 0; step <= len; step += (len / 7) + 1) {
        assert_int_equal(parse(answer, len, step, p, &resp), AKV_H1_ERROR);
        assert_false(akv_h1_reusable(p));
    }
    akv_http_resp_clear(&resp);
    free(p);
}

static void test_parse_answers(void **state)
{
    (void)state;
    expect_ok("HTTP/1.1 200 OK\r\n"
              "Content-Type: application/json; charset=utf-8\r\n"
              "x-ms-request-id: 1f2e\r\n"
              "Content-Length: 26\r\n"
              "\r\n"
              "{\"kid\":\"k\",\"value\":\"AAEC\"}",
              200, "{\"kid\":\"k\",\"value\":\"AAEC\"}", true, false);
    /* chunked, with an extension and a trailer; lower-case names */
    expect_ok("HTTP/1.1 200 OK\r\n"
              "transfer-encoding: chunked\r\n"
              "\r\n"
              "5;ext=1\r\n{\"a\":\r\n"
              "A\r\n\"0123456\"}\r\n"
              "0\r\n"
              "x-trailer: t\r\n"
              "\r\n",
              200, "{\"a\":\"0123456\"}", true, false);
    /* 100 Continue first; bare LF line ends; Connection: close */
    expect_ok("HTTP/1.1 100 Continue\r\n\r\n"
              "HTTP/1.1 401 Unauthorized\n"
              "Connection: keep-alive, Close\n"
              "Content-Length: 2\n"
              "\n"
              "{}",
              401, "{}", false, false);
    /* no length: the body runs to the connection's end */
    expect_ok("HTTP/1.1 500 Internal Server Error\r\n\r\noops", 500, "oops",
              false, true);
    /* HTTP/1.0 never keeps the connection; 204 has no body */
    expect_ok("HTTP/1.0 204 No Content\r\n\r\n", 204, "", false, false);
    expect_ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", true,
              false);
}

static void test_parse_headers_reach_resp(void **state)
{
    struct akv_h1_parser *p = malloc(sizeof(*p));
    struct akv_http_resp resp = {0};
    const char *a = "HTTP/1.1 429 Too Many Requests\r\n"
                    "Retry-After:  7 \r\n"
                    "x-ms-request-id: abc\r\n"
                    "WWW-Authenticate: Bearer authorization=\"https://l/t\"\r\n"
                    "Content-Length: 0\r\n\r\n";
    (void)state;

    assert_non_null(p);
    assert_int_equal(parse(a, strlen(a), 3, p, &resp), AKV_H1_DONE);
    assert_int_equal(resp.status, 429);
    assert_string_equal(resp.retry_after, "7");
    assert_string_equal(resp.request_id, "abc");
    assert_string_equal(resp.www_authenticate,
                        "Bearer authorization=\"https://l/t\"");
    /* bytes after a complete answer: the connection is not reused */
    a = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n";
    assert_int_equal(parse(a, strlen(a), 0, p, &resp), AKV_H1_DONE);
    assert_int_equal(resp.body.len, 1);
    assert_false(akv_h1_reusable(p));
    /* the connection ends before the answer does */
    a = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345";
    assert_int_equal(parse(a, strlen(a), 0, p, &resp), AKV_H1_BODY_LEN);
    assert_int_equal(akv_h1_feed_eof(p), AKV_H1_ERROR);
    akv_http_resp_clear(&resp);
    free(p);
}

static void test_parse_malformed(void **state)
{
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        /* both framings (request smuggling), conflicting lengths */
        ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        /* obs-fold, space before the colon, no colon */
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
        /* chunk size not hex, missing CRLF after the data */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        /* announced bodies over AKV_HTTP_BODY_MAX */
        "HTTP/1.1 200 OK\r\nContent-Length: 262145\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40001\r\n",
    };
    struct akv_h1_parser *p = malloc(sizeof(*p));
    struct akv_http_resp resp = {0};
    char *longline;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_error(bad[i], strlen(bad[i]));
    }
    assert_non_null(p);
    parse(bad[15], strlen(bad[15]), 0, p, &resp);
    assert_true(resp.too_big);

    /* one header line longer than AKV_H1_LINE_MAX */
    longline = malloc(AKV_H1_LINE_MAX + 64);
    assert_non_null(longline);
    memcpy(longline, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(longline + 20, 'a', AKV_H1_LINE_MAX + 10);
    expect_error(longline, AKV_H1_LINE_MAX + 30);
    free(longline);
    akv_http_resp_clear(&resp);
    free(p);
}

/* Header lines can carry secrets (an identity endpoint's Set-Cookie): the
 * line buffer keeps none of them once the answer is parsed, nor while a
 * later line is awaited. */
static void test_parse_wipes_lines(void **state)
{
    static const char cookie[] = "Set-Cookie: fpc=SECRETCOOKIEVALUE\r\n";
    static const char head[] = "HTTP/1.1 200 OK\r\n";
    static const char tail[] = "Content-Length: 2\r\n\r\n{}";
    struct akv_h1_parser p;
    struct akv_http_resp resp;
    (void)state;

    memset(&resp, 0, sizeof(resp));
    akv_h1_parser_init(&p);
    assert_int_equal(akv_h1_feed(&p, head, strlen(head), &resp), AKV_H1_FIELDS);
    assert_int_equal(akv_h1_feed(&p, cookie, strlen(cookie), &resp),
                     AKV_H1_FIELDS);
    /* between lines (a read that ends here, then a timeout) */
    assert_null(memmem(p.line, sizeof(p.line), "SECRETCOOKIE", 12));
    assert_int_equal(akv_h1_feed(&p, tail, strlen(tail), &resp), AKV_H1_DONE);
    assert_int_equal(resp.status, 200);
    assert_null(memmem(p.line, sizeof(p.line), "SECRETCOOKIE", 12));
    assert_null(memmem(p.line, sizeof(p.line), "Content-Length", 14));
    akv_http_resp_clear(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_split),
        cmocka_unit_test(test_field_ok),
        cmocka_unit_test(test_write_head),
        cmocka_unit_test(test_parse_answers),
        cmocka_unit_test(test_parse_headers_reach_resp),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_wipes_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
