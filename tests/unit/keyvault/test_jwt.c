/* SPDX-License-Identifier: Apache-2.0 */
/* keyvault/jwt.c: the client assertion's header and claims (decoded back
 * from what was built) and its RS256 signature, verified with the
 * certificate's public key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/b64url.h"
#include "common/log.h"
#include "keyvault/jwt.h"

static char pem_path[512];
static char pem_world[512];
static char pem_mismatch[512];
static X509 *cert;
static EVP_PKEY *key;

static X509 *make_cert(EVP_PKEY *k)
{
    X509 *x = X509_new();
    X509_NAME *n;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"akv-test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, k, EVP_sha256());
    return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k, int mode)
{
    FILE *f = fopen(path, "w");
    /* key first: the loader must not depend on block order */
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    PEM_write_X509(f, x);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static int setup(void **state)
{
    const char *dir = getenv("AKV_TEST_TMP");
    EVP_PKEY *other;
    (void)state;

    if (dir == NULL) {
        dir = "/tmp";
    }
    key = EVP_RSA_gen(2048);
    other = EVP_RSA_gen(2048);
    cert = make_cert(key);
    snprintf(pem_path, sizeof(pem_path), "%s/jwt-%d.pem", dir, (int)getpid());
    snprintf(pem_world, sizeof(pem_world), "%s/jwt-w-%d.pem", dir,
             (int)getpid());
    snprintf(pem_mismatch, sizeof(pem_mismatch), "%s/jwt-m-%d.pem", dir,
             (int)getpid());
    write_pem(pem_path, cert, key, 0600);
    write_pem(pem_world, cert, key, 0644);
    write_pem(pem_mismatch, cert, other, 0600);
    EVP_PKEY_free(other);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(pem_path);
    unlink(pem_world);
    unlink(pem_mismatch);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

static cJSON *decode_part(const char *p, size_t n)
{
    uint8_t buf[2048];
    long r = akv_b64url_decode(p, n, buf, sizeof(buf) - 1);
    assert_true(r > 0);
    buf[r] = '\0';
    return cJSON_Parse((const char *)buf);
}

static void test_assertion(void **state)
{
    OSSL_LIB_CTX *lib = OSSL_LIB_CTX_new();
    EVP_PKEY *k = NULL;
    uint8_t x5t[20];
    uint8_t want[20];
    unsigned int wl = 0;
    struct akv_secret jwt = AKV_SECRET_INIT;
    const char *aud = "https://login.microsoftonline.com/tid/oauth2/v2.0/token";
    const char *s;
    const char *dot1;
    const char *dot2;
    cJSON *hdr;
    cJSON *cl;
    char x5t_b64[32];
    uint8_t sig[600];
    long sig_len;
    EVP_MD_CTX *m;
    (void)state;

    assert_int_equal(akv_jwt_load_pem(lib, pem_path, &k, x5t, NULL, 0), CKR_OK);
    X509_digest(cert, EVP_sha1(), want, &wl);
    assert_int_equal(wl, 20);
    assert_memory_equal(x5t, want, 20);

    assert_int_equal(
        akv_jwt_assertion(lib, k, x5t, "client-1", aud, 1700000000, &jwt),
        CKR_OK);
    s = (const char *)jwt.data;
    dot1 = strchr(s, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    assert_null(strchr(s, '='));

    hdr = decode_part(s, (size_t)(dot1 - s));
    assert_non_null(hdr);
    assert_string_equal(cJSON_GetObjectItem(hdr, "alg")->valuestring, "RS256");
    assert_string_equal(cJSON_GetObjectItem(hdr, "typ")->valuestring, "JWT");
    akv_b64url_encode(want, 20, x5t_b64, sizeof(x5t_b64));
    assert_string_equal(cJSON_GetObjectItem(hdr, "x5t")->valuestring, x5t_b64);
    cJSON_Delete(hdr);

    cl = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    assert_non_null(cl);
    assert_string_equal(cJSON_GetObjectItem(cl, "aud")->valuestring, aud);
    assert_string_equal(cJSON_GetObjectItem(cl, "iss")->valuestring,
                        "client-1");
    assert_string_equal(cJSON_GetObjectItem(cl, "sub")->valuestring,
                        "client-1");
    assert_int_equal(strlen(cJSON_GetObjectItem(cl, "jti")->valuestring), 36);
    assert_int_equal(cJSON_GetObjectItem(cl, "jti")->valuestring[14], '4');
    assert_int_equal((long)cJSON_GetObjectItem(cl, "nbf")->valuedouble,
                     1700000000);
    assert_int_equal((long)cJSON_GetObjectItem(cl, "iat")->valuedouble,
                     1700000000);
    assert_int_equal((long)cJSON_GetObjectItem(cl, "exp")->valuedouble,
                     1700000600);
    cJSON_Delete(cl);

    sig_len = akv_b64url_decode(dot2 + 1, strlen(dot2 + 1), sig, sizeof(sig));
    assert_int_equal(sig_len, 256);
    m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL,
                                          X509_get0_pubkey(cert)),
                     1);
    assert_int_equal(EVP_DigestVerify(m, sig, (size_t)sig_len,
                                      (const uint8_t *)s, (size_t)(dot2 - s)),
                     1);
    /* and a tampered claims part does not verify */
    EVP_MD_CTX_free(m);
    m = EVP_MD_CTX_new();
    {
        char *t = strndup(s, (size_t)(dot2 - s));
        t[dot1 - s + 3] ^= 1;
        EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL,
                             X509_get0_pubkey(cert));
        assert_int_not_equal(EVP_DigestVerify(m, sig, (size_t)sig_len,
                                              (const uint8_t *)t, strlen(t)),
                             1);
        free(t);
    }
    EVP_MD_CTX_free(m);

    /* two assertions differ in jti */
    {
        struct akv_secret j2 = AKV_SECRET_INIT;
        assert_int_equal(
            akv_jwt_assertion(lib, k, x5t, "client-1", aud, 1700000000, &j2),
            CKR_OK);
        assert_string_not_equal((char *)j2.data, (char *)jwt.data);
        akv_secret_clear(&j2);
    }
    akv_secret_clear(&jwt);
    EVP_PKEY_free(k);
    OSSL_LIB_CTX_free(lib);
}

