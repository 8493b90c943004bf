/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-process harness for the emulator fuzz targets: the emulator's own
 * code, minus the network and the disk. Linked with -Wl,--wrap (see
 * CMakeLists.txt) so that:
 *   - emu_now() is a fixed clock (EMU_FUZZ_NOW), so the seed tokens and
 *     assertions stay valid and every run is reproducible;
 *   - emu_write_file_atomic, emu_store_save_key/_remove_key/_save_state
 *     never write (they mark the model dirty; save_key still serialises);
 *   - emu_http_start/port/stop hand back the handler instead of listening;
 *   - emu_req_header/emu_req_arg read a struct emu_fuzz_conn instead of a
 *     libmicrohttpd connection.
 * The model is loaded once from tests/fuzz/emu_fixture (a real
 * `akv-emulator serve --dir` folder after some CLI commands).
 */
#ifndef AKV_TESTS_FUZZ_EMU_HARNESS_H
#define AKV_TESTS_FUZZ_EMU_HARNESS_H

#include <stddef.h>

#include "emulator/emu.h"
#include "emulator/http.h"

#define EMU_FUZZ_NOW           1796520000LL /* 2026-12-06T01:20:00Z */
#define EMU_FUZZ_TENANT        "20bf2de4-2e3f-4bac-b1f0-e157e850649e"
#define EMU_FUZZ_VAULT         "fuzzvault"
#define EMU_FUZZ_SP_SECRET_OID "a9c4eacb-1d25-4a89-9e40-a53ccc484bca"

/* Request headers and query arguments of one in-process request. */
struct emu_fuzz_conn {
    const char *hdr_name[8];
    const char *hdr_value[8];
    size_t nhdr;
    char *query; /* owned, split in place by emu_fuzz_conn_query */
    const char *arg_name[16];
    const char *arg_value[16];
    size_t narg;
};

/* emu_fuzz_init - loads the fixture once (abort on failure). */
void emu_fuzz_init(void);
/* emu_fuzz_vault_handler - the Key Vault handler of vault NAME's listener
 * (from emu_vault_start through the wrapped emu_http_start). */
emu_handler_fn emu_fuzz_vault_handler(struct emu_vault *v);
/* emu_fuzz_conn_query - takes QUERY (malloc'ed "a=b&c=d", undecoded) into
 * C's argument table. */
void emu_fuzz_conn_query(struct emu_fuzz_conn *c, char *query);
void emu_fuzz_conn_free(struct emu_fuzz_conn *c);
/* emu_fuzz_dirty - set when a handler changed the model since the last
 * emu_fuzz_clear_dirty. */
int emu_fuzz_dirty(void);
void emu_fuzz_clear_dirty(void);
/* emu_fuzz_free_model - frees every principal and vault (with keys). */
void emu_fuzz_free_model(void);

#endif
