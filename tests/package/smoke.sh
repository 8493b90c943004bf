#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Install / smoke / purge test of the Debian packages, run by scripts/test
# (as root, on the test machine) after scripts/package:
#   tests/package/smoke.sh DEBDIR
# 1. installs akv-pkcs11, akv-pkcs11-tools and akv-emulator from DEBDIR with
#    apt-get (refuses to run if any of them is already installed);
# 2. against the INSTALLED paths only: the module in
#    /usr/lib/<multiarch>/pkcs11, the emulator /usr/bin/akv-emulator (a
#    private one on free ports), `pkcs11-tool --module … -L/-O`,
#    `p11-kit list-modules` through the packaged registration,
#    `akv-pkcs11-tool status`, `man -w` of the three pages; the packaged
#    p11-kit file keeps the module out of a GnuTLS client (gnutls-cli with a
#    pkcs11: URL) and a copy in /etc/pkcs11/modules that names gnutls-cli in
#    enable-in lets it in (akv-pkcs11(7), FILES);
# 3. purges the packages and checks that no path they shipped is left
#    (/etc/akv-pkcs11 included), and that a configuration file the
#    administrator wrote in /etc/akv-pkcs11 survives remove and purge (it is
#    not the package's: no conffile, no maintainer script touches it).
# Prints one "N passed, M failed" line; exit 0 only if nothing failed.
set -euo pipefail
DEBDIR=$(cd "${1:?usage: smoke.sh DEBDIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PKGS=(akv-pkcs11 akv-pkcs11-tools akv-emulator)
DEBS=()
for p in "${PKGS[@]}"; do
    f=$(ls "$DEBDIR/${p}"_*.deb 2>/dev/null | head -n1 || true)
    [ -n "$f" ] || { echo "smoke: no ${p}_*.deb in $DEBDIR" >&2; exit 1; }
    DEBS+=("$f")
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
        echo "smoke: $p is already installed; purge it first" >&2; exit 1
    fi
done
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
export AKV_EMULATOR=/usr/bin/akv-emulator
export AKV_MODULE=/usr/lib/$MA/pkcs11/akv-pkcs11.so
export AKV_SRC=$SRC
MODFILE=/usr/share/p11-kit/modules/akv-pkcs11.module
OVERRIDE=/etc/pkcs11/modules/akv-pkcs11.module
[ -d /etc/pkcs11/modules ] && MADE_ETC_MODULES=0 || MADE_ETC_MODULES=1

# every path the packages ship, and which of them existed before (shared
# folders such as /usr/share/man/man1 must stay; ours must go)
SHIPPED=$(mktemp)
for f in "${DEBS[@]}"; do dpkg-deb -c "$f" | awk '{print $6}'; done |
    sed 's|^\./|/|; s|/$||' | grep -v '^$' | sort -u >"$SHIPPED"
PREEXIST=$(mktemp)
while read -r p; do [ ! -e "$p" ] || echo "$p"; done <"$SHIPPED" >"$PREEXIST"

# apt: wait for the dpkg lock (another apt run on the machine) instead of
# failing at once; dpkg itself has no wait, so it is retried for a minute
apt_() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -y -qq "$@"; }
dpkg_() {
    local out
    for _ in $(seq 60); do
        if out=$(dpkg "$@" 2>&1); then return 0; fi
        grep -q 'lock' <<<"$out" || { echo "$out"; return 1; }
        sleep 1
    done
    echo "$out"; return 1
}

purge_all() {
    rm -f "$OVERRIDE" /etc/akv-pkcs11/config.json
    [ "$MADE_ETC_MODULES" = 0 ] || rmdir /etc/pkcs11/modules /etc/pkcs11 2>/dev/null || true
    dpkg_ --purge "${PKGS[@]}" >/dev/null 2>&1 || true
}

# shellcheck source=tests/lib/common.sh
. "$SRC/tests/lib/common.sh"
need p11-kit pkcs11-tool p11tool gnutls-cli man jq
# whatever happens from here on, the packages are purged at exit: t_begin
# installs t_cleanup as the EXIT trap, so t_cleanup purges first
eval "t_cleanup_common() $(declare -f t_cleanup | tail -n +2)"
t_cleanup() {
    local rc=$?
    purge_all
    rm -f "$SHIPPED" "$PREEXIST"
    (exit "$rc")
    t_cleanup_common
}
trap t_cleanup EXIT

echo "==> apt-get install ${DEBS[*]##*/}"
apt_ install --no-install-recommends "${DEBS[@]}" >/dev/null
t_begin   # the emulator from /usr/bin/akv-emulator, a vault, a key, a config

## installed paths
for f in "$AKV_MODULE" "$MODFILE" /usr/bin/akv-pkcs11-tool /usr/bin/akv-emulator \
         /usr/share/doc/akv-pkcs11/examples/config.json.example; do
    [ -f "$f" ] && pass "installed: $f" || fail "missing: $f"
