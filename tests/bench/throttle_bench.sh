#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Throttling across a fleet: P processes x T threads of the module hammer
# one vault of the emulator with its service-limit throttling on
# (--throttle; --throttle-scale S shrinks the published budget of 4,000
# RSA-2048 operations per 10 s so a 2-core machine can exceed it). Each
# round is a Key Vault wrapkey + unwrapkey (p11client threads). Prints the
# vault operations per second achieved against the budget (target: at least
# 90 %), the 429s the vault sent, and the calls that failed (target: 0 -
# every call must succeed within http.budget_ms: the per-process pacer,
# keyvault/pace.h, turns the burst into a steady rate).
# Fails only when it cannot measure.
set -euo pipefail
AKV_SRC=${AKV_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$AKV_SRC/tests/lib/common.sh"
: "${AKV_P11CLIENT:?}"
AKV_TEST_LOG_LEVEL=${AKV_TEST_LOG_LEVEL:-warn}
SCALE=${AKV_BENCH_THROTTLE_SCALE:-0.05}
PROCS=${AKV_BENCH_PROCS:-4}
THREADS=${AKV_BENCH_THREADS:-4}
SECONDS_WANTED=${AKV_BENCH_SECONDS:-40}
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/akv-bench.XXXXXX")
export T_TMP
trap t_cleanup EXIT
emu_start --throttle --throttle-scale "$SCALE"
emu_setup_basic cmk
emu_write_config "$AKV_PKCS11_CONFIG" '{"http":{"verify_challenge_resource":false,"budget_ms":30000}}'
budget=$(awk -v s="$SCALE" 'BEGIN { printf "%.1f", 4000 * s / 10 }') # ops/s
# Rounds per thread so the run lasts about WARMUP + SECONDS_WANTED + 15 s
# at the budget: the steady rate is measured from WARMUP (past the first
# burst and its Retry-After) for SECONDS_WANTED, while every process still
# runs; the whole run's rate is printed too.
WARMUP=${AKV_BENCH_WARMUP:-12}
iters=$(awk -v b="$budget" -v s="$((SECONDS_WANTED + WARMUP + 15))" -v p="$PROCS" -v t="$THREADS" \
    'BEGIN { n = int(b * s / 2 / p / t); if (n < 1) n = 1; print n }')
# operations the vault served: every counted request minus those it refused
# with 429 (the emulator counts both; "throttled" is the 429s)
served='(.wrapkey // 0) + (.unwrapkey // 0) + (.get // 0) - (.throttled // 0)'
ops() { emu_cli stats | jq -r "$served"; }
emu_cli stats --reset >/dev/null
start=$(date +%s%3N)
pids=()
for p in $(seq 1 "$PROCS"); do
    "$AKV_P11CLIENT" "$AKV_MODULE" threads "$KEY_NAME" "$THREADS" "$iters" \
        >"$T_TMP/proc$p.out" 2>&1 &
    pids+=($!)
done
sleep "$WARMUP"
m0=$(ops); s0=$(date +%s%3N)
sleep "$SECONDS_WANTED"
m1=$(ops); s1=$(date +%s%3N)
running=0
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
for pid in "${pids[@]}"; do wait "$pid" || true; done
end=$(date +%s%3N)
failed=0
for p in $(seq 1 "$PROCS"); do
    f=$(grep -o 'failures=[0-9]*' "$T_TMP/proc$p.out" | cut -d= -f2 || true)
    [ -n "$f" ] || { echo "process $p did not report:"; cat "$T_TMP/proc$p.out"; exit 1; }
    failed=$((failed + f))
done
stats=$(emu_cli stats)
ok_ops=$(jq -r "$served" <<<"$stats")
n429=$(jq -r '.throttled // 0' <<<"$stats")
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n * 1000 / (b - a) }'; }
steady=$(rate $((m1 - m0)) "$s0" "$s1")
whole=$(rate "$ok_ops" "$start" "$end")
pct=$(awk -v r="$steady" -v b="$budget" 'BEGIN { printf "%.0f", 100 * r / b }')
wpct=$(awk -v r="$whole" -v b="$budget" 'BEGIN { printf "%.0f", 100 * r / b }')
verdict=$(awk -v p="$pct" -v f="$failed" -v r="$running" \
    'BEGIN { print (p >= 90 && f == 0 && r > 0) ? "TARGET MET" : "TARGET MISSED" }')
echo "throttled vault: $PROCS processes x $THREADS threads, budget $budget ops/s (scale $SCALE)"
echo "  steady state ($SECONDS_WANTED s from ${WARMUP} s, $running/$PROCS processes running): $steady ops/s = $pct % of the budget (target >= 90 %)"
echo "  whole run incl. first burst and tail: $ok_ops ops in $(((end - start) / 1000)) s = $whole ops/s = $wpct %"
echo "  429 answers from the vault: $n429 (each retried after Retry-After)"
echo "  calls failed: $failed (target 0)   $verdict"
echo "  emulator stats: $(jq -c . <<<"$stats")"
t_finish
