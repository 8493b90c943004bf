/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "emu.h"

struct listener {
    emu_handler_fn fn;
    void *ctx;
    int tls;
};

struct conn_ctx {
    char *body;
    size_t len, cap;
    int too_big;
    int hung;
    struct conn_ctx *next_hung;
    int suspended; /* counted in n_suspended until handled after resume */
    struct MHD_Connection *conn;
    /* Delayed answers: DELAYED 1 while suspended, 2 once resumed (the
     * handler is called again and sends SAVED) */
    int delayed;
    long long due_ms;
    struct emu_resp saved;
    struct conn_ctx *next_delayed;
};

/* Connections parked by a --hang fault; resumed (and then closed) at
 * shutdown or on "fault clear" so MHD_stop_daemon never sees them. */
static pthread_mutex_t hung_mu = PTHREAD_MUTEX_INITIALIZER;
static struct conn_ctx *hung_list;

/* libmicrohttpd aborts the process when MHD_stop_daemon finds a suspended
 * connection, and MHD_resume_connection only asks the daemon's threads to
 * resume it later. So shutdown (emu_http_stop) stops new suspensions,
 * resumes every parked connection and waits, bounded, until each has been
 * handled once more: n_suspended counts the parked ones (atomic). */
static int n_suspended;
static int stopping;

static void park(struct MHD_Connection *c, struct conn_ctx *cc)
{
    cc->suspended = 1;
    __atomic_add_fetch(&n_suspended, 1, __ATOMIC_ACQ_REL);
    MHD_suspend_connection(c);
}

static void unparked(struct conn_ctx *cc)
{
    if (cc->suspended) {
        cc->suspended = 0;
        __atomic_sub_fetch(&n_suspended, 1, __ATOMIC_ACQ_REL);
    }
}

/* Listeners are kept for the lifetime of the process. */
static struct listener *listeners[256];
static size_t nlisteners;

static void add_common_headers(struct MHD_Response *r, const char *ctype)
{
    char rid[EMU_GUID_LEN + 1];

    emu_guid(rid);
    if (ctype) {
        MHD_add_response_header(r, "Content-Type", ctype);
    }
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "x-ms-request-id", rid);
    MHD_add_response_header(r, "x-ms-keyvault-service-version", "1.9.2773.1");
    MHD_add_response_header(r, "x-ms-keyvault-region", "local");
    /* Present on every real Key Vault answer (protocol.md 1.1); the peer is
     * always loopback here. */
    MHD_add_response_header(r, "x-ms-keyvault-network-info",
                            "conn_type=Ipv4;addr=127.0.0.1;"
                            "act_addr_fam=InterNetwork;");
    MHD_add_response_header(r, "Strict-Transport-Security",
                            "max-age=31536000;includeSubDomains");
}

/* Bumped by emu_http_release_hung (fault clear, shutdown): every trickle
 * started under an older generation ends at its next byte slice. */
static unsigned trickle_gen;

/* A trickled body is capped so that a forgotten fault cannot keep a pool
 * thread forever. */
#define TRICKLE_MAX_MS   120000
#define TRICKLE_SLICE_MS 50

/* Body sent by a callback: --close (first half, then a reset) and/or
 * --trickle-ms (one byte per trickle_ms ms). */
struct partial {
    char *body;
    size_t len;   /* Content-Length announced */
    size_t limit; /* bytes actually sent: len, or len / 2 for --close */
    int trickle_ms;
    int fd; /* connection socket, watched for the peer going away */
    unsigned gen;
    long long deadline_ms;
};

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps MS in slices on the connection socket; -1 when the peer closed,
 * the trickle was cancelled or its 120 s cap is reached. Blocking here is
 * deliberate: MHD's internal polling mode offers no "call me later". */
/*
 * Delayed answers (--delay-ms): the answer is computed at once, the
 * connection suspended (MHD_suspend_connection) and put on delayed_list; one
 * timer thread resumes each connection when it is due, and MHD calls the
 * handler again, which sends the saved answer. Sleeping in the handler
 * instead would hold the pool thread, and every connection sharing it would
 * wait too (8 concurrent 100 ms requests took up to 800 ms).
 */
