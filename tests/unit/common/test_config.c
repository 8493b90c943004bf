/* SPDX-License-Identifier: Apache-2.0 */
/* common/config.c: the documented schema (conf/README.md), its defaults, and
 * the exact messages broken configurations produce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/log.h"

static char secret_ok[512];    /* mode 0600 */
static char secret_world[512]; /* mode 0644 */

static int setup(void **state)
{
    const char *dir = getenv("AKV_TEST_TMP");
    FILE *f;
    (void)state;

    if (dir == NULL) {
        dir = "/tmp";
    }
    snprintf(secret_ok, sizeof(secret_ok), "%s/cfg-secret-%d", dir,
             (int)getpid());
    snprintf(secret_world, sizeof(secret_world), "%s/cfg-secret-w-%d", dir,
             (int)getpid());
    f = fopen(secret_ok, "w");
    fputs("s3cret\n", f);
    fclose(f);
    chmod(secret_ok, 0600);
    f = fopen(secret_world, "w");
    fputs("s3cret\n", f);
    fclose(f);
    chmod(secret_world, 0644);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(secret_ok);
    unlink(secret_world);
    return 0;
}

static int parse(const char *json, struct akv_config **cfg, char *err,
                 size_t err_len)
{
    return akv_config_parse(json, strlen(json), "config.json", cfg, err,
                            err_len);
}

