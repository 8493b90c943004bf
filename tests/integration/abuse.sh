#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Hostile input through the module's function list (tests/integration/abuse.c)
# and bad configuration files: every case must give the documented CK_RV,
# never crash, hang or leak (the ASan build checks the last two).
# Usage: abuse.sh null|handles|templates|mech|opstate|getattr|threads|sign|newpaths|config
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_ABUSE:?}"
t_begin
CASE=${1:?case}
a() { "$AKV_ABUSE" "$AKV_MODULE" "$@"; }

# bad_config NAME FILE PATTERN - C_Initialize with FILE must fail with
# CKR_GENERAL_ERROR and log exactly one error line that names the file and
# matches PATTERN (the JSON path / the problem).
bad_config() {
    local name=$1 file=$2 pat=$3 err="$T_TMP/cfg-$1.err" n
    if AKV_PKCS11_CONFIG="$file" a init-fail >"$T_TMP/cfg-$name.out" 2>"$err"; then
        pass "config $name: C_Initialize refused"
    else
        fail "config $name: C_Initialize not refused as expected"
        sed 's/^/    /' "$T_TMP/cfg-$name.out" "$err" | tail -n 20
        return
    fi
    # One error line per attempt (the client tries twice).
    n=$(grep -c 'configuration' "$err" || true)
    expect_eq "config $name: one log line per attempt" "$n" 2
    expect_grep "config $name: line names the file" "$(printf '%s' "$file" | sed 's/[][\.*^$/]/\\&/g')" "$err"
    expect_grep "config $name: line says what is wrong" "$pat" "$err"
}

# cfg JQ_FILTER - the working configuration changed by JQ_FILTER.
cfg() { jq "$1" "$AKV_PKCS11_CONFIG"; }

case "$CASE" in
handles)
    # Two tokens (same vault): handles of one slot mean nothing in the other.
    jq '.tokens += [.tokens[0] | .label = "akv-test-2" | .store_dir += "-2"]' \
        "$AKV_PKCS11_CONFIG" >"$T_TMP/two.json"
    AKV_PKCS11_CONFIG="$T_TMP/two.json" expect_ok "abuse $CASE" a "$CASE" "$KEY_NAME"
    tail -n 1 "$T_TMP/last.out"
    ;;
mech)
    # Every refusal is local: the vault never sees a wrap or unwrap.
    emu_cli stats --reset >/dev/null 2>&1 || true
    expect_ok "abuse $CASE" a "$CASE" "$KEY_NAME"
    tail -n 1 "$T_TMP/last.out"
    if emu_cli stats >"$T_TMP/stats" 2>/dev/null; then
        expect_eq "no wrapkey call" "$(jq -r '.wrapkey // 0' "$T_TMP/stats")" 0
        expect_eq "no unwrapkey call" "$(jq -r '.unwrapkey // 0' "$T_TMP/stats")" 0
    fi
    ;;
sign)
    # Signing is opt-in (tokens[].sign) and needs the keys/sign permission.
    emu_write_config "$AKV_PKCS11_CONFIG" '{"sign":true}'
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions get wrapKey unwrapKey sign >/dev/null
    expect_ok "abuse $CASE" a "$CASE" "$KEY_NAME"
    tail -n 1 "$T_TMP/last.out"
    ;;
newpaths)
    # A certificate object (tokens[].certificate) besides the key pair; then
    # the same token with tokens[].sign, then with allow_delete/allow_create
    # (which deletes the key: last on this vault).
    emu_cli keyvault certificate create --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions get wrapKey unwrapKey sign delete create --certificate-permissions get >/dev/null
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate\":\"$KEY_NAME\"}"
    expect_ok "abuse $CASE" a "$CASE" "$KEY_NAME"
    tail -n 2 "$T_TMP/last.out"
    # the vault key signing (as the sign case)
    emu_write_config "$AKV_PKCS11_CONFIG" '{"sign":true}'
    expect_ok "abuse $CASE-sign" a "$CASE-sign" "$KEY_NAME"
    tail -n 2 "$T_TMP/last.out"
    emu_write_config "$AKV_PKCS11_CONFIG" "{\"certificate\":\"$KEY_NAME\",\"allow_delete\":true,\"allow_create\":true}"
    expect_ok "abuse $CASE-delete" a "$CASE-delete" "$KEY_NAME"
    tail -n 2 "$T_TMP/last.out"
    # v3.0 message-based AES-GCM: a Managed HSM oct-HSM key (as mhsm.sh)
    hsm=abusehsm
    hsm_url=$(emu_cli keyvault create --hsm-name "$hsm" --administrators "$SP_OBJ_ID" | jq -r .properties.hsmUri)
    emu_cli keyvault key create --hsm-name "$hsm" --name hsmkey --kty oct-HSM --size 128 >/dev/null
    for role in "Managed HSM Crypto Service Encryption User" "Managed HSM Crypto User"; do
        emu_cli keyvault role assignment create --hsm-name "$hsm" --role "$role" \
            --assignee-object-id "$SP_OBJ_ID" --scope /keys/hsmkey >/dev/null
    done
    VAULT_URL=${hsm_url%/} KEY_NAME=hsmkey emu_write_config "$AKV_PKCS11_CONFIG" '{}'
    expect_ok "abuse $CASE-msg" a "$CASE-msg" hsmkey
    tail -n 2 "$T_TMP/last.out"
    ;;
