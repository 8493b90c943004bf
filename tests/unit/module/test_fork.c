/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fork while a parent thread holds the module's log lock (issue 8 "Fork"):
 * the log goes to stderr, stderr is a pipe nobody reads and is full, so a
 * parent thread that logs blocks mid-line with the lock held. The process
 * then forks; the child must get through C_Initialize, a call that logs,
 * and C_Finalize within CHILD_LIMIT_MS (it hung forever before: the lock
 * stayed held by a thread that does not exist in the child).
 *
 * Plain C (no cmocka): the module through dlopen, its path from
 * $AKV_MODULE_PATH (set by CTest). Exit 0 = pass, 1 = fail.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define CHILD_LIMIT_MS 10000

static CK_FUNCTION_LIST_PTR f;
static int blocked_done; /* atomic: the logging thread returned */
static int real_stderr = -1;

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vdprintf(real_stderr >= 0 ? real_stderr : 2, fmt, ap);
    va_end(ap);
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A call that fails with a code logged at DEBUG (end_call in pkcs11.c):
 * it writes one log line to the full pipe and blocks there, lock held. */
static void *logger(void *arg)
{
    CK_SLOT_INFO info;

    (void)arg;
    (void)f->C_GetSlotInfo(9999, &info);
    __atomic_store_n(&blocked_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int child(void)
{
    CK_SLOT_INFO info;
    int devnull = open("/dev/null", O_WRONLY);

    /* The child's own log lines must not block on the full pipe. */
    if (devnull < 0 || dup2(devnull, 2) < 0) {
        return 10;
    }
    if (f->C_Initialize(NULL) != CKR_OK) {
        return 11;
    }
    if (f->C_GetSlotInfo(9999, &info) != CKR_SLOT_ID_INVALID) {
        return 12;
    }
    if (f->C_GetSlotInfo(0, &info) != CKR_OK) {
        return 13;
    }
    return f->C_Finalize(NULL) == CKR_OK ? 0 : 14;
}

int main(void)
{
    static const char cfg[] =
        "{\"log\":{\"level\":\"debug\",\"target\":\"stderr\"},"
        "\"tokens\":[{\"label\":\"fork\",\"vault_url\":\"https://127.0.0.1:1\","
        "\"keys\":[\"cmk\"],\"credential\":{\"type\":\"managed_identity\","
        "\"imds_endpoint\":\"http://127.0.0.1:1/metadata/identity/oauth2/"
        "token\"}}]}";
    char cfg_path[] = "/tmp/akv-fork-cfg-XXXXXX";
    const char *mod = getenv("AKV_MODULE_PATH");
    CK_C_GetFunctionList gfl = NULL;
    void *lib = NULL;
    int p[2];
    int fd;
    char junk[4096];
    pthread_t th;
    pid_t pid;
    int status = 0;
    int result = 1;
    long t0;

    real_stderr = dup(2);
    fd = mkstemp(cfg_path);
    if (fd < 0 || write(fd, cfg, strlen(cfg)) != (ssize_t)strlen(cfg)) {
        say("%s\n", "cannot write the configuration");
        return 1;
    }
    close(fd);
    setenv("AKV_PKCS11_CONFIG", cfg_path, 1);
    lib = mod != NULL ? dlopen(mod, RTLD_NOW | RTLD_LOCAL) : NULL;
    gfl = lib != NULL ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList")
                      : NULL;
    if (gfl == NULL || gfl(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK) {
        say("module %s not usable\n", mod != NULL ? mod : "(unset)");
        goto out;
    }

    /* stderr := a full pipe that nobody reads */
    if (pipe(p) != 0) {
        goto out;
    }
    (void)fcntl(p[1], F_SETFL, O_NONBLOCK);
    memset(junk, '.', sizeof(junk));
    while (write(p[1], junk, sizeof(junk)) > 0) {
    }
    (void)fcntl(p[1], F_SETFL, 0);
    (void)dup2(p[1], 2);

    if (pthread_create(&th, NULL, logger, NULL) != 0) {
        goto out;
    }
    usleep(300000);
    if (__atomic_load_n(&blocked_done, __ATOMIC_ACQUIRE)) {
        say("%s\n", "the logging thread did not block: test set-up broken");
        goto drain;
    }

    pid = fork();
    if (pid == 0) {
        _exit(child());
    }
    if (pid < 0) {
        goto drain;
    }
    t0 = now_ms();
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);

        if (w == pid) {
            break;
        }
        if (now_ms() - t0 > CHILD_LIMIT_MS) {
            say("%s\n", "FAIL: the child hangs after fork (a lock the parent "
                        "thread held was never released in the child)");
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            goto drain;
        }
        usleep(20000);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        say("FAIL: child exit code %d\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto drain;
    }
    say("%s\n", "child initialised, logged and finalised after fork");
    result = 0;

drain:
    /* Unblock the parent's logging thread: read the pipe until it is done. */
    (void)fcntl(p[0], F_SETFL, O_NONBLOCK);
    while (!__atomic_load_n(&blocked_done, __ATOMIC_ACQUIRE)) {
        ssize_t n = read(p[0], junk, sizeof(junk));

        if (n <= 0 && errno != EAGAIN) {
            break;
        }
        usleep(1000);
    }
    (void)dup2(real_stderr, 2);
    pthread_join(th, NULL);
    if (f->C_Finalize(NULL) != CKR_OK) {
        result = 1;
    }
out:
    unlink(cfg_path);
    return result;
}
