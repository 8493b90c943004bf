/* SPDX-License-Identifier: Apache-2.0 */
#include "jwt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/b64url.h"
#include "../common/fsperm.h"
#include "../common/log.h"

#define PEM_MAX 65536 /* bytes */

/* Reads a secret-bearing file: refused when world-readable (design.md:
 * secrets never in a world-readable file). */
static CK_RV read_private_file(const char *path, struct akv_secret *out,
                               char *why, size_t why_len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct stat st;
    int fd = -1;
    char ebuf[128];

    /* StrictModes rules (fsperm.h): another user's file, a folder others
     * can write or a symlink could swap in a key of their choosing. */
    fd = akv_fsperm_open(path, O_RDONLY, 0, ebuf, sizeof(ebuf));
    if (fd < 0) {
        akv_log_fmt(why, why_len, "certificate_file refused: %s", ebuf);
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0
        || st.st_size > PEM_MAX) {
        akv_log_fmt(why, why_len,
                    "certificate_file %s: not a regular file of 1..%d bytes",
                    path, PEM_MAX);
        goto out;
    }
    if ((st.st_mode & S_IROTH) != 0) {
        akv_log_fmt(why, why_len,
                    "certificate_file %s: world-readable (mode %04o); refusing "
                    "to use a private key others can read",
                    path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (akv_secret_read_fd(out, fd, (size_t)st.st_size) != 0) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    rv = CKR_OK;
out:
    if (fd >= 0) {
        (void)close(fd);
    }
    return rv;
}

/* Never asks for a passphrase: with no callback OpenSSL prompts on the
 * controlling terminal and blocks the host application until someone types
 * (an encrypted key is refused instead, as documented). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

CK_RV akv_jwt_load_pem(OSSL_LIB_CTX *libctx, const char *path, EVP_PKEY **key,
                       uint8_t x5t[20], char *why, size_t why_len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct akv_secret pem = AKV_SECRET_INIT;

    if (path == NULL || key == NULL || x5t == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = read_private_file(path, &pem, why, why_len);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = akv_jwt_parse_pem(libctx, pem.data, pem.len, path, key, x5t, why,
                           why_len);
out:
    akv_secret_clear(&pem);
    return rv;
}

CK_RV akv_jwt_parse_pem(OSSL_LIB_CTX *libctx, const uint8_t *pem_data,
                        size_t pem_len, const char *path, EVP_PKEY **key,
                        uint8_t x5t[20], char *why, size_t why_len)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    BIO *bio = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pkey = NULL;
    EVP_MD *sha1 = NULL;
    unsigned char *der = NULL;
    int der_len;
    unsigned int md_len = 0;

    if (pem_data == NULL || pem_len == 0 || pem_len > PEM_MAX || path == NULL
        || key == NULL || x5t == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    bio = BIO_new_mem_buf(pem_data, (int)pem_len);
    cert = X509_new_ex(libctx, NULL);
    if (bio == NULL || cert == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    /* PEM_read_bio_* skip blocks of other types, so order does not matter */
    if (PEM_read_bio_X509(bio, &cert, no_passphrase, NULL) == NULL) {
        akv_log_fmt(why, why_len,
                    "certificate_file %s: no PEM CERTIFICATE block", path);
        goto out;
    }
    BIO_free(bio);
    bio = BIO_new_mem_buf(pem_data, (int)pem_len);
    if (bio == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, no_passphrase, NULL, libctx,
                                      NULL);
    if (pkey == NULL) {
        akv_log_fmt(why, why_len,
                    "certificate_file %s: no unencrypted PEM private key",
                    path);
        goto out;
    }
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        akv_log_fmt(why, why_len,
                    "certificate_file %s: the private key is not RSA (RS256 "
                    "needs RSA)",
                    path);
        goto out;
    }
    if (X509_check_private_key(cert, pkey) != 1) {
        akv_log_fmt(why, why_len,
                    "certificate_file %s: private key does not match the "
                    "certificate",
                    path);
        goto out;
    }
    {
        /* X509_check_private_key compares the public halves only: a key
         * whose private parts are inconsistent (n != p*q, a factor not
         * prime - a damaged or forged file) would load and then fail every
         * signature. Check the whole key once, here (found by fuzzing). */
        EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, NULL);
        int ok = kctx != NULL && EVP_PKEY_check(kctx) == 1;

        EVP_PKEY_CTX_free(kctx);
        if (!ok) {
            akv_log_fmt(why, why_len,
                        "certificate_file %s: the private key is not a "
                        "consistent RSA key",
                        path);
            goto out;
        }
    }
    der_len = i2d_X509(cert, &der);
    sha1 = EVP_MD_fetch(libctx, "SHA1", NULL);
    if (der_len <= 0 || sha1 == NULL
        || EVP_Digest(der, (size_t)der_len, x5t, &md_len, sha1, NULL) != 1
        || md_len != 20) {
        akv_log_fmt(why, why_len,
                    "certificate_file %s: cannot compute the SHA-1 thumbprint",
                    path);
        goto out;
    }
    *key = pkey;
    pkey = NULL;
    rv = CKR_OK;
