#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Signing with the vault key (Key Vault "Sign") and local verification,
# through real consumers; every signature is checked by openssl with the
# public key the token exports.
# Usage: sign.sh rsa|ec|nosign|engine|tls|ssh
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
t_begin
CASE=${1:?case}
ID=$(ver_id "$KEY_VERSION")
# Signing is opt-in (tokens[].sign; conf/README.md).
emu_write_config "$AKV_PKCS11_CONFIG" '{"sign":true}'

# grant PERMS... - the test identity's key permissions.
grant() {
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions "$@" >/dev/null
}

# pubkey_pem ID OUT - the public key object as PEM (pkcs11-tool export).
pubkey_pem() {
    p11 --read-object --type pubkey --id "$1" -o "$T_TMP/pub.der" >/dev/null 2>&1
    openssl pkey -pubin -inform DER -in "$T_TMP/pub.der" -out "$2"
}

engine_ok() {
    [ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] \
        || [ -e "$(openssl version -e | sed 's/.*"\(.*\)"/\1/')/pkcs11.so" ]
}

printf 'signed by Key Vault %s\n' "$RANDOM" >"$T_TMP/msg"
case "$CASE" in
rsa)
    grant get wrapKey unwrapKey sign
    pubkey_pem "$ID" "$T_TMP/pub.pem"
    for h in 256 384 512; do
        for m in "SHA$h-RSA-PKCS" "SHA$h-RSA-PKCS-PSS"; do
            rm -f "$T_TMP/sig"
            opts=()
            if [ "${m%PSS}" != "$m" ]; then
                opts=(--mgf "MGF1-SHA$h" --salt-len -1)
                vopts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
            else
                vopts=()
            fi
            expect_ok "$m: pkcs11-tool --sign" p11 --sign -m "$m" "${opts[@]}" --id "$ID" \
                -i "$T_TMP/msg" -o "$T_TMP/sig"
            expect_eq "$m: signature is 256 bytes" "$(stat -c %s "$T_TMP/sig" 2>/dev/null)" 256
            expect_ok "$m: openssl verifies it" openssl dgst "-sha$h" "${vopts[@]}" \
                -verify "$T_TMP/pub.pem" -signature "$T_TMP/sig" "$T_TMP/msg"
            p11 --verify -m "$m" "${opts[@]}" --id "$ID" -i "$T_TMP/msg" \
                --signature-file "$T_TMP/sig" >"$T_TMP/v.out" 2>&1 || true
            expect_grep "$m: pkcs11-tool --verify (local)" "^Signature is valid" "$T_TMP/v.out"
            { printf 'tampered'; cat "$T_TMP/msg"; } >"$T_TMP/msg.bad"
            p11 --verify -m "$m" "${opts[@]}" --id "$ID" -i "$T_TMP/msg.bad" \
                --signature-file "$T_TMP/sig" >"$T_TMP/v.out" 2>&1 || true
            expect_grep "$m: a changed message does not verify" "^Invalid signature" "$T_TMP/v.out"
        done
    done
    # CKM_RSA_PKCS over a DigestInfo (SHA-256 -> RS256; SHA-1 -> RSNULL).
    openssl dgst -sha256 -binary "$T_TMP/msg" >"$T_TMP/h256"
    { printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
      cat "$T_TMP/h256"; } >"$T_TMP/di256"
    openssl dgst -sha1 -binary "$T_TMP/msg" >"$T_TMP/h1"
    { printf '\x30\x21\x30\x09\x06\x05\x2b\x0e\x03\x02\x1a\x05\x00\x04\x14'
      cat "$T_TMP/h1"; } >"$T_TMP/di1"
    for di in di256 di1; do
        expect_ok "RSA-PKCS ($di): pkcs11-tool --sign" p11 --sign -m RSA-PKCS --id "$ID" \
            -i "$T_TMP/$di" -o "$T_TMP/sig.$di"
        openssl pkeyutl -verifyrecover -pubin -inkey "$T_TMP/pub.pem" -in "$T_TMP/sig.$di" \
            -out "$T_TMP/rec.$di" 2>/dev/null || true
        expect_ok "RSA-PKCS ($di): the signature recovers the DigestInfo" \
            cmp "$T_TMP/$di" "$T_TMP/rec.$di"
    done
    expect_ok "RSA-PKCS: openssl verifies the SHA-256 one" openssl dgst -sha256 \
        -verify "$T_TMP/pub.pem" -signature "$T_TMP/sig.di256" "$T_TMP/msg"
    # CKM_RSA_PKCS_PSS over the hash.
    expect_ok "RSA-PKCS-PSS: pkcs11-tool --sign" p11 --sign -m RSA-PKCS-PSS \
        --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len -1 --id "$ID" \
        -i "$T_TMP/h256" -o "$T_TMP/sig.pss"
    expect_ok "RSA-PKCS-PSS: openssl verifies it" openssl dgst -sha256 \
        -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
        -verify "$T_TMP/pub.pem" -signature "$T_TMP/sig.pss" "$T_TMP/msg"
    # GnuTLS p11tool's own sign/verify test with the key pair.
    withmod timeout 60 p11tool --provider "$AKV_MODULE" --test-sign \
        "pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME" >"$T_TMP/ts" 2>&1 </dev/null || true
    expect_grep "p11tool --test-sign: signed" "^Signing using RSA-SHA256... ok" "$T_TMP/ts"
    expect_grep "p11tool --test-sign: verified with the token public key" \
        "^Verifying against public key in the token... ok" "$T_TMP/ts"
    # A salt Key Vault cannot honour is refused at C_SignInit.
    p11 --sign -m SHA256-RSA-PKCS-PSS --mgf MGF1-SHA256 --salt-len 20 --id "$ID" \
        -i "$T_TMP/msg" -o "$T_TMP/sig.bad" >"$T_TMP/salt.out" 2>&1 || true
    expect_grep "PSS salt 20 refused" "CKR_MECHANISM_PARAM_INVALID" "$T_TMP/salt.out"
    ;;
