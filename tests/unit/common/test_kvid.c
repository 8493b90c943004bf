/* SPDX-License-Identifier: Apache-2.0 */
/* common/kvid.c, table-driven: names, versions, loopback hosts, URLs,
 * kids (parse and check against a vault) and the 401-challenge resource
 * rule. Every row is one rule of kvid.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/kvid.h"

#define V1 "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7"

static void test_names(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } t[] = {
        {"cmk", true},  {"My-Key-2", true}, {"-", true},     {"", false},
        {"k_x", false}, {"k.x", false},     {"k/x", false},  {"k x", false},
        {"k\n", false}, {"kéy", false},     {"../x", false},
    };
    char long_name[129];
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (akv_kvid_name_ok(t[i].s, strlen(t[i].s)) != t[i].ok) {
            fail_msg("name \"%s\": expected %d", t[i].s, t[i].ok);
        }
    }
    memset(long_name, 'a', sizeof(long_name));
    assert_true(akv_kvid_name_ok(long_name, 127));
    assert_false(akv_kvid_name_ok(long_name, 128));
    assert_false(akv_kvid_name_ok(NULL, 0));
}

static void test_versions(void **state)
{
    static const struct {
        const char *s;
        const char *norm; /* NULL = refused */
    } t[] = {
        {V1, V1},
        {"0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7", V1},
        {"0b6c", NULL},                             /* short */
        {V1 "0", NULL},                             /* 33 */
        {"0b6c1e2a9f3d4e58a1c7d2e3f4a5b6cg", NULL}, /* not hex */
        {"0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c ", NULL},
        {"", NULL},
    };
    char out[33];
    unsigned char b[16];
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int r = akv_kvid_version_norm(t[i].s, strlen(t[i].s), out);
        if (t[i].norm == NULL) {
            if (r != -1 || out[0] != '\0'
                || akv_kvid_version_ok(t[i].s, strlen(t[i].s))) {
                fail_msg("version \"%s\" accepted", t[i].s);
            }
        } else {
            assert_int_equal(r, 0);
            assert_string_equal(out, t[i].norm);
        }
    }
    assert_int_equal(akv_kvid_version_to_bytes(V1, 32, b), 0);
    assert_int_equal(b[0], 0x0b);
    assert_int_equal(b[15], 0xc7);
    akv_kvid_version_from_bytes(b, out);
    assert_string_equal(out, V1);
    assert_int_equal(akv_kvid_version_to_bytes("0b6c", 4, b), -1);
}

/* The config's rule and the HTTP layer's used to differ: "127.1",
 * "127.0.0.1.5", "127..." passed one and not the other. */
