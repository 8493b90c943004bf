/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-pkcs11-tool uri: the RFC 7512 "pkcs11:" URI of every object the
 * module shows, and of every older key version the token knows (version
 * catalog store_dir/.versions and the versions that wrap stored objects:
 * the module lists those only for a template naming their CKA_ID,
 * token/README.md "Versions"). The URIs come from the module itself,
 * loaded with dlopen and the same configuration, so they name exactly what
 * OpenSSL's libp11 engine, p11tool and OCI image tooling will find.
 */
#ifndef AKV_TOOLS_URI_H
#define AKV_TOOLS_URI_H

#include <stddef.h>

/*
 * akv_uri_print - loads MODULE (path of akv-pkcs11.so), initialises it
 * with configuration PATH (a private copy with the cross-process cache
 * off), prints one line per object on stdout:
 *   pkcs11:token=T;object=L;id=%xx..;type=private|public|secret-key
 * (RFC 7512 §2.3; every byte of id percent-encoded, other values
 * percent-encoded outside the unreserved set) followed by a tab and a
 * comment (the key version, "older version"). ONLY_TOKEN: only this token
 * label, or NULL. Returns 0, or 1 after printing the reason on stderr.
 */
int akv_uri_print(const char *module, const char *path, const char *only_token);

/*
 * akv_uri_pct - percent-encodes IN (LEN bytes) into OUT (OUT_LEN bytes,
 * NUL-terminated, cut when too small): bytes outside RFC 3986 unreserved
 * (ALPHA / DIGIT / "-" / "." / "_" / "~") become %XX, all of them when
 * ALL is non-zero. Returns the encoded length.
 */
size_t akv_uri_pct(const unsigned char *in, size_t len, int all, char *out,
                   size_t out_len);

#endif /* AKV_TOOLS_URI_H */
