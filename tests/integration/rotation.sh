#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Rotation: old blobs unwrap with the old version (found by CKA_ID), new
# wraps use the new version, a handle stays bound to its version.
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
t_begin
c() { "$AKV_P11CLIENT" "$AKV_MODULE" "$@"; }
# Refresh the key after 1 s so the rotation is seen quickly.
emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1}'
read -r id1 val1 < <(c wrap-file "$KEY_NAME" "$T_TMP/w1" sha256)
expect_eq "first wrap uses version 1" "$id1" "$(ver_id "$KEY_VERSION")"
NEW=$(emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq -r .key.kid)
NEWV=${NEW##*/}
expect_ok "rotation made a new version" test "$NEWV" != "$KEY_VERSION"
sleep 1.2
read -r id2 val2 < <(c wrap-file "$KEY_NAME" "$T_TMP/w2" sha256)
expect_eq "new wrap uses the new version" "$id2" "$(ver_id "$NEWV")"
expect_eq "old blob unwraps with the old version" "$(c unwrap-file "$KEY_NAME" "$T_TMP/w1" "$id1" sha256)" "$val1"
expect_eq "new blob unwraps with the new version" "$(c unwrap-file "$KEY_NAME" "$T_TMP/w2" "$id2" sha256)" "$val2"
# A handle bound to the new version still unwraps the old blob: the vault
# refuses it under the new version and the token falls back to the old one
# (token/rotate.h); switched off, the vault's refusal is the answer.
expect_eq "old blob unwraps through the new version (rotation fallback)" "$(c unwrap-file "$KEY_NAME" "$T_TMP/w1" "$id2" sha256)" "$val1"
emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1,"rotation_fallback":0}'
expect_ok "fallback off: old blob does not unwrap with the new version" c expect-unwrap "$KEY_NAME" "$T_TMP/w1" "$id2" sha256 CKR_WRAPPED_KEY_INVALID
t_finish
