/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key Vault keys data plane (REST api 7.x / 2025-xx, keys.json): one
 * listener per vault. Request order, as the service does it: route -> stats
 * and faults -> api-version -> bearer token (401 + challenge, before the
 * body is looked at) -> access policy (403) -> throttle (429) -> body ->
 * key lookup (404) -> key state (403) -> operation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "emu.h"
#include "http.h"

#define MAX_SEGS 6

static const char *const api_versions[] = {
    "7.0", "7.1", "7.2",           "7.3",        "7.4",
    "7.5", "7.6", "7.6-preview.2", "2025-06-01", "2025-07-01",
};

struct route {
    int op;
    unsigned perm;
    int deleted_ns; /* /deletedkeys */
    const char *name;
    const char *version;
    const char *action; /* wrapkey/unwrapkey/encrypt/decrypt */
    int is_mutation;
    int special;        /* SP_*: operations without a stats/fault op name */
    unsigned cert_perm; /* SP_CERT: the EMU_CP_* permission needed */
};

/* Operations counted as "other" in stats (fault rules reach them with
 * --path): rotation policy get/update, secure key release. */
enum { SP_NONE, SP_GET_POLICY, SP_SET_POLICY, SP_RELEASE, SP_CERT };

struct call {
    struct emu_req *rq;
    struct emu_resp *rs;
    struct emu_vault *v;
    struct route rt;
    char base[300];
    const char *api;
    struct emu_caller who;
    struct emu_fault_hit fault;
};

static void not_found_key(struct emu_resp *rs, const char *name,
                          const char *ver)
{
    char msg[512];

    snprintf(msg, sizeof(msg),
             "A key with (name/id) %.150s%s%.40s was not found in this key "
             "vault. If you recently deleted this key you may be able to "
             "recover it using the correct recovery command. For help "
             "resolving this issue, please see "
             "https://go.microsoft.com/fwlink/?linkid=2125182",
             name, ver && *ver ? "/" : "", ver ? ver : "");
    emu_resp_kv_error(rs, 404, "KeyNotFound", msg, NULL);
}

/* 429 with Retry-After RA seconds, as Key Vault answers a request over its
 * service limits (docs: "Azure Key Vault throttling guidance"); counted in
 * the stats' "throttled". */
static void throttled_reply(struct emu_resp *rs, int ra)
{
    emu_stats_throttled();
    rs->retry_after = ra;
    emu_resp_kv_error(rs, 429, "Throttled",
                      "Request was not processed because too many requests "
                      "were received. Reason: VaultRequestTypeLimitReached",
                      NULL);
}

