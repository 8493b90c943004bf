#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every mechanism the module lists (a row of token/mech.c's table) is named
# in full, in backquotes, in README.md's mechanism tables - and the README
# names no mechanism the table lacks - so "where it runs and which
# permission it needs" is documented for each (issue 10). Exit 0 if so.
set -euo pipefail
cd "$(dirname "$0")/../.."
rc=0
mapfile -t rows < <(sed -n 's/^ *{\(CKM_[A-Z0-9_]*\),.*/\1/p' token/mech.c | sort -u)
[ "${#rows[@]}" -gt 10 ] || { echo "readme: could not read token/mech.c's rows"; exit 1; }
for m in "${rows[@]}"; do
    grep -q "\`$m\`" README.md || { echo "readme: $m (token/mech.c) is not in README.md"; rc=1; }
done
# mechanisms named in the first column of README table rows (the other
# columns may name Key Vault algorithms such as CKM_AES_KEY_WRAP_PAD)
mapfile -t named < <(grep '^|' README.md | awk -F'|' '{print $2}' |
    grep -o '`CKM_[A-Z0-9_]*`' | tr -d '`' | sort -u)
for m in "${named[@]}"; do
    printf '%s\n' "${rows[@]}" | grep -qx "$m" ||
        { echo "readme: $m is in a README.md table but not a mechanism of token/mech.c"; rc=1; }
done
echo "readme: ${#rows[@]} mechanisms checked"
exit $rc
