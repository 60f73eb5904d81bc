"""Cell encryption: single column values, randomized (AES-256-GCM with a module nonce),
deterministic (synthetic IV from approved primitives), or byte-compatible with SQL Server Always
Encrypted; column batches; blind indexes.

``context`` binds a ciphertext to its place (for example tenant, table, column and row key) and
must be given again to decrypt; a ``str`` context is UTF-8 encoded. The Always Encrypted modes take
no context.

Batches: :meth:`CellCipher.encrypt_many` and :meth:`CellCipher.decrypt_many` take a list of
values and return a list, with one C call per batch (the values are packed into one buffer with
offsets); :meth:`CellCipher.encrypt_packed` and :meth:`CellCipher.decrypt_packed` take and return
that packed layout directly (Arrow-like: one byte buffer plus ``count + 1`` offsets).
"""

from __future__ import annotations

import array
import ctypes
import enum
import functools
import re
import struct
import threading
import weakref
from ctypes import byref, c_char, c_size_t, c_uint32, c_void_p
from itertools import accumulate
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from ._buffers import SIZE_T_CODE, BytesLike, readable, text_or_bytes, value_readable, value_view, writable
from ._buffers import wipe as _wipe
from ._handles import Handle
from ._native import RowContexts, lib
from .errors import error_for_status, raise_status
from .keys import Key

__all__ = ["CellMode", "CellCipher", "BlindIndexKey", "blind_index", "Context"]

Context = Union[str, BytesLike]

#: Bytes a RANDOMIZED cell adds to its value: header (5) + nonce (12) + tag (16).
RANDOMIZED_OVERHEAD = 33
BLIND_INDEX_MIN_LEN = 4
BLIND_INDEX_MAX_LEN = 32

_free = lib.cellar_cell_cipher_free
_encrypt = lib.cellar_cell_encrypt
_decrypt = lib.cellar_cell_decrypt
_encrypt_batch = lib.cellar_cell_encrypt_batch
_decrypt_batch = lib.cellar_cell_decrypt_batch
_ct_len = lib.cellar_cell_ciphertext_len
_pt_max = lib.cellar_cell_plaintext_max_len
_batch_ct_len = lib.cellar_cell_batch_ciphertext_len
_batch_pt_max = lib.cellar_cell_batch_plaintext_max_len
_encrypt_rows = lib.cellar_cell_encrypt_batch_rows
_decrypt_rows = lib.cellar_cell_decrypt_batch_rows
_encrypt_threads = lib.cellar_cell_encrypt_batch_threads
_decrypt_threads = lib.cellar_cell_decrypt_batch_threads
_OFFSET_WIDTH = ctypes.sizeof(c_size_t)  # CELLAR_OFFSETS_64 on LP64, CELLAR_OFFSETS_32 elsewhere
_create = ctypes.create_string_buffer
_string_at = ctypes.string_at
_SIZE_T = ctypes.c_size_t
_BUFFER_TOO_SMALL = 3


class CellMode(enum.IntEnum):
    """Cell modes (``CELLAR_CELL_*``)."""

    def __str__(self) -> str:  # the name, not the integer (IntEnum prints the value)
        return f"{type(self).__name__}.{self.name}"


    #: AES-256-GCM with a module nonce: ``0x01 | version | nonce | ct | tag`` (value + 33 bytes).
    RANDOMIZED = 1
    #: Deterministic (SIV from AES-CBC + HMAC-SHA256), for equality lookups and joins.
    DETERMINISTIC = 2
    #: SQL Server Always Encrypted AEAD_AES_256_CBC_HMAC_SHA256, randomized type.
    MSSQL_RANDOMIZED = 3
    #: SQL Server Always Encrypted AEAD_AES_256_CBC_HMAC_SHA256, deterministic type.
    MSSQL_DETERMINISTIC = 4


def _context(context: Context) -> Tuple[Any, int, Any]:
    if context is None:
        raise TypeError("context=None is not a context: pass b\"\" for an empty one (a missing "
                        "context must not silently bind cells to the empty context)")
    if not context:
        if isinstance(context, (bytes, bytearray, str, memoryview)):
            return None, 0, None
    if isinstance(context, str):
        context = context.encode("utf-8")
    return readable(context, "context")


_MAX_THREADS = 64
# Below this many values per chunk, another thread costs more than it saves.
_MIN_CHUNK = 2048


