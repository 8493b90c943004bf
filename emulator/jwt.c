/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compact JWS (RFC 7515/7519) with RS256 and PS256, the emulator's access
 * tokens (v1-style claims as Entra issues for https://vault.azure.net), and
 * the verified-token cache that keeps the vault GET path cheap: a token is
 * signature-checked once, then found by a 64-bit FNV-1a hash plus a full
 * string compare. Revocation is a per-principal generation number carried in
 * the token (claim "xms_emu_gen") and re-checked on every use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/err.h>

#include "emu.h"

static cJSON *decode_part(const char *p, size_t len)
{
    char *s = strndup(p, len);
    unsigned char *raw = NULL;
    size_t rl = 0;
    cJSON *j = NULL;

    if (s) {
        raw = emu_b64url_decode(s, &rl);
    }
    if (raw) {
        j = cJSON_ParseWithLength((const char *)raw, rl);
    }
    free(s);
    free(raw);
    return j;
}

cJSON *emu_jwt_peek_header(const char *jwt)
{
    const char *dot = strchr(jwt, '.');

    return dot ? decode_part(jwt, (size_t)(dot - jwt)) : NULL;
}

cJSON *emu_jwt_peek_claims(const char *jwt)
{
    const char *d1 = strchr(jwt, '.'), *d2;

    if (!d1) {
        return NULL;
    }
    d2 = strchr(d1 + 1, '.');
    return d2 ? decode_part(d1 + 1, (size_t)(d2 - d1 - 1)) : NULL;
}

char *emu_jwt_sign(EVP_PKEY *key, const char *kid, cJSON *claims)
{
    cJSON *hdr = cJSON_CreateObject();
    char *hs = NULL, *cs = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL;
    char *input = NULL, *out = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    cJSON_AddStringToObject(hdr, "typ", "JWT");
    cJSON_AddStringToObject(hdr, "alg", "RS256");
    cJSON_AddStringToObject(hdr, "x5t", kid);
    cJSON_AddStringToObject(hdr, "kid", kid);
    hs = cJSON_PrintUnformatted(hdr);
    cs = cJSON_PrintUnformatted(claims);
    if (!md || !hs || !cs) {
        goto out;
    }
    h64 = emu_b64url_encode((unsigned char *)hs, strlen(hs));
    c64 = emu_b64url_encode((unsigned char *)cs, strlen(cs));
    if (!h64 || !c64) {
        goto out;
    }
    input = malloc(strlen(h64) + strlen(c64) + 2);
    if (!input) {
        goto out;
    }
    sprintf(input, "%s.%s", h64, c64);
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0
        || EVP_DigestSign(md, NULL, &siglen, (unsigned char *)input,
                          strlen(input))
               <= 0) {
        goto out;
    }
    sig = malloc(siglen);
    if (!sig
        || EVP_DigestSign(md, sig, &siglen, (unsigned char *)input,
                          strlen(input))
               <= 0) {
        goto out;
    }
    s64 = emu_b64url_encode(sig, siglen);
    if (!s64) {
        goto out;
    }
    out = malloc(strlen(input) + strlen(s64) + 2);
    if (out) {
        sprintf(out, "%s.%s", input, s64);
    }
out:
    cJSON_Delete(hdr);
    free(hs);
    free(cs);
    free(h64);
    free(c64);
    free(s64);
    free(input);
    free(sig);
    EVP_MD_CTX_free(md);
    return out;
}

int emu_jwt_verify(const char *jwt, EVP_PKEY *key, cJSON **claims)
{
    const char *d1 = strchr(jwt, '.'), *d2 = NULL;
    cJSON *hdr = NULL, *alg;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    int pss = 0, rc = -1;

    *claims = NULL;
    if (!d1 || !(d2 = strchr(d1 + 1, '.')) || strchr(d2 + 1, '.')) {
        goto out;
    }
    hdr = decode_part(jwt, (size_t)(d1 - jwt));
    alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    if (!cJSON_IsString(alg)) {
        goto out;
    }
    if (strcmp(alg->valuestring, "PS256") == 0) {
        pss = 1;
    } else if (strcmp(alg->valuestring, "RS256") != 0) {
        goto out;
    }
    sig = emu_b64url_decode(d2 + 1, &siglen);
    md = EVP_MD_CTX_new();
    if (!sig || !md
        || EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) <= 0) {
        goto out;
    }
    if (pss
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
                   <= 0)) {
        goto out;
    }
    if (EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt,
                         (size_t)(d2 - jwt))
        != 1) {
        goto out;
    }
    *claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    rc = *claims ? 0 : -1;
