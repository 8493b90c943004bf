/* SPDX-License-Identifier: Apache-2.0 */
#include "fdio.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

int akv_fdio_write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;

    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int akv_fdio_read_all(int fd, void *p, size_t len)
{
    uint8_t *b = p;

    while (len > 0) {
        ssize_t n = read(fd, b, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}
