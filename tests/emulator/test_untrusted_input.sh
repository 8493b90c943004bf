#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# akv-emulator: inputs the fuzz targets (tests/fuzz/fuzz_emu_*) found
# mishandled, end to end:
#   - a REST import of an RSA JWK without p, q, dp, dq, qi was taken (d never
#     checked against n) and then lost at the next start (its key file holds
#     PKCS#8, which needs the primes): now 400, like an inconsistent JWK;
#   - attribute times (nbf, exp) outside the integer range (1e300) were
#     converted with undefined behaviour (UBSan); now 400 BadParameter;
#   - a key file whose version claims a size or type its material does not
#     have (oct-HSM without "k" and "bits": 25519469; an oct key labelled
#     RSA) was loaded, and saving it read past the 32-byte oct key: now the
#     file is refused at start ("cannot load key file"), the key is absent.
EMU=${1:?usage: $0 path/to/akv-emulator}
. "$(dirname "$0")/lib.sh"

start_emu
V=$(cli keyvault create --name vaultu --sku premium | jq -r .properties.vaultUri)
V=${V%/}
cli ad sp create-for-rbac --name appu > "$WORK/sp.json"
cli keyvault set-policy --name vaultu --spn "$(jq -r .appId "$WORK/sp.json")" \
    --key-permissions all > /dev/null
TOKEN=$(token_secret "$(jq -r .appId "$WORK/sp.json")" "$(jq -r .password "$WORK/sp.json")")

# --- RSA JWK import: every CRT member is required ---
openssl genrsa -out "$WORK/k.pem" 2048 2> /dev/null
openssl genrsa -out "$WORK/other.pem" 2048 2> /dev/null
comp() { # FILE FIELD: openssl -text field -> b64url
    openssl rsa -in "$1" -text -noout | awk -v f="$2:" '
        $1 == f {on = 1; next} on && /^ / {gsub(/[ :]/, ""); printf "%s", $0; next} on {exit}' |
        sed 's/^00//' | xxd -r -p | b64url
}
N=$(comp "$WORK/k.pem" modulus)
D_OK=$(comp "$WORK/k.pem" privateExponent)
D_BAD=$(comp "$WORK/other.pem" privateExponent)
FULL="{\"kty\":\"RSA\",\"n\":\"$N\",\"e\":\"AQAB\",\"d\":\"$D_OK\",\"p\":\"$(comp "$WORK/k.pem" prime1)\",\"q\":\"$(comp "$WORK/k.pem" prime2)\",\"dp\":\"$(comp "$WORK/k.pem" exponent1)\",\"dq\":\"$(comp "$WORK/k.pem" exponent2)\",\"qi\":\"$(comp "$WORK/k.pem" coefficient)\"}"
req PUT "$V/keys/nocrt?api-version=7.4" "{\"key\":{\"kty\":\"RSA\",\"n\":\"$N\",\"e\":\"AQAB\",\"d\":\"$D_OK\"}}"
eq "$STATUS" 400 "RSA JWK with n, e, d only"
eq "$(jb .error.code)" BadParameter "RSA JWK with n, e, d only: code"
req PUT "$V/keys/wrongd?api-version=7.4" "{\"key\":{\"kty\":\"RSA\",\"n\":\"$N\",\"e\":\"AQAB\",\"d\":\"$D_BAD\"}}"
eq "$STATUS" 400 "RSA JWK whose d belongs to another key"
req PUT "$V/keys/somecrt?api-version=7.4" "$(jq -c '{key: (.|del(.dp))}' <<<"$FULL")"
eq "$STATUS" 400 "RSA JWK missing dp"
req PUT "$V/keys/full?api-version=7.4" "{\"key\":$FULL}"
eq "$STATUS" 200 "complete RSA JWK"
ok "RSA JWK import needs n, e, d, p, q, dp, dq, qi"

# --- numbers outside the integer range are refused, not converted ---
req GET "$V/keys/full?api-version=7.4"
BEFORE=$(jq -c .attributes "$BODY")
req PATCH "$V/keys/full?api-version=7.4" '{"attributes":{"enabled":false,"exp":1e300}}'
eq "$STATUS" 400 "exp 1e300"
eq "$(jb .error.message)" "Property 'exp' is not valid." "exp 1e300: message"
req PATCH "$V/keys/full?api-version=7.4" '{"attributes":{"nbf":-7.7e56}}'
eq "$STATUS" 400 "nbf -7.7e56"
req GET "$V/keys/full?api-version=7.4"
eq "$(jq -c .attributes "$BODY")" "$BEFORE" "refused updates change nothing"
ok "attribute times outside the integer range"

# --- key files are checked against their kty and bits at start ---
cli keyvault key create --vault-name vaultu --name oct1 --kty oct-HSM --size 256 > /dev/null
cli keyvault key create --vault-name vaultu --name oct2 --kty oct-HSM --size 128 > /dev/null
cli keyvault key create --vault-name vaultu --name good --kty oct-HSM > /dev/null
stop_emu
KD="$D/keys/vaultu"
# the fuzzer's find: no material, a size far past the 32-byte oct buffer
jq '.versions[0] |= (del(.k) | .bits = 25519469)' "$KD/oct1.json" > "$WORK/t" && cat "$WORK/t" > "$KD/oct1.json"
# an oct key that says it is RSA (no RSA key behind it to wrap with)
jq '.versions[0].kty = "RSA"' "$KD/oct2.json" > "$WORK/t" && cat "$WORK/t" > "$KD/oct2.json"
start_emu
for k in oct1 oct2; do
    grep -q "cannot load key file .*/$k.json" "$WORK/stderr" || fail "no refusal of $k.json"
    req GET "$V/keys/$k?api-version=7.4"
    eq "$STATUS" 404 "key $k from an inconsistent key file"
done
req GET "$V/keys/good?api-version=7.4"
eq "$STATUS" 200 "a sound key file next to them still loads"
req GET "$V/keys/full?api-version=7.4"
eq "$STATUS" 200 "the JWK-imported key survives the restart"
eq "$(jb .key.n)" "$N" "JWK-imported modulus after restart"
ok "inconsistent key files refused at start"
stop_emu
echo PASS
