"""Arrow columns: encrypt and decrypt ``pyarrow`` arrays without a Python object per value.

Needs ``pyarrow`` (``pip install 'cellar[arrow]'``). The functions hand the arrays' own offsets
and data buffers to the C batch calls (``cellar_cell_encrypt_batch`` / ``..._decrypt_batch``) and
build the result from the buffers the C call wrote::

    import pyarrow as pa, cellar, cellar.arrow as ca

    cells = cellar.CellCipher(column_key, cellar.CellMode.RANDOMIZED)
    emails = pa.array(["a@example.com", None, "c@example.com"])
    ct = ca.encrypt_array(cells, emails, context="users/email")        # pa.binary(), null stays null
    pt = ca.decrypt_array(cells, ct, context="users/email", type=pa.string())

Supported inputs: ``binary``, ``string``, ``large_binary`` and ``large_string`` arrays and chunked
arrays of them (sliced arrays included). Anything else raises ``TypeError``. Encryption returns
``binary`` (``large_binary`` for the large types, or with ``large=True``); decryption returns the
same, or the ``type`` asked for (``string``/``large_string`` outputs are checked to be UTF-8).

Layout and costs, per array (per chunk for chunked arrays):

- ``large_*`` offsets (``int64``) are passed to C in place; ``binary``/``string`` offsets
  (``int32``) are widened to ``size_t`` by one vectorised Arrow cast (8 bytes per value). The data
  buffer is passed in place. Output offsets are written by C as ``size_t`` and narrowed back for
  ``binary`` outputs (one cast; a column beyond 2 GiB of output needs ``large=True``).
- Nulls stay null: an array with nulls is compacted first (Arrow's ``drop_null``, one copy of the
  valid values), the valid values go through one C call, and the output offsets are spread back
  over the rows (one vectorised ``take``); the validity bitmap is passed through. Null rows hold
  no ciphertext (0 bytes).
- Every value of one array is bound to one context (``context``: bytes or str, for example
  ``"tenant/table/column"``). Per-row contexts (``row_context``) bind value ``i`` to
  ``context + row_context[i]``.
- A failing value fails the call: the exception is the one the batch call raised
  (:class:`~cellar.AuthenticationError` for a tampered, moved or foreign cell), with ``index``
  set to the value's row in the array (or chunked array) that was passed, and ``detail`` naming
  it. No partial output is returned.

:func:`encrypt_table` / :func:`decrypt_table` do this for named columns of a ``pyarrow.Table``
and record the original type in the field metadata so that decryption restores it;
:func:`blind_index_array` computes blind index columns for equality lookups. pandas and Polars
reach these through their Arrow conversion (``pa.Table.from_pandas(df)``, ``df.to_arrow()``).
"""

from __future__ import annotations

import ctypes
import re
from ctypes import byref, c_size_t
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

try:
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError as exc:  # pragma: no cover - exercised only without pyarrow
    raise ImportError(
        "cellar.arrow needs pyarrow: pip install 'cellar[arrow]' (or pip install pyarrow)"
    ) from exc

from . import cells as _cells
from ._native import RowContexts, lib
from .cells import CellCipher, CellMode
from .errors import CellarError, error_for_status
from .keys import Key

__all__ = [
    "encrypt_array",
    "decrypt_array",
    "blind_index_array",
    "encrypt_table",
    "decrypt_table",
    "ArrayLike",
]

ArrayLike = Union["pa.Array", "pa.ChunkedArray"]
Context = Union[str, bytes, bytearray, memoryview]

if ctypes.sizeof(c_size_t) != 8:  # pragma: no cover - 32-bit hosts
    raise ImportError("cellar.arrow needs a 64-bit platform (size_t offsets)")

_SIZE_T_ARRAY = c_size_t * 1
_encrypt_batch = lib.cellar_cell_encrypt_batch
_decrypt_batch = lib.cellar_cell_decrypt_batch
_batch_ct_len = lib.cellar_cell_batch_ciphertext_len
_batch_pt_max = lib.cellar_cell_batch_plaintext_max_len
_encrypt_threads = lib.cellar_cell_encrypt_batch_threads
_decrypt_threads = lib.cellar_cell_decrypt_batch_threads
_MAX_THREADS = 64
_encrypt_rows = lib.cellar_cell_encrypt_batch_rows
_decrypt_rows = lib.cellar_cell_decrypt_batch_rows
_bkey_new = lib.cellar_blind_index_key_new
_bkey_free = lib.cellar_blind_index_key_free
_blind_batch = lib.cellar_blind_index_batch
_blind_batch_rows = lib.cellar_blind_index_batch_rows
_BLIND_INDEX_V1 = 1

