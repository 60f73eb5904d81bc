"""Page ciphers through ctypes, checked against an independent implementation (`cryptography`):
XTS pages equal pyca's AES-XTS with the documented tweak and each side decrypts the other's;
a GCM page opens with pyca's HKDF + AESGCM from the documented trailer layout alone, and a
page built by pyca the same way opens in Cellar."""
import ctypes as C
import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

lib = C.CDLL(os.environ["CELLAR_LIBRARY"])
u8p = C.POINTER(C.c_uint8)
lib.cellar_key_import.argtypes = [C.c_uint32, C.c_char_p, C.c_size_t, C.POINTER(C.c_void_p)]
lib.cellar_key_free.argtypes = [C.c_void_p]
lib.cellar_page_cipher_new.argtypes = [C.c_void_p, C.c_uint32, C.c_uint64, C.c_uint32, C.c_uint32, C.POINTER(C.c_void_p)]
for f in ("cellar_page_encrypt", "cellar_page_decrypt"):
    getattr(lib, f).argtypes = [C.c_void_p, C.c_uint64, C.c_void_p, C.c_void_p, C.c_size_t]
for f in ("cellar_page_encrypt_pages", "cellar_page_decrypt_pages"):
    getattr(lib, f).argtypes = [C.c_void_p, C.c_uint64, C.c_void_p, C.c_void_p, C.c_size_t, C.c_size_t, C.c_uint32]
lib.cellar_page_key_version.argtypes = [C.c_void_p, C.c_size_t, C.POINTER(C.c_uint32)]
lib.cellar_page_reserved_bytes.argtypes = [C.c_uint32]
lib.cellar_page_reserved_bytes.restype = C.c_size_t
lib.cellar_page_cipher_free.argtypes = [C.c_void_p]
lib.cellar_last_operation_approved.restype = C.c_int32
lib.cellar_last_error.argtypes = [C.c_char_p, C.c_size_t]
lib.cellar_last_error.restype = C.c_size_t

KEY_AES256, KEY_XTS = 1, 2
PAGE_XTS, PAGE_GCM, ZERO_IS_EMPTY = 1, 2, 1
OK, AUTH = 0, 4


def last_error():
    buf = C.create_string_buffer(512)
    lib.cellar_last_error(buf, 512)
    return buf.value.decode()


def cipher(material, mode, file_id, key_version=1, flags=0):
    k = C.c_void_p()
    kt = KEY_XTS if mode == PAGE_XTS else KEY_AES256
    assert lib.cellar_key_import(kt, material, len(material), C.byref(k)) == OK
    c = C.c_void_p()
    assert lib.cellar_page_cipher_new(k, mode, file_id, key_version, flags, C.byref(c)) == OK
    lib.cellar_key_free(k)
    return c


def call(fn, c, page_no, data):
    inp = C.create_string_buffer(bytes(data), len(data))
    out = C.create_string_buffer(len(data))
    st = fn(c, page_no, inp, out, len(data))
    return st, out.raw


def xts_key():
    while True:
        k = os.urandom(64)
        if k[:32] != k[32:]:
            return k


def tweak(page_no, file_id):
    return struct.pack("<QQ", page_no, file_id)


@pytest.mark.parametrize("size", [512, 4096, 8192, 16384, 65536])
def test_xts_equals_pyca_and_cross_decrypts(size):
    key = xts_key()
    file_id, page_no = 0x1122334455667788, 0xFEDCBA9876543210
    c = cipher(key, PAGE_XTS, file_id)
    pt = os.urandom(size)
    st, ct = call(lib.cellar_page_encrypt, c, page_no, pt)
    assert st == OK and lib.cellar_last_operation_approved() == 1
    pyca = Cipher(algorithms.AES(key), modes.XTS(tweak(page_no, file_id)))
    enc = pyca.encryptor()
    theirs = enc.update(pt) + enc.finalize()
    assert ct == theirs
    # Cellar decrypts pyca's page, and pyca decrypts Cellar's.
    other = os.urandom(size)
    enc = pyca.encryptor()
    their_ct = enc.update(other) + enc.finalize()
    st, back = call(lib.cellar_page_decrypt, c, page_no, their_ct)
    assert st == OK and back == other
    dec = pyca.decryptor()
    assert dec.update(ct) + dec.finalize() == pt
    lib.cellar_page_cipher_free(c)


def test_xts_batch_equals_pyca_per_page():
    key, file_id, first, ps, n = xts_key(), 5, 1000, 1024, 9
    c = cipher(key, PAGE_XTS, file_id)
    pt = os.urandom(ps * n)
    for threads in (1, 3):
        inp = C.create_string_buffer(pt, len(pt))
        out = C.create_string_buffer(len(pt))
        assert lib.cellar_page_encrypt_pages(c, first, inp, out, ps, n, threads) == OK
        for i in range(n):
            enc = Cipher(algorithms.AES(key), modes.XTS(tweak(first + i, file_id))).encryptor()
            assert out.raw[i * ps:(i + 1) * ps] == enc.update(pt[i * ps:(i + 1) * ps]) + enc.finalize()
    lib.cellar_page_cipher_free(c)