static void bad_param(struct emu_resp *rs, const char *msg)
{
    emu_resp_kv_error(rs, 400, "BadParameter", msg, NULL);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A delete or recover still "in progress" (serve --delete-delay-ms): the
 * key is then in neither /keys nor /deletedkeys, so the SDK pollers
 * (getDeletedKey after DELETE, getKey after recover) see 404 = not done. */
static int key_pending(const struct emu_key *k)
{
    return k->pending_until_ms > now_ms();
}

/* K when it is a live key: not deleted, no delete/recover in progress. */
static int key_live(const struct emu_key *k)
{
    return k && !k->deleted && k->nvers && !key_pending(k);
}

/* K when it is soft-deleted and its deletion has completed. */
static int key_in_deleted(const struct emu_key *k)
{
    return k && k->deleted && k->nvers && !key_pending(k);
}

static void start_pending(struct emu_key *k)
{
    k->pending_until_ms =
        emu.delete_delay_ms > 0 ? now_ms() + emu.delete_delay_ms : 0;
}

/* Splits URL into segments (empty ones kept: "/keys/n//wrapkey"). */
static int split(char *path, char **seg, int max)
{
    int n = 0;
    char *p = path;

    if (*p == '/') {
        p++;
    }
    while (n < max) {
        char *slash = strchr(p, '/');

        seg[n++] = p;
        if (!slash) {
            return n;
        }
        *slash = 0;
        p = slash + 1;
    }
    return -1;
}

/* Sets the matched operation, the access-policy permission it needs and
 * whether it changes the vault. Returns 0 (route's "matched"). */
static int set_op(struct route *rt, int op, unsigned perm, int is_mutation)
{
    rt->op = op;
    rt->perm = perm;
    rt->is_mutation = is_mutation;
    return 0;
}

static int route(const char *method, char **s, int n, struct route *rt)
{
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    int patch = strcmp(method, "PATCH") == 0;
    int del = strcmp(method, "DELETE") == 0;
    int put = strcmp(method, "PUT") == 0;

    memset(rt, 0, sizeof(*rt));
    rt->op = EMU_OPN_OTHER;
    if (n >= 1 && strcmp(s[0], "keys") == 0) {
        if (n == 1 || (n == 2 && !*s[1])) {
            if (!get) {
                return 405;
            }
            return set_op(rt, EMU_OPN_LIST, EMU_P_LIST, 0);
        }
        rt->name = s[1];
        if (n == 2 || (n == 3 && !*s[2])) {
            if (get) {
                set_op(rt, EMU_OPN_GET, EMU_P_GET, 0);
            } else if (patch) {
                set_op(rt, EMU_OPN_UPDATE, EMU_P_UPDATE, 1);
            } else if (del && n == 2) {
                set_op(rt, EMU_OPN_DELETE, EMU_P_DELETE, 1);
            } else if (put && n == 2) {
                set_op(rt, EMU_OPN_IMPORT, EMU_P_IMPORT, 1);
            } else if (post && n == 2 && strcmp(s[1], "restore") == 0) {
                set_op(rt, EMU_OPN_RESTORE, EMU_P_RESTORE, 1);
            } else {
                return 405;
            }
            rt->version = "";
            return 0;
        }
        if (n == 3) {
            if (strcmp(s[2], "versions") == 0 && get) {
                set_op(rt, EMU_OPN_LIST, EMU_P_LIST, 0);
                rt->action = "versions";
                return 0;
            }
            if (strcmp(s[2], "create") == 0 && post) {
                return set_op(rt, EMU_OPN_CREATE, EMU_P_CREATE, 1);
            }
            if (strcmp(s[2], "backup") == 0 && post) {
                return set_op(rt, EMU_OPN_BACKUP, EMU_P_BACKUP, 0);
            }
            if (strcmp(s[2], "rotate") == 0 && post) {
                return set_op(rt, EMU_OPN_ROTATE, EMU_P_ROTATE, 1);
            }
            /* GET/PUT /keys/{name}/rotationpolicy (getKeyRotationPolicy,
             * updateKeyRotationPolicy; api 7.3+). */
            if (strcmp(s[2], "rotationpolicy") == 0 && (get || put)) {
                rt->special = get ? SP_GET_POLICY : SP_SET_POLICY;
                return set_op(rt, EMU_OPN_OTHER,
                              get ? EMU_P_GETROTATIONPOLICY
                                  : EMU_P_SETROTATIONPOLICY,
                              put);
            }
            /* POST /keys/{name}/release (release, latest version). */
            if (strcmp(s[2], "release") == 0 && post) {
                rt->special = SP_RELEASE;
                rt->version = "";
                return set_op(rt, EMU_OPN_OTHER, EMU_P_RELEASE, 0);
            }
            rt->version = s[2];
            if (get) {
                return set_op(rt, EMU_OPN_GET, EMU_P_GET, 0);
            }
            if (patch) {
                return set_op(rt, EMU_OPN_UPDATE, EMU_P_UPDATE, 1);
            }
            return 405;
        }
        if (n == 4 && post) {
            rt->version = s[2];
            rt->action = s[3];
            if (emu_strcaseeq(s[3], "wrapkey")) {
                set_op(rt, EMU_OPN_WRAPKEY, EMU_P_WRAPKEY, 0);
            } else if (emu_strcaseeq(s[3], "unwrapkey")) {
                set_op(rt, EMU_OPN_UNWRAPKEY, EMU_P_UNWRAPKEY, 0);
            } else if (emu_strcaseeq(s[3], "encrypt")) {
                set_op(rt, EMU_OPN_ENCRYPT, EMU_P_ENCRYPT, 0);
            } else if (emu_strcaseeq(s[3], "decrypt")) {
                set_op(rt, EMU_OPN_DECRYPT, EMU_P_DECRYPT, 0);
            } else if (emu_strcaseeq(s[3], "sign")) {
                set_op(rt, EMU_OPN_SIGN, EMU_P_SIGN, 0);
            } else if (emu_strcaseeq(s[3], "verify")) {
                set_op(rt, EMU_OPN_VERIFY, EMU_P_VERIFY, 0);
            } else if (strcmp(s[3], "release") == 0) {
                /* POST /keys/{name}/{version}/release */
                rt->special = SP_RELEASE;
                set_op(rt, EMU_OPN_OTHER, EMU_P_RELEASE, 0);
            } else {
                return 404;
            }
            return 0;
        }
        return 404;
    }
    /* GET /certificates/{name}[/{version}] (Get Certificate) and
     * /certificates/{name}/versions (Get Certificate Versions). */
    if (n >= 2 && strcmp(s[0], "certificates") == 0 && *s[1]) {
        if (!get) {
            return 405;
        }
        rt->special = SP_CERT;
        rt->name = s[1];
        rt->version = "";
        rt->cert_perm = EMU_CP_GET;
        if (n == 3 && strcmp(s[2], "versions") == 0) {
            rt->action = "versions";
            rt->cert_perm = EMU_CP_LIST;
        } else if (n == 3) {
            rt->version = s[2];
        } else if (n > 3) {
            return 404;
        }
        return 0;
    }
    if (n >= 1 && strcmp(s[0], "deletedkeys") == 0) {
        rt->deleted_ns = 1;
        if (n == 1 || (n == 2 && !*s[1])) {
            if (!get) {
                return 405;
            }
            return set_op(rt, EMU_OPN_LIST, EMU_P_LIST, 0);
        }
        rt->name = s[1];
        if (n == 2 && get) {
            return set_op(rt, EMU_OPN_GETDELETED, EMU_P_GET, 0);
        }
        if (n == 2 && del) {
            return set_op(rt, EMU_OPN_PURGE, EMU_P_PURGE, 1);
        }
        if (n == 3 && post && strcmp(s[2], "recover") == 0) {
            return set_op(rt, EMU_OPN_RECOVER, EMU_P_RECOVER, 1);
        }
        return n <= 3 ? 405 : 404;
    }
    return 404;
}

static cJSON *attributes_json(const struct emu_keyver *kv)
{
    cJSON *a = cJSON_CreateObject();

    cJSON_AddBoolToObject(a, "enabled", kv->enabled);
    if (kv->nbf) {
        cJSON_AddNumberToObject(a, "nbf", (double)kv->nbf);
    }
    if (kv->exp) {
        cJSON_AddNumberToObject(a, "exp", (double)kv->exp);
    }
    cJSON_AddNumberToObject(a, "created", (double)kv->created);
    cJSON_AddNumberToObject(a, "updated", (double)kv->updated);
    cJSON_AddStringToObject(a, "recoveryLevel", "Recoverable+Purgeable");
    cJSON_AddNumberToObject(a, "recoverableDays", 90);
    cJSON_AddBoolToObject(a, "exportable", kv->exportable);
    if (strstr(kv->kty, "HSM")) {
        cJSON_AddStringToObject(a, "hsmPlatform", "2");
    }
    return a;
}

static void add_deleted(cJSON *o, const char *base, const struct emu_key *k)
{
    char rid[600];

    snprintf(rid, sizeof(rid), "%s/deletedkeys/%s", base, k->name);
    cJSON_AddStringToObject(o, "recoveryId", rid);
    cJSON_AddNumberToObject(o, "deletedDate", (double)k->deleted_date);
    cJSON_AddNumberToObject(o, "scheduledPurgeDate", (double)k->purge_date);
}

cJSON *emu_keybundle_json(const char *base, const struct emu_key *k,
                          const struct emu_keyver *kv, int deleted)
{
    cJSON *root = cJSON_CreateObject(), *key;
    char kid[600];

    snprintf(kid, sizeof(kid), "%s/keys/%s/%s", base, k->name, kv->id);
    if (deleted) {
        add_deleted(root, base, k);
    }
    key = cJSON_AddObjectToObject(root, "key");
    cJSON_AddStringToObject(key, "kid", kid);
    cJSON_AddStringToObject(key, "kty", kv->kty);
    cJSON_AddItemToObject(key, "key_ops", emu_keyops_json(kv->ops));
    if (kv->crv[0]) {
        cJSON_AddStringToObject(key, "crv", kv->crv);
        cJSON_AddStringToObject(key, "x", kv->x_b64);
        cJSON_AddStringToObject(key, "y", kv->y_b64);
    } else if (kv->pkey) {
        cJSON_AddStringToObject(key, "n", kv->n_b64);
        cJSON_AddStringToObject(key, "e", kv->e_b64);
    }
    cJSON_AddItemToObject(root, "attributes", attributes_json(kv));
    if (kv->tags) {
        cJSON_AddItemToObject(root, "tags", cJSON_Duplicate(kv->tags, 1));
    }
    if (kv->release_policy) {
        cJSON_AddItemToObject(root, "release_policy",
                              cJSON_Duplicate(kv->release_policy, 1));
    }
    return root;
}

static void send_bundle(struct call *c, int status, const struct emu_key *k,
                        const struct emu_keyver *kv, int deleted)
{
    cJSON *j = emu_keybundle_json(c->base, k, kv, deleted);

    emu_resp_json(c->rs, status, j);
    cJSON_Delete(j);
}

static int check_api_version(struct call *c)
{
    const char *v = emu_req_arg(c->rq, "api-version");
    char msg[256];
    size_t i;

    if (!v || !*v) {
        bad_param(c->rs, "The 'api-version' query parameter is required.");
        return -1;
    }
    for (i = 0; i < sizeof(api_versions) / sizeof(api_versions[0]); i++) {
        if (strcmp(v, api_versions[i]) == 0) {
            c->api = api_versions[i];
            return 0;
        }
    }
    snprintf(msg, sizeof(msg),
             "The specified version (%.40s) is not recognized. Consider using "
             "the latest supported version (2025-07-01).",
             v);
    bad_param(c->rs, msg);
    return -1;
}

static void challenge(struct call *c, const char *msg)
{
    emu_resp_kv_error(c->rs, 401, "Unauthorized", msg, NULL);
    snprintf(c->rs->www_auth, sizeof(c->rs->www_auth),
             "Bearer authorization=\"https://%s:%d/%s\", "
             "resource=\"https://%s.azure.net\"",
             emu.host, emu.port, emu.tenant_id,
             c->v->hsm ? "managedhsm" : "vault");
}

/* 401/403 checks under a shared lock; returns 0 when allowed. */
static int authorize(struct call *c)
{
    char msg[600];
    size_t i;
    unsigned have = 0;
    int rc = -1;

    pthread_rwlock_rdlock(&emu.lock);
    if (emu_token_check(emu_req_header(c->rq, "Authorization"), c->v->hsm,
                        &c->who, msg, sizeof(msg))
        != 0) {
        challenge(c, msg);
        goto out;
    }
    if (c->v->hsm) {
        /* Managed HSM: local RBAC (rbac.c), no access policies. */
        const char *key =
            c->rt.name && !(c->rt.op == EMU_OPN_RESTORE) ? c->rt.name : NULL;

        if (emu_rbac_check(c->v, &c->who, c->rt.perm, key, msg, sizeof(msg))
            != 0) {
            emu_resp_kv_error(c->rs, 403, "Forbidden", msg, "ForbiddenByRbac");
            goto out;
        }
        rc = 0;
        goto out;
    }
    for (i = 0; i < c->v->npolicies; i++) {
        if (emu_strcaseeq(c->v->policies[i].object_id, c->who.oid)) {
            have = c->rt.special == SP_CERT ? c->v->policies[i].cert_perms
                                            : c->v->policies[i].perms;
            break;
        }
    }
    if (c->rt.special == SP_CERT && !(have & c->rt.cert_perm)) {
        snprintf(msg, sizeof(msg),
                 "The user, group or application 'appid=%s;oid=%s;"
                 "iss=https://sts.windows.net/%s/' does not have "
                 "certificates %s permission on key vault "
                 "'%s;location=local'. For help resolving this issue, please "
                 "see https://go.microsoft.com/fwlink/?linkid=2125287",
                 c->who.appid, c->who.oid, emu.tenant_id,
                 emu_cert_perm_name(c->rt.cert_perm), c->v->name);
        emu_resp_kv_error(c->rs, 403, "Forbidden", msg, "ForbiddenByPolicy");
        goto out;
    }
    if (c->rt.special != SP_CERT && !(have & c->rt.perm)) {
        snprintf(msg, sizeof(msg),
                 "The user, group or application 'appid=%s;oid=%s;"
                 "iss=https://sts.windows.net/%s/' does not have keys %s "
                 "permission on key vault '%s;location=local'. For help "
                 "resolving this issue, please see "
                 "https://go.microsoft.com/fwlink/?linkid=2125287",
                 c->who.appid, c->who.oid, emu.tenant_id,
                 emu_perm_name(c->rt.perm), c->v->name);
        emu_resp_kv_error(c->rs, 403, "Forbidden", msg, "AccessDenied");
        goto out;
    }
    rc = 0;
out:
    pthread_rwlock_unlock(&emu.lock);
    return rc;
}

static cJSON *parse_body(struct call *c)
{
    cJSON *j;

    if (c->rq->len == 0) {
        bad_param(c->rs, "The request body is required.");
        return NULL;
    }
    j = cJSON_ParseWithLength(c->rq->body, c->rq->len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        bad_param(c->rs, "The request body is not valid JSON.");
        return NULL;
    }
    return j;
}

/* Applies attributes/key_ops/tags from a create or update body. */
static int apply_attrs(struct call *c, cJSON *body, struct emu_keyver *kv)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "attributes");
    cJSON *ops = cJSON_GetObjectItemCaseSensitive(body, "key_ops");
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(body, "tags");
    cJSON *x;

    if (a && !cJSON_IsNull(a)) {
        if (!cJSON_IsObject(a)) {
            bad_param(c->rs, "Property 'attributes' is not valid.");
            return -1;
        }
        x = cJSON_GetObjectItemCaseSensitive(a, "enabled");
        if (cJSON_IsBool(x)) {
            kv->enabled = cJSON_IsTrue(x);
        } else if (x && !cJSON_IsNull(x)) {
            bad_param(c->rs, "Property 'enabled' is not valid.");
            return -1;
        }
        x = cJSON_GetObjectItemCaseSensitive(a, "nbf");
        if (cJSON_IsNumber(x)) {
            long long t;

            if (emu_json_ll(x, &t) != 0) {
                bad_param(c->rs, "Property 'nbf' is not valid.");
                return -1;
            }
            kv->nbf = t;
        } else if (cJSON_IsNull(x)) {
            kv->nbf = 0;
        } else if (x) {
            bad_param(c->rs, "Property 'nbf' is not valid.");
            return -1;
        }
        x = cJSON_GetObjectItemCaseSensitive(a, "exp");
        if (cJSON_IsNumber(x)) {
            long long t;

            if (emu_json_ll(x, &t) != 0) {
                bad_param(c->rs, "Property 'exp' is not valid.");
                return -1;
            }
            kv->exp = t;
        } else if (cJSON_IsNull(x)) {
            kv->exp = 0;
        } else if (x) {
            bad_param(c->rs, "Property 'exp' is not valid.");
            return -1;
        }
    }
    if (ops && !cJSON_IsNull(ops)) {
        unsigned m = 0;

        if (!cJSON_IsArray(ops)) {
            bad_param(c->rs, "Property 'key_ops' is not valid.");
            return -1;
        }
        cJSON_ArrayForEach(x, ops)
        {
            unsigned b =
                cJSON_IsString(x) ? emu_keyop_parse(x->valuestring) : 0;

            if (!b) {
                bad_param(c->rs, "Invalid key operation in 'key_ops'.");
                return -1;
            }
            m |= b;
        }
        kv->ops = m;
    }
    if (tags && !cJSON_IsNull(tags)) {
        if (!cJSON_IsObject(tags)) {
            bad_param(c->rs, "Property 'tags' is not valid.");
            return -1;
        }
        cJSON_ArrayForEach(x, tags)
        {
            if (!cJSON_IsString(x)) {
                bad_param(c->rs, "Tag values must be strings.");
                return -1;
            }
        }
        cJSON_Delete(kv->tags);
        kv->tags = cJSON_Duplicate(tags, 1);
    }
    return 0;
}

