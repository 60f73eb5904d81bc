-- cells: bytea and text, NULLs, empty values, context binding, tampering, modes, blind index.
\set VERBOSITY terse

-- Round trips; NULL stays NULL.
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'alice@example.com'::text, cellar.ctx('t', 'c', '1')),
                           cellar.ctx('t', 'c', '1'));
SELECT cellar.decrypt('email', cellar.encrypt('email', '\x00ff10'::bytea, '\x01'::bytea), '\x01'::bytea);
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'no context'::text));
SELECT cellar.encrypt('email', NULL::text, '\x'::bytea) IS NULL AS enc_null,
       cellar.decrypt_text('email', NULL, '\x'::bytea) IS NULL AS dec_null,
       cellar.blind_index('email_bidx', NULL::text, '\x'::bytea) IS NULL AS bidx_null,
       cellar.encrypt('email', NULL::text) IS NULL AS enc2_null,
       cellar.reencrypt('email', NULL, '\x'::bytea) IS NULL AS reenc_null;
-- A NULL value with a NULL context (a NULL row key) is still NULL ...
SELECT cellar.encrypt('email', NULL::text, cellar.ctx('t', 'c', NULL)) IS NULL AS enc_null_ctx_null,
       cellar.decrypt_int8('email', NULL, NULL) IS NULL AS dec_null_ctx_null,
       cellar.blind_index('email_bidx', NULL::int8, NULL, NULL) IS NULL AS bidx_all_null;
-- ... but a non-NULL value with a NULL context is an error, never a silently stored NULL (22004).
SELECT cellar.ctx('t', 'c', NULL) IS NULL AS ctx_of_null_is_null;
SELECT err($$SELECT cellar.encrypt('email', 'x'::text, cellar.ctx('t', 'c', NULL))$$);
SELECT err($$SELECT cellar.encrypt('email', 42::int8, NULL)$$);
SELECT err($$SELECT cellar.encrypt_deterministic('natid', 'x'::text, NULL)$$);
SELECT err($$SELECT cellar.decrypt_text('email', '\x01'::bytea, NULL)$$);
SELECT err($$SELECT cellar.reencrypt('email', '\x01'::bytea, NULL)$$);
SELECT err($$SELECT cellar.blind_index('email_bidx', 'x'::text, NULL)$$);
-- A NULL key name or index length with a value: an error too.
SELECT err($$SELECT cellar.encrypt(NULL, 'x'::text, '\x'::bytea)$$);
SELECT err($$SELECT cellar.blind_index('email_bidx', 'x'::text, '\x'::bytea, NULL)$$);
-- Empty values: an empty string and an empty bytea survive (they are not NULL).
SELECT cellar.decrypt_text('email', cellar.encrypt('email', ''::text, '\x'::bytea), '\x'::bytea) = '' AS empty_text,
       length(cellar.decrypt('email', cellar.encrypt('email', ''::bytea, '\x'::bytea), '\x'::bytea)) AS empty_bytea_len,
       length(cellar.encrypt('email', ''::text, '\x'::bytea)) AS ct_len_empty;
-- Unicode text.
SELECT cellar.decrypt_text('email', cellar.encrypt('email', 'Zoë 東京 🍷'::text, '\x'::bytea), '\x'::bytea);
-- Randomized: equal plaintexts give different ciphertexts; format byte 1, key version 1.
SELECT cellar.encrypt('email', 'a'::text) <> cellar.encrypt('email', 'a'::text) AS randomized,
       get_byte(cellar.encrypt('email', 'a'::text), 0) AS fmt,
       cellar.key_version(cellar.encrypt('email', 'a'::text)) AS key_version,
       cellar.key_version('\x0102'::bytea) AS not_a_cell;
