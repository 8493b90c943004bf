#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The recipes of docs/RECIPES.md, run as written against the module and a
# private emulator; each asserts bytes that round-trip or the token it
# lists. Cases (ctest recipes.<case>):
#   p11kit-remote  p11-kit server on a unix socket + p11-kit-client.so
#                  (the container side), listing and an OAEP decryption
#   nss            modutil -add, modutil -list, certutil -K -h TOKEN
#   python         PyKCS11: unwrap a data key, encrypt with it
#   node           graphene-pk11 (pkcs11js): decrypt a wrapped data key
#   uri            a URI printed by akv-pkcs11-tool uri used by the libp11
#                  engine (OpenSSL 3) to decrypt
. "$(dirname "$0")/../lib/common.sh"
CASE=${1:?case}
need pkcs11-tool
t_begin
ID=$(ver_id "$KEY_VERSION")
p11 --read-object --type pubkey --id "$ID" -o "$T_TMP/pub.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$T_TMP/pub.der" -out "$T_TMP/pub.pem"
OAEP256=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256)
head -c 32 /dev/urandom >"$T_TMP/dek"
openssl pkeyutl -encrypt -pubin -inkey "$T_TMP/pub.pem" "${OAEP256[@]}" -in "$T_TMP/dek" -out "$T_TMP/dek.wrapped"
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

case $CASE in
p11kit-remote)
    need p11-kit
    CLIENT=/usr/lib/$MULTIARCH/pkcs11/p11-kit-client.so
    [ -e "$CLIENT" ] || { echo "SKIP: $CLIENT missing (p11-kit-modules)"; exit 77; }
    SOCK=$T_TMP/akv.sock
    # host side (the recipe): export the one token on a unix socket
    # (not through withmod: $! must be the server itself, to stop it)
    pre=()
    if [ -n "${AKV_ASAN_PRELOAD:-}" ]; then
        pre=(env LD_PRELOAD="$AKV_ASAN_PRELOAD" ASAN_OPTIONS="detect_leaks=0:exitcode=86")
    fi
    "${pre[@]}" p11-kit server --provider "$AKV_MODULE" -n "$SOCK" -f \
        "pkcs11:token=$TOKEN_LABEL" >"$T_TMP/server.out" 2>&1 &
    SRV=$!
    trap 'r=$?; kill $SRV 2>/dev/null || true; (exit $r); t_cleanup' EXIT
    # the socket can appear before the server has printed its address
    for _ in $(seq 200); do
        [ -S "$SOCK" ] && grep -q P11_KIT_SERVER_ADDRESS "$T_TMP/server.out" && break
        sleep 0.05
    done
    expect_grep "server prints the address" "P11_KIT_SERVER_ADDRESS=unix:path=$SOCK" "$T_TMP/server.out"
    # container side: only p11-kit-client.so and the socket
    export P11_KIT_SERVER_ADDRESS=unix:path=$SOCK
    pkcs11-tool --module "$CLIENT" -L >"$T_TMP/L" 2>&1 || true
    expect_grep "the token is listed through the socket" "token label +: $TOKEN_LABEL$" "$T_TMP/L"
    expect_ok "decrypt through the socket (RSA-OAEP-256 -> Key Vault unwrapKey)" \
        pkcs11-tool --module "$CLIENT" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 \
        --mgf MGF1-SHA256 --id "$ID" -i "$T_TMP/dek.wrapped" -o "$T_TMP/dek.back"
    expect_ok "the bytes round-trip" cmp "$T_TMP/dek" "$T_TMP/dek.back"
    unset P11_KIT_SERVER_ADDRESS
    ;;
nss)
    need modutil certutil
    DB=$T_TMP/nssdb
    mkdir -m 700 "$DB"
    expect_ok "certutil -N (empty password)" certutil -N -d "sql:$DB" --empty-password
    expect_ok "modutil -add" withmod modutil -dbdir "sql:$DB" -add akv-pkcs11 -libfile "$AKV_MODULE" -force
    withmod modutil -dbdir "sql:$DB" -list akv-pkcs11 >"$T_TMP/list" 2>&1 || true
    expect_grep "modutil lists the token" "Token Name: $TOKEN_LABEL +$" "$T_TMP/list"
    withmod certutil -K -h "$TOKEN_LABEL" -d "sql:$DB" </dev/null >"$T_TMP/keys" 2>&1 || true
    expect_grep "certutil -K lists the vault key with its CKA_ID" "rsa +$ID +$KEY_NAME$" "$T_TMP/keys"
    ;;
python)
    PY=/usr/bin/python3
    "$PY" -c 'import PyKCS11' 2>/dev/null || { echo "SKIP: python3-pykcs11 missing"; exit 77; }
    IV=000102030405060708090a0b0c0d0e0f
    printf 'recipe plaintext %s' "$RANDOM" >"$T_TMP/msg"
    withmod "$PY" "$(dirname "$0")/recipes/unwrap.py" "$AKV_MODULE" "$TOKEN_LABEL" "$KEY_NAME" \
        "$T_TMP/dek.wrapped" "$IV" <"$T_TMP/msg" >"$T_TMP/ct" 2>"$T_TMP/py.err" \
        && pass "PyKCS11 unwraps and encrypts" || { fail "PyKCS11 script"; cat "$T_TMP/py.err"; }
    openssl enc -d -aes-256-cbc -K "$(od -An -tx1 "$T_TMP/dek" | tr -d ' \n')" -iv "$IV" \
        -in "$T_TMP/ct" -out "$T_TMP/back" 2>/dev/null || true
    expect_ok "openssl decrypts it with the original data key" cmp "$T_TMP/msg" "$T_TMP/back"
    ;;
node)
    need node
    NODE_DIR=$(dirname "$0")/recipes/node
    [ -d "$NODE_DIR/node_modules/graphene-pk11" ] \
        || { echo "SKIP: run npm ci in $NODE_DIR (scripts/test does)"; exit 77; }
    withmod node "$NODE_DIR/decrypt.js" "$AKV_MODULE" "$TOKEN_LABEL" "$KEY_NAME" \
        "$T_TMP/dek.wrapped" >"$T_TMP/dek.back" 2>"$T_TMP/node.err" \
        && pass "graphene-pk11 decrypts" || { fail "node script"; cat "$T_TMP/node.err"; }
    expect_ok "the bytes round-trip" cmp "$T_TMP/dek" "$T_TMP/dek.back"
    ;;
uri)
    : "${AKV_TOOL:?}"
    [ -e "/usr/lib/$MULTIARCH/engines-3/pkcs11.so" ] || { echo "SKIP: libengine-pkcs11-openssl missing"; exit 77; }
    URI=$("$AKV_TOOL" uri --config "$AKV_PKCS11_CONFIG" --module "$AKV_MODULE" | grep -m1 'type=private')
    expect_ok "decrypt with the printed URI (libp11 engine)" withmod env PKCS11_MODULE_PATH="$AKV_MODULE" \
        openssl pkeyutl -engine pkcs11 -keyform engine -decrypt -inkey "$URI" "${OAEP256[@]}" \
        -in "$T_TMP/dek.wrapped" -out "$T_TMP/dek.back"
    expect_ok "the bytes round-trip" cmp "$T_TMP/dek" "$T_TMP/dek.back"
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
