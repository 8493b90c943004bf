/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token's certificate object (cert.h): built from DER with OpenSSL's
 * parse (the attribute values are the certificate's own DER pieces), and
 * refreshed from Key Vault or read from a PEM file.
 */
#include "cert.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../common/fdio.h"
#include "../common/fsperm.h"
#include "../common/log.h"
#include "../include/pkcs11/akv-pkcs11.h"
#include "crypto.h"

#define PEM_FILE_MAX 65536 /* bytes of certificate_file read */
/* CKA_CERTIFICATE_CATEGORY "token user" (v3.0 §4.6.2 table 24: the
 * certificate of a key the token holds); p11-kit's header lacks the name. */
#define CATEGORY_TOKEN_USER 1UL

/* CK_DATE (v3.0 §3.3: "YYYYMMDD" as characters) of an ASN1_TIME, UTC. */
static int ck_date(const ASN1_TIME *t, CK_DATE *out)
{
    struct tm tm;
    char buf[16];

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || tm.tm_year + 1900 > 9999
        || tm.tm_year + 1900 < 0) {
        return -1;
    }
    (void)snprintf(buf, sizeof(buf), "%04d%02d%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday);
    memcpy(out->year, buf, 4);
    memcpy(out->month, buf + 4, 2);
    memcpy(out->day, buf + 6, 2);
    return 0;
}

/* Sets TYPE to the DER encoding I2D makes of P. */
#define SET_DER(a, type, i2d, p, r)                                            \
    do {                                                                       \
        unsigned char *d_ = NULL;                                              \
        int l_ = (i2d)((p), &d_);                                              \
        if (l_ <= 0) {                                                         \
            (r) = CKR_DEVICE_ERROR;                                            \
        } else {                                                               \
            (r) |= akv_attrs_set((a), (type), d_, (CK_ULONG)l_);               \
        }                                                                      \
        OPENSSL_free(d_);                                                      \
    } while (0)

CK_RV akv_cert_obj_new(const uint8_t *der, size_t len, const char *name,
                       const char *version, struct akv_obj **out)
{
    CK_RV rv = CKR_ARGUMENTS_BAD;
    CK_RV r = CKR_OK;
    struct akv_obj *o = NULL;
    struct akv_attrs *a;
    const unsigned char *p = der;
    X509 *x = NULL;
    uint8_t id[64];
    size_t id_len;
    unsigned char sha1[EVP_MAX_MD_SIZE];
    unsigned int sha1_len = 0;
    CK_DATE start;
    CK_DATE end;

    if (der == NULL || len == 0 || name == NULL || version == NULL
        || out == NULL) {
        goto out;
    }
    rv = CKR_DEVICE_ERROR;
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || p != der + len
        || ck_date(X509_get0_notBefore(x), &start) != 0
        || ck_date(X509_get0_notAfter(x), &end) != 0
        || EVP_Digest(der, len, sha1, &sha1_len, EVP_sha1(), NULL) != 1) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    o = akv_obj_new(AKV_ORIGIN_VAULT, CKO_CERTIFICATE, (CK_KEY_TYPE)-1);
    if (o == NULL) {
        goto out;
    }
    o->listed = true;
    a = &o->attrs;
    id_len = akv_token_id_from_version(version, id);
    r |= akv_attrs_set_ulong(a, CKA_CLASS, CKO_CERTIFICATE);
    r |= akv_attrs_set_ulong(a, CKA_CERTIFICATE_TYPE, CKC_X_509);
    r |= akv_attrs_set_bool(a, CKA_TOKEN, CK_TRUE);
    r |= akv_attrs_set(a, CKA_LABEL, name, strlen(name));
    r |= akv_attrs_set(a, CKA_ID, id, id_len);
    r |= akv_attrs_set(a, CKA_VALUE, der, len);
    /* v3.0 §4.6.2: the first three bytes of the SHA-1 of CKA_VALUE. */
    r |= akv_attrs_set(a, CKA_CHECK_VALUE, sha1, 3);
    r |= akv_attrs_set(a, CKA_START_DATE, &start, sizeof(start));
    r |= akv_attrs_set(a, CKA_END_DATE, &end, sizeof(end));
    r |= akv_attrs_set_ulong(a, CKA_CERTIFICATE_CATEGORY, CATEGORY_TOKEN_USER);
    r |= akv_attrs_set(a, CKA_AKV_KEY_NAME, name, strlen(name));
    r |= akv_attrs_set(a, CKA_AKV_KEY_VERSION, version, strlen(version));
    if (r != CKR_OK) {
        goto out;
    }
    SET_DER(a, CKA_SUBJECT, i2d_X509_NAME, X509_get_subject_name(x), r);
    SET_DER(a, CKA_ISSUER, i2d_X509_NAME, X509_get_issuer_name(x), r);
    SET_DER(a, CKA_SERIAL_NUMBER, i2d_ASN1_INTEGER, X509_get0_serialNumber(x),
            r);
    SET_DER(a, CKA_PUBLIC_KEY_INFO, i2d_X509_PUBKEY, X509_get_X509_PUBKEY(x),
            r);
    if (r != CKR_OK) {
        rv = r == CKR_DEVICE_ERROR ? r : CKR_HOST_MEMORY;
        goto out;
    }
    /* CKA_PRIVATE, CKA_MODIFIABLE, CKA_TRUSTED, ... (attr.c). */
    if (akv_attrs_fill_defaults(a, CKO_CERTIFICATE) != CKR_OK) {
        goto out;
    }
    *out = o;
    o = NULL;
    rv = CKR_OK;
out:
    akv_obj_unref(o);
    X509_free(x);
    return rv;
}

