#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# GnuTLS p11tool: token and objects listed with RFC 7512 URIs.
. "$(dirname "$0")/../lib/common.sh"
need p11tool
t_begin
withmod p11tool --provider "$AKV_MODULE" --list-tokens >"$T_TMP/tok" 2>&1 || true
expect_grep "token listed" "token=$TOKEN_LABEL" "$T_TMP/tok"
withmod p11tool --provider "$AKV_MODULE" --list-all "pkcs11:token=$TOKEN_LABEL" >"$T_TMP/all" 2>&1 || true
expect_grep "private key URI" "pkcs11:.*object=$KEY_NAME.*type=private" "$T_TMP/all"
expect_grep "public key URI" "pkcs11:.*object=$KEY_NAME.*type=public" "$T_TMP/all"
withmod p11tool --provider "$AKV_MODULE" --export-pubkey "pkcs11:token=$TOKEN_LABEL;object=$KEY_NAME;type=public" \
    >"$T_TMP/pub.pem" 2>"$T_TMP/err" || true
expect_grep "public key exported as PEM" "BEGIN PUBLIC KEY" "$T_TMP/pub.pem"
t_finish