static pthread_mutex_t delay_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t delay_cv = PTHREAD_COND_INITIALIZER;
static struct conn_ctx *delayed_list; /* LOCKED by delay_mu */
static pthread_once_t delay_once = PTHREAD_ONCE_INIT;
static int delay_thread_ok;

static void *delay_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&delay_mu);
    for (;;) {
        long long now = mono_ms(), next = now + 1000;
        struct conn_ctx **pp = &delayed_list;
        struct timespec ts;

        while (*pp) {
            struct conn_ctx *cc = *pp;

            if (cc->due_ms <= now) {
                *pp = cc->next_delayed;
                cc->delayed = 2;
                MHD_resume_connection(cc->conn);
            } else {
                next = cc->due_ms < next ? cc->due_ms : next;
                pp = &cc->next_delayed;
            }
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)((next - now) / 1000);
        ts.tv_nsec += (long)((next - now) % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&delay_cv, &delay_mu, &ts);
    }
    return NULL;
}

static void delay_start(void)
{
    pthread_t t;

    if (pthread_create(&t, NULL, delay_main, NULL) == 0) {
        (void)pthread_detach(t);
        delay_thread_ok = 1;
    }
}

/* Parks C until DELAY_MS from now with RS saved; 0, or -1 when no timer
 * thread could be started (the caller then answers at once). */
static int delay_park(struct MHD_Connection *c, struct conn_ctx *cc,
                      struct emu_resp *rs)
{
    (void)pthread_once(&delay_once, delay_start);
    if (!delay_thread_ok || __atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        return -1;
    }
    pthread_mutex_lock(&delay_mu);
    cc->saved = *rs;
    cc->delayed = 1;
    cc->due_ms = mono_ms() + rs->delay_ms;
    cc->next_delayed = delayed_list;
    delayed_list = cc;
    park(c, cc);
    pthread_cond_signal(&delay_cv);
    pthread_mutex_unlock(&delay_mu);
    return 0;
}

static int trickle_wait(struct partial *p)
{
    long long end = mono_ms() + p->trickle_ms, now;

    for (;;) {
        struct pollfd pfd = {.fd = p->fd, .events = POLLRDHUP};
        long long left;

        if (__atomic_load_n(&trickle_gen, __ATOMIC_RELAXED) != p->gen) {
            return -1;
        }
        now = mono_ms();
        if (now >= p->deadline_ms) {
            return -1;
        }
        left = end - now;
        if (left <= 0) {
            return 0;
        }
        if (left > TRICKLE_SLICE_MS) {
            left = TRICKLE_SLICE_MS;
        }
        if (p->fd < 0) {
            usleep((useconds_t)left * 1000);
        } else if (poll(&pfd, 1, (int)left) > 0
                   && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            return -1;
        }
    }
}

static ssize_t partial_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct partial *p = cls;
    size_t n;

    if (pos >= p->limit) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = p->limit - (size_t)pos;
    if (p->trickle_ms > 0) {
        if (trickle_wait(p) != 0) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        n = 1;
    }
    if (n > max) {
        n = max;
    }
    memcpy(buf, p->body + pos, n);
    return (ssize_t)n;
}

static void partial_free(void *cls)
{
    struct partial *p = cls;

    if (p->body) {
        OPENSSL_cleanse(p->body, p->len);
    }
    free(p->body);
    free(p);
}

static enum MHD_Result queue(struct MHD_Connection *c, struct emu_resp *rs)
{
    struct MHD_Response *r = NULL;
    enum MHD_Result ret = MHD_NO;

