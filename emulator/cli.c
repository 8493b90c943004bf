/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control CLI client: sends argv to the running server's control endpoint
 * (POST https://127.0.0.1:PORT/_emulator/cli, bearer = admin secret from
 * DIR/server.json, TLS verified against DIR/ca.pem) and prints the answer.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "emu.h"

int emu_cli_main(int argc, char **argv, const char *dir);
void emu_cli_help(FILE *f, int argc, char **argv);

/* One entry per command form. `akv-emulator CMD ... --help` and usage
 * errors print the entries whose leading words best match CMD. */
static const char *const help_lines[] = {
    "serve --dir DIR [--host 127.0.0.1] [--port P] [--imds-port Q]\n"
    "      [--token-lifetime SECONDS] [--throttle] [--throttle-scale F]\n"
    "      [--threads N] [--delete-delay-ms MS]\n"
    "      (without --port/--imds-port the ports of DIR's previous start are\n"
    "      reused when free; 0 = any free port)",
    "identity create|show|federated-token --name N",
    "identity revoke-tokens --name N | --object-id OID",
    "ad sp create-for-rbac --name N [--create-cert]",
    "keyvault create|show --name V | keyvault list",
    "keyvault create --name V [--sku standard|premium]  (default standard;\n"
    "      -HSM keys need premium)",
    "keyvault create|show --hsm-name H [--administrators OID...]\n"
    "      (a Managed HSM: local RBAC, audience https://managedhsm.azure.net;\n"
    "      key commands take --hsm-name H instead of --vault-name V)",
    "keyvault role assignment create --hsm-name H --role ROLE\n"
    "      (--assignee-object-id OID | --assignee APPID|NAME) [--scope /|/keys|"
    "/keys/K]",
    "keyvault role assignment delete|list --hsm-name H [--role ROLE]\n"
    "      [--assignee-object-id OID | --assignee APPID|NAME] [--scope S]",
    "keyvault role definition list --hsm-name H",
    "keyvault set-policy --name V (--object-id OID | --spn APPID)\n"
    "      --key-permissions P... [--certificate-permissions get list]",
    "keyvault delete-policy --name V (--object-id OID | --spn APPID)",
    "keyvault key create --vault-name V --name K [--kty RSA|RSA-HSM|EC|EC-HSM|"
    "oct-HSM]\n"
    "      [--size N] [--curve C] [--ops OP...] [--disabled true|false]\n"
    "      [--expires EPOCH|ISO] [--not-before EPOCH|ISO] [--tags k=v ...]",
    "keyvault key import --vault-name V --name K --pem-file F\n"
    "      [--protection hsm|software] [options as create]",
    "keyvault key show|rotate|delete|recover|purge|show-deleted|list-versions\n"
    "      --vault-name V --name K [--version VER]",
    "keyvault key set-attributes --vault-name V --name K [--version VER]\n"
    "      [--enabled true|false] [--expires ...] [--not-before ...] "
    "[--ops ...]\n"
    "      [--tags ...]",
    "keyvault key list --vault-name V",
    "keyvault certificate create --vault-name V --name K [--version VER]\n"
    "      [--subject CN=x/O=y] [--validity-days D]  (self-signed by key K)",
    "keyvault certificate import --vault-name V --name K [--version VER]\n"
    "      --file PEM  (its public key must be key K's)",
    "keyvault certificate show|list-versions --vault-name V --name K "
    "[--version VER]",
    "fault add (--op OP | --path SUBSTRING) [--count N | --fraction F]\n"
    "      (--status S [--retry-after SECONDS] | --delay-ms MS | --hang |\n"
    "       --close | --malformed truncated|bad-base64|wrong-length|\n"
    "                   bit-flip|jwk-e1|jwk-n8|kid-host|kid-newline)\n"
    "      [--trickle-ms MS]\n"
    "      --trickle-ms MS (alone or with --status/--delay-ms/--close/\n"
    "      --malformed): the answer's body is sent one byte every MS ms\n"
    "      (1..60000; a trickle ends after 120 s, when the client goes away,\n"
    "      or at fault clear)",
    "fault clear | fault list",
    "stats [--reset]",
    "token issued",
};

/* Depth to which the leading words of LINE match ARGV (each line word is
 * a '|'-separated list of alternatives). */
static int help_match(const char *line, int argc, char **argv)
{
    int d = 0;

    while (d < argc && argv[d][0] != '-') {
        size_t wl = strcspn(line, " "), al = strlen(argv[d]);
        const char *alt = line;
        int hit = 0;

        while (alt < line + wl) {
            size_t l = strcspn(alt, "| ");

            if (l == al && strncmp(alt, argv[d], al) == 0) {
                hit = 1;
                break;
            }
            alt += l + (alt[l] == '|');
            if (alt[-1] != '|') {
                break;
            }
        }
        if (!hit) {
            break;
        }
        d++;
        line += wl;
        while (*line == ' ') {
            line++;
        }
    }
    return d;
}

