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


# Key purposes (SPEC 10, SP 800-57; docs/FORMATS.md 1.3 / 1.4) ---------------------------------

from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding  # noqa: E402

from cellar import KeyPurpose  # noqa: E402

PURPOSES = list(KeyPurpose)


def test_purpose_enum_and_defaults():
    assert [int(p) for p in PURPOSES] == [0, 1, 2, 3]
    assert str(KeyPurpose.KEY_WRAPPING) == "KeyPurpose.KEY_WRAPPING"
    with Key.generate() as k:
        assert k.purpose is KeyPurpose.NONE
        assert "purpose" not in repr(k)
    with Key.generate(KeyType.AES256, purpose=KeyPurpose.DATA_ENCRYPTION) as k:
        approved()
        assert k.purpose is KeyPurpose.DATA_ENCRYPTION
        assert "purpose=DATA_ENCRYPTION" in repr(k)
    for bad in (4, -1, 99, "wrap"):
        with pytest.raises(ValueError, match="unknown key purpose"):
            Key.generate(purpose=bad)
    with pytest.raises(cellar.InvalidArgumentError, match="AES-256-XTS key cannot be a key-wrapping key"):
        Key.generate(KeyType.AES256_XTS, purpose=KeyPurpose.KEY_WRAPPING)


def test_purpose_refusals_name_both_purposes():
    dek = Key.generate(purpose=KeyPurpose.DATA_ENCRYPTION)
    kek = Key.generate(purpose=KeyPurpose.KEY_WRAPPING)
    kdk = Key.generate(purpose=KeyPurpose.KEY_DERIVATION)
    with pytest.raises(cellar.InvalidKeyError, match="a data-encryption key cannot be used as a key-encryption"):
        dek.wrap(dek)
    with pytest.raises(cellar.InvalidKeyError, match="a key-wrapping key cannot be used as a data-encryption key"):
        cellar.CellCipher(kek, cellar.CellMode.RANDOMIZED)
    with pytest.raises(cellar.InvalidKeyError, match="a key-derivation key cannot be used as a data-encryption key"):
        cellar.PageCipher(kdk, cellar.PageMode.GCM, file_id=1)
    with pytest.raises(cellar.InvalidKeyError, match="a data-encryption key cannot be used as a key-derivation"):
        dek.derive("t")
    with pytest.raises(cellar.InvalidKeyError, match="a key-wrapping key cannot be used as a key-derivation"):
        kek.derive("t", purpose=KeyPurpose.DATA_ENCRYPTION)
    with pytest.raises(cellar.InvalidKeyError, match="a data-encryption key cannot be used as a key-encryption"):
        cellar.Keyring.create(dek)
    # No purpose works everywhere; the right purpose works.
    none = Key.generate()
    cellar.CellCipher(none, cellar.CellMode.RANDOMIZED).close()
    Key.unwrap(none, dek.wrap(none))[0].close()
    cellar.CellCipher(dek, cellar.CellMode.RANDOMIZED).close()
    approved()
    cellar.Keyring.create(kek).close()


def test_purpose_wrap_blob_v2_read_independently():
    """A key with a purpose wraps to format 0x02, the inner record being
    type | purpose | version BE | key_id | material, opened here with `cryptography`."""
    kek = Key.generate(purpose=KeyPurpose.KEY_WRAPPING)
    for kt, p in [(KeyType.AES256, KeyPurpose.DATA_ENCRYPTION), (KeyType.AES256_XTS, KeyPurpose.KEY_DERIVATION),
                  (KeyType.AES256, KeyPurpose.KEY_WRAPPING)]:
        with Key.generate(kt, purpose=p) as k:
            blob = k.wrap(kek, version=0x01020304)
            assert len(blob) == (82 if kt == KeyType.AES256 else 114)
            assert blob[:2] == b"W\x02" and blob[2:18] == kek.id
            inner = aes_key_unwrap_with_padding(raw_of(kek), blob[18:])
            assert inner[0] == int(kt) and inner[1] == int(p)
            assert inner[2:6] == bytes([1, 2, 3, 4]) and inner[6:22] == k.id and inner[22:] == raw_of(k)
            back, v = Key.unwrap(kek, blob)
            assert back.purpose is p and back.id == k.id and v == 0x01020304


