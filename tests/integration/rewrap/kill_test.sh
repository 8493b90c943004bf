#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# akv-pkcs11-tool rewrap is safe to kill at any instant (docs/STORE.md):
# after >= 20 rewraps killed with SIGKILL at varying points (half through the
# documented AKV_TOOL_TEST_KILL_AT hook, half by kill -9 after a random
# 0-200 ms), every token object is still there exactly once, on an old or
# the new key version, and still decrypts what it encrypted; a final rewrap
# leaves no temp file and every object on the newest version.
#
# Needs: AKV_EMULATOR, AKV_MODULE, AKV_TOOL (set by tests/integration's
# CMakeLists), pkcs11-tool, jq. Knobs: AKV_KILL_OBJECTS (default 30),
# AKV_KILL_ROUNDS (default 20), AKV_KILL_MAX_MS (default 200).
# Wire-up (tests/integration/CMakeLists.txt): akv_it(rewrap.kill rewrap/kill_test.sh)
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../../lib/common.sh"
need pkcs11-tool jq
: "${AKV_TOOL:?set AKV_TOOL to the akv-pkcs11-tool binary}"
[ -x "$AKV_TOOL" ] || { echo "SKIP: $AKV_TOOL not built"; exit 77; }
[ -e "$AKV_MODULE" ] || { echo "SKIP: $AKV_MODULE not built"; exit 77; }

N=${AKV_KILL_OBJECTS:-30}
ROUNDS=${AKV_KILL_ROUNDS:-20}
KILL_MAX_MS=${AKV_KILL_MAX_MS:-200}
IV=000102030405060708090a0b0c0d0e0f

t_begin cmk
# The module re-reads the current key version quickly, so new objects and
# the tool agree on "current" right after a rotation.
emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1}'
tool() { "$AKV_TOOL" "$@" --config "$AKV_PKCS11_CONFIG"; }
lc() { tr 'A-F' 'a-f'; }
n_objs() { find "$STORE_DIR" -maxdepth 1 -name '*.obj' | wc -l; }
n_tmps() { find "$STORE_DIR" -maxdepth 1 -name '.*.tmp.*' | wc -l; }

# --- token objects: N AES keys, each encrypting the same plaintext --------
head -c 1000 /dev/urandom >"$T_TMP/plain"
created=0
for i in $(seq 1 "$N"); do
    id=$(printf '%04x' "$i")
    if p11 --keygen --key-type AES:32 --label "dek$i" --id "$id" >"$T_TMP/keygen.out" 2>&1 \
        && p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id "$id" \
            -i "$T_TMP/plain" -o "$T_TMP/ct.$i" >"$T_TMP/enc.out" 2>&1; then
        created=$((created + 1))
    else
        sed 's/^/    /' "$T_TMP/keygen.out" "$T_TMP/enc.out" | tail -n 20
    fi
done
expect_eq "created $N token objects" "$created" "$N"
expect_eq "$N records in the store" "$(n_objs)" "$N"
VERSIONS=$(printf '%s' "$KEY_VERSION" | lc)

# status_check WHAT - count unchanged, every record under a known version.
status_check() {
    local what=$1 js total unknown
    if ! tool status --json >"$T_TMP/status.json" 2>"$T_TMP/status.err"; then
        fail "$what: status exit non-zero"; sed 's/^/    /' "$T_TMP/status.err" | tail -n 10
        return
    fi
    js=$(cat "$T_TMP/status.json")
    total=$(jq '[.tokens[0].store.by_version[].count] | add // 0' <<<"$js")
    unknown=$(jq -r '.tokens[0].store.by_version[].version' <<<"$js" | lc \
        | grep -cvxF -f <(tr ' ' '\n' <<<"$VERSIONS") || true)
    if [ "$(n_objs)" = "$N" ] && [ "$total" = "$N" ] && [ "$unknown" = 0 ]; then
        pass "$what: $N records, all under known versions"
    else
        fail "$what: files $(n_objs), valid records $total, unknown versions $unknown"
    fi
}

status_check "before rotation"

# --- rotate and kill rewraps -----------------------------------------------
killed=0
for r in $(seq 1 "$ROUNDS"); do
    kid=$(emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" | jq -r .key.kid)
    VERSIONS="$VERSIONS $(printf '%s' "${kid##*/}" | lc)"
    rc=0
    if [ $((r % 2)) = 1 ]; then
        # Dies by SIGKILL right after the K-th record write.
        k=$((RANDOM % N + 1))
        # (braces: keep bash's "Killed" job notice out of the test output)
        { AKV_TOOL_TEST_KILL_AT=$k tool rewrap >"$T_TMP/rewrap.$r.out" 2>&1; } 2>/dev/null || rc=$?
        how="hook after $k writes"
    else
        tool rewrap >"$T_TMP/rewrap.$r.out" 2>&1 &
        pid=$!
        ms=$((RANDOM % KILL_MAX_MS))
        sleep "$(printf '0.%03d' "$ms")"
        kill -9 "$pid" 2>/dev/null || true
        { wait "$pid"; } 2>/dev/null || rc=$?
        how="kill -9 after $ms ms"
    fi
    # 137 = killed; 0 = finished before the kill arrived.
    if [ "$rc" = 137 ]; then killed=$((killed + 1)); fi
    if [ "$rc" != 137 ] && [ "$rc" != 0 ]; then
        fail "round $r ($how): rewrap exit $rc"; sed 's/^/    /' "$T_TMP/rewrap.$r.out" | tail -n 10
    fi
    status_check "round $r ($how, exit $rc)"
done
if [ "$killed" -ge $((ROUNDS / 2)) ]; then
    pass "$killed of $ROUNDS rewraps were killed midway"
else
    fail "only $killed of $ROUNDS rewraps were killed midway"
fi

# --- a final, uninterrupted rewrap ----------------------------------------
NEWEST=${VERSIONS##* }
expect_ok "final rewrap" tool rewrap
expect_grep "final rewrap: nothing failed" "rewrapped [0-9]+, already current [0-9]+, failed 0" "$T_TMP/last.out"
expect_eq "no temp files left" "$(n_tmps)" 0
expect_eq "record count unchanged" "$(n_objs)" "$N"
tool status --json >"$T_TMP/status.json"
expect_eq "all records on the newest version" \
    "$(jq -r '[.tokens[0].store.by_version[] | select(.count > 0) | .version] | join(",")' "$T_TMP/status.json" | lc)" \
    "$NEWEST"
expect_eq "status ok" "$(jq -r .ok "$T_TMP/status.json")" true

# --- every record still holds its key: decrypt through the module ----------
ok=0
for i in $(seq 1 "$N"); do
    id=$(printf '%04x' "$i")
    rm -f "$T_TMP/back"
    if p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id "$id" -i "$T_TMP/ct.$i" \
        -o "$T_TMP/back" >/dev/null 2>&1 && cmp -s "$T_TMP/plain" "$T_TMP/back"; then
        ok=$((ok + 1))
    fi
done
expect_eq "every token object decrypts its ciphertext" "$ok" "$N"

# One more rotation: the tool must unwrap every record once more.
emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
expect_ok "rewrap after one more rotation" tool rewrap
expect_grep "every record unwrapped and rewrapped" "rewrapped $N, already current 0, failed 0" "$T_TMP/last.out"
t_finish
