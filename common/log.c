/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

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
    int rc = 0;
    FILE *f = NULL;

    if (target != NULL && strcmp(target, "stderr") != 0
        && strcmp(target, "syslog") != 0) {
        int fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
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
            fclose(log_file);
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

void akv_log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_file != NULL) {
        fclose(log_file);
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
    char msg[1024];
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    const char *base = strrchr(file, '/');

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
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