out:
    ERR_clear_error();
    cJSON_Delete(hdr);
    free(sig);
    EVP_MD_CTX_free(md);
    return rc;
}

/* ---- issued-token record (token issued, for leak tests) ---- */

/* The last RING_MAX access tokens handed out and client assertions
 * received, so a test can search a client's memory for the exact secrets
 * it handled (there is no other way to learn them: the client must never
 * reveal them). Admin plane only. */
#define RING_MAX 16
struct ring {
    char *v[RING_MAX];
    unsigned next;
};
static struct ring issued, assertions;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;

static void ring_put(struct ring *r, const char *s)
{
    char *dup = s ? strdup(s) : NULL;

    if (!dup) {
        return;
    }
    pthread_mutex_lock(&ring_lock);
    free(r->v[r->next % RING_MAX]);
    r->v[r->next % RING_MAX] = dup;
    r->next++;
    pthread_mutex_unlock(&ring_lock);
}

static void ring_json(const struct ring *r, cJSON *arr)
{
    unsigned n = r->next < RING_MAX ? r->next : RING_MAX;

    for (unsigned i = r->next - n; i != r->next; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(r->v[i % RING_MAX]));
    }
}

void emu_assertion_seen(const char *assertion)
{
    ring_put(&assertions, assertion);
}

cJSON *emu_token_issued_json(void)
{
    cJSON *j = cJSON_CreateObject();

    pthread_mutex_lock(&ring_lock);
    ring_json(&issued, cJSON_AddArrayToObject(j, "tokens"));
    ring_json(&assertions, cJSON_AddArrayToObject(j, "assertions"));
    pthread_mutex_unlock(&ring_lock);
    return j;
}

char *emu_token_issue(const struct emu_principal *p, const char *aud,
                      long long *exp_out)
{
    cJSON *c = cJSON_CreateObject();
    char iss[128], uti[33];
    long long now = emu_now();
    char *tok;

    snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", emu.tenant_id);
    emu_random_hex(uti, 16);
    cJSON_AddStringToObject(c, "aud", aud);
    cJSON_AddStringToObject(c, "iss", iss);
    cJSON_AddNumberToObject(c, "iat", (double)now);
    cJSON_AddNumberToObject(c, "nbf", (double)now);
    cJSON_AddNumberToObject(c, "exp", (double)(now + emu.token_lifetime));
    cJSON_AddStringToObject(c, "appid", p->client_id);
    cJSON_AddStringToObject(c, "appidacr", p->is_sp ? "1" : "2");
    cJSON_AddStringToObject(c, "idp", iss);
    cJSON_AddStringToObject(c, "idtyp", "app");
    cJSON_AddStringToObject(c, "oid", p->object_id);
    cJSON_AddStringToObject(c, "sub", p->object_id);
    cJSON_AddStringToObject(c, "tid", emu.tenant_id);
    cJSON_AddStringToObject(c, "uti", uti);
    cJSON_AddStringToObject(c, "ver", "1.0");
    cJSON_AddNumberToObject(c, "xms_emu_gen", (double)p->token_gen);
    tok = emu_jwt_sign(emu.signing_key, emu.signing_kid, c);
    cJSON_Delete(c);
    ring_put(&issued, tok);
    if (exp_out) {
        *exp_out = now + emu.token_lifetime;
    }
    return tok;
}

/* ---- verified-token cache ---- */

#define CACHE_SLOTS 4096

struct cache_ent {
    uint64_t hash;
    char *tok;
    char oid[EMU_GUID_LEN + 1];
    char appid[EMU_GUID_LEN + 1];
    long long nbf, exp, gen;
    int mhsm; /* aud https://managedhsm.azure.net (else vault.azure.net) */
};

static struct cache_ent cache[CACHE_SLOTS];
static pthread_rwlock_t cache_lock = PTHREAD_RWLOCK_INITIALIZER;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void emu_token_cache_clear(void)
{
    size_t i;

    pthread_rwlock_wrlock(&cache_lock);
    for (i = 0; i < CACHE_SLOTS; i++) {
        free(cache[i].tok);
        memset(&cache[i], 0, sizeof(cache[i]));
    }
    pthread_rwlock_unlock(&cache_lock);
}

