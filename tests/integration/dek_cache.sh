#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# How long revocation takes to bite on a token object: with dek_cache_ttl_s
# = 0 (the default) at once; with a TTL of T seconds, at most T seconds.
# Usage: dek_cache.sh none|ttl
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
need pkcs11-tool
t_begin
CASE=${1:?case}
TTL=0; [ "$CASE" = ttl ] && TTL=3
emu_write_config "$AKV_PKCS11_CONFIG" "{\"dek_cache_ttl_s\":$TTL,\"key_refresh_s\":3600}"
expect_ok "token object created" p11 --keygen --key-type AES:32 --label dek --id 0c
coproc CL { "$AKV_P11CLIENT" "$AKV_MODULE" repl - 2>&1; }
CLPID=$CL_PID
exec {CL_IN}>&"${CL[1]}" {CL_OUT}<&"${CL[0]}"
ask() { local r=""; echo "$*" >&"$CL_IN"; read -r -t 60 r <&"$CL_OUT" || r="(no answer)"; printf '%s' "$r"; }
emu_cli stats --reset >/dev/null
expect_eq "encrypt with the token object" "$(ask encrypt 0c)" ok
# 2: the store secret (once per process, when the store is first listed,
# docs/STORE.md "Authentication") and the record key of the value.
expect_eq "one unwrapkey for the store secret, one for the value" "$(emu_cli stats | jq -r '.unwrapkey // 0')" 2
emu_cli keyvault delete-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" >/dev/null
t0=$(date +%s%N)
if [ "$TTL" = 0 ]; then
    expect_eq "no cache: revocation bites at once" "$(ask encrypt 0c)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
else
    expect_eq "within the TTL the cached value still serves" "$(ask encrypt 0c)" ok
    expect_eq "served from the cache (no new unwrapkey)" "$(emu_cli stats | jq -r '.unwrapkey // 0')" 2
    # Wait until TTL seconds after the value was cached (<= t0) have passed.
    while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt $(( TTL * 1000 + 300 )) ]; do sleep 0.2; done
    expect_eq "after the TTL revocation bites" "$(ask encrypt 0c)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
fi
emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" --key-permissions get wrapKey unwrapKey >/dev/null
expect_eq "restored: works again in the same session" "$(ask encrypt 0c)" ok
echo quit >&"$CL_IN"
wait "$CLPID" && rc=0 || rc=$?
expect_eq "client exited cleanly" "$rc" 0
t_finish
