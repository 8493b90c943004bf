/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OpenSSL 3 primitives: the emulator CA and server certificate, RSA key
 * generation, the Key Vault encrypt/decrypt/wrapkey/unwrapkey algorithms
 * (RSA-OAEP = SHA-1, RSA-OAEP-256 = SHA-256 with MGF1 of the same hash,
 * RSA1_5 = PKCS#1 v1.5; A*KW = RFC 3394; CKM_AES_KEY_WRAP_PAD = RFC 5649),
 * and client certificates for "ad sp create-for-rbac --create-cert".
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "emu.h"

EVP_PKEY *emu_rsa_generate(int bits)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

EVP_PKEY *emu_rsa_generate_e(int bits, unsigned long e)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *k = NULL;
    BIGNUM *bn = BN_new();

    if (!ctx || !bn || !BN_set_word(bn, e) || EVP_PKEY_keygen_init(ctx) <= 0
        || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) <= 0
        || EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn) <= 0
        || EVP_PKEY_keygen(ctx, &k) <= 0) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    BN_free(bn);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

static EVP_PKEY *ec_generate(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

char *emu_pkey_to_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *p;
    long n;

    if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
        goto out;
    }
    n = BIO_get_mem_data(b, &p);
    out = strndup(p, (size_t)n);
out:
    BIO_free(b);
    return out;
}

static char *cert_to_pem(X509 *c)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *p;
    long n;

    if (!b || !PEM_write_bio_X509(b, c)) {
        goto out;
    }
    n = BIO_get_mem_data(b, &p);
    out = strndup(p, (size_t)n);
out:
    BIO_free(b);
    return out;
}

EVP_PKEY *emu_pkey_from_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = NULL;

    if (b) {
        k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    return k;
}

static X509 *cert_from_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *c = NULL;

    if (b) {
        c = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    return c;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex) {
        return -1;
    }
    X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return 0;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, int is_ca, const char *san,
                       long days)
{
    X509 *c = X509_new();
    X509_NAME *name;
    unsigned char serial[16];
    BIGNUM *bn = NULL;

    if (!c) {
        return NULL;
    }
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
    BN_free(bn);
    X509_set_version(c, 2);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), days * 86400L);
    X509_set_pubkey(c, key);
    name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (const unsigned char *)"akv-emulator", -1, -1,
                               0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    if (is_ca) {
        add_ext(c, issuer ? issuer : c, NID_basic_constraints,
                "critical,CA:TRUE");
        add_ext(c, issuer ? issuer : c, NID_key_usage,
                "critical,keyCertSign,cRLSign");
        add_ext(c, issuer ? issuer : c, NID_subject_key_identifier, "hash");
    } else {
        add_ext(c, issuer ? issuer : c, NID_basic_constraints, "CA:FALSE");
        add_ext(c, issuer ? issuer : c, NID_key_usage,
                "critical,digitalSignature");
        add_ext(c, issuer ? issuer : c, NID_ext_key_usage,
                issuer ? "serverAuth" : "clientAuth");
        if (san) {
            add_ext(c, issuer ? issuer : c, NID_subject_alt_name, san);
        }
    }
    if (!X509_sign(c, issuer_key, EVP_sha256())) {
        X509_free(c);
        return NULL;
    }
    return c;
}

static int write_pem(const char *dir, const char *file, const char *pem,
                     int mode)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return emu_write_file_atomic(path, pem, strlen(pem), mode);
}

