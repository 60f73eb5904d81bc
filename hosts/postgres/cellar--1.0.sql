-- cellar--1.0.sql: installed by CREATE EXTENSION cellar (into schema cellar)
\echo Use "CREATE EXTENSION cellar" to load this file. \quit

-- Column keys: data keys generated in the FIPS module, stored wrapped under the tenant key.
-- wrapped IS NULL means retired: the version's values are crypto-shredded.
CREATE TABLE cellar.column_keys (
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    version        int4        NOT NULL CHECK (version >= 1),
    mode           text        NOT NULL CHECK (mode IN ('randomized', 'deterministic', 'blind_index',
                                                        'mssql_randomized', 'mssql_deterministic')),
    tenant_version int4,
    wrapped        bytea,
    -- blind_index keys: the blind-index derivation version (a blind index carries none, so an
    -- index keeps the version it was built with; new keys get the newest)
    blind_index_version int4,
    created        timestamptz NOT NULL DEFAULT now(),
    retired        timestamptz,
    PRIMARY KEY (name, version),
    CHECK ((wrapped IS NULL) = (retired IS NOT NULL))
);
SELECT pg_catalog.pg_extension_config_dump('cellar.column_keys', '');
-- Tenant versions retired in this database: re-applied to every keyring a backend imports, so an
-- older copy of the keyring file cannot bring a crypto-shredded version back.
CREATE TABLE cellar.retired_tenant_versions (
    version int4 PRIMARY KEY,
    retired timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('cellar.retired_tenant_versions', '');
GRANT SELECT ON cellar.retired_tenant_versions TO PUBLIC;

-- The keyring generation this database wrote last (cellar_keyring_generation): a backend refuses
-- a keyring file with a lower one, i.e. an older copy restored over the current file.
CREATE TABLE cellar.keyring_state (
    id         bool PRIMARY KEY DEFAULT true CHECK (id),
    generation int8 NOT NULL,
    written    timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('cellar.keyring_state', '');
GRANT SELECT ON cellar.keyring_state TO PUBLIC;

-- Any change of a column key row (through the functions below or plain DML) invalidates every
-- backend's cached column keys at commit.
CREATE FUNCTION cellar.column_keys_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'cellar_column_keys_changed' LANGUAGE C;
CREATE TRIGGER column_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cellar.column_keys
    FOR EACH STATEMENT EXECUTE FUNCTION cellar.column_keys_changed();

-- Wrapped blobs are ciphertext under a key that only the server process holds.
GRANT SELECT ON cellar.column_keys TO PUBLIC;
GRANT USAGE ON SCHEMA cellar TO PUBLIC;

-- ---- context ---------------------------------------------------------------------------------
-- ctx(table, column, row key): the bytes a value is bound to (length-prefixed fields).
CREATE FUNCTION cellar.ctx(table_name text, column_name text, row_key text DEFAULT '')
RETURNS bytea AS 'MODULE_PATHNAME', 'cellar_ctx'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Key version of a native cell, read without any key (NULL for a non-Cellar value).
CREATE FUNCTION cellar.key_version(ciphertext bytea)
RETURNS int4 AS 'MODULE_PATHNAME', 'cellar_key_version'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- ---- encrypt / decrypt -----------------------------------------------------------------------
-- encrypt(): VOLATILE (randomized cells differ on every call).
-- encrypt_deterministic(): STABLE, not IMMUTABLE: the result depends on the column key's active
--   version, which rotation changes; use it for the stored column (with a plain UNIQUE or B-tree
--   index on that column) and in WHERE clauses, where it is evaluated once per statement.
-- decrypt_*(): STABLE (keys can be retired or locked between statements).
-- blind_index(): STABLE, same reasoning; store its result in its own indexed column.
-- NULLs: a NULL value gives NULL. The forms that take a context are CALLED ON NULL INPUT rather
--   than STRICT so that a NULL context (cellar.ctx() of a NULL row key) with a non-NULL value is an
--   error (22004), not a silently stored NULL; a NULL key name or index length is an error too.

CREATE FUNCTION cellar.encrypt(key_name text, value bytea, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_bytea' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_bytea' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value text, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_text' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value text) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_text' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value int8, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_int8' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value numeric, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_numeric' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value date, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_date' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value timestamptz, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_timestamptz' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt(key_name text, value jsonb, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_jsonb' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;

CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value bytea, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_bytea' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value text, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_text' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value text) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value int8, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_int8' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value numeric, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_numeric' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value date, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_date' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value timestamptz, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_timestamptz' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.encrypt_deterministic(key_name text, value jsonb, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_encrypt_det_jsonb' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;

CREATE FUNCTION cellar.decrypt(key_name text, ciphertext bytea, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_decrypt_bytea' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt(key_name text, ciphertext bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_decrypt_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt_text(key_name text, ciphertext bytea, context bytea) RETURNS text
AS 'MODULE_PATHNAME', 'cellar_decrypt_text' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt_text(key_name text, ciphertext bytea) RETURNS text
AS 'MODULE_PATHNAME', 'cellar_decrypt_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt_int8(key_name text, ciphertext bytea, context bytea) RETURNS int8
AS 'MODULE_PATHNAME', 'cellar_decrypt_int8' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt_numeric(key_name text, ciphertext bytea, context bytea) RETURNS numeric
AS 'MODULE_PATHNAME', 'cellar_decrypt_numeric' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt_date(key_name text, ciphertext bytea, context bytea) RETURNS date
AS 'MODULE_PATHNAME', 'cellar_decrypt_date' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt_timestamptz(key_name text, ciphertext bytea, context bytea) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'cellar_decrypt_timestamptz' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.decrypt_jsonb(key_name text, ciphertext bytea, context bytea) RETURNS jsonb
AS 'MODULE_PATHNAME', 'cellar_decrypt_jsonb' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;

-- Decrypts under whatever version sealed the value and seals it under the active version
-- (UPDATE t SET c = cellar.reencrypt(...) WHERE cellar.key_version(c) < N).
CREATE FUNCTION cellar.reencrypt(key_name text, ciphertext bytea, context bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_reencrypt' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.reencrypt(key_name text, ciphertext bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_reencrypt' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

-- ---- blind index ------------------------------------------------------------------------------
CREATE FUNCTION cellar.blind_index(key_name text, value text, context bytea, nbytes int4 DEFAULT 16) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_blind_index_text' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.blind_index(key_name text, value bytea, context bytea, nbytes int4 DEFAULT 16) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_blind_index_bytea' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.blind_index(key_name text, value int8, context bytea, nbytes int4 DEFAULT 16) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_blind_index_int8' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.blind_index(key_name text, value numeric, context bytea, nbytes int4 DEFAULT 16) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_blind_index_numeric' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.blind_index(key_name text, value date, context bytea, nbytes int4 DEFAULT 16) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_blind_index_date' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.blind_index(key_name text, value timestamptz, context bytea, nbytes int4 DEFAULT 16) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_blind_index_timestamptz' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION cellar.blind_index(key_name text, value jsonb, context bytea, nbytes int4 DEFAULT 16) RETURNS bytea
AS 'MODULE_PATHNAME', 'cellar_blind_index_jsonb' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;

-- ---- key administration (EXECUTE revoked from PUBLIC below) ---------------------------------
CREATE FUNCTION cellar.create_keyring() RETURNS int4
AS 'MODULE_PATHNAME', 'cellar_create_keyring' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION cellar.create_column_key(name text, mode text DEFAULT 'randomized') RETURNS int4
AS 'MODULE_PATHNAME', 'cellar_create_column_key' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION cellar.rotate_column_key(name text) RETURNS int4
AS 'MODULE_PATHNAME', 'cellar_rotate_column_key' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION cellar.retire_column_key(name text, version int4) RETURNS void
AS 'MODULE_PATHNAME', 'cellar_retire_column_key' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION cellar.import_column_key(name text, mode text, key_file text) RETURNS int4
AS 'MODULE_PATHNAME', 'cellar_import_column_key' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION cellar.rotate_tenant_key() RETURNS int4
AS 'MODULE_PATHNAME', 'cellar_rotate_tenant_key' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION cellar.retire_tenant_key(version int4) RETURNS void
AS 'MODULE_PATHNAME', 'cellar_retire_tenant_key' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION cellar.lock_tenant() RETURNS void
AS 'MODULE_PATHNAME', 'cellar_lock_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION cellar.unlock_tenant() RETURNS void
AS 'MODULE_PATHNAME', 'cellar_unlock_tenant' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- This session only: lock() wipes the backend's keys, unlock() loads them again from the files.
CREATE FUNCTION cellar.lock() RETURNS void
AS 'MODULE_PATHNAME', 'cellar_lock' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION cellar.unlock() RETURNS void
AS 'MODULE_PATHNAME', 'cellar_unlock' LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE EXECUTE ON FUNCTION cellar.create_keyring(), cellar.create_column_key(text, text),
    cellar.rotate_column_key(text), cellar.retire_column_key(text, int4),
    cellar.import_column_key(text, text, text), cellar.rotate_tenant_key(),
    cellar.retire_tenant_key(int4), cellar.lock_tenant(), cellar.unlock_tenant()
    FROM PUBLIC;

-- ---- status and audit -----------------------------------------------------------------------
CREATE FUNCTION cellar.status(
    OUT module text, OUT cellar_version text, OUT fips_mode bool, OUT self_test_passed bool,
    OUT fips_strict bool, OUT keyring_file text, OUT keyring_state text,
    OUT tenant_active_version int4, OUT tenant_versions int4[],
    OUT approved_operations int8, OUT unapproved_operations int8, OUT keyring_error text,
    OUT tenant_key_in_token bool)
AS 'MODULE_PATHNAME', 'cellar_status_fn' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW cellar.keys AS
SELECT k.name, k.version, k.mode, k.tenant_version, k.created, k.retired,
       k.retired IS NULL AND k.version = max(k.version) FILTER (WHERE k.retired IS NULL)
                                        OVER (PARTITION BY k.name) AS active,
       k.mode IN ('randomized', 'blind_index') AS approved_scheme, k.blind_index_version
FROM cellar.column_keys k;
GRANT SELECT ON cellar.keys TO PUBLIC;
