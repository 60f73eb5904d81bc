"""Shared ctypes loader for the Python tests of the C ABI.

Fixtures:
  lib         the loaded libcellar (CELLAR_LIBRARY, else target/release/libcellar.so) with the
              core and key function signatures declared; other test files may declare more
              signatures on it (ctypes attributes persist for the session).
  last_error  last_error() -> str: this thread's last failure text.
  check       check(status) raises AssertionError with the status name and text unless OK.
"""
import ctypes
import os
import pathlib

import pytest

from ctypes import POINTER, c_char_p, c_int32, c_size_t, c_uint8, c_uint32, c_uint64, c_void_p

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_u8p = POINTER(c_uint8)

# name: (restype, argtypes). Handles are c_void_p.
SIGNATURES = {
    "cellar_abi_version": (c_uint32, []),
    "cellar_version": (c_char_p, []),
    "cellar_status_name": (c_char_p, [c_int32]),
    "cellar_last_error": (c_size_t, [c_char_p, c_size_t]),
    "cellar_last_operation_approved": (c_int32, []),
    "cellar_init": (c_int32, [c_uint32]),
    "cellar_fips_module_version": (c_char_p, []),
    "cellar_fips_mode": (c_int32, []),
    "cellar_fips_self_test_passed": (c_int32, []),
    "cellar_key_generate": (c_int32, [c_uint32, POINTER(c_void_p)]),
    "cellar_key_import": (c_int32, [c_uint32, c_char_p, c_size_t, POINTER(c_void_p)]),
    "cellar_key_derive": (c_int32, [c_void_p, c_uint32, c_char_p, c_size_t, POINTER(c_void_p)]),
    "cellar_key_id": (c_int32, [c_void_p, c_char_p]),
    "cellar_key_type": (c_int32, [c_void_p, POINTER(c_uint32)]),
    "cellar_key_wrapped_len": (c_size_t, [c_uint32]),
    "cellar_key_wrap": (c_int32, [c_void_p, c_void_p, c_uint32, c_char_p, c_size_t, POINTER(c_size_t)]),
    "cellar_key_unwrap": (c_int32, [c_void_p, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_uint32)]),
    "cellar_key_password_file_len": (c_size_t, [c_uint32]),
    "cellar_key_export_password": (
        c_int32, [c_void_p, c_uint32, c_char_p, c_size_t, c_uint32, c_char_p, c_size_t, POINTER(c_size_t)]),
    "cellar_key_import_password": (
        c_int32, [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_void_p), POINTER(c_uint32)]),
    "cellar_key_dangerous_export_raw": (c_int32, [c_void_p, c_char_p, c_size_t, POINTER(c_size_t)]),
    "cellar_key_usage": (c_int32, [c_void_p, POINTER(c_uint64), POINTER(c_uint64)]),
    "cellar_key_set_usage_limit": (c_int32, [c_void_p, c_uint64]),
    "cellar_key_free": (None, [c_void_p]),
}


def library_path():
    return os.environ.get("CELLAR_LIBRARY") or str(_ROOT / "target" / "release" / "libcellar.so")


def load_library(path=None):
    lib = ctypes.CDLL(path or library_path())
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def read_last_error(lib):
    n = lib.cellar_last_error(None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    lib.cellar_last_error(buf, n + 1)
    return buf.value.decode()


@pytest.fixture(scope="session")
def lib():
    return load_library()


@pytest.fixture(scope="session")
def last_error(lib):
    return lambda: read_last_error(lib)


@pytest.fixture(scope="session")
def check(lib):
    def check(status):
        if status != 0:
            name = lib.cellar_status_name(status).decode()
            raise AssertionError(f"{name}: {read_last_error(lib)}")
    return check
