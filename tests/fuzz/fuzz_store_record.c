/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the store readers of token/store.c — the record parser (format
 * 1 and format 2 with its HMAC), the manifest parser, and the AEAD open of
 * token/seal.c on what the parser accepted. Invariants (abort on breach):
 *   - no crash, leak or out-of-bounds access on any input (ASan/UBSan);
 *   - a record that parses has lengths within the documented limits and,
 *     for format 2, a nonzero generation and a sealed value;
 *   - a format-2 image whose trailing HMAC is recomputed with the fuzzer's
 *     store secret (a writer who knows S) either parses or is refused for
 *     its structure, never for its MAC;
 *   - akv_seal_ad of a parsed record is deterministic.
 *
 * Input: byte 0 selects the reader (bit 0: manifest instead of record;
 * bit 1: re-MAC the rest before reading); the rest is the file image.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "common/log.h"
#include "token/seal.h"
#include "token/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[AKV_STORE_SECRET_LEN] = {
    0x5a, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16,   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static struct akv_store *store;
static uint8_t mac_key[2][32];

static void derive(const char *info, uint8_t out[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[4];

    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                            (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)SECRET,
                                             sizeof(SECRET));
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                             strlen(info));
    p[3] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx, out, 32, p) != 1) {
        abort();
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
}

static void init_once(void)
{
    char dir[] = "/tmp/akv-fuzz-store.XXXXXX";

    if (store != NULL) {
        return;
    }
    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    if (mkdtemp(dir) == NULL || akv_store_open(dir, &store) != CKR_OK
        || akv_store_set_secret(store, SECRET, sizeof(SECRET)) != CKR_OK) {
        abort();
    }
    derive("akv-pkcs11 store record v2", mac_key[0]);
    derive("akv-pkcs11 store manifest v2", mac_key[1]);
}

static void check_record(const struct akv_store_record *r)
{
    uint8_t *ad1 = NULL, *ad2 = NULL;
    size_t l1 = 0, l2 = 0;

    if (r->attrs_len > AKV_STORE_ATTRS_MAX || r->wrapped_len == 0
        || r->wrapped_len > 4096 || r->kid == NULL || r->alg == NULL
        || strlen(r->kid) == 0 || strlen(r->kid) > 511 || strlen(r->alg) == 0
        || strlen(r->alg) > 31) {
        abort();
    }
    if (r->format == AKV_STORE_FORMAT_V2
        && (r->generation == 0 || r->sealed_len == 0
            || r->sealed_len > AKV_STORE_SEALED_MAX)) {
        abort();
    }
    if (akv_seal_ad("https://v.vault.azure.net/", r, &ad1, &l1) == CKR_OK
        && akv_seal_ad("https://v.vault.azure.net/", r, &ad2, &l2) == CKR_OK
        && (l1 != l2 || memcmp(ad1, ad2, l1) != 0)) {
        abort();
    }
    free(ad1);
    free(ad2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = NULL;
    size_t len;
    bool manifest, remac;
    struct akv_store_record rec;
    const char *why = "";
    CK_RV rv;

    init_once();
    if (size < 1) {
        return 0;
    }
    manifest = (data[0] & 1) != 0;
    remac = (data[0] & 2) != 0;
    len = size - 1;
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return 0;
    }
    if (len > 0) {
        memcpy(buf, data + 1, len);
    }
    if (remac && len >= 32) {
        unsigned int n = 0;
        HMAC(EVP_sha256(), mac_key[manifest ? 1 : 0], 32, buf, len - 32,
             buf + len - 32, &n);
    }
    if (manifest) {
        size_t entries = 0;
        rv = akv_store_manifest_check(store, buf, len, &entries);
        if (remac && rv == CKR_SIGNATURE_INVALID) {
            abort(); /* a correct MAC was refused */
        }
    } else {
        memset(&rec, 0, sizeof(rec));
        rv = akv_store_parse(store, "rec0", buf, len, &rec, &why);
        if (rv == CKR_OK) {
            check_record(&rec);
        }
        if (remac && rv == CKR_SIGNATURE_INVALID && len >= 8
            && memcmp(buf, "AKVOBJ2\n", 8) == 0 && len >= 9 + 4 && buf[8] == 4
            && memcmp(buf + 9, "rec0", 4) == 0 && strstr(why, "HMAC") != NULL) {
            abort(); /* a correct MAC was refused */
        }
        akv_store_record_clear(&rec);
    }
    free(buf);
    return 0;
}
