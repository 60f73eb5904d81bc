"""Cell ciphers: every mode, context binding, formats checked with `cryptography`, batches equal
to single calls, packed batches, blind indexes, buffer-too-small."""
import array
import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import cellar
from cellar import CellCipher, CellMode, Key, KeyType
from pkg_helpers import approved, raw_of, scheme, sp800_108_kdf

CTX = b"tenant=42/users/email/row=7"
NATIVE = [CellMode.RANDOMIZED, CellMode.DETERMINISTIC]
MSSQL = [CellMode.MSSQL_RANDOMIZED, CellMode.MSSQL_DETERMINISTIC]


def ctx_for(mode):
    return CTX if mode in NATIVE else b""


@pytest.mark.parametrize("mode", list(CellMode))
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_round_trip_every_mode_and_buffer(aes_key, mode, wrap):
    c = CellCipher(aes_key, mode, key_version=5)
    for value in (b"", b"x", os.urandom(15), os.urandom(16), os.urandom(1000)):
        ct = c.encrypt(wrap(value), ctx_for(mode))
        scheme(mode)
        assert len(ct) == c.ciphertext_len(len(value))
        assert c.decrypt(wrap(ct), ctx_for(mode)) == value
        scheme(mode)
    c.close()


def test_randomized_format_opens_with_aesgcm(aes_key):
    c = CellCipher(aes_key, key_version=9)
    ct = c.encrypt(b"alice@example.com", CTX.decode())  # a str context is UTF-8
    assert ct[0] == 1 and struct.unpack(">I", ct[1:5])[0] == 9 and len(ct) == 17 + 33
    assert AESGCM(raw_of(aes_key)).decrypt(ct[5:17], ct[17:], ct[:5] + CTX) == b"alice@example.com"
    assert c.encrypt(b"alice@example.com", CTX) != ct  # randomized
    assert CellCipher.key_version_of(ct) == 9


def test_context_and_version_binding(aes_key):
    for mode in NATIVE:
        c = CellCipher(aes_key, mode, key_version=1)
        ct = c.encrypt(b"secret", CTX)
        for wrong in (b"", CTX + b"x"):
            with pytest.raises(cellar.AuthenticationError) as e:
                c.decrypt(ct, wrong)
            assert e.value.status == 4
            assert cellar.last_operation_approved() is None
        with pytest.raises(cellar.AuthenticationError):
            CellCipher(aes_key, mode, key_version=2).decrypt(ct, CTX)
        with Key.generate() as other:
            with pytest.raises(cellar.AuthenticationError):
                CellCipher(other, mode, key_version=1).decrypt(ct, CTX)
        tampered = bytearray(ct)
        tampered[-1] ^= 1
        with pytest.raises(cellar.AuthenticationError):
            c.decrypt(tampered, CTX)


def test_deterministic_equality(aes_key):
    c = CellCipher(aes_key, CellMode.DETERMINISTIC)
    assert c.encrypt(b"v", CTX) == c.encrypt(bytearray(b"v"), CTX)
    assert c.encrypt(b"v", CTX) != c.encrypt(b"v", CTX + b"2")
    assert c.encrypt(b"v", CTX) != c.encrypt(b"w", CTX)
    assert CellCipher.key_version_of(c.encrypt(b"v")) == 1


def _mssql_keys(k):
    def sub(x):
        label = ("Microsoft SQL Server cell %s key with encryption algorithm:"
                 "AEAD_AES_256_CBC_HMAC_SHA256 and key length:256" % x).encode("utf-16-le")
        return hmac.new(k, label, hashlib.sha256).digest()
    return sub("encryption"), sub("MAC"), sub("IV")


@pytest.mark.parametrize("mode", MSSQL)
def test_always_encrypted_format(aes_key, mode):
    """Opened by an independent implementation of AEAD_AES_256_CBC_HMAC_SHA256."""
    c = CellCipher(aes_key, mode)
    value = "Grüße".encode("utf-16-le")
    ct = c.encrypt(value)
    enc, mac, ivk = _mssql_keys(raw_of(aes_key))
    assert ct[0] == 1
    tag, iv, body = ct[1:33], ct[33:49], ct[49:]
    assert hmac.compare_digest(tag, hmac.new(mac, b"\x01" + iv + body + b"\x01", hashlib.sha256).digest())
    d = Cipher(algorithms.AES(enc), modes.CBC(iv)).decryptor()
    u = padding.PKCS7(128).unpadder()
    assert u.update(d.update(body) + d.finalize()) + u.finalize() == value
    if mode == CellMode.MSSQL_DETERMINISTIC:
        assert iv == hmac.new(ivk, value, hashlib.sha256).digest()[:16]
    with pytest.raises(cellar.InvalidArgumentError):
        c.encrypt(value, b"ctx")  # no context in SQL Server's format


