/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Persistence of the emulator model in DIR:
 *   state.json            tenant, subscription, principals, vaults, policies
 *   signing-key.pem       token signing key (0600)
 *   keys/<vault>/<key>.json  every version of one key incl. private material
 *                         (0600), deleted state
 * Every write is temp file + fsync + rename (+ fsync of the directory).
 * Callers hold emu.lock exclusively for any save.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "emu.h"

struct emu_state emu;

static void lower_copy(char *dst, size_t n, const char *src)
{
    size_t i;

    for (i = 0; i + 1 < n && src[i]; i++) {
        dst[i] = (char)tolower((unsigned char)src[i]);
    }
    dst[i] = 0;
}

enum principal_key { BY_OID, BY_CLIENT_ID, BY_NAME };

/* The first principal whose object ID, client ID or (with kind IS_SP) name
 * matches WANT, case-insensitively as Entra compares them; NULL if none. */
static struct emu_principal *find_principal(enum principal_key by,
                                            const char *want, int is_sp)
{
    size_t i;

    for (i = 0; i < emu.nprincipals; i++) {
        struct emu_principal *p = emu.principals[i];
        const char *have = by == BY_OID         ? p->object_id
                           : by == BY_CLIENT_ID ? p->client_id
                                                : p->name;

        if ((by != BY_NAME || p->is_sp == is_sp) && emu_strcaseeq(have, want)) {
            return p;
        }
    }
    return NULL;
}

struct emu_principal *emu_find_principal_oid(const char *oid)
{
    return find_principal(BY_OID, oid, 0);
}

struct emu_principal *emu_find_principal_client(const char *cid)
{
    return find_principal(BY_CLIENT_ID, cid, 0);
}

struct emu_principal *emu_find_principal_name(const char *name, int is_sp)
{
    return find_principal(BY_NAME, name, is_sp);
}

struct emu_vault *emu_find_vault(const char *name)
{
    size_t i;

    for (i = 0; i < emu.nvaults; i++) {
        if (emu_strcaseeq(emu.vaults[i]->name, name)) {
            return emu.vaults[i];
        }
    }
    return NULL;
}

struct emu_key *emu_find_key(struct emu_vault *v, const char *name)
{
    size_t i;

    for (i = 0; i < v->nkeys; i++) {
        if (emu_strcaseeq(v->keys[i]->name, name)) {
            return v->keys[i];
        }
    }
    return NULL;
}

struct emu_keyver *emu_find_version(struct emu_key *k, const char *ver)
{
    size_t i;

    if (!k->nvers) {
        return NULL;
    }
    if (!ver || !*ver) {
        return k->vers[k->nvers - 1];
    }
    for (i = 0; i < k->nvers; i++) {
        if (emu_strcaseeq(k->vers[i]->id, ver)) {
            return k->vers[i];
        }
    }
    return NULL;
}

void emu_keyver_free(struct emu_keyver *kv)
{
    if (!kv) {
        return;
    }
    EVP_PKEY_free(kv->pkey);
    OPENSSL_cleanse(kv->oct, sizeof(kv->oct));
    free(kv->n_b64);
    free(kv->e_b64);
    free(kv->x_b64);
    free(kv->y_b64);
    cJSON_Delete(kv->tags);
    cJSON_Delete(kv->release_policy);
    free(kv->cer);
    free(kv);
}

void emu_key_free(struct emu_key *k)
{
    size_t i;

    if (!k) {
        return;
    }
    for (i = 0; i < k->nvers; i++) {
        emu_keyver_free(k->vers[i]);
    }
    free(k->vers);
    cJSON_Delete(k->rotation_policy);
    free(k);
}

int emu_vault_kty_allowed(const struct emu_vault *v, const char *kty,
                          const char **err)
{
    /* Key Vault pricing tiers: HSM-protected keys (RSA-HSM, EC-HSM and,
     * by the emulator's choice, oct-HSM) need a premium vault; a standard
     * vault answers 403 Forbidden "Hardware key operation not allowed on
     * standard vault" (as seen by the Azure SDK for Python, issue 29945). */
    if (!v->premium && kty && strstr(kty, "-HSM")) {
        *err = "Hardware key operation not allowed on standard vault.";
        return 0;
    }
    return 1;
}

