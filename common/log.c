/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include "fsperm.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* One sink for the process; written under a mutex so lines never interleave. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_level = AKV_LOG_LEVEL_ERROR;
static FILE *log_file; /* NULL means stderr */
static int log_syslog;

int akv_log_level_parse(const char *s)
{
    static const char *const names[] = {"none", "error", "warn",
                                        "info", "debug", "trace"};
    if (s == NULL) {
        return -1;
    }
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            return i;
        }
    }
    if (s[0] >= '0' && s[0] <= '5' && s[1] == '\0') {
        return s[0] - '0';
    }
    if (strcasecmp(s, "warning") == 0) {
        return AKV_LOG_LEVEL_WARN;
    }
    return -1;
}

int akv_log_configure(int level, const char *target)
{
    return akv_log_configure_why(level, target, NULL, 0);
}

int akv_log_configure_why(int level, const char *target, char *why,
                          size_t why_len)
{
    int rc = 0;
    FILE *f = NULL;

    if (why != NULL && why_len > 0) {
        why[0] = '\0';
    }
    if (target != NULL && strcmp(target, "stderr") != 0
        && strcmp(target, "syslog") != 0) {
        /* StrictModes rules (fsperm.h): a symlink planted as the target
         * would make us append to a file of someone else's choosing. */
        int fd = akv_fsperm_open(target, O_WRONLY | O_CREAT | O_APPEND, 0600,
                                 why, why_len);
        if (fd >= 0) {
            f = fdopen(fd, "a");
            if (f == NULL) {
                close(fd);
            }
        }
        if (f == NULL) {
            rc = -1;
        }
    }
    pthread_mutex_lock(&log_lock);
    if (level >= AKV_LOG_LEVEL_NONE && level <= AKV_LOG_LEVEL_TRACE) {
        log_level = level;
    }
    if (target != NULL) {
        if (log_file != NULL) {
            (void)fclose(log_file);
            log_file = NULL;
        }
        log_syslog = strcmp(target, "syslog") == 0;
        log_file = f;
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

int akv_log_enabled(int level)
{
    /* A racy read is fine: the level is set once at C_Initialize. */
    return level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED)
           && level > AKV_LOG_LEVEL_NONE;
}

void akv_log_fmt(char *buf, size_t buf_len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || buf_len == 0) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(buf, buf_len, fmt, ap);
    va_end(ap);
}

/* Length of the well-formed UTF-8 sequence at S (N bytes left) per RFC
 * 3629 §4 (no overlong forms, no surrogates, nothing above U+10FFFF), or
 * 0 when S does not start one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    /* C1 controls (U+0080..U+009F): some terminals act on them */
    if (len == 2 && s[0] == 0xc2 && s[1] <= 0x9f) {
        return 0;
    }
    return len;
}

size_t akv_log_escape(const char *in, char *out, size_t out_len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t n = in != NULL ? strlen(in) : 0;
    size_t o = 0;
    size_t i = 0;

    if (out == NULL || out_len == 0) {
        return 0;
    }
    while (i < n) {
        size_t u = s[i] >= 0x80 ? utf8_len(s + i, n - i) : 0;

        if (u > 0 || (s[i] >= 0x20 && s[i] < 0x7f)) {
            size_t len = u > 0 ? u : 1;
            if (o + len >= out_len) {
                break;
            }
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            if (o + 4 >= out_len) {
                break;
            }
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[s[i] >> 4];
            out[o++] = hex[s[i] & 0xf];
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

void akv_log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_file != NULL) {
        (void)fclose(log_file);
        log_file = NULL;
    }
    log_syslog = 0;
    log_level = AKV_LOG_LEVEL_ERROR;
    pthread_mutex_unlock(&log_lock);
}

void akv_log_write(int level, const char *file, int line, const char *func,
                   const char *fmt, ...)
{
    static const char *const tags[] = {"-",    "ERROR", "WARN",
                                       "INFO", "DEBUG", "TRACE"};
    char raw[1024];
    char msg[4 * sizeof(raw)];
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    const char *base = strrchr(file, '/');

    va_start(ap, fmt);
    (void)vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* every line passes here: a server-supplied string (kid, error
     * message, request id) cannot start a forged line or drive a terminal */
    (void)akv_log_escape(raw, msg, sizeof(msg));
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)gmtime_r(&ts.tv_sec, &tm);
    (void)strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    if (level < 0 || level > AKV_LOG_LEVEL_TRACE) {
        level = AKV_LOG_LEVEL_ERROR;
    }

    pthread_mutex_lock(&log_lock);
    if (log_syslog) {
        syslog(level <= AKV_LOG_LEVEL_ERROR  ? LOG_ERR
               : level == AKV_LOG_LEVEL_WARN ? LOG_WARNING
                                             : LOG_DEBUG,
               "akv-pkcs11: %s %s: %s", tags[level], func, msg);
    } else {
        FILE *out = log_file != NULL ? log_file : stderr;
        (void)fprintf(out, "%s.%03ldZ akv-pkcs11[%ld/%ld] %s %s:%d %s: %s\n",
                      stamp, ts.tv_nsec / 1000000L, (long)getpid(),
                      (long)syscall(SYS_gettid), tags[level],
                      base != NULL ? base + 1 : file, line, func, msg);
        (void)fflush(out);
    }
    pthread_mutex_unlock(&log_lock);
}

void akv_log_fork_child(void)
{
    /* The only thread of the child: whoever held the lock in the parent
     * (possibly a thread blocked on a slow sink) does not exist here. A
     * prepare handler that takes the lock instead would make fork() itself
     * wait for that sink, forever when nobody reads it. glibc resets the
     * stdio locks (stderr, the log file) in the child itself. */
    pthread_mutex_init(&log_lock, NULL);
}
