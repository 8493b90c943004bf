#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Kept-alive connections that a firewall or NAT dropped silently (no FIN, no
# RST: every packet black-holed) cost no whole timeout. The module talks to
# the vault through tests/lib/blackhole_relay.py; after a few calls the relay
# black-holes every connection it relays (stops forwarding and reading, keeps
# the sockets open) while new connections still work. The next call must
# answer the right value in well under http.timeout_ms (10 s here): the
# request on the dead pooled connection gets no answer byte within
# http.reuse_answer_ms (default 2 s) and is sent once more on a new
# connection. Before that fix each such call took the whole 10 s timeout.
# Usage: conn_drop.sh single|threads
#   single   one session, two black-holes in a row, one call after each
#   threads  8 threads each with a pooled connection, all black-holed, then
#            8 threads at once again
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
CASE=${1:?case}
need python3 jq
t_begin

# The relay forwards to the vault's port; the module is pointed at the
# relay's port on the same address, which the emulator's certificate covers
# (the emulator builds key ids from the Host header, so they name the relay).
vport=${VAULT_URL##*:}
vport=${vport%%/*}
python3 "$AKV_SRC/tests/lib/blackhole_relay.py" 127.0.0.1 "$vport" \
    >"$T_TMP/relay.out" 2>"$T_TMP/relay.err" &
RELAY_PID=$!
relay_stop() { kill "$RELAY_PID" 2>/dev/null || true; wait "$RELAY_PID" 2>/dev/null || true; }
trap 'rc=$?; relay_stop; (exit $rc); t_cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$T_TMP/relay.out" ] && break; sleep 0.1; done
RELAY_PORT=$(jq -r .port <"$T_TMP/relay.out")
RELAY_CTL=$(jq -r .control <"$T_TMP/relay.out")
[ -n "$RELAY_PORT" ] && [ "$RELAY_PORT" != null ] || { fail "relay did not start"; cat "$T_TMP/relay.err"; exit 1; }
# relay_ctl COMMAND - one control command, prints the relay's answer line
relay_ctl() {
    local fd r=""
    exec {fd}<>"/dev/tcp/127.0.0.1/$RELAY_CTL"
    echo "$1" >&"$fd"
    read -r -t 10 r <&"$fd" || r="(no answer)"
    exec {fd}>&-
    printf '%s' "$r"
}
relay_accepted() { relay_ctl stats | awk '{print $2}'; }

VAULT_URL="https://127.0.0.1:$RELAY_PORT/"
emu_write_config "$AKV_PKCS11_CONFIG" \
    '{"http":{"verify_challenge_resource":false,"timeout_ms":10000,"budget_ms":30000}}'
: >"$T_TMP/module.log"

coproc CL { "$AKV_P11CLIENT" "$AKV_MODULE" repl - 2>&1; }
CLPID=$CL_PID
exec {CL_IN}>&"${CL[1]}" {CL_OUT}<&"${CL[0]}"
ask() { local r=""; echo "$*" >&"$CL_IN"; read -r -t 120 r <&"$CL_OUT" || r="(no answer)"; printf '%s' "$r"; }
resends() { grep -c 'resending it once on a new connection' "$T_TMP/module.log" || true; }

read -r id val <<<"$(ask wrap "$KEY_NAME" "$T_TMP/w" sha256)"
expect_eq "unwrap through the relay" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"

case "$CASE" in
single)
    for round in 1 2; do
        before=$(relay_accepted)
        r=$(relay_ctl blackhole)
        case "$r" in "ok "[1-9]*) pass "round $round: relay black-holed: $r" ;;
            *) fail "round $round: relay answered '$r' to blackhole" ;; esac
        t0=$(date +%s%N)
        got=$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        echo "round $round: unwrap after the black-hole took $ms ms (timeout_ms 10000)"
        expect_eq "round $round: unwrap after the black-hole" "$got" "$val"
        if [ "$ms" -lt 5000 ]; then pass "round $round: answered in $ms ms"
        else fail "round $round: took $ms ms (a black-holed pooled connection cost a timeout)"; fi
        expect_eq "round $round: one new connection through the relay" \
            "$(( $(relay_accepted) - before ))" 1
        # the new connection is pooled and healthy: no further resend
        t0=$(date +%s%N)
        expect_eq "round $round: next unwrap" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        if [ "$ms" -lt 1000 ]; then pass "round $round: next unwrap on the new connection in $ms ms"
        else fail "round $round: next unwrap took $ms ms"; fi
    done
    expect_eq "one logged resend per black-hole" "$(resends)" 2
    ;;
threads)
    r=$(ask threads "$KEY_NAME" 8 3)
    expect_eq "8 threads x 3 rounds through the relay" "${r%% *}" "failures=0"
    r=$(relay_ctl blackhole)
    case "$r" in "ok "[1-9]*) pass "relay black-holed: $r" ;;
        *) fail "relay answered '$r' to blackhole" ;; esac
    n=${r#ok }
    r=$(ask threads "$KEY_NAME" 8 1)
    echo "8 threads x 1 round (wrap + unwrap) after the black-hole: $r (timeout_ms 10000)"
    expect_eq "8 threads after the black-hole" "${r%% *}" "failures=0"
    ms=${r##*ms=}
    if [ "${ms:-99999}" -lt 7000 ]; then pass "8 threads done in $ms ms"
    else fail "8 threads took ${ms} ms (black-holed pooled connections cost a timeout)"; fi
    k=$(resends)
    if [ "$k" -ge 1 ] && [ "$k" -le "$n" ]; then pass "$k resends for $n black-holed connections"
    else fail "$k resends for $n black-holed connections"; fi
    ;;
*) fail "unknown case $CASE" ;;
esac
echo quit >&"$CL_IN"
wait "$CLPID" && rc=0 || rc=$?
expect_eq "client exited cleanly" "$rc" 0

t_finish
