/* SPDX-License-Identifier: Apache-2.0 */
/* keyvault/kv_rest.c end to end against a scripted loopback HTTP server:
 * URLs and bodies on the wire, error mapping, retries, Retry-After,
 * timeouts and the budget, the 401 challenge / token refresh, the token
 * cache and its single-flight refresh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "common/b64url.h"
#include "common/config.h"
#include "common/log.h"
#include "keyvault/kv.h"
#include "keyvault/pcache.h"
#include "keyvault/retry.h"
#include "mock_server.h"

struct fx {
    struct mock_server *m;
    struct akv_config *cfg;
    struct akv_kv *kv;
};

static char n_b64[400];
static char vbase[128]; /* the mock's origin: kids must name it */

#define V1 "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7"
#define V2 "11111111111111111111111111111111"

/* P-256 and secp256k1 base points (SEC 2), base64url; GY_BAD is off the
 * curve (last bit flipped) */
#define P256_GX     "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY"
#define P256_GY     "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"
#define P256_GY_BAD "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfQ"
#define K256_GX     "eb5mfvncu6xVoGKVzocLBwKb_NstzijZWfKBWxb4F5g"
#define K256_GY     "SDradyajxGVdpPv8DhEIqP0XtEimhVQZnEfQj_sQ1Lg"

/* TMPL with every "@V@" replaced by the mock vault's origin (a ring of
 * static buffers: a few results may be alive at once). */
static const char *J(const char *tmpl)
{
    static char ring[8][2048];
    static unsigned next;
    char *o = ring[next++ % 8];
    size_t w = 0;

    for (const char *p = tmpl; *p != '\0' && w + 130 < sizeof(ring[0]);) {
        if (strncmp(p, "@V@", 3) == 0) {
            w += (size_t)snprintf(o + w, sizeof(ring[0]) - w, "%s", vbase);
            p += 3;
        } else {
            o[w++] = *p++;
        }
    }
    o[w] = '\0';
    return o;
}

/* extra: JSON members appended to the token object's http settings;
 * cache_dir: the cross-process cache folder, or NULL for none (the
 * default in these tests: the user's real cache stays untouched). */
static struct akv_kv *make_kv_in(struct fx *f, const char *http_extra,
                                 const char *cache_dir)
{
    char json[2048];
    char cache[300];
    char err[512];

    if (cache_dir != NULL) {
        snprintf(cache, sizeof(cache), "\"cache_dir\":\"%s\"", cache_dir);
    } else {
        snprintf(cache, sizeof(cache), "\"cache\":false");
    }
    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"t\",\"vault_url\":\"%s\","
             "\"keys\":[\"cmk\"],"
             "\"credential\":{\"type\":\"client_secret\",\"tenant_id\":"
             "\"tenant-1\",\"client_id\":\"cid\",\"client_secret_env\":"
             "\"AKV_TEST_SECRET\",\"authority_host\":\"%s\"},"
             "\"http\":{\"allow_http_loopback\":true,"
             "\"verify_challenge_resource\":false%s},%s}]}",
             mock_url(f->m), mock_url(f->m), http_extra, cache);
    (void)snprintf(vbase, sizeof(vbase), "%s", mock_url(f->m));
    if (akv_config_parse(json, strlen(json), "test.json", &f->cfg, err,
                         sizeof(err))
        != 0) {
        fail_msg("config: %s", err);
    }
    assert_int_equal(akv_kv_rest_new(&f->cfg->tokens[0], &f->kv), CKR_OK);
    return f->kv;
}

static struct akv_kv *make_kv(struct fx *f, const char *http_extra)
{
    return make_kv_in(f, http_extra, NULL);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->m = mock_start();
    assert_non_null(f->m);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->kv != NULL) {
        f->kv->ops->destroy(f->kv);
    }
    akv_config_free(f->cfg);
    mock_stop(f->m);
    free(f);
    return 0;
}

static const char *bundle_json(void)
{
    static char b[1024];
    snprintf(b, sizeof(b),
             "{\"key\":{\"kid\":\"%s/keys/cmk/"
             "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA-HSM\","
             "\"key_ops\":[\"wrapKey\",\"unwrapKey\"],\"n\":\"%s\","
             "\"e\":\"AQAB\"},\"attributes\":{\"enabled\":true,"
             "\"created\":1717000000,\"updated\":1717000000}}",
             vbase, n_b64);
    return b;
}

static struct mock_rec rec_at(struct fx *f, size_t i)
{
    struct mock_rec r;
    assert_int_equal(mock_get(f->m, i, &r), 0);
    return r;
}

static void test_get_key(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;
    struct mock_rec r;

    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    assert_string_equal(k.version, "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7");
    assert_int_equal(k.n_len, 256);
    assert_int_equal(k.key_ops, AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY);
    akv_kv_key_clear(&k);

    assert_int_equal(mock_total(f->m), 2);
    r = rec_at(f, 0);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/tenant-1/oauth2/v2.0/token");
    assert_string_equal(r.content_type, "application/x-www-form-urlencoded");
    assert_string_equal(r.body,
                        "grant_type=client_credentials&client_id=cid&scope="
                        "https%3A%2F%2Fvault.azure.net%2F.default&client_"
                        "secret=s%26cr%3Dt%2B%20x");
    r = rec_at(f, 1);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/keys/cmk");
    assert_string_equal(r.query, "api-version=7.4");
    assert_string_equal(r.auth, "Bearer tok-1");

    /* pinned version */
    mock_push(f->m, "/keys/cmk/", 200, bundle_json(), NULL, 0);
    assert_int_equal(
        kv->ops->get_key(kv, "cmk", "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7", &k),
        CKR_OK);
    akv_kv_key_clear(&k);
    r = rec_at(f, 2);
    assert_string_equal(r.path, "/keys/cmk/0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7");
    /* the token was cached */
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
}

