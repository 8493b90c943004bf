#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The host program's OpenSSL setup can't reach the module's TLS or crypto
# (docs/SECURITY.md "A malicious or unusual host program"). The host
# (memprobe) first puts badprov - a test provider whose X25519/X448/EC/DH
# key generation fails (tests/provider/badprov.c) - into its own default
# library context, then uses the module: the module's HTTPS to the vault
# and the token endpoint must still work.
#   load-first          OSSL_PROVIDER_load(NULL, "badprov") before "default"
#   default-properties  OPENSSL_CONF activating badprov and default with
#                       default_properties = ?provider=badprov
#   token-objects       the same OPENSSL_CONF (badprov also breaks the host's
#                       SHA-256, AES-256-GCM, HMAC and HKDF): token objects
#                       are created, listed and used
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_MEMPROBE:?}" "${AKV_BADPROV_DIR:?}"
case_=${1:?case}

t_begin
openssl rand -hex 32 | tr -d '\n' >"$T_TMP/key.hex"
export OPENSSL_MODULES="$AKV_BADPROV_DIR"

# The provider really breaks TLS for the host: openssl s_client with the
# same setup cannot complete a handshake with the emulator.
cat >"$T_TMP/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
default = default_sect
badprov = badprov_sect
[default_sect]
activate = 1
[badprov_sect]
module = $AKV_BADPROV_DIR/badprov.so
activate = 1
[algorithm_sect]
default_properties = ?provider=badprov
CNF
hostport=${EMU_AUTHORITY#https://}
if OPENSSL_CONF="$T_TMP/openssl.cnf" openssl s_client -connect "$hostport" \
        -CAfile "$EMU_CA" -brief </dev/null >"$T_TMP/s_client.out" 2>&1; then
    fail "badprov does not break the host's TLS (the test proves nothing)"
else
    pass "badprov breaks the host's own TLS handshake"
fi

case $case_ in
load-first)
    expect_ok "wrap/unwrap with badprov loaded first by the host" \
        withmod "$AKV_MEMPROBE" run "$AKV_MODULE" "$KEY_NAME" "$T_TMP/key.hex" \
        provider badprov
    ;;
default-properties)
    with_conf() { OPENSSL_CONF="$T_TMP/openssl.cnf" withmod "$@"; }
    expect_ok "wrap/unwrap with default_properties=?provider=badprov" \
        with_conf "$AKV_MEMPROBE" run "$AKV_MODULE" "$KEY_NAME" \
        "$T_TMP/key.hex" conf
    ;;
token-objects)
    # The object store's crypto (HKDF, HMAC, SHA-256, AES-256-GCM: docs/
    # STORE.md) must run in the module's context too: with badprov preferred
    # in the host's context, a token key is created, listed (records
    # authenticated) and used (sealed value opened) by pkcs11-tool.
    cfgp() { OPENSSL_CONF="$T_TMP/openssl.cnf" p11 "$@"; }
    if OPENSSL_CONF="$T_TMP/openssl.cnf" openssl dgst -sha256 /dev/null \
            >/dev/null 2>&1; then
        fail "badprov does not break the host's SHA-256 (the test proves nothing)"
    else
        pass "badprov breaks the host's own SHA-256"
    fi
    expect_ok "token AES key created with badprov preferred by the host" \
        cfgp --keygen --key-type AES:32 --label tok --id 01 --extractable
    expect_ok "store listed with badprov preferred by the host" cfgp -O
    expect_grep "the stored key is listed" "label: *tok" "$T_TMP/last.out"
    printf 'sixteen byte msg' >"$T_TMP/msg"
    expect_ok "stored key used with badprov preferred by the host" \
        cfgp --encrypt -m AES-CBC-PAD --iv 00000000000000000000000000000000 \
        --id 01 -i "$T_TMP/msg" -o "$T_TMP/ct"
    expect_eq "ciphertext length" "$(stat -c %s "$T_TMP/ct" 2>/dev/null)" 32
    ;;
*) echo "unknown case $case_"; exit 2 ;;
esac
# every attempt fails the same way: the module must not have retried a
# handshake its own side refused
if grep -q "retrying" "$T_TMP/module.log"; then
    fail "the module retried"; grep retrying "$T_TMP/module.log" | head -n 3
else
    pass "no retries"
fi
t_finish
