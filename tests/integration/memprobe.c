/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memprobe - the host program of the memory and OpenSSL-isolation tests
 * (coredump.sh, provider.sh), and the core-file scanner they use.
 *
 *   memprobe run MODULE LABEL KEYFILE [pause] [provider NAME] [conf]
 *       Loads the module like any PKCS#11 consumer (dlopen +
 *       C_GetFunctionList). KEYFILE holds the 32-byte data key as 64 hex
 *       digits; it is read with read(2) (no stdio buffer) and every copy the
 *       driver makes is wiped, so a copy found in a core is the module's or
 *       its libraries'. The key becomes a session AES key (C_CreateObject),
 *       is wrapped by the vault key (C_WrapKey, RSA-OAEP-SHA256: Key Vault
 *       wrapKey) and unwrapped again (C_UnwrapKey: unwrapKey); both objects
 *       are destroyed and the session closed. Between, the key encrypts
 *       some data (AES-GCM, local crypto).
 *       pause: then prints "READY close" and waits for a line on stdin, calls
 *       C_Finalize, prints "READY finalize" and waits again.
 *       provider NAME: before any module call, loads OpenSSL provider NAME and
 *       then "default" into the process's default library context, as a host
 *       with its own provider (pkcs11-provider, a TPM provider) does.
 *       curl: initialises libcurl (curl_global_init) before the module does,
 *       as a host that uses libcurl itself does.
 *       conf: loads OPENSSL_CONF into the default context first
 *       (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG)), as most hosts do.
 *       Exit 0 when the round trip worked, 1 when a call failed, 2 for usage.
 *
 *   memprobe scan CORE NAME=HEX...
 *       Counts each secret (bytes given in hex) in the file CORE in every
 *       encoding: raw, hex (lower and upper case), base64 and base64url at
 *       each of the three byte alignments (so a copy inside a longer encoded
 *       string counts too; padding and the edge characters that depend on
 *       neighbouring bytes are left out). Prints one line per secret and
 *       encoding: "NAME ENCODING COUNT". With MEMPROBE_WHERE set, each match
 *       is also printed to stderr with its file offset (for finding where
 *       in the process a copy is: readelf -l CORE maps offsets to
 *       addresses). Exit 0, or 2 on error.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/provider.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *p11;

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* HEX (N digits) into OUT; returns the byte count or -1. */
static long unhex(const char *hex, size_t n, unsigned char *out, size_t max)
{
    size_t i;

    if (n % 2 != 0 || n / 2 > max) {
        return -1;
    }
    for (i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]);
        int lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (unsigned char)(hi * 16 + lo);
    }
    return (long)(n / 2);
}

/* ---- run ---------------------------------------------------------------- */

static CK_OBJECT_HANDLE find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                             const char *label)
{
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    if (p11->C_FindObjectsInit(s, t, 2) == CKR_OK) {
        (void)p11->C_FindObjects(s, &h, 1, &n);
        (void)p11->C_FindObjectsFinal(s);
    }
    return n == 1 ? h : CK_INVALID_HANDLE;
}

static void wait_line(const char *what)
{
    char c;

    printf("READY %s\n", what);
    fflush(stdout);
    while (read(0, &c, 1) == 1 && c != '\n') {
    }
}