static void test_load_refusals(void **state)
{
    OSSL_LIB_CTX *lib = OSSL_LIB_CTX_new();
    EVP_PKEY *k = NULL;
    uint8_t x5t[20];
    char why[256] = "";
    (void)state;

    assert_int_equal(
        akv_jwt_load_pem(lib, pem_world, &k, x5t, why, sizeof(why)),
        CKR_DEVICE_ERROR);
    assert_non_null(strstr(why, "world-readable (mode 0644)"));
    assert_null(k);
    assert_int_equal(
        akv_jwt_load_pem(lib, pem_mismatch, &k, x5t, why, sizeof(why)),
        CKR_DEVICE_ERROR);
    assert_non_null(strstr(why, "does not match the certificate"));
    assert_null(k);
    assert_int_equal(
        akv_jwt_load_pem(lib, "/nonexistent.pem", &k, x5t, why, sizeof(why)),
        CKR_DEVICE_ERROR);
    assert_int_equal(akv_jwt_load_pem(lib, NULL, &k, x5t, NULL, 0),
                     CKR_ARGUMENTS_BAD);
    OSSL_LIB_CTX_free(lib);
}

/* PEM text of the fixture certificate and KEY (encrypted under "pw" with
 * AES-256-CBC when ENCRYPT), malloc'ed; *LEN bytes. */
