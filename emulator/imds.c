/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure Instance Metadata Service managed-identity token endpoint
 * (entra-docs how-to-use-vm-token.md), plain HTTP on its own port:
 *   GET /metadata/identity/oauth2/token[/]?api-version=2018-02-01
 *       &resource=R[&client_id=|&object_id=|&msi_res_id=]  + "Metadata: true"
 * and the App Service / Functions form of the same service
 * (azure-docs app-service/overview-managed-identity.md) on the same port:
 *   GET /msi/token?api-version=2019-08-01&resource=R
 *       [&client_id=|&principal_id=|&object_id=|&mi_res_id=]
 *       + "X-IDENTITY-HEADER: <DIR/identity-header>"
 * Numbers are returned as strings. Any resource is honoured as the token
 * audience (like Azure), so a wrong resource yields a token the vault
 * rejects with AKV10022.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "emu.h"
#include "http.h"

static void imds_error(struct emu_resp *rs, int status, const char *err,
                       const char *desc)
{
    cJSON *j = cJSON_CreateObject();

    cJSON_AddStringToObject(j, "error", err);
    cJSON_AddStringToObject(j, "error_description", desc);
    emu_resp_json(rs, status, j);
    cJSON_Delete(j);
}

static struct emu_principal *select_identity(struct emu_req *rq,
                                             struct emu_resp *rs, int appsvc)
{
    const char *cid = emu_req_arg(rq, "client_id");
    const char *oid = emu_req_arg(rq, "object_id");
    const char *rid = emu_req_arg(rq, appsvc ? "mi_res_id" : "msi_res_id");

    if (appsvc && !oid) {
        oid = emu_req_arg(rq, "principal_id");
    }
    struct emu_principal *p = NULL, *only = NULL;
    size_t i, n = 0;

    if ((cid != NULL) + (oid != NULL) + (rid != NULL) > 1) {
        imds_error(rs, 400, "invalid_request",
                   "Only one of client_id, object_id, msi_res_id may be "
                   "specified.");
        return NULL;
    }
    if (cid) {
        p = emu_find_principal_client(cid);
    } else if (oid) {
        p = emu_find_principal_oid(oid);
    } else if (rid) {
        const char *slash = strrchr(rid, '/');

        if (slash && strstr(rid, "/userAssignedIdentities/")) {
            p = emu_find_principal_name(slash + 1, 0);
        }
    } else {
        for (i = 0; i < emu.nprincipals; i++) {
            if (!emu.principals[i]->is_sp) {
                only = emu.principals[i];
                n++;
            }
        }
        if (n == 1) {
            return only;
        }
        imds_error(rs, 400, "invalid_request",
                   n == 0 ? "Identity not found"
                          : "Multiple user assigned identities exist, please "
                            "specify the clientId / resourceId of the identity "
                            "in the token request");
        return NULL;
    }
    if (!p || p->is_sp) {
        imds_error(rs, 400, "invalid_request", "Identity not found");
        return NULL;
    }
    return p;
}

static void imds_handler(struct emu_req *rq, struct emu_resp *rs)
{
    const char *md = emu_req_header(rq, "Metadata");
    const char *res = emu_req_arg(rq, "resource");
    const char *api = emu_req_arg(rq, "api-version");
    struct emu_principal *p;
    struct emu_fault_hit fh;
    char *tok = NULL, num[32], cid_copy[EMU_GUID_LEN + 1] = "";
    long long exp = 0;
    cJSON *j;

    int appsvc = strcmp(rq->url, "/msi/token") == 0
                 || strcmp(rq->url, "/msi/token/") == 0;

    if (!appsvc && strcmp(rq->url, "/metadata/identity/oauth2/token") != 0
        && strcmp(rq->url, "/metadata/identity/oauth2/token/") != 0) {
        imds_error(rs, 404, "not_found", "Unknown endpoint.");
        return;
    }
    emu_stats_count(EMU_OPN_IMDS);
    if (emu_fault_match(EMU_OPN_IMDS, rq->url, &fh)) {
        rs->trickle_ms = fh.trickle_ms;
        if (fh.kind == EMU_FAULT_HANG) {
            rs->hang = 1;
            return;
        }
        if (fh.kind == EMU_FAULT_STATUS) {
            rs->retry_after = fh.retry_after;
            imds_error(rs, fh.status, "server_error", "Injected fault.");
            return;
        }
        if (fh.kind == EMU_FAULT_DELAY) {
            rs->delay_ms = fh.delay_ms;
        }
    }
    if (strcmp(rq->method, "GET") != 0) {
        imds_error(rs, 405, "invalid_request", "Method not allowed.");
        return;
    }
    if (appsvc) {
        const char *ih = emu_req_header(rq, "X-IDENTITY-HEADER");

        if (!ih || strlen(ih) != strlen(emu.identity_header)
            || CRYPTO_memcmp(ih, emu.identity_header, strlen(ih)) != 0) {
            imds_error(rs, 400, "invalid_request",
                       "The X-IDENTITY-HEADER header is missing or not "
                       "valid.");
            return;
        }
    } else if (!md || strcmp(md, "true") != 0) {
        imds_error(rs, 400, "invalid_request",
                   "Required metadata header not specified");
        return;
    }
    if (!api || !*api) {
        imds_error(rs, 400, "invalid_request",
                   "Required query variable 'api-version' is missing");
        return;
    }
    if (!res || !*res || strlen(res) > 250) {
        imds_error(rs, 400, "invalid_request",
                   "Required query variable 'resource' is missing");
        return;
    }
    pthread_rwlock_rdlock(&emu.lock);
    p = select_identity(rq, rs, appsvc);
    if (p) {
        tok = emu_token_issue(p, res, &exp);
        snprintf(cid_copy, sizeof(cid_copy), "%s", p->client_id);
    }
    pthread_rwlock_unlock(&emu.lock);
    if (!p) {
        return;
    }
    if (!tok) {
        imds_error(rs, 500, "server_error", "Token signing failed.");
        return;
    }
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "access_token", tok);
    if (!appsvc) {
        cJSON_AddStringToObject(j, "refresh_token", "");
        snprintf(num, sizeof(num), "%lld", emu.token_lifetime);
        cJSON_AddStringToObject(j, "expires_in", num);
    }
    snprintf(num, sizeof(num), "%lld", exp);
    cJSON_AddStringToObject(j, "expires_on", num);
    if (!appsvc) {
        snprintf(num, sizeof(num), "%lld", exp - emu.token_lifetime);
        cJSON_AddStringToObject(j, "not_before", num);
    }
    cJSON_AddStringToObject(j, "resource", res);
    cJSON_AddStringToObject(j, "token_type", "Bearer");
    if (appsvc) {
        cJSON_AddStringToObject(j, "client_id", cid_copy);
    }
    emu_resp_json(rs, 200, j);
    cJSON_Delete(j);
    free(tok);
    if (fh.kind == EMU_FAULT_CLOSE) {
        rs->close_mid = 1;
    } else if (fh.kind == EMU_FAULT_MALFORMED) {
        rs->len /= 2;
        rs->body[rs->len] = 0;
    }
}

emu_handler_fn emu_imds_handler(void);
emu_handler_fn emu_imds_handler(void)
{
    return imds_handler;
}
