#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The module under valgrind memcheck: a full wrap/unwrap round trip, the
# attribute cases and a revoked call, through our C client. Any invalid
# read/write, use of uninitialised memory or definite leak fails the test.
# (Skipped in the ASan build: the two do not mix.)
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
need valgrind
[ -z "${AKV_ASAN_PRELOAD:-}" ] || { echo "SKIP: sanitizer build"; exit 77; }
t_begin
vg() {
    valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --track-origins=yes --log-file="$T_TMP/vg.%p.txt" \
        "$AKV_P11CLIENT" "$AKV_MODULE" "$@"
}
expect_ok "roundtrip under memcheck" vg roundtrip "$KEY_NAME" sha256
expect_ok "attribute cases under memcheck" vg attrs "$KEY_NAME"
expect_ok "refused OAEP params under memcheck" vg bad-params "$KEY_NAME"
emu_cli keyvault delete-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" >/dev/null
vg roundtrip "$KEY_NAME" sha256 >/dev/null 2>&1 && rc=0 || rc=$?
expect_eq "revoked round trip fails cleanly (exit 1, not 99)" "$rc" 1
if cat "$T_TMP"/vg.*.txt 2>/dev/null | grep -q .; then
    fail "valgrind reported:"; head -n 60 "$T_TMP"/vg.*.txt || true
else pass "no valgrind report"; fi
t_finish
