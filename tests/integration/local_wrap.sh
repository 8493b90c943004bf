#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# "wrap": "local" in one process, one thread, alternating OAEP hashes: the
# per-thread reused encryption context (token/crypto.c) follows the
# algorithm - every blob the module wraps locally is unwrapped by the vault
# to the same value, and no wrapkey call reaches the vault.
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
t_begin
emu_write_config "$AKV_PKCS11_CONFIG" '{"wrap":"local"}'
coproc CL { "$AKV_P11CLIENT" "$AKV_MODULE" repl - 2>&1; }
CLPID=$CL_PID
exec {CL_IN}>&"${CL[1]}" {CL_OUT}<&"${CL[0]}"
ask() { local r=""; echo "$*" >&"$CL_IN"; read -r -t 60 r <&"$CL_OUT" || r="(no answer)"; printf '%s' "$r"; }
emu_cli stats --reset >/dev/null
i=0
for h in sha256 sha1 sha256 sha256 sha1 pkcs sha256; do
    i=$((i + 1))
    read -r id val <<<"$(ask wrap "$KEY_NAME" "$T_TMP/w$i" "$h")"
    expect_eq "wrap $i ($h) then unwrap" "$(ask unwrap "$KEY_NAME" "$T_TMP/w$i" "$id" "$h")" "$val"
done
expect_eq "no wrapkey call reached the vault" "$(emu_cli stats | jq .wrapkey)" 0
expect_eq "one unwrapkey call per blob" "$(emu_cli stats | jq .unwrapkey)" 7
echo quit >&"$CL_IN"
wait "$CLPID" && rc=0 || rc=$?
expect_eq "client exited cleanly" "$rc" 0
t_finish
