/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The catalog of vault keys this token created (C_GenerateKeyPair with
 * CKA_TOKEN TRUE, README "Creating keys"): `{store_dir}/.created-keys`, one
 * key name a line after a magic line. Every process of the token reads it
 * at each refresh (a stat when nothing changed), so a key created by one
 * `pkcs11-tool` run is found by the next, and a key deleted by one
 * (C_DestroyObject with allow_delete) disappears from the others. Names
 * are hints, never trusted as such: each is a Key Vault "Get Key" before
 * its objects appear, and a line that is not a key name
 * (akv_kvid_name_ok) is skipped. The file follows the store's StrictModes
 * rule (common/fsperm.h); changes are serialised between processes by
 * flock on `.created-keys.lock` and written atomically (temporary file,
 * fsync, rename). Without store_dir created keys are kept for the life of
 * the process only.
 */
#ifndef AKV_TOKEN_CREATED_H
#define AKV_TOKEN_CREATED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../keyvault/kv.h"

/* Bound on created keys per token (the catalog and the token's key slots). */
#define AKV_CREATED_MAX 64

struct akv_created_list {
    char names[AKV_CREATED_MAX][AKV_KV_NAME_MAX];
    size_t n;
};

/*
 * akv_created_read - the catalog in DIR into OUT when its (mtime, size)
 * differs from *STAMP (updated). Returns 1 when OUT was read (a missing file
 * reads as empty), 0 when unchanged, -1 when the file is refused (logged
 * once per change) - OUT is then empty.
 */
int akv_created_read(const char *dir, uint64_t *stamp,
                     struct akv_created_list *out);

/*
 * akv_created_update - adds (ADD true) or removes NAME in DIR's catalog,
 * atomically and under the catalog lock. Returns 0, or -1 (logged: the
 * key stays usable in this process, other processes do not see the
 * change).
 */
int akv_created_update(const char *dir, const char *name, bool add);

#endif /* AKV_TOKEN_CREATED_H */