ec)
    # -HSM keys need a premium vault (Key Vault's SKU rule, emulated).
    emu_cli keyvault create --name "$VAULT_NAME" --sku premium >/dev/null
    grant get wrapKey unwrapKey sign
    keys='["cmk"'
    for c in P-256:256:ecp256 P-384:384:ecp384 P-521:512:ecp521 P-256K:256:eck1; do
        IFS=: read -r crv h name <<<"$c"
        kid=$(emu_cli keyvault key create --vault-name "$VAULT_NAME" --name "$name" \
            --kty EC-HSM --curve "$crv" | jq -r .key.kid)
        echo "${kid##*/}" >"$T_TMP/$name.ver"
        keys="$keys,\"$name\""
    done
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"keys\":$keys],\"sign\":true}"
    p11 -O >"$T_TMP/O" 2>&1 || true
    expect_grep "EC private key listed" "Private Key Object; EC" "$T_TMP/O"
    expect_grep "P-256 public key with its point" "EC_POINT: *044104[0-9a-f]{128}$" "$T_TMP/O"
    for c in P-256:256:ecp256:prime256v1 P-384:384:ecp384:secp384r1 \
        P-521:512:ecp521:secp521r1 P-256K:256:eck1:secp256k1; do
        IFS=: read -r crv h name group <<<"$c"
        id=$(ver_id "$(cat "$T_TMP/$name.ver")")
        # p11tool exports CKA_PUBLIC_KEY_INFO (pkcs11-tool 0.23 cannot build
        # a P-384 key from CKA_EC_POINT); cross-checked against the point.
        # GnuTLS has no secp256k1, and pkcs11-tool 0.23 cannot export it
        # (a use-after-free in its EVP_PKEY_fromdata): the key is built from
        # the listed CKA_EC_POINT (SPKI prefix of RFC 5480 + secp256k1 OID).
        if [ "$crv" = P-256K ]; then
            ecpt=$(awk -v n="$name" '/EC_POINT:/{p=$2} /label:/{if ($2 == n) print p}' \
                "$T_TMP/O" | head -1)
            { printf '3056301006072a8648ce3d020106052b8104000a034200'; printf '%s' "${ecpt#0441}"; } \
                | xxd -r -p >"$T_TMP/$name.der"
            openssl pkey -pubin -inform DER -in "$T_TMP/$name.der" -out "$T_TMP/$name.pem" || true
        else
            withmod timeout 60 p11tool --provider "$AKV_MODULE" --export-pubkey \
                "pkcs11:token=$TOKEN_LABEL;object=$name;type=public" >"$T_TMP/$name.pem" \
                2>/dev/null </dev/null || true
        fi
        pt=$(openssl pkey -pubin -in "$T_TMP/$name.pem" -text_pub -noout 2>/dev/null \
            | sed -n '/^pub:/,/^[A-Z]/p' | grep '^ ' | tr -d ' :\n' || true)
        expect_eq "$crv: exported point read" "$([ ${#pt} -gt 100 ] && echo yes)" yes
        expect_grep "$crv: CKA_EC_POINT is the DER OCTET STRING of that point" \
            "EC_POINT: *04[0-9a-f]{2,4}$pt" "$T_TMP/O"
        expect_ok "$crv: exported key is on $group" \
            sh -c "openssl pkey -pubin -in '$T_TMP/$name.pem' -text_pub -noout | grep -q 'NIST CURVE\|ASN1 OID: $group'"
        expect_ok "$crv: ECDSA-SHA$h sign" p11 --sign -m "ECDSA-SHA$h" --id "$id" \
            --signature-format openssl -i "$T_TMP/msg" -o "$T_TMP/$name.sig"
        expect_ok "$crv: openssl verifies ECDSA-SHA$h" openssl dgst "-sha$h" \
            -verify "$T_TMP/$name.pem" -signature "$T_TMP/$name.sig" "$T_TMP/msg"
        openssl dgst "-sha$h" -binary "$T_TMP/msg" >"$T_TMP/$name.h"
        expect_ok "$crv: ECDSA (hash input) sign" p11 --sign -m ECDSA --id "$id" \
            -i "$T_TMP/$name.h" -o "$T_TMP/$name.raw"
        p11 --verify -m ECDSA --id "$id" -i "$T_TMP/$name.h" \
            --signature-file "$T_TMP/$name.raw" >"$T_TMP/v.out" 2>&1 || true
        expect_grep "$crv: pkcs11-tool --verify ECDSA (local)" "^Signature is valid" "$T_TMP/v.out"
        p11 --verify -m "ECDSA-SHA$h" --id "$id" --signature-format openssl -i "$T_TMP/msg" \
            --signature-file "$T_TMP/$name.sig" >"$T_TMP/v.out" 2>&1 || true
        expect_grep "$crv: pkcs11-tool --verify ECDSA-SHA$h (local)" "^Signature is valid" \
            "$T_TMP/v.out"
    done
    # r||s is twice the field size (P-521: 66-byte coordinates).
    expect_eq "P-521 raw signature is 132 bytes" "$(stat -c %s "$T_TMP/ecp521.raw")" 132
    expect_eq "P-256 raw signature is 64 bytes" "$(stat -c %s "$T_TMP/ecp256.raw")" 64
    ;;