static int roundtrip(const char *label, unsigned char *key)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_SLOT_ID slots[4];
    CK_ULONG ns = 4;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG vlen = 32;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE ct[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE, key, 32},           {CKA_TOKEN, &f, sizeof(f)},
        {CKA_SENSITIVE, &f, sizeof(f)}, {CKA_EXTRACTABLE, &t, sizeof(t)},
        {CKA_ENCRYPT, &t, sizeof(t)},
    };
    CK_ATTRIBUTE ut[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &vlen, sizeof(vlen)}, {CKA_TOKEN, &f, sizeof(f)},
        {CKA_SENSITIVE, &f, sizeof(f)},       {CKA_EXTRACTABLE, &t, sizeof(t)},
        {CKA_DECRYPT, &t, sizeof(t)},
    };
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256,
                                  CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CK_OBJECT_HANDLE pub, priv, dek = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE dek2 = CK_INVALID_HANDLE;
    CK_BYTE wrapped[1024];
    CK_BYTE back[64];
    CK_ULONG wlen = sizeof(wrapped);
    CK_ATTRIBUTE va = {CKA_VALUE, back, sizeof(back)};
    CK_RV rv;
    int rc = 1;

    rv = p11->C_GetSlotList(CK_TRUE, slots, &ns);
    if (rv != CKR_OK || ns == 0) {
        printf("FAIL: C_GetSlotList: 0x%lx\n", (unsigned long)rv);
        goto out;
    }
    rv = p11->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                            NULL, &s);
    if (rv != CKR_OK) {
        printf("FAIL: C_OpenSession: 0x%lx\n", (unsigned long)rv);
        goto out;
    }
    pub = find(s, CKO_PUBLIC_KEY, label);
    priv = find(s, CKO_PRIVATE_KEY, label);
    if (pub == CK_INVALID_HANDLE || priv == CK_INVALID_HANDLE) {
        printf("FAIL: vault key %s not found\n", label);
        goto out;
    }
    rv = p11->C_CreateObject(s, ct, 7, &dek);
    if (rv != CKR_OK) {
        printf("FAIL: C_CreateObject: 0x%lx\n", (unsigned long)rv);
        goto out;
    }
    rv = p11->C_WrapKey(s, &m, pub, dek, wrapped, &wlen);
    if (rv != CKR_OK) {
        printf("FAIL: C_WrapKey: 0x%lx\n", (unsigned long)rv);
        goto out;
    }
    rv = p11->C_UnwrapKey(s, &m, priv, wrapped, wlen, ut, 7, &dek2);
    if (rv != CKR_OK) {
        printf("FAIL: C_UnwrapKey: 0x%lx\n", (unsigned long)rv);
        goto out;
    }
    rv = p11->C_GetAttributeValue(s, dek2, &va, 1);
    if (rv != CKR_OK || va.ulValueLen != 32 || memcmp(back, key, 32) != 0) {
        printf("FAIL: unwrapped value differs (0x%lx)\n", (unsigned long)rv);
        goto out;
    }
    {
        /* local crypto with the key too: AES-GCM under the created object
         * (its key schedule holds the raw key while the operation runs) */
        CK_BYTE iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        CK_GCM_PARAMS gp = {iv, sizeof(iv), 96, NULL, 0, 128};
        CK_MECHANISM gm = {CKM_AES_GCM, &gp, sizeof(gp)};
        CK_BYTE pt[] = "envelope encryption at rest";
        CK_BYTE enc[128];
        CK_ULONG ctl = sizeof(enc);

        rv = p11->C_EncryptInit(s, &gm, dek);
        if (rv == CKR_OK) {
            rv = p11->C_Encrypt(s, pt, sizeof(pt), enc, &ctl);
        }
        if (rv != CKR_OK) {
            printf("FAIL: AES-GCM encrypt: 0x%lx\n", (unsigned long)rv);
            goto out;
        }
    }
    printf("wrap/unwrap round trip OK\n");
    rc = 0;
out:
    OPENSSL_cleanse(back, sizeof(back));
    if (dek != CK_INVALID_HANDLE) {
        (void)p11->C_DestroyObject(s, dek);
    }
    if (dek2 != CK_INVALID_HANDLE) {
        (void)p11->C_DestroyObject(s, dek2);
    }
    if (s != CK_INVALID_HANDLE) {
        (void)p11->C_CloseSession(s);
    }
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    const char *module = argv[2];
    const char *label = argv[3];
    int pause = 0, conf = 0, host_curl = 0;
    const char *prov = NULL;
    char hex[65];
    unsigned char key[32];
    CK_C_INITIALIZE_ARGS ia = {0};
    CK_C_GetFunctionList gfl;
    void *lib;
    ssize_t n;
    int fd;
    int rc;
    CK_RV rv;

    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "pause") == 0) {
            pause = 1;
        } else if (strcmp(argv[i], "conf") == 0) {
            conf = 1;
        } else if (strcmp(argv[i], "curl") == 0) {
            host_curl = 1;
        } else if (strcmp(argv[i], "provider") == 0 && i + 1 < argc) {
            prov = argv[++i];
        } else {
            return 2;
        }
    }
    if (pause) {
        /* let gcore attach under Yama ptrace_scope 1 (not our parent) */
        (void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    }
    if (host_curl && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        printf("FAIL: host: curl_global_init\n");
        return 2;
    }
    if (conf && OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1) {
        printf("FAIL: host: OPENSSL_CONF did not load\n");
        return 2;
    }
    if (prov != NULL
        && (OSSL_PROVIDER_load(NULL, prov) == NULL
            || OSSL_PROVIDER_load(NULL, "default") == NULL)) {
        printf("FAIL: host: provider %s did not load\n", prov);
        return 2;
    }
    fd = open(argv[4], O_RDONLY);
    n = fd >= 0 ? read(fd, hex, 64) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n != 64 || unhex(hex, 64, key, sizeof(key)) != 32) {
        fprintf(stderr, "memprobe: %s: want 64 hex digits\n", argv[4]);
        return 2;
    }
    OPENSSL_cleanse(hex, sizeof(hex));

    lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (gfl == NULL || gfl(&p11) != CKR_OK) {
        fprintf(stderr, "C_GetFunctionList failed\n");
        return 2;
    }
    ia.flags = CKF_OS_LOCKING_OK;
    rv = p11->C_Initialize(&ia);
    if (rv != CKR_OK) {
        printf("FAIL: C_Initialize: 0x%lx\n", (unsigned long)rv);
        return 1;
    }
    rc = roundtrip(label, key);
    OPENSSL_cleanse(key, sizeof(key));
    if (pause) {
        wait_line("close");
    }
    rv = p11->C_Finalize(NULL);
    if (rv != CKR_OK) {
        printf("FAIL: C_Finalize: 0x%lx\n", (unsigned long)rv);
        rc = 1;
    }
    if (pause) {
        wait_line("finalize");
    }
    return rc;
}

