#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Managed HSM end to end: an oct-HSM key in an emulated Managed HSM (local
# RBAC, audience https://managedhsm.azure.net, a Get Key that does not say
# the key's size) serves C_WrapKey/C_UnwrapKey (CKM_AES_KEY_WRAP and _KWP)
# and the token's object store, through real clients (p11client in ONE
# process and session, pkcs11-tool in separate processes). The story of the
# RSA vault key: wrap -> rotate -> revoke (role assignment removed) ->
# restore (assigned again), nothing lost.
# Usage: mhsm.sh wrap|store|emulator|crypt
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_P11CLIENT:?}"
t_begin
CASE=${1:?case}
HSM=testhsm
ROLE="Managed HSM Crypto Service Encryption User"
HSM_URL=$(emu_cli keyvault create --hsm-name "$HSM" --administrators "$SP_OBJ_ID" | jq -r .properties.hsmUri)
HSM_URL=${HSM_URL%/}
key=$(emu_cli keyvault key create --hsm-name "$HSM" --name hsmkey --kty oct-HSM --size 128)
HKEY_VERSION=$(jq -r .key.kid <<<"$key"); HKEY_VERSION=${HKEY_VERSION##*/}
grant() { emu_cli keyvault role assignment create --hsm-name "$HSM" --role "$ROLE" \
    --assignee-object-id "$SP_OBJ_ID" --scope "${1:-/keys/hsmkey}" >/dev/null; }
revoke() { emu_cli keyvault role assignment delete --hsm-name "$HSM" \
    --assignee-object-id "$SP_OBJ_ID" --scope "${1:-/keys/hsmkey}" >/dev/null; }
LOG="$T_TMP/module.log"
# The module asks for a vault token first; the HSM's 401 challenge names
# https://managedhsm.azure.net and the module follows it.
VAULT_URL=$HSM_URL KEY_NAME=hsmkey AKV_TEST_LOG_FILE=$LOG \
    emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1}'

# REST without the module (a token for SCOPE; METHOD PATH [BODY] -> status,
# body in $T_TMP/b)
tok() {
    curl -s --cacert "$EMU_CA" "$EMU_AUTHORITY/$EMU_TENANT/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$SP_APP_ID" \
        --data-urlencode "client_secret=$(cat "$SP_SECRET_FILE")" --data-urlencode "scope=$1" | jq -r .access_token
}
call() {
    curl -s -o "$T_TMP/b" -w '%{http_code}' --cacert "$EMU_CA" -X "$1" \
        -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$HSM_URL$2"
}
# One p11client process and session; ask CMD... -> its one answer line.
start_client() {
    coproc CL { "$AKV_P11CLIENT" "$AKV_MODULE" repl - 2>&1; }
    CLPID=$CL_PID
    exec {CL_IN}>&"${CL[1]}" {CL_OUT}<&"${CL[0]}"
}
ask() {
    local r=""
    echo "$*" >&"$CL_IN"
    read -r -t 60 r <&"$CL_OUT" || r="(no answer)"
    printf '%s' "$r"
}
b64u() { basenc --base64url -w0 | tr -d '='; }           # stdin -> base64url
unb64u() { local s=$1; while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done; basenc -d --base64url <<<"$s"; }

