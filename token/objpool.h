/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded cache of released object records (struct akv_obj with its
 * attribute block), so that the object a C_UnwrapKey, C_GenerateKey or
 * C_CreateObject makes - and the C_DestroyObject that ends it - costs no
 * heap allocation once the process is warm (issue 9: allocations per remote
 * unwrap; docs/ARCHITECTURE.md "Request path costs").
 *
 * A record enters the cache only after akv_obj_unref has released what it
 * owns (secret value wiped by common/secret.c, key version, public key,
 * store record); the cache wipes every attribute value (akv_attrs_reset)
 * and zeroes the rest, keeping only the attribute block. At most
 * AKV_OBJPOOL_MAX records of at most AKV_OBJPOOL_MAX_ATTRS attribute
 * entries are kept; others are freed. One mutex guards the cache.
 */
#ifndef AKV_TOKEN_OBJPOOL_H
#define AKV_TOKEN_OBJPOOL_H

#include <stddef.h>

#include "token.h"

#define AKV_OBJPOOL_MAX       64
#define AKV_OBJPOOL_MAX_ATTRS 64

/* akv_objpool_get - a record with every field zero (attrs empty, possibly
 * with a block kept from an earlier object), from the cache or calloc.
 * NULL on ENOMEM. */
struct akv_obj *akv_objpool_get(void);

/* akv_objpool_put - takes back a record whose value, vkey, pub and rec are
 * already released: wipes its attribute values, then keeps it or frees it.
 * NULL-safe. */
void akv_objpool_put(struct akv_obj *o);

/* akv_objpool_drain - frees every cached record (C_Finalize). */
void akv_objpool_drain(void);

/* akv_objpool_count - records in the cache now (tests). */
size_t akv_objpool_count(void);

/* akv_objpool_forget - in a forked child: resets the lock (a parent thread
 * may have held it); the cached records stay usable. */
void akv_objpool_forget(void);

#endif /* AKV_TOKEN_OBJPOOL_H */
