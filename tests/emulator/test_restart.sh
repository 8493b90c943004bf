#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator restarts on the same DIR: without --port/--imds-port the
# previous start's ports (server.json) are reused, so authority_host and
# imds_endpoint stay valid; a taken port falls back to a free one with a
# warning; explicit ports (0 = any) win; one server per DIR ("already served
# by pid N"), and a SIGKILLed server does not block the next start.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

OCC_PID=
trap 'rc=$?; if [ -n "$OCC_PID" ]; then kill -TERM "$OCC_PID" 2>/dev/null; wait "$OCC_PID" 2>/dev/null; fi; (exit $rc); cleanup' EXIT

# occupy PORT: a second emulator on its own DIR listening on --port PORT
occupy() {
    : > "$WORK/occ.line"
    "$EMU" serve --dir "$WORK/occ" --port "$1" --imds-port 0 > "$WORK/occ.line" 2>> "$WORK/occ.err" &
    OCC_PID=$!
    for _ in $(seq 1 200); do
        [ -s "$WORK/occ.line" ] && break
        kill -0 "$OCC_PID" 2>/dev/null || fail "occupying emulator exited: $(cat "$WORK/occ.err")"
        sleep 0.05
    done
    eq "$(jq .port "$WORK/occ.line")" "$1" "occupying emulator port"
}
release() {
    kill -TERM "$OCC_PID"
    local rc=0
    wait "$OCC_PID" || rc=$?
    OCC_PID=
    eq "$rc" 0 "occupying emulator exit status"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$WORK/occ.err"; then
        fail "sanitizer report from the occupying emulator: $(head -40 "$WORK/occ.err")"
    fi
}
warnings() { grep -c 'warning: .* of the previous start is taken' "$WORK/stderr" || true; }

# shellcheck disable=SC2119
start_emu
AUTH1=$AUTH IMDS1=$IMDS PORT1=$PORT IMDS_PORT1=$IMDS_PORT
V1=$(cli keyvault create --name vaultr | jq -r .properties.vaultUri)
cli keyvault create --name vaultp --sku premium > /dev/null
eq "$(cli keyvault show --name vaultr | jq -r .properties.sku.name)" standard "default SKU"
eq "$(jq .port "$D/server.json")" "$PORT1" "server.json records the main port"
eq "$(jq .imds_port "$D/server.json")" "$IMDS_PORT1" "server.json records the IMDS port"

# a second server on the same DIR is refused with the live pid
rc=0
"$EMU" serve --dir "$D" > "$WORK/second.out" 2> "$WORK/second.err" || rc=$?
eq "$rc" 1 "second serve on a served DIR"
grep -qF "$(realpath "$D") is already served by pid $EMU_PID" "$WORK/second.err" \
    || fail "second serve message: $(cat "$WORK/second.err")"
[ ! -s "$WORK/second.out" ] || fail "second serve printed a ready line"
grep -q 're-bind' "$WORK/second.err" && fail "second serve tried to re-bind vaults"
req GET "$AUTH/$TENANT/v2.0/.well-known/openid-configuration"
eq "$STATUS" 200 "first server still serves after the refused second one"
ok "already served by pid $EMU_PID"

# restart without ports: same endpoints
stop_emu
start_emu
eq "$AUTH" "$AUTH1" "authority_host after restart"
eq "$IMDS" "$IMDS1" "imds_endpoint after restart"
eq "$(cli keyvault show --name vaultr | jq -r .properties.vaultUri)" "$V1" "vault URI after restart"
eq "$(cli keyvault show --name vaultp | jq -r .properties.sku.name)" premium "premium SKU after restart"
eq "$(cli keyvault show --name vaultr | jq -r .properties.sku.name)" standard "standard SKU after restart"
cli identity create --name mi > /dev/null
st=$(curl -s -o "$BODY" -w '%{http_code}' -H 'Metadata: true' "$IMDS1?api-version=2018-02-01&resource=https://vault.azure.net")
eq "$st" 200 "IMDS answers on the old endpoint"
eq "$(warnings)" 0 "no port warning when the old ports are free"
ok "restart keeps authority_host $AUTH and imds_endpoint"

# SIGKILL leaves a stale server.json (dead pid): the next start is not blocked
kill -KILL "$EMU_PID"
wait "$EMU_PID" 2> /dev/null || true
EMU_PID=
start_emu
eq "$AUTH" "$AUTH1" "authority_host after a SIGKILL restart"
ok "restart after SIGKILL"
stop_emu

# the old main port is taken: a free port and a warning, IMDS port kept
occupy "$PORT1"
start_emu
[ "$PORT" != "$PORT1" ] || fail "main port not changed although taken"
eq "$IMDS" "$IMDS1" "IMDS port kept while only the main port is taken"
grep -q "warning: main port $PORT1 of the previous start is taken" "$WORK/stderr" \
    || fail "no warning about the taken main port"
req GET "$AUTH/$TENANT/v2.0/.well-known/openid-configuration"
eq "$STATUS" 200 "fallback main port serves"
PORT2=$PORT
stop_emu
release
ok "taken port falls back with a warning ($PORT1 -> $PORT2)"

# explicit --port 0 / --imds-port 0: any free port, the record is not tried
occupy "$PORT2"
w0=$(warnings)
start_emu --port 0 --imds-port 0
eq "$(warnings)" "$w0" "explicit port 0 does not try the recorded port"
[ "$PORT" != "$PORT2" ] || fail "explicit port 0 got the occupied port"
stop_emu
release
ok "explicit port 0"

# an explicit port is recorded too and reused by the next start
start_emu --port "$PORT1" --imds-port "$IMDS_PORT1"
eq "$PORT" "$PORT1" "explicit --port"
stop_emu
start_emu
eq "$AUTH" "$AUTH1" "explicit port reused by a start without ports"
eq "$IMDS" "$IMDS1" "IMDS port reused by a start without ports"
stop_emu
ok "explicit ports recorded"
echo PASS
