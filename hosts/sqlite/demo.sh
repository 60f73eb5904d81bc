#!/usr/bin/env bash
# A walk through transparent SQLite encryption with Cellar: make demo-sqlite
# Usage: demo.sh BUILD_DIR (holding cellar-sqlite and cellarvfs.so)
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
cli() { echo "\$ cellar-sqlite $*" | cut -c1-150; "$BUILD/cellar-sqlite" "$@"; }
step() { printf '\n== %s\n' "$*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export CELLAR_KEYRING="$work/tenant.keyring" CELLAR_PASSWORD="demo password, 14+ bytes"

step "1. A tenant keyring (tenant key generated in the FIPS module), sealed under a password"
cli keyring-new

step "2. An encrypted database: AES-256-GCM pages, page key wrapped under the tenant key"
cli create shop.db gcm
cli sql shop.db "CREATE TABLE customers(id INTEGER PRIMARY KEY, email TEXT, card TEXT)" \
    "CREATE INDEX customers_email ON customers(email)" \
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
     INSERT INTO customers(email, card) SELECT printf('customer%d@example.com', i), printf('4111-0000-0000-%04d', i) FROM c"
cli sql shop.db "SELECT id, email, card FROM customers WHERE email = 'customer4242@example.com'"

step "3. SQL sees plaintext; the disk does not"
plain=$(sqlite3 plain.db "CREATE TABLE customers(email TEXT); INSERT INTO customers VALUES('customer4242@example.com');" && grep -c -a 'example.com' plain.db || true)
echo "plain SQLite file, lines with 'example.com': $plain"
echo "Cellar file,       lines with 'example.com': $(grep -c -a 'example.com' shop.db || true)"
echo "first bytes of plain.db: $(head -c 16 plain.db | od -An -c | tr -s ' ')"
echo "first bytes of shop.db:  $(head -c 16 shop.db | od -An -tx1 | tr -s ' ')"
echo "key file shop.db-cellarkey ($(stat -c %s shop.db-cellarkey) bytes): magic, mode, versions, wrapped page keys"

step "4. Any SQLite program: SQLite's own shell with the cellarvfs extension"
echo "\$ sqlite3 :memory: '.load cellarvfs' '.open file:shop.db?vfs=cellar' 'SELECT count(*) ...'"
sqlite3 :memory: ".load $BUILD/cellarvfs" ".open file:$work/shop.db?vfs=cellar" \
    "SELECT count(*), count(DISTINCT email) FROM customers;"
echo "\$ sqlite3 shop.db 'SELECT count(*) FROM customers'     # without the VFS"
sqlite3 shop.db "SELECT count(*) FROM customers" 2>&1 || true

step "5. WAL mode: frames in the write-ahead log are encrypted pages too (the tests search the -wal file)"
cli sql shop.db "PRAGMA journal_mode=WAL" "UPDATE customers SET card = '4111-1111-1111-1111' WHERE id % 100 = 0"
cli verify shop.db

step "6. Re-key: a new page key version; every page re-encrypted online; the old key retired"
cli rekey shop.db
cli verify shop.db

step "7. Rotate the tenant key: page keys rewrapped, pages untouched"
cli keyring-rotate shop.db
cli sql shop.db "SELECT count(*) FROM customers"

step "8. A flipped byte in a page is an error, never data"
cp shop.db bad.db && cp shop.db-cellarkey bad.db-cellarkey
printf '\x01' | dd of=bad.db bs=1 seek=$((4096 * 7 + 333)) conv=notrunc 2>/dev/null
cli sql bad.db "SELECT sum(length(card)) FROM customers" || echo "(exit status $?)"

step "9. Another tenant's keyring cannot open it"
CELLAR_KEYRING="$work/other.keyring" "$BUILD/cellar-sqlite" keyring-new >/dev/null
echo "\$ CELLAR_KEYRING=other.keyring cellar-sqlite sql shop.db 'SELECT 1'"
CELLAR_KEYRING="$work/other.keyring" "$BUILD/cellar-sqlite" sql shop.db "SELECT 1" || echo "(exit status $?)"

step "10. The tenant key in an HSM (SoftHSM2 through PKCS#11): it never enters this process"
if [ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null; then
    mkdir -p "$work/hsm/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/hsm/tokens" > "$work/hsm/softhsm2.conf"
    export SOFTHSM2_CONF="$work/hsm/softhsm2.conf"
    echo "4711-demo-pin" > "$work/hsm/pin"; chmod 600 "$work/hsm/pin"
    softhsm2-util --init-token --free --label tenant-hsm --so-pin so-pin-0815 --pin 4711-demo-pin >/dev/null
    export CELLAR_KEYRING="$work/hsm.keyring" CELLAR_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so \
        CELLAR_PKCS11_TOKEN=tenant-hsm CELLAR_PKCS11_PIN_FILE="$work/hsm/pin" CELLAR_PKCS11_KEY=tenant-key \
        CELLAR_PKCS11_ALLOW_ZERO_PADDED=1
    echo "token 'tenant-hsm' in $work/hsm; PIN read from a file; AES-256 key created sensitive, non-extractable"
    cli keyring-new
    cli create vault.db gcm
    cli sql vault.db "CREATE TABLE secrets(id INTEGER PRIMARY KEY, v TEXT)" "INSERT INTO secrets(v) VALUES ('wrapped inside the HSM')"
    cli sql vault.db "SELECT v FROM secrets"
    echo "rotation makes the next tenant key in the token too (tenant-key-v2) and rewraps the page keys:"
    cli keyring-rotate vault.db
    cli sql vault.db "SELECT v FROM secrets"
    echo "the keyring file holds a reference to the token key (module, token, key id), never its material;"
    echo "a wrong PIN cannot open the database:"
    echo "wrong-pin-000" > "$work/hsm/badpin"
    CELLAR_PKCS11_PIN_FILE="$work/hsm/badpin" "$BUILD/cellar-sqlite" sql vault.db "SELECT v FROM secrets" || echo "(exit status $?)"
    unset CELLAR_PKCS11_MODULE
else
    echo "(SoftHSM2 is not installed: make setup installs it)"
fi

printf '\nThe SQLite demo ran to the end.\n'
