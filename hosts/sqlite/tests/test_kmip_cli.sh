#!/usr/bin/env bash
# cellar-sqlite with its tenant key on a real KMIP server (PyKMIP, started by `make test-kmip`):
# keyring-new creates the key on the server, every command reconnects it, keyring-rotate makes
# the next version there, in fetch and delegated mode; without the server settings, or against a
# server the key is not on, the database does not open.
# Usage: test_kmip_cli.sh BUILD_DIR (holding cellar-sqlite); KMIP_DIR and KMIP_PORT set.
set -u
BUILD=$(cd "${1:?build dir}" && pwd)
CLI="$BUILD/cellar-sqlite"
: "${KMIP_DIR:?set by make test-kmip}" "${KMIP_PORT:?set by make test-kmip}"
tmp=$(mktemp -d)
passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@" >"$tmp/last" 2>&1; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $what" >&2; cat "$tmp/last" >&2; fi
}
check_not() {
    local what=$1
    shift
    if "$@" >"$tmp/refused" 2>&1; then failed=$((failed + 1)); echo "FAILED (succeeded): $what" >&2; else passed=$((passed + 1)); fi
}
out_has() { # out_has PATTERN command...: the command succeeds and prints PATTERN
    local pat=$1
    shift
    "$@" >"$tmp/out" 2>&1 && grep -q -- "$pat" "$tmp/out"
}

cd "$tmp" || exit 1
export CELLAR_PASSWORD="correct horse battery staple" CELLAR_KDF_ITERATIONS=100000
export CELLAR_KMIP_HOST=127.0.0.1 CELLAR_KMIP_PORT=$KMIP_PORT CELLAR_KMIP_CA=$KMIP_DIR/ca.pem \
    CELLAR_KMIP_CERT=$KMIP_DIR/client.pem CELLAR_KMIP_KEY=$KMIP_DIR/client.key CELLAR_KMIP_TIMEOUT_MS=10000
run=$$-$RANDOM

for mode in fetch delegated; do
    export CELLAR_KMIP_MODE=$mode CELLAR_KEYRING="$tmp/$mode.keyring" CELLAR_KMIP_KEY_NAME="cellar-sqlite-$run-$mode"
    check "$mode: keyring-new on the KMIP server" "$CLI" keyring-new
    check "$mode: create" "$CLI" create "$mode.db" gcm
    check "$mode: insert" "$CLI" sql "$mode.db" "CREATE TABLE t(v TEXT)" "INSERT INTO t VALUES('KMIPMARK-1')"
    check "$mode: query" out_has "^KMIPMARK-1$" "$CLI" sql "$mode.db" "SELECT v FROM t"
    check "$mode: verify" out_has "mode gcm" "$CLI" verify "$mode.db"
    check "$mode: no plaintext on disk" bash -c "! grep -q -a KMIPMARK $mode.db"
    check "$mode: the keyring file names the server key, holds no material" bash -c \
        "! grep -q -a KMIPMARK '$CELLAR_KEYRING'"
    check "$mode: keyring-rotate makes version 2 on the server" "$CLI" keyring-rotate "$mode.db"
    check "$mode: query after rotate" out_has "^KMIPMARK-1$" "$CLI" sql "$mode.db" "SELECT v FROM t"
    # Without the server the tenant key is not there: the database does not open.
    check_not "$mode: no KMIP settings, no database" env -u CELLAR_KMIP_HOST "$CLI" sql "$mode.db" "SELECT v FROM t"
    # A server certificate from another CA is refused (the tool exits with the provider error).
    check_not "$mode: server from another CA refused" env CELLAR_KMIP_CA="$KMIP_DIR/other-ca.pem" \
        "$CLI" sql "$mode.db" "SELECT v FROM t"
    check "$mode: a clear error" grep -q "CELLAR_ERR_PROVIDER_FAILED.*not trusted" "$tmp/refused"
done
check_not "bad mode refused" env CELLAR_KMIP_MODE=sideways "$CLI" sql fetch.db "SELECT 1"
check_not "bad port refused" env CELLAR_KMIP_PORT=70000 "$CLI" sql fetch.db "SELECT 1"

cd / && rm -rf "$tmp"
echo "hosts/sqlite/tests/test_kmip_cli.sh"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
