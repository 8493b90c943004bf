/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base64url (RFC 4648 §5) as Key Vault uses it for every binary JSON field
 * (keys.json "format: base64url"): the module sends unpadded text and accepts
 * padded or unpadded text on input. Standard-base64 characters ('+', '/')
 * are rejected, as the service itself rejects them.
 */
#ifndef AKV_COMMON_B64URL_H
#define AKV_COMMON_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* akv_b64url_encoded_len - characters (excluding NUL) that encoding LEN
 * bytes produces without padding. */
size_t akv_b64url_encoded_len(size_t len);

/*
 * akv_b64url_encode - encodes IN (IN_LEN bytes) into OUT without padding
 * (RFC 4648 §5 with the §3.2 padding omitted). OUT_LEN: capacity of OUT in
 * bytes; must be at least akv_b64url_encoded_len(IN_LEN) + 1 (for the NUL).
 * Returns the number of characters written (excluding NUL), or -1 when OUT
 * is too small (OUT is then untouched).
 */
long akv_b64url_encode(const uint8_t *in, size_t in_len, char *out,
                       size_t out_len);

/*
 * akv_b64url_decode - decodes IN_LEN characters of base64url (padding '='
 * optional but, when present, must be correct and only at the end) into
 * OUT (capacity OUT_LEN bytes; (IN_LEN * 3) / 4 + 1 is always enough).
 * Rejects characters outside [A-Za-z0-9_-], a length of 4k+1, and non-zero
 * trailing bits (non-canonical text). Returns the number of bytes written,
 * or -1 on invalid input or when OUT is too small. OUT may hold partial
 * output on failure; callers holding secrets must wipe it.
 */
long akv_b64url_decode(const char *in, size_t in_len, uint8_t *out,
                       size_t out_len);

#endif /* AKV_COMMON_B64URL_H */