/* ---- scan --------------------------------------------------------------- */

static size_t count(const unsigned char *hay, size_t hn, const char *needle,
                    size_t nn)
{
    size_t c = 0;
    const unsigned char *p = hay;
    const unsigned char *end = hay + hn;

    if (nn == 0) {
        return 0;
    }
    while (p < end) {
        const unsigned char *f = memmem(p, (size_t)(end - p), needle, nn);
        if (f == NULL) {
            break;
        }
        c++;
        if (getenv("MEMPROBE_WHERE") != NULL) {
            fprintf(stderr, "match at core offset 0x%zx\n", (size_t)(f - hay));
        }
        p = f + 1;
    }
    return c;
}

/* The base64 characters of SECRET placed at byte offset SHIFT (0..2) that
 * depend on its bytes only. */
static size_t b64_core(const unsigned char *sec, size_t n, int shift, int url,
                       char *out)
{
    static const char std[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char urls[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *alpha = url ? urls : std;
    size_t bits = 8 * ((size_t)shift + n);
    size_t first = (8 * (size_t)shift + 5) / 6;
    size_t last = bits / 6; /* exclusive */
    size_t o = 0;

    for (size_t i = first; i < last; i++) {
        unsigned v = 0;
        for (size_t b = 6 * i; b < 6 * i + 6; b++) {
            size_t byte = b / 8;
            unsigned bit = 0;
            if (byte >= (size_t)shift) {
                bit = (sec[byte - (size_t)shift] >> (7 - b % 8)) & 1u;
            }
            v = (v << 1) | bit;
        }
        out[o++] = alpha[v];
    }
    return o;
}

static int cmd_scan(int argc, char **argv)
{
    struct stat st;
    unsigned char *core;
    int fd = open(argv[2], O_RDONLY);

    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
        fprintf(stderr, "memprobe: cannot read %s\n", argv[2]);
        return 2;
    }
    core = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (core == MAP_FAILED) {
        return 2;
    }
    for (int a = 3; a < argc; a++) {
        const char *eq = strchr(argv[a], '=');
        unsigned char sec[8192];
        char enc[3 * sizeof(sec)];
        long n;

        if (eq == NULL) {
            return 2;
        }
        n = unhex(eq + 1, strlen(eq + 1), sec, sizeof(sec));
        if (n <= 0) {
            fprintf(stderr, "memprobe: bad hex for %.*s\n", (int)(eq - argv[a]),
                    argv[a]);
            return 2;
        }
        printf("%.*s raw %zu\n", (int)(eq - argv[a]), argv[a],
               count(core, (size_t)st.st_size, (const char *)sec, (size_t)n));
        for (int upper = 0; upper < 2; upper++) {
            for (long i = 0; i < n; i++) {
                (void)snprintf(enc + 2 * i, 3, upper ? "%02X" : "%02x", sec[i]);
            }
            printf("%.*s %s %zu\n", (int)(eq - argv[a]), argv[a],
                   upper ? "HEX" : "hex",
                   count(core, (size_t)st.st_size, enc, 2 * (size_t)n));
        }
        for (int url = 0; url < 2; url++) {
            size_t total = 0;
            for (int shift = 0; shift < 3; shift++) {
                size_t len = b64_core(sec, (size_t)n, shift, url, enc);
                char other[sizeof(enc)];
                /* where both alphabets give the same text, count it once
                 * (as base64url) */
                if (!url && b64_core(sec, (size_t)n, shift, 1, other) == len
                    && memcmp(other, enc, len) == 0) {
                    continue;
                }
                total += count(core, (size_t)st.st_size, enc, len);
            }
            printf("%.*s %s %zu\n", (int)(eq - argv[a]), argv[a],
                   url ? "base64url" : "base64", total);
        }
    }
    munmap(core, (size_t)st.st_size);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "run") == 0) {
        return cmd_run(argc, argv);
    }
    if (argc >= 4 && strcmp(argv[1], "scan") == 0) {
        return cmd_scan(argc, argv);
    }
    fprintf(stderr, "usage: memprobe run MODULE LABEL KEYFILE [pause] "
                    "[provider NAME] [conf] [curl]\n"
                    "       memprobe scan CORE NAME=HEX...\n");
    return 2;
}