static int add_version(struct emu_key *k, struct emu_keyver *kv)
{
    struct emu_keyver **nv = realloc(k->vers, (k->nvers + 1) * sizeof(*nv));

    if (!nv) {
        return -1;
    }
    k->vers = nv;
    k->vers[k->nvers++] = kv;
    return 0;
}

static void conflict_deleted(struct emu_resp *rs, const char *name)
{
    char msg[400];

    snprintf(msg, sizeof(msg),
             "Key %.150s is currently in a deleted but recoverable state, and "
             "its name cannot be reused; in this state, the key can only be "
             "recovered or purged.",
             name);
    emu_resp_kv_error(rs, 409, "Conflict", msg,
                      "ObjectIsDeletedButRecoverable");
}

/* MODE: 0 create (POST /keys/{n}/create), 1 rotate (POST /keys/{n}/rotate),
 * 2 import (PUT /keys/{n}). All add a version, or the key. */
static void op_create(struct call *c, int mode)
{
    int rotate = mode == 1;
    cJSON *body = NULL, *x;
    const char *kty = NULL, *err = NULL;
    char crv[8] = "";
    int bits = 0;
    long long pubexp = 0;
    struct emu_keyver *kv = NULL;
    struct emu_key *k;

    if (!emu_valid_name(c->rt.name, 1, 127)) {
        bad_param(c->rs, "The key name is not valid: it must be 1-127 "
                         "characters of 0-9, a-z, A-Z and '-'.");
        goto out;
    }
    if (mode == 2) {
        body = parse_body(c);
        if (!body) {
            goto out;
        }
        x = cJSON_GetObjectItemCaseSensitive(body, "key");
        if (!cJSON_IsObject(x)) {
            bad_param(c->rs, "Property 'key' is required.");
            goto out;
        }
        /* A Managed HSM keeps every imported key in its HSM. */
        kv = emu_keyver_import(
            x, NULL,
            c->v->hsm || cJSON_IsTrue(cJSON_GetObjectItem(body, "Hsm")), &err);
        if (!kv) {
            bad_param(c->rs, err);
            goto out;
        }
    } else if (!rotate) {
        body = parse_body(c);
        if (!body) {
            goto out;
        }
        x = cJSON_GetObjectItemCaseSensitive(body, "kty");
        if (!cJSON_IsString(x)) {
            bad_param(c->rs, "Property 'kty' is required.");
            goto out;
        }
        kty = x->valuestring;
        if (c->v->hsm && strcmp(kty, "RSA-HSM") != 0
            && strcmp(kty, "EC-HSM") != 0 && strcmp(kty, "oct-HSM") != 0) {
            /* Managed HSM keeps HSM-protected keys only (mhsm.md). */
            bad_param(c->rs, "The specified key type is not supported by "
                             "Managed HSM: use RSA-HSM, EC-HSM or oct-HSM.");
            goto out;
        }
        x = cJSON_GetObjectItemCaseSensitive(body, "key_size");
        if (cJSON_IsNumber(x)) {
            long long ks;

            /* any size a key can have fits an int; others are refused by
             * emu_keyver_new as unsupported */
            bits = emu_json_ll(x, &ks) == 0 && ks >= 0 && ks <= 65536 ? (int)ks
                                                                      : -1;
        } else if (x && !cJSON_IsNull(x)) {
            bad_param(c->rs, "Property 'key_size' is not valid.");
            goto out;
        }
        x = cJSON_GetObjectItemCaseSensitive(body, "crv");
        if (cJSON_IsString(x)) {
            if (strlen(x->valuestring) >= sizeof(crv)) {
                bad_param(c->rs, "The specified curve is not supported.");
                goto out;
            }
            snprintf(crv, sizeof(crv), "%s", x->valuestring);
        }
        /* KeyCreateParameters.public_exponent (the SDK's createRsaKey
         * publicExponent): honoured or refused by emu_keyver_new_e. */
        x = cJSON_GetObjectItemCaseSensitive(body, "public_exponent");
        if (cJSON_IsNumber(x)) {
            if (emu_json_ll(x, &pubexp) != 0 || pubexp == 0) {
                pubexp = -1;
            }
        } else if (x && !cJSON_IsNull(x)) {
            bad_param(c->rs, "Property 'public_exponent' is not valid.");
            goto out;
        }
    } else {
        struct emu_keyver *cur;

        pthread_rwlock_rdlock(&emu.lock);
        k = emu_find_key(c->v, c->rt.name);
        cur = key_live(k) ? emu_find_version(k, NULL) : NULL;
        if (cur) {
            /* Literals only: the key may be purged after the unlock. */
            kty = strcmp(cur->kty, "RSA-HSM") == 0   ? "RSA-HSM"
                  : strcmp(cur->kty, "oct-HSM") == 0 ? "oct-HSM"
                  : strcmp(cur->kty, "EC") == 0      ? "EC"
                  : strcmp(cur->kty, "EC-HSM") == 0  ? "EC-HSM"
                                                     : "RSA";
            bits = cur->bits;
            snprintf(crv, sizeof(crv), "%s", cur->crv);
        }
        pthread_rwlock_unlock(&emu.lock);
        if (!kty) {
            not_found_key(c->rs, c->rt.name, NULL);
            goto out;
        }
    }
    /* Key generation outside the lock: RSA-4096 may take a second. */
    if (!kv) {
        kv = emu_keyver_new_e(kty, bits, crv, pubexp, &err);
    }
    if (!kv) {
        bad_param(c->rs, err);
        goto out;
    }
    if (body && apply_attrs(c, body, kv) != 0) {
        goto out;
    }
    pthread_rwlock_wrlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    if (k && k->deleted) {
        pthread_rwlock_unlock(&emu.lock);
        conflict_deleted(c->rs, c->rt.name);
        goto out;
    }
    if (k && key_pending(k)) {
        /* A recover still in progress (serve --delete-delay-ms). */
        pthread_rwlock_unlock(&emu.lock);
        emu_resp_kv_error(c->rs, 409, "Conflict",
                          "The key is being recovered; retry when the "
                          "recovery has completed.",
                          NULL);
        goto out;
    }
    /* Vault SKU (403), then secure key release attributes (400): the
     * service's order, each refused rather than ignored. */
    if (!emu_vault_kty_allowed(c->v, kv->kty, &err)) {
        pthread_rwlock_unlock(&emu.lock);
        emu_resp_kv_error(c->rs, 403, "Forbidden", err, NULL);
        goto out;
    }
    if (body && emu_release_on_create(body, c->v, c->api, kv, &err) != 0) {
        pthread_rwlock_unlock(&emu.lock);
        bad_param(c->rs, err);
        goto out;
    }
    if (rotate) {
        struct emu_keyver *cur = key_live(k) ? emu_find_version(k, NULL) : NULL;

        if (!cur) {
            pthread_rwlock_unlock(&emu.lock);
            not_found_key(c->rs, c->rt.name, NULL);
            goto out;
        }
        emu_keyver_rotated(kv, cur, k);
    }
    if (!k) {
        struct emu_key **nk =
            realloc(c->v->keys, (c->v->nkeys + 1) * sizeof(*nk));

        k = calloc(1, sizeof(*k));
        if (!nk || !k) {
            if (nk) {
                c->v->keys = nk;
            }
            free(k);
            pthread_rwlock_unlock(&emu.lock);
            emu_resp_kv_error(c->rs, 500, "InternalError", "Out of memory.",
                              NULL);
            goto out;
        }
        c->v->keys = nk;
        snprintf(k->name, sizeof(k->name), "%s", c->rt.name);
        c->v->keys[c->v->nkeys++] = k;
    }
    if (add_version(k, kv) != 0) {
        pthread_rwlock_unlock(&emu.lock);
        emu_resp_kv_error(c->rs, 500, "InternalError", "Out of memory.", NULL);
        goto out;
    }
    if (emu_store_save_key(c->v, k) != 0) {
        fprintf(stderr, "akv-emulator: cannot persist key %s\n", k->name);
    }
    send_bundle(c, 200, k, kv, 0);
    kv = NULL;
    pthread_rwlock_unlock(&emu.lock);
out:
    emu_keyver_free(kv);
    cJSON_Delete(body);
}