nosign)
    # The three-permission CMK identity (get wrapKey unwrapKey): signing is
    # refused with one clear log line; decryption keeps working.
    p11 --sign -m SHA256-RSA-PKCS --id "$ID" -i "$T_TMP/msg" -o "$T_TMP/sig" \
        >"$T_TMP/out" 2>&1 && rc=0 || rc=$?
    expect_eq "sign fails" "$([ "$rc" -ne 0 ] && echo yes)" yes
    expect_grep "CKR_KEY_FUNCTION_NOT_PERMITTED" "CKR_KEY_FUNCTION_NOT_PERMITTED" "$T_TMP/out"
    n403=$(grep -c 'op sign: HTTP 403 .*does not have keys sign permission' "$T_TMP/module.log")
    expect_eq "the refusal is logged with the missing permission" "$([ "$n403" -ge 1 ] && echo yes)" yes
    expect_eq "one log line per refused call, nothing else" \
        "$(grep -c ' ERROR ' "$T_TMP/module.log")" "$n403"
    p11 --read-object --type pubkey --id "$ID" -o "$T_TMP/pub.der" >/dev/null 2>&1
    openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$T_TMP/pub.der" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 \
        -in "$T_TMP/msg" -out "$T_TMP/ct"
    expect_ok "decrypt still works" p11 --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 \
        --mgf MGF1-SHA256 --id "$ID" -i "$T_TMP/ct" -o "$T_TMP/back"
    expect_ok "decrypted" cmp "$T_TMP/msg" "$T_TMP/back"
    # Signing off (the default configuration): CKA_SIGN is FALSE and the
    # refusal is local - no sign request reaches the vault.
    emu_write_config "$AKV_PKCS11_CONFIG"
    emu_cli stats --reset >/dev/null
    p11 -O --type privkey >"$T_TMP/O" 2>&1 || true
    expect_grep "signing off: the private key is not a signing key" "Usage: *decrypt, unwrap$" "$T_TMP/O"
    expect_fail "signing off: sign refused" p11 --sign -m SHA256-RSA-PKCS --id "$ID" \
        -i "$T_TMP/msg" -o "$T_TMP/sig"
    expect_eq "signing off: no sign request reached the vault" "$(emu_cli stats | jq -r '.sign // 0')" 0
    ;;
