#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# OpenSC pkcs11-tool against the module and a private emulator.
# Usage: pkcs11_tool.sh list|mechanisms|keygen-encrypt|wrap-unwrap|pubkey|selftest
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
t_begin
CASE=${1:?case}
ID=$(ver_id "$KEY_VERSION")
IV=000102030405060708090a0b0c0d0e0f

case "$CASE" in
list)
    p11 -L >"$T_TMP/L" 2>&1 || true
    expect_grep "token label listed" "token label *: *$TOKEN_LABEL" "$T_TMP/L"
    expect_grep "no login required" "token flags *:.*" "$T_TMP/L"
    if grep -q "login required" "$T_TMP/L"; then fail "login required flag set"; else pass "login not required"; fi
    p11 -O >"$T_TMP/O" 2>&1 || true
    expect_grep "private key listed" "Private Key Object; RSA" "$T_TMP/O"
    expect_grep "public key listed" "Public Key Object; RSA 2048 bits" "$T_TMP/O"
    expect_grep "label is the key name" "label: *$KEY_NAME" "$T_TMP/O"
    expect_grep "CKA_ID is the version" "ID: *$ID" "$T_TMP/O"
    ;;
mechanisms)
    p11 -M >"$T_TMP/M" 2>&1 || true
    for m in RSA-PKCS-OAEP RSA-PKCS AES-KEY-GEN AES-GCM AES-CBC-PAD AES-CBC AES-ECB; do
        expect_grep "mechanism $m" "^ *$m[ ,]" "$T_TMP/M"
    done
    ;;
keygen-encrypt)
    head -c 1000 /dev/urandom >"$T_TMP/plain"
    expect_ok "keygen AES-256 token object" p11 --keygen --key-type AES:32 --label dek1 --id 01 --extractable
    expect_ok "store holds one 0600 file" test "$(find "$STORE_DIR" -name '*.obj' -perm 0600 | wc -l)" = 1
    expect_ok "encrypt (run 1)" p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id 01 -i "$T_TMP/plain" -o "$T_TMP/ct"
    expect_ok "decrypt (run 2)" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 01 -i "$T_TMP/ct" -o "$T_TMP/back"
    expect_ok "round trip equal" cmp "$T_TMP/plain" "$T_TMP/back"
    expect_ok "ciphertext differs from plaintext" bash -c "! cmp -s '$T_TMP/plain' '$T_TMP/ct'"
    ;;
wrap-unwrap)
    head -c 333 /dev/urandom >"$T_TMP/plain"
    expect_ok "keygen" p11 --keygen --key-type AES:32 --label dek1 --id 01 --extractable
    expect_ok "encrypt" p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id 01 -i "$T_TMP/plain" -o "$T_TMP/ct"
    expect_ok "wrap RSA-PKCS" p11 --wrap -m RSA-PKCS --id "$ID" --application-id 01 -o "$T_TMP/wrapped"
    expect_eq "wrapped blob is 256 bytes" "$(stat -c %s "$T_TMP/wrapped" 2>/dev/null || echo 0)" 256
    expect_ok "unwrap RSA-PKCS" p11 --unwrap -m RSA-PKCS --id "$ID" -i "$T_TMP/wrapped" --key-type AES: --application-id 02 --application-label dek2
    expect_ok "decrypt with unwrapped key" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 02 -i "$T_TMP/ct" -o "$T_TMP/back"
    expect_ok "same plaintext" cmp "$T_TMP/plain" "$T_TMP/back"
    expect_fail "garbage blob does not unwrap" p11 --unwrap -m RSA-PKCS --id "$ID" -i "$T_TMP/plain" --key-type AES: --application-id 03
    ;;
pubkey)
    expect_ok "read public key" p11 --read-object --type pubkey --id "$ID" -o "$T_TMP/pub.der"
    got=$(openssl rsa -pubin -inform DER -in "$T_TMP/pub.der" -noout -modulus 2>/dev/null | cut -d= -f2)
    want=$(emu_cli keyvault key show --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq -r .key.n |
        tr '_-' '/+' | awk '{ l=length($0)%4; if (l==2) $0=$0"=="; else if (l==3) $0=$0"="; print }' |
        base64 -d | xxd -p -u | tr -d '\n')
    expect_eq "modulus matches the vault's n" "$got" "$want"
    ;;
selftest|selftest-sign)
    # selftest: the three-permission identity and the default configuration
    # (signing off), exactly as before signing existed. selftest-sign:
    # signing on (tokens[].sign) and the identity with keys/sign too.
    if [ "$CASE" = selftest-sign ]; then
        emu_write_config "$AKV_PKCS11_CONFIG" '{"sign":true}'
        emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
            --key-permissions get wrapKey unwrapKey sign >/dev/null
    fi
    p11 --test >"$T_TMP/t" 2>&1 && rc=0 || rc=$?
    cat "$T_TMP/t"
    expect_eq "pkcs11-tool --test exit status" "$rc" 0
    expect_grep "--test says: No errors" "^No errors" "$T_TMP/t"
    if grep -qE "ERR|failed|FAILED" "$T_TMP/t"; then fail "--test reported a failure"; else pass "--test clean"; fi
    expect_grep "OAEP with a label refused as unsupported" "Mechanism not supported" "$T_TMP/t"
    expect_grep "RSA-PKCS decrypt through the vault" "RSA-PKCS: OK" "$T_TMP/t"
    if [ "$CASE" = selftest-sign ]; then
        expect_eq "sign (vault) + verify (local): RSA-PKCS OK" \
            "$(sed -n '/^Verify/,/^Decryption/p' "$T_TMP/t" | grep -c 'RSA-PKCS: OK')" 1
    fi
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