done
[ -d /etc/akv-pkcs11 ] && pass "config folder /etc/akv-pkcs11" || fail "no /etc/akv-pkcs11"
expect_eq "module is dpkg-owned by akv-pkcs11" \
    "$(dpkg -S "$AKV_MODULE" | cut -d: -f1)" akv-pkcs11
for page in akv-pkcs11.7 akv-pkcs11-tool.1 akv-emulator.1; do
    s=${page##*.}
    expect_eq "man -w ${page%.*}($s)" "$(man -w "$s" "${page%.*}" 2>&1)" \
        "/usr/share/man/man$s/$page.gz"
done
man -P cat akv-pkcs11-tool >"$T_TMP/man.txt" 2>/dev/null || true
expect_grep "man akv-pkcs11-tool renders" 'akv-pkcs11-tool - administer' "$T_TMP/man.txt"

## the installed module against the installed emulator
expect_ok "pkcs11-tool -L" p11 -L
expect_grep "pkcs11-tool -L shows the token" "token label +: $TOKEN_LABEL" "$T_TMP/last.out"
emu_cli stats --reset >/dev/null
expect_ok "pkcs11-tool -O" p11 -O
expect_grep "pkcs11-tool -O shows the vault key" "label: +$KEY_NAME" "$T_TMP/last.out"
expect_eq "the key came from the emulator (GET key)" \
    "$([ "$(emu_cli stats | jq .get)" -gt 0 ] && echo yes || echo no)" yes
expect_ok "akv-pkcs11-tool status" akv-pkcs11-tool status --config "$AKV_PKCS11_CONFIG"
expect_grep "status ok" '^status: ok' "$T_TMP/last.out"

## the packaged p11-kit registration
p11-kit list-modules >"$T_TMP/lm" 2>&1 || true
expect_grep "p11-kit list-modules: module" "^akv-pkcs11: akv-pkcs11.so" "$T_TMP/lm"
expect_grep "p11-kit list-modules: token" "token: $TOKEN_LABEL" "$T_TMP/lm"
loads() { # NAME CMD... - how often the loader opened the installed module
    local name=$1; shift
    LD_DEBUG=files timeout 60 "$@" </dev/null >"$T_TMP/$name.out" 2>&1 || true
    grep -cF "file=$AKV_MODULE " "$T_TMP/$name.out" || true
}
GCLI=(gnutls-cli --x509cafile="pkcs11:token=$TOKEN_LABEL" --tofu -p 9 127.0.0.1)
expect_eq "gnutls-cli does not load the module" "$(loads gcli "${GCLI[@]}")" 0
n=$(loads p11tool p11tool --list-tokens)
[ "$n" -gt 0 ] && pass "p11tool loads the module" || fail "p11tool did not load the module"
# how to enable it for more programs: a copy in /etc/pkcs11/modules
mkdir -p /etc/pkcs11/modules
sed 's/^enable-in: .*/&, gnutls-cli/' "$MODFILE" >"$OVERRIDE"
n=$(loads gcli-enabled "${GCLI[@]}")
[ "$n" -gt 0 ] && pass "with $OVERRIDE naming gnutls-cli, gnutls-cli loads it" ||
    fail "the /etc/pkcs11/modules copy did not enable gnutls-cli"
rm -f "$OVERRIDE"
[ "$MADE_ETC_MODULES" = 0 ] || rmdir /etc/pkcs11/modules /etc/pkcs11 2>/dev/null || true

## remove keeps the administrator's configuration, purge leaves nothing else
cp "$AKV_PKCS11_CONFIG" /etc/akv-pkcs11/config.json
expect_ok "apt-get remove" apt_ remove "${PKGS[@]}"
[ -f /etc/akv-pkcs11/config.json ] && pass "remove keeps /etc/akv-pkcs11/config.json" ||
    fail "remove deleted the administrator's config.json"
# apt-get cannot name packages in state "rc" that came from local files
expect_ok "dpkg --purge" dpkg_ --purge "${PKGS[@]}"
[ -f /etc/akv-pkcs11/config.json ] && pass "purge keeps the administrator's config.json" ||
    fail "purge deleted a file the package did not ship"
rm -f /etc/akv-pkcs11/config.json
rmdir /etc/akv-pkcs11 2>/dev/null || true
left=$(while read -r p; do
           [ -e "$p" ] || [ -L "$p" ] || continue
           grep -qxF "$p" "$PREEXIST" || echo "$p"
       done <"$SHIPPED")
expect_eq "nothing the packages shipped is left" "$left" ""
# a purge with no administrator file leaves no /etc/akv-pkcs11 either
apt_ install --no-install-recommends "${DEBS[@]}" >/dev/null
apt_ purge "${PKGS[@]}" >/dev/null
[ ! -e /etc/akv-pkcs11 ] && pass "purge removes /etc/akv-pkcs11" || fail "/etc/akv-pkcs11 left after purge"
for p in "${PKGS[@]}"; do
    expect_eq "dpkg no longer knows $p" \
        "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || echo gone)" gone
done
t_finish
