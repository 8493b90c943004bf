/* SPDX-License-Identifier: Apache-2.0 */
/* keyvault/auth.c credential types against a scripted loopback server:
 * what each sends (keyvault-protocol.md §4.1–4.6) and how it fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/config.h"
#include "common/log.h"
#include "keyvault/auth.h"
#include "keyvault/http.h"
#include "keyvault/kv.h"
#include "keyvault/retry.h"
#include "mock_server.h"

#define SCOPE "https://vault.azure.net/.default"

struct fx {
    struct mock_server *m;
    struct akv_http *http;
    struct akv_auth *auth;
    struct akv_cred_config cred;
    struct akv_http_config hc;
    char tmp[600];
    char url[600];
};

static const char *tmpdir(void)
{
    const char *d = getenv("AKV_TEST_TMP");
    return d != NULL ? d : "/tmp";
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->m = mock_start();
    assert_non_null(f->m);
    assert_int_equal(akv_http_new(NULL, &f->http), CKR_OK);
    f->hc.timeout_ms = 2000;
    f->hc.budget_ms = 5000;
    f->hc.retries = 1;
    f->hc.allow_http_loopback = true;
    snprintf(f->tmp, sizeof(f->tmp), "%s/auth-%d", tmpdir(), (int)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    akv_auth_free(f->auth);
    akv_http_free(f->http);
    mock_stop(f->m);
    unlink(f->tmp);
    unsetenv("IDENTITY_ENDPOINT");
    unsetenv("IDENTITY_HEADER");
    unsetenv("AZURE_TENANT_ID");
    unsetenv("AZURE_CLIENT_ID");
    unsetenv("AZURE_CLIENT_SECRET");
    unsetenv("AZURE_AUTHORITY_HOST");
    unsetenv("AZURE_FEDERATED_TOKEN_FILE");
    free(f);
    return 0;
}

static CK_RV get(struct fx *f, const char *tenant, struct akv_secret *hdr,
                 char *why, size_t why_len)
{
    uint64_t gen = 0;
    if (f->auth == NULL) {
        assert_int_equal(akv_auth_new(&f->cred, &f->hc, f->http, &f->auth),
                         CKR_OK);
    }
    return akv_auth_get_header(f->auth, SCOPE, tenant, 0,
                               akv_retry_now_ms() + f->hc.budget_ms, hdr, &gen,
                               why, why_len);
}

static void write_file(const char *path, const char *text, int mode)
{
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    chmod(path, (mode_t)mode);
}

static void test_imds(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256];

    snprintf(f->url, sizeof(f->url), "%s/metadata/identity/oauth2/token",
             mock_url(f->m));
    f->cred.type = AKV_CRED_MANAGED_IDENTITY;
    f->cred.imds_endpoint = f->url;
    f->cred.client_id = (char *)"mi-client";
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_string_equal((char *)h.data, "Authorization: Bearer tok-1");
    assert_int_equal(mock_get(f->m, 0, &r), 0);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/metadata/identity/oauth2/token");
    assert_string_equal(r.query, "api-version=2018-02-01&resource=https%3A%2F%"
                                 "2Fvault.azure.net&client_id=mi-client");
    assert_string_equal(r.metadata, "true");
    assert_string_equal(r.auth, "");
    akv_secret_clear(&h);
}

static void test_imds_retries_404_410(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256];

    snprintf(f->url, sizeof(f->url), "%s/metadata/identity/oauth2/token",
             mock_url(f->m));
    f->cred.type = AKV_CRED_MANAGED_IDENTITY;
    f->cred.imds_endpoint = f->url;
    f->cred.resource_id = (char *)"/subscriptions/s/rg/x";
    f->hc.retries = 2;
    mock_push(f->m, "/metadata", 404, "{}", NULL, 0);
    mock_push(f->m, "/metadata", 410, "{}", NULL, 0);
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_int_equal(mock_count(f->m, "/metadata"), 3);
    assert_int_equal(mock_get(f->m, 2, &r), 0);
    assert_non_null(
        strstr(r.query, "&msi_res_id=%2Fsubscriptions%2Fs%2Frg%2Fx"));
    akv_secret_clear(&h);
}

static void test_app_service(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256];

    snprintf(f->url, sizeof(f->url), "%s/msi/token", mock_url(f->m));
    setenv("IDENTITY_ENDPOINT", f->url, 1);
    setenv("IDENTITY_HEADER", "hdr-secret", 1);
    f->cred.type = AKV_CRED_MANAGED_IDENTITY;
    f->cred.resource_id = (char *)"/sub/x";
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_int_equal(mock_get(f->m, 0, &r), 0);
    assert_string_equal(r.path, "/msi/token");
    assert_string_equal(r.query, "api-version=2019-08-01&resource=https%3A%2F%"
                                 "2Fvault.azure.net&mi_res_id=%2Fsub%2Fx");
    assert_string_equal(r.identity_header, "hdr-secret");
    assert_string_equal(r.metadata, "");
    akv_secret_clear(&h);
}

static void test_client_secret_file(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256] = "";

    write_file(f->tmp, "p@ss word\n", 0600);
    f->cred.type = AKV_CRED_CLIENT_SECRET;
    f->cred.tenant_id = (char *)"t1";
    f->cred.client_id = (char *)"c1";
    f->cred.client_secret_file = f->tmp;
    f->cred.authority_host = (char *)mock_url(f->m);
    assert_int_equal(get(f, "ignored-challenge-tenant", &h, why, sizeof(why)),
                     CKR_OK);
    assert_int_equal(mock_get(f->m, 0, &r), 0);
    assert_string_equal(r.path, "/t1/oauth2/v2.0/token");
    assert_string_equal(r.body,
                        "grant_type=client_credentials&client_id=c1&scope="
                        "https%3A%2F%2Fvault.azure.net%2F.default&client_"
                        "secret=p%40ss%20word");
    akv_secret_clear(&h);
}

static void test_client_secret_world_readable(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    char why[256] = "";

    write_file(f->tmp, "x", 0644);
    f->cred.type = AKV_CRED_CLIENT_SECRET;
    f->cred.tenant_id = (char *)"t1";
    f->cred.client_id = (char *)"c1";
    f->cred.client_secret_file = f->tmp;
    f->cred.authority_host = (char *)mock_url(f->m);
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_DEVICE_ERROR);
    assert_non_null(strstr(why, "world-readable (mode 0644)"));
    assert_int_equal(mock_total(f->m), 0);
    assert_null(h.data);
}

/* StrictModes on every read (common/fsperm.h): a secret file swapped for a
 * symlink, or for another user's file, after the config was checked is
 * refused before anything is sent. */