static void op_get(struct call *c)
{
    struct emu_key *k;
    struct emu_keyver *kv;

    pthread_rwlock_rdlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    kv = key_live(k) ? emu_find_version(k, c->rt.version) : NULL;
    if (!kv) {
        not_found_key(c->rs, c->rt.name, c->rt.version);
    } else {
        /* Disabled versions are still readable (public material only):
         * documented emulator choice, Key Vault docs are silent. */
        send_bundle(c, 200, k, kv, 0);
    }
    pthread_rwlock_unlock(&emu.lock);
}

/* Get Certificate / Get Certificate Versions (certificates.json). A
 * certificate lives as long as its key: a deleted key's is not found. */
static void op_cert(struct call *c)
{
    struct emu_key *k;
    struct emu_keyver *kv;
    cJSON *j;

    pthread_rwlock_rdlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    if (!key_live(k)) {
        k = NULL;
    }
    if (c->rt.action) {
        j = emu_cert_versions_json(c->base, k);
        emu_resp_json(c->rs, 200, j);
        cJSON_Delete(j);
    } else if (!k || !(kv = emu_cert_version(k, c->rt.version))) {
        emu_cert_not_found(c->rs, c->rt.name, c->rt.version);
    } else {
        j = emu_cert_bundle_json(c->base, k, kv);
        emu_resp_json(c->rs, 200, j);
        cJSON_Delete(j);
    }
    pthread_rwlock_unlock(&emu.lock);
}

static void op_update(struct call *c)
{
    cJSON *body = parse_body(c), *policy = NULL;
    struct emu_key *k;
    struct emu_keyver *kv, tmp;
    const char *err = NULL;

    if (!body) {
        return;
    }
    pthread_rwlock_wrlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    kv = key_live(k) ? emu_find_version(k, c->rt.version) : NULL;
    if (!kv) {
        not_found_key(c->rs, c->rt.name, c->rt.version);
        goto out;
    }
    /* Validate on a copy so a bad body changes nothing. */
    tmp = *kv;
    tmp.tags = NULL;
    if (apply_attrs(c, body, &tmp) != 0) {
        cJSON_Delete(tmp.tags);
        goto out;
    }
    /* KeyUpdateParameters.release_policy / attributes.exportable. */
    if (emu_release_on_update(body, kv, &policy, &err) != 0) {
        cJSON_Delete(tmp.tags);
        bad_param(c->rs, err);
        goto out;
    }
    if (policy) {
        cJSON_Delete(kv->release_policy);
        kv->release_policy = policy;
    }
    kv->enabled = tmp.enabled;
    kv->nbf = tmp.nbf;
    kv->exp = tmp.exp;
    kv->ops = tmp.ops;
    if (tmp.tags) {
        cJSON_Delete(kv->tags);
        kv->tags = tmp.tags;
    }
    kv->updated = emu_now();
    emu_store_save_key(c->v, k);
    send_bundle(c, 200, k, kv, 0);
out:
    pthread_rwlock_unlock(&emu.lock);
    cJSON_Delete(body);
}

