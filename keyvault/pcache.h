/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-user cache shared by processes (registry scale: OCI image tooling
 * loads the module, does one decrypt and unloads it, once per image layer).
 * It keeps what a previous process of the same user learnt - the access
 * token and Key Vault "Get Key" answers - so a cold start makes only the
 * vault call its operation needs. Revocation is unaffected: every unwrap,
 * decrypt and remote wrap is still a vault call.
 *
 * One file per entry in a folder the user alone can use: the folder is
 * created 0700 and must be owned by the effective uid and not accessible to
 * group/other; each file is 0600, owned by the uid, a regular file opened
 * without following symlinks. Writes are temp file + rename, so a reader
 * sees an old or a new entry, never a torn one. An entry that fails any
 * check is ignored (and replaced by the next store), never trusted: the
 * callers parse and validate its content exactly like a network answer
 * (a token: akv_json_token_ok; a Get Key answer that fails a check is
 * removed and the vault asked). Entries carry no MAC: only this user can
 * write here, and a key that user can read adds nothing against them
 * (docs/SECURITY.md, "Red team round").
 *
 * Entry file "<kind>-<16 hex of FNV-1a-64(desc)>", little-endian:
 *   "AKVPC1\n\0" | u32 desc_len | desc | u64 stamp | u32 len | len bytes
 * The full DESC in the file is compared exactly, so a name collision can
 * only miss, never serve another entry (no crypto is needed for the name:
 * the folder's owner checks, not the name, keep others out). STAMP is the
 * caller's (wall-clock seconds the content was obtained).
 */
#ifndef AKV_KEYVAULT_PCACHE_H
#define AKV_KEYVAULT_PCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/secret.h"

#define AKV_PCACHE_MAX      ((size_t)64 * 1024) /* content bytes per entry */
#define AKV_PCACHE_DESC_MAX ((size_t)4096)      /* bytes of DESC */

/*
 * akv_pcache_default_dir - the default cache folder for this process:
 * $XDG_RUNTIME_DIR/akv-pkcs11 (a per-user tmpfs on systemd hosts: the
 * token never reaches a disk) when set and absolute, else
 * $HOME/.cache/akv-pkcs11, else the passwd home's .cache/akv-pkcs11.
 * The environment is read with secure_getenv (ignored in setuid/setgid
 * programs). Returns a heap string (caller frees) or NULL when there is no
 * usable home.
 */
char *akv_pcache_default_dir(void);

/*
 * akv_pcache_load - reads the entry KIND/DESC from DIR into OUT (a secret
 * buffer: the caller clears it) and its stamp into *STAMP.
 *   kind: a short [a-z] word ("token", "key"); desc: the entry's identity
 *   (any bytes, e.g. vault URL + key name), hashed into the file name.
 * Returns 0 on success; -1 when there is no valid entry (absent, folder or
 * file failing the ownership/mode checks - logged once at WARN -, wrong
 * digest, bad length, I/O error), leaving OUT empty.
 */
int akv_pcache_load(const char *dir, const char *kind, const char *desc,
                    struct akv_secret *out, int64_t *stamp);

/*
 * akv_pcache_store - writes DATA (LEN bytes, at most AKV_PCACHE_MAX) as the
 * entry KIND/DESC with STAMP, creating DIR (0700) when missing. Best
 * effort: returns 0 on success, -1 on any failure (logged at DEBUG; the
 * temp file is removed and wiped buffers are never left behind).
 */
int akv_pcache_store(const char *dir, const char *kind, const char *desc,
                     const void *data, size_t len, int64_t stamp);

/* akv_pcache_remove - deletes the entry KIND/DESC (e.g. a token the service
 * refused). Best effort. */
void akv_pcache_remove(const char *dir, const char *kind, const char *desc);

#endif /* AKV_KEYVAULT_PCACHE_H */