static void test_wrap_unwrap(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    uint8_t dek[32];
    uint8_t *out = NULL;
    size_t out_len = 0;
    char kid[AKV_KV_KID_MAX];
    struct akv_secret plain = AKV_SECRET_INIT;
    struct mock_rec r;
    char resp[1024];
    uint8_t wrapped[256];
    char wrapped_b64[400];

    memset(dek, 7, sizeof(dek));
    memset(wrapped, 0x5a, sizeof(wrapped));
    akv_b64url_encode(wrapped, sizeof(wrapped), wrapped_b64,
                      sizeof(wrapped_b64));
    snprintf(resp, sizeof(resp),
             "{\"kid\":\"%s/keys/cmk/"
             "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"value\":\"%s\"}",
             vbase, wrapped_b64);
    mock_push(f->m, "/keys/cmk//wrapkey", 200, resp, NULL, 0);
    assert_int_equal(kv->ops->wrap(kv, "cmk", NULL, AKV_KV_ALG_RSA_OAEP_256,
                                   dek, sizeof(dek), &out, &out_len, kid),
                     CKR_OK);
    assert_int_equal(out_len, 256);
    assert_memory_equal(out, wrapped, 256);
    assert_string_equal(kid, J("@V@/keys/cmk/" V1));
    free(out);
    r = rec_at(f, 1);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/keys/cmk//wrapkey");
    assert_string_equal(r.query, "api-version=7.4");
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.body,
                        "{\"alg\":\"RSA-OAEP-256\",\"value\":"
                        "\"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc\"}");

    mock_push(f->m, "/keys/cmk/" V1 "/unwrapkey", 200,
              J("{\"kid\":\"@V@/keys/cmk/" V1 "\",\"value\":"
                "\"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc\"}"),
              NULL, 0);
    assert_int_equal(kv->ops->unwrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP,
                                     wrapped, sizeof(wrapped), &plain),
                     CKR_OK);
    assert_int_equal(plain.len, 32);
    assert_memory_equal(plain.data, dek, 32);
    akv_secret_clear(&plain);
    r = rec_at(f, 2);
    assert_string_equal(r.path, "/keys/cmk/" V1 "/unwrapkey");
    assert_non_null(strstr(r.body, "{\"alg\":\"RSA-OAEP\",\"value\":\"Wlpa"));
}

/* Key Vault "Sign": POST .../sign with {alg, value=digest}; the answer's
 * value is the signature; a 403 is CKR_KEY_FUNCTION_NOT_PERMITTED; the
 * digest length must suit the algorithm. */