#: Field metadata keys written by :func:`encrypt_table`.
META_TYPE = b"cellar.type"
META_MODE = b"cellar.mode"
META_ROW_CONTEXT = b"cellar.row_context"

_TYPES = {
    # type -> 64-bit offsets
    pa.binary(): False,
    pa.string(): False,
    pa.large_binary(): True,
    pa.large_string(): True,
}


def _is_large(t: "pa.DataType", what: str) -> bool:
    large = _TYPES.get(t)
    if large is None:
        raise TypeError(
            f"{what} must be a pyarrow binary, string, large_binary or large_string array, not "
            f"{t} (cast it first, e.g. array.cast(pa.large_binary()))")
    return large


def _context_bytes(context: Any, what: str = "context") -> bytes:
    if context is None:
        raise TypeError(f"{what} must be bytes or str (use b'' for no context), not None")
    if isinstance(context, str):
        return context.encode("utf-8")
    if isinstance(context, (bytes, bytearray, memoryview)):
        return bytes(context)
    raise TypeError(f"{what} must be bytes or str, not {type(context).__name__}")


def _cipher(cipher: Any) -> CellCipher:
    if not isinstance(cipher, CellCipher):
        raise TypeError(f"cipher must be a cellar.CellCipher, not {type(cipher).__name__}")
    return cipher


def _as_array(obj: Any, what: str) -> ArrayLike:
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return obj
    raise TypeError(f"{what} must be a pyarrow Array or ChunkedArray, not {type(obj).__name__}")


# Offsets ------------------------------------------------------------------------------------------


def _size_t_offsets(arr: "pa.Array", large: bool) -> Tuple[int, Any, int]:
    """``(address, keep, data_end)``: the address of ``len(arr) + 1`` ``size_t`` offsets of
    ``arr`` (in place for int64 offsets, a widened copy for int32), an object to keep alive
    meanwhile, and the last offset (checked against the data buffer by the caller)."""
    offs = pa.Array.from_buffers(pa.int64() if large else pa.int32(), len(arr) + 1,
                                 [None, arr.buffers()[1]], offset=arr.offset)  # a view, no copy
    if large:
        buf = offs.buffers()[1]
        first, last = offs[0].as_py(), offs[len(offs) - 1].as_py()
        if first < 0 or last < 0:
            raise ValueError("array has negative offsets")
        return buf.address + 8 * offs.offset, buf, last
    wide = offs.cast(pa.uint64())  # refuses negative offsets
    return wide.buffers()[1].address + 8 * wide.offset, wide, wide[len(wide) - 1].as_py()


def _offsets_view(address: int, count: int) -> Any:
    return (c_size_t * (count + 1)).from_address(address)


def _narrow(out_offsets: "pa.Buffer", count: int, large: bool) -> "pa.Array":
    wide = pa.Array.from_buffers(pa.int64(), count + 1, [None, out_offsets])
    if large:
        return wide
    try:
        return wide.cast(pa.int32())
    except pa.ArrowInvalid:
        raise OverflowError(
            "the output of this array exceeds the 2 GiB a binary array can address; pass "
            "large=True (large_binary output) or split the array into chunks") from None


def _check_layout(arr: "pa.Array", what: str) -> None:
    """Arrow's own structural checks (buffer sizes for the length and offset: O(1)), so that
    the C call never reads past a buffer of a hand-built array."""
    try:
        arr.validate()
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{what} is not a valid Arrow array: {exc}") from None


# Per-row contexts ----------------------------------------------------------------------------------


