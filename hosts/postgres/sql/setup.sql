-- setup: the extension, the tenant keyring file, one column key of every mode.
-- The server runs with cellar.keyring_file = '../keys/tenant.keyring' and
-- cellar.password_file = '../keys/tenant.pw' (relative to the data directory; tests/run.sh).
\set VERBOSITY terse
CREATE EXTENSION cellar;
SELECT extname, nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'cellar';

-- err(sql): runs a statement and returns 'SQLSTATE: message [HINT: hint]' (or 'ok'), so the
-- expected output shows all three.
CREATE FUNCTION err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
  RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' HINT: ' || nullif(h, ''), '');
END $$;

-- Before the keyring file exists, every key function refuses with a clear message.
SELECT err($$SELECT cellar.encrypt('email', 'x'::text)$$);
SELECT keyring_state, keyring_error FROM cellar.status();

SELECT cellar.create_keyring();
SELECT err($$SELECT cellar.create_keyring()$$);
SELECT module <> '' AS has_module, fips_mode, self_test_passed, fips_strict, keyring_file,
       keyring_state, tenant_active_version, tenant_versions, keyring_error
  FROM cellar.status();

SELECT cellar.create_column_key('email');
SELECT cellar.create_column_key('email_bidx', 'blind_index');
SELECT cellar.create_column_key('natid', 'deterministic');
SELECT cellar.create_column_key('notes', 'randomized');
SELECT cellar.create_column_key('legacy_ae', 'mssql_randomized');
SELECT err($$SELECT cellar.create_column_key('email')$$);
SELECT err($$SELECT cellar.create_column_key('x', 'ecb')$$);
SELECT err($$SELECT cellar.create_column_key('', 'randomized')$$);
SELECT err($$SELECT cellar.create_column_key(repeat('k', 64), 'randomized')$$);
SELECT name, version, mode, tenant_version, retired IS NULL AS retained, active, approved_scheme,
       blind_index_version >= 1 AS bidx_versioned
  FROM cellar.keys ORDER BY name, version;
-- The wrapped blobs are Cellar key-wrap blobs (0x57 'W').
SELECT name, length(wrapped) > 32 AS wrapped, get_byte(wrapped, 0) AS w
  FROM cellar.column_keys ORDER BY name;
