#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# OAEP and PKCS#11 conventions through our own C client (p11client).
# Usage: oaep.sh roundtrip-sha256|roundtrip-sha1|roundtrip-pkcs|bad-params|attrs|threads|length-query
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
t_begin
CASE=${1:?case}
c() { "$AKV_P11CLIENT" "$AKV_MODULE" "$@"; }
case "$CASE" in
roundtrip-sha256) expect_ok "OAEP SHA-256 wrap/unwrap" c roundtrip "$KEY_NAME" sha256 ;;
roundtrip-sha1) expect_ok "OAEP SHA-1 wrap/unwrap" c roundtrip "$KEY_NAME" sha1 ;;
roundtrip-pkcs) expect_ok "RSA-PKCS wrap/unwrap" c roundtrip "$KEY_NAME" pkcs ;;
bad-params)
    emu_cli stats --reset >/dev/null
    expect_ok "unsupported OAEP params refused in C_DecryptInit" c bad-params "$KEY_NAME"
    expect_eq "no unwrapkey call for refused params" "$(emu_cli stats | jq -r '.unwrapkey // 0')" 0
    ;;
attrs) expect_ok "C_GetAttributeValue template cases" c attrs "$KEY_NAME" ;;
threads) expect_ok "8 threads x 10 wrap/unwrap" c threads "$KEY_NAME" 8 10 ;;
length-query)
    # The length query and the short buffer must not call the vault.
    c wrap-file "$KEY_NAME" "$T_TMP/w" sha256 >/dev/null
    emu_cli stats --reset >/dev/null
    expect_ok "roundtrip incl. length query + short buffer" c roundtrip "$KEY_NAME" sha256
    expect_eq "exactly one wrapkey call" "$(emu_cli stats | jq -r '.wrapkey // 0')" 1
    expect_eq "exactly one unwrapkey call" "$(emu_cli stats | jq -r '.unwrapkey // 0')" 1
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
