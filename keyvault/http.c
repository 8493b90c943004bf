/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
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

/* Idle shares (each with its keep-alive connections) kept for the next
 * requests: as many as threads were in flight at once, up to this bound;
 * more concurrent requests still run, on shares freed when they end. */
#define POOL_SIZE 64
/* libcurl's receive buffer per request (its default is 16 KiB); larger
 * answers arrive in more reads. */
#define AKV_HTTP_RECV_BUF 4096
/* Keep-alive probes of idle pooled connections, and the longest idle time
 * after which a pooled connection is still reused (seconds). */
#define AKV_HTTP_KEEPIDLE_S  30L
#define AKV_HTTP_KEEPINTVL_S 10L
#define AKV_HTTP_MAXAGE_S    60L

/*
 * Keep-alive without keeping secrets: each request runs on a fresh easy
 * handle that is cleaned up when the request ends, so libcurl's request,
 * header and receive buffers (which held the bearer token, the request body
 * and the answer) are released - and wiped, through the allocator kv.c
 * installs with curl_global_init_mem - after every call. The connections
 * live in a share object (CURL_LOCK_DATA_CONNECT, plus the DNS cache and TLS
 * sessions) that survives the handle. A share is used by one thread at a
 * time (taken from and returned to this pool like the easy handles were
 * before), which is why it needs no lock callbacks and why sharing the
 * connection cache is safe: libcurl documents that one connection cache
 * must not be used by concurrent threads.
 */
struct akv_http {
    pthread_mutex_t lock;
    CURLSH *idle[POOL_SIZE]; /* LOCKED by lock */
    size_t n_idle;           /* LOCKED by lock */
    char *ca_file;
    pid_t pid; /* a forked child must not reuse the parent's connections */
    long connect_timeout_ms; /* 0 = only the attempt's timeout applies */
    long reuse_answer_ms;    /* 0 = a reused connection waits like a new one */
};

static CURLSH *new_share(void)
{
    CURLSH *sh = curl_share_init();

    if (sh == NULL) {
        return NULL;
    }
    if (curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT)
            != CURLSHE_OK
        || curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS)
               != CURLSHE_OK
        || curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)
               != CURLSHE_OK) {
        (void)curl_share_cleanup(sh);
        return NULL;
    }
    return sh;
}

/* Closes the connections of SH (their TLS state is freed with them). */
static void free_share(CURLSH *sh)
{
    if (sh != NULL) {
        (void)curl_share_cleanup(sh);
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
            free_share(h->idle[i]);
        }
    }
    (void)pthread_mutex_destroy(&h->lock);
    free(h->ca_file);
    free(h);
}

/* A share (connection cache) for one request; NULL only on allocation
 * failure. A forked child starts with fresh connections. */
static CURLSH *take_share(struct akv_http *h)
{
    CURLSH *sh = NULL;

    if (h->pid == getpid()) {
        pthread_mutex_lock(&h->lock);
        if (h->n_idle > 0) {
            sh = h->idle[--h->n_idle];
        }
        pthread_mutex_unlock(&h->lock);
    }
    return sh != NULL ? sh : new_share();
}