static void test_client_secret_swapped(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    char why[512] = "";
    char real[640];

    snprintf(real, sizeof(real), "%s.real", f->tmp);
    write_file(real, "p@ss word\n", 0600);
    assert_int_equal(symlink(real, f->tmp), 0);
    f->cred.type = AKV_CRED_CLIENT_SECRET;
    f->cred.tenant_id = (char *)"t1";
    f->cred.client_id = (char *)"c1";
    f->cred.client_secret_file = f->tmp;
    f->cred.authority_host = (char *)mock_url(f->m);
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_DEVICE_ERROR);
    assert_non_null(strstr(why, "client_secret_file refused: "));
    assert_non_null(strstr(why, "is a symbolic link, which is never followed"));
    assert_int_equal(mock_total(f->m), 0);
    assert_null(h.data);
    unlink(f->tmp);
    if (geteuid() == 0) {
        write_file(f->tmp, "p@ss word\n", 0600);
        assert_int_equal(chown(f->tmp, 65534, (gid_t)-1), 0);
        assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_DEVICE_ERROR);
        assert_non_null(strstr(why, "owned by uid 65534"));
        assert_int_equal(mock_total(f->m), 0);
    }
    unlink(real);
}

/* IDENTITY_ENDPOINT follows the imds_endpoint rule: loopback or
 * 169.254.169.254, or the host named in allow_imds_host. */