/* Full validation of a token not in the cache; fills ENT on success. */
static int validate_new(const char *tok, int mhsm, struct cache_ent *ent,
                        char *msg, size_t msglen)
{
    cJSON *claims = NULL;
    const char *aud, *iss, *oid, *appid;
    char want_iss[128];
    int rc = -1;

    if (emu_jwt_verify(tok, emu.signing_key, &claims) != 0) {
        snprintf(msg, msglen, "AKV10031: Invalid token signature.");
        goto out;
    }
    aud = emu_json_str(claims, "aud");
    ent->mhsm = aud && strcmp(aud, "https://managedhsm.azure.net") == 0;
    if (!aud || (!ent->mhsm && strcmp(aud, "https://vault.azure.net") != 0)) {
        snprintf(msg, msglen,
                 "AKV10022: Invalid audience. Expected %s, found: %.200s.",
                 mhsm ? "https://managedhsm.azure.net"
                      : "https://vault.azure.net",
                 aud ? aud : "");
        goto out;
    }
    snprintf(want_iss, sizeof(want_iss), "https://sts.windows.net/%s/",
             emu.tenant_id);
    iss = emu_json_str(claims, "iss");
    if (!iss || strcmp(iss, want_iss) != 0) {
        snprintf(msg, msglen,
                 "AKV10032: Invalid issuer. Expected one of %s, found: "
                 "%.200s.",
                 want_iss, iss ? iss : "");
        goto out;
    }
    oid = emu_json_str(claims, "oid");
    appid = emu_json_str(claims, "appid");
    if (!oid || !appid || strlen(oid) > EMU_GUID_LEN
        || strlen(appid) > EMU_GUID_LEN) {
        snprintf(msg, msglen,
                 "AKV10000: Request is missing a Bearer or PoP "
                 "token.");
        goto out;
    }
    snprintf(ent->oid, sizeof(ent->oid), "%s", oid);
    snprintf(ent->appid, sizeof(ent->appid), "%s", appid);
    ent->nbf = emu_json_num(claims, "nbf", -1);
    ent->exp = emu_json_num(claims, "exp", -1);
    ent->gen = emu_json_num(claims, "xms_emu_gen", -1);
    rc = 0;
out:
    cJSON_Delete(claims);
    return rc;
}

int emu_token_check(const char *authz, int mhsm, struct emu_caller *who,
                    char *msg, size_t msglen)
{
    const char *tok;
    struct cache_ent ent;
    struct emu_principal *p;
    uint64_t h;
    size_t slot;
    int found = 0;
    long long now = emu_now();

    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0) {
        snprintf(msg, msglen,
                 "AKV10000: Request is missing a Bearer or PoP token.");
        return -1;
    }
    tok = authz + 7;
    while (*tok == ' ') {
        tok++;
    }
    if (!*tok || strlen(tok) > 16384) {
        snprintf(msg, msglen,
                 "AKV10000: Request is missing a Bearer or PoP token.");
        return -1;
    }
    h = fnv1a(tok);
    slot = (size_t)(h % CACHE_SLOTS);
    memset(&ent, 0, sizeof(ent));
    pthread_rwlock_rdlock(&cache_lock);
    if (cache[slot].tok && cache[slot].hash == h
        && strcmp(cache[slot].tok, tok) == 0) {
        ent = cache[slot];
        ent.tok = NULL;
        found = 1;
    }
    pthread_rwlock_unlock(&cache_lock);
    if (!found) {
        if (validate_new(tok, mhsm, &ent, msg, msglen) != 0) {
            return -1;
        }
        pthread_rwlock_wrlock(&cache_lock);
        free(cache[slot].tok);
        cache[slot] = ent;
        cache[slot].hash = h;
        cache[slot].tok = strdup(tok);
        pthread_rwlock_unlock(&cache_lock);
    }
    /* A token is for vaults or for Managed HSMs, never both (the
     * audience is the resource, keyvault-protocol.md 1.1). */
    if (ent.mhsm != (mhsm != 0)) {
        snprintf(
            msg, msglen, "AKV10022: Invalid audience. Expected %s, found: %s.",
            mhsm ? "https://managedhsm.azure.net" : "https://vault.azure.net",
            ent.mhsm ? "https://managedhsm.azure.net"
                     : "https://vault.azure.net");
        return -1;
    }
    if (ent.exp <= now) {
        snprintf(msg, msglen, "AKV10013: Token is expired.");
        return -1;
    }
    if (ent.nbf > now + 300) {
        snprintf(msg, msglen, "AKV10013: Token is not yet valid.");
        return -1;
    }
    /* Caller holds emu.lock (shared), so the principal table is stable. */
    p = emu_find_principal_oid(ent.oid);
    if (!p || p->token_gen != ent.gen) {
        snprintf(msg, msglen, "AKV10014: Token has been revoked.");
        return -1;
    }
    memcpy(who->oid, ent.oid, sizeof(who->oid));
    memcpy(who->appid, ent.appid, sizeof(who->appid));
    return 0;
}
