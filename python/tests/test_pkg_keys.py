"""Keys: generation, import, derivation (HKDF checked with `cryptography`), key ids (HMAC),
wrapping (AES-KWP opened with `cryptography`), password files, raw export, usage limits."""
import copy
import hashlib
import hmac
import os
import pickle
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

import cellar
from cellar import Key, KeyType
from pkg_helpers import approved, raw_of, sp800_108_kdf

PW = "correct horse battery staple"
FAST = 100_000  # the minimum iteration count keeps the tests quick


def key_id(material: bytes) -> bytes:
    return hmac.new(material, b"cellar key id v1", hashlib.sha256).digest()[:16]


@pytest.mark.parametrize("kt, size", [(KeyType.AES256, 32), (KeyType.AES256_XTS, 64)])
def test_generate(kt, size):
    with Key.generate(kt) as k:
        approved()
        assert k.type is kt and len(k.id) == 16
        raw = raw_of(k)
        assert len(raw) == size and raw != bytes(size)
        assert k.id == key_id(raw)
    with Key.generate(kt) as a, Key.generate(kt) as b:
        assert a.id != b.id and a != b


def test_generate_default_type_and_bad_type():
    with Key.generate() as k:
        assert k.type is KeyType.AES256
    with pytest.raises(ValueError, match="unknown key type"):
        Key.generate(3)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_import_raw_buffers(wrap):
    material = os.urandom(32)
    with Key.import_raw(KeyType.AES256, wrap(material)) as k:
        approved()
        assert k.id == key_id(material)
        assert bytes(k.export_raw()) == material


def test_import_raw_rejects_bad_material():
    with pytest.raises(cellar.InvalidKeyError) as e:
        Key.import_raw(KeyType.AES256, os.urandom(31))
    assert e.value.status == 5 and e.value.name == "CELLAR_ERR_INVALID_KEY" and e.value.detail
    half = os.urandom(32)
    with pytest.raises(cellar.InvalidKeyError):
        Key.import_raw(KeyType.AES256_XTS, half + half)  # equal XTS halves
    with pytest.raises(TypeError, match="str"):
        Key.import_raw(KeyType.AES256, "k" * 32)
    assert cellar.last_operation_approved() is None  # a failed call reports "unknown"


def test_secrets_stay_out_of_repr_and_errors():
    material = os.urandom(32)
    k = Key.import_raw(KeyType.AES256, material)
    for text in (repr(k), str(k)):
        assert material.hex() not in text and k.id.hex() in text and "AES256" in text
    with pytest.raises(cellar.InvalidKeyError) as e:
        Key.import_raw(KeyType.AES256, material + b"\x00")
    assert material.hex() not in str(e.value) and repr(material) not in str(e.value)
    k.close()
    assert "closed" in repr(k)


def test_derive_v1_is_hkdf():
    parent_raw = os.urandom(32)
    with Key.import_raw(KeyType.AES256, parent_raw) as parent:
        for kt, size in ((KeyType.AES256, 32), (KeyType.AES256_XTS, 64)):
            with parent.derive_v1("orders.card_number", key_type=kt) as child:
                assert cellar.last_operation_approved() is False  # HKDF: not an approved KDF here
                expect = HKDF(hashes.SHA256(), size, salt=bytes(32),
                              info=b"cellar derive v1" + bytes([kt]) + b"orders.card_number").derive(parent_raw)
                assert raw_of(child) == expect and child.type is kt
            with parent.derive("orders.card_number", key_type=kt) as v2:
                approved()
                assert raw_of(v2) == sp800_108_kdf(parent_raw, b"cellar derive v2",
                                                   bytes([kt]) + b"orders.card_number", size)
        a, b = parent.derive(b"t1"), parent.derive("t1")
        assert a.id == b.id and parent.derive("t2").id != a.id
        with pytest.raises(ValueError, match="empty"):
            parent.derive(b"")


def test_wrap_unwrap_is_kwp():
    with Key.generate() as kek, Key.generate(KeyType.AES256_XTS) as dek:
        blob = dek.wrap(kek, version=7)
        approved()
        assert len(blob) == 114 and blob[:2] == b"W\x01" and blob[2:18] == kek.id
        inner = aes_key_unwrap_with_padding(raw_of(kek), blob[18:])
        assert inner == bytes([2]) + struct.pack(">I", 7) + dek.id + raw_of(dek)
        back, version = Key.unwrap(kek, bytearray(blob))
        approved()
        assert version == 7 and back.id == dek.id and back.stored_version == 7
        back.close()


def test_unwrap_failures():
    with Key.generate() as kek, Key.generate() as other, Key.generate() as dek:
        blob = dek.wrap(kek)
        assert len(blob) == 82
        for bad in (blob[:-1], blob + b"\x00", blob[:30] + bytes([blob[30] ^ 1]) + blob[31:]):
            with pytest.raises(cellar.AuthenticationError):
                Key.unwrap(kek, bad)
        with pytest.raises(cellar.AuthenticationError):
            Key.unwrap(other, blob)
        with Key.generate(KeyType.AES256_XTS) as xts:
            with pytest.raises(cellar.InvalidKeyError):
                dek.wrap(xts)
        with pytest.raises(TypeError):
            dek.wrap(b"not a key")
        with pytest.raises(ValueError):
            dek.wrap(kek, version=-1)


def test_password_file():
    with Key.generate() as k:
        blob = k.export_with_password(PW, iterations=FAST)
        approved()
        assert len(blob) == 86 and blob[:2] == b"P\x01"
        assert struct.unpack(">I", blob[2:6])[0] == FAST
        # Independent check: PBKDF2 + KWP from the documented format.
        kek = PBKDF2HMAC(hashes.SHA256(), 32, blob[6:22], FAST).derive(PW.encode())
        assert aes_key_unwrap_with_padding(kek, blob[22:])[21:] == raw_of(k)
        back = Key.import_with_password(blob, PW.encode())
        approved()
        assert back.id == k.id and back.stored_version == 1
        with pytest.raises(cellar.AuthenticationError):
            Key.import_with_password(blob, PW + "!")
        with pytest.raises(cellar.InvalidArgumentError):
            Key.import_with_password(blob, "short")
        with pytest.raises(ValueError):
            k.export_with_password(PW, iterations=10)
        with pytest.raises(cellar.InvalidArgumentError):
            k.export_with_password("short", iterations=FAST)


def test_usage_limit():
    with Key.generate() as k:
        assert k.usage == (0, 1 << 32)
        k.set_usage_limit(2)
        cells = cellar.CellCipher(k)
        cells.encrypt(b"a")
        cells.encrypt(b"b")
        with pytest.raises(cellar.UsageLimitError) as e:
            cells.encrypt(b"c")
        assert e.value.status == 9
        assert k.usage == (2, 2)
        with pytest.raises(cellar.InvalidArgumentError):
            k.set_usage_limit(0)
        cells.close()


def test_closed_key():
    k = Key.generate()
    k.close()
    k.close()  # idempotent
    assert k.closed
    with pytest.raises(ValueError, match="closed Key"):
        k.derive("x")
    with pytest.raises(ValueError, match="closed"):
        cellar.CellCipher(k)
    assert len(k.id) == 16  # the public id stays readable


def test_keys_cannot_be_pickled_or_copied():
    with Key.generate() as k:
        for f in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match="cannot be pickled or copied"):
                f(k)
    with pytest.raises(TypeError):
        Key()
