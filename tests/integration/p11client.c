/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11client - a small PKCS#11 client for the integration tests: it drives
 * what pkcs11-tool cannot (OAEP wrap/unwrap with explicit parameters, the
 * length-query and short-buffer conventions, C_GetAttributeValue's template
 * cases, many threads) through the module's function list only, the way a
 * real consumer does (dlopen + C_GetFunctionList).
 *
 * Usage: p11client MODULE COMMAND ARGS...   (see usage() below)
 * Exit status: 0 when every check passed, 1 when a check failed (each failure
 * is printed as "FAIL: ..."), 2 for bad usage or a module that does not load.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

/* v3.0 declarations p11-kit 0.24 lacks (CK_FUNCTION_LIST_3_0,
 * CK_GCM_MESSAGE_PARAMS): the module's public header. */
#include "../../include/pkcs11/akv-pkcs11.h"

#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x0000210BUL /* PKCS#11 v3.0 */
#endif

static CK_FUNCTION_LIST *p11;
static CK_FUNCTION_LIST_3_0 *p11v3; /* C_GetInterface("PKCS 11", 3.0) */
static int failures;
static CK_RV last_unwrap_rv = CKR_OK; /* for expect-unwrap */

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            printf("FAIL: %s:%d: ", __func__, __LINE__);                       \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

static const char *rv_name(CK_RV rv)
{
    static char buf[32];
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
        {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
        {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
        {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
        {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
        {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
        {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {CKR_UNWRAPPING_KEY_HANDLE_INVALID,
         "CKR_UNWRAPPING_KEY_HANDLE_INVALID"},
        {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
        {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].rv == rv) {
            return names[i].name;
        }
    }
    snprintf(buf, sizeof(buf), "0x%lx", (unsigned long)rv);
    return buf;
}

static CK_RV rv_parse(const char *s)
{
    static const CK_RV all[] = {
        CKR_OK,
        CKR_DEVICE_ERROR,
        CKR_KEY_FUNCTION_NOT_PERMITTED,
        CKR_KEY_HANDLE_INVALID,
        CKR_UNWRAPPING_KEY_HANDLE_INVALID,
        CKR_OBJECT_HANDLE_INVALID,
        CKR_WRAPPED_KEY_INVALID,
        CKR_ENCRYPTED_DATA_INVALID,
        CKR_GENERAL_ERROR,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(rv_name(all[i]), s) == 0) {
            return all[i];
        }
    }
    return (CK_RV)strtoul(s, NULL, 0);
}

static int hex_to_bytes(const char *hex, CK_BYTE *out, size_t max)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > max) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (CK_BYTE)v;
    }
    return (int)(n / 2);
}

static void print_hex(const CK_BYTE *p, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static CK_SESSION_HANDLE repl_session = CK_INVALID_HANDLE;

static void close_session(CK_SESSION_HANDLE s)
{
    if (s != repl_session) {
        (void)p11->C_CloseSession(s);
    }
}

static CK_SESSION_HANDLE open_session(void)
{
    if (repl_session != CK_INVALID_HANDLE) {
        return repl_session;
    }
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv = p11->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK || n == 0) {
        printf("FAIL: C_GetSlotList: %s, %lu slots\n", rv_name(rv),
               (unsigned long)n);
        exit(1);
    }
    rv = p11->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                            NULL, &s);
    if (rv != CKR_OK) {
        printf("FAIL: C_OpenSession: %s\n", rv_name(rv));
        exit(1);
    }
    return s;
}

/* find_key - the object of CLASS with CKA_LABEL LABEL (and CKA_ID ID when
 * id_len > 0). Returns CK_INVALID_HANDLE when not found. */
static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                 const char *label, const CK_BYTE *id,
                                 CK_ULONG id_len, CK_RV *prv)
{
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, id_len},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    CK_RV rv = p11->C_FindObjectsInit(s, t, id_len > 0 ? 3 : 2);
    if (rv == CKR_OK) {
        rv = p11->C_FindObjects(s, &h, 1, &n);
        (void)p11->C_FindObjectsFinal(s);
    }
    if (prv != NULL) {
        *prv = rv;
    }
    return n == 1 ? h : CK_INVALID_HANDLE;
}

/* HASH "kw" / "kwp": AES key wrap (RFC 3394 / 5649) with the vault's
 * oct-HSM secret key object instead of RSA-OAEP with its key pair. */
static int is_kw(const char *hash)
{
    return strcmp(hash, "kw") == 0 || strcmp(hash, "kwp") == 0;
}

