/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-pkcs11-tool uri (uri.h). Follows RFC 7512 (the PKCS#11 URI scheme:
 * path attributes token, object, id, type) and RFC 3986 §2 (percent-encoding)
 * and PKCS#11 v3.0 §5.4 (C_GetSlotList, C_GetTokenInfo), §5.7 (C_FindObjects),
 * §5.8 (C_GetAttributeValue).
 */
#include "uri.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <p11-kit/pkcs11.h>

#include "admin.h"
#include "common/config.h"
#include "common/kvid.h"

#define MAX_OBJECTS      4096
#define URI_VERSIONS_MAX 64 /* catalog entries read per key */

size_t akv_uri_pct(const unsigned char *in, size_t len, int all, char *out,
                   size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (out_len == 0) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        bool plain = !all
                     && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                         || (c >= '0' && c <= '9') || c == '-' || c == '.'
                         || c == '_' || c == '~');
        if (plain && o + 1 < out_len) {
            out[o++] = (char)c;
        } else if (!plain && o + 3 < out_len) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            break;
        }
    }
    out[o] = '\0';
    return o;
}

/* A private copy of the configuration with "cache": false on every token:
 * the module must answer from the vault, not from another process's cache
 * (the tool's rule, main.c load_config). DIR (mkdtemp) and FILE are
 * filled; the caller removes both. */
static int private_config(const char *path, char *dir, size_t dir_len,
                          char *file, size_t file_len)
{
    FILE *f = NULL;
    char *text = NULL, *out = NULL;
    long len = 0;
    cJSON *doc = NULL, *toks = NULL, *tok = NULL;
    int rc = -1;

    f = fopen(path, "re");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0) {
        goto out;
    }
    text = malloc((size_t)len + 1);
    if (text == NULL || fread(text, 1, (size_t)len, f) != (size_t)len) {
        goto out;
    }
    text[len] = '\0';
    doc = cJSON_ParseWithLength(text, (size_t)len);
    toks = cJSON_GetObjectItemCaseSensitive(doc, "tokens");
    cJSON_ArrayForEach(tok, toks)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(tok, "cache");
        cJSON_AddBoolToObject(tok, "cache", false);
    }
    out = cJSON_PrintUnformatted(doc);
    snprintf(dir, dir_len, "%s/akv-uri.XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (out == NULL || mkdtemp(dir) == NULL) {
        goto out;
    }
    snprintf(file, file_len, "%s/config.json", dir);
    fclose(f);
    f = fopen(file, "wxe");
    if (f == NULL || fchmod(fileno(f), 0600) != 0 || fputs(out, f) == EOF) {
        goto out;
    }
    rc = 0;
out:
    if (f != NULL && fclose(f) != 0) {
        rc = -1;
    }
    free(text);
    cJSON_free(out);
    cJSON_Delete(doc);
    return rc;
}

static void trim_label(const CK_UTF8CHAR *in, size_t n, char *out)
{
    memcpy(out, in, n);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == ' ') {
        out[--n] = '\0';
    }
}

/* Adds the handles C_FindObjects returns for TMPL to H (no duplicates). */
static void find(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl,
                 CK_ULONG n, CK_OBJECT_HANDLE *h, size_t *nh)
{
    CK_OBJECT_HANDLE got[64];
    CK_ULONG cnt = 0;

    if (f->C_FindObjectsInit(s, tmpl, n) != CKR_OK) {
        return;
    }
    while (f->C_FindObjects(s, got, 64, &cnt) == CKR_OK && cnt > 0) {
        for (CK_ULONG i = 0; i < cnt; i++) {
            bool dup = false;
            for (size_t j = 0; j < *nh; j++) {
                dup = dup || h[j] == got[i];
            }
            if (!dup && *nh < MAX_OBJECTS) {
                h[(*nh)++] = got[i];
            }
        }
    }
    f->C_FindObjectsFinal(s);
}

static void print_object(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                         CK_OBJECT_HANDLE h, const char *tok_enc)
{
    CK_OBJECT_CLASS cls = 0;
    unsigned char label[256], id[256];
    char lab_enc[800], id_enc[800];
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, label, sizeof(label)},
        {CKA_ID, id, sizeof(id)},
    };
    const char *type = NULL;

    if (f->C_GetAttributeValue(s, h, a, 3) != CKR_OK) {
        /* a value that did not fit: print what the class says only */
        a[1].ulValueLen = a[1].ulValueLen > sizeof(label) ? 0 : a[1].ulValueLen;
        a[2].ulValueLen = a[2].ulValueLen > sizeof(id) ? 0 : a[2].ulValueLen;
    }
    type = cls == CKO_PRIVATE_KEY   ? "private"
           : cls == CKO_PUBLIC_KEY  ? "public"
           : cls == CKO_SECRET_KEY  ? "secret-key"
           : cls == CKO_DATA        ? "data"
           : cls == CKO_CERTIFICATE ? "cert"
                                    : NULL;
    akv_uri_pct(label,
                a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0
                                                              : a[1].ulValueLen,
                0, lab_enc, sizeof(lab_enc));
    akv_uri_pct(
        id, a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0 : a[2].ulValueLen,
        1, id_enc, sizeof(id_enc));
    printf("pkcs11:token=%s", tok_enc);
    if (lab_enc[0] != '\0') {
        printf(";object=%s", lab_enc);
    }
    if (id_enc[0] != '\0') {
        printf(";id=%s", id_enc);
    }
    if (type != NULL) {
        printf(";type=%s", type);
    }
    printf("\n");
}

