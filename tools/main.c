/* SPDX-License-Identifier: Apache-2.0 */
/*
 * akv-pkcs11-tool: administration of akv-pkcs11 tokens (tools/README.md).
 *
 *   rewrap  re-wraps every stored token object under the current version of
 *           the token's first configured key (after a key rotation);
 *   status  shows, per token, the vault, key, identity, whether get/wrapKey/
 *           unwrapKey work right now, and which key versions wrap the stored
 *           objects (counterpart of `az acr encryption show-status`);
 *   check   proves every link the module needs, one OK/FAIL line each with
 *           cause and fix (check.c);
 *   uri     prints the RFC 7512 URI of every object and version (uri.c).
 *
 * Exit status: 0 success, 1 a failure (printed), 2 bad arguments; check:
 * the number of failures (at most AKV_CHECK_MAX_FAILS).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "admin.h"
#include "check.h"
#include "uri.h"
#include "common/config.h"
#include "common/log.h"
#include "keyvault/kv.h"
#include "token/store.h"

#ifndef AKV_VERSION
#define AKV_VERSION "unknown"
#endif

#define EXIT_USAGE 2

#ifndef AKV_MODULE_PATH
#define AKV_MODULE_PATH "akv-pkcs11.so"
#endif

static const char usage_text[] =
    "Usage: akv-pkcs11-tool [--help] [--version] COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  rewrap  [--config FILE] [--token LABEL] [-v]\n"
    "          Re-wrap every stored token object under the current version\n"
    "          of the token's first configured key (pinned version if the\n"
    "          configuration pins one). Safe to interrupt; run it again.\n"
    "  status  [--config FILE] [--token LABEL] [--json] [-v]\n"
    "          Show vault, key, identity, whether get/wrapKey/unwrapKey work\n"
    "          now, and how many stored objects each key version wraps.\n"
    "  check   [--config FILE] [--token LABEL] [--json] [-v]\n"
    "          Prove every link the module needs, in the order it fails;\n"
    "          one OK/FAIL line each with cause and fix. Exit status: the\n"
    "          number of failures (at most 100).\n"
    "  uri     [--config FILE] [--token LABEL] [--module PATH]\n"
    "          Print the RFC 7512 pkcs11: URI of every object and version.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   module configuration (default: $AKV_PKCS11_CONFIG,\n"
    "                      then /etc/akv-pkcs11/config.json)\n"
    "  -t, --token LABEL   only this token\n"
    "  -j, --json          status/check as a JSON document on stdout\n"
    "  -m, --module PATH   uri: the module to load (default\n"
    "                      " AKV_MODULE_PATH ")\n"
    "  -v, --verbose       more log output on stderr (repeat for debug)\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 bad arguments.\n";

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

struct cmd_opts {
    const char *config;
    const char *token;
    const char *module;
    bool json;
    int verbose;
};

static const char *cred_type_name(enum akv_cred_type t)
{
    switch (t) {
    case AKV_CRED_MANAGED_IDENTITY:
        return "managed_identity";
    case AKV_CRED_CLIENT_SECRET:
        return "client_secret";
    case AKV_CRED_CLIENT_CERTIFICATE:
        return "client_certificate";
    case AKV_CRED_WORKLOAD_IDENTITY:
        return "workload_identity";
    case AKV_CRED_ENVIRONMENT:
        return "environment";
    }
    return "unknown";
}

const char *akv_tool_cred_type_name(enum akv_cred_type t);
void akv_tool_cred_identity(const struct akv_cred_config *c, char *buf,
                            size_t len);

const char *akv_tool_cred_type_name(enum akv_cred_type t)
{
    return cred_type_name(t);
}

/* Who the token authenticates as, without any secret. */
static void cred_identity(const struct akv_cred_config *c, char *buf,
                          size_t len)
{
    const char *env_id = NULL;

    switch (c->type) {
    case AKV_CRED_MANAGED_IDENTITY:
        if (c->client_id != NULL) {
            snprintf(buf, len, "client_id %s", c->client_id);
        } else if (c->object_id != NULL) {
            snprintf(buf, len, "object_id %s", c->object_id);
        } else if (c->resource_id != NULL) {
            snprintf(buf, len, "resource_id %s", c->resource_id);
        } else {
            snprintf(buf, len, "system-assigned");
        }
        return;
    case AKV_CRED_ENVIRONMENT:
        env_id = getenv("AZURE_CLIENT_ID");
        snprintf(buf, len, "client_id %s (from AZURE_CLIENT_ID)",
                 env_id != NULL ? env_id : "(unset)");
        return;
    default:
        snprintf(buf, len, "client_id %s%s%s",
                 c->client_id != NULL ? c->client_id : "(none)",
                 c->tenant_id != NULL ? ", tenant " : "",
                 c->tenant_id != NULL ? c->tenant_id : "");
        return;
    }
}

