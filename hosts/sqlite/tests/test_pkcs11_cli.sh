#!/usr/bin/env bash
# cellar-sqlite with its tenant key in a real SoftHSM2 token (PKCS#11; run by `make test-pkcs11`):
# keyring-new generates the key in the token, create / write / reopen / read work in new processes
# that each log in and reconnect, keyring-rotate makes the next key in the token and rewraps; a
# wrong PIN file, no PKCS#11 settings, or another token with the same label and PIN do not open
# the database; no marker plaintext and no PIN is in any file, and the keyring file with its
# password alone cannot open the database (the key is not in the files).
# Usage: test_pkcs11_cli.sh BUILD_DIR (holding cellar-sqlite). Makes its own token in a temp dir.
set -u
BUILD=$(cd "${1:?build dir}" && pwd)
CLI="$BUILD/cellar-sqlite"
MODULE=/usr/lib/softhsm/libsofthsm2.so
PIN=4711-sqlite-pin
tmp=$(mktemp -d)
trap 'cd / && rm -rf "$tmp"' EXIT
passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@" >"$tmp/last" 2>&1; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $what" >&2; cat "$tmp/last" >&2; fi
}
check_not() { # the command must fail; its output is kept in $tmp/refused
    local what=$1
    shift
    if "$@" >"$tmp/refused" 2>&1; then failed=$((failed + 1)); echo "FAILED (succeeded): $what" >&2; else passed=$((passed + 1)); fi
}
out_has() { # out_has PATTERN command...: the command succeeds and prints PATTERN
    local pat=$1
    shift
    "$@" >"$tmp/out" 2>&1 && grep -q -- "$pat" "$tmp/out"
}
new_token() { # new_token DIR: a SoftHSM2 token directory and conf with one token "sq-hsm"
    mkdir -p "$1/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$1/tokens" >"$1/softhsm2.conf"
    SOFTHSM2_CONF="$1/softhsm2.conf" softhsm2-util --init-token --free --label sq-hsm --so-pin so-pin-0815 \
        --pin "$PIN" >/dev/null
}

if [ ! -e "$MODULE" ] || ! command -v softhsm2-util >/dev/null; then
    echo "SoftHSM2 is required ($MODULE, softhsm2-util): make setup installs it" >&2
    exit 1
fi
cd "$tmp" || exit 1
new_token "$tmp/hsm"
new_token "$tmp/other-hsm" # same label and PIN, another token (another serial, no such key)
mkdir -p "$tmp/secret" "$tmp/data"
printf '%s\n' "$PIN" >"$tmp/secret/pin"
printf 'wrong-pin-000\n' >"$tmp/secret/badpin"
chmod 600 "$tmp/secret/pin" "$tmp/secret/badpin"
export SOFTHSM2_CONF="$tmp/hsm/softhsm2.conf"
export CELLAR_PASSWORD="correct horse battery staple" CELLAR_KDF_ITERATIONS=100000
export CELLAR_KEYRING="$tmp/data/hsm.keyring" CELLAR_PKCS11_MODULE=$MODULE CELLAR_PKCS11_TOKEN=sq-hsm \
    CELLAR_PKCS11_PIN_FILE="$tmp/secret/pin" CELLAR_PKCS11_KEY=tenant-key CELLAR_PKCS11_ALLOW_ZERO_PADDED=1
cd "$tmp/data" || exit 1

check "keyring-new generates the tenant key in the token" out_has "tenant key version 1" "$CLI" keyring-new
for mode in gcm xts; do
    check "$mode: create" "$CLI" create "$mode.db" "$mode"
    check "$mode: write" "$CLI" sql "$mode.db" "CREATE TABLE t(v TEXT)" \
        "INSERT INTO t VALUES('HSMMARK-$mode-1')" "INSERT INTO t VALUES('HSMMARK-$mode-2')"
    # Each command is a new process: it loads the keyring file, logs in and reconnects.
    check "$mode: reopen and read" out_has "^HSMMARK-$mode-2$" "$CLI" sql "$mode.db" "SELECT v FROM t ORDER BY v"
    check "$mode: reopen and write" "$CLI" sql "$mode.db" "INSERT INTO t VALUES('HSMMARK-$mode-3')"
    check "$mode: verify" out_has "mode $mode" "$CLI" verify "$mode.db"
done

# A wrong PIN file: the token refuses the login; the database does not open.
check_not "wrong PIN file refused" env CELLAR_PKCS11_PIN_FILE="$tmp/secret/badpin" "$CLI" sql gcm.db "SELECT v FROM t"
check "wrong PIN: a clear error naming the PKCS#11 value" grep -q "CELLAR_ERR_AUTHENTICATION_FAILED.*CKR_PIN_INCORRECT" "$tmp/refused"
check_not "missing PIN file refused" env CELLAR_PKCS11_PIN_FILE="$tmp/secret/none" "$CLI" sql gcm.db "SELECT 1"
# The keyring file and its password alone: the tenant version is only a reference to the token
# key, so without the token nothing opens (the key is not in the files).
check_not "no PKCS#11 settings: the files and password alone do not open it" \
    env -u CELLAR_PKCS11_MODULE "$CLI" sql gcm.db "SELECT v FROM t"
check_not "another token with the same label and PIN does not open it" \
    env SOFTHSM2_CONF="$tmp/other-hsm/softhsm2.conf" "$CLI" sql gcm.db "SELECT v FROM t"
check "another token: a clear error" grep -q "cannot reconnect the HSM-held tenant key" "$tmp/refused"

# Rotation makes the next tenant key in the token (tenant-key-v2) and rewraps the page keys.
check "keyring-rotate in the token" "$CLI" keyring-rotate gcm.db xts.db
check "gcm: read after rotate" out_has "^HSMMARK-gcm-3$" "$CLI" sql gcm.db "SELECT v FROM t ORDER BY v"
check "xts: read after rotate" out_has "^HSMMARK-xts-3$" "$CLI" sql xts.db "SELECT v FROM t ORDER BY v"
check_not "after rotate, still nothing without the token" env -u CELLAR_PKCS11_MODULE "$CLI" sql xts.db "SELECT 1"
check_not "a second keyring-new on the same keyring file is refused" "$CLI" keyring-new

# No marker plaintext and no PIN in any file the tool wrote (databases, key files, journals,
# the keyring file); the PIN is only in its own file.
check "files were written" bash -c "ls '$tmp/data' | grep -q gcm.db"
check "no plaintext marker in any file" bash -c "! grep -r -q -a HSMMARK '$tmp/data'"
check "no PIN in any file" bash -c "! grep -r -q -a -F '$PIN' '$tmp/data' '$tmp/hsm' '$tmp/other-hsm'"

echo "hosts/sqlite/tests/test_pkcs11_cli.sh"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
