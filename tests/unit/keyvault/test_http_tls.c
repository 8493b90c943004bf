/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyvault/http.c + retry.c: a TLS handshake that fails in this process
 * before the ClientHello is sent (the module's OpenSSL cannot make a key
 * share) is AKV_HTTP_E_TLS_LOCAL, says so, and is not retried; one that
 * fails after the peer answered (here: a plain-HTTP server) is still an
 * ordinary, retried CURLE_SSL_CONNECT_ERROR. The local failure is made by
 * loading tests/provider/badprov (key generation fails) into the module's
 * private library context with default_properties pointing at it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "common/ossl.h"
#include "keyvault/http.h"
#include "keyvault/kv.h"
#include "keyvault/retry.h"
#include "mock_server.h"

static struct mock_server *srv;
static struct akv_http *http;

static int run(int retries, struct akv_http_resp *resp, int *attempts)
{
    struct akv_retry_policy pol = {retries, 2000, false, NULL};
    struct akv_http_req req = {0};
    char url[64];

    (void)snprintf(url, sizeof(url), "https://127.0.0.1:%d/", mock_port(srv));
    req.method = "GET";
    req.url = url;
    req.log_path = "/";
    return (int)akv_retry_perform(http, &req, &pol, akv_retry_now_ms() + 20000,
                                  resp, attempts);
}

static void test_remote_tls_failure_retried(void **state)
{
    struct akv_http_resp resp = {0};
    int attempts = 0;
    (void)state;

    assert_int_equal(run(2, &resp, &attempts), CKR_DEVICE_ERROR);
    assert_int_equal(resp.curl_code, CURLE_SSL_CONNECT_ERROR);
    assert_int_equal(attempts, 3);
    akv_http_resp_clear(&resp);
}

static void test_local_tls_failure_not_retried(void **state)
{
    struct akv_http_resp resp = {0};
    OSSL_LIB_CTX *ctx = akv_ossl_libctx();
    OSSL_PROVIDER *bad;
    const char *dir = getenv("AKV_BADPROV_DIR");
    int attempts = 0;
    (void)state;

    assert_non_null(ctx);
    assert_non_null(dir);
    assert_int_equal(OSSL_PROVIDER_set_default_search_path(ctx, dir), 1);
    bad = OSSL_PROVIDER_load(ctx, "badprov");
    assert_non_null(bad);
    assert_int_equal(EVP_set_default_properties(ctx, "?provider=badprov"), 1);

    assert_int_equal(run(5, &resp, &attempts), CKR_DEVICE_ERROR);
    assert_int_equal(resp.curl_code, AKV_HTTP_E_TLS_LOCAL);
    assert_int_equal(attempts, 1);
    assert_non_null(
        strstr(akv_http_strerror(resp.curl_code), "refused by this process"));
    akv_http_resp_clear(&resp);

    assert_int_equal(EVP_set_default_properties(ctx, ""), 1);
    assert_int_equal(OSSL_PROVIDER_unload(bad), 1);
}

static int setup(void **state)
{
    (void)state;
    if (akv_kv_global_init() != CKR_OK) {
        return -1;
    }
    srv = mock_start();
    return srv != NULL && akv_http_new(NULL, &http) == CKR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    akv_http_free(http);
    mock_stop(srv);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_tls_failure_retried),
        cmocka_unit_test(test_local_tls_failure_not_retried),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
