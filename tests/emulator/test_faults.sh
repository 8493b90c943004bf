#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator fault injection: fault add (--op/--path, --count/--fraction,
# --status/--retry-after, --delay-ms, --hang, --close, --malformed ...,
# --trickle-ms), fault list, fault clear; and a clean shutdown with a hung
# and a trickling connection.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

start_emu
V=$(cli keyvault create --name vaultf | jq -r .properties.vaultUri); V=${V%/}
SP=$(cli ad sp create-for-rbac --name faulty)
APPID=$(jq -r .appId <<<"$SP")
SECRET=$(jq -r .password <<<"$SP")
cli keyvault set-policy --name vaultf --object-id "$(jq -r .objectId <<<"$SP")" --key-permissions all > /dev/null
KID=$(cli keyvault key create --vault-name vaultf --name k1 | jq -r .key.kid)
TOKEN=$(token_secret "$APPID" "$SECRET")
CEK=$(head -c 32 /dev/urandom | b64url)
req POST "$KID/wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$CEK\"}"
WRAPPED=$(jb .value)
UNWRAP_BODY="{\"alg\":\"RSA-OAEP-256\",\"value\":\"$WRAPPED\"}"
unwrap() { req POST "$KID/unwrapkey?api-version=7.4" "$UNWRAP_BODY"; }

# status with count
cli fault add --op unwrapkey --count 2 --status 503 > "$WORK/list.json"
eq "$(jq -r '.[0].op' "$WORK/list.json")" unwrapkey "fault add prints the list"
unwrap; eq "$STATUS" 503 "first injected 503"
unwrap; eq "$STATUS" 503 "second injected 503"
unwrap; eq "$STATUS" 200 "count exhausted"
eq "$(jb .value)" "$CEK" "real answer after the faults"
eq "$(cli fault list | jq length)" 0 "exhausted rule removed"
req GET "$KID?api-version=7.4"
eq "$STATUS" 200 "other ops unaffected"

# 429 with Retry-After
cli fault add --op unwrapkey --count 1 --status 429 --retry-after 3 > /dev/null
unwrap
eq "$STATUS" 429 "injected 429"
eq "$(jb .error.code)" Throttled "429 body"
eq "$(grep -i '^retry-after:' "$HDRS" | tr -d '\r' | awk '{print $2}')" 3 "Retry-After header"
ok "status faults"

# 401 fault carries the challenge
cli fault add --op get --count 1 --status 401 > /dev/null
req GET "$KID?api-version=7.4"
eq "$STATUS" 401 "injected 401"
grep -qi '^www-authenticate: Bearer authorization=' "$HDRS" || fail "401 fault challenge"
ok "401 fault"

# delay
cli fault add --op unwrapkey --count 1 --delay-ms 700 > /dev/null
t0=$(date +%s%N); unwrap; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
eq "$STATUS" 200 "delayed answer"
[ "$ms" -ge 650 ] || fail "delay too short: $ms ms"
ok "delay ($ms ms)"

# close mid-response
cli fault add --op unwrapkey --count 1 --close > /dev/null
rc=0; curl -s -o "$BODY" --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$UNWRAP_BODY" "$KID/unwrapkey?api-version=7.4" || rc=$?
[ "$rc" -ne 0 ] || fail "closed connection reported success"
if jq -e . "$BODY" > /dev/null 2>&1; then fail "complete JSON despite --close"; fi
unwrap; eq "$STATUS" 200 "next request after close"
ok "close (curl exit $rc)"

# hang until the client gives up, then clear
cli fault add --op unwrapkey --count 1000 --hang > /dev/null
rc=0; curl -s -o /dev/null --max-time 2 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$UNWRAP_BODY" "$KID/unwrapkey?api-version=7.4" || rc=$?
eq "$rc" 28 "hung request times out (curl 28)"
req GET "$KID?api-version=7.4"
eq "$STATUS" 200 "server still serves other requests while one hangs"
cli fault clear > /dev/null
eq "$(cli fault list | jq length)" 0 "fault clear"
unwrap; eq "$STATUS" 200 "works after clear"
ok "hang"