case "$CASE" in
wrap)
    grant
    start_client
    read -r id val <<<"$(ask wrap hsmkey "$T_TMP/w" kw)"
    expect_eq "CKM_AES_KEY_WRAP: wrapped under the current version" "$id" "$(ver_id "$HKEY_VERSION")"
    expect_eq "wrapped blob: 32-byte key + 8" "$(stat -c %s "$T_TMP/w")" 40
    expect_eq "CKM_AES_KEY_WRAP: unwraps" "$(ask unwrap hsmkey "$T_TMP/w" "$id" kw)" "$val"
    read -r idp valp <<<"$(ask wrap hsmkey "$T_TMP/wp" kwp)"
    expect_eq "CKM_AES_KEY_WRAP_KWP: unwraps" "$(ask unwrap hsmkey "$T_TMP/wp" "$idp" kwp)" "$valp"
    # rotate: new data goes to the new version, old blobs still unwrap
    emu_cli keyvault key rotate --hsm-name "$HSM" --name hsmkey >/dev/null
    sleep 1.1
    read -r id2 val2 <<<"$(ask wrap hsmkey "$T_TMP/w2" kw)"
    [ -n "$id2" ] && [ "$id2" != "$id" ] && pass "rotated: wraps under the new version" || fail "rotated: id '$id2' (old '$id')"
    expect_eq "rotated: the old blob unwraps (old version)" "$(ask unwrap hsmkey "$T_TMP/w" "$id" kw)" "$val"
    expect_eq "rotated: the new blob unwraps" "$(ask unwrap hsmkey "$T_TMP/w2" "$id2" kw)" "$val2"
    # revoke: the role assignment removed
    revoke
    expect_eq "assignment removed: unwrap refused" "$(ask unwrap hsmkey "$T_TMP/w" "$id" kw)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    expect_grep "log names key, op, 403 and ForbiddenByRbac" "hsmkey.*unwrapkey.*403.*(ForbiddenByRbac|Forbidden)" "$LOG"
    # an assignment on another key's scope does not cover this one
    grant /keys/otherkey
    expect_eq "assignment at /keys/otherkey: still refused" "$(ask unwrap hsmkey "$T_TMP/w" "$id" kw)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    # restore: assigned again, at the HSM's /keys scope this time
    grant /keys
    expect_eq "restored: the same session unwraps the same blob" "$(ask unwrap hsmkey "$T_TMP/w" "$id" kw)" "$val"
    expect_eq "restored: the rotated blob too" "$(ask unwrap hsmkey "$T_TMP/w2" "$id2" kw)" "$val2"
    echo quit >&"$CL_IN"
    wait "$CLPID" && rc=0 || rc=$?
    expect_eq "client exited cleanly" "$rc" 0
    ;;
store)
    need pkcs11-tool
    grant
    IV=0f0e0d0c0b0a09080706050403020100
    head -c 4096 /dev/urandom >"$T_TMP/plain"
    p11 -O >"$T_TMP/O" 2>&1 || true
    expect_grep "the oct-HSM key is listed" "Secret Key Object; AES" "$T_TMP/O"
    expect_grep "its label" "label: *hsmkey" "$T_TMP/O"
    expect_ok "keygen token object sealed under the oct-HSM key" p11 --keygen --key-type AES:32 --label dek --id 0a
    expect_ok "encrypt with it (another process)" p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id 0a -i "$T_TMP/plain" -o "$T_TMP/ct"
    f=$(find "$STORE_DIR" -name '*.obj' -print -quit)
    grep -q "$HKEY_VERSION" "$f" && pass "record names the oct-HSM key version" || fail "record lacks the oct-HSM kid version"
    if [ -n "${AKV_TOOL:-}" ]; then
        # the tool's probe wraps with the oct-HSM key without knowing its size
        "$AKV_TOOL" status --json --config "$AKV_PKCS11_CONFIG" >"$T_TMP/s.json" && rc=0 || rc=$?
        expect_eq "akv-pkcs11-tool status: exit 0" "$rc" 0
        expect_eq "status: get/wrapKey/unwrapKey probes" "$(jq -r '.tokens[0].keys[0] | "\(.get) \(.wrapKey) \(.unwrapKey)"' "$T_TMP/s.json")" "true true true"
    fi
    emu_cli keyvault key rotate --hsm-name "$HSM" --name hsmkey >/dev/null
    sleep 1.1
    if [ -n "${AKV_TOOL:-}" ]; then
        expect_ok "rotated: akv-pkcs11-tool rewrap to the new oct-HSM version" "$AKV_TOOL" rewrap --config "$AKV_PKCS11_CONFIG"
        f=$(find "$STORE_DIR" -name '*.obj' -print -quit)
        grep -q "$HKEY_VERSION" "$f" && fail "rewrapped record still names the old version" || pass "rewrapped record left the old version"
    fi
    expect_ok "rotated: decrypt with the stored key" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 0a -i "$T_TMP/ct" -o "$T_TMP/back"
    expect_ok "rotated: nothing lost" cmp "$T_TMP/plain" "$T_TMP/back"
    revoke
    expect_fail "assignment removed: decrypt with the stored key fails" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 0a -i "$T_TMP/ct" -o "$T_TMP/x"
    grant
    rm -f "$T_TMP/back"
    expect_ok "restored: decrypt works again" p11 --decrypt -m AES-CBC-PAD --iv "$IV" --id 0a -i "$T_TMP/ct" -o "$T_TMP/back"
    expect_ok "restored: nothing lost" cmp "$T_TMP/plain" "$T_TMP/back"
    ;;