static void set_oaep(CK_MECHANISM *m, CK_RSA_PKCS_OAEP_PARAMS *p,
                     const char *hash)
{
    memset(p, 0, sizeof(*p));
    if (is_kw(hash)) {
        m->mechanism = hash[2] == 'p' ? CKM_AES_KEY_WRAP_KWP : CKM_AES_KEY_WRAP;
        m->pParameter = NULL;
        m->ulParameterLen = 0;
        return;
    }
    if (strcmp(hash, "pkcs") == 0) {
        m->mechanism = CKM_RSA_PKCS;
        m->pParameter = NULL;
        m->ulParameterLen = 0;
        return;
    }
    if (strcmp(hash, "sha1") == 0) {
        p->hashAlg = CKM_SHA_1;
        p->mgf = CKG_MGF1_SHA1;
    } else {
        p->hashAlg = CKM_SHA256;
        p->mgf = CKG_MGF1_SHA256;
    }
    p->source = CKZ_DATA_SPECIFIED;
    m->mechanism = CKM_RSA_PKCS_OAEP;
    m->pParameter = p;
    m->ulParameterLen = sizeof(*p);
}

static CK_OBJECT_HANDLE gen_aes(CK_SESSION_HANDLE s, CK_ULONG len)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &f, sizeof(f)},
        {CKA_SENSITIVE, &f, sizeof(f)},     {CKA_EXTRACTABLE, &t, sizeof(t)},
        {CKA_ENCRYPT, &t, sizeof(t)},       {CKA_DECRYPT, &t, sizeof(t)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = p11->C_GenerateKey(s, &m, tmpl, 6, &h);
    CHECK(rv == CKR_OK, "C_GenerateKey: %s", rv_name(rv));
    return h;
}

static CK_ULONG get_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_BYTE *buf,
                          CK_ULONG max)
{
    CK_ATTRIBUTE a = {CKA_VALUE, buf, max};
    CK_RV rv = p11->C_GetAttributeValue(s, h, &a, 1);
    CHECK(rv == CKR_OK, "C_GetAttributeValue(CKA_VALUE): %s", rv_name(rv));
    return rv == CKR_OK ? a.ulValueLen : 0;
}

/* wrap_unwrap: generate an AES-256 key, wrap with the public key, unwrap
 * with the private key, compare the values and check that data encrypted
 * with one decrypts with the other (AES-GCM). */
static int cmd_roundtrip(const char *label, const char *hash)
{
    CK_SESSION_HANDLE s = open_session();
    CK_MECHANISM m;
    CK_RSA_PKCS_OAEP_PARAMS p;
    CK_BYTE wrapped[1024], v1[64], v2[64];
    CK_ULONG wlen = 0, l1, l2;
    CK_OBJECT_HANDLE pub, priv, dek, dek2 = CK_INVALID_HANDLE;
    CK_RV rv;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG vlen = 32;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE ut[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)}, {CKA_TOKEN, &f, sizeof(f)},
        {CKA_SENSITIVE, &f, sizeof(f)},       {CKA_EXTRACTABLE, &t, sizeof(t)},
        {CKA_DECRYPT, &t, sizeof(t)},
    };

    pub = find_key(s, CKO_PUBLIC_KEY, label, NULL, 0, &rv);
    CHECK(pub != CK_INVALID_HANDLE, "public key %s not found (%s)", label,
          rv_name(rv));
    priv = find_key(s, CKO_PRIVATE_KEY, label, NULL, 0, &rv);
    CHECK(priv != CK_INVALID_HANDLE, "private key %s not found (%s)", label,
          rv_name(rv));
    if (failures) {
        return 1;
    }
    dek = gen_aes(s, 32);
    set_oaep(&m, &p, hash);

    /* Length query: NULL buffer returns the wrapped length (modulus size). */
    rv = p11->C_WrapKey(s, &m, pub, dek, NULL, &wlen);
    CHECK(rv == CKR_OK && wlen == 256, "wrap length query: %s, %lu",
          rv_name(rv), (unsigned long)wlen);
    wlen = 10;
    rv = p11->C_WrapKey(s, &m, pub, dek, wrapped, &wlen);
    CHECK(rv == CKR_BUFFER_TOO_SMALL && wlen == 256,
          "wrap short buffer: %s, %lu", rv_name(rv), (unsigned long)wlen);
    wlen = sizeof(wrapped);
    rv = p11->C_WrapKey(s, &m, pub, dek, wrapped, &wlen);
    CHECK(rv == CKR_OK && wlen == 256, "C_WrapKey: %s, %lu", rv_name(rv),
          (unsigned long)wlen);
    if (rv != CKR_OK) {
        return 1;
    }
    rv = p11->C_UnwrapKey(s, &m, priv, wrapped, wlen, ut, 7, &dek2);
    CHECK(rv == CKR_OK, "C_UnwrapKey: %s", rv_name(rv));
    if (rv != CKR_OK) {
        return 1;
    }
    l1 = get_value(s, dek, v1, sizeof(v1));
    l2 = get_value(s, dek2, v2, sizeof(v2));
    CHECK(l1 == 32 && l2 == 32 && memcmp(v1, v2, 32) == 0,
          "unwrapped value differs (%lu/%lu bytes)", (unsigned long)l1,
          (unsigned long)l2);

    /* Data encrypted under the original decrypts under the unwrapped copy. */
    {
        CK_BYTE iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        CK_GCM_PARAMS gp = {iv, sizeof(iv), 96, NULL, 0, 128};
        CK_MECHANISM gm = {CKM_AES_GCM, &gp, sizeof(gp)};
        CK_BYTE pt[] = "envelope encryption at rest";
        CK_BYTE ct[128], back[128];
        CK_ULONG ctl = sizeof(ct), bl = sizeof(back);
        rv = p11->C_EncryptInit(s, &gm, dek);
        if (rv == CKR_OK) {
            rv = p11->C_Encrypt(s, pt, sizeof(pt), ct, &ctl);
        }
        CHECK(rv == CKR_OK && ctl == sizeof(pt) + 16, "AES-GCM encrypt: %s",
              rv_name(rv));
        rv = p11->C_DecryptInit(s, &gm, dek2);
        if (rv == CKR_OK) {
            rv = p11->C_Decrypt(s, ct, ctl, back, &bl);
        }
        CHECK(rv == CKR_OK && bl == sizeof(pt)
                  && memcmp(back, pt, sizeof(pt)) == 0,
              "AES-GCM decrypt with unwrapped key: %s", rv_name(rv));
    }
    close_session(s);
    return failures ? 1 : 0;
}