static void give_share(struct akv_http *h, CURLSH *sh)
{
    bool kept = false;

    if (sh == NULL) {
        return;
    }
    if (h->pid == getpid()) {
        pthread_mutex_lock(&h->lock);
        if (h->n_idle < POOL_SIZE) {
            h->idle[h->n_idle++] = sh;
            kept = true;
        }
        pthread_mutex_unlock(&h->lock);
    }
    if (!kept) {
        free_share(sh);
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

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct akv_http_resp *resp = userdata;
    size_t n = size * nmemb;

    if (akv_secret_append(&resp->body, ptr, n, AKV_HTTP_BODY_MAX) != 0) {
        resp->too_big = resp->body.len + n > AKV_HTTP_BODY_MAX;
        akv_secret_wipe(ptr, n);
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    /* PTR is libcurl's receive buffer, which it keeps until the handle is
     * freed: wipe the copy we now own (answers hold tokens and data keys),
     * also when the host's allocator does not wipe freed blocks */
    akv_secret_wipe(ptr, n);
    return n;
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

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    size_t n = size * nmemb;

    akv_http_header_line(userdata, ptr, n);
    return n;
}

/* Applies REQ->scheme before anything is sent. */
static CK_RV check_target(const struct akv_http_req *req)
{
    CK_RV rv = CKR_ARGUMENTS_BAD;
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;

    if (u == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, req->url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        AKV_LOG_DEBUG("refusing malformed URL for %s", req->log_path);
        goto out;
    }
    if (strcasecmp(scheme, "https") == 0) {
        rv = CKR_OK;
    } else if (strcasecmp(scheme, "http") == 0) {
        if (req->scheme == AKV_HTTP_PLAIN_OK
            || (req->scheme == AKV_HTTP_LOOPBACK_OK
                && akv_kvid_host_is_loopback(host, strlen(host)))) {
            rv = CKR_OK;
        } else {
            AKV_LOG_DEBUG("refusing http:// to %s for %s: https is required "
                          "(http only to loopback with allow_http_loopback)",
                          host, req->log_path);
        }
    } else {
        AKV_LOG_DEBUG("refusing scheme %s for %s", scheme, req->log_path);
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rv;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Request header lines are handed to libcurl as a list of nodes on the
 * caller's stack pointing at the caller's strings (struct curl_slist is
 * public, and libcurl only reads the list): no per-request copy - in
 * particular none of the ~1.1 KB bearer token, which stays in its secret
 * buffer - and no allocation. At most this many lines per request. */
#define AKV_HTTP_MAX_HDRS 16

/* Appends LINE to the NODES list of *N entries; false when full. */
static bool hdr_add(struct curl_slist *nodes, size_t *n, const char *line)
{
    if (*n >= AKV_HTTP_MAX_HDRS) {
        return false;
    }
    nodes[*n].data = (char *)(uintptr_t)line;
    nodes[*n].next = NULL;
    if (*n > 0) {
        nodes[*n - 1].next = &nodes[*n];
    }
    (*n)++;
    return true;
}

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

/*
 * Dead kept-alive connections. A pooled connection that a firewall or NAT
 * forgot (no FIN, no RST: its packets are dropped) looks healthy to libcurl
 * and to the kernel: a request sent on it is buffered and never answered,
 * and would wait for the whole attempt's timeout. So a request on a REUSED
 * connection that has received no byte of an answer REUSE_ANSWER_MS after it
 * was sent is given up (libcurl closes that connection) and reported as
 * resp->reused_unanswered; retry.c sends it once more on a new connection.
 * A request on a new connection is never cut short: its answer may take the
 * whole timeout. Nothing here keeps a lock or sleeps.
 */
struct reuse_watch {
    CURL *c;
    long limit_ms;   /* h->reuse_answer_ms; 0 = never cut short */
    int64_t sent_ms; /* when the request went out; 0 = not yet */
    bool reused;     /* ... on a connection an earlier request opened */
    bool gave_up;
};

/* Whether any byte of an answer arrived: a header line or body bytes. */
static bool answer_started(CURL *c, curl_off_t body_bytes)
{
    long hdr = 0;

    (void)curl_easy_getinfo(c, CURLINFO_HEADER_SIZE, &hdr);
    return hdr > 0 || body_bytes > 0;
}

/* CURLOPT_PREREQFUNCTION: the connection is ready (new or reused) and the
 * request is about to be sent; runs again when libcurl itself resends the
 * request on a new connection (a reused one it found closed). */
static int on_prereq(void *userp, char *ip, char *local_ip, int port,
                     int local_port)
{
    struct reuse_watch *w = userp;
    long opened = 0;

    (void)ip;
    (void)local_ip;
    (void)port;
    (void)local_port;
    /* the connections this transfer opened so far */
    (void)curl_easy_getinfo(w->c, CURLINFO_NUM_CONNECTS, &opened);
    w->reused = opened == 0;
    w->sent_ms = now_ms();
    return CURL_PREREQFUNC_OK;
}

/* CURLOPT_XFERINFOFUNCTION: called on every pass of the transfer loop, at
 * least about once a second while the request waits for its answer. */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    struct reuse_watch *w = userp;

    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    if (!w->reused || w->sent_ms == 0 || now_ms() - w->sent_ms < w->limit_ms
        || answer_started(w->c, dlnow)) {
        return 0;
    }
    w->gave_up = true;
    return 1; /* CURLE_ABORTED_BY_CALLBACK */
}

/* Arms the watch on C for this request: the prereq callback always (to
 * know whether the connection was reused), the progress callback only when
 * a limit shorter than the attempt's timeout is set. Every option is set
 * either way, so a reused easy handle keeps no pointer to an older watch.
 * Returns nonzero when an option was refused. */
static int reuse_watch_arm(CURL *c, struct reuse_watch *w, long limit_ms,
                           long timeout_ms, bool fresh)
{
    int bad = 0;

    *w = (struct reuse_watch){.c = c, .limit_ms = limit_ms};
    bad |=
        curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_PREREQDATA, w) != CURLE_OK;
    bad |=
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, w) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOPROGRESS,
                            limit_ms > 0 && limit_ms < timeout_ms ? 0L : 1L)
           != CURLE_OK;
    return bad;
}

