#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Files and endpoints an operator can get wrong (issue 7 §5, §1 StrictModes;
# common/fsperm.h): through the module, each bad case is refused with one
# line that names the path, the rule and the fix, and the correct setup
# works. Config-file cases make C_Initialize fail (CKR_GENERAL_ERROR); store
# cases leave the token up without token objects (CKA_TOKEN=TRUE creation
# -> CKR_TOKEN_WRITE_PROTECTED). Ownership cases chown to nobody (65534)
# and need root, as in CI.
. "$(dirname "$0")/../lib/common.sh"
need pkcs11-tool
t_begin
ROOT=0; [ "$(id -u)" = 0 ] && ROOT=1
IV=000102030405060708090a0b0c0d0e0f
# p11c CONFIG ARGS... - pkcs11-tool on the module with another config.
p11c() { local c=$1; shift; AKV_PKCS11_CONFIG=$c p11 "$@"; }

# init_refused WHAT CONFIG PATTERN - C_Initialize fails, stderr says why.
init_refused() {
    local out="$T_TMP/init.out"
    if AKV_PKCS11_CONFIG=$2 p11 -I >"$out" 2>&1; then
        fail "$1: C_Initialize succeeded"; return
    fi
    expect_grep "$1: C_Initialize fails" 'C_Initialize failed: rv = CKR_GENERAL_ERROR' "$out"
    expect_grep "$1: the line names path, rule and fix" "$3" "$out"
}

# The correct setup (0600 config in a 0700 folder under sticky /tmp).
expect_ok "correct setup: C_Initialize" p11 -I
expect_ok "correct setup: token object created" p11 --keygen --key-type AES:32 --label dek --id 0d
head -c 100 /dev/urandom >"$T_TMP/plain"
expect_ok "correct setup: token object encrypts" p11 --encrypt -m AES-CBC-PAD --iv "$IV" --id 0d -i "$T_TMP/plain" -o "$T_TMP/ct"

# A 0644 config in a 0777 folder: anyone can swap the file.
mkdir "$T_TMP/wide"
cp "$AKV_PKCS11_CONFIG" "$T_TMP/wide/c.json"; chmod 644 "$T_TMP/wide/c.json"
chmod 0777 "$T_TMP/wide"
init_refused "0644 config in a 0777 folder" "$T_TMP/wide/c.json" \
    "configuration: $T_TMP/wide/c.json: folder $T_TMP/wide: mode 0777 lets group/other replace what it holds; fix: chmod go-w $T_TMP/wide"
chmod 0755 "$T_TMP/wide"
expect_ok "same config, folder fixed (chmod go-w)" p11c "$T_TMP/wide/c.json" -I

# A group-writable config.
cp "$AKV_PKCS11_CONFIG" "$T_TMP/gw.json"; chmod 664 "$T_TMP/gw.json"
init_refused "group-writable config" "$T_TMP/gw.json" \
    "$T_TMP/gw.json: mode 0664 lets group/other write it; fix: chmod go-w $T_TMP/gw.json"

# A symlinked config.
ln -s "$AKV_PKCS11_CONFIG" "$T_TMP/link.json"
init_refused "symlinked config" "$T_TMP/link.json" \
    "$T_TMP/link.json: is a symbolic link, which is never followed"

# A symlinked client_secret_file.
ln -s "$SP_SECRET_FILE" "$T_TMP/secret-link"
SP_SECRET_FILE="$T_TMP/secret-link" emu_write_config "$T_TMP/seclink.json"
init_refused "symlinked client_secret_file" "$T_TMP/seclink.json" \
    "credential.client_secret_file: refused: $T_TMP/secret-link: is a symbolic link"

if [ "$ROOT" = 1 ]; then
    # A config owned by another user.
    cp "$AKV_PKCS11_CONFIG" "$T_TMP/nobody.json"; chown 65534 "$T_TMP/nobody.json"
    init_refused "config owned by another user" "$T_TMP/nobody.json" \
        "$T_TMP/nobody.json: owned by uid 65534, not by this process's uid 0 or root, so that user can rewrite it; fix: chown 0 $T_TMP/nobody.json"
    # A client secret owned by another user.
    cp "$SP_SECRET_FILE" "$T_TMP/secret-nobody"; chmod 600 "$T_TMP/secret-nobody"
    chown 65534 "$T_TMP/secret-nobody"
    SP_SECRET_FILE="$T_TMP/secret-nobody" emu_write_config "$T_TMP/secnobody.json"
    init_refused "client secret owned by another user" "$T_TMP/secnobody.json" \
        "client_secret_file: refused: $T_TMP/secret-nobody: owned by uid 65534"
else
    echo "SKIP: ownership cases need root"
fi

# imds_endpoint: the managed-identity token comes back over plain HTTP.
emu_write_config "$T_TMP/imds.json" '{"credential":{"type":"managed_identity","client_id":null,"tenant_id":null,"client_secret_file":null,"authority_host":null,"imds_endpoint":"http://10.1.2.3/metadata/identity/oauth2/token"}}'
init_refused "imds_endpoint on another host" "$T_TMP/imds.json" \
    'credential.imds_endpoint: "http://10.1.2.3/metadata/identity/oauth2/token": the managed-identity token comes back from here over plain HTTP, so only a loopback address or 169.254.169.254 is allowed; name this host in credential.allow_imds_host'
emu_write_config "$T_TMP/imds-ok.json" '{"credential":{"type":"managed_identity","client_id":null,"tenant_id":null,"client_secret_file":null,"authority_host":null,"imds_endpoint":"http://10.1.2.3/metadata/identity/oauth2/token","allow_imds_host":"10.1.2.3"}}'
expect_ok "imds_endpoint host named in allow_imds_host" p11c "$T_TMP/imds-ok.json" -I

