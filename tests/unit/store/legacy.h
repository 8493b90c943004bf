/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: writes a record in the legacy format 1 (docs/STORE.md
 * "Record format, version 1") exactly as the module before format 2 did,
 * so tests can build a store "from today's code" and play an attacker who
 * recomputes the CRC. Independent of token/store.c on purpose.
 */
#ifndef AKV_TEST_LEGACY_H
#define AKV_TEST_LEGACY_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

/* Encodes into BUF (CAP bytes); returns the length, 0 if it does not fit. */
static inline size_t legacy_encode(uint8_t *buf, size_t cap,
                                   const uint8_t *attrs, size_t attrs_len,
                                   const char *kid, const char *alg,
                                   const uint8_t *wrapped, size_t wrapped_len)
{
    size_t kl = strlen(kid), al = strlen(alg), n = 0;
    uint32_t crc;

    if (8 + 4 + attrs_len + 2 + kl + 2 + al + 4 + wrapped_len + 4 > cap) {
        return 0;
    }
    memcpy(buf, "AKVOBJ1\n", 8);
    n = 8;
    buf[n++] = (uint8_t)attrs_len;
    buf[n++] = (uint8_t)(attrs_len >> 8);
    buf[n++] = (uint8_t)(attrs_len >> 16);
    buf[n++] = (uint8_t)(attrs_len >> 24);
    memcpy(buf + n, attrs, attrs_len);
    n += attrs_len;
    buf[n++] = (uint8_t)kl;
    buf[n++] = (uint8_t)(kl >> 8);
    memcpy(buf + n, kid, kl);
    n += kl;
    buf[n++] = (uint8_t)al;
    buf[n++] = (uint8_t)(al >> 8);
    memcpy(buf + n, alg, al);
    n += al;
    buf[n++] = (uint8_t)wrapped_len;
    buf[n++] = (uint8_t)(wrapped_len >> 8);
    buf[n++] = (uint8_t)(wrapped_len >> 16);
    buf[n++] = (uint8_t)(wrapped_len >> 24);
    memcpy(buf + n, wrapped, wrapped_len);
    n += wrapped_len;
    crc = (uint32_t)crc32(0L, buf, (uInt)n);
    buf[n++] = (uint8_t)crc;
    buf[n++] = (uint8_t)(crc >> 8);
    buf[n++] = (uint8_t)(crc >> 16);
    buf[n++] = (uint8_t)(crc >> 24);
    return n;
}

/* Writes DIR/ID.obj in format 1. Returns 0 or -1. */
static inline int legacy_write(const char *dir, const char *id,
                               const uint8_t *attrs, size_t attrs_len,
                               const char *kid, const char *alg,
                               const uint8_t *wrapped, size_t wrapped_len)
{
    static uint8_t buf[80 * 1024];
    char path[512];
    size_t n = legacy_encode(buf, sizeof(buf), attrs, attrs_len, kid, alg,
                             wrapped, wrapped_len);
    FILE *fp = NULL;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/%s.obj", dir, id);
    fp = n > 0 ? fopen(path, "wb") : NULL;
    if (fp != NULL) {
        rc = fwrite(buf, 1, n, fp) == n ? 0 : -1;
        rc = fclose(fp) == 0 ? rc : -1;
    }
    return rc;
}

#endif /* AKV_TEST_LEGACY_H */