/* After the transfer: a request on a reused connection that was given up,
 * or timed out, without one byte of an answer. Call before the body is
 * cleared. */
static bool reuse_watch_unanswered(const struct reuse_watch *w, CURLcode cc,
                                   size_t body_len)
{
    return w->reused && w->sent_ms != 0
           && (w->gave_up || cc == CURLE_OPERATION_TIMEDOUT)
           && !answer_started(w->c, (curl_off_t)body_len);
}

CK_RV akv_http_perform(struct akv_http *h, const struct akv_http_req *req,
                       long timeout_ms, struct akv_http_resp *resp)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    CURL *c = NULL;
    CURLSH *sh = NULL;
    OSSL_LIB_CTX *libctx = akv_ossl_libctx();
    OSSL_LIB_CTX *prev;
    char tls_why[CURL_ERROR_SIZE] = "";
    struct reuse_watch watch;
    long new_conns = -1;
    struct curl_slist hdrs[AKV_HTTP_MAX_HDRS];
    size_t n_hdrs = 0;
    char ct[128];
    int64_t t0 = now_ms();
    CURLcode cc = CURLE_OK;
    int bad = 0;
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
    rv = check_target(req);
    if (rv != CKR_OK) {
        goto out;
    }
    if (libctx == NULL) {
        AKV_LOG_ERR("cannot create the private OpenSSL library context");
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    sh = take_share(h);
    c = sh != NULL ? curl_easy_init() : NULL;
    if (c == NULL) {
        goto out;
    }
    bad |= !hdr_add(hdrs, &n_hdrs, "Accept: application/json");
    /* no 100-continue round trip for small JSON bodies */
    bad |= !hdr_add(hdrs, &n_hdrs, "Expect:");
    if (post) {
        (void)snprintf(ct, sizeof(ct), "Content-Type: %s",
                       req->content_type != NULL ? req->content_type
                                                 : "application/json");
        bad |= !hdr_add(hdrs, &n_hdrs, ct);
    }
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        bad |= !hdr_add(hdrs, &n_hdrs, req->headers[i]);
    }
    if (req->secret_header != NULL && req->secret_header->data != NULL) {
        bad |= !hdr_add(hdrs, &n_hdrs, (const char *)req->secret_header->data);
    }
    if (bad) {
        AKV_LOG_DEBUG("more than %d header lines for %s", AKV_HTTP_MAX_HDRS,
                      req->log_path);
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }

    bad |= curl_easy_setopt(c, CURLOPT_URL, req->url) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                            req->scheme == AKV_HTTP_HTTPS_ONLY ? "https"
                                                               : "http,https")
           != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
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
     * connection idle longer than AKV_HTTP_MAXAGE_S is not reused at all.
     * A reused connection the peer closed (vault restart, RST) is retried
     * by libcurl on a fresh connection within the same call. */
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, AKV_HTTP_KEEPIDLE_S)
           != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, AKV_HTTP_KEEPINTVL_S)
           != CURLE_OK;
    bad |=
        curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, AKV_HTTP_MAXAGE_S) != CURLE_OK;
    if (h->ca_file != NULL) {
        bad |= curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file) != CURLE_OK;
    }
    if (req->scheme != AKV_HTTP_HTTPS_ONLY) {
        /* IMDS and loopback must never go through a proxy */
        bad |= curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK;
    }
    bad |= curl_easy_setopt(c, CURLOPT_SHARE, sh) != CURLE_OK;
    if (del) {
        bad |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE") != CURLE_OK;
    }
    bad |=
        curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, tls_why) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK;
    /* A black-holed address (SYN never answered) fails after this, not
     * after the whole attempt's timeout; the earlier of the two wins. 0
     * restores curl's default on a pooled handle. */
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms)
           != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "akv-pkcs11/0.1") != CURLE_OK;
    /* Vault answers are a few hundred bytes: a 16 KiB receive buffer per
     * request is 16 KiB to allocate and wipe (AKV_HTTP_RECV_BUF) */
    bad |= curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)AKV_HTTP_RECV_BUF)
           != CURLE_OK;
    /* likewise its 64 KiB upload buffer (16 KiB is libcurl's minimum) */
    bad |= curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, resp) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HEADERDATA, resp) != CURLE_OK;
    bad |= reuse_watch_arm(c, &watch, h->reuse_answer_ms, timeout_ms,
                           req->fresh_connect);
    if (post) {
        /* POSTFIELDS is not copied by curl: the body stays in the caller's
         * secret buffer (never COPYPOSTFIELDS). */
        bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t)req->body_len)
               != CURLE_OK;
        bad |=
            curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                             req->body != NULL ? (const char *)req->body : "")
            != CURLE_OK;
    } else {
        bad |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    if (bad) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }

    /* libcurl 7.88 creates each connection's SSL_CTX and does every TLS
     * read and write inside curl_easy_perform, on this thread: with the
     * private context as this thread's default, the host's providers,
     * default_properties and OPENSSL_CONF do not apply to them. */
    hello_sent = false;
    prev = OSSL_LIB_CTX_set0_default(libctx);
    cc = curl_easy_perform(c);
    (void)OSSL_LIB_CTX_set0_default(prev);
    resp->curl_code = (int)cc;
    if (cc == CURLE_SSL_CONNECT_ERROR && !hello_sent) {
        /* refused before our ClientHello left: nothing the server did,
         * and a retry gets the same answer */
        resp->curl_code = AKV_HTTP_E_TLS_LOCAL;
    }
    (void)curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &new_conns);
    resp->elapsed_ms = (long)(now_ms() - t0);
    resp->reused_unanswered =
        cc != CURLE_OK && reuse_watch_unanswered(&watch, cc, resp->body.len);
    if (watch.gave_up) {
        /* our cut, not the caller's: report it as the timeout it stands
         * for (and say so in the log line below) */
        cc = CURLE_OPERATION_TIMEDOUT;
        resp->curl_code = (int)cc;
        (void)snprintf(tls_why, sizeof(tls_why),
                       "no answer on a reused connection within %ld ms",
                       h->reuse_answer_ms);
    }
    if (cc == CURLE_OK) {
        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
        rv = CKR_OK;
    } else {
        /* a partial answer is no answer */
        resp->status = 0;
        akv_secret_clear(&resp->body);
        rv = CKR_DEVICE_ERROR;
    }
    AKV_LOG_DEBUG("HTTP %s %s -> %ld%s%s%s%s in %ld ms (%s connection)%s%s",
                  req->method, req->log_path, resp->status,
                  cc != CURLE_OK ? " " : "",
                  cc != CURLE_OK ? akv_http_strerror(resp->curl_code) : "",
                  tls_why[0] != '\0' ? ": " : "", tls_why, resp->elapsed_ms,
                  new_conns > 0 ? "new" : "reused",
                  resp->request_id[0] ? " request-id " : "", resp->request_id);
out:
    /* frees (and, with kv.c's allocator, wipes) the handle's buffers; the
     * connection stays in the share */
    curl_easy_cleanup(c);
    give_share(h, sh);
    return rv;
}