static void test_sign(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    uint8_t dig[48];
    uint8_t sig[96];
    char sig_b64[200];
    char resp[512];
    uint8_t *out = NULL;
    size_t out_len = 0;
    struct mock_rec r;

    memset(dig, 7, sizeof(dig));
    memset(sig, 0x33, sizeof(sig));
    akv_b64url_encode(sig, sizeof(sig), sig_b64, sizeof(sig_b64));
    snprintf(resp, sizeof(resp),
             "{\"kid\":\"%s/keys/cmk/" V1 "\",\"value\":\"%s\"}", vbase,
             sig_b64);
    mock_push(f->m, "/keys/cmk/" V1 "/sign", 200, resp, NULL, 0);
    assert_int_equal(kv->ops->sign(kv, "cmk", V1, AKV_KV_ALG_ES384, dig,
                                   sizeof(dig), &out, &out_len),
                     CKR_OK);
    assert_int_equal(out_len, 96);
    assert_memory_equal(out, sig, 96);
    free(out);
    out = NULL;
    r = rec_at(f, 1);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/keys/cmk/" V1 "/sign");
    assert_string_equal(r.body, "{\"alg\":\"ES384\",\"value\":"
                                "\"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
                                "BwcHBwcHBwcHBwcHBwcH\"}");
    /* The answer must name the key version that was asked for. */
    mock_push(f->m, "/keys/cmk/" V1 "/sign", 200,
              J("{\"kid\":\"@V@/keys/other/" V1 "\",\"value\":\"MzMz\"}"), NULL,
              0);
    assert_int_equal(kv->ops->sign(kv, "cmk", V1, AKV_KV_ALG_RS384, dig,
                                   sizeof(dig), &out, &out_len),
                     CKR_DEVICE_ERROR);
    assert_null(out);
    mock_push(f->m, "/keys/cmk/" V1 "/sign", 403,
              "{\"error\":{\"code\":\"Forbidden\",\"message\":\"does not "
              "have keys sign permission\",\"innererror\":{\"code\":"
              "\"AccessDenied\"}}}",
              NULL, 0);
    assert_int_equal(kv->ops->sign(kv, "cmk", V1, AKV_KV_ALG_RS384, dig,
                                   sizeof(dig), &out, &out_len),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_null(out);
    /* Refused before any request: a digest of the wrong size, a non-sign
     * algorithm. */
    assert_int_equal(
        kv->ops->sign(kv, "cmk", V1, AKV_KV_ALG_RS256, dig, 20, &out, &out_len),
        CKR_ARGUMENTS_BAD);
    assert_int_equal(kv->ops->sign(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP, dig, 32,
                                   &out, &out_len),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(mock_count(f->m, "/sign"), 3);
}

/* Create Key (POST /keys/{name}/create after a GET that must answer 404)
 * and Delete Key (DELETE /keys/{name}). */
static void test_create_delete(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_create req = {
        "RSA", 2048, 65537, NULL, AKV_KV_OP_SIGN | AKV_KV_OP_VERIFY, true};
    struct akv_kv_key k;
    char bundle[1024];
    struct mock_rec r;
    const char *nf = "{\"error\":{\"code\":\"KeyNotFound\",\"message\":"
                     "\"not found\"}}";

    snprintf(bundle, sizeof(bundle),
             "{\"key\":{\"kid\":\"%s/keys/NEW/" V1 "\",\"kty\":\"RSA\","
             "\"key_ops\":[\"sign\",\"verify\"],\"n\":\"%s\","
             "\"e\":\"AQAB\"},\"attributes\":{\"enabled\":true}}",
             vbase, n_b64);
    mock_push(f->m, "/keys/NEW", 404, nf, NULL, 0);
    mock_push(f->m, "/keys/NEW/create", 200, bundle, NULL, 0);
    assert_int_equal(kv->ops->create_key(kv, "NEW", &req, &k), CKR_OK);
    assert_string_equal(k.name, "NEW");
    assert_string_equal(k.version, V1);
    assert_int_equal(k.key_ops, AKV_KV_OP_SIGN | AKV_KV_OP_VERIFY);
    akv_kv_key_clear(&k);
    r = rec_at(f, 1);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/keys/NEW");
    r = rec_at(f, 2);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/keys/NEW/create");
    assert_string_equal(r.query, "api-version=7.4");
    assert_string_equal(r.body, "{\"kty\":\"RSA\",\"key_size\":2048,"
                                "\"public_exponent\":65537,\"key_ops\":"
                                "[\"sign\",\"verify\"]}");
    /* An existing name: no Create Key call. */
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->create_key(kv, "cmk", &req, &k),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    assert_int_equal(mock_count(f->m, "/keys/cmk/create"), 0);
    /* A parameter the vault refuses (400 BadParameter). */
    mock_push(f->m, "/keys/BAD", 404, nf, NULL, 0);
    mock_push(f->m, "/keys/BAD/create", 400,
              "{\"error\":{\"code\":\"BadParameter\",\"message\":"
              "\"unsupported public exponent\"}}",
              NULL, 0);
    assert_int_equal(kv->ops->create_key(kv, "BAD", &req, &k),
                     CKR_ATTRIBUTE_VALUE_INVALID);
    /* No keys/create: the error table's 403. */
    mock_push(f->m, "/keys/NOPE", 404, nf, NULL, 0);
    mock_push(f->m, "/keys/NOPE/create", 403,
              "{\"error\":{\"code\":\"Forbidden\",\"message\":"
              "\"no keys create permission\"}}",
              NULL, 0);
    assert_int_equal(kv->ops->create_key(kv, "NOPE", &req, &k),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* Refused before any request: not a key name. */
    assert_int_equal(kv->ops->create_key(kv, "a/b", &req, &k),
                     CKR_ARGUMENTS_BAD);
    /* A create answer gets the Get Key answer's checks (bundle_check):
     * a kid naming another key, or a public exponent of 1 (wraps in the
     * clear under "wrap": "local"), is no new key. */
    snprintf(bundle, sizeof(bundle),
             "{\"key\":{\"kid\":\"%s/keys/OTHER/" V1 "\",\"kty\":\"RSA\","
             "\"key_ops\":[\"sign\"],\"n\":\"%s\",\"e\":\"AQAB\"},"
             "\"attributes\":{\"enabled\":true}}",
             vbase, n_b64);
    mock_push(f->m, "/keys/KID", 404, nf, NULL, 0);
    mock_push(f->m, "/keys/KID/create", 200, bundle, NULL, 0);
    assert_int_equal(kv->ops->create_key(kv, "KID", &req, &k),
                     CKR_DEVICE_ERROR);
    snprintf(bundle, sizeof(bundle),
             "{\"key\":{\"kid\":\"%s/keys/EONE/" V1 "\",\"kty\":\"RSA\","
             "\"key_ops\":[\"sign\"],\"n\":\"%s\",\"e\":\"AQ\"},"
             "\"attributes\":{\"enabled\":true}}",
             vbase, n_b64);
    mock_push(f->m, "/keys/EONE", 404, nf, NULL, 0);
    mock_push(f->m, "/keys/EONE/create", 200, bundle, NULL, 0);
    assert_int_equal(kv->ops->create_key(kv, "EONE", &req, &k),
                     CKR_DEVICE_ERROR);
    /* Delete Key. */
    mock_push(f->m, "/keys/NEW", 200, bundle, NULL, 0);
    assert_int_equal(kv->ops->delete_key(kv, "NEW"), CKR_OK);
    r = rec_at(f, mock_total(f->m) - 1);
    assert_string_equal(r.method, "DELETE");
    assert_string_equal(r.path, "/keys/NEW");
    mock_push(f->m, "/keys/NEW", 404, nf, NULL, 0);
    assert_int_equal(kv->ops->delete_key(kv, "NEW"), CKR_KEY_HANDLE_INVALID);
}

static void test_error_mapping(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_secret plain = AKV_SECRET_INIT;
    uint8_t in[256] = {1};
    struct akv_kv_key k;
    uint8_t *out = NULL;
    size_t out_len = 0;

    mock_push(f->m, "/keys/cmk", 400,
              "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Error "
              "occurred while decoding OAEP padding.\"}}",
              NULL, 0);
    assert_int_equal(kv->ops->unwrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, in,
                                     sizeof(in), &plain),
                     CKR_WRAPPED_KEY_INVALID);
    assert_null(plain.data);
    mock_push(f->m, "/keys/cmk", 403,
              "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no\","
              "\"innererror\":{\"code\":\"AccessDenied\"}}}",
              NULL, 0);
    assert_int_equal(kv->ops->unwrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, in,
                                     sizeof(in), &plain),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    mock_push(f->m, "/keys/cmk", 403,
              "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":"
              "\"KeyDisabled\"}}}",
              NULL, 0);
    assert_int_equal(kv->ops->wrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, in,
                                   32, &out, &out_len, NULL),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_null(out);
    mock_push(f->m, "/keys/cmk", 404,
              "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key with "
              "(name/id) cmk was not found in this key vault.\"}}",
              NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k),
                     CKR_KEY_HANDLE_INVALID);
    mock_push(f->m, "/keys/cmk", 405, "", NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_GENERAL_ERROR);
    /* malformed 200s */
    mock_push(f->m, "/keys/cmk", 200, "{\"key\":{}}", NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    mock_push(f->m, "/keys/cmk", 200, "<html>", NULL, 0);
    assert_int_equal(kv->ops->unwrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, in,
                                     sizeof(in), &plain),
                     CKR_DEVICE_ERROR);
    /* none of these were retried */
    assert_int_equal(mock_count(f->m, "/keys/"), 7);
}

static void test_answer_checks(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    uint8_t dek[16] = {1};
    uint8_t *out = NULL;
    size_t out_len = 0;
    char kid[AKV_KV_KID_MAX] = "untouched";
    struct akv_kv_key k;

    /* wrap answered for another key, or without a versioned kid */
    mock_push(f->m, "/keys/cmk", 200,
              J("{\"kid\":\"@V@/keys/other/" V1 "\",\"value\":\"Zg\"}"), NULL,
              0);
    assert_int_equal(kv->ops->wrap(kv, "cmk", NULL, AKV_KV_ALG_RSA_OAEP_256,
                                   dek, sizeof(dek), &out, &out_len, kid),
                     CKR_DEVICE_ERROR);
    assert_null(out);
    assert_string_equal(kid, "untouched");
    mock_push(f->m, "/keys/cmk", 200, "{\"value\":\"Zg\"}", NULL, 0);
    assert_int_equal(kv->ops->wrap(kv, "cmk", NULL, AKV_KV_ALG_RSA_OAEP_256,
                                   dek, sizeof(dek), &out, &out_len, kid),
                     CKR_DEVICE_ERROR);
    mock_push(f->m, "/keys/cmk", 200,
              J("{\"kid\":\"@V@/keys/cmk\",\"value\":\"Zg\"}"), NULL, 0);
    assert_int_equal(kv->ops->wrap(kv, "cmk", NULL, AKV_KV_ALG_RSA_OAEP_256,
                                   dek, sizeof(dek), &out, &out_len, kid),
                     CKR_DEVICE_ERROR);
    /* a pinned version must come back as that version */
    mock_push(f->m, "/keys/cmk", 200,
              J("{\"kid\":\"@V@/keys/cmk/" V2 "\",\"value\":\"Zg\"}"), NULL, 0);
    assert_int_equal(kv->ops->wrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, dek,
                                   sizeof(dek), &out, &out_len, kid),
                     CKR_DEVICE_ERROR);
    mock_push(f->m, "/keys/cmk", 200,
              J("{\"kid\":\"@V@/keys/CMK/"
                "0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7\",\"value\":\"Zg\"}"),
              NULL, 0);
    assert_int_equal(kv->ops->wrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, dek,
                                   sizeof(dek), &out, &out_len, kid),
                     CKR_OK);
    assert_int_equal(out_len, 1);
    assert_string_equal(kid,
                        J("@V@/keys/CMK/0B6C1E2A9F3D4E58A1C7D2E3F4A5B6C7"));
    free(out);

    /* GET of a pinned version answered with another version; out stays
     * untouched on failure */
    memset(&k, 0x5a, sizeof(k));
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", V2, &k), CKR_DEVICE_ERROR);
    assert_int_equal(k.kid[0], 0x5a);
}

