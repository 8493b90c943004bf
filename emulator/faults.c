/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test hooks: per-operation request counters ("stats"), injected faults
 * ("fault add/clear/list") and the optional Key Vault throttling model
 * (service-limits table, protocol.md 5.1: transactions per vault per 10 s,
 * weighted by key type and size; 429 + Retry-After; 429s do not count).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "emu.h"
#include "http.h"

static const char *const opnames[] = {
    "token",   "imds",    "get",        "wrapkey", "unwrapkey", "encrypt",
    "decrypt", "create",  "rotate",     "update",  "delete",    "recover",
    "purge",   "list",    "getdeleted", "import",  "sign",      "verify",
    "backup",  "restore", "other",
};

_Static_assert(sizeof(opnames) / sizeof(opnames[0]) == EMU_OPN_COUNT,
               "one name per enum emu_opname");

const char *emu_opname_str(int op)
{
    return op >= 0 && op < EMU_OPN_COUNT ? opnames[op] : "other";
}

int emu_opname_parse(const char *s)
{
    int i;

    for (i = 0; i < EMU_OPN_COUNT; i++) {
        if (emu_strcaseeq(s, opnames[i])) {
            return i;
        }
    }
    return -1;
}

/* ---- stats ---- */

static unsigned long long counters[EMU_OPN_COUNT];
static unsigned long long throttled;

void emu_stats_count(int op)
{
    if (op >= 0 && op < EMU_OPN_COUNT) {
        __atomic_add_fetch(&counters[op], 1, __ATOMIC_RELAXED);
    }
}

void emu_stats_throttled(void)
{
    __atomic_add_fetch(&throttled, 1, __ATOMIC_RELAXED);
}

cJSON *emu_stats_json(int reset)
{
    cJSON *j = cJSON_CreateObject();
    int i;

    for (i = 0; i < EMU_OPN_COUNT; i++) {
        unsigned long long v =
            reset ? __atomic_exchange_n(&counters[i], 0, __ATOMIC_RELAXED)
                  : __atomic_load_n(&counters[i], __ATOMIC_RELAXED);

        cJSON_AddNumberToObject(j, opnames[i], (double)v);
    }
    cJSON_AddNumberToObject(
        j, "throttled",
        (double)(reset ? __atomic_exchange_n(&throttled, 0, __ATOMIC_RELAXED)
                       : __atomic_load_n(&throttled, __ATOMIC_RELAXED)));
    return j;
}

/* ---- faults ---- */

struct rule {
    int op;     /* -1: any */
    char *path; /* substring or NULL */
    long count; /* < 0: unlimited */
    double fraction;
    struct emu_fault_hit hit;
    struct rule *next;
};

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rule *rules;
static int nrules; /* read without the lock as a fast path */

static double rand01(void)
{
    unsigned int r = 0;

    RAND_bytes((unsigned char *)&r, sizeof(r));
    return (double)r / 4294967296.0;
}

int emu_fault_match(int op, const char *path, struct emu_fault_hit *hit)
{
    struct rule **pp, *r;
    int found = 0;

    memset(hit, 0, sizeof(*hit));
    hit->retry_after = -1;
    if (!__atomic_load_n(&nrules, __ATOMIC_RELAXED)) {
        return 0;
    }
    pthread_mutex_lock(&fault_mu);
    for (pp = &rules; (r = *pp) != NULL; pp = &r->next) {
        if (r->op >= 0 && r->op != op) {
            continue;
        }
        if (r->path && (!path || !strstr(path, r->path))) {
            continue;
        }
        if (r->fraction < 1.0 && rand01() >= r->fraction) {
            continue;
        }
        *hit = r->hit;
        found = 1;
        if (r->count > 0 && --r->count == 0) {
            *pp = r->next;
            free(r->path);
            free(r);
            __atomic_sub_fetch(&nrules, 1, __ATOMIC_RELAXED);
        }
        break;
    }
    pthread_mutex_unlock(&fault_mu);
    return found;
}

static const char *kind_name(int k)
{
    switch (k) {
    case EMU_FAULT_STATUS:
        return "status";
    case EMU_FAULT_DELAY:
        return "delay";
    case EMU_FAULT_HANG:
        return "hang";
    case EMU_FAULT_CLOSE:
        return "close";
    case EMU_FAULT_MALFORMED:
        return "malformed";
    default:
        return "trickle"; /* --trickle-ms alone */
    }
}