engine)
    engine_ok || { echo "SKIP: libengine-pkcs11-openssl missing"; exit 77; }
    grant get wrapKey unwrapKey sign
    pubkey_pem "$ID" "$T_TMP/pub.pem"
    URI="pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;type=private"
    expect_ok "openssl dgst -sign via the engine" withmod env PKCS11_MODULE_PATH="$AKV_MODULE" \
        openssl dgst -engine pkcs11 -keyform engine -sign "$URI" -sha256 \
        -out "$T_TMP/sig" "$T_TMP/msg"
    expect_ok "openssl verifies it" openssl dgst -sha256 -verify "$T_TMP/pub.pem" \
        -signature "$T_TMP/sig" "$T_TMP/msg"
    ;;
engine-ec)
    # An EC key beside the RSA key: the libp11 engine makes itself OpenSSL's
    # default EC method, and the module's own EC work (the JWK's point
    # check, the objects' EC_POINT) must not go through it - before, every
    # search failed with CKR_DEVICE_ERROR ("key ecp256: cannot be fetched").
    engine_ok || { echo "SKIP: libengine-pkcs11-openssl missing"; exit 77; }
    grant get wrapKey unwrapKey sign
    emu_cli keyvault key create --vault-name "$VAULT_NAME" --name ecp256 \
        --kty EC --curve P-256 >/dev/null
    emu_write_config "$AKV_PKCS11_CONFIG" '{"keys":["cmk","ecp256"],"sign":true}'
    pubkey_pem "$ID" "$T_TMP/pub.pem"
    : >"$T_TMP/module.log"
    URI="pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;type=private"
    expect_ok "RSA: openssl dgst -sign via the engine, EC key in the token" \
        withmod env PKCS11_MODULE_PATH="$AKV_MODULE" \
        openssl dgst -engine pkcs11 -keyform engine -sign "$URI" -sha256 \
        -out "$T_TMP/sig" "$T_TMP/msg"
    expect_ok "openssl verifies it" openssl dgst -sha256 -verify "$T_TMP/pub.pem" \
        -signature "$T_TMP/sig" "$T_TMP/msg"
    URI="pkcs11:token=$TOKEN_LABEL;object=ecp256;type=private"
    expect_ok "EC: openssl dgst -sign via the engine" \
        withmod env PKCS11_MODULE_PATH="$AKV_MODULE" \
        openssl dgst -engine pkcs11 -keyform engine -sign "$URI" -sha256 \
        -out "$T_TMP/sig-ec" "$T_TMP/msg"
    withmod env PKCS11_MODULE_PATH="$AKV_MODULE" openssl pkey -engine pkcs11 \
        -inform engine -in "$URI" -pubout -out "$T_TMP/ec.pem" 2>/dev/null || true
    expect_ok "openssl verifies the ECDSA signature" openssl dgst -sha256 \
        -verify "$T_TMP/ec.pem" -signature "$T_TMP/sig-ec" "$T_TMP/msg"
    expect_eq "no key failed to load" "$(grep -c "cannot be fetched" "$T_TMP/module.log" || true)" 0
    ;;