int emu_crypto_ensure_tls(const char *dir)
{
    char path[4200];
    EVP_PKEY *cakey = NULL, *skey = NULL;
    X509 *ca = NULL, *srv = NULL;
    char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/server.pem", dir);
    emu.tls_cert_pem = emu_read_file(path, NULL);
    snprintf(path, sizeof(path), "%s/server-key.pem", dir);
    emu.tls_key_pem = emu_read_file(path, NULL);
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    p1 = emu_read_file(path, NULL);
    if (emu.tls_cert_pem && emu.tls_key_pem && p1) {
        free(p1);
        return 0;
    }
    free(p1);
    p1 = NULL;
    free(emu.tls_cert_pem);
    free(emu.tls_key_pem);
    emu.tls_cert_pem = emu.tls_key_pem = NULL;
    cakey = ec_generate();
    skey = ec_generate();
    if (!cakey || !skey) {
        goto out;
    }
    ca = make_cert(cakey, "akv-emulator local CA", NULL, cakey, 1, NULL, 3650);
    if (!ca) {
        goto out;
    }
    srv = make_cert(skey, "localhost", ca, cakey, 0,
                    "DNS:localhost,IP:127.0.0.1", 825);
    if (!srv) {
        goto out;
    }
    p1 = cert_to_pem(ca);
    p2 = emu_pkey_to_pem(cakey);
    p3 = cert_to_pem(srv);
    p4 = emu_pkey_to_pem(skey);
    if (!p1 || !p2 || !p3 || !p4) {
        goto out;
    }
    if (write_pem(dir, "ca-key.pem", p2, 0600) != 0
        || write_pem(dir, "ca.pem", p1, 0644) != 0
        || write_pem(dir, "server-key.pem", p4, 0600) != 0
        || write_pem(dir, "server.pem", p3, 0644) != 0) {
        goto out;
    }
    emu.tls_cert_pem = p3;
    emu.tls_key_pem = p4;
    p3 = p4 = NULL;
    rc = 0;
out:
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(skey);
    X509_free(ca);
    X509_free(srv);
    free(p1);
    if (p2) {
        OPENSSL_cleanse(p2, strlen(p2));
    }
    free(p2);
    free(p3);
    free(p4);
    return rc;
}

static char *bn_param_b64(EVP_PKEY *k, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char *buf = NULL;
    char *out = NULL;
    int n;

    if (!EVP_PKEY_get_bn_param(k, param, &bn)) {
        return NULL;
    }
    n = BN_num_bytes(bn);
    buf = malloc((size_t)n + 1);
    if (buf) {
        /* BN_bn2bin emits the minimal big-endian form (RFC 7518 6.3.1.1). */
        BN_bn2bin(bn, buf);
        out = emu_b64url_encode(buf, (size_t)n);
    }
    free(buf);
    BN_free(bn);
    return out;
}

int emu_rsa_public_b64(EVP_PKEY *k, char **n_b64, char **e_b64)
{
    *n_b64 = bn_param_b64(k, OSSL_PKEY_PARAM_RSA_N);
    *e_b64 = bn_param_b64(k, OSSL_PKEY_PARAM_RSA_E);
    return *n_b64 && *e_b64 ? 0 : -1;
}

