"""Page ciphers: XTS checked against `cryptography`, GCM trailers, in-place calls on writable
buffers only, runs of pages (also threaded), failures leave zeros."""
import mmap
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import cellar
from cellar import Key, KeyType, PageCipher, PageMode
from pkg_helpers import approved, raw_of, sp800_108_kdf

PS = 8192


def xts_ref(raw, page_no, file_id, data, decrypt=False):
    tweak = struct.pack("<QQ", page_no, file_id)
    c = Cipher(algorithms.AES(raw), modes.XTS(tweak))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_xts_matches_cryptography(xts_key, wrap):
    pc = PageCipher(xts_key, PageMode.XTS, file_id=9)
    page = os.urandom(PS)
    ct = pc.encrypt(42, wrap(page))
    approved()
    assert isinstance(ct, bytes) and ct == xts_ref(raw_of(xts_key), 42, 9, page)
    assert pc.decrypt(42, wrap(ct)) == page
    approved()
    assert pc.decrypt(43, ct) != page  # XTS has no integrity: another page number is garbage
    pc.close()


def test_in_place_and_read_only_refusal(xts_key):
    pc = PageCipher(xts_key, PageMode.XTS)
    page = os.urandom(PS)
    buf = bytearray(page)
    pc.encrypt_into(3, buf)
    approved()
    assert bytes(buf) == pc.encrypt(3, page)
    mv = memoryview(buf)
    pc.decrypt_into(3, mv)
    assert bytes(buf) == page
    for ro in (page, memoryview(page), memoryview(bytearray(page)).toreadonly()):
        for call in (pc.encrypt_into, pc.decrypt_into):
            with pytest.raises(TypeError, match="writable|read-only"):
                call(0, ro)
        with pytest.raises(TypeError, match="writable|read-only"):
            pc.encrypt_pages(0, ro, PS)
    with pytest.raises(TypeError):
        pc.encrypt(0, "text page")


def test_in_place_on_mmap(xts_key, tmp_path):
    pc = PageCipher(xts_key, PageMode.XTS, file_id=1)
    f = tmp_path / "data.db"
    plain = os.urandom(4 * PS)
    f.write_bytes(plain)
    with open(f, "r+b") as fh, mmap.mmap(fh.fileno(), 0) as m:
        pc.encrypt_pages(100, m, PS)
    data = f.read_bytes()
    assert data[PS:2 * PS] == xts_ref(raw_of(xts_key), 101, 1, plain[PS:2 * PS])
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        with pytest.raises(TypeError):
            pc.decrypt_pages(100, m, PS)
        # Read-only buffers are fine as inputs (no copy needed).
        assert pc.decrypt(101, memoryview(m)[PS:2 * PS]) == plain[PS:2 * PS]


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_runs_of_pages_equal_single_pages(xts_key, threads):
    pc = PageCipher(xts_key, PageMode.XTS, file_id=77)
    plain = os.urandom(16 * PS)
    buf = bytearray(plain)
    pc.encrypt_pages(1000, buf, PS, threads=threads)
    approved()
    for i in range(16):
        assert buf[i * PS:(i + 1) * PS] == pc.encrypt(1000 + i, plain[i * PS:(i + 1) * PS])
    pc.decrypt_pages(1000, memoryview(buf), PS, threads=threads)
    approved()
    assert buf == plain


def test_page_argument_errors(xts_key, aes_key):
    pc = PageCipher(xts_key, PageMode.XTS)
    with pytest.raises(ValueError, match="multiple of page_size"):
        pc.encrypt_pages(0, bytearray(PS + 16), PS)
    with pytest.raises(cellar.InvalidArgumentError, match="page size 1000"):
        pc.encrypt_pages(0, bytearray(1000), 1000)
    with pytest.raises(ValueError, match="threads"):
        pc.encrypt_pages(0, bytearray(PS), PS, threads=65)
    with pytest.raises(ValueError, match="2\\*\\*64"):
        pc.encrypt_pages((1 << 64) - 1, bytearray(2 * PS), PS)
    with pytest.raises(cellar.InvalidArgumentError) as e:
        pc.encrypt(0, bytes(100))
    assert isinstance(e.value, ValueError) and e.value.status == 2 and "page size 100" in str(e.value)
    with pytest.raises(cellar.InvalidArgumentError):
        pc.encrypt(0, bytes(PS + 8))  # not a multiple of 16
    with pytest.raises(ValueError):
        pc.encrypt(-1, bytes(PS))
    with pytest.raises(cellar.InvalidKeyError):
        PageCipher(aes_key, PageMode.XTS)
    with pytest.raises(cellar.InvalidKeyError):
        PageCipher(xts_key, PageMode.GCM)
    with pytest.raises(ValueError, match="page mode"):
        PageCipher(xts_key, 7)
    pc.encrypt_pages(0, bytearray(), PS)  # zero pages: nothing to do


