/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key rotation policies and secure key release (SKR) policies of the Key
 * Vault keys data plane (keys.json: KeyRotationPolicy, LifetimeActions,
 * KeyRotationPolicyAttributes, KeyReleasePolicy, KeyAttributes.exportable).
 * Validation only: the request handlers in vault_api.c call these and
 * store the results on the key (rotation) or key version (release).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

#define DAY 86400LL

long long emu_iso_duration(const char *s)
{
    /* ISO 8601 duration PnYnMnWnDTnHnMnS; months and years counted as
     * 30 and 365 days (only used to compare against the service's
     * minimums and to set exp on rotation). */
    long long total = 0;
    int in_time = 0, parts = 0;

    if (!s || *s != 'P') {
        return -1;
    }
    s++;
    while (*s) {
        long long n = 0, add;
        int digits = 0;

        if (*s == 'T' && !in_time) {
            in_time = 1;
            s++;
            continue;
        }
        while (isdigit((unsigned char)*s)) {
            if (n > 1000000) {
                return -1;
            }
            n = n * 10 + (*s++ - '0');
            digits++;
        }
        if (!digits) {
            return -1;
        }
        switch (*s) {
        case 'Y':
            add = in_time ? -1 : n * 365 * DAY;
            break;
        case 'M':
            add = in_time ? n * 60 : n * 30 * DAY;
            break;
        case 'W':
            add = in_time ? -1 : n * 7 * DAY;
            break;
        case 'D':
            add = in_time ? -1 : n * DAY;
            break;
        case 'H':
            add = in_time ? n * 3600 : -1;
            break;
        case 'S':
            add = in_time ? n : -1;
            break;
        default:
            return -1;
        }
        if (add < 0) {
            return -1;
        }
        total += add;
        s++;
        parts++;
    }
    return parts ? total : -1;
}

/* ---- rotation policy ---- */

static cJSON *lifetime_action(const char *when, const char *dur,
                              const char *type)
{
    cJSON *a = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(a, "trigger");

    cJSON_AddStringToObject(t, when, dur);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(a, "action"), "type", type);
    return a;
}

/* One LifetimeAction of a PUT body checked and appended (canonical form)
 * to OUT; *HAVE collects the action types seen (1 Rotate, 2 Notify).
 * EXPIRY: the policy's expiryTime in seconds, 0 when none. NULL or the
 * 400 message. */
static const char *add_action(cJSON *out, const cJSON *la, long long expiry,
                              unsigned *have)
{
    cJSON *trig = cJSON_GetObjectItemCaseSensitive(la, "trigger");
    cJSON *act = cJSON_GetObjectItemCaseSensitive(la, "action");
    cJSON *type = cJSON_GetObjectItemCaseSensitive(act, "type");
    cJSON *tac = cJSON_GetObjectItemCaseSensitive(trig, "timeAfterCreate");
    cJSON *tbe = cJSON_GetObjectItemCaseSensitive(trig, "timeBeforeExpiry");
    int notify;
    const cJSON *when;
    long long secs;

    if (!cJSON_IsObject(la) || !cJSON_IsObject(trig) || !cJSON_IsString(type)) {
        return "A lifetime action needs a 'trigger' and an 'action' with a "
               "'type'.";
    }
    /* LifetimeActionsType: "Rotate" or "Notify" (case-insensitive: the
     * service and SDKs use both "rotate" and "Rotate"). */
    if (emu_strcaseeq(type->valuestring, "Rotate")) {
        notify = 0;
    } else if (emu_strcaseeq(type->valuestring, "Notify")) {
        notify = 1;
    } else {
        return "The lifetime action type must be 'Rotate' or 'Notify'.";
    }
    if (*have & (notify ? 2u : 1u)) {
        return "Only one lifetime action of each type is allowed.";
    }
    *have |= notify ? 2u : 1u;
    if (cJSON_IsNull(tac)) {
        tac = NULL;
    }
    if (cJSON_IsNull(tbe)) {
        tbe = NULL;
    }
    if (!tac == !tbe) {
        return "A lifetime action trigger must have exactly one of "
               "'timeAfterCreate' and 'timeBeforeExpiry'.";
    }
    when = tac ? tac : tbe;
    secs = cJSON_IsString(when) ? emu_iso_duration(when->valuestring) : -1;
    if (secs < 0) {
        return "A lifetime action trigger is not a valid ISO 8601 duration.";
    }
    /* LifetimeActionsTrigger.timeAfterCreate "only applies to rotate". */
    if (notify && tac) {
        return "A 'Notify' lifetime action only supports "
               "'timeBeforeExpiry'.";
    }
    if (secs < 7 * DAY) {
        return "A lifetime action trigger must be at least 7 days (P7D).";
    }
    if (tbe && !expiry) {
        return "'timeBeforeExpiry' requires the policy's "
               "'attributes.expiryTime'.";
    }
    if (expiry && secs > expiry - 7 * DAY) {
        return "A lifetime action trigger must be at least 7 days before "
               "the expiry time.";
    }
    cJSON_AddItemToArray(
        out, lifetime_action(tac ? "timeAfterCreate" : "timeBeforeExpiry",
                             when->valuestring, notify ? "Notify" : "Rotate"));
    return NULL;
}

