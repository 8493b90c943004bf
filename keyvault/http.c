/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../common/kvid.h"
#include "../common/log.h"
#include "../common/ossl.h"
#include "h1.h"

/* Idle connections kept for the next requests: as many as threads were in
 * flight at once, up to this bound; more concurrent requests still run, on
 * connections closed when they end. */
#define POOL_SIZE 64
/* libcurl's receive buffer per connection (its default is 16 KiB): it caps
 * each read (curl_easy_recv reads into our buffer, not libcurl's). */
#define AKV_HTTP_RECV_BUF 4096
/* Keep-alive probes of idle pooled connections, and the longest idle time
 * after which a pooled connection is still reused (seconds). */
#define AKV_HTTP_KEEPIDLE_S  30L
#define AKV_HTTP_KEEPINTVL_S 10L
#define AKV_HTTP_MAXAGE_S    60L
/* Request head (and body, when it fits) as written in one TLS record, and
 * the stack buffer answers are read into; both wiped after use. */
#define AKV_HTTP_OUT_BUF 8192
/* Longest request head (a token too large for AKV_HTTP_OUT_BUF goes out
 * from a secret buffer of this size). */
#define AKV_HTTP_HEAD_MAX 65536
/* Longest "scheme://host:port" a pooled connection is kept for. */
#define AKV_HTTP_ORIGIN_MAX 300

/*
 * Keep-alive without libcurl buffers holding secrets: libcurl only opens
 * connections (CURLOPT_CONNECT_ONLY: name lookup, proxy tunnel, TCP, TLS
 * with verification); the request is written by keyvault/h1.c into a
 * stack buffer sent with curl_easy_send and the answer read with
 * curl_easy_recv into a stack buffer, both wiped after the exchange, so
 * the bearer token, the request body and the answer pass through no
 * buffer libcurl keeps (OpenSSL's record buffers: see on_ssl_ctx). libcurl's
 * request engine built each request with about 1,500 one-byte appends (its
 * printf into a dynbuf) and ~50 allocations; this path costs neither.
 * A connection is its easy handle: used by one thread at a time, taken from
 * and returned to this pool, so no lock is held while it is on the wire.
 */
struct akv_conn {
    CURL *c;
    curl_socket_t fd;
    int64_t idle_since_ms;       /* monotonic ms when returned to the pool */
    enum akv_http_scheme scheme; /* the policy it was opened under */
    size_t origin_len;
    char origin[AKV_HTTP_ORIGIN_MAX]; /* "scheme://authority" */
};

struct akv_http {
    pthread_mutex_t lock;
    struct akv_conn *idle[POOL_SIZE]; /* LOCKED by lock; oldest first */
    size_t n_idle;                    /* LOCKED by lock */
    char *ca_file;
    pid_t pid; /* a forked child must not reuse the parent's connections */
    long connect_timeout_ms; /* 0 = only the attempt's timeout applies */
    long reuse_answer_ms;    /* 0 = a reused connection waits like a new one */
};

/* Closes the connection of CONN (its TLS state is freed with it). */
static void conn_free(struct akv_conn *conn)
{
    if (conn != NULL) {
        curl_easy_cleanup(conn->c);
        free(conn);
    }
}

CK_RV akv_http_new(const char *ca_file, struct akv_http **out)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_http *h = NULL;

    if (out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        h = NULL;
        goto out;
    }
    h->pid = getpid();
    if (ca_file != NULL) {
        h->ca_file = strdup(ca_file);
        if (h->ca_file == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
    }
    *out = h;
    h = NULL;
    rv = CKR_OK;
out:
    akv_http_free(h);
    return rv;
}

void akv_http_set_connect_timeout(struct akv_http *h, long ms)
{
    if (h != NULL) {
        h->connect_timeout_ms = ms > 0 ? ms : 0;
    }
}

void akv_http_set_reuse_answer_timeout(struct akv_http *h, long ms)
{
    if (h != NULL) {
        h->reuse_answer_ms = ms > 0 ? ms : 0;
    }
}

