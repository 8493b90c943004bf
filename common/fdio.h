/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whole reads and writes on a file descriptor: read(2)/write(2) may move
 * fewer bytes than asked and may be interrupted by a signal (EINTR); these
 * loop until all LEN bytes moved. One copy for the store, the version
 * catalog and the per-user cache.
 *
 * Follows: POSIX read(2), write(2).
 */
#ifndef AKV_COMMON_FDIO_H
#define AKV_COMMON_FDIO_H

#include <stddef.h>

/* akv_fdio_write_all - writes LEN bytes of P to FD. Returns 0, or -1 on an
 * error or a zero-length write (errno from write(2), or unchanged). */
int akv_fdio_write_all(int fd, const void *p, size_t len);

/* akv_fdio_read_all - reads exactly LEN bytes from FD into P. Returns 0, or
 * -1 on an error or end of file before LEN bytes. */
int akv_fdio_read_all(int fd, void *p, size_t len);

#endif /* AKV_COMMON_FDIO_H */
