#!/usr/bin/env bash
# The cellar-sqlite tool and the loadable extension, end to end, on files in a temporary folder.
# Usage: test_cli.sh BUILD_DIR (holding cellar-sqlite and cellarvfs.so)
set -u
BUILD=$(cd "${1:?build dir}" && pwd)
CLI="$BUILD/cellar-sqlite"
tmp=$(mktemp -d)
passed=0
failed=0
check() { # check "description" command...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $what" >&2; fi
}
check_not() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then failed=$((failed + 1)); echo "FAILED (succeeded): $what" >&2; else passed=$((passed + 1)); fi
}
out_has() { # out_has PATTERN command...: the command succeeds and prints PATTERN
    local pat=$1
    shift
    "$@" 2>&1 | tee "$tmp/out" >/dev/null
    [ "${PIPESTATUS[0]}" = 0 ] && grep -q -- "$pat" "$tmp/out"
}
no_marker() { ! grep -q -a "CLIMARK" "$@"; }

cd "$tmp" || exit 1
export CELLAR_KEYRING="$tmp/tenant.keyring" CELLAR_PASSWORD="correct horse battery staple" CELLAR_KDF_ITERATIONS=100000

check "keyring-new" "$CLI" keyring-new
check_not "keyring-new refuses to overwrite" "$CLI" keyring-new
check "create gcm" "$CLI" create app.db gcm
check_not "create refuses an existing file" "$CLI" create app.db gcm
rows="WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
      INSERT INTO users(email, note) SELECT printf('user%d@example.com', i), printf('CLIMARK-%d', i) FROM c"
check "insert rows" "$CLI" sql app.db "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, note TEXT)" \
    "CREATE INDEX users_email ON users(email)" "$rows"
check "query" out_has "^2000$" "$CLI" sql app.db "SELECT count(*) FROM users"
check "indexed lookup" out_has "CLIMARK-77$" "$CLI" sql app.db "SELECT note FROM users WHERE email = 'user77@example.com'"
check "no plaintext in the database" no_marker app.db
check "key file beside it" test -s app.db-cellarkey
check "verify" out_has "app.db: verified" "$CLI" verify app.db
check "wal mode" out_has "^wal$" "$CLI" sql app.db "PRAGMA journal_mode=WAL"
check "write in wal mode" "$CLI" sql app.db "UPDATE users SET note = note || '-w' WHERE id % 2 = 0"
check "rekey" out_has "page key version 2" "$CLI" rekey app.db
check "verify after rekey: one version" out_has "page key version 2: " "$CLI" verify app.db
check "version 1 retired" bash -c "! '$CLI' verify app.db | grep -q 'page key version 1:'"
check "data after rekey" out_has "^1000$" "$CLI" sql app.db "SELECT count(*) FROM users WHERE note LIKE '%-w'"
check "tenant key rotation rewraps" out_has "rewrapped under tenant key version 2" "$CLI" keyring-rotate app.db
check "data after rotation" out_has "^2000$" "$CLI" sql app.db "SELECT count(*) FROM users"

# Wrong password, another tenant's keyring, a tampered page.
check_not "wrong password" env CELLAR_PASSWORD="not the right password" "$CLI" sql app.db "SELECT 1"
check "second keyring" env CELLAR_KEYRING="$tmp/other.keyring" "$CLI" keyring-new
check_not "other tenant cannot open" env CELLAR_KEYRING="$tmp/other.keyring" "$CLI" sql app.db "SELECT count(*) FROM users"
cp app.db bad.db && cp app.db-cellarkey bad.db-cellarkey
printf '\x55' | dd of=bad.db bs=1 seek=$((4096 * 4 + 100)) conv=notrunc 2>/dev/null
check_not "tampered page fails verify" "$CLI" verify bad.db
check_not "tampered page fails a full read" "$CLI" sql bad.db "SELECT sum(length(note)) FROM users"
# A page of zeros (never authenticated) and a file cut inside a page: not verified, not read.
cp app.db zero.db && cp app.db-cellarkey zero.db-cellarkey
dd if=/dev/zero of=zero.db bs=4096 seek=4 count=1 conv=notrunc 2>/dev/null
check_not "all-zero page fails verify" "$CLI" verify zero.db
check_not "all-zero page fails a full read" "$CLI" sql zero.db "SELECT sum(length(note)) FROM users"
cp app.db cut.db && cp app.db-cellarkey cut.db-cellarkey
truncate -s $(( $(stat -c %s app.db) - 1000 )) cut.db
check_not "file cut inside a page fails verify" "$CLI" verify cut.db
check_not "file cut inside a page fails a full read" "$CLI" sql cut.db "SELECT sum(length(note)) FROM users" "SELECT count(*) FROM users WHERE email > ''"
# The key file is authenticated and carries a generation the host can pin.
check "verify reports the key file generation" out_has "key file generation " "$CLI" verify app.db
gen=$("$CLI" verify app.db | sed -n 's/^key file generation \([0-9]*\).*/\1/p')
check "the generation is pinned: accepted" "$CLI" sql "file:app.db?cellar_min_generation=$gen" "SELECT 1"
check_not "the generation is pinned: a higher one refused" "$CLI" sql "file:app.db?cellar_min_generation=$((gen + 1))" "SELECT 1"
cp app.db kf.db && cp app.db-cellarkey kf.db-cellarkey
printf '\x01' | dd of=kf.db-cellarkey bs=1 seek=44 conv=notrunc 2>/dev/null
check_not "changed key file refused" "$CLI" sql kf.db "SELECT 1"
check "changed key file: clear error" bash -c "'$CLI' sql kf.db 'SELECT 1' 2>&1 | grep -q 'does not authenticate'"
# A format-1 key file (the same entries, no generation or MAC): refused, then migrated on request.
cp app.db mig.db
python3 - app.db-cellarkey mig.db-cellarkey <<'PY'
import sys
k = open(sys.argv[1], 'rb').read()
n, off = int.from_bytes(k[16:20], 'big'), 28
for _ in range(n):
    off += 6 + int.from_bytes(k[off + 4:off + 6], 'big')