/* Parameters the vault cannot honour must be refused in C_*Init. */
static int cmd_bad_params(const char *label)
{
    CK_SESSION_HANDLE s = open_session();
    CK_OBJECT_HANDLE priv = find_key(s, CKO_PRIVATE_KEY, label, NULL, 0, NULL);
    CK_BYTE lab[] = "label";
    struct {
        const char *what;
        CK_RSA_PKCS_OAEP_PARAMS p;
        CK_ULONG len;
    } cases[] = {
        {"label",
         {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, lab, 5},
         sizeof(CK_RSA_PKCS_OAEP_PARAMS)},
        {"sha384",
         {CKM_SHA384, CKG_MGF1_SHA384, CKZ_DATA_SPECIFIED, NULL, 0},
         sizeof(CK_RSA_PKCS_OAEP_PARAMS)},
        {"mgf mismatch",
         {CKM_SHA256, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0},
         sizeof(CK_RSA_PKCS_OAEP_PARAMS)},
        {"short params", {CKM_SHA256, CKG_MGF1_SHA256, 0, NULL, 0}, 4},
    };
    CHECK(priv != CK_INVALID_HANDLE, "private key %s not found", label);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &cases[i].p, cases[i].len};
        CK_RV rv = p11->C_DecryptInit(s, &m, priv);
        CHECK(rv == CKR_MECHANISM_PARAM_INVALID, "%s: C_DecryptInit gave %s",
              cases[i].what, rv_name(rv));
    }
    {
        CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, NULL, 0};
        CK_RV rv = p11->C_DecryptInit(s, &m, priv);
        CHECK(rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD,
              "NULL params: C_DecryptInit gave %s", rv_name(rv));
    }
    close_session(s);
    return failures ? 1 : 0;
}

/* C_GetAttributeValue template cases (PKCS#11 v3.0 §5.7.5). */
static int cmd_attrs(const char *label)
{
    CK_SESSION_HANDLE s = open_session();
    CK_OBJECT_HANDLE priv = find_key(s, CKO_PRIVATE_KEY, label, NULL, 0, NULL);
    CK_BYTE mod[512], small[4], pexp[512];
    CK_ULONG bits = 0;
    CK_ATTRIBUTE t[] = {
        {CKA_MODULUS, mod, sizeof(mod)},
        {CKA_PRIVATE_EXPONENT, pexp, sizeof(pexp)},
        {CKA_MODULUS_BITS, &bits, sizeof(bits)},
        {0x7fff1234UL, small, sizeof(small)},
        {CKA_PUBLIC_EXPONENT, small, 1},
    };
    CK_RV rv;
    CHECK(priv != CK_INVALID_HANDLE, "private key %s not found", label);
    memset(pexp, 0xAA, sizeof(pexp));
    rv = p11->C_GetAttributeValue(s, priv, t, 5);
    CHECK(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID
              || rv == CKR_BUFFER_TOO_SMALL,
          "mixed template gave %s", rv_name(rv));
    CHECK(t[0].ulValueLen == 256, "modulus len %lu",
          (unsigned long)t[0].ulValueLen);
    CHECK(t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION,
          "sensitive attr not marked");
    CHECK(pexp[0] == 0xAA, "sensitive attr buffer was written");
    CHECK(bits == 2048, "modulus bits %lu", (unsigned long)bits);
    CHECK(t[3].ulValueLen == CK_UNAVAILABLE_INFORMATION,
          "unknown attr not marked");
    CHECK(t[4].ulValueLen == CK_UNAVAILABLE_INFORMATION,
          "short buffer not marked");
    /* Length-only query on everything public. */
    t[0].pValue = NULL;
    t[0].ulValueLen = 0;
    rv = p11->C_GetAttributeValue(s, priv, t, 1);
    CHECK(rv == CKR_OK && t[0].ulValueLen == 256, "length query: %s %lu",
          rv_name(rv), (unsigned long)t[0].ulValueLen);
    close_session(s);
    return failures ? 1 : 0;
}