static void op_delete(struct call *c)
{
    struct emu_key *k;

    pthread_rwlock_wrlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    if (!key_live(k)) {
        not_found_key(c->rs, c->rt.name, NULL);
        goto out;
    }
    k->deleted = 1;
    k->deleted_date = emu_now();
    k->purge_date = k->deleted_date + 90LL * 86400;
    start_pending(k);
    emu_store_save_key(c->v, k);
    send_bundle(c, 200, k, emu_find_version(k, NULL), 1);
out:
    pthread_rwlock_unlock(&emu.lock);
}

/* POST /keys/{n}/backup -> {"value": sealed blob of every version}. */
static void op_backup(struct call *c)
{
    struct emu_key *k;
    cJSON *j = NULL, *res = NULL;
    char *text = NULL, *b64 = NULL;
    unsigned char *blob = NULL;
    size_t bloblen = 0;

    pthread_rwlock_rdlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    if (!key_live(k)) {
        pthread_rwlock_unlock(&emu.lock);
        not_found_key(c->rs, c->rt.name, NULL);
        goto out;
    }
    j = emu_key_to_json(k);
    pthread_rwlock_unlock(&emu.lock);
    text = j ? cJSON_PrintUnformatted(j) : NULL;
    if (!text
        || emu_backup_seal((const unsigned char *)text, strlen(text), &blob,
                           &bloblen)
               != 0
        || !(b64 = emu_b64url_encode(blob, bloblen))) {
        emu_resp_kv_error(c->rs, 500, "InternalError",
                          "The backup could not be made.", NULL);
        goto out;
    }
    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "value", b64);
    emu_resp_json(c->rs, 200, res);
out:
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
    }
    free(text);
    free(blob);
    free(b64);
    cJSON_Delete(res);
    cJSON_Delete(j);
}

/* POST /keys/restore {"value": blob} -> KeyBundle of the restored key; 409
 * when the name is in use (live or soft-deleted). */
static void op_restore(struct call *c)
{
    cJSON *body = parse_body(c), *val, *j = NULL;
    unsigned char *blob = NULL, *plain = NULL;
    size_t bloblen = 0, plen = 0;
    struct emu_key *k = NULL, *have, **nk;
    char msg[300];

    if (!body) {
        goto out;
    }
    val = cJSON_GetObjectItemCaseSensitive(body, "value");
    if (!cJSON_IsString(val) || !val->valuestring[0]) {
        bad_param(c->rs, "Property 'value' is required.");
        goto out;
    }
    blob = emu_b64url_decode(val->valuestring, &bloblen);
    if (!blob) {
        bad_param(c->rs, "Content of 'value' is not base64url.");
        goto out;
    }
    if (emu_backup_open(blob, bloblen, &plain, &plen) != 0
        || !(j = cJSON_ParseWithLength((const char *)plain, plen))
        || !(k = emu_key_from_json(j))) {
        bad_param(c->rs, "Backup blob contains invalid or corrupt version.");
        goto out;
    }
    k->deleted = 0;
    k->deleted_date = k->purge_date = 0;
    pthread_rwlock_wrlock(&emu.lock);
    have = emu_find_key(c->v, k->name);
    if (have && have->deleted) {
        pthread_rwlock_unlock(&emu.lock);
        conflict_deleted(c->rs, k->name);
        goto out;
    }
    if (have) {
        pthread_rwlock_unlock(&emu.lock);
        snprintf(msg, sizeof(msg),
                 "There is already a key with the name %.150s in this key "
                 "vault.",
                 k->name);
        emu_resp_kv_error(c->rs, 409, "Conflict", msg, NULL);
        goto out;
    }
    nk = realloc(c->v->keys, (c->v->nkeys + 1) * sizeof(*nk));
    if (!nk) {
        pthread_rwlock_unlock(&emu.lock);
        emu_resp_kv_error(c->rs, 500, "InternalError", "Out of memory.", NULL);
        goto out;
    }
    c->v->keys = nk;
    c->v->keys[c->v->nkeys++] = k;
    emu_store_save_key(c->v, k);
    send_bundle(c, 200, k, emu_find_version(k, NULL), 0);
    k = NULL;
    pthread_rwlock_unlock(&emu.lock);
out:
    emu_key_free(k);
    if (plain) {
        OPENSSL_cleanse(plain, plen);
    }
    free(plain);
    free(blob);
    cJSON_Delete(j);
    cJSON_Delete(body);
}

static void deleted_not_found(struct emu_resp *rs, const char *name)
{
    char msg[300];

    snprintf(msg, sizeof(msg), "Deleted Key not found: %.150s", name);
    emu_resp_kv_error(rs, 404, "KeyNotFound", msg, NULL);
}

static void op_deleted(struct call *c)
{
    struct emu_key *k;
    size_t i;

    pthread_rwlock_wrlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    if (!key_in_deleted(k)) {
        deleted_not_found(c->rs, c->rt.name);
        goto out;
    }
    switch (c->rt.op) {
    case EMU_OPN_GETDELETED:
        send_bundle(c, 200, k, emu_find_version(k, NULL), 1);
        break;
    case EMU_OPN_RECOVER:
        k->deleted = 0;
        k->deleted_date = k->purge_date = 0;
        start_pending(k);
        emu_store_save_key(c->v, k);
        send_bundle(c, 200, k, emu_find_version(k, NULL), 0);
        break;
    default: /* purge */
        emu_store_remove_key(c->v, k);
        for (i = 0; i < c->v->nkeys; i++) {
            if (c->v->keys[i] == k) {
                c->v->keys[i] = c->v->keys[--c->v->nkeys];
                break;
            }
        }
        emu_key_free(k);
        c->rs->status = 204;
        break;
    }
out:
    pthread_rwlock_unlock(&emu.lock);
}

static void op_list(struct call *c)
{
    const char *mr = emu_req_arg(c->rq, "maxresults");
    const char *st = emu_req_arg(c->rq, "$skiptoken");
    long max = 25, skip = 0, idx = 0, emitted = 0;
    cJSON *root = cJSON_CreateObject(), *arr;
    char kid[700], next[900];
    struct emu_key *k = NULL;
    size_t i, count;
    int versions = c->rt.action != NULL;

    if (mr) {
        char *end;

        max = strtol(mr, &end, 10);
        if (*end || max < 1 || max > 25) {
            bad_param(c->rs, "The 'maxresults' parameter must be between 1 "
                             "and 25.");
            cJSON_Delete(root);
            return;
        }
    }
    if (st) {
        char *end;

        /* Our nextLinks carry a plain offset; anything else is a token the
         * service never issued, which it rejects (the message is ours). */
        errno = 0;
        skip = strtol(st, &end, 10);
        if (*st < '0' || *st > '9' || *end || errno == ERANGE
            || skip > 1000000000L) {
            bad_param(c->rs, "The skip token is not valid.");
            cJSON_Delete(root);
            return;
        }
    }
    arr = cJSON_AddArrayToObject(root, "value");
    pthread_rwlock_rdlock(&emu.lock);
    if (versions) {
        k = emu_find_key(c->v, c->rt.name);
        /* List Key Versions of a key that does not exist (or is deleted):
         * the service answers 200 with an empty list, not 404 (the Azure
         * SDK's listPropertiesOfKeyVersions tests expect no items). */
        if (!key_live(k)) {
            k = NULL;
        }
    }
    count = versions ? (k ? k->nvers : 0) : c->v->nkeys;
    for (i = 0; i < count; i++) {
        const struct emu_key *kk = versions ? k : c->v->keys[i];
        const struct emu_keyver *kv =
            versions ? k->vers[i] : emu_find_version(c->v->keys[i], NULL);
        cJSON *o;

        if (!kv
            || (!versions
                && (kk->deleted != c->rt.deleted_ns || key_pending(kk)))) {
            continue;
        }
        if (idx++ < skip) {
            continue;
        }
        if (emitted == max) {
            break;
        }
        o = cJSON_CreateObject();
        if (c->rt.deleted_ns) {
            add_deleted(o, c->base, kk);
        }
        if (versions) {
            snprintf(kid, sizeof(kid), "%s/keys/%s/%s", c->base, kk->name,
                     kv->id);
        } else {
            snprintf(kid, sizeof(kid), "%s/keys/%s", c->base, kk->name);
        }
        cJSON_AddStringToObject(o, "kid", kid);
        cJSON_AddItemToObject(o, "attributes", attributes_json(kv));
        if (kv->tags) {
            cJSON_AddItemToObject(o, "tags", cJSON_Duplicate(kv->tags, 1));
        }
        cJSON_AddItemToArray(arr, o);
        emitted++;
    }
    if (i < count && emitted == max) {
        if (versions) {
            snprintf(next, sizeof(next),
                     "%s/keys/%s/versions?api-version=%s&$skiptoken=%ld&"
                     "maxresults=%ld",
                     c->base, k->name, c->api, skip + emitted, max);
        } else {
            snprintf(next, sizeof(next),
                     "%s/%s?api-version=%s&$skiptoken=%ld&maxresults=%ld",
                     c->base, c->rt.deleted_ns ? "deletedkeys" : "keys", c->api,
                     skip + emitted, max);
        }
        cJSON_AddStringToObject(root, "nextLink", next);
    } else {
        cJSON_AddNullToObject(root, "nextLink");
    }
    pthread_rwlock_unlock(&emu.lock);
    emu_resp_json(c->rs, 200, root);
    cJSON_Delete(root);
}

