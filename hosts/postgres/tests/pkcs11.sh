#!/usr/bin/env bash
# The tenant key in a PKCS#11 token (SoftHSM2), against the cluster run.sh started (sourced
# environment: PGHOST, PGTMP, RUNAS, SOFTHSM2_CONF from cluster.sh). A fresh token is made in
# $PGTMP/hsm, owned by the server's OS user. SoftHSM2 missing is a failure, not a skip (as in
# `make test-pkcs11`; `make setup` installs it). Each check prints "ok - ..." or fails the run.
#   1. create_keyring() generates the tenant key in the token; the keyring file holds a reference
#   2. a new session imports the file and attaches the token key with the PIN file; values decrypt
#   3. wrong PIN, a PIN file others can read, no PIN file, no module: clear errors, server runs on
#   4. rotate_tenant_key() makes a second token key; old and new values decrypt in a new session
#   5. cellar.fips_strict refuses the token's unwrap, which the module's indicator does not approve
#   6. the PINs are absent from the server log
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/tests/cluster.sh" 2>/dev/null || true
: "${PGTMP:?run through tests/run.sh}" "${SOFTHSM2_CONF:?run through tests/run.sh}"
[ "$(id -u)" = 0 ] && RUNAS=postgres || RUNAS=""
fail() { echo "not ok - $*"; exit 1; }
q() { psql -X -v ON_ERROR_STOP=1 -qAt "$@"; }
module=/usr/lib/softhsm/libsofthsm2.so
[ -e "$module" ] && command -v softhsm2-util >/dev/null ||
  fail "SoftHSM2 is not installed ($module, softhsm2-util): run make setup"
k=$PGTMP/keys
pin=4711-pg-cellar

pg_as_server softhsm2-util --init-token --free --label pg-tenant --so-pin so-pin-0815 --pin "$pin" >/dev/null
pg_secret_file "$k/hsm.pin" 0600 echo "$pin"
pg_secret_file "$k/hsm_wrong.pin" 0600 echo "0000-wrong-pin"
pg_secret_file "$k/hsm_open.pin" 0644 echo "$pin"
pg_secret_file "$k/hsm.pw" 0600 sh -c 'head -c 24 /dev/urandom | base64'

db=tenant_hsm
q -c "CREATE DATABASE $db"
for s in "keyring_file = '../keys/hsm.keyring'" "password_file = '../keys/hsm.pw'" \
         "pkcs11_module = '$module'" "pkcs11_token = 'pg-tenant'" "pkcs11_pin_file = '../keys/hsm.pin'" \
         "pkcs11_key_label = 'tenant-hsm'" "pkcs11_allow_zero_padded_kwp = on"; do
  q -c "ALTER DATABASE $db SET cellar.$s"
done

# 1. The tenant key is generated in the token.
q -d $db -c "CREATE EXTENSION cellar" -c "SELECT cellar.create_keyring()" -c "SELECT cellar.create_column_key('k')" \
  -c "SELECT cellar.create_column_key('k_bidx', 'blind_index')" >/dev/null
[ "$(q -d $db -c "SELECT keyring_state, tenant_active_version, tenant_key_in_token FROM cellar.status()")" = "unlocked|1|t" ] ||
  fail "status after create_keyring: $(q -d $db -c "SELECT * FROM cellar.status()")"
objs=$(pg_as_server softhsm2-util --show-slots 2>/dev/null | grep -c 'Label:.*pg-tenant' || true)
[ "$objs" -ge 1 ] || fail "the token pg-tenant is not listed"
# The keyring file holds a reference to the token key: imported with the password alone (outside
# the server, by the Python package), its version 1 is a PKCS#11 version and stays locked.
(cd "$PGTMP" && PYTHONPATH="$root/python" CELLAR_LIBRARY="$root/target/release/libcellar.so" python3 - \
  "$k/hsm.keyring" "$k/hsm.pw" <<'PY'
import sys
from cellar import Keyring
pw = open(sys.argv[2], 'rb').read().rstrip(b'\r\n')
kr = Keyring.import_state(open(sys.argv[1], 'rb').read(), password=pw)
info = kr.version_info(1)
assert info.pkcs11, f"version 1 is not a PKCS#11 version: {info!r}"
assert info.locked, f"version 1 is usable without the token: {info!r}"
PY
) || fail "the keyring file is not a reference to a token key"
q -d $db -c "CREATE TABLE t (id int PRIMARY KEY, c bytea, b bytea)" \
  -c "INSERT INTO t SELECT i, cellar.encrypt('k', 'hsm ' || i, cellar.ctx('t', 'c', i::text)), cellar.blind_index('k_bidx', 'hsm ' || i, '\x'::bytea) FROM generate_series(1, 50) i"
echo "ok - create_keyring() generated the tenant key in the PKCS#11 token (the keyring file holds a reference, locked without the token)"

# 2. Every new session imports the keyring file and attaches the token key with the PIN.
[ "$(q -d $db -c "SELECT count(*) FROM t WHERE cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) = 'hsm ' || id")" = 50 ] ||
  fail "a new session does not decrypt under the token key"
[ "$(q -d $db -c "SELECT id FROM t WHERE b = cellar.blind_index('k_bidx', 'hsm 7'::text, '\x'::bytea)")" = 7 ] ||
  fail "blind index lookup under the token key"
echo "ok - a new session attaches the token key with the PIN file: 50 values decrypt, blind-index lookup finds row 7"