static void test_loopback(void **state)
{
    static const struct {
        const char *h;
        bool ok;
    } t[] = {
        {"localhost", true},
        {"LocalHost", true},
        {"127.0.0.1", true},
        {"127.255.255.254", true},
        {"127.1.2.3", true},
        {"[::1]", true},
        {"::1", true},
        {"127.1", false},
        {"127.0.0.1.5", false},
        {"127...", false},
        {"127.0.0.", false},
        {"127.256.0.1", false},
        {"127.0.0.0001", false},
        {"127.0.0.1.nip.io", false},
        {"localhost.example", false},
        {"localhost.", false},
        {"128.0.0.1", false},
        {"[::2]", false},
        {"[::ffff:127.0.0.1]", false},
        {"0.0.0.0", false},
        {"", false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (akv_kvid_host_is_loopback(t[i].h, strlen(t[i].h)) != t[i].ok) {
            fail_msg("loopback \"%s\": expected %d", t[i].h, t[i].ok);
        }
    }
    /* LEN bounds the host: a port after it is not looked at */
    assert_true(akv_kvid_host_is_loopback("127.0.0.1:8443", 9));
    assert_false(akv_kvid_host_is_loopback(NULL, 0));
}

static void test_urls(void **state)
{
    static const struct {
        const char *url;
        int ok;
        bool https;
        const char *host;
        unsigned port;
        const char *path;
    } t[] = {
        {"https://MyVault.Vault.Azure.Net", 1, true, "myvault.vault.azure.net",
         443, ""},
        {"https://v.vault.azure.net:443/keys/k", 1, true, "v.vault.azure.net",
         443, "/keys/k"},
        {"http://127.0.0.1:8080/", 1, false, "127.0.0.1", 8080, "/"},
        {"http://[::1]:1", 1, false, "[::1]", 1, ""},
        {"https://v:65535", 1, true, "v", 65535, ""},
        {"ftp://v", 0, false, NULL, 0, NULL},
        {"https://", 0, false, NULL, 0, NULL},
        {"https://:443", 0, false, NULL, 0, NULL},
        {"https://v:0", 0, false, NULL, 0, NULL},
        {"https://v:65536", 0, false, NULL, 0, NULL},
        {"https://v:", 0, false, NULL, 0, NULL},
        {"https://v:4a", 0, false, NULL, 0, NULL},
        {"https://user@v", 0, false, NULL, 0, NULL},
        {"https://v/k?x=1", 0, false, NULL, 0, NULL},
        {"https://v/#f", 0, false, NULL, 0, NULL},
        {"https://v w", 0, false, NULL, 0, NULL},
        {"https://v\n", 0, false, NULL, 0, NULL},
        {"https://v..x", 0, false, NULL, 0, NULL},
        {"https://.v", 0, false, NULL, 0, NULL},
        {"https://v\\@evil", 0, false, NULL, 0, NULL},
        {"https://[::1", 0, false, NULL, 0, NULL},
        {"https://[zz]", 0, false, NULL, 0, NULL},
    };
    struct akv_kvid_url u;
    struct akv_kvid_url a;
    struct akv_kvid_url b;
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int r = akv_kvid_url_parse(t[i].url, &u);
        if ((r == 0) != (t[i].ok == 1)) {
            fail_msg("url \"%s\": expected ok=%d", t[i].url, t[i].ok);
        }
        if (r == 0) {
            assert_int_equal(u.https, t[i].https);
            assert_string_equal(u.host, t[i].host);
            assert_int_equal(u.port, t[i].port);
            assert_string_equal(u.path, t[i].path);
        } else {
            assert_string_equal(u.host, "");
        }
    }
    /* default ports compare equal to explicit ones; scheme matters */
    assert_int_equal(akv_kvid_url_parse("https://V.x", &a), 0);
    assert_int_equal(akv_kvid_url_parse("https://v.X:443/keys", &b), 0);
    assert_true(akv_kvid_same_origin(&a, &b));
    assert_int_equal(akv_kvid_url_parse("http://v.x:443", &b), 0);
    assert_false(akv_kvid_same_origin(&a, &b));
    assert_int_equal(akv_kvid_url_parse("https://v.x:8443", &b), 0);
    assert_false(akv_kvid_same_origin(&a, &b));
    assert_int_equal(akv_kvid_url_parse(NULL, &u), -1);
}