def kdf(key, label, context, n=32):
    """SP 800-108 counter-mode KDF, HMAC-SHA-256 (docs/FORMATS.md section 0), with `hmac`."""
    fixed = label + b"\0" + context + struct.pack(">I", 8 * n)
    out, i = b"", 1
    while len(out) < n:
        out += hmac.new(key, struct.pack(">I", i) + fixed, hashlib.sha256).digest()
        i += 1
    return out[:n]


def subkey(material, salt, file_id, fmt=2):
    """The page subkey of trailer format 2 (SP 800-108) or 1 (HKDF, pages before format v2)."""
    if fmt == 2:
        return kdf(material, b"cellar page v2", salt + struct.pack("<Q", file_id))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=b"cellar page v1" + struct.pack("<Q", file_id)).derive(material)


@pytest.mark.parametrize("size", [512, 8192, 65536])
def test_gcm_page_opens_with_pyca_from_the_documented_format(size):
    material, file_id, page_no, kv = os.urandom(32), 0xABCDEF, 77, 0x01020304
    c = cipher(material, PAGE_GCM, file_id, kv)
    pt = os.urandom(size)
    st, page = call(lib.cellar_page_encrypt, c, page_no, pt)
    assert st == OK and lib.cellar_last_operation_approved() == 1
    p = size
    t = page[p - 48:]
    assert t[0] == 2 and t[1:4] == b"\0\0\0"
    assert struct.unpack("<I", t[4:8])[0] == kv
    salt, nonce, tag = t[8:20], t[20:32], t[32:48]
    aad = t[:20] + struct.pack("<Q", page_no)
    payload = AESGCM(subkey(material, salt, file_id)).decrypt(nonce, page[:p - 48] + tag, aad)
    assert payload == pt[:p - 48]
    # The key version is readable without a key.
    v = C.c_uint32()
    assert lib.cellar_page_key_version(C.create_string_buffer(page, p), p, C.byref(v)) == OK and v.value == kv
    # A page sealed by pyca in the documented format (2, and 1 as written before format v2)
    # opens in Cellar; a format-1 page reports indicator 0 (HKDF subkey).
    for fmt in (2, 1):
        salt2, nonce2, mine = os.urandom(12), os.urandom(12), os.urandom(p - 48)
        header = bytes([fmt, 0, 0, 0]) + struct.pack("<I", kv) + salt2
        sealed = AESGCM(subkey(material, salt2, file_id, fmt)).encrypt(nonce2, mine, header + struct.pack("<Q", page_no))
        forged = sealed[:-16] + header + nonce2 + sealed[-16:]
        st, back = call(lib.cellar_page_decrypt, c, page_no, forged)
        assert st == OK and back == mine + bytes(48)
        assert lib.cellar_last_operation_approved() == (1 if fmt == 2 else 0)
    # Moved, tampered: authentication failure and zeros.
    st, back = call(lib.cellar_page_decrypt, c, page_no + 1, page)
    assert st == AUTH and back == bytes(p)
    bad = bytearray(page)
    bad[p - 45] ^= 1
    st, back = call(lib.cellar_page_decrypt, c, page_no, bad)
    assert st == AUTH and back == bytes(p)
    lib.cellar_page_cipher_free(c)


def test_gcm_batch_failure_names_page_and_zero_flag():
    material, ps, n = os.urandom(32), 512, 5
    c = cipher(material, PAGE_GCM, 3, 1, ZERO_IS_EMPTY)
    run = C.create_string_buffer(os.urandom(ps * n), ps * n)
    assert lib.cellar_page_encrypt_pages(c, 10, run, run, ps, n, 2) == OK
    raw = bytearray(run.raw)
    raw[3 * ps] ^= 0xFF
    run = C.create_string_buffer(bytes(raw), ps * n)
    out = C.create_string_buffer(b"\x55" * (ps * n), ps * n)
    assert lib.cellar_page_decrypt_pages(c, 10, run, out, ps, n, 2) == AUTH
    assert out.raw == bytes(ps * n)
    assert "page index 3" in last_error()
    st, back = call(lib.cellar_page_decrypt, c, 0, bytes(ps))
    assert st == OK and back == bytes(ps)
    assert lib.cellar_page_reserved_bytes(PAGE_XTS) == 0
    assert lib.cellar_page_reserved_bytes(PAGE_GCM) == 48
    assert lib.cellar_page_reserved_bytes(9) == C.c_size_t(-1).value
    lib.cellar_page_cipher_free(c)
