"""Key formats checked against an independent implementation (Python's hashlib/hmac and
cryptography's AES-KWP and HKDF), plus a ctypes smoke test of every key entry point."""
import ctypes
import hashlib
import hmac
import os
import struct

import pytest
from ctypes import byref, c_size_t, c_uint32, c_uint64, c_void_p
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

AES256, XTS = 1, 2
LEN = {AES256: 32, XTS: 64}
OK, NULL_POINTER, INVALID_ARGUMENT, BUFFER_TOO_SMALL, AUTH_FAILED, INVALID_KEY = 0, 1, 2, 3, 4, 5
PW = b"correct horse battery staple"
IT = 100_000


def key_id(material):
    return hmac.new(material, b"cellar key id v1", hashlib.sha256).digest()[:16]


def inner_record(key_type, version, material):
    return bytes([key_type]) + struct.pack(">I", version) + key_id(material) + material


class Keys:
    """Creates key handles through the C API and frees them at the end of a test."""

    def __init__(self, lib, check):
        self.lib, self.check, self.handles = lib, check, []

    def own(self, h):
        self.handles.append(h)
        return h

    def generate(self, key_type):
        h = c_void_p()
        self.check(self.lib.cellar_key_generate(key_type, byref(h)))
        return self.own(h)

    def import_(self, key_type, material):
        h = c_void_p()
        self.check(self.lib.cellar_key_import(key_type, material, len(material), byref(h)))
        return self.own(h)

    def raw(self, h):
        out, n = ctypes.create_string_buffer(64), c_size_t()
        self.check(self.lib.cellar_key_dangerous_export_raw(h, out, 64, byref(n)))
        return out.raw[: n.value]

    def id(self, h):
        out = ctypes.create_string_buffer(16)
        self.check(self.lib.cellar_key_id(h, out))
        return out.raw

    def wrap(self, kek, key, version):
        out, n = ctypes.create_string_buffer(200), c_size_t()
        self.check(self.lib.cellar_key_wrap(kek, key, version, out, 200, byref(n)))
        return out.raw[: n.value]

    def unwrap(self, kek, blob):
        h, v = c_void_p(), c_uint32()
        st = self.lib.cellar_key_unwrap(kek, blob, len(blob), byref(h), byref(v))
        if st == OK:
            self.own(h)
        return st, h, v.value

    def export_password(self, key, version, password=PW, iterations=IT):
        out, n = ctypes.create_string_buffer(200), c_size_t()
        st = self.lib.cellar_key_export_password(key, version, password, len(password), iterations, out, 200, byref(n))
        return st, out.raw[: n.value]

    def import_password(self, blob, password=PW):
        h, v = c_void_p(), c_uint32()
        st = self.lib.cellar_key_import_password(blob, len(blob), password, len(password), byref(h), byref(v))
        if st == OK:
            self.own(h)
        return st, h, v.value

    def free_all(self):
        for h in self.handles:
            self.lib.cellar_key_free(h)


@pytest.fixture
def keys(lib, check):
    k = Keys(lib, check)
    yield k
    k.free_all()


def approved(lib):
    return lib.cellar_last_operation_approved() == 1


def test_module_status(lib):
    assert lib.cellar_abi_version() == 0x0001_0002
    assert b"AWS-LC FIPS" in lib.cellar_fips_module_version()
    assert lib.cellar_version().startswith(b"cellar ")
    assert lib.cellar_fips_mode() == 1
    assert lib.cellar_fips_self_test_passed() == 1
    assert lib.cellar_init(1) == OK
    assert lib.cellar_status_name(4) == b"CELLAR_ERR_AUTHENTICATION_FAILED"
    assert lib.cellar_status_name(-7) == b"CELLAR_ERR_UNKNOWN"


@pytest.mark.parametrize("key_type", [AES256, XTS])
def test_key_id_is_hmac_of_label(lib, keys, key_type):
    material = os.urandom(LEN[key_type])
    h = keys.import_(key_type, material)
    assert lib.cellar_last_operation_approved() == 0  # raw import: not an approved scheme (SPEC 10)
    assert keys.id(h) == key_id(material)
    assert keys.raw(h) == material
    t = c_uint32()
    assert lib.cellar_key_type(h, byref(t)) == OK and t.value == key_type
    g = keys.generate(key_type)
    assert approved(lib)
    assert keys.id(g) == key_id(keys.raw(g))
    assert lib.cellar_last_operation_approved() == 0  # raw export: not an approved service


