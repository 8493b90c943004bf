#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# C_GenerateKeyPair and C_DestroyObject of vault keys (issue 10, README
# "Creating keys"), through pkcs11-tool and PyKCS11 against the emulator;
# every key is checked in the emulator and every signature by openssl.
# Usage: keygen.sh vault-rsa|vault-ec|session|forbidden|delete
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool p11tool python3 xxd
t_begin
CASE=${1:?case}
LOG="$T_TMP/module.log"

grant() {
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions "$@" >/dev/null
}

# vault_key NAME - the emulator's KeyBundle of NAME (its CLI, not the module).
vault_key() { emu_cli keyvault key show --vault-name "$VAULT_NAME" --name "$1" 2>/dev/null; }

# gen_and_sign TYPE NAME MECH HASH - pkcs11-tool --keypairgen creates vault key
# NAME; a second pkcs11-tool run (another process) signs with it by label;
# openssl verifies with the public key that a third run exports.
gen_and_sign() {
    local type=$1 name=$2 mech=$3 hash=$4
    p11 --login --pin 1 --keypairgen --key-type "$type" --label "$name" \
        >"$T_TMP/gen.$name" 2>&1 || true
    expect_grep "$type: pkcs11-tool --keypairgen --label $name" "^Key pair generated" \
        "$T_TMP/gen.$name"
    # pkcs11-tool prints both new objects through the returned handles.
    expect_eq "$type: the returned handles name the new key's two objects" \
        "$(grep -cE "^ +label: +$name\$" "$T_TMP/gen.$name")" 2
    printf 'signed with a key made by the token %s\n' "$RANDOM" >"$T_TMP/msg"
    # pkcs11-tool --sign picks its key by CKA_ID: the new key's version.
    local id
    id=$(vault_key "$name" | jq -r .key.kid); id=${id##*/}
    expect_ok "$type: pkcs11-tool --sign with it (new process)" p11 --sign -m "$mech" \
        --id "$id" -i "$T_TMP/msg" -o "$T_TMP/sig.$name"
    if [ "${type%%:*}" = EC ]; then
        # pkcs11-tool 0.23 cannot build a P-384 key from CKA_EC_POINT:
        # p11tool exports CKA_PUBLIC_KEY_INFO (as sign.sh does).
        withmod timeout 60 p11tool --provider "$AKV_MODULE" --export-pubkey \
            "pkcs11:token=$TOKEN_LABEL;object=$name;type=public" >"$T_TMP/$name.pem" \
            2>/dev/null </dev/null || true
    else
        p11 --read-object --type pubkey --id "$id" -o "$T_TMP/$name.der" >/dev/null 2>&1 || true
        openssl pkey -pubin -inform DER -in "$T_TMP/$name.der" -out "$T_TMP/$name.pem" \
            2>/dev/null || true
    fi
    if [ "${type%%:*}" = EC ]; then
        # PKCS#11 ECDSA is r||s; openssl wants DER.
        python3 - "$T_TMP/sig.$name" "$T_TMP/sig.$name.der" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
h = len(raw) // 2
def i(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = i(raw[:h]) + i(raw[h:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
    else
        cp "$T_TMP/sig.$name" "$T_TMP/sig.$name.der"
    fi
    expect_ok "$type: openssl verifies the vault signature" openssl dgst "-$hash" \
        -verify "$T_TMP/$name.pem" -signature "$T_TMP/sig.$name.der" "$T_TMP/msg"
}

case "$CASE" in
vault-rsa)
    grant get wrapKey unwrapKey sign create
    emu_write_config "$AKV_PKCS11_CONFIG" '{"sign":true,"allow_create":true}'
    gen_and_sign rsa:2048 NEWKEY SHA256-RSA-PKCS sha256
    k=$(vault_key NEWKEY)
    expect_eq "the vault holds NEWKEY as RSA" "$(jq -r .key.kty <<<"$k")" RSA
    expect_eq "of 2048 bits" "$(jq -r '.key.n' <<<"$k" | tr '_-' '/+' \
        | base64 -d 2>/dev/null | wc -c)" 256
    expect_eq "with e = 65537" "$(jq -r .key.e <<<"$k")" AQAB
    expect_eq "key_ops from the template (sign, verify, decrypt, encrypt)" \
        "$(jq -c '.key.key_ops | sort' <<<"$k")" '["decrypt","encrypt","sign","verify"]'
    # The objects of the created key are the vault's: CKA_ID is its version.
    ver=$(jq -r .key.kid <<<"$k"); ver=${ver##*/}
    p11 --list-objects --type privkey >"$T_TMP/objs" 2>&1 || true
    expect_grep "its private key shows with CKA_ID = the version" "ID: *$ver" "$T_TMP/objs"
    # HSM through the vendor attribute's configuration default.
    emu_write_config "$AKV_PKCS11_CONFIG" '{"sign":true,"allow_create":true,"create_hsm":true}'
    p11 --login --pin 1 --keypairgen --key-type rsa:3072 --label HSMKEY >"$T_TMP/gen.out" 2>&1 || true
    # The test vault is a standard one: Key Vault refuses -HSM key types
    # there (403), which shows the module asked for RSA-HSM.
    expect_grep "create_hsm: the module asks for RSA-HSM (a standard vault refuses it)" \
        "key HSMKEY op create: HTTP 403.*Hardware key" "$LOG"
    expect_fail "create_hsm: nothing created in the standard vault" vault_key HSMKEY
    # An existing name is never given a new version.
    p11 --login --pin 1 --keypairgen --key-type rsa:2048 --label "$KEY_NAME" \
        >"$T_TMP/dup.out" 2>&1 || true
    expect_grep "an existing key name is refused" "CKR_ATTRIBUTE_VALUE_INVALID" "$T_TMP/dup.out"
    expect_eq "and the configured key keeps one version" \
        "$(emu_cli keyvault key list-versions --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq length)" 1
    # Sizes the mechanism table does not offer.
    p11 --login --pin 1 --keypairgen --key-type rsa:1024 --label SMALL >"$T_TMP/small.out" 2>&1 || true
    expect_grep "rsa:1024 is refused" "CKR_ATTRIBUTE_VALUE_INVALID" "$T_TMP/small.out"
    expect_fail "and not created" vault_key SMALL
    ;;
vault-ec)
    grant get wrapKey unwrapKey sign create
    emu_write_config "$AKV_PKCS11_CONFIG" '{"sign":true,"allow_create":true}'
    gen_and_sign EC:prime256v1 ECKEY ECDSA-SHA256 sha256
    expect_grep "pkcs11-tool's CKA_DERIVE TRUE is said to be ignored" \
        "CKA_DERIVE TRUE ignored" "$LOG"
    k=$(vault_key ECKEY)
    expect_eq "the vault holds ECKEY as EC" "$(jq -r .key.kty <<<"$k")" EC
    expect_eq "on P-256" "$(jq -r .key.crv <<<"$k")" P-256
    expect_eq "key_ops sign, verify" "$(jq -c '.key.key_ops | sort' <<<"$k")" '["sign","verify"]'
    gen_and_sign EC:secp384r1 EC384 ECDSA-SHA384 sha384
    expect_eq "P-384" "$(vault_key EC384 | jq -r .key.crv)" P-384
    # secp256k1 = Key Vault P-256K (GnuTLS cannot export it: signed only).
    expect_ok "EC:secp256k1: pkcs11-tool --keypairgen" p11 --login --pin 1 --keypairgen \
        --key-type EC:secp256k1 --label ECK1
    expect_eq "P-256K" "$(vault_key ECK1 | jq -r .key.crv)" P-256K
    id=$(vault_key ECK1 | jq -r .key.kid); id=${id##*/}
    expect_ok "P-256K: signs (ES256K)" p11 --sign -m ECDSA-SHA256 --id "$id" -i "$T_TMP/msg" \
        -o "$T_TMP/sig.k1"
    expect_eq "P-256K: r||s is 64 bytes" "$(stat -c %s "$T_TMP/sig.k1" 2>/dev/null)" 64
    p11 --login --pin 1 --keypairgen --key-type EC:secp224r1 --label EC224 >"$T_TMP/c.out" 2>&1 || true
    # pkcs11-tool prints it as "unknown PKCS11 error (0x140)".
    expect_grep "secp224r1: CKR_CURVE_NOT_SUPPORTED" "(0x140)" "$T_TMP/c.out"
    ;;
session)
    # Debian's python3-pykcs11 (scripts/lib/deps.sh) lives in /usr/bin/python3.
    PY=/usr/bin/python3
    "$PY" -c 'import PyKCS11' 2>/dev/null || { echo "SKIP: no PyKCS11"; exit 77; }
    for kind in rsa ec; do
        withmod "$PY" "$(dirname "$0")/keygen/session_pair.py" "$AKV_MODULE" "$TOKEN_LABEL" \
            "$kind" >"$T_TMP/$kind.out" 2>&1 || true
        cat "$T_TMP/$kind.out"
        expect_grep "$kind: a session key pair was generated" "^ok generated" "$T_TMP/$kind.out"
        expect_eq "$kind: every check passed" "$(grep -c '^FAIL' "$T_TMP/$kind.out")" 0
        expect_eq "$kind: 6+ checks ran" "$(grep -c '^ok' "$T_TMP/$kind.out" | awk '{print ($1>=6)}')" 1
        sed -n 's/^spki //p' "$T_TMP/$kind.out" | xxd -r -p >"$T_TMP/$kind.spki"
        openssl pkey -pubin -inform DER -in "$T_TMP/$kind.spki" -out "$T_TMP/$kind.pem" 2>/dev/null
        sed -n 's/^sig //p' "$T_TMP/$kind.out" | xxd -r -p >"$T_TMP/$kind.sig"
        printf 'signed by a session key pair' >"$T_TMP/data"
        if [ "$kind" = ec ]; then
            python3 -c '
import sys
raw = open(sys.argv[1], "rb").read(); h = len(raw) // 2
def i(b):
    b = b.lstrip(b"\0") or b"\0"
    return b"\x02" + bytes([len(b) + (b[0] >> 7)]) + (b"\0" if b[0] & 0x80 else b"") + b
body = i(raw[:h]) + i(raw[h:])
open(sys.argv[1], "wb").write(b"\x30" + bytes([len(body)]) + body)' "$T_TMP/$kind.sig"
        fi
        expect_ok "$kind: openssl verifies the session key's signature" openssl dgst -sha256 \
            -verify "$T_TMP/$kind.pem" -signature "$T_TMP/$kind.sig" "$T_TMP/data"
    done
    expect_eq "no vault call created anything" \
        "$(emu_cli keyvault key list --vault-name "$VAULT_NAME" | jq length)" 1
    ;;
forbidden)
    # allow_create off (the default): refused before any vault call.
    p11 --login --pin 1 --keypairgen --key-type rsa:2048 --label OFFKEY >"$T_TMP/off.out" 2>&1 || true
    expect_grep "allow_create unset: CKR_TEMPLATE_INCONSISTENT" "CKR_TEMPLATE_INCONSISTENT" "$T_TMP/off.out"
    expect_grep "allow_create unset: the log says what to set" "set tokens\[\].allow_create" "$LOG"
    expect_fail "allow_create unset: nothing created" vault_key OFFKEY
    # allowed by the configuration, but the identity has no keys/create.
    emu_write_config "$AKV_PKCS11_CONFIG" '{"allow_create":true}'
    : >"$LOG"
    p11 --login --pin 1 --keypairgen --key-type rsa:2048 --label NOCREATE >"$T_TMP/403.out" 2>&1 || true
    expect_grep "no keys/create: CKR_KEY_FUNCTION_NOT_PERMITTED" \
        "CKR_KEY_FUNCTION_NOT_PERMITTED" "$T_TMP/403.out"
    expect_eq "no keys/create: one log line names the key, the operation and 403" \
        "$(grep -c 'key NOCREATE op create: HTTP 403' "$LOG")" 1
    expect_eq "no keys/create: and no other error line about it (the GET's 404 is expected)" \
        "$(grep 'ERROR' "$LOG" | grep -c 'NOCREATE')" 1
    expect_fail "no keys/create: nothing created" vault_key NOCREATE
    ;;
delete)
    grant get wrapKey unwrapKey sign create delete
    emu_write_config "$AKV_PKCS11_CONFIG" '{"allow_create":true}'
    expect_ok "create DELME" p11 --login --pin 1 --keypairgen --key-type rsa:2048 --label DELME
    p11 --login --pin 1 --delete-object --type privkey --label DELME >"$T_TMP/d1.out" 2>&1 || true
    # pkcs11-tool prints CKR_ACTION_PROHIBITED as "unknown PKCS11 error (0x1b)".
    expect_grep "allow_delete unset: CKR_ACTION_PROHIBITED" "(0x1b)" "$T_TMP/d1.out"
    expect_eq "allow_delete unset: the key is still there" "$(vault_key DELME | jq -r .key.kty)" RSA
    emu_write_config "$AKV_PKCS11_CONFIG" '{"allow_create":true,"allow_delete":true}'
    # allowed by the configuration, but the identity has no keys/delete.
    grant get wrapKey unwrapKey sign create
    : >"$LOG"
    p11 --login --pin 1 --delete-object --type privkey --label DELME >"$T_TMP/d2.out" 2>&1 || true
    expect_grep "no keys/delete: CKR_ACTION_PROHIBITED" "(0x1b)" "$T_TMP/d2.out"
    expect_eq "no keys/delete: one log line with the vault's 403" \
        "$(grep -c 'key DELME op delete: HTTP 403' "$LOG")" 1
    expect_eq "no keys/delete: the key is still there" "$(vault_key DELME | jq -r .key.kty)" RSA
    grant get wrapKey unwrapKey sign create delete
    expect_ok "allow_delete: pkcs11-tool --delete-object" p11 --login --pin 1 \
        --delete-object --type privkey --label DELME
    expect_ok "the key shows as deleted in the emulator" emu_cli keyvault key show-deleted \
        --vault-name "$VAULT_NAME" --name DELME
    expect_fail "and is no longer a live key" vault_key DELME
    p11 --list-objects >"$T_TMP/after" 2>&1 || true
    expect_eq "its objects are gone in a new process" "$(grep -c 'label: *DELME' "$T_TMP/after")" 0
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
t_finish