void akv_http_free(struct akv_http *h)
{
    if (h == NULL) {
        return;
    }
    if (h->pid == getpid()) {
        for (size_t i = 0; i < h->n_idle; i++) {
            conn_free(h->idle[i]);
        }
    }
    (void)pthread_mutex_destroy(&h->lock);
    free(h->ca_file);
    free(h);
}

static int64_t now_ms(void);
static bool conn_alive(struct akv_conn *conn, int64_t now);

/* The most recently used idle connection to ORIGIN (ORIGIN_LEN bytes)
 * opened under SCHEME that still looks alive, or NULL. A forked child
 * starts with fresh connections. */
static struct akv_conn *take_conn(struct akv_http *h, const char *origin,
                                  size_t origin_len,
                                  enum akv_http_scheme scheme)
{
    struct akv_conn *conn = NULL;

    if (h->pid != getpid()) {
        return NULL;
    }
    for (;;) {
        conn = NULL;
        pthread_mutex_lock(&h->lock);
        for (size_t i = h->n_idle; i-- > 0;) {
            struct akv_conn *k = h->idle[i];

            if (k->scheme == scheme && k->origin_len == origin_len
                && memcmp(k->origin, origin, origin_len) == 0) {
                conn = k;
                /* an array of pointers: sizeof of one pointer is meant */
                // NOLINTNEXTLINE(bugprone-sizeof-expression)
                size_t one = sizeof(h->idle[0]);

                memmove(&h->idle[i], &h->idle[i + 1],
                        (h->n_idle - i - 1) * one);
                h->n_idle--;
                break;
            }
        }
        pthread_mutex_unlock(&h->lock);
        if (conn == NULL || conn_alive(conn, now_ms())) {
            return conn;
        }
        conn_free(conn);
    }
}

/* Returns CONN to the pool (or closes it when the pool is full). */
static void give_conn(struct akv_http *h, struct akv_conn *conn)
{
    bool kept = false;

    if (conn == NULL) {
        return;
    }
    if (h->pid == getpid()) {
        conn->idle_since_ms = now_ms();
        pthread_mutex_lock(&h->lock);
        if (h->n_idle < POOL_SIZE) {
            h->idle[h->n_idle++] = conn;
            kept = true;
        }
        pthread_mutex_unlock(&h->lock);
    }
    if (!kept) {
        conn_free(conn);
    }
}

void akv_http_resp_clear(struct akv_http_resp *resp)
{
    if (resp == NULL) {
        return;
    }
    akv_secret_clear(&resp->body);
    memset(resp, 0, sizeof(*resp));
}

const char *akv_http_strerror(int curl_code)
{
    /* The failures a user can fix get a hint naming the setting. */
    if (curl_code == AKV_HTTP_E_TLS_LOCAL) {
        return "TLS handshake refused by this process before anything was "
               "sent (OpenSSL could not make a key share or ClientHello: "
               "out of memory, or an OpenSSL provider that fails key "
               "generation; not retried)";
    }
    switch ((CURLcode)curl_code) {
    case CURLE_PEER_FAILED_VERIFICATION:
        return "TLS certificate not trusted or not for this host "
               "(check ca_file / the system CA store)";
    case CURLE_SSL_CACERT_BADFILE:
        return "ca_file cannot be read or holds no PEM certificate";
    case CURLE_SSL_CONNECT_ERROR:
        return "TLS handshake failed (wrong port, or not an HTTPS server?)";
    case CURLE_COULDNT_CONNECT:
        return "connection refused or unreachable (is the service up at "
               "this address and port?)";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "host name not found (check the URL)";
    case CURLE_OPERATION_TIMEDOUT:
        return "timed out (http.timeout_ms / http.budget_ms)";
    default:
        return curl_easy_strerror((CURLcode)curl_code);
    }
}

