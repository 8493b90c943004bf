/* SPDX-License-Identifier: Apache-2.0 */
/*
 * struct akv_secret: the one container for secret bytes (data keys, access
 * tokens, client secrets, unwrapped values, wrapkey request bodies).
 * Memory is wiped (explicit_bzero, not optimised away) before it is released,
 * on every path, and lives in pages the module maps itself with MADV_DONTDUMP,
 * so core dumps do not hold it where the kernel supports the flag (secret.c
 * says how; docs/SECURITY.md "Secrets in memory").
 */
#ifndef AKV_COMMON_SECRET_H
#define AKV_COMMON_SECRET_H

#include <stddef.h>
#include <stdint.h>

struct akv_secret {
    uint8_t *data; /* NULL when empty; always NUL-terminated when non-NULL */
    size_t len;    /* bytes in use, excluding the terminating NUL */
    size_t cap;    /* bytes allocated, excluding the terminating NUL */
};

#define AKV_SECRET_INIT                                                        \
    {                                                                          \
        NULL, 0, 0                                                             \
    }

/* akv_secret_alloc - makes S hold LEN zero bytes (old content wiped).
 * Returns 0, or -1 on allocation failure (S is then empty). */
int akv_secret_alloc(struct akv_secret *s, size_t len);

/* akv_secret_set - copies LEN bytes from P into S (old content wiped).
 * Returns 0, or -1 on allocation failure (S is then empty). */
int akv_secret_set(struct akv_secret *s, const void *p, size_t len);

/* akv_secret_append - appends LEN bytes, growing geometrically; old buffers
 * are wiped before they are freed. Returns 0, or -1 on allocation failure or
 * when the result would exceed LIMIT bytes (LIMIT 0 = no limit); S keeps its
 * previous content on failure. */
int akv_secret_append(struct akv_secret *s, const void *p, size_t len,
                      size_t limit);

/* akv_secret_read_fd - makes S hold up to LEN bytes read from FD (old
 * content wiped), retrying reads interrupted by a signal (EINTR) and
 * stopping early at end of file or a read error; S->len is then the number
 * of bytes read and S->data is NUL-terminated. For secret-bearing files
 * (keys, client secrets) whose size the caller has already checked.
 * Returns 0, or -1 on allocation failure (S is then empty). */
int akv_secret_read_fd(struct akv_secret *s, int fd, size_t len);

/* akv_secret_clear - wipes and frees; S becomes empty. NULL-safe. */
void akv_secret_clear(struct akv_secret *s);

/* akv_secret_wipe - wipes caller memory with explicit_bzero (NULL-safe). */
void akv_secret_wipe(void *p, size_t len);

/* akv_secret_free_str - wipes a NUL-terminated heap string and frees it. */
void akv_secret_free_str(char *str);

/*
 * akv_secret_wipe_regs - clears the vector registers (x86-64: xmm/ymm, and
 * zmm16-31 with AVX-512; elsewhere a no-op): OpenSSL's AES-NI code leaves
 * round keys there, the dynamic linker's lazy-binding trampoline saves
 * them to the stack, and a core file holds them (measured). The module's
 * entry points call it as they return (module/pkcs11.c).
 */
void akv_secret_wipe_regs(void);

#endif /* AKV_COMMON_SECRET_H */
