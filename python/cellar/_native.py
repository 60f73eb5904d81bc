"""Loads libcellar through ctypes and declares every function of ``include/cellar.h``.

Search order for the shared library:

1. ``CELLAR_LIBRARY``: a path to the library file. When set it is the only candidate, so a
   deployment can pin exactly one build.
2. Beside this package (``cellar/libcellar.so``), for wheels that ship the library.
3. The build tree: ``target/release/libcellar.so`` relative to the repository that holds this
   ``python/`` folder (what ``make build`` produces).
4. The system loader (``ctypes.util.find_library("cellar")``), for ``make install``.

The library's ABI major must equal :data:`ABI_MAJOR` and its minor be at least
:data:`ABI_MINOR_MIN`; anything else is refused with :class:`LibraryError` (an ``ImportError``).

:data:`SIGNATURES` is the one table of ``restype``/``argtypes``; a test parses the header and
compares it with this table, so the two cannot drift. Conventions of the table: handles and byte
pointers are ``c_void_p`` (so ``bytes``, ctypes arrays and integer addresses all pass without a
copy), typed out-parameters are ``POINTER(c_uint32)`` and the like, strings the library returns are
``c_char_p``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pathlib
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Dict, List, Optional, Tuple

__all__ = [
    "ABI_MAJOR",
    "ABI_MINOR_MIN",
    "LibraryError",
    "SIGNATURES",
    "Pkcs11Config",
    "KeyProvider",
    "RowContexts",
    "PROVIDER_FN",
    "lib",
    "library_path",
    "check_abi",
]

#: The ABI major this package is written against (``CELLAR_ABI_VERSION >> 16``).
ABI_MAJOR = 1
#: The oldest ABI minor that has every function in :data:`SIGNATURES`.
ABI_MINOR_MIN = 2


class LibraryError(ImportError):
    """The shared library cannot be found, cannot be loaded, or has an incompatible ABI."""


#: ``cellar_provider_wrap_fn`` and ``cellar_provider_unwrap_fn`` (same shape):
#: ``status (void *context, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
#: size_t *out_len)``.
PROVIDER_FN = CFUNCTYPE(c_int32, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, POINTER(c_size_t))


class KeyProvider(Structure):
    """``struct cellar_key_provider``: context, 16-byte key id, wrap and unwrap callbacks."""

    _fields_ = [
        ("context", c_void_p),
        ("key_id", c_uint8 * 16),
        ("wrap", PROVIDER_FN),
        ("unwrap", PROVIDER_FN),
    ]


class Pkcs11Config(Structure):
    """``struct cellar_pkcs11_config``: module path, token label or slot, PIN, session bound, flags."""

    _fields_ = [
        ("module_path", c_void_p),
        ("module_path_len", c_size_t),
        ("token_label", c_void_p),
        ("token_label_len", c_size_t),
        ("slot_id", c_uint64),
        ("pin", c_void_p),
        ("pin_len", c_size_t),
        ("max_sessions", c_uint32),
        ("flags", c_uint32),
    ]


class RowContexts(Structure):
    """``struct cellar_row_contexts``: one context per value for the ``_rows`` batch calls
    (row ``i`` is ``prefix | suffixes[suffix_offsets[i]:suffix_offsets[i+1]]``; the offsets are
    ``offset_width`` = 4 or 8 bytes wide)."""

    _fields_ = [
        ("prefix", c_void_p),
        ("prefix_len", c_size_t),
        ("suffixes", c_void_p),
        ("suffix_offsets", c_void_p),
        ("offset_width", c_uint32),
    ]


_vp = c_void_p
_prc = POINTER(RowContexts)
_pvp = POINTER(c_void_p)
_pu32 = POINTER(c_uint32)
_pu64 = POINTER(c_uint64)
_pi32 = POINTER(c_int32)
_psz = POINTER(c_size_t)
_st = c_int32  # cellar_status

#: name -> (restype, argtypes), one entry per function of include/cellar.h.
SIGNATURES: Dict[str, Tuple[Optional[type], List[type]]] = {
    # Library, status and FIPS surface.
    "cellar_abi_version": (c_uint32, []),
    "cellar_version": (c_char_p, []),
    "cellar_status_name": (c_char_p, [_st]),
    "cellar_last_error": (c_size_t, [c_char_p, c_size_t]),
    "cellar_last_operation_approved": (c_int32, []),
    "cellar_init": (_st, [c_uint32]),
    "cellar_fips_module_version": (c_char_p, []),
    "cellar_fips_module_certificate": (c_char_p, []),
    "cellar_fips_mode": (c_int32, []),
    "cellar_fips_self_test_passed": (c_int32, []),
    # Keys.
    "cellar_key_generate": (_st, [c_uint32, _pvp]),
    "cellar_key_import": (_st, [c_uint32, _vp, c_size_t, _pvp]),
    "cellar_key_derive": (_st, [_vp, c_uint32, _vp, c_size_t, _pvp]),
    "cellar_key_derive_v1": (_st, [_vp, c_uint32, _vp, c_size_t, _pvp]),
    "cellar_key_generate_purpose": (_st, [c_uint32, c_uint32, _pvp]),
    "cellar_key_import_purpose": (_st, [c_uint32, c_uint32, _vp, c_size_t, _pvp]),
    "cellar_key_derive_purpose": (_st, [_vp, c_uint32, c_uint32, _vp, c_size_t, _pvp]),
    "cellar_key_purpose": (_st, [_vp, _pu32]),
    "cellar_key_id": (_st, [_vp, _vp]),
    "cellar_key_type": (_st, [_vp, _pu32]),
    "cellar_key_wrapped_len": (c_size_t, [c_uint32]),
    "cellar_key_wrap": (_st, [_vp, _vp, c_uint32, _vp, c_size_t, _psz]),
    "cellar_key_unwrap": (_st, [_vp, _vp, c_size_t, _pvp, _pu32]),
    "cellar_key_password_file_len": (c_size_t, [c_uint32]),
    "cellar_key_export_password": (_st, [_vp, c_uint32, _vp, c_size_t, c_uint32, _vp, c_size_t, _psz]),
    "cellar_key_import_password": (_st, [_vp, c_size_t, _vp, c_size_t, _pvp, _pu32]),
    "cellar_key_dangerous_export_raw": (_st, [_vp, _vp, c_size_t, _psz]),
    "cellar_key_usage": (_st, [_vp, _pu64, _pu64]),
    "cellar_key_set_usage_limit": (_st, [_vp, c_uint64]),
    "cellar_key_is_locked": (_st, [_vp, _pi32]),
    "cellar_key_memory_status": (_st, [_pi32, _pi32]),
    "cellar_key_restore_usage_count": (_st, [_vp, c_uint64]),
    "cellar_key_free": (None, [_vp]),
    # Tenant keyring.
    "cellar_keyring_new": (_st, [_vp, _pvp]),
    "cellar_keyring_active_version": (_st, [_vp, _pu32]),
    "cellar_keyring_versions": (_st, [_vp, _pu32, _vp, c_size_t, _psz]),
    "cellar_keyring_version_info": (_st, [_vp, c_uint32, _vp, _pu32]),
    "cellar_keyring_rotate": (_st, [_vp, _vp, _pu32]),
    "cellar_keyring_wrap": (_st, [_vp, _vp, _vp, c_size_t, _psz]),
    "cellar_keyring_unwrap": (_st, [_vp, _vp, c_size_t, _pvp, _pu32]),
    "cellar_keyring_rewrap": (_st, [_vp, _vp, c_size_t, _vp, c_size_t, _psz]),
    "cellar_keyring_retire": (_st, [_vp, c_uint32]),
    "cellar_keyring_lock": (_st, [_vp]),
    "cellar_keyring_lock_with": (_st, [_vp, c_uint32]),
    "cellar_keyring_unlock": (_st, [_vp, _vp]),
    "cellar_keyring_is_locked": (_st, [_vp, _pi32]),
    # KMIP key manager versions (cellar.kmip).
    "cellar_kmip_client_new": (_st, [_vp, _pvp]),
    "cellar_kmip_client_free": (None, [_vp]),
    "cellar_kmip_client_check": (_st, [_vp, _vp]),
    "cellar_keyring_new_kmip": (_st, [_vp, c_uint32, _vp, c_size_t, _pvp]),
    "cellar_keyring_adopt_kmip": (_st, [_vp, c_uint32, _vp, c_size_t, _vp, c_size_t, _pvp]),
    "cellar_keyring_rotate_kmip": (_st, [_vp, _vp, c_uint32, _vp, c_size_t, _pu32]),
    "cellar_keyring_rotate_kmip_adopt": (_st, [_vp, _vp, c_uint32, _vp, c_size_t, _vp, c_size_t, _pu32]),
    "cellar_keyring_unlock_kmip": (_st, [_vp, _vp, _psz]),
    "cellar_keyring_retire_kmip": (_st, [_vp, c_uint32, c_uint32]),
    "cellar_keyring_kmip_uid": (_st, [_vp, c_uint32, _pu32, _vp, c_size_t, _psz]),
    "cellar_keyring_add_provider": (_st, [_vp, POINTER(KeyProvider), _pu32]),
    "cellar_keyring_unlock_provider": (_st, [_vp, POINTER(KeyProvider), _pu32]),
    "cellar_keyring_export": (_st, [_vp, _vp, _vp, c_size_t, c_uint32, _vp, c_size_t, _psz]),
    "cellar_keyring_import": (_st, [_vp, c_size_t, _vp, _vp, c_size_t, _pvp]),
    "cellar_keyring_import_min_generation": (_st, [_vp, c_size_t, _vp, _vp, c_size_t, c_uint64, _pvp]),
    "cellar_keyring_generation": (_st, [_vp, _pu64]),
    "cellar_keyring_free": (None, [_vp]),
    # Tenant keyring versions held by a PKCS#11 token (the config struct is passed by address).
    "cellar_keyring_new_pkcs11": (_st, [_vp, _vp, c_size_t, _pvp]),
    "cellar_keyring_adopt_pkcs11": (_st, [_vp, _vp, c_size_t, _vp, c_size_t, _pvp]),
    "cellar_keyring_rotate_pkcs11": (_st, [_vp, _vp, _vp, c_size_t, _pu32]),
    "cellar_keyring_rotate_pkcs11_adopt": (_st, [_vp, _vp, _vp, c_size_t, _vp, c_size_t, _pu32]),
    "cellar_keyring_unlock_pkcs11": (_st, [_vp, _vp, _psz]),
    "cellar_keyring_retire_pkcs11": (_st, [_vp, c_uint32, c_uint32]),
    # TDE pages.
    "cellar_page_cipher_new": (_st, [_vp, c_uint32, c_uint64, c_uint32, c_uint32, _pvp]),
    "cellar_page_encrypt": (_st, [_vp, c_uint64, _vp, _vp, c_size_t]),
    "cellar_page_decrypt": (_st, [_vp, c_uint64, _vp, _vp, c_size_t]),
    "cellar_page_encrypt_pages": (_st, [_vp, c_uint64, _vp, _vp, c_size_t, c_size_t, c_uint32]),
    "cellar_page_decrypt_pages": (_st, [_vp, c_uint64, _vp, _vp, c_size_t, c_size_t, c_uint32]),
    "cellar_page_decrypt_pages_status": (
        _st, [_vp, c_uint64, _vp, _vp, c_size_t, c_size_t, c_uint32, _pi32, _psz]),
    "cellar_page_key_version": (_st, [_vp, c_size_t, _pu32]),
    "cellar_page_reserved_bytes": (c_size_t, [c_uint32]),
    "cellar_page_cipher_set_written_mark": (_st, [_vp, c_uint64]),
    "cellar_page_cipher_written_mark": (_st, [_vp, _pu64]),
    "cellar_page_cipher_free": (None, [_vp]),
    # Cells.
    "cellar_cell_cipher_new": (_st, [_vp, c_uint32, c_uint32, _pvp]),
    "cellar_cell_cipher_free": (None, [_vp]),
    "cellar_cell_ciphertext_len": (c_size_t, [c_uint32, c_size_t]),
    "cellar_cell_plaintext_max_len": (c_size_t, [c_uint32, c_size_t]),
    "cellar_cell_encrypt": (_st, [_vp, _vp, c_size_t, _vp, c_size_t, _vp, c_size_t, _psz]),
    "cellar_cell_decrypt": (_st, [_vp, _vp, c_size_t, _vp, c_size_t, _vp, c_size_t, _psz]),
    "cellar_cell_key_version": (_st, [_vp, c_size_t, _pu32]),
    "cellar_cell_batch_ciphertext_len": (c_size_t, [c_uint32, _psz, c_size_t]),
    "cellar_cell_batch_plaintext_max_len": (c_size_t, [c_uint32, _psz, c_size_t]),
    "cellar_cell_encrypt_batch": (
        _st, [_vp, _vp, c_size_t, _vp, _psz, c_size_t, _vp, c_size_t, _psz, _psz]),
    "cellar_cell_decrypt_batch": (
        _st, [_vp, _vp, c_size_t, _vp, _psz, c_size_t, _vp, c_size_t, _psz, _psz]),
    "cellar_cell_encrypt_batch_threads": (
        _st, [_vp, _vp, c_size_t, _vp, _psz, c_size_t, _vp, c_size_t, _psz, _psz, c_uint32]),
    "cellar_cell_decrypt_batch_threads": (
        _st, [_vp, _vp, c_size_t, _vp, _psz, c_size_t, _vp, c_size_t, _psz, _psz, c_uint32]),
    "cellar_blind_index": (_st, [_vp, _vp, c_size_t, _vp, c_size_t, _vp, c_size_t]),
    "cellar_blind_index_versioned": (_st, [_vp, c_uint32, _vp, c_size_t, _vp, c_size_t, _vp, c_size_t]),
    # Per-row contexts and blind-index keys.
    "cellar_cell_encrypt_batch_rows": (_st, [_vp, _prc, _vp, _psz, c_size_t, _vp, c_size_t, _psz, _psz]),
    "cellar_cell_decrypt_batch_rows": (_st, [_vp, _prc, _vp, _psz, c_size_t, _vp, c_size_t, _psz, _psz]),
    "cellar_blind_index_key_new": (_st, [_vp, c_uint32, _pvp]),
    "cellar_blind_index_key_free": (None, [_vp]),
    "cellar_blind_index_compute": (_st, [_vp, _vp, c_size_t, _vp, c_size_t, _vp, c_size_t]),
    "cellar_blind_index_batch": (
        _st, [_vp, _vp, c_size_t, _vp, _psz, c_size_t, c_size_t, _vp, c_size_t, _psz]),
    "cellar_blind_index_batch_rows": (_st, [_vp, _prc, _vp, _psz, c_size_t, c_size_t, _vp, c_size_t, _psz]),
}

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent.parent
_NAMES = ("libcellar.so", "libcellar.so.1", "libcellar.dylib", "cellar.dll")


def _candidates() -> List[str]:
    env = os.environ.get("CELLAR_LIBRARY")
    if env:
        return [env]
    found = [str(_PACKAGE_DIR / n) for n in _NAMES if (_PACKAGE_DIR / n).is_file()]
    build = _REPO_ROOT / "target" / "release"
    found += [str(build / n) for n in _NAMES if (build / n).is_file()]
    system = ctypes.util.find_library("cellar")
    if system:
        found.append(system)
    return found


def check_abi(value: int, path: str = "libcellar") -> None:
    """Raises :class:`LibraryError` unless ``value`` (a ``CELLAR_ABI_VERSION``) is compatible."""
    major, minor = value >> 16, value & 0xFFFF
    if major != ABI_MAJOR or minor < ABI_MINOR_MIN:
        raise LibraryError(
            f"{path} has C ABI {major}.{minor}, but this cellar package needs ABI "
            f"{ABI_MAJOR}.x with x >= {ABI_MINOR_MIN}; install the matching library or package "
            f"(or point CELLAR_LIBRARY at a compatible build)"
        )


def _declare(handle: ctypes.CDLL, path: str) -> None:
    missing = [name for name in SIGNATURES if not hasattr(handle, name)]
    if missing:
        raise LibraryError(f"{path} lacks {len(missing)} Cellar function(s): {', '.join(missing)}")
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(handle, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _load() -> Tuple[ctypes.CDLL, str]:
    candidates = _candidates()
    if not candidates:
        raise LibraryError(
            "libcellar not found: set CELLAR_LIBRARY to the library file, or build it with "
            f"`make build` (looked beside the package in {_PACKAGE_DIR}, in "
            f"{_REPO_ROOT / 'target' / 'release'}, and on the system library path)"
        )
    errors = []
    for path in candidates:
        try:
            handle = ctypes.CDLL(path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        if not hasattr(handle, "cellar_abi_version"):
            errors.append(f"{path}: not a Cellar library (no cellar_abi_version)")
            continue
        abi = handle.cellar_abi_version
        abi.restype, abi.argtypes = c_uint32, []
        check_abi(abi(), path)  # a mismatch is final: do not silently fall back to another copy
        _declare(handle, path)
        return handle, path
    raise LibraryError("cannot load libcellar: " + "; ".join(errors))


lib, _path = _load()


def library_path() -> str:
    """The path of the loaded shared library."""
    return _path