-- Deterministic: equal under the same context, different under another context.
SELECT cellar.encrypt('natid', '123-45-6789'::text, cellar.ctx('customers', 'national_id'))
     = cellar.encrypt('natid', '123-45-6789'::text, cellar.ctx('customers', 'national_id')) AS det_equal,
       cellar.encrypt('natid', '123-45-6789'::text, cellar.ctx('customers', 'national_id'))
    <> cellar.encrypt('natid', '123-45-6789'::text, cellar.ctx('staff', 'national_id')) AS ctx_differs,
       cellar.encrypt_deterministic('natid', '123-45-6789'::text, cellar.ctx('customers', 'national_id'))
     = cellar.encrypt('natid', '123-45-6789'::text, cellar.ctx('customers', 'national_id')) AS det_fn_same;
SELECT err($$SELECT cellar.encrypt_deterministic('email', 'x'::text, '\x'::bytea)$$);
-- The context must match: ctx() fields are length-prefixed, so ('ab','c') <> ('a','bc').
SELECT cellar.ctx('ab', 'c', '') <> cellar.ctx('a', 'bc', '') AS unambiguous, cellar.ctx('t', 'c', 'r');

-- Wrong key names.
SELECT err($$SELECT cellar.encrypt('no_such_key', 'x'::text)$$);
SELECT err($$SELECT cellar.decrypt_text('no_such_key', '\x01'::bytea)$$);
SELECT err($$SELECT cellar.blind_index('email', 'x'::text, '\x'::bytea)$$);
SELECT err($$SELECT cellar.encrypt('email_bidx', 'x'::text)$$);
-- A value sealed under one column key does not open under another.
SELECT err($$SELECT cellar.decrypt_text('notes', cellar.encrypt('email', 'x'::text))$$);
-- Not a Cellar value at all.
SELECT err($$SELECT cellar.decrypt_text('email', '\xdeadbeef'::bytea)$$);
SELECT err($$SELECT cellar.decrypt_text('email', ''::bytea)$$);

-- A table: values bound to (table, column, primary key).
CREATE TABLE people (id int PRIMARY KEY, email bytea, phone bytea);
INSERT INTO people
SELECT i, cellar.encrypt('email', 'user' || i || '@example.com', cellar.ctx('people', 'email', i::text)),
          cellar.encrypt('email', '+1-555-' || i, cellar.ctx('people', 'phone', i::text))
  FROM generate_series(1, 5) i;
SELECT id, cellar.decrypt_text('email', email, cellar.ctx('people', 'email', id::text)) FROM people ORDER BY id;
-- Tampering: flip one byte of a stored ciphertext, then SELECT: a clear data exception.
UPDATE people SET email = set_byte(email, 20, get_byte(email, 20) # 1) WHERE id = 3;
SELECT err($$SELECT cellar.decrypt_text('email', email, cellar.ctx('people', 'email', id::text)) FROM people WHERE id = 3$$);
-- With the default verbosity the DETAIL line carries Cellar's own last-error text.
\set VERBOSITY default
SELECT cellar.decrypt_text('email', email, cellar.ctx('people', 'email', id::text)) FROM people WHERE id = 3;
-- A value sealed under another column key: the same failure, Cellar's text in the DETAIL.
SELECT cellar.decrypt_text('notes', cellar.encrypt('email', 'x'::text));
-- A key name that does not exist is the extension's own error (no Cellar call was made).
SELECT cellar.decrypt_text('no_such_key', email) FROM people WHERE id = 3;
\set VERBOSITY terse
-- The other rows still decrypt.
SELECT count(*) FROM people WHERE id <> 3 AND cellar.decrypt_text('email', email, cellar.ctx('people', 'email', id::text)) LIKE 'user%';
-- Truncated and extended values fail the same way.
SELECT err($$SELECT cellar.decrypt_text('email', substr(email, 1, length(email) - 1), cellar.ctx('people', 'email', id::text)) FROM people WHERE id = 1$$);
SELECT err($$SELECT cellar.decrypt_text('email', email || '\x00'::bytea, cellar.ctx('people', 'email', id::text)) FROM people WHERE id = 1$$);
-- Moving a value to another row: copy row 1's email into row 2, then read row 2.
UPDATE people SET email = (SELECT email FROM people WHERE id = 1) WHERE id = 2;
SELECT err($$SELECT cellar.decrypt_text('email', email, cellar.ctx('people', 'email', id::text)) FROM people WHERE id = 2$$);
-- Moving a value to another column of the same row (same key): refused too.
UPDATE people SET email = phone WHERE id = 4;
SELECT err($$SELECT cellar.decrypt_text('email', email, cellar.ctx('people', 'email', id::text)) FROM people WHERE id = 4$$);

-- Blind index: deterministic per (key, context, value), 4..32 bytes, STABLE.
SELECT cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea) = cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea) AS stable,
       cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea) <> cellar.blind_index('email_bidx', 'a@b.d', '\x'::bytea) AS differs,
       cellar.blind_index('email_bidx', 'a@b.c', '\x01'::bytea) <> cellar.blind_index('email_bidx', 'a@b.c', '\x02'::bytea) AS ctx_bound,
       length(cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea)) AS default_len,
       length(cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea, 4)) AS len4,
       length(cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea, 32)) AS len32,
       cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea, 32)::text LIKE '\\x' || encode(cellar.blind_index('email_bidx', 'a@b.c', '\x'::bytea, 16), 'hex') || '%' AS prefix;