static int rsa_crypt(EVP_PKEY *pkey, int decrypt, const char *alg,
                     const unsigned char *in, size_t inlen, unsigned char **out,
                     size_t *outlen, const char **err)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    const EVP_MD *md = NULL;
    int pad, rc = -1;
    size_t olen = 0;
    unsigned char *buf = NULL;

    if (!ctx) {
        *err = "Internal error.";
        goto out;
    }
    if (strcmp(alg, "RSA-OAEP") == 0) {
        pad = RSA_PKCS1_OAEP_PADDING;
        md = EVP_sha1();
    } else if (strcmp(alg, "RSA-OAEP-256") == 0) {
        pad = RSA_PKCS1_OAEP_PADDING;
        md = EVP_sha256();
    } else if (strcmp(alg, "RSA1_5") == 0) {
        pad = RSA_PKCS1_PADDING;
    } else {
        *err = "Invalid algorithm for the key type.";
        goto out;
    }
    if ((decrypt ? EVP_PKEY_decrypt_init(ctx) : EVP_PKEY_encrypt_init(ctx)) <= 0
        || EVP_PKEY_CTX_set_rsa_padding(ctx, pad) <= 0) {
        *err = "Internal error.";
        goto out;
    }
    if (md
        && (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0)) {
        *err = "Internal error.";
        goto out;
    }
    if (decrypt) {
        /* The service checks the ciphertext length against the modulus. */
        if (inlen != (size_t)EVP_PKEY_get_size(pkey)) {
            *err = md ? "Error occurred while decoding OAEP padding."
                      : "Error occurred while decoding PKCS1 padding.";
            goto out;
        }
        if (pad == RSA_PKCS1_PADDING) {
            /* Implicit rejection would return random bytes instead of an
             * error; the service reports a padding error. */
            EVP_PKEY_CTX_ctrl_str(ctx, "rsa_pkcs1_implicit_rejection", "0");
        }
    }
    olen = (size_t)EVP_PKEY_get_size(pkey);
    buf = malloc(olen);
    if (!buf) {
        *err = "Internal error.";
        goto out;
    }
    if ((decrypt ? EVP_PKEY_decrypt(ctx, buf, &olen, in, inlen)
                 : EVP_PKEY_encrypt(ctx, buf, &olen, in, inlen))
        <= 0) {
        ERR_clear_error();
        if (decrypt) {
            *err = md ? "Error occurred while decoding OAEP padding."
                      : "Error occurred while decoding PKCS1 padding.";
        } else {
            *err = "The length of the input is not valid for the algorithm "
                   "and key size.";
        }
        goto out;
    }
    *out = buf;
    *outlen = olen;
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        OPENSSL_cleanse(buf, olen);
    }
    free(buf);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static int aes_kw(const struct emu_keyver *kv, int decrypt, const char *alg,
                  const unsigned char *in, size_t inlen, unsigned char **out,
                  size_t *outlen, const char **err)
{
    const EVP_CIPHER *c = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    int pad = 0, want = 0, l1 = 0, l2 = 0, rc = -1;
    unsigned char *buf = NULL;
    size_t cap = inlen + 16;

    if (strcmp(alg, "A128KW") == 0) {
        want = 128;
    } else if (strcmp(alg, "A192KW") == 0) {
        want = 192;
    } else if (strcmp(alg, "A256KW") == 0) {
        want = 256;
    } else if (strcmp(alg, "CKM_AES_KEY_WRAP") == 0) {
        want = kv->bits;
    } else if (strcmp(alg, "CKM_AES_KEY_WRAP_PAD") == 0) {
        want = kv->bits;
        pad = 1;
    } else {
        *err = "Invalid algorithm for the key type.";
        goto out;
    }
    if (want != kv->bits) {
        *err = "The algorithm does not match the key size.";
        goto out;
    }
    if (!pad && (inlen < 16 || inlen % 8 != 0 || (decrypt && inlen < 24))) {
        *err = "The length of the input is not valid for the algorithm.";
        goto out;
    }
    if (pad && (inlen == 0 || (decrypt && (inlen < 16 || inlen % 8)))) {
        *err = "The length of the input is not valid for the algorithm.";
        goto out;
    }
    switch (kv->bits) {
    case 128:
        c = pad ? EVP_aes_128_wrap_pad() : EVP_aes_128_wrap();
        break;
    case 192:
        c = pad ? EVP_aes_192_wrap_pad() : EVP_aes_192_wrap();
        break;
    default:
        c = pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap();
        break;
    }
    ctx = EVP_CIPHER_CTX_new();
    buf = malloc(cap);
    if (!ctx || !buf) {
        *err = "Internal error.";
        goto out;
    }
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (!EVP_CipherInit_ex(ctx, c, NULL, kv->oct, NULL, decrypt ? 0 : 1)
        || EVP_CipherUpdate(ctx, buf, &l1, in, (int)inlen) <= 0
        || EVP_CipherFinal_ex(ctx, buf + l1, &l2) <= 0) {
        ERR_clear_error();
        *err = decrypt ? "Error occurred while unwrapping the key."
                       : "Internal error.";
        goto out;
    }
    *out = buf;
    *outlen = (size_t)(l1 + l2);
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        OPENSSL_cleanse(buf, cap);
    }
    free(buf);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int emu_key_crypt(const struct emu_keyver *kv, int decrypt, const char *alg,
                  const unsigned char *in, size_t inlen, unsigned char **out,
                  size_t *outlen, const char **err)
{
    if (kv->crv[0]) {
        /* EC keys only sign and verify. */
        *err = "Invalid algorithm for the key type.";
        return -1;
    }
    if (kv->pkey) {
        return rsa_crypt(kv->pkey, decrypt, alg, in, inlen, out, outlen, err);
    }
    return aes_kw(kv, decrypt, alg, in, inlen, out, outlen, err);
}