def test_blind_index(aes_key):
    bkey = sp800_108_kdf(raw_of(aes_key), b"cellar blind index v2", b"", 32)
    full = hmac.new(bkey, struct.pack(">I", len(CTX)) + CTX + b"bob", hashlib.sha256).digest()
    v1key = HKDF(hashes.SHA256(), 32, salt=bytes(32), info=b"cellar blind index v1").derive(raw_of(aes_key))
    full_v1 = hmac.new(v1key, struct.pack(">I", len(CTX)) + CTX + b"bob", hashlib.sha256).digest()
    for n in (4, 16, 32):
        assert cellar.blind_index(aes_key, b"bob", CTX, length=n) == full[:n]
        approved()
        assert cellar.blind_index(aes_key, b"bob", CTX, length=n, version=1) == full_v1[:n]
        assert cellar.last_operation_approved() is False
    assert cellar.blind_index(aes_key, memoryview(b"bob"), CTX.decode()) == full[:16]
    for n in (3, 33):
        with pytest.raises(ValueError):
            cellar.blind_index(aes_key, b"bob", length=n)
    with Key.generate(KeyType.AES256_XTS) as xts:
        with pytest.raises(cellar.InvalidKeyError):
            cellar.blind_index(xts, b"bob")


@pytest.mark.parametrize("mode", list(CellMode))
def test_batches_equal_single_calls(aes_key, mode):
    c = CellCipher(aes_key, mode)
    ctx = ctx_for(mode)
    for values in ([os.urandom(64) for _ in range(3000)],  # equal lengths (struct split)
                   [os.urandom(i % 300) for i in range(3000)],  # mixed lengths
                   [b""] * 10):
        cts = c.encrypt_many(values, ctx)
        scheme(mode)
        assert len(cts) == len(values)
        assert [c.decrypt(ct, ctx) for ct in cts] == values
        assert c.decrypt_many(cts, ctx) == values
        scheme(mode)
        if mode in (CellMode.DETERMINISTIC, CellMode.MSSQL_DETERMINISTIC):
            assert cts == [c.encrypt(v, ctx) for v in values]
        else:
            assert [len(x) for x in cts] == [c.ciphertext_len(len(v)) for v in values]


def test_batch_inputs(aes_key):
    c = CellCipher(aes_key, CellMode.DETERMINISTIC)
    values = [b"a", bytearray(b"bb"), memoryview(b"ccc"), memoryview(bytearray(b"dddd")),
              memoryview(array.array("H", [1, 2])).cast("B")]  # wider items, cast explicitly
    cts = c.encrypt_many(iter(values), CTX)  # any iterable
    expect = [bytes(memoryview(v)) for v in values]
    assert [c.decrypt(x, CTX) for x in cts] == expect
    assert c.decrypt_many(tuple(cts), CTX) == expect
    assert c.encrypt_many([]) == [] and c.decrypt_many([]) == []
    with pytest.raises(TypeError, match="value 1 is a str"):
        c.encrypt_many([b"a", "b"])
    with pytest.raises(TypeError, match="value 0 is a int"):
        c.encrypt_many([5])
    with pytest.raises(TypeError, match="value 1 is a array whose items are 2 bytes wide"):
        c.encrypt_many([b"ab", array.array("H", [1, 2])])  # raw memory in host byte order
    for single in (b"abc", bytearray(b"abc"), "abc"):
        with pytest.raises(TypeError, match="iterable of values"):
            c.encrypt_many(single)
        with pytest.raises(TypeError, match="iterable of values"):
            c.decrypt_many(single)


def test_batch_failure_names_the_value(aes_key):
    c = CellCipher(aes_key)
    cts = c.encrypt_many([b"a", b"b", b"c"], CTX)
    cts[1] = cts[1][:-1] + bytes([cts[1][-1] ^ 1])
    with pytest.raises(cellar.AuthenticationError) as e:
        c.decrypt_many(cts, CTX)
    assert "value 1" in e.value.detail