static void test_happy_path(void **state)
{
    char json[4096];
    char err[512];
    struct akv_config *cfg = NULL;
    const struct akv_token_config *t;
    (void)state;

    snprintf(json, sizeof(json),
             "{\"log\":{\"level\":\"debug\",\"target\":\"syslog\"},"
             "\"tokens\":[{"
             " \"label\":\"registry-cmk\","
             " \"vault_url\":\"https://myvault.vault.azure.net/\","
             " \"keys\":[\"cmk\",{\"name\":\"old\",\"version\":"
             "\"0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7\"},{\"name\":\"n2\","
             "\"version\":null}],"
             " \"credential\":{\"type\":\"client_secret\","
             "   \"tenant_id\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\","
             "   \"client_id\":\"11111111-2222-3333-4444-555555555555\","
             "   \"client_secret_file\":\"%s\"},"
             " \"store_dir\":\"/var/lib/akv\","
             " \"wrap\":\"local\","
             " \"http\":{\"timeout_ms\":5000,\"budget_ms\":20000,"
             "   \"retries\":2,\"verify_challenge_resource\":false,"
             "   \"reuse_answer_ms\":0},"
             " \"api_version\":\"7.5\","
             " \"key_refresh_s\":30,\"dek_cache_ttl_s\":120"
             "},{"
             " \"label\":\"mi\","
             " \"vault_url\":\"https://hsm1.managedhsm.azure.net\","
             " \"keys\":[\"k\"],"
             " \"credential\":{\"type\":\"managed_identity\","
             "   \"client_id\":\"abc\"}"
             "}]}",
             secret_ok);
    assert_int_equal(parse(json, &cfg, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_non_null(cfg);
    assert_string_equal(cfg->path, "config.json");
    assert_int_equal(cfg->log_level, AKV_LOG_LEVEL_DEBUG);
    assert_string_equal(cfg->log_target, "syslog");
    assert_int_equal(cfg->n_tokens, 2);

    t = &cfg->tokens[0];
    assert_string_equal(t->label, "registry-cmk");
    assert_string_equal(t->vault_url, "https://myvault.vault.azure.net");
    assert_int_equal(t->n_keys, 3);
    assert_string_equal(t->keys[0].name, "cmk");
    assert_null(t->keys[0].version);
    assert_string_equal(t->keys[1].name, "old");
    assert_string_equal(t->keys[1].version, "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7");
    assert_null(t->keys[2].version);
    assert_int_equal(t->cred.type, AKV_CRED_CLIENT_SECRET);
    assert_string_equal(t->cred.tenant_id,
                        "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_string_equal(t->cred.client_secret_file, secret_ok);
    assert_string_equal(t->cred.authority_host,
                        "https://login.microsoftonline.com");
    assert_string_equal(t->store_dir, "/var/lib/akv");
    assert_int_equal(t->wrap, AKV_WRAP_LOCAL);
    assert_int_equal(t->http.timeout_ms, 5000);
    assert_int_equal(t->http.budget_ms, 20000);
    assert_int_equal(t->http.retries, 2);
    assert_int_equal(t->http.reuse_answer_ms, 0); /* 0 = off is allowed */
    assert_false(t->http.verify_challenge_resource);
    assert_false(t->http.allow_http_loopback);
    assert_string_equal(t->api_version, "7.5");
    assert_string_equal(t->scope, "https://vault.azure.net/.default");
    assert_int_equal(t->key_refresh_s, 30);
    assert_int_equal(t->dek_cache_ttl_s, 120);

    /* defaults */
    t = &cfg->tokens[1];
    assert_int_equal(t->cred.type, AKV_CRED_MANAGED_IDENTITY);
    assert_string_equal(t->cred.client_id, "abc");
    assert_null(t->cred.imds_endpoint); /* default applied by the client */
    assert_string_equal(t->scope, "https://managedhsm.azure.net/.default");
    assert_string_equal(t->api_version, "7.4");
    assert_int_equal(t->http.timeout_ms, 10000);
    assert_int_equal(t->http.budget_ms, 30000);
    assert_int_equal(t->http.retries, 4);
    assert_int_equal(t->http.reuse_answer_ms, 2000);
    assert_true(t->http.verify_challenge_resource);
    assert_null(t->http.ca_file);
    assert_null(t->store_dir);
    assert_int_equal(t->wrap, AKV_WRAP_REMOTE);
    assert_int_equal(t->key_refresh_s, 60);
    assert_int_equal(t->dek_cache_ttl_s, 0);
    akv_config_free(cfg);
}

static void test_log_level_and_loopback(void **state)
{
    const char *json =
        "{\"log_level\":\"warn\",\"tokens\":[{\"label\":\"emu\","
        "\"vault_url\":\"http://127.0.0.1:8443\",\"keys\":[\"k\"],"
        "\"http\":{\"allow_http_loopback\":true,\"ca_file\":\"/dev/null\"},"
        "\"credential\":{\"type\":\"environment\"},\"scope\":"
        "\"https://vault.azure.net/.default\",\"future_key\":1}]}";
    struct akv_config *cfg = NULL;
    char err[512];
    (void)state;

    assert_int_equal(parse(json, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->log_level, AKV_LOG_LEVEL_WARN);
    assert_null(cfg->log_target);
    assert_true(cfg->tokens[0].http.allow_http_loopback);
    assert_string_equal(cfg->tokens[0].http.ca_file, "/dev/null");
    assert_string_equal(cfg->tokens[0].vault_url, "http://127.0.0.1:8443");
    akv_config_free(cfg);
}

#define TOK_HEAD "{\"tokens\":[{\"label\":\"t\","
#define MI_CRED  "\"credential\":{\"type\":\"managed_identity\"}"
#define VAULT    "\"vault_url\":\"https://v.vault.azure.net\""

static void expect_error(const char *json, const char *want)
{
    struct akv_config *cfg = (struct akv_config *)(uintptr_t)1;
    char err[512];

    assert_int_equal(parse(json, &cfg, err, sizeof(err)), -1);
    assert_null(cfg);
    if (strstr(err, want) == NULL) {
        fail_msg("got \"%s\", want it to contain \"%s\"", err, want);
    }
}

static void test_broken(void **state)
{
    char json[2048];
    (void)state;

    expect_error("{\"tokens\":[}", "config.json: invalid JSON at line 1, "
                                   "column 12");
    expect_error("{\n \"tokens\": [\n  {,\n", "config.json: invalid JSON at "
                                              "line 3");
    expect_error("[]", "config.json: top level must be a JSON object, got "
                       "array");
    expect_error("{}", "config.json: tokens: missing (required array");
    expect_error("{\"tokens\":{}}", "config.json: tokens: expected an array, "
                                    "got object");
    expect_error("{\"tokens\":[]}", "config.json: tokens: must hold 1 to 64 "
                                    "tokens (has 0)");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"foo\"}}]}",
                 "config.json: tokens[0].credential.type: unknown value "
                 "\"foo\" (expected managed_identity, client_secret, "
                 "client_certificate, workload_identity, environment)");
    expect_error("{\"tokens\":[{" VAULT ",\"keys\":[\"k\"]," MI_CRED "}]}",
                 "config.json: tokens[0].label: missing (required string)");
    expect_error("{\"tokens\":[{\"label\":\"123456789012345678901234567890123"
                 "\"," VAULT ",\"keys\":[\"k\"]," MI_CRED "}]}",
                 "tokens[0].label: \"123456789012345678901234567890123\" is "
                 "longer than 32 bytes");
    expect_error(TOK_HEAD "\"vault_url\":\"http://v.vault.azure.net\","
                          "\"keys\":[\"k\"]," MI_CRED "}]}",
                 "config.json: tokens[0].vault_url: \"http://v.vault.azure.net"
                 "\" must use https://");
    expect_error(TOK_HEAD
                 "\"vault_url\":\"http://10.0.0.1:80\",\"http\":{"
                 "\"allow_http_loopback\":true},\"keys\":[\"k\"]," MI_CRED
                 "}]}",
                 "tokens[0].vault_url: \"http://10.0.0.1:80\": http:// is "
                 "allowed only to a loopback address");
    expect_error(TOK_HEAD "\"vault_url\":\"https://v.vault.azure.net/x?y=1\","
                          "\"keys\":[\"k\"]," MI_CRED "}]}",
                 "must not contain user info, a query or a fragment");
    expect_error(TOK_HEAD VAULT "," MI_CRED "}]}",
                 "tokens[0].keys: missing (required array of key names)");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"bad_name\"]," MI_CRED "}]}",
                 "tokens[0].keys[0]: \"bad_name\" is not a Key Vault key name");
    expect_error(TOK_HEAD VAULT ",\"keys\":[{\"name\":\"k\",\"version\":"
                                "\"ab/cd\"}]," MI_CRED "}]}",
                 "tokens[0].keys[0].version: \"ab/cd\" is not a key version");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\",\"K\"]," MI_CRED "}]}",
                 "tokens[0].keys[1]: key \"K\" listed twice");
    expect_error(TOK_HEAD VAULT ",\"keys\":[42]," MI_CRED "}]}",
                 "tokens[0].keys[0]: expected a key name or "
                 "{\"name\",\"version\"}, got number");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"client_secret\",\"tenant_id\":\"t\"}}]}",
                 "tokens[0].credential: type client_secret needs tenant_id "
                 "and client_id");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"client_secret\",\"tenant_id\":\"t\","
                                "\"client_id\":\"c\"}}]}",
                 "needs exactly one of client_secret_file or "
                 "client_secret_env");
    snprintf(json, sizeof(json),
             TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                            "\"client_secret\",\"tenant_id\":\"t\","
                            "\"client_id\":\"c\",\"client_secret_file\":"
                            "\"%s\"}}]}",
             secret_world);
    expect_error(json, "tokens[0].credential.client_secret_file: ");
    expect_error(json, "is world-readable (mode 0644)");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"client_secret\",\"tenant_id\":\"t\","
                                "\"client_id\":\"c\",\"client_secret_file\":"
                                "\"/nonexistent/akv\"}}]}",
                 "client_secret_file: \"/nonexistent/akv\": No such file");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"managed_identity\",\"client_id\":\"a\","
                                "\"object_id\":\"b\"}}]}",
                 "give at most one of client_id, object_id, resource_id");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"client_certificate\",\"tenant_id\":\"t\","
                                "\"client_id\":\"c\"}}]}",
                 "type client_certificate needs tenant_id, client_id and "
                 "certificate_file");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"workload_identity\",\"tenant_id\":\"t\","
                                "\"client_id\":\"c\"}}]}",
                 "type workload_identity needs tenant_id, client_id and "
                 "federated_token_file");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"],\"credential\":{\"type\":"
                                "\"client_secret\",\"tenant_id\":\"t/../x\","
                                "\"client_id\":\"c\",\"client_secret_env\":"
                                "\"E\"}}]}",
                 "credential.tenant_id: \"t/../x\" is not a tenant id");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"http\":{\"timeout_ms\":\"10\"}}]}",
                 "tokens[0].http.timeout_ms: expected an integer, got string");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"http\":{\"retries\":11}}]}",
                 "tokens[0].http.retries: out of range (0..10)");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"http\":{\"reuse_answer_ms\":-1}}]}",
                 "tokens[0].http.reuse_answer_ms: out of range (0..600000)");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"http\":{\"timeout_ms\":1e300}}]}",
                 "tokens[0].http.timeout_ms: out of range");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"http\":{\"timeout_ms\":20000,"
                                "\"budget_ms\":10000}}]}",
                 "tokens[0].http.budget_ms: 10000 is less than "
                 "http.timeout_ms (20000)");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"http\":{\"allow_http_loopback\":1}}]}",
                 "allow_http_loopback: expected true or false, got number");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"wrap\":\"sideways\"}]}",
                 "tokens[0].wrap: unknown value \"sideways\" (expected "
                 "remote, local)");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"store_dir\":\"relative/dir\"}]}",
                 "tokens[0].store_dir: \"relative/dir\" must be an absolute "
                 "path");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"api_version\":\"7.4&x=1\"}]}",
                 "tokens[0].api_version: \"7.4&x=1\" is not an api-version");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"ca_file\":\"/nonexistent/ca.pem\"}]}",
                 "tokens[0].ca_file: \"/nonexistent/ca.pem\": No such file");
    expect_error(TOK_HEAD VAULT ",\"keys\":[\"k\"]," MI_CRED
                                ",\"ca_file\":\"/dev/null\",\"http\":{"
                                "\"ca_file\":\"/etc/hosts\"}}]}",
                 "tokens[0].ca_file: differs from http.ca_file");
    expect_error("{\"tokens\":[{\"label\":\"a\"," VAULT
                 ",\"keys\":[\"k\"]," MI_CRED "},{\"label\":\"a\"," VAULT
                 ",\"keys\":[\"k\"]," MI_CRED "}]}",
                 "config.json: tokens[1].label: \"a\" is already used by "
                 "tokens[0]");
    expect_error(TOK_HEAD VAULT "," VAULT ",\"keys\":[\"k\"]," MI_CRED "}]}",
                 "tokens[0].vault_url: duplicate key");
    expect_error("{\"tokens\":[{\"label\":\"a\\tb\"," VAULT
                 ",\"keys\":[\"k\"]," MI_CRED "}]}",
                 "tokens[0].label: contains a control character");
    {
        /* objects are bounded: 65 members */
        char big[4096];
        size_t o = (size_t)snprintf(big, sizeof(big), "{\"tokens\":[],");
        for (int i = 0; i < 65; i++) {
            o +=
                (size_t)snprintf(big + o, sizeof(big) - o, "\"x%d\":%d,", i, i);
        }
        snprintf(big + o - 1, sizeof(big) - o + 1, "}");
        expect_error(big, "config.json: too many members (66, at most 64)");
    }
    expect_error("{\"log_level\":\"loud\",\"tokens\":[]}",
                 "config.json: log_level: unknown value \"loud\"");
    expect_error("{\"log_level\":\"info\",\"log\":{\"level\":\"info\"},"
                 "\"tokens\":[]}",
                 "log.level: given together with log_level");
    expect_error("{\"tokens\":[]} trailing", "unexpected text after the JSON "
                                             "document");
    expect_error(TOK_HEAD "\"vault_url\":\"\",\"keys\":[\"k\"]," MI_CRED "}]}",
                 "tokens[0].vault_url: must not be empty");
    expect_error(TOK_HEAD "\"vault_url\":\"ftp://x\",\"keys\":[\"k\"]," MI_CRED
                          "}]}",
                 "tokens[0].vault_url: \"ftp://x\" is not an https:// URL");
    /* host and port per common/kvid.c */
    expect_error(TOK_HEAD
                 "\"vault_url\":\"https://v..x\",\"keys\":[\"k\"]," MI_CRED
                 "}]}",
                 "tokens[0].vault_url: \"https://v..x\" has an invalid host "
                 "or port");
    expect_error(TOK_HEAD
                 "\"vault_url\":\"https://v:99999\",\"keys\":[\"k\"]," MI_CRED
                 "}]}",
                 "tokens[0].vault_url: \"https://v:99999\" has an invalid host "
                 "or port");
    /* http:// to loopback means 127.a.b.c in full: "127.1" and "127..."
     * passed here and failed in the HTTP layer before */
    expect_error(TOK_HEAD
                 "\"vault_url\":\"http://127.1:8080\",\"http\":{"
                 "\"allow_http_loopback\":true},\"keys\":[\"k\"]," MI_CRED
                 "}]}",
                 "\"http://127.1:8080\": http:// is allowed only to a "
                 "loopback address");
    expect_error(TOK_HEAD
                 "\"vault_url\":\"http://127.0.0.1.5\",\"http\":{"
                 "\"allow_http_loopback\":true},\"keys\":[\"k\"]," MI_CRED
                 "}]}",
                 "\"http://127.0.0.1.5\": http:// is allowed only to a "
                 "loopback address");
    /* key versions are Key Vault's 32 hex digits */
    expect_error(TOK_HEAD VAULT ",\"keys\":[{\"name\":\"k\",\"version\":"
                                "\"v1\"}]," MI_CRED "}]}",
                 "\"v1\" is not a key version (32 hex digits)");
}

