#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Benchmark of the module end to end against the emulator: N threads, each
# with its own session, doing rounds of C_GenerateKey (AES-256) + C_WrapKey
# (RSA-OAEP-256, Key Vault wrapkey) + C_UnwrapKey (Key Vault unwrapkey)
# through the PKCS#11 function list. Prints rounds/s for 1 and 8 threads and
# the emulator's unwrapkey figure is in emulator_bench.sh for comparison.
# Fails only when it cannot measure.
set -euo pipefail
AKV_SRC=${AKV_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$AKV_SRC/tests/lib/common.sh"
: "${AKV_P11CLIENT:?}"
AKV_TEST_LOG_LEVEL=warn
t_begin
ITERS=${AKV_BENCH_ITERS:-4000}
for n in 1 8; do
    out=$("$AKV_P11CLIENT" "$AKV_MODULE" threads "$KEY_NAME" "$n" $((ITERS / n)))
    echo "module wrap+unwrap, $n thread(s): $out"
    grep -q "failures=0" <<<"$out" || { echo "measurement failed"; exit 1; }
done
t_finish
