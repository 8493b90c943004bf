#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# akv-pkcs11-tool status: what works right now, per token, key and version.
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
: "${AKV_TOOL:?}"
t_begin
tool() { "$AKV_TOOL" "$@" --config "$AKV_PKCS11_CONFIG"; }
expect_ok "keygen token object" p11 --keygen --key-type AES:32 --label dek --id 01
tool status --json >"$T_TMP/s.json" && rc=0 || rc=$?
expect_eq "status exit 0 when everything works" "$rc" 0
expect_eq "overall ok" "$(jq -r .ok "$T_TMP/s.json")" true
expect_eq "token label" "$(jq -r '.tokens[0].label' "$T_TMP/s.json")" "$TOKEN_LABEL"
expect_eq "current version" "$(jq -r '.tokens[0].keys[0].version' "$T_TMP/s.json")" "$KEY_VERSION"
expect_eq "credential type" "$(jq -r '.tokens[0].credential.type' "$T_TMP/s.json")" client_secret
expect_eq "get/wrapKey/unwrapKey probes" "$(jq -r '.tokens[0].keys[0] | "\(.get) \(.wrapKey) \(.unwrapKey)"' "$T_TMP/s.json")" "true true true"
expect_eq "one object under the current version" "$(jq -r '.tokens[0].store.by_version[0] | "\(.version) \(.count)"' "$T_TMP/s.json")" "$KEY_VERSION 1"
tool status >"$T_TMP/s.txt" && pass "human-readable status" || fail "human-readable status"
expect_grep "human output names the key version" "$KEY_VERSION" "$T_TMP/s.txt"

emu_cli keyvault delete-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" >/dev/null
tool status --json >"$T_TMP/s2.json" && rc=0 || rc=$?
expect_ok "status fails when access is revoked (exit $rc)" test "$rc" -ne 0
expect_eq "overall not ok" "$(jq -r .ok "$T_TMP/s2.json")" false
expect_eq "the error names the refusal" "$(jq -r '.tokens[0].keys[0].error' "$T_TMP/s2.json")" CKR_KEY_FUNCTION_NOT_PERMITTED

emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" --key-permissions get wrapKey unwrapKey >/dev/null
NEWV=$(emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq -r .key.kid); NEWV=${NEWV##*/}
tool status --json >"$T_TMP/s3.json" || true
expect_eq "after rotation: current version is the new one" "$(jq -r '.tokens[0].keys[0].version' "$T_TMP/s3.json")" "$NEWV"
expect_eq "the object is still under the old version" "$(jq -r --arg v "$KEY_VERSION" '.tokens[0].store.by_version[] | select(.version == $v) | .count' "$T_TMP/s3.json")" 1
expect_ok "rewrap" tool rewrap
tool status --json >"$T_TMP/s4.json" || true
expect_eq "after rewrap: the object is under the new version" "$(jq -r --arg v "$NEWV" '.tokens[0].store.by_version[] | select(.version == $v) | .count' "$T_TMP/s4.json")" 1
expect_ok "the object still encrypts" p11 --encrypt -m AES-CBC-PAD --iv 000102030405060708090a0b0c0d0e0f --id 01 -i "$T_TMP/s.txt" -o "$T_TMP/ct"
"$AKV_TOOL" status --bogus >/dev/null 2>&1 && rc=0 || rc=$?
expect_eq "bad arguments exit 2" "$rc" 2
# A record that cannot be read may be a lost data key: status must say so.
head -c 100 /dev/urandom >"$STORE_DIR/0123456789abcdef0123456789abcdef.obj"
tool status --json >"$T_TMP/s5.json" 2>/dev/null && rc=0 || rc=$?
expect_ok "status fails on an unreadable record (exit $rc)" test "$rc" -ne 0
expect_eq "one unreadable record counted" "$(jq -r '.tokens[0].store.unreadable' "$T_TMP/s5.json")" 1
expect_ok "the good object still encrypts" p11 --encrypt -m AES-CBC-PAD --iv 000102030405060708090a0b0c0d0e0f --id 01 -i "$T_TMP/s.txt" -o "$T_TMP/ct2"
t_finish
