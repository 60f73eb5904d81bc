-- strict: cellar.fips_strict refuses what the module's indicator does not approve.
\set VERBOSITY terse
-- By default a non-approved operation succeeds and is counted in cellar.status(). The keys are
-- used once first, so that their unwrapping (approved) is not in the counts below.
SELECT length(cellar.encrypt_deterministic('natid', 'x'::text, '\x'::bytea)) AS det_len,
       length(cellar.encrypt('email', 'x'::text)) AS rnd_len,
       length(cellar.blind_index('email_bidx', 'x'::text, '\x'::bytea)) AS bidx_len;
CREATE TEMP TABLE before_ops AS SELECT approved_operations AS a, unapproved_operations AS u FROM cellar.status();
SELECT length(cellar.encrypt_deterministic('natid', 'y'::text, '\x'::bytea)) AS det_len;
SELECT s.unapproved_operations - b.u AS unapproved_delta, s.approved_operations - b.a AS approved_delta
  FROM cellar.status() s, before_ops b;
SELECT length(cellar.encrypt('email', 'y'::text)) AS rnd_len,
       length(cellar.blind_index('email_bidx', 'y'::text, '\x'::bytea)) AS bidx_len;
SELECT s.unapproved_operations - b.u AS unapproved_delta, s.approved_operations - b.a AS approved_delta
  FROM cellar.status() s, before_ops b;
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
-- Under strict mode nothing unapproved ran: 1 before it, 1 (the natid decrypt) after RESET.
SELECT s.unapproved_operations - b.u AS unapproved_delta FROM cellar.status() s, before_ops b;
