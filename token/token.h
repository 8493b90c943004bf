/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One token (one slot, one configured tokens[] entry): its Key Vault client,
 * its store of token objects, its object table, the cache of vault key
 * versions, and the object model of design.md "Object model".
 *
 * Locking (docs: lock hierarchy global -> token -> session): t->lock is a
 * rwlock over the object table, every object's attribute list and the
 * store/DEK caches. Readers: find, GetAttributeValue; writers: refresh,
 * create, destroy, SetAttributeValue. It is never held across a kv or store
 * call: I/O runs off-lock and the result is installed under the write lock.
 * Objects are reference-counted, so a call keeps using an object after it
 * has released the lock.
 */
#ifndef AKV_TOKEN_TOKEN_H
#define AKV_TOKEN_TOKEN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "../common/config.h"
#include "../common/secret.h"
#include "../keyvault/kv.h"
#include "attr.h"
#include "store.h"

#define AKV_OBJ_MAGIC         0x414b4f42u /* "AKOB" */
#define AKV_TOKEN_MAX_OBJECTS 4096        /* bound on the object table */

enum akv_obj_origin {
    AKV_ORIGIN_VAULT = 0, /* a Key Vault key version (read-only) */
    AKV_ORIGIN_STORE,     /* token object persisted in store_dir */
    AKV_ORIGIN_SESSION,   /* session object (CKA_TOKEN FALSE) */
};

struct akv_obj {
    uint32_t magic;
    unsigned refs; /* atomic */
    CK_OBJECT_HANDLE handle;
    enum akv_obj_origin origin;
    CK_SESSION_HANDLE owner; /* session objects: the creating session */
    /* Immutable for the object's life (v3.0 §4.4/§4.7: CKA_CLASS and
     * CKA_KEY_TYPE cannot change), so read without a lock; a store reload
     * that finds them changed replaces the object instead. */
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE key_type;   /* (CK_KEY_TYPE)-1 for non-keys */
    struct akv_attrs attrs; /* under token lock; never CKA_VALUE of keys */
    bool dead;              /* destroyed: no longer in the table */
    bool listed;            /* vault: shown without a CKA_ID in the template */
    /* Vault objects: the bound key version (immutable). */
    struct akv_kv_key *vkey;
    EVP_PKEY *pub; /* RSA public key (vault RSA objects), immutable */
    /* Local session key pairs (C_GenerateKeyPair, CKA_TOKEN FALSE): the
     * private object's key with its private parts (token/keygen.h);
     * immutable; never exported as attributes. */
    EVP_PKEY *priv;
    /* Secret value: session/local keys (immutable after creation); store
     * objects: the DEK cache (under token lock). */
    struct akv_secret value;
    int64_t value_expiry; /* monotonic s; store DEK cache */
    /* Store objects: the record (attrs not kept; under token lock). */
    struct akv_store_record rec;
    uint64_t rec_sum; /* cheap fingerprint of the record, for reloads */
};

/* One configured key (config keys[] entry) and what the token knows. */
struct akv_keyslot {
    const struct akv_key_config *cfg;
    char current[AKV_KV_VERSION_MAX]; /* last version fetched */
    char kid[AKV_KV_KID_MAX];         /* its versioned kid */
    enum akv_kv_kty kty;
    int64_t fetched; /* monotonic s of the last successful GET */
    bool ever;       /* fetched at least once */
    /* A key never fetched whose GET just failed: remembered for
     * min(AKV_TOKEN_RETRY_S, key_refresh_s) so that callers which search
     * several times in a row (libp11 does three C_FindObjectsInit per URI) cost
     * one vault round, not three (each up to http.budget_ms when the vault is
     * down). */
    int64_t failed_at; /* monotonic s; 0 = no recent failure */
    CK_RV failed_rv;
    /* Keys this token created (token/created.h): the slot owns its config
     * (cfg points at own, whose name is own_name). Slots never move: the
     * array is allocated once with room for AKV_CREATED_MAX of them. */
    bool created;
    bool gone; /* deleted (C_DestroyObject) or left the catalog: skipped */
    /* Created by this process and not (yet) in the catalog: a catalog read
     * meanwhile must not take it for a key another process deleted. */
    bool local_only;
    struct akv_key_config own;
    char own_name[AKV_KV_NAME_MAX];
};