struct emu_keyver *emu_keyver_new(const char *kty, int bits, const char *crv,
                                  const char **err)
{
    return emu_keyver_new_e(kty, bits, crv, 0, err);
}

struct emu_keyver *emu_keyver_new_e(const char *kty, int bits, const char *crv,
                                    long long pubexp, const char **err)
{
    struct emu_keyver *kv = calloc(1, sizeof(*kv));
    int rsa = strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0;

    if (!kv) {
        *err = "Internal error.";
        return NULL;
    }
    /* KeyCreateParameters.public_exponent: RSA only; the service creates
     * keys with e = 3 or 65537 (the Azure SDK's "can create a RSA key with
     * public exponent" test sends 3). Refused, never ignored, otherwise;
     * the message is ours. */
    if (pubexp != 0 && (!rsa || (pubexp != 3 && pubexp != 65537))) {
        *err = "The specified public exponent is not supported for the key "
               "type.";
        goto out;
    }
    /* KeyCreateParameters.crv names an elliptic curve: on another key
     * type it is refused rather than ignored (the message is ours). */
    if (crv && *crv && strcmp(kty, "EC") != 0 && strcmp(kty, "EC-HSM") != 0) {
        *err = "The specified curve is not supported for the key type.";
        goto out;
    }
    if (rsa) {
        if (bits == 0) {
            bits = 2048;
        }
        if (bits != 2048 && bits != 3072 && bits != 4096) {
            *err = "The specified key size is not supported for the key "
                   "type.";
            goto out;
        }
        kv->pkey =
            pubexp == 3 ? emu_rsa_generate_e(bits, 3) : emu_rsa_generate(bits);
        if (!kv->pkey || emu_rsa_public_b64(kv->pkey, &kv->n_b64, &kv->e_b64)) {
            *err = "Internal error.";
            goto out;
        }
        kv->ops = EMU_OP_ENCRYPT | EMU_OP_DECRYPT | EMU_OP_SIGN | EMU_OP_VERIFY
                  | EMU_OP_WRAPKEY | EMU_OP_UNWRAPKEY;
    } else if (strcmp(kty, "EC") == 0 || strcmp(kty, "EC-HSM") == 0) {
        if (!crv || !*crv) {
            crv = bits == 384 ? "P-384" : bits == 521 ? "P-521" : "P-256";
        }
        kv->pkey = emu_ec_generate(crv);
        if (!kv->pkey) {
            *err = "The specified curve is not supported.";
            goto out;
        }
        if (emu_ec_public_b64(kv->pkey, kv->crv, &kv->x_b64, &kv->y_b64)) {
            *err = "Internal error.";
            goto out;
        }
        bits = EVP_PKEY_get_bits(kv->pkey);
        kv->ops = EMU_OP_SIGN | EMU_OP_VERIFY;
    } else if (strcmp(kty, "oct-HSM") == 0 || strcmp(kty, "oct") == 0) {
        kty = "oct-HSM";
        if (bits == 0) {
            bits = 256;
        }
        if (bits != 128 && bits != 192 && bits != 256) {
            *err = "The specified key size is not supported for the key "
                   "type.";
            goto out;
        }
        RAND_priv_bytes(kv->oct, bits / 8);
        kv->ops =
            EMU_OP_ENCRYPT | EMU_OP_DECRYPT | EMU_OP_WRAPKEY | EMU_OP_UNWRAPKEY;
    } else {
        *err = "The specified key type is not supported.";
        goto out;
    }
    snprintf(kv->kty, sizeof(kv->kty), "%s", kty);
    kv->bits = bits;
    emu_random_hex(kv->id, 16);
    kv->enabled = 1;
    kv->created = kv->updated = emu_now();
    return kv;
out:
    emu_keyver_free(kv);
    return NULL;
}

/* ---- key files ---- */