null|templates|opstate|getattr|threads)
    expect_ok "abuse $CASE" a "$CASE" "$KEY_NAME"
    tail -n 1 "$T_TMP/last.out"
    ;;
config)
    d="$T_TMP/cfg"
    mkdir -p "$d"
    : >"$d/empty.json"
    bad_config empty "$d/empty.json" 'empty|parse|JSON|json'
    head -c 4096 /dev/urandom >"$d/garbage.json"
    bad_config garbage "$d/garbage.json" 'parse|JSON|json|UTF|invalid'
    head -c 10485760 /dev/zero | tr '\0' '[' >"$d/brackets.json"
    bad_config brackets "$d/brackets.json" 'parse|JSON|json|deep|nest|large|big|size'
    { printf '{"tokens":'; for _ in $(seq 1 5000); do printf '['; done;
      for _ in $(seq 1 5000); do printf ']'; done; printf '}'; } >"$d/nested.json"
    bad_config nested "$d/nested.json" 'parse|JSON|json|deep|nest|tokens'
    cfg '.tokens[0].label = ("x" * 40)' >"$d/label40.json"
    bad_config label40 "$d/label40.json" 'label'
    cfg '.tokens += [.tokens[0]]' >"$d/duplabel.json"
    bad_config duplabel "$d/duplabel.json" 'label'
    cfg '.tokens[0].vault_url = "http://example.com"' >"$d/http.json"
    bad_config http "$d/http.json" 'vault_url'
    cfg '.tokens[0].vault_url = "ftp://example.com"' >"$d/ftp.json"
    bad_config ftp "$d/ftp.json" 'vault_url'
    cfg 'del(.tokens[0].credential)' >"$d/nocred.json"
    bad_config nocred "$d/nocred.json" 'credential'
    mkdir -p "$d/adir.json"
    bad_config directory "$d/adir.json" 'read|directory|open|file'
    bad_config missing "$d/does-not-exist.json" 'read|open|No such|exist|file'
    # Wrong JSON type for every key of the working configuration.
    i=0
    while read -r p; do
        i=$((i + 1))
        for v in '42' '"str"' '[]' '{}' 'true' 'null'; do
            cur=$(jq -c --argjson p "$p" 'getpath($p)' "$AKV_PKCS11_CONFIG")
            # same type as the original is not a wrong type
            if [ "$(jq -n --argjson a "$cur" --argjson b "$v" '($a|type) == ($b|type)')" = true ]; then
                continue
            fi
            # "null" may mean "unset" for optional keys: only checked not to
            # crash.
            f="$d/type-$i-$(printf '%s' "$v" | tr -c 'a-z0-9' '_').json"
            jq --argjson p "$p" --argjson v "$v" 'setpath($p; $v)' "$AKV_PKCS11_CONFIG" >"$f"
            key=$(jq -r --argjson p "$p" '$p | map(tostring) | join(".")' -n)
            last=$(jq -r --argjson p "$p" '$p[-1] | tostring' -n)
            if [ "$v" = null ]; then
                rc=0
                AKV_PKCS11_CONFIG="$f" a init-fail >"$f.out" 2>&1 || rc=$?
                if [ "$rc" -le 1 ]; then pass "type $key=null: no crash"; else
                    fail "type $key=null: exit $rc"; tail -n 20 "$f.out"; fi
                continue
            fi
            bad_config "type-$i-$(printf '%s' "$v" | tr -c 'a-z0-9' '_')" "$f" "$last"
        done
    done < <(jq -c 'paths(scalars) , paths(type == "array" or type == "object")' "$AKV_PKCS11_CONFIG" | sort -u)
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