static int load_config(const struct cmd_opts *o, struct akv_config **cfg)
{
    char err[512];
    char *path = NULL;
    int rc = 1;

    path = o->config != NULL ? strdup(o->config) : akv_config_locate(NULL);
    if (path == NULL) {
        fprintf(stderr, "akv-pkcs11-tool: out of memory\n");
        goto out;
    }
    if (akv_config_load(path, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "akv-pkcs11-tool: %s\n", err);
        goto out;
    }
    /* A typo in an optional key changes behaviour silently otherwise. */
    for (size_t i = 0; i < (*cfg)->n_warnings; i++) {
        fprintf(stderr, "akv-pkcs11-tool: warning: %s\n", (*cfg)->warnings[i]);
    }
    /* The tool reports and rewraps against what the vault says now: it
     * never reads the cross-process cache of key answers and tokens
     * (keyvault/pcache.h), which may be up to key_refresh_s old. */
    for (size_t i = 0; i < (*cfg)->n_tokens; i++) {
        (*cfg)->tokens[i].cache = false;
    }
    rc = 0;
out:
    free(path);
    return rc;
}

/* Selects the tokens to work on; prints an error when --token matches none. */
static bool token_selected(const struct cmd_opts *o,
                           const struct akv_token_config *tc)
{
    return o->token == NULL || strcmp(o->token, tc->label) == 0;
}

static int check_token_exists(const struct cmd_opts *o,
                              const struct akv_config *cfg)
{
    if (o->token == NULL) {
        return 0;
    }
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        if (strcmp(cfg->tokens[i].label, o->token) == 0) {
            return 0;
        }
    }
    fprintf(stderr, "akv-pkcs11-tool: no token labelled \"%s\" in %s\n",
            o->token, cfg->path != NULL ? cfg->path : "the configuration");
    return 1;
}

static void setup_logging(const struct cmd_opts *o)
{
    /* none: errors only; -v info, -vv debug, -vvv trace */
    int level =
        o->verbose == 0 ? AKV_LOG_LEVEL_ERROR : AKV_LOG_LEVEL_WARN + o->verbose;
    if (level > AKV_LOG_LEVEL_TRACE) {
        level = AKV_LOG_LEVEL_TRACE;
    }
    /* The tool is interactive: its log goes to stderr whatever the module
     * configuration says. */
    akv_log_configure(level, "stderr");
}

/* Rewraps one token's store; adds its counts to TOTAL. Returns 0 or 1. */
static int rewrap_token(const struct akv_token_config *tc,
                        const struct akv_rewrap_opts *ro,
                        struct akv_rewrap_stats *total)
{
    struct akv_kv *kv = NULL;
    struct akv_store *store = NULL;
    struct akv_seal_target target;
    struct akv_rewrap_stats st;
    CK_RV rv = CKR_GENERAL_ERROR;
    int rc = 1;