def test_gcm_trailer_format(aes_key):
    pc = PageCipher(aes_key, PageMode.GCM, file_id=5, key_version=3)
    assert pc.reserved_bytes == 48 and pc.payload_size(PS) == PS - 48
    payload = os.urandom(PS - 48)
    ct = pc.encrypt(11, payload + os.urandom(48))  # the trailer bytes of the input are ignored
    approved()
    t = ct[-48:]
    assert t[0] == 2 and t[1:4] == b"\0\0\0" and struct.unpack("<I", t[4:8])[0] == 3
    assert PageCipher.key_version_of(ct) == 3
    # Independent check of the documented construction.
    salt, nonce, tag = t[8:20], t[20:32], t[32:48]
    sub = sp800_108_kdf(raw_of(aes_key), b"cellar page v2", salt + struct.pack("<Q", 5), 32)
    aad = t[:20] + struct.pack("<Q", 11)
    assert AESGCM(sub).decrypt(nonce, ct[:-48] + tag, aad) == payload
    assert pc.decrypt(11, ct) == payload + bytes(48)
    approved()


def test_gcm_tamper_move_and_version(aes_key):
    pc = PageCipher(aes_key, PageMode.GCM, file_id=5, key_version=3)
    ct = pc.encrypt(11, os.urandom(PS))
    bad = bytearray(ct)
    bad[100] ^= 1
    with pytest.raises(cellar.AuthenticationError):
        pc.decrypt_into(11, bad)
    assert bad == bytes(PS)  # nothing on failure
    assert cellar.last_operation_approved() is None
    with pytest.raises(cellar.AuthenticationError):
        pc.decrypt(12, ct)  # moved
    with pytest.raises(cellar.AuthenticationError):
        PageCipher(aes_key, PageMode.GCM, file_id=6, key_version=3).decrypt(11, ct)
    with pytest.raises(cellar.AuthenticationError, match="version"):
        PageCipher(aes_key, PageMode.GCM, file_id=5, key_version=4).decrypt(11, ct)


def test_gcm_run_failure_names_the_page(aes_key):
    pc = PageCipher(aes_key, PageMode.GCM)
    buf = bytearray(os.urandom(4 * PS))
    pc.encrypt_pages(0, buf, PS, threads=2)
    buf[2 * PS + 7] ^= 0xFF
    with pytest.raises(cellar.AuthenticationError) as e:
        pc.decrypt_pages(0, buf, PS)
    assert "page index 2" in e.value.detail
    assert buf == bytes(4 * PS)


def test_zero_pages(aes_key, xts_key):
    zero = bytes(PS)
    with pytest.raises(cellar.AuthenticationError):
        PageCipher(aes_key, PageMode.GCM).decrypt(0, zero)
    assert PageCipher(aes_key, PageMode.GCM, zero_is_empty=True).decrypt(0, zero) == zero
    assert PageCipher(xts_key, PageMode.XTS, zero_is_empty=True).decrypt(0, zero) == zero
    with pytest.raises(cellar.UnsupportedFormatError) as e:
        PageCipher.key_version_of(zero)
    assert e.value.status == 6


@pytest.mark.parametrize("mode", [PageMode.GCM, PageMode.XTS])
def test_written_mark(aes_key, xts_key, mode):
    """Issue 20 item 7: below the written mark a zeroed page is an error, not an empty page."""
    key = aes_key if mode == PageMode.GCM else xts_key
    zero = bytes(PS)
    pc = PageCipher(key, mode, file_id=3, zero_is_empty=True)
    assert pc.written_mark == 0
    assert pc.decrypt(5, zero) == zero  # mark 0: the old behaviour
    assert pc.set_written_mark(6) == 6
    assert pc.set_written_mark(2) == 6  # never lowered
    with pytest.raises(cellar.AuthenticationError) as e:
        pc.decrypt(5, zero)
    assert "below the written mark" in e.value.detail
    assert pc.decrypt(6, zero) == zero
    approved()
    real = pc.encrypt(0, os.urandom(PS))
    assert len(pc.decrypt(0, real)) == PS  # real pages are unaffected
    with pytest.raises(cellar.InvalidArgumentError):
        PageCipher(key, mode).set_written_mark(1)
    with pytest.raises(ValueError):
        pc.set_written_mark(-1)


def test_cipher_outlives_its_key():
    k = Key.generate(KeyType.AES256_XTS)
    pc = PageCipher(k, PageMode.XTS)
    page = os.urandom(PS)
    ct = pc.encrypt(1, page)
    k.close()
    assert pc.decrypt(1, ct) == page
    assert "XTS" in repr(pc)
    pc.close()
    with pytest.raises(ValueError, match="closed PageCipher"):
        pc.encrypt(1, page)
