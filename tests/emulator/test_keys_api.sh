#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator: Key Vault keys data plane end to end with curl + openssl:
# client-secret token, GET/wrap/unwrap/encrypt/decrypt, 401 challenge,
# access policies, rotation, disabled/expired/not-yet-valid keys, key_ops,
# soft delete/recover/purge, paging, api-version handling, bad input, and a
# restart with the same DIR.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

start_emu
[ -f "$CA" ] || fail "ca.pem missing"
eq "$(stat -c %a "$D/ca-key.pem")" 600 "ca-key.pem mode"
eq "$(stat -c %a "$D/server.json")" 600 "server.json mode"
eq "$(jq -r .pid <<<"$LINE")" "$EMU_PID" "pid in ready line"
eq "$AUTH" "https://127.0.0.1:$PORT" "authority_host"
eq "$IMDS" "http://127.0.0.1:$IMDS_PORT/metadata/identity/oauth2/token" "imds_endpoint"
ok "ready line and DIR layout"

# --- control plane ---
cli keyvault create --name vault1 --sku premium > "$WORK/vault.json"
VURI=$(jq -r .properties.vaultUri "$WORK/vault.json")
case "$VURI" in https://127.0.0.1:*/) ;; *) fail "vaultUri $VURI" ;; esac
V=${VURI%/}
eq "$(jq -r .location "$WORK/vault.json")" local "vault location"
eq "$(jq -r '.properties.accessPolicies|length' "$WORK/vault.json")" 0 "no policies"
eq "$(cli keyvault show --name VAULT1 | jq -r .properties.vaultUri)" "$VURI" "show (case-insensitive)"
cli ad sp create-for-rbac --name app1 > "$WORK/sp.json"
APPID=$(jq -r .appId "$WORK/sp.json")
SECRET=$(jq -r .password "$WORK/sp.json")
OID=$(jq -r .objectId "$WORK/sp.json")
eq "$(jq -r .tenant "$WORK/sp.json")" "$TENANT" "sp tenant"
if cli keyvault show --name nosuchvault 2> "$WORK/err"; then
    fail "show of unknown vault succeeded"
fi
grep -q "vault not found" "$WORK/err" || fail "unknown vault message"
ok "control plane vault + sp"

# --- Entra token endpoint ---
TOKEN=$(token_secret "$APPID" "$SECRET")
eq "$(jq -r '.expires_in|type' "$WORK/tok.json")" number "expires_in is a number"
eq "$(jq -r .token_type "$WORK/tok.json")" Bearer "token_type"
CLAIMS=$(cut -d. -f2 <<<"$TOKEN" | b64url_dec)
eq "$(jq -r .aud <<<"$CLAIMS")" "https://vault.azure.net" "token aud"
eq "$(jq -r .iss <<<"$CLAIMS")" "https://sts.windows.net/$TENANT/" "token iss"
eq "$(jq -r .oid <<<"$CLAIMS")" "$OID" "token oid"
eq "$(jq -r .appid <<<"$CLAIMS")" "$APPID" "token appid"
st=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -d "client_id=$APPID" \
    -d "client_secret=wrong" --data-urlencode "scope=https://vault.azure.net/.default" \
    -d grant_type=client_credentials "$AUTH/$TENANT/oauth2/v2.0/token")
eq "$st" 401 "bad secret status"
eq "$(jb .error)" invalid_client "bad secret error"
eq "$(jb '.error_codes[0]')" 7000215 "bad secret code"
st=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -d "client_id=00000000-0000-0000-0000-000000000000" \
    -d "client_secret=x" --data-urlencode "scope=https://vault.azure.net/.default" \
    -d grant_type=client_credentials "$AUTH/$TENANT/oauth2/v2.0/token")
eq "$st" 400 "unknown client status"
eq "$(jb .error)" unauthorized_client "unknown client error"
eq "$(jb '.error_codes[0]')" 700016 "unknown client code"
req GET "$AUTH/$TENANT/v2.0/.well-known/openid-configuration" "" ""
eq "$STATUS" 200 "openid-configuration"
eq "$(jb .token_endpoint)" "$AUTH/$TENANT/oauth2/v2.0/token" "token_endpoint"
for f in authorization_endpoint issuer jwks_uri; do
    [ "$(jb ".$f")" != null ] || fail "openid-configuration lacks $f"