#undef SET_DER

/* ---- refresh ---- */

/* The DER certificate in the PEM file PATH (the first CERTIFICATE block),
 * read under the StrictModes rules; NULL (logged) when refused. */
static uint8_t *read_pem_file(const char *label, const char *path,
                              size_t *der_len)
{
    char ebuf[256];
    struct stat st;
    char *text = NULL;
    BIO *bio = NULL;
    X509 *x = NULL;
    uint8_t *der = NULL;
    unsigned char *d = NULL;
    int fd;
    int l;

    fd = akv_fsperm_open(path, O_RDONLY, 0, ebuf, sizeof(ebuf));
    if (fd < 0) {
        AKV_LOG_ERR("token '%s': certificate_file refused: %s; no "
                    "certificate shown",
                    label, ebuf);
        return NULL;
    }
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > PEM_FILE_MAX) {
        AKV_LOG_ERR("token '%s': certificate_file %s: not a file of 1..%d "
                    "bytes; no certificate shown",
                    label, path, PEM_FILE_MAX);
        goto out;
    }
    text = malloc((size_t)st.st_size);
    if (text == NULL || akv_fdio_read_all(fd, text, (size_t)st.st_size) != 0) {
        AKV_LOG_ERR("token '%s': certificate_file %s: cannot be read; no "
                    "certificate shown",
                    label, path);
        goto out;
    }
    bio = BIO_new_mem_buf(text, (int)st.st_size);
    x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    l = x != NULL ? i2d_X509(x, &d) : -1;
    if (l <= 0) {
        AKV_LOG_ERR("token '%s': certificate_file %s holds no PEM "
                    "certificate; no certificate shown",
                    label, path);
        goto out;
    }
    der = malloc((size_t)l);
    if (der != NULL) {
        memcpy(der, d, (size_t)l);
        *der_len = (size_t)l;
    }
out:
    OPENSSL_free(d);
    X509_free(x);
    BIO_free(bio);
    free(text);
    (void)close(fd);
    return der;
}

/* The public key in DER certificate DER (new reference), or NULL. */
static EVP_PKEY *cert_pubkey(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    EVP_PKEY *k = x != NULL ? X509_get_pubkey(x) : NULL;

    X509_free(x);
    return k;
}

/* A vault public-key object whose key equals PUB, of key NAME/VERSION when
 * NAME is non-NULL, else of a configured key's current version; fills
 * NAME_OUT/VERSION_OUT. Caller holds the lock. */
static bool find_key_locked(struct akv_token *t, EVP_PKEY *pub,
                            const char *name, const char *version,
                            char name_out[AKV_KV_NAME_MAX],
                            char version_out[AKV_KV_VERSION_MAX])
{
    for (size_t i = 0; i < t->n_objs; i++) {
        const struct akv_obj *o = t->objs[i];
        bool want;

        if (o->origin != AKV_ORIGIN_VAULT || o->cls != CKO_PUBLIC_KEY
            || o->vkey == NULL || o->pub == NULL) {
            continue;
        }
        if (name != NULL) {
            want = strcmp(o->vkey->name, name) == 0
                   && strcasecmp(o->vkey->version, version) == 0;
        } else {
            want = false;
            for (size_t k = 0; k < t->n_keys && !want; k++) {
                want = strcmp(t->keys[k].cfg->name, o->vkey->name) == 0
                       && strcasecmp(t->keys[k].current, o->vkey->version) == 0;
            }
        }
        if (want && EVP_PKEY_eq(o->pub, pub) == 1) {
            (void)snprintf(name_out, AKV_KV_NAME_MAX, "%s", o->vkey->name);
            (void)snprintf(version_out, AKV_KV_VERSION_MAX, "%s",
                           o->vkey->version);
            return true;
        }
    }
    return false;
}

