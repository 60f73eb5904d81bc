"""Python for tables (issue 20, items 1 and 11): numpy and pandas values are refused or encoded
explicitly, never encrypted as their raw memory; missing values; contexts; enum names."""
import math
import os

import numpy as np
import pytest

import cellar
from cellar import CellCipher, CellMode, Key

CTX = b"tenant=1/customers/email"


@pytest.fixture
def det(aes_key):
    return CellCipher(aes_key, CellMode.DETERMINISTIC)


def test_numpy_strings_were_encrypted_as_utf32(det):
    """The reproducer: a numpy string array holds UCS-4, so "bob" used to be encrypted as 12
    bytes and a deterministic lookup by the UTF-8 value silently missed."""
    arr = np.array(["bob", "alice"])
    assert memoryview(arr[0]).nbytes == 12  # what used to be encrypted
    with pytest.raises(TypeError, match=r"value 0 is a numpy.str_.*encoding='utf-8'"):
        det.encrypt_many(arr, CTX)
    with pytest.raises(TypeError, match="numpy.str_"):
        det.encrypt(arr[0], CTX)
    # explicit encoding: the same ciphertext a lookup by the UTF-8 value computes
    cts = det.encrypt_many(arr, CTX, encoding="utf-8")
    assert cts == [det.encrypt(b"bob", CTX), det.encrypt(b"alice", CTX)]
    assert det.decrypt(cts[0], CTX) == b"bob"  # 3 bytes, not 12
    assert det.decrypt_many(cts, CTX, encoding="utf-8") == ["bob", "alice"]
    assert det.encrypt(np.str_("bob"), CTX, encoding="utf-8") == cts[0]
    assert det.decrypt(cts[0], CTX, encoding="utf-8") == "bob"


def test_numpy_integer_arrays_refused(det, aes_key):
    with pytest.raises(TypeError, match="int64|int32"):  # scalars: no len(), no buffer misuse
        det.encrypt_many(np.array([1, 2, 3]), CTX)
    with pytest.raises(TypeError, match=r"numpy ndarray \(dtype int64\).*8 bytes wide"):
        det.encrypt_many(np.array([[1, 2], [3, 4]], dtype=np.int64), CTX)
    with pytest.raises(TypeError, match="8 bytes wide"):
        det.encrypt(np.arange(3, dtype=np.int64), CTX)
    with pytest.raises(TypeError, match="4 bytes wide"):
        det.encrypt(np.float32(1.5), CTX)
    with pytest.raises(TypeError, match="numpy.str_"):
        cellar.blind_index(aes_key, np.str_("bob"), CTX)
    assert (cellar.blind_index(aes_key, np.str_("bob"), CTX, encoding="utf-8")
            == cellar.blind_index(aes_key, b"bob", CTX))
    # bytes-typed numpy data is bytes: accepted as it is
    u8 = np.frombuffer(b"bob", dtype=np.uint8)
    assert det.encrypt(u8, CTX) == det.encrypt(b"bob", CTX)
    assert det.encrypt_many(np.array([b"bob", b"al"]), CTX) == det.encrypt_many([b"bob", b"al"], CTX)
    two_d = np.frombuffer(b"abcdef", dtype=np.uint8).reshape(2, 3)  # len() 2, 6 bytes
    assert det.encrypt_many([two_d], CTX) == [det.encrypt(b"abcdef", CTX)]


def test_page_run_keeps_good_pages():
    """Issue 20 item 3: a readahead with bad pages keeps its good pages and names every bad one."""
    ps, n = 4096, 16
    with Key.generate() as k, cellar.PageCipher(k, cellar.PageMode.GCM, file_id=3) as pc:
        plain = bytearray(os.urandom(ps * n))
        for i in range(n):
            plain[i * ps + ps - 48:(i + 1) * ps] = bytes(48)
        run = bytearray(plain)
        pc.encrypt_pages(10, run, ps)
        good = bytearray(run)
        assert pc.decrypt_pages_each(10, good, ps) == [] and good == plain
        run[5 * ps + 1] ^= 1
        run[12 * ps:13 * ps] = bytes(ps)
        for threads in (1, 2):
            buf = bytearray(run)
            assert pc.decrypt_pages_each(10, buf, ps, threads=threads) == [5, 12]
            for i in range(n):
                page = buf[i * ps:(i + 1) * ps]
                assert page == (bytes(ps) if i in (5, 12) else plain[i * ps:(i + 1) * ps])
        assert cellar.last_operation_approved() is None  # the run as a whole failed
        with pytest.raises(ValueError):
            pc.decrypt_pages_each(10, bytearray(100), ps)


