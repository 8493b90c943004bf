#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Benchmark of akv-emulator's two hot paths over keep-alive TLS with wrk:
#   GET  /keys/{name}/{version}?api-version=7.4
#   POST /keys/{name}/{version}/unwrapkey?api-version=7.4  (RSA-OAEP-256, RSA-2048)
# next to `openssl speed -seconds 5 -multi 2 rsa2048` (private-key ops/s, the
# ceiling for unwrapkey on the same cores). Prints the figures, the ratio and
# TARGET MET / TARGET MISSED for each target; it fails only when it cannot
# measure (setup error, or wrk saw errors/non-2xx responses):
#   GET key   >= 10,000 req/s
#   unwrapkey >= 80% of openssl's rsa2048 sign/s
# Env: AKV_EMULATOR (binary), AKV_BENCH_SECONDS (default 10),
#      AKV_BENCH_THREADS (2), AKV_BENCH_CONNECTIONS (32).
set -euo pipefail
AKV_SRC=${AKV_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib/emulator.sh
. "$AKV_SRC/tests/lib/emulator.sh"

for t in wrk jq curl openssl; do
    command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
done

SECONDS_RUN=${AKV_BENCH_SECONDS:-10}
THREADS=${AKV_BENCH_THREADS:-2}
CONNS=${AKV_BENCH_CONNECTIONS:-32}
GET_TARGET=10000
UNWRAP_RATIO_TARGET=0.80

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/akv-bench.XXXXXX")
cleanup() {
    emu_stop || true
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT

# No --throttle: measure the server, not the limit model.
# shellcheck disable=SC2119
emu_start
sp=$(emu_cli ad sp create-for-rbac --name bench-app)
app_id=$(jq -r .appId <<<"$sp")
obj_id=$(jq -r .objectId <<<"$sp")
secret=$(jq -r .password <<<"$sp")
vault_url=$(emu_cli keyvault create --name benchvault | jq -r .properties.vaultUri)
vault_url=${vault_url%/}
emu_cli keyvault set-policy --name benchvault --object-id "$obj_id" \
    --key-permissions get wrapKey unwrapKey >/dev/null
kid=$(emu_cli keyvault key create --vault-name benchvault --name benchkey --kty RSA --size 2048 | jq -r .key.kid)
version=${kid##*/}

authority=${EMU_AUTHORITY%/}
token=$(curl -sS --fail --cacert "$EMU_CA" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$app_id" \
    --data-urlencode "client_secret=$secret" \
    --data-urlencode "scope=https://vault.azure.net/.default" \
    "$authority/$EMU_TENANT/oauth2/v2.0/token" | jq -r .access_token)
if [ -z "$token" ] || [ "$token" = null ]; then
    echo "FAIL: no token"
    exit 1
fi

get_url="$vault_url/keys/benchkey/$version?api-version=7.4"
unwrap_url="$vault_url/keys/benchkey/$version/unwrapkey?api-version=7.4"
cek=$(openssl rand 32 | basenc --base64url | tr -d '=\n')
wrapped=$(curl -sS --fail --cacert "$EMU_CA" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' \
    -d "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$cek\"}" \
    "$vault_url/keys/benchkey/$version/wrapkey?api-version=7.4" | jq -r .value)
body="{\"alg\":\"RSA-OAEP-256\",\"value\":\"$wrapped\"}"
got=$(curl -sS --fail --cacert "$EMU_CA" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$body" "$unwrap_url" | jq -r .value)
[ "$got" = "$cek" ] || { echo "FAIL: unwrap check: got '$got' want '$cek'"; exit 1; }
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$EMU_CA" -H "Authorization: Bearer $token" "$get_url")
[ "$code" = 200 ] || { echo "FAIL: GET key check: HTTP $code"; exit 1; }

# The Authorization header is written to a 0600 file, never printed.
(umask 077
 cat >"$BENCH_TMP/get.lua" <<LUA
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Accept"] = "application/json"
LUA
 cat >"$BENCH_TMP/unwrap.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
LUA
)

# run_wrk NAME SCRIPT URL -> sets RPS; fails on socket errors / non-2xx.
run_wrk() {
    local name=$1 script=$2 url=$3 out="$BENCH_TMP/$1.wrk"
    echo "==> wrk -t$THREADS -c$CONNS -d${SECONDS_RUN}s ($name)"
    wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$script" "$url" >"$out" 2>&1 || {
        cat "$out"; echo "FAIL: wrk $name"; exit 1; }
    sed 's/^/    /' "$out"
    if grep -q 'Non-2xx or 3xx responses' "$out"; then
        echo "FAIL: $name: non-2xx responses (see above)"; exit 1
    fi
    if grep -Eq 'Socket errors:.*(read|write|timeout) [1-9]' "$out"; then
        echo "FAIL: $name: socket errors (see above)"; exit 1
    fi
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    [ -n "$RPS" ] || { echo "FAIL: $name: no Requests/sec"; exit 1; }
}

run_wrk get "$BENCH_TMP/get.lua" "$get_url"
GET_RPS=$RPS
run_wrk unwrapkey "$BENCH_TMP/unwrap.lua" "$unwrap_url"
UNWRAP_RPS=$RPS

echo "==> openssl speed -seconds 5 -multi 2 rsa2048"
openssl speed -seconds 5 -multi 2 rsa2048 >"$BENCH_TMP/speed.out" 2>&1 || {
    cat "$BENCH_TMP/speed.out"; echo "FAIL: openssl speed"; exit 1; }
grep -E '^ *(sign|rsa)' "$BENCH_TMP/speed.out" | sed 's/^/    /'
SIGN_S=$(awk '/^rsa +2048 +bits/ {v=$6} END {print v}' "$BENCH_TMP/speed.out")
[ -n "$SIGN_S" ] || { echo "FAIL: cannot parse openssl speed output"; exit 1; }

verdict() { if [ "$1" = 1 ]; then echo "TARGET MET"; else echo "TARGET MISSED"; fi; }
get_ok=$(awk -v a="$GET_RPS" -v t="$GET_TARGET" 'BEGIN {print (a >= t) ? 1 : 0}')
ratio=$(awk -v a="$UNWRAP_RPS" -v b="$SIGN_S" 'BEGIN {printf "%.2f", a / b}')
unwrap_ok=$(awk -v r="$ratio" -v t="$UNWRAP_RATIO_TARGET" 'BEGIN {print (r >= t) ? 1 : 0}')

echo
echo "==================== akv-emulator benchmark ($(nproc) CPUs, wrk -t$THREADS -c$CONNS, ${SECONDS_RUN}s) ===================="
printf '%-34s %12s req/s   target >= %s req/s   %s\n' "GET key (RSA-2048, api 7.4)" "$GET_RPS" "$GET_TARGET" "$(verdict "$get_ok")"
printf '%-34s %12s req/s\n' "POST unwrapkey (RSA-OAEP-256)" "$UNWRAP_RPS"
printf '%-34s %12s ops/s\n' "openssl speed rsa2048 sign (-multi 2)" "$SIGN_S"
printf '%-34s %12s         target >= %s          %s\n' "unwrapkey / openssl sign" "$ratio" "$UNWRAP_RATIO_TARGET" "$(verdict "$unwrap_ok")"
