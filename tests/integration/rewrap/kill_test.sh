#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# akv-pkcs11-tool rewrap and the module's store writes are safe to kill at
# any instant (docs/STORE.md): the store starts as a legacy (format 1) store
# whose values the test knows; after >= 20 rewraps killed with SIGKILL at
# varying points (half through the documented AKV_TOOL_TEST_KILL_AT hook,
# half by kill -9 after a random 0-200 ms; the first one may die while
# creating the store key and adopting the legacy records), each followed by
# a module attribute write (C_SetAttributeValue: reseal + 3-step write)
# killed after a random 0-300 ms, every token object is still there exactly
# once, accepted (none refused), on an old or the new key version, and
# still holds its value; a final rewrap leaves no temp file and every
# object in format 2 on the newest version.
#
# Needs: AKV_EMULATOR, AKV_MODULE, AKV_TOOL (set by tests/integration's
# CMakeLists), pkcs11-tool, jq. Knobs: AKV_KILL_OBJECTS (default 30),
# AKV_KILL_ROUNDS (default 20), AKV_KILL_MAX_MS (default 200).
# Wire-up (tests/integration/CMakeLists.txt): akv_it(rewrap.kill rewrap/kill_test.sh)
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../../lib/common.sh"
need pkcs11-tool jq python3
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
ED="python3 $AKV_SRC/tests/integration/store/recedit.py"

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

# --- make it a legacy (format 1) store with values this test knows --------
p11 --read-object --type pubkey --id "$(ver_id "$KEY_VERSION")" -o "$T_TMP/pub.der" >/dev/null 2>&1
declare -A KEYOF
for f in "$STORE_DIR"/*.obj; do
    idhex=$($ED dump "$f" | jq -r '.attrs' | grep -o '020100000000000002000000[0-9a-f]\{4\}' | tail -c 5)
    k=$(openssl rand -hex 32)
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$k" >"$T_TMP/k.bin"
    openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$T_TMP/pub.der" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
        -pkeyopt rsa_mgf1_md:sha256 -in "$T_TMP/k.bin" -out "$T_TMP/w.bin"
    $ED legacy "$f" "$f" "$KEY_KID" "$T_TMP/w.bin"
    KEYOF[$idhex]=$k
done
rm -f "$STORE_DIR/.storekey" "$STORE_DIR/.manifest"
expect_eq "$N legacy records with known values" "${#KEYOF[@]}" "$N"

# status_check WHAT - count unchanged, every record under a known version.
status_check() {
    local what=$1 js total unknown refused
    if [ ! -e "$STORE_DIR/.storekey" ]; then
        # killed before the store key existed: still a legacy store
        expect_eq "$what: legacy store intact" "$(n_objs)" "$N"
        return
    fi
    if ! tool status --json >"$T_TMP/status.json" 2>"$T_TMP/status.err"; then
        fail "$what: status exit non-zero"; sed 's/^/    /' "$T_TMP/status.err" | tail -n 10
        return
    fi
    js=$(cat "$T_TMP/status.json")
    total=$(jq '[.tokens[0].store.by_version[].count] | add // 0' <<<"$js")
    refused=$(jq '.tokens[0].store.refused // 0' <<<"$js")
    unknown=$(jq -r '.tokens[0].store.by_version[].version' <<<"$js" | lc \
        | grep -cvxF -f <(tr ' ' '\n' <<<"$VERSIONS") || true)
    if [ "$(n_objs)" = "$N" ] && [ "$total" = "$N" ] && [ "$unknown" = 0 ] && [ "$refused" = 0 ]; then
        pass "$what: $N records, all accepted, under known versions"
    else
        fail "$what: files $(n_objs), valid records $total, refused $refused, unknown versions $unknown"
    fi
}

status_check "legacy store before rotation"

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
    # A module write killed midway: C_SetAttributeValue reseals the record
    # and writes it in three steps (docs/STORE.md "Record write").
    id=$(printf '%04x' $((RANDOM % N + 1)))
    p11 --type secrkey --id "$id" --set-id "$id" >/dev/null 2>&1 &
    pid=$!
    ms=$((RANDOM % 300))
    sleep "$(printf '0.%03d' "$ms")"
    kill -9 "$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true
    status_check "round $r: module write to $id killed after $ms ms"
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

# --- every record still holds its value: encrypt through the module, ------
# --- decrypt with openssl and the value the legacy record was given --------
ok=0
for i in $(seq 1 "$N"); do
    id=$(printf '%04x' "$i")
    rm -f "$T_TMP/ct" "$T_TMP/back"
    if p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id "$id" -i "$T_TMP/plain" \
        -o "$T_TMP/ct" >/dev/null 2>&1 &&
        openssl enc -d -aes-256-cbc -K "${KEYOF[$id]}" -iv "$IV" -in "$T_TMP/ct" \
            -out "$T_TMP/back" 2>/dev/null && cmp -s "$T_TMP/plain" "$T_TMP/back"; then
        ok=$((ok + 1))
    fi
done
expect_eq "every token object still holds its value" "$ok" "$N"
nv2=0
for f in "$STORE_DIR"/*.obj; do
    [ "$($ED dump "$f" | jq .format)" = 2 ] && nv2=$((nv2 + 1))
done
expect_eq "every record in format 2" "$nv2" "$N"

# One more rotation: the tool must unwrap every record once more.
emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
expect_ok "rewrap after one more rotation" tool rewrap
expect_grep "every record unwrapped and rewrapped" "rewrapped $N, already current 0, failed 0" "$T_TMP/last.out"
t_finish