static cJSON *list_json(void)
{
    cJSON *a = cJSON_CreateArray();
    struct rule *r;

    pthread_mutex_lock(&fault_mu);
    for (r = rules; r; r = r->next) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToArray(a, o);
        if (r->op >= 0) {
            cJSON_AddStringToObject(o, "op", emu_opname_str(r->op));
        }
        if (r->path) {
            cJSON_AddStringToObject(o, "path", r->path);
        }
        cJSON_AddNumberToObject(o, "count", (double)r->count);
        cJSON_AddNumberToObject(o, "fraction", r->fraction);
        cJSON_AddStringToObject(o, "action", kind_name(r->hit.kind));
        if (r->hit.kind == EMU_FAULT_STATUS) {
            cJSON_AddNumberToObject(o, "status", r->hit.status);
            if (r->hit.retry_after >= 0) {
                cJSON_AddNumberToObject(o, "retryAfter", r->hit.retry_after);
            }
        } else if (r->hit.kind == EMU_FAULT_DELAY) {
            cJSON_AddNumberToObject(o, "delayMs", r->hit.delay_ms);
        } else if (r->hit.kind == EMU_FAULT_MALFORMED) {
            cJSON_AddStringToObject(o, "malformed", r->hit.malformed);
        }
        if (r->hit.trickle_ms > 0) {
            cJSON_AddNumberToObject(o, "trickleMs", r->hit.trickle_ms);
        }
    }
    pthread_mutex_unlock(&fault_mu);
    return a;
}

/* USAGE marks a command-line mistake (the CLI then exits 2). */
static char *err_json(const char *msg, int usage)
{
    cJSON *j = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(j, "error", msg);
    if (usage) {
        cJSON_AddTrueToObject(j, "usage");
    }
    s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static const char *arg(cJSON *argv, int i)
{
    cJSON *a = cJSON_GetArrayItem(argv, i);

    return cJSON_IsString(a) ? a->valuestring : NULL;
}

int emu_fault_admin(cJSON *argv, int argi, char **out)
{
    const char *sub = arg(argv, argi);
    struct rule *r = NULL;
    int n = cJSON_GetArraySize(argv), i;
    cJSON *j;

    if (emu_strcaseeq(sub, "list")) {
        j = list_json();
        *out = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        return 200;
    }
    if (emu_strcaseeq(sub, "clear")) {
        pthread_mutex_lock(&fault_mu);
        while (rules) {
            r = rules;
            rules = r->next;
            free(r->path);
            free(r);
        }
        __atomic_store_n(&nrules, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&fault_mu);
        emu_http_release_hung();
        *out = strdup("{\"cleared\":true}");
        return 200;
    }
    if (!emu_strcaseeq(sub, "add")) {
        *out = err_json("unknown fault command (fault add|clear|list)", 1);
        return 400;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        *out = err_json("out of memory", 0);
        return 500;
    }
    r->op = -1;
    r->count = -1;
    r->fraction = 1.0;
    r->hit.retry_after = -1;
    for (i = argi + 1; i < n; i++) {
        const char *a = arg(argv, i), *v = arg(argv, i + 1);

        if (!a) {
            goto out;
        }
        if (strcmp(a, "--hang") == 0) {
            r->hit.kind = EMU_FAULT_HANG;
            continue;
        }
        if (strcmp(a, "--close") == 0) {
            r->hit.kind = EMU_FAULT_CLOSE;
            continue;
        }
        if (!v) {
            goto out;
        }
        i++;
        if (strcmp(a, "--op") == 0) {
            r->op = emu_opname_parse(v);
            if (r->op < 0) {
                goto out;
            }
        } else if (strcmp(a, "--path") == 0) {
            free(r->path);
            r->path = strdup(v);
        } else if (strcmp(a, "--count") == 0) {
            r->count = strtol(v, NULL, 10);
            if (r->count <= 0) {
                goto out;
            }
        } else if (strcmp(a, "--fraction") == 0) {
            r->fraction = strtod(v, NULL);
            if (!(r->fraction > 0.0 && r->fraction <= 1.0)) {
                goto out;
            }
        } else if (strcmp(a, "--status") == 0) {
            r->hit.kind = EMU_FAULT_STATUS;
            r->hit.status = (int)strtol(v, NULL, 10);
            if (r->hit.status < 100 || r->hit.status > 599) {
                goto out;
            }
        } else if (strcmp(a, "--retry-after") == 0) {
            r->hit.retry_after = (int)strtol(v, NULL, 10);
        } else if (strcmp(a, "--delay-ms") == 0) {
            r->hit.kind = EMU_FAULT_DELAY;
            r->hit.delay_ms = (int)strtol(v, NULL, 10);
            if (r->hit.delay_ms < 0 || r->hit.delay_ms > 600000) {
                goto out;
            }
        } else if (strcmp(a, "--trickle-ms") == 0) {
            r->hit.trickle_ms = (int)strtol(v, NULL, 10);
            if (r->hit.trickle_ms < 1 || r->hit.trickle_ms > 60000) {
                goto out;
            }
        } else if (strcmp(a, "--malformed") == 0) {
            static const char *const kinds[] = {
                "truncated", "bad-base64", "wrong-length", "bit-flip",
                "jwk-e1",    "jwk-n8",     "kid-host",     "kid-newline",
            };
            int known = 0;
            for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                known = known || strcmp(v, kinds[k]) == 0;
            }
            if (!known) {
                goto out;
            }
            r->hit.kind = EMU_FAULT_MALFORMED;
            snprintf(r->hit.malformed, sizeof(r->hit.malformed), "%s", v);
        } else {
            goto out;
        }
    }
    if ((r->hit.kind == EMU_FAULT_NONE && r->hit.trickle_ms == 0)
        || (r->hit.kind == EMU_FAULT_HANG && r->hit.trickle_ms > 0)
        || (r->op < 0 && !r->path)) {
        goto out;
    }
    pthread_mutex_lock(&fault_mu);
    {
        struct rule **pp = &rules;

        while (*pp) {
            pp = &(*pp)->next;
        }
        *pp = r;
    }
    __atomic_add_fetch(&nrules, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&fault_mu);
    j = list_json();
    *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return 200;
out:
    free(r->path);
    free(r);
    *out = err_json("fault add: missing or invalid option (need --op OP or "
                    "--path SUBSTRING and one of --status, --delay-ms, "
                    "--hang, --close, --malformed, --trickle-ms)",
                    1);
    return 400;
}