def test_batch_usage_limit(aes_key):
    aes_key.set_usage_limit(5)
    c = CellCipher(aes_key)
    c.encrypt_many([b"x"] * 5)
    with pytest.raises(cellar.UsageLimitError):
        c.encrypt_many([b"x"])


def test_packed_layout(aes_key):
    c = CellCipher(aes_key, CellMode.DETERMINISTIC)
    data = b"____hello" + b"world!" + b"xy"
    offsets = [4, 9, 15, 17]  # offsets[0] may be non-zero (a sliced Arrow array)
    out, out_offsets = c.encrypt_packed(data, offsets, CTX)
    scheme(CellMode.DETERMINISTIC)
    assert out_offsets[0] == 0 and out_offsets[-1] == len(out) and len(out_offsets) == 4
    singles = [c.encrypt(v, CTX) for v in (b"hello", b"world!", b"xy")]
    assert [out[a:b] for a, b in zip(out_offsets, out_offsets[1:])] == singles
    plain, plain_offsets = c.decrypt_packed(out, out_offsets, CTX)
    assert plain == b"helloworld!xy" and list(plain_offsets) == [0, 5, 11, 13]
    for bad in ([5, 4], [0, 100], [], [-1, 2]):
        with pytest.raises(ValueError):
            c.encrypt_packed(data, bad)


def test_encrypt_into_and_buffer_too_small(aes_key):
    c = CellCipher(aes_key)
    out = bytearray(64)
    n = c.encrypt_into(b"hello", out, CTX)
    assert n == 38 and c.decrypt(out[:n], CTX) == b"hello"
    with pytest.raises(cellar.BufferTooSmallError) as e:
        c.encrypt_into(b"hello", bytearray(10), CTX)
    assert e.value.status == 3 and e.value.needed == 38
    with pytest.raises(TypeError):
        c.encrypt_into(b"hello", bytes(64))


def test_cell_argument_errors(aes_key):
    with Key.generate(KeyType.AES256_XTS) as xts:
        with pytest.raises(cellar.InvalidKeyError):
            CellCipher(xts)
    with pytest.raises(ValueError, match="cell mode"):
        CellCipher(aes_key, 9)
    c = CellCipher(aes_key)
    with pytest.raises(TypeError, match="str"):
        c.encrypt("text")
    with pytest.raises(cellar.AuthenticationError):
        c.decrypt(b"\x01short")
    with pytest.raises(cellar.UnsupportedFormatError):
        CellCipher.key_version_of(b"\x07" + bytes(40))
    c.close()
    with pytest.raises(ValueError, match="closed CellCipher"):
        c.encrypt(b"x")
    with pytest.raises(ValueError, match="closed CellCipher"):
        c.encrypt_many([b"x"])


@pytest.mark.parametrize("mode", list(CellMode))
def test_threaded_batches(aes_key, mode):
    """threads=N splits a batch into chunks encrypted in parallel: same results, same order."""
    c = CellCipher(aes_key, mode)
    ctx = ctx_for(mode)
    for values in ([os.urandom(48) for _ in range(9000)], [os.urandom(i % 90) for i in range(9000)]):
        cts = c.encrypt_many(values, ctx, threads=3)
        scheme(mode)
        if mode in (CellMode.DETERMINISTIC, CellMode.MSSQL_DETERMINISTIC):
            assert cts == c.encrypt_many(values, ctx)
        assert c.decrypt_many(cts, ctx, threads=2) == values
        assert c.decrypt_many(cts, ctx) == values
    with pytest.raises(ValueError, match="threads"):
        c.encrypt_many([b"x"], threads=0)


def test_threaded_batch_failure_names_the_absolute_index(aes_key):
    c = CellCipher(aes_key)
    cts = c.encrypt_many([b"v"] * 10000, CTX, threads=2)
    cts[7777] = cts[7777][:-1] + bytes([cts[7777][-1] ^ 1])
    with pytest.raises(cellar.AuthenticationError) as e:
        c.decrypt_many(cts, CTX, threads=2)
    assert "value 7777" in e.value.detail and "value 7777" in str(e.value)