/* wrap-file: make a fresh AES key, wrap it with the current key version,
 * write the blob to FILE, print "<version-id-hex> <key-value-hex>". */
static int cmd_wrap_file(const char *label, const char *file, const char *hash)
{
    CK_SESSION_HANDLE s = open_session();
    CK_OBJECT_HANDLE pub = find_key(
        s, is_kw(hash) ? CKO_SECRET_KEY : CKO_PUBLIC_KEY, label, NULL, 0, NULL);
    CK_OBJECT_HANDLE dek;
    CK_MECHANISM m;
    CK_RSA_PKCS_OAEP_PARAMS p;
    CK_BYTE wrapped[1024], id[64], val[64];
    CK_ULONG wlen = sizeof(wrapped), vl;
    CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
    CK_RV rv;
    FILE *f;

    if (pub == CK_INVALID_HANDLE) {
        printf("FAIL: public key %s not found\n", label);
        return 1;
    }
    dek = gen_aes(s, 32);
    set_oaep(&m, &p, hash);
    rv = p11->C_WrapKey(s, &m, pub, dek, wrapped, &wlen);
    if (rv != CKR_OK) {
        printf("RV %s\n", rv_name(rv));
        return 1;
    }
    rv = p11->C_GetAttributeValue(s, pub, &a, 1);
    CHECK(rv == CKR_OK, "CKA_ID: %s", rv_name(rv));
    vl = get_value(s, dek, val, sizeof(val));
    f = fopen(file, "wb");
    if (f == NULL || fwrite(wrapped, 1, wlen, f) != wlen) {
        printf("FAIL: cannot write %s\n", file);
        return 1;
    }
    fclose(f);
    for (CK_ULONG i = 0; i < a.ulValueLen; i++) {
        printf("%02x", id[i]);
    }
    printf(" ");
    print_hex(val, vl);
    close_session(s);
    return failures ? 1 : 0;
}

/* unwrap-file: unwrap FILE with the private key whose CKA_ID is IDHEX (empty
 * string: the current one); prints the key value in hex, or the CKR name
 * ("RV <name>") when the unwrap fails. Exit 0 on success, 3 on a CKR error. */
static int cmd_unwrap_file(const char *label, const char *file,
                           const char *idhex, const char *hash)
{
    CK_SESSION_HANDLE s = open_session();
    CK_BYTE id[64], blob[2048], val[64];
    int idl = hex_to_bytes(idhex, id, sizeof(id));
    CK_OBJECT_HANDLE priv, dek = CK_INVALID_HANDLE;
    CK_MECHANISM m;
    CK_RSA_PKCS_OAEP_PARAMS p;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE ut[] = {
        {CKA_CLASS, &cls, sizeof(cls)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &f, sizeof(f)},       {CKA_SENSITIVE, &f, sizeof(f)},
        {CKA_EXTRACTABLE, &t, sizeof(t)},
    };
    size_t bl;
    CK_RV rv = CKR_OK;
    FILE *fp = fopen(file, "rb");

    if (fp == NULL || idl < 0) {
        printf("FAIL: bad file or id\n");
        return 2;
    }
    bl = fread(blob, 1, sizeof(blob), fp);
    fclose(fp);
    priv = find_key(s, is_kw(hash) ? CKO_SECRET_KEY : CKO_PRIVATE_KEY, label,
                    id, (CK_ULONG)idl, &rv);
    if (priv == CK_INVALID_HANDLE) {
        last_unwrap_rv = rv == CKR_OK ? CKR_KEY_HANDLE_INVALID : rv;
        printf("RV %s (no private key with that id)\n",
               rv_name(last_unwrap_rv));
        return 3;
    }
    set_oaep(&m, &p, hash);
    rv = p11->C_UnwrapKey(s, &m, priv, blob, (CK_ULONG)bl, ut, 5, &dek);
    last_unwrap_rv = rv;
    if (rv != CKR_OK) {
        printf("RV %s\n", rv_name(rv));
        return 3;
    }
    print_hex(val, get_value(s, dek, val, sizeof(val)));
    close_session(s);
    return failures ? 1 : 0;
}

