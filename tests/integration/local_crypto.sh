#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Local functions (issue 10): C_Digest* and C_DigestKey, CKM_AES_CTR, run
# in the module's private OpenSSL context; values compared with openssl.
# Usage: local_crypto.sh hash|mechanisms|selftest|ctr|digest-key
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool xxd
t_begin
CASE=${1:?case}
ID=$(ver_id "$KEY_VERSION")
local_client() { withmod "$AKV_P11LOCAL" "$AKV_MODULE" "$@"; }

case "$CASE" in
hash)
    # pkcs11-tool --hash (C_DigestInit/C_DigestUpdate/C_DigestFinal) vs
    # openssl dgst; an empty input too.
    head -c 100000 /dev/urandom >"$T_TMP/data"
    : >"$T_TMP/empty"
    for pair in SHA-1:sha1 SHA224:sha224 SHA256:sha256 SHA384:sha384 \
        SHA512:sha512 SHA3-224:sha3-224 SHA3-256:sha3-256 \
        SHA3-384:sha3-384 SHA3-512:sha3-512; do
        m=${pair%%:*}
        o=${pair#*:}
        for f in data empty; do
            p11 --hash -m "$m" -i "$T_TMP/$f" -o "$T_TMP/h" >/dev/null 2>&1 ||
                rm -f "$T_TMP/h"
            got=$(xxd -p -c 256 "$T_TMP/h" 2>/dev/null || true)
            want=$(openssl dgst -"$o" -r "$T_TMP/$f" | cut -d' ' -f1)
            expect_eq "$m of $f equals openssl dgst -$o" "$got" "$want"
        done
    done
    ;;
mechanisms)
    p11 -M >"$T_TMP/M" 2>&1 || true
    cat "$T_TMP/M"
    # pkcs11-tool 0.23 has no names for SHA512-224 (0x48) and SHA512-256
    # (0x4C).
    for m in SHA-1 SHA224 SHA256 SHA384 SHA512 mechtype-0x48 mechtype-0x4C \
        SHA3-224 SHA3-256 SHA3-384 SHA3-512; do
        expect_grep "mechanism $m, digest only" "^ *$m, digest$" "$T_TMP/M"
    done
    expect_grep "AES-CTR: key sizes 16..32 bytes, encrypt and decrypt" \
        "^ *AES-CTR, keySize=\{16,32\}, encrypt, decrypt$" "$T_TMP/M"
    ;;
selftest)
    # pkcs11-tool --test runs its digest checks (known SHA-1/SHA-256
    # answers, the four digest calls) against the module.
    p11 --test >"$T_TMP/t" 2>&1 && rc=0 || rc=$?
    cat "$T_TMP/t"
    expect_eq "pkcs11-tool --test exit status" "$rc" 0
    expect_grep "digest functions work" "all 4 digest functions seem to work" "$T_TMP/t"
    expect_grep "SHA-1 known answer" "SHA-1: OK" "$T_TMP/t"
    expect_grep "SHA256 known answer" "SHA256: OK" "$T_TMP/t"
    ;;
