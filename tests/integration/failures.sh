#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Failures a network service can have, injected with the emulator's fault
# command; the module must retry what is retryable, give up within its
# budget, map errors, and recover in the same process once the fault is gone.
# Usage: failures.sh retry-429|retry-503|retry-500|no-retry-403|close|hang|trickle|
#        delay|malformed-truncated|malformed-base64|malformed-length|
#        token-expiry|revoke-tokens|token-endpoint-down|token-refresh-down|
#        challenge-401
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
CASE=${1:?case}
need jq
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/akv-it.XXXXXX"); export T_TMP
trap t_cleanup EXIT
case "$CASE" in
token-expiry) emu_start --token-lifetime 4 ;;
# refresh due at half the lifetime (10 s), usable until 2 s before expiry
token-refresh-down) emu_start --token-lifetime 20 ;;
*) emu_start ;;
esac
emu_setup_basic cmk
emu_cli fault clear >/dev/null
LOG="$T_TMP/module.log"
AKV_TEST_LOG_FILE=$LOG emu_write_config "$AKV_PKCS11_CONFIG" \
    '{"key_refresh_s":3600,"http":{"verify_challenge_resource":false,"timeout_ms":1500,"budget_ms":6000,"retries":4}}'

coproc CL { "$AKV_P11CLIENT" "$AKV_MODULE" repl - 2>&1; }
# bash unsets CL/CL_PID once the coprocess exits: keep copies.
CLPID=$CL_PID
exec {CL_IN}>&"${CL[1]}" {CL_OUT}<&"${CL[0]}"
ask() {
    local r=""
    echo "$*" >&"$CL_IN"
    read -r -t 60 r <&"$CL_OUT" || r="(no answer)"
    printf '%s' "$r"
}
count() { emu_cli stats | jq -r --arg op "$1" '.[$op] // 0'; }
read -r id val <<<"$(ask wrap cmk "$T_TMP/w" sha256)"
expect_eq "baseline unwrap" "$(ask unwrap cmk "$T_TMP/w" "$id" sha256)" "$val"
emu_cli stats --reset >/dev/null
unwrap() { ask unwrap cmk "$T_TMP/w" "$id" sha256; }

case "$CASE" in
retry-429)
    emu_cli fault add --op unwrapkey --count 2 --status 429 --retry-after 1 >/dev/null
    expect_eq "429 with Retry-After retried until success" "$(unwrap)" "$val"
    expect_eq "3 unwrapkey requests (2 throttled + 1)" "$(count unwrapkey)" 3
    ;;
retry-503|retry-500)
    emu_cli fault add --op unwrapkey --count 2 --status "${CASE#retry-}" >/dev/null
    expect_eq "${CASE#retry-} retried with backoff until success" "$(unwrap)" "$val"
    expect_eq "3 unwrapkey requests" "$(count unwrapkey)" 3
    ;;
no-retry-403)
    emu_cli fault add --op unwrapkey --count 1 --status 403 >/dev/null
    expect_eq "403 is not retried" "$(unwrap)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    expect_eq "exactly 1 unwrapkey request" "$(count unwrapkey)" 1
    expect_eq "next call works" "$(unwrap)" "$val"
    ;;
close)
    emu_cli fault add --op unwrapkey --count 1 --close >/dev/null
    expect_eq "connection closed mid-response: retried" "$(unwrap)" "$val"
    expect_eq "2 unwrapkey requests" "$(count unwrapkey)" 2
    ;;
delay)
    emu_cli fault add --op unwrapkey --count 1 --delay-ms 700 >/dev/null
    expect_eq "a slow answer within the timeout is fine" "$(unwrap)" "$val"
    expect_eq "1 unwrapkey request" "$(count unwrapkey)" 1
    ;;
hang)
    emu_cli fault add --op unwrapkey --count 1000 --hang >/dev/null
    t0=$(date +%s%N)
    expect_eq "a silent server is a device error" "$(unwrap)" "RV CKR_DEVICE_ERROR"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "gave up after ${ms} ms (budget_ms 6000)"
    expect_ok "the call did not outlive its budget (+1 s slack)" test "$ms" -le 7000
    emu_cli fault clear >/dev/null
    expect_eq "works again once the server answers" "$(unwrap)" "$val"
    ;;