def _row_context_array(row_context: Any, count: int) -> ArrayLike:
    """Checks a per-row context column: binary/string (large or not) or integers (bound as
    their decimal text), no nulls, one row per value."""
    if not isinstance(row_context, (pa.Array, pa.ChunkedArray)):
        raise TypeError(f"row_context must be a pyarrow Array or ChunkedArray, not "
                        f"{type(row_context).__name__}")
    t = row_context.type
    if pa.types.is_integer(t):
        row_context = row_context.cast(pa.string())
    else:
        _is_large(row_context.type, "row_context")
    if len(row_context) != count:
        raise ValueError(f"row_context has {len(row_context)} rows, the array {count}")
    if row_context.null_count:
        raise ValueError("row_context has nulls: every row needs a context")
    return row_context


def _row_contexts(prefix: bytes, rc: "pa.Array") -> Tuple[RowContexts, Any]:
    """``cellar_row_contexts`` over an Arrow binary/string array's own buffers (no copy)."""
    large = _TYPES[rc.type]
    width = 8 if large else 4
    _check_layout(rc, "row_context")
    bufs = rc.buffers()
    data = bufs[2]
    offs = pa.Array.from_buffers(pa.int64() if large else pa.int32(), len(rc) + 1,
                                 [None, bufs[1]], offset=rc.offset)
    first, last = offs[0].as_py(), offs[len(offs) - 1].as_py()
    # with these bounds, the C call's non-decreasing check keeps every row inside the buffer
    if not 0 <= first <= last <= (data.size if data is not None else 0):
        raise ValueError("row_context offsets are out of its data buffer's bounds")
    rows = RowContexts()
    rows.prefix = ctypes.cast(ctypes.c_char_p(prefix), ctypes.c_void_p) if prefix else None
    rows.prefix_len = len(prefix)
    rows.suffixes = data.address if data is not None and data.size else None
    rows.suffix_offsets = bufs[1].address + width * rc.offset
    rows.offset_width = width
    return rows, (prefix, bufs)


# One C batch call -----------------------------------------------------------------------------------


def _reindex(exc: CellarError, mapper: Callable[[int], int]) -> CellarError:
    """Rewrites "value N" in the error's detail to the caller's row and sets ``exc.index``."""
    m = re.search(r"value (\d+)", exc.detail)
    if m:
        row = mapper(int(m.group(1)))
        exc.index = row  # type: ignore[attr-defined]
        exc.detail = exc.detail[: m.start()] + f"value {row}" + exc.detail[m.end():]
        exc.args = (f"{exc.name}: {exc.detail}",)
    else:
        exc.index = None  # type: ignore[attr-defined]
    return exc


def _run(cipher: CellCipher, encrypt: bool, arr: "pa.Array", large_in: bool, large_out: bool,
         ctx: bytes, rows: Optional["pa.Array"] = None, threads: int = 1) -> Tuple["pa.Array", "pa.Buffer"]:
    """One batch call over every value of ``arr`` (no nulls). Returns (offsets array, data)."""
    h = cipher._handle
    count = len(arr)
    addr, keep, end = _size_t_offsets(arr, large_in)
    data = arr.buffers()[2]
    size = data.size if data is not None else 0
    if end > size:
        raise ValueError(f"array offsets reach {end} but its data buffer holds {size} bytes")
    values = data.address if (data is not None and end) else None
    offsets = _offsets_view(addr, count)
    mode = cipher._mode
    total = (_batch_ct_len if encrypt else _batch_pt_max)(mode, offsets, count)
    if encrypt and total == 0:
        raise ValueError("array offsets decrease or the column is too large")
    out = pa.allocate_buffer(total) if total else None
    out_offsets = pa.allocate_buffer(8 * (count + 1))
    used = c_size_t()
    oaddr = out.address if out is not None else None
    if rows is None and threads > 1:
        st = (_encrypt_threads if encrypt else _decrypt_threads)(
            h, ctx or None, len(ctx), values, offsets, count, oaddr, total,
            _offsets_view(out_offsets.address, count), byref(used), threads)
    elif rows is None:
        cp = ctx or None
        st = (_encrypt_batch if encrypt else _decrypt_batch)(
            h, cp, len(ctx), values, offsets, count, oaddr, total,
            _offsets_view(out_offsets.address, count), byref(used))
    else:
        rc, rkeep = _row_contexts(ctx, rows)
        st = (_encrypt_rows if encrypt else _decrypt_rows)(
            h, byref(rc), values, offsets, count, oaddr, total,
            _offsets_view(out_offsets.address, count), byref(used))
        del rkeep
    del keep
    if st:
        raise error_for_status(st)
    n = used.value
    if out is None or n == 0:
        body = pa.py_buffer(b"")
    else:
        body = out if n == total else out.slice(0, n)
    return _narrow(out_offsets, count, large_out), body


