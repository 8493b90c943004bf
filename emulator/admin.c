/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control plane ("portal/ARM"): the commands of the akv-emulator CLI run
 * here, inside the server, and print the JSON shapes of the matching `az`
 * commands (az identity, az ad sp create-for-rbac, az keyvault ...).
 * They are not subject to vault access policies.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "emu.h"
#include "http.h"

struct args {
    cJSON *argv;
    int n;
    int first;                 /* index of the first option */
    struct emu_keyver *pregen; /* key generated before taking the lock */
};

static const char *arg_at(const struct args *a, int i)
{
    cJSON *x = cJSON_GetArrayItem(a->argv, i);

    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static const char *opt(const struct args *a, const char *name)
{
    int i;

    for (i = a->first; i < a->n; i++) {
        const char *s = arg_at(a, i);

        if (s && strcmp(s, name) == 0) {
            const char *v = arg_at(a, i + 1);

            return v && strncmp(v, "--", 2) != 0 ? v : "";
        }
    }
    return NULL;
}

static int has_flag(const struct args *a, const char *name)
{
    int i;

    for (i = a->first; i < a->n; i++) {
        const char *s = arg_at(a, i);

        if (s && strcmp(s, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Values after NAME until the next "--option"; returns the index of the
 * first value and the count in *cnt, or -1 when NAME is absent. */
static int opt_list(const struct args *a, const char *name, int *cnt)
{
    int i, j;

    *cnt = 0;
    for (i = a->first; i < a->n; i++) {
        const char *s = arg_at(a, i);

        if (s && strcmp(s, name) == 0) {
            for (j = i + 1; j < a->n; j++) {
                const char *v = arg_at(a, j);

                if (!v || strncmp(v, "--", 2) == 0) {
                    break;
                }
                (*cnt)++;
            }
            return i + 1;
        }
    }
    return -1;
}

/* The vault a command names: --vault-name, or --hsm-name for a Managed HSM
 * (az keyvault key ... --hsm-name). *HSM says which was given. */
static const char *vault_opt(const struct args *a, int *hsm)
{
    const char *h = opt(a, "--hsm-name");

    *hsm = h != NULL;
    return h ? h : opt(a, "--vault-name");
}

__attribute__((format(printf, 4, 0))) static int
vfail(char **out, int status, int usage, const char *fmt, va_list ap)
{
    char msg[512];
    cJSON *j = cJSON_CreateObject();

    vsnprintf(msg, sizeof(msg), fmt, ap);
    cJSON_AddStringToObject(j, "error", msg);
    if (usage) {
        cJSON_AddTrueToObject(j, "usage");
    }
    *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return status;
}

static int fail(char **out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char **out, int status, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(out, status, 0, fmt, ap);
    va_end(ap);
    return rc;
}

/* A command-line mistake (missing required option, unknown command, bad
 * option value): 400 with "usage":true so that the CLI exits 2. */
static int usage_fail(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_fail(char **out, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(out, 400, 1, fmt, ap);
    va_end(ap);
    return rc;
}

static int emit(char **out, cJSON *j)
{
    *out = cJSON_Print(j);
    cJSON_Delete(j);
    return 200;
}

static int add_principal(struct emu_principal *p)
{
    struct emu_principal **np;

    np = realloc(emu.principals, (emu.nprincipals + 1) * sizeof(*np));
    if (!np) {
        return -1;
    }
    emu.principals = np;
    emu.principals[emu.nprincipals++] = p;
    return 0;
}

static cJSON *identity_json(const struct emu_principal *p)
{
    cJSON *j = cJSON_CreateObject();
    char id[600];

    snprintf(id, sizeof(id),
             "/subscriptions/%s/resourcegroups/akv-emulator/providers/"
             "Microsoft.ManagedIdentity/userAssignedIdentities/%s",
             emu.subscription_id, p->name);
    cJSON_AddStringToObject(j, "clientId", p->client_id);
    cJSON_AddStringToObject(j, "id", id);
    cJSON_AddStringToObject(j, "location", "local");
    cJSON_AddStringToObject(j, "name", p->name);
    cJSON_AddStringToObject(j, "principalId", p->object_id);
    cJSON_AddStringToObject(j, "resourceGroup", "akv-emulator");
    cJSON_AddObjectToObject(j, "tags");
    cJSON_AddStringToObject(j, "tenantId", emu.tenant_id);
    cJSON_AddStringToObject(j, "type",
                            "Microsoft.ManagedIdentity/userAssignedIdentities");
    return j;
}

static struct emu_principal *principal_by_opts(const struct args *a, int is_sp)
{
    const char *name = opt(a, "--name");
    const char *oid = opt(a, "--object-id");
    const char *cid = opt(a, "--client-id");

    if (name && *name) {
        return emu_find_principal_name(name, is_sp);
    }
    if (oid && *oid) {
        return emu_find_principal_oid(oid);
    }
    if (cid && *cid) {
        return emu_find_principal_client(cid);
    }
    return NULL;
}

static int cmd_identity(const struct args *a, const char *sub, char **out)
{
    struct emu_principal *p;
    const char *name = opt(a, "--name");

    if (strcmp(sub, "create") == 0) {
        if (!name || !*name || strlen(name) >= EMU_NAME_MAX) {
            return usage_fail(out, "identity create: --name is required");
        }
        p = emu_find_principal_name(name, 0);
        if (!p) {
            p = calloc(1, sizeof(*p));
            if (!p) {
                return fail(out, 500, "out of memory");
            }
            snprintf(p->name, sizeof(p->name), "%s", name);
            emu_guid(p->client_id);
            emu_guid(p->object_id);
            if (add_principal(p) != 0) {
                free(p);
                return fail(out, 500, "out of memory");
            }
            emu_store_save_state();
        }
        return emit(out, identity_json(p));
    }
    if (!(name && *name) && !(opt(a, "--object-id") && *opt(a, "--object-id"))
        && !(opt(a, "--client-id") && *opt(a, "--client-id"))) {
        if (strcmp(sub, "show") != 0 && strcmp(sub, "revoke-tokens") != 0
            && strcmp(sub, "federated-token") != 0) {
            return usage_fail(out, "unknown identity command: %s", sub);
        }
        return usage_fail(out, "identity %s: --name is required", sub);
    }
    p = principal_by_opts(a, 0);
    if (!p || p->is_sp) {
        if (strcmp(sub, "revoke-tokens") == 0) {
            p = principal_by_opts(a, 1);
        }
        if (!p) {
            return fail(out, 404, "identity not found");
        }
    }
    if (strcmp(sub, "show") == 0) {
        return emit(out, identity_json(p));
    }
    if (strcmp(sub, "revoke-tokens") == 0) {
        cJSON *j = cJSON_CreateObject();

        p->token_gen++;
        emu_store_save_state();
        cJSON_AddStringToObject(j, "objectId", p->object_id);
        cJSON_AddNumberToObject(j, "tokenGeneration", (double)p->token_gen);
        return emit(out, j);
    }
    if (strcmp(sub, "federated-token") == 0) {
        cJSON *c = cJSON_CreateObject();
        char iss[200], subj[300];
        long long now = emu_now();

        snprintf(iss, sizeof(iss), "https://%s:%d/%s/federation", emu.host,
                 emu.port, emu.tenant_id);
        snprintf(subj, sizeof(subj), "system:serviceaccount:akv-emulator:%s",
                 p->name);
        cJSON_AddStringToObject(c, "aud", "api://AzureADTokenExchange");
        cJSON_AddStringToObject(c, "iss", iss);
        cJSON_AddStringToObject(c, "sub", subj);
        cJSON_AddNumberToObject(c, "iat", (double)now);
        cJSON_AddNumberToObject(c, "nbf", (double)now);
        cJSON_AddNumberToObject(c, "exp", (double)(now + 86400));
        *out = emu_jwt_sign(emu.signing_key, emu.signing_kid, c);
        cJSON_Delete(c);
        return *out ? 200 : fail(out, 500, "signing failed");
    }
    return usage_fail(out, "unknown identity command: %s", sub);
}

static int cmd_sp(const struct args *a, char **out)
{
    const char *name = opt(a, "--name");
    int cert = has_flag(a, "--create-cert");
    struct emu_principal *p;
    cJSON *j;
    int created = 0;

    if (!name || !*name || strlen(name) >= EMU_NAME_MAX) {
        return usage_fail(out, "ad sp create-for-rbac: --name is required");
    }
    p = emu_find_principal_name(name, 1);
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p) {
            return fail(out, 500, "out of memory");
        }
        p->is_sp = 1;
        snprintf(p->name, sizeof(p->name), "%s", name);
        emu_guid(p->client_id);
        emu_guid(p->object_id);
        created = 1;
    }
    /* Like az: create-for-rbac on an existing app resets its credential. */
    free(p->cert_pem);
    p->cert_pem = NULL;
    EVP_PKEY_free(p->cert_pub);
    p->cert_pub = NULL;
    p->x5t[0] = p->x5t256[0] = 0;
    p->secret_sha256[0] = 0;
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "appId", p->client_id);
    cJSON_AddStringToObject(j, "displayName", p->name);
    if (cert) {
        char *certonly = NULL, *both = emu_make_client_cert(p->name, &certonly);
        char path[4300];

        if (!both) {
            cJSON_Delete(j);
            if (created) {
                free(p);
            }
            return fail(out, 500, "certificate generation failed");
        }
        snprintf(path, sizeof(path), "%s/certs", emu.dir);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/certs/%s.pem", emu.dir, p->client_id);
        emu_write_file_atomic(path, both, strlen(both), 0600);
        OPENSSL_cleanse(both, strlen(both));
        free(both);
        p->cert_pem = certonly;
        emu_cert_thumbprints(certonly, p->x5t, p->x5t256, &p->cert_pub);
        cJSON_AddStringToObject(j, "fileWithCertAndPrivateKey", path);
        cJSON_AddNullToObject(j, "password");
    } else {
        char secret[48];

        /* 40 chars like Entra secrets; only the hash is stored. */
        emu_random_hex(secret, 20);
        emu_sha256_hex(secret, p->secret_sha256);
        cJSON_AddStringToObject(j, "password", secret);
        OPENSSL_cleanse(secret, sizeof(secret));
    }
    cJSON_AddStringToObject(j, "tenant", emu.tenant_id);
    cJSON_AddStringToObject(j, "objectId", p->object_id);
    if (created && add_principal(p) != 0) {
        free(p);
        cJSON_Delete(j);
        return fail(out, 500, "out of memory");
    }
    emu_store_save_state();
    emu_token_cache_clear();
    return emit(out, j);
}

/* `az keyvault show --hsm-name` shape (Microsoft.KeyVault/managedHSMs). */
static cJSON *emu_mhsm_json(const struct emu_vault *v)
{
    cJSON *j = cJSON_CreateObject(), *props, *admins, *sku;
    char buf[600];
    size_t i;

    snprintf(buf, sizeof(buf),
             "/subscriptions/%s/resourceGroups/akv-emulator/providers/"
             "Microsoft.KeyVault/managedHSMs/%s",
             emu.subscription_id, v->name);
    cJSON_AddStringToObject(j, "id", buf);
    cJSON_AddStringToObject(j, "location", "local");
    cJSON_AddStringToObject(j, "name", v->name);
    cJSON_AddStringToObject(j, "resourceGroup", "akv-emulator");
    sku = cJSON_AddObjectToObject(j, "sku");
    cJSON_AddStringToObject(sku, "family", "B");
    cJSON_AddStringToObject(sku, "name", "Standard_B1");
    cJSON_AddObjectToObject(j, "tags");
    cJSON_AddStringToObject(j, "type", "Microsoft.KeyVault/managedHSMs");
    props = cJSON_AddObjectToObject(j, "properties");
    cJSON_AddBoolToObject(props, "enablePurgeProtection", 0);
    cJSON_AddBoolToObject(props, "enableSoftDelete", 1);
    snprintf(buf, sizeof(buf), "https://%s:%d/", emu.host, v->port);
    cJSON_AddStringToObject(props, "hsmUri", buf);
    admins = cJSON_AddArrayToObject(props, "initialAdminObjectIds");
    for (i = 0; i < v->nroles; i++) {
        if (strcmp(v->roles[i].scope, "/") == 0
            && emu_role_at((size_t)v->roles[i].role)
                   == emu_role_find("Managed HSM Administrator")) {
            cJSON_AddItemToArray(admins,
                                 cJSON_CreateString(v->roles[i].principal));
        }
    }
    cJSON_AddStringToObject(props, "provisioningState", "Succeeded");
    cJSON_AddStringToObject(props, "publicNetworkAccess", "Enabled");
    cJSON_AddStringToObject(props, "securityDomainProperties",
                            "Activated"); /* no security-domain download */
    cJSON_AddNumberToObject(props, "softDeleteRetentionInDays", 90);
    cJSON_AddStringToObject(props, "statusMessage",
                            "The Managed HSM is provisioned and ready to use.");
    cJSON_AddStringToObject(props, "tenantId", emu.tenant_id);
    return j;
}

cJSON *emu_vault_json(const struct emu_vault *v)
{
    cJSON *j = cJSON_CreateObject(), *props, *pols;
    char buf[600];
    size_t i;

    if (v->hsm) {
        cJSON_Delete(j);
        return emu_mhsm_json(v);
    }
    snprintf(buf, sizeof(buf),
             "/subscriptions/%s/resourceGroups/akv-emulator/providers/"
             "Microsoft.KeyVault/vaults/%s",
             emu.subscription_id, v->name);
    cJSON_AddStringToObject(j, "id", buf);
    cJSON_AddStringToObject(j, "location", "local");
    cJSON_AddStringToObject(j, "name", v->name);
    cJSON_AddStringToObject(j, "resourceGroup", "akv-emulator");
    cJSON_AddObjectToObject(j, "tags");
    cJSON_AddStringToObject(j, "type", "Microsoft.KeyVault/vaults");
    props = cJSON_AddObjectToObject(j, "properties");
    pols = cJSON_AddArrayToObject(props, "accessPolicies");
    for (i = 0; i < v->npolicies; i++) {
        cJSON *p = cJSON_CreateObject(), *perm;

        cJSON_AddItemToArray(pols, p);
        cJSON_AddNullToObject(p, "applicationId");
        cJSON_AddStringToObject(p, "objectId", v->policies[i].object_id);
        perm = cJSON_AddObjectToObject(p, "permissions");
        cJSON_AddItemToObject(perm, "certificates",
                              emu_cert_perms_json(v->policies[i].cert_perms));
        cJSON_AddItemToObject(perm, "keys",
                              emu_perms_json(v->policies[i].perms));
        cJSON_AddArrayToObject(perm, "secrets");
        cJSON_AddArrayToObject(perm, "storage");
        cJSON_AddStringToObject(p, "tenantId", emu.tenant_id);
    }
    cJSON_AddBoolToObject(props, "enableRbacAuthorization", 0);
    cJSON_AddBoolToObject(props, "enableSoftDelete", 1);
    cJSON_AddNullToObject(props, "enablePurgeProtection");
    cJSON_AddStringToObject(props, "provisioningState", "Succeeded");
    {
        cJSON *sku = cJSON_AddObjectToObject(props, "sku");

        cJSON_AddStringToObject(sku, "family", "A");
        cJSON_AddStringToObject(sku, "name",
                                v->premium ? "premium" : "standard");
    }
    cJSON_AddNumberToObject(props, "softDeleteRetentionInDays", 90);
    cJSON_AddStringToObject(props, "tenantId", emu.tenant_id);
    snprintf(buf, sizeof(buf), "https://%s:%d/", emu.host, v->port);
    cJSON_AddStringToObject(props, "vaultUri", buf);
    return j;
}

static const char *policy_oid(const struct args *a, char **out, int *status)
{
    const char *oid = opt(a, "--object-id");
    const char *spn = opt(a, "--spn");

    if (oid && *oid) {
        return oid;
    }
    if (spn && *spn) {
        struct emu_principal *p = emu_find_principal_client(spn);

        if (!p) {
            p = emu_find_principal_name(spn, 1);
        }
        if (p) {
            return p->object_id;
        }
        *status = fail(out, 404, "service principal not found: %s", spn);
        return NULL;
    }
    *status = usage_fail(out, "--object-id or --spn is required");
    return NULL;
}

/* `keyvault create --hsm-name H --administrators OID...`: each becomes a
 * Managed HSM Administrator at "/" (as az does; that role grants no key
 * operation). Returns 0, or -1 with *STATUS and *OUT. */
static int mhsm_admins(const struct args *a, struct emu_vault *v, char **out,
                       int *status)
{
    const struct emu_role *adm = emu_role_find("Managed HSM Administrator");
    struct emu_role_assignment *ra;
    int first, cnt, k;

    first = opt_list(a, "--administrators", &cnt);
    for (k = 0; first >= 0 && k < cnt; k++) {
        const char *oid = arg_at(a, first + k);

        if (!oid || strlen(oid) > EMU_GUID_LEN
            || emu_rbac_assign(v, adm, oid, "/", &ra) != 0) {
            *status = usage_fail(out, "invalid object id: %s", oid ? oid : "");
            return -1;
        }
    }
    return 0;
}

static int cmd_vault(const struct args *a, const char *sub, char **out)
{
    const char *hname = opt(a, "--hsm-name");
    const char *name = hname ? hname : opt(a, "--name");
    struct emu_vault *v;
    int status = 400;
    size_t i;

    if (strcmp(sub, "list") == 0) {
        cJSON *arr = cJSON_CreateArray();

        for (i = 0; i < emu.nvaults; i++) {
            cJSON_AddItemToArray(arr, emu_vault_json(emu.vaults[i]));
        }
        return emit(out, arr);
    }
    if (!name || !*name) {
        return usage_fail(out, "keyvault %s: --name is required", sub);
    }
    v = emu_find_vault(name);
    if (v && hname && !v->hsm) {
        return fail(out, 404, "managed HSM not found: %s (a vault)", name);
    }
    if (strcmp(sub, "create") == 0) {
        struct emu_vault **nv;
        /* az keyvault create --sku: standard (az's default) or premium. */
        const char *sku = opt(a, "--sku");
        int premium = emu_strcaseeq(sku, "premium");

        if (sku && !premium && !emu_strcaseeq(sku, "standard")) {
            return usage_fail(out, "invalid --sku '%s': standard or premium",
                              sku);
        }
        if (v) {
            /* ARM PUT semantics: creating an existing vault updates it. */
            if (sku && v->premium != premium) {
                v->premium = premium;
                emu_store_save_state();
            }
            return emit(out, emu_vault_json(v));
        }
        if (!emu_valid_name(name, 3, 24)) {
            return usage_fail(
                out,
                "invalid vault name '%s': 3-24 characters of 0-9, "
                "a-z, A-Z and '-'",
                name);
        }
        v = calloc(1, sizeof(*v));
        nv = realloc(emu.vaults, (emu.nvaults + 1) * sizeof(*nv));
        if (!v || !nv) {
            free(v);
            if (nv) {
                emu.vaults = nv;
            }
            return fail(out, 500, "out of memory");
        }
        emu.vaults = nv;
        snprintf(v->name, sizeof(v->name), "%s", name);
        v->premium = premium;
        v->hsm = hname != NULL;
        /* A Managed HSM holds HSM keys only: never the standard-tier
         * refusal of -HSM keys. */
        v->premium = v->premium || v->hsm;
        if (v->hsm && mhsm_admins(a, v, out, &status) != 0) {
            free(v->roles);
            free(v);
            return status;
        }
        if (emu_vault_start(v) != 0) {
            free(v->roles);
            free(v);
            return fail(out, 500, "cannot start a listener for vault %s", name);
        }
        emu.vaults[emu.nvaults++] = v;
        emu_store_save_state();
        return emit(out, emu_vault_json(v));
    }
    if (!v) {
        return fail(out, 404, "vault not found: %s", name);
    }
    if (strcmp(sub, "show") == 0) {
        return emit(out, emu_vault_json(v));
    }
    if ((strcmp(sub, "set-policy") == 0 || strcmp(sub, "delete-policy") == 0)
        && v->hsm) {
        return fail(out, 400,
                    "%s is a managed HSM: it uses local RBAC (keyvault role "
                    "assignment), not access policies",
                    name);
    }
    if (strcmp(sub, "set-policy") == 0 || strcmp(sub, "delete-policy") == 0) {
        const char *oid = policy_oid(a, out, &status);
        unsigned perms = 0, cperms = 0;
        int first, cnt, k, cfirst, ccnt;

        if (!oid) {
            return status;
        }
        for (i = 0; i < v->npolicies; i++) {
            if (emu_strcaseeq(v->policies[i].object_id, oid)) {
                break;
            }
        }
        if (sub[0] == 'd') {
            if (i < v->npolicies) {
                v->policies[i] = v->policies[--v->npolicies];
            }
            emu_store_save_state();
            return emit(out, emu_vault_json(v));
        }
        first = opt_list(a, "--key-permissions", &cnt);
        for (k = 0; first >= 0 && k < cnt; k++) {
            unsigned b = emu_perm_parse(arg_at(a, first + k));

            if (!b) {
                return usage_fail(out, "unknown key permission: %s",
                                  arg_at(a, first + k));
            }
            perms |= b;
        }
        cfirst = opt_list(a, "--certificate-permissions", &ccnt);
        for (k = 0; cfirst >= 0 && k < ccnt; k++) {
            unsigned b = emu_cert_perm_parse(arg_at(a, cfirst + k));

            if (!b) {
                return usage_fail(out, "unknown certificate permission: %s",
                                  arg_at(a, cfirst + k));
            }
            cperms |= b;
        }
        if (i == v->npolicies) {
            struct emu_policy *np;

            if (strlen(oid) > EMU_GUID_LEN) {
                return usage_fail(out, "invalid object id: %s", oid);
            }
            np = realloc(v->policies, (v->npolicies + 1) * sizeof(*np));
            if (!np) {
                return fail(out, 500, "out of memory");
            }
            v->policies = np;
            memset(&np[i], 0, sizeof(np[i]));
            snprintf(np[i].object_id, sizeof(np[i].object_id), "%s", oid);
            v->npolicies++;
        }
        v->policies[i].perms = perms;
        /* az keyvault set-policy: a permission family not named keeps what
         * the policy had. */
        if (cfirst >= 0) {
            v->policies[i].cert_perms = cperms;
        }
        emu_store_save_state();
        return emit(out, emu_vault_json(v));
    }
    return usage_fail(out, "unknown keyvault command: %s", sub);
}

static int parse_bool(const char *s, int *out)
{
    if (emu_strcaseeq(s, "true") || emu_strcaseeq(s, "yes")
        || emu_strcaseeq(s, "1")) {
        *out = 1;
        return 0;
    }
    if (emu_strcaseeq(s, "false") || emu_strcaseeq(s, "no")
        || emu_strcaseeq(s, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* --enabled/--disabled/--expires/--not-before/--ops/--tags onto KV. */
static int apply_key_opts(const struct args *a, struct emu_keyver *kv,
                          char **out)
{
    const char *s;
    int first, cnt, k, b;

    if ((s = opt(a, "--disabled")) != NULL) {
        if (!*s) {
            kv->enabled = 0;
        } else if (parse_bool(s, &b) == 0) {
            kv->enabled = !b;
        } else {
            return usage_fail(out, "bad --disabled value: %s", s);
        }
    }
    if ((s = opt(a, "--enabled")) != NULL) {
        if (parse_bool(s, &b) != 0) {
            return usage_fail(out, "bad --enabled value: %s", s);
        }
        kv->enabled = b;
    }
    if ((s = opt(a, "--expires")) != NULL) {
        long long t = emu_parse_time(s);

        if (t < 0) {
            return usage_fail(out, "bad --expires value: %s", s);
        }
        kv->exp = t;
    }
    if ((s = opt(a, "--not-before")) != NULL) {
        long long t = emu_parse_time(s);

        if (t < 0) {
            return usage_fail(out, "bad --not-before value: %s", s);
        }
        kv->nbf = t;
    }
    first = opt_list(a, "--ops", &cnt);
    if (first >= 0) {
        unsigned ops = 0;

        for (k = 0; k < cnt; k++) {
            unsigned o = emu_keyop_parse(arg_at(a, first + k));

            if (!o) {
                return usage_fail(out, "unknown key operation: %s",
                                  arg_at(a, first + k));
            }
            ops |= o;
        }
        kv->ops = ops;
    }
    first = opt_list(a, "--tags", &cnt);
    if (first >= 0) {
        cJSON *t = cJSON_CreateObject();

        for (k = 0; k < cnt; k++) {
            const char *kvp = arg_at(a, first + k), *eq = strchr(kvp, '=');
            char key[256];

            snprintf(key, sizeof(key), "%.*s",
                     eq ? (int)(eq - kvp) : (int)strlen(kvp), kvp);
            cJSON_AddStringToObject(t, key, eq ? eq + 1 : "");
        }
        cJSON_Delete(kv->tags);
        kv->tags = t;
    }
    return 0;
}

/* `az keyvault key list[-versions]` item: attributes, kid, managed, name,
 * tags (no key material). */
static cJSON *key_item_json(const char *base, const struct emu_key *k,
                            const struct emu_keyver *kv, int versioned)
{
    cJSON *b = emu_keybundle_json(base, k, kv, 0);
    cJSON *it = cJSON_CreateObject(), *tags;
    char kid[700];

    cJSON_AddItemToObject(it, "attributes",
                          cJSON_DetachItemFromObject(b, "attributes"));
    if (versioned) {
        snprintf(kid, sizeof(kid), "%s/keys/%s/%s", base, k->name, kv->id);
    } else {
        snprintf(kid, sizeof(kid), "%s/keys/%s", base, k->name);
    }
    cJSON_AddStringToObject(it, "kid", kid);
    cJSON_AddNullToObject(it, "managed");
    cJSON_AddStringToObject(it, "name", k->name);
    tags = cJSON_DetachItemFromObject(b, "tags");
    if (tags) {
        cJSON_AddItemToObject(it, "tags", tags);
    } else {
        cJSON_AddNullToObject(it, "tags");
    }
    cJSON_Delete(b);
    return it;
}

static int cmd_key(struct args *a, const char *sub, char **out)
{
    int by_hsm;
    const char *vname = vault_opt(a, &by_hsm), *name = opt(a, "--name");
    const char *ver = opt(a, "--version");
    char base[128];
    struct emu_vault *v;
    struct emu_key *k;
    struct emu_keyver *kv;
    size_t i;
    int rc;

    if (!vname || !*vname) {
        return usage_fail(
            out, "keyvault key %s: --vault-name or --hsm-name is required",
            sub);
    }
    v = emu_find_vault(vname);
    if (!v || v->hsm != by_hsm) {
        return fail(out, 404, "%s not found: %s",
                    by_hsm ? "managed HSM" : "vault", vname);
    }
    snprintf(base, sizeof(base), "https://%s:%d", emu.host, v->port);
    if (strcmp(sub, "list") == 0) {
        cJSON *arr = cJSON_CreateArray();

        for (i = 0; i < v->nkeys; i++) {
            if (!v->keys[i]->deleted && v->keys[i]->nvers) {
                cJSON_AddItemToArray(
                    arr, key_item_json(base, v->keys[i],
                                       emu_find_version(v->keys[i], NULL), 0));
            }
        }
        return emit(out, arr);
    }
    if (!name || !*name) {
        return usage_fail(out, "keyvault key %s: --name is required", sub);
    }
    k = emu_find_key(v, name);
    if (strcmp(sub, "create") == 0 || strcmp(sub, "rotate") == 0
        || strcmp(sub, "import") == 0) {
        const char *kty = opt(a, "--kty"), *size = opt(a, "--size");
        const char *err = NULL;
        struct emu_keyver *cur = k ? emu_find_version(k, NULL) : NULL;
        int bits = size ? atoi(size) : 0;
        size_t nl = strlen(name);

        for (i = 0; i < nl; i++) {
            char c = name[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '-')) {
                return usage_fail(out, "invalid key name: %s", name);
            }
        }
        if (nl == 0 || nl > 127) {
            return usage_fail(out, "invalid key name: %s", name);
        }
        if (k && k->deleted) {
            return fail(out, 409,
                        "Key %s is currently in a deleted but recoverable "
                        "state, and its name cannot be reused; in this state, "
                        "the key can only be recovered or purged.",
                        name);
        }
        if (sub[0] == 'r') {
            if (!cur) {
                return fail(out, 404, "key not found: %s", name);
            }
            kty = cur->kty;
            bits = cur->bits;
        }
        if (v->hsm && sub[0] == 'c'
            && !(kty
                 && (strcmp(kty, "RSA-HSM") == 0 || strcmp(kty, "EC-HSM") == 0
                     || strcmp(kty, "oct-HSM") == 0))) {
            return usage_fail(out, "a managed HSM keeps RSA-HSM, EC-HSM and "
                                   "oct-HSM keys only (--kty)");
        }
        if (sub[0] == 'i') {
            const char *pf = opt(a, "--pem-file");
            const char *prot = opt(a, "--protection");
            char *pem = pf && *pf ? emu_read_file(pf, NULL) : NULL;

            if (!pem) {
                return fail(out, 400,
                            "keyvault key import: cannot read "
                            "--pem-file %s",
                            pf ? pf : "");
            }
            kv = emu_keyver_import(NULL, pem,
                                   v->hsm || emu_strcaseeq(prot, "hsm")
                                       || emu_strcaseeq(kty, "RSA-HSM"),
                                   &err);
            OPENSSL_cleanse(pem, strlen(pem));
            free(pem);
        } else {
            if (a->pregen
                && strcmp(a->pregen->kty, kty && *kty ? kty : "RSA") == 0
                && (bits == 0 || a->pregen->bits == bits)) {
                kv = a->pregen;
                a->pregen = NULL;
            } else {
                kv = emu_keyver_new(
                    kty && *kty ? kty : "RSA", bits,
                    sub[0] == 'r' ? cur->crv : opt(a, "--curve"), &err);
            }
        }
        if (!kv) {
            return fail(out, 400, "%s", err);
        }
        if (!emu_vault_kty_allowed(v, kv->kty, &err)) {
            emu_keyver_free(kv);
            return fail(out, 403, "%s", err);
        }
        if (sub[0] == 'r') {
            emu_keyver_rotated(kv, cur, k);
        }
        rc = apply_key_opts(a, kv, out);
        if (rc) {
            emu_keyver_free(kv);
            return rc;
        }
        if (!k) {
            struct emu_key **nk =
                realloc(v->keys, (v->nkeys + 1) * sizeof(*nk));

            k = calloc(1, sizeof(*k));
            if (!nk || !k) {
                if (nk) {
                    v->keys = nk;
                }
                free(k);
                emu_keyver_free(kv);
                return fail(out, 500, "out of memory");
            }
            v->keys = nk;
            snprintf(k->name, sizeof(k->name), "%s", name);
            v->keys[v->nkeys++] = k;
        }
        {
            struct emu_keyver **nv =
                realloc(k->vers, (k->nvers + 1) * sizeof(*nv));

            if (!nv) {
                emu_keyver_free(kv);
                return fail(out, 500, "out of memory");
            }
            k->vers = nv;
            k->vers[k->nvers++] = kv;
        }
        emu_store_save_key(v, k);
        return emit(out, emu_keybundle_json(base, k, kv, 0));
    }
    if (!k) {
        return fail(out, 404, "key not found: %s", name);
    }
    if (strcmp(sub, "recover") == 0 || strcmp(sub, "purge") == 0) {
        if (!k->deleted) {
            return fail(out, 404, "deleted key not found: %s", name);
        }
        if (sub[0] == 'r') {
            k->deleted = 0;
            k->deleted_date = k->purge_date = 0;
            k->pending_until_ms = 0; /* the control plane does not wait */
            emu_store_save_key(v, k);
            return emit(
                out, emu_keybundle_json(base, k, emu_find_version(k, NULL), 0));
        }
        emu_store_remove_key(v, k);
        for (i = 0; i < v->nkeys; i++) {
            if (v->keys[i] == k) {
                v->keys[i] = v->keys[--v->nkeys];
                break;
            }
        }
        emu_key_free(k);
        *out = strdup("");
        return 200;
    }
    if (strcmp(sub, "show-deleted") == 0) {
        if (!k->deleted) {
            return fail(out, 404, "deleted key not found: %s", name);
        }
        return emit(out,
                    emu_keybundle_json(base, k, emu_find_version(k, NULL), 1));
    }
    if (k->deleted) {
        return fail(out, 404, "key not found (deleted): %s", name);
    }
    if (strcmp(sub, "delete") == 0) {
        k->deleted = 1;
        k->pending_until_ms = 0; /* the control plane does not wait */
        k->deleted_date = emu_now();
        k->purge_date = k->deleted_date + 90LL * 86400;
        emu_store_save_key(v, k);
        return emit(out,
                    emu_keybundle_json(base, k, emu_find_version(k, NULL), 1));
    }
    if (strcmp(sub, "list-versions") == 0) {
        cJSON *arr = cJSON_CreateArray();

        for (i = 0; i < k->nvers; i++) {
            cJSON_AddItemToArray(arr, key_item_json(base, k, k->vers[i], 1));
        }
        return emit(out, arr);
    }
    kv = emu_find_version(k, ver);
    if (!kv) {
        return fail(out, 404, "key version not found: %s", ver ? ver : "");
    }
    if (strcmp(sub, "show") == 0) {
        return emit(out, emu_keybundle_json(base, k, kv, 0));
    }
    if (strcmp(sub, "set-attributes") == 0) {
        struct emu_keyver tmp = *kv;

        tmp.tags = NULL;
        rc = apply_key_opts(a, &tmp, out);
        if (rc) {
            cJSON_Delete(tmp.tags);
            return rc;
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
        emu_store_save_key(v, k);
        return emit(out, emu_keybundle_json(base, k, kv, 0));
    }
    return usage_fail(out, "unknown keyvault key command: %s", sub);
}

/* `keyvault certificate create|import|show|list-versions --vault-name V
 * --name N`: the certificate of key N's current version (--version: that
 * version), which must exist (here a certificate is made for an existing
 * key; az's create also makes the key). create: self-signed by the key
 * (--subject "CN=x/O=y", --validity-days D, default 365); import: --file
 * PEM whose public key is the key's. Answers the CertificateBundle. */
static int cmd_cert(const struct args *a, const char *sub, char **out)
{
    int by_hsm;
    const char *vname = vault_opt(a, &by_hsm), *name = opt(a, "--name");
    const char *ver = opt(a, "--version"), *err = NULL;
    char base[128];
    struct emu_vault *v;
    struct emu_key *k;
    struct emu_keyver *kv;

    if (!vname || !*vname || by_hsm) {
        return usage_fail(out,
                          "keyvault certificate %s: --vault-name is "
                          "required (a managed HSM has no certificates)",
                          sub);
    }
    v = emu_find_vault(vname);
    if (!v || v->hsm) {
        return fail(out, 404, "vault not found: %s", vname);
    }
    if (!name || !*name) {
        return usage_fail(out, "keyvault certificate %s: --name is required",
                          sub);
    }
    snprintf(base, sizeof(base), "https://%s:%d", emu.host, v->port);
    k = emu_find_key(v, name);
    if (!k || k->deleted || !k->nvers) {
        return fail(out, 404, "key not found: %s", name);
    }
    if (strcmp(sub, "show") == 0) {
        kv = emu_cert_version(k, ver);
        if (!kv) {
            return fail(out, 404, "certificate not found: %s", name);
        }
        return emit(out, emu_cert_bundle_json(base, k, kv));
    }
    if (strcmp(sub, "list-versions") == 0) {
        return emit(out, emu_cert_versions_json(base, k));
    }
    if (strcmp(sub, "create") != 0 && strcmp(sub, "import") != 0) {
        return usage_fail(out, "unknown keyvault certificate command: %s", sub);
    }
    kv = emu_find_version(k, ver);
    if (!kv) {
        return fail(out, 404, "key version not found: %s", ver ? ver : "");
    }
    if (sub[0] == 'i') {
        const char *f = opt(a, "--file");
        char *pem = f && *f ? emu_read_file(f, NULL) : NULL;
        int rc;

        if (!pem) {
            return fail(out, 400,
                        "keyvault certificate import: cannot read --file %s",
                        f ? f : "");
        }
        rc = emu_cert_make(kv, NULL, 0, pem, &err);
        free(pem);
        if (rc != 0) {
            return fail(out, 400, "%s", err);
        }
    } else {
        const char *d = opt(a, "--validity-days");

        if (emu_cert_make(kv, opt(a, "--subject"), d ? atol(d) : 365, NULL,
                          &err)
            != 0) {
            return fail(out, 400, "%s", err);
        }
    }
    emu_store_save_key(v, k);
    return emit(out, emu_cert_bundle_json(base, k, kv));
}

/* RSA key generation takes up to seconds (4096 bits): do it before the
 * exclusive lock so vault traffic is not stalled. Best effort: NULL when
 * the arguments are bad (the command then reports the error itself). */
static struct emu_keyver *pregenerate(const struct args *a, int rotate)
{
    const char *kty = opt(a, "--kty"), *size = opt(a, "--size");
    int by_hsm;
    const char *vname = vault_opt(a, &by_hsm), *name = opt(a, "--name");
    const char *err = NULL;
    char kbuf[8] = "RSA", cbuf[8] = "";
    int bits = size ? atoi(size) : 0;

    if (rotate) {
        struct emu_vault *v;
        struct emu_key *k = NULL;
        struct emu_keyver *cur = NULL;

        pthread_rwlock_rdlock(&emu.lock);
        v = vname ? emu_find_vault(vname) : NULL;
        k = v && name ? emu_find_key(v, name) : NULL;
        cur = k && !k->deleted ? emu_find_version(k, NULL) : NULL;
        if (cur) {
            snprintf(kbuf, sizeof(kbuf), "%s", cur->kty);
            snprintf(cbuf, sizeof(cbuf), "%s", cur->crv);
            bits = cur->bits;
        }
        pthread_rwlock_unlock(&emu.lock);
        if (!cur) {
            return NULL;
        }
    } else if (kty && *kty) {
        snprintf(kbuf, sizeof(kbuf), "%s", kty);
        if (opt(a, "--curve")) {
            snprintf(cbuf, sizeof(cbuf), "%s", opt(a, "--curve"));
        }
    }
    return emu_keyver_new(kbuf, bits, cbuf, &err);
}

/* `keyvault role assignment create|delete|list` and `keyvault role
 * definition list` (az keyvault role ... --hsm-name H): the Managed HSM's
 * local RBAC. create needs --role (name or id), --assignee-object-id (or
 * --assignee: a service principal's appId or name) and --scope (default
 * "/"); delete removes every assignment matching the filters given (at
 * least one) and prints them; list prints the matching ones. */
static int cmd_role(const struct args *a, const char *what, const char *sub,
                    char **out)
{
    const char *hname = opt(a, "--hsm-name");
    const char *rname = opt(a, "--role"), *oid = opt(a, "--assignee-object-id");
    const char *who = opt(a, "--assignee"), *scope = opt(a, "--scope");
    const struct emu_role *role = NULL;
    struct emu_role_assignment *ra;
    struct emu_vault *v;
    cJSON *arr;
    size_t i;

    if (!hname || !*hname) {
        return usage_fail(out, "keyvault role %s %s: --hsm-name is required",
                          what, sub);
    }
    v = emu_find_vault(hname);
    if (!v || !v->hsm) {
        return fail(out, 404, "managed HSM not found: %s", hname);
    }
    if (strcmp(what, "definition") == 0 && strcmp(sub, "list") == 0) {
        arr = cJSON_CreateArray();
        for (i = 0; emu_role_at(i); i++) {
            cJSON *d = cJSON_CreateObject();
            cJSON *perms = emu_perms_json(emu_role_at(i)->perms);

            cJSON_AddStringToObject(d, "name", emu_role_at(i)->id);
            cJSON_AddStringToObject(d, "roleName", emu_role_at(i)->name);
            cJSON_AddStringToObject(d, "roleType", "BuiltInRole");
            cJSON_AddItemToObject(d, "keyPermissions", perms);
            cJSON_AddItemToArray(arr, d);
        }
        return emit(out, arr);
    }
    if (strcmp(what, "assignment") != 0) {
        return usage_fail(out, "unknown keyvault role command: %s", what);
    }
    if (who && *who && !(oid && *oid)) {
        struct emu_principal *p = emu_find_principal_client(who);

        if (!p) {
            p = emu_find_principal_name(who, 1);
        }
        if (!p) {
            p = emu_find_principal_oid(who);
        }
        if (!p) {
            return fail(out, 404, "principal not found: %s", who);
        }
        oid = p->object_id;
    }
    if (rname) {
        role = emu_role_find(rname);
        if (!role) {
            return usage_fail(out,
                              "unknown role: %s (see keyvault role "
                              "definition list)",
                              rname);
        }
    }
    if (scope && !emu_rbac_scope_valid(scope)) {
        return usage_fail(out, "invalid scope: %s (/, /keys or /keys/NAME)",
                          scope);
    }
    if (strcmp(sub, "create") == 0) {
        if (!role || !oid || !*oid) {
            return usage_fail(out, "keyvault role assignment create: --role "
                                   "and --assignee-object-id are required");
        }
        if (emu_rbac_assign(v, role, oid, scope ? scope : "/", &ra) != 0) {
            return usage_fail(out, "invalid object id: %s", oid);
        }
        emu_store_save_state();
        return emit(out, emu_rbac_assignment_json(ra));
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "delete") != 0) {
        return usage_fail(out, "unknown keyvault role assignment command: %s",
                          sub);
    }
    if (sub[0] == 'd' && !role && !oid && !scope) {
        return usage_fail(out, "keyvault role assignment delete: give "
                               "--role, --assignee-object-id and/or --scope");
    }
    arr = cJSON_CreateArray();
    for (i = 0; i < v->nroles;) {
        ra = &v->roles[i];
        if ((!role || emu_role_at((size_t)ra->role) == role)
            && (!oid || emu_strcaseeq(ra->principal, oid))
            && (!scope || strcmp(ra->scope, scope) == 0)) {
            cJSON_AddItemToArray(arr, emu_rbac_assignment_json(ra));
            if (sub[0] == 'd') {
                v->roles[i] = v->roles[--v->nroles];
                continue;
            }
        }
        i++;
    }
    if (sub[0] == 'd') {
        emu_store_save_state();
    }
    return emit(out, arr);
}

int emu_admin_run(cJSON *argv, char **out)
{
    struct args a;
    const char *c0, *c1, *c2;
    int status;

    a.argv = argv;
    a.n = cJSON_GetArraySize(argv);
    c0 = arg_at(&a, 0);
    c1 = arg_at(&a, 1);
    c2 = arg_at(&a, 2);
    *out = NULL;
    if (!c0) {
        return usage_fail(out, "no command");
    }
    if (strcmp(c0, "fault") == 0) {
        return emu_fault_admin(argv, 1, out);
    }
    if (strcmp(c0, "token") == 0 && c1 && strcmp(c1, "issued") == 0) {
        return emit(out, emu_token_issued_json());
    }
    if (strcmp(c0, "stats") == 0) {
        a.first = 1;
        return emit(out, emu_stats_json(has_flag(&a, "--reset")));
    }
    if (!c1) {
        return usage_fail(out, "incomplete command: %s", c0);
    }
    a.pregen = NULL;
    if (strcmp(c0, "keyvault") == 0 && strcmp(c1, "key") == 0 && c2
        && (strcmp(c2, "create") == 0 || strcmp(c2, "rotate") == 0)) {
        a.first = 3;
        a.pregen = pregenerate(&a, c2[0] == 'r');
    }
    pthread_rwlock_wrlock(&emu.lock);
    if (strcmp(c0, "identity") == 0) {
        a.first = 2;
        status = cmd_identity(&a, c1, out);
    } else if (strcmp(c0, "ad") == 0 && strcmp(c1, "sp") == 0 && c2
               && strcmp(c2, "create-for-rbac") == 0) {
        a.first = 3;
        status = cmd_sp(&a, out);
    } else if (strcmp(c0, "keyvault") == 0 && strcmp(c1, "key") == 0 && c2) {
        a.first = 3;
        status = cmd_key(&a, c2, out);
    } else if (strcmp(c0, "keyvault") == 0 && strcmp(c1, "certificate") == 0
               && c2) {
        a.first = 3;
        status = cmd_cert(&a, c2, out);
    } else if (strcmp(c0, "keyvault") == 0 && strcmp(c1, "role") == 0 && c2
               && arg_at(&a, 3)) {
        a.first = 4;
        status = cmd_role(&a, c2, arg_at(&a, 3), out);
    } else if (strcmp(c0, "keyvault") == 0) {
        a.first = 2;
        status = cmd_vault(&a, c1, out);
    } else {
        status = usage_fail(out, "unknown command: %s", c0);
    }
    pthread_rwlock_unlock(&emu.lock);
    /* Unused when the command failed or the key type changed meanwhile. */
    emu_keyver_free(a.pregen);
    return status;
}
