/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed HSM local RBAC: the built-in role definitions (their ids and the
 * key data actions they grant), role assignments at "/", "/keys" or
 * "/keys/{name}" scope, and the 403 a request without a matching assignment
 * gets. Follows "Local RBAC built-in roles for Managed HSM" (learn.microsoft
 * .com/azure/key-vault/managed-hsm/built-in-roles) and "Managed HSM access
 * control" (an assignment at a scope covers everything under it; access is
 * the union of the caller's assignments). Callers hold emu.lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emu.h"

#define DA "Microsoft.KeyVault/managedHsm/"

/* Data action of each EMU_P_* bit (one bit per access-policy permission,
 * emu.h order), as the 403 message names it. */
static const char *const data_actions[] = {
    DA "keys/read/action",                 /* get */
    DA "keys/read/action",                 /* list */
    DA "keys/create",                      /* create */
    DA "keys/write/action",                /* update */
    DA "keys/import/action",               /* import */
    DA "keys/delete",                      /* delete */
    DA "keys/deletedKeys/recover/action",  /* recover */
    DA "keys/backup/action",               /* backup */
    DA "keys/restore/action",              /* restore */
    DA "keys/deletedKeys/delete",          /* purge */
    DA "keys/encrypt/action",              /* encrypt */
    DA "keys/decrypt/action",              /* decrypt */
    DA "keys/wrap/action",                 /* wrapKey */
    DA "keys/unwrap/action",               /* unwrapKey */
    DA "keys/sign/action",                 /* sign */
    DA "keys/verify/action",               /* verify */
    DA "keys/rotate/action",               /* rotate */
    DA "keys/rotationpolicy/read/action",  /* getrotationpolicy */
    DA "keys/rotationpolicy/write/action", /* setrotationpolicy */
    DA "keys/release/action",              /* release */
};

#define P_READ (EMU_P_GET | EMU_P_LIST)

/* The built-in roles. Key permissions per the doc's "Permitted operations"
 * table; role management, security domain and full backup are not
 * emulated (the control CLI manages assignments, as the portal would). */
static const struct emu_role roles[] = {
    {"Managed HSM Administrator", "a290e904-7015-4bba-90c8-60543313cdb4", 0},
    {"Managed HSM Crypto Officer", "515eb02d-2335-4d2d-92f2-b1cbdf9c3778",
     P_READ | EMU_P_PURGE | EMU_P_RECOVER | EMU_P_GETROTATIONPOLICY
         | EMU_P_RELEASE},
    {"Managed HSM Crypto User", "21dbd100-6940-42c2-9190-5d6cb909625b",
     EMU_P_ALL & ~(EMU_P_PURGE | EMU_P_RECOVER | EMU_P_RELEASE)},
    {"Managed HSM Policy Administrator", "4bd23610-cdcf-4971-bdee-bdc562cc28e4",
     0},
    {"Managed HSM Crypto Auditor", "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
     P_READ | EMU_P_GETROTATIONPOLICY},
    {"Managed HSM Crypto Service Encryption User",
     "33413926-3206-4cdd-b39a-83574fe37a17",
     P_READ | EMU_P_WRAPKEY | EMU_P_UNWRAPKEY},
    {"Managed HSM Crypto Service Release User",
     "21dbd100-6940-42c2-9190-5d6cb909625c", P_READ | EMU_P_RELEASE},
    {"Managed HSM Backup", "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
     P_READ | EMU_P_BACKUP},
    {"Managed HSM Restore", "6efe6056-5259-49d2-8b3d-d3d73544b20b",
     EMU_P_RESTORE},
};

#define NROLES (sizeof(roles) / sizeof(roles[0]))
#define DEF_PREFIX                                                             \
    "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"

const struct emu_role *emu_role_find(const char *name_or_id)
{
    const char *id = name_or_id;
    size_t i, pl = strlen(DEF_PREFIX);

    if (!name_or_id) {
        return NULL;
    }
    if (strncasecmp(id, DEF_PREFIX, pl) == 0) {
        id += pl;
    }
    for (i = 0; i < NROLES; i++) {
        if (emu_strcaseeq(name_or_id, roles[i].name)
            || emu_strcaseeq(id, roles[i].id)) {
            return &roles[i];
        }
    }
    return NULL;
}

const struct emu_role *emu_role_at(size_t i)
{
    return i < NROLES ? &roles[i] : NULL;
}

int emu_rbac_scope_valid(const char *scope)
{
    if (!scope) {
        return 0;
    }
    if (strcmp(scope, "/") == 0 || strcmp(scope, "/keys") == 0) {
        return 1;
    }
    return strncmp(scope, "/keys/", 6) == 0
           && emu_valid_name(scope + 6, 1, 127);
}

/* Does an assignment at SCOPE cover key NAME (NULL: the HSM's key
 * collection itself, as list and restore address)? */
static int covers(const char *scope, const char *name)
{
    if (strcmp(scope, "/") == 0 || strcmp(scope, "/keys") == 0) {
        return 1;
    }
    return name && emu_strcaseeq(scope + 6, name);
}

