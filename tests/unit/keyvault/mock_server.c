/* SPDX-License-Identifier: Apache-2.0 */
#include "mock_server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOCK_MAX_SCRIPT 64

struct script {
    char prefix[256];
    int status;
    char *body;
    char hdr_name[64];
    char hdr_val[512];
    int delay_ms;
    int used;
};

struct mock_server {
    struct MHD_Daemon *d;
    int port;
    char url[64];
    pthread_mutex_t lock;
    struct script script[MOCK_MAX_SCRIPT];
    size_t n_script;
    struct mock_rec rec[MOCK_MAX_REC];
    size_t n_rec;
    int token_n;
    int token_life;
    int token_delay;
    char def_prefix[256];
    int def_status;
    char *def_body;
    int stopping; /* atomic */
};

struct conn {
    char query[512];
    char body[4096];
    size_t len;
    int started;
};

static void sleep_ms(struct mock_server *m, int ms)
{
    while (ms > 0 && !__atomic_load_n(&m->stopping, __ATOMIC_RELAXED)) {
        int step = ms > 20 ? 20 : ms;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static void copy(char *dst, size_t n, const char *src)
{
    (void)snprintf(dst, n, "%s", src != NULL ? src : "");
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct mock_server *m = cls;
    struct conn *cn = *con_cls;
    struct MHD_Response *r;
    struct script pick;
    struct mock_rec rec;
    char tok[256];
    const char *body;
    int found = 0;
    enum MHD_Result ret;
    (void)version;

    if (cn == NULL) {
        cn = calloc(1, sizeof(*cn));
        *con_cls = cn;
    }
    if (!cn->started) {
        cn->started = 1;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        if (cn->len + n >= sizeof(cn->body)) {
            n = sizeof(cn->body) - 1 - cn->len;
        }
        memcpy(cn->body + cn->len, upload, n);
        cn->len += n;
        *upload_size = 0;
        return MHD_YES;
    }
    memset(&rec, 0, sizeof(rec));
    copy(rec.method, sizeof(rec.method), method);
    copy(rec.path, sizeof(rec.path), url);
    copy(rec.auth, sizeof(rec.auth),
         MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
    copy(rec.metadata, sizeof(rec.metadata),
         MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Metadata"));
    copy(rec.identity_header, sizeof(rec.identity_header),
         MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-IDENTITY-HEADER"));
    copy(rec.content_type, sizeof(rec.content_type),
         MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
    memcpy(rec.body, cn->body, cn->len);
    rec.body[cn->len] = '\0';
    copy(rec.query, sizeof(rec.query), cn->query);

    pthread_mutex_lock(&m->lock);
    if (m->n_rec < MOCK_MAX_REC) {
        m->rec[m->n_rec++] = rec;
    }
    for (size_t i = 0; i < m->n_script; i++) {
        if (!m->script[i].used
            && strncmp(url, m->script[i].prefix, strlen(m->script[i].prefix))
                   == 0) {
            m->script[i].used = 1;
            pick = m->script[i];
            found = 1;
            break;
        }
    }
    if (!found && m->def_body != NULL
        && strncmp(url, m->def_prefix, strlen(m->def_prefix)) == 0) {
        memset(&pick, 0, sizeof(pick));
        pick.status = m->def_status;
        (void)snprintf(tok, sizeof(tok), "%s", m->def_body);
        pick.body = tok;
        found = 3;
    }
    if (!found
        && (strstr(url, "/oauth2/v2.0/token") != NULL
            || strstr(url, "/metadata/identity") != NULL
            || strstr(url, "/msi/token") != NULL)) {
        int life = m->token_life;
        m->token_n++;
        memset(&pick, 0, sizeof(pick));
        pick.status = 200;
        pick.delay_ms = m->token_delay;
        if (strstr(url, "/oauth2/v2.0/token") != NULL) {
            (void)snprintf(tok, sizeof(tok),
                           "{\"token_type\":\"Bearer\",\"expires_in\":%d,"
                           "\"ext_expires_in\":%d,\"access_token\":\"tok-%d\"}",
                           life, life, m->token_n);
        } else {
            (void)snprintf(
                tok, sizeof(tok),
                "{\"access_token\":\"tok-%d\",\"refresh_token\":\"\","
                "\"expires_in\":\"%d\",\"expires_on\":\"%ld\","
                "\"resource\":\"https://vault.azure.net\","
                "\"token_type\":\"Bearer\"}",
                m->token_n, life, (long)time(NULL) + life);
        }
        pick.body = tok;
        found = 2;
    }
    pthread_mutex_unlock(&m->lock);
    if (!found) {
        memset(&pick, 0, sizeof(pick));
        pick.status = 599;
        pick.body = (char *)"{\"error\":{\"code\":\"NoScript\"}}";
    }
    sleep_ms(m, pick.delay_ms);
    body = pick.body != NULL ? pick.body : "";
    r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                        MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type",
                            "application/json; charset=utf-8");
    MHD_add_response_header(r, "x-ms-request-id", "req-0001");
    if (pick.hdr_name[0] != '\0') {
        MHD_add_response_header(r, pick.hdr_name, pick.hdr_val);
    }
    ret = MHD_queue_response(c, (unsigned)pick.status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* The URI log callback sees the raw URI (with the undecoded query); its
 * return value becomes the connection's request context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct conn *cn = calloc(1, sizeof(*cn));
    const char *q = strchr(uri, '?');
    (void)cls;
    (void)c;
    if (cn != NULL) {
        copy(cn->query, sizeof(cn->query), q != NULL ? q + 1 : "");
    }
    return cn;
}

struct mock_server *mock_start(void)
{
    struct mock_server *m = calloc(1, sizeof(*m));
    const union MHD_DaemonInfo *di;

    pthread_mutex_init(&m->lock, NULL);
    m->token_life = 3600;
    m->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION
            | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_req, m, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, m, MHD_OPTION_END);
    if (m->d == NULL) {
        free(m);
        return NULL;
    }
    di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = di->port;
    (void)snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", m->port);
    return m;
}

void mock_stop(struct mock_server *m)
{
    if (m == NULL) {
        return;
    }
    __atomic_store_n(&m->stopping, 1, __ATOMIC_RELAXED);
    MHD_stop_daemon(m->d);
    for (size_t i = 0; i < m->n_script; i++) {
        free(m->script[i].body);
    }
    free(m->def_body);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int mock_port(const struct mock_server *m)
{
    return m->port;
}

const char *mock_url(const struct mock_server *m)
{
    return m->url;
}

void mock_push(struct mock_server *m, const char *prefix, int status,
               const char *body, const char *hdr, int delay_ms)
{
    struct script *s;

    pthread_mutex_lock(&m->lock);
    if (m->n_script < MOCK_MAX_SCRIPT) {
        s = &m->script[m->n_script++];
        memset(s, 0, sizeof(*s));
        copy(s->prefix, sizeof(s->prefix), prefix);
        s->status = status;
        s->body = strdup(body != NULL ? body : "");
        s->delay_ms = delay_ms;
        if (hdr != NULL) {
            const char *colon = strchr(hdr, ':');
            size_t n = (size_t)(colon - hdr);
            memcpy(s->hdr_name, hdr, n);
            s->hdr_name[n] = '\0';
            colon++;
            while (*colon == ' ') {
                colon++;
            }
            copy(s->hdr_val, sizeof(s->hdr_val), colon);
        }
    }
    pthread_mutex_unlock(&m->lock);
}

size_t mock_count(struct mock_server *m, const char *prefix)
{
    size_t n = 0;

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_rec; i++) {
        if (strstr(m->rec[i].path, prefix) != NULL) {
            n++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

size_t mock_total(struct mock_server *m)
{
    size_t n;

    pthread_mutex_lock(&m->lock);
    n = m->n_rec;
    pthread_mutex_unlock(&m->lock);
    return n;
}

int mock_get(struct mock_server *m, size_t i, struct mock_rec *out)
{
    int rc = -1;

    pthread_mutex_lock(&m->lock);
    if (i < m->n_rec) {
        *out = m->rec[i];
        rc = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void mock_set_token_lifetime(struct mock_server *m, int seconds)
{
    pthread_mutex_lock(&m->lock);
    m->token_life = seconds;
    pthread_mutex_unlock(&m->lock);
}

void mock_set_token_delay(struct mock_server *m, int ms)
{
    pthread_mutex_lock(&m->lock);
    m->token_delay = ms;
    pthread_mutex_unlock(&m->lock);
}

void mock_set_default(struct mock_server *m, const char *prefix, int status,
                      const char *body)
{
    pthread_mutex_lock(&m->lock);
    copy(m->def_prefix, sizeof(m->def_prefix), prefix);
    m->def_status = status;
    free(m->def_body);
    m->def_body = strdup(body);
    pthread_mutex_unlock(&m->lock);
}
