/* SPDX-License-Identifier: Apache-2.0 */
/* common/fsperm.c: the StrictModes rules, one table row per case. Ownership
 * cases chown to uid 65534 (nobody), so they need root (CI runs as root);
 * as another user they are skipped, never passed silently. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsperm.h"

#define OTHER_UID 65534u /* nobody */
#define SELF      ((uid_t)-1)

enum kind {
    K_FILE,    /* DIR/f, a regular file */
    K_SYMLINK, /* DIR/f -> DIR/real */
    K_FIFO,    /* DIR/f, a FIFO (must not hang the open) */
    K_MISSING, /* DIR/f does not exist */
    K_DEEP,    /* DIR/sub/f, sub 0700: the bad folder is two levels up */
    K_VIA_LINK /* DIR/ln -> ../good, opened as DIR/ln/f: DIR holds the
                  symlink, so DIR's mode matters though the real path
                  avoids it */
};

struct fcase {
    const char *name;
    enum kind kind;
    mode_t dir_mode;
    uid_t dir_uid;
    mode_t file_mode;
    uid_t file_uid;
    int want;             /* 0 = opened, else AKV_FSPERM_ERR_* */
    const char *want_msg; /* substring of the message ("" = none checked) */
};

static const struct fcase cases[] = {
    {"private file", K_FILE, 0700, SELF, 0600, SELF, 0, ""},
    {"public read-only file", K_FILE, 0755, SELF, 0644, SELF, 0, ""},
    {"root-owned file", K_FILE, 0755, 0, 0644, 0, 0, ""},
    {"file of another user", K_FILE, 0700, SELF, 0600, OTHER_UID,
     AKV_FSPERM_ERR_RULES, "owned by uid 65534, not by this process's uid"},
    {"group-writable file", K_FILE, 0700, SELF, 0620, SELF,
     AKV_FSPERM_ERR_RULES,
     "mode 0620 lets group/other write it; fix: chmod "
     "go-w "},
    {"world-writable file", K_FILE, 0700, SELF, 0606, SELF,
     AKV_FSPERM_ERR_RULES, "mode 0606 lets group/other write it"},
    {"symlink as last component", K_SYMLINK, 0700, SELF, 0600, SELF,
     AKV_FSPERM_ERR_RULES, "is a symbolic link, which is never followed"},
    {"fifo", K_FIFO, 0700, SELF, 0600, SELF, AKV_FSPERM_ERR_RULES,
     "not a regular file"},
    {"missing file", K_MISSING, 0700, SELF, 0600, SELF, AKV_FSPERM_ERR_IO,
     "No such file or directory"},
    {"0644 file in a 0777 folder", K_FILE, 0777, SELF, 0644, SELF,
     AKV_FSPERM_ERR_RULES,
     "mode 0777 lets group/other replace what it holds; "
     "fix: chmod go-w "},
    {"group-writable folder", K_FILE, 0770, SELF, 0600, SELF,
     AKV_FSPERM_ERR_RULES, "mode 0770 lets group/other replace"},
    {"sticky world-writable folder (like /tmp)", K_FILE, 01777, SELF, 0600,
     SELF, 0, ""},
    {"sticky folder of another user", K_FILE, 01777, OTHER_UID, 0600, SELF,
     AKV_FSPERM_ERR_RULES, "owned by uid 65534"},
    {"folder of another user", K_FILE, 0755, OTHER_UID, 0600, SELF,
     AKV_FSPERM_ERR_RULES, "owned by uid 65534, not by this process's uid"},
    {"bad folder two levels up", K_DEEP, 0777, SELF, 0600, SELF,
     AKV_FSPERM_ERR_RULES, "mode 0777 lets group/other replace"},
    {"bad folder holding a symlinked folder", K_VIA_LINK, 0777, SELF, 0600,
     SELF, AKV_FSPERM_ERR_RULES, "mode 0777 lets group/other replace"},
    {"good folder holding a symlinked folder", K_VIA_LINK, 0700, SELF, 0600,
     SELF, 0, ""},
};

static char base[PATH_MAX];

static int setup(void **state)
{
    const char *t = getenv("AKV_TEST_TMP");
    (void)state;
    snprintf(base, sizeof(base), "%s/fsperm-XXXXXX", t != NULL ? t : "/tmp");
    if (mkdtemp(base) == NULL) {
        return -1;
    }
    return chmod(base, 0700);
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, mode_t mode, uid_t uid)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    if (uid != SELF) {
        assert_int_equal(chown(path, uid, (gid_t)-1), 0);
    }
}