/* Maps a JWS signature alg to its hash and padding; -1 when unknown. */
static int sign_alg(const char *alg, const EVP_MD **md, int *pad)
{
    static const struct {
        const char *name;
        int pad;
        int bits;
    } t[] = {
        {"RS256", RSA_PKCS1_PADDING, 256},
        {"RS384", RSA_PKCS1_PADDING, 384},
        {"RS512", RSA_PKCS1_PADDING, 512},
        {"PS256", RSA_PKCS1_PSS_PADDING, 256},
        {"PS384", RSA_PKCS1_PSS_PADDING, 384},
        {"PS512", RSA_PKCS1_PSS_PADDING, 512},
        {"RSNULL", RSA_PKCS1_PADDING, 0},
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(alg, t[i].name) == 0) {
            *pad = t[i].pad;
            *md = t[i].bits == 256   ? EVP_sha256()
                  : t[i].bits == 384 ? EVP_sha384()
                  : t[i].bits == 512 ? EVP_sha512()
                                     : NULL;
            return 0;
        }
    }
    return -1;
}

#define BACKUP_MAGIC     "AKVB1"
#define BACKUP_MAGIC_LEN 5

/* The backup key: SHA-256 over a label and the signing key's private DER. */
static int backup_key(unsigned char key[32])
{
    unsigned char *der = NULL;
    int len = i2d_PrivateKey(emu.signing_key, &der);
    unsigned int outl = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;

    if (len > 0 && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL)
        && EVP_DigestUpdate(md, "akv-emulator key backup v1", 26)
        && EVP_DigestUpdate(md, der, (size_t)len)
        && EVP_DigestFinal_ex(md, key, &outl) && outl == 32) {
        rc = 0;
    }
    if (der) {
        OPENSSL_clear_free(der, (size_t)len);
    }
    EVP_MD_CTX_free(md);
    return rc;
}

/* One AES-256-GCM pass; on decrypt TAG is checked. */
static int backup_gcm(int enc, const unsigned char key[32],
                      const unsigned char iv[12], const unsigned char *in,
                      size_t inlen, unsigned char *out, unsigned char tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0, rc = -1;

    if (c && inlen <= INT_MAX
        && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc)
        && EVP_CipherUpdate(c, out, &l1, in, (int)inlen)
        && (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag))
        && EVP_CipherFinal_ex(c, out + l1, &l2)
        && (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag))) {
        rc = 0;
    }
    ERR_clear_error();
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int emu_backup_seal(const unsigned char *in, size_t inlen, unsigned char **out,
                    size_t *outlen)
{
    unsigned char key[32];
    size_t n = BACKUP_MAGIC_LEN + 12 + inlen + 16;
    unsigned char *buf = malloc(n);
    int rc = -1;

    if (!buf || backup_key(key) != 0
        || RAND_bytes(buf + BACKUP_MAGIC_LEN, 12) != 1) {
        goto out;
    }
    memcpy(buf, BACKUP_MAGIC, BACKUP_MAGIC_LEN);
    if (backup_gcm(1, key, buf + BACKUP_MAGIC_LEN, in, inlen,
                   buf + BACKUP_MAGIC_LEN + 12,
                   buf + BACKUP_MAGIC_LEN + 12 + inlen)
        != 0) {
        goto out;
    }
    *out = buf;
    *outlen = n;
    buf = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(buf);
    return rc;
}

