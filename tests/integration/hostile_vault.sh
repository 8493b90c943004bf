#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A hostile vault (or network path to it), issue 7 §3: the emulator rewrites
# its own answers (fault --malformed jwk-*/kid-*) and the module must refuse
# them, with one clear log line, instead of trusting them.
# Usage: hostile_vault.sh jwk-e1|jwk-n8|kid-host-get|kid-host-wrap|kid-newline|wrap-length|sign-flip|sign-flip
#   jwk-e1        GET answers e = 1 ("wrap": "local" would put the data key
#                 in clear into the wrapped blob): no key, no wrap
#   jwk-n8        GET answers an 8-bit modulus: no key
#   kid-host-get  GET answers a kid of https://evil.example: no key
#   kid-host-wrap wrapKey answers a kid of https://evil.example: the wrap
#                 fails (the token would unwrap with that kid later)
#   kid-newline   wrapKey answers a kid with a newline and a forged log
#                 line: refused, and the log has the kid escaped, no
#                 forged line
#   sign-flip     sign answers a signature of the right length with one
#                 bit changed (RSA and ECDSA P-256): C_Sign refuses it
#                 (CKR_DEVICE_ERROR) instead of handing it over
#   wrap-length   wrapKey answers one byte short: refused (a blob of the
#                 wrong length is not a wrapped key; handing it over would
#                 lose the data key)
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
CASE=${1:?case}
t_begin
LOG="$T_TMP/module.log"
WRAP=local
case "$CASE" in kid-host-wrap|kid-newline|wrap-length) WRAP=remote ;; esac
emu_write_config "$AKV_PKCS11_CONFIG" "{\"wrap\":\"$WRAP\",\"key_refresh_s\":0}"
emu_cli fault clear >/dev/null

wrap() { withmod "$AKV_P11CLIENT" "$AKV_MODULE" wrap-file cmk "$T_TMP/w" sha256 2>&1; }

# The same steps work against the honest vault.
out=$(wrap) || true
expect_ok "baseline: wrap works ($WRAP)" grep -Eq '^[0-9a-f]{32} [0-9a-f]{64}$' <<<"$out"
: >"$LOG"

case "$CASE" in
jwk-e1|jwk-n8|kid-host-get)
    kind=${CASE%-get}
    emu_cli fault add --op get --count 1000 --malformed "$kind" >/dev/null
    rm -f "$T_TMP/w"
    out=$(wrap) || true
    case "$out" in
    FAIL:*|"RV "*) pass "the tampered key is not used: $out" ;;
    *) fail "wrap with the tampered key succeeded: $out" ;;
    esac
    expect_fail "nothing was wrapped" test -s "$T_TMP/w"
    case "$CASE" in
    jwk-e1) expect_grep "the log names the exponent" "public key is refused: RSA public exponent 1 " "$LOG" ;;
    jwk-n8) expect_grep "the log names the modulus size" "public key is refused: RSA modulus of 8 bits" "$LOG" ;;
    kid-host-get) expect_grep "the log names the foreign kid" "kid \"https://evil.example/keys/cmk/[0-9a-f]{32}\" names another vault" "$LOG" ;;
    esac
    ;;
kid-host-wrap)
    emu_cli fault add --op wrapkey --count 1000 --malformed kid-host >/dev/null
    out=$(wrap) || true
    expect_eq "wrap answered for another vault is refused" "$out" "RV CKR_DEVICE_ERROR"
    expect_grep "the log names the foreign kid" "op wrap[a-z]*: HTTP 200 but the answer's kid \"https://evil.example/keys/cmk/[0-9a-f]{32}\" names another vault" "$LOG"
    ;;
kid-newline)
    emu_cli fault add --op wrapkey --count 1000 --malformed kid-newline >/dev/null
    out=$(wrap) || true
    expect_eq "wrap answered with a newline in its kid is refused" "$out" "RV CKR_DEVICE_ERROR"
    expect_grep "the kid is in the log, escaped" '[0-9a-f]{32}\\x0a2026-01-01T00:00:00\.000Z akv-pkcs11\[1/1\] ERROR forged' "$LOG"
    expect_fail "no forged line in the log" grep -q '^2026-01-01T00:00:00.000Z akv-pkcs11\[1/1\] ERROR forged' "$LOG"
    ;;
sign-flip)
    need pkcs11-tool
    # Signing is opt-in; EC-HSM keys need a premium vault (as sign.sh ec).
    emu_cli keyvault create --name "$VAULT_NAME" --sku premium >/dev/null
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions get wrapKey unwrapKey sign >/dev/null
    ec=$(emu_cli keyvault key create --vault-name "$VAULT_NAME" --name ecp256 \
        --kty EC-HSM --curve P-256 | jq -r .key.kid)
    emu_write_config "$AKV_PKCS11_CONFIG" '{"wrap":"remote","keys":["cmk","ecp256"],"sign":true}'
    printf 'signed by a hostile vault\n' >"$T_TMP/msg"
    for k in "SHA256-RSA-PKCS:$(ver_id "$KEY_VERSION")" "ECDSA-SHA256:$(ver_id "${ec##*/}")"; do
        m=${k%%:*} id=${k#*:}
        expect_ok "$m: signs with the honest vault" p11 --sign -m "$m" --id "$id" \
            -i "$T_TMP/msg" -o "$T_TMP/sig"
        emu_cli fault add --op sign --count 1000 --malformed bit-flip >/dev/null
        rm -f "$T_TMP/sig"
        p11 --sign -m "$m" --id "$id" -i "$T_TMP/msg" -o "$T_TMP/sig" >"$T_TMP/s.out" 2>&1 || true
        expect_grep "$m: a flipped signature is refused" "CKR_DEVICE_ERROR" "$T_TMP/s.out"
        expect_fail "$m: no signature written" test -s "$T_TMP/sig"
        emu_cli fault clear >/dev/null
    done
    # pkcs11-tool tries C_Sign, then C_SignUpdate/C_SignFinal: two
    # refusals per mechanism, one line each.
    n=$(grep -c "Key Vault's signature does not verify with the key's public key" "$LOG" || true)
    expect_eq "one log line per refused signature" "$n" 4
    ;;
wrap-length)
    emu_cli fault add --op wrapkey --count 1000 --malformed wrong-length >/dev/null
    rm -f "$T_TMP/w"
    out=$(wrap) || true
    expect_eq "a wrap answer one byte short is refused" "$out" "RV CKR_DEVICE_ERROR"
    expect_fail "nothing was written" test -s "$T_TMP/w"
    expect_grep "the log names the lengths" "wrapKey answered 255 bytes, expected 256" "$LOG"
    ;;
*) fail "unknown case $CASE" ;;
esac

emu_cli fault clear >/dev/null
out=$(wrap) || true
expect_ok "works again once the vault answers honestly" grep -Eq '^[0-9a-f]{32} [0-9a-f]{64}$' <<<"$out"
t_finish
