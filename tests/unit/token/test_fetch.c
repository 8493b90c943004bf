/* SPDX-License-Identifier: Apache-2.0 */
/* token/crypto.c: digests and ciphers are fetched once per library context
 * (issue 9), and what the cache hands out works and can be released like a
 * fetched algorithm. EVP_MD_fetch / EVP_CIPHER_fetch are counted through
 * the linker's --wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "token/crypto.h"

EVP_MD *__real_EVP_MD_fetch(OSSL_LIB_CTX *ctx, const char *alg,
                            const char *props);
EVP_CIPHER *__real_EVP_CIPHER_fetch(OSSL_LIB_CTX *ctx, const char *alg,
                                    const char *props);

static int n_md_fetch;
static int n_cipher_fetch;

EVP_MD *__wrap_EVP_MD_fetch(OSSL_LIB_CTX *ctx, const char *alg,
                            const char *props)
{
    n_md_fetch++;
    return __real_EVP_MD_fetch(ctx, alg, props);
}

EVP_CIPHER *__wrap_EVP_CIPHER_fetch(OSSL_LIB_CTX *ctx, const char *alg,
                                    const char *props)
{
    n_cipher_fetch++;
    return __real_EVP_CIPHER_fetch(ctx, alg, props);
}

static int setup(void **state)
{
    (void)state;
    return akv_crypto_init() == CKR_OK ? 0 : -1;
}

/* FIPS 180-2 SHA-256("abc") */
static const uint8_t abc256[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
    0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
    0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

static void test_md_fetched_once(void **state)
{
    (void)state;
    n_md_fetch = 0;
    for (int i = 0; i < 20; i++) {
        EVP_MD *md = akv_crypto_md("SHA256");
        uint8_t out[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        assert_non_null(md);
        assert_int_equal(EVP_Digest("abc", 3, out, &len, md, NULL), 1);
        assert_int_equal(len, 32);
        assert_memory_equal(out, abc256, 32);
        EVP_MD_free(md); /* the caller's reference; the cache keeps its own */
    }
    assert_int_equal(n_md_fetch, 1);
    /* another name is another entry */
    {
        EVP_MD *md = akv_crypto_md("SHA384");

        assert_non_null(md);
        assert_int_equal(EVP_MD_get_size(md), 48);
        EVP_MD_free(md);
    }
    assert_int_equal(n_md_fetch, 2);
    /* unknown names: NULL, every time, never cached as something */
    assert_null(akv_crypto_md("NO-SUCH-DIGEST"));
    assert_null(akv_crypto_md("NO-SUCH-DIGEST"));
    assert_null(akv_crypto_md(NULL));
    assert_int_equal(n_md_fetch, 4);
}

static void test_aes_cipher_fetched_once(void **state)
{
    (void)state;
    n_cipher_fetch = 0;
    for (int i = 0; i < 20; i++) {
        EVP_CIPHER *c = akv_crypto_aes_cipher(CKM_AES_GCM, 32);

        assert_non_null(c);
        assert_int_equal(EVP_CIPHER_get_key_length(c), 32);
        assert_int_equal(EVP_CIPHER_get_mode(c), EVP_CIPH_GCM_MODE);
        EVP_CIPHER_free(c);
    }
    assert_int_equal(n_cipher_fetch, 1);
    {
        EVP_CIPHER *c = akv_crypto_aes_cipher(CKM_AES_CBC, 16);

        assert_non_null(c);
        assert_int_equal(EVP_CIPHER_get_key_length(c), 16);
        assert_int_equal(EVP_CIPHER_get_mode(c), EVP_CIPH_CBC_MODE);
        EVP_CIPHER_free(c);
    }
    assert_int_equal(n_cipher_fetch, 2);
    assert_null(akv_crypto_aes_cipher(CKM_AES_GCM, 20));
    assert_int_equal(n_cipher_fetch, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_md_fetched_once, setup),
        cmocka_unit_test_setup(test_aes_cipher_fetched_once, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
