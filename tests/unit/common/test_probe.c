/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv_probe_string: copies a caller's string without ever faulting, and
 * refuses pointers that are not a readable, NUL-terminated, printable string
 * of at most AKV_PROBE_STR_MAX bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/probe.h"

static char out[AKV_PROBE_STR_MAX + 1];

/* Two pages: the first readable and writable, the second PROT_NONE. */
static char *guarded_pages(size_t *page)
{
    long ps = sysconf(_SC_PAGESIZE);
    char *p = NULL;

    assert_true(ps > 0);
    *page = (size_t)ps;
    p = mmap(NULL, 2 * *page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    assert_int_equal(mprotect(p + *page, *page, PROT_NONE), 0);
    return p;
}

static void test_good_strings(void **state)
{
    const char *s = "config=/etc/akv-pkcs11/x.json";
    char big[AKV_PROBE_STR_MAX + 1];

    (void)state;
    assert_int_equal(akv_probe_string(s, out, sizeof(out)), 0);
    assert_string_equal(out, s);
    assert_int_equal(akv_probe_string("", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(akv_probe_string("a\tb\r\nc; \xc3\xa9", out, sizeof(out)),
                     0);
    assert_string_equal(out, "a\tb\r\nc; \xc3\xa9");
    /* Exactly the limit is accepted, one more byte is not. */
    memset(big, 'x', AKV_PROBE_STR_MAX);
    big[AKV_PROBE_STR_MAX] = '\0';
    assert_int_equal(akv_probe_string(big, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), AKV_PROBE_STR_MAX);
    /* A smaller output buffer lowers the limit. */
    {
        char small[8];

        assert_int_equal(akv_probe_string("1234567", small, sizeof(small)), 0);
        assert_string_equal(small, "1234567");
        assert_int_equal(akv_probe_string("12345678", small, sizeof(small)),
                         -1);
        assert_string_equal(small, "");
    }
}

static void test_bad_pointers(void **state)
{
    size_t page = 0;
    char *p = guarded_pages(&page);
    const char *tail = "config=/x";
    char *cross = p + page - strlen(tail);

    (void)state;
    assert_int_equal(akv_probe_string(NULL, out, sizeof(out)), -1);
    assert_int_equal(akv_probe_string((void *)1, out, sizeof(out)), -1);
    assert_string_equal(out, "");
    assert_int_equal(
        akv_probe_string((void *)(uintptr_t)-4096, out, sizeof(out)), -1);
    /* Into a PROT_NONE page. */
    assert_int_equal(akv_probe_string(p + page, out, sizeof(out)), -1);
    assert_int_equal(akv_probe_string(p + page + 100, out, sizeof(out)), -1);
    /* A string running into the PROT_NONE page (no NUL before it). */
    memcpy(cross, tail, strlen(tail));
    assert_int_equal(akv_probe_string(cross, out, sizeof(out)), -1);
    assert_string_equal(out, "");
    /* The same bytes, NUL-terminated just before the guard: fine. */
    cross[strlen(tail) - 1] = '\0';
    assert_int_equal(akv_probe_string(cross, out, sizeof(out)), 0);
    assert_string_equal(out, "config=/");
    assert_int_equal(munmap(p, 2 * page), 0);
    /* Unmapped now: EFAULT, not SIGSEGV. */
    assert_int_equal(akv_probe_string(cross, out, sizeof(out)), -1);
}

static void test_unterminated_and_control(void **state)
{
    size_t mib = 1024 * 1024;
    char *big = malloc(mib);
    char ctl[] = "config=/tmp/a\x01.json";
    char del[] = "config=\x7f";

    (void)state;
    assert_non_null(big);
    memset(big, 'A', mib);
    assert_int_equal(akv_probe_string(big, out, sizeof(out)), -1);
    free(big);
    assert_int_equal(akv_probe_string(ctl, out, sizeof(out)), -1);
    assert_int_equal(akv_probe_string(del, out, sizeof(out)), -1);
    assert_int_equal(akv_probe_string("\x1b[31m", out, sizeof(out)), -1);
    assert_int_equal(akv_probe_string("ok", NULL, 0), -1);
}

static void test_no_fd_leak(void **state)
{
    int before = dup(0);
    int after;

    (void)state;
    assert_true(before >= 0);
    close(before);
    for (int i = 0; i < 100; i++) {
        (void)akv_probe_string((void *)1, out, sizeof(out));
        (void)akv_probe_string("config=/x", out, sizeof(out));
    }
    after = dup(0);
    close(after);
    assert_int_equal(after, before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_strings),
        cmocka_unit_test(test_bad_pointers),
        cmocka_unit_test(test_unterminated_and_control),
        cmocka_unit_test(test_no_fd_leak),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