static char *pem_text(int encrypt, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    char *out;
    long n;

    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, cert), 1);
    if (encrypt) {
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, key,
                                                       EVP_aes_256_cbc(), NULL,
                                                       0, NULL, (void *)"pw"),
                         1);
    } else {
        assert_int_equal(
            PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
    }
    n = BIO_get_mem_data(b, &p);
    assert_true(n > 0);
    out = malloc((size_t)n);
    assert_non_null(out);
    memcpy(out, p, (size_t)n);
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

/* The in-memory parser (what fuzz_cert_pem drives) is the file loader's
 * code path: same key and thumbprint; bad sizes are argument errors; the
 * input need not be NUL-terminated. */
/* A certificate with a matching public key whose private parts are
 * inconsistent (q not prime, n != p*q): refused at load, not at the first
 * signature (fuzz_cert_pem found it; tests/fuzz/corpus/fuzz_cert_pem/
 * regress_inconsistent_rsa_key.pem). */
static void test_inconsistent_key_refused(void **state)
{
    EVP_PKEY *k = NULL;
    uint8_t x[20];
    char why[256] = "";
    uint8_t buf[8192];
    size_t len;
    FILE *f = fopen(AKV_TEST_FUZZ_CORPUS
                    "/fuzz_cert_pem/regress_inconsistent_rsa_key.pem",
                    "rb");
    (void)state;

    assert_non_null(f);
    len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(len > 0);
    assert_int_equal(
        akv_jwt_parse_pem(NULL, buf, len, "bad.pem", &k, x, why, sizeof(why)),
        CKR_DEVICE_ERROR);
    assert_null(k);
    assert_non_null(strstr(why, "not a consistent RSA key"));
}

static void test_parse_pem_memory(void **state)
{
    EVP_PKEY *k1 = NULL;
    EVP_PKEY *k2 = NULL;
    uint8_t x1[20];
    uint8_t x2[20];
    char why[256] = "";
    size_t len;
    char *pem = pem_text(0, &len);
    (void)state;

    assert_int_equal(
        akv_jwt_load_pem(NULL, pem_path, &k1, x1, why, sizeof(why)), CKR_OK);
    assert_int_equal(akv_jwt_parse_pem(NULL, (const uint8_t *)pem, len, "mem",
                                       &k2, x2, why, sizeof(why)),
                     CKR_OK);
    assert_memory_equal(x1, x2, sizeof(x1));
    assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    k2 = NULL;
    assert_int_equal(akv_jwt_parse_pem(NULL, (const uint8_t *)pem, 0, "mem",
                                       &k2, x2, why, sizeof(why)),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(akv_jwt_parse_pem(NULL, (const uint8_t *)pem, 65537, "mem",
                                       &k2, x2, why, sizeof(why)),
                     CKR_ARGUMENTS_BAD);
    /* cut inside the key block: no key, a reason naming the source */
    assert_int_equal(akv_jwt_parse_pem(NULL, (const uint8_t *)pem, len - 40,
                                       "mem", &k2, x2, why, sizeof(why)),
                     CKR_DEVICE_ERROR);
    assert_null(k2);
    assert_non_null(strstr(why, "certificate_file mem: "));
    free(pem);
}

/* An encrypted key is refused, never prompted for: a process with a
 * controlling terminal (an interactive `openssl pkeyutl`, ssh) must not
 * block on "Enter PEM pass phrase:". The parse runs in a child whose
 * controlling terminal is a fresh pseudo-terminal nobody types into; it
 * must finish within 5 s with the documented refusal. */
static void test_encrypted_key_no_prompt(void **state)
{
    size_t len;
    char *pem = pem_text(1, &len);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    char echo[512];
    size_t echo_len = 0;
    int status = -1;
    pid_t pid;
    (void)state;

    if (master < 0) {
        free(pem);
        skip(); /* no pseudo-terminals here (no /dev/ptmx) */
    }
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        EVP_PKEY *k = NULL;
        uint8_t x5t[20];
        char why[256] = "";
        int slave;
        CK_RV rv;

        (void)setsid();
        slave = open(ptsname(master), O_RDWR); /* controlling terminal */
        if (slave < 0) {
            _exit(3);
        }
        rv = akv_jwt_parse_pem(NULL, (const uint8_t *)pem, len, "enc.pem", &k,
                               x5t, why, sizeof(why));
        _exit(rv == CKR_DEVICE_ERROR && k == NULL
                      && strstr(why, "no unencrypted PEM private key") != NULL
                  ? 0
                  : 4);
    }
    for (time_t end = time(NULL) + 5; time(NULL) < end;) {
        struct pollfd pfd = {.fd = master, .events = POLLIN};
        struct timespec pause = {0, 10 * 1000 * 1000};

        if (waitpid(pid, &status, WNOHANG) == pid) {
            break;
        }
        /* keep the terminal drained; remember what the child printed
         * (poll reports POLLHUP at once while no slave is open) */
        if (poll(&pfd, 1, 10) > 0 && (pfd.revents & POLLIN) != 0
            && echo_len < sizeof(echo) - 1) {
            ssize_t n =
                read(master, echo + echo_len, sizeof(echo) - 1 - echo_len);
            if (n > 0) {
                echo_len += (size_t)n;
            }
        } else {
            (void)nanosleep(&pause, NULL);
        }
    }
    echo[echo_len] = '\0';
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        fail_msg("parse still blocked after 5 s; terminal shows: %s", echo);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_null(strstr(echo, "pass phrase"));
    close(master);
    free(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assertion),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_parse_pem_memory),
        cmocka_unit_test(test_inconsistent_key_refused),
        cmocka_unit_test(test_encrypted_key_no_prompt),
    };
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    return cmocka_run_group_tests(tests, setup, teardown);
}