# 3. Refusals, each in a session of its own; the server keeps running.
try() { q -d $db -c "SET cellar.$1" -c "SELECT cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) FROM t WHERE id = 1" 2>&1 || true; }
out=$(psql -X -qAt -d $db -c "SET cellar.pkcs11_pin_file = '../keys/hsm_wrong.pin'" -c "\\set VERBOSITY default" \
  -c "SELECT cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) FROM t WHERE id = 1" 2>&1 || true)
echo "$out" | grep -q 'ERROR:  cellar: could not attach the PKCS#11 tenant keys of keyring file "../keys/hsm.keyring": the PKCS#11 token refused the PIN in "../keys/hsm_wrong.pin"' ||
  fail "wrong PIN: $out"
echo "$out" | grep -q '^DETAIL:  Cellar: .*CKR_PIN_INCORRECT' || fail "wrong PIN: Cellar's last error (CKR_PIN_INCORRECT) not in the DETAIL: $out"
echo "ok - a wrong PIN is refused (in a new session, and in a session that had attached the key) with Cellar's text in the DETAIL: $(echo "$out" | grep DETAIL | cut -c1-110)"
# Within one session: after the key was attached, another PIN file takes effect at the next statement.
out=$(q -d $db -c "SELECT cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) FROM t WHERE id = 2" \
  -c "SET cellar.pkcs11_pin_file = '../keys/hsm_wrong.pin'" \
  -c "SELECT cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) FROM t WHERE id = 2" 2>&1 || true)
echo "$out" | grep -q '^hsm 2$' && echo "$out" | grep -q 'the PKCS#11 token refused the PIN in "../keys/hsm_wrong.pin"' ||
  fail "changing the PIN file in a session that had attached the key: $out"
out=$(try "pkcs11_pin_file = '../keys/hsm_open.pin'")
echo "$out" | grep -q 'PIN file "../keys/hsm_open.pin" must be owned by the database server user and readable by it alone' ||
  fail "a PIN file others can read: $out"
out=$(try "pkcs11_pin_file = ''")
echo "$out" | grep -q 'cellar.pkcs11_module is set but cellar.pkcs11_pin_file is not' || fail "no PIN file: $out"
out=$(try "pkcs11_module = ''")
echo "$out" | grep -q 'holds tenant keys in a PKCS#11 token, and cellar.pkcs11_module is not set' || fail "no module: $out"
out=$(try "pkcs11_module = '/nonexistent/libpkcs11.so'")
echo "$out" | grep -q 'could not attach the PKCS#11 tenant keys' || fail "a missing module: $out"
[ "$(q -d $db -c "SELECT cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) FROM t WHERE id = 1")" = "hsm 1" ] ||
  fail "the server after the refusals"
echo "ok - a PIN file others can read, no PIN file, no module setting, a missing module: each refused clearly; the server runs on"

# 4. Tenant key rotation in the token: no row touched, old and new values decrypt in a new session.
[ "$(q -d $db -c "SELECT cellar.rotate_tenant_key()")" = 2 ] || fail "rotate_tenant_key"
q -d $db -c "INSERT INTO t VALUES (51, cellar.encrypt('k', 'hsm 51'::text, cellar.ctx('t', 'c', '51')), NULL)"
[ "$(q -d $db -c "SELECT tenant_active_version, tenant_versions, tenant_key_in_token FROM cellar.status()")" = "2|{1,2}|t" ] ||
  fail "status after rotation: $(q -d $db -c "SELECT * FROM cellar.status()")"
[ "$(q -d $db -c "SELECT count(*) FROM t WHERE cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) = 'hsm ' || id")" = 51 ] ||
  fail "values after the token rotation"
[ "$(q -d $db -c "SELECT count(DISTINCT tenant_version) FROM cellar.column_keys")" = 1 ] || fail "column keys not rewrapped"
echo "ok - rotate_tenant_key() made a second token key; column keys rewrapped; 51 values decrypt in a new session"

# 5. Strict mode: the token unwraps the column keys outside the module, so the indicator reports
#    0 and cellar.fips_strict refuses (the indicator branch, not the mode check: 'k' is randomized).
out=$(q -d $db -c "SET cellar.fips_strict = on" -c "SELECT cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) FROM t WHERE id = 1" 2>&1 || true)
echo "$out" | grep -q 'ERROR:  cellar.fips_strict: column key unwrap was not an approved operation' || fail "strict mode with a token key: $out"
u=$(q -d $db -c "SELECT cellar.decrypt_text('k', c, cellar.ctx('t', 'c', id::text)) FROM t WHERE id = 1" -c "SELECT unapproved_operations > 0 FROM cellar.status()" | tail -1)
[ "$u" = t ] || fail "unapproved token operations are not counted"
echo "ok - cellar.fips_strict refuses the token's (unapproved) unwrap: $(echo "$out" | grep ERROR | cut -c1-90); counted otherwise"

# 6. The PINs never reach the server log (log_statement = all).
grep -q "statement: SELECT cellar.rotate_tenant_key()" "$PGTMP/server.log" || fail "log_statement = all is not logging"
for needle in "$pin" 0000-wrong-pin; do
  grep -qF -- "$needle" "$PGTMP/server.log" && fail "a PIN is in the server log"
done
echo "ok - neither PIN is in the server log ($(wc -l <"$PGTMP/server.log") lines)"
