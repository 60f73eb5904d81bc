"""Per-row contexts in batch calls and the blind-index key (issue 20, items 2 and 5): every
row-bound result equals the single call given ``prefix + row context``."""
import os

import pytest

import cellar
from cellar import BlindIndexKey, CellCipher, CellMode

PREFIX = b"tenant=7/customers/email/"


def _rows(n):
    values = [os.urandom(i % 40) for i in range(n)]
    keys = [b"row=%d" % i for i in range(n)]
    return values, keys


@pytest.mark.parametrize("mode", [CellMode.RANDOMIZED, CellMode.DETERMINISTIC])
def test_rows_equal_single_calls(aes_key, mode):
    c = CellCipher(aes_key, mode)
    values, keys = _rows(50)
    cts = c.encrypt_many(values, PREFIX, contexts=keys)
    for v, k, ct in zip(values, keys, cts):
        assert c.decrypt(ct, PREFIX + k) == v
        if mode == CellMode.DETERMINISTIC:
            assert ct == c.encrypt(v, PREFIX + k)
    with pytest.raises(cellar.AuthenticationError):
        c.decrypt(cts[1], PREFIX + keys[2])  # bound to its own row
    assert c.decrypt_many(cts, PREFIX, contexts=keys) == values
    # the packed form (no prefix, whole contexts) is the same binding
    whole = [PREFIX + k for k in keys]
    assert c.decrypt_many(cts, contexts=whole) == values
    # str row keys are UTF-8, like a str context
    assert c.decrypt_many(cts, PREFIX.decode(), contexts=[k.decode() for k in keys]) == values
    # rows out of step: the batch fails and names a value
    with pytest.raises(cellar.AuthenticationError) as e:
        c.decrypt_many(cts, PREFIX, contexts=keys[1:] + keys[:1])
    assert "value 0" in e.value.detail


def test_rows_threads_split_contexts_with_values(aes_key):
    c = CellCipher(aes_key, CellMode.DETERMINISTIC)
    values, keys = _rows(5000)
    one = c.encrypt_many(values, PREFIX, contexts=keys)
    two = c.encrypt_many(values, PREFIX, threads=2, contexts=keys)
    assert one == two
    assert c.decrypt_many(two, PREFIX, threads=2, contexts=keys) == values
    r = CellCipher(aes_key)
    cts = r.encrypt_many(values, PREFIX, threads=2, contexts=keys)
    assert r.decrypt(cts[4999], PREFIX + keys[4999]) == values[4999]
    assert r.decrypt_many(cts, PREFIX, threads=2, contexts=keys) == values


def test_rows_bad_input(aes_key):
    c = CellCipher(aes_key)
    with pytest.raises(ValueError, match="3 entries for 2 values"):
        c.encrypt_many([b"a", b"b"], contexts=[b"1", b"2", b"3"])
    with pytest.raises(TypeError, match="context 1 is None"):
        c.encrypt_many([b"a", b"b"], contexts=[b"1", None])
    with pytest.raises(TypeError, match="context 0 is a int"):
        c.encrypt_many([b"a"], contexts=[7])
    with pytest.raises(TypeError, match="one context per value"):
        c.encrypt_many([b"a"], contexts=b"1")
    ms = CellCipher(aes_key, CellMode.MSSQL_DETERMINISTIC)
    assert ms.encrypt_many([b"a"], contexts=[b""]) == [ms.encrypt(b"a")]
    with pytest.raises(cellar.InvalidArgumentError):
        ms.encrypt_many([b"a"], contexts=[b"x"])


def test_blind_index_key(aes_key, xts_key):
    b = BlindIndexKey(aes_key)
    assert repr(b) == "<cellar.BlindIndexKey v2>"  # version 2 (SP 800-108) is the default
    assert cellar.last_operation_approved() is True
    with BlindIndexKey(aes_key, version=1) as b1:
        assert cellar.last_operation_approved() is False  # version 1: HKDF blind-index key
        assert b1.compute(b"bob", PREFIX) == cellar.blind_index(aes_key, b"bob", PREFIX, version=1)
        assert b1.compute(b"bob", PREFIX) != b.compute(b"bob", PREFIX)
    assert b.compute(b"bob", PREFIX) == cellar.blind_index(aes_key, b"bob", PREFIX)
    assert b.compute(b"bob", PREFIX, 8) == cellar.blind_index(aes_key, b"bob", PREFIX, 8)
    assert cellar.last_operation_approved() is True
    values, keys = _rows(100)
    assert b.compute_many(values, PREFIX) == [cellar.blind_index(aes_key, v, PREFIX) for v in values]
    rows = b.compute_many(values, PREFIX, 32, contexts=keys)
    assert rows == [cellar.blind_index(aes_key, v, PREFIX + k, 32) for v, k in zip(values, keys)]
    assert b.compute_many([]) == []
    with pytest.raises(ValueError):
        b.compute(b"x", length=3)
    with pytest.raises(cellar.InvalidArgumentError):
        BlindIndexKey(aes_key, version=99)
    with pytest.raises(cellar.InvalidKeyError):
        BlindIndexKey(xts_key)
    b.close()
    assert "closed" in repr(b)
