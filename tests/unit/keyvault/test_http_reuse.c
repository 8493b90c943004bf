/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyvault/http.c + retry.c: a kept-alive connection that stopped answering
 * (a firewall or NAT dropped it without FIN or RST) costs the reuse answer
 * time, not the attempt's timeout: the request on it is given up when no
 * byte of an answer came within http.reuse_answer_ms and sent once more on
 * a new connection, without counting as a retry. Never more than once per
 * call, never for a request whose answer had begun, never for a request on
 * a new connection (whose answer may take the whole timeout).
 *
 * The server is a scripted raw HTTP/1.1 server on loopback: request number
 * i (counted over all connections) is answered per script[i]: in full, not
 * at all (the connection stays open and silent, like a black-holed flow),
 * or with the header block only (then silent).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "keyvault/http.h"
#include "keyvault/kv.h"
#include "keyvault/retry.h"

enum act { FULL, SILENT, HEAD_ONLY };

#define MAX_CONN 16

static struct {
    int lfd;
    int port;
    pthread_t acceptor;
    pthread_t handlers[MAX_CONN];
    int n_conn;
    enum act script[8];
    int n_script;
    int n_req;
    int stop;
    pthread_mutex_t mu;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Requests and connections the server has seen so far. */
static int seen(const int *counter)
{
    int n;

    pthread_mutex_lock(&srv.mu);
    n = *counter;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static int stopping(void)
{
    return __atomic_load_n(&srv.stop, __ATOMIC_ACQUIRE);
}

/* Waits until FD is readable (1), the server stops (0) or FD fails (-1). */
static int wait_readable(int fd)
{
    while (!stopping()) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 50);
        if (r > 0) {
            return 1;
        }
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

/* Stays on FD without answering until the peer closes or the server
 * stops. */
static void hold(int fd)
{
    char buf[512];

    while (wait_readable(fd) == 1) {
        if (recv(fd, buf, sizeof(buf), 0) <= 0) {
            return;
        }
    }
}

static void *handle(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[4096];
    size_t len = 0;

    for (;;) {
        ssize_t r;
        char *end;
        int idx;
        enum act a;
        char out[256];

        if (wait_readable(fd) != 1) {
            break;
        }
        r = recv(fd, req + len, sizeof(req) - 1 - len, 0);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
        req[len] = '\0';
        end = strstr(req, "\r\n\r\n");
        if (end == NULL) {
            continue; /* GET only: the request ends with its header block */
        }
        len = 0;
        pthread_mutex_lock(&srv.mu);
        idx = srv.n_req++;
        pthread_mutex_unlock(&srv.mu);
        a = idx < srv.n_script ? srv.script[idx] : FULL;
        if (a == SILENT) {
            hold(fd);
            break;
        }
        if (a == HEAD_ONLY) {
            (void)snprintf(out, sizeof(out),
                           "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
            (void)send(fd, out, strlen(out), MSG_NOSIGNAL);
            hold(fd);
            break;
        }
        (void)snprintf(out, sizeof(out),
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Content-Length: 7\r\n\r\n{\"n\":%d}",
                       idx % 10);
        (void)send(fd, out, strlen(out), MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    while (wait_readable(srv.lfd) == 1) {
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        pthread_mutex_lock(&srv.mu);
        if (srv.n_conn < MAX_CONN
            && pthread_create(&srv.handlers[srv.n_conn], NULL, handle,
                              (void *)(intptr_t)fd)
                   == 0) {
            srv.n_conn++;
        } else {
            close(fd);
        }
        pthread_mutex_unlock(&srv.mu);
    }
    return NULL;
}

static void srv_start(const enum act *script, int n)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv.lfd >= 0);
    assert_int_equal(bind(srv.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(srv.lfd, 16), 0);
    assert_int_equal(getsockname(srv.lfd, (struct sockaddr *)&a, &al), 0);
    srv.port = ntohs(a.sin_port);
    memcpy(srv.script, script, (size_t)n * sizeof(*script));
    srv.n_script = n;
    srv.n_req = 0;
    srv.n_conn = 0;
    srv.stop = 0;
    assert_int_equal(pthread_create(&srv.acceptor, NULL, accept_loop, NULL), 0);
}

static void srv_stop(void)
{
    __atomic_store_n(&srv.stop, 1, __ATOMIC_RELEASE);
    pthread_join(srv.acceptor, NULL);
    for (int i = 0; i < srv.n_conn; i++) {
        pthread_join(srv.handlers[i], NULL);
    }
    close(srv.lfd);
}

/* One call through retry.c: RETRIES extra attempts, TIMEOUT_MS each.
 * Returns the call's wall time in ms. */
static long call(struct akv_http *h, int retries, long timeout_ms, CK_RV *rv,
                 struct akv_http_resp *resp, int *attempts)
{
    struct akv_retry_policy pol = {retries, timeout_ms, false, NULL};
    struct akv_http_req req = {0};
    char url[64];
    int64_t t0 = akv_retry_now_ms();

    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/keys/k", srv.port);
    req.method = "GET";
    req.url = url;
    req.log_path = "/keys/k";
    req.scheme = AKV_HTTP_LOOPBACK_OK;
    *rv = akv_retry_perform(h, &req, &pol, t0 + 20000, resp, attempts);
    return (long)(akv_retry_now_ms() - t0);
}

static struct akv_http *pool(long reuse_ms)
{
    struct akv_http *h = NULL;

    assert_int_equal(akv_http_new(NULL, &h), CKR_OK);
    akv_http_set_reuse_answer_timeout(h, reuse_ms);
    return h;
}

/* The pooled connection stops answering: the next call is answered on a
 * new connection after the reuse answer time, as one attempt. */
static void test_silent_reused_resent(void **state)
{
    static const enum act script[] = {FULL, SILENT, FULL};
    struct akv_http *h = pool(300);
    struct akv_http_resp resp = {0};
    int attempts = 0;
    CK_RV rv;
    long ms;
    (void)state;

    srv_start(script, 3);
    (void)call(h, 0, 5000, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_OK);
    assert_string_equal((const char *)resp.body.data, "{\"n\":0}");
    ms = call(h, 0, 5000, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal((const char *)resp.body.data, "{\"n\":2}");
    assert_int_equal(attempts, 1); /* the resend is no retry */
    assert_int_equal(seen(&srv.n_req), 3);
    assert_int_equal(seen(&srv.n_conn), 2);
    /* cut at 300 ms (checked about once a second), not at 5000 */
    assert_true(ms >= 300);
    assert_true(ms < 2500);
    akv_http_resp_clear(&resp);
    akv_http_free(h);
    srv_stop();
}

/* The resend is made once per call: a new connection that stays silent
 * too times out, and with no retries left the call fails. */
static void test_resent_once(void **state)
{
    static const enum act script[] = {FULL, SILENT, SILENT};
    struct akv_http *h = pool(300);
    struct akv_http_resp resp = {0};
    int attempts = 0;
    CK_RV rv;
    long ms;
    (void)state;

    srv_start(script, 3);
    (void)call(h, 0, 1500, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_OK);
    ms = call(h, 0, 1500, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_DEVICE_ERROR);
    assert_int_equal(resp.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_false(resp.reused_unanswered); /* the last one was new */
    assert_int_equal(attempts, 1);
    assert_int_equal(seen(&srv.n_req), 3);
    assert_true(ms >= 1800); /* 300 + the new connection's whole 1500 */
    akv_http_resp_clear(&resp);
    akv_http_free(h);
    srv_stop();
}

/* An answer that had begun (its header block came) is never resent: it
 * runs to the attempt's timeout and is then an ordinary failure. */
static void test_partial_answer_not_resent(void **state)
{
    static const enum act script[] = {FULL, HEAD_ONLY, FULL};
    struct akv_http *h = pool(300);
    struct akv_http_resp resp = {0};
    int attempts = 0;
    CK_RV rv;
    long ms;
    (void)state;

    srv_start(script, 3);
    (void)call(h, 0, 1500, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_OK);
    ms = call(h, 0, 1500, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_DEVICE_ERROR);
    assert_false(resp.reused_unanswered);
    assert_int_equal(resp.body.len, 0);
    assert_int_equal(seen(&srv.n_req), 2);
    assert_true(ms >= 1400);
    akv_http_resp_clear(&resp);
    akv_http_free(h);
    srv_stop();
}

/* A request on a new connection is never cut short by the reuse answer
 * time, and its timeout is not a dead pooled connection. */
static void test_new_connection_not_cut(void **state)
{
    static const enum act script[] = {SILENT};
    struct akv_http *h = pool(300);
    struct akv_http_resp resp = {0};
    int attempts = 0;
    CK_RV rv;
    long ms;
    (void)state;

    srv_start(script, 1);
    ms = call(h, 0, 1500, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_DEVICE_ERROR);
    assert_int_equal(resp.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_false(resp.reused_unanswered);
    assert_int_equal(seen(&srv.n_req), 1);
    assert_true(ms >= 1400);
    akv_http_resp_clear(&resp);
    akv_http_free(h);
    srv_stop();
}

/* reuse_answer_ms 0: no early cut; a pooled connection's timeout without
 * one answer byte is still resent once at once (not a retry). */
static void test_off_waits_for_timeout(void **state)
{
    static const enum act script[] = {FULL, SILENT, FULL};
    struct akv_http *h = pool(0);
    struct akv_http_resp resp = {0};
    int attempts = 0;
    CK_RV rv;
    long ms;
    (void)state;

    srv_start(script, 3);
    (void)call(h, 0, 1500, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_OK);
    ms = call(h, 0, 1500, &rv, &resp, &attempts);
    assert_int_equal(rv, CKR_OK);
    assert_string_equal((const char *)resp.body.data, "{\"n\":2}");
    assert_int_equal(attempts, 1);
    assert_int_equal(seen(&srv.n_req), 3);
    assert_true(ms >= 1400);
    akv_http_resp_clear(&resp);
    akv_http_free(h);
    srv_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_reused_resent),
        cmocka_unit_test(test_resent_once),
        cmocka_unit_test(test_partial_answer_not_resent),
        cmocka_unit_test(test_new_connection_not_cut),
        cmocka_unit_test(test_off_waits_for_timeout),
    };
    if (akv_kv_global_init() != CKR_OK) {
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
