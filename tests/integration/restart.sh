#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The vault restarts (akv-emulator stopped and started on the same folder):
# vault URL, keys, identity and policy survive, and a client that was in the
# middle of a session goes on after the restart (its kept-alive connections
# are gone; the module reconnects), with nothing lost.
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
need pkcs11-tool
t_begin
IV=000102030405060708090a0b0c0d0e0f
expect_ok "token object created" p11 --keygen --key-type AES:32 --label dek --id 0d
head -c 777 /dev/urandom >"$T_TMP/plain"
expect_ok "encrypt before the restart" p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id 0d -i "$T_TMP/plain" -o "$T_TMP/ct"
coproc CL { "$AKV_P11CLIENT" "$AKV_MODULE" repl - 2>&1; }
CLPID=$CL_PID
exec {CL_IN}>&"${CL[1]}" {CL_OUT}<&"${CL[0]}"
ask() { local r=""; echo "$*" >&"$CL_IN"; read -r -t 60 r <&"$CL_OUT" || r="(no answer)"; printf '%s' "$r"; }
read -r id val <<<"$(ask wrap "$KEY_NAME" "$T_TMP/w" sha256)"
expect_eq "unwrap before the restart" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"
old_auth=$EMU_AUTHORITY
emu_restart
expect_eq "authority host kept" "$EMU_AUTHORITY" "$old_auth"
expect_eq "same session unwraps after the restart" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"
expect_ok "a new process decrypts with the stored data key" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 0d -i "$T_TMP/ct" -o "$T_TMP/back"
expect_ok "nothing lost" cmp "$T_TMP/plain" "$T_TMP/back"
echo quit >&"$CL_IN"
wait "$CLPID" && rc=0 || rc=$?
expect_eq "client exited cleanly" "$rc" 0
t_finish
