/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyvault/http.c against a raw TCP server on loopback that records the
 * exact request bytes and answers from a script: the bytes on the wire,
 * keep-alive on one connection, no allocation by the request path on a
 * kept-alive connection (malloc/calloc/realloc are wrapped at link time;
 * libcurl allocates through kv.c's allocator, so its blocks count too),
 * connections the server closed while idle or on the next request, a
 * chunked answer with Connection: close, a header line that would inject
 * another header, a malformed answer and a silent server.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "keyvault/http.h"
#include "keyvault/kv.h"

/* -- allocation counting (-Wl,--wrap=malloc,...) --------------------------- */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
static atomic_long allocs;
static _Thread_local bool counting;

void *__wrap_malloc(size_t n)
{
    if (counting) {
        allocs++;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    if (counting) {
        allocs++;
    }
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (counting) {
        allocs++;
    }
    return __real_realloc(p, n);
}

/* -- the scripted server ----------------------------------------------------
 */
enum act {
    ANSWER = 0,   /* send the answer, keep the connection */
    ANSWER_CLOSE, /* send the answer, then close */
    DROP,         /* close without answering */
    SILENT,       /* never answer */
};

#define MAX_STEPS 8

static struct {
    int lfd;
    int port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    int accepts;              /* LOCKED by mu */
    int requests;             /* LOCKED by mu */
    char last[32768];         /* LOCKED by mu: the last request's bytes */
    size_t last_len;          /* LOCKED by mu */
    enum act acts[MAX_STEPS]; /* LOCKED by mu: per request, then ANSWER */
    const char *answers[MAX_STEPS];
    int n_steps;
} S;

static const char ok_answer[] = "HTTP/1.1 200 OK\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 11\r\n"
                                "\r\n"
                                "{\"ok\":true}";

static void script(int n, const enum act *acts, const char *const *answers)
{
    pthread_mutex_lock(&S.mu);
    S.n_steps = n;
    for (int i = 0; i < n; i++) {
        S.acts[i] = acts[i];
        S.answers[i] =
            answers != NULL && answers[i] != NULL ? answers[i] : ok_answer;
    }
    S.requests = 0;
    S.accepts = 0;
    pthread_mutex_unlock(&S.mu);
}

/* Reads one request (head + Content-Length body) into BUF; its length, or
 * 0 when the client closed or the server stops. */
static size_t read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char *end = len > 0 ? strstr(buf, "\r\n\r\n") : NULL;
        ssize_t k;

        if (end != NULL) {
            const char *cl = strstr(buf, "Content-Length: ");
            size_t body =
                cl != NULL && cl < end ? strtoul(cl + 16, NULL, 10) : 0;

            if (len >= (size_t)(end + 4 - buf) + body) {
                return len;
            }
        }
        if (atomic_load(&S.stop)) {
            return 0;
        }
        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        k = read(fd, buf + len, cap - 1 - len);
        if (k <= 0) {
            return 0;
        }
        len += (size_t)k;
        buf[len] = '\0';
    }
}

