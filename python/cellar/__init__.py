"""Cellar for Python: a FIPS-oriented cryptographic kernel for database encryption at rest.

A ctypes binding over ``libcellar`` (Rust on the AWS-LC FIPS 140-3 validated module)::

    import cellar

    print(cellar.fips_status())                      # names the module, FIPS mode, self tests
    with cellar.Key.generate(cellar.KeyType.AES256) as column_key:
        cells = cellar.CellCipher(column_key, cellar.CellMode.RANDOMIZED)
        ct = cells.encrypt(b"alice@example.com", context=b"users/email/42")
        assert cells.decrypt(ct, context=b"users/email/42") == b"alice@example.com"
        assert cellar.last_operation_approved() is True

Objects own C handles: close them (or use ``with``) to free them deterministically; the garbage
collector frees forgotten ones. Keys and ciphers may be shared between threads (the GIL is
released during every C call). Errors are :class:`CellarError` subclasses.
"""

from __future__ import annotations

from . import _handles
from ._native import LibraryError, library_path
from .cells import BlindIndexKey, CellCipher, CellMode, blind_index
from .errors import (
    AuthenticationError,
    BufferTooSmallError,
    CellarError,
    InternalError,
    InvalidArgumentError,
    InvalidKeyError,
    KeyNotFoundError,
    NotFipsError,
    NullPointerError,
    ProviderError,
    RandomError,
    TenantLockedError,
    UnsupportedFormatError,
    UsageLimitError,
)
from .fips import (
    AbiVersion,
    FipsStatus,
    abi_version,
    fips_status,
    init,
    last_operation_approved,
    module_certificate,
    version,
)
from .keyring import Keyring, VersionInfo
from .keys import Key, KeyMemoryStatus, KeyPurpose, KeyType, key_memory_status
from .pages import PageCipher, PageMode

__version__ = "0.1.0"

__all__ = [
    "AbiVersion",
    "AuthenticationError",
    "BlindIndexKey",
    "BufferTooSmallError",
    "CellCipher",
    "CellMode",
    "CellarError",
    "FipsStatus",
    "InternalError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "Key",
    "KeyMemoryStatus",
    "KeyNotFoundError",
    "KeyPurpose",
    "KeyType",
    "Keyring",
    "LibraryError",
    "NotFipsError",
    "NullPointerError",
    "PageCipher",
    "PageMode",
    "ProviderError",
    "RandomError",
    "TenantLockedError",
    "UnsupportedFormatError",
    "UsageLimitError",
    "VersionInfo",
    "abi_version",
    "blind_index",
    "fips_status",
    "module_certificate",
    "init",
    "key_memory_status",
    "last_operation_approved",
    "library_path",
    "version",
]

del annotations  # the __future__ import is not part of the package
