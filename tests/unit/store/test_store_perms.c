/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token/store.c under the StrictModes rules (common/fsperm.h, docs/STORE.md
 * "Who may own the store"): store_dir, the folders above it, the lock file
 * and every record must be the process user's or root's and not writable
 * by group/other; otherwise akv_store_open refuses the store
 * (CKR_TOKEN_WRITE_PROTECTED) with one ERROR line naming path, rule and
 * fix. Ownership rows chown to uid 65534 and need root (CI runs as root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "token/store.h"

#define OTHER 65534u

static char root[64]; /* mkdtemp under /tmp: sticky, root's */
static char log_path[128];

static void rm_rf(const char *a)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/akv-store-perm.XXXXXX");
    if (mkdtemp(root) == NULL) {
        return -1;
    }
    snprintf(log_path, sizeof(log_path), "%s/log", root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    akv_log_configure(AKV_LOG_LEVEL_ERROR, "stderr");
    rm_rf(root);
    return 0;
}

/* The log written since the last call, as one string (static buffer). */
static const char *log_text(void)
{
    static char buf[8192];
    FILE *f = fopen(log_path, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    unlink(log_path);
    assert_int_equal(akv_log_configure(AKV_LOG_LEVEL_ERROR, log_path), 0);
    return buf;
}

static void write_record(const char *path, mode_t mode, uid_t uid)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not even a record", f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    assert_int_equal(chown(path, uid, (gid_t)-1), 0);
}

/* Opens DIR expecting WANT; for a refusal the log holds every NEEDLE. */
static void expect_open(const char *dir, CK_RV want, const char *needle1,
                        const char *needle2)
{
    struct akv_store *st = NULL;
    const char *log;
    CK_RV rv;

    (void)log_text();
    rv = akv_store_open(dir, &st);
    log = log_text();
    if (rv != want) {
        fail_msg("%s: rv 0x%lx, want 0x%lx; log: %s", dir, (unsigned long)rv,
                 (unsigned long)want, log);
    }
    if (want == CKR_OK) {
        assert_non_null(st);
        akv_store_close(st);
        return;
    }
    assert_null(st);
    if (strstr(log, needle1) == NULL
        || (needle2 != NULL && strstr(log, needle2) == NULL)) {
        fail_msg("log lacks \"%s\" / \"%s\": %s", needle1,
                 needle2 != NULL ? needle2 : "", log);
    }
    /* one line */
    assert_non_null(strchr(log, '\n'));
    assert_null(strchr(strchr(log, '\n') + 1, '\n'));
}

static void test_store_dir_rules(void **state)
{
    char dir[256], parent[256], want[400];
    (void)state;

    /* correct: a fresh store in a folder under /tmp (sticky, root's) */
    snprintf(dir, sizeof(dir), "%s/ok/store", root);
    expect_open(dir, CKR_OK, NULL, NULL);

    /* store_dir 0777 */
    snprintf(dir, sizeof(dir), "%s/wide", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    snprintf(want, sizeof(want), "store %s refused, token objects unavailable",
             dir);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, want, "mode 0777");

    /* store_dir sticky 1777: fine for /tmp, not for a store (anyone could
     * add a record) */
    assert_int_equal(chmod(dir, 01777), 0);
    snprintf(want, sizeof(want),
             "folder %s: mode 1777 lets group/other add records; fix: chmod "
             "0700 %s",
             dir, dir);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, want, NULL);

    /* a group-writable parent (someone can rename the store away) */
    snprintf(parent, sizeof(parent), "%s/gw", root);
    snprintf(dir, sizeof(dir), "%s/gw/store", root);
    assert_int_equal(mkdir(parent, 0700), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(parent, 0775), 0);
    snprintf(want, sizeof(want), "folder %s: mode 0775", parent);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, want, "fix: chmod go-w");
    /* the same parent, sticky like /tmp: accepted */
    assert_int_equal(chmod(parent, 01777), 0);
    expect_open(dir, CKR_OK, NULL, NULL);

    if (geteuid() != 0) {
        printf("[  SKIP    ] ownership rows need root\n");
        return;
    }
    /* store_dir owned by another user */
    snprintf(dir, sizeof(dir), "%s/theirs", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chown(dir, OTHER, (gid_t)-1), 0);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED,
                "owned by uid 65534, not by this process's uid 0 or root",
                "fix: chown 0 ");
    /* a parent owned by another user */
    snprintf(parent, sizeof(parent), "%s/theirs", root);
    snprintf(dir, sizeof(dir), "%s/theirs/store", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(want, sizeof(want), "folder %s: owned by uid 65534", parent);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, want, NULL);
}

static void test_records_and_lock(void **state)
{
    char dir[256], p[320], want[400];
    struct akv_store *st = NULL;
    struct akv_store_record rec, *recs = NULL;
    size_t n = 0;
    (void)state;

    if (geteuid() != 0) {
        skip();
    }
    snprintf(dir, sizeof(dir), "%s/rec", root);
    expect_open(dir, CKR_OK, NULL, NULL);

    /* a record owned by another user: the store is refused */
    snprintf(p, sizeof(p), "%s/planted.obj", dir);
    write_record(p, 0600, OTHER);
    snprintf(want, sizeof(want), "%s: owned by uid 65534", p);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, want, "fix: chown 0 ");
    /* a group-writable record of ours: refused too */
    write_record(p, 0660, 0);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, "mode 0660 lets group/other",
                "fix: chmod go-w ");
    /* 0644 (readable, not writable, by others): accepted */
    write_record(p, 0644, 0);
    expect_open(dir, CKR_OK, NULL, NULL);
    unlink(p);

    /* planted after the open: that record is refused when read */
    (void)log_text();
    assert_int_equal(akv_store_open(dir, &st), CKR_OK);
    {
        /* records are read only under the store secret (docs/STORE.md) */
        uint8_t secret[AKV_STORE_SECRET_LEN] = {7};

        assert_int_equal(akv_store_set_secret(st, secret, sizeof(secret)),
                         CKR_OK);
    }
    snprintf(p, sizeof(p), "%s/late.obj", dir);
    write_record(p, 0600, OTHER);
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(akv_store_get(st, "late", &rec), CKR_DEVICE_ERROR);
    assert_int_equal(akv_store_list(st, &recs, &n), CKR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(akv_store_last_unreadable(st), 1);
    akv_store_records_free(recs, n);
    snprintf(want, sizeof(want),
             "store %s: record refused: %s: owned by uid "
             "65534",
             dir, p);
    assert_non_null(strstr(log_text(), want));
    unlink(p);

    /* the lock file: another user's, or a symlink, stops every operation */
    snprintf(p, sizeof(p), "%s/.lock", dir);
    assert_int_equal(chown(p, OTHER, (gid_t)-1), 0);
    assert_int_equal(akv_store_list(st, &recs, &n), CKR_DEVICE_ERROR);
    snprintf(want, sizeof(want),
             "store %s refused: lock file %s: owned by "
             "uid 65534",
             dir, p);
    assert_non_null(strstr(log_text(), want));
    akv_store_close(st);
    st = NULL;
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, want, NULL);
    unlink(p);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    expect_open(dir, CKR_TOKEN_WRITE_PROTECTED, "is a symbolic link", NULL);
    unlink(p);
    expect_open(dir, CKR_OK, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_dir_rules),
        cmocka_unit_test(test_records_and_lock),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
