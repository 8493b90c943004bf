/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File and folder rules for everything the module reads or writes on an
 * operator's say-so (the configuration file, client_secret_file,
 * certificate_file, the log.target file, store_dir, its records and lock
 * file), modelled on OpenSSH's StrictModes (secure_filename / safe_path in
 * OpenSSH's auth.c / misc.c):
 *
 *  file   - a regular file, owned by the process's effective uid or by
 *           root, not writable by group or other (mode & 022 == 0), opened
 *           with O_NOFOLLOW (a symlink as the last component is refused)
 *           and judged by fstat of the opened descriptor, never the path,
 *           so nothing can be swapped between the check and the use.
 *  folder - every folder from the file's folder up to "/" is owned by the
 *           effective uid or root and not writable by group or other: who
 *           can write a folder can rename the file away and put their own
 *           in its place. Both the canonical path (realpath, what OpenSSH
 *           walks) and the path as written are walked, so a folder that
 *           only holds a symlink named in the path is judged as well.
 *  sticky - unlike OpenSSH, a group/other-writable folder with the sticky
 *           bit (/tmp, mode 1777) is accepted when it is owned by the uid
 *           or root: there only an entry's owner (or the folder's owner, or
 *           root) can rename or remove it, and the entry below it is held
 *           to the owner rule itself. OpenSSH refuses /tmp outright; doing
 *           so here would refuse every mktemp -d setup for no gain.
 *
 * A refusal is one line naming the path, the rule broken (owner uid,
 * mode, symlink) and the command that fixes it, for the caller to log at
 * the default (ERROR) level. Group membership is not considered (the
 * Debian "group holds only the owner" relaxation is not made).
 */
#ifndef AKV_COMMON_FSPERM_H
#define AKV_COMMON_FSPERM_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Return values of akv_fsperm_open / akv_fsperm_openat (a descriptor >= 0
 * on success). */
#define AKV_FSPERM_ERR_IO    (-1) /* open/stat failed; errno is kept */
#define AKV_FSPERM_ERR_RULES (-2) /* a rule above is broken */

/*
 * akv_fsperm_check_file - the file rule on ST (from fstat of an open
 * descriptor). PATH names the file in the message only. Returns 0, or
 * AKV_FSPERM_ERR_RULES with "PATH: RULE; fix: COMMAND" in err (err_len
 * bytes, always NUL-terminated when err_len > 0).
 */
int akv_fsperm_check_file(const struct stat *st, const char *path, char *err,
                          size_t err_len);

/*
 * akv_fsperm_check_dir_stat - the folder rule on ST (a folder's stat).
 * Returns 0 or AKV_FSPERM_ERR_RULES (message as above, about folder PATH).
 */
int akv_fsperm_check_dir_stat(const struct stat *st, const char *path,
                              char *err, size_t err_len);

/*
 * akv_fsperm_check_dirs - the folder rule on folder DIR itself and on every
 * folder above it (canonical and as written). Returns 0,
 * AKV_FSPERM_ERR_RULES (message names the first bad folder), or
 * AKV_FSPERM_ERR_IO when a folder cannot be resolved or stat'ed (message
 * with the errno text; errno kept).
 */
int akv_fsperm_check_dirs(const char *dir, char *err, size_t err_len);

/*
 * akv_fsperm_open - open(2) of PATH with FLAGS (O_RDONLY, or O_WRONLY |
 * O_APPEND | O_CREAT ...; MODE for O_CREAT) plus O_NOFOLLOW | O_CLOEXEC |
 * O_NOCTTY, then the file rule on the opened descriptor and the folder rule
 * on every folder above PATH. A FIFO cannot block the open (it is opened
 * non-blocking and refused as not a regular file). Returns the descriptor
 * (blocking mode, caller closes), AKV_FSPERM_ERR_IO (cannot open, e.g.
 * ENOENT; errno kept; message "PATH: ERRNO TEXT") or AKV_FSPERM_ERR_RULES
 * (message as akv_fsperm_check_file); on an error nothing stays open.
 */
int akv_fsperm_open(const char *path, int flags, mode_t mode, char *err,
                    size_t err_len);

/*
 * akv_fsperm_openat - as akv_fsperm_open for NAME (no '/') inside an
 * already opened and checked folder DIR_FD; only the file rule is applied.
 * DIR names the folder in messages.
 */
int akv_fsperm_openat(int dir_fd, const char *dir, const char *name, int flags,
                      mode_t mode, char *err, size_t err_len);

#endif /* AKV_COMMON_FSPERM_H */