/* The log written while FN runs, read back from a file target: the lines
 * the module wrote for one hostile answer. */
static char logbuf[8192];

static void log_to_file(const char *path)
{
    (void)remove(path);
    assert_int_equal(akv_log_configure(AKV_LOG_LEVEL_ERROR, path), 0);
}

static const char *log_read(const char *path)
{
    FILE *fp = fopen(path, "r");
    size_t n = 0;

    assert_non_null(fp);
    n = fread(logbuf, 1, sizeof(logbuf) - 1, fp);
    logbuf[n] = '\0';
    fclose(fp);
    (void)remove(path);
    akv_log_configure(getenv("AKV_TEST_LOG") != NULL ? AKV_LOG_LEVEL_DEBUG
                                                     : AKV_LOG_LEVEL_NONE,
                      "stderr");
    return logbuf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

/* A GET answer that is this key in every respect but KID / N / E / the EC
 * members: refused with CKR_DEVICE_ERROR, out untouched, one log line. */
static void expect_get_refused(struct fx *f, const char *key_json,
                               const char *what)
{
    char body[4096];
    char path[256];
    struct akv_kv_key k;
    const char *log;

    snprintf(body, sizeof(body), "{\"key\":{%s}}", key_json);
    snprintf(path, sizeof(path), "%s/kv_rest_log.%d.txt",
             getenv("AKV_TEST_TMP") != NULL ? getenv("AKV_TEST_TMP") : "/tmp",
             (int)getpid());
    log_to_file(path);
    mock_push(f->m, "/keys/cmk", 200, body, NULL, 0);
    memset(&k, 0x5a, sizeof(k));
    if (f->kv->ops->get_key(f->kv, "cmk", NULL, &k) != CKR_DEVICE_ERROR) {
        fail_msg("accepted %s: %s", what, body);
    }
    assert_int_equal(k.kid[0], 0x5a);
    log = log_read(path);
    if (count_lines(log) != 1 || strstr(log, " ERROR ") == NULL) {
        fail_msg("%s: expected one ERROR line, got: %s", what, log);
    }
}

#define KID_OK    "\"kid\":\"@V@/keys/cmk/" V1 "\""
#define RSA_OK(n) "\"kty\":\"RSA\",\"n\":\"" n "\""

static void test_hostile_get(void **state)
{
    struct fx *f = *state;
    char other_port[160];
    char other_scheme[160];
    char n_json[600];
    char big[700];
    char json[1600];
    unsigned port = 0;
    struct akv_kv_key k;

    make_kv(f, "");
    sscanf(strrchr(vbase, ':') + 1, "%u", &port);
    snprintf(other_port, sizeof(other_port),
             "\"kid\":\"http://127.0.0.1:%u/keys/cmk/" V1 "\"", port + 1);
    snprintf(other_scheme, sizeof(other_scheme),
             "\"kid\":\"https://127.0.0.1:%u/keys/cmk/" V1 "\"", port);
    snprintf(n_json, sizeof(n_json), "\"kty\":\"RSA\",\"n\":\"%s\"", n_b64);

    /* the good answer passes (so the refusals below are for their one
     * defect) */
    snprintf(json, sizeof(json), "{\"key\":{%s,%s,\"e\":\"AQAB\"}}", J(KID_OK),
             n_json);
    mock_push(f->m, "/keys/cmk", 200, json, NULL, 0);
    assert_int_equal(f->kv->ops->get_key(f->kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);

    /* kids: another host, port, scheme, key, a bad version, a newline */
    {
        const char *kids[] = {
            "\"kid\":\"https://evil.example/keys/cmk/" V1 "\"",
            other_port,
            other_scheme,
            J("\"kid\":\"@V@/keys/other/" V1 "\""),
            J("\"kid\":\"@V@/keys/cmk/0b6c\""),
            J("\"kid\":\"@V@/keys/cmk/" V1 "0\""),
            J("\"kid\":\"@V@/keys/cmk/" V1 "/x\""),
            J("\"kid\":\"@V@/secrets/cmk/" V1 "\""),
            J("\"kid\":\"@V@/keys/cmk/" V1
              "\\n2026-01-01T00:00:00.000Z akv-pkcs11[1/1] ERROR forged\""),
        };
        for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
            snprintf(json, sizeof(json), "%s,%s,\"e\":\"AQAB\"", kids[i],
                     n_json);
            expect_get_refused(f, json, kids[i]);
        }
        /* one line (checked above), and nothing of it at a line start */
        assert_null(strstr(logbuf, "\n2026-01-01T00:00:00.000Z"));
    }

    /* RSA keys Key Vault cannot hold, or that leak or lose a data key */
    {
        uint8_t n[513];
        const char *exps[] = {
            "AQ",      /* e = 1: "encryption" is the identity */
            "AA",      /* e = 0 */
            "AAAA",    /* e = 0 in two bytes */
            "AQAA",    /* e = 65536: even */
            "Ag",      /* e = 2 */
            "AQAAAAE", /* e = 2^32 + 1: absurdly large */
        };
        for (size_t i = 0; i < sizeof(exps) / sizeof(exps[0]); i++) {
            snprintf(json, sizeof(json), "%s,%s,\"e\":\"%s\"", J(KID_OK),
                     n_json, exps[i]);
            expect_get_refused(f, json, exps[i]);
        }
        /* an 8-bit modulus */
        snprintf(json, sizeof(json), "%s," RSA_OK("wQ") ",\"e\":\"AQAB\"",
                 J(KID_OK));
        expect_get_refused(f, json, "8-bit modulus");
        /* 2047 bits (top byte 0x7f), 4104 bits, an even modulus */
        for (int c = 0; c < 3; c++) {
            size_t len = c == 1 ? 513 : 256;
            for (size_t i = 0; i < len; i++) {
                n[i] = (uint8_t)(i + 1) | 1;
            }
            n[0] = c == 0 ? 0x7f : 0xc1;
            if (c == 2) {
                n[len - 1] = 0x02;
            }
            akv_b64url_encode(n, len, big, sizeof(big));
            snprintf(json, sizeof(json),
                     "%s,\"kty\":\"RSA-HSM\",\"n\":\"%s\",\"e\":\"AQAB\"",
                     J(KID_OK), big);
            expect_get_refused(f, json,
                               c == 0   ? "2047-bit modulus"
                               : c == 1 ? "4104-bit modulus"
                                        : "even modulus");
        }
    }

    /* EC: off the curve, or a point of another curve */
    snprintf(json, sizeof(json),
             "%s,\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_GX
             "\",\"y\":\"" P256_GY_BAD "\"",
             J(KID_OK));
    expect_get_refused(f, json, "P-256 point off the curve");
    snprintf(json, sizeof(json),
             "%s,\"kty\":\"EC-HSM\",\"crv\":\"P-256K\",\"x\":\"" P256_GX
             "\",\"y\":\"" P256_GY "\"",
             J(KID_OK));
    expect_get_refused(f, json, "P-256 point as secp256k1");
    /* and on the curve they pass */
    snprintf(json, sizeof(json),
             "{\"key\":{%s,\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_GX
             "\",\"y\":\"" P256_GY "\"}}",
             J(KID_OK));
    mock_push(f->m, "/keys/cmk", 200, json, NULL, 0);
    assert_int_equal(f->kv->ops->get_key(f->kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    snprintf(json, sizeof(json),
             "{\"key\":{%s,\"kty\":\"EC\",\"crv\":\"P-256K\",\"x\":\"" K256_GX
             "\",\"y\":\"" K256_GY "\"}}",
             J(KID_OK));
    mock_push(f->m, "/keys/cmk", 200, json, NULL, 0);
    assert_int_equal(f->kv->ops->get_key(f->kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
}

/* wrap / unwrap results naming another vault, key or version */
static void test_hostile_op_kid(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    uint8_t dek[32] = {7};
    uint8_t *out = NULL;
    size_t out_len = 0;
    char kid[AKV_KV_KID_MAX] = "untouched";
    struct akv_secret plain = AKV_SECRET_INIT;
    const char *bad[] = {
        "{\"kid\":\"https://evil.example/keys/cmk/" V1 "\",\"value\":\"Zg\"}",
        "{\"kid\":\"https://127.0.0.1:1/keys/cmk/" V1 "\",\"value\":\"Zg\"}",
        "{\"kid\":\"@V@/keys/other/" V1 "\",\"value\":\"Zg\"}",
        "{\"kid\":\"@V@/keys/cmk/" V2 "\",\"value\":\"Zg\"}",
        "{\"kid\":\"@V@/keys/cmk/xyz\",\"value\":\"Zg\"}",
        "{\"kid\":\"@V@/keys/cmk/" V1 "\\r\\nX\",\"value\":\"Zg\"}",
    };

    char path[256];
    const char *log;

    snprintf(path, sizeof(path), "%s/kv_rest_op.%d.txt",
             getenv("AKV_TEST_TMP") != NULL ? getenv("AKV_TEST_TMP") : "/tmp",
             (int)getpid());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        log_to_file(path);
        mock_push(f->m, "/keys/cmk", 200, J(bad[i]), NULL, 0);
        if (kv->ops->wrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, dek,
                          sizeof(dek), &out, &out_len, kid)
            != CKR_DEVICE_ERROR) {
            fail_msg("wrap accepted %s", bad[i]);
        }
        assert_null(out);
        assert_string_equal(kid, "untouched");
        mock_push(f->m, "/keys/cmk", 200, J(bad[i]), NULL, 0);
        if (kv->ops->unwrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, dek,
                            sizeof(dek), &plain)
            != CKR_DEVICE_ERROR) {
            fail_msg("unwrap accepted %s", bad[i]);
        }
        assert_null(plain.data);
        /* one ERROR line per refusal, the kid quoted in it */
        log = log_read(path);
        if (count_lines(log) != 2 || strstr(log, "answer's kid") == NULL) {
            fail_msg("%s: expected two lines, got %s", bad[i], log);
        }
    }
    /* the CR LF of the last kid reached the log escaped */
    assert_non_null(strstr(logbuf, V1 "\\x0d\\x0aX\""));
}

/* A server's error message with control characters: one escaped line. */
static void test_hostile_error_text(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;
    char path[256];
    const char *log;

    snprintf(path, sizeof(path), "%s/kv_rest_err.%d.txt",
             getenv("AKV_TEST_TMP") != NULL ? getenv("AKV_TEST_TMP") : "/tmp",
             (int)getpid());
    log_to_file(path);
    mock_push(f->m, "/keys/cmk", 404,
              "{\"error\":{\"code\":\"Key\\u001b[2JNotFound\",\"message\":"
              "\"gone\\u0000\\u0007\\u007f\\u0085 \\r\\n2026 ERROR forged\"}}",
              NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k),
                     CKR_KEY_HANDLE_INVALID);
    log = log_read(path);
    assert_int_equal(count_lines(log), 1);
    assert_null(strstr(log, "forged"));
    assert_null(strchr(log, 0x1b));
    assert_null(strchr(log, 0x07));
    assert_non_null(strstr(log, "Key\\x1b[2JNotFound"));
}

static void test_arguments(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;
    struct akv_secret plain = AKV_SECRET_INIT;
    uint8_t in[8] = {0};
    char long_name[200];

    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(kv->ops->get_key(kv, "bad_name", NULL, &k),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(kv->ops->get_key(kv, "", NULL, &k), CKR_ARGUMENTS_BAD);
    assert_int_equal(kv->ops->get_key(kv, long_name, NULL, &k),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(kv->ops->get_key(kv, "k", "../x", &k), CKR_ARGUMENTS_BAD);
    assert_int_equal(kv->ops->get_key(kv, "k?x=1", NULL, &k),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(
        kv->ops->unwrap(kv, "k", NULL, AKV_KV_ALG_COUNT, in, 8, &plain),
        CKR_ARGUMENTS_BAD);
    assert_int_equal(
        kv->ops->unwrap(kv, "k", NULL, AKV_KV_ALG_RSA_OAEP, in, 0, &plain),
        CKR_ARGUMENTS_BAD);
    assert_int_equal(
        kv->ops->unwrap(kv, "k", NULL, AKV_KV_ALG_RSA_OAEP, NULL, 8, &plain),
        CKR_ARGUMENTS_BAD);
    /* nothing went on the wire */
    assert_int_equal(mock_total(f->m), 0);
}

static void test_retry_5xx_then_ok(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, ",\"retries\":3");
    struct akv_kv_key k;

    mock_push(f->m, "/keys/cmk", 503, "{}", NULL, 0);
    mock_push(f->m, "/keys/cmk", 500, "{}", NULL, 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 3);
}

static void test_retries_exhausted(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, ",\"retries\":2");
    struct akv_kv_key k;

    for (int i = 0; i < 5; i++) {
        mock_push(f->m, "/keys/cmk", 502, "{}", NULL, 0);
    }
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    /* first attempt + 2 retries */
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 3);
}

static void test_retry_after_429(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, ",\"retries\":1");
    struct akv_kv_key k;
    int64_t t0;
    int64_t dt;

    mock_push(f->m, "/keys/cmk", 429, "{\"error\":{\"code\":\"Throttled\"}}",
              "Retry-After: 1", 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    t0 = akv_retry_now_ms();
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    dt = akv_retry_now_ms() - t0;
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 2);
    assert_true(dt >= 950);
    assert_true(dt < 3000);
}

