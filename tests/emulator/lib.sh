# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the akv-emulator integration tests (bash).
# Usage in a test: EMU=path/to/akv-emulator; . lib.sh; start_emu [serve opts]
set -euo pipefail

EMU=${EMU:?EMU must point at the akv-emulator binary}
WORK=$(mktemp -d /tmp/akv-emu-test.XXXXXX)
EMU_PID=
STATUS=
BODY=$WORK/body
HDRS=$WORK/headers

sanitizer_check() {
    if [ -f "$WORK/stderr" ] && grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$WORK/stderr"; then
        echo "FAIL: sanitizer report in emulator stderr:" >&2
        grep -E -A30 'AddressSanitizer|LeakSanitizer|runtime error:' "$WORK/stderr" | head -80 >&2
        return 1
    fi
}

cleanup() {
    local rc=$?
    if [ -n "$EMU_PID" ] && kill -0 "$EMU_PID" 2>/dev/null; then
        kill -TERM "$EMU_PID" 2>/dev/null || true
        wait "$EMU_PID" 2>/dev/null || true
    fi
    sanitizer_check || rc=1
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -f "$BODY" ]; then
        echo "last body: $(head -c 2000 "$BODY")" >&2
    fi
    if [ -f "$WORK/stderr" ]; then
        echo "emulator stderr (tail):" >&2
        tail -20 "$WORK/stderr" >&2
    fi
    exit 1
}

eq() { # actual expected message
    if [ "$1" != "$2" ]; then
        fail "$3: expected '$2', got '$1'"
    fi
}

ok() { echo "ok - $*"; }

# start_emu [--dir DIR] [serve options...]
start_emu() {
    D=${D:-$WORK/d}
    : > "$WORK/line"
    "$EMU" serve --dir "$D" "$@" > "$WORK/line" 2>> "$WORK/stderr" &
    EMU_PID=$!
    for _ in $(seq 1 200); do
        if [ -s "$WORK/line" ]; then
            break
        fi
        kill -0 "$EMU_PID" 2>/dev/null || fail "emulator exited early"
        sleep 0.05
    done
    [ -s "$WORK/line" ] || fail "emulator did not print its ready line"
    LINE=$(head -1 "$WORK/line")
    PORT=$(jq -r .port <<<"$LINE")
    IMDS_PORT=$(jq -r .imds_port <<<"$LINE")
    TENANT=$(jq -r .tenant_id <<<"$LINE")
    CA=$(jq -r .ca_file <<<"$LINE")
    AUTH=$(jq -r .authority_host <<<"$LINE")
    IMDS=$(jq -r .imds_endpoint <<<"$LINE")
}

stop_emu() {
    kill -TERM "$EMU_PID"
    local rc=0
    wait "$EMU_PID" || rc=$?
    EMU_PID=
    eq "$rc" 0 "emulator exit status after SIGTERM"
}

cli() { "$EMU" --dir "$D" "$@"; }

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
b64url_dec() { # stdin b64url -> raw bytes on stdout
    local s
    s=$(cat | tr -- '-_' '+/')
    while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done
    printf '%s' "$s" | openssl base64 -d -A
}

# req METHOD URL [JSON-BODY] [TOKEN]; sets STATUS, body in $BODY, headers in $HDRS
req() {
    local method=$1 url=$2 data=${3-} tok=${4-${TOKEN-}}
    local args=(-s -o "$BODY" -D "$HDRS" -w '%{http_code}' --cacert "$CA" -X "$method")
    if [ -n "$tok" ]; then
        args+=(-H "Authorization: Bearer $tok")
    fi
    if [ -n "$data" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$data")
    fi
    STATUS=$(curl "${args[@]}" "$url")
}

jb() { jq -r "$1" "$BODY"; }

# token_secret APPID SECRET -> prints access token (fails the test otherwise)
token_secret() {
    local st
    st=$(curl -s -o "$WORK/tok.json" -w '%{http_code}' --cacert "$CA" \
        --data-urlencode "client_id=$1" --data-urlencode "client_secret=$2" \
        --data-urlencode "scope=https://vault.azure.net/.default" \
        --data-urlencode "grant_type=client_credentials" \
        "$AUTH/$TENANT/oauth2/v2.0/token")
    [ "$st" = 200 ] || fail "token request returned $st: $(cat "$WORK/tok.json")"
    jq -r .access_token "$WORK/tok.json"
}

# token_assertion APPID JWT -> sets STATUS, body in $BODY
token_assertion() {
    STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" \
        --data-urlencode "client_id=$1" \
        --data-urlencode "client_assertion=$2" \
        --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
        --data-urlencode "scope=https://vault.azure.net/.default" \
        --data-urlencode "grant_type=client_credentials" \
        "$AUTH/$TENANT/oauth2/v2.0/token")
}

# pubkey_pem N_B64URL E_B64URL OUTFILE: builds an RSA public key PEM
pubkey_pem() {
    local nhex ehex
    nhex=$(printf '%s' "$1" | b64url_dec | od -An -v -tx1 | tr -d ' \n')
    ehex=$(printf '%s' "$2" | b64url_dec | od -An -v -tx1 | tr -d ' \n')
    printf 'asn1=SEQUENCE:pk\n[pk]\nn=INTEGER:0x%s\ne=INTEGER:0x%s\n' \
        "$nhex" "$ehex" > "$WORK/pk.cnf"
    openssl asn1parse -genconf "$WORK/pk.cnf" -out "$WORK/pk.der" > /dev/null
    openssl rsa -RSAPublicKey_in -inform DER -in "$WORK/pk.der" -pubout \
        -out "$3" 2> /dev/null
}
