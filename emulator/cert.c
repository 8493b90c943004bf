/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key Vault certificates (certificates.json, api-version 7.x), as far as a
 * PKCS#11 token needs them: a certificate owns the key of the same name,
 * and each certificate version is the X.509 certificate of the key version
 * with the same version id (the service creates both together), so the
 * certificate is kept on the key version (emu_keyver.cer). Served:
 *   GET /certificates/{name}[/{version}]  CertificateBundle (certificates/get)
 *   GET /certificates/{name}/versions     CertificateListResult (.../list)
 * Made by the control plane (`keyvault certificate create|import`) for an
 * existing key version: self-signed by that key, or an imported PEM whose
 * public key is the key's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "emu.h"
#include "http.h"

/* Access-policy certificate permission names (the ones served here). */
static const struct {
    const char *name;
    unsigned bit;
} cert_perms[] = {
    {"get", EMU_CP_GET},
    {"list", EMU_CP_LIST},
};

unsigned emu_cert_perm_parse(const char *name)
{
    size_t i;

    if (emu_strcaseeq(name, "all")) {
        return EMU_CP_ALL;
    }
    for (i = 0; i < sizeof(cert_perms) / sizeof(cert_perms[0]); i++) {
        if (emu_strcaseeq(name, cert_perms[i].name)) {
            return cert_perms[i].bit;
        }
    }
    return 0;
}

const char *emu_cert_perm_name(unsigned bit)
{
    size_t i;

    for (i = 0; i < sizeof(cert_perms) / sizeof(cert_perms[0]); i++) {
        if (cert_perms[i].bit == bit) {
            return cert_perms[i].name;
        }
    }
    return "?";
}

cJSON *emu_cert_perms_json(unsigned perms)
{
    cJSON *a = cJSON_CreateArray();
    size_t i;

    for (i = 0; i < sizeof(cert_perms) / sizeof(cert_perms[0]); i++) {
        if (perms & cert_perms[i].bit) {
            cJSON_AddItemToArray(a, cJSON_CreateString(cert_perms[i].name));
        }
    }
    return a;
}

/* Seconds since the epoch of an ASN1_TIME; 0 when unreadable. */
static long long asn1_epoch(const ASN1_TIME *t)
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return (long long)timegm(&tm);
}

static X509 *cert_of(const struct emu_keyver *kv)
{
    const unsigned char *p = kv->cer;

    return kv->cer ? d2i_X509(NULL, &p, (long)kv->cer_len) : NULL;
}

/* CertificateAttributes: enabled, nbf/exp from the certificate's validity,
 * created, updated, recoveryLevel (certificates.json). */
static cJSON *cert_attributes(const struct emu_keyver *kv)
{
    cJSON *a = cJSON_CreateObject();
    X509 *x = cert_of(kv);

    cJSON_AddBoolToObject(a, "enabled", kv->enabled);
    if (x) {
        cJSON_AddNumberToObject(a, "nbf",
                                (double)asn1_epoch(X509_get0_notBefore(x)));
        cJSON_AddNumberToObject(a, "exp",
                                (double)asn1_epoch(X509_get0_notAfter(x)));
    }
    cJSON_AddNumberToObject(a, "created", (double)kv->cer_created);
    cJSON_AddNumberToObject(a, "updated", (double)kv->cer_created);
    cJSON_AddStringToObject(a, "recoveryLevel", "Recoverable+Purgeable");
    cJSON_AddNumberToObject(a, "recoverableDays", 90);
    X509_free(x);
    return a;
}

static char *x5t_of(const struct emu_keyver *kv)
{
    unsigned char d[20];

    if (!EVP_Digest(kv->cer, kv->cer_len, d, NULL, EVP_sha1(), NULL)) {
        return NULL;
    }
    return emu_b64url_encode(d, sizeof(d));
}

cJSON *emu_cert_bundle_json(const char *base, const struct emu_key *k,
                            const struct emu_keyver *kv)
{
    cJSON *root = cJSON_CreateObject();
    char url[700];
    char *x5t = x5t_of(kv);
    int blen = 4 * (((int)kv->cer_len + 2) / 3) + 1;
    unsigned char *b64 = malloc((size_t)blen);

    snprintf(url, sizeof(url), "%s/certificates/%s/%s", base, k->name, kv->id);
    cJSON_AddStringToObject(root, "id", url);
    snprintf(url, sizeof(url), "%s/keys/%s/%s", base, k->name, kv->id);
    cJSON_AddStringToObject(root, "kid", url);
    snprintf(url, sizeof(url), "%s/secrets/%s/%s", base, k->name, kv->id);
    cJSON_AddStringToObject(root, "sid", url);
    cJSON_AddStringToObject(root, "x5t", x5t ? x5t : "");
    /* "cer" is format byte: standard base64, padded (certificates.json). */
    if (b64) {
        EVP_EncodeBlock(b64, kv->cer, (int)kv->cer_len);
        cJSON_AddStringToObject(root, "cer", (const char *)b64);
    }
    cJSON_AddItemToObject(root, "attributes", cert_attributes(kv));
    if (kv->tags) {
        cJSON_AddItemToObject(root, "tags", cJSON_Duplicate(kv->tags, 1));
    }
    free(b64);
    free(x5t);
    return root;
}

/* CertificateItem of a version list: id, x5t, attributes, tags. */
static cJSON *cert_item_json(const char *base, const struct emu_key *k,
                             const struct emu_keyver *kv)
{
    cJSON *b = emu_cert_bundle_json(base, k, kv), *it = cJSON_CreateObject();
    const char *names[] = {"id", "x5t", "attributes", "tags"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cJSON *m = cJSON_DetachItemFromObject(b, names[i]);

        if (m) {
            cJSON_AddItemToObject(it, names[i], m);
        }
    }
    cJSON_Delete(b);
    return it;
}

