#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator throttling (serve --throttle --throttle-scale F): per-vault
# budget per 10 s from the service-limits table (software RSA-2048: 4000
# other ops and 20 creates; RSA-4096 ops weigh 8x), 429 Throttled with
# Retry-After, 429s do not count, off by default.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

setup() {
    V=$(cli keyvault create --name vaultt | jq -r .properties.vaultUri); V=${V%/}
    V4=$(cli keyvault create --name vaultt4 | jq -r .properties.vaultUri); V4=${V4%/}
    SP=$(cli ad sp create-for-rbac --name thr)
    for v in vaultt vaultt4; do
        cli keyvault set-policy --name $v --object-id "$(jq -r .objectId <<<"$SP")" --key-permissions all > /dev/null
    done
    cli keyvault key create --vault-name vaultt --name k > /dev/null
    cli keyvault key create --vault-name vaultt4 --name k --size 4096 > /dev/null
    TOKEN=$(token_secret "$(jq -r .appId <<<"$SP")" "$(jq -r .password <<<"$SP")")
}

# off by default
start_emu
setup
for _ in $(seq 1 60); do
    req GET "$V/keys/k?api-version=7.4"
    eq "$STATUS" 200 "no throttling by default"
done
stop_emu
ok "off by default"

# scale 0.01: 40 units per 10 s for other ops, 1 create
start_emu --throttle --throttle-scale 0.01
CEK=$(head -c 32 /dev/urandom | b64url)
n=0
while :; do
    req POST "$V/keys/k//wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$CEK\"}"
    [ "$STATUS" = 200 ] || break
    n=$((n + 1))
    [ "$n" -le 100 ] || fail "never throttled"
done
eq "$STATUS" 429 "throttled"
eq "$(jb .error.code)" Throttled "429 code"
RA=$(grep -i '^retry-after:' "$HDRS" | tr -d '\r' | awk '{print $2}')
[ -n "$RA" ] && [ "$RA" -ge 1 ] && [ "$RA" -le 10 ] || fail "Retry-After '$RA'"
# requests were spread over a few seconds at most, so the budget is 40
[ "$n" -ge 38 ] && [ "$n" -le 40 ] || fail "RSA-2048 budget: $n"
req GET "$V/keys/k?api-version=7.4"
eq "$STATUS" 429 "GET shares the budget"
# vaults are independent; RSA-4096 costs 8 units -> 5 ops
m=0
while :; do
    req POST "$V4/keys/k//wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$CEK\"}"
    [ "$STATUS" = 200 ] || break
    m=$((m + 1))
    [ "$m" -le 100 ] || fail "4096 never throttled"
done
eq "$STATUS" 429 "4096 throttled"
eq "$m" 5 "RSA-4096 weighted budget"
req POST "$V4/keys/c1/create?api-version=7.4" '{"kty":"RSA"}'
eq "$STATUS" 200 "first create"
req POST "$V4/keys/c2/create?api-version=7.4" '{"kty":"RSA"}'
eq "$STATUS" 429 "second create throttled"
# every 429 counted (stats "throttled"): wrap, GET, RSA-4096 wrap, create
eq "$(cli stats | jq -r .throttled)" 4 "stats count the 429s"
# the window slides: after Retry-After the vault answers again
sleep "$RA"
sleep 1
req GET "$V/keys/k?api-version=7.4"
eq "$STATUS" 200 "after Retry-After"
ok "throttling ($n RSA-2048 ops, $m RSA-4096 ops per window)"
echo PASS
