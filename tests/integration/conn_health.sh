#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Kept-alive connections that died while idle cost no timeout: the vault
# restarts between two calls of the same session (every pooled connection
# is now dead), and the next call still succeeds at once on a fresh
# connection - well under http.timeout_ms (8 s here), each time, also for
# many threads whose pooled connections all died together. And the pool
# keeps a connection per thread in flight: 16 threads making 640 vault
# calls open about 16 connections, not one per call beyond the eighth.
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
t_begin
emu_write_config "$AKV_PKCS11_CONFIG" '{"http":{"verify_challenge_resource":false,"timeout_ms":8000,"budget_ms":20000}}'
# 50 ms per call keeps all 16 threads in flight at once
emu_cli fault add --op unwrapkey --delay-ms 50 >/dev/null
emu_cli fault add --op wrapkey --delay-ms 50 >/dev/null
: >"$T_TMP/module.log"
out=$(withmod "$AKV_P11CLIENT" "$AKV_MODULE" threads "$KEY_NAME" 16 20)
echo "$out" >"$T_TMP/threads.out"
expect_grep "16 threads x 20 wrap+unwrap rounds" "failures=0" "$T_TMP/threads.out"
calls=$(grep -c 'HTTP POST /keys/.*(\(new\|reused\) connection)' "$T_TMP/module.log" || true)
new=$(grep -c 'HTTP [A-Z]* /keys/.*(new connection)' "$T_TMP/module.log" || true)
expect_eq "vault calls made" "$calls" 640
if [ "$new" -le 18 ]; then pass "$new new connections for 640 calls on 16 threads"
else fail "$new new connections for 640 calls on 16 threads (pool does not grow with the threads)"; fi
emu_cli fault clear >/dev/null
coproc CL { "$AKV_P11CLIENT" "$AKV_MODULE" repl - 2>&1; }
CLPID=$CL_PID
exec {CL_IN}>&"${CL[1]}" {CL_OUT}<&"${CL[0]}"
ask() { local r=""; echo "$*" >&"$CL_IN"; read -r -t 60 r <&"$CL_OUT" || r="(no answer)"; printf '%s' "$r"; }
read -r id val <<<"$(ask wrap "$KEY_NAME" "$T_TMP/w" sha256)"
expect_eq "unwrap on a fresh connection" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"
for round in 1; do
    emu_restart
    t0=$(date +%s%N)
    got=$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    expect_eq "round $round: unwrap after the restart" "$got" "$val"
    if [ "$ms" -lt 2000 ]; then pass "round $round: answered in $ms ms"
    else fail "round $round: took $ms ms (a dead pooled connection cost a timeout)"; fi
done
echo quit >&"$CL_IN"
wait "$CLPID" && rc=0 || rc=$?
expect_eq "client exited cleanly" "$rc" 0

t_finish