/* One token: every object listed without a template, then the older
 * versions of its keys the catalog names (found only by their CKA_ID). */
static void print_token(CK_FUNCTION_LIST *f, CK_SLOT_ID slot,
                        const struct akv_token_config *tc, const char *label)
{
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE *h = calloc(MAX_OBJECTS, sizeof(*h));
    size_t nh = 0;
    char tok_enc[200];

    if (h == NULL
        || f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)
               != CKR_OK) {
        fprintf(stderr, "akv-pkcs11-tool: token %s: no session\n", label);
        free(h);
        return;
    }
    akv_uri_pct((const unsigned char *)label, strlen(label), 0, tok_enc,
                sizeof(tok_enc));
    find(f, s, NULL, 0, h, &nh);
    for (size_t k = 0; tc != NULL && k < tc->n_keys; k++) {
        char vers[URI_VERSIONS_MAX][AKV_KV_VERSION_MAX];
        size_t nv = akv_admin_catalog(tc->store_dir, tc->keys[k].name, vers,
                                      URI_VERSIONS_MAX);
        for (size_t v = 0; v < nv; v++) {
            unsigned char id[16];
            CK_ATTRIBUTE t = {CKA_ID, id, sizeof(id)};
            if (akv_kvid_version_to_bytes(vers[v], strlen(vers[v]), id) == 0) {
                find(f, s, &t, 1, h, &nh);
            }
        }
    }
    for (size_t i = 0; i < nh; i++) {
        print_object(f, s, h[i], tok_enc);
    }
    f->C_CloseSession(s);
    free(h);
}

int akv_uri_print(const char *module, const char *path, const char *only_token)
{
    char dir[4096] = "", file[4200] = "", reserved[4300], err[512];
    struct akv_config *cfg = NULL;
    void *lib = NULL;
    CK_C_GetFunctionList gfl = NULL;
    CK_FUNCTION_LIST *f = NULL;
    CK_C_INITIALIZE_ARGS args;
    CK_SLOT_ID slots[64];
    CK_ULONG ns = 64;
    bool inited = false;
    int rc = 1;

    if (akv_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "akv-pkcs11-tool: %s\n", err);
        goto out;
    }
    if (private_config(path, dir, sizeof(dir), file, sizeof(file)) != 0) {
        fprintf(stderr,
                "akv-pkcs11-tool: cannot copy %s to a private "
                "folder\n",
                path);
        goto out;
    }
    lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr,
                "akv-pkcs11-tool: cannot load the module %s (give "
                "--module PATH)\n",
                module);
        goto out;
    }
    gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (gfl == NULL || gfl(&f) != CKR_OK) {
        fprintf(stderr, "akv-pkcs11-tool: %s is not a PKCS#11 module\n",
                module);
        goto out;
    }
    memset(&args, 0, sizeof(args));
    snprintf(reserved, sizeof(reserved), "config=%s", file);
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = reserved;
    if (f->C_Initialize(&args) != CKR_OK) {
        fprintf(stderr, "akv-pkcs11-tool: the module refused the "
                        "configuration (run akv-pkcs11-tool check)\n");
        goto out;
    }
    inited = true;
    if (f->C_GetSlotList(CK_TRUE, slots, &ns) != CKR_OK) {
        fprintf(stderr, "akv-pkcs11-tool: C_GetSlotList failed\n");
        goto out;
    }
    rc = 0;
    for (CK_ULONG i = 0; i < ns; i++) {
        CK_TOKEN_INFO ti;
        char label[33];
        const struct akv_token_config *tc = NULL;

        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) {
            continue;
        }
        trim_label(ti.label, sizeof(ti.label), label);
        if (only_token != NULL && strcmp(only_token, label) != 0) {
            continue;
        }
        for (size_t t = 0; t < cfg->n_tokens; t++) {
            if (strcmp(cfg->tokens[t].label, label) == 0) {
                tc = &cfg->tokens[t];
            }
        }
        print_token(f, slots[i], tc, label);
    }
out:
    if (inited) {
        f->C_Finalize(NULL);
    }
    if (lib != NULL) {
        dlclose(lib);
    }
    if (file[0] != '\0') {
        unlink(file);
    }
    if (dir[0] != '\0') {
        rmdir(dir);
    }
    akv_config_free(cfg);
    return rc;
}