SELECT err($$SELECT cellar.blind_index('email_bidx', 'x'::text, '\x'::bytea, 3)$$);
SELECT err($$SELECT cellar.blind_index('email_bidx', 'x'::text, '\x'::bytea, 33)$$);

-- The worked example of the README: customers with an e-mail found by blind index and a
-- national id, deterministic, under a unique index.
CREATE TABLE customers (
  id          bigint PRIMARY KEY,
  email       bytea NOT NULL,           -- randomized, bound to the row
  email_bidx  bytea NOT NULL,           -- blind index, bound to the column
  national_id bytea NOT NULL UNIQUE     -- deterministic, bound to the column
);
CREATE INDEX customers_email_bidx ON customers (email_bidx);
INSERT INTO customers
SELECT i,
       cellar.encrypt('email', 'customer' || i || '@example.com', cellar.ctx('customers', 'email', i::text)),
       cellar.blind_index('email_bidx', 'customer' || i || '@example.com', cellar.ctx('customers', 'email')),
       cellar.encrypt_deterministic('natid', 'NI-' || (100000 + i), cellar.ctx('customers', 'national_id'))
  FROM generate_series(1, 2000) i;
ANALYZE customers;
-- Look-up by e-mail through the blind index: an index scan, the function evaluated once.
EXPLAIN (COSTS OFF)
SELECT id FROM customers
 WHERE email_bidx = cellar.blind_index('email_bidx', 'customer42@example.com', cellar.ctx('customers', 'email'));
SELECT id, cellar.decrypt_text('email', email, cellar.ctx('customers', 'email', id::text)) AS email
  FROM customers
 WHERE email_bidx = cellar.blind_index('email_bidx', 'customer42@example.com', cellar.ctx('customers', 'email'));
-- Look-up by national id through the unique index.
EXPLAIN (COSTS OFF)
SELECT id FROM customers
 WHERE national_id = cellar.encrypt_deterministic('natid', 'NI-100777', cellar.ctx('customers', 'national_id'));
SELECT id FROM customers
 WHERE national_id = cellar.encrypt_deterministic('natid', 'NI-100777', cellar.ctx('customers', 'national_id'));
-- The unique index refuses a second customer with the same national id.
SELECT err($$INSERT INTO customers VALUES (9999, '\x00', '\x00',
   cellar.encrypt_deterministic('natid', 'NI-100777', cellar.ctx('customers', 'national_id')))$$);
SELECT cellar.decrypt_text('natid', national_id, cellar.ctx('customers', 'national_id')) FROM customers WHERE id = 777;
-- EXPLAIN VERBOSE shows key names and values, never key material.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT cellar.decrypt_text('email', email, cellar.ctx('customers', 'email', id::text)) FROM customers WHERE id = 1;

