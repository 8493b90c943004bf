/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test client that calls a PKCS#11 module the way OCI image encryption
 * tooling does (ocicrypt's PKCS#11 scheme, used by skopeo, buildah and
 * containerd's imgcrypt; /work/shared/docs/consumers.md): for ONE operation
 * it loads the module, C_Initialize, finds the token by label, opens a
 * session, logs in with the URI's pin-value (ocicrypt insists on one),
 * finds the key by CKA_LABEL + CKA_CLASS only and refuses anything but
 * exactly one match ("too many keys with label"), runs C_Encrypt (public
 * key) or C_Decrypt (private key) with CKM_RSA_PKCS_OAEP (SHA-256 or SHA-1,
 * MGF1 of the same hash, empty label), then logs out, closes, C_Finalize
 * and dlclose. Not in Debian 12, so reproduced here.
 *
 * usage: ocicrypt_client MODULE encrypt|decrypt TOKEN LABEL sha256|sha1
 *                        IN OUT
 * Exit 0 on success; 1 with the failing call and its CK_RV on stderr.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define MAX_IO 4096

static const char *fn = "";

static int die(CK_RV rv)
{
    fprintf(stderr, "ocicrypt_client: %s: rv 0x%08lx\n", fn, (unsigned long)rv);
    return 1;
}

static size_t read_file(const char *path, CK_BYTE *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* The slot whose token label (32 bytes, space padded) is LABEL. */
static CK_RV find_slot(CK_FUNCTION_LIST *p, const char *label, CK_SLOT_ID *out)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_RV rv = p->C_GetSlotList(CK_TRUE, slots, &n);

    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
        CK_TOKEN_INFO ti;
        char want[32];

        memset(want, ' ', sizeof(want));
        memcpy(want, label, strnlen(label, sizeof(want)));
        rv = p->C_GetTokenInfo(slots[i], &ti);
        if (rv == CKR_OK && memcmp(ti.label, want, sizeof(want)) == 0) {
            *out = slots[i];
            return CKR_OK;
        }
    }
    return rv == CKR_OK ? CKR_TOKEN_NOT_PRESENT : rv;
}

int main(int argc, char **argv)
{
    CK_RV rv;
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *p = NULL;
    CK_C_INITIALIZE_ARGS init = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK,
                                 NULL};
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE keys[4];
    CK_ULONG found = 0;
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE tmpl[2];
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256,
                                    CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep)};
    CK_BYTE in[MAX_IO];
    CK_BYTE out[MAX_IO];
    CK_ULONG out_len = sizeof(out);
    size_t in_len;
    int encrypt;
    void *lib;
    FILE *f;

    if (argc != 8) {
        fprintf(stderr,
                "usage: %s MODULE encrypt|decrypt TOKEN LABEL "
                "sha256|sha1 IN OUT\n",
                argv[0]);
        return 2;
    }
    encrypt = strcmp(argv[2], "encrypt") == 0;
    if (strcmp(argv[5], "sha1") == 0) {
        oaep.hashAlg = CKM_SHA_1;
        oaep.mgf = CKG_MGF1_SHA1;
    }
    in_len = read_file(argv[6], in, sizeof(in));
    if (in_len == 0) {
        fprintf(stderr, "ocicrypt_client: cannot read %s\n", argv[6]);
        return 2;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "ocicrypt_client: %s\n", dlerror());
        return 1;
    }
    *(void **)&get = dlsym(lib, "C_GetFunctionList");
    fn = "C_GetFunctionList";
    rv = get != NULL ? get(&p) : CKR_GENERAL_ERROR;
    if (rv != CKR_OK) {
        return die(rv);
    }
    fn = "C_Initialize";
    if ((rv = p->C_Initialize(&init)) != CKR_OK) {
        return die(rv);
    }
    fn = "find token";
    if ((rv = find_slot(p, argv[3], &slot)) != CKR_OK) {
        return die(rv);
    }
    fn = "C_OpenSession";
    rv = p->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                          &s);
    if (rv != CKR_OK) {
        return die(rv);
    }
    /* ocicrypt refuses a private-key URI without pin-value and logs in. */
    fn = "C_Login";
    rv = p->C_Login(s, CKU_USER, (CK_UTF8CHAR *)"1234", 4);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        return die(rv);
    }
    cls = encrypt ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;
    tmpl[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    tmpl[1] = (CK_ATTRIBUTE){CKA_LABEL, argv[4], strlen(argv[4])};
    fn = "C_FindObjects";
    rv = p->C_FindObjectsInit(s, tmpl, 2);
    if (rv == CKR_OK) {
        rv = p->C_FindObjects(s, keys, 4, &found);
    }
    if (rv == CKR_OK) {
        rv = p->C_FindObjectsFinal(s);
    }
    if (rv != CKR_OK) {
        return die(rv);
    }
    if (found != 1) {
        fprintf(stderr,
                "ocicrypt_client: %lu objects with label %s (need exactly "
                "one)\n",
                (unsigned long)found, argv[4]);
        return 1;
    }
    if (encrypt) {
        fn = "C_EncryptInit";
        rv = p->C_EncryptInit(s, &mech, keys[0]);
        fn = rv == CKR_OK ? "C_Encrypt" : fn;
        if (rv == CKR_OK) {
            rv = p->C_Encrypt(s, in, (CK_ULONG)in_len, out, &out_len);
        }
    } else {
        fn = "C_DecryptInit";
        rv = p->C_DecryptInit(s, &mech, keys[0]);
        fn = rv == CKR_OK ? "C_Decrypt" : fn;
        if (rv == CKR_OK) {
            rv = p->C_Decrypt(s, in, (CK_ULONG)in_len, out, &out_len);
        }
    }
    if (rv != CKR_OK) {
        return die(rv);
    }
    (void)p->C_Logout(s);
    (void)p->C_CloseSession(s);
    fn = "C_Finalize";
    if ((rv = p->C_Finalize(NULL)) != CKR_OK) {
        return die(rv);
    }
    dlclose(lib);
    f = fopen(argv[7], "wb");
    if (f == NULL || fwrite(out, 1, out_len, f) != out_len) {
        fprintf(stderr, "ocicrypt_client: cannot write %s\n", argv[7]);
        return 1;
    }
    fclose(f);
    return 0;
}