cJSON *emu_rotation_policy_parse(cJSON *body, const cJSON *prev,
                                 const char **err)
{
    cJSON *las = cJSON_GetObjectItemCaseSensitive(body, "lifetimeActions");
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(body, "attributes");
    cJSON *et = cJSON_GetObjectItemCaseSensitive(attrs, "expiryTime");
    cJSON *pol = cJSON_CreateObject(), *out, *a, *x;
    long long expiry = 0, now = emu_now();
    unsigned have = 0;

    *err = NULL;
    if ((las && !cJSON_IsNull(las) && !cJSON_IsArray(las))
        || (attrs && !cJSON_IsNull(attrs) && !cJSON_IsObject(attrs))) {
        *err = "The rotation policy is not valid.";
        goto fail;
    }
    if (et && !cJSON_IsNull(et)) {
        expiry = cJSON_IsString(et) ? emu_iso_duration(et->valuestring) : -1;
        if (expiry < 0) {
            *err = "The expiry time is not a valid ISO 8601 duration.";
            goto fail;
        }
        /* KeyRotationPolicyAttributes.expiryTime: "at least 28 days". */
        if (expiry < 28 * DAY) {
            *err = "The expiry time must be at least 28 days (P28D).";
            goto fail;
        }
    }
    out = cJSON_AddArrayToObject(pol, "lifetimeActions");
    cJSON_ArrayForEach(x, las)
    {
        *err = add_action(out, x, expiry, &have);
        if (*err) {
            goto fail;
        }
    }
    /* The service keeps a notification 30 days before expiry unless the
     * policy names its own (Azure SDK for JS recordings of PUT
     * /keys/{name}/rotationpolicy answer it appended). */
    if (!(have & 2u)) {
        cJSON_AddItemToArray(
            out, lifetime_action("timeBeforeExpiry", "P30D", "Notify"));
    }
    a = cJSON_AddObjectToObject(pol, "attributes");
    if (expiry) {
        cJSON_AddStringToObject(a, "expiryTime", et->valuestring);
    }
    x = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(prev, "attributes"), "created");
    cJSON_AddNumberToObject(a, "created",
                            cJSON_IsNumber(x) ? x->valuedouble : (double)now);
    cJSON_AddNumberToObject(a, "updated", (double)now);
    return pol;
fail:
    cJSON_Delete(pol);
    return NULL;
}

cJSON *emu_rotation_policy_json(const char *base, const struct emu_key *k)
{
    cJSON *j = cJSON_CreateObject(), *las;
    char id[700];

    snprintf(id, sizeof(id), "%s/keys/%s/rotationpolicy", base, k->name);
    cJSON_AddStringToObject(j, "id", id);
    if (k->rotation_policy) {
        cJSON *x;

        cJSON_ArrayForEach(x, k->rotation_policy)
        {
            cJSON_AddItemToObject(j, x->string, cJSON_Duplicate(x, 1));
        }
        return j;
    }
    /* No policy set: the service's default, a notification 30 days before
     * expiry, without created/updated (Get-AzKeyVaultKeyRotationPolicy
     * documentation example). */
    las = cJSON_AddArrayToObject(j, "lifetimeActions");
    cJSON_AddItemToArray(las,
                         lifetime_action("timeBeforeExpiry", "P30D", "Notify"));
    cJSON_AddObjectToObject(j, "attributes");
    return j;
}

long long emu_rotation_policy_expiry(const cJSON *policy)
{
    cJSON *et = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(policy, "attributes"), "expiryTime");
    long long s = cJSON_IsString(et) ? emu_iso_duration(et->valuestring) : -1;

    return s > 0 ? s : 0;
}

void emu_keyver_rotated(struct emu_keyver *kv, const struct emu_keyver *cur,
                        const struct emu_key *k)
{
    long long life = emu_rotation_policy_expiry(k->rotation_policy);

    kv->ops = cur->ops;
    cJSON_Delete(kv->tags);
    kv->tags = cur->tags ? cJSON_Duplicate(cur->tags, 1) : NULL;
    kv->exportable = cur->exportable;
    cJSON_Delete(kv->release_policy);
    kv->release_policy =
        cur->release_policy ? cJSON_Duplicate(cur->release_policy, 1) : NULL;
    /* Rotate Key: the new version gets exp = its creation + the rotation
     * policy's expiryTime (KeyRotationPolicyAttributes.expiryTime). */
    if (life) {
        kv->exp = kv->created + life;
    }
}