static void test_retry_after_http_date(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv =
        make_kv(f, ",\"retries\":1,\"timeout_ms\":2000,\"budget_ms\":6000");
    struct akv_kv_key k;
    char hdr[80];
    struct tm tm;
    time_t when = time(NULL) + 2;
    int64_t t0;
    int64_t dt;

    gmtime_r(&when, &tm);
    strftime(hdr, sizeof(hdr), "Retry-After: %a, %d %b %Y %H:%M:%S GMT", &tm);
    mock_push(f->m, "/keys/cmk", 503, "{}", hdr, 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    t0 = akv_retry_now_ms();
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    dt = akv_retry_now_ms() - t0;
    akv_kv_key_clear(&k);
    /* 2 s ahead at one-second resolution: between 1 and 2 s of waiting */
    assert_true(dt >= 900);
    assert_true(dt < 3000);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 2);
}

static void test_retry_after_beyond_budget(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv =
        make_kv(f, ",\"retries\":3,\"timeout_ms\":500,\"budget_ms\":1000");
    struct akv_kv_key k;
    int64_t t0;

    /* asked to wait 30 s with a 1 s budget: give up now, do not sleep */
    mock_push(f->m, "/keys/cmk", 429, "{}", "Retry-After: 30", 0);
    t0 = akv_retry_now_ms();
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    assert_true(akv_retry_now_ms() - t0 < 500);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 1);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, ",\"retries\":0,\"timeout_ms\":300");
    struct akv_kv_key k;
    int64_t t0;
    int64_t dt;

    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 1500);
    /* get the token first so only the vault call is timed */
    mock_push(f->m, "/keys/zz", 404, "{}", NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "zz", NULL, &k),
                     CKR_KEY_HANDLE_INVALID);
    t0 = akv_retry_now_ms();
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    dt = akv_retry_now_ms() - t0;
    assert_true(dt >= 250);
    assert_true(dt < 1000);
}

