# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Prelude for integration tests: strict mode, PASS/FAIL bookkeeping, an
# emulator with the basic vault setup, and wrappers for the real clients.
# Needs AKV_EMULATOR, AKV_MODULE (and AKV_P11CLIENT, AKV_TOOL where used).
set -euo pipefail

AKV_SRC=${AKV_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib/emulator.sh
. "$AKV_SRC/tests/lib/emulator.sh"

T_FAILS=0
T_PASSES=0

pass() { T_PASSES=$((T_PASSES + 1)); printf 'PASS: %s\n' "$*"; }
fail() { T_FAILS=$((T_FAILS + 1)); printf 'FAIL: %s\n' "$*"; }

# expect_eq WHAT GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi
}
# expect_ok WHAT CMD... - the command must exit 0.
expect_ok() {
    local what=$1; shift
    if "$@" >"$T_TMP/last.out" 2>&1; then pass "$what"; else
        fail "$what (exit $?)"; sed 's/^/    /' "$T_TMP/last.out" | tail -n 30; fi
}
# expect_fail WHAT CMD... - the command must exit non-zero.
expect_fail() {
    local what=$1; shift
    if "$@" >"$T_TMP/last.out" 2>&1; then
        fail "$what (unexpected success)"; sed 's/^/    /' "$T_TMP/last.out" | tail -n 30
    else pass "$what"; fi
}
# expect_grep WHAT PATTERN FILE
expect_grep() {
    if grep -Eq -- "$2" "$3"; then pass "$1"; else
        fail "$1: /$2/ not in $3"; sed 's/^/    /' "$3" | tail -n 20; fi
}

need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
    done
}

# t_scan_secrets - the module logs at trace level in every integration test
# (AKV_TEST_LOG_LEVEL, default trace); none of its log may hold an access
# token (JWT), the client secret, an Authorization header or a wrapkey body.
t_scan_secrets() {
    local log f
    for log in "$T_TMP"/*.log; do
        [ -f "$log" ] || continue
        if grep -Eq 'eyJ[A-Za-z0-9_-]{8,}\.|Authorization|Bearer [A-Za-z0-9]|client_secret=|client_assertion=|"value" *:' "$log"; then
            fail "log $(basename "$log") holds a token, header or key value"
            grep -En 'eyJ[A-Za-z0-9_-]{8,}\.|Authorization|Bearer [A-Za-z0-9]|client_secret=|client_assertion=|"value" *:' "$log" | head -n 5 | cut -c1-160 || true
        fi
        f=${SP_SECRET_FILE:-}
        if [ -n "$f" ] && [ -s "$f" ] && grep -qF -- "$(cat "$f")" "$log"; then
            fail "log $(basename "$log") holds the client secret"
        fi
    done
}

t_finish() {
    t_scan_secrets
    echo "${T_PASSES} passed, ${T_FAILS} failed"
    [ "$T_FAILS" -eq 0 ]
}

t_cleanup() {
    local rc=$?
    emu_stop || true
    if [ "${AKV_KEEP_TMP:-0}" != 1 ]; then rm -rf "$T_TMP"; fi
    exit "$rc"
}

# t_begin [KEYNAME] - temp dir, emulator, basic setup; cleanup on exit.
t_begin() {
    need jq openssl
    T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/akv-it.XXXXXX")
    export T_TMP
    trap t_cleanup EXIT
    emu_start
    emu_setup_basic "${1:-cmk}"
}

# withmod CMD... - run a program that loads the module; in the ASan build
# the uninstrumented program needs the sanitizer runtimes preloaded.
withmod() {
    if [ -n "${AKV_ASAN_PRELOAD:-}" ]; then
        LD_PRELOAD="$AKV_ASAN_PRELOAD" \
            ASAN_OPTIONS="detect_leaks=0:exitcode=86" "$@"
    else
        "$@"
    fi
}

# p11 ARGS... - pkcs11-tool on our module (never logs in: no PIN needed).
p11() { withmod pkcs11-tool --module "$AKV_MODULE" "$@"; }

# ver_id VERSION - a key version (32 hex) as the CKA_ID hex string.
ver_id() { printf '%s' "$1" | tr 'A-F' 'a-f'; }
