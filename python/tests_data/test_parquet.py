"""cellar.parquet: Parquet modular encryption with a keyring KmsClient, and Parquet files whose
columns are Cellar cells; round trips, rotation, the documented wrapped-key string, and readers
without the keyring failing cleanly."""
import base64
import re

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pe = pytest.importorskip("pyarrow.parquet.encryption")

import cellar  # noqa: E402
from cellar import parquet as cpq  # noqa: E402


def sample_table(n=200):
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "email": pa.array([f"user{i}@example.com" if i % 9 else None for i in range(n)]),
        "ssn": pa.array([b"%09d" % (i * 7919) for i in range(n)], pa.binary()),
        "note": pa.array(["x" * (i % 50) for i in range(n)], pa.large_string()),
    })


@pytest.fixture
def keyring():
    with cellar.Keyring.create() as kr:
        yield kr


# Parquet modular encryption -----------------------------------------------------------------------


def write_pme(path, table, keyrings, footer, column_keys, **kw):
    factory = cpq.crypto_factory(keyrings)
    enc = cpq.encryption_configuration(footer, column_keys, **kw)
    props = factory.file_encryption_properties(cpq.KMS_CONNECTION, enc)
    pq.write_table(table, path, encryption_properties=props)


def read_pme(path, keyrings, **kw):
    factory = cpq.crypto_factory(keyrings)
    props = factory.file_decryption_properties(cpq.KMS_CONNECTION, pe.DecryptionConfiguration())
    return pq.read_table(path, decryption_properties=props, **kw)


def test_pme_round_trip_two_master_keys(tmp_path, keyring):
    t = sample_table()
    with cellar.Keyring.create() as pii:
        rings = {"footer-ring": keyring, "pii-ring": pii}
        path = tmp_path / "pme.parquet"
        write_pme(path, t, rings, "footer-ring", {"pii-ring": ["email", "ssn"]})
        assert read_pme(path, rings).equals(t)
        # a reader that holds the footer keyring but not the PII one reads the other columns...
        part = read_pme(path, {"footer-ring": keyring, "pii-ring": cellar.Keyring.create()},
                        columns=["id", "note"])
        assert part.equals(t.select(["id", "note"]))
        # ...and fails cleanly on the PII columns
        with pytest.raises((cellar.CellarError, OSError)):
            read_pme(path, {"footer-ring": keyring, "pii-ring": cellar.Keyring.create()},
                     columns=["email"])


def test_pme_no_plaintext_and_wrapped_key_string(tmp_path, keyring):
    t = sample_table()
    path = tmp_path / "pme.parquet"
    write_pme(path, t, {"k": keyring}, "k", {"k": ["email"]})
    data = path.read_bytes()
    assert b"user17@example.com" not in data
    wrapped = re.findall(rb"cellar:kwp1:[A-Za-z0-9+/=]+", data)
    assert wrapped, "no Cellar wrapped-key string in the file's key material"
    for w in set(wrapped):
        blob = base64.b64decode(w[len(b"cellar:kwp1:"):])
        dek, version = keyring.unwrap(blob)   # the documented recipe: base64 -> keyring unwrap
        with dek:
            assert version == 1 and len(dek.export_raw()) == 32


def test_pme_reader_without_keyring_fails_cleanly(tmp_path, keyring):
    t = sample_table()
    path = tmp_path / "pme.parquet"
    write_pme(path, t, {"k": keyring}, "k", {"k": ["email"]})
    with pytest.raises(OSError):
        pq.read_table(path)                                  # no decryption properties at all
    with pytest.raises(cellar.KeyNotFoundError):
        read_pme(path, {"k": cellar.Keyring.create()})      # another tenant's keyring
    with pytest.raises(KeyError):
        read_pme(path, {"other-name": keyring})              # no keyring under that name


def test_pme_survives_rotation_until_retired(tmp_path, keyring):
    t = sample_table(20)
    path = tmp_path / "pme.parquet"
    write_pme(path, t, {"k": keyring}, "k", {"k": ["email"]}, uniform_encryption=None)
    keyring.rotate()
    assert read_pme(path, {"k": keyring}).equals(t)
    keyring.retire(1)
    with pytest.raises(cellar.KeyNotFoundError):
        read_pme(path, {"k": keyring})