static void test_budget(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv =
        make_kv(f, ",\"retries\":10,\"timeout_ms\":300,\"budget_ms\":900");
    struct akv_kv_key k;
    int64_t t0;
    int64_t dt;

    for (int i = 0; i < 12; i++) {
        mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 2000);
    }
    t0 = akv_retry_now_ms();
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    dt = akv_retry_now_ms() - t0;
    /* 10 retries of 300 ms would take > 3 s; the budget stops it */
    assert_true(dt < 1100);
    assert_true(mock_count(f->m, "/keys/cmk") >= 2);
    assert_true(mock_count(f->m, "/keys/cmk") <= 4);
}

#define CHALLENGE                                                              \
    "WWW-Authenticate: Bearer authorization=\"https://login.microsoftonline."  \
    "com/tenant-1\", resource=\"https://vault.azure.net\""

static void test_challenge_refresh(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;
    struct mock_rec r;

    mock_push(f->m, "/keys/cmk", 401,
              "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10000: "
              "Request is missing a Bearer or PoP token.\"}}",
              CHALLENGE, 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 2);
    r = rec_at(f, 1);
    assert_string_equal(r.auth, "Bearer tok-1");
    r = rec_at(f, 3);
    assert_string_equal(r.path, "/keys/cmk");
    assert_string_equal(r.auth, "Bearer tok-2");
}

static void test_challenge_twice(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;

    mock_push(f->m, "/keys/cmk", 401, "{}", CHALLENGE, 0);
    mock_push(f->m, "/keys/cmk", 401, "{}", CHALLENGE, 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 2);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 2);
}

static void test_401_without_challenge(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;

    mock_push(f->m, "/keys/cmk", 401, "{}", NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 1);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
}

static void test_challenge_resource_verified(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv;
    struct akv_kv_key k;
    char json[1024];
    char err[256];

    /* verify_challenge_resource on: 127.0.0.1 is not *.vault.azure.net */
    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"t\",\"vault_url\":\"%s\","
             "\"keys\":[\"cmk\"],\"credential\":{\"type\":\"client_secret\","
             "\"tenant_id\":\"tenant-1\",\"client_id\":\"cid\","
             "\"client_secret_env\":\"AKV_TEST_SECRET\",\"authority_host\":"
             "\"%s\"},\"http\":{\"allow_http_loopback\":true}}]}",
             mock_url(f->m), mock_url(f->m));
    assert_int_equal(akv_config_parse(json, strlen(json), "t.json", &f->cfg,
                                      err, sizeof(err)),
                     0);
    assert_int_equal(akv_kv_rest_new(&f->cfg->tokens[0], &f->kv), CKR_OK);
    kv = f->kv;
    mock_push(f->m, "/keys/cmk", 401, "{}", CHALLENGE, 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 1);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
}

static void test_token_failure(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;

    mock_push(f->m, "/tenant-1/oauth2", 401,
              "{\"error\":\"invalid_client\",\"error_description\":"
              "\"AADSTS7000215: Invalid client secret provided.\"}",
              NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    assert_int_equal(mock_count(f->m, "/keys/"), 0);
    /* a 4xx from the token endpoint is not retried */
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
    /* the next call tries again (no negative caching) and succeeds */
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
}

static void test_oversize_body(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;
    char *big = malloc(300 * 1024);

    memset(big, ' ', 300 * 1024 - 1);
    big[0] = '{';
    big[300 * 1024 - 2] = '}';
    big[300 * 1024 - 1] = '\0';
    mock_push(f->m, "/keys/cmk", 200, big, NULL, 0);
    free(big);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_DEVICE_ERROR);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 1);
}

struct thr {
    struct akv_kv *kv;
    CK_RV rv;
};

static void *get_thread(void *arg)
{
    struct thr *t = arg;
    struct akv_kv_key k;
    t->rv = t->kv->ops->get_key(t->kv, "cmk", NULL, &k);
    if (t->rv == CKR_OK) {
        akv_kv_key_clear(&k);
    }
    return NULL;
}

static void test_single_flight(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    pthread_t th[8];
    struct thr t[8];

    mock_set_token_delay(f->m, 300);
    for (int i = 0; i < 8; i++) {
        mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    }
    for (int i = 0; i < 8; i++) {
        t[i].kv = kv;
        pthread_create(&th[i], NULL, get_thread, &t[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].rv, CKR_OK);
    }
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 8);
}