/* Builds case C under base/N and returns the path to open in OUT. */
static void build(const struct fcase *c, int n, char *out, size_t out_len)
{
    char dir[PATH_MAX], p[PATH_MAX + 64], good[PATH_MAX + 64];

    snprintf(dir, sizeof(dir), "%s/%d", base, n);
    assert_int_equal(mkdir(dir, 0700), 0);
    switch (c->kind) {
    case K_FILE:
    case K_MISSING:
        snprintf(out, out_len, "%s/f", dir);
        if (c->kind == K_FILE) {
            write_file(out, c->file_mode, c->file_uid);
        }
        break;
    case K_SYMLINK:
        snprintf(p, sizeof(p), "%s/real", dir);
        write_file(p, c->file_mode, c->file_uid);
        snprintf(out, out_len, "%s/f", dir);
        assert_int_equal(symlink("real", out), 0);
        break;
    case K_FIFO:
        snprintf(out, out_len, "%s/f", dir);
        assert_int_equal(mkfifo(out, c->file_mode), 0);
        break;
    case K_DEEP:
        snprintf(p, sizeof(p), "%s/sub", dir);
        assert_int_equal(mkdir(p, 0700), 0);
        snprintf(out, out_len, "%s/sub/f", dir);
        write_file(out, c->file_mode, c->file_uid);
        break;
    case K_VIA_LINK:
        snprintf(good, sizeof(good), "%s/%d-good", base, n);
        assert_int_equal(mkdir(good, 0700), 0);
        snprintf(p, sizeof(p), "%s/f", good);
        write_file(p, c->file_mode, c->file_uid);
        snprintf(p, sizeof(p), "%s/ln", dir);
        snprintf(good, sizeof(good), "../%d-good", n);
        assert_int_equal(symlink(good, p), 0);
        snprintf(out, out_len, "%s/ln/f", dir);
        break;
    }
    assert_int_equal(chmod(dir, c->dir_mode), 0);
    if (c->dir_uid != SELF) {
        assert_int_equal(chown(dir, c->dir_uid, (gid_t)-1), 0);
    }
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct fcase *c = &cases[i];
        char path[PATH_MAX];
        char err[768] = "unset";
        int fd;

        if (geteuid() != 0 && (c->file_uid != SELF || c->dir_uid != SELF)) {
            printf("[  SKIP    ] %s (needs root to chown)\n", c->name);
            continue;
        }
        build(c, (int)i, path, sizeof(path));
        fd = akv_fsperm_open(path, O_RDONLY, 0, err, sizeof(err));
        if (c->want == 0) {
            if (fd < 0) {
                fail_msg("%s: refused: %s", c->name, err);
            }
            close(fd);
            continue;
        }
        if (fd != c->want) {
            fail_msg("%s: got %d (%s), want %d", c->name, fd, err, c->want);
        }
        /* the message starts with the path and names the rule */
        if (strncmp(err, path, strlen(path)) != 0
            || strstr(err, c->want_msg) == NULL) {
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->name, err,
                     c->want_msg);
        }
    }
}