# malformed answers
cli fault add --op unwrapkey --count 1 --malformed truncated > /dev/null
unwrap; eq "$STATUS" 200 "truncated is a 200"
if jq -e . "$BODY" > /dev/null 2>&1; then fail "truncated body parses"; fi
cli fault add --op unwrapkey --count 1 --malformed bad-base64 > /dev/null
unwrap; eq "$STATUS" 200 "bad-base64 is a 200"
case "$(jb .value)" in *[!A-Za-z0-9_-]*) ;; *) fail "bad-base64 value is valid base64url" ;; esac
cli fault add --op unwrapkey --count 1 --malformed wrong-length > /dev/null
unwrap; eq "$STATUS" 200 "wrong-length is a 200"
eq "$(jb .value | b64url_dec | wc -c)" 31 "wrong-length value"
cli fault add --op get --count 1 --malformed wrong-length > /dev/null
req GET "$KID?api-version=7.4"
eq "$(jb .key.n | b64url_dec | wc -c)" 255 "wrong-length n"
ok "malformed"

# trickle: the normal answer, one body byte every 200 ms; the client's
# --max-time cuts the transfer, stats still count the request
cli stats --reset > /dev/null
cli fault add --op unwrapkey --count 1 --trickle-ms 200 > "$WORK/list.json"
eq "$(jq -r '.[0].action' "$WORK/list.json")" trickle "trickle rule action"
eq "$(jq -r '.[0].trickleMs' "$WORK/list.json")" 200 "trickle rule trickleMs"
rc=0; st=$(curl -s -o "$BODY" -w '%{http_code}' --max-time 2 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$UNWRAP_BODY" "$KID/unwrapkey?api-version=7.4") || rc=$?
eq "$rc" 28 "trickled transfer cut by curl --max-time (curl 28)"
eq "$st" 200 "trickled answer has its normal status"
got=$(wc -c < "$BODY")
if [ "$got" -lt 3 ] || [ "$got" -gt 12 ]; then fail "trickle at 200 ms/byte delivered $got bytes in 2 s"; fi
eq "$(head -c 8 "$BODY")" "$(printf '{"kid":"' | head -c "$got")" "trickled bytes are the start of the answer"
eq "$(cli stats | jq .unwrapkey)" 1 "stats count the trickled request"
unwrap; eq "$STATUS" 200 "next unwrap after the trickle"
# a fast trickle delivers the whole answer, no faster than 2 ms per byte
cli fault add --op unwrapkey --count 1 --trickle-ms 2 > /dev/null
t0=$(date +%s%N); unwrap; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
eq "$STATUS" 200 "fast trickle status"
eq "$(jb .value)" "$CEK" "fast trickle delivers the full answer"
len=$(wc -c < "$BODY")
[ "$ms" -ge $(( len * 2 )) ] || fail "trickle of $len bytes at 2 ms took only $ms ms"
# combined with an injected status
cli fault add --op unwrapkey --count 1 --status 503 --trickle-ms 1 > /dev/null
unwrap; eq "$STATUS" 503 "trickled injected status"
eq "$(jb .error.code)" ServiceUnavailable "trickled injected status body"
# fault clear ends a trickle in progress
cli fault add --op unwrapkey --trickle-ms 1000 > /dev/null
rc=0; t0=$(date +%s%N)
curl -s -o "$BODY" --max-time 30 --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$UNWRAP_BODY" "$KID/unwrapkey?api-version=7.4" &
CURL_PID=$!
sleep 1.5
cli fault clear > /dev/null
wait "$CURL_PID" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
eq "$rc" 18 "trickle ended by fault clear (curl 18: partial transfer)"
[ "$ms" -lt 5000 ] || fail "fault clear left the trickle running ($ms ms)"
ok "trickle (full $len-byte answer at 2 ms/byte; fault clear ended a trickle after $ms ms)"

# path match and fraction
cli fault add --path /keys/k1/ --count 1 --status 500 > /dev/null
req GET "$KID?api-version=7.4"; eq "$STATUS" 500 "path fault"
req GET "$KID?api-version=7.4"; eq "$STATUS" 200 "path fault used up"
cli fault add --op get --fraction 0.5 --status 502 > /dev/null
hits=0
for _ in $(seq 1 60); do
    req GET "$KID?api-version=7.4"
    if [ "$STATUS" = 502 ]; then hits=$((hits + 1)); fi
done
cli fault clear > /dev/null
[ "$hits" -ge 10 ] && [ "$hits" -le 50 ] || fail "fraction 0.5 hit $hits of 60"
ok "path + fraction ($hits/60)"

# token endpoint and IMDS faults
cli fault add --op token --count 1 --status 503 > /dev/null
st=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -d "client_id=$APPID" -d "client_secret=$SECRET" \
    --data-urlencode "scope=https://vault.azure.net/.default" -d grant_type=client_credentials "$AUTH/$TENANT/oauth2/v2.0/token")