void akv_http_origin(const char *url, char *out, size_t out_len)
{
    const char *p;
    size_t n;

    if (out_len == 0) {
        return;
    }
    out[0] = '\0';
    if (url == NULL) {
        return;
    }
    p = strstr(url, "://");
    p = p != NULL ? strchr(p + 3, '/') : NULL;
    n = p != NULL ? (size_t)(p - url) : strcspn(url, "?#");
    if (n >= out_len) {
        n = out_len - 1;
    }
    memcpy(out, url, n);
    out[n] = '\0';
}

/* Copies the header value (trimmed, one line) when NAME matches. */
static void take_header(const char *line, size_t len, const char *name,
                        char *dst, size_t dst_len)
{
    size_t nl = strlen(name);
    size_t i;
    size_t end;

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return;
    }
    i = nl + 1;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    end = len;
    while (end > i
           && (line[end - 1] == '\r' || line[end - 1] == '\n'
               || line[end - 1] == ' ' || line[end - 1] == '\t')) {
        end--;
    }
    if (end - i >= dst_len) {
        end = i + dst_len - 1;
    }
    memcpy(dst, line + i, end - i);
    dst[end - i] = '\0';
    for (size_t k = 0; dst[k] != '\0'; k++) {
        if ((unsigned char)dst[k] < 0x20 || dst[k] == 0x7f) {
            dst[k] = '?';
        }
    }
}

void akv_http_header_line(struct akv_http_resp *resp, const char *ptr, size_t n)
{
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new response (e.g. after 100 Continue): forget old headers */
        resp->request_id[0] = '\0';
        resp->www_authenticate[0] = '\0';
        resp->retry_after[0] = '\0';
        resp->retry_after_ms[0] = '\0';
        return;
    }
    take_header(ptr, n, "x-ms-request-id", resp->request_id,
                sizeof(resp->request_id));
    take_header(ptr, n, "WWW-Authenticate", resp->www_authenticate,
                sizeof(resp->www_authenticate));
    take_header(ptr, n, "Retry-After", resp->retry_after,
                sizeof(resp->retry_after));
    take_header(ptr, n, "retry-after-ms", resp->retry_after_ms,
                sizeof(resp->retry_after_ms));
    take_header(ptr, n, "x-ms-retry-after-ms", resp->retry_after_ms,
                sizeof(resp->retry_after_ms));
}

/* Splits REQ->url into URL and applies REQ->scheme before anything is
 * sent. */
static CK_RV check_target(const struct akv_http_req *req,
                          struct akv_h1_url *url)
{
    if (akv_h1_url_split(req->url, url) != 0
        || url->origin_len >= AKV_HTTP_ORIGIN_MAX) {
        AKV_LOG_DEBUG("refusing malformed URL for %s", req->log_path);
        return CKR_ARGUMENTS_BAD;
    }
    if (url->https) {
        return CKR_OK;
    }
    if (req->scheme == AKV_HTTP_PLAIN_OK
        || (req->scheme == AKV_HTTP_LOOPBACK_OK
            && akv_kvid_host_is_loopback(url->host, url->host_len))) {
        return CKR_OK;
    }
    AKV_LOG_DEBUG("refusing http:// to %.*s for %s: https is required "
                  "(http only to loopback with allow_http_loopback)",
                  (int)url->host_len, url->host, req->log_path);
    return CKR_ARGUMENTS_BAD;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* At most this many header lines per request (ours and the caller's). */
#define AKV_HTTP_MAX_HDRS 16

/* Set by tls_info on the thread running curl_easy_perform: our ClientHello
 * has left, so a handshake failure from here on involves the peer. */
static _Thread_local bool hello_sent;

static void tls_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if ((where & SSL_CB_LOOP) != 0
        && SSL_get_state(ssl) == TLS_ST_CW_CLNT_HELLO) {
        hello_sent = true;
    }
}

/*
 * CURLOPT_SSL_CTX_FUNCTION: runs for each new connection's SSL_CTX (created
 * inside curl_easy_perform, so under the module's private library context).
 * SSL_OP_CLEANSE_PLAINTEXT: OpenSSL wipes decrypted application data from
 * its record buffer once handed to libcurl (the vault's answers hold data
 * keys and tokens); SSL_MODE_RELEASE_BUFFERS: idle connections keep no
 * record buffers at all.
 */
static CURLcode on_ssl_ctx(CURL *c, void *ssl_ctx, void *userptr)
{
    SSL_CTX *ctx = ssl_ctx;

    (void)c;
    (void)userptr;
    (void)SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
    (void)SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_info_callback(ctx, tls_info);
    return CURLE_OK;
}

/* Waits until FD is ready for EVENTS (POLLIN/POLLOUT) or DEADLINE_MS
 * (monotonic) passes. Returns CURLE_OK or CURLE_OPERATION_TIMEDOUT. */
static CURLcode wait_fd(curl_socket_t fd, short events, int64_t deadline_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int64_t left = deadline_ms - now_ms();
        int n;

        if (left <= 0) {
            return CURLE_OPERATION_TIMEDOUT;
        }
        n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0) {
            return CURLE_OK; /* ready, or an error/hang-up the I/O reports */
        }
        if (n < 0 && errno != EINTR) {
            return CURLE_RECV_ERROR;
        }
    }
}