static void key_path(const struct emu_vault *v, const struct emu_key *k,
                     char *out, size_t n)
{
    char vn[64], kn[EMU_NAME_MAX];

    lower_copy(vn, sizeof(vn), v->name);
    lower_copy(kn, sizeof(kn), k->name);
    snprintf(out, n, "%s/keys/%s/%s.json", emu.dir, vn, kn);
}

cJSON *emu_key_to_json(const struct emu_key *k)
{
    cJSON *root = cJSON_CreateObject(), *vers;
    size_t i;

    if (!root) {
        return NULL;
    }
    cJSON_AddStringToObject(root, "name", k->name);
    cJSON_AddBoolToObject(root, "deleted", k->deleted);
    cJSON_AddNumberToObject(root, "deletedDate", (double)k->deleted_date);
    cJSON_AddNumberToObject(root, "scheduledPurgeDate", (double)k->purge_date);
    if (k->rotation_policy) {
        cJSON_AddItemToObject(root, "rotationPolicy",
                              cJSON_Duplicate(k->rotation_policy, 1));
    }
    vers = cJSON_AddArrayToObject(root, "versions");
    for (i = 0; i < k->nvers; i++) {
        const struct emu_keyver *kv = k->vers[i];
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToArray(vers, o);
        cJSON_AddStringToObject(o, "id", kv->id);
        cJSON_AddStringToObject(o, "kty", kv->kty);
        cJSON_AddNumberToObject(o, "bits", kv->bits);
        if (kv->pkey) {
            char *pem = emu_pkey_to_pem(kv->pkey);

            if (!pem) {
                cJSON_Delete(root);
                return NULL;
            }
            cJSON_AddStringToObject(o, "pem", pem);
            OPENSSL_cleanse(pem, strlen(pem));
            free(pem);
        } else {
            char *kb = emu_b64url_encode(kv->oct, (size_t)kv->bits / 8);

            cJSON_AddStringToObject(o, "k", kb ? kb : "");
            if (kb) {
                OPENSSL_cleanse(kb, strlen(kb));
            }
            free(kb);
        }
        cJSON_AddItemToObject(o, "key_ops", emu_keyops_json(kv->ops));
        cJSON_AddBoolToObject(o, "enabled", kv->enabled);
        cJSON_AddNumberToObject(o, "nbf", (double)kv->nbf);
        cJSON_AddNumberToObject(o, "exp", (double)kv->exp);
        cJSON_AddNumberToObject(o, "created", (double)kv->created);
        cJSON_AddNumberToObject(o, "updated", (double)kv->updated);
        if (kv->tags) {
            cJSON_AddItemToObject(o, "tags", cJSON_Duplicate(kv->tags, 1));
        }
        if (kv->exportable) {
            cJSON_AddBoolToObject(o, "exportable", 1);
        }
        if (kv->release_policy) {
            cJSON_AddItemToObject(o, "releasePolicy",
                                  cJSON_Duplicate(kv->release_policy, 1));
        }
        if (kv->cer) {
            char *cb = emu_b64url_encode(kv->cer, kv->cer_len);

            if (!cb) {
                cJSON_Delete(root);
                return NULL;
            }
            cJSON_AddStringToObject(o, "certificate", cb);
            cJSON_AddNumberToObject(o, "certificateCreated",
                                    (double)kv->cer_created);
            free(cb);
        }
    }
    return root;
}

int emu_store_save_key(const struct emu_vault *v, const struct emu_key *k)
{
    char path[4400], dir[4400], vn[64];
    cJSON *root = emu_key_to_json(k);
    char *text = NULL;
    int rc = -1;

    lower_copy(vn, sizeof(vn), v->name);
    snprintf(dir, sizeof(dir), "%s/keys", emu.dir);
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "%s/keys/%s", emu.dir, vn);
    mkdir(dir, 0700);
    text = root ? cJSON_Print(root) : NULL;
    if (!text) {
        goto out;
    }
    key_path(v, k, path, sizeof(path));
    rc = emu_write_file_atomic(path, text, strlen(text), 0600);
