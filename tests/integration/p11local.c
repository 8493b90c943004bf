/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11local - drives the module's local functions that pkcs11-tool 0.23
 * cannot (it refuses -m AES-CTR for --encrypt and has no C_DigestKey),
 * through the function list only (dlopen + C_GetFunctionList). It prints
 * values; the integration test compares them with openssl.
 *
 * Usage:
 *   p11local MODULE digest-key IDHEX PREFIX
 *       SHA-256 over PREFIX (text) then C_DigestKey of the secret key with
 *       CKA_ID IDHEX; prints "<digest hex> <CKA_VALUE hex>".
 *   p11local MODULE digest-key-session PREFIX
 *       the same with a new session AES-256 key (CKA_TOKEN false).
 *   p11local MODULE digest-key-rv IDHEX
 *       prints the C_DigestKey result name for key IDHEX (any class).
 *   p11local MODULE ctr KEYHEX CBHEX BITS IN OUT enc|dec [CHUNK]
 *       CKM_AES_CTR with a session key of value KEYHEX, counter block
 *       CBHEX and ulCounterBits BITS over file IN into OUT; single part, or
 *       C_*Update in CHUNK-byte pieces + C_*Final.
 * Exit status: 0 success, 1 a PKCS#11 call failed ("FAIL: ..."), 2 usage.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *p11;

#define MAX_IN (1024 * 1024)

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
}

static int failed(const char *what, CK_RV rv)
{
    printf("FAIL: %s: 0x%lx\n", what, (unsigned long)rv);
    return 1;
}

static CK_SESSION_HANDLE open_session(void)
{
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

    if (p11->C_GetSlotList(CK_TRUE, &slot, &n) != CKR_OK || n == 0
        || p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                              NULL, &s)
               != CKR_OK) {
        printf("FAIL: no session\n");
        exit(1);
    }
    return s;
}

static CK_OBJECT_HANDLE find_id(CK_SESSION_HANDLE s, const char *idhex)
{
    CK_BYTE id[64];
    int idl = hex_to_bytes(idhex, id, sizeof(id));
    CK_ATTRIBUTE t = {CKA_ID, id, idl > 0 ? (CK_ULONG)idl : 0};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    if (idl <= 0 || p11->C_FindObjectsInit(s, &t, 1) != CKR_OK) {
        return CK_INVALID_HANDLE;
    }
    (void)p11->C_FindObjects(s, &h, 1, &n);
    (void)p11->C_FindObjectsFinal(s);
    return n == 1 ? h : CK_INVALID_HANDLE;
}

/* SHA-256(PREFIX || value of K) through C_DigestKey; prints digest and
 * value. */
static int digest_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k,
                      const char *prefix)
{
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    CK_BYTE d[32];
    CK_BYTE v[64];
    CK_ULONG dl = sizeof(d);
    CK_ATTRIBUTE a = {CKA_VALUE, v, sizeof(v)};
    CK_RV rv;

    if ((rv = p11->C_DigestInit(s, &m)) != CKR_OK) {
        return failed("C_DigestInit", rv);
    }
    if ((rv = p11->C_DigestUpdate(s, (CK_BYTE *)prefix, strlen(prefix)))
        != CKR_OK) {
        return failed("C_DigestUpdate", rv);
    }
    if ((rv = p11->C_DigestKey(s, k)) != CKR_OK) {
        return failed("C_DigestKey", rv);
    }
    if ((rv = p11->C_DigestFinal(s, d, &dl)) != CKR_OK || dl != 32) {
        return failed("C_DigestFinal", rv);
    }
    if ((rv = p11->C_GetAttributeValue(s, k, &a, 1)) != CKR_OK) {
        return failed("C_GetAttributeValue(CKA_VALUE)", rv);
    }
    print_hex(d, dl);
    printf(" ");
    print_hex(v, a.ulValueLen);
    printf("\n");
    return 0;
}

