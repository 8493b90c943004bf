#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The module driven the way OCI image encryption tooling drives it
# (ocicrypt's PKCS#11 scheme: skopeo, buildah, containerd imgcrypt):
# tests/integration/ocicrypt_client.c loads the module for ONE operation
# and unloads it, names the key by label only, needs exactly one object per
# label, uses RSA-OAEP (SHA-256, or SHA-1 as with OCICRYPT_OAEP_HASHALG=sha1)
# with an RSA-3072 key (ocicrypt's ~193-byte payload does not fit
# OAEP-SHA-256 under RSA-2048).
#   1. cold start: once a previous process ran, a layer costs only its
#      unwrapKey (token and Get Key answers come from the per-user cache);
#   2. rotation: layers made under version 1 and version 2, all decrypted by
#      label alone (old ones through the rotation fallback);
#   3. revocation still bites at the next call with a warm cache;
#   4. without the cache every layer pays token + Get Key + unwrapKey.
# Asserts the bytes and the vault requests; prints requests and wall time
# per layer.
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_OCICLIENT:?}"
t_begin
KEY_NAME=layers
emu_cli keyvault key create --vault-name "$VAULT_NAME" --name "$KEY_NAME" \
    --kty RSA --size 3072 >/dev/null
emu_write_config "$AKV_PKCS11_CONFIG"
oc() { withmod "$AKV_OCICLIENT" "$AKV_MODULE" "$@"; }
stat_of() { emu_cli stats | jq -r ".$1 // 0"; }
requests() { echo $(($(stat_of token) + $(stat_of get) + $(stat_of unwrapkey) + $(stat_of decrypt))); }
hash_of() { if [ $(($1 % 2)) -eq 1 ]; then echo sha256; else echo sha1; fi; }
now_ms() { date +%s%3N; }

encrypt_layer() { # N
    local n=$1
    head -c 193 /dev/urandom >"$T_TMP/layer$n.key"
    expect_ok "layer $n: encrypt by label ($(hash_of "$n"))" \
        oc encrypt "$TOKEN_LABEL" "$KEY_NAME" "$(hash_of "$n")" \
        "$T_TMP/layer$n.key" "$T_TMP/layer$n.enc"
    expect_eq "layer $n: RSA-3072 ciphertext" "$(stat -c %s "$T_TMP/layer$n.enc")" 384
}
decrypt_layer() { # N WHAT
    expect_ok "layer $1: decrypt by label in its own process ($2)" \
        oc decrypt "$TOKEN_LABEL" "$KEY_NAME" "$(hash_of "$1")" \
        "$T_TMP/layer$1.enc" "$T_TMP/layer$1.dec"
    expect_ok "layer $1: decrypted bytes match ($2)" cmp "$T_TMP/layer$1.key" "$T_TMP/layer$1.dec"
}

# 1. Cold start, no rotation: N layers cost N requests (goal: N + at most 2).
for n in 1 2 3; do encrypt_layer "$n"; done
emu_cli stats --reset >/dev/null
t0=$(now_ms)
for n in 1 2 3; do decrypt_layer "$n" "warm cache"; done
t1=$(now_ms)
echo "cold-start layers: 3 layers, $(requests) vault requests (token $(stat_of token), get $(stat_of get), unwrapkey $(stat_of unwrapkey)), $(((t1 - t0) / 3)) ms per load-decrypt-unload cycle"
expect_eq "3 layers cost 3 unwrapKey calls" "$(stat_of unwrapkey)" 3
expect_ok "3 layers cost at most 3 + 2 vault requests ($(requests))" test "$(requests)" -le 5
expect_eq "no token request: the token came from the per-user cache" "$(stat_of token)" 0

# 2. Rotation. The first process after it that refreshes (key_refresh_s 1)
# writes the new version into the cache; the others use it.
emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
emu_write_config "$AKV_PKCS11_CONFIG" '{"key_refresh_s":1}'
sleep 1.2
encrypt_layer 4
emu_write_config "$AKV_PKCS11_CONFIG"
for n in 5 6; do encrypt_layer "$n"; done
emu_cli stats --reset >/dev/null
: >"$T_TMP/module.log"
for n in 1 2 3 4 5 6; do decrypt_layer "$n" "after rotation"; done
expect_grep "the fallback is logged with the version that worked" \
    "rotation fallback" "$T_TMP/module.log"
# An old layer is no error: the current version's expected refusal is
# logged at DEBUG, not as an ERROR per layer of every old image.
expect_eq "old layers decrypt without an ERROR line" \
    "$(grep -c ' ERROR ' "$T_TMP/module.log" || true)" 0
echo "after rotation: 6 layers, $(requests) vault requests (token $(stat_of token), get $(stat_of get), unwrapkey $(stat_of unwrapkey))"
# new layers: one unwrap; old layers: the current version, then version 1
expect_eq "unwrapKey calls: one per new layer, two per old layer" "$(stat_of unwrapkey)" 9
expect_ok "Get Key: at most one (confirming version 1; then cached)" test "$(stat_of get)" -le 1
# A damaged layer that no version decrypts: one ERROR line says so.
head -c "$(stat -c %s "$T_TMP/layer1.enc")" /dev/urandom >"$T_TMP/damaged.enc"
: >"$T_TMP/module.log"
expect_fail "a damaged layer is refused" \
    oc decrypt "$TOKEN_LABEL" "$KEY_NAME" sha256 "$T_TMP/damaged.enc" "$T_TMP/x"
expect_eq "one ERROR line for it, naming the versions tried" \
    "$(grep -c ' ERROR .*refused the ciphertext .* 1 other known version' "$T_TMP/module.log" || true)" 1
expect_eq "and no other ERROR line" "$(grep -c ' ERROR ' "$T_TMP/module.log" || true)" 1

# 3. Revocation bites at the next call, warm cache or not; restore heals.
emu_cli keyvault delete-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" >/dev/null
expect_fail "policy removed: the next layer is refused" \
    oc decrypt "$TOKEN_LABEL" "$KEY_NAME" sha256 "$T_TMP/layer5.enc" "$T_TMP/x"
emu_cli keyvault set-policy --name "$VAULT_NAME" --object-id "$SP_OBJ_ID" \
    --key-permissions get wrapKey unwrapKey >/dev/null
decrypt_layer 5 "access restored"

# 4. Without the cache, and with the fallback off.
emu_write_config "$AKV_PKCS11_CONFIG" '{"cache":false}'
emu_cli stats --reset >/dev/null
decrypt_layer 5 "no cache"
expect_eq "no cache: token + Get Key + unwrapKey" "$(requests)" 3
emu_write_config "$AKV_PKCS11_CONFIG" '{"rotation_fallback":0}'
expect_fail "fallback off: an old layer is refused" \
    oc decrypt "$TOKEN_LABEL" "$KEY_NAME" sha256 "$T_TMP/layer1.enc" "$T_TMP/x"
decrypt_layer 5 "fallback off"

# The cache holds the token: a folder and files only this user can read.
expect_eq "cache folder is 0700" "$(stat -c %a "$EMU_DIR/cache")" 700
expect_eq "cache files are 0600" "$(find "$EMU_DIR/cache" -type f ! -perm 600 | wc -l)" 0
t_finish