crypt)
    # C_Encrypt / C_Decrypt with the oct-HSM key, executed by the Managed
    # HSM (Key Vault encrypt/decrypt; the module learns the key's size from
    # the HSM's answers). Values checked against the HSM's own REST
    # answers: the module's ciphertext decrypts by REST, REST's ciphertext
    # decrypts through the module, and both encrypt to the same bytes.
    CU="Managed HSM Crypto User"
    emu_cli keyvault role assignment create --hsm-name "$HSM" --role "$CU" \
        --assignee-object-id "$SP_OBJ_ID" --scope /keys/hsmkey >/dev/null
    T=$(tok https://managedhsm.azure.net/.default)
    E="/keys/hsmkey/$HKEY_VERSION/encrypt?api-version=7.4" D="/keys/hsmkey/$HKEY_VERSION/decrypt?api-version=7.4"
    IV=000102030405060708090a0b0c0d0e0f
    IVU=$(xxd -r -p <<<"$IV" | b64u)
    head -c 1000 /dev/urandom >"$T_TMP/plain"
    start_client
    # CBC-PAD, single part
    expect_eq "CKM_AES_CBC_PAD: C_Encrypt by the HSM" "$(ask aes hsmkey cbcpad enc $IV - "$T_TMP/plain" "$T_TMP/ct" 1)" "ok 1008"
    expect_eq "REST A128CBCPAD decrypt of the module's ciphertext: 200" \
        "$(call POST "$D" "{\"alg\":\"A128CBCPAD\",\"value\":\"$(b64u <"$T_TMP/ct")\",\"iv\":\"$IVU\"}")" 200
    unb64u "$(jq -r .value "$T_TMP/b")" >"$T_TMP/rest_plain"
    expect_ok "... is the plaintext" cmp "$T_TMP/plain" "$T_TMP/rest_plain"
    expect_eq "REST A128CBCPAD encrypt: 200" \
        "$(call POST "$E" "{\"alg\":\"A128CBCPAD\",\"value\":\"$(b64u <"$T_TMP/plain")\",\"iv\":\"$IVU\"}")" 200
    expect_eq "... the same bytes as the module's" "$(jq -r .value "$T_TMP/b")" "$(b64u <"$T_TMP/ct")"
    # multi-part decrypt (one HSM call at C_DecryptFinal)
    expect_eq "CKM_AES_CBC_PAD: C_DecryptUpdate x3 + Final" "$(ask aes hsmkey cbcpad dec $IV - "$T_TMP/ct" "$T_TMP/back" 3)" "ok 1000"
    expect_ok "... is the plaintext" cmp "$T_TMP/plain" "$T_TMP/back"
    # CBC without padding: whole blocks, the same bytes as REST A128CBC
    head -c 64 "$T_TMP/plain" >"$T_TMP/p64"
    expect_eq "CKM_AES_CBC: multi-part encrypt" "$(ask aes hsmkey cbc enc $IV - "$T_TMP/p64" "$T_TMP/c64" 2)" "ok 64"
    call POST "$E" "{\"alg\":\"A128CBC\",\"value\":\"$(b64u <"$T_TMP/p64")\",\"iv\":\"$IVU\"}" >/dev/null
    expect_eq "... the bytes of REST A128CBC" "$(b64u <"$T_TMP/c64")" "$(jq -r .value "$T_TMP/b")"
    head -c 63 "$T_TMP/plain" >"$T_TMP/p63"
    expect_eq "CKM_AES_CBC of 63 bytes: CKR_DATA_LEN_RANGE" "$(ask aes hsmkey cbc enc $IV - "$T_TMP/p63" "$T_TMP/x" 1)" "RV CKR_DATA_LEN_RANGE"
    # GCM: the HSM picks the IV on encrypt (REST), the module decrypts
    AAD=686561646572 # "header"
    expect_eq "REST A128GCM encrypt with aad: 200" \
        "$(call POST "$E" "{\"alg\":\"A128GCM\",\"value\":\"$(b64u <"$T_TMP/plain")\",\"aad\":\"$(xxd -r -p <<<"$AAD" | b64u)\"}")" 200
    unb64u "$(jq -r .value "$T_TMP/b")" >"$T_TMP/g"
    unb64u "$(jq -r .tag "$T_TMP/b")" >>"$T_TMP/g"
    GIV=$(unb64u "$(jq -r .iv "$T_TMP/b")" | xxd -p -c 64)
    expect_eq "CKM_AES_GCM: C_Decrypt of ciphertext || tag by the HSM" "$(ask aes hsmkey gcm dec "$GIV" $AAD "$T_TMP/g" "$T_TMP/gback" 1)" "ok 1000"
    expect_ok "... is the plaintext" cmp "$T_TMP/plain" "$T_TMP/gback"
    expect_eq "CKM_AES_GCM: multi-part decrypt" "$(ask aes hsmkey gcm dec "$GIV" $AAD "$T_TMP/g" "$T_TMP/gback2" 4)" "ok 1000"
    expect_ok "... is the plaintext" cmp "$T_TMP/plain" "$T_TMP/gback2"
    expect_eq "CKM_AES_GCM: another aad: CKR_ENCRYPTED_DATA_INVALID" "$(ask aes hsmkey gcm dec "$GIV" 686561646573 "$T_TMP/g" "$T_TMP/x" 1)" "RV CKR_ENCRYPTED_DATA_INVALID"
    cp "$T_TMP/g" "$T_TMP/gbad"
    printf '\x00' | dd of="$T_TMP/gbad" bs=1 seek=1010 conv=notrunc 2>/dev/null
    cmp -s "$T_TMP/g" "$T_TMP/gbad" || printf '\x01' | dd of="$T_TMP/gbad" bs=1 seek=1010 conv=notrunc 2>/dev/null
    expect_eq "CKM_AES_GCM: a changed tag: CKR_ENCRYPTED_DATA_INVALID" "$(ask aes hsmkey gcm dec "$GIV" $AAD "$T_TMP/gbad" "$T_TMP/x" 1)" "RV CKR_ENCRYPTED_DATA_INVALID"
    expect_eq "CKM_AES_GCM encryption: the HSM picks the IV: CKR_MECHANISM_PARAM_INVALID" \
        "$(ask aes hsmkey gcm enc "$GIV" - "$T_TMP/plain" "$T_TMP/x" 1)" "RV CKR_MECHANISM_PARAM_INVALID"
    expect_grep "log says why" "with a Managed HSM key is refused: the HSM chooses the IV" "$LOG"
    # GCM encryption through the v3.0 message functions: the HSM picks the
    # IV, returned in CK_GCM_MESSAGE_PARAMS.pIv with the tag in pTag
    read -r ok miv mtag <<<"$(ask gcmmsg hsmkey enc - - $AAD "$T_TMP/plain" "$T_TMP/mct")"
    expect_eq "C_EncryptMessage (CKG_GENERATE_RANDOM) by the HSM" "$ok" ok
    expect_eq "... returns a 12-byte IV and a 16-byte tag" "${#miv}/${#mtag}" "24/32"
    expect_eq "... ciphertext as long as the plaintext" "$(stat -c %s "$T_TMP/mct")" 1000
    expect_eq "REST A128GCM decrypt with that IV and tag: 200" \
        "$(call POST "$D" "{\"alg\":\"A128GCM\",\"value\":\"$(b64u <"$T_TMP/mct")\",\"iv\":\"$(xxd -r -p <<<"$miv" | b64u)\",\"tag\":\"$(xxd -r -p <<<"$mtag" | b64u)\",\"aad\":\"$(xxd -r -p <<<"$AAD" | b64u)\"}")" 200
    unb64u "$(jq -r .value "$T_TMP/b")" >"$T_TMP/mrest"
    expect_ok "... is the plaintext" cmp "$T_TMP/plain" "$T_TMP/mrest"
    expect_eq "C_DecryptMessage with that IV and tag" "$(ask gcmmsg hsmkey dec "$miv" "$mtag" $AAD "$T_TMP/mct" "$T_TMP/mback")" "ok 1000"
    expect_ok "... is the plaintext" cmp "$T_TMP/plain" "$T_TMP/mback"
    expect_eq "C_DecryptMessage with another aad: CKR_ENCRYPTED_DATA_INVALID" \
        "$(ask gcmmsg hsmkey dec "$miv" "$mtag" 686561646573 "$T_TMP/mct" "$T_TMP/x")" "RV CKR_ENCRYPTED_DATA_INVALID"
    read -r ok miv2 _ <<<"$(ask gcmmsg hsmkey enc - - - "$T_TMP/plain" "$T_TMP/mct2")"
    [ "$ok" = ok ] && [ -n "$miv2" ] && [ "$miv2" != "$miv" ] && pass "a second message gets another IV" || fail "second message: '$ok' IV '$miv2' (first '$miv')"
    # Crypto Service Encryption User only (get, wrapKey, unwrapKey): 403
    emu_cli keyvault role assignment delete --hsm-name "$HSM" --assignee-object-id "$SP_OBJ_ID" --scope /keys/hsmkey >/dev/null
    grant /keys
    expect_eq "Service Encryption User only: C_Encrypt refused" "$(ask aes hsmkey cbcpad enc $IV - "$T_TMP/plain" "$T_TMP/x" 1)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    expect_eq "... C_Decrypt refused" "$(ask aes hsmkey cbcpad dec $IV - "$T_TMP/ct" "$T_TMP/x" 1)" "RV CKR_KEY_FUNCTION_NOT_PERMITTED"
    expect_grep "log names key, op encrypt, 403" "hsmkey op encrypt: HTTP 403" "$LOG"
    expect_eq "... wrapping still works" "$(ask wrap hsmkey "$T_TMP/w" kw | cut -c1-32)" "$(ver_id "$HKEY_VERSION")"
    # Crypto User again: the same session encrypts
    emu_cli keyvault role assignment create --hsm-name "$HSM" --role "$CU" \
        --assignee-object-id "$SP_OBJ_ID" --scope /keys/hsmkey >/dev/null
    expect_eq "Crypto User restored: C_Decrypt works again" "$(ask aes hsmkey cbcpad dec $IV - "$T_TMP/ct" "$T_TMP/back2" 1)" "ok 1000"
    expect_ok "... is the plaintext" cmp "$T_TMP/plain" "$T_TMP/back2"
    echo quit >&"$CL_IN"
    wait "$CLPID" && rc=0 || rc=$?
    expect_eq "client exited cleanly" "$rc" 0
    # A standard vault keeps no oct-HSM key ("about keys": HSM key types,
    # oct-HSM in preview, need a premium vault), and the AES algorithms on
    # its RSA key are refused even with the encrypt permission.
    expect_fail "no oct-HSM key in a standard vault (CLI)" emu_cli keyvault key create --vault-name "$VAULT_NAME" --name octv --kty oct-HSM
    emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
        --key-permissions get wrapKey unwrapKey encrypt create >/dev/null
    T=$(tok https://vault.azure.net/.default)
    vcall() { curl -s -o "$T_TMP/b" -w '%{http_code}' --cacert "$EMU_CA" -X POST -H "Authorization: Bearer $T" \
        -H 'Content-Type: application/json' --data "$2" "${VAULT_URL%/}$1"; }
    expect_eq "no oct-HSM key in a standard vault (REST): 403" \
        "$(vcall "/keys/octv/create?api-version=7.4" '{"kty":"oct-HSM","key_size":256}')" 403
    expect_eq "vault RSA key, A128CBCPAD: 400" \
        "$(vcall "/keys/$KEY_NAME/$KEY_VERSION/encrypt?api-version=7.4" "{\"alg\":\"A128CBCPAD\",\"value\":\"AAEC\",\"iv\":\"$IVU\"}")" 400
    ;;
emulator)
    # The Managed HSM as a client without the module sees it.
    code=$(curl -s -o "$T_TMP/b" -D "$T_TMP/h" -w '%{http_code}' --cacert "$EMU_CA" \
        "$HSM_URL/keys/hsmkey?api-version=7.4")
    expect_eq "no token: 401" "$code" 401
    expect_grep "challenge names the Managed HSM resource" 'resource="https://managedhsm.azure.net"' "$T_TMP/h"
    T=$(tok https://vault.azure.net/.default)
    expect_eq "a vault token: 401" "$(call GET /keys/hsmkey?api-version=7.4)" 401
    expect_grep "AKV10022 audience" "AKV10022" "$T_TMP/b"
    T=$(tok https://managedhsm.azure.net/.default)
    code=$(curl -s -o "$T_TMP/b" -w '%{http_code}' --cacert "$EMU_CA" -H "Authorization: Bearer $T" \
        "${VAULT_URL%/}/keys/$KEY_NAME?api-version=7.4")
    expect_eq "a Managed HSM token at a vault: 401" "$code" 401
    expect_grep "AKV10022 there too" "AKV10022" "$T_TMP/b"
    expect_eq "Managed HSM token, only an Administrator at /: 403" "$(call GET /keys/hsmkey?api-version=7.4)" 403
    expect_grep "ForbiddenByRbac naming the data action" 'ForbiddenByRbac.*|keys/read/action' "$T_TMP/b"
    grant
    expect_eq "Crypto Service Encryption User: get 200" "$(call GET /keys/hsmkey?api-version=7.4)" 200
    expect_eq "the KeyBundle says oct-HSM" "$(jq -r .key.kty "$T_TMP/b")" oct-HSM
    for alg in A128KW CKM_AES_KEY_WRAP CKM_AES_KEY_WRAP_PAD; do
        expect_eq "wrapKey $alg: 200" "$(call POST "/keys/hsmkey/$HKEY_VERSION/wrapkey?api-version=7.4" "{\"alg\":\"$alg\",\"value\":\"AAECAwQFBgcICQoLDA0ODw\"}")" 200
        w=$(jq -r .value "$T_TMP/b")
        expect_eq "unwrapKey $alg: the same 16 bytes" "$(call POST "/keys/hsmkey/$HKEY_VERSION/unwrapkey?api-version=7.4" "{\"alg\":\"$alg\",\"value\":\"$w\"}")/$(jq -r .value "$T_TMP/b")" "200/AAECAwQFBgcICQoLDA0ODw"
    done
    expect_eq "A256KW on a 128-bit key: 400" "$(call POST "/keys/hsmkey/$HKEY_VERSION/wrapkey?api-version=7.4" '{"alg":"A256KW","value":"AAECAwQFBgcICQoLDA0ODw"}')" 400
    expect_eq "encrypt is not in the role: 403" "$(call POST "/keys/hsmkey/$HKEY_VERSION/encrypt?api-version=7.4" '{"alg":"A128GCM","value":"AAEC"}')" 403
    expect_eq "create is not in the role: 403" "$(call POST "/keys/k2/create?api-version=7.4" '{"kty":"oct-HSM","key_size":256}')" 403
    emu_cli keyvault role assignment create --hsm-name "$HSM" --role "Managed HSM Crypto User" \
        --assignee "$SP_APP_ID" --scope / >/dev/null
    expect_eq "Crypto User: create oct-HSM 256" "$(call POST "/keys/k2/create?api-version=7.4" '{"kty":"oct-HSM","key_size":256}')" 200
    expect_eq "Crypto User: create RSA-HSM" "$(call POST "/keys/k3/create?api-version=7.4" '{"kty":"RSA-HSM","key_size":2048}')" 200
    expect_eq "Crypto User: create RSA (software) refused: 400" "$(call POST "/keys/k4/create?api-version=7.4" '{"kty":"RSA","key_size":2048}')" 400
    # AES-GCM: the service picks the 12-byte iv and answers the 16-byte tag
    P=AAECAwQFBgcICQoLDA0ODxAREhM # 20 bytes
    E="/keys/hsmkey/$HKEY_VERSION/encrypt?api-version=7.4" D="/keys/hsmkey/$HKEY_VERSION/decrypt?api-version=7.4"
    expect_eq "encrypt A128GCM: 200" "$(call POST "$E" "{\"alg\":\"A128GCM\",\"value\":\"$P\",\"aad\":\"YWFk\"}")" 200
    read -r ct iv tag <<<"$(jq -r '[.value,.iv,.tag]|join(" ")' "$T_TMP/b")"
    expect_eq "GCM answer: 12-byte iv, 16-byte tag, 20-byte ciphertext" "${#iv}/${#tag}/${#ct}" "16/22/27"
    expect_eq "decrypt A128GCM: the plaintext" "$(call POST "$D" "{\"alg\":\"A128GCM\",\"value\":\"$ct\",\"iv\":\"$iv\",\"tag\":\"$tag\",\"aad\":\"YWFk\"}")/$(jq -r .value "$T_TMP/b")" "200/$P"
    expect_eq "decrypt A128GCM with other aad: 400" "$(call POST "$D" "{\"alg\":\"A128GCM\",\"value\":\"$ct\",\"iv\":\"$iv\",\"tag\":\"$tag\",\"aad\":\"YWFl\"}")" 400
    expect_eq "A256GCM on a 128-bit key: 400" "$(call POST "$E" "{\"alg\":\"A256GCM\",\"value\":\"$P\"}")" 400
    IVC=AAAAAAAAAAAAAAAAAAAAAA
    expect_eq "encrypt A128CBCPAD: 200" "$(call POST "$E" "{\"alg\":\"A128CBCPAD\",\"value\":\"$P\",\"iv\":\"$IVC\"}")" 200
    ct=$(jq -r .value "$T_TMP/b")
    expect_eq "CBCPAD: two blocks" "${#ct}" 43
    expect_eq "decrypt A128CBCPAD: the plaintext" "$(call POST "$D" "{\"alg\":\"A128CBCPAD\",\"value\":\"$ct\",\"iv\":\"$IVC\"}")/$(jq -r .value "$T_TMP/b")" "200/$P"
    expect_eq "A128CBC (no padding) of 20 bytes: 400" "$(call POST "$E" "{\"alg\":\"A128CBC\",\"value\":\"$P\",\"iv\":\"$IVC\"}")" 400
    expect_eq "Crypto User: purge is not in the role: 403" "$(call DELETE "/deletedkeys/k2?api-version=7.4")" 403
    expect_eq "role assignments listed" "$(emu_cli keyvault role assignment list --hsm-name "$HSM" --assignee-object-id "$SP_OBJ_ID" | jq -r 'map(.roleName) | sort | join(",")')" \
        "Managed HSM Administrator,Managed HSM Crypto Service Encryption User,Managed HSM Crypto User"
    expect_fail "set-policy on a Managed HSM is refused" emu_cli keyvault set-policy --name "$HSM" --object-id "$SP_OBJ_ID" --key-permissions get
    openssl genrsa -out "$T_TMP/imp.pem" 2048 2>/dev/null
    expect_eq "an imported key lands in the HSM (RSA-HSM)" "$(emu_cli keyvault key import --hsm-name "$HSM" --name imp --pem-file "$T_TMP/imp.pem" | jq -r .key.kty)" RSA-HSM
        expect_fail "a software key in a Managed HSM is refused" emu_cli keyvault key create --hsm-name "$HSM" --name soft --kty RSA
    expect_fail "an unknown role is refused" emu_cli keyvault role assignment create --hsm-name "$HSM" --role "Key Vault Crypto User" --assignee-object-id "$SP_OBJ_ID"
    expect_fail "a bad scope is refused" emu_cli keyvault role assignment create --hsm-name "$HSM" --role "$ROLE" --assignee-object-id "$SP_OBJ_ID" --scope /secrets
    emu_restart
    T=$(tok https://managedhsm.azure.net/.default)
    expect_eq "after a restart: still a Managed HSM with its assignments" "$(call GET /keys/hsmkey?api-version=7.4)" 200
    expect_eq "after a restart: three assignments" "$(emu_cli keyvault role assignment list --hsm-name "$HSM" | jq length)" 3
    revoke /
    revoke /keys/hsmkey
    expect_eq "all key roles removed: 403" "$(call GET /keys/hsmkey?api-version=7.4)" 403
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
