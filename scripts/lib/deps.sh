# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# akv_install_deps - installs (as root, with apt-get) the Debian 12 packages
# the build, the demo and the tests need; only what is missing, so a second
# run costs nothing. Set AKV_NO_INSTALL=1 to skip (e.g. not root).

AKV_DEPS_BUILD="build-essential cmake pkg-config libssl-dev libcurl4-openssl-dev
 libcjson-dev libmicrohttpd-dev libp11-kit-dev zlib1g-dev jq xxd ca-certificates
 scdoc"
AKV_DEPS_TOOLS="p11-kit opensc gnutls-bin libengine-pkcs11-openssl openssl"
# the Debian packages (scripts/package) and their smoke test
AKV_DEPS_PACKAGE="debhelper dpkg-dev lintian scdoc man-db"
AKV_DEPS_TEST="libcmocka-dev clang libclang-rt-14-dev clang-format clang-tidy valgrind wrk curl python3
 gdb libnss3-tools python3-pykcs11 p11-kit-modules
 openssh-server xxd"

akv_missing_pkgs() {
    local p missing=""
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    echo "$missing"
}

akv_install_deps() {
    local kind=$1 pkgs missing
    pkgs="$AKV_DEPS_BUILD $AKV_DEPS_TOOLS"
    if [ "$kind" = test ]; then pkgs="$pkgs $AKV_DEPS_TEST $AKV_DEPS_PACKAGE"; fi
    if [ "$kind" = package ]; then pkgs="$pkgs $AKV_DEPS_PACKAGE"; fi
    # shellcheck disable=SC2086
    missing=$(akv_missing_pkgs $pkgs)
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        [ "$kind" = test ] && missing="$missing nodejs npm"
    fi
    if [ -z "${missing// /}" ]; then
        return 0
    fi
    if [ "${AKV_NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
        echo "missing packages:$missing (run as root, or install them)" >&2
        return 1
    fi
    echo "==> apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