@pytest.mark.parametrize("child_type", [AES256, XTS])
def test_derive_is_documented_kdf(lib, keys, child_type):
    """cellar_key_derive is derive v2 (SP 800-108, checked with `hmac`), cellar_key_derive_v1
    the HKDF derivation of keys derived before format v2 (indicator 0)."""
    parent_material = os.urandom(32)
    parent = keys.import_(AES256, parent_material)
    label = b"tenant42/orders.email"
    child = c_void_p()
    assert lib.cellar_key_derive(parent, child_type, label, len(label), byref(child)) == OK
    keys.own(child)
    assert approved(lib)
    n = LEN[child_type]
    fixed = b"cellar derive v2\0" + bytes([child_type]) + label + struct.pack(">I", 8 * n)
    blocks = b"".join(hmac.new(parent_material, struct.pack(">I", i) + fixed, hashlib.sha256).digest() for i in (1, 2))
    assert keys.raw(child) == blocks[:n]
    assert keys.id(child) == key_id(blocks[:n])
    child = c_void_p()
    lib.cellar_key_derive_v1.argtypes = lib.cellar_key_derive.argtypes
    lib.cellar_key_derive_v1.restype = lib.cellar_key_derive.restype
    assert lib.cellar_key_derive_v1(parent, child_type, label, len(label), byref(child)) == OK
    keys.own(child)
    assert lib.cellar_last_operation_approved() == 0
    info = b"cellar derive v1" + bytes([child_type]) + label
    expected = HKDF(hashes.SHA256(), LEN[child_type], b"\0" * 32, info).derive(parent_material)
    # RFC 5869's absent salt is the same thing.
    assert expected == HKDF(hashes.SHA256(), LEN[child_type], None, info).derive(parent_material)
    assert keys.raw(child) == expected
    assert keys.id(child) == key_id(expected)


@pytest.mark.parametrize("key_type", [AES256, XTS])
def test_wrapped_blob_format(lib, keys, key_type):
    kek_material, material = os.urandom(32), os.urandom(LEN[key_type])
    kek, key = keys.import_(AES256, kek_material), keys.import_(key_type, material)
    blob = keys.wrap(kek, key, 0xA1B2C3D4)
    assert approved(lib)
    assert len(blob) == lib.cellar_key_wrapped_len(key_type) == {AES256: 82, XTS: 114}[key_type]
    assert blob[:2] == b"W\x01"
    assert blob[2:18] == key_id(kek_material)
    inner = aes_key_unwrap_with_padding(kek_material, blob[18:])
    assert inner == inner_record(key_type, 0xA1B2C3D4, material)
    # KWP is deterministic: the whole blob is reproducible from the documented format.
    assert blob == b"W\x01" + key_id(kek_material) + aes_key_wrap_with_padding(kek_material, inner)


def test_blob_made_in_python_unwraps(lib, keys):
    kek_material, material = os.urandom(32), os.urandom(64)
    kek = keys.import_(AES256, kek_material)
    blob = b"W\x01" + key_id(kek_material) + aes_key_wrap_with_padding(kek_material, inner_record(XTS, 77, material))
    st, h, version = keys.unwrap(kek, blob)
    assert st == OK and version == 77
    assert approved(lib)
    assert keys.raw(h) == material

    # Well-wrapped but inconsistent records are one authentication error.
    bad_records = [
        bytes([XTS]) + struct.pack(">I", 1) + b"\0" * 16 + material,             # wrong inner key id
        bytes([3]) + struct.pack(">I", 1) + key_id(material) + material,        # unknown type
        inner_record(XTS, 1, material)[:-1],                                    # short material
        inner_record(AES256, 1, material),                                      # type/length mismatch
        inner_record(XTS, 1, material[:32] * 2),                                # equal XTS halves
    ]
    for record in bad_records:
        blob = b"W\x01" + key_id(kek_material) + aes_key_wrap_with_padding(kek_material, record)
        st, h, _ = keys.unwrap(kek, blob)
        assert st == AUTH_FAILED and not h.value
        assert lib.cellar_last_operation_approved() == -1


def test_wrap_tamper_is_refused(lib, keys, last_error):
    kek, key = keys.generate(AES256), keys.generate(AES256)
    blob = keys.wrap(kek, key, 1)
    variants = [blob[:i] + bytes([blob[i] ^ 0x40]) + blob[i + 1:] for i in range(len(blob))]
    variants += [blob[:n] for n in range(len(blob))] + [blob + b"\0", blob + b"\0" * 8]
    for v in variants:
        st, h, _ = keys.unwrap(kek, v)
        assert st == AUTH_FAILED and not h.value
        assert "authentication failed" in last_error()