int emu_rbac_check(const struct emu_vault *v, const struct emu_caller *who,
                   unsigned perm, const char *key, char *msg, size_t msglen)
{
    size_t i, b;
    const char *action = "unknown";

    for (i = 0; i < v->nroles; i++) {
        const struct emu_role_assignment *ra = &v->roles[i];

        if (emu_strcaseeq(ra->principal, who->oid) && covers(ra->scope, key)
            && (roles[ra->role].perms & perm)) {
            return 0;
        }
    }
    for (b = 0; b < sizeof(data_actions) / sizeof(data_actions[0]); b++) {
        if (perm == 1u << b) {
            action = data_actions[b];
        }
    }
    /* The shape of Managed HSM's answer: Forbidden, the caller, the data
     * action and the resource, innererror ForbiddenByRbac. */
    snprintf(msg, msglen,
             "Caller is not authorized to perform action on resource.\r\n"
             "If role assignments, deny assignments or role definitions "
             "were changed recently, please observe propagation time.\r\n"
             "Caller: appid=%s;oid=%s;iss=https://sts.windows.net/%s/\r\n"
             "Action: '%s'\r\nResource: '/keys%s%.127s'\r\n"
             "Assignment: (not found)\r\nDecisionReason: "
             "'DeniedWithNoValidRBAC'\r\nVault: %s;location=local\r\n",
             who->appid, who->oid, emu.tenant_id, action, key ? "/" : "",
             key ? key : "", v->name);
    return -1;
}

cJSON *emu_rbac_assignment_json(const struct emu_role_assignment *ra)
{
    cJSON *j = cJSON_CreateObject();
    char buf[200];

    snprintf(buf, sizeof(buf),
             "/providers/Microsoft.Authorization/roleAssignments/%s", ra->name);
    cJSON_AddStringToObject(j, "id", buf);
    cJSON_AddStringToObject(j, "name", ra->name);
    cJSON_AddStringToObject(j, "principalId", ra->principal);
    snprintf(buf, sizeof(buf), DEF_PREFIX "%s", roles[ra->role].id);
    cJSON_AddStringToObject(j, "roleDefinitionId", buf);
    cJSON_AddStringToObject(j, "roleName", roles[ra->role].name);
    cJSON_AddStringToObject(j, "scope", ra->scope);
    cJSON_AddStringToObject(j, "type",
                            "Microsoft.Authorization/roleAssignments");
    return j;
}

int emu_rbac_assign(struct emu_vault *v, const struct emu_role *role,
                    const char *oid, const char *scope,
                    struct emu_role_assignment **out)
{
    struct emu_role_assignment *n;
    size_t i;

    for (i = 0; i < v->nroles; i++) {
        struct emu_role_assignment *ra = &v->roles[i];

        if (&roles[ra->role] == role && emu_strcaseeq(ra->principal, oid)
            && strcmp(ra->scope, scope) == 0) {
            *out = ra; /* idempotent, as az answers an existing one */
            return 0;
        }
    }
    if (strlen(oid) > EMU_GUID_LEN || strlen(scope) >= sizeof(n->scope)) {
        return -1;
    }
    n = realloc(v->roles, (v->nroles + 1) * sizeof(*n));
    if (!n) {
        return -1;
    }
    v->roles = n;
    n = &v->roles[v->nroles++];
    memset(n, 0, sizeof(*n));
    emu_guid(n->name);
    snprintf(n->principal, sizeof(n->principal), "%s", oid);
    snprintf(n->scope, sizeof(n->scope), "%s", scope);
    n->role = (int)(role - roles);
    *out = n;
    return 0;
}

int emu_rbac_load(struct emu_vault *v, cJSON *arr)
{
    cJSON *o;

    cJSON_ArrayForEach(o, arr)
    {
        const struct emu_role *r = emu_role_find(emu_json_str(o, "roleId"));
        const char *oid = emu_json_str(o, "principalId");
        const char *scope = emu_json_str(o, "scope");
        const char *name = emu_json_str(o, "name");
        struct emu_role_assignment *ra;

        if (!r || !oid || !emu_rbac_scope_valid(scope) || !name
            || strlen(name) > EMU_GUID_LEN
            || emu_rbac_assign(v, r, oid, scope, &ra) != 0) {
            return -1;
        }
        snprintf(ra->name, sizeof(ra->name), "%s", name);
    }
    return 0;
}

cJSON *emu_rbac_save(const struct emu_vault *v)
{
    cJSON *arr = cJSON_CreateArray();
    size_t i;

    for (i = 0; i < v->nroles; i++) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", v->roles[i].name);
        cJSON_AddStringToObject(o, "roleId", roles[v->roles[i].role].id);
        cJSON_AddStringToObject(o, "principalId", v->roles[i].principal);
        cJSON_AddStringToObject(o, "scope", v->roles[i].scope);
    }
    return arr;
}