struct emu_keyver *emu_cert_version(struct emu_key *k, const char *ver)
{
    size_t i;

    if (ver && *ver) {
        struct emu_keyver *kv = emu_find_version(k, ver);

        return kv && kv->cer ? kv : NULL;
    }
    for (i = k->nvers; i > 0; i--) {
        if (k->vers[i - 1]->cer) {
            return k->vers[i - 1];
        }
    }
    return NULL;
}

void emu_cert_not_found(struct emu_resp *rs, const char *name, const char *ver)
{
    char msg[512];

    snprintf(msg, sizeof(msg),
             "A certificate with (name/id) %.150s%s%.40s was not found in "
             "this key vault. If you recently deleted this certificate you "
             "may be able to recover it using the correct recovery command. "
             "For help resolving this issue, please see "
             "https://go.microsoft.com/fwlink/?linkid=2125182",
             name, ver && *ver ? "/" : "", ver ? ver : "");
    emu_resp_kv_error(rs, 404, "CertificateNotFound", msg, NULL);
}

cJSON *emu_cert_versions_json(const char *base, const struct emu_key *k)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "value");
    size_t i;

    for (i = 0; k && i < k->nvers; i++) {
        if (k->vers[i]->cer) {
            cJSON_AddItemToArray(arr, cert_item_json(base, k, k->vers[i]));
        }
    }
    cJSON_AddNullToObject(root, "nextLink");
    return root;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex) {
        return -1;
    }
    X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return 0;
}

/* Self-signed certificate of KV's key: SUBJECT ("CN=...", an X.500 name in
 * OpenSSL's one-line form "/CN=a/O=b" or "CN=a"), DAYS of validity from an
 * hour ago, serverAuth + clientAuth, SAN DNS:localhost. As the service's
 * "Self" issuer does (the policy's subject, signed by the new key). */
static X509 *self_signed(const struct emu_keyver *kv, const char *subject,
                         long days)
{
    X509 *x = X509_new();
    X509_NAME *nm = NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    const char *s = subject && *subject ? subject : "CN=akv-emulator";
    char buf[512];
    char *tok, *save = NULL;

    if (!x) {
        return NULL;
    }
    snprintf(buf, sizeof(buf), "%s", s[0] == '/' ? s + 1 : s);
    nm = X509_NAME_new();
    for (tok = strtok_r(buf, "/,", &save); tok && nm;
         tok = strtok_r(NULL, "/,", &save)) {
        char *eq;

        while (*tok == ' ') {
            tok++;
        }
        eq = strchr(tok, '=');
        if (!eq || eq == tok) {
            break;
        }
        *eq = 0;
        if (!X509_NAME_add_entry_by_txt(nm, tok, MBSTRING_UTF8,
                                        (const unsigned char *)eq + 1, -1, -1,
                                        0)) {
            break;
        }
    }
    if (tok) { /* a part that is not TYPE=VALUE, or an unknown TYPE */
        X509_NAME_free(nm);
        nm = NULL;
    }
    if (!nm || X509_NAME_entry_count(nm) == 0) {
        goto fail;
    }
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L);
    X509_set_pubkey(x, kv->pkey);
    X509_set_subject_name(x, nm);
    X509_set_issuer_name(x, nm);
    add_ext(x, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, NID_key_usage,
            EVP_PKEY_is_a(kv->pkey, "RSA")
                ? "critical,digitalSignature,keyEncipherment"
                : "critical,digitalSignature");
    add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(x, NID_subject_alt_name, "DNS:localhost");
    add_ext(x, NID_subject_key_identifier, "hash");
    if (!X509_sign(x, kv->pkey, EVP_sha256())) {
        goto fail;
    }
    X509_NAME_free(nm);
    return x;
fail:
    X509_NAME_free(nm);
    X509_free(x);
    return NULL;
}

int emu_cert_make(struct emu_keyver *kv, const char *subject, long days,
                  const char *pem, const char **err)
{
    X509 *x = NULL;
    unsigned char *der = NULL;
    int len, rc = -1;

    if (!kv->pkey) {
        *err = "a certificate needs an RSA or EC key (not oct-HSM)";
        return -1;
    }
    if (pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *pub;

        x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!x) {
            *err = "the file holds no PEM certificate";
            return -1;
        }
        pub = X509_get0_pubkey(x);
        if (!pub || EVP_PKEY_eq(pub, kv->pkey) != 1) {
            *err = "the certificate's public key is not the key's";
            goto out;
        }
    } else {
        if (days < 1 || days > 36500) {
            *err = "--validity-days must be 1..36500";
            return -1;
        }
        x = self_signed(kv, subject, days);
        if (!x) {
            *err = "cannot make the certificate (bad --subject?)";
            return -1;
        }
    }
    len = i2d_X509(x, &der);
    if (len <= 0) {
        *err = "cannot encode the certificate";
        goto out;
    }
    free(kv->cer);
    kv->cer = malloc((size_t)len);
    if (!kv->cer) {
        kv->cer_len = 0;
        *err = "out of memory";
        goto out;
    }
    memcpy(kv->cer, der, (size_t)len);
    kv->cer_len = (size_t)len;
    kv->cer_created = emu_now();
    rc = 0;
out:
    OPENSSL_free(der);
    X509_free(x);
    return rc;
}