    if ((rs->close_mid || rs->trickle_ms > 0) && rs->len > 0) {
        struct partial *p = calloc(1, sizeof(*p));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

        if (!p) {
            goto out;
        }
        p->body = rs->body;
        p->len = rs->len;
        p->limit = rs->close_mid ? rs->len / 2 : rs->len;
        p->trickle_ms = rs->trickle_ms;
        p->fd = ci ? ci->connect_fd : -1;
        p->gen = __atomic_load_n(&trickle_gen, __ATOMIC_RELAXED);
        p->deadline_ms = mono_ms() + TRICKLE_MAX_MS;
        rs->body = NULL;
        r = MHD_create_response_from_callback(p->len, 4096, partial_reader, p,
                                              partial_free);
        if (!r) {
            partial_free(p);
        }
    } else {
        r = MHD_create_response_from_buffer(
            rs->len, rs->body ? rs->body : (void *)"", MHD_RESPMEM_MUST_COPY);
    }
    if (!r) {
        goto out;
    }
    add_common_headers(r, rs->len || rs->close_mid ? rs->ctype : NULL);
    if (rs->www_auth[0]) {
        MHD_add_response_header(r, "WWW-Authenticate", rs->www_auth);
    }
    if (rs->retry_after >= 0) {
        char ra[32];

        snprintf(ra, sizeof(ra), "%d", rs->retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    ret = MHD_queue_response(c, (unsigned)rs->status, r);
    MHD_destroy_response(r);
out:
    /* Unwrap/decrypt answers carry key bytes: wipe our copy (MHD has its
     * own). */
    if (rs->body) {
        OPENSSL_cleanse(rs->body, rs->len);
    }
    free(rs->body);
    rs->body = NULL;
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    struct listener *l = cls;
    struct conn_ctx *cc = *con_cls;
    struct emu_req rq;
    struct emu_resp rs;

    if (!cc) {
        const char *cl;

        cc = calloc(1, sizeof(*cc));
        if (!cc) {
            return MHD_NO;
        }
        cc->conn = c;
        *con_cls = cc;
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > EMU_BODY_MAX) {
            cc->too_big = 1;
        }
        return MHD_YES;
    }
    unparked(cc);
    if (cc->hung) {
        /* Resumed at shutdown / fault clear: drop the connection. */
        return MHD_NO;
    }
    if (cc->delayed == 2) {
        cc->delayed = 0;
        rs = cc->saved;
        memset(&cc->saved, 0, sizeof(cc->saved));
        return queue(c, &rs);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (cc->too_big || cc->len + n > EMU_BODY_MAX) {
            cc->too_big = 1;
            return MHD_YES;
        }
        if (cc->len + n + 1 > cc->cap) {
            size_t ncap = (cc->len + n + 1) * 2;
            char *nb;

            if (ncap > EMU_BODY_MAX + 1) {
                ncap = EMU_BODY_MAX + 1;
            }
            nb = realloc(cc->body, ncap);
            if (!nb) {
                return MHD_NO;
            }
            cc->body = nb;
            cc->cap = ncap;
        }
        memcpy(cc->body + cc->len, upload_data, n);
        cc->len += n;
        cc->body[cc->len] = 0;
        return MHD_YES;
    }
    memset(&rs, 0, sizeof(rs));
    rs.retry_after = -1;
    rs.ctype = "application/json; charset=utf-8";
    if (cc->too_big) {
        emu_resp_kv_error(&rs, 413, "RequestTooLarge",
                          "The request body exceeds 1048576 bytes.", NULL);
        return queue(c, &rs);
    }
    memset(&rq, 0, sizeof(rq));
    rq.conn = c;
    rq.method = method;
    rq.url = url;
    rq.body = cc->body ? cc->body : "";
    rq.len = cc->len;
    rq.ctx = l->ctx;
    rq.is_tls = l->tls;
    l->fn(&rq, &rs);
    if (rs.hang) {
        free(rs.body);
        if (__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
            return MHD_NO; /* shutting down: close instead of parking */
        }
        pthread_mutex_lock(&hung_mu);
        cc->hung = 1;
        cc->next_hung = hung_list;
        hung_list = cc;
        park(c, cc);
        pthread_mutex_unlock(&hung_mu);
        return MHD_YES;
    }
    if (rs.status == 0) {
        rs.status = 500;
    }
    if (rs.delay_ms > 0 && delay_park(c, cc, &rs) == 0) {
        return MHD_YES;
    }
    return queue(c, &rs);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct conn_ctx *cc = *con_cls;

    if (!cc) {
        return;
    }
    unparked(cc);
    pthread_mutex_lock(&hung_mu);
    if (cc->hung) {
        struct conn_ctx **pp;

        for (pp = &hung_list; *pp; pp = &(*pp)->next_hung) {
            if (*pp == cc) {
                *pp = cc->next_hung;
                break;
            }
        }
    }
    pthread_mutex_unlock(&hung_mu);
    pthread_mutex_lock(&delay_mu);
    if (cc->delayed == 1) {
        struct conn_ctx **pp;

        for (pp = &delayed_list; *pp; pp = &(*pp)->next_delayed) {
            if (*pp == cc) {
                *pp = cc->next_delayed;
                break;
            }
        }
    }
    pthread_mutex_unlock(&delay_mu);
    if (cc->saved.body) {
        OPENSSL_cleanse(cc->saved.body, cc->saved.len);
        free(cc->saved.body);
    }
    free(cc->body);
    free(cc);
    *con_cls = NULL;
}

void emu_http_release_hung(void)
{
    struct conn_ctx *cc;

    __atomic_add_fetch(&trickle_gen, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&hung_mu);
    for (cc = hung_list; cc; cc = cc->next_hung) {
        MHD_resume_connection(cc->conn);
    }
    hung_list = NULL;
    pthread_mutex_unlock(&hung_mu);
    /* delayed answers leave now: MHD_stop_daemon must find no suspended
     * connection */
    pthread_mutex_lock(&delay_mu);
    for (cc = delayed_list; cc; cc = cc->next_delayed) {
        cc->delayed = 2;
        MHD_resume_connection(cc->conn);
    }
    delayed_list = NULL;
    pthread_mutex_unlock(&delay_mu);
}

/* libmicrohttpd hands us its own format strings. */
__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    vfprintf(stderr, fmt, ap);
}