int emu_backup_open(const unsigned char *in, size_t inlen, unsigned char **out,
                    size_t *outlen)
{
    unsigned char key[32], tag[16];
    size_t n;
    unsigned char *buf = NULL;
    int rc = -1;

    if (inlen < BACKUP_MAGIC_LEN + 12 + 16 + 1
        || memcmp(in, BACKUP_MAGIC, BACKUP_MAGIC_LEN) != 0) {
        return -1;
    }
    n = inlen - BACKUP_MAGIC_LEN - 12 - 16;
    buf = malloc(n + 1);
    if (!buf || backup_key(key) != 0) {
        goto out;
    }
    memcpy(tag, in + inlen - 16, 16);
    if (backup_gcm(0, key, in + BACKUP_MAGIC_LEN, in + BACKUP_MAGIC_LEN + 12, n,
                   buf, tag)
        != 0) {
        OPENSSL_cleanse(buf, n);
        goto out;
    }
    buf[n] = 0;
    *out = buf;
    *outlen = n;
    buf = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(buf);
    return rc;
}

/* JWK curve name <-> OpenSSL group name. */
static const struct {
    const char *jwk, *group, *alg;
    size_t dlen;
} curves[] = {
    {"P-256", "P-256", "ES256", 32},
    {"P-384", "P-384", "ES384", 48},
    {"P-521", "P-521", "ES512", 64},
    {"P-256K", "secp256k1", "ES256K", 32},
};

EVP_PKEY *emu_ec_generate(const char *crv)
{
    size_t i;

    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(crv, curves[i].jwk) == 0) {
            return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i].group);
        }
    }
    return NULL;
}

int emu_ec_public_b64(EVP_PKEY *k, char crv[8], char **x_b64, char **y_b64)
{
    char group[64];
    unsigned char pt[1 + 2 * 66];
    size_t len = 0, clen, i;

    *x_b64 = *y_b64 = NULL;
    if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                        sizeof(group), NULL)) {
        return -1;
    }
    crv[0] = 0;
    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(group, curves[i].group) == 0
            || (strcmp(curves[i].group, "P-256") == 0
                && strcmp(group, "prime256v1") == 0)
            || (strcmp(curves[i].group, "P-384") == 0
                && strcmp(group, "secp384r1") == 0)
            || (strcmp(curves[i].group, "P-521") == 0
                && strcmp(group, "secp521r1") == 0)) {
            snprintf(crv, 8, "%s", curves[i].jwk);
        }
    }
    /* The encoded public key is the uncompressed point 04 || X || Y. */
    if (!crv[0]
        || !EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                            sizeof(pt), &len)
        || len < 3 || pt[0] != 0x04 || (len - 1) % 2 != 0) {
        return -1;
    }
    clen = (len - 1) / 2;
    *x_b64 = emu_b64url_encode(pt + 1, clen);
    *y_b64 = emu_b64url_encode(pt + 1 + clen, clen);
    return *x_b64 && *y_b64 ? 0 : -1;
}

/* Checks ALG and the digest length for an EC key; coordinate length in
 * *clen. */
static int ec_check(const struct emu_keyver *kv, const char *alg, size_t dlen,
                    size_t *clen, const char **err)
{
    size_t i;

    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(kv->crv, curves[i].jwk) == 0) {
            if (strcmp(alg, curves[i].alg) != 0) {
                *err = "Invalid algorithm for the key type.";
                return -1;
            }
            if (dlen != curves[i].dlen) {
                *err = "Invalid length of the digest for the algorithm.";
                return -1;
            }
            *clen = ((size_t)EVP_PKEY_get_bits(kv->pkey) + 7) / 8;
            return 0;
        }
    }
    *err = "Invalid algorithm for the key type.";
    return -1;
}

static int ec_sign(const struct emu_keyver *kv, const char *alg,
                   const unsigned char *digest, size_t dlen,
                   unsigned char **sig, size_t *siglen, const char **err)
{
    EVP_PKEY_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    unsigned char *der = NULL, *raw = NULL;
    const unsigned char *p;
    const BIGNUM *r, *s;
    size_t clen = 0, dl = 0;
    int rc = -1;

    if (ec_check(kv, alg, dlen, &clen, err) != 0) {
        return -1;
    }
    *err = "Internal error.";
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, kv->pkey, NULL);
    if (!ctx || EVP_PKEY_sign_init(ctx) <= 0
        || EVP_PKEY_sign(ctx, NULL, &dl, digest, dlen) <= 0) {
        goto out;
    }
    der = malloc(dl);
    if (!der || EVP_PKEY_sign(ctx, der, &dl, digest, dlen) <= 0) {
        goto out;
    }
    /* JWS wants r || s, each left-padded to the coordinate length. */
    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    raw = malloc(2 * clen);
    if (!es || !raw) {
        goto out;
    }
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, raw, (int)clen) < 0
        || BN_bn2binpad(s, raw + clen, (int)clen) < 0) {
        goto out;
    }
    *sig = raw;
    *siglen = 2 * clen;
    raw = NULL;
    rc = 0;