#define AKV_TOKEN_RETRY_S 5

#define AKV_TOKEN_MISSES  16 /* remembered CKA_ID versions that do not exist */

struct akv_miss {
    char version[AKV_KV_VERSION_MAX];
    int64_t at; /* monotonic s */
};

/* A key version the token has seen (token/rotate.h). */
struct akv_seen {
    char name[AKV_KV_NAME_MAX];
    char version[AKV_KV_VERSION_MAX];
};

struct akv_token {
    CK_SLOT_ID slot_id;
    const struct akv_token_config *cfg; /* owned by the global config */
    struct akv_kv *kv;
    struct akv_store *store; /* NULL when store_dir is not set */
    char serial[17];         /* 16 hex chars of SHA-256(vault_url) */
    pthread_rwlock_t lock;
    /* Serialises, within this process, every change of the store on disk
     * together with the matching change of the object table (create,
     * destroy, attribute rewrite) and every reload of the store into the
     * table, so that a reload never sees a record whose object is about to
     * join the table (one record is one object, one handle). Held across
     * local disk I/O only, never a network call. Order: store_mu -> lock. */
    pthread_mutex_t store_mu;
    struct akv_obj **objs; /* live objects */
    size_t n_objs;
    size_t cap_objs;
    /* Configured keys first, then created ones. n_keys only grows, and a
     * slot is complete before n_keys covers it: read it with
     * akv_token_n_keys (acquire) without the lock; a slot's mutable fields
     * are under the lock. */
    struct akv_keyslot *keys;
    size_t n_keys;
    size_t cap_keys;
    uint64_t created_stamp; /* token/created.h catalog, under the lock */
    uint64_t store_stamp;
    bool store_loaded;
    bool store_refused; /* store_dir broke the fsperm.h rules at open */
    struct akv_miss misses[AKV_TOKEN_MISSES];
    size_t next_miss;
    /* Versions seen in this process or listed in the store_dir catalog
     * (token/rotate.c; under the lock; loaded once). */
    struct akv_seen *seen;
    size_t n_seen;
    bool seen_loaded;
    /* token/cert.c: monotonic s of the last certificate fetch or file read
     * (0 = never; under the lock). */
    int64_t cert_at;
    /* Under the global mutex (slot.c): login is per token for the whole
     * application (v3.0 §5.6 C_Login), session counts for token info. */
    bool logged_in;
    CK_ULONG n_sessions;
    CK_ULONG n_rw_sessions;
};

/* akv_token_now - monotonic seconds. */
int64_t akv_token_now(void);

/*
 * akv_token_new - a token for configuration TC as slot SLOT_ID, taking
 * ownership of KV (destroyed on failure too). Opens the store when
 * store_dir is set (a local folder; no network). CKR_OK, CKR_HOST_MEMORY,
 * CKR_DEVICE_ERROR (store folder unusable).
 */
CK_RV akv_token_new(const struct akv_token_config *tc, CK_SLOT_ID slot_id,
                    struct akv_kv *kv, struct akv_token **out);

/* akv_token_free - drops every object (values wiped), closes store and kv.
 * NULL-safe. No other thread may use the token. */
void akv_token_free(struct akv_token *t);

/* akv_obj_ref / akv_obj_unref - reference counting; the last unref wipes
 * and frees (the record itself may be kept for reuse: token/objpool.h).
 * NULL-safe. */
void akv_obj_ref(struct akv_obj *o);
void akv_obj_unref(struct akv_obj *o);

