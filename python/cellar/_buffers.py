"""Zero-copy access to Python buffers for ctypes calls.

``readable(obj)`` accepts any C-contiguous bytes-like object (``bytes``, ``bytearray``,
``memoryview``, ``array.array``, ``mmap`` ...) and returns ``(param, nbytes, keep)``: ``param`` can
be passed for a ``c_void_p`` argument and points at the object's own memory (no copy), and ``keep``
must stay referenced until the call returns. ``writable(obj)`` does the same for in-place calls and
refuses read-only buffers with ``TypeError``.

How the pointer is obtained, fastest first: ``bytes`` are passed as they are (ctypes passes their
internal buffer); writable buffers through ``(c_char * n).from_buffer``; other read-only buffers
(a ``memoryview`` of ``bytes``, a read-only ``mmap``) through ``PyObject_GetBuffer``, released
when ``keep`` is collected. Without ``ctypes.pythonapi`` (not CPython) the last case copies.
"""

from __future__ import annotations

import array
import ctypes
from ctypes import POINTER, Structure, c_char, c_int, c_size_t, c_ssize_t, c_void_p
from typing import Any, Optional, Tuple, Union

__all__ = ["BytesLike", "readable", "writable", "text_or_bytes", "SIZE_T_CODE", "Secret", "wipe"]

BytesLike = Union[bytes, bytearray, memoryview]

#: ``array.array`` type code whose items are ``size_t`` (for offsets passed to the batch calls).
SIZE_T_CODE = "L" if array.array("L").itemsize == ctypes.sizeof(c_size_t) else "Q"


class _PyBuffer(Structure):
    # Py_buffer (stable layout, part of the limited API since 3.11). obj is c_void_p on purpose:
    # ctypes must not touch its reference count; PyBuffer_Release does.
    _fields_ = [
        ("buf", c_void_p),
        ("obj", c_void_p),
        ("len", c_ssize_t),
        ("itemsize", c_ssize_t),
        ("readonly", c_int),
        ("ndim", c_int),
        ("format", c_void_p),
        ("shape", c_void_p),
        ("strides", c_void_p),
        ("suboffsets", c_void_p),
        ("internal", c_void_p),
    ]


_get_buffer: Any
_release_buffer: Any
try:
    _get_buffer = ctypes.pythonapi.PyObject_GetBuffer
    _get_buffer.argtypes = [ctypes.py_object, POINTER(_PyBuffer), c_int]
    _get_buffer.restype = c_int
    _release_buffer = ctypes.pythonapi.PyBuffer_Release
    _release_buffer.argtypes = [POINTER(_PyBuffer)]
    _release_buffer.restype = None
except (AttributeError, OSError):  # pragma: no cover - not CPython
    _get_buffer = None
    _release_buffer = None

_PyBUF_ND_CONTIG = 0x0008 | 0x0010 | 0x0020  # PyBUF_C_CONTIGUOUS (ND + strides + C order)


class _Pinned:
    """Holds a Py_buffer export of a read-only object until collected."""

    __slots__ = ("view", "held")

    def __init__(self, obj: Any) -> None:
        self.held = False
        self.view = _PyBuffer()
        _get_buffer(obj, ctypes.byref(self.view), _PyBUF_ND_CONTIG)  # raises on failure
        self.held = True

    def __del__(self) -> None:
        if self.held and _release_buffer is not None:
            self.held = False
            _release_buffer(ctypes.byref(self.view))


def _memoryview(obj: Any, what: str) -> memoryview:
    if isinstance(obj, str):
        raise TypeError(f"{what} must be a bytes-like object, not str (encode it first)")
    try:
        mv = memoryview(obj)
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(obj).__name__}") from None
    if not mv.c_contiguous:
        raise ValueError(f"{what} must be a C-contiguous buffer")
    return mv


def readable(obj: Any, what: str = "data") -> Tuple[Any, int, Any]:
    """``(param, nbytes, keep)`` for a read-only input; see the module docstring."""
    t = type(obj)
    if t is bytes:
        return obj, len(obj), None
    if t is bytearray:
        n = len(obj)
        if not n:
            return None, 0, None
        arr = (c_char * n).from_buffer(obj)
        return arr, n, arr
    mv = _memoryview(obj, what)
    n = mv.nbytes
    if not n:
        return None, 0, None
    if not mv.readonly:
        arr = (c_char * n).from_buffer(mv)
        return arr, n, arr
    if _get_buffer is None:  # pragma: no cover - not CPython
        data = mv.tobytes()
        return data, n, data
    pinned = _Pinned(mv)
    return pinned.view.buf, n, pinned


def writable(obj: Any, what: str = "buffer") -> Tuple[Any, int]:
    """``(param, nbytes)`` for an in-place call; ``param`` keeps the buffer exported while it
    lives. Read-only buffers (``bytes``, a ``memoryview`` of ``bytes``) raise ``TypeError``."""
    if type(obj) is bytearray:
        n = len(obj)
        return ((c_char * n).from_buffer(obj) if n else None), n
    if isinstance(obj, bytes):
        raise TypeError(
            f"{what} must be a writable buffer (bytearray, writable memoryview) for an in-place "
            f"call, not read-only bytes; use the call that returns new bytes instead")
    mv = _memoryview(obj, what)
    if mv.readonly:
        raise TypeError(
            f"{what} is a read-only buffer; an in-place call needs a writable one (bytearray, "
            f"writable memoryview)")
    n = mv.nbytes
    return ((c_char * n).from_buffer(mv) if n else None), n