/* Whether any configured key has been fetched. */
static bool any_key_known(struct akv_token *t)
{
    bool known = false;

    pthread_rwlock_rdlock(&t->lock);
    for (size_t k = 0; k < t->n_keys && !known; k++) {
        known = t->keys[k].ever;
    }
    pthread_rwlock_unlock(&t->lock);
    return known;
}

/* Replaces the table's certificate object by O (none when O is NULL); a
 * certificate with the same DER keeps its handle. The key version's
 * objects are listed, so that searches without a CKA_ID (Java's KeyStore,
 * p11tool) find the private key of the certificate. Caller holds the write
 * lock. */
static CK_RV install_locked(struct akv_token *t, struct akv_obj *o,
                            const char *name, const char *version)
{
    const CK_ATTRIBUTE *nv =
        o != NULL ? akv_attrs_find(&o->attrs, CKA_VALUE) : NULL;
    bool same = false;
    size_t i = 0;

    while (i < t->n_objs) {
        struct akv_obj *c = t->objs[i];

        if (c->cls == CKO_CERTIFICATE && c->origin == AKV_ORIGIN_VAULT) {
            if (nv != NULL && !same && akv_attrs_match(&c->attrs, nv, 1)) {
                same = true;
            } else {
                akv_token_remove_obj_locked(t, c);
                continue; /* slot i now holds the former last object */
            }
        }
        i++;
    }
    for (i = 0; o != NULL && i < t->n_objs; i++) {
        struct akv_obj *k = t->objs[i];

        if (k->origin == AKV_ORIGIN_VAULT && k->vkey != NULL
            && strcmp(k->vkey->name, name) == 0
            && strcasecmp(k->vkey->version, version) == 0) {
            k->listed = true;
        }
    }
    return o == NULL || same ? CKR_OK : akv_token_add_obj_locked(t, o);
}

/* Key Vault: Get Certificate, then the key version it names. Returns the
 * DER (malloc) and NAME/VERSION, or NULL (logged). */