trickle)
    # A server that answers one byte at a time: the per-attempt timeout and
    # the budget cut it, whatever the trickle rate.
    emu_cli fault add --op unwrapkey --count 1000 --trickle-ms 300 >/dev/null
    t0=$(date +%s%N)
    expect_eq "a trickling answer is a device error" "$(unwrap)" "RV CKR_DEVICE_ERROR"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "gave up after ${ms} ms (timeout_ms 1500, budget_ms 6000)"
    expect_ok "the call did not outlive its budget (+1 s slack)" test "$ms" -le 7000
    emu_cli fault clear >/dev/null
    expect_eq "works again once the server answers normally" "$(unwrap)" "$val"
    ;;
malformed-truncated|malformed-base64|malformed-length)
    kind=${CASE#malformed-}; [ "$kind" = base64 ] && kind=bad-base64; [ "$kind" = length ] && kind=wrong-length
    emu_cli fault add --op unwrapkey --count 1 --malformed "$kind" >/dev/null
    r=$(unwrap)
    case "$r" in "RV CKR_DEVICE_ERROR"|"RV CKR_WRAPPED_KEY_INVALID"|"RV CKR_GENERAL_ERROR") pass "malformed ($kind) answer is an error: $r" ;;
        *) fail "malformed ($kind) answer gave: $r" ;; esac
    expect_eq "next call works" "$(unwrap)" "$val"
    ;;
token-expiry)
    emu_cli stats --reset >/dev/null
    expect_eq "unwrap with the first token" "$(unwrap)" "$val"
    sleep 5
    expect_eq "token expired meanwhile: refreshed, call goes on" "$(unwrap)" "$val"
    expect_ok "a second token was fetched" test "$(count token)" -ge 1
    ;;
revoke-tokens)
    emu_cli identity revoke-tokens --object-id "$SP_OBJ_ID" >/dev/null 2>&1 ||
        emu_cli identity revoke-tokens --name akv-test-app >/dev/null
    expect_eq "401 -> one refresh -> one retry -> success" "$(unwrap)" "$val"
    expect_eq "one new token" "$(count token)" 1
    expect_eq "two unwrapkey requests (401 + retry)" "$(count unwrapkey)" 2
    ;;
token-endpoint-down)
    emu_cli identity revoke-tokens --object-id "$SP_OBJ_ID" >/dev/null 2>&1 ||
        emu_cli identity revoke-tokens --name akv-test-app >/dev/null
    emu_cli fault add --op token --count 100000 --status 503 >/dev/null
    expect_eq "no token: clear device error" "$(unwrap)" "RV CKR_DEVICE_ERROR"
    expect_grep "the log says the token endpoint failed" "token|credential|Entra|oauth2" "$LOG"
    emu_cli fault clear >/dev/null
    expect_eq "clears itself once the endpoint is back" "$(unwrap)" "$val"
    ;;
token-refresh-down)
    # Issue 8: the token is due for refresh but still valid and the identity
    # endpoint answers 503: the call goes on with the valid token.
    sleep 10.5
    emu_cli fault add --op token --count 100000 --status 503 >/dev/null
    expect_eq "refresh fails, valid token used" "$(unwrap)" "$val"
    expect_ok "the refresh was tried" test "$(count token)" -ge 1
    expect_eq "the vault was asked" "$(count unwrapkey)" 1
    expect_grep "the failed refresh is logged" "using the cached token" "$LOG"
    emu_cli fault clear >/dev/null
    ;;
challenge-401)
    emu_cli fault add --op unwrapkey --count 1 --status 401 >/dev/null
    expect_eq "a 401 triggers one refresh and one retry" "$(unwrap)" "$val"
    expect_eq "two unwrapkey requests" "$(count unwrapkey)" 2
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
echo quit >&"$CL_IN"
wait "$CLPID" && rc=0 || rc=$?
expect_eq "client exited cleanly" "$rc" 0
t_finish