-- SQL Server Always Encrypted: a column encryption key from a key file (tedious driver test
-- vectors), ciphertexts written by SQL Server's drivers, UTF-16LE nvarchar text.
SELECT cellar.import_column_key('ae_cek', 'mssql_deterministic', '../keys/ae.key');
SELECT cellar.decrypt_text('ae_cek', '\x01FF7225AFAD66E77407B12830D160B8BBFC7E5D3DE93B76EB3F3DEC8A8939474D1671AD4BC7581B57BB02B8E2ED33ECA604F1C513C98FE09F2C6FB1517B9F32BCF743FEF572EBF06AD0CE603B8D67D17A'::bytea);
SELECT cellar.decrypt_text('ae_cek', '\x01800066F289EF215A964C9D9B8E76E9D9189CC7B2DADEF261AE83C3AB62EC4160EA7774AA98A2057C89941A7DD60E5272C191A85FE166937F7F94449F52D7640560C68E0FBD00E9084C0B54206C2190EC'::bytea);
SELECT cellar.encrypt_deterministic('ae_cek', 'val_determ_1'::text)
     = '\x01FF7225AFAD66E77407B12830D160B8BBFC7E5D3DE93B76EB3F3DEC8A8939474D1671AD4BC7581B57BB02B8E2ED33ECA604F1C513C98FE09F2C6FB1517B9F32BCF743FEF572EBF06AD0CE603B8D67D17A'::bytea AS matches_sql_server;
SELECT encode(cellar.decrypt('ae_cek', cellar.encrypt('ae_cek', 'ab'::text)), 'hex') AS utf16le;
SELECT cellar.decrypt_text('legacy_ae', cellar.encrypt('legacy_ae', 'Zoë'::text));
SELECT err($$SELECT cellar.encrypt('legacy_ae', 'x'::text, '\x01'::bytea)$$);
SELECT err($$SELECT cellar.encrypt('legacy_ae', 5::int8, '\x'::bytea)$$);
SELECT err($$SELECT cellar.decrypt_text('ae_cek', set_byte('\x01FF7225AFAD66E77407B12830D160B8BBFC7E5D3DE93B76EB3F3DEC8A8939474D1671AD4BC7581B57BB02B8E2ED33ECA604F1C513C98FE09F2C6FB1517B9F32BCF743FEF572EBF06AD0CE603B8D67D17A'::bytea, 40, 0))$$);
SELECT err($$SELECT cellar.import_column_key('ae2', 'mssql_deterministic', '../keys/ae_open.key')$$);
-- The two-argument forms (empty context) of every function that has one.
SELECT cellar.decrypt('email', cellar.encrypt('email', '\x0001'::bytea)) AS enc2_bytea,
       cellar.decrypt_text('ae_cek', cellar.encrypt_deterministic('ae_cek', 'det2'::text)) AS det2_text,
       cellar.decrypt('ae_cek', cellar.encrypt_deterministic('ae_cek', '\x6100'::bytea)) AS det2_bytea,
       cellar.decrypt_text('ae_cek', cellar.reencrypt('ae_cek', cellar.encrypt('ae_cek', 'reenc'::text))) AS reenc2_ae,
       cellar.decrypt_text('email', cellar.reencrypt('email', cellar.encrypt('email', 'reenc'::text))) AS reenc2_native,
       cellar.encrypt_deterministic('natid', '\x01'::bytea) = cellar.encrypt_deterministic('natid', '\x01'::bytea, '\x'::bytea) AS empty_ctx_same;

-- PARALLEL SAFE for real: parallel workers load the keyring themselves and decrypt their share.
CREATE FUNCTION workers_launched(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
  RETURN (j->0->'Plan'->'Plans'->0->>'Workers Launched')::int;
END $$;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM customers WHERE cellar.decrypt_text('email', email, cellar.ctx('customers', 'email', id::text)) LIKE 'customer%';
SELECT count(*) FROM customers WHERE cellar.decrypt_text('email', email, cellar.ctx('customers', 'email', id::text)) LIKE 'customer%';
SELECT workers_launched($$SELECT count(*) FROM customers
  WHERE cellar.decrypt_text('email', email, cellar.ctx('customers', 'email', id::text)) LIKE 'customer%'$$) > 0 AS workers_ran;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
