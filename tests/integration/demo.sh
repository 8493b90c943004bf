#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# scripts/demo as a test: the README's main job must keep passing. Uses the
# build under test (no apt-get, no rebuild of another tree).
set -euo pipefail
[ -z "${AKV_ASAN_PRELOAD:-}" ] || { echo "SKIP: sanitizer build (the demo runs uninstrumented tools)"; exit 77; }
: "${AKV_BUILD_DIR:?}" "${AKV_SRC:?}"
out=$(AKV_NO_INSTALL=1 AKV_BUILD_DIR="$AKV_BUILD_DIR" bash "$AKV_SRC/scripts/demo" 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | tail -n 40
last=$(printf '%s\n' "$out" | tail -n 1)
if [ "$rc" -eq 0 ] && [[ "$last" == "demo: all "*" passed"* ]]; then
    echo "1 passed, 0 failed"
    exit 0
fi
echo "FAIL: scripts/demo exit $rc, last line: $last"
echo "0 passed, 1 failed"
exit 1