/*
 * A pooled connection is reused only when idle for at most
 * AKV_HTTP_MAXAGE_S and its socket has nothing to read: a peer that closed
 * it (vault restart, idle timeout on the server) has sent EOF or a reset,
 * which poll reports at once; TLS records that carry no data (TLS 1.3
 * session tickets, key updates) are consumed and the connection kept.
 */
static bool conn_alive(struct akv_conn *conn, int64_t now)
{
    struct pollfd pfd = {.fd = conn->fd, .events = POLLIN};
    char buf[64];
    size_t n = 0;
    CURLcode cc;
    OSSL_LIB_CTX *prev;

    if (now - conn->idle_since_ms > AKV_HTTP_MAXAGE_S * 1000) {
        return false;
    }
    if (poll(&pfd, 1, 0) == 0) {
        return true;
    }
    prev = OSSL_LIB_CTX_set0_default(akv_ossl_libctx());
    cc = curl_easy_recv(conn->c, buf, sizeof(buf), &n);
    (void)OSSL_LIB_CTX_set0_default(prev);
    akv_secret_wipe(buf, n);
    return cc == CURLE_AGAIN;
}

/*
 * Opens a connection to URL's origin for REQ with libcurl (CONNECT_ONLY):
 * name lookup, proxy tunnel, TCP, TLS with verification, all before
 * DEADLINE_MS. Returns CKR_OK with *OUT, or CKR_HOST_MEMORY, or
 * CKR_DEVICE_ERROR with RESP->curl_code and TLS_WHY (CURL_ERROR_SIZE bytes)
 * saying why.
 */
static CK_RV conn_open(struct akv_http *h, const struct akv_http_req *req,
                       const struct akv_h1_url *url, int64_t deadline_ms,
                       struct akv_http_resp *resp, char *tls_why,
                       struct akv_conn **out)
{
    CK_RV rv = CKR_HOST_MEMORY;
    struct akv_conn *conn = calloc(1, sizeof(*conn));
    char target[AKV_HTTP_ORIGIN_MAX + 1];
    OSSL_LIB_CTX *prev;
    curl_socket_t fd = CURL_SOCKET_BAD;
    CURLcode cc;
    CURL *c;
    int bad = 0;

    if (conn == NULL || (conn->c = curl_easy_init()) == NULL) {
        goto out;
    }
    c = conn->c;
    conn->scheme = req->scheme;
    conn->origin_len = url->origin_len;
    memcpy(conn->origin, url->origin, url->origin_len);
    memcpy(target, url->origin, url->origin_len);
    target[url->origin_len] = '/';
    target[url->origin_len + 1] = '\0';