def test_pme_master_key_identifiers_name_keyring_versions(tmp_path, keyring):
    t = sample_table(30)
    client = cpq.KeyringKmsClient({"k": keyring})
    s1 = client.wrap_key(b"\x03" * 32, "k@1")               # version 1 named: it is active
    assert client.unwrap_key(s1, "k@1") == b"\x03" * 32
    assert client.unwrap_key(s1, "k") == b"\x03" * 32
    assert keyring.rotate() == 2
    with pytest.raises(ValueError, match="active version is 2"):
        client.wrap_key(b"\x03" * 32, "k@1")                 # no longer active: refused
    s2 = client.wrap_key(b"\x04" * 32, "k@2")
    assert client.unwrap_key(s1, "k@1") == b"\x03" * 32     # old files still read under @1
    with pytest.raises(ValueError, match="wrapped by version 1"):
        client.unwrap_key(s1, "k@2")                          # a key version 2 did not wrap
    with pytest.raises(ValueError, match="wrapped by version 2"):
        client.unwrap_key(s2, "k@1")
    for bad in ("k@", "k@0", "k@x", "k@-1", "k@4294967296"):
        with pytest.raises(ValueError, match="version"):
            client.wrap_key(b"\x05" * 32, bad)
    with pytest.raises(KeyError):
        client.wrap_key(b"\x05" * 32, "other@2")
    with pytest.raises(ValueError, match="'@'"):
        cpq.KeyringKmsClient({"a@b": keyring})
    # Whole files: written under k@2, read back; a reader that pins @1 is refused cleanly.
    path = tmp_path / "pinned.parquet"
    write_pme(path, t, {"k": keyring}, "k@2", {"k@2": ["email", "ssn"]})
    assert read_pme(path, {"k": keyring}).equals(t)
    with pytest.raises((ValueError, OSError)):
        write_pme(tmp_path / "stale.parquet", t, {"k": keyring}, "k@1", {"k@1": ["email"]})


SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def test_pme_with_an_hsm_held_keyring_version(tmp_path):
    # The keyring's version is an AES-256 key in a real SoftHSM2 token (made here, in tmp_path):
    # Parquet's data keys are wrapped inside the token, and the file reads back.
    import os
    import subprocess
    if not os.path.exists(SOFTHSM):
        pytest.fail(f"SoftHSM2 is needed for this test ({SOFTHSM} is missing: make setup)")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)   # read when the module is first loaded (below)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "parquet-hsm",
                    "--so-pin", "so-pin-0815", "--pin", "1234-parquet"], check=True,
                   capture_output=True)
    t = sample_table(50)
    kr = cellar.Keyring.create_pkcs11(SOFTHSM, "1234-parquet", "parquet-tenant",
                                      token="parquet-hsm", allow_zero_padded_kwp=True)
    with kr:
        assert kr.version_info(1).pkcs11
        path = tmp_path / "hsm.parquet"
        write_pme(path, t, {"hsm": kr}, "hsm@1", {"hsm": ["email", "ssn"]})
        assert b"user17@example.com" not in path.read_bytes()
        assert read_pme(path, {"hsm": kr}).equals(t)
        state = kr.export(b"export-password-for-parquet")
        kr.lock()
        with pytest.raises((cellar.CellarError, OSError)):
            read_pme(path, {"hsm": kr})                      # locked: the token is logged out
    # A new keyring object from the export reconnects to the token key after an unlock.
    with cellar.Keyring.import_state(state, b"export-password-for-parquet") as again:
        again.unlock_pkcs11("1234-parquet", allow_zero_padded_kwp=True)
        assert read_pme(path, {"hsm": again}).equals(t)


def test_pme_client_refuses_short_keys_and_bad_strings(keyring):
    client = cpq.KeyringKmsClient({"k": keyring})
    with pytest.raises(ValueError, match="256"):
        client.wrap_key(b"\x01" * 16, "k")
    s = client.wrap_key(b"\x02" * 32, "k")
    assert s.startswith(cpq.WRAPPED_KEY_PREFIX)
    assert client.unwrap_key(s, "k") == b"\x02" * 32
    with pytest.raises(ValueError):
        client.unwrap_key("aws:xyz", "k")
    with pytest.raises(ValueError):
        client.unwrap_key(cpq.WRAPPED_KEY_PREFIX + "!!!", "k")
    blob = bytearray(base64.b64decode(s[len(cpq.WRAPPED_KEY_PREFIX):]))
    blob[-1] ^= 1
    with pytest.raises(cellar.AuthenticationError):
        client.unwrap_key(cpq.WRAPPED_KEY_PREFIX + base64.b64encode(bytes(blob)).decode(), "k")
    with pytest.raises(TypeError):
        cpq.KeyringKmsClient({"k": "not a keyring"})


def test_pme_default_double_wrapping_is_refused_with_advice(tmp_path, keyring):
    factory = cpq.crypto_factory({"k": keyring})
    enc = pe.EncryptionConfiguration(footer_key="k", column_keys={"k": ["email"]})  # pyarrow defaults
    with pytest.raises(ValueError, match="double_wrapping=False"):
        factory.file_encryption_properties(cpq.KMS_CONNECTION, enc)


# Cellar cells in Parquet ---------------------------------------------------------------------------


