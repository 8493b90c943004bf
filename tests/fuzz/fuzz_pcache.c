/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the per-user cache reader (keyvault/pcache.c akv_pcache_load)
 * on a planted or corrupted entry file, and what its callers do with the
 * content (keyvault/json.c: the Get Key answer parser, the bearer-token
 * rule). Invariants (abort on breach):
 *   - no crash, leak or out-of-bounds access on any file image;
 *   - an entry is accepted only when its image is exactly
 *     magic | u32 desc_len | desc | u64 stamp | u32 len | len bytes with the
 *     DESC asked for and 1 <= len <= AKV_PCACHE_MAX, and then the content
 *     returned is those LEN bytes and the stamp those 8;
 *   - a refused entry leaves the output empty.
 *
 * Input: byte 0 bit 0 selects the entry kind ("key" or "token"); the rest
 * is the entry file's image, written 0600 where the real entry lives.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "keyvault/json.h"
#include "keyvault/pcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DESC "https://v.vault.azure.net/keys/cmk?api-version=7.4"

static char dir[64];
static char path[2][600]; /* the "key" and "token" entry files */

/* The scratch folder goes when libFuzzer exits. */
static void cleanup(void)
{
    unlink(path[0]);
    unlink(path[1]);
    rmdir(dir);
}

/* Creates the private folder and one real entry of each kind, and notes
 * their file names (the FNV name rule stays pcache.c's). */
static void init(void)
{
    static const char *kinds[2] = {"key", "token"};
    DIR *d;
    struct dirent *e;

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    snprintf(dir, sizeof(dir), "/tmp/akv-fuzz-pcache.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    for (int k = 0; k < 2; k++) {
        if (akv_pcache_store(dir, kinds[k], DESC, "x", 1, 1) != 0) {
            abort();
        }
        d = opendir(dir);
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, kinds[k], strlen(kinds[k])) == 0
                && e->d_name[strlen(kinds[k])] == '-') {
                snprintf(path[k], sizeof(path[k]), "%s/%s", dir, e->d_name);
            }
        }
        if (d != NULL) {
            closedir(d);
        }
        if (path[k][0] == '\0') {
            abort();
        }
    }
    atexit(cleanup);
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Whether IMAGE is a well-formed entry for DESC (the format of
 * keyvault/pcache.h, written out independently of the reader). */
static int well_formed(const uint8_t *img, size_t n, size_t *off, size_t *clen,
                       int64_t *stamp)
{
    size_t dl = strlen(DESC);

    if (n < 8 + 4 + dl + 12 || memcmp(img, "AKVPC1\n\0", 8) != 0
        || le(img + 8, 4) != dl || memcmp(img + 12, DESC, dl) != 0) {
        return 0;
    }
    *stamp = (int64_t)le(img + 12 + dl, 8);
    *clen = (size_t)le(img + 20 + dl, 4);
    *off = 24 + dl;
    return *clen >= 1 && *clen <= AKV_PCACHE_MAX && *off + *clen == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct akv_secret out = AKV_SECRET_INIT;
    struct akv_kv_key key;
    int64_t stamp = 0;
    int64_t want_stamp = 0;
    size_t off = 0;
    size_t clen = 0;
    int k;
    int fd;
    int rc;

    if (!ready) {
        init();
        ready = 1;
    }
    if (size == 0) {
        return 0;
    }
    k = data[0] & 1;
    fd = open(path[k], O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0
        || (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1))) {
        abort();
    }
    close(fd);
    rc = akv_pcache_load(dir, k ? "token" : "key", DESC, &out, &stamp);
    if (well_formed(data + 1, size - 1, &off, &clen, &want_stamp)) {
        if (rc != 0 || out.len != clen || stamp != want_stamp
            || memcmp(out.data, data + 1 + off, clen) != 0) {
            abort();
        }
    } else if (rc == 0 || out.len != 0) {
        abort();
    }
    if (rc == 0) {
        /* What the callers do with it. */
        memset(&key, 0, sizeof(key));
        if (akv_json_parse_key_bundle((const char *)out.data, out.len, &key)
            == CKR_OK) {
            akv_kv_key_clear(&key);
        }
        (void)akv_json_token_ok(out.data, out.len);
    }
    akv_secret_clear(&out);
    return 0;
}