done
req GET "$(jb .jwks_uri)" "" ""
eq "$STATUS" 200 "jwks"
eq "$(jb '.keys[0].kty')" RSA "jwks kty"
ok "Entra token endpoint"

# --- 401 challenge (before policy, body ignored) ---
req POST "$V/keys/k1//wrapkey?api-version=7.4" "" ""
eq "$STATUS" 401 "no token status"
eq "$(jb .error.code)" Unauthorized "401 code"
eq "$(jb .error.message)" "AKV10000: Request is missing a Bearer or PoP token." "401 message"
WWW=$(grep -i '^www-authenticate:' "$HDRS" | sed 's/^[^:]*: //' | tr -d '\r')
eq "$WWW" "Bearer authorization=\"https://127.0.0.1:$PORT/$TENANT\", resource=\"https://vault.azure.net\"" "challenge header"
req GET "$V/keys/k1?api-version=7.4" "" "garbage.token.here"
eq "$STATUS" 401 "garbage token"
ok "401 challenge"

# --- 403 without policy ---
req GET "$V/keys/k1?api-version=7.4"
eq "$STATUS" 403 "no policy status"
eq "$(jb .error.code)" Forbidden "403 code"
eq "$(jb .error.innererror.code)" AccessDenied "403 inner"
jb .error.message | grep -qF "'appid=$APPID;oid=$OID;iss=https://sts.windows.net/$TENANT/' does not have keys get permission on key vault 'vault1;location=local'" \
    || fail "403 message: $(jb .error.message)"
ok "403 without access policy"

cli keyvault set-policy --name vault1 --object-id "$OID" --key-permissions \
    get list wrapKey unwrapKey encrypt decrypt > "$WORK/pol.json"
