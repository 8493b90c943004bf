#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# clang-tidy (the repo's .clang-tidy: the static analyzer, bugprone-*,
# cert-err33-c, ...) over every C file of the module itself - module/,
# token/, keyvault/, common/ - with warnings as errors. A finding that is
# deliberate carries a NOLINT comment saying why, next to it.
#   clang_tidy.sh BUILD_DIR   (a build with compile_commands.json)
# Exit 0 if clean, 77 (skip) without clang-tidy.
set -euo pipefail
build=${1:?build dir}
cd "$(dirname "$0")/../.."
command -v clang-tidy >/dev/null || { echo "SKIP: clang-tidy not installed"; exit 77; }
[ -f "$build/compile_commands.json" ] || { echo "no $build/compile_commands.json"; exit 1; }
mapfile -t files < <(git ls-files 'module/*.c' 'token/*.c' 'keyvault/*.c' 'common/*.c' 2>/dev/null ||
    find module token keyvault common -name '*.c')
jobs=$(nproc 2>/dev/null || echo 2)
# one file per run (several per run made the valist checker report
# va_lists of one file in the next); gcc-only warning options in the
# compile commands are not clang's to judge
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -n 1 clang-tidy -p "$build" --quiet \
    --extra-arg=-Wno-unknown-warning-option --warnings-as-errors='*' \
    >"$build/clang-tidy.log" 2>&1 && rc=0 || rc=$?
grep -E "(warning|error):" "$build/clang-tidy.log" | sort -u || true
echo "clang-tidy: ${#files[@]} files checked, exit $rc"
exit $rc
