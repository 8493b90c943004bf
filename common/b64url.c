/* SPDX-License-Identifier: Apache-2.0 */
#include "b64url.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t akv_b64url_encoded_len(size_t len)
{
    return (len / 3) * 4 + ((len % 3) == 0 ? 0 : (len % 3) + 1);
}

long akv_b64url_encode(const uint8_t *in, size_t in_len, char *out,
                       size_t out_len)
{
    size_t need = akv_b64url_encoded_len(in_len);
    size_t o = 0;
    size_t i = 0;

    if (out == NULL || (in == NULL && in_len > 0) || out_len < need + 1
        || need > (size_t)0x7fffffff) {
        return -1;
    }
    for (; i + 2 < in_len; i += 3) {
        uint32_t v =
            ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (in_len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
    } else if (in_len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (long)o;
}

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

long akv_b64url_decode(const char *in, size_t in_len, uint8_t *out,
                       size_t out_len)
{
    size_t o = 0;
    size_t n = in_len;
    uint32_t acc = 0;
    int bits = 0;

    if (in == NULL && in_len > 0) {
        return -1;
    }
    if (n > (size_t)0x7fffffff) {
        return -1;
    }
    /* Padding is optional, but when present it must complete a quantum. */
    if (n > 0 && in[n - 1] == '=') {
        size_t pad = 1;
        if (n > 1 && in[n - 2] == '=') {
            pad = 2;
        }
        if (n % 4 != 0) {
            return -1;
        }
        n -= pad;
        /* "xx==" and "xxx=" only: one pad char means 3 data chars. */
        if ((pad == 2 && n % 4 != 2) || (pad == 1 && n % 4 != 3)) {
            return -1;
        }
    }
    if (n % 4 == 1) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int v = value_of(in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= out_len) {
                return -1;
            }
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1u;
        }
    }
    /* Leftover bits must be zero, else two texts decode to the same bytes. */
    if (acc != 0) {
        return -1;
    }
    return (long)o;
}
