# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Helpers for integration tests: start a private akv-emulator on free
# loopback ports, create an identity/vault/key, write a module config, stop it.
# Source this file; it expects these variables (set by ctest or by hand):
#   AKV_EMULATOR  path to akv-emulator
#   AKV_MODULE    path to akv-pkcs11.so
# Every function prints what it does to stderr and fails loudly.

: "${AKV_EMULATOR:?set AKV_EMULATOR to the akv-emulator binary}"

EMU_DIR=""
EMU_PID=""

emu_log() { printf '[emu] %s\n' "$*" >&2; }

# emu_cli ARGS... - a control command against the running emulator.
emu_cli() { "$AKV_EMULATOR" --dir "$EMU_DIR" "$@"; }

# emu_start [EXTRA SERVE ARGS...] - start on free ports in a new temp dir
# (or, with EMU_KEEP_PORTS=1 on an existing one, on the ports it had).
# Sets EMU_DIR EMU_PID EMU_CA EMU_AUTHORITY EMU_IMDS EMU_TENANT.
emu_start() {
    local ports=(--port 0 --imds-port 0)
    [ "${EMU_KEEP_PORTS:-0}" != 1 ] || ports=()
    EMU_DIR=${EMU_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/akv-emu.XXXXXX")}
    "$AKV_EMULATOR" serve --dir "$EMU_DIR" "${ports[@]}" "$@" \
        >"$EMU_DIR/serve.out" 2>"$EMU_DIR/serve.err" &
    EMU_PID=$!
    local i
    for i in $(seq 1 150); do
        if [ -s "$EMU_DIR/serve.out" ] && head -n1 "$EMU_DIR/serve.out" | jq -e . >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$EMU_PID" 2>/dev/null; then
            emu_log "emulator exited early:"; cat "$EMU_DIR/serve.err" >&2
            return 1
        fi
        sleep 0.1
    done
    local line
    line=$(head -n1 "$EMU_DIR/serve.out")
    [ -n "$line" ] || { emu_log "emulator did not become ready"; cat "$EMU_DIR/serve.err" >&2; return 1; }
    EMU_CA=$(jq -r .ca_file <<<"$line")
    EMU_AUTHORITY=$(jq -r .authority_host <<<"$line")
    EMU_IMDS=$(jq -r .imds_endpoint <<<"$line")
    EMU_TENANT=$(jq -r .tenant_id <<<"$line")
    export EMU_DIR EMU_PID EMU_CA EMU_AUTHORITY EMU_IMDS EMU_TENANT
    emu_log "started pid $EMU_PID dir $EMU_DIR authority $EMU_AUTHORITY"
}

# emu_restart - stop and start again on the same DIR: state, vault URLs and
# the authority/IMDS endpoints must survive.
emu_restart() {
    emu_stop_keep
    EMU_KEEP_PORTS=1 emu_start
}

emu_stop_keep() {
    if [ -n "$EMU_PID" ] && kill -0 "$EMU_PID" 2>/dev/null; then
        kill -TERM "$EMU_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$EMU_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$EMU_PID" 2>/dev/null || true
        wait "$EMU_PID" 2>/dev/null || true
    fi
    EMU_PID=""
}

# emu_stop - stop and remove the temp dir (unless AKV_KEEP_TMP=1).
emu_stop() {
    emu_stop_keep
    if [ -n "$EMU_DIR" ] && [ "${AKV_KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$EMU_DIR"
    fi
}

# emu_setup_basic [KEYNAME] - service principal with a client secret, a vault,
# a policy get/wrapKey/unwrapKey, an RSA-2048 key, and a module config.
# Sets SP_APP_ID SP_OBJ_ID SP_SECRET_FILE VAULT_NAME VAULT_URL KEY_NAME KEY_KID
# KEY_VERSION AKV_PKCS11_CONFIG TOKEN_LABEL STORE_DIR.
emu_setup_basic() {
    KEY_NAME=${1:-cmk}
    VAULT_NAME=${VAULT_NAME:-testvault}
    TOKEN_LABEL=${TOKEN_LABEL:-akv-test}
    local sp
    sp=$(emu_cli ad sp create-for-rbac --name "akv-test-app")
    SP_APP_ID=$(jq -r .appId <<<"$sp")
    SP_OBJ_ID=$(jq -r .objectId <<<"$sp")
    SP_SECRET_FILE="$EMU_DIR/client.secret"
    (umask 077; jq -j .password <<<"$sp" >"$SP_SECRET_FILE")
    VAULT_URL=$(emu_cli keyvault create --name "$VAULT_NAME" | jq -r .properties.vaultUri)
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions get wrapKey unwrapKey >/dev/null
    local key
    key=$(emu_cli keyvault key create --vault-name "$VAULT_NAME" --name "$KEY_NAME" --kty RSA --size 2048)
    KEY_KID=$(jq -r .key.kid <<<"$key")
    KEY_VERSION=${KEY_KID##*/}
    STORE_DIR="$EMU_DIR/store"
    AKV_PKCS11_CONFIG="$EMU_DIR/akv-pkcs11.json"
    emu_write_config "$AKV_PKCS11_CONFIG"
    export SP_APP_ID SP_OBJ_ID SP_SECRET_FILE VAULT_NAME VAULT_URL KEY_NAME \
        KEY_KID KEY_VERSION AKV_PKCS11_CONFIG TOKEN_LABEL STORE_DIR
    emu_log "vault $VAULT_URL key $KEY_KID"
}

# emu_write_config FILE [EXTRA_TOKEN_JSON] - the module config for the
# basic setup; EXTRA_TOKEN_JSON (an object) is merged into the token entry.
emu_write_config() {
    local file=$1 extra=${2:-"{}"}
    jq -n --arg lbl "$TOKEN_LABEL" --arg url "$VAULT_URL" --arg key "$KEY_NAME" \
        --arg cid "$SP_APP_ID" --arg tid "$EMU_TENANT" --arg sf "$SP_SECRET_FILE" \
        --arg auth "$EMU_AUTHORITY" --arg ca "$EMU_CA" --arg store "$STORE_DIR" \
        --arg level "${AKV_TEST_LOG_LEVEL:-trace}" --arg emudir "$EMU_DIR" \
        --arg logfile "${AKV_TEST_LOG_FILE:-${T_TMP:+$T_TMP/module.log}}" \
        --argjson extra "$extra" '
        { log: { level: $level, target: (if $logfile == "" then "stderr" else $logfile end) },
          tokens: [ ({ label: $lbl, vault_url: $url, keys: [$key],
                       credential: { type: "client_secret", client_id: $cid,
                                     tenant_id: $tid, client_secret_file: $sf,
                                     authority_host: $auth },
                       ca_file: $ca, store_dir: $store,
                       cache_dir: ($emudir + "/cache"),
                       http: { verify_challenge_resource: false,
                               timeout_ms: 5000, budget_ms: 15000 } } * $extra) ] }' >"$file"
    chmod 600 "$file"
}