static void *serve(void *arg)
{
    static char buf[32768];
    (void)arg;

    while (!atomic_load(&S.stop)) {
        struct pollfd pfd = {.fd = S.lfd, .events = POLLIN};
        int fd;

        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        fd = accept(S.lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        pthread_mutex_lock(&S.mu);
        S.accepts++;
        pthread_mutex_unlock(&S.mu);
        for (;;) {
            size_t n = read_request(fd, buf, sizeof(buf));
            enum act a = ANSWER;
            const char *ans = ok_answer;

            if (n == 0) {
                break;
            }
            pthread_mutex_lock(&S.mu);
            memcpy(S.last, buf, n);
            S.last_len = n;
            if (S.requests < S.n_steps) {
                a = S.acts[S.requests];
                ans = S.answers[S.requests];
            }
            S.requests++;
            pthread_mutex_unlock(&S.mu);
            if (a == DROP) {
                break;
            }
            if (a == SILENT) {
                while (read_request(fd, buf, sizeof(buf)) > 0) {
                }
                break;
            }
            if (write(fd, ans, strlen(ans)) != (ssize_t)strlen(ans)
                || a == ANSWER_CLOSE) {
                break;
            }
        }
        close(fd);
    }
    return NULL;
}

static struct akv_http *http;
static char url[128];
static char origin_host[64];

static int setup(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    (void)state;

    if (akv_kv_global_init() != CKR_OK) {
        return -1;
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    S.lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (S.lfd < 0 || bind(S.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(S.lfd, 8) != 0
        || getsockname(S.lfd, (struct sockaddr *)&sa, &sl) != 0) {
        return -1;
    }
    S.port = ntohs(sa.sin_port);
    (void)snprintf(origin_host, sizeof(origin_host), "127.0.0.1:%d", S.port);
    (void)snprintf(url, sizeof(url),
                   "http://%s/keys/k/0123/unwrapkey?api-version=7.4",
                   origin_host);
    pthread_mutex_init(&S.mu, NULL);
    if (pthread_create(&S.th, NULL, serve, NULL) != 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    atomic_store(&S.stop, true);
    pthread_join(S.th, NULL);
    close(S.lfd);
    return 0;
}

/* A fresh pool per test: connections of one test never serve the next. */
static int each_setup(void **state)
{
    (void)state;
    return akv_http_new(NULL, &http) == CKR_OK ? 0 : -1;
}

static int each_teardown(void **state)
{
    (void)state;
    akv_http_free(http);
    http = NULL;
    return 0;
}

static struct akv_secret auth;

static CK_RV post(const char *body, long timeout_ms, struct akv_http_resp *resp)
{
    static const char *const hdrs[] = {"x-ms-client-request-id: r1", NULL};
    struct akv_http_req req = {0};
    const char line[] = "Authorization: Bearer eyJ0.eyJ1.c2ln";

    if (auth.data == NULL && akv_secret_set(&auth, line, sizeof(line)) != 0) {
        return CKR_HOST_MEMORY;
    }
    req.method = "POST";
    req.url = url;
    req.log_path = "/keys/k/0123/unwrapkey";
    req.secret_header = &auth;
    req.headers = hdrs;
    req.body = (const uint8_t *)body;
    req.body_len = strlen(body);
    req.scheme = AKV_HTTP_LOOPBACK_OK;
    return akv_http_perform(http, &req, timeout_ms, resp);
}

static int stat_of(int *accepts)
{
    int r;

    pthread_mutex_lock(&S.mu);
    r = S.requests;
    *accepts = S.accepts;
    pthread_mutex_unlock(&S.mu);
    return r;
}

static void test_request_bytes(void **state)
{
    struct akv_http_resp resp = {0};
    char want[1024];
    char got[sizeof(S.last)];
    size_t got_len;
    int n;
    (void)state;

    script(0, NULL, NULL);
    assert_int_equal(
        post("{\"alg\":\"RSA-OAEP-256\",\"value\":\"AAEC\"}", 5000, &resp),
        CKR_OK);
    n = snprintf(want, sizeof(want),
                 "POST /keys/k/0123/unwrapkey?api-version=7.4 HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "User-Agent: akv-pkcs11/0.1\r\n"
                 "Accept: application/json\r\n"
                 "Content-Type: application/json\r\n"
                 "x-ms-client-request-id: r1\r\n"
                 "Authorization: Bearer eyJ0.eyJ1.c2ln\r\n"
                 "Content-Length: 37\r\n"
                 "\r\n"
                 "{\"alg\":\"RSA-OAEP-256\",\"value\":\"AAEC\"}",
                 origin_host);
    pthread_mutex_lock(&S.mu);
    got_len = S.last_len;
    memcpy(got, S.last, got_len);
    pthread_mutex_unlock(&S.mu);
    assert_int_equal(got_len, (size_t)n);
    assert_memory_equal(got, want, (size_t)n);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.curl_code, 0);
    assert_int_equal(resp.body.len, 11);
    assert_memory_equal(resp.body.data, "{\"ok\":true}", 11);
    akv_http_resp_clear(&resp);
}

static void test_keepalive_without_allocations(void **state)
{
    struct akv_http_resp resp = {0};
    int accepts = 0;
    long n;
    (void)state;

    script(0, NULL, NULL);
    assert_int_equal(post("{}", 5000, &resp), CKR_OK);
    akv_http_resp_clear(&resp);
    allocs = 0;
    counting = true;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(post("{}", 5000, &resp), CKR_OK);
        assert_int_equal(resp.status, 200);
        akv_http_resp_clear(&resp);
    }
    counting = false;
    n = atomic_load(&allocs);
    /* libcurl's request engine made ~50 allocations per request; the body
     * lives in a secret buffer (its own pages, not malloc) */
    print_message("allocations for 10 requests on a kept connection: %ld\n", n);
    assert_true(n <= 10);
    assert_int_equal(stat_of(&accepts), 11);
    assert_int_equal(accepts, 1);
}

static void test_closed_while_idle(void **state)
{
    static const enum act acts[] = {ANSWER_CLOSE, ANSWER};
    struct akv_http_resp resp = {0};
    int accepts = 0;
    (void)state;

    script(2, acts, NULL);
    assert_int_equal(post("{}", 5000, &resp), CKR_OK);
    usleep(50000); /* the close reaches the client's socket */
    assert_int_equal(post("{}", 5000, &resp), CKR_OK);
    assert_int_equal(resp.status, 200);
    assert_true(resp.elapsed_ms < 1000);
    assert_int_equal(stat_of(&accepts), 2);
    assert_int_equal(accepts, 2);
    akv_http_resp_clear(&resp);
}

static void test_dropped_on_next_request(void **state)
{
    static const enum act acts[] = {ANSWER, DROP, ANSWER};
    struct akv_http_resp resp = {0};
    int accepts = 0;
    (void)state;

    script(3, acts, NULL);
    assert_int_equal(post("{}", 5000, &resp), CKR_OK);
    /* the pooled connection is closed as the request arrives: sent again,
     * once, on a new connection */
    assert_int_equal(post("{}", 5000, &resp), CKR_OK);
    assert_int_equal(resp.status, 200);
    assert_int_equal(stat_of(&accepts), 3);
    assert_int_equal(accepts, 2);
    akv_http_resp_clear(&resp);
}

static void test_chunked_and_connection_close(void **state)
{
    static const enum act acts[] = {ANSWER, ANSWER};
    static const char *const answers[] = {"HTTP/1.1 429 Too Many Requests\r\n"
                                          "Retry-After: 3\r\n"
                                          "Transfer-Encoding: chunked\r\n"
                                          "Connection: close\r\n"
                                          "\r\n"
                                          "4\r\n{\"er\r\n"
                                          "B\r\nror\":\"busy\"\r\n"
                                          "1\r\n}\r\n"
                                          "0\r\n\r\n",
                                          NULL};
    struct akv_http_resp resp = {0};
    int accepts = 0;
    (void)state;

    script(2, acts, answers);
    assert_int_equal(post("{}", 5000, &resp), CKR_OK);
    assert_int_equal(resp.status, 429);
    assert_string_equal(resp.retry_after, "3");
    assert_int_equal(resp.body.len, 16);
    assert_memory_equal(resp.body.data, "{\"error\":\"busy\"}", 16);
    assert_int_equal(post("{}", 5000, &resp), CKR_OK);
    assert_int_equal(resp.status, 200);
    assert_int_equal(stat_of(&accepts), 2);
    assert_int_equal(accepts, 2); /* Connection: close was honoured */
    akv_http_resp_clear(&resp);
}

static void test_large_token(void **state)
{
    struct akv_http_req req = {0};
    struct akv_http_resp resp = {0};
    struct akv_secret big = {0};
    static char line[20001];
    char *got = malloc(sizeof(S.last));
    size_t got_len;
    (void)state;

    /* a head over the 8 KiB stack buffer goes out from a secret buffer */
    assert_non_null(got);
    script(0, NULL, NULL);
    memcpy(line, "Authorization: Bearer ", 22);
    memset(line + 22, 'T', sizeof(line) - 23);
    assert_int_equal(akv_secret_set(&big, line, sizeof(line)), 0);
    req.method = "GET";
    req.url = url;
    req.log_path = "/";
    req.secret_header = &big;
    req.scheme = AKV_HTTP_LOOPBACK_OK;
    assert_int_equal(akv_http_perform(http, &req, 5000, &resp), CKR_OK);
    assert_int_equal(resp.status, 200);
    pthread_mutex_lock(&S.mu);
    got_len = S.last_len;
    memcpy(got, S.last, got_len);
    pthread_mutex_unlock(&S.mu);
    got[got_len] = '\0';
    assert_non_null(strstr(got, line));
    assert_int_equal(got_len,
                     strlen("GET /keys/k/0123/unwrapkey?api-version=7.4 "
                            "HTTP/1.1\r\nHost: \r\n"
                            "User-Agent: akv-pkcs11/0.1\r\n"
                            "Accept: application/json\r\n\r\n\r\n")
                         + strlen(origin_host) + strlen(line));
    akv_secret_clear(&big);
    akv_http_resp_clear(&resp);
    free(got);
}

static void test_header_injection_refused(void **state)
{
    struct akv_http_req req = {0};
    struct akv_http_resp resp = {0};
    struct akv_secret evil = {0};
    const char line[] = "Authorization: Bearer x\r\nX-Injected: 1";
    int accepts = 0;
    (void)state;

    script(0, NULL, NULL);
    assert_int_equal(akv_secret_set(&evil, line, sizeof(line)), 0);
    req.method = "GET";
    req.url = url;
    req.log_path = "/";
    req.secret_header = &evil;
    req.scheme = AKV_HTTP_LOOPBACK_OK;
    assert_int_equal(akv_http_perform(http, &req, 5000, &resp),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(stat_of(&accepts), 0);
    assert_int_equal(accepts, 0); /* nothing was sent */
    akv_secret_clear(&evil);
}

static void test_malformed_and_silent(void **state)
{
    static const enum act acts[] = {ANSWER_CLOSE, SILENT};
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        NULL};
    struct akv_http_resp resp = {0};
    (void)state;

    script(2, acts, answers);
    assert_int_equal(post("{}", 5000, &resp), CKR_DEVICE_ERROR);
    assert_int_equal(resp.curl_code, CURLE_WEIRD_SERVER_REPLY);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.body.len, 0);
    assert_int_equal(post("{}", 300, &resp), CKR_DEVICE_ERROR);
    assert_int_equal(resp.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_true(resp.elapsed_ms >= 290 && resp.elapsed_ms < 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_bytes, each_setup,
                                        each_teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_without_allocations,
                                        each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_closed_while_idle, each_setup,
                                        each_teardown),
        cmocka_unit_test_setup_teardown(test_dropped_on_next_request,
                                        each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_and_connection_close,
                                        each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_large_token, each_setup,
                                        each_teardown),
        cmocka_unit_test_setup_teardown(test_header_injection_refused,
                                        each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_and_silent, each_setup,
                                        each_teardown),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);

    akv_secret_clear(&auth);
    return rc;
}
