/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token/ refresh timing against a slow kv_fake (issue 8 "Time and the
 * identity endpoint"): a failed first GET of a key is remembered for
 * min(AKV_TOKEN_RETRY_S, key_refresh_s) counted from when the GET ENDED, so
 * a GET that took longer than that window (the vault black-holed until the
 * HTTP budget ran out) still spares the caller's next search.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "kv_fake.h"
#include "token/object.h"
#include "token/session.h"
#include "token/slot.h"

static struct kv_fake *fake;

static CK_RV factory(const struct akv_token_config *tc, struct akv_kv **out)
{
    (void)tc;
    *out = kv_fake_kv(fake);
    return CKR_OK;
}

static int setup(void **state)
{
    /* key_refresh_s 2: the failure window is min(5, 2) = 2 s. */
    static const char json[] =
        "{\"tokens\":[{\"label\":\"t\",\"vault_url\":"
        "\"https://fake.vault.azure.net\",\"keys\":[{\"name\":\"cmk\"}],"
        "\"credential\":{\"type\":\"managed_identity\"},"
        "\"key_refresh_s\":2}]}";
    struct akv_config *cfg = NULL;
    char err[256] = "";

    (void)state;
    fake = kv_fake_new();
    kv_fake_add_rsa(fake, "cmk", AKV_KV_OP_WRAPKEY | AKV_KV_OP_UNWRAPKEY);
    if (akv_config_parse(json, strlen(json), "test", &cfg, err, sizeof(err))
        != 0) {
        return -1;
    }
    return akv_slot_init(cfg, factory) == CKR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    (void)akv_slot_finalize();
    kv_fake_free(fake);
    fake = NULL;
    return 0;
}

/* The failing GET takes 2.2 s, longer than the 2 s window: stamped at its
 * start (the old code), the failure had expired when it returned and the
 * next search paid another 2.2 s GET. */
static void test_failure_remembered_from_its_end(void **state)
{
    CK_SESSION_HANDLE s = 0;

    (void)state;
    assert_int_equal(akv_session_open(0, CKF_SERIAL_SESSION, &s), CKR_OK);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_DEVICE_ERROR);
    kv_fake_delay(fake, KV_FAKE_GET, 2200);
    kv_fake_reset_calls(fake);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1);
    /* libp11's second and third search right after the first */
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_DEVICE_ERROR);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 1);
    /* ... and the vault is asked again once the window has passed. */
    kv_fake_delay(fake, KV_FAKE_GET, 0);
    kv_fake_fail(fake, KV_FAKE_GET, CKR_OK);
    sleep(3);
    assert_int_equal(akv_object_find_init(s, NULL, 0), CKR_OK);
    assert_int_equal(akv_object_find_final(s), CKR_OK);
    assert_int_equal(kv_fake_calls(fake, KV_FAKE_GET), 2);
    (void)akv_session_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failure_remembered_from_its_end,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