/* GET /keys/{name}/rotationpolicy (Get Key Rotation Policy) and PUT
 * (Update Key Rotation Policy): 404 KeyNotFound for a key that does not
 * exist (the Azure SDK's "throws when attempting to fetch a policy of a
 * non-existent key"), 400 BadParameter for a policy the service refuses. */
static void op_rotation_policy(struct call *c)
{
    int put = c->rt.special == SP_SET_POLICY;
    cJSON *body = NULL, *pol = NULL, *res;
    const char *err = NULL;
    struct emu_key *k;

    if (put && !(body = parse_body(c))) {
        return;
    }
    if (put) {
        pthread_rwlock_wrlock(&emu.lock);
    } else {
        pthread_rwlock_rdlock(&emu.lock);
    }
    k = emu_find_key(c->v, c->rt.name);
    if (!key_live(k)) {
        not_found_key(c->rs, c->rt.name, NULL);
        goto out;
    }
    if (put) {
        pol = emu_rotation_policy_parse(body, k->rotation_policy, &err);
        if (!pol) {
            bad_param(c->rs, err);
            goto out;
        }
        cJSON_Delete(k->rotation_policy);
        k->rotation_policy = pol;
        emu_store_save_key(c->v, k);
    }
    res = emu_rotation_policy_json(c->base, k);
    emu_resp_json(c->rs, 200, res);
    cJSON_Delete(res);
out:
    pthread_rwlock_unlock(&emu.lock);
    cJSON_Delete(body);
}

/* POST /keys/{name}[/{version}]/release (Release, KeyReleaseParameters:
 * target attestation token, nonce, enc). The emulator has no attestation
 * service to verify TARGET against the key's release policy, so a valid
 * request for an exportable key gets the answer of a vault that cannot
 * verify the attestation: 400 BadParameter (message ours). */
static void op_release(struct call *c)
{
    static const char *const encs[] = {
        "CKM_RSA_AES_KEY_WRAP", "RSA_AES_KEY_WRAP_256", "RSA_AES_KEY_WRAP_384"};
    cJSON *body = parse_body(c), *x;
    struct emu_key *k;
    struct emu_keyver *kv;
    size_t i;

    if (!body) {
        return;
    }
    x = cJSON_GetObjectItemCaseSensitive(body, "target");
    if (!cJSON_IsString(x) || !x->valuestring[0]) {
        bad_param(c->rs, "Property 'target' is required.");
        goto out_body;
    }
    x = cJSON_GetObjectItemCaseSensitive(body, "enc");
    if (x && !cJSON_IsNull(x)) {
        for (i = 0; i < sizeof(encs) / sizeof(encs[0]); i++) {
            if (cJSON_IsString(x) && strcmp(x->valuestring, encs[i]) == 0) {
                break;
            }
        }
        if (i == sizeof(encs) / sizeof(encs[0])) {
            bad_param(c->rs, "Property 'enc' is not a supported key "
                             "encryption algorithm.");
            goto out_body;
        }
    }
    pthread_rwlock_rdlock(&emu.lock);
    k = emu_find_key(c->v, c->rt.name);
    kv = key_live(k) ? emu_find_version(k, c->rt.version) : NULL;
    if (!kv) {
        not_found_key(c->rs, c->rt.name, c->rt.version);
    } else if (!kv->exportable) {
        bad_param(c->rs, "The key is not exportable: it has no release "
                         "policy.");
    } else {
        bad_param(c->rs, "Target environment attestation statement cannot "
                         "be verified: this vault has no attestation "
                         "service.");
    }
    pthread_rwlock_unlock(&emu.lock);
out_body:
    cJSON_Delete(body);
}

static const char *op_display(int op)
{
    switch (op) {
    case EMU_OPN_WRAPKEY:
        return "wrapKey";
    case EMU_OPN_UNWRAPKEY:
        return "unwrapKey";
    case EMU_OPN_ENCRYPT:
        return "encrypt";
    case EMU_OPN_SIGN:
        return "sign";
    case EMU_OPN_VERIFY:
        return "verify";
    default:
        return "decrypt";
    }
}

/* KeyOperationsParameters iv / tag / aad (base64url, optional) into P:
 * the AES-GCM/CBC inputs of emulator/aes.c. 0, or -1 with the 400 sent. */
static int aes_params(struct call *c, cJSON *body, struct emu_aes_params *p)
{
    static const char *const names[] = {"iv", "tag", "aad"};
    size_t i;

    for (i = 0; i < 3; i++) {
        cJSON *x = cJSON_GetObjectItemCaseSensitive(body, names[i]);
        unsigned char *v;
        size_t n = 0;

        if (!x || cJSON_IsNull(x)) {
            continue;
        }
        v = cJSON_IsString(x) ? emu_b64url_decode(x->valuestring, &n) : NULL;
        if (!v || (i < 2 && n > 16)) {
            char msg[80];

            free(v);
            snprintf(msg, sizeof(msg), "Property '%s' is not valid.", names[i]);
            bad_param(c->rs, msg);
            return -1;
        }
        if (i == 0) {
            memcpy(p->iv, v, n);
            p->iv_len = n;
        } else if (i == 1) {
            memcpy(p->tag, v, n);
            p->tag_len = n;
        } else {
            p->aad = v;
            p->aad_len = n;
            continue;
        }
        free(v);
    }
    return 0;
}

/* Adds the iv / tag (and aad) an AES-GCM/CBC answer carries. */
static void aes_answer(cJSON *res, const struct emu_aes_params *p)
{
    char *b;

    if (p->answer_iv) {
        b = emu_b64url_encode(p->iv, p->iv_len);
        cJSON_AddStringToObject(res, "iv", b ? b : "");
        free(b);
    }
    if (p->answer_tag) {
        b = emu_b64url_encode(p->tag, p->tag_len);
        cJSON_AddStringToObject(res, "tag", b ? b : "");
        free(b);
        if (p->aad) {
            b = emu_b64url_encode(p->aad, p->aad_len);
            cJSON_AddStringToObject(res, "aad", b ? b : "");
            free(b);
        }
    }
}