static void test_app_service_foreign_host(void **state)
{
    struct fx *f = *state;

    setenv("IDENTITY_ENDPOINT", "http://10.1.2.3:8081/msi/token", 1);
    setenv("IDENTITY_HEADER", "hdr-secret", 1);
    f->cred.type = AKV_CRED_MANAGED_IDENTITY;
    assert_int_equal(akv_auth_new(&f->cred, &f->hc, f->http, &f->auth),
                     CKR_GENERAL_ERROR);
    assert_null(f->auth);
    f->cred.allow_imds_host = (char *)"10.1.2.3";
    assert_int_equal(akv_auth_new(&f->cred, &f->hc, f->http, &f->auth), CKR_OK);
    akv_auth_free(f->auth);
    f->auth = NULL;
    f->cred.allow_imds_host = NULL;
    setenv("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token", 1);
    assert_int_equal(akv_auth_new(&f->cred, &f->hc, f->http, &f->auth), CKR_OK);
    assert_int_equal(mock_total(f->m), 0);
}

static void test_workload_identity(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256] = "";

    write_file(f->tmp, "eyJfederated.jwt.sig\n", 0644);
    f->cred.type = AKV_CRED_WORKLOAD_IDENTITY;
    f->cred.tenant_id = (char *)"t2";
    f->cred.client_id = (char *)"c2";
    f->cred.federated_token_file = f->tmp;
    f->cred.authority_host = (char *)mock_url(f->m);
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_int_equal(mock_get(f->m, 0, &r), 0);
    assert_string_equal(r.path, "/t2/oauth2/v2.0/token");
    assert_string_equal(
        r.body, "grant_type=client_credentials&client_id=c2&scope=https%3A%2F%"
                "2Fvault.azure.net%2F.default&client_assertion_type=urn%3Aietf%"
                "3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_"
                "assertion=eyJfederated.jwt.sig");
    akv_secret_clear(&h);
}

static void test_certificate(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256] = "";
    EVP_PKEY *k = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    FILE *fp;

    X509_set_pubkey(x, k);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_sign(x, k, EVP_sha256());
    fp = fopen(f->tmp, "w");
    PEM_write_X509(fp, x);
    PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    chmod(f->tmp, 0600);
    X509_free(x);
    EVP_PKEY_free(k);

    f->cred.type = AKV_CRED_CLIENT_CERTIFICATE;
    f->cred.tenant_id = (char *)"t3";
    f->cred.client_id = (char *)"c3";
    f->cred.certificate_file = f->tmp;
    f->cred.authority_host = (char *)mock_url(f->m);
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_int_equal(mock_get(f->m, 0, &r), 0);
    assert_string_equal(r.path, "/t3/oauth2/v2.0/token");
    assert_non_null(strstr(r.body, "&client_assertion_type=urn%3Aietf%3Aparams"
                                   "%3Aoauth%3Aclient-assertion-type%3Ajwt-"
                                   "bearer&client_assertion=eyJ"));
    assert_null(strstr(r.body, "client_secret"));
    akv_secret_clear(&h);
}

static void test_environment(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256] = "";
    char auth_url[128];

    snprintf(auth_url, sizeof(auth_url), "%s/", mock_url(f->m));
    setenv("AZURE_TENANT_ID", "t4", 1);
    setenv("AZURE_CLIENT_ID", "c4", 1);
    setenv("AZURE_CLIENT_SECRET", "envsecret", 1);
    setenv("AZURE_AUTHORITY_HOST", auth_url, 1);
    f->cred.type = AKV_CRED_ENVIRONMENT;
    /* configured ids do not apply to this type: the environment wins */
    f->cred.tenant_id = (char *)"cfg-tenant";
    f->cred.client_id = (char *)"cfg-client";
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_int_equal(mock_get(f->m, 0, &r), 0);
    assert_string_equal(r.path, "/t4/oauth2/v2.0/token");
    assert_non_null(strstr(r.body, "client_id=c4&"));
    assert_non_null(strstr(r.body, "&client_secret=envsecret"));
    akv_secret_clear(&h);
}