out:
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
    }
    free(text);
    cJSON_Delete(root);
    return rc;
}

int emu_store_remove_key(const struct emu_vault *v, const struct emu_key *k)
{
    char path[4400];

    key_path(v, k, path, sizeof(path));
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* A version read back (key file, backup blob) must hold the material its
 * kty names, of the size bits says: every later use (wrap, sign, the key
 * file written on the next change) trusts kty and bits. HAS_K: an oct key
 * "k" of bits / 8 bytes was read. */
static int keyver_consistent(const struct emu_keyver *kv, int has_k)
{
    int rsa = strcmp(kv->kty, "RSA") == 0 || strcmp(kv->kty, "RSA-HSM") == 0;
    int ec = strcmp(kv->kty, "EC") == 0 || strcmp(kv->kty, "EC-HSM") == 0;

    if (rsa || ec) {
        return kv->pkey && EVP_PKEY_is_a(kv->pkey, rsa ? "RSA" : "EC")
               && kv->bits == EVP_PKEY_get_bits(kv->pkey);
    }
    return strcmp(kv->kty, "oct-HSM") == 0 && !kv->pkey && has_k
           && (kv->bits == 128 || kv->bits == 192 || kv->bits == 256);
}

struct emu_key *emu_key_from_json(cJSON *root)
{
    cJSON *vers, *o;
    struct emu_key *k = NULL;

    if (!root || !emu_json_str(root, "name")
        || strlen(emu_json_str(root, "name")) == 0
        || strlen(emu_json_str(root, "name")) >= EMU_NAME_MAX) {
        goto out;
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        goto out;
    }
    snprintf(k->name, sizeof(k->name), "%s", emu_json_str(root, "name"));
    k->deleted = cJSON_IsTrue(cJSON_GetObjectItem(root, "deleted"));
    k->deleted_date = emu_json_num(root, "deletedDate", 0);
    k->purge_date = emu_json_num(root, "scheduledPurgeDate", 0);
    if (cJSON_IsObject(cJSON_GetObjectItem(root, "rotationPolicy"))) {
        k->rotation_policy =
            cJSON_Duplicate(cJSON_GetObjectItem(root, "rotationPolicy"), 1);
    }
    vers = cJSON_GetObjectItem(root, "versions");
    cJSON_ArrayForEach(o, vers)
    {
        struct emu_keyver *kv = calloc(1, sizeof(*kv)), **nv;
        cJSON *op;
        int has_k = 0;

        if (!kv) {
            goto out;
        }
        snprintf(kv->id, sizeof(kv->id), "%s",
                 emu_json_str(o, "id") ? emu_json_str(o, "id") : "");
        snprintf(kv->kty, sizeof(kv->kty), "%s",
                 emu_json_str(o, "kty") ? emu_json_str(o, "kty") : "");
        kv->bits = (int)emu_json_num(o, "bits", 0);
        if (emu_json_str(o, "pem")) {
            kv->pkey = emu_pkey_from_pem(emu_json_str(o, "pem"));
            if (!kv->pkey
                || (EVP_PKEY_is_a(kv->pkey, "EC")
                        ? emu_ec_public_b64(kv->pkey, kv->crv, &kv->x_b64,
                                            &kv->y_b64)
                        : emu_rsa_public_b64(kv->pkey, &kv->n_b64,
                                             &kv->e_b64))) {
                emu_keyver_free(kv);
                goto out;
            }
        } else if (emu_json_str(o, "k")) {
            size_t kl = 0;
            unsigned char *kb = emu_b64url_decode(emu_json_str(o, "k"), &kl);

            if (!kb || kl != (size_t)kv->bits / 8 || kl > sizeof(kv->oct)) {
                free(kb);
                emu_keyver_free(kv);
                goto out;
            }
            memcpy(kv->oct, kb, kl);
            OPENSSL_cleanse(kb, kl);
            free(kb);
            has_k = 1;
        }
        if (!keyver_consistent(kv, has_k)) {
            emu_keyver_free(kv);
            goto out;
        }
        cJSON_ArrayForEach(op, cJSON_GetObjectItem(o, "key_ops"))
        {
            if (cJSON_IsString(op)) {
                kv->ops |= emu_keyop_parse(op->valuestring);
            }
        }
        kv->enabled = cJSON_IsTrue(cJSON_GetObjectItem(o, "enabled"));
        kv->nbf = emu_json_num(o, "nbf", 0);
        kv->exp = emu_json_num(o, "exp", 0);
        kv->created = emu_json_num(o, "created", 0);
        kv->updated = emu_json_num(o, "updated", 0);
        if (cJSON_IsObject(cJSON_GetObjectItem(o, "tags"))) {
            kv->tags = cJSON_Duplicate(cJSON_GetObjectItem(o, "tags"), 1);
        }
        kv->exportable = cJSON_IsTrue(cJSON_GetObjectItem(o, "exportable"));
        if (cJSON_IsObject(cJSON_GetObjectItem(o, "releasePolicy"))) {
            kv->release_policy =
                cJSON_Duplicate(cJSON_GetObjectItem(o, "releasePolicy"), 1);
        }
        if (emu_json_str(o, "certificate")) {
            kv->cer =
                emu_b64url_decode(emu_json_str(o, "certificate"), &kv->cer_len);
            if (!kv->cer || kv->cer_len == 0) {
                emu_keyver_free(kv);
                goto out;
            }
            kv->cer_created = emu_json_num(o, "certificateCreated", 0);
        }
        nv = realloc(k->vers, (k->nvers + 1) * sizeof(*nv));
        if (!nv) {
            emu_keyver_free(kv);
            goto out;
        }
        k->vers = nv;
        k->vers[k->nvers++] = kv;
    }
    if (k->nvers == 0) {
        goto out;
    }
    return k;
out:
    emu_key_free(k);
    return NULL;
}

static struct emu_key *load_key(const char *path)
{
    char *text = emu_read_file(path, NULL);
    cJSON *root;
    struct emu_key *k;

    if (!text) {
        return NULL;
    }
    root = cJSON_Parse(text);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    k = emu_key_from_json(root);
    if (!k) {
        fprintf(stderr, "akv-emulator: cannot load key file %s\n", path);
    }
    cJSON_Delete(root);
    return k;
}

static void load_vault_keys(struct emu_vault *v)
{
    char dir[4400], vn[64], path[4700];
    DIR *d;
    struct dirent *e;

    lower_copy(vn, sizeof(vn), v->name);
    snprintf(dir, sizeof(dir), "%s/keys/%s", emu.dir, vn);
    d = opendir(dir);
    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        struct emu_key *k, **nk;

        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        k = load_key(path);
        if (!k) {
            continue;
        }
        nk = realloc(v->keys, (v->nkeys + 1) * sizeof(*nk));
        if (!nk) {
            emu_key_free(k);
            continue;
        }
        v->keys = nk;
        v->keys[v->nkeys++] = k;
    }
    closedir(d);
}