def _one(cipher: CellCipher, encrypt: bool, arr: "pa.Array", ctx: bytes, large: Optional[bool],
         out_type: Optional["pa.DataType"], row0: int, rows: Optional["pa.Array"] = None,
         threads: int = 1) -> "pa.Array":
    large_in = _is_large(arr.type, "array")
    if out_type is None:
        large_out = large_in if large is None else bool(large)
        out_type = pa.large_binary() if large_out else pa.binary()
    else:
        large_out = _is_large(out_type, "type")
    count = len(arr)
    if count == 0:
        return pa.array([], type=out_type)
    _check_layout(arr, "array")
    nulls = arr.null_count
    if nulls == count:
        return pa.nulls(count, type=out_type)
    if nulls:
        valid = arr.is_valid()
        dense = arr.drop_null()
        if rows is not None:
            rows = rows.filter(valid)
    else:
        valid = None
        dense = arr
    try:
        offs, body = _run(cipher, encrypt, dense, large_in, large_out, ctx, rows, threads)
    except CellarError as exc:
        if valid is None:
            mapper = lambda i: row0 + i  # noqa: E731
        else:
            where = pc.indices_nonzero(valid)
            mapper = lambda i: row0 + where[i].as_py()  # noqa: E731
        raise _reindex(exc, mapper) from None
    if valid is None:
        validity = None
    else:
        # Row r's bounds are dense bounds [k, k + 1] where k = valid rows before r.
        ranks = pc.cumulative_sum(valid.cast(pa.int32()))
        take = pa.concat_arrays([pa.array([0], pa.int32()), ranks])
        offs = offs.take(take)
        validity = valid.buffers()[1]
        if valid.offset:  # pragma: no cover - is_valid returns a fresh array
            validity = pa.concat_arrays([valid]).buffers()[1]
    result = pa.Array.from_buffers(out_type, count, [validity, offs.buffers()[1], body],
                                   null_count=nulls, offset=0)
    if pa.types.is_string(out_type) or pa.types.is_large_string(out_type):
        try:
            result.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"decrypted values are not valid UTF-8 for {out_type}: {exc}") from None
    return result


def _apply(cipher: Any, encrypt: bool, array: Any, context: Context, row_context: Any,
           large: Optional[bool], out_type: Optional["pa.DataType"], threads: int = 1) -> ArrayLike:
    cipher = _cipher(cipher)
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= _MAX_THREADS:
        raise ValueError(f"threads must be an integer from 1 to {_MAX_THREADS}")
    array = _as_array(array, "array")
    ctx = _context_bytes(context)
    if row_context is not None:
        _is_large(array.type, "array")
        row_context = _row_context_array(row_context, len(array))
    if isinstance(array, pa.ChunkedArray):
        _is_large(array.type, "array")
        chunks = []
        row0 = 0
        for chunk in array.chunks:
            rows = _rows_slice(row_context, row0, len(chunk))
            chunks.append(_one(cipher, encrypt, chunk, ctx, large, out_type, row0, rows, threads))
            row0 += len(chunk)
        if out_type is None:
            large_out = _is_large(array.type, "array") if large is None else bool(large)
            out_type = pa.large_binary() if large_out else pa.binary()
        return pa.chunked_array(chunks, type=out_type)
    return _one(cipher, encrypt, array, ctx, large, out_type, 0,
                _rows_slice(row_context, 0, len(array)), threads)


def _rows_slice(row_context: Optional[ArrayLike], start: int, length: int) -> Optional["pa.Array"]:
    if row_context is None:
        return None
    part = row_context.slice(start, length)
    if isinstance(part, pa.ChunkedArray):
        part = part.combine_chunks() if part.num_chunks != 1 else part.chunk(0)
    return part


