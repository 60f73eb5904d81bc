#!/usr/bin/env bash
# make demo-postgres: a walk-through of the cellar extension on a private PostgreSQL cluster
# (temp dir, Unix socket only, stopped at the end). The extension must be installed
# (`make postgres-install`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tests/cluster.sh"
trap pg_cluster_stop EXIT
pg_cluster_start
pg_keyfiles
echo "== PostgreSQL $($PGBIN/postgres --version | awk '{print $3}') on $PGHOST (pid $PG_PID)"
echo "== postgresql.conf: cellar.keyring_file = '../keys/tenant.keyring', cellar.password_file = '../keys/tenant.pw'"
echo "   (the password file is owned by the server user, mode $(stat -c %a "$PGTMP/keys/tenant.pw"); no key is ever in SQL)"
psql -X -q -v ON_ERROR_STOP=0 -e -c "CREATE DATABASE shop" >/dev/null
psql -X -q -d shop -v ON_ERROR_STOP=0 -e <<'SQL'
\set VERBOSITY default
\pset footer off
CREATE EXTENSION cellar;
-- The tenant keyring: generated in the FIPS module, sealed into the keyring file.
SELECT cellar.create_keyring();
SELECT module, fips_mode, self_test_passed, keyring_state, tenant_active_version FROM cellar.status();
-- Column keys: data keys generated in the module, stored wrapped under the tenant key.
SELECT cellar.create_column_key('customers_email');                        -- randomized (AES-256-GCM)
SELECT cellar.create_column_key('customers_email_bidx', 'blind_index');    -- HMAC-SHA-256 blind index
SELECT cellar.create_column_key('customers_natid', 'deterministic');       -- equality + unique index
SELECT name, version, mode, tenant_version, approved_scheme FROM cellar.keys;

CREATE TABLE customers (
  id          bigint PRIMARY KEY,
  name        text NOT NULL,
  email       bytea NOT NULL,          -- bound to (table, column, id): cannot be moved to another row
  email_bidx  bytea NOT NULL,          -- for lookups by e-mail
  national_id bytea NOT NULL UNIQUE,   -- deterministic: the unique index works on ciphertext
  birthday    bytea                    -- a date, encrypted
);
CREATE INDEX ON customers (email_bidx);
INSERT INTO customers
SELECT i, 'Customer ' || i,
       cellar.encrypt('customers_email', 'c' || i || '@example.com', cellar.ctx('customers', 'email', i::text)),
       cellar.blind_index('customers_email_bidx', 'c' || i || '@example.com', cellar.ctx('customers', 'email')),
       cellar.encrypt_deterministic('customers_natid', 'NI-' || (500000 + i), cellar.ctx('customers', 'national_id')),
       cellar.encrypt('customers_email', date '1980-01-01' + i, cellar.ctx('customers', 'birthday', i::text))
  FROM generate_series(1, 10000) i;
ANALYZE customers;

-- What the disk, a backup or a DBA without the keyring sees:
SELECT id, name, left(encode(email, 'hex'), 40) || '...' AS email, length(email) AS bytes FROM customers LIMIT 3;
-- What the application sees:
SELECT id, cellar.decrypt_text('customers_email', email, cellar.ctx('customers', 'email', id::text)) AS email,
       cellar.decrypt_date('customers_email', birthday, cellar.ctx('customers', 'birthday', id::text)) AS birthday
  FROM customers WHERE id <= 3 ORDER BY id;
-- Lookup by e-mail through the blind index (an index scan; the function runs once):
EXPLAIN (COSTS OFF) SELECT id FROM customers
 WHERE email_bidx = cellar.blind_index('customers_email_bidx', 'c4242@example.com', cellar.ctx('customers', 'email'));
SELECT id, name FROM customers
 WHERE email_bidx = cellar.blind_index('customers_email_bidx', 'c4242@example.com', cellar.ctx('customers', 'email'));
-- Lookup by national id through the unique index, and a duplicate refused:
SELECT id, name FROM customers
 WHERE national_id = cellar.encrypt_deterministic('customers_natid', 'NI-504242', cellar.ctx('customers', 'national_id'));
INSERT INTO customers VALUES (10001, 'Duplicate', '\x00', '\x00',
  cellar.encrypt_deterministic('customers_natid', 'NI-504242', cellar.ctx('customers', 'national_id')));

