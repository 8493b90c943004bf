#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Java SunPKCS11 (OpenJDK 17) against the module and a private emulator:
# tests/integration/java/AkvSunPkcs11Test.java, run twice (a second JVM must
# find the token object the first one stored). Skips (77) without a JDK -
# scripts/test does not install one - and in the ASan build, where the JVM
# (its own signal handling and memory layout) and a preloaded ASan runtime
# do not work together.
. "$(dirname "$0")/../lib/common.sh"
if [ -n "${AKV_ASAN_PRELOAD:-}" ]; then echo "SKIP: the JVM does not run under ASan"; exit 77; fi
need java javac
t_begin

# SunPKCS11 keeps internals the test needs to reach a key without a
# certificate (see vaultKeys in the Java file).
JOPTS=(--add-modules jdk.crypto.cryptoki --add-exports jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED)
ROPTS=("${JOPTS[@]}" --add-opens jdk.crypto.cryptoki/sun.security.pkcs11=ALL-UNNAMED)

mkdir -p "$T_TMP/classes" "$T_TMP/state"
expect_ok "javac AkvSunPkcs11Test.java" javac "${JOPTS[@]}" -d "$T_TMP/classes" \
    "$AKV_SRC/tests/integration/java/AkvSunPkcs11Test.java"
[ "$T_FAILS" -eq 0 ] || t_finish

AKV_TEST_KEY_NAME=$KEY_NAME
AKV_TEST_KEY_VERSION=$KEY_VERSION
AKV_TEST_KEY_N=$(emu_cli keyvault key show --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq -r .key.n)
export AKV_TEST_KEY_NAME AKV_TEST_KEY_VERSION AKV_TEST_KEY_N AKV_MODULE AKV_PKCS11_CONFIG

# run PHASE - one JVM; its own PASS/FAIL lines go to the log as they are.
run() {
    java "${ROPTS[@]}" -cp "$T_TMP/classes" AkvSunPkcs11Test "$1" "$T_TMP/state" \
        >"$T_TMP/java-$1.out" 2>&1
}

emu_cli stats --reset >/dev/null
if run main; then pass "java main phase"; else fail "java main phase (exit $?)"; fi
sed 's/^/    /' "$T_TMP/java-main.out"
# The wrap went to the vault (wrapKey), the unwraps and RSA decrypt too.
stats=$(emu_cli stats)
expect_ok "vault wrapKey was called" test "$(jq -r '.wrapkey // 0' <<<"$stats")" -ge 1
expect_ok "vault unwrapKey was called" test "$(jq -r '.unwrapkey // 0' <<<"$stats")" -ge 2
expect_ok "the data key is stored (one 0600 file)" \
    test "$(find "$STORE_DIR" -name '*.obj' -perm 0600 | wc -l)" = 1
# SunPKCS11 sends a 2.40 module the v2.40 CK_GCM_PARAMS (no ulIvBits) first
# and retries with the v3.0 one only after CKR_MECHANISM_PARAM_INVALID; the
# module takes both, so no C_EncryptInit/C_DecryptInit is refused (the
# module logs every failing call at debug level).
expect_ok "module log written" test -s "$T_TMP/module.log"
expect_ok "no cipher init refused with 0x71 (PARAM_INVALID)" \
    bash -c "! grep -Eq 'C_(En|De)cryptInit: rv 0x71' '$T_TMP/module.log'"

if run reopen; then pass "java reopen phase"; else fail "java reopen phase (exit $?)"; fi
sed 's/^/    /' "$T_TMP/java-reopen.out"
expect_ok "the stored data key is gone" test -d "$STORE_DIR" -a "$(find "$STORE_DIR" -name '*.obj' | wc -l)" = 0
t_finish
