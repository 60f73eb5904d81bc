-- types: int8, numeric, date, timestamptz, jsonb (typed decrypt), NULLs, type confusion.
\set VERBOSITY terse
SET timezone = 'UTC';
CREATE TABLE typed (id int PRIMARY KEY, n bytea, amount bytea, born bytea, seen bytea, doc bytea);
INSERT INTO typed VALUES
 (1, cellar.encrypt('notes', 9223372036854775807::int8, cellar.ctx('typed', 'n', '1')),
     cellar.encrypt('notes', 12345.6789::numeric, cellar.ctx('typed', 'amount', '1')),
     cellar.encrypt('notes', '1990-02-28'::date, cellar.ctx('typed', 'born', '1')),
     cellar.encrypt('notes', '2024-05-06 07:08:09.123456+00'::timestamptz, cellar.ctx('typed', 'seen', '1')),
     cellar.encrypt('notes', '{"b": [1, 2, {"c": null}], "a": "é"}'::jsonb, cellar.ctx('typed', 'doc', '1'))),
 (2, cellar.encrypt('notes', (-1)::int8, cellar.ctx('typed', 'n', '2')),
     cellar.encrypt('notes', 'NaN'::numeric, cellar.ctx('typed', 'amount', '2')),
     cellar.encrypt('notes', 'infinity'::date, cellar.ctx('typed', 'born', '2')),
     cellar.encrypt('notes', '-infinity'::timestamptz, cellar.ctx('typed', 'seen', '2')),
     cellar.encrypt('notes', '[]'::jsonb, cellar.ctx('typed', 'doc', '2'))),
 (3, cellar.encrypt('notes', NULL::int8, cellar.ctx('typed', 'n', '3')),
     cellar.encrypt('notes', NULL::numeric, cellar.ctx('typed', 'amount', '3')),
     cellar.encrypt('notes', NULL::date, cellar.ctx('typed', 'born', '3')),
     cellar.encrypt('notes', NULL::timestamptz, cellar.ctx('typed', 'seen', '3')),
     cellar.encrypt('notes', NULL::jsonb, cellar.ctx('typed', 'doc', '3'))),
 (4, cellar.encrypt('notes', 0::int8, cellar.ctx('typed', 'n', '4')),
     cellar.encrypt('notes', -0.000000000000000000001::numeric, cellar.ctx('typed', 'amount', '4')),
     cellar.encrypt('notes', '4713-01-01 BC'::date, cellar.ctx('typed', 'born', '4')),
     cellar.encrypt('notes', '1970-01-01 00:00:00+00'::timestamptz, cellar.ctx('typed', 'seen', '4')),
     cellar.encrypt('notes', '"just a string"'::jsonb, cellar.ctx('typed', 'doc', '4')));
SELECT id,
       cellar.decrypt_int8('notes', n, cellar.ctx('typed', 'n', id::text)) AS n,
       cellar.decrypt_numeric('notes', amount, cellar.ctx('typed', 'amount', id::text)) AS amount,
       cellar.decrypt_date('notes', born, cellar.ctx('typed', 'born', id::text)) AS born,
       cellar.decrypt_timestamptz('notes', seen, cellar.ctx('typed', 'seen', id::text)) AS seen,
       cellar.decrypt_jsonb('notes', doc, cellar.ctx('typed', 'doc', id::text)) AS doc
  FROM typed ORDER BY id;
SELECT pg_typeof(cellar.decrypt_int8('notes', n, cellar.ctx('typed', 'n', id::text))),
       pg_typeof(cellar.decrypt_numeric('notes', amount, cellar.ctx('typed', 'amount', id::text))),
       pg_typeof(cellar.decrypt_date('notes', born, cellar.ctx('typed', 'born', id::text))),
       pg_typeof(cellar.decrypt_timestamptz('notes', seen, cellar.ctx('typed', 'seen', id::text))),
       pg_typeof(cellar.decrypt_jsonb('notes', doc, cellar.ctx('typed', 'doc', id::text)))
  FROM typed WHERE id = 1;