/* akv_obj_new - a zeroed object with one reference. NULL on ENOMEM. */
struct akv_obj *akv_obj_new(enum akv_obj_origin origin, CK_OBJECT_CLASS cls,
                            CK_KEY_TYPE key_type);

/* akv_token_get_obj - looks up a live object and takes a reference.
 * CKR_OK or CKR_OBJECT_HANDLE_INVALID. Takes the read lock. */
CK_RV akv_token_get_obj(struct akv_token *t, CK_OBJECT_HANDLE h,
                        struct akv_obj **out);

/* akv_token_add_obj_locked - gives O a fresh random handle and inserts it
 * (the table takes its own reference). Caller holds the write lock.
 * CKR_OK, CKR_HOST_MEMORY, CKR_DEVICE_MEMORY (table full). */
CK_RV akv_token_add_obj_locked(struct akv_token *t, struct akv_obj *o);

/* akv_token_remove_obj_locked - marks O dead and drops the table's
 * reference. Caller holds the write lock. */
void akv_token_remove_obj_locked(struct akv_token *t, struct akv_obj *o);

/* akv_token_drop_session_objs - destroys every session object owned by
 * session H (C_CloseSession). Takes the write lock. */
void akv_token_drop_session_objs(struct akv_token *t, CK_SESSION_HANDLE h);

/*
 * akv_token_refresh - brings the object table up to date before a find
 * (design.md: the vault is first asked in C_FindObjectsInit): re-GETs each
 * configured key whose cache is older than key_refresh_s, fetches the
 * version named by a CKA_ID in TMPL that no object has yet (404 = no
 * match), and reloads the store when its stamp changed. No lock is held
 * during I/O. A failed refresh of a key already known keeps the cached
 * objects (logged). Returns CKR_OK, CKR_HOST_MEMORY, or CKR_DEVICE_ERROR
 * when a configured key was never fetched and the vault did not answer
 * (a 404 for such a key is logged and skipped).
 */
CK_RV akv_token_refresh(struct akv_token *t, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n);

/*
 * akv_token_obj_value - a copy of a secret key's value into OUT (wiped by
 * the caller). Session objects: local copy. Store objects: akv_seal_open
 * (record key unwrapped by the vault key version that wrapped it, kv
 * unwrap with no lock held, then the AEAD checked), cached for
 * dek_cache_ttl_s. Returns CKR_OK, CKR_HOST_MEMORY, CKR_KEY_HANDLE_INVALID
 * (no value), CKR_DEVICE_ERROR (the sealed value fails authentication,
 * logged), or the kv errors (CKR_KEY_FUNCTION_NOT_PERMITTED when the vault
 * key is revoked, CKR_DEVICE_ERROR, ...).
 */
CK_RV akv_token_obj_value(struct akv_token *t, struct akv_obj *o,
                          struct akv_secret *out);

/*
 * akv_token_persist - seals VALUE (token/seal.h: envelope AEAD, record key
 * wrapped by the key akv_seal_choose picks: the current version of the
 * first RSA key with RSA-OAEP-256, else an oct-HSM key with
 * CKM_AES_KEY_WRAP_PAD), writes O (attributes + sealed value) to the store,
 * filling o->rec - on a store's first use this creates its secret - and
 * inserts O into the object table (o->handle), the write and the insert
 * under t->store_mu so that no store reload can add the same record a
 * second time. O must not be in the table yet. On any failure nothing is
 * left on disk or in the table. Returns CKR_OK, CKR_TEMPLATE_INCONSISTENT
 * (no store_dir / no usable vault key), CKR_HOST_MEMORY, CKR_DEVICE_MEMORY
 * (table full), kv or store errors.
 */
CK_RV akv_token_persist(struct akv_token *t, struct akv_obj *o,
                        const struct akv_secret *value);

/* akv_token_forget - C_DestroyObject of O: deletes its store record (store
 * objects) and removes it from the table, both under t->store_mu. CKR_OK or
 * store errors (then O stays). */