/* ---- state.json ---- */

int emu_store_save_state(void)
{
    cJSON *root = cJSON_CreateObject(), *arr;
    char path[4200], *text;
    size_t i, j;
    int rc;

    cJSON_AddStringToObject(root, "tenantId", emu.tenant_id);
    cJSON_AddStringToObject(root, "subscriptionId", emu.subscription_id);
    arr = cJSON_AddArrayToObject(root, "principals");
    for (i = 0; i < emu.nprincipals; i++) {
        struct emu_principal *p = emu.principals[i];
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "kind", p->is_sp ? "sp" : "identity");
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "clientId", p->client_id);
        cJSON_AddStringToObject(o, "objectId", p->object_id);
        cJSON_AddStringToObject(o, "secretSha256", p->secret_sha256);
        if (p->cert_pem) {
            cJSON_AddStringToObject(o, "certPem", p->cert_pem);
        }
        cJSON_AddNumberToObject(o, "tokenGen", (double)p->token_gen);
    }
    arr = cJSON_AddArrayToObject(root, "vaults");
    for (i = 0; i < emu.nvaults; i++) {
        struct emu_vault *v = emu.vaults[i];
        cJSON *o = cJSON_CreateObject(), *pol;

        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", v->name);
        cJSON_AddNumberToObject(o, "port", v->port);
        cJSON_AddStringToObject(o, "sku", v->premium ? "premium" : "standard");

        if (v->hsm) {
            cJSON_AddTrueToObject(o, "managedHsm");
            cJSON_AddItemToObject(o, "roleAssignments", emu_rbac_save(v));
        }
        pol = cJSON_AddArrayToObject(o, "policies");
        for (j = 0; j < v->npolicies; j++) {
            cJSON *po = cJSON_CreateObject();

            cJSON_AddItemToArray(pol, po);
            cJSON_AddStringToObject(po, "objectId", v->policies[j].object_id);
            cJSON_AddItemToObject(po, "keys",
                                  emu_perms_json(v->policies[j].perms));
            if (v->policies[j].cert_perms) {
                cJSON_AddItemToObject(
                    po, "certificates",
                    emu_cert_perms_json(v->policies[j].cert_perms));
            }
        }
    }
    text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/state.json", emu.dir);
    rc = emu_write_file_atomic(path, text, strlen(text), 0600);
    free(text);
    return rc;
}

