#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Token objects live wrapped in store_dir: separate processes share them,
# revoking the vault key locks them, restoring unlocks them, nothing lost.
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
t_begin
IV=0f0e0d0c0b0a09080706050403020100
emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1}'
head -c 4096 /dev/urandom >"$T_TMP/plain"
expect_ok "keygen token object (process 1)" p11 --keygen --key-type AES:32 --label dek --id 0a
p11 -O >"$T_TMP/O" 2>&1 || true
expect_grep "listed by another process" "Secret Key Object; AES length 32" "$T_TMP/O"
expect_grep "its label" "label: *dek" "$T_TMP/O"
expect_ok "encrypt (process 3)" p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id 0a -i "$T_TMP/plain" -o "$T_TMP/ct"
f=$(find "$STORE_DIR" -name '*.obj' -print -quit)
expect_eq "store file mode" "$(stat -c %a "$f")" 600
expect_eq "store dir mode" "$(stat -c %a "$STORE_DIR")" 700
grep -q "$KEY_VERSION" "$f" && pass "record names the wrapping key version" || fail "record lacks kid version"

emu_cli keyvault delete-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" >/dev/null
expect_fail "revoked: decrypt with the stored key fails" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 0a -i "$T_TMP/ct" -o "$T_TMP/x"
emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" --key-permissions get wrapKey unwrapKey >/dev/null
expect_ok "restored: decrypt works again" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 0a -i "$T_TMP/ct" -o "$T_TMP/back"
expect_ok "nothing lost" cmp "$T_TMP/plain" "$T_TMP/back"
expect_ok "delete the token object" p11 --delete-object --type secrkey --id 0a
expect_eq "store empty after delete" "$(find "$STORE_DIR" -name '*.obj' | wc -l)" 0
t_finish
