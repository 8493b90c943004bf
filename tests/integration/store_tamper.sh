#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# An attacker who can write store_dir (docs/STORE.md "Authentication"),
# against the module driven by pkcs11-tool:
#   legacy: a format-1 store keeps working, is adopted on first use and
#           moved to format 2 by rewrap; a legacy record edited after
#           adoption (CKA_SENSITIVE/EXTRACTABLE flipped, CRC recomputed) is
#           refused;
#   (a) flipped CKA_SENSITIVE/EXTRACTABLE in a format-2 record,
#   (b) values swapped between two records (fields, and whole files),
#   (c) a record planted under the victim's CKA_ID with a data key of the
#       attacker's choosing wrapped with the vault's PUBLIC key,
#   (d) one record rolled back to an older copy,
#   (e) a truncated record:
# each is refused with one log line naming the record, the data key is
# never read out, and `akv-pkcs11-tool status` counts the refusals.
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool python3 openssl
: "${AKV_TOOL:?set AKV_TOOL}"
t_begin
emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1}'
ED="python3 $(dirname "$0")/store/recedit.py"
tool() { "$AKV_TOOL" "$@" --config "$AKV_PKCS11_CONFIG"; }
IV=000102030405060708090a0b0c0d0e0f
LOG="$T_TMP/module.log"
CKA_SENSITIVE=103
CKA_EXTRACTABLE=162
rec_of() { # rec_of CKA_ID_HEX -> the record file holding it
    local f
    for f in "$STORE_DIR"/*.obj; do
        # the TLV entry CKA_ID (u64 0x102), length 1, value ID
        if $ED dump "$f" | jq -e --arg id "$1" '.attrs | contains("020100000000000001000000" + $id)' >/dev/null 2>&1; then
            echo "$f"; return
        fi
    done
}
# logged LINE_REGEX WHAT - the module logged it since the mark.
mark() { : >"$LOG"; }
logged() { expect_grep "$2" "$1" "$LOG"; }
# encrypt with --id ID, decrypt with openssl and key K: the object holds K.
holds() {
    rm -f "$T_TMP/ct" "$T_TMP/back"
    p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id "$1" -i "$T_TMP/plain" -o "$T_TMP/ct" >/dev/null 2>&1 &&
        openssl enc -d -aes-256-cbc -K "$2" -iv "$IV" -in "$T_TMP/ct" -out "$T_TMP/back" 2>/dev/null &&
        cmp -s "$T_TMP/plain" "$T_TMP/back"
}
read_value() { # the value pkcs11-tool reads out, hex, or "" when refused
    rm -f "$T_TMP/val"
    p11 --read-object --type secrkey --id "$1" -o "$T_TMP/val" >/dev/null 2>&1 || true
    [ -s "$T_TMP/val" ] && od -An -tx1 -v "$T_TMP/val" | tr -d ' \n' || true
}
n_secret() { p11 -O 2>/dev/null | grep -c "Secret Key Object" || true; }
head -c 1000 /dev/urandom >"$T_TMP/plain"

# The vault key's public half: what anyone can wrap with.
p11 --read-object --type pubkey --id "$(ver_id "$KEY_VERSION")" -o "$T_TMP/pub.der" >/dev/null 2>&1
pubwrap() { # pubwrap KEYHEX OUT - RSA-OAEP-256 with the public key only
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$1" >"$T_TMP/k.bin"
    openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$T_TMP/pub.der" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
        -pkeyopt rsa_mgf1_md:sha256 -in "$T_TMP/k.bin" -out "$2"
}

# --- a legacy (format 1) store, as the module wrote it before format 2 ---
# Two sensitive AES keys; their records are rewritten in format 1 with
# values this test knows (KA, KB), wrapped as Key Vault wrapKey does.
expect_ok "keygen victim (0a)" p11 --keygen --key-type AES:32 --label victim --id 0a --sensitive
expect_ok "keygen other (0b)" p11 --keygen --key-type AES:32 --label other --id 0b --sensitive
KA=$(openssl rand -hex 32); KB=$(openssl rand -hex 32)
RA=$(rec_of 0a); RB=$(rec_of 0b)
[ -n "$RA" ] && [ -n "$RB" ] && pass "records found" || fail "records of 0a/0b not found"
pubwrap "$KA" "$T_TMP/wa"; pubwrap "$KB" "$T_TMP/wb"
$ED legacy "$RA" "$RA" "$KEY_KID" "$T_TMP/wa"
$ED legacy "$RB" "$RB" "$KEY_KID" "$T_TMP/wb"
rm -f "$STORE_DIR/.storekey" "$STORE_DIR/.manifest"
cp "$RB" "$T_TMP/rb.v1"
mark
expect_ok "legacy record 0a holds KA" holds 0a "$KA"
logged "legacy record [0-9a-f]+ adopted" "legacy records adopted on first use"
expect_ok "store key created" test -s "$STORE_DIR/.storekey"
expect_eq "legacy sensitive value not readable" "$(read_value 0b)" ""

# Legacy record edited after adoption (CRC recomputed): refused.
$ED setattr "$RB" $CKA_SENSITIVE 00; $ED setattr "$RB" $CKA_EXTRACTABLE 01
mark
expect_eq "edited legacy record: value NOT read out" "$(read_value 0b)" ""
logged "record $(basename "$RB" .obj) refused: legacy record whose SHA-256" "edited legacy record refused, logged"
cp "$T_TMP/rb.v1" "$RB"
expect_ok "original legacy record accepted again" holds 0b "$KB"

# Upgrade: the next write (C_SetAttributeValue) moves 0a to format 2,
# rewrap moves 0b; both keep their values.
expect_ok "attribute write on legacy 0a" p11 --type secrkey --id 0a --set-id 0a
expect_eq "0a format 2 after its next write" "$($ED dump "$RA" | jq .format)" 2
expect_eq "0b still format 1" "$($ED dump "$RB" | jq .format)" 1
expect_ok "rewrap" tool rewrap
expect_grep "rewrap moved the other legacy record" "rewrapped 1, already current 1, failed 0" "$T_TMP/last.out"
expect_eq "0a now format 2" "$($ED dump "$RA" | jq .format)" 2
expect_eq "0b now format 2" "$($ED dump "$RB" | jq .format)" 2
expect_ok "0a still KA after upgrade" holds 0a "$KA"
expect_ok "0b still KB after upgrade" holds 0b "$KB"

# --- (a) flip CKA_SENSITIVE / CKA_EXTRACTABLE in a format-2 record -------
cp "$RB" "$T_TMP/rb.v2"
$ED setattr "$RB" $CKA_SENSITIVE 00; $ED setattr "$RB" $CKA_EXTRACTABLE 01
mark
expect_eq "(a) flipped attributes: value NOT read out" "$(read_value 0b)" ""
logged "record $(basename "$RB" .obj) refused: HMAC mismatch" "(a) refused, logged"
cp "$T_TMP/rb.v2" "$RB"

# --- (b) swap values between two records --------------------------------
cp "$RA" "$T_TMP/ra.v2"
$ED swapvalue "$RA" "$RB"
mark
expect_eq "(b) swapped values: neither object listed" "$(n_secret)" 0
logged "record $(basename "$RA" .obj) refused" "(b) refused, logged"
cp "$T_TMP/ra.v2" "$RA"; cp "$T_TMP/rb.v2" "$RB"
mv "$RA" "$T_TMP/x"; mv "$RB" "$RA"; mv "$T_TMP/x" "$RB" # whole files
mark
expect_eq "(b) swapped files: neither object listed" "$(n_secret)" 0
logged "refused: record of another id" "(b) moved file refused, logged"
cp "$T_TMP/ra.v2" "$RA"; cp "$T_TMP/rb.v2" "$RB"
expect_eq "both back" "$(n_secret)" 2

# --- (c) plant a record made with the public key under the victim's ID --
KX=$(openssl rand -hex 32)
pubwrap "$KX" "$T_TMP/wx"
PL="$STORE_DIR/deadbeefdeadbeefdeadbeefdeadbeef.obj"
$ED legacy "$PL" "$RA" "$KEY_KID" "$T_TMP/wx"
$ED setattr "$PL" $CKA_SENSITIVE 00; $ED setattr "$PL" $CKA_EXTRACTABLE 01
$ED plant2 "$STORE_DIR/cafecafecafecafecafecafecafecafe.obj" cafecafecafecafecafecafecafecafe "$RA" "$KEY_KID" "$T_TMP/wx"
mark
expect_eq "(c) planted records not listed" "$(n_secret)" 2
expect_eq "(c) victim's ID does not read out a value" "$(read_value 0a)" ""
expect_ok "(c) --id 0a still uses the victim's key" holds 0a "$KA"
logged "record deadbeefdeadbeefdeadbeefdeadbeef refused: not in the manifest" "(c) legacy plant refused, logged"
logged "record cafecafecafecafecafecafecafecafe refused: HMAC mismatch" "(c) format-2 plant refused, logged"
tool status --json >"$T_TMP/st.json" 2>/dev/null || true
expect_eq "status counts the refused records" "$(jq '.tokens[0].store.refused' "$T_TMP/st.json")" 2
expect_eq "status not ok" "$(jq '.tokens[0].ok' "$T_TMP/st.json")" false
rm -f "$PL" "$STORE_DIR/cafecafecafecafecafecafecafecafe.obj"
# In place of the victim's record: refused too (not the adopted hash).
cp "$RA" "$T_TMP/ra.v2"
$ED legacy "$RA" "$RA" "$KEY_KID" "$T_TMP/wx"
mark
expect_eq "(c) replaced victim record: not listed" "$(n_secret)" 1
logged "record $(basename "$RA" .obj) refused: legacy record" "(c) replacement refused, logged"
cp "$T_TMP/ra.v2" "$RA"

# --- (d) roll one record back to an older copy ---------------------------
cp "$RA" "$T_TMP/ra.old"
emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
expect_ok "rewrap after rotation (new generation)" tool rewrap
cp "$T_TMP/ra.old" "$RA"
mark
expect_eq "(d) rolled-back record not listed" "$(n_secret)" 1
logged "record $(basename "$RA" .obj) refused: generation not current" "(d) refused, logged"
expect_fail "(d) victim unusable rather than rolled back" holds 0a "$KA"

# --- (e) truncate a record -----------------------------------------------
sz=$(stat -c %s "$RB")
truncate -s $((sz - 40)) "$RB"
mark
expect_eq "(e) truncated record not listed" "$(n_secret)" 0
logged "$(basename "$RB" .obj)" "(e) refused, logged"
t_finish