    bad |= curl_easy_setopt(c, CURLOPT_URL, target) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                            req->scheme == AKV_HTTP_HTTPS_ONLY ? "https"
                                                               : "http,https")
           != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    /* Key Vault and Entra ID require TLS 1.2 or later */
    bad |=
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2)
        != CURLE_OK;
    /* Pooled connections idle between calls. A probe every
     * AKV_HTTP_KEEPIDLE_S keeps NAT/firewall state alive (Azure's load
     * balancers drop idle flows after 4 min, many NATs sooner) and lets the
     * kernel fail a connection whose peer vanished, so it is not reused; a
     * connection idle longer than AKV_HTTP_MAXAGE_S is not reused at all
     * (conn_alive). A reused connection the peer closed is retried on a
     * fresh connection within the same call (akv_http_perform). */
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, AKV_HTTP_KEEPIDLE_S)
           != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, AKV_HTTP_KEEPINTVL_S)
           != CURLE_OK;
    if (h->ca_file != NULL) {
        bad |= curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file) != CURLE_OK;
    }
    if (req->scheme != AKV_HTTP_HTTPS_ONLY) {
        /* IMDS and loopback must never go through a proxy */
        bad |= curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK;
    }
    /* through a proxy, only a CONNECT tunnel carries our own requests */
    bad |= curl_easy_setopt(c, CURLOPT_HTTPPROXYTUNNEL, 1L) != CURLE_OK;
    bad |=
        curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, tls_why) != CURLE_OK;
    bad |= curl_easy_setopt(
               c, CURLOPT_TIMEOUT_MS,
               (long)(deadline_ms - now_ms() > 1 ? deadline_ms - now_ms() : 1))
           != CURLE_OK;
    /* A black-holed address (SYN never answered) fails after this, not
     * after the whole attempt's timeout; the earlier of the two wins. */
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms)
           != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)AKV_HTTP_RECV_BUF)
           != CURLE_OK;
    if (bad) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    /* libcurl 7.88 creates each connection's SSL_CTX and does every TLS
     * read and write on the calling thread: with the private context as
     * this thread's default, the host's providers, default_properties and
     * OPENSSL_CONF do not apply to them. */
    hello_sent = false;
    prev = OSSL_LIB_CTX_set0_default(akv_ossl_libctx());
    cc = curl_easy_perform(c);
    (void)OSSL_LIB_CTX_set0_default(prev);
    /* TLS_WHY is the caller's stack: never written after this call */
    (void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (cc == CURLE_OK
        && (curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK
            || fd == CURL_SOCKET_BAD)) {
        cc = CURLE_COULDNT_CONNECT;
    }
    if (cc != CURLE_OK) {
        resp->curl_code = (int)cc;
        if (cc == CURLE_SSL_CONNECT_ERROR && !hello_sent) {
            /* refused before our ClientHello left: nothing the server did,
             * and a retry gets the same answer */
            resp->curl_code = AKV_HTTP_E_TLS_LOCAL;
        }
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    conn->fd = fd;
    *out = conn;
    conn = NULL;
    rv = CKR_OK;
out:
    conn_free(conn);
    return rv;
}

/* Sends N bytes of P on CONN before DEADLINE_MS. */
static CURLcode send_all(struct akv_conn *conn, const void *p, size_t n,
                         int64_t deadline_ms)
{
    size_t off = 0;

    while (off < n) {
        size_t k = 0;
        CURLcode cc =
            curl_easy_send(conn->c, (const uint8_t *)p + off, n - off, &k);

        if (cc == CURLE_AGAIN || (cc == CURLE_OK && k == 0)) {
            cc = wait_fd(conn->fd, POLLOUT, deadline_ms);
        } else if (cc != CURLE_OK) {
            return CURLE_SEND_ERROR;
        }
        if (cc != CURLE_OK) {
            return cc;
        }
        off += k;
    }
    return CURLE_OK;
}

/* Sends a request head over AKV_HTTP_OUT_BUF bytes (a large token) from a
 * secret buffer of up to AKV_HTTP_HEAD_MAX bytes; CURLE_OUT_OF_MEMORY when
 * it does not fit that either (or cannot be allocated). */
static CURLcode send_big_head(struct akv_conn *conn,
                              const struct akv_http_req *req,
                              const struct akv_h1_url *url,
                              const char *const *lines, size_t n_lines,
                              int64_t deadline_ms)
{
    struct akv_secret head = {0};
    bool post = req->method[0] == 'P';
    size_t n = 0;
    CURLcode cc = CURLE_OUT_OF_MEMORY;

    if (akv_secret_alloc(&head, AKV_HTTP_HEAD_MAX) == 0) {
        n = akv_h1_write_head((char *)head.data, head.len, req->method, url,
                              lines, n_lines, post, post ? req->body_len : 0);
    }
    if (n > 0) {
        cc = send_all(conn, head.data, n, deadline_ms);
    }
    akv_secret_clear(&head);
    return cc;
}

/*
 * Dead kept-alive connections. A pooled connection that a firewall or NAT
 * forgot (no FIN, no RST: its packets are dropped) looks healthy to
 * conn_alive and to the kernel: a request sent on it is buffered and never
 * answered, and would wait for the whole attempt's timeout. So on a REUSED
 * connection the wait for the FIRST byte of the answer ends ANSWER_MS after
 * the request went out (0 = no such limit); the exchange then reports
 * CURLE_OPERATION_TIMEDOUT with nothing received, akv_http_perform marks
 * resp->reused_unanswered and retry.c sends the request once more on a new
 * connection. A request on a new connection is never cut short, nor one
 * whose answer has started.
 */
static int64_t first_byte_deadline(long answer_ms, int64_t deadline_ms)
{
    int64_t t;

    if (answer_ms <= 0) {
        return deadline_ms;
    }
    t = now_ms() + answer_ms;
    return t < deadline_ms ? t : deadline_ms;
}

/*
 * One request and its answer on CONN (REQ split as URL, header LINES):
 * writes the head (and the body when both fit AKV_HTTP_OUT_BUF) in one
 * send, reads into a stack buffer and parses with P into RESP, all before
 * DEADLINE_MS; the first answer byte before ANSWER_MS after sending (ms, 0
 * = no such limit: see first_byte_deadline). Both buffers are wiped.
 * Returns the CURLcode of the exchange (CURLE_OK: P is AKV_H1_DONE;
 * CURLE_OUT_OF_MEMORY: the head is over AKV_HTTP_HEAD_MAX bytes, nothing
 * was sent).
 */
static CURLcode exchange(struct akv_conn *conn, const struct akv_http_req *req,
                         const struct akv_h1_url *url, const char *const *lines,
                         size_t n_lines, int64_t deadline_ms, long answer_ms,
                         struct akv_h1_parser *p, struct akv_http_resp *resp)
{
    int64_t first_ms = deadline_ms;

    char buf[AKV_HTTP_OUT_BUF];
    bool post = req->method[0] == 'P';
    size_t body_len = post ? req->body_len : 0;
    size_t n = akv_h1_write_head(buf, sizeof(buf), req->method, url, lines,
                                 n_lines, post, body_len);
    size_t used = n;
    CURLcode cc = CURLE_OK;
    OSSL_LIB_CTX *prev = OSSL_LIB_CTX_set0_default(akv_ossl_libctx());

    if (n == 0) {
        used = sizeof(buf); /* it holds a part of the head */
        cc = send_big_head(conn, req, url, lines, n_lines, deadline_ms);
        if (cc == CURLE_OK && body_len > 0) {
            cc = send_all(conn, req->body, body_len, deadline_ms);
        }
    } else if (body_len > 0 && body_len <= sizeof(buf) - n) {
        memcpy(buf + n, req->body, body_len);
        used = n + body_len;
        cc = send_all(conn, buf, used, deadline_ms);
    } else {
        cc = send_all(conn, buf, n, deadline_ms);
        if (cc == CURLE_OK && body_len > 0) {
            cc = send_all(conn, req->body, body_len, deadline_ms);
        }
    }
    akv_secret_wipe(buf, used);
    used = 0;
    akv_h1_parser_init(p);
    /* nothing of the answer can be buffered in TLS yet: wait for the
     * socket before the first read rather than fail one read first */
    first_ms = first_byte_deadline(answer_ms, deadline_ms);
    if (cc == CURLE_OK) {
        cc = wait_fd(conn->fd, POLLIN, first_ms);
    }
    while (cc == CURLE_OK && p->state != AKV_H1_DONE) {
        size_t k = 0;

        cc = curl_easy_recv(conn->c, buf, sizeof(buf), &k);
        if (cc == CURLE_AGAIN) {
            cc = wait_fd(conn->fd, POLLIN,
                         p->received == 0 ? first_ms : deadline_ms);
            continue;
        }
        if (cc != CURLE_OK) {
            break;
        }
        if (k > used) {
            used = k;
        }
        if (k == 0) {
            if (akv_h1_feed_eof(p) != AKV_H1_DONE) {
                cc = p->received == 0 ? CURLE_GOT_NOTHING : CURLE_PARTIAL_FILE;
            }
            break;
        }
        if (akv_h1_feed(p, buf, k, resp) == AKV_H1_ERROR) {
            cc = resp->too_big ? CURLE_WRITE_ERROR : CURLE_WEIRD_SERVER_REPLY;
        }
    }
    (void)OSSL_LIB_CTX_set0_default(prev);
    akv_secret_wipe(buf, used);
    /* an answer cut off mid-line (timeout, reset) leaves that part in the
     * parser's line buffer: akv_h1_feed only wipes it on DONE or ERROR */
    akv_secret_wipe(p->line, p->line_len);
    p->line_len = 0;
    return cc;
}

CK_RV akv_http_perform(struct akv_http *h, const struct akv_http_req *req,
                       long timeout_ms, struct akv_http_resp *resp)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    struct akv_conn *conn = NULL;
    struct akv_h1_url url;
    struct akv_h1_parser parser;
    struct akv_h1_parser *p = &parser;
    const char *lines[AKV_HTTP_MAX_HDRS];
    size_t n_lines = 0;
    char tls_why[CURL_ERROR_SIZE] = "";
    char ct[128];
    int64_t t0 = now_ms();
    int64_t deadline;
    CURLcode cc = CURLE_OK;
    bool fresh = false;
    bool post;
    bool del; /* Key Vault "Delete Key": no body */

    if (resp != NULL) {
        akv_http_resp_clear(resp);
    }
    if (h == NULL || req == NULL || resp == NULL || req->url == NULL
        || req->method == NULL || req->log_path == NULL || timeout_ms <= 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    post = strcmp(req->method, "POST") == 0;
    del = strcmp(req->method, "DELETE") == 0;
    if (!post && !del && strcmp(req->method, "GET") != 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = check_target(req, &url);
    if (rv != CKR_OK) {
        goto out;
    }
    if (akv_ossl_libctx() == NULL) {
        AKV_LOG_ERR("cannot create the private OpenSSL library context");
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    lines[n_lines++] = "User-Agent: akv-pkcs11/0.1";
    lines[n_lines++] = "Accept: application/json";
    if (post) {
        (void)snprintf(ct, sizeof(ct), "Content-Type: %s",
                       req->content_type != NULL ? req->content_type
                                                 : "application/json");
        lines[n_lines++] = ct;
    }
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        if (n_lines == AKV_HTTP_MAX_HDRS) {
            AKV_LOG_DEBUG("more than %d header lines for %s", AKV_HTTP_MAX_HDRS,
                          req->log_path);
            rv = CKR_ARGUMENTS_BAD;
            goto out;
        }
        lines[n_lines++] = req->headers[i];
    }
    if (req->secret_header != NULL && req->secret_header->data != NULL) {
        if (n_lines == AKV_HTTP_MAX_HDRS) {
            rv = CKR_ARGUMENTS_BAD;
            goto out;
        }
        lines[n_lines++] = (const char *)req->secret_header->data;
    }
    for (size_t i = 0; i < n_lines; i++) {
        /* no CR/LF: nothing a header value holds can start a new line */
        if (!akv_h1_field_ok(lines[i])) {
            AKV_LOG_DEBUG("refusing a malformed header line for %s",
                          req->log_path);
            rv = CKR_ARGUMENTS_BAD;
            goto out;
        }
    }

    deadline = t0 + timeout_ms;
    akv_h1_parser_init(p); /* read below even when no exchange ran */
    /* req->fresh_connect: retry.c's resend after a reused connection gave
     * no answer (see first_byte_deadline) */
    conn = req->fresh_connect
               ? NULL
               : take_conn(h, url.origin, url.origin_len, req->scheme);
    for (;;) {
        if (conn == NULL) {
            fresh = true;
            rv = conn_open(h, req, &url, deadline, resp, tls_why, &conn);
            if (rv != CKR_OK) {
                cc = (CURLcode)resp->curl_code;
                break;
            }
        }
        cc = exchange(conn, req, &url, lines, n_lines, deadline,
                      fresh ? 0 : h->reuse_answer_ms, p, resp);
        if (cc == CURLE_OUT_OF_MEMORY) {
            AKV_LOG_DEBUG("request head over %d bytes for %s",
                          AKV_HTTP_HEAD_MAX, req->log_path);
            rv = CKR_ARGUMENTS_BAD;
            break;
        }
        rv = cc == CURLE_OK ? CKR_OK : CKR_DEVICE_ERROR;
        if (cc == CURLE_OK || fresh || p->received > 0
            || cc == CURLE_OPERATION_TIMEDOUT) {
            break;
        }
        /* a kept-alive connection the peer closed while it idled, found
         * on first use: the request never arrived, send it again on a new
         * connection (as libcurl does) */
        AKV_LOG_DEBUG("HTTP %s %s: pooled connection is gone (%s), "
                      "reconnecting",
                      req->method, req->log_path, curl_easy_strerror(cc));
        conn_free(conn);
        conn = NULL;
        akv_http_resp_clear(resp);
    }
    resp->curl_code = rv == CKR_OK ? CURLE_OK : resp->curl_code;
    if (rv == CKR_DEVICE_ERROR && cc != CURLE_OK && resp->curl_code == 0) {
        resp->curl_code = (int)cc;
    }
    resp->elapsed_ms = (long)(now_ms() - t0);
    resp->reused_unanswered = rv != CKR_OK && !fresh
                              && cc == CURLE_OPERATION_TIMEDOUT
                              && p->received == 0;
    if (resp->reused_unanswered && now_ms() < deadline) {
        /* our cut, not the caller's: reported as the timeout it stands
         * for, and said so in the log line below */
        (void)snprintf(tls_why, sizeof(tls_why),
                       "no answer on a reused connection within %ld ms",
                       h->reuse_answer_ms);
    }
    if (rv != CKR_OK) {
        /* a partial answer is no answer */
        resp->status = 0;
        akv_secret_clear(&resp->body);
    }
    AKV_LOG_DEBUG("HTTP %s %s -> %ld%s%s%s%s in %ld ms (%s connection)%s%s",
                  req->method, req->log_path, resp->status,
                  rv != CKR_OK ? " " : "",
                  rv != CKR_OK ? akv_http_strerror(resp->curl_code) : "",
                  tls_why[0] != '\0' ? ": " : "", tls_why, resp->elapsed_ms,
                  fresh ? "new" : "reused",
                  resp->request_id[0] ? " request-id " : "", resp->request_id);
    if (conn != NULL && rv == CKR_OK && akv_h1_reusable(p)) {
        give_conn(h, conn);
        conn = NULL;
    }
out:
    conn_free(conn);
    return rv;
}