/* ---- secure key release ---- */

/* KeyReleasePolicy in canonical form (contentType, data, immutable) from a
 * request's release_policy; NULL when it is not an object whose data is
 * base64url of a JSON object (the policy grammar's document). */
static cJSON *release_policy_canon(const cJSON *rp)
{
    cJSON *ct = cJSON_GetObjectItemCaseSensitive(rp, "contentType");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(rp, "data");
    cJSON *imm = cJSON_GetObjectItemCaseSensitive(rp, "immutable");
    cJSON *doc = NULL, *out = NULL;
    unsigned char *raw = NULL;
    size_t len = 0;

    if (!cJSON_IsObject(rp) || !cJSON_IsString(data)
        || (ct && !cJSON_IsNull(ct) && !cJSON_IsString(ct))
        || (imm && !cJSON_IsNull(imm) && !cJSON_IsBool(imm))) {
        return NULL;
    }
    raw = emu_b64url_decode(data->valuestring, &len);
    doc = raw ? cJSON_ParseWithLength((const char *)raw, len) : NULL;
    if (cJSON_IsObject(doc)) {
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "contentType",
                                cJSON_IsString(ct)
                                    ? ct->valuestring
                                    : "application/json; charset=utf-8");
        cJSON_AddStringToObject(out, "data", data->valuestring);
        cJSON_AddBoolToObject(out, "immutable", cJSON_IsTrue(imm));
    }
    cJSON_Delete(doc);
    free(raw);
    return out;
}

/* The service's own SKR messages (AKV.SKR.1001/1004/1005/1020 as recorded
 * by the Azure SDKs); 1003 and 1006 carry the service's code with our
 * wording. */
static const char skr_premium[] =
    "AKV.SKR.1001: The exportable attribute is only supported with premium "
    "vaults and API version >= '7.3-preview'.";
static const char skr_not_hsm[] =
    "AKV.SKR.1006: Exportable keys must be HSM-protected (RSA-HSM, EC-HSM "
    "or oct-HSM).";
static const char skr_need_policy[] =
    "AKV.SKR.1004: Exportable keys must have release policy.";
static const char skr_no_policy[] =
    "AKV.SKR.1005: Non-exportable keys must not have release policy.";
static const char skr_bad_policy[] = "The key release policy is not valid.";

int emu_release_on_create(cJSON *body, const struct emu_vault *v,
                          const char *api, struct emu_keyver *kv,
                          const char **err)
{
    cJSON *ex = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(body, "attributes"), "exportable");
    cJSON *rp = cJSON_GetObjectItemCaseSensitive(body, "release_policy");
    int exportable = cJSON_IsTrue(ex);
    /* api-versions 7.0-7.2 predate secure key release (7.3). */
    int old_api = api[0] == '7' && api[1] == '.' && api[2] < '3' && !api[3];

    if (ex && !cJSON_IsNull(ex) && !cJSON_IsBool(ex)) {
        *err = "Property 'exportable' is not valid.";
        return -1;
    }
    if (cJSON_IsNull(rp)) {
        rp = NULL;
    }
    if (exportable) {
        if (!v->premium || old_api) {
            *err = skr_premium;
            return -1;
        }
        if (!strstr(kv->kty, "-HSM")) {
            *err = skr_not_hsm;
            return -1;
        }
        if (!rp) {
            *err = skr_need_policy;
            return -1;
        }
    } else if (rp) {
        *err = skr_no_policy;
        return -1;
    }
    if (rp) {
        cJSON *canon = release_policy_canon(rp);

        if (!canon) {
            *err = skr_bad_policy;
            return -1;
        }
        cJSON_Delete(kv->release_policy);
        kv->release_policy = canon;
    }
    kv->exportable = exportable;
    return 0;
}

int emu_release_on_update(cJSON *body, const struct emu_keyver *kv,
                          cJSON **policy, const char **err)
{
    cJSON *ex = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(body, "attributes"), "exportable");
    cJSON *rp = cJSON_GetObjectItemCaseSensitive(body, "release_policy");

    *policy = NULL;
    if (ex && !cJSON_IsNull(ex)
        && (!cJSON_IsBool(ex) || cJSON_IsTrue(ex) != kv->exportable)) {
        *err = "AKV.SKR.1003: The exportable attribute of an existing key "
               "cannot be changed.";
        return -1;
    }
    if (!rp || cJSON_IsNull(rp)) {
        return 0;
    }
    if (!kv->exportable) {
        *err = skr_no_policy;
        return -1;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItem(kv->release_policy, "immutable"))) {
        *err = "AKV.SKR.1020: Immutable Key Release Policy cannot be "
               "modified.";
        return -1;
    }
    *policy = release_policy_canon(rp);
    if (!*policy) {
        *err = skr_bad_policy;
        return -1;
    }
    return 0;
}
