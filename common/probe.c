/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Why write() into a pipe: the kernel copies the bytes with copy_from_user,
 * which fails with EFAULT on an unmapped or PROT_NONE page instead of
 * signalling the process. Alternatives were weighed:
 *   - process_vm_readv on our own pid does the same in one call, but it is
 *     a ptrace-class system call that seccomp profiles commonly deny
 *     (systemd SystemCallFilter=~@debug, some container runtimes,
 *     gVisor), where it would fail with EPERM/ENOSYS and refuse every
 *     valid string;
 *   - mincore/msync only say a page is mapped, not that it is readable
 *     (a PROT_NONE page is mapped);
 *   - a SIGSEGV handler would replace the host's own handler and is not
 *     thread-safe in a library.
 * write() to a pipe is never filtered, needs no privilege, and the read
 * side hands back a private copy, so the string is checked and used from
 * memory we own (another thread cannot change or unmap it in between).
 * The copy goes one byte per write: a longer write could read past the
 * terminating NUL into whatever follows it (harmless for the kernel, but an
 * out-of-bounds read for C and for AddressSanitizer). That costs two system
 * calls per byte, a few milliseconds for the longest string accepted, once
 * per C_Initialize; a one-byte write to a drained pipe never blocks.
 */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static int printable(unsigned char c)
{
    return c >= 0x20 ? c != 0x7f : (c == '\t' || c == '\r' || c == '\n');
}

int akv_probe_string(const void *p, char *out, size_t out_size)
{
    int rc = -1;
    int fds[2] = {-1, -1};
    uintptr_t at = (uintptr_t)p;
    size_t limit;
    size_t got = 0;

    if (out == NULL || out_size == 0) {
        return -1;
    }
    out[0] = '\0';
    limit = out_size - 1 < AKV_PROBE_STR_MAX ? out_size - 1 : AKV_PROBE_STR_MAX;
    if (p == NULL) {
        goto out;
    }
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -2;
        goto out;
    }
    /* Up to LIMIT string bytes plus the NUL. */
    while (got <= limit) {
        unsigned char c = 0;
        ssize_t w;
        ssize_t r;

        do {
            w = write(fds[1], (const void *)(at + got), 1);
        } while (w < 0 && errno == EINTR);
        if (w != 1) {
            goto out; /* EFAULT: not readable */
        }
        do {
            r = read(fds[0], &c, 1);
        } while (r < 0 && errno == EINTR);
        if (r != 1) {
            goto out;
        }
        out[got] = (char)c;
        if (c == '\0') {
            rc = 0;
            goto out;
        }
        if (!printable(c)) {
            goto out;
        }
        got++;
    }
out:
    if (fds[0] >= 0) {
        close(fds[0]);
        close(fds[1]);
    }
    if (rc != 0) {
        memset(out, 0, out_size);
    }
    return rc;
}