struct worker {
    const char *label;
    int iters;
    int fails;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    CK_SESSION_HANDLE s = open_session();
    CK_OBJECT_HANDLE pub = find_key(s, CKO_PUBLIC_KEY, w->label, NULL, 0, NULL);
    CK_OBJECT_HANDLE priv =
        find_key(s, CKO_PRIVATE_KEY, w->label, NULL, 0, NULL);
    CK_RSA_PKCS_OAEP_PARAMS p;
    CK_MECHANISM m;
    set_oaep(&m, &p, "sha256");
    for (int i = 0; i < w->iters; i++) {
        CK_BYTE wrapped[1024];
        CK_ULONG wl = sizeof(wrapped);
        CK_OBJECT_HANDLE dek = gen_aes(s, 32), out = CK_INVALID_HANDLE;
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_AES;
        CK_ATTRIBUTE ut[] = {{CKA_CLASS, &cls, sizeof(cls)},
                             {CKA_KEY_TYPE, &kt, sizeof(kt)}};
        if (p11->C_WrapKey(s, &m, pub, dek, wrapped, &wl) != CKR_OK
            || p11->C_UnwrapKey(s, &m, priv, wrapped, wl, ut, 2, &out)
                   != CKR_OK) {
            w->fails++;
        }
        (void)p11->C_DestroyObject(s, dek);
        (void)p11->C_DestroyObject(s, out);
    }
    close_session(s);
    return NULL;
}

/* NTHREADS (1..32) workers of ITERS rounds each at once; returns the
 * number of failed rounds and the wall time in *SECS. */
static int run_threads(const char *label, int nthreads, int iters, double *secs)
{
    pthread_t th[32];
    struct worker w[32];
    int total = 0;
    struct timespec t0, t1;
    /* in the repl too, each worker opens its own session */
    CK_SESSION_HANDLE keep = repl_session;
    repl_session = CK_INVALID_HANDLE;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < nthreads; i++) {
        w[i] = (struct worker){label, iters, 0};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].fails;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *secs = (double)(t1.tv_sec - t0.tv_sec)
            + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    repl_session = keep;
    return total;
}

static int cmd_threads(const char *label, int nthreads, int iters)
{
    int total;
    double secs;
    if (nthreads < 1 || nthreads > 32) {
        return 2;
    }
    total = run_threads(label, nthreads, iters, &secs);
    CHECK(total == 0, "%d of %d wrap/unwrap rounds failed", total,
          nthreads * iters);
    /* One round = C_GenerateKey + C_WrapKey (vault wrapkey) + C_UnwrapKey
     * (vault unwrapkey) + two C_DestroyObject. */
    printf("threads=%d iterations=%d failures=%d seconds=%.3f "
           "rounds_per_s=%.1f\n",
           nthreads, iters, total, secs,
           secs > 0 ? (double)(nthreads * iters) / secs : 0.0);
    return failures ? 1 : 0;
}

/* encrypt-id: AES-CBC-PAD encrypt 16 bytes with the secret key whose CKA_ID
 * is IDHEX (a token object: its value comes from the vault's unwrapKey or
 * the DEK cache). Prints "ok" or "RV <name>". */
static void cmd_encrypt_id(const char *idhex)
{
    CK_SESSION_HANDLE s = open_session();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BYTE id[64], iv[16] = {0}, pt[16] = {1}, ct[64];
    CK_ULONG ctl = sizeof(ct), n = 0;
    int idl = hex_to_bytes(idhex, id, sizeof(id));
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_ID, id, idl > 0 ? (CK_ULONG)idl : 0}};
    CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = p11->C_FindObjectsInit(s, t, 2);
    if (rv == CKR_OK) {
        rv = p11->C_FindObjects(s, &h, 1, &n);
        (void)p11->C_FindObjectsFinal(s);
    }
    if (rv == CKR_OK && n != 1) {
        rv = CKR_KEY_HANDLE_INVALID;
    }
    if (rv == CKR_OK) {
        rv = p11->C_EncryptInit(s, &m, h);
    }
    if (rv == CKR_OK) {
        rv = p11->C_Encrypt(s, pt, sizeof(pt), ct, &ctl);
    }
    if (rv == CKR_OK) {
        printf("ok\n");
    } else {
        printf("RV %s\n", rv_name(rv));
    }
    close_session(s);
}