    memset(&target, 0, sizeof(target));
    memset(&st, 0, sizeof(st));
    if (tc->n_keys == 0) {
        printf("token %s: no key configured\n", tc->label);
        goto out;
    }
    rv = akv_kv_rest_new(tc, &kv);
    if (rv != CKR_OK) {
        printf("token %s: cannot create the Key Vault client: %s\n", tc->label,
               akv_admin_rv_name(rv));
        goto out;
    }
    /* The same rule as the module (token/seal.c akv_seal_choose). */
    rv = akv_admin_target(kv, tc->keys, tc->n_keys, &target);
    if (rv != CKR_OK) {
        printf("token %s: no sealing key: %s\n", tc->label,
               akv_admin_rv_name(rv));
        goto out;
    }
    rv = akv_store_open(tc->store_dir, &store);
    if (rv != CKR_OK) {
        printf("token %s: cannot open store %s: %s\n", tc->label, tc->store_dir,
               akv_admin_rv_name(rv));
        goto out;
    }
    if (!ro->failures_only) {
        printf("token %s: store %s, target %s/%s\n", tc->label, tc->store_dir,
               target.name, target.version);
        fflush(stdout);
    }
    {
        struct akv_rewrap_opts o = *ro;
        o.progress_label = tc->label;
        rv = akv_admin_rewrap(kv, store, tc->vault_url, &target, &o, &st);
    }
    if (rv != CKR_OK) {
        printf("token %s: cannot read store %s: %s\n", tc->label, tc->store_dir,
               akv_admin_rv_name(rv));
        goto out;
    }
    printf("token %s: store %s, target %s/%s: rewrapped %zu, already "
           "current %zu, failed %zu",
           tc->label, tc->store_dir, target.name, target.version, st.rewrapped,
           st.current, st.failed);
    if (st.vanished > 0) {
        printf(", deleted meanwhile %zu", st.vanished);
    }
    printf("\n");
    rc = st.failed == 0 ? 0 : 1;
out:
    total->rewrapped += st.rewrapped;
    total->current += st.current;
    total->failed += st.failed + (rc != 0 && st.failed == 0 ? 1 : 0);
    total->vanished += st.vanished;
    akv_store_close(store);
    if (kv != NULL) {
        kv->ops->destroy(kv);
    }
    return rc;
}

static int cmd_rewrap(const struct cmd_opts *o)
{
    struct akv_config *cfg = NULL;
    /* Per-record lines with -v; otherwise failures and one summary line
     * per token, and on a terminal a "\r"-updated progress line. */
    struct akv_rewrap_opts ro = {stdout, 0, o->verbose == 0,
                                 isatty(STDOUT_FILENO) ? stdout : NULL, NULL};
    struct akv_rewrap_stats total;
    const char *kill_at = getenv("AKV_TOOL_TEST_KILL_AT");
    size_t done = 0;
    int rc = 1;

    memset(&total, 0, sizeof(total));
    if (kill_at != NULL && kill_at[0] != '\0') {
        char *end = NULL;
        errno = 0;
        ro.kill_after_writes = strtol(kill_at, &end, 10);
        if (errno != 0 || *end != '\0' || ro.kill_after_writes < 0) {
            fprintf(stderr, "akv-pkcs11-tool: bad AKV_TOOL_TEST_KILL_AT\n");
            return EXIT_USAGE;
        }
    }
    if (load_config(o, &cfg) != 0 || check_token_exists(o, cfg) != 0) {
        goto out;
    }
    if (akv_kv_global_init() != CKR_OK) {
        fprintf(stderr, "akv-pkcs11-tool: libcurl initialisation failed\n");
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        const struct akv_token_config *tc = &cfg->tokens[i];
        if (!token_selected(o, tc)) {
            continue;
        }
        if (tc->store_dir == NULL) {
            printf("token %s: no store_dir configured, nothing to rewrap\n",
                   tc->label);
            if (o->token != NULL) {
                rc = 1;
            }
            continue;
        }
        if (rewrap_token(tc, &ro, &total) != 0) {
            rc = 1;
        }
        done++;
    }
    if (done > 1) {
        printf("total: rewrapped %zu, already current %zu, failed %zu\n",
               total.rewrapped, total.current, total.failed);
    }
out:
    akv_config_free(cfg);
    return rc;
}

static const char *yes_no(bool reached, bool ok)
{
    return !reached ? "not tried" : ok ? "ok" : "FAILED";
}

/* Status of one token, both as text (stdout unless JSON) and into JT.
 * Returns true when everything works. */
