#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Revocation and restore, in ONE process and ONE session (p11client repl):
# policy removal, a disabled key, a deleted key each block unwrap with the
# mapped CKR and a log line naming key, operation, status and code;
# restoring access makes the same call work again without C_Finalize.
# Usage: revocation.sh policy|disable|delete|expired|not-yet-valid
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
t_begin
CASE=${1:?case}
LOG="$T_TMP/module.log"
AKV_TEST_LOG_FILE=$LOG emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1}'

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
read -r id val <<<"$(ask wrap "$KEY_NAME" "$T_TMP/w" sha256)"
expect_eq "wrapped under the current version" "$id" "$(ver_id "$KEY_VERSION")"
expect_eq "unwraps before revocation" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"
case "$CASE" in
policy)
    emu_cli keyvault delete-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" >/dev/null
    expect_eq "policy removed: unwrap refused" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    expect_grep "log names key, op, status, code" "$KEY_NAME.*unwrapkey.*403.*Forbidden" "$LOG"
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" --key-permissions get wrapKey unwrapKey >/dev/null
    ;;
disable)
    emu_cli keyvault key set-attributes --vault-name "$VAULT_NAME" --name "$KEY_NAME" --enabled false >/dev/null
    expect_eq "disabled key: unwrap refused" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    expect_grep "log names key, op, 403 and KeyDisabled" "$KEY_NAME.*unwrapkey.*403.*KeyDisabled" "$LOG"
    emu_cli keyvault key set-attributes --vault-name "$VAULT_NAME" --name "$KEY_NAME" --enabled true >/dev/null
    ;;
delete)
    emu_cli keyvault key delete --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
    # 404 KeyNotFound: either the key refresh at C_FindObjects sees it first
    # (the version's objects are gone: CKR_KEY_HANDLE_INVALID), or
    # C_UnwrapKey does (the unwrapping key is gone:
    # CKR_UNWRAPPING_KEY_HANDLE_INVALID, PKCS#11 v3.0's code for that).
    r=$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)
    case "$r" in
    "RV CKR_KEY_HANDLE_INVALID"*|"RV CKR_UNWRAPPING_KEY_HANDLE_INVALID") pass "deleted key: unwrap refused ($r)" ;;
    *) fail "deleted key: unwrap gave '$r'" ;;
    esac
    expect_grep "log names key, op, 404 and KeyNotFound" "$KEY_NAME.*(unwrapkey|get).*404.*KeyNotFound" "$LOG"
    emu_cli keyvault key recover --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
    ;;
expired|not-yet-valid)
    # Outside nbf/exp the service refuses wrapKey (new data) but still
    # serves unwrapKey (old data stays readable), and so must the module.
    if [ "$CASE" = expired ]; then opt=(--expires "$(( $(date +%s) - 60 ))"); else opt=(--not-before "$(( $(date +%s) + 3600 ))"); fi
    emu_cli keyvault key set-attributes --vault-name "$VAULT_NAME" --name "$KEY_NAME" "${opt[@]}" >/dev/null
    r=$(ask wrap "$KEY_NAME" "$T_TMP/w2" sha256)
    expect_eq "$CASE: wrap refused" "$r" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    expect_grep "log names key, op, 403 and the reason" "$KEY_NAME.*wrapkey.*403.*(KeyExpired|KeyNotYetValid|Forbidden)" "$LOG"
    expect_eq "$CASE: old data still unwraps" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"
    if [ "$CASE" = expired ]; then opt=(--expires "$(( $(date +%s) + 86400 ))"); else opt=(--not-before "$(( $(date +%s) - 60 ))"); fi
    emu_cli keyvault key set-attributes --vault-name "$VAULT_NAME" --name "$KEY_NAME" "${opt[@]}" >/dev/null
    sleep 1.1
    read -r id2 _ <<<"$(ask wrap "$KEY_NAME" "$T_TMP/w2" sha256)"
    expect_eq "$CASE lifted: wrap works again" "$id2" "$id"
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
expect_eq "restored: the same session unwraps the same blob" "$(ask unwrap "$KEY_NAME" "$T_TMP/w" "$id" sha256)" "$val"
echo quit >&"$CL_IN"
wait "$CLPID" && rc=0 || rc=$?
expect_eq "client exited cleanly (no leak/sanitizer report)" "$rc" 0
if grep -Eq "eyJ[A-Za-z0-9_-]{10,}|Bearer [A-Za-z0-9]|$(cat "$SP_SECRET_FILE")" "$LOG"; then
    fail "log holds a token or the client secret"
else pass "log holds no token or secret"; fi
t_finish
