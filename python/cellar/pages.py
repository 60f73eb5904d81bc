"""TDE page encryption: AES-256-XTS (length-preserving, confidentiality only) or AES-256-GCM
with a 48-byte trailer (authenticated, bound to page number, file id and key version).

Page sizes are 512 to 65536 bytes and a multiple of 16. The page size of a call is the length of
the buffer given (single-page calls) or the ``page_size`` argument (batch calls).
"""

from __future__ import annotations

import ctypes
import enum
import weakref
from ctypes import byref, c_int32, c_size_t, c_uint32, c_uint64, c_void_p
from typing import Any, List

from ._buffers import BytesLike, readable, writable
from ._buffers import wipe as _wipe
from ._handles import Handle
from ._native import lib
from .errors import InvalidArgumentError, raise_status
from .keys import Key

__all__ = ["PageMode", "PageCipher", "PAGE_MIN_SIZE", "PAGE_MAX_SIZE", "GCM_TRAILER_LEN"]

PAGE_MIN_SIZE = 512
PAGE_MAX_SIZE = 65536
#: Bytes a GCM page reserves at its end for the trailer.
GCM_TRAILER_LEN = 48
_ZERO_IS_EMPTY = 1
_MAX_THREADS = 64

_free = lib.cellar_page_cipher_free
_encrypt = lib.cellar_page_encrypt
_decrypt = lib.cellar_page_decrypt
_encrypt_pages = lib.cellar_page_encrypt_pages
_decrypt_pages = lib.cellar_page_decrypt_pages
_set_written_mark = lib.cellar_page_cipher_set_written_mark
_written_mark = lib.cellar_page_cipher_written_mark


class PageMode(enum.IntEnum):
    """Page modes (``CELLAR_PAGE_*``)."""

    def __str__(self) -> str:  # the name, not the integer (IntEnum prints the value)
        return f"{type(self).__name__}.{self.name}"


    #: AES-256-XTS: needs an AES256_XTS key; no tamper detection.
    XTS = 1
    #: AES-256-GCM with a 48-byte trailer per page: needs an AES256 key.
    GCM = 2


