/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyvault/pcache.c: the per-user cache shared by processes. Round trip,
 * entries kept apart by their full identity, and every file or folder the
 * user does not own alone - or that was tampered with - ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keyvault/pcache.h"

static char base[96];
static char dir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/akv-pc-XXXXXX");
    if (mkdtemp(base) == NULL) {
        return -1;
    }
    /* a folder the cache creates itself, below a fresh parent */
    snprintf(dir, sizeof(dir), "%s/sub/akv-pkcs11", base);
    return 0;
}

static int teardown(void **state)
{
    char cmd[200];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    return system(cmd) == 0 ? 0 : -1;
}

/* The single entry file in DIR (there is one in these tests). */
static void entry_file(const char *kind, char *out, size_t len)
{
    char cmd[256];
    FILE *p;

    snprintf(cmd, sizeof(cmd), "ls %s/%s-* 2>/dev/null", dir, kind);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, (int)len, p));
    out[strcspn(out, "\n")] = '\0';
    pclose(p);
}

static void test_roundtrip(void **state)
{
    struct akv_secret got = AKV_SECRET_INIT;
    int64_t stamp = 0;
    struct stat st;
    char path[256];

    (void)state;
    assert_int_equal(
        akv_pcache_load(dir, "key", "https://v/keys/a", &got, &stamp), -1);
    assert_int_equal(
        akv_pcache_store(dir, "key", "https://v/keys/a", "{\"k\":1}", 7, 1234),
        0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    entry_file("key", path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(
        akv_pcache_load(dir, "key", "https://v/keys/a", &got, &stamp), 0);
    assert_int_equal(got.len, 7);
    assert_memory_equal(got.data, "{\"k\":1}", 7);
    assert_int_equal(stamp, 1234);
    /* Another identity (or kind) is another entry. */
    assert_int_equal(
        akv_pcache_load(dir, "key", "https://v/keys/b", &got, &stamp), -1);
    assert_int_equal(
        akv_pcache_load(dir, "token", "https://v/keys/a", &got, &stamp), -1);
    /* Replaced atomically. */
    assert_int_equal(
        akv_pcache_store(dir, "key", "https://v/keys/a", "xy", 2, 99), 0);
    assert_int_equal(
        akv_pcache_load(dir, "key", "https://v/keys/a", &got, &stamp), 0);
    assert_int_equal(got.len, 2);
    assert_int_equal(stamp, 99);
    akv_pcache_remove(dir, "key", "https://v/keys/a");
    assert_int_equal(
        akv_pcache_load(dir, "key", "https://v/keys/a", &got, &stamp), -1);
    akv_secret_clear(&got);
}

/* A file or folder others could read or write, a symlink, a file owned by
 * someone else, a renamed entry and truncated or padded files: ignored. */
static void test_refusals(void **state)
{
    struct akv_secret got = AKV_SECRET_INIT;
    int64_t stamp = 0;
    char path[256];
    char other[300];
    char cmd[600];

    (void)state;
    assert_int_equal(akv_pcache_store(dir, "token", "id-1", "secret", 6, 5), 0);
    entry_file("token", path, sizeof(path));

    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(akv_pcache_load(dir, "token", "id-1", &got, &stamp), -1);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(chmod(dir, 0770), 0);
    assert_int_equal(akv_pcache_load(dir, "token", "id-1", &got, &stamp), -1);
    /* ... and nothing is written into such a folder either */
    assert_int_equal(akv_pcache_store(dir, "token", "id-2", "x", 1, 5), -1);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(akv_pcache_load(dir, "token", "id-1", &got, &stamp), 0);

    if (geteuid() == 0) {
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_int_equal(akv_pcache_load(dir, "token", "id-1", &got, &stamp),
                         -1);
        assert_int_equal(chown(path, 0, 0), 0);
    }
    /* A symlink in place of the entry is never followed. */
    snprintf(other, sizeof(other), "%s.real", path);
    assert_int_equal(rename(path, other), 0);
    assert_int_equal(symlink(other, path), 0);
    assert_int_equal(akv_pcache_load(dir, "token", "id-1", &got, &stamp), -1);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rename(other, path), 0);

    /* An entry copied under another identity's name: the full identity in
     * the file does not match. */
    assert_int_equal(akv_pcache_store(dir, "token", "id-2", "other", 5, 5), 0);
    snprintf(cmd, sizeof(cmd), "f2=$(grep -l id-2 %s/token-*); cp %s \"$f2\"",
             dir, path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(akv_pcache_load(dir, "token", "id-2", &got, &stamp), -1);

    /* Truncated, and padded. */
    snprintf(cmd, sizeof(cmd), "truncate -s -1 %s", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(akv_pcache_load(dir, "token", "id-1", &got, &stamp), -1);
    snprintf(cmd, sizeof(cmd), "printf 'et?' >> %s", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(akv_pcache_load(dir, "token", "id-1", &got, &stamp), -1);
    assert_int_equal(got.len, 0);

    /* Bad arguments. */
    assert_int_equal(akv_pcache_store("relative", "token", "a", "x", 1, 0), -1);
    assert_int_equal(akv_pcache_store(dir, "Bad/Kind", "a", "x", 1, 0), -1);
    assert_int_equal(akv_pcache_store(dir, "token", "a", "x", 0, 0), -1);
    akv_secret_clear(&got);
}

/* Threads of one process loading from folders that fail the checks: the
 * once-per-folder warning state is shared, and must be safe to share (the
 * ThreadSanitizer stage runs this test). */
struct warn_arg {
    char dirs[2][96];
};

static void *warn_thread(void *p)
{
    struct warn_arg *a = p;
    struct akv_secret got = AKV_SECRET_INIT;
    int64_t stamp = 0;

    for (int i = 0; i < 200; i++) {
        if (akv_pcache_load(a->dirs[i % 2], "key", "k", &got, &stamp) != -1) {
            abort();
        }
    }
    return NULL;
}

static void test_warn_threads(void **state)
{
    struct warn_arg a;
    pthread_t th[4];
    char cmd[256];

    (void)state;
    for (int i = 0; i < 2; i++) {
        snprintf(a.dirs[i], sizeof(a.dirs[i]), "%.80s/open%d", base, i);
        assert_int_equal(mkdir(a.dirs[i], 0700), 0);
        assert_int_equal(chmod(a.dirs[i], 0777), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, warn_thread, &a), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", a.dirs[0], a.dirs[1]);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warn_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