struct MHD_Daemon *emu_http_start(const char *host, int port, int tls,
                                  emu_handler_fn fn, void *ctx)
{
    struct MHD_Daemon *d = NULL;
    struct listener *l = NULL;
    struct sockaddr_in sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL
                     | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

    if (nlisteners >= sizeof(listeners) / sizeof(listeners[0])) {
        goto out;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        goto out;
    }
    l->fn = fn;
    l->ctx = ctx;
    l->tls = tls;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "akv-emulator: bad host %s\n", host);
        goto out;
    }
    if (tls) {
        flags |= MHD_USE_TLS;
        d = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, handler, l,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&sa, MHD_OPTION_HTTPS_MEM_KEY, emu.tls_key_pem,
            MHD_OPTION_HTTPS_MEM_CERT, emu.tls_cert_pem,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)emu.nthreads,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    } else {
        d = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, handler, l,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
            (unsigned)emu.nthreads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    }
    if (d) {
        listeners[nlisteners++] = l;
        l = NULL;
    }
out:
    free(l);
    return d;
}

int emu_http_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *i;

    i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void emu_http_stop(struct MHD_Daemon *d)
{
    if (d) {
        __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
        emu_http_release_hung();
        /* Bounded (3 s): a resumed connection whose client vanished may
         * never be handled again. */
        for (int i = 0;
             i < 300 && __atomic_load_n(&n_suspended, __ATOMIC_ACQUIRE) > 0;
             i++) {
            struct timespec ts = {0, 10000000L};

            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(d);
    }
}

const char *emu_req_header(struct emu_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *emu_req_arg(struct emu_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

void emu_resp_json(struct emu_resp *rs, int status, cJSON *json)
{
    free(rs->body);
    rs->status = status;
    rs->body = cJSON_PrintUnformatted(json);
    rs->len = rs->body ? strlen(rs->body) : 0;
    rs->ctype = "application/json; charset=utf-8";
}

void emu_resp_text(struct emu_resp *rs, int status, const char *ctype,
                   const char *text)
{
    free(rs->body);
    rs->status = status;
    rs->body = strdup(text);
    rs->len = rs->body ? strlen(rs->body) : 0;
    rs->ctype = ctype;
}

void emu_resp_kv_error(struct emu_resp *rs, int status, const char *code,
                       const char *msg, const char *inner)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");

    cJSON_AddStringToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", msg);
    if (inner) {
        cJSON *ie = cJSON_AddObjectToObject(err, "innererror");

        cJSON_AddStringToObject(ie, "code", inner);
    }
    emu_resp_json(rs, status, root);
    cJSON_Delete(root);
}