static bool status_token(const struct akv_token_config *tc, bool json,
                         cJSON *jt)
{
    struct akv_kv *kv = NULL;
    struct akv_store *store = NULL;
    struct akv_store_record *recs = NULL;
    struct akv_tally_row *rows = NULL;
    size_t n = 0, n_rows = 0;
    char ident[512];
    char target_ver[AKV_KV_VERSION_MAX] = "";
    char target_name[AKV_KV_NAME_MAX] = "";
    cJSON *jkeys = NULL;
    cJSON *jc = NULL;
    struct stat sb;
    bool ok = true;
    CK_RV rv = CKR_GENERAL_ERROR;

    cred_identity(&tc->cred, ident, sizeof(ident));
    cJSON_AddStringToObject(jt, "label", tc->label);
    cJSON_AddStringToObject(jt, "vault_url", tc->vault_url);
    jc = cJSON_AddObjectToObject(jt, "credential");
    jkeys = cJSON_AddArrayToObject(jt, "keys");
    cJSON_AddStringToObject(jc, "type", cred_type_name(tc->cred.type));
    cJSON_AddStringToObject(jc, "identity", ident);
    if (!json) {
        printf("token %s\n", tc->label);
        printf("  vault:      %s\n", tc->vault_url);
        printf("  credential: %s, %s\n", cred_type_name(tc->cred.type), ident);
    }
    rv = akv_kv_rest_new(tc, &kv);
    if (rv != CKR_OK) {
        ok = false;
        cJSON_AddStringToObject(jt, "error", "cannot create Key Vault client");
        if (!json) {
            printf("  error:      cannot create the Key Vault client: %s\n",
                   akv_admin_rv_name(rv));
        }
    }
    for (size_t k = 0; kv != NULL && k < tc->n_keys; k++) {
        const struct akv_key_config *kc = &tc->keys[k];
        struct akv_probe pr;
        cJSON *jk = cJSON_CreateObject();
        akv_admin_probe(kv, kc->name, kc->version, &pr);
        cJSON_AddItemToArray(jkeys, jk);
        cJSON_AddStringToObject(jk, "name", kc->name);
        if (kc->version != NULL) {
            cJSON_AddStringToObject(jk, "pinned_version", kc->version);
        }
        if (pr.get_ok) {
            cJSON_AddStringToObject(jk, "version", pr.key.version);
            cJSON_AddStringToObject(jk, "kid", pr.key.kid);
            cJSON_AddStringToObject(jk, "kty", pr.key.kty_name);
            cJSON_AddBoolToObject(jk, "enabled", pr.key.enabled);
        }
        cJSON_AddBoolToObject(jk, "get", pr.get_ok);
        cJSON_AddBoolToObject(jk, "wrapKey", pr.wrap_ok);
        cJSON_AddBoolToObject(jk, "unwrapKey", pr.unwrap_ok);
        if (pr.rv != CKR_OK) {
            ok = false;
            cJSON_AddStringToObject(jk, "failed_step", pr.step);
            cJSON_AddStringToObject(jk, "error", akv_admin_rv_name(pr.rv));
        }
        if (!json) {
            printf("  key %s:%s%s\n", kc->name, pr.get_ok ? " version " : "",
                   pr.get_ok ? pr.key.version : "");
            printf("    get: %s  wrapKey: %s  unwrapKey: %s",
                   yes_no(true, pr.get_ok), yes_no(pr.get_ok, pr.wrap_ok),
                   yes_no(pr.wrap_ok, pr.unwrap_ok));
            if (pr.rv != CKR_OK) {
                printf("  (%s: %s)", pr.step, akv_admin_rv_name(pr.rv));
            }
            printf("\n");
        }
        akv_kv_key_clear(&pr.key);
    }
    {
        /* "current" = what rewrap would target: the one sealing rule. */
        struct akv_seal_target tg;

        if (kv != NULL
            && akv_admin_target(kv, tc->keys, tc->n_keys, &tg) == CKR_OK) {
            memcpy(target_ver, tg.version, sizeof(target_ver));
            memcpy(target_name, tg.name, sizeof(target_name));
        }
    }
    if (tc->store_dir == NULL) {
        cJSON_AddNullToObject(jt, "store");
        if (!json) {
            printf("  store:      none (no store_dir)\n");
        }
        goto out;
    }
    {
        cJSON *js = cJSON_AddObjectToObject(jt, "store");
        cJSON *jv = NULL;
        cJSON_AddStringToObject(js, "dir", tc->store_dir);
        /* status only looks: a store folder that does not exist yet is
         * reported as empty, not created. */
        if (stat(tc->store_dir, &sb) != 0 && errno == ENOENT) {
            cJSON_AddNumberToObject(js, "objects", 0);
            cJSON_AddArrayToObject(js, "by_version");
            cJSON_AddBoolToObject(js, "exists", false);
            if (!json) {
                printf("  store:      %s: not created yet, 0 objects\n",
                       tc->store_dir);
            }
            goto out;
        }
        cJSON_AddBoolToObject(js, "exists", true);
        rv = akv_store_open(tc->store_dir, &store);
        if (rv == CKR_OK && kv != NULL) {
            /* Records are authenticated under the store secret; status
             * never creates it (NULL target): a legacy store nobody has
             * used since the upgrade is reported as such. */
            struct akv_seal_ctx sc = {kv, store, tc->vault_url, NULL, NULL};
            rv = akv_seal_ready(&sc, NULL);
            if (rv == CKR_TEMPLATE_INCONSISTENT) {
                cJSON_AddBoolToObject(js, "sealed", false);
                if (!json) {
                    printf("  store:      %s: no .storekey yet (legacy "
                           "records are adopted on first use or by "
                           "rewrap)\n",
                           tc->store_dir);
                }
                goto out;
            }
        }
        if (rv == CKR_OK) {
            rv = akv_store_list(store, &recs, &n);
        }
        if (rv == CKR_OK) {
            rv = akv_admin_tally(recs, n, &rows, &n_rows);
        }
        if (rv != CKR_OK) {
            ok = false;
            cJSON_AddStringToObject(js, "error", akv_admin_rv_name(rv));
            if (!json) {
                printf("  store:      %s: unreadable (%s)\n", tc->store_dir,
                       akv_admin_rv_name(rv));
            }
            goto out;
        }
        cJSON_AddNumberToObject(js, "objects", (double)n);
        {
            /* A record that cannot be read may be a lost data key. */
            size_t bad = akv_store_last_unreadable(store);
            size_t refused = akv_store_last_refused(store);

            cJSON_AddNumberToObject(js, "unreadable", (double)bad);
            cJSON_AddNumberToObject(js, "refused", (double)refused);
            if (bad > 0) {
                ok = false;
                cJSON_AddStringToObject(js, "error", "unreadable records");
            }
            if (!json) {
                printf("  store:      %s: %zu object%s", tc->store_dir, n,
                       n == 1 ? "" : "s");
                if (bad > 0) {
                    printf(", %zu UNREADABLE (see the log)", bad);
                }
                printf(refused > 0 ? ", of which %zu REFUSED (fail "
                                     "authentication)\n"
                                   : "\n",
                       refused);
            }
        }
        jv = cJSON_AddArrayToObject(js, "by_version");
        for (size_t i = 0; i < n_rows; i++) {
            cJSON *jr = cJSON_CreateObject();
            bool cur = target_ver[0] != '\0'
                       && strcasecmp(rows[i].name, target_name) == 0
                       && strcmp(rows[i].version, target_ver) == 0;
            cJSON_AddItemToArray(jv, jr);
            cJSON_AddStringToObject(jr, "key", rows[i].name);
            cJSON_AddStringToObject(jr, "version", rows[i].version);
            cJSON_AddNumberToObject(jr, "count", (double)rows[i].count);
            cJSON_AddBoolToObject(jr, "current", cur);
            if (!json) {
                printf("    %s/%s: %zu%s\n", rows[i].name, rows[i].version,
                       rows[i].count,
                       cur                     ? " (current)"
                       : target_ver[0] != '\0' ? " (run rewrap)"
                                               : "");
            }
        }
    }
out:
    cJSON_AddBoolToObject(jt, "ok", ok);
    free(rows);
    akv_store_records_free(recs, n);
    akv_store_close(store);
    if (kv != NULL) {
        kv->ops->destroy(kv);
    }
    return ok;
}

