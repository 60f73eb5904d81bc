"""Exceptions raised for Cellar status codes.

Every failing C call becomes a :class:`CellarError` (or a subclass chosen by its status code) with

- ``status``: the integer ``cellar_status``,
- ``name``: its C name, such as ``"CELLAR_ERR_AUTHENTICATION_FAILED"``,
- ``detail``: the calling thread's last-error text from the library (never key material or
  caller data).

Argument errors found before any C call are plain ``TypeError``/``ValueError``; the status
``CELLAR_ERR_INVALID_ARGUMENT`` becomes :class:`InvalidArgumentError`, which is both a
``CellarError`` and a ``ValueError``.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Dict, NoReturn, Optional, Type

from ._native import lib

__all__ = [
    "CellarError",
    "NullPointerError",
    "InvalidArgumentError",
    "BufferTooSmallError",
    "AuthenticationError",
    "InvalidKeyError",
    "UnsupportedFormatError",
    "KeyNotFoundError",
    "TenantLockedError",
    "UsageLimitError",
    "NotFipsError",
    "ProviderError",
    "RandomError",
    "InternalError",
    "error_for_status",
]


class CellarError(Exception):
    """A Cellar call failed. ``status``, ``name`` and ``detail`` describe the failure."""

    #: The status code a subclass stands for (``None`` on the base class).
    STATUS: Optional[int] = None

    def __init__(self, status: Any = None, detail: str = "", name: Optional[str] = None) -> None:
        # CellarError(status, detail) as the binding raises it; a subclass may also be raised
        # by user code (for example from a key provider callback) as Subclass("detail").
        if not isinstance(status, int):
            if self.STATUS is None:
                raise TypeError("CellarError needs a status code: CellarError(status, detail)")
            detail = status if status is not None else detail
            status = self.STATUS
        self.status = int(status)
        self.name = name if name is not None else status_name(self.status)
        self.detail = str(detail)
        super().__init__(f"{self.name}: {self.detail}" if self.detail else self.name)

    def __reduce__(self):  # keep status/name/detail through pickling (multiprocessing)
        return (type(self), (self.status, self.detail, self.name))


class NullPointerError(CellarError):
    """``CELLAR_ERR_NULL_POINTER``: a required argument was missing (a binding bug)."""

    STATUS = 1


class InvalidArgumentError(CellarError, ValueError):
    """``CELLAR_ERR_INVALID_ARGUMENT``: a length, mode, flag or version out of range."""

    STATUS = 2


class BufferTooSmallError(CellarError):
    """``CELLAR_ERR_BUFFER_TOO_SMALL``: an output buffer is too small; ``needed`` is the size."""

    STATUS = 3
    needed: Optional[int] = None


class AuthenticationError(CellarError):
    """``CELLAR_ERR_AUTHENTICATION_FAILED``: decryption, unwrapping or import failed
    (tampered, truncated, moved, or wrong key, password or context). Every decryption failure
    is this one error, by design."""

    STATUS = 4


class InvalidKeyError(CellarError):
    """``CELLAR_ERR_INVALID_KEY``: wrong key type or length, or unacceptable material."""

    STATUS = 5


class UnsupportedFormatError(CellarError):
    """``CELLAR_ERR_UNSUPPORTED_FORMAT``: bytes that are not a Cellar format."""

    STATUS = 6


class KeyNotFoundError(CellarError, LookupError):
    """``CELLAR_ERR_KEY_NOT_FOUND``: the key version or id is not present (or retired)."""

    STATUS = 7


class TenantLockedError(CellarError):
    """``CELLAR_ERR_TENANT_LOCKED``: the tenant keyring (or the version needed) is locked."""

    STATUS = 8


class UsageLimitError(CellarError):
    """``CELLAR_ERR_USAGE_LIMIT``: the key reached its encryption limit."""

    STATUS = 9


class NotFipsError(CellarError):
    """``CELLAR_ERR_NOT_FIPS``: FIPS mode was required and is not available."""

    STATUS = 10


class ProviderError(CellarError):
    """``CELLAR_ERR_PROVIDER_FAILED``: an external key provider failed. When a Python callback
    raised, that exception is the ``__cause__``."""

    STATUS = 11


class RandomError(CellarError):
    """``CELLAR_ERR_RANDOM_FAILED``: the module's random bit generator failed."""

    STATUS = 12


class InternalError(CellarError):
    """``CELLAR_ERR_INTERNAL``: an internal failure; the process remains usable."""

    STATUS = 13


_BY_STATUS: Dict[int, Type[CellarError]] = {
    cls.STATUS: cls
    for cls in (
        NullPointerError, InvalidArgumentError, BufferTooSmallError, AuthenticationError,
        InvalidKeyError, UnsupportedFormatError, KeyNotFoundError, TenantLockedError,
        UsageLimitError, NotFipsError, ProviderError, RandomError, InternalError,
    )
    if cls.STATUS is not None
}

_status_name = lib.cellar_status_name
_last_error = lib.cellar_last_error


def status_name(status: int) -> str:
    """The C name of a status code (``"CELLAR_ERR_UNKNOWN"`` for an unknown integer)."""
    return _status_name(status).decode("ascii", "replace")


def last_error() -> str:
    """This thread's last failure text from the library (empty after a success)."""
    n = _last_error(None, 0)
    if not n:
        return ""
    buf = ctypes.create_string_buffer(n + 1)
    _last_error(buf, n + 1)
    return buf.value.decode("utf-8", "replace")


def error_for_status(status: int, detail: Optional[str] = None) -> CellarError:
    """The exception for ``status`` (a subclass when one matches), with ``detail`` or, when it
    is None, this thread's last-error text."""
    cls = _BY_STATUS.get(status, CellarError)
    return cls(status, last_error() if detail is None else detail)


# Exceptions raised by Python provider callbacks, per thread, to chain onto ProviderError.
_callback_errors = threading.local()


def raise_status(status: int, needed: Optional[int] = None) -> NoReturn:
    """Raises the exception for a failing status (call only with a non-zero status)."""
    exc = error_for_status(status)
    if needed is not None and isinstance(exc, BufferTooSmallError):
        exc.needed = needed
    cause = getattr(_callback_errors, "exc", None)
    if cause is not None:
        _callback_errors.exc = None
        if isinstance(exc, (ProviderError, AuthenticationError)):
            if isinstance(cause, (KeyboardInterrupt, SystemExit)):
                # Ctrl-C or exit() inside a provider callback: the operation failed cleanly in
                # C; now that we are back in Python, let it do what it was meant to do.
                raise cause
            raise exc from cause
    raise exc