static void test_environment_incomplete(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    char why[256] = "";

    setenv("AZURE_TENANT_ID", "t4", 1);
    f->cred.type = AKV_CRED_ENVIRONMENT;
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_DEVICE_ERROR);
    assert_non_null(strstr(why, "AZURE_CLIENT_ID"));
    assert_int_equal(mock_total(f->m), 0);

    /* a tenant that would change the token URL's path is refused */
    akv_auth_free(f->auth);
    f->auth = NULL;
    setenv("AZURE_TENANT_ID", "t4/../x", 1);
    setenv("AZURE_CLIENT_ID", "c4", 1);
    setenv("AZURE_CLIENT_SECRET", "s", 1);
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_DEVICE_ERROR);
    assert_int_equal(mock_total(f->m), 0);
}

static void test_challenge_tenant_used_without_own(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    struct mock_rec r;
    char why[256] = "";

    /* a credential without a tenant takes the challenge's */
    write_file(f->tmp, "eyJx", 0600);
    f->cred.type = AKV_CRED_WORKLOAD_IDENTITY;
    f->cred.client_id = (char *)"c5";
    f->cred.federated_token_file = f->tmp;
    f->cred.authority_host = (char *)mock_url(f->m);
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_DEVICE_ERROR);
    assert_non_null(strstr(why, "no tenant"));
    assert_int_equal(get(f, "from-challenge", &h, why, sizeof(why)), CKR_OK);
    assert_int_equal(mock_get(f->m, 0, &r), 0);
    assert_string_equal(r.path, "/from-challenge/oauth2/v2.0/token");
    akv_secret_clear(&h);
}

static void test_stale_forces_refresh(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    uint64_t g1 = 0;
    uint64_t g2 = 0;
    uint64_t g3 = 0;
    int64_t dl = akv_retry_now_ms() + 5000;

    snprintf(f->url, sizeof(f->url), "%s/metadata/identity/oauth2/token",
             mock_url(f->m));
    f->cred.type = AKV_CRED_MANAGED_IDENTITY;
    f->cred.imds_endpoint = f->url;
    assert_int_equal(akv_auth_new(&f->cred, &f->hc, f->http, &f->auth), CKR_OK);
    assert_int_equal(
        akv_auth_get_header(f->auth, SCOPE, NULL, 0, dl, &h, &g1, NULL, 0),
        CKR_OK);
    assert_int_equal(
        akv_auth_get_header(f->auth, SCOPE, NULL, 0, dl, &h, &g2, NULL, 0),
        CKR_OK);
    assert_int_equal(g1, g2);
    assert_int_equal(mock_total(f->m), 1);
    /* the service refused generation g1: a new token is fetched */
    assert_int_equal(
        akv_auth_get_header(f->auth, SCOPE, NULL, g1, dl, &h, &g3, NULL, 0),
        CKR_OK);
    assert_int_not_equal(g3, g1);
    assert_string_equal((char *)h.data, "Authorization: Bearer tok-2");
    /* a different scope is a different token */
    assert_int_equal(akv_auth_get_header(f->auth,
                                         "https://managedhsm.azure.net/"
                                         ".default",
                                         NULL, 0, dl, &h, &g3, NULL, 0),
                     CKR_OK);
    assert_int_equal(mock_total(f->m), 3);
    akv_secret_clear(&h);
}

/* Sleeps until 50 ms into the next wall-clock second: token lifetimes are
 * counted in whole seconds, so the timelines below start on a boundary. */
