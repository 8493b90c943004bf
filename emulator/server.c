/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `akv-emulator serve`: prepares DIR (CA, server certificate, state), starts
 * the main HTTPS listener (Entra ID + control plane), the IMDS listener
 * (plain HTTP) and one HTTPS listener per vault, prints one JSON line with
 * the endpoints on stdout, then waits for SIGTERM/SIGINT and exits 0.
 * One server per DIR (flock on DIR/serve.lock); main and IMDS ports not
 * given on the command line are those of DIR's previous start (server.json)
 * when still free.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "emu.h"
#include "http.h"

emu_handler_fn emu_entra_handler(void);
emu_handler_fn emu_imds_handler(void);
int emu_serve_main(int argc, char **argv, const char *dir);

void emu_cli_help(FILE *f, int argc, char **argv);

static char *serve_word[] = {"serve"};

static int usage(void)
{
    emu_cli_help(stderr, 1, serve_word);
    return 2;
}

/* The previous start's server.json (NULL when absent or unreadable). */
static cJSON *read_server_json(const char *dir)
{
    char path[4200], *text;
    cJSON *j;

    snprintf(path, sizeof(path), "%s/server.json", dir);
    text = emu_read_file(path, NULL);
    j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static int json_int(cJSON *j, const char *name)
{
    cJSON *x = cJSON_GetObjectItem(j, name);

    return cJSON_IsNumber(x) && x->valuedouble > 0 && x->valuedouble < 65536
               ? (int)x->valuedouble
               : 0;
}

/* One server per DIR: an flock on DIR/serve.lock, held until exit (the
 * kernel drops it even after SIGKILL, so a stale server.json never blocks
 * a start). Returns the open lock fd, or -1 after printing why. */
static int lock_dir(cJSON *prev)
{
    char path[4200];
    int fd, pid;

    snprintf(path, sizeof(path), "%s/serve.lock", emu.dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "akv-emulator: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        return fd;
    }
    close(fd);
    pid = json_int(prev, "pid");
    if (pid > 0 && pid != (int)getpid()
        && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
        fprintf(stderr, "akv-emulator: %s is already served by pid %d\n",
                emu.dir, pid);
    } else {
        /* The other server has not written its server.json yet. */
        fprintf(stderr,
                "akv-emulator: %s is already served by another "
                "akv-emulator\n",
                emu.dir);
    }
    return -1;
}

/* Listen on WANT; when the port is not given on the command line
 * (GIVEN 0) and the previous start's port PREV is taken, fall back to a
 * free port with a warning (module configurations naming the old port
 * then need updating). */
static struct MHD_Daemon *start_listener(int given, int want, int prev, int tls,
                                         emu_handler_fn fn, const char *what)
{
    struct MHD_Daemon *d;

    if (!given && prev > 0) {
        d = emu_http_start(emu.host, prev, tls, fn, NULL);
        if (d) {
            return d;
        }
        fprintf(stderr,
                "akv-emulator: warning: %s port %d of the previous start "
                "is taken; using a free port\n",
                what, prev);
        want = 0;
    }
    d = emu_http_start(emu.host, want, tls, fn, NULL);
    if (!d) {
        fprintf(stderr, "akv-emulator: cannot listen on %s:%d (%s)\n", emu.host,
                want, what);
    }
    return d;
}

static int write_server_json(const char *line)
{
    cJSON *j = cJSON_Parse(line);
    char path[4200], ep[128], *text;
    int rc;

    if (!j) {
        return -1;
    }
    cJSON_AddStringToObject(j, "admin_secret", emu.admin_secret);
    cJSON_AddStringToObject(j, "dir", emu.dir);
    cJSON_AddStringToObject(j, "host", emu.host);
    snprintf(ep, sizeof(ep), "http://%s:%d/msi/token", emu.host, emu.imds_port);
    cJSON_AddStringToObject(j, "identity_endpoint", ep);
    cJSON_AddStringToObject(j, "identity_header", emu.identity_header);
    text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/server.json", emu.dir);
    rc = emu_write_file_atomic(path, text, strlen(text), 0600);
    free(text);
    return rc;
}

int emu_serve_main(int argc, char **argv, const char *dir)
{
    int imds_port = 0, port = 0, port_given = 0, imds_given = 0;
    int i, sig, rc = 1, lock_fd = -1;
    cJSON *prev = NULL;
    struct MHD_Daemon *main_d = NULL, *imds_d = NULL;
    sigset_t set;
    char line[8192], abs[PATH_MAX];
    long n;

    snprintf(emu.host, sizeof(emu.host), "127.0.0.1");
    emu.token_lifetime = 3600;
    emu.throttle_scale = 1.0;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    emu.nthreads = n < 1 ? 1 : n > 16 ? 16 : (int)n;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--throttle") == 0) {
            emu.throttle_on = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            emu_cli_help(stdout, 1, serve_word);
            return 0;
        }
        if (!v) {
            return usage();
        }
        i++;
        if (strcmp(a, "--host") == 0) {
            snprintf(emu.host, sizeof(emu.host), "%s", v);
        } else if (strcmp(a, "--port") == 0) {
            port = atoi(v);
            port_given = 1;
            if (port < 0 || port > 65535) {
                return usage();
            }
        } else if (strcmp(a, "--imds-port") == 0) {
            imds_port = atoi(v);
            imds_given = 1;
            if (imds_port < 0 || imds_port > 65535) {
                return usage();
            }
        } else if (strcmp(a, "--token-lifetime") == 0) {
            emu.token_lifetime = atoll(v);
            if (emu.token_lifetime < 1) {
                return usage();
            }
        } else if (strcmp(a, "--throttle-scale") == 0) {
            emu.throttle_scale = strtod(v, NULL);
            if (!(emu.throttle_scale > 0)) {
                return usage();
            }
        } else if (strcmp(a, "--delete-delay-ms") == 0) {
            /* How long a delete or recover stays "in progress" (Azure
             * completes them asynchronously; the SDK pollers rely on it). */
            char *end;
            long d = strtol(v, &end, 10);

            if (*v < '0' || *v > '9' || *end || d > 600000) {
                return usage();
            }
            emu.delete_delay_ms = (int)d;
        } else if (strcmp(a, "--threads") == 0) {
            emu.nthreads = atoi(v) < 1 ? 1 : atoi(v);
        } else {
            return usage();
        }
    }
    if (!dir) {
        return usage();
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "akv-emulator: cannot create %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    if (!realpath(dir, abs)) {
        fprintf(stderr, "akv-emulator: bad --dir %s\n", dir);
        return 1;
    }
    snprintf(emu.dir, sizeof(emu.dir), "%s", abs);
    prev = read_server_json(emu.dir);
    lock_fd = lock_dir(prev);
    if (lock_fd < 0) {
        cJSON_Delete(prev);
        return 1;
    }
    {
        pthread_rwlockattr_t ra;

        /* glibc rwlocks prefer readers: under a benchmark's steady stream of
         * GETs a control command (writer) would never get in. */
        pthread_rwlockattr_init(&ra);
        pthread_rwlockattr_setkind_np(
            &ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&emu.lock, &ra);
        pthread_rwlockattr_destroy(&ra);
    }
    if (emu_crypto_ensure_tls(emu.dir) != 0) {
        fprintf(stderr,
                "akv-emulator: cannot create the CA / server "
                "certificate in %s\n",
                emu.dir);
        goto out;
    }
    if (emu_store_load() != 0) {
        goto out;
    }
    emu_random_hex(emu.admin_secret, 32);
    /* Signals are taken by sigwait in this thread only; MHD threads inherit
     * the blocked mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Without --port / --imds-port the previous start's ports are kept so
     * that authority_host and imds_endpoint survive a restart. */
    main_d = start_listener(port_given, port, json_int(prev, "port"), 1,
                            emu_entra_handler(), "main");
    if (!main_d) {
        goto out;
    }
    emu.port = emu_http_port(main_d);
    imds_d = start_listener(imds_given, imds_port, json_int(prev, "imds_port"),
                            0, emu_imds_handler(), "IMDS");
    if (!imds_d) {
        goto out;
    }
    emu.imds_port = emu_http_port(imds_d);
    pthread_rwlock_wrlock(&emu.lock);
    for (i = 0; i < (int)emu.nvaults; i++) {
        struct emu_vault *v = emu.vaults[i];
        int want = v->port;

        if (emu_vault_start(v) != 0 || (want && v->port != want)) {
            fprintf(stderr,
                    "akv-emulator: cannot re-bind vault %s to its port %d\n",
                    v->name, want);
            pthread_rwlock_unlock(&emu.lock);
            goto out;
        }
    }
    pthread_rwlock_unlock(&emu.lock);
    snprintf(line, sizeof(line),
             "{\"ca_file\":\"%s/ca.pem\",\"authority_host\":\"https://%s:%d\","
             "\"imds_endpoint\":\"http://%s:%d/metadata/identity/oauth2/"
             "token\",\"tenant_id\":\"%s\",\"port\":%d,\"imds_port\":%d,"
             "\"pid\":%d}",
             emu.dir, emu.host, emu.port, emu.host, emu.imds_port,
             emu.tenant_id, emu.port, emu.imds_port, (int)getpid());
    if (write_server_json(line) != 0) {
        fprintf(stderr, "akv-emulator: cannot write server.json\n");
        goto out;
    }
    printf("%s\n", line);
    fflush(stdout);
    fprintf(stderr, "akv-emulator: ready (pid %d, %d threads per listener)\n",
            (int)getpid(), emu.nthreads);
    for (;;) {
        if (sigwait(&set, &sig) == 0 && (sig == SIGTERM || sig == SIGINT)) {
            break;
        }
    }
    fprintf(stderr, "akv-emulator: signal %d, stopping\n", sig);
    rc = 0;
out:
    /* The main listener first: its admin handlers add vaults, and stopping
     * it joins their threads, so the vault list read below is final and
     * ordered after their writes (ThreadSanitizer flagged the old order). */
    emu_http_stop(imds_d);
    emu_http_stop(main_d);
    for (i = 0; i < (int)emu.nvaults; i++) {
        emu_vault_stop(emu.vaults[i]);
    }
    cJSON_Delete(prev);
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    return rc;
}
