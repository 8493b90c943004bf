#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator stats: per-operation request counters, including requests
# answered by a 401 or by an injected fault; --reset.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

start_emu
V=$(cli keyvault create --name vaults | jq -r .properties.vaultUri); V=${V%/}
SP=$(cli ad sp create-for-rbac --name counter)
cli keyvault set-policy --name vaults --object-id "$(jq -r .objectId <<<"$SP")" --key-permissions all > /dev/null
KID=$(cli keyvault key create --vault-name vaults --name k | jq -r .key.kid)
cli stats --reset > /dev/null
eq "$(cli stats | jq '[.[]] | add')" 0 "all zero after reset"

TOKEN=$(token_secret "$(jq -r .appId <<<"$SP")" "$(jq -r .password <<<"$SP")")
req GET "$KID?api-version=7.4"          # get 1
req GET "$V/keys/k/?api-version=7.4" "" "" # get 2 (401)
cli fault add --op get --count 1 --status 503 > /dev/null
req GET "$KID?api-version=7.4"          # get 3 (fault)
eq "$STATUS" 503 "fault answered"
CEK=$(head -c 32 /dev/urandom | b64url)
for _ in 1 2 3; do
    req POST "$KID/wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$CEK\"}"
done
W=$(jb .value)
req POST "$KID/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$W\"}"
req POST "$KID/encrypt?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$CEK\"}"
req POST "$KID/decrypt?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$(jb .value)\"}"
req GET "$V/keys?api-version=7.4"
req GET "$V/keys/k/versions?api-version=7.4"
req POST "$V/keys/k2/create?api-version=7.4" '{"kty":"RSA"}'
req POST "$V/keys/k2/rotate?api-version=7.4" ''
req PATCH "$V/keys/k2/?api-version=7.4" '{"tags":{"x":"y"}}'
req DELETE "$V/keys/k2?api-version=7.4"
req GET "$V/deletedkeys/k2?api-version=7.4"
req POST "$V/deletedkeys/k2/recover?api-version=7.4" ''
req DELETE "$V/keys/k2?api-version=7.4"
req DELETE "$V/deletedkeys/k2?api-version=7.4"
cli identity create --name m > /dev/null
curl -s -o /dev/null "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net"

cli stats > "$WORK/s.json"
for pair in token:1 imds:1 get:3 wrapkey:3 unwrapkey:1 encrypt:1 decrypt:1 list:2 \
    create:1 rotate:1 update:1 delete:2 getdeleted:1 recover:1 purge:1; do
    eq "$(jq -r ".${pair%%:*}" "$WORK/s.json")" "${pair#*:}" "stats ${pair%%:*}"
done
cli stats --reset > "$WORK/s2.json"
eq "$(jq -r .get "$WORK/s2.json")" 3 "--reset prints the counts before resetting"
eq "$(cli stats | jq -r .get)" 0 "get after reset"
ok "stats"
echo PASS