/* write_all - LEN bytes of P into file PATH, closed on return. 0 or -1. */
static int write_all(const char *path, const CK_BYTE *p, CK_ULONG len)
{
    FILE *f = fopen(path, "wb");
    int rc = f != NULL && fwrite(p, 1, len, f) == len ? 0 : -1;

    if (f != NULL && fclose(f) != 0) {
        rc = -1;
    }
    return rc;
}

/* aes: C_Encrypt / C_Decrypt of file IN into file OUT with the secret key
 * labelled LABEL. MECH cbc | cbcpad | gcm; DIR enc | dec; IVHEX the IV
 * (CBC 16 bytes, GCM 12; GCM tag 128 bits); AADHEX the GCM aad or "-";
 * PARTS 1 = single-part C_Encrypt, else that many C_*Update calls and a
 * C_*Final. Prints "ok <bytes out>" or "RV <name>" (one line). */
static void cmd_aes(const char *label, const char *mech, const char *dir,
                    const char *ivhex, const char *aadhex, const char *in,
                    const char *out, int parts)
{
    CK_SESSION_HANDLE s = open_session();
    static CK_BYTE data[80000], res[80100];
    CK_BYTE iv[16], aad[256];
    int ivl = hex_to_bytes(ivhex, iv, sizeof(iv));
    int aadl =
        strcmp(aadhex, "-") == 0 ? 0 : hex_to_bytes(aadhex, aad, sizeof(aad));
    CK_GCM_PARAMS g = {iv,
                       (CK_ULONG)ivl,
                       (CK_ULONG)ivl * 8,
                       aadl > 0 ? aad : NULL,
                       (CK_ULONG)aadl,
                       128};
    CK_MECHANISM m = {CKM_AES_CBC, iv, (CK_ULONG)ivl};
    CK_OBJECT_HANDLE k;
    CK_ULONG n = 0, len = 0, done = 0;
    CK_RV rv = CKR_OK;
    int enc = strcmp(dir, "enc") == 0;
    FILE *f = fopen(in, "rb");

    if (f == NULL || ivl < 0 || aadl < 0 || parts < 1) {
        printf("ERR bad arguments\n");
        if (f != NULL) {
            fclose(f);
        }
        return;
    }
    n = (CK_ULONG)fread(data, 1, sizeof(data), f);
    fclose(f);
    f = NULL;
    if (strcmp(mech, "cbcpad") == 0) {
        m.mechanism = CKM_AES_CBC_PAD;
    } else if (strcmp(mech, "gcm") == 0) {
        m.mechanism = CKM_AES_GCM;
        m.pParameter = &g;
        m.ulParameterLen = sizeof(g);
    }
    k = find_key(s, CKO_SECRET_KEY, label, NULL, 0, &rv);
    if (k == CK_INVALID_HANDLE) {
        printf("RV %s\n", rv != CKR_OK ? rv_name(rv) : "not-found");
        close_session(s);
        return;
    }
    rv = enc ? p11->C_EncryptInit(s, &m, k) : p11->C_DecryptInit(s, &m, k);
    if (rv == CKR_OK && parts == 1) {
        len = sizeof(res);
        rv = enc ? p11->C_Encrypt(s, data, n, res, &len)
                 : p11->C_Decrypt(s, data, n, res, &len);
        done = len;
    } else if (rv == CKR_OK) {
        CK_ULONG step = n / (CK_ULONG)parts + 1;

        for (CK_ULONG off = 0; rv == CKR_OK && off < n; off += step) {
            CK_ULONG c = n - off < step ? n - off : step;

            len = sizeof(res) - done;
            rv = enc ? p11->C_EncryptUpdate(s, data + off, c, res + done, &len)
                     : p11->C_DecryptUpdate(s, data + off, c, res + done, &len);
            done += rv == CKR_OK ? len : 0;
        }
        len = sizeof(res) - done;
        if (rv == CKR_OK) {
            rv = enc ? p11->C_EncryptFinal(s, res + done, &len)
                     : p11->C_DecryptFinal(s, res + done, &len);
            done += rv == CKR_OK ? len : 0;
        }
    }
    /* The file is complete (closed) before the answer line: the test reads
     * it as soon as it sees "ok". */
    if (rv != CKR_OK) {
        printf("RV %s\n", rv_name(rv));
    } else if (write_all(out, res, done) != 0) {
        printf("ERR cannot write %s\n", out);
    } else {
        printf("ok %lu\n", (unsigned long)done);
    }
    close_session(s);
}

