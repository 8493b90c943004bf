#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# akv-pkcs11-tool rewrap output: piped, one summary line per token; on a
# terminal (script(1) gives it a pty), a "\r"-updated progress line; with
# -v, one line per record.
. "$(dirname "$0")/../../lib/common.sh"
need pkcs11-tool script
: "${AKV_TOOL:?}"
t_begin
N=6
for i in $(seq 1 $N); do
    expect_ok "keygen object $i" p11 --keygen --key-type AES:32 --label "dek$i" --id "0$i"
done
rotate() {
    V=$(emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq -r .key.kid)
    V=${V##*/}
}
rotate
"$AKV_TOOL" rewrap --config "$AKV_PKCS11_CONFIG" >"$T_TMP/pipe.out" 2>&1 && rc=0 || rc=$?
cat "$T_TMP/pipe.out"
expect_eq "piped: exit 0" "$rc" 0
expect_eq "piped: one line" "$(wc -l <"$T_TMP/pipe.out")" 1
expect_grep "piped: the summary" "^token $TOKEN_LABEL: store $STORE_DIR, target $KEY_NAME/$V: rewrapped $N, already current 0, failed 0$" "$T_TMP/pipe.out"
expect_eq "piped: no carriage return" "$(tr -cd '\r' <"$T_TMP/pipe.out" | wc -c)" 0

rotate
script -qec "'$AKV_TOOL' rewrap --config '$AKV_PKCS11_CONFIG'" /dev/null >"$T_TMP/tty.out" 2>&1 || true
od -c "$T_TMP/tty.out" | tail -n 5
for i in $(seq 1 $N); do
    expect_ok "terminal: progress $i/$N" grep -qaF "$(printf '\r%s: %d/%d records: rewrapped %d, already current 0, failed 0' "$TOKEN_LABEL" "$i" "$N" "$i")" "$T_TMP/tty.out"
done
expect_grep "terminal: the summary" "token $TOKEN_LABEL: store $STORE_DIR, target $KEY_NAME/$V: rewrapped $N, already current 0, failed 0" "$T_TMP/tty.out"

rotate
"$AKV_TOOL" rewrap -v --config "$AKV_PKCS11_CONFIG" >"$T_TMP/v.out" 2>/dev/null || true
expect_eq "-v: one line per record" "$(grep -c ": rewrapped .* -> $V$" "$T_TMP/v.out")" "$N"
t_finish