static void test_kids(void **state)
{
    static const struct {
        const char *kid;
        enum akv_kvid_kid_err err; /* against vault https://v.vault.azure.net,
                                      key "cmk", any version */
        const char *version;       /* parsed, on success */
    } t[] = {
        {"https://v.vault.azure.net/keys/cmk/" V1, AKV_KVID_KID_OK, V1},
        {"https://V.VAULT.AZURE.NET:443/keys/CMK/0B6C1E2A9F3D4E58A1C7D2E3F4A5B6"
         "C7",
         AKV_KVID_KID_OK, V1},
        {"https://evil.example/keys/cmk/" V1, AKV_KVID_KID_ORIGIN, NULL},
        {"https://v.vault.azure.net:8443/keys/cmk/" V1, AKV_KVID_KID_ORIGIN,
         NULL},
        {"http://v.vault.azure.net/keys/cmk/" V1, AKV_KVID_KID_ORIGIN, NULL},
        {"https://v.vault.azure.net.evil/keys/cmk/" V1, AKV_KVID_KID_ORIGIN,
         NULL},
        {"https://v.vault.azure.net/keys/other/" V1, AKV_KVID_KID_NAME, NULL},
        {"https://v.vault.azure.net/keys/cmk", AKV_KVID_KID_VERSION, NULL},
        {"https://v.vault.azure.net/keys/cmk/", AKV_KVID_KID_VERSION, NULL},
        {"https://v.vault.azure.net/keys/cmk/0b6c", AKV_KVID_KID_MALFORMED,
         NULL},
        {"https://v.vault.azure.net/keys/cmk/" V1 "/x", AKV_KVID_KID_MALFORMED,
         NULL},
        {"https://v.vault.azure.net/keys/cmk/" V1 "/", AKV_KVID_KID_MALFORMED,
         NULL},
        {"https://v.vault.azure.net/secrets/cmk/" V1, AKV_KVID_KID_MALFORMED,
         NULL},
        {"https://v.vault.azure.net/keys//" V1, AKV_KVID_KID_MALFORMED, NULL},
        {"https://v.vault.azure.net/keys/c_k/" V1, AKV_KVID_KID_MALFORMED,
         NULL},
        {"https://v.vault.azure.net/keys/cmk/" V1 "?api-version=7.4",
         AKV_KVID_KID_MALFORMED, NULL},
        {"https://v.vault.azure.net/keys/cmk/" V1 "\nforged",
         AKV_KVID_KID_MALFORMED, NULL},
        {"https://u@v.vault.azure.net/keys/cmk/" V1, AKV_KVID_KID_MALFORMED,
         NULL},
        {"v.vault.azure.net/keys/cmk/" V1, AKV_KVID_KID_MALFORMED, NULL},
        {"", AKV_KVID_KID_MALFORMED, NULL},
    };
    struct akv_kvid_url vault;
    struct akv_kvid_kid k;
    (void)state;

    assert_int_equal(akv_kvid_url_parse("https://v.vault.azure.net", &vault),
                     0);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        enum akv_kvid_kid_err e =
            akv_kvid_kid_check(&vault, t[i].kid, "cmk", NULL, &k);
        if (e != t[i].err) {
            fail_msg("kid \"%s\": got %d (%s), expected %d", t[i].kid, (int)e,
                     akv_kvid_kid_strerror(e), (int)t[i].err);
        }
        if (e == AKV_KVID_KID_OK) {
            assert_string_equal(k.version, t[i].version);
            assert_string_equal(k.url.host, "v.vault.azure.net");
        } else {
            assert_string_equal(k.name, "");
        }
    }
    /* a pinned version must come back as that one (any case) */
    assert_int_equal(
        akv_kvid_kid_check(&vault, "https://v.vault.azure.net/keys/cmk/" V1,
                           "CMK", "0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7", NULL),
        AKV_KVID_KID_OK);
    assert_int_equal(
        akv_kvid_kid_check(&vault, "https://v.vault.azure.net/keys/cmk/" V1,
                           "cmk", "11111111111111111111111111111111", NULL),
        AKV_KVID_KID_VERSION);
    /* base identifiers parse (name only) */
    assert_int_equal(akv_kvid_kid_parse("https://v/keys/cmk/", &k), 0);
    assert_string_equal(k.name, "cmk");
    assert_string_equal(k.version, "");
    assert_string_equal(akv_kvid_kid_strerror(AKV_KVID_KID_ORIGIN),
                        "names another vault (scheme, host or port)");
}

static void test_resource_host(void **state)
{
    static const struct {
        const char *vault;
        const char *resource;
        bool ok;
    } t[] = {
        {"myvault.vault.azure.net", "vault.azure.net", true},
        {"MyVault.Vault.Azure.Net", "VAULT.azure.net", true},
        {"h.managedhsm.azure.net", "managedhsm.azure.net", true},
        {"myvault.vault.azure.net", "azure.net", true},
        {"myvault.vault.azure.net", "net", false}, /* the SDKs accept this */
        {"myvault.vault.azure.net", "", false},
        {"myvault.vault.azure.net", ".net", false},
        {"myvault.vault.azure.net", "azure.net.", false},
        {"myvault.vault.azure.net", "ault.azure.net", false},
        {"myvault.vault.azure.net", "vault.azure.net.evil", false},
        {"myvault.vault.azure.net", "myvault.vault.azure.net", false},
        {"vault.azure.net", "vault.azure.net", false},
        {"evilvault.azure.net", "vault.azure.net", false},
        {"127.0.0.1", "0.0.1", false}, /* an address has no domain */
        {"10.1.2.3", "2.3", false},
        {"127.0.0.1", "vault.azure.net", false},
        {"[::1]", "vault.azure.net", false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (akv_kvid_resource_host_ok(t[i].vault, t[i].resource) != t[i].ok) {
            fail_msg("resource \"%s\" for \"%s\": expected %d", t[i].resource,
                     t[i].vault, t[i].ok);
        }
    }
    assert_false(akv_kvid_resource_host_ok(NULL, "vault.azure.net"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),    cmocka_unit_test(test_versions),
        cmocka_unit_test(test_loopback), cmocka_unit_test(test_urls),
        cmocka_unit_test(test_kids),     cmocka_unit_test(test_resource_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