/* gcmmsg: v3.0 message-based AES-GCM (C_MessageEncryptInit +
 * C_EncryptMessage with CKG_GENERATE_RANDOM: the token picks the IV) with
 * the secret key LABEL. enc: IVHEX/TAGHEX ignored ("-"), prints
 * "ok <ivhex> <taghex>" and writes the ciphertext to OUT; dec: prints
 * "ok <bytes>" and writes the plaintext. "RV <name>" on failure. */
static void cmd_gcmmsg(const char *label, const char *dir, const char *ivhex,
                       const char *taghex, const char *aadhex, const char *in,
                       const char *out)
{
    CK_SESSION_HANDLE s = open_session();
    static CK_BYTE data[70000], res[70000];
    CK_BYTE iv[12] = {0}, tag[16] = {0}, aad[256];
    int dec = strcmp(dir, "dec") == 0;
    int aadl =
        strcmp(aadhex, "-") == 0 ? 0 : hex_to_bytes(aadhex, aad, sizeof(aad));
    CK_GCM_MESSAGE_PARAMS g = {iv, 12, 0, CKG_GENERATE_RANDOM, tag, 128};
    CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
    CK_OBJECT_HANDLE k;
    CK_ULONG n, len = sizeof(res);
    CK_RV rv = CKR_OK;
    FILE *f = fopen(in, "rb");

    if (p11v3 == NULL || f == NULL || aadl < 0
        || (dec
            && (hex_to_bytes(ivhex, iv, 12) != 12
                || hex_to_bytes(taghex, tag, 16) != 16))) {
        printf("ERR bad arguments\n");
        if (f != NULL) {
            fclose(f);
        }
        return;
    }
    n = (CK_ULONG)fread(data, 1, sizeof(data), f);
    fclose(f);
    f = NULL;
    k = find_key(s, CKO_SECRET_KEY, label, NULL, 0, &rv);
    if (k == CK_INVALID_HANDLE) {
        printf("RV %s\n", rv != CKR_OK ? rv_name(rv) : "not-found");
        close_session(s);
        return;
    }
    if (dec) {
        g.ivGenerator = CKG_NO_GENERATE;
        rv = p11v3->C_MessageDecryptInit(s, &m, k);
        if (rv == CKR_OK) {
            rv = p11v3->C_DecryptMessage(s, &g, sizeof(g), aad, (CK_ULONG)aadl,
                                         data, n, res, &len);
            (void)p11v3->C_MessageDecryptFinal(s);
        }
    } else {
        rv = p11v3->C_MessageEncryptInit(s, &m, k);
        if (rv == CKR_OK) {
            rv = p11v3->C_EncryptMessage(s, &g, sizeof(g), aad, (CK_ULONG)aadl,
                                         data, n, res, &len);
            (void)p11v3->C_MessageEncryptFinal(s);
        }
    }
    if (rv != CKR_OK) {
        printf("RV %s\n", rv_name(rv));
    } else if (write_all(out, res, len) != 0) {
        printf("ERR cannot write %s\n", out);
    } else if (dec) {
        printf("ok %lu\n", (unsigned long)len);
    } else {
        printf("ok ");
        for (int i = 0; i < 12; i++) {
            printf("%02x", iv[i]);
        }
        printf(" ");
        print_hex(tag, 16);
    }
    close_session(s);
}

/* repl: one process, one session, commands from stdin, one answer line per
 * command (so a test can revoke and restore access in between and check
 * that the SAME session recovers without C_Finalize):
 *   unwrap LABEL FILE IDHEX HASH   -> hex value, or "RV <CKR name>"
 *   wrap LABEL FILE HASH           -> "<idhex> <valuehex>" or "RV ..."
 *   encrypt IDHEX                  -> "ok" or "RV ..." (secret key by CKA_ID)
 *   threads LABEL N ITERS          -> "failures=F ms=MS": N threads (1..32) of
 *                                     ITERS wrap+unwrap rounds each at once
 *   aes LABEL MECH DIR IVHEX AADHEX IN OUT PARTS -> see cmd_aes
 *   gcmmsg LABEL DIR IVHEX TAGHEX AADHEX IN OUT   -> see cmd_gcmmsg
 *   quit
 */