static void op_crypt(struct call *c)
{
    cJSON *body = parse_body(c), *alg, *val, *res = NULL;
    int op = c->rt.op;
    int decrypt = op == EMU_OPN_UNWRAPKEY || op == EMU_OPN_DECRYPT;
    /* Outside nbf/exp only the operations that recover old data (unwrap,
     * decrypt, verify) still work (protocol.md 7). */
    int lenient = decrypt || op == EMU_OPN_VERIFY;
    unsigned need = op == EMU_OPN_WRAPKEY     ? EMU_OP_WRAPKEY
                    : op == EMU_OPN_UNWRAPKEY ? EMU_OP_UNWRAPKEY
                    : op == EMU_OPN_ENCRYPT   ? EMU_OP_ENCRYPT
                    : op == EMU_OPN_SIGN      ? EMU_OP_SIGN
                    : op == EMU_OPN_VERIFY    ? EMU_OP_VERIFY
                                              : EMU_OP_DECRYPT;
    unsigned char *in = NULL, *out = NULL, *dig = NULL;
    size_t inlen = 0, outlen = 0, diglen = 0;
    struct emu_aes_params ap;
    int verified = 0;
    struct emu_key *k;
    struct emu_keyver *kv;
    const char *err = NULL;
    char msg[800], kid[700];
    long long now = emu_now();
    int locked = 0, rc = -1;

    memset(&ap, 0, sizeof(ap));
    if (!body) {
        goto out;
    }
    alg = cJSON_GetObjectItemCaseSensitive(body, "alg");
    val = cJSON_GetObjectItemCaseSensitive(body, "value");
    if (!cJSON_IsString(alg)) {
        bad_param(c->rs, "Property 'alg' is required.");
        goto out;
    }
    if (!cJSON_IsString(val) || !val->valuestring[0]) {
        bad_param(c->rs, "Property 'value' is required.");
        goto out;
    }
    in = emu_b64url_decode(val->valuestring, &inlen);
    if (!in) {
        bad_param(c->rs, "Content of 'value' is not base64url.");
        goto out;
    }
    if ((op == EMU_OPN_ENCRYPT || op == EMU_OPN_DECRYPT)
        && aes_params(c, body, &ap) != 0) {
        goto out;
    }
    if (op == EMU_OPN_VERIFY) {
        /* KeyVerifyParameters: digest + value (the signature). */
        cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "digest");

        if (!cJSON_IsString(d) || !d->valuestring[0]) {
            bad_param(c->rs, "Property 'digest' is required.");
            goto out;
        }
        dig = emu_b64url_decode(d->valuestring, &diglen);
        if (!dig) {
            bad_param(c->rs, "Content of 'digest' is not base64url.");
            goto out;
        }
    }
    pthread_rwlock_rdlock(&emu.lock);
    locked = 1;
    k = emu_find_key(c->v, c->rt.name);
    kv = key_live(k) ? emu_find_version(k, c->rt.version) : NULL;
    if (!kv) {
        not_found_key(c->rs, c->rt.name, c->rt.version);
        goto out;
    }
    snprintf(kid, sizeof(kid), "%s/keys/%s/%s", c->base, k->name, kv->id);
    if (!kv->enabled) {
        snprintf(msg, sizeof(msg),
                 "Operation %s is not allowed on a disabled key.",
                 op_display(op));
        emu_resp_kv_error(c->rs, 403, "Forbidden", msg, "KeyDisabled");
        goto out;
    }
    if (!lenient && kv->nbf && kv->nbf > now) {
        snprintf(msg, sizeof(msg),
                 "Operation %s is not allowed on a key that is not yet valid "
                 "(nbf).",
                 op_display(op));
        emu_resp_kv_error(c->rs, 403, "Forbidden", msg, "KeyNotYetValid");
        goto out;
    }
    if (!lenient && kv->exp && kv->exp <= now) {
        snprintf(msg, sizeof(msg),
                 "Operation %s is not allowed on an expired key.",
                 op_display(op));
        emu_resp_kv_error(c->rs, 403, "Forbidden", msg, "KeyExpired");
        goto out;
    }
    if (!(kv->ops & need)) {
        snprintf(msg, sizeof(msg),
                 "Operation is not allowed.\r\nOperation: \"%s\"\r\nCaller: "
                 "appid=%s;oid=%s\r\nVault: %s;location=local\r\n",
                 op_display(op), c->who.appid, c->who.oid, c->v->name);
        emu_resp_kv_error(c->rs, 403, "Forbidden", msg,
                          "KeyOperationForbidden");
        goto out;
    }
    if (emu.throttle_on && !c->v->hsm) {
        int ra = emu_throttle_take(c->v, op, kv);

        if (ra > 0) {
            throttled_reply(c->rs, ra);
            goto out;
        }
    }
    if (op == EMU_OPN_SIGN) {
        rc = emu_key_sign(kv, alg->valuestring, in, inlen, &out, &outlen, &err);
    } else if (op == EMU_OPN_VERIFY) {
        rc = emu_key_verify(kv, alg->valuestring, dig, diglen, in, inlen,
                            &verified, &err);
    } else {
        rc = op == EMU_OPN_ENCRYPT || op == EMU_OPN_DECRYPT
                 ? emu_aes_crypt(kv, decrypt, alg->valuestring, in, inlen, &ap,
                                 &out, &outlen, &err)
                 : 1;
        if (rc == 1) {
            rc = emu_key_crypt(kv, decrypt, alg->valuestring, in, inlen, &out,
                               &outlen, &err);
        }
    }
    if (rc != 0) {
        bad_param(c->rs, err);
        goto out;
    }
    pthread_rwlock_unlock(&emu.lock);
    locked = 0;
    res = cJSON_CreateObject();
    if (op == EMU_OPN_VERIFY) {
        /* KeyVerifyResult carries only the boolean. */
        cJSON_AddBoolToObject(res, "value", verified);
        emu_resp_json(c->rs, 200, res);
        goto out;
    }
    cJSON_AddStringToObject(res, "kid", kid);
    {
        char *ob = emu_b64url_encode(out, outlen);

        cJSON_AddStringToObject(res, "value", ob ? ob : "");
        aes_answer(res, &ap);
        emu_resp_json(c->rs, 200, res);
        if (ob) {
            OPENSSL_cleanse(ob, strlen(ob));
        }
        free(ob);
    }
    /* The printed body stays in rs->body until MHD copies it. */
    cJSON_ArrayForEach(val, res)
    {
        if (val->valuestring) {
            OPENSSL_cleanse(val->valuestring, strlen(val->valuestring));
        }
    }
out:
    if (locked) {
        pthread_rwlock_unlock(&emu.lock);
    }
    if (in) {
        OPENSSL_cleanse(in, inlen);
    }
    free(in);
    free(dig);
    free((void *)ap.aad);
    if (out) {
        OPENSSL_cleanse(out, outlen);
    }
    free(out);
    cJSON_Delete(res);
    cJSON_Delete(body);
}

/* A hostile vault (issue 7 §3): rewrites the kid of a KeyBundle or a
 * KeyOperationResult, or the public key of a KeyBundle. Returns 1 when HOW
 * was one of these kinds (J then changed). */
static int malform_hostile(cJSON *j, const char *how)
{
    static const char forged[] =
        "\n2026-01-01T00:00:00.000Z akv-pkcs11[1/1] ERROR forged: line";
    cJSON *key = cJSON_GetObjectItem(j, "key");
    cJSON *kid = cJSON_GetObjectItem(cJSON_IsObject(key) ? key : j, "kid");

    if (strcmp(how, "jwk-e1") == 0 || strcmp(how, "jwk-n8") == 0) {
        cJSON *v =
            cJSON_GetObjectItem(key, strcmp(how, "jwk-e1") == 0 ? "e" : "n");
        if (cJSON_IsString(v)) {
            /* e = 1: RSA "encryption" becomes the identity; n = 0xc1 */
            cJSON_SetValuestring(v, strcmp(how, "jwk-e1") == 0 ? "AQ" : "wQ");
        }
        return 1;
    }
    if (strcmp(how, "kid-host") == 0 || strcmp(how, "kid-newline") == 0) {
        if (cJSON_IsString(kid)) {
            const char *path = strstr(kid->valuestring, "://");
            size_t n = strlen(kid->valuestring) + sizeof(forged) + 32;
            char *s = malloc(n);

            path = path != NULL ? strchr(path + 3, '/') : NULL;
            if (s != NULL && path != NULL) {
                if (strcmp(how, "kid-host") == 0) {
                    snprintf(s, n, "https://evil.example%s", path);
                } else {
                    snprintf(s, n, "%s%s", kid->valuestring, forged);
                }
                cJSON_SetValuestring(kid, s);
            }
            free(s);
        }
        return 1;
    }
    return 0;
}