def encrypt_array(cipher: CellCipher, array: ArrayLike, context: Context = b"", *,
                  row_context: Optional[ArrayLike] = None, large: Optional[bool] = None,
                  threads: int = 1) -> ArrayLike:
    """Encrypts every value of ``array`` (binary, string, large_binary or large_string; an Array
    or a ChunkedArray) with ``cipher``, bound to ``context``; returns a ``binary`` array
    (``large_binary`` for large inputs or with ``large=True``) of the same length, nulls kept.
    One C batch call per array (per chunk), no Python object per value.

    ``row_context`` (an array of the same length: binary/string, or integers bound as their
    decimal text; no nulls) binds value ``i`` to ``context + row_context[i]`` (for example
    ``context="tenant=7/users/email/"`` and the row key column), through the C ``_rows`` batch
    call that reads the row contexts in place.

    ``threads`` > 1 lets the library share a large column with its worker threads
    (``cellar_cell_encrypt_batch_threads``: a maximum, used only when it pays; the output is the
    one-thread output). Per-row-context calls run on the calling thread."""
    return _apply(cipher, True, array, context, row_context, large, None, threads)


def decrypt_array(cipher: CellCipher, array: ArrayLike, context: Context = b"", *,
                  row_context: Optional[ArrayLike] = None, type: Optional["pa.DataType"] = None,
                  large: Optional[bool] = None, threads: int = 1) -> ArrayLike:
    """Decrypts every cell of ``array`` bound to ``context``; returns ``binary`` (or
    ``large_binary``), or ``type`` when given (``string``/``large_string`` outputs are checked to
    be UTF-8). Nulls stay null. A cell that fails to authenticate raises
    :class:`~cellar.AuthenticationError` with ``index`` set to its row; nothing is returned.
    ``threads`` as in :func:`encrypt_array`."""
    if type is not None and not isinstance(type, pa.DataType):
        raise TypeError("type must be a pyarrow DataType")
    return _apply(cipher, False, array, context, row_context, large, type, threads)


# Blind indexes --------------------------------------------------------------------------------------


def _blind_one(bkey: int, arr: "pa.Array", ctx: bytes, length: int,
               rows: Optional["pa.Array"] = None) -> "pa.Array":
    large = _is_large(arr.type, "array")
    count = len(arr)
    out_type = pa.binary(length)
    if count == 0:
        return pa.array([], type=out_type)
    nulls = arr.null_count
    if nulls == count:
        return pa.nulls(count, type=out_type)
    _check_layout(arr, "array")
    valid = arr.is_valid() if nulls else None
    dense = arr.drop_null() if nulls else arr
    if rows is not None and valid is not None:
        rows = rows.filter(valid)
    m = len(dense)
    addr, keep, end = _size_t_offsets(dense, large)
    data = dense.buffers()[2]
    if end > (data.size if data is not None else 0):
        raise ValueError("array offsets reach past its data buffer")
    values = data.address if (data is not None and end) else None
    out = pa.allocate_buffer(m * length)
    used = c_size_t()
    if rows is None:
        st = _blind_batch(bkey, ctx or None, len(ctx), values, _offsets_view(addr, m), m, length,
                          out.address, m * length, byref(used))
    else:
        rc, rkeep = _row_contexts(ctx, rows)
        st = _blind_batch_rows(bkey, byref(rc), values, _offsets_view(addr, m), m, length,
                               out.address, m * length, byref(used))
        del rkeep
    del keep
    if st:
        raise error_for_status(st)
    dense_out = pa.Array.from_buffers(out_type, m, [None, out])
    if valid is None:
        return dense_out
    ranks = pc.cumulative_sum(valid.cast(pa.int32()))
    idx = pc.if_else(valid, pc.subtract(ranks, 1), pa.scalar(None, pa.int32()))
    return dense_out.take(idx)