static int cmd_repl(void)
{
    char line[4096];
    repl_session = CK_INVALID_HANDLE;
    repl_session = open_session();
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char a[9][1024];
        int n = sscanf(line,
                       "%1023s %1023s %1023s %1023s %1023s %1023s %1023s "
                       "%1023s %1023s",
                       a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
        if (n >= 1 && strcmp(a[0], "quit") == 0) {
            break;
        } else if (n == 5 && strcmp(a[0], "unwrap") == 0) {
            (void)cmd_unwrap_file(a[1], a[2], a[3], a[4]);
        } else if (n == 8 && strcmp(a[0], "gcmmsg") == 0) {
            cmd_gcmmsg(a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
        } else if (n == 9 && strcmp(a[0], "aes") == 0) {
            cmd_aes(a[1], a[2], a[3], a[4], a[5], a[6], a[7], atoi(a[8]));
        } else if (n == 2 && strcmp(a[0], "encrypt") == 0) {
            cmd_encrypt_id(a[1]);
        } else if (n == 4 && strcmp(a[0], "wrap") == 0) {
            /* prints exactly one line: the result or "RV <name>" */
            (void)cmd_wrap_file(a[1], a[2], a[3]);
        } else if (n == 4 && strcmp(a[0], "threads") == 0 && atoi(a[2]) >= 1
                   && atoi(a[2]) <= 32) {
            double secs;
            int f = run_threads(a[1], atoi(a[2]), atoi(a[3]), &secs);
            printf("failures=%d ms=%.0f\n", f, secs * 1000.0);
        } else {
            printf("ERR unknown command\n");
        }
        fflush(stdout);
    }
    (void)p11->C_CloseSession(repl_session);
    return failures ? 1 : 0;
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: p11client MODULE roundtrip LABEL sha1|sha256|pkcs\n"
        "       p11client MODULE bad-params LABEL\n"
        "       p11client MODULE attrs LABEL\n"
        "       p11client MODULE wrap-file LABEL FILE sha1|sha256|pkcs|kw|kwp\n"
        "       p11client MODULE unwrap-file LABEL FILE IDHEX "
        "sha1|sha256|pkcs|kw|kwp\n"
        "       p11client MODULE expect-unwrap LABEL FILE IDHEX HASH CKR\n"
        "       p11client MODULE threads LABEL N ITERS\n"
        "       p11client MODULE repl -   (commands on stdin)\n");
    return 2;
}

int main(int argc, char **argv)
{
    void *lib;
    CK_C_GetFunctionList gfl;
    CK_C_INITIALIZE_ARGS ia = {0};
    int rc;
    CK_RV rv;

    if (argc < 4) {
        return usage();
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (gfl == NULL || gfl(&p11) != CKR_OK) {
        fprintf(stderr, "C_GetFunctionList failed\n");
        return 2;
    }
    {
        CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
        CK_VERSION v3 = {3, 0};
        CK_INTERFACE_PTR itf = NULL;

        if (gi != NULL
            && gi((CK_UTF8CHAR_PTR) "PKCS 11", &v3, &itf, 0) == CKR_OK
            && itf != NULL) {
            p11v3 = itf->pFunctionList;
        }
    }
    ia.flags = CKF_OS_LOCKING_OK;
    rv = p11->C_Initialize(&ia);
    if (rv != CKR_OK) {
        printf("FAIL: C_Initialize: %s\n", rv_name(rv));
        return 1;
    }
    if (strcmp(argv[2], "roundtrip") == 0 && argc == 5) {
        rc = cmd_roundtrip(argv[3], argv[4]);
    } else if (strcmp(argv[2], "bad-params") == 0) {
        rc = cmd_bad_params(argv[3]);
    } else if (strcmp(argv[2], "attrs") == 0) {
        rc = cmd_attrs(argv[3]);
    } else if (strcmp(argv[2], "wrap-file") == 0 && argc == 6) {
        rc = cmd_wrap_file(argv[3], argv[4], argv[5]);
    } else if (strcmp(argv[2], "unwrap-file") == 0 && argc == 7) {
        rc = cmd_unwrap_file(argv[3], argv[4], argv[5], argv[6]);
    } else if (strcmp(argv[2], "expect-unwrap") == 0 && argc == 8) {
        /* The unwrap must fail with exactly the named CKR. */
        CK_RV want = rv_parse(argv[7]);
        rc = cmd_unwrap_file(argv[3], argv[4], argv[5], argv[6]);
        if (rc == 3 && last_unwrap_rv == want) {
            rc = 0;
        } else {
            printf("FAIL: expected %s, got %s\n", argv[7],
                   rv_name(last_unwrap_rv));
            rc = 1;
        }
    } else if (strcmp(argv[2], "repl") == 0) {
        rc = cmd_repl();
    } else if (strcmp(argv[2], "threads") == 0 && argc == 6) {
        rc = cmd_threads(argv[3], atoi(argv[4]), atoi(argv[5]));
    } else {
        rc = usage();
    }
    rv = p11->C_Finalize(NULL);
    if (rv != CKR_OK) {
        printf("FAIL: C_Finalize: %s\n", rv_name(rv));
        rc = rc ? rc : 1;
    }
    /* dlclose is skipped on purpose: the module is linked -z nodelete. */
    return rc;
}
