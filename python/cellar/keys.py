"""Keys: opaque handles to AES-256 and AES-256-XTS keys held inside the library.

A :class:`Key` never holds its material in a Python object; only :meth:`Key.export_raw` (a
documented hazard) brings it into Python. ``repr`` shows the type and the public key id.
"""

from __future__ import annotations

import ctypes
import enum
from ctypes import byref, c_size_t, c_uint32, c_uint64, c_void_p
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

from ._buffers import BytesLike, Secret, readable, text_or_bytes
from ._handles import Handle
from ._native import lib
from .errors import raise_status

__all__ = [
    "KeyType", "KeyPurpose", "Key", "KeyMemoryStatus", "key_memory_status",
    "PASSWORD_MIN_LEN", "DEFAULT_ITERATIONS", "MIN_ITERATIONS", "MAX_ITERATIONS",
]

KEY_ID_LEN = 16
#: Shortest password (bytes, after UTF-8 encoding) for password files and keyring exports.
PASSWORD_MIN_LEN = 14
#: Recommended and default PBKDF2 iteration count.
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 100_000
MAX_ITERATIONS = 10_000_000

_free = lib.cellar_key_free


class KeyType(enum.IntEnum):
    """Key types (``CELLAR_KEY_*``)."""

    def __str__(self) -> str:  # the name, not the integer (IntEnum prints the value)
        return f"{type(self).__name__}.{self.name}"


    #: 32-byte AES-256 key: GCM, key wrapping, cells, derivation, keyrings.
    AES256 = 1
    #: 64-byte AES-256-XTS key (two distinct halves), for XTS pages.
    AES256_XTS = 2


class KeyPurpose(enum.IntEnum):
    """Key purposes (``CELLAR_KEY_PURPOSE_*``; NIST SP 800-57: one purpose per key).

    A purpose is fixed when a key is made (``purpose=`` of :meth:`Key.generate`,
    :meth:`Key.import_raw` and :meth:`Key.derive`; :meth:`Key.unwrap` and
    :meth:`Key.import_with_password` restore it) and checked by every operation that uses the
    key: page and cell ciphers and blind indexes need ``DATA_ENCRYPTION``, the ``kek`` of
    wrap/unwrap and a keyring's root key ``KEY_WRAPPING``, a derivation parent
    ``KEY_DERIVATION``. A key of another purpose raises :class:`~cellar.InvalidKeyError`
    naming both. ``NONE`` (the default, and keys from blobs written before purposes) works
    everywhere. The purpose does not change the FIPS indicator.
    """

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    #: No fixed purpose: the key works for every operation.
    NONE = 0
    #: Data encryption: TDE pages, cells, blind indexes.
    DATA_ENCRYPTION = 1
    #: Key wrapping (a key-encryption key, AES-256 only): wraps keys, seals keyring exports.
    KEY_WRAPPING = 2
    #: Key derivation: the parent of derived keys.
    KEY_DERIVATION = 3


def _key_purpose(value: Any) -> KeyPurpose:
    try:
        return KeyPurpose(value)
    except ValueError:
        raise ValueError(
            f"unknown key purpose {value!r}; use cellar.KeyPurpose.NONE, DATA_ENCRYPTION, "
            "KEY_WRAPPING or KEY_DERIVATION") from None


def _key_type(value: Any) -> KeyType:
    try:
        return KeyType(value)
    except ValueError:
        raise ValueError(f"unknown key type {value!r}; use cellar.KeyType.AES256 or AES256_XTS") from None


def _password(pw: Union[str, BytesLike]) -> Tuple[Any, int, Any]:
    return readable(text_or_bytes(pw, "password"), "password")


def _password_copy(pw: Union[str, BytesLike]) -> Secret:
    """The password for one C call: a ``str`` is encoded into a private ``bytearray`` that the
    caller wipes (``with`` block or ``.wipe()``); bytes-like passwords are not copied."""
    return Secret(pw, "password")


def _iterations(iterations: int) -> int:
    if not isinstance(iterations, int) or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be an integer from {MIN_ITERATIONS} to {MAX_ITERATIONS}")
    return iterations


