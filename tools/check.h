/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-pkcs11-tool check: proves, before a registry depends on it, the path
 * the module will take for every token and key, in the order it fails
 * (tools/README.md "check"): configuration file and permissions
 * (common/fsperm.h), vault reachable (DNS, TCP, TLS and its CA), credential
 * (type, identity, token obtained), Key Vault "Get Key", "Wrap Key" of
 * random bytes, "Unwrap Key" of them with the same version and comparison,
 * key attributes (enabled, nbf/exp, key_ops), rotation state (current
 * version, the versions the token knows: store_dir/.versions, token/rotate.h)
 * and the store (readable, records authenticated: token/store.h,
 * token/seal.h). Each check prints one line: OK, FAIL (cause in words and
 * the fix) or SKIP (a check it depends on failed; not counted).
 */
#ifndef AKV_TOOLS_CHECK_H
#define AKV_TOOLS_CHECK_H

#include <stdbool.h>

#include "common/config.h"

/* Largest exit status of `check` (= number of failures, capped). */
#define AKV_CHECK_MAX_FAILS 100

/*
 * akv_check_run - runs every check for the configuration at PATH (the path
 * the module would use; never NULL) or only for token ONLY_TOKEN (NULL =
 * all). JSON: print one document on stdout instead of lines. Never reads
 * the cross-process cache. Returns the number of failed checks, capped at
 * AKV_CHECK_MAX_FAILS (0 = everything works).
 */
int akv_check_run(const char *path, const char *only_token, bool json);

#endif /* AKV_TOOLS_CHECK_H */
