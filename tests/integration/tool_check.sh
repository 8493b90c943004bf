#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# akv-pkcs11-tool check: one case per cause. Each case starts from the
# working basic setup (one token object in the store), breaks exactly one
# link, and asserts the FAIL line's words and fix, the JSON document and
# the exit status (= number of failures).
#   tool_check.sh CASE   CASE: ok config-perms wrong-secret unreachable
#                        ca-missing no-get no-wrap no-unwrap disabled expired
#                        key-ops tampered cert-ok no-cert-get ec-sign
#                        ec-nosign empty-store
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
: "${AKV_TOOL:?}"
CASE=${1:?case}
t_begin
CFG=$AKV_PKCS11_CONFIG
expect_ok "keygen token object" p11 --keygen --key-type AES:32 --label dek --id 01

# edit_config JQ_FILTER - rewrite the config (mode kept 0600).
edit_config() {
    jq "$1" "$CFG" >"$T_TMP/cfg.new" && cat "$T_TMP/cfg.new" >"$CFG"
}
policy() {
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions "$@" >/dev/null
}
attrs() {
    emu_cli keyvault key set-attributes --vault-name "$VAULT_NAME" \
        --name "$KEY_NAME" "$@" >/dev/null
}

want_rc=1
case $CASE in
ok) want_rc=0 ;;
config-perms) chmod 664 "$CFG" ;;
wrong-secret) (umask 077; printf 'not-the-secret' >"$SP_SECRET_FILE") ;;
unreachable)
    # a port nobody listens on: 1 is privileged and unused here
    edit_config '.tokens[0].vault_url |= sub(":[0-9]+"; ":1")' ;;
ca-missing)
    # the emulator's CA is in ca_file only: without it neither the vault
    # nor the authority (same CA) is trusted
    edit_config 'del(.tokens[0].ca_file)'; want_rc=2 ;;
no-get) policy wrapKey unwrapKey ;;
no-wrap) policy get unwrapKey ;;
no-unwrap) policy get wrapKey ;;
disabled) attrs --enabled false; want_rc=2 ;;     # key + wrapKey
expired) attrs --expires "$(($(date +%s) - 60))"; want_rc=2 ;;
key-ops) attrs --ops wrapKey encrypt; want_rc=2 ;; # key + unwrapKey
cert-ok|no-cert-get)
    # tokens[].certificate: Get Certificate needs certificates/get
    emu_cli keyvault certificate create --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
    edit_config ".tokens[0].certificate = \"$KEY_NAME\""
    if [ "$CASE" = cert-ok ]; then
        want_rc=0
        emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
            --key-permissions get wrapKey unwrapKey --certificate-permissions get >/dev/null
    fi ;;
ec-sign|ec-nosign)
    # an EC key beside the wrap key: judged as a signing key (tokens[].sign),
    # not as a wrap key that failed
    emu_cli keyvault key create --vault-name "$VAULT_NAME" --name ecsig \
        --kty EC --curve P-256 >/dev/null
    policy get wrapKey unwrapKey sign
    edit_config '.tokens[0].keys += ["ecsig"]'
    if [ "$CASE" = ec-sign ]; then
        want_rc=0
        edit_config '.tokens[0].sign = true'
    fi ;;
empty-store)
    # a store_dir nothing was stored in yet is not a "legacy store"
    want_rc=0
    install -d -m 700 "$T_TMP/empty-store"
    edit_config ".tokens[0].store_dir = \"$T_TMP/empty-store\"" ;;
