#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Secrets don't outlive the call (docs/SECURITY.md "Secrets in memory"):
# a host program (memprobe) wraps and unwraps a data key it knows through
# the vault with a client_secret credential, destroys the objects, closes
# the session and pauses; gcore takes a core dump of it, and another after
# C_Finalize. Each core is searched for the data key, the access token the
# emulator issued (akv-emulator token issued) and the client secret, each
# raw, hex, HEX, base64 and base64url (every alignment). A copy fails the
# test, naming the secret, the encoding and the count.
#   module-curl  the module initialises libcurl (its wiping allocator is in):
#                no copy at all
#   host-curl    the host called curl_global_init first: libcurl keeps the
#                host's allocator (no wiping), but it only opens connections
#                - requests and answers never pass through its buffers
#                (keyvault/http.c): no copy at all either
#
# After C_Finalize nothing may remain. After C_CloseSession the module still
# holds the cached access token (reused until it expires, by design): its
# buffer is excluded from core dumps (MADV_DONTDUMP), so it must not show
# either.
. "$(dirname "$0")/../lib/common.sh"
need gcore xxd
: "${AKV_MEMPROBE:?}"
case_=${1:-module-curl}
extra=()
case $case_ in
module-curl) ;;
host-curl) extra=(curl) ;;
cert) ;;
*) echo "unknown case $case_"; exit 2 ;;
esac

if [ -n "${AKV_ASAN_PRELOAD:-}" ]; then
    # ASan's quarantine keeps freed blocks (already wiped by us) and its own
    # shadow; the check is about the release build's allocator behaviour.
    echo "SKIP: core search runs in the regular build only"
    exit 77
fi
t_begin
if [ "$case_" = cert ]; then
    # a client_certificate credential: the secret is the signed assertion
    sp=$(emu_cli ad sp create-for-rbac --name akv-cert-app --create-cert)
    cert_app=$(jq -r .appId <<<"$sp")
    emu_cli keyvault set-policy --name "$VAULT_NAME" --spn "$cert_app" \
        --key-permissions get wrapKey unwrapKey >/dev/null
    jq --arg cid "$cert_app" --arg f "$(jq -r .fileWithCertAndPrivateKey <<<"$sp")" \
        '.tokens[0].credential = { type: "client_certificate", client_id: $cid,
           tenant_id: .tokens[0].credential.tenant_id, certificate_file: $f,
           authority_host: .tokens[0].credential.authority_host }' \
        "$AKV_PKCS11_CONFIG" >"$T_TMP/cfg.json"
    cat "$T_TMP/cfg.json" >"$AKV_PKCS11_CONFIG"
fi

KEY_HEX=$(openssl rand -hex 32)
printf '%s' "$KEY_HEX" >"$T_TMP/key.hex"
SECRET_HEX=$(xxd -p -c 100000 "$SP_SECRET_FILE" | tr -d '\n')

mkfifo "$T_TMP/in"
# the driver's stdin stays open through fd 3 until we close it
exec 3<>"$T_TMP/in"
"$AKV_MEMPROBE" run "$AKV_MODULE" "$KEY_NAME" "$T_TMP/key.hex" pause "${extra[@]}" \
    <"$T_TMP/in" >"$T_TMP/probe.out" 2>&1 &
PROBE=$!


# wait_ready WHAT - until the driver prints "READY WHAT" (or dies)
wait_ready() {
    local i
    for i in $(seq 1 300); do
        grep -q "^READY $1" "$T_TMP/probe.out" && return 0
        kill -0 "$PROBE" 2>/dev/null || break
        sleep 0.1
    done
    fail "driver did not reach '$1'"; sed 's/^/    /' "$T_TMP/probe.out"
    return 1
}

# allowed NAME ENC - copies a documented exception permits: none. (Until
# libcurl stopped building the requests, host-curl left the wrapKey body, the
# token request body and the Authorization headers in libcurl's unwiped
# request buffers.)
allowed() {
    echo 0
}

# check POINT - gcore the driver and search the core for every secret.
check() {
    local point=$1 core tok name enc n max found=0 measured=""
    core="$T_TMP/core.$point"
    if ! gcore -o "$core" "$PROBE" >"$T_TMP/gcore.out" 2>&1; then
        fail "gcore at $point"; tail -n 5 "$T_TMP/gcore.out"; return
    fi
    core="$core.$PROBE"
    local args=("datakey=$KEY_HEX" "client_secret=$SECRET_HEX")
    local i=0 n_tok=0 n_ass=0
    for tok in $(emu_cli token issued | jq -r '.tokens[]'); do
        args+=("access_token$i=$(printf '%s' "$tok" | xxd -p -c 100000 | tr -d '\n')")
        i=$((i + 1)); n_tok=$((n_tok + 1))
    done
    [ "$i" -gt 0 ] || fail "the emulator issued no token"
    for tok in $(emu_cli token issued | jq -r '.assertions[]'); do
        args+=("client_assertion$i=$(printf '%s' "$tok" | xxd -p -c 100000 | tr -d '\n')")
        i=$((i + 1)); n_ass=$((n_ass + 1))
    done
    if [ "$case_" = cert ] && [ "$n_ass" = 0 ]; then
        fail "the emulator received no client assertion"
    fi
    "$AKV_MEMPROBE" scan "$core" "${args[@]}" >"$T_TMP/scan.$point"
    while read -r name enc n; do
        max=$(allowed "$name" "$enc")
        if [ "$n" -gt "$max" ]; then
            fail "$point: $n copies of the $name ($enc) in the core (allowed $max)"
            found=1
        elif [ "$n" != 0 ]; then
            measured="$measured $name/$enc=$n"
        fi
    done <"$T_TMP/scan.$point"
    if [ "$found" = 0 ]; then
        pass "$point: no copy of the data key, $n_tok access token(s), $n_ass client assertion(s) or the client secret in any encoding beyond the documented exception${measured:+ (measured:$measured)} ($(stat -c %s "$core") byte core)"
    fi
    rm -f "$core"
}

if wait_ready close; then
    expect_grep "wrap/unwrap through the vault" "round trip OK" "$T_TMP/probe.out"
    check after-close
    echo >&3
    if wait_ready finalize; then
        check after-finalize
    fi
    echo >&3
fi
exec 3>&-
wait "$PROBE" || fail "driver exit status $?"
t_finish
