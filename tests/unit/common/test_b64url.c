/* SPDX-License-Identifier: Apache-2.0 */
/* common/b64url.c: RFC 4648 §10 test vectors in the URL alphabet, round
 * trips of every length 0..300, and rejection of malformed text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/b64url.h"

static void test_vectors(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } v[] = {{"", ""},
             {"f", "Zg"},
             {"fo", "Zm8"},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg"},
             {"fooba", "Zm9vYmE"},
             {"foobar", "Zm9vYmFy"}};
    char out[32];
    uint8_t back[32];
    (void)state;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        long n = akv_b64url_encode((const uint8_t *)v[i].in, strlen(v[i].in),
                                   out, sizeof(out));
        assert_int_equal(n, (long)strlen(v[i].out));
        assert_string_equal(out, v[i].out);
        assert_int_equal(akv_b64url_encoded_len(strlen(v[i].in)),
                         strlen(v[i].out));
        n = akv_b64url_decode(v[i].out, strlen(v[i].out), back, sizeof(back));
        assert_int_equal(n, (long)strlen(v[i].in));
        assert_memory_equal(back, v[i].in, (size_t)n);
    }
}

static void test_url_alphabet(void **state)
{
    const uint8_t in[] = {0xfb, 0xff, 0xbf};
    char out[8];
    uint8_t back[8];
    (void)state;

    assert_int_equal(akv_b64url_encode(in, 3, out, sizeof(out)), 4);
    assert_string_equal(out, "-_-_");
    assert_int_equal(akv_b64url_decode("-_-_", 4, back, sizeof(back)), 3);
    assert_memory_equal(back, in, 3);
    /* standard base64 characters are refused, as the service refuses them */
    assert_int_equal(akv_b64url_decode("+/+/", 4, back, sizeof(back)), -1);
}

static void test_round_trip(void **state)
{
    uint8_t in[300];
    char txt[512];
    uint8_t back[300];
    (void)state;

    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)(i * 37 + 11);
    }
    for (size_t len = 0; len <= sizeof(in); len++) {
        long n = akv_b64url_encode(in, len, txt, sizeof(txt));
        assert_true(n >= 0);
        assert_null(strchr(txt, '='));
        assert_int_equal(akv_b64url_decode(txt, (size_t)n, back, sizeof(back)),
                         (long)len);
        assert_memory_equal(back, in, len);
    }
}

static void test_padding_accepted(void **state)
{
    uint8_t back[8];
    (void)state;

    assert_int_equal(akv_b64url_decode("Zg==", 4, back, sizeof(back)), 1);
    assert_int_equal(back[0], 'f');
    assert_int_equal(akv_b64url_decode("Zm8=", 4, back, sizeof(back)), 2);
    assert_memory_equal(back, "fo", 2);
}

static void test_rejects(void **state)
{
    static const char *const bad[] = {
        "Z",      /* 4k+1 characters */
        "Zg=",    /* padding that does not complete a quantum */
        "Zm9v=",  /* padding on a full quantum */
        "Z===",   /* too much padding */
        "Zg=a",   /* padding in the middle */
        "Zh",     /* non-zero trailing bits */
        "Zm9",    /* non-zero trailing bits (3 chars) */
        "Zm 9v",  /* space */
        "Zm9v\n", /* newline */
        "Zm.v",   /* '.' as in the corrupt spec example */
    };
    uint8_t back[16];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            akv_b64url_decode(bad[i], strlen(bad[i]), back, sizeof(back)), -1);
    }
}

static void test_small_buffers(void **state)
{
    char out[4];
    uint8_t back[2];
    (void)state;

    /* "foo" needs 4 chars + NUL */
    assert_int_equal(
        akv_b64url_encode((const uint8_t *)"foo", 3, out, sizeof(out)), -1);
    assert_int_equal(akv_b64url_decode("Zm9v", 4, back, sizeof(back)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_padding_accepted),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_small_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
