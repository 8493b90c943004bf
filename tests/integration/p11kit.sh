#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# p11-kit loads the module from a module file with x-init-reserved config.
# Usage: p11kit.sh list|unreachable|no-network
. "$(dirname "$0")/../lib/common.sh"
need p11-kit
t_begin
CASE=${1:?case}
# p11-kit reads modules from /usr/share/p11-kit/modules and /etc/pkcs11/modules
# (Debian's build ignores ~/.config). To register the module without touching
# the machine, each run gets a private mount namespace in which both folders
# hold only our module file.
unshare -m true 2>/dev/null || { echo "SKIP: needs unshare -m (root)"; exit 77; }
MODDIR="$T_TMP/modules"
mkdir -p "$MODDIR"
write_module() {
    printf 'module: %s\nx-init-reserved: config=%s\n' "$AKV_MODULE" "$1" \
        >"$MODDIR/akv-pkcs11.module"
}
p11kit() {
    unshare -m bash -c 'mount --bind "$1" /usr/share/p11-kit/modules &&
        { [ ! -d /etc/pkcs11/modules ] || mount --bind "$1" /etc/pkcs11/modules; } &&
        shift && { [ -z "${AKV_ASAN_PRELOAD:-}" ] || export LD_PRELOAD="$AKV_ASAN_PRELOAD" ASAN_OPTIONS=detect_leaks=0:exitcode=86; } &&
        exec timeout 60 p11-kit "$@"' _ "$MODDIR" "$@"
}
case "$CASE" in
list)
    write_module "$AKV_PKCS11_CONFIG"
    p11kit list-modules >"$T_TMP/lm" 2>&1 || true
    expect_grep "module listed" "akv-pkcs11" "$T_TMP/lm"
    expect_grep "token listed" "token: $TOKEN_LABEL" "$T_TMP/lm"
    expect_grep "manufacturer" "manufacturer: akv-pkcs11" "$T_TMP/lm"
    ;;
unreachable)
    # Vault on a closed port: probing must still list the token (no network
    # call in C_Initialize/C_GetSlotList/C_GetTokenInfo); `timeout` guards
    # against a hang, the figure is printed for the record.
    emu_write_config "$T_TMP/dead.json" '{"vault_url":"https://127.0.0.1:9/"}'
    write_module "$T_TMP/dead.json"
    t0=$(date +%s%N)
    p11kit list-modules >"$T_TMP/lm" 2>&1 || true
    echo "p11-kit list-modules took $(( ($(date +%s%N) - t0) / 1000000 )) ms with the vault unreachable"
    expect_grep "token listed although the vault is down" "token: $TOKEN_LABEL" "$T_TMP/lm"
    ;;
no-network)
    write_module "$AKV_PKCS11_CONFIG"
    emu_cli stats --reset >/dev/null
    p11kit list-modules >"$T_TMP/lm" 2>&1 || true
    expect_grep "token listed" "token: $TOKEN_LABEL" "$T_TMP/lm"
    emu_cli stats >"$T_TMP/stats"
    expect_eq "no request reached the vault or token endpoint" \
        "$(jq '[.. | numbers] | add // 0' "$T_TMP/stats")" 0
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
