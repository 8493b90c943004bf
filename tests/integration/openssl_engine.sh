#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# OpenSSL 3 + libp11 engine: public-key encrypt locally, decrypt through the
# module's C_Decrypt (served by Key Vault unwrapKey) with a pkcs11: URI.
# Usage: openssl_engine.sh oaep256|oaep1|pkcs1
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
[ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] || [ -e "$(openssl version -e | sed 's/.*"\(.*\)"/\1/')/pkcs11.so" ] \
    || { echo "SKIP: libengine-pkcs11-openssl missing"; exit 77; }
t_begin
CASE=${1:?case}
ID=$(ver_id "$KEY_VERSION")
p11 --read-object --type pubkey --id "$ID" -o "$T_TMP/pub.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$T_TMP/pub.der" -out "$T_TMP/pub.pem"
printf 'customer-managed key says hello %s' "$RANDOM" >"$T_TMP/msg"
case "$CASE" in
oaep256) opts=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256) ;;
oaep1) opts=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1) ;;
pkcs1) opts=(-pkeyopt rsa_padding_mode:pkcs1) ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
expect_ok "encrypt with the public key (openssl)" \
    openssl pkeyutl -encrypt -pubin -inkey "$T_TMP/pub.pem" "${opts[@]}" -in "$T_TMP/msg" -out "$T_TMP/ct"
URI="pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;type=private"
expect_ok "decrypt via engine + pkcs11: URI" withmod env PKCS11_MODULE_PATH="$AKV_MODULE" \
    openssl pkeyutl -engine pkcs11 -keyform engine -decrypt -inkey "$URI" "${opts[@]}" \
    -in "$T_TMP/ct" -out "$T_TMP/back"
expect_ok "plaintext recovered" cmp "$T_TMP/msg" "$T_TMP/back"
# A corrupted ciphertext must fail cleanly (no output, non-zero exit).
cp "$T_TMP/ct" "$T_TMP/bad"; printf '\x00\x01\x02' | dd of="$T_TMP/bad" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_fail "corrupted ciphertext refused" withmod env PKCS11_MODULE_PATH="$AKV_MODULE" \
    openssl pkeyutl -engine pkcs11 -keyform engine -decrypt -inkey "$URI" "${opts[@]}" \
    -in "$T_TMP/bad" -out "$T_TMP/back2"
t_finish