static uint8_t *fetch_vault_cert(struct akv_token *t, size_t *der_len,
                                 char name[AKV_KV_NAME_MAX],
                                 char version[AKV_KV_VERSION_MAX])
{
    const char *cn = t->cfg->certificate;
    struct akv_kv_cert c;
    struct akv_kv_key key;
    uint8_t *der = NULL;
    CK_RV rv;

    memset(&c, 0, sizeof(c));
    memset(&key, 0, sizeof(key));
    rv = t->kv->ops->get_certificate != NULL
             ? t->kv->ops->get_certificate(t->kv, cn, NULL, &c)
             : CKR_FUNCTION_NOT_SUPPORTED;
    if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
        AKV_LOG_ERR("token '%s': certificate %s not shown: %s refused Get "
                    "Certificate (the identity needs the certificates/get "
                    "permission); the keys are shown without it",
                    t->cfg->label, cn, t->cfg->vault_url);
        goto out;
    }
    if (rv == CKR_KEY_HANDLE_INVALID) {
        AKV_LOG_ERR("token '%s': certificate %s not found in %s; the keys "
                    "are shown without it",
                    t->cfg->label, cn, t->cfg->vault_url);
        goto out;
    }
    if (rv != CKR_OK) {
        AKV_LOG_ERR("token '%s': certificate %s cannot be fetched from %s "
                    "(rv 0x%lx); the keys are shown without it",
                    t->cfg->label, cn, t->cfg->vault_url, (unsigned long)rv);
        goto out;
    }
    /* The key version it certifies: found by its CKA_ID like any version
     * (one Get Key unless the token shows it already). */
    pthread_rwlock_rdlock(&t->lock);
    rv = CKR_KEY_HANDLE_INVALID;
    for (size_t i = 0; i < t->n_objs && rv != CKR_OK; i++) {
        const struct akv_obj *o = t->objs[i];

        if (o->origin == AKV_ORIGIN_VAULT && o->vkey != NULL
            && strcmp(o->vkey->name, c.name) == 0
            && strcasecmp(o->vkey->version, c.version) == 0) {
            rv = CKR_OK;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    if (rv != CKR_OK) {
        rv = akv_token_fetch_version(t, c.name, c.version, &key);
        akv_kv_key_clear(&key);
    }
    if (rv != CKR_OK) {
        AKV_LOG_ERR("token '%s': certificate %s not shown: its key %s cannot "
                    "be fetched (rv 0x%lx)",
                    t->cfg->label, cn, c.kid, (unsigned long)rv);
        goto out;
    }
    (void)snprintf(name, AKV_KV_NAME_MAX, "%s", c.name);
    (void)snprintf(version, AKV_KV_VERSION_MAX, "%s", c.version);
    der = c.der;
    *der_len = c.der_len;
    c.der = NULL;
out:
    akv_kv_cert_clear(&c);
    return der;
}

/* Whether T's certificate is to be fetched (read) now. Caller holds the
 * lock. */
static bool cert_due(const struct akv_token *t, int64_t now, long ttl)
{
    if (t->cfg->certificate == NULL) {
        return t->cert_at == 0;
    }
    return t->cert_at == 0 || ttl <= 0 || now - t->cert_at >= ttl;
}

void akv_cert_refresh(struct akv_token *t)
{
    const struct akv_token_config *tc = t->cfg;
    const char *what =
        tc->certificate != NULL ? tc->certificate : tc->certificate_file;
    int64_t now = akv_token_now();
    long ttl = tc->key_refresh_s;
    char name[AKV_KV_NAME_MAX] = "";
    char version[AKV_KV_VERSION_MAX] = "";
    char kname[AKV_KV_NAME_MAX];
    char kversion[AKV_KV_VERSION_MAX];
    struct akv_obj *o = NULL;
    EVP_PKEY *pub = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    bool due;
    bool found;
    CK_RV rv;

    if (what == NULL) {
        return;
    }
    /* A file is read once; a vault certificate once per key_refresh_s,
     * after an answer or a failure alike (one log line per period). The
     * write lock only when due: every C_FindObjectsInit comes here. */
    pthread_rwlock_rdlock(&t->lock);
    due = cert_due(t, now, ttl);
    pthread_rwlock_unlock(&t->lock);
    if (!due) {
        return;
    }
    pthread_rwlock_wrlock(&t->lock);
    due = cert_due(t, now, ttl); /* another thread may have taken it */
    if (due) {
        t->cert_at = now > 0 ? now : 1;
    }
    pthread_rwlock_unlock(&t->lock);
    if (!due) {
        return;
    }
    der = tc->certificate != NULL
              ? fetch_vault_cert(t, &der_len, name, version)
              : read_pem_file(tc->label, tc->certificate_file, &der_len);
    if (der == NULL) {
        goto out;
    }
    pub = cert_pubkey(der, der_len);
    if (pub == NULL) {
        AKV_LOG_ERR("token '%s': certificate %s is not an X.509 certificate "
                    "with a public key; not shown",
                    tc->label, what);
        goto out;
    }
    pthread_rwlock_rdlock(&t->lock);
    found = find_key_locked(t, pub, name[0] != '\0' ? name : NULL, version,
                            kname, kversion);
    pthread_rwlock_unlock(&t->lock);
    if (!found && tc->certificate == NULL && !any_key_known(t)) {
        /* No vault key fetched yet (vault unreachable): try again at the
         * next search rather than refuse the file for good. */
        pthread_rwlock_wrlock(&t->lock);
        t->cert_at = 0;
        pthread_rwlock_unlock(&t->lock);
        goto out;
    }
    if (!found) {
        AKV_LOG_ERR("token '%s': certificate %s refused: its public key is "
                    "not that of %s%s%s; not shown",
                    tc->label, what,
                    name[0] != '\0' ? "the vault key "
                                    : "any configured "
                                      "vault key",
                    name[0] != '\0' ? name : "",
                    name[0] != '\0' ? "" : " (current version)");
        goto out;
    }
    rv = akv_cert_obj_new(der, der_len, kname, kversion, &o);
    if (rv != CKR_OK) {
        AKV_LOG_ERR("token '%s': certificate %s cannot be shown (rv 0x%lx)",
                    tc->label, what, (unsigned long)rv);
        goto out;
    }
    pthread_rwlock_wrlock(&t->lock);
    rv = install_locked(t, o, kname, kversion);
    pthread_rwlock_unlock(&t->lock);
    if (rv != CKR_OK) {
        AKV_LOG_ERR("token '%s': certificate %s cannot be shown (rv 0x%lx)",
                    tc->label, what, (unsigned long)rv);
    } else {
        AKV_LOG_DEBUG("token '%s': certificate %s shown for key %s/%s",
                      tc->label, what, kname, kversion);
    }
out:
    akv_obj_unref(o);
    EVP_PKEY_free(pub);
    free(der);
}