/* ---- throttling ---- */

#define WINDOW 10

struct bucket {
    long long sec;
    double other, create;
};

struct emu_throttle {
    pthread_mutex_t mu;
    struct bucket b[WINDOW];
};

static pthread_mutex_t throttle_init_mu = PTHREAD_MUTEX_INITIALIZER;

/* Cost in units of "one software RSA-2048 operation" (limit 4000/10 s). */
static double op_cost(const struct emu_keyver *kv)
{
    int hsm;

    if (!kv || !kv->pkey) {
        return 1.0;
    }
    hsm = strstr(kv->kty, "HSM") != NULL;
    switch (kv->bits) {
    case 3072:
        return hsm ? 8.0 : 4.0;
    case 4096:
        return hsm ? 16.0 : 8.0;
    default:
        return hsm ? 2.0 : 1.0;
    }
}

int emu_throttle_take(struct emu_vault *v, int op, const struct emu_keyver *kv)
{
    struct emu_throttle *t;
    long long now = emu_now();
    int create = op == EMU_OPN_CREATE || op == EMU_OPN_ROTATE;
    double budget = (create ? 20.0 : 4000.0) * emu.throttle_scale;
    double cost = create ? 1.0 : op_cost(kv), used = 0;
    long long oldest = now;
    int i, ra = 0;

    if (budget < 1.0) {
        budget = 1.0;
    }
    pthread_mutex_lock(&throttle_init_mu);
    if (!v->throttle) {
        v->throttle = calloc(1, sizeof(*v->throttle));
        if (v->throttle) {
            pthread_mutex_init(&v->throttle->mu, NULL);
        }
    }
    t = v->throttle;
    pthread_mutex_unlock(&throttle_init_mu);
    if (!t) {
        return 0;
    }
    pthread_mutex_lock(&t->mu);
    for (i = 0; i < WINDOW; i++) {
        struct bucket *b = &t->b[i];
        double u = create ? b->create : b->other;

        if (b->sec > now - WINDOW && u > 0) {
            used += u;
            if (b->sec < oldest) {
                oldest = b->sec;
            }
        }
    }
    if (used + cost > budget) {
        ra = (int)(oldest + WINDOW - now);
        if (ra < 1) {
            ra = 1;
        }
    } else {
        struct bucket *b = &t->b[now % WINDOW];

        if (b->sec != now) {
            b->sec = now;
            b->other = b->create = 0;
        }
        if (create) {
            b->create += cost;
        } else {
            b->other += cost;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return ra;
}