static void align_second(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec = 0;
    ts.tv_nsec = 1000000000L - ts.tv_nsec + 50000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec = 1;
        ts.tv_nsec -= 1000000000L;
    }
    nanosleep(&ts, NULL);
}

static void sleep_ms_(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Issue 8: a token due for refresh but not expired is used when the
 * identity endpoint answers 503; the refresh is retried later, and only an
 * expired token makes the call fail. Lifetime 8 s: refresh due at +4 s,
 * usable until +6 s (AKV_AUTH_EXPIRY_MARGIN_S 2). */
static void test_valid_token_survives_failed_refresh(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    char why[256] = "";
    size_t asked;

    snprintf(f->url, sizeof(f->url), "%s/metadata/identity/oauth2/token",
             mock_url(f->m));
    f->cred.type = AKV_CRED_MANAGED_IDENTITY;
    f->cred.imds_endpoint = f->url;
    mock_set_token_lifetime(f->m, 8);
    align_second();
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_string_equal((char *)h.data, "Authorization: Bearer tok-1");
    sleep_ms_(4000); /* +4.05 s: refresh due, token valid */
    mock_set_default(f->m, "/metadata/identity", 503,
                     "{\"error\":\"service_unavailable\"}");
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_string_equal((char *)h.data, "Authorization: Bearer tok-1");
    asked = mock_count(f->m, "/metadata/identity");
    assert_true(asked >= 2); /* the refresh was tried */
    /* the failed refresh is not repeated on every call */
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_string_equal((char *)h.data, "Authorization: Bearer tok-1");
    assert_int_equal(mock_count(f->m, "/metadata/identity"), asked);
    /* +6.05 s: too close to expiry; the refresh must succeed now */
    align_second();
    align_second();
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_DEVICE_ERROR);
    assert_non_null(strstr(why, "503"));
    assert_true(mock_count(f->m, "/metadata/identity") > asked);
    akv_secret_clear(&h);
}

/* The same with an identity endpoint that does not answer in time: the
 * refresh gets half the call's budget, the call goes on with the valid
 * token within it (the old code spent the whole budget, then failed). */
static void test_valid_token_survives_refresh_timeout(void **state)
{
    struct fx *f = *state;
    struct akv_secret h = AKV_SECRET_INIT;
    char why[256] = "";
    int64_t t0;

    snprintf(f->url, sizeof(f->url), "%s/metadata/identity/oauth2/token",
             mock_url(f->m));
    f->cred.type = AKV_CRED_MANAGED_IDENTITY;
    f->cred.imds_endpoint = f->url;
    f->hc.timeout_ms = 1000;
    f->hc.budget_ms = 2000;
    mock_set_token_lifetime(f->m, 10);
    align_second();
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    sleep_ms_(5000); /* +5.05 s: refresh due, valid until +8 s */
    mock_set_token_delay(f->m, 5000);
    t0 = akv_retry_now_ms();
    assert_int_equal(get(f, NULL, &h, why, sizeof(why)), CKR_OK);
    assert_string_equal((char *)h.data, "Authorization: Bearer tok-1");
    assert_true(akv_retry_now_ms() - t0 < 1500);
    assert_true(mock_count(f->m, "/metadata/identity") >= 2);
    akv_secret_clear(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_imds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_retries_404_410, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_app_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_secret_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_secret_world_readable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_secret_swapped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_app_service_foreign_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_workload_identity, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_incomplete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_challenge_tenant_used_without_own,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_forces_refresh, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_valid_token_survives_failed_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_valid_token_survives_refresh_timeout, setup, teardown),
    };
    akv_log_configure(getenv("AKV_TEST_LOG") != NULL ? AKV_LOG_LEVEL_DEBUG
                                                     : AKV_LOG_LEVEL_NONE,
                      NULL);
    assert_int_equal(akv_kv_global_init(), CKR_OK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
