/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the emulator's state loader (emulator/store.c) on the same
 * bytes read three ways: as state.json (emu_store_parse_state, principals,
 * certificates, vaults, policies; key folders are not read), as a key file
 * keys/VAULT/KEY.json (emu_key_from_json) and as the signing key / a
 * principal's certificate PEM. Invariants (abort on breach): a loaded key
 * serialises and loads again to the same JSON; names and ids stay
 * NUL-terminated inside their fields; the model is freed after each input
 * (LeakSanitizer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "emu_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void as_key(const char *text)
{
    cJSON *root = cJSON_Parse(text);
    struct emu_key *k = emu_key_from_json(root);

    if (k) {
        cJSON *j1 = emu_key_to_json(k);
        struct emu_key *k2 = j1 ? emu_key_from_json(j1) : NULL;
        cJSON *j2 = k2 ? emu_key_to_json(k2) : NULL;
        char *s1 = j1 ? cJSON_PrintUnformatted(j1) : NULL;
        char *s2 = j2 ? cJSON_PrintUnformatted(j2) : NULL;

        if (!s1 || !s2 || strcmp(s1, s2) != 0 || k->nvers == 0
            || strnlen(k->name, sizeof(k->name)) == sizeof(k->name)) {
            abort();
        }
        free(s1);
        free(s2);
        cJSON_Delete(j1);
        cJSON_Delete(j2);
        emu_key_free(k2);
        emu_key_free(k);
    }
    cJSON_Delete(root);
}

static void as_state(const char *text)
{
    (void)emu_store_parse_state(text, "fuzz/state.json");
    if (strnlen(emu.tenant_id, sizeof(emu.tenant_id))
        == sizeof(emu.tenant_id)) {
        abort();
    }
    for (size_t i = 0; i < emu.nvaults; i++) {
        struct emu_vault *v = emu.vaults[i];

        (void)emu_find_vault(v->name);
        for (size_t k = 0; k < v->nkeys; k++) {
            if (!emu_find_version(v->keys[k], NULL)) {
                abort(); /* a loaded key has a current version */
            }
        }
    }
    for (size_t i = 0; i < emu.nprincipals; i++) {
        (void)emu_find_principal_client(emu.principals[i]->client_id);
    }
    emu_fuzz_free_model();
}

static void as_pem(const char *text)
{
    EVP_PKEY *k = emu_pkey_from_pem(text);
    char x5t[64], x5t256[64];
    EVP_PKEY *pub = NULL;

    EVP_PKEY_free(k);
    if (emu_cert_thumbprints(text, x5t, x5t256, &pub) == 0) {
        if (!pub || strnlen(x5t, sizeof(x5t)) == sizeof(x5t)) {
            abort();
        }
    }
    EVP_PKEY_free(pub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char *s;

    if (!ready) {
        /* load the fixture once, then start every input from nothing */
        emu_fuzz_init();
        emu_fuzz_free_model();
        /* vault key folders are not read here (a missing folder): the key
         * file parser gets every input directly, and a state naming the
         * fixture vault would otherwise parse five key files per run */
        snprintf(emu.dir, sizeof(emu.dir), "%s/no-such-dir",
                 AKV_FUZZ_EMU_FIXTURE);
        ready = 1;
    }
    s = malloc(size + 1);
    if (!s) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = 0;
    as_state(s);
    as_key(s);
    as_pem(s);
    free(s);
    return 0;
}