def test_password_file_format(lib, keys):
    material = os.urandom(32)
    key = keys.import_(AES256, material)
    st, blob = keys.export_password(key, 5, PW, 123_457)
    assert st == OK and approved(lib)
    assert len(blob) == lib.cellar_key_password_file_len(AES256) == 86
    assert blob[:2] == b"P\x01"
    assert struct.unpack(">I", blob[2:6])[0] == 123_457
    salt = blob[6:22]
    kek = hashlib.pbkdf2_hmac("sha256", PW, salt, 123_457, 32)
    assert aes_key_unwrap_with_padding(kek, blob[22:]) == inner_record(AES256, 5, material)
    with pytest.raises(InvalidUnwrap):
        aes_key_unwrap_with_padding(hashlib.pbkdf2_hmac("sha256", PW + b"!", salt, 123_457, 32), blob[22:])
    # Salts are fresh per export.
    st, again = keys.export_password(key, 5, PW, 123_457)
    assert again[6:22] != salt


def test_password_file_made_in_python_imports(lib, keys):
    material, salt = os.urandom(64), os.urandom(16)
    kek = hashlib.pbkdf2_hmac("sha256", PW, salt, IT, 32)
    blob = b"P\x01" + struct.pack(">I", IT) + salt + aes_key_wrap_with_padding(kek, inner_record(XTS, 9, material))
    st, h, version = keys.import_password(blob)
    assert st == OK and version == 9 and approved(lib)
    assert keys.raw(h) == material
    st, h, _ = keys.import_password(blob, PW + b"x")
    assert st == AUTH_FAILED and not h.value


def test_password_rules(lib, keys, last_error):
    key = keys.generate(AES256)
    st, _ = keys.export_password(key, 1, b"x" * 13)
    assert st == INVALID_ARGUMENT and "password must be at least 14 bytes" in last_error()
    assert lib.cellar_last_operation_approved() == -1
    st, _ = keys.export_password(key, 1, PW, 99_999)
    assert st == INVALID_ARGUMENT and "iterations must be between 100000 and 10000000" in last_error()
    st, blob = keys.export_password(key, 1, b"y" * 14)
    assert st == OK and approved(lib)
    st, _, _ = keys.import_password(blob, b"y" * 13)
    assert st == INVALID_ARGUMENT
    st, h, _ = keys.import_password(blob, b"y" * 14)
    assert st == OK and keys.id(h) == keys.id(key)


def test_password_file_tamper_sample(lib, keys):
    key = keys.generate(AES256)
    st, blob = keys.export_password(key, 1)
    assert st == OK
    for i in (0, 1, 2, 5, 6, 21, 22, 50, 85):
        st, h, _ = keys.import_password(blob[:i] + bytes([blob[i] ^ 1]) + blob[i + 1:])
        assert st == AUTH_FAILED and not h.value
    for v in (blob[:-1], blob[:-8], blob + b"\0", blob + b"\0" * 8):
        st, h, _ = keys.import_password(v)
        assert st == AUTH_FAILED and not h.value


def test_argument_errors(lib, keys, last_error):
    h = c_void_p()
    assert lib.cellar_key_generate(AES256, None) == NULL_POINTER and "out_key" in last_error()
    assert lib.cellar_key_generate(9, byref(h)) == INVALID_ARGUMENT and "unknown key type" in last_error()
    assert lib.cellar_key_import(AES256, b"\0" * 31, 31, byref(h)) == INVALID_KEY
    assert lib.cellar_key_import(XTS, b"\1" * 64, 64, byref(h)) == INVALID_KEY and "halves" in last_error()
    assert not h.value
    kek, xts = keys.generate(AES256), keys.generate(XTS)
    n = c_size_t()
    assert lib.cellar_key_wrap(kek, xts, 1, None, 0, byref(n)) == BUFFER_TOO_SMALL and n.value == 114
    out = ctypes.create_string_buffer(b"\xee" * 113, 113)
    assert lib.cellar_key_wrap(kek, xts, 1, out, 113, byref(n)) == BUFFER_TOO_SMALL and n.value == 114
    assert out.raw == b"\xee" * 113
    assert lib.cellar_key_wrap(xts, kek, 1, out, 113, byref(n)) == INVALID_KEY
    assert lib.cellar_key_derive(kek, AES256, None, 0, byref(h)) == INVALID_ARGUMENT
    count, limit = c_uint64(), c_uint64()
    assert lib.cellar_key_usage(kek, byref(count), byref(limit)) == OK
    assert (count.value, limit.value) == (0, 1 << 32)
    assert lib.cellar_key_set_usage_limit(kek, 0) == INVALID_ARGUMENT
    lib.cellar_key_free(None)