def _u64(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise ValueError(f"{what} must be an integer from 0 to 2**64 - 1")
    return value


def _check_page_size(n: int) -> None:
    if not PAGE_MIN_SIZE <= n <= PAGE_MAX_SIZE or n % 16:
        raise InvalidArgumentError(
            f"page size {n}: pages are {PAGE_MIN_SIZE} to {PAGE_MAX_SIZE} bytes and a multiple of 16")


class PageCipher(Handle):
    """A page cipher for one file: a page key, a mode, a file id and a key version.

    Safe to share between threads (two threads run at twice one thread's speed); immutable but
    for its written mark, which only rises (:meth:`set_written_mark`).
    It holds its own reference to the key, so ``key`` may be closed afterwards.

    ``zero_is_empty=True`` makes an all-zero page (never written) decrypt to zeros instead of
    failing (GCM) or being decrypted (XTS). On its own that is a hazard (a written page zeroed
    on disk reads back empty, without an error); raise :meth:`set_written_mark` to the number
    of pages the file is known to hold, and an all-zero page below it raises
    :class:`~cellar.AuthenticationError`.
    """

    _kind = "page_cipher"

    def __init__(
        self,
        key: Key,
        mode: PageMode,
        file_id: int = 0,
        key_version: int = 1,
        zero_is_empty: bool = False,
    ) -> None:
        if not isinstance(key, Key):
            raise TypeError("key must be a cellar.Key")
        try:
            self.mode = PageMode(mode)
        except ValueError:
            raise ValueError(f"unknown page mode {mode!r}; use cellar.PageMode.XTS or GCM") from None
        self.file_id = _u64(file_id, "file_id")
        if not isinstance(key_version, int) or not 0 <= key_version <= 0xFFFFFFFF:
            raise ValueError("key_version must be an integer from 0 to 2**32 - 1")
        self.key_version = key_version
        self.zero_is_empty = bool(zero_is_empty)
        out = c_void_p()
        st = lib.cellar_page_cipher_new(
            key._handle, self.mode, file_id, key_version, _ZERO_IS_EMPTY if zero_is_empty else 0, byref(out))
        if st:
            raise_status(st)
        self._adopt(out.value, _free)
        self._key_ref = weakref.ref(key)  # for repr's locked state only

    @property
    def reserved_bytes(self) -> int:
        """Bytes reserved at the end of each page: 48 for GCM, 0 for XTS."""
        return GCM_TRAILER_LEN if self.mode == PageMode.GCM else 0

    def payload_size(self, page_size: int) -> int:
        """Bytes of a ``page_size`` page that carry data (the rest is the GCM trailer)."""
        return page_size - self.reserved_bytes

    def set_written_mark(self, mark: int) -> int:
        """Declares that every page numbered below ``mark`` was written: an all-zero page there
        then raises :class:`~cellar.AuthenticationError` instead of reading as empty, while
        all-zero pages at or above the mark still read as zeros. The mark only rises (a lower
        value leaves it); returns the mark in force. Needs ``zero_is_empty=True`` (else
        :class:`~cellar.InvalidArgumentError`). Shared by every thread using this cipher."""
        st = _set_written_mark(self._handle, _u64(mark, "mark"))
        if st:
            raise_status(st)
        return self.written_mark

    @property
    def written_mark(self) -> int:
        """The written mark (0 until :meth:`set_written_mark` raises it)."""
        out = c_uint64()
        st = _written_mark(self._handle, byref(out))
        if st:
            raise_status(st)
        return out.value

    # Single pages ---------------------------------------------------------------------------

    def encrypt(self, page_no: int, data: BytesLike) -> bytes:
        """The encrypted page (a new ``bytes`` of ``len(data)``). GCM: the last 48 bytes of
        ``data`` are ignored and receive the trailer."""
        return self._one(_encrypt, page_no, data)

    def decrypt(self, page_no: int, data: BytesLike) -> bytes:
        """The decrypted page. GCM: a changed, moved or foreign page raises
        :class:`~cellar.AuthenticationError`; the trailer bytes of the result are zeros."""
        return self._one(_decrypt, page_no, data)

    def encrypt_into(self, page_no: int, buffer: Any) -> None:
        """Encrypts one page in place in a writable buffer (``bytearray``, writable
        ``memoryview``, ``mmap``...). A read-only buffer raises ``TypeError``."""
        self._one_inplace(_encrypt, page_no, buffer)

    def decrypt_into(self, page_no: int, buffer: Any, out: Any = None) -> None:
        """Decrypts one page in place, or, with ``out``, from ``buffer`` (any bytes-like page)
        into the caller's writable ``out`` of the same length. Either way the plaintext exists
        only in the caller's buffer (no copy is made), so a careful caller can wipe it. On
        failure the output holds zeros."""
        if out is None:
            self._one_inplace(_decrypt, page_no, buffer)
            return
        h = self._handle
        p, n, keep = readable(buffer, "page")
        op, on = writable(out, "out")
        _check_page_size(n)
        if on != n:
            raise ValueError(f"out holds {on} bytes; the page has {n}")
        st = _decrypt(h, _u64(page_no, "page_no"), p, op, n)
        if st:
            raise_status(st)

    def _one(self, fn: Any, page_no: int, data: BytesLike) -> bytes:
        h = self._handle
        p, n, keep = readable(data, "page")
        _check_page_size(n)
        out = ctypes.create_string_buffer(n)
        st = fn(h, _u64(page_no, "page_no"), p, out, n)
        if st:
            raise_status(st)
        if fn is _encrypt:
            return out.raw
        try:
            return out.raw
        finally:
            _wipe(out)  # plaintext scratch: the returned bytes are the copy left

    def _one_inplace(self, fn: Any, page_no: int, buffer: Any) -> None:
        h = self._handle
        p, n = writable(buffer, "page buffer")
        _check_page_size(n)
        st = fn(h, _u64(page_no, "page_no"), p, p, n)
        if st:
            raise_status(st)

    # Runs of pages -----------------------------------------------------------------------------

    def encrypt_pages(self, first_page_no: int, buffer: Any, page_size: int, threads: int = 1) -> None:
        """Encrypts ``len(buffer) // page_size`` contiguous pages in place; page ``i`` gets page
        number ``first_page_no + i``. ``threads`` > 1 splits the run over up to that many threads
        (the caller and Cellar's page workers, at most one per CPU; worth it for runs of 1 MiB or
        more). The GIL is released during the call. On failure every page holds zeros."""
        self._pages(_encrypt_pages, first_page_no, buffer, page_size, threads)

    def decrypt_pages(self, first_page_no: int, buffer: Any, page_size: int, threads: int = 1,
                      out: Any = None) -> None:
        """Decrypts contiguous pages in place (see :meth:`encrypt_pages`), or, with ``out``, from
        ``buffer`` (any bytes-like run) into the caller's writable ``out`` of the same length (no
        other copy of the plaintext is made). If any page fails, every page of the output holds
        zeros and the error's ``detail`` names the first failing page index."""
        self._pages(_decrypt_pages, first_page_no, buffer, page_size, threads, out)

    def decrypt_pages_each(self, first_page_no: int, buffer: Any, page_size: int,
                           threads: int = 1) -> List[int]:
        """Decrypts contiguous pages in place page by page: a page that fails does not take the
        others with it. Returns the indexes (within the run) of the pages that failed, empty
        when every page decrypted; those pages hold zeros, every other page its plaintext.
        Arguments are checked as in :meth:`decrypt_pages` (errors raise)."""
        h = self._handle
        p, n = writable(buffer, "page buffer")
        if not isinstance(page_size, int):
            raise TypeError("page_size must be an int")
        _check_page_size(page_size)
        if n % page_size:
            raise ValueError(f"buffer length {n} is not a multiple of page_size {page_size}")
        if not isinstance(threads, int) or not 0 <= threads <= _MAX_THREADS:
            raise ValueError(f"threads must be an integer from 0 to {_MAX_THREADS}")
        count = n // page_size
        if count and first_page_no + count - 1 >= 1 << 64:
            raise ValueError("page numbers would pass 2**64 - 1")
        status = (c_int32 * count)() if count else None
        failed = c_size_t()
        st = lib.cellar_page_decrypt_pages_status(h, _u64(first_page_no, "first_page_no"), p, p,
                                                  page_size, count, threads, status, byref(failed))
        if st and not failed.value:
            raise_status(st)
        return [i for i, s in enumerate(status or ()) if s] if failed.value else []

    def _pages(self, fn: Any, first: int, buffer: Any, page_size: int, threads: int,
               out: Any = None) -> None:
        h = self._handle
        if out is None:
            p, n = writable(buffer, "page buffer")
            op = p
        else:
            p, n, keep = readable(buffer, "pages")
            op, on = writable(out, "out")
            if on != n:
                raise ValueError(f"out holds {on} bytes; the run has {n}")
        if not isinstance(page_size, int):
            raise TypeError("page_size must be an int")
        _check_page_size(page_size)
        if n % page_size:
            raise ValueError(f"buffer length {n} is not a multiple of page_size {page_size}")
        if not isinstance(threads, int) or not 0 <= threads <= _MAX_THREADS:
            raise ValueError(f"threads must be an integer from 0 to {_MAX_THREADS}")
        count = n // page_size
        if count and first + count - 1 >= 1 << 64:
            raise ValueError("page numbers would pass 2**64 - 1")
        st = fn(h, _u64(first, "first_page_no"), p, op, page_size, count, threads)
        if st:
            raise_status(st)

    # Scans ---------------------------------------------------------------------------------------

    @staticmethod
    def key_version_of(page: BytesLike) -> int:
        """The key version in a GCM page's trailer, read without any key (to drive an online
        re-encryption scan; not authenticated until the page is decrypted). A page without a
        Cellar GCM trailer raises :class:`~cellar.UnsupportedFormatError`."""
        p, n, keep = readable(page, "page")
        v = c_uint32()
        st = lib.cellar_page_key_version(p, n, byref(v))
        if st:
            raise_status(st)
        return v.value

    def __repr__(self) -> str:
        from .cells import _key_locked
        state = " closed" if self._h is None else (" locked" if _key_locked(self) else "")
        return (f"<cellar.PageCipher {self.mode.name} file_id={self.file_id} "
                f"key_version={self.key_version}{state}>")
