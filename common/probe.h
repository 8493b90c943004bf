/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading a caller's pointer that may not point at readable memory, without
 * faulting: C_Initialize's pReserved is a free-form CK_VOID_PTR (v3.0
 * §5.4.1: "reserved for future versions"; p11-kit passes its
 * x-init-reserved string there), so a host may hand us anything.
 */
#ifndef AKV_COMMON_PROBE_H
#define AKV_COMMON_PROBE_H

#include <stddef.h>

#define AKV_PROBE_STR_MAX 4096 /* longest string accepted, without the NUL */

/*
 * akv_probe_string - copies the NUL-terminated string at P into OUT (OUT_SIZE
 * bytes, at least 1) without ever dereferencing P: every byte is fetched by
 * the kernel (write() into a pipe, see probe.c), which reports EFAULT for an
 * address that is not readable instead of raising SIGSEGV. The string must
 * end within min(OUT_SIZE - 1, AKV_PROBE_STR_MAX) bytes and hold only
 * printable characters: bytes 0x20..0x7e, tab, CR, LF, and bytes >= 0x80
 * (UTF-8 file names). Returns 0 and OUT holds the copy; -1 when P is NULL,
 * not readable up to its NUL, unterminated within the limit, or holds a
 * control byte (OUT is then the empty string); -2 when no pipe could be
 * made (EMFILE: the caller cannot tell, and must refuse the pointer too).
 */
int akv_probe_string(const void *p, char *out, size_t out_size);

#endif /* AKV_COMMON_PROBE_H */