out:
    ERR_clear_error();
    free(raw);
    free(der);
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static int ec_verify(const struct emu_keyver *kv, const char *alg,
                     const unsigned char *digest, size_t dlen,
                     const unsigned char *sig, size_t siglen, int *ok,
                     const char **err)
{
    EVP_PKEY_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    size_t clen = 0;
    int dl, rc = -1;

    if (ec_check(kv, alg, dlen, &clen, err) != 0) {
        return -1;
    }
    *ok = 0;
    if (siglen != 2 * clen) {
        return 0; /* a malformed signature simply does not verify */
    }
    *err = "Internal error.";
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, (int)clen, NULL);
    s = BN_bin2bn(sig + clen, (int)clen, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    dl = i2d_ECDSA_SIG(es, &der);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, kv->pkey, NULL);
    if (dl <= 0 || !ctx || EVP_PKEY_verify_init(ctx) <= 0) {
        goto out;
    }
    *ok = EVP_PKEY_verify(ctx, der, (size_t)dl, digest, dlen) == 1;
    rc = 0;
out:
    ERR_clear_error();
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* A signing context for KV/ALG checked against the digest length. */
static EVP_PKEY_CTX *sign_ctx(const struct emu_keyver *kv, const char *alg,
                              size_t dlen, int verify, const char **err)
{
    EVP_PKEY_CTX *ctx = NULL;
    const EVP_MD *md = NULL;
    int pad = 0;

    if (!kv->pkey) {
        *err = "Invalid algorithm for the key type.";
        return NULL;
    }
    if (sign_alg(alg, &md, &pad) != 0) {
        *err = "Invalid algorithm for the key type.";
        return NULL;
    }
    if (md ? dlen != (size_t)EVP_MD_get_size(md)
           : (dlen == 0 || dlen + 11 > (size_t)EVP_PKEY_get_size(kv->pkey))) {
        *err = "Invalid length of the digest for the algorithm.";
        return NULL;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, kv->pkey, NULL);
    if (!ctx
        || (verify ? EVP_PKEY_verify_init(ctx) : EVP_PKEY_sign_init(ctx)) <= 0
        || EVP_PKEY_CTX_set_rsa_padding(ctx, pad) <= 0
        || (md && EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
        || (pad == RSA_PKCS1_PSS_PADDING
            && (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST)
                       <= 0))) {
        ERR_clear_error();
        EVP_PKEY_CTX_free(ctx);
        *err = "Internal error.";
        return NULL;
    }
    return ctx;
}