def _u32(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{what} must be an integer from 0 to 2**32 - 1")
    return value


class Key(Handle):
    """An opaque key handle. Immutable and safe to share between threads.

    Create with :meth:`generate`, :meth:`import_raw`, :meth:`derive`, :meth:`unwrap` or
    :meth:`import_with_password`; free with :meth:`close` or a ``with`` block. Ciphers and
    keyrings made from a key keep their own reference (or copy), so the key may be closed first.
    """

    _kind = "key"
    _id: bytes
    _type: KeyType
    _purpose: KeyPurpose
    #: The version stored in the blob or file this key came from (``unwrap``,
    #: ``import_with_password``, ``Keyring.unwrap``); None for other keys.
    stored_version: Optional[int]

    def __init__(self) -> None:
        raise TypeError("use Key.generate, Key.import_raw, Key.unwrap or Key.import_with_password")

    @classmethod
    def _from_handle(cls, ptr: Optional[int], stored_version: Optional[int] = None) -> "Key":
        self = object.__new__(cls)
        self._h = None
        self._finalizer = None
        self._adopt(ptr, _free)
        self.stored_version = stored_version
        id_buf = ctypes.create_string_buffer(KEY_ID_LEN)
        st = lib.cellar_key_id(ptr, id_buf)
        if st:
            raise_status(st)
        self._id = id_buf.raw
        t = c_uint32()
        st = lib.cellar_key_type(ptr, byref(t))
        if st:
            raise_status(st)
        self._type = KeyType(t.value)
        st = lib.cellar_key_purpose(ptr, byref(t))
        if st:
            raise_status(st)
        self._purpose = KeyPurpose(t.value)
        return self

    # Construction -------------------------------------------------------------------------

    @classmethod
    def generate(cls, key_type: KeyType = KeyType.AES256, purpose: KeyPurpose = KeyPurpose.NONE) -> "Key":
        """A new key of ``key_type`` from the module's DRBG, with ``purpose`` fixed
        (:class:`KeyPurpose`; a ``KEY_WRAPPING`` key must be AES256)."""
        out = c_void_p()
        kt, kp = _key_type(key_type), _key_purpose(purpose)
        if kp == KeyPurpose.NONE:
            st = lib.cellar_key_generate(kt, byref(out))
        else:
            st = lib.cellar_key_generate_purpose(kt, kp, byref(out))
        if st:
            raise_status(st)
        return cls._from_handle(out.value)

    @classmethod
    def import_raw(cls, key_type: KeyType, data: BytesLike, purpose: KeyPurpose = KeyPurpose.NONE) -> "Key":
        """Imports raw material (bring your own key): 32 bytes for AES256, 64 bytes with distinct
        halves for AES256_XTS (else :class:`~cellar.InvalidKeyError`), with ``purpose`` fixed
        (:class:`KeyPurpose`). The material is copied into the library; ``data`` is not kept
        (wipe it yourself if it is a ``bytearray``)."""
        kt, kp = _key_type(key_type), _key_purpose(purpose)
        p, n, keep = readable(data, "key material")
        out = c_void_p()
        if kp == KeyPurpose.NONE:
            st = lib.cellar_key_import(kt, p, n, byref(out))
        else:
            st = lib.cellar_key_import_purpose(kt, kp, p, n, byref(out))
        if st:
            raise_status(st)
        return cls._from_handle(out.value)

    def derive(
        self, label: Union[str, BytesLike], key_type: KeyType = KeyType.AES256, purpose: KeyPurpose = KeyPurpose.NONE
    ) -> "Key":
        """A child key of ``key_type`` derived from this key and a non-empty ``label`` (``str``
        is UTF-8 encoded), e.g. a table, column or file name, with the SP 800-108 counter-mode
        KDF (HMAC-SHA-256; derive v2, docs/FORMATS.md). Same inputs, same child. Keys derived
        before format v2 are derived again with :meth:`derive_v1`. With a ``purpose`` other than
        ``NONE`` the child has that purpose and is derived under its own label ("cellar derive
        v2 purpose", docs/FORMATS.md 1.2), so it differs from the purpose-less child. This key
        must be a ``KEY_DERIVATION`` key or have no purpose."""
        kp = _key_purpose(purpose)
        if kp == KeyPurpose.NONE:
            return self._derive(label, key_type, lib.cellar_key_derive)
        p, n, keep = readable(text_or_bytes(label, "label"), "label")
        if not n:
            raise ValueError("label must not be empty")
        out = c_void_p()
        st = lib.cellar_key_derive_purpose(self._handle, _key_type(key_type), kp, p, n, byref(out))
        if st:
            raise_status(st)
        return Key._from_handle(out.value)

    def derive_v1(self, label: Union[str, BytesLike], key_type: KeyType = KeyType.AES256) -> "Key":
        """Derive v1 (HKDF-SHA256, before format v2), only to recreate keys derived then.
        Reports FIPS indicator 0; new keys use :meth:`derive`."""
        return self._derive(label, key_type, lib.cellar_key_derive_v1)

    def _derive(self, label: Union[str, BytesLike], key_type: KeyType, fn) -> "Key":
        p, n, keep = readable(text_or_bytes(label, "label"), "label")
        if not n:
            raise ValueError("label must not be empty")
        out = c_void_p()
        st = fn(self._handle, _key_type(key_type), p, n, byref(out))
        if st:
            raise_status(st)
        return Key._from_handle(out.value)

    # Properties -----------------------------------------------------------------------------

    @property
    def id(self) -> bytes:
        """The public 16-byte key id (a fingerprint, safe to log and store)."""
        return self._id

    @property
    def type(self) -> KeyType:
        """The key's type."""
        return self._type

    @property
    def purpose(self) -> KeyPurpose:
        """The key's purpose (:class:`KeyPurpose`), fixed when it was made."""
        return self._purpose

    @property
    def usage(self) -> Tuple[int, int]:
        """``(count, limit)``: encryptions counted against this key (by every handle of it in
        the process) and this handle's limit."""
        count, limit = c_uint64(), c_uint64()
        st = lib.cellar_key_usage(self._handle, byref(count), byref(limit))
        if st:
            raise_status(st)
        return count.value, limit.value

    def restore_usage_count(self, count: int) -> None:
        """Raises the encryption count to ``count`` if it is lower (never lowers it): restore a
        count you persisted from :attr:`usage` after loading the key again. The count is per
        key, shared by every handle of the same key alive in the process."""
        if not isinstance(count, int) or not 0 <= count < 1 << 64:
            raise ValueError("count must be an integer from 0 to 2**64 - 1")
        st = lib.cellar_key_restore_usage_count(self._handle, count)
        if st:
            raise_status(st)

    def set_usage_limit(self, limit: int) -> None:
        """Sets the encryption limit (1 to 2**32; default 2**32, the SP 800-38D bound for
        random nonces). Encryptions past it raise :class:`~cellar.UsageLimitError`."""
        if not isinstance(limit, int) or limit < 0 or limit >= 1 << 64:
            raise ValueError("limit must be an integer from 1 to 2**32")
        st = lib.cellar_key_set_usage_limit(self._handle, limit)
        if st:
            raise_status(st)

    # Wrapping and export ---------------------------------------------------------------------

    def wrap(self, kek: "Key", version: int = 1) -> bytes:
        """This key with its ``version`` wrapped under ``kek`` (an AES-256 key) with AES-KWP:
        an 82-byte (AES256) or 114-byte (XTS) blob naming ``kek`` by its id."""
        if not isinstance(kek, Key):
            raise TypeError("kek must be a cellar.Key")
        size = lib.cellar_key_wrapped_len(self._type)
        out = ctypes.create_string_buffer(size)
        n = c_size_t()
        st = lib.cellar_key_wrap(kek._handle, self._handle, _u32(version, "version"), out, size, byref(n))
        if st:
            raise_status(st, n.value)
        return out.raw[: n.value]

    @classmethod
    def unwrap(cls, kek: "Key", blob: BytesLike) -> Tuple["Key", int]:
        """Unwraps a blob made by :meth:`wrap` under ``kek``; returns ``(key, version)``.
        Another KEK or any tampering raises :class:`~cellar.AuthenticationError`."""
        if not isinstance(kek, Key):
            raise TypeError("kek must be a cellar.Key")
        p, n, keep = readable(blob, "blob")
        out, ver = c_void_p(), c_uint32()
        st = lib.cellar_key_unwrap(kek._handle, p, n, byref(out), byref(ver))
        if st:
            raise_status(st)
        return cls._from_handle(out.value, ver.value), ver.value

    def export_with_password(
        self, password: Union[str, BytesLike], iterations: int = DEFAULT_ITERATIONS, version: int = 1
    ) -> bytes:
        """A password-protected key file (PBKDF2-HMAC-SHA256 + AES-KWP). ``password`` (``str``
        is UTF-8 encoded) must be at least 14 bytes; ``iterations`` 100 000 to 10 000 000
        (about 0.25 s at the default 600 000)."""
        version, iterations = _u32(version, "version"), _iterations(iterations)
        size = lib.cellar_key_password_file_len(self._type)
        out = ctypes.create_string_buffer(size)
        n = c_size_t()
        with _password_copy(password) as pw:
            st = lib.cellar_key_export_password(
                self._handle, version, pw.param, pw.n, iterations, out, size, byref(n))
        if st:
            raise_status(st, n.value)
        return out.raw[: n.value]

    @classmethod
    def import_with_password(cls, blob: BytesLike, password: Union[str, BytesLike]) -> "Key":
        """Imports a key file made by :meth:`export_with_password`. A wrong password or any
        tampering raises :class:`~cellar.AuthenticationError`. The version stored in the file is
        the new key's :attr:`stored_version`."""
        b, bn, keep1 = readable(blob, "blob")
        out, ver = c_void_p(), c_uint32()
        with _password_copy(password) as pw:
            st = lib.cellar_key_import_password(b, bn, pw.param, pw.n, byref(out), byref(ver))
        if st:
            raise_status(st)
        return cls._from_handle(out.value, ver.value)

    def export_raw(self) -> bytearray:
        """**Hazard: the raw key material in plaintext.** Only for handing a key to a system
        that accepts nothing else; prefer :meth:`wrap` or :meth:`export_with_password`. Returns
        a ``bytearray`` so that you can wipe it (``buf[:] = bytes(len(buf))``) after use."""
        size = 64 if self._type == KeyType.AES256_XTS else 32
        out = bytearray(size)
        n = c_size_t()
        st = lib.cellar_key_dangerous_export_raw(
            self._handle, (ctypes.c_char * size).from_buffer(out), size, byref(n))
        if st:
            raise_status(st, n.value)
        return out

    # Python protocol ------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        """True when this key came from a tenant keyring that is now locked: the key and every
        cipher made from it raise :class:`~cellar.TenantLockedError` until the keyring is
        unlocked."""
        v = ctypes.c_int32()
        st = lib.cellar_key_is_locked(self._handle, ctypes.byref(v))
        if st:
            raise_status(st)
        return v.value == 1

    def __repr__(self) -> str:
        state = " closed" if self._h is None else (" locked" if self.locked else "")
        purpose = "" if self._purpose == KeyPurpose.NONE else f" purpose={self._purpose.name}"
        return f"<cellar.Key {self._type.name}{purpose} id={self._id.hex()}{state}>"

    def __eq__(self, other: object) -> bool:
        """Keys are equal when their key ids are (the id is a fingerprint of the material)."""
        if not isinstance(other, Key):
            return NotImplemented
        return self._id == other._id and self._type == other._type

    def __hash__(self) -> int:
        return hash((self._type, self._id))


@dataclass(frozen=True)
class KeyMemoryStatus:
    """How the library holds key material (``cellar_key_memory_status``).

    Every key's material lives inside the library, in pages that are excluded from core dumps
    (``nodump``, ``MADV_DONTDUMP`` on Linux) and locked into RAM so they never reach swap
    (``locked``, ``mlock``). When the process lacks the limit (``RLIMIT_MEMLOCK``, ``ulimit -l``)
    keys keep working from unlocked pages and ``locked`` is False. Copies Python makes
    (``Key.export_raw``, passwords, plaintexts) are ordinary Python memory: neither applies.
    """

    locked: bool
    nodump: bool

    @property
    def protected(self) -> bool:
        """True when key pages are both locked and excluded from core dumps."""
        return self.locked and self.nodump


def key_memory_status() -> KeyMemoryStatus:
    """How the library holds key material now (covers every key page mapped so far; locks pages
    that could not be locked before if the limit now allows). Does no cryptography."""
    locked = ctypes.c_int32()
    nodump = ctypes.c_int32()
    st = lib.cellar_key_memory_status(byref(locked), byref(nodump))
    if st:
        raise_status(st)
    return KeyMemoryStatus(locked=locked.value == 1, nodump=nodump.value == 1)