/* tokens[].certificate / certificate_file (README "Certificates"). */
static void test_certificate_keys(void **state)
{
#define TOK(extra)                                                             \
    "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"                             \
    "\"https://v.vault.azure.net\",\"keys\":[\"cmk\"],"                        \
    "\"credential\":{\"type\":\"managed_identity\"}" extra "}]}"
    struct akv_config *cfg = NULL;
    char err[512];
    (void)state;

    assert_int_equal(parse(TOK(""), &cfg, err, sizeof(err)), 0);
    assert_null(cfg->tokens[0].certificate);
    assert_null(cfg->tokens[0].certificate_file);
    akv_config_free(cfg);
    assert_int_equal(
        parse(TOK(",\"certificate\":\"web-cert\""), &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->tokens[0].certificate, "web-cert");
    akv_config_free(cfg);
    assert_int_equal(parse(TOK(",\"certificate_file\":\"/etc/c.pem\""), &cfg,
                           err, sizeof(err)),
                     0);
    assert_string_equal(cfg->tokens[0].certificate_file, "/etc/c.pem");
    akv_config_free(cfg);
    expect_error(TOK(",\"certificate\":\"a b\""),
                 "tokens[0].certificate: \"a b\" is not a Key Vault "
                 "certificate name");
    expect_error(TOK(",\"certificate\":\"\""),
                 "tokens[0].certificate: must not be empty");
    expect_error(TOK(",\"certificate_file\":\"c.pem\""),
                 "tokens[0].certificate_file: \"c.pem\" must be an absolute "
                 "path");
    expect_error(TOK(",\"certificate\":\"x\",\"certificate_file\":\"/c\""),
                 "give certificate or certificate_file, not both");
    expect_error(TOK(",\"certificate\":7"), "tokens[0].certificate");
#undef TOK
}

static void test_load_file(void **state)
{
    char path[600];
    char err[512];
    struct akv_config *cfg = NULL;
    FILE *f;
    (void)state;

    snprintf(path, sizeof(path), "%s.json", secret_ok);
    f = fopen(path, "w");
    fputs("{\"tokens\":[{\"label\":\"x\",\"vault_url\":\"https://a.vault."
          "azure.cn\",\"keys\":[\"k\"],\"credential\":{\"type\":\"workload_"
          "identity\",\"tenant_id\":\"t\",\"client_id\":\"c\",\"federated_"
          "token_file\":\"/var/run/t\",\"authority_host\":\"https://login."
          "chinacloudapi.cn/\"}}]}",
          f);
    fclose(f);
    assert_int_equal(akv_config_load(path, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->path, path);
    assert_string_equal(cfg->tokens[0].scope,
                        "https://vault.azure.cn/.default");
    assert_string_equal(cfg->tokens[0].cred.authority_host,
                        "https://login.chinacloudapi.cn");
    akv_config_free(cfg);
    unlink(path);

    cfg = NULL;
    assert_int_equal(
        akv_config_load("/nonexistent/akv.json", &cfg, err, sizeof(err)), -1);
    assert_null(cfg);
    assert_string_equal(err, "/nonexistent/akv.json: cannot open: No such "
                             "file or directory");
    assert_int_equal(akv_config_load("/tmp", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "/tmp: not a regular file; fix: name a regular "
                             "file");

    f = fopen(path, "w");
    fputs("{}", f);
    fclose(f);
    chmod(path, 0666);
    assert_int_equal(akv_config_load(path, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ": mode 0666 lets group/other write it; fix: "
                                "chmod go-w "));
    unlink(path);
}

/* the shipped example must stay loadable */
static void test_example_file(void **state)
{
    struct akv_config *cfg = NULL;
    char err[512];
    (void)state;

    if (akv_config_load(AKV_CONF_EXAMPLE, &cfg, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(cfg->n_tokens, 2);
    assert_int_equal(cfg->tokens[0].cred.type, AKV_CRED_CLIENT_SECRET);
    assert_int_equal(cfg->tokens[1].cred.type, AKV_CRED_MANAGED_IDENTITY);
    akv_config_free(cfg);
}

static void test_err_truncation(void **state)
{
    char err[16];
    struct akv_config *cfg = NULL;
    (void)state;

    assert_int_equal(parse("[]", &cfg, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    /* NULL err buffer is allowed */
    assert_int_equal(parse("[]", &cfg, NULL, 0), -1);
}

static void test_locate(void **state)
{
    char *p;
    (void)state;

    unsetenv("AKV_PKCS11_CONFIG");
    p = akv_config_locate("config=/a/b.json");
    assert_string_equal(p, "/a/b.json");
    free(p);
    p = akv_config_locate("debug; config=/c.json;x=1");
    assert_string_equal(p, "/c.json");
    free(p);
    p = akv_config_locate("foo bar   config=/d.json");
    assert_string_equal(p, "/d.json");
    free(p);
    p = akv_config_locate("xconfig=/no.json");
    assert_string_equal(p, "/etc/akv-pkcs11/config.json");
    free(p);
    p = akv_config_locate(NULL);
    assert_string_equal(p, "/etc/akv-pkcs11/config.json");
    free(p);
    setenv("AKV_PKCS11_CONFIG", "/env.json", 1);
    p = akv_config_locate("other");
    assert_string_equal(p, "/env.json");
    free(p);
    p = akv_config_locate("config=/wins.json");
    assert_string_equal(p, "/wins.json");
    free(p);
    setenv("AKV_PKCS11_CONFIG", "", 1);
    p = akv_config_locate(NULL);
    assert_string_equal(p, "/etc/akv-pkcs11/config.json");
    free(p);
    unsetenv("AKV_PKCS11_CONFIG");
}

/* ---- issue 7 §5: files and endpoints an operator can get wrong ---- */

#define SECRET_CFG                                                             \
    "{\"tokens\":[{\"label\":\"t\",\"vault_url\":\"https://v.vault.azure."     \
    "net\",\"keys\":[\"k\"],\"credential\":{\"type\":\"client_secret\","       \
    "\"tenant_id\":\"t\",\"client_id\":\"c\",\"client_secret_file\":\"%s\"}}]" \
    "}"

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

/* Loads PATH and expects a refusal whose message holds WANT. */
static void expect_load_refused(const char *path, const char *want)
{
    struct akv_config *cfg = NULL;
    char err[768];

    if (akv_config_load(path, &cfg, err, sizeof(err)) == 0) {
        akv_config_free(cfg);
        fail_msg("%s loaded; want a refusal containing \"%s\"", path, want);
    }
    if (strstr(err, want) == NULL) {
        fail_msg("got \"%s\", want it to contain \"%s\"", err, want);
    }
}

static void test_strict_modes(void **state)
{
    const char *tmp = getenv("AKV_TEST_TMP");
    char dir[512], cfgp[600], sec[600], link[600], json[2048], want[700];
    struct akv_config *cfg = NULL;
    char err[768];
    (void)state;

    snprintf(dir, sizeof(dir), "%s/strict-XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0700), 0);
    snprintf(cfgp, sizeof(cfgp), "%s/config.json", dir);
    snprintf(sec, sizeof(sec), "%s/secret", dir);
    snprintf(link, sizeof(link), "%s/secret-link", dir);
    write_text(sec, "s3cret\n", 0600);
    snprintf(json, sizeof(json), SECRET_CFG, sec);
    write_text(cfgp, json, 0644);

    /* the correct setup loads */
    if (akv_config_load(cfgp, &cfg, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    akv_config_free(cfg);
    cfg = NULL;

    /* a 0644 config in a 0777 folder (anyone can swap it) */
    assert_int_equal(chmod(dir, 0777), 0);
    snprintf(want, sizeof(want),
             "folder %s: mode 0777 lets group/other replace what it holds; "
             "fix: chmod go-w %s",
             dir, dir);
    expect_load_refused(cfgp, want);
    assert_int_equal(chmod(dir, 0700), 0);

    /* group-writable config (only o+w was refused before) */
    assert_int_equal(chmod(cfgp, 0664), 0);
    expect_load_refused(cfgp, "mode 0664 lets group/other write it; fix: "
                              "chmod go-w ");
    assert_int_equal(chmod(cfgp, 0644), 0);

    /* a symlinked config */
    snprintf(link, sizeof(link), "%s/config-link.json", dir);
    assert_int_equal(symlink("config.json", link), 0);
    expect_load_refused(link, "is a symbolic link, which is never followed");
    unlink(link);

    /* a symlinked secret file is not followed */
    snprintf(link, sizeof(link), "%s/secret-link", dir);
    assert_int_equal(symlink("secret", link), 0);
    snprintf(json, sizeof(json), SECRET_CFG, link);
    write_text(cfgp, json, 0600);
    expect_load_refused(cfgp, "client_secret_file: refused: ");
    expect_load_refused(cfgp, "is a symbolic link");
    /* ... nor a symlinked certificate_file */
    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"t\",\"vault_url\":\"https://v.vault."
             "azure.net\",\"keys\":[\"k\"],\"credential\":{\"type\":"
             "\"client_certificate\",\"tenant_id\":\"t\",\"client_id\":"
             "\"c\",\"certificate_file\":\"%s\"}}]}",
             link);
    write_text(cfgp, json, 0600);
    expect_load_refused(cfgp, "certificate_file: refused: ");
    expect_load_refused(cfgp, "is a symbolic link");
    unlink(link);
    snprintf(json, sizeof(json), SECRET_CFG, sec);
    write_text(cfgp, json, 0600);

    if (geteuid() == 0) {
        /* a config owned by another user */
        assert_int_equal(chown(cfgp, 65534, (gid_t)-1), 0);
        expect_load_refused(cfgp, "owned by uid 65534, not by this process's "
                                  "uid 0 or root, so that user can rewrite "
                                  "it; fix: chown 0 ");
        assert_int_equal(chown(cfgp, 0, (gid_t)-1), 0);
        /* a secret owned by another user */
        assert_int_equal(chown(sec, 65534, (gid_t)-1), 0);
        expect_load_refused(cfgp, "client_secret_file: refused: ");
        assert_int_equal(chown(sec, 0, (gid_t)-1), 0);
    } else {
        printf("[  SKIP    ] ownership cases need root\n");
    }
    /* and fixed again */
    if (akv_config_load(cfgp, &cfg, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    akv_config_free(cfg);

    /* log.target: a planted symlink is refused, the victim untouched */
    {
        char victim[600];
        struct stat st;
        snprintf(victim, sizeof(victim), "%s/victim", dir);
        write_text(victim, "", 0600);
        snprintf(link, sizeof(link), "%s/log-link", dir);
        assert_int_equal(symlink("victim", link), 0);
        assert_int_equal(akv_log_configure(AKV_LOG_LEVEL_ERROR, link), -1);
        assert_int_equal(stat(victim, &st), 0);
        assert_int_equal(st.st_size, 0);
        akv_log_configure(AKV_LOG_LEVEL_ERROR, "stderr");
        unlink(link);
        unlink(victim);
    }
    unlink(sec);
    unlink(cfgp);
    assert_int_equal(rmdir(dir), 0);
}

#define MI_AT(ep, extra)                                                       \
    "{\"tokens\":[{\"label\":\"t\",\"vault_url\":\"https://v.vault.azure."     \
    "net\",\"keys\":[\"k\"],\"credential\":{\"type\":\"managed_identity\","    \
    "\"imds_endpoint\":\"" ep "\"" extra "}}]}"

static void test_imds_endpoint_hosts(void **state)
{
    static const struct {
        const char *json;
        int ok;
    } rows[] = {
        {MI_AT("http://169.254.169.254/metadata/identity/oauth2/token", ""), 1},
        {MI_AT("http://127.0.0.1:40342/metadata/identity/oauth2/token", ""), 1},
        {MI_AT("http://localhost:8081/msi/token", ""), 1},
        {MI_AT("http://[::1]:8081/msi/token", ""), 1},
        {MI_AT("http://10.1.2.3/metadata/identity/oauth2/token", ""), 0},
        {MI_AT("http://169.254.169.254.evil.example/token", ""), 0},
        {MI_AT("http://attacker.example/token", ""), 0},
        {MI_AT("http://10.1.2.3:80/token", ",\"allow_imds_host\":\"10.1.2.3\""),
         1},
        {MI_AT("http://IMDS.corp.example/token",
               ",\"allow_imds_host\":\"imds.corp.example\""),
         1},
        {MI_AT("http://10.1.2.4/token", ",\"allow_imds_host\":\"10.1.2.3\""),
         0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct akv_config *cfg = NULL;
        char err[768] = "";
        int rc = parse(rows[i].json, &cfg, err, sizeof(err));
        if (rows[i].ok && rc != 0) {
            fail_msg("row %zu refused: %s", i, err);
        }
        if (!rows[i].ok
            && (rc == 0 || strstr(err, "credential.imds_endpoint: ") == NULL
                || strstr(err, "only a loopback address or 169.254.169.254 "
                               "is allowed")
                       == NULL)) {
            fail_msg("row %zu: want a refusal, got rc %d \"%s\"", i, rc, err);
        }
        akv_config_free(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_log_level_and_loopback),
        cmocka_unit_test(test_broken),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_err_truncation),
        cmocka_unit_test(test_locate),
        cmocka_unit_test(test_strict_modes),
        cmocka_unit_test(test_imds_endpoint_hosts),
        cmocka_unit_test(test_certificate_keys),
    };
    /* unknown keys are warnings: keep them off the test output */
    akv_log_configure(AKV_LOG_LEVEL_ERROR, NULL);
    return cmocka_run_group_tests(tests, setup, teardown);
}
