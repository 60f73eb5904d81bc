-- errors: locked keyring (session and tenant), password file problems, privileges.
\set VERBOSITY terse
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'before'::text));

-- Session lock: this backend's keys are wiped; every key function refuses until unlock().
SELECT cellar.lock();
SELECT keyring_state, tenant_active_version FROM cellar.status();
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
SELECT err($$SELECT cellar.blind_index('email_bidx', 'x'::text, '\x'::bytea)$$);
SELECT cellar.unlock();
SELECT keyring_state FROM cellar.status();
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'after unlock'::text));

-- Tenant lock: a marker file beside the keyring file; every backend refuses at its next statement.
SELECT cellar.lock_tenant();
SELECT keyring_state FROM cellar.status();
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
SELECT err($$SELECT cellar.create_column_key('during_lock')$$);
SELECT cellar.unlock_tenant();
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'after tenant unlock'::text));

-- Wrong password file: the backend refuses with a clear error, the server keeps running.
SET cellar.password_file = '../keys/wrong.pw';
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
SELECT keyring_state, keyring_error FROM cellar.status();
-- Cellar's last-error text is the DETAIL.
\set VERBOSITY default
SELECT cellar.encrypt('email', 'x'::text);
\set VERBOSITY terse
-- A password file others can read is refused before it is read.
SET cellar.password_file = '../keys/open.pw';
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
-- A missing one.
SET cellar.password_file = '../keys/missing.pw';
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
-- No password file configured at all.
SET cellar.password_file = '';
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
SELECT keyring_state FROM cellar.status();
RESET cellar.password_file;
-- A missing keyring file.
SET cellar.keyring_file = '../keys/missing.keyring';
SELECT err($$SELECT cellar.decrypt_text('email', '\x01'::bytea)$$);
RESET cellar.keyring_file;
-- A keyring file that is not a keyring: told apart from a wrong password.
SET cellar.keyring_file = '../keys/garbage.keyring';
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
SELECT keyring_state, keyring_error FROM cellar.status();
-- A key file (a raw key) in its place: the same.
SET cellar.keyring_file = '../keys/ae.key';
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
RESET cellar.keyring_file;
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'back to normal'::text));
SELECT 1 AS server_still_running;

-- Privileges: an application role encrypts and decrypts, but cannot manage keys or point the
-- server at other key files.
CREATE ROLE cellar_app;
GRANT USAGE ON SCHEMA public TO cellar_app;
SET ROLE cellar_app;
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'as app'::text));
SELECT err($$SELECT cellar.create_column_key('app_key')$$);
SELECT err($$SELECT cellar.rotate_tenant_key()$$);
SELECT err($$SELECT cellar.lock_tenant()$$);
SELECT err($$SET cellar.password_file = '/tmp/x'$$);
SELECT err($$SET cellar.keyring_file = '/tmp/x'$$);
SELECT err($$SET cellar.fips_strict = off$$);
SELECT err($$DELETE FROM cellar.column_keys$$);
SELECT count(*) > 0 AS can_read_wrapped FROM cellar.column_keys;
RESET ROLE;
REVOKE USAGE ON SCHEMA public FROM cellar_app;
DROP ROLE cellar_app;