def blind_index_array(key: Key, array: ArrayLike, context: Context = b"", *,
                      length: int = 16, row_context: Optional[ArrayLike] = None, version: int = 2) -> ArrayLike:
    """Blind indexes (``cellar.blind_index``) of every value of ``array`` bound to ``context``
    (or ``context + row_context[i]``): a ``fixed_size_binary(length)`` array, nulls kept, for
    equality lookups and joins without deterministic ciphertexts. One blind-index key
    derivation and one C batch call per array (per chunk). ``version`` as for
    ``cellar.blind_index``: 2 (the default, SP 800-108 key derivation) or 1 for indexes built
    before format v2."""
    if version not in (1, 2):
        raise ValueError("version must be 1 or 2")
    if not isinstance(key, Key):
        raise TypeError(f"key must be a cellar.Key, not {type(key).__name__}")
    if not isinstance(length, int) or not _cells.BLIND_INDEX_MIN_LEN <= length <= _cells.BLIND_INDEX_MAX_LEN:
        raise ValueError(f"length must be an integer from {_cells.BLIND_INDEX_MIN_LEN} to "
                         f"{_cells.BLIND_INDEX_MAX_LEN}")
    array = _as_array(array, "array")
    ctx = _context_bytes(context)
    _is_large(array.type, "array")
    if row_context is not None:
        row_context = _row_context_array(row_context, len(array))
    out = ctypes.c_void_p()
    st = _bkey_new(key._handle, version, byref(out))
    if st:
        raise error_for_status(st)
    bkey = out.value
    try:
        if isinstance(array, pa.ChunkedArray):
            chunks = []
            row0 = 0
            for c in array.chunks:
                chunks.append(_blind_one(bkey, c, ctx, length, _rows_slice(row_context, row0, len(c))))
                row0 += len(c)
            return pa.chunked_array(chunks, type=pa.binary(length))
        return _blind_one(bkey, array, ctx, length, _rows_slice(row_context, 0, len(array)))
    finally:
        _bkey_free(bkey)


# Tables -------------------------------------------------------------------------------------------


def _column_context(context: Any, name: str) -> bytes:
    if context is None:
        return name.encode("utf-8")
    if isinstance(context, Mapping):
        if name not in context:
            raise KeyError(f"no context given for column {name!r}")
        return _context_bytes(context[name], f"context[{name!r}]")
    if callable(context):
        return _context_bytes(context(name), f"context({name!r})")
    return _context_bytes(context)


_NO_CONTEXT_MODES = (CellMode.MSSQL_RANDOMIZED, CellMode.MSSQL_DETERMINISTIC)


def _cipher_context(cipher: Any, context: Any, name: str) -> bytes:
    """The column context, except that the Always Encrypted modes take none: for them the
    default (None) is empty rather than the column name."""
    if context is None and isinstance(cipher, CellCipher) and cipher.mode in _NO_CONTEXT_MODES:
        return b""
    return _column_context(context, name)


def _table_rows(table: "pa.Table", row_context: Optional[str], ctx: bytes) -> Tuple[bytes, Any]:
    """(prefix, row context column) for the table helpers: row ``i`` of a column is bound to
    ``context + b"\\0" + row_key_i`` (the NUL ends the column's part, so that no column
    context and row key can be confused with another pair)."""
    if row_context is None:
        return ctx, None
    if not isinstance(row_context, str):
        raise TypeError("row_context must be the name of a column of the table")
    if row_context not in table.column_names:
        raise KeyError(f"table has no column {row_context!r} (row_context)")
    return ctx + b"\0", table.column(row_context)


def encrypt_table(table: "pa.Table", ciphers: Mapping[str, CellCipher], *,
                  context: Any = None, blind_indexes: Optional[Mapping[str, Tuple[Key, str]]] = None,
                  blind_index_length: int = 16, large: Optional[bool] = None,
                  row_context: Optional[str] = None, threads: int = 1) -> "pa.Table":
    """A new table whose columns named in ``ciphers`` are encrypted (each with its own
    :class:`~cellar.CellCipher`); the other columns are shared, not copied.

    ``context`` binds each column's cells: None (the default) uses the column name, a mapping
    gives one per column name, a callable is called with the name, bytes/str is used for all.
    ``blind_indexes`` maps a column to ``(key, new_column_name)``: the blind index of the
    plaintext (same context) is appended as a ``fixed_size_binary`` column. ``row_context``
    names a column (for example the row key; binary, string or integer, no nulls) whose value
    is bound into every encrypted cell of its row: row ``i`` of column ``c`` gets the context
    ``context(c) + b"\\0" + row_key_i`` (integers as decimal text), so a cell copied to another
    row fails to decrypt. The encrypted fields carry metadata (``cellar.type``, ``cellar.mode``,
    ``cellar.row_context``) so :func:`decrypt_table` restores their type."""
    if not isinstance(table, pa.Table):
        raise TypeError(f"table must be a pyarrow.Table, not {type(table).__name__}")
    names = table.column_names
    for name in list(ciphers) + list(blind_indexes or {}):
        if name not in names:
            raise KeyError(f"table has no column {name!r}")
    if row_context is not None and row_context in ciphers:
        raise ValueError("the row_context column cannot itself be encrypted")
    extra: List[Tuple["pa.Field", ArrayLike]] = []
    for name, (key, new_name) in (blind_indexes or {}).items():
        prefix, rows = _table_rows(table, row_context, _column_context(context, name))
        bidx = blind_index_array(key, table.column(name), prefix, length=blind_index_length,
                                 row_context=rows)
        extra.append((pa.field(new_name, bidx.type, nullable=True), bidx))
    out = table
    for name, cipher in ciphers.items():
        i = out.schema.get_field_index(name)
        field = out.schema.field(i)
        prefix, rows = _table_rows(table, row_context, _cipher_context(cipher, context, name))
        col = encrypt_array(cipher, out.column(i), prefix, large=large, row_context=rows,
                            threads=threads)
        meta = dict(field.metadata or {})
        meta[META_TYPE] = str(field.type).encode()
        meta[META_MODE] = _cipher(cipher).mode.name.encode()
        if row_context is not None:
            meta[META_ROW_CONTEXT] = row_context.encode("utf-8")
        out = out.set_column(i, pa.field(name, col.type, nullable=True, metadata=meta), col)
    for field, col in extra:
        out = out.append_column(field, col)
    return _pandas_metadata(out, {n: out.schema.field(n).type for n in ciphers})