static int cmd_status(const struct cmd_opts *o)
{
    struct akv_config *cfg = NULL;
    cJSON *doc = cJSON_CreateObject();
    cJSON *jtokens = NULL;
    bool all_ok = true;
    int rc = 1;

    if (doc == NULL) {
        fprintf(stderr, "akv-pkcs11-tool: out of memory\n");
        goto out;
    }
    jtokens = cJSON_AddArrayToObject(doc, "tokens");
    if (load_config(o, &cfg) != 0 || check_token_exists(o, cfg) != 0) {
        goto out;
    }
    if (akv_kv_global_init() != CKR_OK) {
        fprintf(stderr, "akv-pkcs11-tool: libcurl initialisation failed\n");
        goto out;
    }
    cJSON_AddStringToObject(doc, "config", cfg->path != NULL ? cfg->path : "");
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        cJSON *jt = NULL;
        if (!token_selected(o, &cfg->tokens[i])) {
            continue;
        }
        jt = cJSON_CreateObject();
        cJSON_AddItemToArray(jtokens, jt);
        if (!status_token(&cfg->tokens[i], o->json, jt)) {
            all_ok = false;
        }
    }
    cJSON_AddBoolToObject(doc, "ok", all_ok);
    if (o->json) {
        char *s = cJSON_Print(doc);
        if (s == NULL) {
            fprintf(stderr, "akv-pkcs11-tool: out of memory\n");
            goto out;
        }
        printf("%s\n", s);
        cJSON_free(s);
    } else {
        printf("%s\n", all_ok ? "status: ok" : "status: FAILED");
    }
    rc = all_ok ? 0 : 1;