tampered)
    # a record copied under another id fails authentication (moved)
    src=$(ls "$STORE_DIR"/*.obj | head -n 1)
    cp -p "$src" "$STORE_DIR/0123456789abcdef0123456789abcdef.obj" ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac

"$AKV_TOOL" check --config "$CFG" >"$T_TMP/c.txt" 2>"$T_TMP/c.err" && rc=0 || rc=$?
sed 's/^/    /' "$T_TMP/c.txt"
expect_eq "exit status = number of failures" "$rc" "$want_rc"
expect_eq "FAIL lines = exit status" "$(grep -c '^FAIL' "$T_TMP/c.txt" || true)" "$want_rc"
expect_grep "summary line" "^check: $want_rc failure" "$T_TMP/c.txt"
"$AKV_TOOL" check --config "$CFG" --json >"$T_TMP/c.json" 2>/dev/null && jrc=0 || jrc=$?
expect_eq "--json exit status" "$jrc" "$want_rc"
expect_eq "--json failures" "$(jq -r .failures "$T_TMP/c.json")" "$want_rc"
expect_eq "--json FAIL entries" "$(jq '[.checks[] | select(.state == "FAIL")] | length' "$T_TMP/c.json")" "$want_rc"

L="akv-test"
K="$L/$KEY_NAME"
case $CASE in
ok)
    for c in "config" "$L vault" "$L credential" "$K get" "$K key" "$K wrapKey" "$K unwrapKey" "$L store" "$K rotation"; do
        expect_grep "OK $c" "^OK +$c: " "$T_TMP/c.txt"
    done
    expect_grep "credential names the identity's object id" "object id $SP_OBJ_ID\): token obtained" "$T_TMP/c.txt"
    expect_grep "rotation names the current version" "current version $KEY_VERSION" "$T_TMP/c.txt"
    "$AKV_TOOL" check --config "$CFG" --token "$TOKEN_LABEL" >/dev/null 2>&1 && rc=0 || rc=$?
    expect_eq "--token LABEL: 0 failures" "$rc" 0
    "$AKV_TOOL" check --config "$CFG" --token nosuch >"$T_TMP/n.txt" 2>&1 && rc=0 || rc=$?
    expect_eq "--token of no token: 1 failure" "$rc" 1
    expect_grep "--token of no token: said" "^FAIL +token: no token labelled \"nosuch\"" "$T_TMP/n.txt"
    expect_grep "store: the object authenticated" "1 object, all authenticated, 0 refused" "$T_TMP/c.txt"
    expect_eq "--json ok" "$(jq -r .ok "$T_TMP/c.json")" true
    # rotate: the old version is known, the object under it is counted
    emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
    expect_ok "module sees the new version" p11 -O
    "$AKV_TOOL" check --config "$CFG" >"$T_TMP/r.txt" 2>&1 && rc=0 || rc=$?
    expect_eq "after rotation: still 0 failures" "$rc" 0
    expect_grep "after rotation: the old version is known" "1 older version known to the token \($KEY_VERSION\); 1 stored object under older versions \(run rewrap\)" "$T_TMP/r.txt"
    # the old version disabled: its object can no longer be opened
    emu_cli keyvault key set-attributes --vault-name "$VAULT_NAME" --name "$KEY_NAME" --version "$KEY_VERSION" --enabled false >/dev/null
    "$AKV_TOOL" check --config "$CFG" >"$T_TMP/d.txt" 2>&1 && rc=0 || rc=$?
    # the store secret is under the old version
    expect_eq "old version disabled: 1 failure" "$rc" 1
    expect_grep "old version disabled: the store secret" "^FAIL +$L store: $STORE_DIR: the store secret \(.storekey, wrapped by ${VAULT_URL%/}/keys/$KEY_NAME/$KEY_VERSION\) cannot be unwrapped" "$T_TMP/d.txt"
    ;;
cert-ok)
    expect_grep "OK certificate names the key version" \
        "^OK +$L certificate: $KEY_NAME: [0-9]+ bytes, certifies key $KEY_NAME version $KEY_VERSION" "$T_TMP/c.txt" ;;
no-cert-get)
    expect_grep "certificate FAIL names the permission" \
        "^FAIL +$L certificate: the identity .*object id $SP_OBJ_ID\)+ lacks certificates/get on ${VAULT_URL%/}" "$T_TMP/c.txt"
    expect_grep "certificate fix" \
        "fix: az keyvault set-policy --name [A-Za-z0-9-]+ --object-id $SP_OBJ_ID --certificate-permissions get" "$T_TMP/c.txt"
    expect_grep "the keys are still OK" "^OK +$K unwrapKey: " "$T_TMP/c.txt" ;;
ec-sign)
    expect_grep "OK: the EC key signs" "^OK +$L/ecsig key: EC P-256 version [0-9a-f]+: enabled, key_ops include sign" "$T_TMP/c.txt"
    expect_grep "its wrapKey is skipped, not failed" "^SKIP +$L/ecsig wrapKey: key type \(signs only\)" "$T_TMP/c.txt" ;;
ec-nosign)
    expect_grep "FAIL says signing is off" "^FAIL +$L/ecsig key: key ecsig is EC: EC keys only sign, and signing is off" "$T_TMP/c.txt"
    expect_grep "the fix names the setting" "fix: set \"sign\": true" "$T_TMP/c.txt" ;;
empty-store)
    expect_grep "empty store said so" "^OK +$L store: $T_TMP/empty-store: empty store \(.storekey is made with the first token object\)" "$T_TMP/c.txt" ;;
config-perms)
    expect_grep "config FAIL names the mode and the fix" "^FAIL +config: $CFG: .*(group|writable).*chmod" "$T_TMP/c.txt" ;;
wrong-secret)
    expect_grep "credential FAIL" "^FAIL +$L credential: client_secret, client_id $SP_APP_ID.*: no token: " "$T_TMP/c.txt"
    expect_grep "credential fix" "az ad app credential reset" "$T_TMP/c.txt"
    expect_grep "vault still OK" "^OK +$L vault: " "$T_TMP/c.txt"
    expect_grep "key checks skipped" "^SKIP +$K get: needs a token" "$T_TMP/c.txt" ;;
unreachable)
    expect_grep "vault FAIL" "^FAIL +$L vault: nothing accepts connections at https://127.0.0.1:1 .*; fix: check vault_url's host and port" "$T_TMP/c.txt"
    expect_grep "credential still OK" "^OK +$L credential: " "$T_TMP/c.txt"
    expect_grep "key checks skipped" "^SKIP +$K get: needs the vault" "$T_TMP/c.txt" ;;
ca-missing)
    expect_grep "vault FAIL: CA" "^FAIL +$L vault: TLS: the certificate of https://127.0.0.1:[0-9]+ is not trusted by the system store \(CA missing\); fix: set ca_file" "$T_TMP/c.txt" ;;
no-get)
    expect_grep "get FAIL" "^FAIL +$K get: the identity .*object id $SP_OBJ_ID\) lacks get on ${VAULT_URL%/}; fix: az keyvault set-policy" "$T_TMP/c.txt"
    expect_grep "get fix" "fix: az keyvault set-policy --name [A-Za-z0-9-]+ --object-id $SP_OBJ_ID --key-permissions get wrapKey unwrapKey" "$T_TMP/c.txt" ;;
no-wrap)
    expect_grep "wrapKey FAIL" "^FAIL +$K wrapKey: the identity .* lacks wrapKey on .*; fix: az keyvault set-policy .*--object-id $SP_OBJ_ID" "$T_TMP/c.txt"
    expect_grep "unwrapKey skipped" "^SKIP +$K unwrapKey" "$T_TMP/c.txt" ;;
no-unwrap)
    expect_grep "wrapKey OK" "^OK +$K wrapKey: " "$T_TMP/c.txt"
    expect_grep "unwrapKey FAIL" "^FAIL +$K unwrapKey: the identity .*object id $SP_OBJ_ID\) lacks unwrapKey on .*; fix: az keyvault set-policy .*--key-permissions get wrapKey unwrapKey" "$T_TMP/c.txt"
    expect_grep "store skipped (its secret needs unwrapKey)" "^SKIP +$L store" "$T_TMP/c.txt" ;;
disabled)
    expect_grep "key FAIL: disabled" "^FAIL +$K key: key $KEY_NAME version $KEY_VERSION is disabled; fix: az keyvault key set-attributes .*--enabled true" "$T_TMP/c.txt"
    expect_grep "wrapKey FAIL: disabled" "^FAIL +$K wrapKey: wrapKey refused: key $KEY_NAME version $KEY_VERSION is disabled" "$T_TMP/c.txt" ;;
expired)
    expect_grep "key FAIL: expired" "^FAIL +$K key: key $KEY_NAME version $KEY_VERSION expired at 20[0-9-]+T[0-9:]+Z; fix: .*--expires" "$T_TMP/c.txt" ;;
key-ops)
    expect_grep "key FAIL: key_ops" "^FAIL +$K key: the key_ops of $KEY_NAME version $KEY_VERSION lack unwrapKey; fix: .*--ops wrapKey unwrapKey" "$T_TMP/c.txt"
    expect_grep "wrapKey OK" "^OK +$K wrapKey: " "$T_TMP/c.txt"
    expect_grep "unwrapKey FAIL: key_ops" "^FAIL +$K unwrapKey: unwrapKey refused: the key_ops" "$T_TMP/c.txt" ;;
tampered)
    expect_grep "store FAIL: refused count" "^FAIL +$L store: $STORE_DIR: 1 object readable, 1 record unreadable, of which 1 refused \(fail authentication" "$T_TMP/c.txt" ;;
esac
expect_eq "--json cause of the first FAIL" "$(jq -r '[.checks[] | select(.state == "FAIL")][0].cause // "none"' "$T_TMP/c.json")" \
    "$(grep -m1 '^FAIL' "$T_TMP/c.txt" | sed -E 's/^FAIL +[^:]+: //; s/; fix: .*//' || true)$( [ "$want_rc" = 0 ] && echo none)"
t_finish
