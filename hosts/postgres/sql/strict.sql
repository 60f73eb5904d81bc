-- strict: cellar.fips_strict refuses what the module's indicator does not approve.
\set VERBOSITY terse
SET cellar.fips_strict = on;
SELECT fips_strict FROM cellar.status();
-- Approved: randomized cells and blind indexes.
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'ok'::text, '\x01'::bytea), '\x01'::bytea);
SELECT length(cellar.blind_index('email_bidx', 'ok'::text, '\x'::bytea));
-- Refused, naming the approved alternative.
SELECT err($$SELECT cellar.encrypt('natid', 'x'::text, '\x'::bytea)$$);
SELECT err($$SELECT cellar.encrypt_deterministic('natid', 'x'::text, '\x'::bytea)$$);
SELECT err($$SELECT cellar.decrypt_text('natid', national_id, cellar.ctx('customers', 'national_id')) FROM customers WHERE id = 1$$);
SELECT err($$SELECT cellar.encrypt('legacy_ae', 'x'::text)$$);
SELECT err($$SELECT cellar.create_column_key('det2', 'deterministic')$$);
SELECT err($$SELECT cellar.import_column_key('ae3', 'mssql_deterministic', '../keys/ae.key')$$);
RESET cellar.fips_strict;
SELECT fips_strict FROM cellar.status();
SELECT cellar.decrypt_text('natid', national_id, cellar.ctx('customers', 'national_id')) FROM customers WHERE id = 1;
SELECT approved_operations > 0 AS counted FROM cellar.status();
