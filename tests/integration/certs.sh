#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The token's certificate object (tokens[].certificate / certificate_file)
# through real consumers: pkcs11-tool, p11tool, openssl s_server (libp11
# engine, certificate read from the token), Java's PKCS11 KeyStore.
# Usage: certs.sh vault|denied|file|tls|java
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
CASE=${1:?case}
if [ "$CASE" = java ] && [ -n "${AKV_ASAN_PRELOAD:-}" ]; then
    echo "SKIP: the JVM does not run under ASan"; exit 77
fi
t_begin
ID=$(ver_id "$KEY_VERSION")

# grant KEYPERMS -- CERTPERMS - the test identity's permissions.
grant() {
    local k=() c=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do k+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    c=("$@")
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions "${k[@]}" ${c[0]:+--certificate-permissions "${c[@]}"} >/dev/null
}

# emu_cert_der OUT - the emulator's certificate (the "cer" it serves) as DER.
emu_cert_der() {
    emu_cli keyvault certificate show --vault-name "$VAULT_NAME" --name "$KEY_NAME" \
        | jq -r .cer | base64 -d >"$1"
}

# cert_objects - pkcs11-tool's certificate listing.
cert_objects() { p11 --list-objects --type cert 2>&1; }

emu_cli keyvault certificate create --vault-name "$VAULT_NAME" --name "$KEY_NAME" \
    --subject "CN=localhost/O=akv-pkcs11 test" >"$T_TMP/bundle.json"
emu_cert_der "$T_TMP/emu.der"

case "$CASE" in
vault)
    grant get wrapKey unwrapKey -- get
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate\":\"$KEY_NAME\"}"
    expect_eq "emulator: the certificate's kid is the key version" \
        "$(jq -r .kid "$T_TMP/bundle.json")" "$KEY_KID"
    cert_objects >"$T_TMP/list"
    cat "$T_TMP/list"
    expect_grep "pkcs11-tool lists a certificate object" "^Certificate Object; type = X.509 cert" "$T_TMP/list"
    expect_grep "its ID is the key version" "^  ID: *$ID\$" "$T_TMP/list"
    expect_grep "its label is the key name" "^  label: *$KEY_NAME\$" "$T_TMP/list"
    expect_grep "its subject" "subject: *DN: CN=localhost, O=akv-pkcs11 test" "$T_TMP/list"
    p11 --list-objects --type privkey >"$T_TMP/priv" 2>&1
    expect_grep "the private key has the same ID" "^  ID: *$ID\$" "$T_TMP/priv"
    expect_ok "pkcs11-tool --read-object --type cert" p11 --read-object --type cert \
        --id "$ID" -o "$T_TMP/token.der"
    expect_ok "the DER read from the token is the emulator's" cmp "$T_TMP/emu.der" "$T_TMP/token.der"
    expect_ok "openssl parses it" openssl x509 -inform DER -in "$T_TMP/token.der" -noout
    # p11tool (GnuTLS): the certificate by URI, and its DER.
    if command -v p11tool >/dev/null; then
        withmod p11tool --provider "$AKV_MODULE" --list-all-certs "pkcs11:token=$TOKEN_LABEL" \
            </dev/null >"$T_TMP/p11tool" 2>&1 || true
        cat "$T_TMP/p11tool"
        expect_grep "p11tool lists the certificate" "Type: X.509 Certificate" "$T_TMP/p11tool"
        expect_grep "p11tool: label" "Label: $KEY_NAME" "$T_TMP/p11tool"
        expect_grep "p11tool: ID" "ID: $(sed 's/../&:/g; s/:$//' <<<"$ID")" "$T_TMP/p11tool"
        withmod p11tool --provider "$AKV_MODULE" --export \
            "pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;type=cert" </dev/null \
            >"$T_TMP/p11tool.pem" 2>/dev/null || true
        openssl x509 -in "$T_TMP/p11tool.pem" -outform DER -out "$T_TMP/p11tool.der" 2>/dev/null || true
        expect_ok "p11tool --export gives the same certificate" cmp "$T_TMP/emu.der" "$T_TMP/p11tool.der"
    fi
    # Read-only: neither destroyed nor changed.
    h=$(p11 --list-objects --type cert 2>/dev/null | grep -c Certificate)
    expect_fail "pkcs11-tool --delete-object refused" p11 --delete-object --type cert --id "$ID"
    expect_eq "the certificate is still there" "$(p11 --list-objects --type cert 2>/dev/null | grep -c Certificate)" "$h"
    # Not even with tokens[].allow_delete and the keys/delete permission:
    # the certificate is vault-origin too, but deleting it must not delete
    # the key it certifies.
    grant get wrapKey unwrapKey delete -- get
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate\":\"$KEY_NAME\",\"allow_delete\":true}"
    expect_fail "allow_delete: --delete-object of the certificate refused" \
        p11 --delete-object --type cert --id "$ID"
    expect_ok "allow_delete: the key is still in the vault" \
        emu_cli keyvault key show --vault-name "$VAULT_NAME" --name "$KEY_NAME"
    grant get wrapKey unwrapKey -- get
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate\":\"$KEY_NAME\"}"
    # A renewed certificate (Key Vault renews a certificate with a new
    # version of its key) replaces the shown one: the new key version's ID.
    NEWKID=$(emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq -r .key.kid)
    NEWID=$(ver_id "${NEWKID##*/}")
    emu_cli keyvault certificate create --vault-name "$VAULT_NAME" --name "$KEY_NAME" \
        --subject "CN=renewed" >/dev/null
    emu_cert_der "$T_TMP/emu2.der"
    cert_objects >"$T_TMP/list2"
    expect_eq "renewed: one certificate object" "$(grep -c '^Certificate Object' "$T_TMP/list2")" 1
    expect_grep "renewed: its ID is the new key version" "^  ID: *$NEWID\$" "$T_TMP/list2"
    expect_ok "renewed: read back" p11 --read-object --type cert --id "$NEWID" -o "$T_TMP/token2.der"
    expect_ok "renewed: the new DER" cmp "$T_TMP/emu2.der" "$T_TMP/token2.der"
    p11 --list-objects --type privkey >"$T_TMP/priv2" 2>&1
    expect_grep "renewed: the new version's private key is listed" "^  ID: *$NEWID\$" "$T_TMP/priv2"
    ;;