CK_RV akv_token_forget(struct akv_token *t, struct akv_obj *o);

/* akv_token_rewrite_attrs - rewrites the store record of O after a
 * C_SetAttributeValue: the attributes are associated data of the sealed
 * value, so the value is resealed (akv_seal_reseal: one unwrapKey, one
 * wrapKey) under the current sealing key, which also moves a legacy record
 * to format 2. Sets CKA_AKV_WRAPPING_KID in ATTRS to the new kid. CKR_OK,
 * seal (kv) or store errors. */
CK_RV akv_token_rewrite_attrs(struct akv_token *t, struct akv_obj *o,
                              struct akv_attrs *attrs);

/*
 * akv_token_fetch_version - Key Vault "Get Key" for NAME/VERSION, installing
 * the version's objects (found by CKA_ID only, like a CKA_ID search) and
 * noting the version (token/rotate.h). OUT is filled on CKR_OK (clear it
 * with akv_kv_key_clear). Returns the kv get_key errors. No lock held during
 * the call.
 */
CK_RV akv_token_fetch_version(struct akv_token *t, const char *name,
                              const char *version, struct akv_kv_key *out);

/* akv_token_version_from_id - CKA_ID bytes -> version text: 16 bytes ->
 * 32 lower-case hex digits; otherwise the bytes when they are a version's
 * text (32 hex digits, lower-cased; akv_kvid_version_ok). Returns false
 * when not a possible version. */
bool akv_token_version_from_id(const uint8_t *id, size_t len,
                               char out[AKV_KV_VERSION_MAX]);

/* akv_token_id_from_version - the CKA_ID of key version VERSION (32 hex
 * digits -> 16 bytes; any other text kept, cut to 64 bytes) into OUT;
 * returns its length. The key objects and the certificate carry it. */
size_t akv_token_id_from_version(const char *version, uint8_t out[64]);

/*
 * akv_token_add_created - installs a key version K that C_GenerateKeyPair
 * just created (Key Vault "Create Key" answer): a key slot for its name
 * (shown like a configured key from now on, refreshed after
 * key_refresh_s), its public and private objects (listed), and its name in
 * the created-keys catalog (token/created.h) so other processes show it.
 * *PUB / *PRIV receive the objects' handles. CKR_OK, CKR_HOST_MEMORY,
 * CKR_DEVICE_MEMORY (table or slots full), CKR_GENERAL_ERROR (a key type
 * without a key pair).
 */
CK_RV akv_token_add_created(struct akv_token *t, const struct akv_kv_key *k,
                            CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);

/*
 * akv_token_delete_key - C_DestroyObject of a vault key object O with
 * tokens[].allow_delete: Key Vault "Delete Key" of O's key name (every
 * version; soft delete), then every object of that key leaves the table,
 * its slot is skipped from now on and the name leaves the created-keys
 * catalog. A 404 (already deleted) counts as done. Returns CKR_OK,
 * CKR_ACTION_PROHIBITED (the vault refused: 403, logged by the client),
 * CKR_DEVICE_ERROR, CKR_FUNCTION_NOT_SUPPORTED (client without delete).
 */
CK_RV akv_token_delete_key(struct akv_token *t, struct akv_obj *o);

/* akv_token_n_keys - the number of key slots (configured + created). */
size_t akv_token_n_keys(const struct akv_token *t);

/* akv_obj_is_key - true for secret, public and private keys: the objects a
 * key handle may name (v3.0 §5.1 CKR_KEY_HANDLE_INVALID). */
bool akv_obj_is_key(const struct akv_obj *o);

/* akv_obj_is_sensitive - C_GetAttributeValue case 1 predicate (ctx is the
 * struct akv_obj; caller holds the token lock). */
bool akv_obj_is_sensitive(const void *ctx, CK_ATTRIBUTE_TYPE type);

#endif /* AKV_TOKEN_TOKEN_H */
