#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator: managed identities over IMDS, workload identity (federated
# token), token revocation, certificate client assertions (RS256+x5t and
# PS256+x5t#S256 built with openssl), audience checks and token expiry.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

start_emu
cli keyvault create --name vault2 > "$WORK/vault.json"
V=$(jq -r .properties.vaultUri "$WORK/vault.json"); V=${V%/}
cli keyvault key create --vault-name vault2 --name kek > /dev/null

imds() { # query-string [metadata-header]
    local hdr=()
    if [ -n "${2-}" ]; then hdr=(-H "Metadata: $2"); fi
    STATUS=$(curl -s -o "$BODY" -w '%{http_code}' "${hdr[@]}" "$IMDS?$1")
}

# --- IMDS ---
imds "api-version=2018-02-01&resource=https://vault.azure.net" true
eq "$STATUS" 400 "IMDS without identities"
cli identity create --name mi1 > "$WORK/mi1.json"
MI1_CID=$(jq -r .clientId "$WORK/mi1.json")
MI1_OID=$(jq -r .principalId "$WORK/mi1.json")
eq "$(jq -r .name "$WORK/mi1.json")" mi1 "identity name"
eq "$(jq -r .tenantId "$WORK/mi1.json")" "$TENANT" "identity tenant"
eq "$(jq -r .type "$WORK/mi1.json")" "Microsoft.ManagedIdentity/userAssignedIdentities" "identity type"
case "$(jq -r .id "$WORK/mi1.json")" in
/subscriptions/*/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi1) ;;
*) fail "identity id" ;;
esac
imds "api-version=2018-02-01&resource=https://vault.azure.net"
eq "$STATUS" 400 "IMDS without Metadata header"
eq "$(jb .error)" invalid_request "no-metadata error"
eq "$(jb .error_description)" "Required metadata header not specified" "no-metadata description"
imds "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" true
eq "$STATUS" 200 "IMDS token"
eq "$(jb '.expires_in|type')" string "expires_in is a string"
eq "$(jb '.expires_on|type')" string "expires_on is a string"
eq "$(jb '.not_before|type')" string "not_before is a string"
eq "$(jb .resource)" "https://vault.azure.net" "resource echoed"
eq "$(jb .token_type)" Bearer "token_type"
TOKEN=$(jb .access_token)
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' -H 'Metadata: true' \
    "$IMDS/?api-version=2018-02-01&resource=https://vault.azure.net")
eq "$STATUS" 200 "IMDS with trailing slash"
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 403 "MI without policy"
cli keyvault set-policy --name vault2 --object-id "$MI1_OID" --key-permissions get wrapKey unwrapKey > /dev/null
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 200 "MI token on vault"
MI1_TOKEN=$TOKEN
imds "api-version=2018-02-01&resource=https://vault.azure.net/" true
eq "$STATUS" 200 "IMDS trailing-slash resource"
req GET "$V/keys/kek?api-version=7.4" "" "$(jb .access_token)"
eq "$STATUS" 401 "trailing-slash audience rejected by the vault"
eq "$(jb .error.message)" "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://vault.azure.net/." "AKV10022 message"
cli identity create --name mi2 > "$WORK/mi2.json"
MI2_CID=$(jq -r .clientId "$WORK/mi2.json")
imds "api-version=2018-02-01&resource=https://vault.azure.net" true
eq "$STATUS" 400 "two identities, no selector"
imds "api-version=2018-02-01&resource=https://vault.azure.net&client_id=$MI2_CID" true
eq "$STATUS" 200 "select by client_id"
eq "$(cut -d. -f2 <<<"$(jb .access_token)" | b64url_dec | jq -r .appid)" "$MI2_CID" "selected identity"
imds "api-version=2018-02-01&resource=https://vault.azure.net&object_id=$MI1_OID" true
eq "$(cut -d. -f2 <<<"$(jb .access_token)" | b64url_dec | jq -r .oid)" "$MI1_OID" "select by object_id"
RID=$(jq -r .id "$WORK/mi2.json")
imds "api-version=2018-02-01&resource=https://vault.azure.net&msi_res_id=$RID" true
eq "$(cut -d. -f2 <<<"$(jb .access_token)" | b64url_dec | jq -r .appid)" "$MI2_CID" "select by msi_res_id"
imds "api-version=2018-02-01&resource=https://vault.azure.net&client_id=nope" true
eq "$STATUS" 400 "unknown client_id"
ok "IMDS"

# --- App Service form (IDENTITY_ENDPOINT + X-IDENTITY-HEADER) ---
IE=$(jq -r .identity_endpoint "$D/server.json")
IH=$(jq -r .identity_header "$D/server.json")
eq "$IE" "http://127.0.0.1:$IMDS_PORT/msi/token" "identity_endpoint in server.json"
eq "$(cat "$D/identity-header")" "$IH" "identity header persisted"
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' "$IE?api-version=2019-08-01&resource=https://vault.azure.net&client_id=$MI1_CID")
eq "$STATUS" 400 "App Service without X-IDENTITY-HEADER"
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' -H "X-IDENTITY-HEADER: wrong" "$IE?api-version=2019-08-01&resource=https://vault.azure.net&client_id=$MI1_CID")
eq "$STATUS" 400 "App Service with a wrong header"
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' -H "X-IDENTITY-HEADER: $IH" "$IE?api-version=2019-08-01&resource=https://vault.azure.net&principal_id=$MI1_OID")
eq "$STATUS" 200 "App Service token"
eq "$(jb .client_id)" "$MI1_CID" "App Service client_id"
eq "$(jb '.expires_on|type')" string "App Service expires_on string"
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' -H "X-IDENTITY-HEADER: $IH" "$IE?api-version=2019-08-01&resource=https://vault.azure.net&mi_res_id=$RID")
eq "$(jb .client_id)" "$MI2_CID" "App Service mi_res_id"
req GET "$V/keys/kek?api-version=7.4" "" "$(jb .access_token)"
eq "$STATUS" 403 "mi2 has no policy (token itself valid)"
ok "App Service managed identity"

# --- workload identity (federated token) ---
FED=$(cli identity federated-token --name mi1)
[ "$(tr -cd . <<<"$FED" | wc -c)" = 2 ] || fail "federated token is not a JWT"
token_assertion "$MI1_CID" "$FED"
eq "$STATUS" 200 "federated token accepted"
TOKEN=$(jb .access_token)
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 200 "workload identity token on vault"
token_assertion "$MI2_CID" "$FED"
[ "$STATUS" != 200 ] || fail "federated token of mi1 accepted for mi2"
ok "workload identity"

# --- revoke-tokens ---
cli identity revoke-tokens --name mi1 > /dev/null
req GET "$V/keys/kek?api-version=7.4" "" "$MI1_TOKEN"
eq "$STATUS" 401 "revoked IMDS token"
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 401 "revoked federated token"
imds "api-version=2018-02-01&resource=https://vault.azure.net&client_id=$MI1_CID" true
TOKEN=$(jb .access_token)
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 200 "new token after revoke"
cli identity revoke-tokens --object-id "$MI1_OID" > /dev/null
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 401 "revoke by object id"
ok "revoke-tokens"

# --- certificate client assertion ---
cli ad sp create-for-rbac --name certapp --create-cert > "$WORK/sp.json"
APPID=$(jq -r .appId "$WORK/sp.json")
SPOID=$(jq -r .objectId "$WORK/sp.json")
PEM=$(jq -r .fileWithCertAndPrivateKey "$WORK/sp.json")
eq "$(jq -r .password "$WORK/sp.json")" null "no password with --create-cert"
eq "$(stat -c %a "$PEM")" 600 "cert+key file mode"
grep -q "BEGIN CERTIFICATE" "$PEM" || fail "no certificate in $PEM"
grep -q "PRIVATE KEY" "$PEM" || fail "no private key in $PEM"
cli keyvault set-policy --name vault2 --object-id "$SPOID" --key-permissions get > /dev/null

make_assertion() { # alg aud [exp-offset]
    local alg=$1 aud=$2 off=${3-600} now hdr pl sig sigopts=()
    now=$(date +%s)
    if [ "$alg" = RS256 ]; then
        hdr="{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"$(openssl x509 -in "$PEM" -outform DER | openssl dgst -sha1 -binary | b64url)\"}"
    else
        hdr="{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"$(openssl x509 -in "$PEM" -outform DER | openssl dgst -sha256 -binary | b64url)\"}"
        sigopts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
    fi
    pl="{\"aud\":\"$aud\",\"iss\":\"$APPID\",\"sub\":\"$APPID\",\"jti\":\"$(cat /proc/sys/kernel/random/uuid)\",\"nbf\":$now,\"iat\":$now,\"exp\":$((now + off))}"
    local signing_input
    signing_input="$(printf '%s' "$hdr" | b64url).$(printf '%s' "$pl" | b64url)"
    sig=$(printf '%s' "$signing_input" | openssl dgst -sha256 "${sigopts[@]}" -sign "$PEM" -binary | b64url)
    printf '%s.%s' "$signing_input" "$sig"
}
TEP="$AUTH/$TENANT/oauth2/v2.0/token"
token_assertion "$APPID" "$(make_assertion RS256 "$TEP")"
eq "$STATUS" 200 "RS256 + x5t assertion"
TOKEN=$(jb .access_token)
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 200 "certificate SP token on vault"
token_assertion "$APPID" "$(make_assertion PS256 "$TEP")"
eq "$STATUS" 200 "PS256 + x5t#S256 assertion"
token_assertion "$APPID" "$(make_assertion RS256 "https://login.microsoftonline.com/$TENANT/oauth2/v2.0/token")"
eq "$STATUS" 401 "wrong assertion audience"
token_assertion "$APPID" "$(make_assertion RS256 "$TEP" -10)"
eq "$STATUS" 401 "expired assertion"
eq "$(jb '.error_codes[0]')" 700024 "expired assertion code"
FORGED=$(make_assertion RS256 "$TEP")
FORGED="${FORGED%.*}.$(head -c 256 /dev/urandom | b64url)"
token_assertion "$APPID" "$FORGED"
eq "$STATUS" 401 "bad assertion signature"
ok "certificate client assertion"

# --- token expiry (separate emulator with a 2 s lifetime) ---
stop_emu
start_emu --token-lifetime 2
imds "api-version=2018-02-01&resource=https://vault.azure.net&client_id=$MI2_CID" true
eq "$(jb .expires_in)" 2 "configured lifetime"
TOKEN=$(jb .access_token)
cli keyvault set-policy --name vault2 --client-id x --object-id "$(jq -r .principalId "$WORK/mi2.json")" --key-permissions get > /dev/null
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 200 "fresh short-lived token"
sleep 3
req GET "$V/keys/kek?api-version=7.4"
eq "$STATUS" 401 "expired token"
jb .error.message | grep -q "AKV10013" || fail "expired message"
grep -qi '^www-authenticate: Bearer authorization=' "$HDRS" || fail "challenge on expiry"
ok "token expiry"
echo PASS