denied)
    # certificates/get missing: one clear log line, the keys still work.
    grant get wrapKey unwrapKey
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate\":\"$KEY_NAME\"}"
    cert_objects >"$T_TMP/list"
    expect_eq "no certificate object" "$(grep -c '^Certificate Object' "$T_TMP/list")" 0
    p11 --list-objects >"$T_TMP/all" 2>&1
    expect_grep "the private key is still shown" "^Private Key Object; RSA" "$T_TMP/all"
    expect_grep "one clear log line names the missing permission" \
        "certificate $KEY_NAME not shown: .* certificates/get permission" "$T_TMP/module.log"
    printf 'secret' >"$T_TMP/dek"
    p11 --read-object --type pubkey --id "$ID" -o "$T_TMP/pub.der" >/dev/null 2>&1
    openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$T_TMP/pub.der" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
        -in "$T_TMP/dek" -out "$T_TMP/dek.enc"
    expect_ok "decrypt with the key still works" p11 --decrypt -m RSA-PKCS-OAEP \
        --hash-algorithm SHA256 --id "$ID" -i "$T_TMP/dek.enc" -o "$T_TMP/dek.out"
    expect_ok "decrypt: the plaintext" cmp "$T_TMP/dek" "$T_TMP/dek.out"
    # A certificate of another key is refused (its kid is not this vault's
    # key of that name) - and a missing one is one line too.
    emu_write_config "$AKV_PKCS11_CONFIG" '{"certificate":"nosuchcert"}'
    grant get wrapKey unwrapKey -- get
    cert_objects >"$T_TMP/list2"
    expect_eq "unknown certificate: no object" "$(grep -c '^Certificate Object' "$T_TMP/list2")" 0
    expect_grep "unknown certificate: logged" "certificate nosuchcert not found in" "$T_TMP/module.log"
    ;;
file)
    grant get wrapKey unwrapKey
    openssl x509 -inform DER -in "$T_TMP/emu.der" -out "$T_TMP/cert.pem"
    chmod 644 "$T_TMP/cert.pem"
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate_file\":\"$T_TMP/cert.pem\"}"
    cert_objects >"$T_TMP/list"
    expect_grep "certificate_file: listed" "^Certificate Object; type = X.509 cert" "$T_TMP/list"
    expect_grep "certificate_file: ID is the key version" "^  ID: *$ID\$" "$T_TMP/list"
    expect_ok "certificate_file: read back" p11 --read-object --type cert --id "$ID" -o "$T_TMP/token.der"
    expect_ok "certificate_file: same DER" cmp "$T_TMP/emu.der" "$T_TMP/token.der"
    expect_eq "certificate_file: no Get Certificate call" \
        "$(grep -c 'GET /certificates' "$T_TMP/module.log")" 0
    # A certificate of another key pair is refused with a clear line.
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_TMP/other.key" -subj /CN=other \
        -days 2 -out "$T_TMP/other.pem" 2>/dev/null
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate_file\":\"$T_TMP/other.pem\"}"
    cert_objects >"$T_TMP/list2"
    expect_eq "foreign certificate: not shown" "$(grep -c '^Certificate Object' "$T_TMP/list2")" 0
    expect_grep "foreign certificate: refused in the log" \
        "certificate $T_TMP/other.pem refused: its public key is not that of any configured vault key" \
        "$T_TMP/module.log"
    # StrictModes: a group-writable file is refused.
    chmod 664 "$T_TMP/cert.pem"
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate_file\":\"$T_TMP/cert.pem\"}"
    cert_objects >"$T_TMP/list3"
    expect_eq "group-writable file: not shown" "$(grep -c '^Certificate Object' "$T_TMP/list3")" 0
    expect_grep "group-writable file: refused in the log" "certificate_file refused: $T_TMP/cert.pem" \
        "$T_TMP/module.log"
    p11 --list-objects --type privkey >"$T_TMP/priv" 2>&1
    expect_grep "group-writable file: the key is still shown" "^  ID: *$ID\$" "$T_TMP/priv"
    jq '.tokens[0].certificate="x" | .tokens[0].certificate_file="/x.pem"' \
        "$AKV_PKCS11_CONFIG" >"$T_TMP/both.json"
    chmod 600 "$T_TMP/both.json"
    rc=0
    AKV_PKCS11_CONFIG=$T_TMP/both.json p11 -L >"$T_TMP/both.out" 2>&1 || rc=$?
    expect_eq "config: certificate and certificate_file together refused" "$rc" 1
    expect_grep "config: the reason is given" \
        "certificate_file: give certificate or certificate_file, not both" "$T_TMP/both.out"
    ;;