out:
    OPENSSL_free(der);
    EVP_MD_free(sha1);
    EVP_PKEY_free(pkey);
    X509_free(cert);
    BIO_free(bio);
    return rv;
}

/* Appends base64url(P) to OUT. */
static int append_b64(struct akv_secret *out, const uint8_t *p, size_t len)
{
    size_t n = akv_b64url_encoded_len(len);
    char *tmp = malloc(n + 1);
    int rc = -1;

    if (tmp == NULL) {
        return -1;
    }
    if (akv_b64url_encode(p, len, tmp, n + 1) >= 0
        && akv_secret_append(out, tmp, n, 0) == 0) {
        rc = 0;
    }
    /* TMP holds the encoded signature, i.e. part of the bearer
     * assertion: wipe it before it goes back to the heap. */
    OPENSSL_clear_free(tmp, n + 1);
    return rc;
}

static int append_json_b64(struct akv_secret *out, cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    int rc = -1;

    if (s != NULL) {
        rc = append_b64(out, (const uint8_t *)s, strlen(s));
        free(s);
    }
    return rc;
}

static int make_guid(OSSL_LIB_CTX *libctx, char out[37])
{
    uint8_t b[16];

    if (RAND_bytes_ex(libctx, b, sizeof(b), 0) != 1) {
        return -1;
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    (void)snprintf(out, 37,
                   "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%"
                   "02x%02x%02x",
                   b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                   b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

CK_RV akv_jwt_assertion(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                        const uint8_t x5t[20], const char *client_id,
                        const char *aud, int64_t now, struct akv_secret *out)
{
    CK_RV rv = CKR_HOST_MEMORY;
    cJSON *hdr = NULL;
    cJSON *claims = NULL;
    EVP_MD_CTX *mctx = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    size_t sig_cap = 0;
    char x5t_b64[32];
    char guid[37];
    size_t signed_len;

    if (key == NULL || x5t == NULL || client_id == NULL || aud == NULL
        || out == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    akv_secret_clear(out);
    if (akv_b64url_encode(x5t, 20, x5t_b64, sizeof(x5t_b64)) < 0
        || make_guid(libctx, guid) != 0) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    hdr = cJSON_CreateObject();
    claims = cJSON_CreateObject();
    if (hdr == NULL || claims == NULL
        || cJSON_AddStringToObject(hdr, "alg", "RS256") == NULL
        || cJSON_AddStringToObject(hdr, "typ", "JWT") == NULL
        || cJSON_AddStringToObject(hdr, "x5t", x5t_b64) == NULL
        || cJSON_AddStringToObject(claims, "aud", aud) == NULL
        || cJSON_AddStringToObject(claims, "iss", client_id) == NULL
        || cJSON_AddStringToObject(claims, "sub", client_id) == NULL
        || cJSON_AddStringToObject(claims, "jti", guid) == NULL
        || cJSON_AddNumberToObject(claims, "nbf", (double)now) == NULL
        || cJSON_AddNumberToObject(claims, "iat", (double)now) == NULL
        || cJSON_AddNumberToObject(claims, "exp",
                                   (double)(now + AKV_JWT_LIFETIME_S))
               == NULL) {
        goto out;
    }
    if (append_json_b64(out, hdr) != 0 || akv_secret_append(out, ".", 1, 0) != 0
        || append_json_b64(out, claims) != 0) {
        goto out;
    }
    signed_len = out->len;
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        goto out;
    }
    /* RSA defaults to PKCS#1 v1.5 padding: RS256 */
    if (EVP_DigestSignInit_ex(mctx, NULL, "SHA256", libctx, NULL, key, NULL)
            != 1
        || EVP_DigestSign(mctx, NULL, &sig_len, out->data, signed_len) != 1) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    sig = malloc(sig_len);
    if (sig == NULL) {
        goto out;
    }
    sig_cap = sig_len;
    if (EVP_DigestSign(mctx, sig, &sig_len, out->data, signed_len) != 1) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }
    if (akv_secret_append(out, ".", 1, 0) != 0
        || append_b64(out, sig, sig_len) != 0) {
        goto out;
    }
    rv = CKR_OK;
out:
    if (rv != CKR_OK && out != NULL) {
        akv_secret_clear(out);
    }
    /* The raw signature completes the assertion (a bearer credential
     * until it expires): wipe the whole allocation, as the final
     * EVP_DigestSign may have shortened sig_len. */
    OPENSSL_clear_free(sig, sig_cap);
    EVP_MD_CTX_free(mctx);
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    return rv;
}