def text_or_bytes(obj: Any, what: str) -> Any:
    """``str`` becomes UTF-8 bytes; bytes-like objects are returned unchanged (for labels,
    contexts and passwords)."""
    if isinstance(obj, str):
        return obj.encode("utf-8")
    return obj


def wipe(buf: Any, nbytes: Optional[int] = None) -> None:
    """Overwrites a ctypes array (or a writable buffer) with zeros: scratch buffers that held
    plaintext or key material are wiped before Python frees them."""
    if buf is None:
        return
    if not isinstance(buf, ctypes.Array):
        buf = (c_char * memoryview(buf).nbytes).from_buffer(buf)
    ctypes.memset(buf, 0, ctypes.sizeof(buf) if nbytes is None else nbytes)


_as_utf8: Any
try:
    _as_utf8 = ctypes.pythonapi.PyUnicode_AsUTF8AndSize
    _as_utf8.argtypes = [ctypes.py_object, POINTER(c_ssize_t)]
    _as_utf8.restype = c_void_p
except (AttributeError, OSError):  # pragma: no cover - not CPython
    _as_utf8 = None


class Secret:
    """A secret input (a password) for C calls, made so Cellar leaves no unwiped copy behind.

    A ``str`` is encoded to UTF-8 straight into a private ``bytearray`` (CPython: copied from the
    string's own UTF-8 form, no intermediate ``bytes``), which :meth:`wipe` (or leaving a ``with``
    block) zeroes. A bytes-like object is passed as it is, with no copy; wiping it is the caller's
    business (pass a ``bytearray`` to be able to). The ``str`` itself is immutable and cannot be
    wiped by anyone: prefer a ``bytearray`` for secrets."""

    __slots__ = ("param", "n", "_copy", "_keep")

    def __init__(self, obj: Any, what: str) -> None:
        self._copy: Optional[bytearray] = None
        self._keep: Any = None
        if isinstance(obj, str):
            self._copy = _utf8_bytearray(obj)
            self.n = len(self._copy)
            self.param = (c_char * self.n).from_buffer(self._copy) if self.n else None
        else:
            self.param, self.n, self._keep = readable(obj, what)

    def wipe(self) -> None:
        """Zeroes the private copy (if any) and releases the buffers."""
        if self._copy is not None and self.param is not None:
            ctypes.memset(self.param, 0, self.n)
        self.param = None
        self._keep = None

    def __enter__(self) -> "Secret":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wipe()


def _utf8_bytearray(s: str) -> bytearray:
    if _as_utf8 is not None:
        size = c_ssize_t()
        ptr = _as_utf8(s, ctypes.byref(size))
        if ptr:
            out = bytearray(size.value)
            if size.value:
                ctypes.memmove((c_char * size.value).from_buffer(out), ptr, size.value)
            return out
    return bytearray(s.encode("utf-8"))  # pragma: no cover - not CPython (a bytes copy remains)


def as_bytes(obj: Any, what: str = "data") -> bytes:
    """A bytes copy of a bytes-like object (for the few places that need an immutable value)."""
    if type(obj) is bytes:
        return obj
    return _memoryview(obj, what).tobytes()


def optional_readable(obj: Optional[Any], what: str) -> Tuple[Any, int, Any]:
    """Like :func:`readable`, with ``None`` meaning empty."""
    if obj is None:
        return None, 0, None
    return readable(obj, what)


def _wide_item_error(what: str, obj: Any, mv: memoryview) -> TypeError:
    name = type(obj).__name__
    mod = type(obj).__module__ or ""
    if mod.startswith("numpy"):
        name = f"numpy {name} (dtype {getattr(obj, 'dtype', mv.format)})"
    return TypeError(
        f"{what} is a {name} whose items are {mv.itemsize} bytes wide, not bytes: its raw memory "
        f"would be encrypted (platform byte order, UTF-32 for numpy strings); pass bytes, or "
        f"encode text with encoding='utf-8', or convert explicitly (memoryview(x).cast('B'))")


def value_view(obj: Any, what: str = "value") -> memoryview:
    """Checks that ``obj`` is a cell value: bytes-like with one-byte items. ``str`` (and its
    numpy twin ``numpy.str_``) and buffers of wider items (numpy integer arrays, ``array('H')``)
    are refused with ``TypeError``: encrypting their raw memory would silently produce values
    that never match the UTF-8 / byte values a lookup uses."""
    if isinstance(obj, (bytes, bytearray)):
        return memoryview(obj)
    if isinstance(obj, str):
        kind = "numpy.str_" if type(obj) is not str else "str"
        raise TypeError(f"{what} is a {kind}; cell values must be bytes-like (encode it, or pass "
                        f"encoding='utf-8')")
    mv = _memoryview(obj, what)
    if mv.itemsize != 1:
        raise _wide_item_error(what, obj, mv)
    return mv


def value_readable(obj: Any, what: str = "value") -> Tuple[Any, int, Any]:
    """:func:`readable` for a cell value, refusing what :func:`value_view` refuses."""
    t = type(obj)
    if t is bytes or t is bytearray:
        return readable(obj, what)
    value_view(obj, what)
    return readable(obj, what)