tls)
    [ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] \
        || [ -e "$(openssl version -e | sed 's/.*"\(.*\)"/\1/')/pkcs11.so" ] \
        || { echo "SKIP: libengine-pkcs11-openssl missing"; exit 77; }
    grant get wrapKey unwrapKey sign -- get
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"sign\":true,\"certificate\":\"$KEY_NAME\"}"
    # The server's certificate comes from the token (not from a file made
    # beside it): read it by the private key's ID.
    expect_ok "certificate read from the token" p11 --read-object --type cert --id "$ID" \
        -o "$T_TMP/token.der"
    openssl x509 -inform DER -in "$T_TMP/token.der" -out "$T_TMP/token.pem"
    URI="pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;type=private"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    withmod env PKCS11_MODULE_PATH="$AKV_MODULE" openssl s_server -engine pkcs11 \
        -keyform engine -key "$URI" -cert "$T_TMP/token.pem" -accept "127.0.0.1:$port" \
        -naccept 1 -www -tls1_3 >"$T_TMP/server" 2>&1 &
    spid=$!
    for _ in $(seq 50); do
        grep -q ACCEPT "$T_TMP/server" 2>/dev/null && break
        sleep 0.2
    done
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -ign_eof \
        -connect "127.0.0.1:$port" -servername localhost -CAfile "$T_TMP/token.pem" \
        -verify_return_error -verify_hostname localhost >"$T_TMP/client" 2>&1 || true
    wait "$spid" || true
    expect_grep "TLS 1.3 handshake completed" "New, TLSv1.3, Cipher is [A-Z]" "$T_TMP/client"
    expect_grep "the token's certificate verified (hostname localhost)" \
        "Verify return code: 0 \(ok\)" "$T_TMP/client"
    expect_grep "server answered over the session" "HTTP/1.0 200 ok" "$T_TMP/client"
    expect_ok "the vault signed the handshake" test "$(emu_cli stats | jq -r '.sign // 0')" -ge 1
    ;;
java)
    need java javac
    grant get wrapKey unwrapKey sign -- get
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"sign\":true,\"certificate\":\"$KEY_NAME\"}"
    mkdir -p "$T_TMP/classes" "$T_TMP/state"
    expect_ok "javac AkvCertKeyStoreTest.java" javac -d "$T_TMP/classes" \
        "$AKV_SRC/tests/integration/java/AkvCertKeyStoreTest.java"
    printf 'signed through a Java KeyStore %s\n' "$RANDOM" >"$T_TMP/msg"
    AKV_TEST_CERT_DER=$T_TMP/emu.der AKV_TEST_MSG=$T_TMP/msg AKV_TEST_SIG_OUT=$T_TMP/java.sig \
        AKV_TEST_KEY_NAME=$KEY_NAME AKV_MODULE=$AKV_MODULE AKV_PKCS11_CONFIG=$AKV_PKCS11_CONFIG \
        java -cp "$T_TMP/classes" AkvCertKeyStoreTest "$T_TMP/state" >"$T_TMP/java.out" 2>&1 \
        && rc=0 || rc=$?
    sed 's/^/    /' "$T_TMP/java.out"
    expect_eq "java KeyStore checks pass" "$rc" 0
    openssl x509 -inform DER -in "$T_TMP/emu.der" -pubkey -noout >"$T_TMP/pub.pem"
    expect_ok "openssl verifies Java's signature with the certificate's key" \
        openssl dgst -sha256 -verify "$T_TMP/pub.pem" -signature "$T_TMP/java.sig" "$T_TMP/msg"
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
