"""Ownership of C handles: one registry of the handles opened through this package.

Every wrapper object (``Key``, ``Keyring``, ``PageCipher``, ``CellCipher``) owns one C handle
through :class:`Handle`. The handle is freed exactly once: by ``close()``, by leaving a ``with``
block, or by a ``weakref.finalize`` finalizer when the object is garbage collected.

At interpreter exit the finalizers do not run (``atexit = False``): a daemon thread may still be
inside a call on the handle, and freeing it under that thread would be a use-after-free. The
operating system reclaims the memory when the process ends. Close keys explicitly (or use ``with``)
to have their material wiped at a point you choose.

:func:`live_count` reports the handles currently open through the package, the Python equivalent
of a debug counter, so tests can check that a loop leaks nothing.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Dict, Optional, TypeVar

__all__ = ["Handle", "live_count", "live_counts"]

_T = TypeVar("_T", bound="Handle")

_lock = threading.Lock()
_live: Dict[str, int] = {}


def live_count(kind: Optional[str] = None) -> int:
    """Number of open handles (of one ``kind``: ``"key"``, ``"keyring"``, ``"page_cipher"``,
    ``"cell_cipher"``; or of every kind when ``kind`` is None)."""
    with _lock:
        if kind is None:
            return sum(_live.values())
        return _live.get(kind, 0)


def live_counts() -> Dict[str, int]:
    """A snapshot of :func:`live_count` per kind."""
    with _lock:
        return dict(_live)


def _free(free_fn: Callable[[int], None], ptr: int, kind: str, keep: Any) -> None:
    # keep (callbacks a keyring's providers use) is referenced until the C object is gone.
    free_fn(ptr)
    with _lock:
        _live[kind] -= 1


class Handle:
    """Base class of the wrappers: owns one C handle, closes it once, works as a context
    manager, and refuses pickling and copying (a copy would share, then double-free, the
    handle; key material must not be serialised by accident)."""

    _kind = "handle"
    _h: Optional[int] = None
    _finalizer: Optional[weakref.finalize] = None

    def _adopt(self, ptr: Optional[int], free_fn: Callable[[int], None], keep: Any = None) -> None:
        if not ptr:
            raise RuntimeError(f"Cellar returned no {self._kind} handle")  # pragma: no cover
        with _lock:
            _live[self._kind] = _live.get(self._kind, 0) + 1
        self._h = ptr
        fin = weakref.finalize(self, _free, free_fn, ptr, self._kind, keep)
        fin.atexit = False
        self._finalizer = fin

    def _closed_error(self) -> ValueError:
        return ValueError(f"operation on a closed {type(self).__name__}")

    @property
    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise self._closed_error()
        return h

    @property
    def closed(self) -> bool:
        """True once the handle has been freed."""
        return self._h is None

    def close(self) -> None:
        """Frees the C handle now (idempotent). Must not race with a call on another thread
        that is still using this object."""
        self._h = None
        fin = self._finalizer
        if fin is not None:
            fin()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(f"{type(self).__name__} objects cannot be pickled or copied")