eq "$st" 503 "token fault"
[ "$(jb .error)" != null ] || fail "token fault body shape"
token_secret "$APPID" "$SECRET" > /dev/null
cli identity create --name mi > /dev/null
cli fault add --op imds --count 1 --status 500 > /dev/null
st=$(curl -s -o "$BODY" -w '%{http_code}' -H 'Metadata: true' "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net")
eq "$st" 500 "imds fault"
st=$(curl -s -o "$BODY" -w '%{http_code}' -H 'Metadata: true' "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net")
eq "$st" 200 "imds after fault"
ok "token + imds faults"

# bad fault commands
for args in "add" "add --op nosuchop --status 500" "add --op get" "add --op get --status 99" \
    "add --op get --malformed nope" "add --status 500" "bogus" \
    "add --op get --trickle-ms 0" "add --op get --trickle-ms 60001" "add --op get --hang --trickle-ms 5"; do
    # shellcheck disable=SC2086
    if cli fault $args 2> /dev/null; then fail "fault $args accepted"; fi
done
ok "fault argument checks"

# shutdown with a hung and a trickling connection is clean
cli fault add --op get --hang > /dev/null
cli fault add --op unwrapkey --trickle-ms 5000 > /dev/null
curl -s -o /dev/null --max-time 30 --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$KID?api-version=7.4" &
CURL_PID=$!
curl -s -o /dev/null --max-time 30 --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$UNWRAP_BODY" "$KID/unwrapkey?api-version=7.4" &
CURL2_PID=$!
sleep 0.5
t0=$(date +%s)
stop_emu
wait "$CURL_PID" || true
wait "$CURL2_PID" || true
[ $(( $(date +%s) - t0 )) -lt 10 ] || fail "shutdown waited for the hung or trickling client"
ok "clean shutdown with a hung and a trickling connection"

# One pool thread per listener: a trickle must give its thread back as soon
# as the client goes away, not after its next 3 s byte.
start_emu --threads 1
TOKEN=$(token_secret "$APPID" "$SECRET")
cli fault add --op get --count 1 --trickle-ms 3000 > /dev/null
rc=0; curl -s -o /dev/null --max-time 1 --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$KID?api-version=7.4" || rc=$?
eq "$rc" 28 "slow trickle cut by the client"
t0=$(date +%s%N); req GET "$KID?api-version=7.4"; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
eq "$STATUS" 200 "next GET on the single pool thread"
[ "$ms" -lt 1500 ] || fail "pool thread still trickling to a closed connection ($ms ms)"
ok "trickle stops when the client closes (next answer in $ms ms)"

# A delay must not hold the pool thread: 8 concurrent requests delayed
# 300 ms each on ONE pool thread finish together (about 300 ms plus the
# handshakes), not one after the other (2.4 s).
cli fault add --op get --count 8 --delay-ms 300 > /dev/null
t0=$(date +%s%N)
pids=()
for i in 1 2 3 4 5 6 7 8; do
    curl -s -o "$WORK/d$i.out" -w '%{http_code}' --max-time 10 --cacert "$CA" \
        -H "Authorization: Bearer $TOKEN" "$KID?api-version=7.4" > "$WORK/d$i.code" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
for i in 1 2 3 4 5 6 7 8; do eq "$(cat "$WORK/d$i.code")" 200 "delayed GET $i"; done
[ "$ms" -ge 300 ] || fail "8 delayed requests in $ms ms: the delay was not applied"
[ "$ms" -lt 1800 ] || fail "8 requests delayed 300 ms on one pool thread took $ms ms (delays served one after the other)"
ok "8 concurrent 300 ms delays on one pool thread in $ms ms"

# Shutdown with answers still parked (delayed and hung): libmicrohttpd
# aborts when MHD_stop_daemon finds a suspended connection, so the
# emulator must resume them all and exit 0 (it exited 134 before).
cli fault add --op get --count 40 --delay-ms 5000 > /dev/null
cli fault add --op wrapkey --count 2 --hang > /dev/null
for i in $(seq 40); do
    curl -s -o /dev/null --max-time 10 --cacert "$CA" \
        -H "Authorization: Bearer $TOKEN" "$KID?api-version=7.4" &
done
for i in 1 2; do
    curl -s -o /dev/null --max-time 10 --cacert "$CA" -X POST \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"alg":"RSA-OAEP","value":"AAAA"}' "$KID/wrapkey?api-version=7.4" &
done
sleep 0.5
stop_emu
wait || true
ok "stopped with parked connections: exit 0"
echo PASS