struct hammer {
    struct akv_kv *kv;
    int ok;
};

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    uint8_t dek[32];
    struct akv_secret plain = AKV_SECRET_INIT;

    memset(dek, 3, sizeof(dek));
    for (int i = 0; i < 20; i++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        char kid[AKV_KV_KID_MAX];
        if (h->kv->ops->wrap(h->kv, "cmk", NULL, AKV_KV_ALG_RSA_OAEP_256, dek,
                             sizeof(dek), &out, &out_len, kid)
                == CKR_OK
            && out_len == 1
            && h->kv->ops->unwrap(h->kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256,
                                  out, out_len, &plain)
                   == CKR_OK) {
            h->ok++;
        }
        free(out);
        akv_secret_clear(&plain);
    }
    return NULL;
}

/* more threads than pooled handles, one client, one token */
static void test_hammer(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    pthread_t th[16];
    struct hammer h[16];

    mock_set_default(f->m, "/keys/cmk", 200,
                     J("{\"kid\":\"@V@/keys/cmk/" V1 "\",\"value\":\"Zg\"}"));
    for (int i = 0; i < 16; i++) {
        h[i].kv = kv;
        h[i].ok = 0;
        pthread_create(&th[i], NULL, hammer_thread, &h[i]);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(h[i].ok, 20);
    }
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
}

static void test_token_expiry(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv = make_kv(f, "");
    struct akv_kv_key k;
    struct timespec ts = {1, 200000000L};

    /* 2 s lifetime: refreshed after half of it */
    mock_set_token_lifetime(f->m, 2);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    /* reused while fresh */
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
    nanosleep(&ts, NULL);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 2);
}

/* Two clients one after the other stand for two processes of one user:
 * the second takes the token and the Get Key answer from the cache
 * (keyvault/pcache.h); a token the vault refused is never taken from it. */
static void test_cross_process_cache(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv;
    struct akv_kv_key k;
    struct akv_secret plain = AKV_SECRET_INIT;
    uint8_t in[256] = {1};
    char dir[64];
    char cmd[96];

    snprintf(dir, sizeof(dir), "/tmp/akv-kvc-XXXXXX");
    assert_non_null(mkdtemp(dir));
    kv = make_kv_in(f, "", dir); /* before bundle_json: it sets vbase */
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 1);
    kv->ops->destroy(kv);
    akv_config_free(f->cfg);

    /* "Process" 2: no token request, no GET. */
    kv = make_kv_in(f, "", dir);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    assert_string_equal(k.version, "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7");
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
    assert_int_equal(mock_count(f->m, "/keys/cmk"), 1);
    /* An operation needs the vault, with the cached token. */
    mock_push(f->m, "/keys/cmk/" V1 "/unwrapkey", 200,
              J("{\"kid\":\"@V@/keys/cmk/" V1 "\",\"value\":\"Zg\"}"), NULL, 0);
    assert_int_equal(kv->ops->unwrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, in,
                                     sizeof(in), &plain),
                     CKR_OK);
    akv_secret_clear(&plain);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 1);
    kv->ops->destroy(kv);
    akv_config_free(f->cfg);

    /* "Process" 3: the vault refuses the cached token (401): a new one is
     * fetched - never the refused one again from the cache - and stored. */
    kv = make_kv_in(f, "", dir);
    mock_push(f->m, "/keys/cmk/" V1 "/unwrapkey", 401, "", CHALLENGE, 0);
    mock_push(f->m, "/keys/cmk/" V1 "/unwrapkey", 200,
              J("{\"kid\":\"@V@/keys/cmk/" V1 "\",\"value\":\"Zg\"}"), NULL, 0);
    assert_int_equal(kv->ops->unwrap(kv, "cmk", V1, AKV_KV_ALG_RSA_OAEP_256, in,
                                     sizeof(in), &plain),
                     CKR_OK);
    akv_secret_clear(&plain);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 2);
    f->kv = kv;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Rewrites the cache entry KIND-* in DIR (there is one) with CONTENT,
 * stamped now, keeping its identity: what a corrupted file, an older
 * release's entry or a planted one looks like to the next process. */
static void cache_plant(const char *dir, const char *kind, const char *content)
{
    char cmd[256];
    char path[512] = "";
    uint8_t buf[8192];
    char desc[4097];
    uint32_t dlen = 0;
    size_t n;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "ls %s/%s-* | grep -v [.]tmp[.]", dir, kind);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(path, sizeof(path), p));
    pclose(p);
    path[strcspn(path, "\n")] = '\0';
    p = fopen(path, "rb");
    assert_non_null(p);
    n = fread(buf, 1, sizeof(buf), p);
    fclose(p);
    assert_true(n > 12);
    for (int i = 3; i >= 0; i--) {
        dlen = dlen << 8 | buf[8 + i];
    }
    assert_true(dlen < sizeof(desc) && 12 + dlen <= n);
    memcpy(desc, buf + 12, dlen);
    desc[dlen] = '\0';
    assert_int_equal(akv_pcache_store(dir, kind, desc, content, strlen(content),
                                      (int64_t)time(NULL)),
                     0);
}

/* A cached Get Key answer that fails the network checks (truncated JSON,
 * e = 1, a kid of another vault) is dropped and the vault asked again -
 * not a CKR_DEVICE_ERROR until key_refresh_s passes - and the fresh answer
 * replaces it. A cached token that could split the Authorization header
 * (CR/LF) is not sent: a new one is requested. */
