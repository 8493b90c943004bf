#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator control CLI exit codes: 0 ok; 2 + a usage message for a
# command-line mistake (missing required option, unknown command, bad option
# value); 1 + "(HTTP status)" for a real failure (unknown vault, ...);
# --help works without a server.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

# clirc ARGS... -> sets RC, stdout in $WORK/out, stderr in $WORK/err
clirc() {
    RC=0
    cli "$@" > "$WORK/out" 2> "$WORK/err" || RC=$?
}

# --help needs neither --dir nor a server
RC=0; "$EMU" fault add --help > "$WORK/out" 2> "$WORK/err" || RC=$?
eq "$RC" 0 "fault add --help exit"
grep -q -- '--trickle-ms MS' "$WORK/out" || fail "fault add --help lacks --trickle-ms"
grep -q 'keyvault' "$WORK/out" && fail "fault add --help prints unrelated commands"
RC=0; "$EMU" serve --help > "$WORK/out" 2>&1 || RC=$?
eq "$RC" 0 "serve --help exit"
grep -q -- '--imds-port' "$WORK/out" || fail "serve --help"
ok "--help"

# shellcheck disable=SC2119
start_emu
cli keyvault create --name vaultc > /dev/null
for cmd in "keyvault create" "keyvault show" "keyvault set-policy --key-permissions get" \
    "keyvault set-policy --name vaultc --key-permissions get" \
    "keyvault key create --name k1" "keyvault key create --vault-name vaultc" \
    "keyvault key show --vault-name vaultc" "identity create" "identity show" \
    "ad sp create-for-rbac" "fault add --op get" "fault add --status 500" \
    "keyvault bogus --name vaultc" "bogus" "identity" \
    "keyvault create --name x" "keyvault key create --vault-name vaultc --name k1 --ops nosuchop" \
    "keyvault key create --vault-name vaultc --name k1 --expires yesterday"; do
    # shellcheck disable=SC2086
    clirc $cmd
    eq "$RC" 2 "exit status of '$cmd'"
    grep -q '^usage:' "$WORK/err" || fail "'$cmd' prints no usage: $(cat "$WORK/err")"
    grep -q 'HTTP 400' "$WORK/err" && fail "'$cmd' reports an HTTP error: $(cat "$WORK/err")"
    [ ! -s "$WORK/out" ] || fail "'$cmd' printed on stdout"
done
clirc keyvault create
grep -q '^akv-emulator: keyvault create: --name is required$' "$WORK/err" || fail "missing --name message: $(cat "$WORK/err")"
grep -q 'keyvault create|show --name V' "$WORK/err" || fail "keyvault create usage line"
grep -q 'fault add' "$WORK/err" && fail "keyvault create usage shows fault commands"
ok "usage errors exit 2"

# real failures stay exit 1 with the HTTP status
clirc keyvault show --name nosuchvault
eq "$RC" 1 "unknown vault exit"
grep -q 'vault not found: nosuchvault (HTTP 404)' "$WORK/err" || fail "unknown vault message: $(cat "$WORK/err")"
clirc keyvault key show --vault-name vaultc --name nokey
eq "$RC" 1 "unknown key exit"
clirc identity show --name nobody
eq "$RC" 1 "unknown identity exit"
grep -q '(HTTP 404)' "$WORK/err" || fail "unknown identity message"
clirc keyvault key create --vault-name vaultc --name k1 --size 1000
eq "$RC" 1 "service-side BadParameter exit"
clirc keyvault show --name vaultc
eq "$RC" 0 "ok exit"
eq "$(jq -r .name "$WORK/out")" vaultc "ok output"
ok "failures exit 1, success 0"

stop_emu
clirc keyvault list
eq "$RC" 1 "no server running"
grep -q 'server not running' "$WORK/err" || fail "no server message: $(cat "$WORK/err")"
RC=0; "$EMU" keyvault list 2> "$WORK/err" || RC=$?
eq "$RC" 2 "missing --dir"
ok "no server / no --dir"
echo PASS