def _run_batch(fn: Any, sizer: Any, h: int, mode: int, cp: Any, cn: int, data: Any,
               offsets: "array.array[int]", count: int, threads: int) -> Tuple[Any, List[Tuple[int, int, Any]]]:
    """Runs a batch call (``fn``: encrypt or decrypt batch) over ``count`` values, split into up
    to ``threads`` chunks of contiguous values, each on its own thread, each writing its own
    region of one output buffer. Returns the buffer and, per chunk in order, ``(start, used,
    out_offsets)`` (offsets relative to ``start``). Raises the first failing chunk's error, with
    the value index made absolute."""
    n = max(1, min(threads, count // _MIN_CHUNK))
    bounds = [count * i // n for i in range(n + 1)]
    isz = offsets.itemsize
    plan = []
    total = 0
    for a, b in zip(bounds, bounds[1:]):
        m = b - a
        offs = (_SIZE_T * (m + 1)).from_buffer(offsets, a * isz)  # a view: offsets[a..b]
        cap = sizer(mode, offs, m)
        plan.append((a, m, offs, total, cap))
        total += cap
    out = (c_char * total)() if total else None
    base = ctypes.addressof(out) if out is not None else 0
    results: List[Any] = [None] * n

    def run(i: int) -> None:
        a, m, offs, start, cap = plan[i]
        out_offsets = array.array(SIZE_T_CODE, [0]) * (m + 1)
        used = c_size_t()
        st = fn(h, cp, cn, data, offs, m, base + start if cap else None, cap,
                _size_array(out_offsets), byref(used))
        if st:  # read this thread's last error here, on the thread that failed
            exc = error_for_status(st)
            if a:
                exc.detail = re.sub(r"value (\d+)", lambda mo: f"value {int(mo.group(1)) + a}", exc.detail)
                exc.args = (f"{exc.name}: {exc.detail}",)
            results[i] = exc
        else:
            results[i] = (start, used.value, out_offsets)

    started = []
    try:  # every started worker is joined before `out` can go away, whatever happens here
        for i in range(1, n):
            w = threading.Thread(target=run, args=(i,), name=f"cellar-batch-{i}")
            w.start()
            started.append(w)
        run(0)
    finally:
        for w in started:
            w.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return out, results


def _is_missing(v: Any) -> bool:
    """None, a float NaN (pandas' missing value for object columns), pd.NA or pd.NaT."""
    if v is None:
        return True
    if isinstance(v, float):
        return v != v
    return type(v).__name__ in ("NAType", "NaTType")


def _check_table_input(values: Any) -> None:
    """Clear errors for table objects that are not a column of values."""
    name = type(values).__name__
    mod = type(values).__module__ or ""
    if mod.startswith("pandas") and name == "DataFrame":
        raise TypeError("a DataFrame holds several columns: pass one column (df['email']), "
                        "with encoding='utf-8' for str values")


def _bytes_address(b: bytes) -> Optional[int]:
    """The address of a ``bytes`` object's own buffer (valid while ``b`` lives); None if empty."""
    return ctypes.cast(ctypes.c_char_p(b), c_void_p).value if b else None


def _pack_contexts(contexts: Any, count: int) -> Tuple[bytes, "array.array[int]"]:
    """Packs per-row contexts (bytes-like or ``str``, UTF-8 encoded as a single context is) into
    one buffer with ``size_t`` offsets. Missing or other types are refused, naming the row."""
    if isinstance(contexts, (bytes, bytearray, memoryview, str)):
        raise TypeError("contexts must be a sequence with one context per value, not one "
                        "bytes-like value (use context= for a context shared by every value)")
    if not isinstance(contexts, (list, tuple)):
        contexts = list(contexts)
    if len(contexts) != count:
        raise ValueError(f"contexts has {len(contexts)} entries for {count} values")
    try:
        data = b"".join(contexts)
        offsets = array.array(SIZE_T_CODE, accumulate(map(len, contexts), initial=0))
        if offsets[-1] == len(data):
            return data, offsets
    except TypeError:
        pass
    parts = []
    for i, c in enumerate(contexts):
        if isinstance(c, str):
            parts.append(c.encode("utf-8"))
        elif c is None:
            raise TypeError(f"context {i} is None; every row needs a context (b'' for none)")
        else:
            try:
                parts.append(value_view(c, f"context {i}").tobytes())
            except TypeError:
                raise TypeError(f"context {i} is a {type(c).__name__}, not bytes or str") from None
    return b"".join(parts), array.array(SIZE_T_CODE, accumulate(map(len, parts), initial=0))


def _rows_fn(rows_call: Any, prefix: bytes, suffixes: bytes, ctx_offsets: "array.array[int]",
             value_offsets: "array.array[int]") -> Any:
    """Adapts a ``_rows`` C call to the shape :func:`_run_batch` calls (``fn(h, cp, cn, data,
    offs, m, ...)``): each chunk's value offsets are a view into ``value_offsets`` starting at
    the chunk's first row, so the same rows of ``ctx_offsets`` are found from its address."""
    vbase = ctypes.addressof((_SIZE_T * 1).from_buffer(value_offsets))
    cbase = ctypes.addressof((_SIZE_T * 1).from_buffer(ctx_offsets))
    pp, sp = _bytes_address(prefix), _bytes_address(suffixes)

    def fn(h: int, cp: Any, cn: int, data: Any, offs: Any, m: int, out: Any, cap: int,
           out_offsets: Any, used: Any) -> int:
        first = (ctypes.addressof(offs) - vbase) // _OFFSET_WIDTH
        rc = RowContexts(pp, len(prefix), sp, cbase + first * _OFFSET_WIDTH, _OFFSET_WIDTH)
        return rows_call(h, byref(rc), data, offs, m, out, cap, out_offsets, used)

    return fn


def _pack(values: Sequence[Any]) -> Tuple[bytes, "array.array[int]", int]:
    """Joins ``values`` into one buffer and computes their ``count + 1`` offsets. The third
    item is the common length when every value has the same length, else -1."""
    try:
        lens = list(map(len, values))
        data = b"".join(values)
    except TypeError:
        for i, v in enumerate(values):
            if _is_missing(v):
                raise TypeError(f"value {i} is missing ({v!r}); cell values cannot be missing: fill "
                                f"them, or pass missing='keep' to keep them missing (None) both ways") from None
            if isinstance(v, str):
                kind = "str" if type(v) is str else "numpy.str_"
                raise TypeError(f"value {i} is a {kind}; cell values must be bytes-like (encode "
                                f"them, or pass encoding='utf-8')") from None
            try:
                memoryview(v)
            except TypeError:
                raise TypeError(f"value {i} is a {type(v).__name__}, not a bytes-like object") from None
        raise
    count = len(lens)
    first = lens[0]
    if lens.count(first) == count and first * count == len(data):
        if first:
            return data, array.array(SIZE_T_CODE, range(0, first * count + 1, first)), first
        return data, array.array(SIZE_T_CODE, [0]) * (count + 1), 0
    offsets = array.array(SIZE_T_CODE, accumulate(lens, initial=0))
    if offsets[-1] != len(data):  # some len() is not the byte count: a 2-D byte array is fine,
        for i, v in enumerate(values):  # numpy.str_ (UTF-32) and wider items are refused
            value_view(v, f"value {i}")
        offsets = array.array(SIZE_T_CODE, accumulate((memoryview(v).nbytes for v in values), initial=0))
    return data, offsets, -1


@functools.lru_cache(maxsize=64)
def _struct(item_len: int, count: int) -> struct.Struct:
    return struct.Struct(f"{item_len}s" * count)


_CHUNK = 1024


def _split_equal(buf: Any, item_len: int, count: int) -> List[bytes]:
    """``count`` bytes objects of ``item_len`` bytes each, read straight out of ``buf`` by
    ``struct`` (no intermediate copy, no per-value Python bytecode)."""
    out: List[bytes] = []
    step = item_len * _CHUNK
    full = _struct(item_len, _CHUNK)
    off = 0
    for _ in range(count // _CHUNK):
        out.extend(full.unpack_from(buf, off))
        off += step
    rest = count % _CHUNK
    if rest:
        out.extend(_struct(item_len, rest).unpack_from(buf, off))
    return out


def _size_array(arr: "array.array[int]") -> Any:
    return (_SIZE_T * len(arr)).from_buffer(arr)


def _split(raw: bytes, offsets: "array.array[int]") -> List[bytes]:
    ol = offsets.tolist()
    return [raw[a:b] for a, b in zip(ol, ol[1:])]


def _split_buffer(buf: Any, start: int, offsets: "array.array[int]") -> List[bytes]:
    """Like :func:`_split` over ``buf[start:]`` (a ``c_char`` array, whose slices are ``bytes``):
    each value is copied once, and nothing else is."""
    ol = offsets.tolist()
    if start:
        ol = [o + start for o in ol]
    return [buf[a:b] for a, b in zip(ol, ol[1:])]


def _check_offsets(offsets: Any, data_len: int) -> "array.array[int]":
    if isinstance(offsets, array.array) and offsets.typecode == SIZE_T_CODE:
        arr = offsets
    else:
        try:
            arr = array.array(SIZE_T_CODE, offsets)
        except (TypeError, OverflowError):
            raise ValueError("offsets must be non-negative integers") from None
    if len(arr) < 1:
        raise ValueError("offsets needs count + 1 entries (at least one)")
    if any(b < a for a, b in zip(arr, arr[1:])):
        raise ValueError("offsets must be non-decreasing")
    if arr[-1] > data_len:
        raise ValueError(f"offsets reach {arr[-1]} but the buffer holds {data_len} bytes")
    return arr


class CellCipher(Handle):
    """A cell cipher: an AES-256 key, a mode and a key version, with subkeys derived once.

    Immutable and safe to share between threads. It holds its own reference to the key, so
    ``key`` may be closed afterwards. ``key_version`` is carried by native cells and required on
    decrypt; the Always Encrypted modes ignore it.
    """

    _kind = "cell_cipher"

    def __init__(self, key: Key, mode: CellMode = CellMode.RANDOMIZED, key_version: int = 1) -> None:
        if not isinstance(key, Key):
            raise TypeError("key must be a cellar.Key")
        try:
            self.mode = CellMode(mode)
        except ValueError:
            raise ValueError(f"unknown cell mode {mode!r}; use a cellar.CellMode") from None
        if not isinstance(key_version, int) or not 0 <= key_version <= 0xFFFFFFFF:
            raise ValueError("key_version must be an integer from 0 to 2**32 - 1")
        self.key_version = key_version
        self._mode = int(self.mode)
        self._randomized = self.mode == CellMode.RANDOMIZED
        out = c_void_p()
        st = lib.cellar_cell_cipher_new(key._handle, self._mode, key_version, byref(out))
        if st:
            raise_status(st)
        self._adopt(out.value, _free)
        self._key_ref = weakref.ref(key)  # for repr's locked state only

    # Sizes ---------------------------------------------------------------------------------------

    def ciphertext_len(self, plaintext_len: int) -> int:
        """Exact ciphertext length of a ``plaintext_len``-byte value in this mode."""
        return _ct_len(self._mode, plaintext_len)

    def plaintext_max_len(self, ciphertext_len: int) -> int:
        """Room a ``ciphertext_len``-byte cell needs to decrypt (0: no cell has that length)."""
        return _pt_max(self._mode, ciphertext_len)

    # Single values -------------------------------------------------------------------------------

    def encrypt(self, value: BytesLike, context: Context = b"", *,
                encoding: Optional[str] = None) -> bytes:
        """Encrypts one value bound to ``context``. A ``str`` value is refused unless
        ``encoding`` is given (then it is encoded with it, for example ``"utf-8"``)."""
        h = self._h
        if h is None:
            raise self._closed_error()
        if encoding is not None and isinstance(value, str):
            value = value.encode(encoding)
        if type(value) is bytes:
            p, n = value, len(value)
        else:
            p, n, keep = value_readable(value, "value")
        if type(context) is bytes:  # the common case, without a helper call
            cp, cn = context or None, len(context)
        else:
            cp, cn, ckeep = _context(context)
        size = n + RANDOMIZED_OVERHEAD if self._randomized else _ct_len(self._mode, n)
        out = (c_char * size)()
        out_len = c_size_t()
        st = _encrypt(h, cp, cn, p, n, out, size, byref(out_len))
        if st:
            raise_status(st, out_len.value)
        m = out_len.value
        return out.raw if m == size else _string_at(out, m)

    def encrypt_into(self, value: BytesLike, out: Any, context: Context = b"") -> int:
        """Encrypts one value into the writable buffer ``out``; returns the ciphertext length.
        Too small: :class:`~cellar.BufferTooSmallError` with ``needed`` set."""
        h = self._handle
        p, n, keep = value_readable(value, "value")
        op, on = writable(out, "out")
        cp, cn, ckeep = _context(context)
        out_len = c_size_t()
        st = _encrypt(h, cp, cn, p, n, op, on, byref(out_len))
        if st:
            raise_status(st, out_len.value)
        return out_len.value

    def decrypt(self, ciphertext: BytesLike, context: Context = b"", *,
                encoding: Optional[str] = None) -> Any:
        """Decrypts one cell bound to ``context``. Any failure (tampered, truncated, other key,
        version, mode or context) raises :class:`~cellar.AuthenticationError`. With
        ``encoding`` the plaintext is decoded to ``str``."""
        if encoding is not None:
            return self.decrypt(ciphertext, context).decode(encoding)
        h = self._h
        if h is None:
            raise self._closed_error()
        if type(ciphertext) is bytes:
            p, n = ciphertext, len(ciphertext)
        else:
            p, n, keep = value_readable(ciphertext, "ciphertext")
        if type(context) is bytes:
            cp, cn = context or None, len(context)
        else:
            cp, cn, ckeep = _context(context)
        size = _pt_max(self._mode, n)
        out = (c_char * size)() if size else None
        out_len = c_size_t()
        st = _decrypt(h, cp, cn, p, n, out, size, byref(out_len))
        if st:
            raise_status(st, out_len.value)
        m = out_len.value
        if not m or out is None:
            return b""
        try:
            return out.raw if m == size else _string_at(out, m)
        finally:
            _wipe(out)  # the returned bytes are the only plaintext copy left

    def decrypt_into(self, ciphertext: BytesLike, out: Any, context: Context = b"") -> int:
        """Decrypts one cell into the caller's writable buffer ``out`` (``bytearray``, writable
        ``memoryview``, ``mmap``...) and returns the plaintext length; no other copy of the
        plaintext is made, so a careful caller can wipe ``out`` when done. ``out`` needs
        :meth:`plaintext_max_len` bytes (too small:
        :class:`~cellar.BufferTooSmallError` with ``needed``). On any failure
        (:class:`~cellar.AuthenticationError` and the rest) ``out`` is left zeroed."""
        h = self._handle
        p, n, keep = readable(ciphertext, "ciphertext")
        op, on = writable(out, "out")
        cp, cn, ckeep = _context(context)
        out_len = c_size_t()
        st = _decrypt(h, cp, cn, p, n, op, on, byref(out_len))
        if st:
            raise_status(st, out_len.value)
        return out_len.value

    # Batches -------------------------------------------------------------------------------------

    def encrypt_many(
        self, values: Iterable[BytesLike], context: Context = b"", threads: int = 1, *,
        encoding: Optional[str] = None, contexts: Optional[Sequence[Context]] = None,
        missing: str = "error",
    ) -> List[Any]:
        """Encrypts many values of one column, all bound to ``context``, and returns the
        ciphertexts in order. The values are packed into one buffer and encrypted by one C call
        with the GIL released. ``threads`` is a maximum: with ``threads`` > 1 the library shares
        a large batch (``cellar_cell_encrypt_batch_threads``: 128 values or more, when its
        measured cost is well above a thread hand-off) between the calling thread and its own
        worker threads, with the same result and indicator as one thread. (With ``contexts``,
        ``threads`` > 1 splits the batch into chunks of at least 2048 values on Python threads,
        and :func:`~cellar.last_operation_approved` describes the calling thread's chunk.) If
        any value fails the whole batch fails and the error's ``detail`` names the value's
        index.

        Values must be bytes-like with one-byte items: ``str`` and ``numpy.str_`` values (a
        numpy string array holds UTF-32) and numpy integer arrays are refused with
        ``TypeError`` unless ``encoding`` is given, which encodes every ``str`` value with it
        (``encoding="utf-8"`` matches what a lookup by ``value.encode()`` computes).

        Per-row contexts: with ``contexts`` (one entry per value, bytes-like or ``str``), value
        ``i`` is bound to ``context + contexts[i]``, exactly as ``encrypt(values[i], context +
        contexts[i])`` would bind it, at batch speed (``context`` becomes the shared prefix,
        such as ``b"tenant=7/users/email/"``, and ``contexts`` the row keys).

        Missing values (``None``, NaN, ``pd.NA``) are refused with ``TypeError`` unless
        ``missing="keep"``, which leaves them ``None`` in the result (and :meth:`decrypt_many`
        with ``missing="keep"`` gives ``None`` back for them). A DataFrame is refused: pass one
        column. ``context=None`` is refused rather than read as empty."""
        return self._many(_encrypt_batch, _batch_ct_len, values, context, threads, True,
                          encoding, contexts, _encrypt_rows, missing)

    def decrypt_many(
        self, ciphertexts: Iterable[BytesLike], context: Context = b"", threads: int = 1, *,
        encoding: Optional[str] = None, contexts: Optional[Sequence[Context]] = None,
        missing: str = "error",
    ) -> List[Any]:
        """Decrypts many cells bound to ``context`` and returns the plaintexts in order (one C
        call per thread, as :meth:`encrypt_many`). One cell that fails to authenticate fails the
        batch (its index is in the error's ``detail``). With ``encoding`` the plaintexts are
        decoded to ``str``. ``contexts``: one context per cell, as in :meth:`encrypt_many`."""
        out = self._many(_decrypt_batch, _batch_pt_max, ciphertexts, context, threads,
                         self._randomized, None, contexts, _decrypt_rows, missing)
        if encoding is not None:
            return [None if v is None else v.decode(encoding) for v in out]
        return out

    def _many(self, fn: Any, sizer: Any, values: Iterable[BytesLike], context: Context,
              threads: int, exact: bool, encoding: Optional[str] = None,
              contexts: Optional[Sequence[Context]] = None, rows_call: Any = None,
              missing: str = "error") -> List[Any]:
        # exact: every output has exactly the size `sizer` reserves (encryption in every mode,
        # RANDOMIZED decryption), so the outputs are back to back with no gaps.
        h = self._handle
        decrypting = fn is _decrypt_batch  # (fn may be replaced by a per-row call below)
        if not isinstance(threads, int) or not 1 <= threads <= _MAX_THREADS:
            raise ValueError(f"threads must be an integer from 1 to {_MAX_THREADS}")
        if not isinstance(values, (list, tuple)):
            if isinstance(values, (bytes, bytearray, memoryview, str)):
                raise TypeError("expected an iterable of values, not one bytes-like value "
                                "(use encrypt/decrypt, or encrypt_packed for a packed buffer)")
            _check_table_input(values)
            values = list(values)
        if missing != "error":
            if missing != "keep":
                raise ValueError("missing must be 'error' or 'keep'")
            holes = {i for i, v in enumerate(values) if _is_missing(v)}
            if holes:  # run the present values, then put the holes back as None
                present = [v for i, v in enumerate(values) if i not in holes]
                rows = None if contexts is None else [c for i, c in enumerate(list(contexts)) if i not in holes]
                got = (self._many(fn, sizer, present, context, threads, exact, encoding, rows, rows_call)
                       if present else [])
                it = iter(got)
                return [None if i in holes else next(it) for i in range(len(values))]
        if encoding is not None:
            values = [v.encode(encoding) if isinstance(v, str) else v for v in values]
        count = len(values)
        if not count:
            return []
        data, offsets, same_len = _pack(values)
        if contexts is not None:
            suffixes, ctx_offsets = _pack_contexts(contexts, count)
            prefix = bytes(text_or_bytes(context, "context")) if context else b""
            fn = _rows_fn(rows_call, prefix, suffixes, ctx_offsets, offsets)
            cp, cn = None, 0
        else:
            cp, cn, ckeep = _context(context)
            if threads > 1:
                # One C call: the library shares the batch with its own worker threads when that
                # pays (no Python threads, no minimum chunk), and the indicator covers it all.
                tfn, nthreads = (_decrypt_threads if decrypting else _encrypt_threads), threads
                fn = lambda *a: tfn(*a, nthreads)  # noqa: E731
                threads = 1
        chunks = _run_batch(fn, sizer, h, self._mode, cp, cn, data, offsets, count, threads)
        out, results = chunks
        try:
            if same_len >= 0 and exact:  # equal inputs: equal outputs, read straight out by struct
                used = sum(r[1] for r in results)
                return _split_equal(out, used // count, count) if used else [b""] * count
            values_out: List[bytes] = []
            if decrypting:
                # Each value is copied straight out of the scratch (wiped below): no intermediate
                # bytes of the whole chunk, which could not be wiped (security review finding 8).
                for start, used, out_offsets in results:
                    values_out.extend(_split_buffer(out, start, out_offsets) if used else _split(b"", out_offsets))
                return values_out
            base = ctypes.addressof(out) if out is not None else 0
            for start, used, out_offsets in results:
                values_out.extend(_split(_string_at(base + start, used) if used else b"", out_offsets))
            return values_out
        finally:
            if decrypting:
                _wipe(out)  # plaintext scratch: the returned values are the copies left

    def encrypt_packed(
        self, data: BytesLike, offsets: Any, context: Context = b""
    ) -> Tuple[bytes, "array.array[int]"]:
        """Encrypts the values ``data[offsets[i]:offsets[i+1]]`` (``count + 1`` non-decreasing
        offsets; ``offsets[0]`` may be non-zero) and returns ``(ciphertexts, out_offsets)`` in the
        same layout: no per-value Python objects at all, for Arrow-style columns."""
        h = self._handle
        p, n, keep = readable(data, "data")
        arr = _check_offsets(offsets, n)
        count = len(arr) - 1
        out_offsets = array.array(SIZE_T_CODE, [0]) * (count + 1)
        if not count:
            return b"", out_offsets
        total = _batch_ct_len(self._mode, _size_array(arr), count)
        cp, cn, ckeep = _context(context)
        out = _create(total)
        out_len = c_size_t()
        st = _encrypt_batch(h, cp, cn, p, _size_array(arr), count, out, total,
                            _size_array(out_offsets), byref(out_len))
        if st:
            raise_status(st, out_len.value)
        return _string_at(out, out_len.value), out_offsets

    def decrypt_packed(
        self, data: BytesLike, offsets: Any, context: Context = b""
    ) -> Tuple[bytes, "array.array[int]"]:
        """The inverse of :meth:`encrypt_packed`: ``(plaintexts, out_offsets)``."""
        h = self._handle
        p, n, keep = readable(data, "data")
        arr = _check_offsets(offsets, n)
        count = len(arr) - 1
        if not count:
            return b"", array.array(SIZE_T_CODE, [0])
        return self._decrypt_packed(h, p, arr, count, context)

    def _decrypt_packed(self, h: int, data: Any, offsets: Any, count: int, context: Context) -> Tuple[bytes, Any]:
        out_offsets = array.array(SIZE_T_CODE, [0]) * (count + 1)
        total = _batch_pt_max(self._mode, _size_array(offsets), count)
        cp, cn, ckeep = _context(context)
        out = _create(total) if total else None
        out_len = c_size_t()
        st = _decrypt_batch(h, cp, cn, data, _size_array(offsets), count, out, total,
                            _size_array(out_offsets), byref(out_len))
        if st:
            raise_status(st, out_len.value)
        try:
            raw = _string_at(out, out_len.value) if out_len.value and out is not None else b""
        finally:
            _wipe(out)
        return raw, out_offsets

    # Scans ---------------------------------------------------------------------------------------

    @staticmethod
    def key_version_of(ciphertext: BytesLike) -> int:
        """The key version of a native cell (RANDOMIZED or DETERMINISTIC), read without any key
        (not authenticated until decrypted). Anything else raises
        :class:`~cellar.UnsupportedFormatError`. Do not call it on Always Encrypted cells."""
        p, n, keep = value_readable(ciphertext, "ciphertext")
        v = c_uint32()
        st = lib.cellar_cell_key_version(p, n, byref(v))
        if st:
            raise_status(st)
        return v.value

    def __repr__(self) -> str:
        state = " closed" if self._h is None else (" locked" if _key_locked(self) else "")
        return f"<cellar.CellCipher {self.mode.name} key_version={self.key_version}{state}>"


def _key_locked(obj: Any) -> bool:
    """Whether the key a cipher was made from is locked with its tenant (False if unknown)."""
    ref = getattr(obj, "_key_ref", None)
    key = ref() if ref is not None else None
    try:
        return key is not None and not key.closed and key.locked
    except Exception:  # pragma: no cover - repr must not raise
        return False


def blind_index(key: Key, value: BytesLike, context: Context = b"", length: int = 16, version: int = 2, *,
                encoding: Optional[str] = None) -> bytes:
    """A blind index of ``value`` bound to ``context``, for equality lookups without
    deterministic ciphertexts: HMAC-SHA256 under a key derived from ``key`` (AES-256),
    truncated to ``length`` bytes (4 to 32). A ``str`` value needs ``encoding``. An index
    carries no version, so keep ``version`` with it: 2 (the default, SP 800-108 key derivation)
    for new indexes, 1 to keep matching an index built before format v2 (HKDF; reports FIPS
    indicator 0)."""
    if encoding is not None and isinstance(value, str):
        value = value.encode(encoding)
    if not isinstance(key, Key):
        raise TypeError("key must be a cellar.Key")
    if not isinstance(length, int) or not BLIND_INDEX_MIN_LEN <= length <= BLIND_INDEX_MAX_LEN:
        raise ValueError(f"length must be an integer from {BLIND_INDEX_MIN_LEN} to {BLIND_INDEX_MAX_LEN}")
    if isinstance(version, bool) or version not in (1, 2):
        raise ValueError("version must be 1 or 2")
    p, n, keep = value_readable(value, "value")
    cp, cn, ckeep = _context(context)
    out = _create(length)
    st = lib.cellar_blind_index_versioned(key._handle, version, cp, cn, p, n, out, length)
    if st:
        raise_status(st)
    return out.raw


class BlindIndexKey(Handle):
    """A blind-index key: the HMAC key derived once from an AES-256 ``key`` for blind-index
    ``version`` (2, the default, for new indexes; 1 for indexes built before format v2), so
    each index costs one HMAC (:func:`blind_index` derives it on
    every call). Immutable, safe to share between threads; independent of ``key`` afterwards.
    A blind index carries no version: keep using the version an existing index was built with.
    """

    _kind = "blind_index_key"

    def __init__(self, key: Key, version: int = 2) -> None:
        if not isinstance(key, Key):
            raise TypeError("key must be a cellar.Key")
        if not isinstance(version, int) or isinstance(version, bool):
            raise TypeError("version must be an integer (1 or 2)")
        self.version = version
        out = c_void_p()
        st = lib.cellar_blind_index_key_new(key._handle, version, byref(out))
        if st:
            raise_status(st)
        self._adopt(out.value, lib.cellar_blind_index_key_free)

    @staticmethod
    def _length(length: int) -> int:
        if not isinstance(length, int) or not BLIND_INDEX_MIN_LEN <= length <= BLIND_INDEX_MAX_LEN:
            raise ValueError(f"length must be an integer from {BLIND_INDEX_MIN_LEN} to {BLIND_INDEX_MAX_LEN}")
        return length

    def compute(self, value: BytesLike, context: Context = b"", length: int = 16, *,
                encoding: Optional[str] = None) -> bytes:
        """The blind index of ``value`` bound to ``context`` (equal to :func:`blind_index`)."""
        h = self._handle
        length = self._length(length)
        if encoding is not None and isinstance(value, str):
            value = value.encode(encoding)
        p, n, keep = value_readable(value, "value")
        cp, cn, ckeep = _context(context)
        out = _create(length)
        st = lib.cellar_blind_index_compute(h, cp, cn, p, n, out, length)
        if st:
            raise_status(st)
        return out.raw

    def compute_many(self, values: Iterable[BytesLike], context: Context = b"", length: int = 16, *,
                     encoding: Optional[str] = None,
                     contexts: Optional[Sequence[Context]] = None) -> List[bytes]:
        """Blind indexes of many values in one C call, all bound to ``context`` or, with
        ``contexts``, value ``i`` bound to ``context + contexts[i]`` (as in
        :meth:`CellCipher.encrypt_many`). Returns ``length``-byte indexes in order."""
        h = self._handle
        length = self._length(length)
        if not isinstance(values, (list, tuple)):
            if isinstance(values, (bytes, bytearray, memoryview, str)):
                raise TypeError("expected an iterable of values, not one bytes-like value (use compute)")
            values = list(values)
        if encoding is not None:
            values = [v.encode(encoding) if isinstance(v, str) else v for v in values]
        count = len(values)
        if not count:
            return []
        data, offsets, _ = _pack(values)
        total = count * length
        out = _create(total)
        used = c_size_t()
        if contexts is None:
            cp, cn, ckeep = _context(context)
            st = lib.cellar_blind_index_batch(h, cp, cn, data, _size_array(offsets), count, length,
                                              out, total, byref(used))
        else:
            suffixes, ctx_offsets = _pack_contexts(contexts, count)
            prefix = bytes(text_or_bytes(context, "context")) if context else b""
            rc = RowContexts(_bytes_address(prefix), len(prefix), _bytes_address(suffixes),
                             ctypes.addressof(_size_array(ctx_offsets)), _OFFSET_WIDTH)
            st = lib.cellar_blind_index_batch_rows(h, byref(rc), data, _size_array(offsets), count,
                                                   length, out, total, byref(used))
        if st:
            raise_status(st, used.value)
        return _split_equal(out, length, count)

    def __repr__(self) -> str:
        state = " closed" if self._h is None else ""
        return f"<cellar.BlindIndexKey v{self.version}{state}>"
