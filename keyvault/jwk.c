/* SPDX-License-Identifier: Apache-2.0 */
#include "jwk.h"

#include <openssl/obj_mac.h>
#include <string.h>

#include "../common/log.h"
#include "../common/ossl.h"

#define RSA_E_MAX_BYTES 4 /* e <= 2^32 - 1 */

/* Bits in a minimal big-endian number of LEN bytes (B[0] != 0). */
static size_t bit_len(const uint8_t *b, size_t len)
{
    size_t bits;
    uint8_t top;

    if (len == 0) {
        return 0;
    }
    top = b[0];
    bits = (len - 1) * 8;
    while (top != 0) {
        bits++;
        top >>= 1;
    }
    return bits;
}

static CK_RV check_rsa(const struct akv_kv_key *k, char *why, size_t why_len)
{
    size_t bits = bit_len(k->n, k->n_len);
    const uint8_t *e = k->e;
    size_t e_len = k->e_len;
    unsigned long ev = 0;

    if (k->n == NULL || k->n_len == 0 || k->n[0] == 0) {
        akv_log_fmt(why, why_len, "RSA modulus missing or not minimal");
        return CKR_DEVICE_ERROR;
    }
    if (bits < AKV_JWK_RSA_MIN_BITS || bits > AKV_JWK_RSA_MAX_BITS) {
        akv_log_fmt(why, why_len,
                    "RSA modulus of %zu bits (Key Vault holds %d..%d)", bits,
                    AKV_JWK_RSA_MIN_BITS, AKV_JWK_RSA_MAX_BITS);
        return CKR_DEVICE_ERROR;
    }
    if ((k->n[k->n_len - 1] & 1) == 0) {
        akv_log_fmt(why, why_len, "RSA modulus is even");
        return CKR_DEVICE_ERROR;
    }
    while (e_len > 0 && e[0] == 0) {
        e++;
        e_len--;
    }
    if (e == NULL || e_len == 0 || e_len > RSA_E_MAX_BYTES) {
        akv_log_fmt(why, why_len,
                    "RSA public exponent of %zu bytes (1..%d expected)", e_len,
                    RSA_E_MAX_BYTES);
        return CKR_DEVICE_ERROR;
    }
    for (size_t i = 0; i < e_len; i++) {
        ev = ev << 8 | e[i];
    }
    if (ev < 3 || (ev & 1) == 0) {
        akv_log_fmt(why, why_len,
                    "RSA public exponent %lu (an odd number >= 3 expected)",
                    ev);
        return CKR_DEVICE_ERROR;
    }
    return CKR_OK;
}

static CK_RV check_ec(const struct akv_kv_key *k, char *why, size_t why_len)
{
    static const struct {
        const char *crv;
        int nid;
        size_t len;
    } curves[] = {
        {"P-256", NID_X9_62_prime256v1, 32},
        {"P-384", NID_secp384r1, 48},
        {"P-521", NID_secp521r1, 66},
        {"P-256K", NID_secp256k1, 32},
    };
    CK_RV rv = CKR_DEVICE_ERROR;
    unsigned char oct[1 + 2 * 66];
    int nid = NID_undef;

    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(k->crv, curves[i].crv) == 0 && k->ec_len == curves[i].len) {
            nid = curves[i].nid;
        }
    }
    if (nid == NID_undef) {
        akv_log_fmt(why, why_len, "EC curve \"%s\" with %zu-byte coordinates",
                    k->crv, k->ec_len);
        goto out;
    }
    oct[0] = 0x04; /* uncompressed: 0x04 || X || Y (SEC 1 §2.3.3) */
    memcpy(oct + 1, k->ec_x, k->ec_len);
    memcpy(oct + 1 + k->ec_len, k->ec_y, k->ec_len);
    if (!akv_ossl_ec_point_ok(nid, oct, 1 + 2 * k->ec_len)) {
        akv_log_fmt(why, why_len, "EC public point is not on curve %s", k->crv);
        goto out;
    }
    rv = CKR_OK;
out:
    return rv;
}

CK_RV akv_jwk_check(const struct akv_kv_key *k, char *why, size_t why_len)
{
    akv_log_fmt(why, why_len, "%s", "");
    if (k == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    switch (k->kty) {
    case AKV_KV_KTY_RSA:
        return check_rsa(k, why, why_len);
    case AKV_KV_KTY_EC:
        return check_ec(k, why, why_len);
    default:
        return CKR_OK;
    }
}