-- Tampering: flip one byte of a stored e-mail, or move one to another row: a clear error.
UPDATE customers SET email = set_byte(email, 30, get_byte(email, 30) # 1) WHERE id = 7;
SELECT cellar.decrypt_text('customers_email', email, cellar.ctx('customers', 'email', id::text)) FROM customers WHERE id = 7;
UPDATE customers SET email = (SELECT email FROM customers WHERE id = 1) WHERE id = 8;
SELECT cellar.decrypt_text('customers_email', email, cellar.ctx('customers', 'email', id::text)) FROM customers WHERE id = 8;

-- Tenant key rotation rewraps the column keys; no customer row is touched.
SELECT cellar.rotate_tenant_key();
SELECT name, version, tenant_version FROM cellar.keys;
SELECT count(*) AS still_readable FROM customers WHERE id > 8
   AND cellar.decrypt_text('customers_email', email, cellar.ctx('customers', 'email', id::text)) LIKE 'c%@example.com';

-- Locking the tenant: every session refuses until a superuser unlocks it.
SELECT cellar.lock_tenant();
SELECT cellar.decrypt_text('customers_email', email, cellar.ctx('customers', 'email', id::text)) FROM customers WHERE id = 1;
SELECT cellar.unlock_tenant();
SELECT cellar.decrypt_text('customers_email', email, cellar.ctx('customers', 'email', id::text)) FROM customers WHERE id = 1;

-- Strict FIPS mode refuses schemes the module does not approve, naming the alternative.
SET cellar.fips_strict = on;
SELECT cellar.encrypt_deterministic('customers_natid', 'NI-1', cellar.ctx('customers', 'national_id'));
RESET cellar.fips_strict;
SELECT keyring_state, tenant_versions, approved_operations, unapproved_operations FROM cellar.status();
SQL
echo "== the server log ($(wc -l <"$PGTMP/server.log") lines at log_statement = all) names keys, never holds them:"
grep -c "cellar\." "$PGTMP/server.log" | sed 's/^/   statements mentioning cellar.: /'
if grep -qF "$(cat "$PGTMP/keys/tenant.pw")" "$PGTMP/server.log"; then echo "   password found in the log!"; exit 1; fi
echo "   the keyring password does not appear in it"

echo
echo "== The tenant key in an HSM: a PKCS#11 token (SoftHSM2) generates and keeps it; the keyring file"
echo "   holds a reference, and every backend attaches the key with a PIN file (owner-only, like the password file)"
if [ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null; then
  pg_as_server softhsm2-util --init-token --free --label shop-hsm --so-pin so-pin-0815 --pin 4711-demo-pin >/dev/null
  pg_secret_file "$PGTMP/keys/hsm.pin" 0600 echo 4711-demo-pin
  pg_secret_file "$PGTMP/keys/hsm_wrong.pin" 0600 echo 0000-wrong-pin
  pg_secret_file "$PGTMP/keys/vault.pw" 0600 sh -c 'head -c 24 /dev/urandom | base64'
  psql -X -q -c "CREATE DATABASE vault" >/dev/null
  psql -X -q -d vault -v ON_ERROR_STOP=0 -e <<'SQL'
\set VERBOSITY default
\pset footer off
ALTER DATABASE vault SET cellar.keyring_file = '../keys/vault.keyring';
ALTER DATABASE vault SET cellar.password_file = '../keys/vault.pw';
ALTER DATABASE vault SET cellar.pkcs11_module = '/usr/lib/softhsm/libsofthsm2.so';
ALTER DATABASE vault SET cellar.pkcs11_token = 'shop-hsm';
ALTER DATABASE vault SET cellar.pkcs11_pin_file = '../keys/hsm.pin';
ALTER DATABASE vault SET cellar.pkcs11_allow_zero_padded_kwp = on;   -- SoftHSM 2.6's RFC 5649
\c vault
CREATE EXTENSION cellar;
SELECT cellar.create_keyring();                 -- the tenant key is generated inside the token
SELECT cellar.create_column_key('secret');      -- wrapped by the token
SELECT keyring_state, tenant_active_version, tenant_key_in_token FROM cellar.status();
CREATE TABLE notes (id int PRIMARY KEY, body bytea);
INSERT INTO notes VALUES (1, cellar.encrypt('secret', 'wrapped inside the HSM'::text, cellar.ctx('notes', 'body', '1')));
\c vault
-- A new session: the keyring file is imported with the password, the token key attached with the PIN.
SELECT cellar.decrypt_text('secret', body, cellar.ctx('notes', 'body', id::text)) FROM notes;
-- A wrong PIN: refused, with the token's answer in the DETAIL.
SET cellar.pkcs11_pin_file = '../keys/hsm_wrong.pin';
SELECT cellar.decrypt_text('secret', body, cellar.ctx('notes', 'body', id::text)) FROM notes;
SQL
else
  echo "   (SoftHSM2 is not installed: make setup installs it)"
fi
