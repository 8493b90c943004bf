/* SPDX-License-Identifier: Apache-2.0 */
/* keyvault/errmap.c: every row of kv.h's error contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keyvault/errmap.h"

static void test_rows(void **state)
{
    static const struct {
        enum akv_errmap_op op;
        long status;
        const char *code;
        const char *inner;
        CK_RV want;
    } rows[] = {
        {AKV_ERRMAP_UNWRAP, 400, "BadParameter", NULL, CKR_WRAPPED_KEY_INVALID},
        {AKV_ERRMAP_WRAP, 400, "BadParameter", NULL, CKR_GENERAL_ERROR},
        {AKV_ERRMAP_GET, 400, "BadParameter", NULL, CKR_GENERAL_ERROR},
        /* Managed HSM encrypt/decrypt: wrong tag/size -> data refused */
        {AKV_ERRMAP_DECRYPT, 400, "BadParameter", NULL,
         CKR_ENCRYPTED_DATA_INVALID},
        {AKV_ERRMAP_ENCRYPT, 400, "BadParameter", NULL, CKR_DATA_INVALID},
        {AKV_ERRMAP_DECRYPT, 403, "Forbidden", "ForbiddenByRbac",
         CKR_KEY_FUNCTION_NOT_PERMITTED},
        {AKV_ERRMAP_UNWRAP, 400, "", NULL, CKR_GENERAL_ERROR},
        {AKV_ERRMAP_GET, 401, "Unauthorized", NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_UNWRAP, 403, "Forbidden", "AccessDenied",
         CKR_KEY_FUNCTION_NOT_PERMITTED},
        {AKV_ERRMAP_WRAP, 403, "Forbidden", "ForbiddenByRbac",
         CKR_KEY_FUNCTION_NOT_PERMITTED},
        {AKV_ERRMAP_UNWRAP, 403, "Forbidden", "KeyDisabled",
         CKR_KEY_FUNCTION_NOT_PERMITTED},
        {AKV_ERRMAP_GET, 403, NULL, NULL, CKR_KEY_FUNCTION_NOT_PERMITTED},
        {AKV_ERRMAP_GET, 404, "KeyNotFound", NULL, CKR_KEY_HANDLE_INVALID},
        {AKV_ERRMAP_UNWRAP, 404, NULL, NULL, CKR_KEY_HANDLE_INVALID},
        {AKV_ERRMAP_GET, 409, "Conflict", "ObjectIsBeingDeleted",
         CKR_KEY_HANDLE_INVALID},
        {AKV_ERRMAP_GET, 409, "Conflict", "ObjectIsDeletedButRecoverable",
         CKR_KEY_HANDLE_INVALID},
        /* Create Key on a deleted key's name: the label cannot be used */
        {AKV_ERRMAP_CREATE, 409, "Conflict", "ObjectIsDeletedButRecoverable",
         CKR_ATTRIBUTE_VALUE_INVALID},
        {AKV_ERRMAP_WRAP, 409, "Conflict", NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_WRAP, 408, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_WRAP, 429, "Throttled", NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_UNWRAP, 500, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_UNWRAP, 503, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_UNWRAP, 501, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_GET, 0, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_GET, 405, NULL, NULL, CKR_GENERAL_ERROR},
        {AKV_ERRMAP_GET, 413, NULL, NULL, CKR_GENERAL_ERROR},
        {AKV_ERRMAP_GET, 302, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_TOKEN, 400, "invalid_client", NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_TOKEN, 403, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_TOKEN, 404, NULL, NULL, CKR_DEVICE_ERROR},
        {AKV_ERRMAP_GET, 200, NULL, NULL, CKR_GENERAL_ERROR},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        CK_RV rv = akv_errmap_rv(rows[i].op, rows[i].status, rows[i].code,
                                 rows[i].inner);
        if (rv != rows[i].want) {
            fail_msg("row %zu: status %ld -> 0x%lx, want 0x%lx", i,
                     rows[i].status, (unsigned long)rv,
                     (unsigned long)rows[i].want);
        }
    }
}

static void test_op_names(void **state)
{
    (void)state;
    assert_string_equal(akv_errmap_op_name(AKV_ERRMAP_GET), "get");
    assert_string_equal(akv_errmap_op_name(AKV_ERRMAP_WRAP), "wrapkey");
    assert_string_equal(akv_errmap_op_name(AKV_ERRMAP_UNWRAP), "unwrapkey");
    assert_string_equal(akv_errmap_op_name(AKV_ERRMAP_TOKEN), "token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_op_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
