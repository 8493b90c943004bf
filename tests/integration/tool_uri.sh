#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# akv-pkcs11-tool uri: the RFC 7512 URI of every object and of the older
# key version the token knows; each printed URI finds exactly its object in
# GnuTLS p11tool (another implementation of RFC 7512).
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool p11tool
: "${AKV_TOOL:?}"
t_begin
expect_ok "keygen token object" p11 --keygen --key-type AES:32 --label dek --id 01
uri() { "$AKV_TOOL" uri --config "$AKV_PKCS11_CONFIG" --module "$AKV_MODULE" "$@"; }
pct() { printf '%s' "$1" | tr 'a-f' 'A-F' | sed -E 's/(..)/%\1/g'; }
V1=$(pct "$KEY_VERSION")
uri >"$T_TMP/u1" 2>"$T_TMP/u1.err" && rc=0 || rc=$?
cat "$T_TMP/u1"
expect_eq "uri exit 0" "$rc" 0
expect_eq "three objects" "$(wc -l <"$T_TMP/u1")" 3
expect_grep "private key URI (id = version bytes)" "^pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;id=$V1;type=private$" "$T_TMP/u1"
expect_grep "public key URI" "^pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;id=$V1;type=public$" "$T_TMP/u1"
expect_grep "token object URI" "^pkcs11:token=$TOKEN_LABEL;object=dek;id=%01;type=secret-key$" "$T_TMP/u1"

# listed_by URI NAME - p11tool lists exactly one object for URI, named NAME
listed_by() {
    withmod p11tool --provider "$AKV_MODULE" --list-all "$1" >"$T_TMP/p" 2>&1 || true
    expect_eq "p11tool finds one object for $1" "$(grep -c 'URL: pkcs11:' "$T_TMP/p" || true)" 1
    expect_grep "p11tool names it $2" "URL: pkcs11:.*object=$2" "$T_TMP/p"
}
listed_by "$(grep 'type=private' "$T_TMP/u1")" "$KEY_NAME"
listed_by "$(grep 'type=secret-key' "$T_TMP/u1")" dek

# after a rotation the old version is listed by the module only for its
# CKA_ID; uri prints it from the version catalog
emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
expect_ok "module sees the new version" p11 -O
uri >"$T_TMP/u2" 2>&1 || true
expect_eq "five objects after rotation" "$(wc -l <"$T_TMP/u2")" 5
expect_grep "old version still printed" "^pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;id=$V1;type=private$" "$T_TMP/u2"
expect_eq "two private key versions" "$(grep -c 'type=private' "$T_TMP/u2")" 2
listed_by "pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;id=$V1;type=private" "$KEY_NAME"
uri --token nosuch >"$T_TMP/u3" 2>&1 || true
expect_eq "--token of no token prints nothing" "$(wc -l <"$T_TMP/u3")" 0
"$AKV_TOOL" uri --config "$AKV_PKCS11_CONFIG" --module /nonexistent.so >/dev/null 2>"$T_TMP/u4" && rc=0 || rc=$?
expect_eq "a missing module: exit 1" "$rc" 1
expect_grep "says so" "cannot load the module /nonexistent.so" "$T_TMP/u4"
t_finish
