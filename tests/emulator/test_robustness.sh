#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator: garbage input on every listener must yield 4xx answers, never
# a crash (run this under the ASan build too).
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

start_emu
V=$(cli keyvault create --name vault3 --sku premium | jq -r .properties.vaultUri); V=${V%/}
SP=$(cli ad sp create-for-rbac --name fuzz)
APPID=$(jq -r .appId <<<"$SP")
cli keyvault set-policy --name vault3 --object-id "$(jq -r .objectId <<<"$SP")" --key-permissions all > /dev/null
cli keyvault key create --vault-name vault3 --name k > /dev/null
cli keyvault key create --vault-name vault3 --name a --kty oct-HSM --size 128 > /dev/null
TOKEN=$(token_secret "$APPID" "$(jq -r .password <<<"$SP")")

expect_4xx() { # label
    case "$STATUS" in 4??) ;; *) fail "$1: status $STATUS" ;; esac
}

# forged / malformed tokens
NONE_TOKEN="$(printf '{"alg":"none"}' | b64url).$(printf '{"aud":"https://vault.azure.net"}' | b64url)."
for t in "$NONE_TOKEN" "a.b.c" "...." "x" "$(head -c 3000 /dev/urandom | b64url)" \
    "${TOKEN%.*}.$(head -c 256 /dev/urandom | b64url)"; do
    req GET "$V/keys/k?api-version=7.4" "" "$t"
    eq "$STATUS" 401 "forged token"
done
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -H "Authorization: Basic abc" "$V/keys/k?api-version=7.4")
eq "$STATUS" 401 "Basic auth"

# bodies
for body in '' 'null' '[]' '{"alg":1,"value":2}' '{"alg":"RSA-OAEP","value":""}' \
    '{"alg":"RSA-OAEP","value":"%%%"}' '{"alg":"RSA-OAEP","value":"A"}' \
    '{"alg":"RSA-OAEP-256","value":"'"$(head -c 300 /dev/urandom | b64url)"'"}' \
    '{"alg":"RSA1_5","value":"'"$(head -c 256 /dev/urandom | b64url)"'"}' \
    '{"alg":"A128KW","value":"AAAA"}' '{"alg":"CKM_AES_KEY_WRAP_PAD","value":""}' \
    "$(head -c 5000 /dev/urandom | base64 -w0)"; do
    for op in wrapkey unwrapkey encrypt decrypt; do
        for key in k a; do
            req POST "$V/keys/$key//$op?api-version=7.4" "$body"
            expect_4xx "$op on $key with body ${body:0:40}"
        done
    done
    req POST "$V/keys/new1/create?api-version=7.4" "$body"
    expect_4xx "create with ${body:0:40}"
    req PATCH "$V/keys/k/?api-version=7.4" "$body"
    case "$body" in '{"alg"'*) ;; *) expect_4xx "patch with ${body:0:40}" ;; esac
done
for body in '{"kty":"RSA","key_size":1024}' '{"kty":"RSA","key_size":"x"}' \
    '{"kty":"oct-HSM","key_size":512}' '{"kty":"RSA","key_ops":["bogus"]}' \
    '{"kty":"RSA","attributes":[]}' '{"kty":"RSA","tags":{"a":1}}' '{"kty":null}'; do
    req POST "$V/keys/new2/create?api-version=7.4" "$body"
    eq "$STATUS" 400 "create $body"
done

# paths and methods
for p in "/" "//" "/keys/a/b/c/d/e/f/g" "/keys/k/versions/x" "/deletedkeys/k/x/y" \
    "/keys/$(head -c 400 /dev/zero | tr '\0' a)" "/keys/k/%ZZ" "/keys/%2e%2e/x"; do
    for m in GET POST PATCH DELETE PUT; do
        req "$m" "$V$p?api-version=7.4"
        expect_4xx "$m $p"
    done
done
req GET "$V/keys?api-version=7.4&maxresults=abc"
eq "$STATUS" 400 "maxresults=abc"
req GET "$V/keys?api-version=7.4&%24skiptoken=-5"
eq "$STATUS" 400 "negative skiptoken"

# token endpoint garbage
for body in '' 'grant_type' '&&&=&=' 'grant_type=client_credentials' \
    "grant_type=client_credentials&client_id=$APPID&scope=x" \
    "grant_type=client_credentials&client_id=$APPID&scope=https%3A%2F%2Fvault.azure.net%2F.default&client_assertion=a.b.c&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" \
    "grant_type=client_credentials&client_id=$APPID&scope=https%3A%2F%2Fvault.azure.net%2F.default&client_assertion=$NONE_TOKEN&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" \
    "%zz%%=%"; do
    STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" --data-binary "$body" "$AUTH/$TENANT/oauth2/v2.0/token")
    expect_4xx "token body ${body:0:50}"
    [ "$(jb .error)" != null ] || fail "token error shape"
done
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" --data-binary 'x=y' "$AUTH/other-tenant/oauth2/v2.0/token")
eq "$STATUS" 400 "unknown tenant"
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" "$AUTH/nothing")
expect_4xx "unknown Entra path"

# control endpoint without / with a wrong secret
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -d '{"argv":["stats"]}' "$AUTH/_emulator/cli")
eq "$STATUS" 401 "admin without secret"
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -H 'Authorization: Bearer x' -d '{"argv":["stats"]}' "$AUTH/_emulator/cli")
eq "$STATUS" 401 "admin with a wrong secret"
if cli keyvault key create --vault-name vault3 --name k --kty RSA --size 1000 2> /dev/null; then
    fail "CLI accepted a bad key size"
fi
if cli bogus command 2> /dev/null; then fail "CLI accepted a bogus command"; fi

# IMDS garbage
for q in "" "api-version=2018-02-01" "resource=x" "api-version=1&resource=$(head -c 600 /dev/zero | tr '\0' a)"; do
    STATUS=$(curl -s -o "$BODY" -w '%{http_code}' -H 'Metadata: true' "$IMDS?$q")
    expect_4xx "IMDS $q"
done
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' -H 'Metadata: true' "http://127.0.0.1:$IMDS_PORT/other")
eq "$STATUS" 404 "IMDS unknown path"

# raw TLS garbage and plain HTTP on the TLS port must not kill the server
head -c 4096 /dev/urandom | timeout 3 openssl s_client -quiet -connect "127.0.0.1:${V##*:}" > /dev/null 2>&1 || true
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | timeout 2 bash -c "cat > /dev/tcp/127.0.0.1/${V##*:}" 2> /dev/null || true

# still healthy
req GET "$V/keys/k?api-version=7.4"
eq "$STATUS" 200 "healthy after garbage"
stop_emu
ok "garbage input"
echo PASS