out:
    cJSON_Delete(doc);
    akv_config_free(cfg);
    return rc;
}

void akv_tool_cred_identity(const struct akv_cred_config *c, char *buf,
                            size_t len)
{
    cred_identity(c, buf, len);
}

static int cmd_check(const struct cmd_opts *o)
{
    char *path =
        o->config != NULL ? strdup(o->config) : akv_config_locate(NULL);
    int rc = 1;

    if (path == NULL) {
        fprintf(stderr, "akv-pkcs11-tool: out of memory\n");
        return 1;
    }
    rc = akv_check_run(path, o->token, o->json);
    free(path);
    return rc;
}

static int cmd_uri(const struct cmd_opts *o)
{
    char *path =
        o->config != NULL ? strdup(o->config) : akv_config_locate(NULL);
    int rc = 1;

    if (path == NULL) {
        fprintf(stderr, "akv-pkcs11-tool: out of memory\n");
        return 1;
    }
    rc = akv_uri_print(o->module, path, o->token);
    free(path);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option global_opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static const struct option cmd_long[] = {
        {"config", required_argument, NULL, 'c'},
        {"token", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"module", required_argument, NULL, 'm'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cmd_opts o = {NULL, NULL, AKV_MODULE_PATH, false, 0};
    const char *cmd = NULL;
    bool is_status = false;
    bool is_check = false;
    bool is_uri = false;
    int c;

    /* "+": stop at the command name; its options are parsed below. */
    while ((c = getopt_long(argc, argv, "+hV", global_opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("akv-pkcs11-tool %s\n", AKV_VERSION);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "akv-pkcs11-tool: a command is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "status") == 0) {
        is_status = true;
    } else if (strcmp(cmd, "check") == 0) {
        is_check = true;
    } else if (strcmp(cmd, "uri") == 0) {
        is_uri = true;
    } else if (strcmp(cmd, "rewrap") != 0) {
        fprintf(stderr, "akv-pkcs11-tool: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    argc -= optind;
    argv += optind;
    optind = 0; /* glibc: full re-initialisation for the second scan */
    while ((c = getopt_long(argc, argv, "+c:t:jm:vh", cmd_long, NULL)) != -1) {
        switch (c) {
        case 'c':
            o.config = optarg;
            break;
        case 't':
            o.token = optarg;
            break;
        case 'j':
            if (!is_status && !is_check) {
                fprintf(stderr,
                        "akv-pkcs11-tool: --json is for status and check\n");
                usage(stderr);
                return EXIT_USAGE;
            }
            o.json = true;
            break;
        case 'm':
            if (!is_uri) {
                fprintf(stderr, "akv-pkcs11-tool: --module is for uri\n");
                usage(stderr);
                return EXIT_USAGE;
            }
            o.module = optarg;
            break;
        case 'v':
            o.verbose++;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "akv-pkcs11-tool: unexpected argument \"%s\"\n",
                argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    setup_logging(&o);
    if (is_check && o.verbose == 0) {
        /* check words every failure itself; -v adds the vault's answers */
        akv_log_configure(AKV_LOG_LEVEL_NONE, "stderr");
    }
    if (is_check) {
        return cmd_check(&o);
    }
    if (is_uri) {
        return cmd_uri(&o);
    }
    return is_status ? cmd_status(&o) : cmd_rewrap(&o);
}