-- Arithmetic on decrypted values.
SELECT sum(cellar.decrypt_int8('notes', n, cellar.ctx('typed', 'n', id::text))) FROM typed WHERE id IN (2, 4);
-- Type confusion is refused: an int8 value is not read as text or date, a text value not as int8.
SELECT err($$SELECT cellar.decrypt_text('notes', n, cellar.ctx('typed', 'n', '1')) FROM typed WHERE id = 1$$);
SELECT err($$SELECT cellar.decrypt_date('notes', n, cellar.ctx('typed', 'n', '1')) FROM typed WHERE id = 1$$);
SELECT err($$SELECT cellar.decrypt_int8('notes', cellar.encrypt('notes', '12345678'::text, '\x'::bytea), '\x'::bytea)$$);
SELECT err($$SELECT cellar.decrypt_jsonb('notes', cellar.encrypt('notes', '{}'::text, '\x'::bytea), '\x'::bytea)$$);
-- bytea reads a text value's bytes (the raw view).
SELECT cellar.decrypt('notes', cellar.encrypt('notes', 'abc'::text, '\x'::bytea), '\x'::bytea);
-- Values moved between columns of one row are refused through the context.
SELECT err($$SELECT cellar.decrypt_int8('notes', n, cellar.ctx('typed', 'amount', '1')) FROM typed WHERE id = 1$$);
-- Deterministic and blind index over each type.
SELECT cellar.encrypt_deterministic('natid', 42::int8, '\x'::bytea) = cellar.encrypt_deterministic('natid', 42::int8, '\x'::bytea) AS int8_det,
       cellar.encrypt_deterministic('natid', 1.50::numeric, '\x'::bytea) = cellar.encrypt_deterministic('natid', 1.50::numeric, '\x'::bytea) AS numeric_det,
       cellar.encrypt_deterministic('natid', 1.5::numeric, '\x'::bytea) <> cellar.encrypt_deterministic('natid', 1.50::numeric, '\x'::bytea) AS numeric_scale_matters,
       cellar.encrypt_deterministic('natid', '2020-01-01'::date, '\x'::bytea) = cellar.encrypt_deterministic('natid', '2020-01-01'::date, '\x'::bytea) AS date_det,
       cellar.encrypt_deterministic('natid', '2020-01-01 00:00+00'::timestamptz, '\x'::bytea) = cellar.encrypt_deterministic('natid', '2020-01-01 01:00+01'::timestamptz, '\x'::bytea) AS tstz_det,
       cellar.encrypt_deterministic('natid', '{"a":1,"b":2}'::jsonb, '\x'::bytea) = cellar.encrypt_deterministic('natid', '{"b":2, "a":1}'::jsonb, '\x'::bytea) AS jsonb_det,
       cellar.encrypt_deterministic('natid', 42::int8, '\x'::bytea) <> cellar.encrypt_deterministic('natid', '42'::text, '\x'::bytea) AS types_differ;
SELECT cellar.decrypt_int8('natid', cellar.encrypt_deterministic('natid', 42::int8, '\x'::bytea), '\x'::bytea),
       cellar.decrypt_numeric('natid', cellar.encrypt_deterministic('natid', 1.50::numeric, '\x'::bytea), '\x'::bytea),
       cellar.decrypt_date('natid', cellar.encrypt_deterministic('natid', '2020-01-01'::date, '\x'::bytea), '\x'::bytea),
       cellar.decrypt_timestamptz('natid', cellar.encrypt_deterministic('natid', '2020-01-01 00:00+00'::timestamptz, '\x'::bytea), '\x'::bytea),
       cellar.decrypt_jsonb('natid', cellar.encrypt_deterministic('natid', '{"a":1}'::jsonb, '\x'::bytea), '\x'::bytea),
       cellar.decrypt('natid', cellar.encrypt_deterministic('natid', '\xcafe'::bytea, '\x'::bytea), '\x'::bytea);
SELECT length(cellar.blind_index('email_bidx', 42::int8, '\x'::bytea)) AS i,
       length(cellar.blind_index('email_bidx', 4.2::numeric, '\x'::bytea)) AS n,
       length(cellar.blind_index('email_bidx', '2020-01-01'::date, '\x'::bytea)) AS d,
       length(cellar.blind_index('email_bidx', now(), '\x'::bytea)) AS z,
       length(cellar.blind_index('email_bidx', '{}'::jsonb, '\x'::bytea)) AS j,
       length(cellar.blind_index('email_bidx', '\x00'::bytea, '\x'::bytea)) AS b,
       cellar.blind_index('email_bidx', 42::int8, '\x'::bytea) <> cellar.blind_index('email_bidx', '42'::text, '\x'::bytea) AS types_differ;
-- Function properties: STRICT, PARALLEL SAFE, honest volatility.
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, count(*)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'cellar'
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