static int load_signing_key(void)
{
    char path[4200], *pem;
    unsigned char *der = NULL;
    unsigned char d[32];
    unsigned int dl = 0;
    int len;
    char *kid;

    snprintf(path, sizeof(path), "%s/signing-key.pem", emu.dir);
    pem = emu_read_file(path, NULL);
    if (pem) {
        emu.signing_key = emu_pkey_from_pem(pem);
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    if (!emu.signing_key) {
        emu.signing_key = emu_rsa_generate(2048);
        pem = emu.signing_key ? emu_pkey_to_pem(emu.signing_key) : NULL;
        if (!pem || emu_write_file_atomic(path, pem, strlen(pem), 0600) != 0) {
            free(pem);
            return -1;
        }
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    len = i2d_PUBKEY(emu.signing_key, &der);
    if (len <= 0) {
        return -1;
    }
    EVP_Digest(der, (size_t)len, d, &dl, EVP_sha1(), NULL);
    OPENSSL_free(der);
    kid = emu_b64url_encode(d, dl);
    snprintf(emu.signing_kid, sizeof(emu.signing_kid), "%s", kid ? kid : "k");
    free(kid);
    return 0;
}

/* The App Service identity header is stable across restarts, like the
 * IDENTITY_HEADER of a running App Service instance. */
static int load_identity_header(void)
{
    char path[4200], *text;
    size_t l;

    snprintf(path, sizeof(path), "%s/identity-header", emu.dir);
    text = emu_read_file(path, NULL);
    if (text) {
        l = strcspn(text, "\r\n");
        if (l >= 16 && l < sizeof(emu.identity_header)) {
            snprintf(emu.identity_header, sizeof(emu.identity_header), "%.*s",
                     (int)l, text);
            free(text);
            return 0;
        }
        free(text);
    }
    emu_random_hex(emu.identity_header, 32);
    return emu_write_file_atomic(path, emu.identity_header,
                                 strlen(emu.identity_header), 0600);
}

int emu_store_load(void)
{
    char path[4200], *text;
    int rc;

    if (load_signing_key() != 0 || load_identity_header() != 0) {
        fprintf(stderr, "akv-emulator: cannot create signing key\n");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/state.json", emu.dir);
    text = emu_read_file(path, NULL);
    if (!text) {
        emu_guid(emu.tenant_id);
        emu_guid(emu.subscription_id);
        return emu_store_save_state();
    }
    rc = emu_store_parse_state(text, path);
    free(text);
    return rc;
}

int emu_store_parse_state(const char *text, const char *path)
{
    cJSON *root = NULL, *o;
    int rc = -1;

    root = cJSON_Parse(text);
    if (!root || !emu_json_str(root, "tenantId")) {
        fprintf(stderr, "akv-emulator: %s is corrupt\n", path);
        goto out;
    }
    snprintf(emu.tenant_id, sizeof(emu.tenant_id), "%s",
             emu_json_str(root, "tenantId"));
    snprintf(emu.subscription_id, sizeof(emu.subscription_id), "%s",
             emu_json_str(root, "subscriptionId")
                 ? emu_json_str(root, "subscriptionId")
                 : emu.tenant_id);
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(root, "principals"))
    {
        struct emu_principal *p = calloc(1, sizeof(*p)), **np;

        if (!p) {
            goto out;
        }
        p->is_sp = emu_strcaseeq(emu_json_str(o, "kind"), "sp");
        snprintf(p->name, sizeof(p->name), "%s",
                 emu_json_str(o, "name") ? emu_json_str(o, "name") : "");
        snprintf(p->client_id, sizeof(p->client_id), "%s",
                 emu_json_str(o, "clientId") ? emu_json_str(o, "clientId")
                                             : "");
        snprintf(p->object_id, sizeof(p->object_id), "%s",
                 emu_json_str(o, "objectId") ? emu_json_str(o, "objectId")
                                             : "");
        snprintf(p->secret_sha256, sizeof(p->secret_sha256), "%s",
                 emu_json_str(o, "secretSha256")
                     ? emu_json_str(o, "secretSha256")
                     : "");
        if (emu_json_str(o, "certPem")) {
            p->cert_pem = strdup(emu_json_str(o, "certPem"));
            if (p->cert_pem) {
                emu_cert_thumbprints(p->cert_pem, p->x5t, p->x5t256,
                                     &p->cert_pub);
            }
        }
        p->token_gen = emu_json_num(o, "tokenGen", 0);
        np = realloc(emu.principals, (emu.nprincipals + 1) * sizeof(*np));
        if (!np) {
            free(p);
            goto out;
        }
        emu.principals = np;
        emu.principals[emu.nprincipals++] = p;
    }
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(root, "vaults"))
    {
        struct emu_vault *v = calloc(1, sizeof(*v)), **nv;
        cJSON *po;

        if (!v) {
            goto out;
        }
        snprintf(v->name, sizeof(v->name), "%s",
                 emu_json_str(o, "name") ? emu_json_str(o, "name") : "");
        v->port = (int)emu_json_num(o, "port", 0);
        /* A state.json written before SKUs existed: its vaults held HSM
         * keys, i.e. behaved as premium; keep them so. */
        v->premium = !emu_strcaseeq(emu_json_str(o, "sku"), "standard");

        v->hsm = cJSON_IsTrue(cJSON_GetObjectItem(o, "managedHsm"));
        if (v->hsm
            && emu_rbac_load(v, cJSON_GetObjectItem(o, "roleAssignments"))
                   != 0) {
            fprintf(stderr,
                    "akv-emulator: %s: a role assignment of %s is not "
                    "valid; it is left out\n",
                    path, v->name);
        }
        cJSON_ArrayForEach(po, cJSON_GetObjectItem(o, "policies"))
        {
            struct emu_policy *np;
            cJSON *perm;

            np = realloc(v->policies, (v->npolicies + 1) * sizeof(*np));
            if (!np) {
                break;
            }
            v->policies = np;
            memset(&np[v->npolicies], 0, sizeof(*np));
            snprintf(np[v->npolicies].object_id,
                     sizeof(np[v->npolicies].object_id), "%s",
                     emu_json_str(po, "objectId") ? emu_json_str(po, "objectId")
                                                  : "");
            cJSON_ArrayForEach(perm, cJSON_GetObjectItem(po, "keys"))
            {
                if (cJSON_IsString(perm)) {
                    np[v->npolicies].perms |= emu_perm_parse(perm->valuestring);
                }
            }
            cJSON_ArrayForEach(perm, cJSON_GetObjectItem(po, "certificates"))
            {
                if (cJSON_IsString(perm)) {
                    np[v->npolicies].cert_perms |=
                        emu_cert_perm_parse(perm->valuestring);
                }
            }
            v->npolicies++;
        }
        load_vault_keys(v);
        nv = realloc(emu.vaults, (emu.nvaults + 1) * sizeof(*nv));
        if (!nv) {
            free(v);
            goto out;
        }
        emu.vaults = nv;
        emu.vaults[emu.nvaults++] = v;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

struct emu_keyver *emu_keyver_import(cJSON *jwk, const char *pem, int hsm,
                                     const char **err)
{
    struct emu_keyver *kv = calloc(1, sizeof(*kv));
    const char *kty = NULL;
    cJSON *x;

    if (!kv) {
        *err = "Internal error.";
        return NULL;
    }
    if (jwk) {
        x = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
        kty = cJSON_IsString(x) ? x->valuestring : NULL;
        if (!kty) {
            *err = "Property 'kty' is required.";
            goto out;
        }
    }
    if (pem || emu_strcaseeq(kty, "RSA") || emu_strcaseeq(kty, "RSA-HSM")) {
        kv->pkey = pem ? emu_pkey_from_pem(pem) : emu_rsa_from_jwk(jwk);
        if (!kv->pkey || !EVP_PKEY_is_a(kv->pkey, "RSA")) {
            *err = "The key is not a valid RSA private key.";
            goto out;
        }
        kv->bits = EVP_PKEY_get_bits(kv->pkey);
        if (kv->bits != 2048 && kv->bits != 3072 && kv->bits != 4096) {
            *err = "The specified key size is not supported for the key "
                   "type.";
            goto out;
        }
        if (emu_rsa_public_b64(kv->pkey, &kv->n_b64, &kv->e_b64) != 0) {
            *err = "Internal error.";
            goto out;
        }
        snprintf(kv->kty, sizeof(kv->kty), "%s",
                 hsm || emu_strcaseeq(kty, "RSA-HSM") ? "RSA-HSM" : "RSA");
        kv->ops = EMU_OP_ENCRYPT | EMU_OP_DECRYPT | EMU_OP_SIGN | EMU_OP_VERIFY
                  | EMU_OP_WRAPKEY | EMU_OP_UNWRAPKEY;
    } else if (emu_strcaseeq(kty, "oct") || emu_strcaseeq(kty, "oct-HSM")) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(jwk, "k");
        unsigned char *raw = NULL;
        size_t len = 0;

        if (cJSON_IsString(k)) {
            raw = emu_b64url_decode(k->valuestring, &len);
        }
        if (!raw || (len != 16 && len != 24 && len != 32)) {
            if (raw) {
                OPENSSL_cleanse(raw, len);
            }
            free(raw);
            *err = "Property 'k' must be a 128, 192 or 256-bit key.";
            goto out;
        }
        memcpy(kv->oct, raw, len);
        OPENSSL_cleanse(raw, len);
        free(raw);
        kv->bits = (int)len * 8;
        snprintf(kv->kty, sizeof(kv->kty), "oct-HSM");
        kv->ops =
            EMU_OP_ENCRYPT | EMU_OP_DECRYPT | EMU_OP_WRAPKEY | EMU_OP_UNWRAPKEY;
    } else {
        *err = "The specified key type is not supported.";
        goto out;
    }
    if (jwk) {
        x = cJSON_GetObjectItemCaseSensitive(jwk, "key_ops");
        if (cJSON_IsArray(x)) {
            cJSON *op;
            unsigned m = 0;

            cJSON_ArrayForEach(op, x)
            {
                unsigned b =
                    cJSON_IsString(op) ? emu_keyop_parse(op->valuestring) : 0;

                if (!b) {
                    *err = "Invalid key operation in 'key_ops'.";
                    goto out;
                }
                m |= b;
            }
            kv->ops = m;
        }
    }
    emu_random_hex(kv->id, 16);
    kv->enabled = 1;
    kv->created = kv->updated = emu_now();
    return kv;
out:
    emu_keyver_free(kv);
    return NULL;
}