ctr)
    # pkcs11-tool 0.23 refuses -m AES-CTR for --encrypt, so p11local
    # drives it; openssl enc -aes-*-ctr (a 128-bit counter) is the
    # reference.
    head -c 70001 /dev/urandom >"$T_TMP/plain"
    for kl in 16 32; do
        key=$(head -c "$kl" /dev/urandom | xxd -p -c 64)
        cb=$(head -c 16 /dev/urandom | xxd -p -c 64)
        openssl enc -aes-$((kl * 8))-ctr -K "$key" -iv "$cb" \
            -in "$T_TMP/plain" -out "$T_TMP/want"
        expect_ok "AES-$((kl * 8))-CTR single part" local_client ctr "$key" "$cb" 128 "$T_TMP/plain" "$T_TMP/ct" enc
        expect_ok "AES-$((kl * 8))-CTR equals openssl enc" cmp "$T_TMP/ct" "$T_TMP/want"
        expect_ok "AES-$((kl * 8))-CTR multi part (1000-byte pieces)" local_client ctr "$key" "$cb" 128 "$T_TMP/plain" "$T_TMP/ct2" enc 1000
        expect_ok "multi part equals openssl enc" cmp "$T_TMP/ct2" "$T_TMP/want"
        expect_ok "AES-$((kl * 8))-CTR decrypt (13-byte pieces)" local_client ctr "$key" "$cb" 128 "$T_TMP/want" "$T_TMP/back" dec 13
        expect_ok "decrypt gives the plaintext back" cmp "$T_TMP/back" "$T_TMP/plain"
    done
    # NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt).
    printf '%s' 6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51 \
        30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710 |
        xxd -r -p >"$T_TMP/f5"
    expect_ok "F.5.1 encrypt" local_client ctr 2b7e151628aed2a6abf7158809cf4f3c f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff 128 "$T_TMP/f5" "$T_TMP/f5c" enc
    expect_eq "F.5.1 ciphertext" "$(xxd -p -c 64 "$T_TMP/f5c")" \
        874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee
    # A 32-bit counter starting at 2^32 - 2 wraps to 0 in the third block
    # (RFC 3686 style nonce || counter): the reference is openssl with the
    # counter restarted by hand at the wrap.
    key=$(head -c 16 /dev/urandom | xxd -p -c 64)
    nonce=$(head -c 12 /dev/urandom | xxd -p -c 64)
    head -c 48 /dev/urandom >"$T_TMP/p48"
    head -c 32 "$T_TMP/p48" >"$T_TMP/p32"
    tail -c 16 "$T_TMP/p48" >"$T_TMP/p16"
    openssl enc -aes-128-ctr -K "$key" -iv "${nonce}fffffffe" -in "$T_TMP/p32" -out "$T_TMP/w1"
    openssl enc -aes-128-ctr -K "$key" -iv "${nonce}00000000" -in "$T_TMP/p16" -out "$T_TMP/w2"
    cat "$T_TMP/w1" "$T_TMP/w2" >"$T_TMP/wrap-want"
    expect_ok "32-bit counter across the wrap" local_client ctr "$key" "${nonce}fffffffe" 32 "$T_TMP/p48" "$T_TMP/wrap-got" enc 7
    expect_ok "wrap keeps the nonce and restarts the counter" cmp "$T_TMP/wrap-got" "$T_TMP/wrap-want"
    # 4 counter bits: 16 blocks at most, the 257th byte is refused.
    head -c 257 /dev/zero >"$T_TMP/p257"
    out=$(local_client ctr "$key" "${nonce}00000000" 4 "$T_TMP/p257" "$T_TMP/x" enc || true)
    expect_eq "more than 2^ulCounterBits blocks: CKR_DATA_LEN_RANGE" "$out" "FAIL: C_Encrypt/C_Decrypt: 0x21"
    ;;
digest-key)
    # A token object (its value in the store, wrapped by the vault key)
    # and a session key; the digest must equal SHA-256(prefix || value).
    expect_ok "keygen AES-256 token object" p11 --keygen --key-type AES:32 --label dek1 --id 01 --extractable
    for who in token session; do
        if [ "$who" = token ]; then
            out=$(local_client digest-key 01 "prefix:" || true)
        else
            out=$(local_client digest-key-session "prefix:" || true)
        fi
        d=${out%% *}
        v=${out#* }
        want=$({ printf 'prefix:'; printf '%s' "$v" | xxd -r -p; } | openssl dgst -sha256 -r | cut -d' ' -f1)
        expect_eq "$who key: 32-byte value read" "${#v}" 64
        expect_eq "$who key: C_DigestKey equals openssl" "$d" "$want"
    done
    # Keys it refuses: a sensitive key, the vault's private key.
    expect_ok "keygen sensitive token object" p11 --keygen --key-type AES:32 --label dek2 --id 02 --sensitive
    expect_eq "sensitive key: CKR_KEY_INDIGESTIBLE" "$(local_client digest-key-rv 02 || true)" 0x67
    expect_eq "vault key: CKR_KEY_INDIGESTIBLE" "$(local_client digest-key-rv "$ID" || true)" 0x67
    ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
t_finish
