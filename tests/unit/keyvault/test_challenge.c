/* SPDX-License-Identifier: Apache-2.0 */
/* keyvault/auth.c: WWW-Authenticate challenge parsing (keyvault-protocol.md
 * §3.3, §4.7 incl. the JS parser quirks), the resource/host check and the
 * token refresh schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyvault/auth.h"

static void test_real_challenge(void **state)
{
    struct akv_challenge ch;
    (void)state;

    assert_int_equal(akv_auth_parse_challenge(
                         "Bearer authorization=\"https://login.windows.net/"
                         "72f988bf-86f1-41af-91ab-2d7cd011db47\", "
                         "resource=\"https://vault.azure.net\"",
                         &ch),
                     0);
    assert_string_equal(ch.authorization, "https://login.windows.net/"
                                          "72f988bf-86f1-41af-91ab-"
                                          "2d7cd011db47");
    assert_string_equal(ch.tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_string_equal(ch.resource, "https://vault.azure.net");
    assert_string_equal(ch.scope, "https://vault.azure.net/.default");
}

static void test_quirks(void **state)
{
    struct akv_challenge ch;
    (void)state;

    /* comma without space: JS breaks, we do not */
    assert_int_equal(akv_auth_parse_challenge(
                         "Bearer authorization=\"https://login.microsoftonline"
                         ".com/tid\",resource=\"https://vault.azure.net\"",
                         &ch),
                     0);
    assert_string_equal(ch.tenant, "tid");
    assert_string_equal(ch.scope, "https://vault.azure.net/.default");
    /* trailing slash after the tenant: not part of the tenant */
    assert_int_equal(akv_auth_parse_challenge(
                         "Bearer authorization=\"https://login.microsoftonline"
                         ".com/tid/\", resource=\"https://vault.azure.net/\"",
                         &ch),
                     0);
    assert_string_equal(ch.tenant, "tid");
    assert_string_equal(ch.scope, "https://vault.azure.net/.default");
    /* authorization_uri alias, scope instead of resource, Managed HSM */
    assert_int_equal(akv_auth_parse_challenge(
                         "bearer authorization_uri=\"https://login.micro"
                         "softonline.com/t2\", scope=\"https://managedhsm."
                         "azure.net/.default\"",
                         &ch),
                     0);
    assert_string_equal(ch.tenant, "t2");
    assert_string_equal(ch.scope, "https://managedhsm.azure.net/.default");
    /* CAE claims challenge parameters are ignored; bare values accepted */
    assert_int_equal(akv_auth_parse_challenge(
                         "Bearer realm=\"\", authorization=https://login/t3, "
                         "error=\"insufficient_claims\", claims=\"eyJhIjoxfQ"
                         "==\", resource=\"https://vault.azure.net\"",
                         &ch),
                     0);
    assert_string_equal(ch.tenant, "t3");
    /* no tenant in the path: scope still usable */
    assert_int_equal(akv_auth_parse_challenge(
                         "Bearer resource=\"https://vault.azure.net\"", &ch),
                     0);
    assert_string_equal(ch.tenant, "");
    /* a tenant with path tricks is dropped */
    assert_int_equal(
        akv_auth_parse_challenge("Bearer authorization=\"https://l/%2e%2e\", "
                                 "resource=\"https://vault.azure.net\"",
                                 &ch),
        0);
    assert_string_equal(ch.tenant, "");
}

static void test_rejects(void **state)
{
    struct akv_challenge ch;
    static const char *const bad[] = {
        "",
        "Basic realm=\"x\"",
        "Bearer",
        "Bearer authorization=\"https://login/t\"",   /* no resource/scope */
        "Bearer resource=\"http://vault.azure.net\"", /* not https */
        "Bearer resource=\"https://vault.azure.net",  /* unterminated */
        "Bearer =\"x\"",
        "Bearerx resource=\"https://vault.azure.net\"",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (akv_auth_parse_challenge(bad[i], &ch) != -1) {
            fail_msg("accepted bad[%zu]: %s", i, bad[i]);
        }
        assert_string_equal(ch.scope, "");
    }
    assert_int_equal(akv_auth_parse_challenge(NULL, &ch), -1);
}

static void test_host_check(void **state)
{
    struct akv_challenge ch;
    (void)state;

    akv_auth_parse_challenge("Bearer resource=\"https://vault.azure.net\"",
                             &ch);
    assert_true(
        akv_auth_challenge_host_ok("https://myvault.vault.azure.net", &ch));
    assert_true(
        akv_auth_challenge_host_ok("https://MyVault.Vault.Azure.Net:443", &ch));
    assert_false(akv_auth_challenge_host_ok("https://vault.azure.net", &ch));
    assert_false(
        akv_auth_challenge_host_ok("https://evilvault.azure.net", &ch));
    assert_false(akv_auth_challenge_host_ok("https://127.0.0.1:8443", &ch));
    assert_false(
        akv_auth_challenge_host_ok("https://x.vault.azure.net.evil", &ch));
    akv_auth_parse_challenge(
        "Bearer scope=\"https://managedhsm.azure.net/.default\"", &ch);
    assert_true(
        akv_auth_challenge_host_ok("https://h.managedhsm.azure.net", &ch));
    assert_false(akv_auth_challenge_host_ok("https://v.vault.azure.net", &ch));

    /* a one-label resource is a top-level domain, not Key Vault's: the
     * SDKs' endsWith("." + host) accepts it, we do not (issue 7) */
    static const char *const tld[] = {
        "Bearer resource=\"https://net\"",
        "Bearer resource=\"https://NET/\"",
        "Bearer scope=\"https://net/.default\"",
        "Bearer resource=\"https://net.\"",
        "Bearer resource=\"https://.azure.net\"",
    };
    for (size_t i = 0; i < sizeof(tld) / sizeof(tld[0]); i++) {
        if (akv_auth_parse_challenge(tld[i], &ch) == 0
            && akv_auth_challenge_host_ok("https://x.vault.azure.net", &ch)) {
            fail_msg("token offered to %s", tld[i]);
        }
    }
    /* two labels at a label boundary are enough */
    assert_int_equal(
        akv_auth_parse_challenge("Bearer resource=\"https://azure.net\"", &ch),
        0);
    assert_true(akv_auth_challenge_host_ok("https://x.vault.azure.net", &ch));
    assert_false(
        akv_auth_challenge_host_ok("https://x.vaultazure.net.evil.com", &ch));
}

static void test_refresh_schedule(void **state)
{
    (void)state;
    /* 5 minutes before expiry for ordinary tokens */
    assert_int_equal(akv_auth_refresh_at(1000, 3600), 1000 + 3300);
    assert_int_equal(akv_auth_refresh_at(1000, 600), 1000 + 300);
    /* half the lifetime when it is under 10 minutes */
    assert_int_equal(akv_auth_refresh_at(1000, 599), 1000 + 299);
    assert_int_equal(akv_auth_refresh_at(1000, 60), 1030);
    assert_int_equal(akv_auth_refresh_at(1000, 1), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_challenge),
        cmocka_unit_test(test_quirks),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_host_check),
        cmocka_unit_test(test_refresh_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