void emu_cli_help(FILE *f, int argc, char **argv)
{
    size_t i, n = sizeof(help_lines) / sizeof(help_lines[0]);
    int best = 0;

    for (i = 0; i < n; i++) {
        int d = help_match(help_lines[i], argc, argv);

        best = d > best ? d : best;
    }
    fputs("usage:\n", f);
    for (i = 0; i < n; i++) {
        const char *l = help_lines[i];

        if (best && help_match(l, argc, argv) < best) {
            continue;
        }
        fprintf(f, "  akv-emulator %s%s\n",
                strncmp(l, "serve", 5) == 0 ? "" : "--dir DIR ", l);
    }
}

struct buf {
    char *p;
    size_t n;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t add = size * nmemb;
    char *np;

    if (b->n + add > 16 * 1024 * 1024) {
        return 0;
    }
    np = realloc(b->p, b->n + add + 1);
    if (!np) {
        return 0;
    }
    b->p = np;
    memcpy(b->p + b->n, ptr, add);
    b->n += add;
    b->p[b->n] = 0;
    return add;
}

int emu_cli_main(int argc, char **argv, const char *dir)
{
    char path[4200], url[256], authz[128];
    char *text = NULL, *body = NULL;
    cJSON *sj = NULL, *req = NULL, *arr, *x;
    const char *secret, *host = "127.0.0.1";
    int port, i, rc = 1;
    long status = 0;
    CURL *c = NULL;
    struct curl_slist *hdr = NULL;
    struct buf resp = {NULL, 0};
    CURLcode cr;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            emu_cli_help(stdout, argc, argv);
            return 0;
        }
    }
    if (!dir) {
        fprintf(stderr, "akv-emulator: --dir DIR is required\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/server.json", dir);
    text = emu_read_file(path, NULL);
    sj = text ? cJSON_Parse(text) : NULL;
    x = cJSON_GetObjectItem(sj, "port");
    secret = cJSON_GetStringValue(cJSON_GetObjectItem(sj, "admin_secret"));
    if (!cJSON_IsNumber(x) || !secret) {
        fprintf(stderr, "akv-emulator: server not running (cannot read %s)\n",
                path);
        goto out;
    }
    port = (int)x->valuedouble;
    if (cJSON_GetStringValue(cJSON_GetObjectItem(sj, "host"))) {
        host = cJSON_GetStringValue(cJSON_GetObjectItem(sj, "host"));
    }
    req = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(req, "argv");
    for (i = 0; i < argc; i++) {
        char abs[PATH_MAX];

        /* The server reads files itself: hand it absolute paths. */
        if (i > 0 && strcmp(argv[i - 1], "--pem-file") == 0
            && realpath(argv[i], abs)) {
            cJSON_AddItemToArray(arr, cJSON_CreateString(abs));
        } else {
            cJSON_AddItemToArray(arr, cJSON_CreateString(argv[i]));
        }
    }
    body = cJSON_PrintUnformatted(req);
    snprintf(url, sizeof(url), "https://%s:%d/_emulator/cli", host, port);
    snprintf(authz, sizeof(authz), "Authorization: Bearer %s", secret);
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c = curl_easy_init();
    if (!c || !body) {
        goto out;
    }
    hdr = curl_slist_append(hdr, authz);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, path);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cr = curl_easy_perform(c);
    if (cr != CURLE_OK) {
        fprintf(stderr, "akv-emulator: server not running at %s (%s)\n", url,
                curl_easy_strerror(cr));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
        if (resp.n) {
            fputs(resp.p, stdout);
            if (resp.p[resp.n - 1] != '\n') {
                fputc('\n', stdout);
            }
        }
        rc = 0;
    } else {
        cJSON *ej = resp.p ? cJSON_Parse(resp.p) : NULL;
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(ej, "error"));

        if (status == 400 && cJSON_IsTrue(cJSON_GetObjectItem(ej, "usage"))) {
            fprintf(stderr, "akv-emulator: %s\n", m ? m : "usage error");
            emu_cli_help(stderr, argc, argv);
            rc = 2;
        } else {
            fprintf(stderr, "akv-emulator: %s (HTTP %ld)\n",
                    m ? m : (resp.p ? resp.p : "error"), status);
        }
        cJSON_Delete(ej);
    }
out:
    curl_slist_free_all(hdr);
    if (c) {
        curl_easy_cleanup(c);
    }
    free(resp.p);
    free(body);
    free(text);
    cJSON_Delete(sj);
    cJSON_Delete(req);
    return rc;
}