static void test_cache_entry_checked(void **state)
{
    struct fx *f = *state;
    struct akv_kv *kv;
    struct akv_kv_key k;
    char dir[64];
    char cmd[96];
    char bad[3][1024];
    struct mock_rec r;

    snprintf(dir, sizeof(dir), "/tmp/akv-kvc-XXXXXX");
    assert_non_null(mkdtemp(dir));
    kv = make_kv_in(f, "", dir);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
    akv_kv_key_clear(&k);
    kv->ops->destroy(kv);
    akv_config_free(f->cfg);
    f->kv = NULL;
    f->cfg = NULL;
    snprintf(bad[0], sizeof(bad[0]), "%.60s", bundle_json());
    snprintf(bad[1], sizeof(bad[1]), "%s", bundle_json());
    memcpy(strstr(bad[1], "\"e\":\"AQAB\""), "\"e\":\"AQ\"  ", 10);
    snprintf(bad[2], sizeof(bad[2]),
             "{\"key\":{\"kid\":\"https://evil.example/keys/cmk/"
             "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7\",\"kty\":\"RSA-HSM\","
             "\"n\":\"%s\",\"e\":\"AQAB\"}}",
             n_b64);
    for (int i = 0; i < 3; i++) {
        unsigned gets = mock_count(f->m, "/keys/cmk");

        cache_plant(dir, "key", bad[i]);
        kv = make_kv_in(f, "", dir);
        mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
        assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
        assert_int_equal(k.e_len, 3);
        akv_kv_key_clear(&k);
        assert_int_equal(mock_count(f->m, "/keys/cmk"), gets + 1);
        kv->ops->destroy(kv);
        akv_config_free(f->cfg);
        /* The fresh answer was cached again: no GET now. */
        kv = make_kv_in(f, "", dir);
        assert_int_equal(kv->ops->get_key(kv, "cmk", NULL, &k), CKR_OK);
        akv_kv_key_clear(&k);
        assert_int_equal(mock_count(f->m, "/keys/cmk"), gets + 1);
        kv->ops->destroy(kv);
        akv_config_free(f->cfg);
        f->cfg = NULL;
    }
    /* The token entry: "<lifetime>\n<token>". */
    cache_plant(dir, "token", "3600\nabc\r\nX-Planted: 1");
    kv = make_kv_in(f, "", dir);
    mock_push(f->m, "/keys/cmk", 200, bundle_json(), NULL, 0);
    assert_int_equal(
        kv->ops->get_key(kv, "cmk", "0b6c1e2a9f3d4e58a1c7d2e3f4a5b6c7", &k),
        CKR_OK);
    akv_kv_key_clear(&k);
    assert_int_equal(mock_count(f->m, "/oauth2/"), 2);
    r = rec_at(f, mock_total(f->m) - 1);
    assert_null(strstr(r.auth, "X-Planted"));
    f->kv = kv;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_rest_new_refuses(void **state)
{
    struct akv_token_config tc;
    struct akv_kv *kv = NULL;
    (void)state;

    memset(&tc, 0, sizeof(tc));
    tc.label = (char *)"x";
    tc.vault_url = (char *)"http://10.1.2.3";
    tc.http.allow_http_loopback = true;
    assert_int_equal(akv_kv_rest_new(&tc, &kv), CKR_GENERAL_ERROR);
    tc.vault_url = (char *)"http://v.vault.azure.net";
    tc.http.allow_http_loopback = false;
    assert_int_equal(akv_kv_rest_new(&tc, &kv), CKR_GENERAL_ERROR);
    assert_null(kv);
    assert_int_equal(akv_kv_rest_new(NULL, &kv), CKR_ARGUMENTS_BAD);
}

/* A loopback address that never answers a SYN: a listener whose accept
 * queue (backlog 0) is already full drops further SYNs, exactly what a
 * black-holed or DROP-firewalled vault address does. Returns the port; the
 * sockets stay open in BH (listener + fillers) until black_hole_close. */
struct black_hole {
    int fds[4];
};

static int black_hole_open(struct black_hole *bh)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bh->fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(bh->fds[0] >= 0);
    assert_int_equal(bind(bh->fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(bh->fds[0], 0), 0);
    assert_int_equal(getsockname(bh->fds[0], (struct sockaddr *)&a, &len), 0);
    for (int i = 1; i < 4; i++) {
        bh->fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(bh->fds[i] >= 0);
        (void)connect(bh->fds[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(100000); /* let the handshakes fill the queue */
    return ntohs(a.sin_port);
}

static void black_hole_close(struct black_hole *bh)
{
    for (int i = 0; i < 4; i++) {
        close(bh->fds[i]);
    }
}

/* Issue 8: http.connect_timeout_ms bounds each attempt's connection phase,
 * so a vault address that never answers fails after about attempts x
 * connect timeout (+ backoff), not after timeout_ms per attempt and the
 * whole budget_ms (8 s here) as before. */
static void test_connect_timeout(void **state)
{
    struct fx *f = *state;
    struct black_hole bh;
    int port = black_hole_open(&bh);
    char json[2048];
    char err[512];
    struct akv_kv_key k;
    int64_t t0;
    int64_t dt;

    snprintf(json, sizeof(json),
             "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"
             "\"http://127.0.0.1:%d\",\"keys\":[\"cmk\"],"
             "\"credential\":{\"type\":\"client_secret\",\"tenant_id\":"
             "\"tenant-1\",\"client_id\":\"cid\",\"client_secret_env\":"
             "\"AKV_TEST_SECRET\",\"authority_host\":\"%s\"},"
             "\"http\":{\"allow_http_loopback\":true,\"retries\":2,"
             "\"timeout_ms\":4000,\"budget_ms\":8000,"
             "\"connect_timeout_ms\":300}}]}",
             port, mock_url(f->m));
    if (akv_config_parse(json, strlen(json), "test.json", &f->cfg, err,
                         sizeof(err))
        != 0) {
        fail_msg("config: %s", err);
    }
    assert_int_equal(f->cfg->tokens[0].http.connect_timeout_ms, 300);
    assert_int_equal(akv_kv_rest_new(&f->cfg->tokens[0], &f->kv), CKR_OK);
    t0 = akv_retry_now_ms();
    assert_int_equal(f->kv->ops->get_key(f->kv, "cmk", NULL, &k),
                     CKR_DEVICE_ERROR);
    dt = akv_retry_now_ms() - t0;
    /* 3 attempts x 300 ms + backoff (at most 500 + 1000 ms) */
    assert_true(dt >= 850);
    assert_true(dt < 3500);
    /* the identity endpoint (answering) was asked; the vault never was */
    assert_int_equal(mock_count(f->m, "/keys"), 0);
    assert_true(mock_count(f->m, "/tenant-1") >= 1);
    black_hole_close(&bh);
}

int main(void)
{
    uint8_t n[256];
    /* Built twice (see CMakeLists.txt): the functional group, and the
     * timing group (retries, Retry-After, timeouts, budget, expiry) whose
     * tests sleep, so that each binary stays short. */
#ifndef AKV_TEST_TIMING
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_unwrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_op_kid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_error_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_challenge_refresh, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_challenge_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_without_challenge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_challenge_resource_verified, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_token_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hammer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_entry_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cross_process_cache, setup,
                                        teardown),
        cmocka_unit_test(test_rest_new_refuses),
    };
#else
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retry_5xx_then_ok, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retries_exhausted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_http_date, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_beyond_budget, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
    };
#endif

    for (int i = 0; i < 256; i++) {
        n[i] = (uint8_t)(i + 1);
    }
    n[0] = 0xc1;   /* a 2048-bit modulus: top bit set */
    n[255] = 0x01; /* and odd (akv_jwk_check) */
    akv_b64url_encode(n, 256, n_b64, sizeof(n_b64));
    setenv("AKV_TEST_SECRET", "s&cr=t+ x", 1);
    akv_log_configure(getenv("AKV_TEST_LOG") != NULL ? AKV_LOG_LEVEL_DEBUG
                                                     : AKV_LOG_LEVEL_NONE,
                      NULL);
    assert_int_equal(akv_kv_global_init(), CKR_OK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
