/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging with levels and structural redaction.
 *
 * The module is a guest in somebody else's process: nothing is printed unless
 * the configuration (log.level / log.target) or AKV_PKCS11_DEBUG asks for it.
 * There is deliberately no function that takes a secret buffer: callers log
 * names, operations, HTTP statuses and Key Vault error codes, never values.
 */
#ifndef AKV_COMMON_LOG_H
#define AKV_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum akv_log_level {
    AKV_LOG_LEVEL_NONE = 0,
    AKV_LOG_LEVEL_ERROR = 1,
    AKV_LOG_LEVEL_WARN = 2,
    AKV_LOG_LEVEL_INFO = 3,
    AKV_LOG_LEVEL_DEBUG = 4,
    AKV_LOG_LEVEL_TRACE = 5,
};

/*
 * akv_log_configure - set the level and sink once, at C_Initialize.
 * level: one of enum akv_log_level. target: "stderr", "syslog" or a file path
 * (opened for append, created 0600, under the rules of common/fsperm.h);
 * NULL keeps the current target (stderr).
 * Returns 0, or -1 when a file target cannot be opened (stderr is then kept).
 */
int akv_log_configure(int level, const char *target);

/*
 * akv_log_configure_why - as akv_log_configure; when a file target is
 * refused or cannot be opened, WHY (WHY_LEN bytes, may be NULL) receives
 * one line naming the file, the rule it breaks (common/fsperm.h: owner,
 * mode, folders, symlink) and the fix.
 */
int akv_log_configure_why(int level, const char *target, char *why,
                          size_t why_len);

/* akv_log_level_parse - "none|error|warn|info|debug|trace" or "0".."5" ->
 * level; returns -1 for anything else. */
int akv_log_level_parse(const char *s);

/* akv_log_enabled - nonzero when messages at LEVEL are written. */
int akv_log_enabled(int level);

/* akv_log_fmt - printf into a caller buffer of BUF_LEN bytes (always
 * NUL-terminated, cut if longer); NULL or 0-length BUF is a no-op. Used for
 * the "why" texts that travel back to the one place that logs a failure. */
void akv_log_fmt(char *buf, size_t buf_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * akv_log_escape - IN (NUL-terminated) into OUT (OUT_LEN bytes, always
 * NUL-terminated, cut at a whole character): printable ASCII and
 * well-formed UTF-8 (RFC 3629) are copied; every other byte - controls
 * (< 0x20, 0x7f), C1 controls (U+0080..U+009F), bytes of invalid UTF-8 -
 * becomes "\xNN" (lower-case hex). A backslash is copied as is. OUT needs
 * 4 * strlen(IN) + 1 bytes to hold everything. Returns the bytes written
 * (without the NUL). akv_log_write applies it to every line.
 */
size_t akv_log_escape(const char *in, char *out, size_t out_len);

/* akv_log_close - closes a file sink (C_Finalize); the level drops to ERROR. */
void akv_log_close(void);

/* akv_log_fork_child - pthread_atfork child handler (module/init.c): the
 * log lock is re-initialised, unlocked, whatever a parent thread was doing
 * with it at the moment of fork. Only in the child of fork(). */
void akv_log_fork_child(void);

/* akv_log_write - printf-style; prefer the AKV_LOG_* macros. Adds time, pid,
 * thread id, level, file:line and function. One line per call: the
 * formatted message (at most 1023 bytes) goes through akv_log_escape. */
void akv_log_write(int level, const char *file, int line, const char *func,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define AKV_LOG_AT(lvl, ...)                                                   \
    do {                                                                       \
        if (akv_log_enabled(lvl)) {                                            \
            akv_log_write((lvl), __FILE__, __LINE__, __func__, __VA_ARGS__);   \
        }                                                                      \
    } while (0)

#define AKV_LOG_ERR(...)   AKV_LOG_AT(AKV_LOG_LEVEL_ERROR, __VA_ARGS__)
#define AKV_LOG_WARN(...)  AKV_LOG_AT(AKV_LOG_LEVEL_WARN, __VA_ARGS__)
#define AKV_LOG_INFO(...)  AKV_LOG_AT(AKV_LOG_LEVEL_INFO, __VA_ARGS__)
#define AKV_LOG_DEBUG(...) AKV_LOG_AT(AKV_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define AKV_LOG_TRACE(...) AKV_LOG_AT(AKV_LOG_LEVEL_TRACE, __VA_ARGS__)

#endif /* AKV_COMMON_LOG_H */
