/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store manifest (store_manifest.h, docs/STORE.md ".manifest"): its
 * in-memory model and its authenticated byte format. No I/O.
 */
#include "store_manifest.h"

#include <stdlib.h>
#include <string.h>

#define STORE_MAN_MAGIC "AKVMAN2\n"

void akv_store_manifest_free(struct manifest *m)
{
    free(m->e);
    memset(m, 0, sizeof(*m));
}

struct man_entry *akv_store_manifest_find(struct manifest *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->e[i].id, id) == 0) {
            return &m->e[i];
        }
    }
    return NULL;
}

struct man_entry *akv_store_manifest_add(struct manifest *m, const char *id)
{
    if (m->n >= STORE_MAN_MAX_N) {
        return NULL;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct man_entry *e = realloc(m->e, cap * sizeof(*e));
        if (e == NULL) {
            return NULL;
        }
        m->e = e;
        m->cap = cap;
    }
    memset(&m->e[m->n], 0, sizeof(m->e[m->n]));
    memcpy(m->e[m->n].id, id, strlen(id) + 1);
    return &m->e[m->n++];
}

void akv_store_manifest_remove(struct manifest *m, const char *id)
{
    struct man_entry *e = akv_store_manifest_find(m, id);

    if (e != NULL) {
        *e = m->e[m->n - 1];
        m->n--;
    }
}

CK_RV akv_store_manifest_decode(const uint8_t key[STORE_MAC_LEN],
                                const uint8_t *buf, size_t len,
                                struct manifest *m, const char **why)
{
    CK_RV rv = CKR_DEVICE_ERROR;
    struct cursor c = {buf, len};
    const uint8_t *f = NULL;
    uint32_t n = 0;

    memset(m, 0, sizeof(*m));
    rv = akv_store_codec_open_authed(
        key, STORE_MAN_MAGIC, buf, len, STORE_MAGIC_LEN + 4 + STORE_MAC_LEN,
        STORE_MAN_FILE_MAX, "HMAC mismatch", &c, why);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_DEVICE_ERROR;
    if (!take(&c, 4, &f) || (n = get_le32(f)) > STORE_MAN_MAX_N) {
        *why = "bad entry count";
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        char id[AKV_STORE_ID_LEN + 1];
        const uint8_t *rid = NULL;
        struct man_entry *e = NULL;
        uint8_t id_len = 0;

        if (!take(&c, 1, &f) || (id_len = f[0]) == 0
            || id_len > AKV_STORE_ID_LEN || !take(&c, id_len, &rid)) {
            *why = "bad entry id";
            goto out;
        }
        memcpy(id, rid, id_len);
        id[id_len] = '\0';
        if (!akv_store_codec_id_valid(id)
            || akv_store_manifest_find(m, id) != NULL) {
            *why = "bad or duplicate entry id";
            goto out;
        }
        e = akv_store_manifest_add(m, id);
        if (e == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        if (!take(&c, 1 + 8 + 8, &f) || (f[0] & ~MAN_HAS_HASH) != 0) {
            *why = "bad entry";
            goto out;
        }
        e->flags = f[0];
        e->cur = get_le64(f + 1);
        e->pending = get_le64(f + 9);
        if ((e->flags & MAN_HAS_HASH) != 0) {
            if (!take(&c, 32, &f)) {
                *why = "bad entry hash";
                goto out;
            }
            memcpy(e->hash, f, 32);
        }
    }
    if (c.left != 0) {
        *why = "trailing bytes";
        goto out;
    }
    rv = CKR_OK;
out:
    if (rv != CKR_OK) {
        akv_store_manifest_free(m);
    }
    return rv;
}

CK_RV akv_store_manifest_encode(const uint8_t key[STORE_MAC_LEN],
                                const struct manifest *m, uint8_t **out,
                                size_t *out_len)
{
    size_t len = STORE_MAGIC_LEN + 4 + STORE_MAC_LEN;
    uint8_t *buf = NULL, *p = NULL;

    for (size_t i = 0; i < m->n; i++) {
        len += 1 + strlen(m->e[i].id) + 1 + 8 + 8
               + ((m->e[i].flags & MAN_HAS_HASH) ? 32 : 0);
    }
    buf = malloc(len);
    if (buf == NULL) {
        return CKR_HOST_MEMORY;
    }
    p = buf;
    memcpy(p, STORE_MAN_MAGIC, STORE_MAGIC_LEN);
    p += STORE_MAGIC_LEN;
    put_le32(p, (uint32_t)m->n);
    p += 4;
    for (size_t i = 0; i < m->n; i++) {
        const struct man_entry *e = &m->e[i];
        size_t id_len = strlen(e->id);
        *p++ = (uint8_t)id_len;
        memcpy(p, e->id, id_len);
        p += id_len;
        *p++ = (uint8_t)e->flags;
        put_le64(p, e->cur);
        put_le64(p + 8, e->pending);
        p += 16;
        if ((e->flags & MAN_HAS_HASH) != 0) {
            memcpy(p, e->hash, 32);
            p += 32;
        }
    }
    if (akv_store_codec_mac(key, buf, (size_t)(p - buf), p) != 0) {
        free(buf);
        return CKR_GENERAL_ERROR;
    }
    *out = buf;
    *out_len = len;
    return CKR_OK;
}