eq "$(jq -r '.properties.accessPolicies[0].permissions.keys|length' "$WORK/pol.json")" 6 "policy perms"
cli keyvault key create --vault-name vault1 --name k1 --kty RSA --size 2048 > "$WORK/k1.json"
KID1=$(jq -r .key.kid "$WORK/k1.json")
VER1=${KID1##*/}
eq "${#VER1}" 32 "version length"
eq "$KID1" "$V/keys/k1/$VER1" "kid from CLI"

# --- GET ---
for path in "keys/k1" "keys/k1/" "keys/K1/$VER1"; do
    req GET "$V/$path?api-version=7.4"
    eq "$STATUS" 200 "GET $path"
    eq "$(jb .key.kid)" "$KID1" "GET $path kid"
done
N1=$(jb .key.n)
E1=$(jb .key.e)
eq "${#N1}" 342 "n length for RSA-2048"
eq "$E1" AQAB "e"
eq "$(jb .attributes.recoveryLevel)" "Recoverable+Purgeable" "recoveryLevel"
eq "$(jb .attributes.recoverableDays)" 90 "recoverableDays"
eq "$(jb '.attributes.created|type')" number "created IntDate"
grep -qi '^content-type: application/json; charset=utf-8' "$HDRS" || fail "content-type"
grep -qi '^x-ms-request-id: ' "$HDRS" || fail "x-ms-request-id"
grep -qi '^x-ms-keyvault-service-version: ' "$HDRS" || fail "service version header"
grep -qi '^cache-control: no-cache' "$HDRS" || fail "cache-control"
if grep -q '=' <<<"$N1"; then fail "padded n"; fi
req GET "$V/keys/k1/?api%2Dversion=2025-07-01"
eq "$STATUS" 200 "percent-encoded api-version"
req GET "$V/keys/k1/?api-version=7.9"
eq "$STATUS" 400 "unknown api-version"
eq "$(jb .error.code)" BadParameter "unknown api-version code"
eq "$(jb .error.message)" "The specified version (7.9) is not recognized. Consider using the latest supported version (2025-07-01)." "api-version message"
req GET "$V/keys/k1/"
eq "$STATUS" 400 "missing api-version"
for v in 7.0 7.6-preview.2 2025-06-01; do
    req GET "$V/keys/k1?api-version=$v"
    eq "$STATUS" 200 "api-version $v"
done
req GET "$V/keys/nokey?api-version=7.4"
eq "$STATUS" 404 "unknown key"
eq "$(jb .error.code)" KeyNotFound "unknown key code"
req GET "$V/keys/k1/0123456789abcdef0123456789abcdef?api-version=7.4"
eq "$STATUS" 404 "unknown version"
ok "GET key"

# --- wrap / unwrap ---
head -c 32 /dev/urandom > "$WORK/cek"
CEK=$(b64url < "$WORK/cek")
req POST "$V/keys/k1//wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$CEK\"}"
eq "$STATUS" 200 "wrapkey"
eq "$(jb .kid)" "$KID1" "wrap kid is versioned"
WRAPPED=$(jb .value)
eq "$(printf '%s' "$WRAPPED" | b64url_dec | wc -c)" 256 "wrapped length"
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$WRAPPED\"}"
eq "$STATUS" 200 "unwrapkey"
jb .value | b64url_dec > "$WORK/cek2"
cmp -s "$WORK/cek" "$WORK/cek2" || fail "unwrap returned different bytes"
# padded base64url input is accepted
PADDED="$WRAPPED"
while [ $(( ${#PADDED} % 4 )) -ne 0 ]; do PADDED="$PADDED="; done
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$PADDED\"}"
eq "$STATUS" 200 "padded input"
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" '{"alg":"RSA-OAEP-256","value":"ab+/cd=="}'
eq "$STATUS" 400 "standard base64 rejected"
eq "$(jb .error.message)" "Content of 'value' is not base64url." "base64url message"
GARBAGE=$(head -c 256 /dev/urandom | b64url)
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$GARBAGE\"}"
eq "$STATUS" 400 "garbage unwrap"
eq "$(jb .error.message)" "Error occurred while decoding OAEP padding." "garbage unwrap message"
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" '{"alg":'
eq "$STATUS" 400 "bad JSON"
req POST "$V/keys/k1/$VER1/wrapkey?api-version=7.4" "{\"alg\":\"A256KW\",\"value\":\"$CEK\"}"
eq "$STATUS" 400 "AES alg on RSA key"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' > "$WORK/big"
STATUS=$(curl -s -o "$BODY" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary @"$WORK/big" \
    "$V/keys/k1/$VER1/wrapkey?api-version=7.4")
eq "$STATUS" 413 "huge body"
ok "wrap/unwrap"

# --- local encrypt with openssl, decrypt via the emulator ---
pubkey_pem "$N1" "$E1" "$WORK/pub.pem"
printf 'secret message for the vault' > "$WORK/pt"
for alg in RSA-OAEP-256 RSA-OAEP RSA1_5; do
    case $alg in
    RSA-OAEP-256) opts=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256) ;;
    RSA-OAEP) opts=(-pkeyopt rsa_padding_mode:oaep) ;;
    RSA1_5) opts=(-pkeyopt rsa_padding_mode:pkcs1) ;;
    esac
    openssl pkeyutl -encrypt -pubin -inkey "$WORK/pub.pem" "${opts[@]}" -in "$WORK/pt" -out "$WORK/ct"
    CT=$(b64url < "$WORK/ct")
    req POST "$V/keys/k1/$VER1/decrypt?api-version=7.4" "{\"alg\":\"$alg\",\"value\":\"$CT\"}"
    eq "$STATUS" 200 "decrypt $alg"
    eq "$(jb .value | b64url_dec)" "secret message for the vault" "decrypt $alg plaintext"
done
# and the reverse: emulator encrypt, openssl cannot decrypt (no private key) so
# round-trip through the emulator
req POST "$V/keys/k1/$VER1/encrypt?api-version=7.4" "{\"alg\":\"RSA1_5\",\"value\":\"$CEK\"}"
eq "$STATUS" 200 "encrypt RSA1_5"
C15=$(jb .value)
req POST "$V/keys/k1/$VER1/decrypt?api-version=7.4" "{\"alg\":\"RSA1_5\",\"value\":\"$C15\"}"
eq "$(jb .value)" "$CEK" "RSA1_5 round trip"
ok "openssl encrypt -> emulator decrypt"

# --- access policy removal / restore ---
cli keyvault delete-policy --name vault1 --object-id "$OID" > /dev/null
req GET "$V/keys/k1?api-version=7.4"
eq "$STATUS" 403 "after delete-policy"
cli keyvault set-policy --name vault1 --spn "$APPID" --key-permissions get wrapKey unwrapKey > /dev/null
req GET "$V/keys/k1?api-version=7.4"
eq "$STATUS" 200 "after set-policy --spn"
req POST "$V/keys/k1/$VER1/decrypt?api-version=7.4" "{\"alg\":\"RSA1_5\",\"value\":\"$C15\"}"
eq "$STATUS" 403 "decrypt permission removed by replace"
jb .error.message | grep -q "does not have keys decrypt permission" || fail "decrypt 403 message"
cli keyvault set-policy --name vault1 --object-id "$OID" --key-permissions all > /dev/null
ok "403 after delete-policy, 200 after set-policy"

# --- rotation ---
cli keyvault key rotate --vault-name vault1 --name k1 > "$WORK/k1b.json"
KID2=$(jq -r .key.kid "$WORK/k1b.json")
VER2=${KID2##*/}
[ "$VER2" != "$VER1" ] || fail "rotate kept the version"
req GET "$V/keys/k1/?api-version=7.4"
eq "$(jb .key.kid)" "$KID2" "latest after rotate"
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$WRAPPED\"}"
eq "$STATUS" 200 "old version still unwraps"
eq "$(jb .value)" "$CEK" "old version unwrap bytes"
req POST "$V/keys/k1//unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$WRAPPED\"}"
eq "$STATUS" 400 "new version cannot unwrap old blob"
req POST "$V/keys/k1/rotate?api-version=7.4" ""
eq "$STATUS" 200 "REST rotate"
VER3=$(jb .key.kid); VER3=${VER3##*/}
req GET "$V/keys/k1/versions?api-version=7.4&maxresults=2"
eq "$STATUS" 200 "list versions"
eq "$(jb '.value|length')" 2 "versions page 1"
NEXT=$(jb .nextLink)
case "$NEXT" in "$V/keys/k1/versions?"*) ;; *) fail "nextLink $NEXT" ;; esac
req GET "$NEXT"
eq "$(jb '.value|length')" 1 "versions page 2"
eq "$(jb .nextLink)" null "no more pages"
ok "rotation + versions paging"

# --- disabled version ---
cli keyvault key set-attributes --vault-name vault1 --name k1 --version "$VER1" --enabled false > "$WORK/dis.json"
eq "$(jq -r .attributes.enabled "$WORK/dis.json")" false "set-attributes enabled=false"
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$WRAPPED\"}"
eq "$STATUS" 403 "disabled unwrap"
eq "$(jb .error.innererror.code)" KeyDisabled "disabled inner code"
eq "$(jb .error.message)" "Operation unwrapKey is not allowed on a disabled key." "disabled message"
req POST "$V/keys/k1/$VER1/wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$CEK\"}"
eq "$STATUS" 403 "disabled wrap"
req GET "$V/keys/k1/$VER1?api-version=7.4"
eq "$STATUS" 200 "GET of a disabled version (emulator choice)"
eq "$(jb .attributes.enabled)" false "GET shows enabled=false"
req PATCH "$V/keys/k1/$VER1?api-version=7.4" '{"attributes":{"enabled":true},"tags":{"a":"b"}}'
eq "$STATUS" 200 "PATCH enable"
eq "$(jb .tags.a)" b "PATCH tags"
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$WRAPPED\"}"
eq "$STATUS" 200 "re-enabled unwrap"
req PATCH "$V/keys/k1/?api-version=7.4" '{"attributes":{"enabled":"yes"}}'
eq "$STATUS" 400 "PATCH bad type"
ok "disabled key"

# --- exp / nbf / key_ops ---
PAST=$(( $(date +%s) - 3600 ))
FUTURE=$(( $(date +%s) + 3600 ))
cli keyvault key create --vault-name vault1 --name kexp --expires "$PAST" > "$WORK/kexp.json"
eq "$(jq -r .attributes.exp "$WORK/kexp.json")" "$PAST" "exp attribute"
req POST "$V/keys/kexp//wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$CEK\"}"
eq "$STATUS" 403 "expired wrap"
eq "$(jb .error.innererror.code)" KeyExpired "expired inner"
pubkey_pem "$(jq -r .key.n "$WORK/kexp.json")" AQAB "$WORK/pubexp.pem"
openssl pkeyutl -encrypt -pubin -inkey "$WORK/pubexp.pem" -pkeyopt rsa_padding_mode:oaep -in "$WORK/cek" -out "$WORK/ctexp"
req POST "$V/keys/kexp//unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$(b64url < "$WORK/ctexp")\"}"
eq "$STATUS" 200 "expired key still unwraps"
eq "$(jb .value)" "$CEK" "expired unwrap bytes"
cli keyvault key create --vault-name vault1 --name knbf --not-before "$(date -u -d @"$FUTURE" +%Y-%m-%dT%H:%M:%SZ)" > "$WORK/knbf.json"
eq "$(jq -r .attributes.nbf "$WORK/knbf.json")" "$FUTURE" "ISO not-before"
req POST "$V/keys/knbf//encrypt?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$CEK\"}"
eq "$STATUS" 403 "not-yet-valid encrypt"
eq "$(jb .error.innererror.code)" KeyNotYetValid "nbf inner"
cli keyvault key create --vault-name vault1 --name kops --ops unwrapKey > "$WORK/kops.json"
eq "$(jq -c .key.key_ops "$WORK/kops.json")" '["unwrapKey"]' "key_ops"
req POST "$V/keys/kops//wrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP\",\"value\":\"$CEK\"}"
eq "$STATUS" 403 "key_ops forbids wrap"
jb .error.message | grep -q "Operation is not allowed" || fail "key_ops message"
ok "exp / nbf / key_ops"

# --- create over REST, oct-HSM ---
req POST "$V/keys/k4/create?api-version=7.4" '{"kty":"RSA","key_size":3072,"key_ops":["wrapKey","unwrapKey"],"attributes":{}}'
eq "$STATUS" 200 "REST create"
eq "$(jb .key.n | b64url_dec | wc -c)" 384 "RSA-3072 modulus"
req POST "$V/keys/k4/create?api-version=7.4" '{"kty":"DSA","attributes":{}}'
eq "$STATUS" 400 "unsupported kty"
req POST "$V/keys/bad_name/create?api-version=7.4" '{"kty":"RSA"}'
eq "$STATUS" 400 "bad key name"
cli keyvault key create --vault-name vault1 --name aes1 --kty oct-HSM --size 256 > "$WORK/aes.json"
eq "$(jq -r .key.kty "$WORK/aes.json")" oct-HSM "oct kty"
eq "$(jq -r .key.k "$WORK/aes.json")" null "no k released"
req POST "$V/keys/aes1//wrapkey?api-version=7.6" "{\"alg\":\"A256KW\",\"value\":\"$CEK\"}"
eq "$STATUS" 200 "A256KW wrap"
eq "$(jb .value | b64url_dec | wc -c)" 40 "A256KW length"
req POST "$V/keys/aes1//unwrapkey?api-version=7.6" "{\"alg\":\"A256KW\",\"value\":\"$(jb .value)\"}"
eq "$(jb .value)" "$CEK" "A256KW round trip"
S20=$(head -c 20 /dev/urandom | b64url)
req POST "$V/keys/aes1//wrapkey?api-version=7.6" "{\"alg\":\"CKM_AES_KEY_WRAP_PAD\",\"value\":\"$S20\"}"
eq "$STATUS" 200 "KWP wrap"
req POST "$V/keys/aes1//unwrapkey?api-version=7.6" "{\"alg\":\"CKM_AES_KEY_WRAP_PAD\",\"value\":\"$(jb .value)\"}"
eq "$(jb .value)" "$S20" "KWP round trip"
req POST "$V/keys/aes1//wrapkey?api-version=7.6" "{\"alg\":\"A128KW\",\"value\":\"$CEK\"}"
eq "$STATUS" 400 "A128KW on 256-bit key"
ok "REST create + oct-HSM"

# --- list keys paging ---
req GET "$V/keys?api-version=7.4&maxresults=2"
eq "$STATUS" 200 "list keys"
eq "$(jb '.value|length')" 2 "list page size"
SEEN=$(jb '.value[].kid')
while [ "$(jb .nextLink)" != null ]; do
    req GET "$(jb .nextLink)"
    SEEN="$SEEN
$(jb '.value[].kid')"
done
eq "$(sort -u <<<"$SEEN" | wc -l)" 6 "all keys listed once"
grep -qx "$V/keys/k1" <<<"$SEEN" || fail "list kid is the base id"
req GET "$V/keys?api-version=7.4&maxresults=99"
eq "$STATUS" 400 "maxresults out of range"
# $skiptoken: our nextLinks carry an offset; a token the service never
# issued is 400 BadParameter on every list operation
req GET "$V/keys?api-version=7.4&maxresults=2&%24skiptoken=4"
eq "$STATUS" 200 "valid skiptoken"
eq "$(jb '.value|length')" 2 "last page size"
eq "$(jb .nextLink)" null "last page has no nextLink"
req GET "$V/keys?api-version=7.4&%24skiptoken=600"
eq "$STATUS" 200 "skiptoken past the end"
eq "$(jb '.value|length')" 0 "empty page past the end"
for tok in abc -5 1x '' '%20' '+3' 0x10 99999999999999999999 eyJOZXh0TWFya2VyIjoiMiJ9; do
    for path in keys keys/k1/versions deletedkeys; do
        req GET "$V/$path?api-version=7.4&%24skiptoken=$tok"
        eq "$STATUS" 400 "skiptoken '$tok' on /$path"
        eq "$(jb .error.code)" BadParameter "skiptoken '$tok' on /$path code"
    done
done
ok "list keys"

# --- import (CLI --pem-file, REST PUT with RSA and oct JWKs) ---
openssl genrsa -out "$WORK/imp.pem" 2048 2> /dev/null
cli keyvault key import --vault-name vault1 --name imp1 --pem-file "$WORK/imp.pem" > "$WORK/imp1.json"
eq "$(jq -r .key.n "$WORK/imp1.json" | b64url_dec | od -An -v -tx1 | tr -d ' \n')" \
    "$(openssl rsa -in "$WORK/imp.pem" -noout -modulus | cut -d= -f2 | tr 'A-F' 'a-f')" "imported modulus"
openssl pkey -in "$WORK/imp.pem" -pubout -out "$WORK/imp.pub"
openssl pkeyutl -encrypt -pubin -inkey "$WORK/imp.pub" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$WORK/cek" -out "$WORK/impct"
req POST "$V/keys/imp1//unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(b64url < "$WORK/impct")\"}"
eq "$(jb .value)" "$CEK" "unwrap with imported PEM key"
comp() { # openssl -text field -> b64url
    openssl rsa -in "$WORK/imp.pem" -text -noout | awk -v f="$1:" '
        $1 == f {on = 1; next} on && /^ / {gsub(/[ :]/, ""); printf "%s", $0; next} on {exit}' |
        sed 's/^00//' | xxd -r -p | b64url
}
JWK="{\"kty\":\"RSA\",\"n\":\"$(comp modulus)\",\"e\":\"AQAB\",\"d\":\"$(comp privateExponent)\",\"p\":\"$(comp prime1)\",\"q\":\"$(comp prime2)\",\"dp\":\"$(comp exponent1)\",\"dq\":\"$(comp exponent2)\",\"qi\":\"$(comp coefficient)\",\"key_ops\":[\"unwrapKey\"]}"
req PUT "$V/keys/imp2?api-version=7.4" "{\"key\":$JWK,\"Hsm\":true,\"tags\":{\"src\":\"jwk\"}}"
eq "$STATUS" 200 "REST import RSA JWK"
eq "$(jb .key.kty)" RSA-HSM "Hsm:true -> RSA-HSM"
eq "$(jq -c .key.key_ops "$BODY")" '["unwrapKey"]' "imported key_ops"
eq "$(jb .key.n)" "$(jq -r .key.n "$WORK/imp1.json")" "same key via JWK"
req POST "$V/keys/imp2//unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(b64url < "$WORK/impct")\"}"
eq "$(jb .value)" "$CEK" "unwrap with imported JWK key"
BADJWK=$(jq -c '.q = .p' <<<"$JWK")
req PUT "$V/keys/imp3?api-version=7.4" "{\"key\":$BADJWK}"
eq "$STATUS" 400 "inconsistent JWK rejected"
KEK=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
req PUT "$V/keys/imp4?api-version=7.6" "{\"key\":{\"kty\":\"oct-HSM\",\"k\":\"$(xxd -r -p <<<"$KEK" | b64url)\"}}"
eq "$STATUS" 200 "REST import oct"
openssl enc -id-aes256-wrap -iv A6A6A6A6A6A6A6A6 -K "$KEK" -in "$WORK/cek" -out "$WORK/kwct" 2> /dev/null
req POST "$V/keys/imp4//unwrapkey?api-version=7.6" "{\"alg\":\"A256KW\",\"value\":\"$(b64url < "$WORK/kwct")\"}"
eq "$STATUS" 200 "A256KW unwrap of an openssl (RFC 3394) wrap"
eq "$(jb .value)" "$CEK" "RFC 3394 interop"
for k in imp1 imp2 imp4; do
    req DELETE "$V/keys/$k?api-version=7.4"
    req DELETE "$V/deletedkeys/$k?api-version=7.4"
    eq "$STATUS" 204 "purge $k"
done
ok "import"

# --- soft delete / recover / purge ---
req DELETE "$V/keys/k4?api-version=7.4"
eq "$STATUS" 200 "delete"
eq "$(jb .recoveryId)" "$V/deletedkeys/k4" "recoveryId"
eq "$(jb '.scheduledPurgeDate - .deletedDate')" 7776000 "90 days"
req GET "$V/keys/k4?api-version=7.4"
eq "$STATUS" 404 "GET deleted key"
eq "$(jb .error.code)" KeyNotFound "deleted key code"
req GET "$V/deletedkeys/k4?api-version=7.4"
eq "$STATUS" 200 "GET deletedkeys"
req GET "$V/deletedkeys?api-version=7.4"
eq "$(jb '.value|length')" 1 "list deleted"
req POST "$V/keys/k4/create?api-version=7.4" '{"kty":"RSA"}'
eq "$STATUS" 409 "create over deleted"
eq "$(jb .error.innererror.code)" ObjectIsDeletedButRecoverable "409 inner"
req POST "$V/deletedkeys/k4/recover?api-version=7.4" ""
eq "$STATUS" 200 "recover"
req GET "$V/keys/k4?api-version=7.4"
eq "$STATUS" 200 "GET after recover"
req DELETE "$V/keys/k4?api-version=7.4"
req DELETE "$V/deletedkeys/k4?api-version=7.4"
eq "$STATUS" 204 "purge"
req GET "$V/deletedkeys/k4?api-version=7.4"
eq "$STATUS" 404 "purged"
[ ! -e "$D/keys/vault1/k4.json" ] || fail "purged key file still on disk"
cli keyvault key delete --vault-name vault1 --name kops > /dev/null
if cli keyvault key show --vault-name vault1 --name kops 2> /dev/null; then
    fail "CLI show of a deleted key succeeded"
fi
cli keyvault key recover --vault-name vault1 --name kops > /dev/null
cli keyvault key show --vault-name vault1 --name kops > /dev/null
cli keyvault key delete --vault-name vault1 --name kops > /dev/null
cli keyvault key purge --vault-name vault1 --name kops
cli keyvault key list-versions --vault-name vault1 --name k1 > "$WORK/lv.json"
eq "$(jq length "$WORK/lv.json")" 3 "CLI list-versions"
eq "$(jq -r ".[0].kid" "$WORK/lv.json")" "$KID1" "list-versions kid is versioned"
eq "$(jq -r ".[0].name" "$WORK/lv.json")" k1 "list-versions name"
eq "$(cli keyvault key list --vault-name vault1 | jq -r "map(select(.name == \"k1\"))[0].kid")" "$V/keys/k1" "CLI list base kid"
ok "soft delete / recover / purge"

# --- misc garbage ---
req GET "$V/nothing/here?api-version=7.4"
eq "$STATUS" 404 "unknown path"
req PUT "$V/keys?api-version=7.4" '{}'
eq "$STATUS" 405 "bad method"
eq "$(stat -c %a "$D/keys/vault1/k1.json")" 600 "key file mode"
ok "garbage input"

# --- restart with the same DIR ---
stop_emu
ok "SIGTERM exits 0"
start_emu
eq "$(jq -r .tenant_id <<<"$LINE")" "$TENANT" "tenant kept"
eq "$(cli keyvault show --name vault1 | jq -r .properties.vaultUri)" "$VURI" "vault URL kept"
req GET "$V/keys/k1/$VER1?api-version=7.4"
eq "$STATUS" 200 "old token + key after restart"
eq "$(jb .key.n)" "$N1" "same key material"
req POST "$V/keys/k1/$VER1/unwrapkey?api-version=7.4" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$WRAPPED\"}"
eq "$(jb .value)" "$CEK" "unwrap after restart"
req GET "$V/keys/k1/$VER1?api-version=7.4"
eq "$(jb .tags.a)" b "tags persisted"
TOKEN=$(token_secret "$APPID" "$SECRET")
req GET "$V/keys/aes1?api-version=7.4"
eq "$STATUS" 200 "new token after restart"
ok "restart keeps state"
echo "PASS"