def test_lock_stops_live_ciphers_and_repr_shows_it():
    """Issue 20 item 4: keys from a keyring and ciphers made from them stop at lock."""
    tenant = Key.generate()
    kr = cellar.Keyring.create(tenant)
    dk = Key.generate()
    ck, _ = kr.unwrap(kr.wrap(dk))
    cells = CellCipher(ck)
    pages = cellar.PageCipher(ck, cellar.PageMode.GCM, file_id=1)
    ct = cells.encrypt(b"alice", CTX)
    kr.lock()
    assert "locked" in repr(kr) and "locked" in repr(ck) and "locked" in repr(cells)
    assert "locked" in repr(pages) and "locked" not in repr(dk)
    assert ck.locked and not dk.locked
    with pytest.raises(cellar.TenantLockedError):
        cells.decrypt(ct, CTX)
    with pytest.raises(cellar.TenantLockedError):
        cells.encrypt_many([b"a", b"b"], CTX)
    with pytest.raises(cellar.TenantLockedError):
        pages.encrypt(0, bytes(4096))
    kr.unlock(tenant)
    assert "locked" not in repr(kr) + repr(cells)
    assert cells.decrypt(ct, CTX) == b"alice"
    # no way back: refused unless forced
    gen = cellar.Keyring.create()
    with pytest.raises(cellar.InvalidArgumentError, match="export the keyring first"):
        gen.lock()
    assert not gen.locked
    gen.lock(force=True)
    assert gen.locked


def test_table_ergonomics(det):
    """Issue 20 item 11: missing values, DataFrames, context=None, enum names, public names."""
    import pandas as pd

    col = pd.Series([b"a@x", None, float("nan"), pd.NA, b"b@x"], dtype=object)
    with pytest.raises(TypeError, match=r"value 1 is missing.*missing='keep'"):
        det.encrypt_many(col, CTX)
    cts = det.encrypt_many(col, CTX, missing="keep")
    assert cts[1] is None and cts[2] is None and cts[3] is None
    assert cts[0] == det.encrypt(b"a@x", CTX) and cts[4] == det.encrypt(b"b@x", CTX)
    assert det.decrypt_many(cts, CTX, missing="keep") == [b"a@x", None, None, None, b"b@x"]
    with pytest.raises(TypeError, match="value 1 is missing"):
        det.decrypt_many(cts, CTX)
    names = pd.Series(["ann", None, "bo"])
    back = det.decrypt_many(det.encrypt_many(names, CTX, encoding="utf-8", missing="keep"), CTX,
                            encoding="utf-8", missing="keep")
    assert back == ["ann", None, "bo"]
    with pytest.raises(TypeError, match=r"value 0 is a str.*encoding='utf-8'"):
        det.encrypt_many(pd.Series(["ann"]), CTX)
    with pytest.raises(TypeError, match="DataFrame holds several columns"):
        det.encrypt_many(pd.DataFrame({"email": [b"a"]}), CTX)
    with pytest.raises(ValueError, match="missing must be"):
        det.encrypt_many([b"a"], CTX, missing="drop")
    for call in (lambda: det.encrypt(b"a", None), lambda: det.encrypt_many([b"a"], None),
                 lambda: det.decrypt(det.encrypt(b"a"), None)):
        with pytest.raises(TypeError, match="context=None"):
            call()
    assert str(CellMode.DETERMINISTIC) == "CellMode.DETERMINISTIC"
    assert str(cellar.PageMode.GCM) == "PageMode.GCM" and str(cellar.KeyType.AES256) == "KeyType.AES256"
    assert f"{CellMode.RANDOMIZED}" == "CellMode.RANDOMIZED" and CellMode.RANDOMIZED == 1
    stray = [n for n in dir(cellar) if not n.startswith("_") and n not in cellar.__all__
             and not isinstance(getattr(cellar, n), type(cellar))]  # submodules are fine
    assert stray == []