/* The fix a folder message names is the folder's own path. */
static void test_fix_names_the_folder(void **state)
{
    char dir[PATH_MAX], file[PATH_MAX + 8], err[768], want[PATH_MAX + 32];
    (void)state;

    snprintf(dir, sizeof(dir), "%s/fixdir", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/cfg", dir);
    write_file(file, 0644, SELF);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(akv_fsperm_open(file, O_RDONLY, 0, err, sizeof(err)),
                     AKV_FSPERM_ERR_RULES);
    snprintf(want, sizeof(want), "fix: chmod go-w %s", dir);
    assert_non_null(strstr(err, want));
    /* the same folder, fixed */
    assert_int_equal(chmod(dir, 0755), 0);
    int fd = akv_fsperm_open(file, O_RDONLY, 0, err, sizeof(err));
    assert_true(fd >= 0);
    close(fd);
}

/* O_CREAT (the log file): created, then judged like any other file; an
 * existing symlink target is never written through. */
static void test_create_and_openat(void **state)
{
    char dir[PATH_MAX], p[PATH_MAX + 16], err[768];
    struct stat st;
    int dfd, fd;
    (void)state;

    snprintf(dir, sizeof(dir), "%s/create", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(p, sizeof(p), "%s/log", dir);
    fd = akv_fsperm_open(p, O_WRONLY | O_CREAT | O_APPEND, 0600, err,
                         sizeof(err));
    assert_true(fd >= 0);
    /* blocking mode restored */
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    snprintf(p, sizeof(p), "%s/victim", dir);
    write_file(p, 0600, SELF);
    snprintf(p, sizeof(p), "%s/loglink", dir);
    assert_int_equal(symlink("victim", p), 0);
    assert_int_equal(akv_fsperm_open(p, O_WRONLY | O_CREAT | O_APPEND, 0600,
                                     err, sizeof(err)),
                     AKV_FSPERM_ERR_RULES);
    assert_non_null(strstr(err, "symbolic link"));
    snprintf(p, sizeof(p), "%s/victim", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 2); /* untouched */

    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    fd = akv_fsperm_openat(dfd, dir, "victim", O_RDONLY, 0, err, sizeof(err));
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(
        akv_fsperm_openat(dfd, dir, "loglink", O_RDONLY, 0, err, sizeof(err)),
        AKV_FSPERM_ERR_RULES);
    assert_int_equal(
        akv_fsperm_openat(dfd, dir, "a/b", O_RDONLY, 0, err, sizeof(err)),
        AKV_FSPERM_ERR_IO);
    assert_int_equal(
        akv_fsperm_openat(dfd, dir, "none", O_RDONLY, 0, err, sizeof(err)),
        AKV_FSPERM_ERR_IO);
    assert_int_equal(errno, ENOENT);
    snprintf(p, sizeof(p), "%s/victim", dir);
    assert_int_equal(chmod(p, 0660), 0);
    assert_int_equal(
        akv_fsperm_openat(dfd, dir, "victim", O_RDONLY, 0, err, sizeof(err)),
        AKV_FSPERM_ERR_RULES);
    close(dfd);
}

static void test_check_dirs(void **state)
{
    char dir[PATH_MAX], err[768];
    (void)state;

    snprintf(dir, sizeof(dir), "%s/cd", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(akv_fsperm_check_dirs(dir, err, sizeof(err)), 0);
    assert_int_equal(akv_fsperm_check_dirs("/", err, sizeof(err)), 0);
    /* /tmp: sticky and root's */
    assert_int_equal(akv_fsperm_check_dirs("/tmp", err, sizeof(err)), 0);
    assert_int_equal(chmod(dir, 0757), 0);
    assert_int_equal(akv_fsperm_check_dirs(dir, err, sizeof(err)),
                     AKV_FSPERM_ERR_RULES);
    assert_non_null(strstr(err, "mode 0757"));
    assert_int_equal(chmod(dir, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/cd/none", base);
    assert_int_equal(akv_fsperm_check_dirs(dir, err, sizeof(err)),
                     AKV_FSPERM_ERR_IO);
    assert_int_equal(akv_fsperm_check_dirs("", err, sizeof(err)),
                     AKV_FSPERM_ERR_IO);
    assert_int_equal(akv_fsperm_open(NULL, O_RDONLY, 0, err, sizeof(err)),
                     AKV_FSPERM_ERR_IO);
    /* a device node or a FIFO is judged before it is opened: a FIFO
     * without a reader would fail a write-open with ENXIO instead */
    assert_int_equal(
        akv_fsperm_open("/dev/null", O_RDONLY, 0, err, sizeof(err)),
        AKV_FSPERM_ERR_RULES);
    assert_non_null(strstr(err, "/dev/null: not a regular file"));
    snprintf(dir, sizeof(dir), "%s/cd/fifo", base);
    assert_int_equal(mkfifo(dir, 0600), 0);
    assert_int_equal(akv_fsperm_open(dir, O_WRONLY | O_CREAT | O_APPEND, 0600,
                                     err, sizeof(err)),
                     AKV_FSPERM_ERR_RULES);
    assert_non_null(strstr(err, "not a regular file"));
}

/* As another effective uid: that uid's files and root's pass, a third
 * user's do not (the rule is "the process's uid or root", not "root"). */
static void test_other_euid(void **state)
{
    char dir[PATH_MAX], own[PATH_MAX + 8], rootf[PATH_MAX + 8],
        third[PATH_MAX + 8];
    pid_t pid;
    int status = -1;
    (void)state;

    if (geteuid() != 0) {
        skip();
    }
    snprintf(dir, sizeof(dir), "%s/euid", base);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(base, 0755), 0);
    snprintf(own, sizeof(own), "%s/own", dir);
    snprintf(rootf, sizeof(rootf), "%s/root", dir);
    snprintf(third, sizeof(third), "%s/third", dir);
    write_file(own, 0644, OTHER_UID);
    write_file(rootf, 0644, 0);
    write_file(third, 0644, 1);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[768];
        int a, b, c;
        if (setresuid(OTHER_UID, OTHER_UID, OTHER_UID) != 0) {
            _exit(10);
        }
        a = akv_fsperm_open(own, O_RDONLY, 0, err, sizeof(err));
        b = akv_fsperm_open(rootf, O_RDONLY, 0, err, sizeof(err));
        c = akv_fsperm_open(third, O_RDONLY, 0, err, sizeof(err));
        _exit(a >= 0 && b >= 0 && c == AKV_FSPERM_ERR_RULES
                      && strstr(err, "owned by uid 1, not by this process's "
                                     "uid 65534")
                             != NULL
                  ? 0
                  : 11);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(chmod(base, 0700), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fix_names_the_folder),
        cmocka_unit_test(test_create_and_openat),
        cmocka_unit_test(test_check_dirs),
        cmocka_unit_test(test_other_euid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