# log.target: a planted symlink is not written through; logging goes to
# stderr with the reason.
: >"$T_TMP/victim"
ln -s "$T_TMP/victim" "$T_TMP/log-link"
AKV_TEST_LOG_FILE="$T_TMP/log-link" emu_write_config "$T_TMP/loglink.json"
expect_ok "symlinked log.target: C_Initialize still works" p11c "$T_TMP/loglink.json" -I
expect_grep "symlinked log.target: refused on stderr" "log.target refused \\($T_TMP/log-link: is a symbolic link, which is never followed" "$T_TMP/last.out"
expect_eq "symlinked log.target: the link target is untouched" "$(stat -c %s "$T_TMP/victim")" 0

# The store, at the default log level (error): one line, token objects
# unavailable, creation refused with CKR_TOKEN_WRITE_PROTECTED.
STORE_LOG="$T_TMP/store.log"
AKV_TEST_LOG_LEVEL=error AKV_TEST_LOG_FILE="$STORE_LOG" emu_write_config "$T_TMP/store.json"
# store_refused WHAT PATTERN
store_refused() {
    rm -f "$STORE_LOG"
    if AKV_PKCS11_CONFIG="$T_TMP/store.json" p11 --keygen --key-type AES:32 --label new --id 0e >"$T_TMP/kg.out" 2>&1; then
        fail "$1: CKA_TOKEN=TRUE creation succeeded"
    else
        expect_grep "$1: creation fails with CKR_TOKEN_WRITE_PROTECTED" 'rv = CKR_TOKEN_WRITE_PROTECTED' "$T_TMP/kg.out"
    fi
    expect_grep "$1: one line at the default level" "$2" "$STORE_LOG"
    expect_eq "$1: exactly one refusal line" "$(grep -c "refused, token objects unavailable\|refused: lock file" "$STORE_LOG")" 1
    AKV_PKCS11_CONFIG="$T_TMP/store.json" p11 -O >"$T_TMP/objs.out" 2>&1 || true
    if grep -q 'label: *dek' "$T_TMP/objs.out"; then
        fail "$1: stored object still visible"
    else pass "$1: stored objects unavailable"; fi
    expect_grep "$1: the vault key is still there" "label: *$KEY_NAME" "$T_TMP/objs.out"
}

chmod 0777 "$STORE_DIR"
store_refused "store_dir 0777" \
    "store $STORE_DIR refused, token objects unavailable: folder $STORE_DIR: mode 0777 lets group/other replace what it holds; fix: chmod go-w $STORE_DIR"
chmod 1777 "$STORE_DIR"
store_refused "store_dir 1777 (sticky is not enough for a store)" \
    "folder $STORE_DIR: mode 1777 lets group/other add records; fix: chmod 0700 $STORE_DIR"
chmod 0700 "$STORE_DIR"

if [ "$ROOT" = 1 ]; then
    rec=$(find "$STORE_DIR" -name '*.obj' | head -n1)
    chown 65534 "$rec"
    store_refused "a record owned by another user" \
        "store $STORE_DIR refused, token objects unavailable: $rec: owned by uid 65534"
    chown 0 "$rec"
    chown 65534 "$STORE_DIR/.lock"
    store_refused "a lock file owned by another user" \
        "store $STORE_DIR refused: lock file $STORE_DIR/.lock: owned by uid 65534"
    chown 0 "$STORE_DIR/.lock"
    chown 65534 "$STORE_DIR"
    store_refused "store_dir owned by another user" \
        "folder $STORE_DIR: owned by uid 65534, not by this process's uid 0 or root, so that user can replace what it holds; fix: chown 0 $STORE_DIR"
    chown 0 "$STORE_DIR"
fi

# A group-writable folder above store_dir.
mkdir -p "$T_TMP/gwp/store"; chmod 0700 "$T_TMP/gwp/store"; chmod 0775 "$T_TMP/gwp"
STORE_DIR="$T_TMP/gwp/store" AKV_TEST_LOG_LEVEL=error AKV_TEST_LOG_FILE="$STORE_LOG" \
    emu_write_config "$T_TMP/store-gwp.json"
rm -f "$STORE_LOG"
if AKV_PKCS11_CONFIG="$T_TMP/store-gwp.json" p11 --keygen --key-type AES:32 --label new --id 0e >"$T_TMP/kg.out" 2>&1; then
    fail "group-writable parent: creation succeeded"
else
    expect_grep "group-writable parent: CKR_TOKEN_WRITE_PROTECTED" 'rv = CKR_TOKEN_WRITE_PROTECTED' "$T_TMP/kg.out"
fi
expect_grep "group-writable parent: the line names the parent" \
    "folder $T_TMP/gwp: mode 0775 lets group/other replace what it holds; fix: chmod go-w $T_TMP/gwp" "$STORE_LOG"

# Fixed: everything is back, nothing was lost.
rm -f "$STORE_LOG"
expect_ok "fixed store: the stored object decrypts" p11c "$T_TMP/store.json" --decrypt -m AES-CBC-PAD --iv "$IV" --id 0d -i "$T_TMP/ct" -o "$T_TMP/back"
expect_ok "fixed store: nothing lost" cmp "$T_TMP/plain" "$T_TMP/back"
expect_ok "fixed store: creation works again" p11c "$T_TMP/store.json" --keygen --key-type AES:32 --label new --id 0e
if [ -s "$STORE_LOG" ]; then fail "fixed store: log not empty"; cat "$STORE_LOG"; else pass "fixed store: nothing logged at the default level"; fi
t_finish