int emu_key_sign(const struct emu_keyver *kv, const char *alg,
                 const unsigned char *digest, size_t dlen, unsigned char **sig,
                 size_t *siglen, const char **err)
{
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = -1;

    if (kv->crv[0]) {
        return ec_sign(kv, alg, digest, dlen, sig, siglen, err);
    }
    ctx = sign_ctx(kv, alg, dlen, 0, err);
    if (!ctx) {
        goto out;
    }
    len = (size_t)EVP_PKEY_get_size(kv->pkey);
    buf = malloc(len);
    if (!buf || EVP_PKEY_sign(ctx, buf, &len, digest, dlen) <= 0) {
        ERR_clear_error();
        *err = "Internal error.";
        goto out;
    }
    *sig = buf;
    *siglen = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int emu_key_verify(const struct emu_keyver *kv, const char *alg,
                   const unsigned char *digest, size_t dlen,
                   const unsigned char *sig, size_t siglen, int *ok,
                   const char **err)
{
    EVP_PKEY_CTX *ctx = NULL;

    if (kv->crv[0]) {
        return ec_verify(kv, alg, digest, dlen, sig, siglen, ok, err);
    }
    ctx = sign_ctx(kv, alg, dlen, 1, err);
    if (!ctx) {
        return -1;
    }
    *ok = EVP_PKEY_verify(ctx, sig, siglen, digest, dlen) == 1;
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    return 0;
}

char *emu_make_client_cert(const char *cn, char **cert_only)
{
    EVP_PKEY *k = emu_rsa_generate(2048);
    X509 *c = NULL;
    char *cp = NULL, *kp = NULL, *out = NULL;

    if (!k) {
        goto out;
    }
    c = make_cert(k, cn, NULL, k, 0, NULL, 365);
    if (!c) {
        goto out;
    }
    cp = cert_to_pem(c);
    kp = emu_pkey_to_pem(k);
    if (!cp || !kp) {
        goto out;
    }
    out = malloc(strlen(cp) + strlen(kp) + 1);
    if (out) {
        strcpy(out, cp);
        strcat(out, kp);
        *cert_only = cp;
        cp = NULL;
    }
out:
    if (kp) {
        OPENSSL_cleanse(kp, strlen(kp));
    }
    free(kp);
    free(cp);
    X509_free(c);
    EVP_PKEY_free(k);
    return out;
}

int emu_cert_thumbprints(const char *cert_pem, char x5t[64], char x5t256[64],
                         EVP_PKEY **pub)
{
    X509 *c = cert_from_pem(cert_pem);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    char *s;

    if (!c) {
        return -1;
    }
    X509_digest(c, EVP_sha1(), d, &dl);
    s = emu_b64url_encode(d, dl);
    snprintf(x5t, 64, "%s", s ? s : "");
    free(s);
    X509_digest(c, EVP_sha256(), d, &dl);
    s = emu_b64url_encode(d, dl);
    snprintf(x5t256, 64, "%s", s ? s : "");
    free(s);
    *pub = X509_get_pubkey(c);
    X509_free(c);
    return *pub ? 0 : -1;
}

static BIGNUM *jwk_bn(cJSON *jwk, const char *name)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, name);
    unsigned char *raw;
    size_t len = 0;
    BIGNUM *bn = NULL;

    if (!cJSON_IsString(v)) {
        return NULL;
    }
    raw = emu_b64url_decode(v->valuestring, &len);
    if (raw && len > 0) {
        bn = BN_bin2bn(raw, (int)len, NULL);
    }
    if (raw) {
        OPENSSL_cleanse(raw, len);
    }
    free(raw);
    return bn;
}

EVP_PKEY *emu_rsa_from_jwk(cJSON *jwk)
{
    static const char *const names[] = {"n", "e",  "d",  "p",
                                        "q", "dp", "dq", "qi"};
    static const char *const params[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    BIGNUM *bn[8] = {NULL};
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *ps = NULL;
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    EVP_PKEY *k = NULL;
    int i, ncrt = 0;

    if (!bld) {
        goto out;
    }
    for (i = 0; i < 8; i++) {
        bn[i] = jwk_bn(jwk, names[i]);
        if (i < 3 && !bn[i]) {
            goto out;
        }
        if (i >= 3 && bn[i]) {
            ncrt++;
        }
    }
    /* All CRT members are required (RFC 7518 6.3.2 lets a producer omit
     * them all, but the key file stores PKCS#8, which needs p and q, and
     * only with them can the pairwise check below prove d matches n). */
    if (ncrt != 5) {
        goto out;
    }
    for (i = 0; i < 3 + ncrt; i++) {
        if (!OSSL_PARAM_BLD_push_BN(bld, params[i], bn[i])) {
            goto out;
        }
    }
    ps = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!ps || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, ps) <= 0) {
        goto out;
    }
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    if (!chk || EVP_PKEY_pairwise_check(chk) != 1) {
        EVP_PKEY_free(k);
        k = NULL;
    }
out:
    ERR_clear_error();
    for (i = 0; i < 8; i++) {
        BN_clear_free(bn[i]);
    }
    OSSL_PARAM_free(ps);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_CTX_free(chk);
    return k;
}