static CK_OBJECT_HANDLE session_aes(CK_SESSION_HANDLE s, const CK_BYTE *value,
                                    CK_ULONG len)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL f = CK_FALSE;
    CK_BBOOL t = CK_TRUE;
    CK_ULONG vlen = len;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE ct[] = {
        {CKA_CLASS, &cls, sizeof(cls)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &f, sizeof(f)},       {CKA_SENSITIVE, &f, sizeof(f)},
        {CKA_EXTRACTABLE, &t, sizeof(t)}, {CKA_VALUE, (void *)value, len}};
    CK_ATTRIBUTE gt[] = {{CKA_TOKEN, &f, sizeof(f)},
                         {CKA_SENSITIVE, &f, sizeof(f)},
                         {CKA_EXTRACTABLE, &t, sizeof(t)},
                         {CKA_VALUE_LEN, &vlen, sizeof(vlen)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = value != NULL ? p11->C_CreateObject(s, ct, 6, &h)
                             : p11->C_GenerateKey(s, &gen, gt, 4, &h);

    if (rv != CKR_OK) {
        (void)failed("session key", rv);
        exit(1);
    }
    return h;
}

static int ctr(CK_SESSION_HANDLE s, char **argv, int argc)
{
    CK_BYTE key[32];
    CK_AES_CTR_PARAMS prm;
    CK_MECHANISM m = {CKM_AES_CTR, &prm, sizeof(prm)};
    int kl = hex_to_bytes(argv[0], key, sizeof(key));
    bool enc = strcmp(argv[5], "enc") == 0;
    size_t chunk = argc > 6 ? (size_t)atol(argv[6]) : 0;
    static CK_BYTE in[MAX_IN];
    static CK_BYTE out[MAX_IN];
    size_t n;
    CK_ULONG total = 0;
    CK_ULONG len;
    CK_OBJECT_HANDLE k;
    CK_RV rv;
    FILE *f;

    if (kl <= 0 || hex_to_bytes(argv[1], prm.cb, 16) != 16) {
        return 2;
    }
    prm.ulCounterBits = strtoul(argv[2], NULL, 10);
    f = fopen(argv[3], "rb");
    if (f == NULL) {
        return 2;
    }
    n = fread(in, 1, sizeof(in), f);
    fclose(f);
    k = session_aes(s, key, (CK_ULONG)kl);
    rv = enc ? p11->C_EncryptInit(s, &m, k) : p11->C_DecryptInit(s, &m, k);
    if (rv != CKR_OK) {
        return failed("C_*Init", rv);
    }
    if (chunk == 0) {
        len = sizeof(out);
        rv = enc ? p11->C_Encrypt(s, in, n, out, &len)
                 : p11->C_Decrypt(s, in, n, out, &len);
        if (rv != CKR_OK) {
            return failed("C_Encrypt/C_Decrypt", rv);
        }
        total = len;
    } else {
        for (size_t off = 0; off < n; off += chunk) {
            CK_ULONG piece = n - off < chunk ? n - off : chunk;

            len = sizeof(out) - total;
            rv = enc ? p11->C_EncryptUpdate(s, in + off, piece, out + total,
                                            &len)
                     : p11->C_DecryptUpdate(s, in + off, piece, out + total,
                                            &len);
            if (rv != CKR_OK) {
                return failed("C_*Update", rv);
            }
            total += len;
        }
        len = sizeof(out) - total;
        rv = enc ? p11->C_EncryptFinal(s, out + total, &len)
                 : p11->C_DecryptFinal(s, out + total, &len);
        if (rv != CKR_OK) {
            return failed("C_*Final", rv);
        }
        total += len;
    }
    f = fopen(argv[4], "wb");
    if (f == NULL || fwrite(out, 1, total, f) != total) {
        return 2;
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    void *lib;
    CK_C_GetFunctionList gfl;
    CK_SESSION_HANDLE s;
    int rc = 2;

    if (argc < 4) {
        fprintf(stderr, "usage: see p11local.c\n");
        return 2;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    gfl = lib != NULL ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList")
                      : NULL;
    if (gfl == NULL || gfl(&p11) != CKR_OK
        || p11->C_Initialize(NULL) != CKR_OK) {
        fprintf(stderr, "module does not load\n");
        return 2;
    }
    s = open_session();
    if (strcmp(argv[2], "digest-key") == 0 && argc == 5) {
        CK_OBJECT_HANDLE k = find_id(s, argv[3]);

        rc = k != CK_INVALID_HANDLE ? digest_key(s, k, argv[4])
                                    : failed("no key with that CKA_ID", 0);
    } else if (strcmp(argv[2], "digest-key-session") == 0 && argc == 4) {
        rc = digest_key(s, session_aes(s, NULL, 32), argv[3]);
    } else if (strcmp(argv[2], "digest-key-rv") == 0 && argc == 4) {
        CK_MECHANISM m = {CKM_SHA256, NULL, 0};
        CK_RV rv = p11->C_DigestInit(s, &m);

        rv = rv == CKR_OK ? p11->C_DigestKey(s, find_id(s, argv[3])) : rv;
        printf("0x%lx\n", (unsigned long)rv);
        rc = 0;
    } else if (strcmp(argv[2], "ctr") == 0 && (argc == 9 || argc == 10)) {
        rc = ctr(s, argv + 3, argc - 3);
    }
    (void)p11->C_CloseSession(s);
    (void)p11->C_Finalize(NULL);
    return rc;
}
