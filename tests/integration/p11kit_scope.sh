#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The p11-kit module file we ship (conf/akv-pkcs11.module.in) keeps the
# module out of programs that have no business loading it: GnuTLS programs
# that initialise p11-kit's registered modules (gnutls-cli given a pkcs11:
# URL; any GnuTLS client such as git's or apt's https transport, here
# p11tool's binary under another name) must not load it, while p11-kit and
# p11tool do. "Loaded" is read from the dynamic loader (LD_DEBUG=files), so
# a load that does no network call is seen too; the vault's request count
# is checked as well. A control run with the same file minus its enable-in
# line shows the probe sees a load.
# Usage: p11kit_scope.sh
. "$(dirname "$0")/../lib/common.sh"
need p11-kit p11tool gnutls-cli
t_begin
unshare -m true 2>/dev/null || { echo "SKIP: needs unshare -m (root)"; exit 77; }
# p11-kit reads /usr/share/p11-kit/modules and /etc/pkcs11/modules; each run
# gets a private mount namespace where both hold only our file (p11kit.sh).
MODDIR="$T_TMP/modules"
mkdir -p "$MODDIR" "$T_TMP/bin"
# the file as `cmake --install` writes it, plus the config (GnuTLS does not
# pass x-init-reserved; AKV_PKCS11_CONFIG is exported by emu_setup_basic)
write_module() { # ENABLE_IN_LINE(yes|no)
    sed "s|@AKV_MODULE_PATH@|$AKV_MODULE|" "$AKV_SRC/conf/akv-pkcs11.module.in" |
        if [ "$1" = yes ]; then cat; else grep -v '^enable-in:'; fi \
        >"$MODDIR/akv-pkcs11.module"
}
# in_ns CMD... - with only our module file registered, loader log on. In
# the ASan build the runtimes are preloaded only when PRELOAD=1 (programs
# whose use of the module is checked): gnutls-cli under a preloaded ASan
# hangs at exit until `timeout`; where only the loader's log counts, an
# instrumented module that aborts after being opened still shows as opened.
in_ns() {
    unshare -m bash -c 'mount --bind "$1" /usr/share/p11-kit/modules &&
        { [ ! -d /etc/pkcs11/modules ] || mount --bind "$1" /etc/pkcs11/modules; } &&
        shift && { [ "${PRELOAD:-0}" != 1 ] || [ -z "${AKV_ASAN_PRELOAD:-}" ] || export LD_PRELOAD="$AKV_ASAN_PRELOAD" ASAN_OPTIONS=detect_leaks=0:exitcode=86; } &&
        LD_DEBUG=files exec timeout 60 "$@" </dev/null' _ "$MODDIR" "$@"
}
# loads NAME CMD... - prints how often the loader opened our module
loads() {
    local name=$1; shift
    in_ns "$@" >"$T_TMP/$name.out" 2>&1 || true
    grep -cF "file=$AKV_MODULE " "$T_TMP/$name.out" || true
}
# a GnuTLS program that is neither p11tool nor p11-kit
cp "$(command -v p11tool)" "$T_TMP/bin/git-remote-https"
GNUTLS_CLI=(gnutls-cli --x509cafile="pkcs11:token=$TOKEN_LABEL" --tofu -p 9 127.0.0.1)

write_module yes
expect_grep "shipped file has the enable-in line" '^enable-in: ' "$MODDIR/akv-pkcs11.module"
emu_cli stats --reset >/dev/null
n=$(loads gnutls-cli "${GNUTLS_CLI[@]}")
expect_eq "gnutls-cli with a pkcs11: URL does not load the module" "$n" 0
n=$(loads renamed "$T_TMP/bin/git-remote-https" --list-tokens)
expect_eq "a GnuTLS program listing every token does not load the module" "$n" 0
if grep -q "token=$TOKEN_LABEL" "$T_TMP/renamed.out"; then
    fail "the token was listed by git-remote-https"
else pass "the token is not listed by git-remote-https"; fi
emu_cli stats >"$T_TMP/stats"
expect_eq "no request reached the emulator from those programs" \
    "$(jq '[.. | numbers] | add // 0' "$T_TMP/stats")" 0
n=$(PRELOAD=1 loads p11tool p11tool --list-tokens)
[ "$n" -gt 0 ] && pass "p11tool loads the module ($n loader lines)" ||
    fail "p11tool did not load the module"
expect_grep "p11tool lists the token" "token=$TOKEN_LABEL" "$T_TMP/p11tool.out"
n=$(PRELOAD=1 loads p11kit p11-kit list-modules)
[ "$n" -gt 0 ] && pass "p11-kit list-modules loads the module" ||
    fail "p11-kit list-modules did not load the module"
expect_grep "p11-kit list-modules lists the token" "token: $TOKEN_LABEL" "$T_TMP/p11kit.out"
# p11-kit server (remoting into a container) runs its helper
# p11-kit-server, which the enable-in line names: a client through
# p11-kit-client.so sees the token
CLIENT_SO=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
if [ -f "$CLIENT_SO" ] && command -v pkcs11-tool >/dev/null; then
    unshare -m bash -c 'mount --bind "$1" /usr/share/p11-kit/modules &&
        { [ ! -d /etc/pkcs11/modules ] || mount --bind "$1" /etc/pkcs11/modules; } &&
        { [ -z "${AKV_ASAN_PRELOAD:-}" ] || export LD_PRELOAD="$AKV_ASAN_PRELOAD" ASAN_OPTIONS=detect_leaks=0:exitcode=86; }
        p11-kit server -f -n "$2" "pkcs11:token=$4" >/dev/null 2>&1 & sp=$!
        for _ in $(seq 50); do [ -S "$2" ] && break; sleep 0.1; done
        P11_KIT_SERVER_ADDRESS="unix:path=$2" timeout 60 pkcs11-tool --module "$3" -L
        kill "$sp"; wait "$sp" 2>/dev/null || true' \
        _ "$MODDIR" "$T_TMP/server.sock" "$CLIENT_SO" "$TOKEN_LABEL" \
        >"$T_TMP/server.out" 2>&1 </dev/null || true
    expect_grep "p11-kit server exports the token" "token label +: $TOKEN_LABEL" "$T_TMP/server.out"
else
    echo "p11-kit-client.so or pkcs11-tool missing: p11-kit server case not run"
fi

# control: the same file without enable-in is loaded by both, so the zero
# counts above come from the enable-in line and not from a blind probe
write_module no
emu_cli stats --reset >/dev/null
n=$(loads gnutls-cli-control "${GNUTLS_CLI[@]}")
[ "$n" -gt 0 ] && pass "control: without enable-in gnutls-cli loads it" ||
    fail "control: gnutls-cli did not load the module without enable-in"
n=$(loads renamed-control "$T_TMP/bin/git-remote-https" --list-tokens)
[ "$n" -gt 0 ] && pass "control: without enable-in git-remote-https loads it" ||
    fail "control: git-remote-https did not load the module without enable-in"
emu_cli stats >"$T_TMP/stats"
echo "control: requests to the emulator without enable-in: $(jq -c . "$T_TMP/stats")"
t_finish
