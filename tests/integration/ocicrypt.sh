#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The module driven the way OCI image encryption tooling drives it
# (ocicrypt's PKCS#11 scheme: skopeo, buildah, containerd imgcrypt):
# tests/integration/ocicrypt_client.c loads the module for ONE operation
# and unloads it, names the key by label only, needs exactly one object per
# label, uses RSA-OAEP (SHA-256, or SHA-1 as with OCICRYPT_OAEP_HASHALG=sha1)
# with an RSA-3072 key (ocicrypt's ~193-byte payload does not fit
# OAEP-SHA-256 under RSA-2048). Layers are encrypted under version 1, the
# key is rotated, more layers are encrypted under version 2, and every
# layer is then decrypted by label alone - old layers through the rotation
# fallback (token/rotate.h) - one process per layer. Asserts the bytes and
# the vault requests per decrypted layer.
. "$(dirname "$0")/../lib/common.sh"
: "${AKV_OCICLIENT:?}"
t_begin
KEY_NAME=layers
emu_cli keyvault key create --vault-name "$VAULT_NAME" --name "$KEY_NAME" \
    --kty RSA --size 3072 >/dev/null
emu_write_config "$AKV_PKCS11_CONFIG"
oc() { withmod "$AKV_OCICLIENT" "$AKV_MODULE" "$@"; }
stat_of() { emu_cli stats | jq -r ".$1 // 0"; }

LAYERS=6
hash_of() { if [ $(($1 % 2)) -eq 1 ]; then echo sha256; else echo sha1; fi; }
encrypt_layer() { # N
    local n=$1
    head -c 193 /dev/urandom >"$T_TMP/layer$n.key"
    expect_ok "layer $n: encrypt by label ($(hash_of "$n"))" \
        oc encrypt "$TOKEN_LABEL" "$KEY_NAME" "$(hash_of "$n")" \
        "$T_TMP/layer$n.key" "$T_TMP/layer$n.enc"
    expect_eq "layer $n: RSA-3072 ciphertext" "$(stat -c %s "$T_TMP/layer$n.enc")" 384
}
for n in 1 2 3; do encrypt_layer "$n"; done
emu_cli keyvault key rotate --vault-name "$VAULT_NAME" --name "$KEY_NAME" >/dev/null
for n in 4 5 6; do encrypt_layer "$n"; done

# Exactly one private and one public object per label, also after the
# rotation (the old version is not listed by label).
expect_ok "label search: one private key" \
    oc decrypt "$TOKEN_LABEL" "$KEY_NAME" sha256 "$T_TMP/layer5.enc" "$T_TMP/x"

emu_cli stats --reset >/dev/null
for n in $(seq 1 "$LAYERS"); do
    expect_ok "layer $n: decrypt by label in its own process" \
        oc decrypt "$TOKEN_LABEL" "$KEY_NAME" "$(hash_of "$n")" \
        "$T_TMP/layer$n.enc" "$T_TMP/layer$n.dec"
    expect_ok "layer $n: decrypted bytes match" cmp "$T_TMP/layer$n.key" "$T_TMP/layer$n.dec"
done
expect_grep "the fallback is logged with the version that worked" \
    "rotation fallback" "$T_TMP/module.log"
get=$(stat_of get); unwrap=$(stat_of unwrapkey); decrypt=$(stat_of decrypt)
tok=$(stat_of token)
echo "vault requests for $LAYERS layers: token $tok, get $get, unwrapkey $unwrap, decrypt $decrypt"
# Per layer: one token, one GET of the current version, one unwrap; an old
# layer adds one unwrap under the current version and one GET confirming
# the old version from the catalog.
expect_eq "unwrapkey calls: one per new layer, two per old layer" "$unwrap" $((LAYERS + 3))
expect_ok "GET calls: at most two per layer ($get)" test "$get" -le $((2 * LAYERS))

# Switched off, an old layer is refused (one call), a new one still works.
emu_write_config "$AKV_PKCS11_CONFIG" '{"rotation_fallback":0}'
expect_fail "fallback off: an old layer is refused" \
    oc decrypt "$TOKEN_LABEL" "$KEY_NAME" sha256 "$T_TMP/layer1.enc" "$T_TMP/x"
expect_ok "fallback off: a new layer decrypts" \
    oc decrypt "$TOKEN_LABEL" "$KEY_NAME" sha256 "$T_TMP/layer5.enc" "$T_TMP/x"
t_finish
