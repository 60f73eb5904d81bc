-- keys: tenant key rotation (no row touched), column key rotation, re-encryption,
-- retirement (crypto-shredding).
\set VERBOSITY terse
SELECT cellar.create_column_key('vault');
CREATE TABLE vault (id int PRIMARY KEY, secret bytea NOT NULL);
INSERT INTO vault SELECT i, cellar.encrypt('vault', 'secret ' || i, cellar.ctx('vault', 'secret', i::text))
  FROM generate_series(1, 10) i;
CREATE TEMP TABLE snap AS SELECT id, xmin::text AS x, ctid::text AS t, secret FROM vault;

-- Tenant key rotation: a new tenant version; every column key blob rewrapped; no data row touched.
SELECT tenant_active_version, tenant_versions FROM cellar.status();
CREATE TEMP TABLE blobs_before AS SELECT name, version, wrapped FROM cellar.column_keys;
SELECT cellar.rotate_tenant_key();
SELECT tenant_active_version, tenant_versions FROM cellar.status();
SELECT tenant_version, count(*) FROM cellar.column_keys WHERE retired IS NULL GROUP BY 1;
SELECT count(*) AS blobs_changed FROM cellar.column_keys k JOIN blobs_before b USING (name, version)
 WHERE k.wrapped <> b.wrapped;
SELECT count(*) AS rows_untouched FROM vault v JOIN snap s USING (id)
 WHERE v.xmin::text = s.x AND v.ctid::text = s.t AND v.secret = s.secret;
SELECT count(*) AS still_decrypt FROM vault
 WHERE cellar.decrypt_text('vault', secret, cellar.ctx('vault', 'secret', id::text)) = 'secret ' || id;
-- The old tenant version is now unused: retire it. The active one cannot be retired.
SELECT cellar.retire_tenant_key(1);
SELECT tenant_versions FROM cellar.status();
SELECT err($$SELECT cellar.retire_tenant_key(2)$$);
SELECT err($$SELECT cellar.retire_tenant_key(99)$$);
SELECT count(*) AS still_decrypt FROM vault
 WHERE cellar.decrypt_text('vault', secret, cellar.ctx('vault', 'secret', id::text)) = 'secret ' || id;
-- Column key rotation: new values use version 2, old values still read under version 1.
SELECT cellar.rotate_column_key('vault');
INSERT INTO vault SELECT i, cellar.encrypt('vault', 'secret ' || i, cellar.ctx('vault', 'secret', i::text))
  FROM generate_series(11, 12) i;
SELECT cellar.key_version(secret) AS v, count(*) FROM vault GROUP BY 1 ORDER BY 1;
SELECT name, version, mode, active FROM cellar.keys WHERE name = 'vault' ORDER BY version;
-- Re-encrypt rows 1..5 under the active version.
UPDATE vault SET secret = cellar.reencrypt('vault', secret, cellar.ctx('vault', 'secret', id::text))
 WHERE id <= 5 AND cellar.key_version(secret) < 2;
SELECT cellar.key_version(secret) AS v, count(*) FROM vault GROUP BY 1 ORDER BY 1;
SELECT count(*) AS all_decrypt FROM vault
 WHERE cellar.decrypt_text('vault', secret, cellar.ctx('vault', 'secret', id::text)) = 'secret ' || id;
-- reencrypt keeps the type: an int8 stays an int8.
SELECT cellar.decrypt_int8('vault', cellar.reencrypt('vault', cellar.encrypt('vault', 77::int8, '\x'::bytea), '\x'::bytea), '\x'::bytea);
-- Crypto-shredding: retiring version 1 makes rows 6..10 unreadable for good.
SELECT cellar.retire_column_key('vault', 1);
SELECT name, version, k.retired IS NOT NULL AS retired, c.wrapped IS NULL AS blob_destroyed, k.active
  FROM cellar.keys k JOIN cellar.column_keys c USING (name, version) WHERE name = 'vault' ORDER BY version;
SELECT err($$SELECT cellar.decrypt_text('vault', secret, cellar.ctx('vault', 'secret', id::text)) FROM vault WHERE id = 6$$);
SELECT count(*) AS readable FROM vault
 WHERE cellar.key_version(secret) = 2
   AND cellar.decrypt_text('vault', secret, cellar.ctx('vault', 'secret', id::text)) = 'secret ' || id;
SELECT err($$SELECT cellar.retire_column_key('vault', 1)$$);
SELECT err($$SELECT cellar.rotate_column_key('no_such_key')$$);
-- Retiring the only retained version leaves the key unusable until a new version exists.
SELECT cellar.create_column_key('shortlived');
SELECT cellar.retire_column_key('shortlived', 1);
SELECT err($$SELECT cellar.encrypt('shortlived', 'x'::text)$$);
SELECT cellar.rotate_column_key('shortlived');
SELECT cellar.decrypt_text('shortlived', cellar.encrypt('shortlived', 'x'::text));
