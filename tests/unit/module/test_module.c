/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The built akv-pkcs11.so through dlopen and its function lists only:
 * exports, interface discovery (3.0 and 2.40), the C_Initialize matrix,
 * probing calls that must be fast with the vault unreachable, blank-padded
 * info strings, fork behaviour, bad configurations.
 * The module path comes from $AKV_MODULE_PATH (set by CTest).
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "include/pkcs11/akv-pkcs11.h"

static void *lib;
static CK_FUNCTION_LIST_PTR f;
static char cfg_path[64];
static char bad_path[64];
static char init_str[128];

static CK_RV create_mutex(CK_VOID_PTR_PTR m)
{
    *m = NULL;
    return CKR_OK;
}

static CK_RV mutex_op(CK_VOID_PTR m)
{
    (void)m;
    return CKR_OK;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_file(char *path, const char *text)
{
    int fd = mkstemp(path);
    FILE *fp = NULL;

    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int group_setup(void **state)
{
    CK_C_GetFunctionList gfl = NULL;
    const char *path = getenv("AKV_MODULE_PATH");

    (void)state;
    snprintf(cfg_path, sizeof(cfg_path), "/tmp/akv-mod-cfg-XXXXXX");
    /* Port 1 on loopback: connection refused, i.e. an unreachable vault
     * (and identity endpoint) that answers quickly. */
    write_file(cfg_path,
               "{\"tokens\":[{\"label\":\"test-label\","
               "\"vault_url\":\"https://127.0.0.1:1\","
               "\"keys\":[{\"name\":\"cmk\"}],"
               "\"credential\":{\"type\":\"managed_identity\","
               "\"imds_endpoint\":\"http://127.0.0.1:1/metadata/identity/"
               "oauth2/token\"},"
               "\"http\":{\"timeout_ms\":500,\"budget_ms\":1000,"
               "\"retries\":0}}]}");
    snprintf(bad_path, sizeof(bad_path), "/tmp/akv-mod-bad-XXXXXX");
    write_file(bad_path, "{\"tokens\": [ {\"label\": 12 }");
    snprintf(init_str, sizeof(init_str), "config=%s", cfg_path);
    setenv("AKV_PKCS11_CONFIG", cfg_path, 1);
    if (path == NULL) {
        fprintf(stderr, "AKV_MODULE_PATH not set\n");
        return -1;
    }
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (gfl == NULL || gfl(&f) != CKR_OK) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(cfg_path);
    unlink(bad_path);
    /* -z nodelete: dlclose keeps the module mapped. */
    dlclose(lib);
    return 0;
}

static void test_exports(void **state)
{
    (void)state;
    assert_non_null(dlsym(lib, "C_GetFunctionList"));
    assert_non_null(dlsym(lib, "C_GetInterfaceList"));
    assert_non_null(dlsym(lib, "C_GetInterface"));
    assert_null(dlsym(lib, "C_Initialize"));
    assert_null(dlsym(lib, "C_Decrypt"));
    assert_null(dlsym(lib, "akv_slot_init"));
    assert_null(dlsym(lib, "akv_kv_rest_new"));
}

static void check_all_set(const void *list, size_t bytes)
{
    const unsigned char *p = list;

    for (size_t off = sizeof(CK_VERSION) + 6; off + sizeof(void *) <= bytes;
         off += sizeof(void *)) {
        void *fn = NULL;

        if (off % sizeof(void *) != 0) {
            continue;
        }
        memcpy(&fn, p + off, sizeof(fn));
        assert_non_null(fn);
    }
}

static void test_interfaces(void **state)
{
    CK_C_GetInterfaceList gil =
        (CK_C_GetInterfaceList)dlsym(lib, "C_GetInterfaceList");
    CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
    CK_INTERFACE list[4];
    CK_ULONG n = 0;
    CK_INTERFACE_PTR iface = NULL;
    CK_VERSION v240 = {2, 40};
    CK_VERSION v31 = {3, 1};
    CK_FUNCTION_LIST_3_0_PTR f3;
    CK_VERSION *v;

    (void)state;
    assert_int_equal(gil(NULL, &n), CKR_OK);
    assert_int_equal(n, 2);
    n = 1;
    assert_int_equal(gil(list, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 2);
    assert_int_equal(gil(list, &n), CKR_OK);
    assert_string_equal((char *)list[0].pInterfaceName, "PKCS 11");
    v = list[0].pFunctionList;
    assert_int_equal(v->major, 3);
    assert_int_equal(v->minor, 0);
    v = list[1].pFunctionList;
    assert_int_equal(v->major, 2);
    assert_int_equal(v->minor, 40);
    assert_int_equal(gil(list, NULL), CKR_ARGUMENTS_BAD);

    assert_int_equal(gi(NULL, NULL, &iface, 0), CKR_OK);
    f3 = iface->pFunctionList;
    assert_int_equal(f3->version.major, 3);
    assert_int_equal(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &iface, 0), CKR_OK);
    assert_ptr_equal(iface->pFunctionList, f);
    assert_int_equal(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v31, &iface, 0),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(gi((CK_UTF8CHAR_PTR) "Vendor", NULL, &iface, 0),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(gi(NULL, NULL, &iface, CKF_INTERFACE_FORK_SAFE),
                     CKR_ARGUMENTS_BAD);
    assert_int_equal(gi(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);

    /* Never a NULL pointer in either list. */
    check_all_set(f, sizeof(*f));
    check_all_set(f3, sizeof(*f3));
    assert_int_equal(f->version.major, 2);
    assert_int_equal(f->version.minor, 40);
    /* 3.0-only functions are not supported; like every other entry point
     * they first say the module is not initialised (abuse.null checks
     * CKR_FUNCTION_NOT_SUPPORTED after C_Initialize). */
    assert_int_equal(f3->C_LoginUser(1, CKU_USER, NULL, 0, NULL, 0),
                     CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f3->C_SessionCancel(1, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f3->C_MessageEncryptInit(1, NULL, 0),
                     CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f3->C_MessageVerifyFinal(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_ptr_equal(f3->C_GetInterface, gi);
    assert_ptr_equal(f3->C_Initialize, f->C_Initialize);
    assert_ptr_equal(f3->C_WaitForSlotEvent, f->C_WaitForSlotEvent);
}

static void test_initialize_matrix(void **state)
{
    CK_C_INITIALIZE_ARGS a;
    CK_ULONG n = 0;

    (void)state;
    assert_int_equal(f->C_GetSlotList(CK_FALSE, NULL, &n),
                     CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);

    memset(&a, 0, sizeof(a));
    a.CreateMutex = create_mutex;
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    a.DestroyMutex = mutex_op;
    a.LockMutex = mutex_op;
    a.UnlockMutex = mutex_op;
    assert_int_equal(f->C_Initialize(&a), CKR_CANT_LOCK);
    /* GnuTLS passes CKF_LIBRARY_CANT_CREATE_OS_THREADS: accepted. */
    a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    a.flags = CKF_OS_LOCKING_OK;
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Initialize(&a), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_int_equal(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_int_equal(f->C_Finalize(&a), CKR_ARGUMENTS_BAD);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);

    /* No callbacks, flags 0 / OS locking; NULL args. */
    memset(&a, 0, sizeof(a));
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    a.flags = CKF_OS_LOCKING_OK;
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    assert_int_equal(f->C_Initialize(NULL), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);

    /* The configuration string in pReserved wins over the environment. */
    setenv("AKV_PKCS11_CONFIG", bad_path, 1);
    a.pReserved = init_str;
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    /* Bad configurations: logged, CKR_GENERAL_ERROR, no crash. */
    assert_int_equal(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    setenv("AKV_PKCS11_CONFIG", "/nonexistent/akv.json", 1);
    assert_int_equal(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    assert_int_equal(f->C_GetSlotList(CK_FALSE, NULL, &n),
                     CKR_CRYPTOKI_NOT_INITIALIZED);
    setenv("AKV_PKCS11_CONFIG", cfg_path, 1);
}

static void check_padded(const unsigned char *s, size_t len, const char *expect)
{
    size_t el = expect != NULL ? strlen(expect) : 0;

    for (size_t i = 0; i < len; i++) {
        assert_true(s[i] >= 0x20 && s[i] < 0x7f);
    }
    if (expect != NULL) {
        assert_memory_equal(s, expect, el);
        for (size_t i = el; i < len; i++) {
            assert_int_equal(s[i], ' ');
        }
    }
}

static void test_probe_fast_offline(void **state)
{
    CK_INFO info;
    CK_SLOT_ID slots[4];
    CK_ULONG n = 4;
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s = 0;
    CK_MECHANISM_TYPE mechs[64];
    CK_MECHANISM_INFO mi;
    CK_SESSION_INFO sinfo;
    double t0 = now_s();

    (void)state;
    assert_int_equal(f->C_Initialize(NULL), CKR_OK);
    assert_int_equal(f->C_GetInfo(&info), CKR_OK);
    check_padded(info.manufacturerID, sizeof(info.manufacturerID),
                 "akv-pkcs11");
    check_padded(info.libraryDescription, sizeof(info.libraryDescription),
                 NULL);
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(slots[0], 0);
    assert_int_equal(f->C_GetSlotInfo(0, &si), CKR_OK);
    assert_true(si.flags & CKF_TOKEN_PRESENT);
    check_padded(si.slotDescription, sizeof(si.slotDescription), NULL);
    check_padded(si.manufacturerID, sizeof(si.manufacturerID), "akv-pkcs11");
    assert_int_equal(f->C_GetTokenInfo(0, &ti), CKR_OK);
    check_padded(ti.label, sizeof(ti.label), "test-label");
    check_padded(ti.manufacturerID, sizeof(ti.manufacturerID), "akv-pkcs11");
    check_padded(ti.model, sizeof(ti.model), "Azure Key Vault");
    check_padded(ti.serialNumber, sizeof(ti.serialNumber), NULL);
    for (size_t i = 0; i < 16; i++) {
        assert_non_null(strchr("0123456789ABCDEF", ti.serialNumber[i]));
    }
    assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
    assert_true(ti.flags & CKF_RNG);
    assert_false(ti.flags & CKF_LOGIN_REQUIRED);
    assert_int_equal(f->C_GetTokenInfo(7, &ti), CKR_SLOT_ID_INVALID);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s),
                     CKR_OK);
    assert_int_equal(f->C_GetSessionInfo(s, &sinfo), CKR_OK);
    assert_int_equal(sinfo.state, CKS_RO_PUBLIC_SESSION);
    n = 64;
    assert_int_equal(f->C_GetMechanismList(0, mechs, &n), CKR_OK);
    assert_int_equal(n, 43);
    assert_int_equal(f->C_GetMechanismInfo(0, CKM_RSA_PKCS_OAEP, &mi), CKR_OK);
    assert_int_equal(mi.ulMinKeySize, 2048);
    /* All of that without the network: well under a second. */
    assert_true(now_s() - t0 < 1.0);
    assert_int_equal(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "x", 1), CKR_OK);
    assert_int_equal(f->C_CloseSession(s), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

static void test_local_ops_and_unreachable_vault(void **state)
{
    CK_SESSION_HANDLE s = 0;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len32 = 32;
    CK_ATTRIBUTE t = {CKA_VALUE_LEN, &len32, sizeof(len32)};
    CK_OBJECT_HANDLE k = 0;
    uint8_t iv[16] = {0};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    uint8_t rnd[32] = {0};
    uint8_t zero[32] = {0};
    uint8_t out[64];
    CK_ULONG olen = sizeof(out);

    (void)state;
    assert_int_equal(f->C_Initialize(NULL), CKR_OK);
    assert_int_equal(f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                      NULL, NULL, &s),
                     CKR_OK);
    assert_int_equal(f->C_GenerateRandom(s, rnd, sizeof(rnd)), CKR_OK);
    assert_memory_not_equal(rnd, zero, sizeof(rnd));
    assert_int_equal(f->C_SeedRandom(s, rnd, 4), CKR_RANDOM_SEED_NOT_SUPPORTED);
    assert_int_equal(f->C_GenerateKey(s, &gen, &t, 1, &k), CKR_OK);
    assert_int_equal(f->C_EncryptInit(s, &cbc, k), CKR_OK);
    assert_int_equal(f->C_Encrypt(s, rnd, 20, out, &olen), CKR_OK);
    assert_int_equal(olen, 32);
    assert_int_equal(f->C_SignInit(s, &cbc, k), CKR_MECHANISM_INVALID);
    assert_int_equal(f->C_SignRecoverInit(s, &cbc, k),
                     CKR_FUNCTION_NOT_SUPPORTED);
    assert_int_equal(f->C_InitToken(0, NULL, 0, NULL),
                     CKR_FUNCTION_NOT_SUPPORTED);
    /* The vault is first asked here; unreachable and never fetched. */
    assert_int_equal(f->C_FindObjectsInit(s, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(f->C_CloseAllSessions(0), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* pReserved that is not a readable, NUL-terminated, printable string of sane
 * length: CKR_ARGUMENTS_BAD, never a crash (v3.0 §5.4.1). */
static void test_initialize_garbage_reserved(void **state)
{
    CK_C_INITIALIZE_ARGS a;
    long ps = sysconf(_SC_PAGESIZE);
    char *pages = mmap(NULL, 2 * (size_t)ps, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *cross = NULL;
    char *big = malloc(1024 * 1024);
    char ctl[] = "config=/tmp/\x01x";
    size_t tl = strlen(init_str);

    (void)state;
    assert_true(pages != MAP_FAILED);
    assert_non_null(big);
    assert_int_equal(mprotect(pages + ps, (size_t)ps, PROT_NONE), 0);
    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK;
    a.pReserved = (void *)1;
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    a.pReserved = pages + ps;
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    /* The whole config= string, its NUL falling on the PROT_NONE page. */
    cross = pages + ps - tl;
    memcpy(cross, init_str, tl);
    a.pReserved = cross;
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    memset(big, 'c', 1024 * 1024);
    a.pReserved = big;
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    a.pReserved = ctl;
    assert_int_equal(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    /* Nothing was initialised by the refused calls. */
    assert_int_equal(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* The same string one byte earlier, so its NUL is readable: fine. */
    memmove(cross - 1, init_str, tl + 1);
    a.pReserved = cross - 1;
    assert_int_equal(f->C_Initialize(&a), CKR_OK);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
    free(big);
    munmap(pages, 2 * (size_t)ps);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* C_Finalize releases every descriptor the module opened, the log file
 * included (v3.0 §5.4.2), over many cycles. */
static void test_finalize_releases_fds(void **state)
{
    char log_cfg[64];
    char log_file[64];
    char json[1024];
    CK_C_INITIALIZE_ARGS a;
    char reserved[128];
    CK_SESSION_HANDLE s = 0;
    int before;
    int fd;

    (void)state;
    snprintf(log_file, sizeof(log_file), "/tmp/akv-mod-log-XXXXXX");
    fd = mkstemp(log_file);
    assert_true(fd >= 0);
    close(fd);
    snprintf(json, sizeof(json),
             "{\"log\":{\"level\":\"debug\",\"target\":\"%s\"},"
             "\"tokens\":[{\"label\":\"t\","
             "\"vault_url\":\"https://127.0.0.1:1\","
             "\"keys\":[{\"name\":\"cmk\"}],"
             "\"credential\":{\"type\":\"managed_identity\","
             "\"imds_endpoint\":\"http://127.0.0.1:1/x\"}}]}",
             log_file);
    snprintf(log_cfg, sizeof(log_cfg), "/tmp/akv-mod-lcfg-XXXXXX");
    write_file(log_cfg, json);
    snprintf(reserved, sizeof(reserved), "config=%s", log_cfg);
    memset(&a, 0, sizeof(a));
    a.pReserved = reserved;
    before = count_fds();
    for (int i = 0; i < 50; i++) {
        assert_int_equal(f->C_Initialize(&a), CKR_OK);
        assert_true(count_fds() > before); /* the log file is open */
        assert_int_equal(
            f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
        assert_int_equal(f->C_Finalize(NULL), CKR_OK);
        assert_int_equal(count_fds(), before);
    }
    unlink(log_cfg);
    /* A C_Initialize that fails after opening the log closes it too. */
    snprintf(json, sizeof(json),
             "{\"log\":{\"level\":\"debug\",\"target\":\"%s\"},"
             "\"tokens\":[{\"label\":\"t\","
             "\"vault_url\":\"https://127.0.0.1:1\","
             "\"keys\":[{\"name\":\"cmk\"}],"
             "\"store_dir\":\"/dev/null/store\","
             "\"credential\":{\"type\":\"managed_identity\","
             "\"imds_endpoint\":\"http://127.0.0.1:1/x\"}}]}",
             log_file);
    snprintf(log_cfg, sizeof(log_cfg), "/tmp/akv-mod-lcfg-XXXXXX");
    write_file(log_cfg, json);
    snprintf(reserved, sizeof(reserved), "config=%s", log_cfg);
    for (int i = 0; i < 5; i++) {
        assert_int_not_equal(f->C_Initialize(&a), CKR_OK);
        assert_int_equal(count_fds(), before);
    }
    unlink(log_cfg);
    unlink(log_file);
}

static void test_fork_child(void **state)
{
    pid_t pid;
    int status = 0;
    CK_ULONG n = 0;

    (void)state;
    assert_int_equal(f->C_Initialize(NULL), CKR_OK);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int code = 0;

        if (f->C_GetSlotList(CK_FALSE, NULL, &n)
            != CKR_CRYPTOKI_NOT_INITIALIZED) {
            code = 1;
        } else if (f->C_Initialize(NULL) != CKR_OK) {
            code = 2;
        } else if (f->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n != 1) {
            code = 3;
        } else if (f->C_Finalize(NULL) != CKR_OK) {
            code = 4;
        }
        _exit(code);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent is unaffected. */
    assert_int_equal(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exports),
        cmocka_unit_test(test_interfaces),
        cmocka_unit_test(test_initialize_matrix),
        cmocka_unit_test(test_probe_fast_offline),
        cmocka_unit_test(test_local_ops_and_unreachable_vault),
        cmocka_unit_test(test_initialize_garbage_reserved),
        cmocka_unit_test(test_finalize_releases_fds),
        cmocka_unit_test(test_fork_child),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