open(sys.argv[2], 'wb').write(k[:8] + b'\x01' + k[9:20] + k[28:off])
PY
check "format-1 key file refused" bash -c "'$CLI' sql mig.db 'SELECT 1' 2>&1 | grep -q 'not authenticated'"
check "migrate" out_has "key file authenticated (format 2, generation 1)" "$CLI" migrate mig.db
check "migrated database reads" out_has "^2000$" "$CLI" sql mig.db "SELECT count(*) FROM users"

# A plaintext database imported into an encrypted one (both modes).
sqlite3 plain.db "CREATE TABLE p(id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT UNIQUE); CREATE VIEW pv AS SELECT s FROM p;
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500) INSERT INTO p(s) SELECT 'CLIMARK-p' || i FROM c;"
check "plaintext source has the markers" grep -q -a CLIMARK plain.db
for m in gcm xts; do
    check "import ($m)" "$CLI" import plain.db "imp-$m.db" $m
    check "import ($m): rows, view, sequence" out_has "^500|500|p|500$" "$CLI" sql "imp-$m.db" \
        "SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM pv), name, seq FROM sqlite_sequence"
    check "import ($m): no plaintext" no_marker "imp-$m.db"
    check "import ($m): verify" out_has "mode $m" "$CLI" verify "imp-$m.db"
done

# XTS: created, used, re-keyed by copy.
check "create xts" "$CLI" create x.db xts 8192
check "xts rows" "$CLI" sql x.db "CREATE TABLE t(a)" "INSERT INTO t VALUES('CLIMARK-xts')"
check "xts no plaintext" no_marker x.db
cp x.db-cellarkey x.key.before
check "xts rekey" out_has "re-keyed" "$CLI" rekey x.db
check "xts key changed" bash -c "! cmp -s x.key.before x.db-cellarkey"
check "xts data after rekey" out_has "^CLIMARK-xts$" "$CLI" sql x.db "SELECT a FROM t"
check "xts verify" out_has "x.db: verified" "$CLI" verify x.db

# The loadable extension in SQLite's own shell, on the same database and keyring.
if command -v sqlite3 >/dev/null; then
    ext="$BUILD/cellarvfs"
    check "extension in sqlite3" out_has "^2000$" sqlite3 :memory: ".load $ext" ".open file:$tmp/app.db?vfs=cellar" "SELECT count(*) FROM users;"
    check "extension creates a gcm database" sqlite3 :memory: ".load $ext" ".open file:$tmp/shell.db?vfs=cellar" \
        "CREATE TABLE s(a); INSERT INTO s VALUES('CLIMARK-shell');"
    check "extension database verifies in the tool" out_has "mode gcm" "$CLI" verify shell.db
    check "extension database: no plaintext" no_marker shell.db
    check_not "plain sqlite3 cannot read it" sqlite3 shell.db "SELECT * FROM s"
else
    echo "sqlite3 shell not installed: extension checks skipped" >&2
    failed=$((failed + 1))
fi

cd / && rm -rf "$tmp"
echo "hosts/sqlite/tests/test_cli.sh"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
