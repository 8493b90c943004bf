/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: common/config.c on arbitrary bytes. A rejected config must
 * leave a message naming the file; an accepted one must satisfy the
 * schema's invariants. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct akv_config *cfg = NULL;
    char err[512];

    akv_log_configure(AKV_LOG_LEVEL_NONE, NULL);
    if (akv_config_parse((const char *)data, size, "fuzz.json", &cfg, err,
                         sizeof(err))
        != 0) {
        if (cfg != NULL || strncmp(err, "fuzz.json: ", 11) != 0) {
            abort();
        }
        return 0;
    }
    if (cfg == NULL || cfg->n_tokens == 0) {
        abort();
    }
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        const struct akv_token_config *t = &cfg->tokens[i];
        if (t->label == NULL || strlen(t->label) > 32 || t->vault_url == NULL
            || t->n_keys == 0 || t->api_version == NULL || t->scope == NULL
            || t->http.budget_ms < t->http.timeout_ms) {
            abort();
        }
    }
    akv_config_free(cfg);
    return 0;
}