/* Rewrites a 200 JSON body per a --malformed fault. */
static void malform(struct emu_resp *rs, const char *how)
{
    cJSON *j;
    cJSON *target;

    if (rs->status != 200 || !rs->body) {
        return;
    }
    if (strncmp(how, "jwk-", 4) == 0 || strncmp(how, "kid-", 4) == 0) {
        j = cJSON_Parse(rs->body);
        if (j != NULL && malform_hostile(j, how)) {
            emu_resp_json(rs, 200, j);
        }
        cJSON_Delete(j);
        return;
    }
    if (strcmp(how, "truncated") == 0) {
        rs->len /= 2;
        rs->body[rs->len] = 0;
        return;
    }
    j = cJSON_Parse(rs->body);
    if (!j) {
        return;
    }
    target = cJSON_GetObjectItem(j, "value");
    if (!target) {
        target = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "key"), "n");
    }
    if (cJSON_IsString(target)) {
        if (strcmp(how, "bad-base64") == 0) {
            cJSON_SetValuestring(target, "!!not+base64/url==*");
        } else {
            /* wrong-length: one byte short; bit-flip: the same length
             * with one bit of the middle byte changed */
            size_t l = 0;
            unsigned char *raw = emu_b64url_decode(target->valuestring, &l);
            int flip = strcmp(how, "bit-flip") == 0;

            if (raw && flip && l > 0) {
                raw[l / 2] ^= 0x01;
            }
            if (raw && l > 1) {
                char *s = emu_b64url_encode(raw, flip ? l : l - 1);

                if (s) {
                    cJSON_SetValuestring(target, s);
                }
                free(s);
            }
            free(raw);
        }
    }
    emu_resp_json(rs, 200, j);
    cJSON_Delete(j);
}

/* Error code an injected status carries, as the service names them. */
static const char *fault_code(int status)
{
    switch (status) {
    case 400:
        return "BadParameter";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 408:
        return "RequestTimeout";
    case 409:
        return "Conflict";
    case 502:
        return "BadGateway";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "GatewayTimeout";
    default:
        return status < 500 ? "BadRequest" : "InternalServerError";
    }
}

static void vault_handler(struct emu_req *rq, struct emu_resp *rs)
{
    struct call c;
    char *path = strdup(rq->url), *seg[MAX_SEGS];
    const char *host = emu_req_header(rq, "Host");
    int n, r;

    memset(&c, 0, sizeof(c));
    c.rq = rq;
    c.rs = rs;
    c.v = rq->ctx;
    if (!path) {
        emu_resp_kv_error(rs, 500, "InternalError", "Out of memory.", NULL);
        return;
    }
    if (host && strlen(host) < 200 && !strpbrk(host, "/\"\\ ")) {
        snprintf(c.base, sizeof(c.base), "https://%s", host);
    } else {
        snprintf(c.base, sizeof(c.base), "https://%s:%d", emu.host, c.v->port);
    }
    n = split(path, seg, MAX_SEGS);
    r = n < 0 ? 404 : route(rq->method, seg, n, &c.rt);
    emu_stats_count(c.rt.op);
    if (emu_fault_match(c.rt.op, rq->url, &c.fault)) {
        rs->trickle_ms = c.fault.trickle_ms;
        if (c.fault.kind == EMU_FAULT_HANG) {
            rs->hang = 1;
            goto out;
        }
        if (c.fault.kind == EMU_FAULT_STATUS) {
            rs->retry_after = c.fault.retry_after;
            if (c.fault.status == 429) {
                emu_resp_kv_error(rs, 429, "Throttled",
                                  "Request was not processed because too "
                                  "many requests were received.",
                                  NULL);
            } else if (c.fault.status == 401) {
                challenge(&c, "AKV10000: Request is missing a Bearer or PoP "
                              "token.");
            } else {
                emu_resp_kv_error(rs, c.fault.status,
                                  fault_code(c.fault.status), "Injected fault.",
                                  NULL);
            }
            goto out;
        }
        if (c.fault.kind == EMU_FAULT_DELAY) {
            rs->delay_ms = c.fault.delay_ms;
        }
    }
    if (r == 0 && c.rt.special == SP_CERT && c.v->hsm) {
        r = 404; /* a Managed HSM keeps keys only */
    }
    if (r == 404) {
        emu_resp_kv_error(rs, 404, "NotFound",
                          "The requested resource was not found.", NULL);
        goto out;
    }
    if (r == 405) {
        emu_resp_kv_error(rs, 405, "MethodNotAllowed",
                          "The requested method is not allowed.", NULL);
        goto out;
    }
    if (check_api_version(&c) != 0 || authorize(&c) != 0) {
        goto out;
    }
    if (emu.throttle_on && c.rt.op != EMU_OPN_WRAPKEY
        && c.rt.op != EMU_OPN_UNWRAPKEY && c.rt.op != EMU_OPN_ENCRYPT
        && c.rt.op != EMU_OPN_DECRYPT && c.rt.op != EMU_OPN_SIGN
        && c.rt.op != EMU_OPN_VERIFY) {
        int ra = emu_throttle_take(c.v, c.rt.op, NULL);

        if (ra > 0) {
            throttled_reply(rs, ra);
            goto out;
        }
    }
    switch (c.rt.special ? -1 : c.rt.op) {
    case -1:
        if (c.rt.special == SP_RELEASE) {
            op_release(&c);
        } else if (c.rt.special == SP_CERT) {
            op_cert(&c);
        } else {
            op_rotation_policy(&c);
        }
        break;
    case EMU_OPN_GET:
        op_get(&c);
        break;
    case EMU_OPN_LIST:
        op_list(&c);
        break;
    case EMU_OPN_CREATE:
        op_create(&c, 0);
        break;
    case EMU_OPN_ROTATE:
        op_create(&c, 1);
        break;
    case EMU_OPN_IMPORT:
        op_create(&c, 2);
        break;
    case EMU_OPN_BACKUP:
        op_backup(&c);
        break;
    case EMU_OPN_RESTORE:
        op_restore(&c);
        break;
    case EMU_OPN_UPDATE:
        op_update(&c);
        break;
    case EMU_OPN_DELETE:
        op_delete(&c);
        break;
    case EMU_OPN_GETDELETED:
    case EMU_OPN_RECOVER:
    case EMU_OPN_PURGE:
        op_deleted(&c);
        break;
    default:
        op_crypt(&c);
        break;
    }
    if (c.fault.kind == EMU_FAULT_MALFORMED) {
        malform(rs, c.fault.malformed);
    } else if (c.fault.kind == EMU_FAULT_CLOSE) {
        rs->close_mid = 1;
    }
out:
    free(path);
}

int emu_vault_start(struct emu_vault *v)
{
    struct MHD_Daemon *d;

    d = emu_http_start(emu.host, v->port, 1, vault_handler, v);
    if (!d) {
        return -1;
    }
    v->daemon = d;
    v->port = emu_http_port(d);
    return v->port > 0 ? 0 : -1;
}

void emu_vault_stop(struct emu_vault *v)
{
    if (v->daemon) {
        emu_http_stop(v->daemon);
        v->daemon = NULL;
    }
}
