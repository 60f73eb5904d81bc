"""Bad input gets a clear exception, never a crash: random and truncated bytes into every parser,
wrong types everywhere, empty buffers."""
import os
import random

import pytest

import cellar
from cellar import CellCipher, CellMode, Key, Keyring, KeyType, PageCipher, PageMode

RNG = random.Random(1234)


def garbage(n=300):
    for _ in range(n):
        size = RNG.choice([0, 1, 5, 16, 33, 53, 69, 82, 100, 114, 200, 600])
        yield bytes(RNG.getrandbits(8) for _ in range(size))


def test_random_bytes_into_every_parser(aes_key):
    kr = Keyring.create()
    cells = [CellCipher(aes_key, m) for m in CellMode]
    gcm = PageCipher(aes_key, PageMode.GCM)
    for blob in garbage():
        for call in (
            lambda: Key.unwrap(aes_key, blob),
            lambda: kr.unwrap(blob),
            lambda: kr.rewrap(blob),
            lambda: Keyring.import_state(blob, root_key=aes_key),
            lambda: gcm.decrypt(0, blob.ljust(512, b"\0")),
            lambda: PageCipher.key_version_of(blob.ljust(512, b"\1")),
        ):
            with pytest.raises(cellar.CellarError):
                call()
        # The key-version reader only reads a header: random bytes that happen to start like a
        # native cell (0x01 RANDOMIZED; 0x02 / 0x03 DETERMINISTIC) and are long enough give a version.
        native = (blob[:1] == b"\x01" and len(blob) >= 33) or (blob[:1] in (b"\x02", b"\x03") and len(blob) >= 69)
        if native:
            assert CellCipher.key_version_of(blob) == int.from_bytes(blob[1:5], "big")
        else:
            with pytest.raises(cellar.CellarError):
                CellCipher.key_version_of(blob)
        for c in cells:
            ctx = b"" if c.mode in (CellMode.MSSQL_RANDOMIZED, CellMode.MSSQL_DETERMINISTIC) else b"c"
            with pytest.raises(cellar.CellarError):
                c.decrypt(blob, ctx)
            with pytest.raises(cellar.CellarError):
                c.decrypt_many([blob, blob], ctx)
    # Everything still works afterwards.
    assert cells[0].decrypt(cells[0].encrypt(b"ok")) == b"ok"


def test_truncations_of_valid_blobs(aes_key):
    kr = Keyring.create()
    dek = Key.generate(KeyType.AES256_XTS)
    c = CellCipher(aes_key, CellMode.DETERMINISTIC)
    wrapped, cell = kr.wrap(dek), c.encrypt(b"value", b"c")
    for i in range(len(wrapped)):
        with pytest.raises(cellar.CellarError):
            kr.unwrap(wrapped[:i])
    for i in range(len(cell)):
        with pytest.raises(cellar.AuthenticationError):
            c.decrypt(cell[:i], b"c")


@pytest.mark.parametrize("bad", [None, 5, 1.5, "text", ["list"], object()])
def test_wrong_types_are_type_errors(aes_key, bad):
    c = CellCipher(aes_key)
    pc = PageCipher(aes_key, PageMode.GCM)
    calls = [
        lambda: c.encrypt(bad),
        lambda: c.decrypt(bad),
        lambda: pc.encrypt(0, bad),
        lambda: Key.import_raw(KeyType.AES256, bad),
        lambda: Key.unwrap(bad, b"x"),
        lambda: CellCipher(bad),
        lambda: PageCipher(bad, PageMode.XTS),
    ]
    if bad is not None:  # Keyring.create(None) is the service-managed default
        calls.append(lambda: Keyring.create(bad))
    for call in calls:
        with pytest.raises((TypeError, ValueError)):
            call()


def test_empty_buffers(aes_key, xts_key):
    c = CellCipher(aes_key)
    for empty in (b"", bytearray(), memoryview(b"")):
        assert c.decrypt(c.encrypt(empty, empty), b"") == b""
    pc = PageCipher(xts_key, PageMode.XTS)
    for call in (lambda: pc.encrypt(0, b""), lambda: pc.encrypt_into(0, bytearray()),
                 lambda: pc.decrypt(0, memoryview(b""))):
        with pytest.raises(cellar.InvalidArgumentError, match="page size 0"):
            call()
    assert pc.encrypt_pages(0, bytearray(), 4096) is None
