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

        fprintf(stderr, "akv-emulator: %s (HTTP %ld)\n",
                m ? m : (resp.p ? resp.p : "error"), status);
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