tls)
    engine_ok || { echo "SKIP: libengine-pkcs11-openssl missing"; exit 77; }
    grant get wrapKey unwrapKey sign
    URI="pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;type=private"
    pubkey_pem "$ID" "$T_TMP/pub.pem"
    expect_ok "self-signed certificate made with the vault key" \
        withmod env PKCS11_MODULE_PATH="$AKV_MODULE" openssl req -engine pkcs11 \
        -keyform engine -key "$URI" -new -x509 -days 2 -subj /CN=localhost \
        -addext subjectAltName=IP:127.0.0.1 -out "$T_TMP/cert.pem"
    expect_ok "certificate carries the vault public key" sh -c \
        "openssl x509 -in '$T_TMP/cert.pem' -pubkey -noout | cmp - '$T_TMP/pub.pem'"
    expect_ok "certificate signature verifies" openssl verify -CAfile "$T_TMP/cert.pem" \
        "$T_TMP/cert.pem"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    for v in tls1_2 tls1_3; do
        withmod env PKCS11_MODULE_PATH="$AKV_MODULE" openssl s_server -engine pkcs11 \
            -keyform engine -key "$URI" -cert "$T_TMP/cert.pem" -accept "127.0.0.1:$port" \
            -naccept 1 -www "-$v" >"$T_TMP/server.$v" 2>&1 &
        spid=$!
        for _ in $(seq 50); do
            grep -q ACCEPT "$T_TMP/server.$v" 2>/dev/null && break
            sleep 0.2
        done
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -ign_eof \
            -connect "127.0.0.1:$port" -CAfile "$T_TMP/cert.pem" -verify_return_error \
            "-$v" >"$T_TMP/client.$v" 2>&1 || true
        wait "$spid" || true
        proto=TLSv1.2; [ "$v" = tls1_3 ] && proto=TLSv1.3
        expect_grep "$v handshake completed" "New, $proto, Cipher is [A-Z]" "$T_TMP/client.$v"
        expect_grep "$v server certificate verified" "Verify return code: 0 \(ok\)" \
            "$T_TMP/client.$v"
        expect_grep "$v server answered over the session" "HTTP/1.0 200 ok" "$T_TMP/client.$v"
    done
    ;;
ssh)
    [ "$(id -u)" = 0 ] && [ -x /usr/sbin/sshd ] \
        || { echo "SKIP: needs root and openssh-server"; exit 77; }
    grant get wrapKey unwrapKey sign
    withmod ssh-keygen -D "$AKV_MODULE" >"$T_TMP/authorized_keys" 2>/dev/null || true
    expect_grep "ssh-keygen -D lists the vault key" "^ssh-rsa " "$T_TMP/authorized_keys"
    chmod 600 "$T_TMP/authorized_keys"
    ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/hostkey"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$T_TMP/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $T_TMP/hostkey
AuthorizedKeysFile $T_TMP/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $T_TMP/sshd.pid
CFG
    mkdir -p /run/sshd
    /usr/sbin/sshd -D -e -f "$T_TMP/sshd_config" >"$T_TMP/sshd.log" 2>&1 &
    sshd_pid=$!
    for _ in $(seq 50); do
        grep -q "listening" "$T_TMP/sshd.log" 2>/dev/null && break
        sleep 0.2
    done
    out=$(withmod ssh -I "$AKV_MODULE" -p "$port" -o BatchMode=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o PasswordAuthentication=no -o IdentityFile=/dev/null \
        -v "$(id -un)@127.0.0.1" 'echo logged-in-with-vault-key' 2>"$T_TMP/ssh.err") || true
    kill "$sshd_pid" 2>/dev/null || true
    wait "$sshd_pid" 2>/dev/null || true
    expect_eq "ssh login with the vault key" "$out" logged-in-with-vault-key
    expect_grep "sshd accepted the publickey" "Accepted publickey" "$T_TMP/sshd.log"
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