def _pandas_metadata(table: "pa.Table", types: Mapping[str, "pa.DataType"]) -> "pa.Table":
    """Keeps pandas' schema metadata (written by ``Table.from_pandas``) true to the new column
    types, so that ``to_pandas()`` does not try to read ciphertexts as text."""
    meta = table.schema.metadata
    if not meta or b"pandas" not in meta:
        return table
    import json

    try:
        doc = json.loads(meta[b"pandas"])
        for col in doc.get("columns", []):
            t = types.get(col.get("name"))
            if t is not None:
                text = pa.types.is_string(t) or pa.types.is_large_string(t)
                col["pandas_type"] = "unicode" if text else "bytes"
                col["numpy_type"] = "object"
    except (ValueError, TypeError, AttributeError):  # not ours to repair: leave it alone
        return table
    new = dict(meta)
    new[b"pandas"] = json.dumps(doc).encode()
    return table.replace_schema_metadata(new)


_RESTORE = {"string": pa.string(), "large_string": pa.large_string(), "binary": pa.binary(),
            "large_binary": pa.large_binary()}


def decrypt_table(table: "pa.Table", ciphers: Mapping[str, CellCipher], *,
                  context: Any = None, types: Optional[Mapping[str, "pa.DataType"]] = None,
                  row_context: Optional[str] = None, threads: int = 1) -> "pa.Table":
    """The inverse of :func:`encrypt_table`: decrypts the named columns (same ``context`` rule)
    and restores each one's original type from its field metadata, or from ``types`` (a
    column name -> type mapping, for tables whose field metadata was lost on the way, for
    example through pandas), else binary. ``row_context`` defaults to the column the field
    metadata names (``cellar.row_context``)."""
    if not isinstance(table, pa.Table):
        raise TypeError(f"table must be a pyarrow.Table, not {type(table).__name__}")
    out = table
    for name, cipher in ciphers.items():
        i = out.schema.get_field_index(name)
        if i < 0:
            raise KeyError(f"table has no column {name!r}")
        field = out.schema.field(i)
        meta = dict(field.metadata or {})
        target = _RESTORE.get(meta.pop(META_TYPE, b"binary").decode(), pa.binary())
        if types and name in types:
            target = types[name]
        meta.pop(META_MODE, None)
        rc_name = meta.pop(META_ROW_CONTEXT, None)
        rc = row_context if row_context is not None else (rc_name.decode() if rc_name else None)
        prefix, rows = _table_rows(table, rc, _cipher_context(cipher, context, name))
        col = decrypt_array(cipher, out.column(i), prefix, type=target, row_context=rows,
                            threads=threads)
        out = out.set_column(i, pa.field(name, target, nullable=True, metadata=meta or None), col)
    return _pandas_metadata(out, {n: out.schema.field(n).type for n in ciphers})