def test_cells_round_trip(tmp_path, keyring):
    t = sample_table()
    path = tmp_path / "cells.parquet"
    wrapped = cpq.write_table(t, path, keyring, {"email": cellar.CellMode.DETERMINISTIC,
                                                 "ssn": cellar.CellMode.RANDOMIZED,
                                                 "note": cellar.CellMode.RANDOMIZED})
    assert set(wrapped) == {"email", "ssn", "note"}
    data = path.read_bytes()
    assert b"user17@example.com" not in data and b"%09d" % (17 * 7919) not in data
    raw = pq.read_table(path)                                  # any reader: ciphertexts
    assert raw.schema.field("email").type == pa.binary()
    assert cpq.encrypted_columns(raw.schema) == ["email", "ssn", "note"]
    assert raw.column("id").equals(t.column("id"))
    back = cpq.read_table(path, keyring)
    assert back.equals(t)
    assert back.schema.field("email").metadata is None        # Cellar metadata removed
    # value by value against CellCipher.decrypt with the unwrapped column key
    meta = raw.schema.field("ssn").metadata
    key, _ = keyring.unwrap(base64.b64decode(meta[b"cellar.key"]))
    with key, cellar.CellCipher(key, cellar.CellMode.RANDOMIZED) as c:
        for ct, pt in zip(raw.column("ssn").to_pylist(), t.column("ssn").to_pylist()):
            assert c.decrypt(ct, b"ssn") == pt


def test_cells_column_by_column(tmp_path, keyring):
    t = sample_table(50)
    path = tmp_path / "cells.parquet"
    cpq.write_table(t, path, keyring, {"email": cellar.CellMode.RANDOMIZED,
                                       "ssn": cellar.CellMode.RANDOMIZED})
    one = cpq.read_table(path, keyring, columns=["id", "email"])
    assert one.equals(t.select(["id", "email"]))
    only = cpq.read_table(path, keyring, decrypt=["ssn"])
    assert only.column("ssn").equals(t.column("ssn"))
    assert only.schema.field("email").type == pa.binary()     # left encrypted
    with pytest.raises(KeyError):
        cpq.read_table(path, keyring, decrypt=["id"])


def test_cells_reader_without_keyring_fails_cleanly(tmp_path, keyring):
    t = sample_table(10)
    path = tmp_path / "cells.parquet"
    cpq.write_table(t, path, keyring, {"email": cellar.CellMode.RANDOMIZED})
    with cellar.Keyring.create() as other:
        with pytest.raises(cellar.KeyNotFoundError):
            cpq.read_table(path, other)
    keyring.export(password="correct horse battery staple")  # a lock must be undoable
    keyring.lock()
    with pytest.raises(cellar.TenantLockedError):
        cpq.read_table(path, keyring)
    with pytest.raises(TypeError):
        cpq.read_table(path, None)


def test_cells_tampered_cell_named_by_row(tmp_path, keyring):
    t = sample_table(30)
    path = tmp_path / "cells.parquet"
    cpq.write_table(t, path, keyring, {"ssn": cellar.CellMode.RANDOMIZED})
    raw = pq.read_table(path)
    vals = raw.column("ssn").to_pylist()
    vals[12] = vals[12][:-1] + bytes([vals[12][-1] ^ 0x80])
    i = raw.schema.get_field_index("ssn")
    bad = raw.set_column(i, raw.schema.field("ssn"), pa.array(vals, pa.binary()))
    pq.write_table(bad, path)
    with pytest.raises(cellar.AuthenticationError) as ei:
        cpq.read_table(path, keyring)
    assert ei.value.index == 12


def test_cells_shared_key_across_files(tmp_path, keyring):
    with cellar.Key.generate() as col_key:
        a = pa.table({"email": ["a@x", "b@y"]})
        b = pa.table({"email": ["b@y", "c@z"]})
        spec = {"email": (cellar.CellMode.DETERMINISTIC, col_key)}
        cpq.write_table(a, tmp_path / "a.parquet", keyring, spec)
        cpq.write_table(b, tmp_path / "b.parquet", keyring, spec)
    ra = pq.read_table(tmp_path / "a.parquet").column("email").to_pylist()
    rb = pq.read_table(tmp_path / "b.parquet").column("email").to_pylist()
    assert ra[1] == rb[0]                           # joinable on ciphertext
    assert cpq.read_table(tmp_path / "b.parquet", keyring).column("email").to_pylist() == ["b@y", "c@z"]


def test_cells_row_context_and_projection(tmp_path, keyring):
    t = sample_table(40)
    path = tmp_path / "rows.parquet"
    cpq.write_table(t, path, keyring, {"email": cellar.CellMode.RANDOMIZED}, row_context="id")
    assert cpq.read_table(path, keyring).equals(t)
    # asking only for the encrypted column reads the row-key column too, then drops it
    only = cpq.read_table(path, keyring, columns=["email"])
    assert only.column_names == ["email"] and only.column("email").equals(t.column("email"))
