/* SPDX-License-Identifier: Apache-2.0 */
/* common/log.c: every line is escaped in one place, so a server-supplied
 * string (kid, error message, request id) cannot forge a line or drive a
 * terminal: akv_log_escape on a table of byte strings, and akv_log_write
 * through a file target read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

static void test_escape_table(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } t[] = {
        {"plain text", "plain text"},
        {"a\nb", "a\\x0ab"},
        {"a\r\nb", "a\\x0d\\x0ab"},
        {"\x1b[2J", "\\x1b[2J"},
        {"tab\there", "tab\\x09here"},
        {"del\x7f", "del\\x7f"},
        {"back\\slash", "back\\slash"},
        /* well-formed UTF-8 is kept */
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91",
         "caf\xc3\xa9 \xe2\x82\xac "
         "\xf0\x9f\x94\x91"},
        /* C1 control U+0085 (NEL) and U+009B (CSI) */
        {"a\xc2\x85z", "a\\xc2\\x85z"},
        {"\xc2\x9b", "\\xc2\\x9b"},
        /* invalid UTF-8: lone continuation, truncated, overlong, surrogate,
         * above U+10FFFF, 0xff */
        {"\x80", "\\x80"},
        {"\xc3", "\\xc3"},
        {"\xe2\x82", "\\xe2\\x82"},
        {"\xc0\xaf", "\\xc0\\xaf"},
        {"\xe0\x80\xaf", "\\xe0\\x80\\xaf"},
        {"\xed\xa0\x80", "\\xed\\xa0\\x80"},
        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},
        {"\xff", "\\xff"},
        {"", ""},
    };
    char out[128];
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = akv_log_escape(t[i].in, out, sizeof(out));
        if (strcmp(out, t[i].out) != 0) {
            fail_msg("row %zu: got \"%s\", expected \"%s\"", i, out, t[i].out);
        }
        assert_int_equal(n, strlen(t[i].out));
    }
    /* cut at a whole escape / character, always terminated */
    assert_int_equal(akv_log_escape("ab\ncd", out, 5), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(akv_log_escape("\xc3\xa9\xc3\xa9", out, 4), 2);
    assert_string_equal(out, "\xc3\xa9");
    assert_int_equal(akv_log_escape("x", out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(akv_log_escape(NULL, out, sizeof(out)), 0);
    assert_int_equal(akv_log_escape("x", NULL, 0), 0);
}

/* What reaches the sink: one line whatever the arguments hold. */
static void test_write_one_line(void **state)
{
    char path[256];
    char buf[8192];
    FILE *fp;
    size_t n;
    size_t lines = 0;
    char big[1500];
    (void)state;

    snprintf(path, sizeof(path), "%s/test_log.%d.txt",
             getenv("AKV_TEST_TMP") != NULL ? getenv("AKV_TEST_TMP") : "/tmp",
             (int)getpid());
    (void)remove(path);
    assert_int_equal(akv_log_configure(AKV_LOG_LEVEL_ERROR, path), 0);
    AKV_LOG_ERR("key %s op get: kid \"%s\" (request-id %s)", "cmk",
                "https://v/keys/cmk/1\n2026-01-01T00:00:00.000Z akv-pkcs11"
                "[1/1] ERROR x.c:1 f: forged",
                "id\r\x1b[1A");
    /* a message longer than the raw buffer and made only of controls */
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    AKV_LOG_ERR("%s", big);
    akv_log_close();

    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    (void)remove(path);
    for (size_t i = 0; i < n; i++) {
        lines += buf[i] == '\n';
        if ((unsigned char)buf[i] < 0x20 && buf[i] != '\n') {
            fail_msg("control byte 0x%02x in the log", (unsigned)buf[i]);
        }
    }
    assert_int_equal(lines, 2);
    assert_non_null(strstr(buf, "cmk/1\\x0a2026-01-01T00:00:00.000Z akv-"));
    assert_non_null(strstr(buf, "(request-id id\\x0d\\x1b[1A)\n"));
    assert_null(strstr(buf, "\n2026-01-01T00:00:00.000Z akv-pkcs11[1/1]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_table),
        cmocka_unit_test(test_write_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