def test_purpose_blobs_written_independently_are_read():
    """Blobs and password files built here with `cryptography` (format 0x02 with each purpose, and
    0x01) unwrap in Cellar with the purpose they carry; a bad purpose byte is an authentication
    failure."""
    kek_raw = os.urandom(32)
    kek = Key.import_raw(KeyType.AES256, kek_raw)
    material = os.urandom(32)
    header = struct.pack(">I", 7) + key_id(material)
    for p in PURPOSES:
        if p is KeyPurpose.NONE:
            fmt, inner = 1, bytes([1]) + header + material
        else:
            fmt, inner = 2, bytes([1, int(p)]) + header + material
        blob = b"W" + bytes([fmt]) + kek.id + aes_key_wrap_with_padding(kek_raw, inner)
        k, v = Key.unwrap(kek, blob)
        assert k.purpose is p and v == 7 and raw_of(k) == material
    for bad in (0, 4, 255):
        inner = bytes([1, bad]) + header + material
        blob = b"W\x02" + kek.id + aes_key_wrap_with_padding(kek_raw, inner)
        with pytest.raises(cellar.AuthenticationError):
            Key.unwrap(kek, blob)
    # A password file: PBKDF2-HMAC-SHA256 + KWP, format 0x02.
    salt = os.urandom(16)
    pw_key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=FAST).derive(PW.encode())
    inner = bytes([1, int(KeyPurpose.KEY_DERIVATION)]) + header + material
    file = b"P\x02" + struct.pack(">I", FAST) + salt + aes_key_wrap_with_padding(pw_key, inner)
    k = Key.import_with_password(file, PW)
    assert k.purpose is KeyPurpose.KEY_DERIVATION and k.stored_version == 7
    # The same record under format byte 0x01 does not fit the v1 layout.
    with pytest.raises(cellar.AuthenticationError):
        Key.import_with_password(b"P\x01" + file[2:], PW)


def test_purpose_round_trips_password_file():
    with Key.generate(KeyType.AES256_XTS, purpose=KeyPurpose.DATA_ENCRYPTION) as k:
        f = k.export_with_password(PW, iterations=FAST, version=3)
        assert f[:2] == b"P\x02" and len(f) == 118
        back = Key.import_with_password(f, PW)
        assert back.purpose is KeyPurpose.DATA_ENCRYPTION and back.id == k.id and back.stored_version == 3
    with Key.generate() as k:
        assert k.export_with_password(PW, iterations=FAST)[:2] == b"P\x01"


def test_purpose_import_and_derive_independently():
    raw = os.urandom(32)
    parent = Key.import_raw(KeyType.AES256, raw, purpose=KeyPurpose.KEY_DERIVATION)
    assert parent.purpose is KeyPurpose.KEY_DERIVATION and parent.id == key_id(raw)
    # NONE is derive v2 exactly; a purpose uses its own label and puts the purpose first.
    assert raw_of(parent.derive("orders.email")) == sp800_108_kdf(raw, b"cellar derive v2", b"\x01orders.email", 32)
    for p in (KeyPurpose.DATA_ENCRYPTION, KeyPurpose.KEY_WRAPPING, KeyPurpose.KEY_DERIVATION):
        c = parent.derive("orders.email", purpose=p)
        approved()
        assert c.purpose is p
        assert raw_of(c) == sp800_108_kdf(raw, b"cellar derive v2 purpose", bytes([int(p), 1]) + b"orders.email", 32)
    x = parent.derive("f", KeyType.AES256_XTS, purpose=KeyPurpose.DATA_ENCRYPTION)
    assert raw_of(x) == sp800_108_kdf(raw, b"cellar derive v2 purpose", b"\x01\x02f", 64)


def test_keyring_blobs_carry_data_key_purpose():
    kr = cellar.Keyring.create()
    dek = Key.generate(purpose=KeyPurpose.DATA_ENCRYPTION)
    blob = kr.wrap(dek)
    assert blob[1] == 2
    back, version = kr.unwrap(blob)
    assert version == 1
    assert back.purpose is KeyPurpose.DATA_ENCRYPTION and back.id == dek.id
