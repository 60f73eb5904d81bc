"""cellar.arrow: every supported type, sliced, chunked, empty, all-null, 0-byte and megabyte
values, wrong types, tampering reported by row; round trips checked value by value against
CellCipher.decrypt."""
import os

import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.compute as pc  # noqa: E402

import cellar  # noqa: E402
import cellar.arrow as ca  # noqa: E402

TYPES = [pa.binary(), pa.string(), pa.large_binary(), pa.large_string()]
TYPE_IDS = ["binary", "string", "large_binary", "large_string"]


def values_for(t, n=50, seed=0):
    rnd = __import__("random").Random(seed)
    out = []
    for i in range(n):
        if i % 7 == 3:
            out.append(None)
        elif i % 11 == 5:
            out.append("" if pa.types.is_string(t) or pa.types.is_large_string(t) else b"")
        else:
            s = "".join(rnd.choice("abcdéü€𝄞xyz0123") for _ in range(rnd.randrange(1, 40)))
            out.append(s if (pa.types.is_string(t) or pa.types.is_large_string(t)) else s.encode())
    return pa.array(out, type=t)


def as_bytes(v):
    return v.encode() if isinstance(v, str) else v


def check_against_single(cipher, plain, ct, context):
    """Every non-null cell of `ct` decrypts with CellCipher.decrypt to the plaintext value;
    nulls stay null."""
    assert len(ct) == len(plain)
    assert ct.null_count == plain.null_count
    for p, c in zip(plain.to_pylist(), ct.to_pylist()):
        if p is None:
            assert c is None
        else:
            assert cipher.decrypt(c, context) == as_bytes(p)


@pytest.mark.parametrize("t", TYPES, ids=TYPE_IDS)
def test_round_trip_every_type(cipher, t):
    arr = values_for(t)
    ct = ca.encrypt_array(cipher, arr, context="db/users/email")
    large = pa.types.is_large_binary(t) or pa.types.is_large_string(t)
    assert ct.type == (pa.large_binary() if large else pa.binary())
    assert cellar.last_operation_approved() is (cipher.mode == cellar.CellMode.RANDOMIZED)  # SPEC 10
    check_against_single(cipher, arr, ct, b"db/users/email")
    back = ca.decrypt_array(cipher, ct, context="db/users/email", type=t)
    assert back.type == t
    assert back.equals(arr)
    assert cellar.last_operation_approved() is (cipher.mode == cellar.CellMode.RANDOMIZED)  # SPEC 10
    # binary output by default
    raw = ca.decrypt_array(cipher, ct, context="db/users/email")
    assert raw.to_pylist() == [as_bytes(v) if v is not None else None for v in arr.to_pylist()]


def test_deterministic_matches_single_calls(key):
    with cellar.CellCipher(key, cellar.CellMode.DETERMINISTIC) as det:
        arr = pa.array([b"a", b"bb", None, b"a"])
        ct = ca.encrypt_array(det, arr, "c")
        assert ct.to_pylist() == [det.encrypt(b"a", "c"), det.encrypt(b"bb", "c"), None,
                                  det.encrypt(b"a", "c")]


def test_single_cells_decrypt_through_arrow(cipher):
    vals = [os.urandom(i) for i in range(0, 100, 3)]
    cells = [cipher.encrypt(v, b"ctx") for v in vals]
    out = ca.decrypt_array(cipher, pa.array(cells, pa.binary()), b"ctx")
    assert out.to_pylist() == vals


@pytest.mark.parametrize("t", TYPES, ids=TYPE_IDS)
def test_sliced_arrays(cipher, t):
    arr = values_for(t, 80)
    for start, length in [(1, 10), (3, 0), (17, 40), (79, 1), (0, 80), (4, 76)]:
        s = arr.slice(start, length)
        assert s.offset == start
        ct = ca.encrypt_array(cipher, s, b"ctx")
        assert ct.offset == 0 and len(ct) == length
        check_against_single(cipher, s, ct, b"ctx")
        # and a slice of the ciphertext array decrypts too
        if length > 2:
            ct2 = ct.slice(1, length - 2)
            back = ca.decrypt_array(cipher, ct2, b"ctx", type=t)
            assert back.equals(s.slice(1, length - 2))


@pytest.mark.parametrize("t", TYPES, ids=TYPE_IDS)
def test_chunked_arrays(cipher, t):
    a = values_for(t, 30, seed=1)
    chunked = pa.chunked_array([a.slice(0, 10), a.slice(10, 0), a.slice(10, 20)], type=t)
    ct = ca.encrypt_array(cipher, chunked, "col")
    assert isinstance(ct, pa.ChunkedArray) and ct.num_chunks == 3
    check_against_single(cipher, chunked.combine_chunks(), ct.combine_chunks(), b"col")
    back = ca.decrypt_array(cipher, ct, "col", type=t)
    assert back.equals(chunked)
    empty = pa.chunked_array([], type=t)
    assert len(ca.encrypt_array(cipher, empty)) == 0


@pytest.mark.parametrize("t", TYPES, ids=TYPE_IDS)
def test_empty_and_all_null(cipher, t):
    e = ca.encrypt_array(cipher, pa.array([], type=t))
    assert len(e) == 0 and e.type in (pa.binary(), pa.large_binary())
    assert len(ca.decrypt_array(cipher, e)) == 0
    n = pa.array([None] * 5, type=t)
    ct = ca.encrypt_array(cipher, n)
    assert ct.null_count == 5 and len(ct) == 5
    assert ca.decrypt_array(cipher, ct, type=t).equals(n)


def test_zero_byte_and_megabyte_values(cipher):
    big = os.urandom(3 << 20)
    arr = pa.array([b"", big, b"", None, big[:1], b""], pa.large_binary())
    ct = ca.encrypt_array(cipher, arr, "x")
    check_against_single(cipher, arr, ct, b"x")
    assert ca.decrypt_array(cipher, ct, "x").equals(arr)
    only_empty = pa.array([b""] * 4)
    ct = ca.encrypt_array(cipher, only_empty)
    assert [cipher.decrypt(c) for c in ct.to_pylist()] == [b""] * 4


def test_nulls_keep_zero_bytes_and_bitmap(cipher):
    arr = pa.array([b"a", None, None, b"d", None])
    ct = ca.encrypt_array(cipher, arr)
    offs = pa.Array.from_buffers(pa.int32(), 6, [None, ct.buffers()[1]]).to_pylist()
    assert offs[1] == offs[2] == offs[3]  # null rows hold no ciphertext
    assert ct.is_null().to_pylist() == [False, True, True, False, True]


def test_null_slots_with_bytes_are_not_encrypted(cipher):
    # An array whose null slots still point at bytes (legal in Arrow): those bytes are dropped.
    base = pa.array([b"aaa", b"bbb", b"ccc"])
    validity = pa.array([True, False, True]).buffers()[1]
    arr = pa.Array.from_buffers(pa.binary(), 3, [validity, base.buffers()[1], base.buffers()[2]],
                                null_count=1)
    ct = ca.encrypt_array(cipher, arr)
    assert ct.to_pylist()[1] is None
    assert ca.decrypt_array(cipher, ct).to_pylist() == [b"aaa", None, b"ccc"]


@pytest.mark.parametrize("bad", [
    pa.array([1, 2, 3]), pa.array([1.5]), pa.array([[b"a"]]), pa.array([b"ab"], pa.binary(2)),
    pa.array(["x"]).dictionary_encode(),
], ids=["int", "float", "list", "fixed_size_binary", "dictionary"])
def test_wrong_array_types(cipher, bad):
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, bad)
    with pytest.raises(TypeError):
        ca.decrypt_array(cipher, bad)
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, pa.chunked_array([bad]))


def test_wrong_argument_types(cipher, key):
    arr = pa.array([b"a"])
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, [b"a", b"b"])           # a list, not an Arrow array
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, b"ab")
    with pytest.raises(TypeError):
        ca.encrypt_array(key, arr)                       # a Key, not a CellCipher
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, arr, context=None)
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, arr, context=5)
    with pytest.raises(TypeError):
        ca.decrypt_array(cipher, ca.encrypt_array(cipher, arr), type=pa.int32())
    with pytest.raises(TypeError):
        ca.decrypt_array(cipher, ca.encrypt_array(cipher, arr), type="string")
    with pytest.raises(TypeError):
        ca.blind_index_array(cipher, arr)


def tamper(ct, row):
    vals = ct.to_pylist()
    v = bytearray(vals[row])
    v[-1] ^= 1
    vals[row] = bytes(v)
    return pa.array(vals, ct.type)


def test_tampered_value_reported_by_row(cipher):
    arr = pa.array([b"v%d" % i if i % 4 else None for i in range(40)])
    ct = ca.encrypt_array(cipher, arr, "ctx")
    bad = tamper(ct, 29)
    with pytest.raises(cellar.AuthenticationError) as ei:
        ca.decrypt_array(cipher, bad, "ctx")
    assert ei.value.index == 29
    assert "value 29" in str(ei.value)
    # in a slice, the row is the slice's own
    with pytest.raises(cellar.AuthenticationError) as ei:
        ca.decrypt_array(cipher, bad.slice(20), "ctx")
    assert ei.value.index == 9
    # in a chunked array, the row counts across chunks
    chunked = pa.chunked_array([ct.slice(0, 25), bad.slice(25)])
    with pytest.raises(cellar.AuthenticationError) as ei:
        ca.decrypt_array(cipher, chunked, "ctx")
    assert ei.value.index == 29
    # the wrong context fails at the first row with a value
    with pytest.raises(cellar.AuthenticationError) as ei:
        ca.decrypt_array(cipher, ct, "other")
    assert ei.value.index == 1


def test_plaintext_as_ciphertext_fails_cleanly(cipher):
    with pytest.raises(cellar.AuthenticationError) as ei:
        ca.decrypt_array(cipher, pa.array([b"", b"short"]))
    assert ei.value.index == 0


def test_string_output_checks_utf8(key):
    with cellar.CellCipher(key, cellar.CellMode.RANDOMIZED) as c:
        ct = ca.encrypt_array(c, pa.array([b"\xff\xfe"]))
        with pytest.raises(ValueError):
            ca.decrypt_array(c, ct, type=pa.string())


def test_large_output_option(cipher):
    ct = ca.encrypt_array(cipher, pa.array(["a", "b"]), large=True)
    assert ct.type == pa.large_binary()
    assert ca.decrypt_array(cipher, ct, type=pa.string()).to_pylist() == ["a", "b"]


def test_blind_index_array(key):
    arr = pa.array(["alice", None, "bob", "alice", ""])
    bi = ca.blind_index_array(key, arr, "users/email", length=16)
    assert bi.type == pa.binary(16)
    want = [cellar.blind_index(key, v.encode(), "users/email") if v is not None else None
            for v in arr.to_pylist()]
    assert bi.to_pylist() == want
    assert bi[0] == bi[3] and bi[0] != bi[2]
    sliced = ca.blind_index_array(key, arr.slice(2), "users/email", length=8)
    assert sliced.to_pylist()[0] == cellar.blind_index(key, b"bob", "users/email", length=8)
    with pytest.raises(ValueError):
        ca.blind_index_array(key, arr, length=3)


def test_table_helper(key):
    t = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "email": ["a@x", None, "c@y"],
                  "note": pa.array([b"n1", b"", None], pa.large_binary())})
    with cellar.CellCipher(key, cellar.CellMode.DETERMINISTIC) as det, \
            cellar.CellCipher(key, cellar.CellMode.RANDOMIZED) as rnd:
        enc = ca.encrypt_table(t, {"email": det, "note": rnd},
                               blind_indexes={"email": (key, "email_bidx")})
        assert enc.column_names == ["id", "email", "note", "email_bidx"]
        assert enc.column("id") is not None and enc.column("id").equals(t.column("id"))
        assert enc.schema.field("email").type == pa.binary()
        assert enc.schema.field("note").type == pa.large_binary()
        assert enc.schema.field("email").metadata[b"cellar.type"] == b"string"
        # the default context is the column name
        assert det.decrypt(enc.column("email")[0].as_py(), b"email") == b"a@x"
        back = ca.decrypt_table(enc.drop_columns(["email_bidx"]), {"email": det, "note": rnd})
        assert back.equals(t)
        with pytest.raises(cellar.AuthenticationError):
            ca.decrypt_table(enc, {"email": det}, context="other")
        with pytest.raises(KeyError):
            ca.encrypt_table(t, {"missing": det})


def test_pandas_and_polars_through_arrow(key):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"id": [1, 2, 3], "email": ["a@x", None, "c@y"]})
    with cellar.CellCipher(key, cellar.CellMode.DETERMINISTIC) as det:
        enc = ca.encrypt_table(pa.Table.from_pandas(df, preserve_index=False), {"email": det})
        edf = enc.to_pandas()
        assert isinstance(edf["email"][0], bytes) and edf["email"][1] is None
        # pandas keeps no Arrow field metadata: name the type to restore
        back = ca.decrypt_table(pa.Table.from_pandas(edf, preserve_index=False), {"email": det},
                                types={"email": pa.string()})
        col = back.to_pandas()["email"]
        assert col[0] == "a@x" and pd.isna(col[1]) and col[2] == "c@y"
        pl = pytest.importorskip("polars")
        pdf = pl.DataFrame({"id": [1, 2], "email": ["a@x", "b@y"]})
        enc = ca.encrypt_table(pdf.to_arrow(), {"email": det})
        pl_enc = pl.from_arrow(enc)
        assert pl_enc["email"].dtype == pl.Binary
        back = pl.from_arrow(ca.decrypt_table(pl_enc.to_arrow(), {"email": det},
                                              types={"email": pa.large_string()}))
        assert back["email"].to_list() == ["a@x", "b@y"]


def test_closed_cipher(key):
    c = cellar.CellCipher(key)
    c.close()
    with pytest.raises(ValueError, match="closed"):
        ca.encrypt_array(c, pa.array([b"a"]))


def test_many_values_one_batch(cipher):
    n = 20000
    arr = pa.array([os.urandom(64) for _ in range(n)], pa.binary())
    ct = ca.encrypt_array(cipher, arr, "bulk")
    assert pc.all(pc.equal(pc.binary_length(ct), cipher.ciphertext_len(64))).as_py()
    sample = range(0, n, 997)
    for i in sample:
        assert cipher.decrypt(ct[i].as_py(), b"bulk") == arr[i].as_py()
    assert ca.decrypt_array(cipher, ct, "bulk").equals(arr)


# Per-row contexts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rt", [pa.string(), pa.binary(), pa.large_string(), pa.large_binary(),
                                pa.int64(), pa.int32()],
                         ids=["string", "binary", "large_string", "large_binary", "int64", "int32"])
def test_row_contexts_match_single_calls(cipher, rt):
    arr = pa.array([b"v%d" % i if i % 5 != 2 else None for i in range(40)])
    keys = list(range(1000, 1040))
    if pa.types.is_integer(rt):
        rows = pa.array(keys, rt)
    else:
        rows = pa.array([str(k) if "string" in str(rt) else str(k).encode() for k in keys], rt)
    ct = ca.encrypt_array(cipher, arr, "t7/users/email/", row_context=rows)
    assert cellar.last_operation_approved() is (cipher.mode == cellar.CellMode.RANDOMIZED)  # SPEC 10
    for k, p, c in zip(keys, arr.to_pylist(), ct.to_pylist()):
        if p is None:
            assert c is None
        else:
            assert cipher.decrypt(c, b"t7/users/email/" + str(k).encode()) == p
    assert ca.decrypt_array(cipher, ct, "t7/users/email/", row_context=rows).equals(arr)
    # the shared-context batch does not open them
    with pytest.raises(cellar.AuthenticationError):
        ca.decrypt_array(cipher, ct, "t7/users/email/")


def test_row_contexts_moved_cell_fails_by_row(cipher):
    arr = pa.array([b"a", b"b", b"c", b"d"])
    rows = pa.array(["r0", "r1", "r2", "r3"])
    ct = ca.encrypt_array(cipher, arr, "p/", row_context=rows).to_pylist()
    ct[1], ct[2] = ct[2], ct[1]
    with pytest.raises(cellar.AuthenticationError) as ei:
        ca.decrypt_array(cipher, pa.array(ct), "p/", row_context=rows)
    assert ei.value.index == 1


def test_row_contexts_sliced_and_chunked(cipher):
    arr = pa.array([b"x%d" % i for i in range(30)])
    rows = pa.array([f"k{i}" for i in range(30)])
    ct = ca.encrypt_array(cipher, arr.slice(5, 20), row_context=rows.slice(5, 20))
    for i, c in enumerate(ct.to_pylist()):
        assert cipher.decrypt(c, f"k{i + 5}") == b"x%d" % (i + 5)
    # chunk boundaries of the values and of the row contexts differ
    carr = pa.chunked_array([arr.slice(0, 7), arr.slice(7, 13), arr.slice(20)])
    crows = pa.chunked_array([rows.slice(0, 15), rows.slice(15)])
    cct = ca.encrypt_array(cipher, carr, "c/", row_context=crows)
    assert cct.num_chunks == 3
    flat = cct.combine_chunks().to_pylist()
    for i in range(30):
        assert cipher.decrypt(flat[i], f"c/k{i}") == b"x%d" % i
    assert ca.decrypt_array(cipher, cct, "c/", row_context=crows).equals(carr)


def test_row_contexts_refused(cipher):
    arr = pa.array([b"a", b"b"])
    with pytest.raises(ValueError):
        ca.encrypt_array(cipher, arr, row_context=pa.array(["x"]))            # wrong length
    with pytest.raises(ValueError):
        ca.encrypt_array(cipher, arr, row_context=pa.array(["x", None]))      # a null context
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, arr, row_context=pa.array([1.0, 2.0]))       # floats
    with pytest.raises(TypeError):
        ca.encrypt_array(cipher, arr, row_context=["x", "y"])                 # not Arrow


def test_blind_index_row_contexts(key):
    arr = pa.array(["alice", None, "bob"])
    rows = pa.array([7, 8, 9], pa.int64())
    bi = ca.blind_index_array(key, arr, "t/", row_context=rows)
    assert bi.to_pylist() == [cellar.blind_index(key, b"alice", b"t/7"), None,
                              cellar.blind_index(key, b"bob", b"t/9")]


def test_table_row_context(key):
    t = pa.table({"id": pa.array([10, 11, 12], pa.int64()), "email": ["a@x", None, "c@y"]})
    with cellar.CellCipher(key, cellar.CellMode.RANDOMIZED) as c:
        enc = ca.encrypt_table(t, {"email": c}, row_context="id",
                               blind_indexes={"email": (key, "email_bidx")})
        assert enc.schema.field("email").metadata[b"cellar.row_context"] == b"id"
        assert c.decrypt(enc.column("email")[0].as_py(), b"email\x0010") == b"a@x"
        assert enc.column("email_bidx")[2].as_py() == cellar.blind_index(key, b"c@y", b"email\x0012")
        assert ca.decrypt_table(enc.drop_columns(["email_bidx"]), {"email": c}).equals(t)
        # rows swapped with their ciphertexts but not their ids: refused
        swapped = enc.set_column(1, enc.schema.field("email"),
                                 enc.column("email").take(pa.array([2, 1, 0])))
        with pytest.raises(cellar.AuthenticationError) as ei:
            ca.decrypt_table(swapped, {"email": c})
        assert ei.value.index == 0
        with pytest.raises(ValueError):
            ca.encrypt_table(t, {"id": c}, row_context="id")
        with pytest.raises(KeyError):
            ca.encrypt_table(t, {"email": c}, row_context="nope")


def test_always_encrypted_modes(key):
    t = pa.table({"card": ["4111", None, "5500"]})
    for mode in (cellar.CellMode.MSSQL_RANDOMIZED, cellar.CellMode.MSSQL_DETERMINISTIC):
        with cellar.CellCipher(key, mode) as c:
            ct = ca.encrypt_array(c, t.column("card"))
            assert [c.decrypt(v) if v is not None else None for v in ct.to_pylist()] == \
                [b"4111", None, b"5500"]
            enc = ca.encrypt_table(t, {"card": c})                 # no context for these modes
            assert ca.decrypt_table(enc, {"card": c}).equals(t)
            with pytest.raises(cellar.InvalidArgumentError):
                ca.encrypt_array(c, t.column("card"), "a context")


def test_hand_built_arrays_out_of_bounds_refused(cipher):
    # Arrays made with from_buffers whose first and last offsets are in bounds, so pyarrow's
    # structural check (the one from_buffers runs) accepts them, but whose middle offsets point
    # past the data, go negative or decrease. Each must be refused with ValueError (cellar.arrow's
    # own checks, or the C batch call's non-decreasing check for row contexts), never read.
    data = pa.py_buffer(b"abcdef")

    def build(t, n, offsets, ot):
        return pa.Array.from_buffers(t, n, [None, pa.array(offsets, ot).buffers()[1], data])

    cases = [build(pa.binary(), 2, [0, 60, 6], pa.int32()),
             build(pa.large_binary(), 2, [0, -5, 6], pa.int64()),
             build(pa.string(), 2, [4, 2, 6], pa.int32()),
             build(pa.large_string(), 2, [0, 9, 6], pa.int64())]
    for bad in cases:
        with pytest.raises(pa.ArrowInvalid):
            bad.validate(full=True)            # the case is really malformed
        with pytest.raises(ValueError, match="offset"):
            ca.encrypt_array(cipher, bad)
        with pytest.raises(ValueError, match="offset|context"):
            ca.encrypt_array(cipher, pa.array([b"x", b"y"]), row_context=bad)
        with pytest.raises(ValueError, match="offset"):
            ca.decrypt_array(cipher, bad)
    # Offsets past the data in the last position: pyarrow refuses these itself.
    with pytest.raises(pa.ArrowInvalid):
        build(pa.binary(), 2, [0, 3, 60], pa.int32())
    with pytest.raises(pa.ArrowInvalid):
        build(pa.binary(), 5, [0, 3], pa.int32())


def test_threads_same_output(key):
    arr = pa.array([os.urandom(i % 90) if i % 13 else None for i in range(30000)], pa.binary())
    with cellar.CellCipher(key, cellar.CellMode.DETERMINISTIC) as det:
        one = ca.encrypt_array(det, arr, "t")
        two = ca.encrypt_array(det, arr, "t", threads=2)
        assert one.equals(two)
        assert ca.decrypt_array(det, two, "t", threads=2).equals(arr)
    with cellar.CellCipher(key, cellar.CellMode.RANDOMIZED) as rnd:
        ct = ca.encrypt_array(rnd, arr, "t", threads=2)
        assert ca.decrypt_array(rnd, ct, "t").equals(arr)
        bad = tamper(ct, 29999)
        with pytest.raises(cellar.AuthenticationError) as ei:
            ca.decrypt_array(rnd, bad, "t", threads=2)
        assert ei.value.index == 29999
        for t in (0, 65, 1.5, True):
            with pytest.raises(ValueError):
                ca.encrypt_array(rnd, arr, threads=t)


def test_large_arrays_are_handed_to_c_in_place(cipher, monkeypatch):
    # A large_binary array without nulls (sliced, so its offsets start mid-buffer): the C batch
    # call receives the array's own data buffer and its own offsets, no copy. (binary/string
    # arrays have int32 offsets, widened into one size_t copy; arrays with nulls are compacted
    # first: both documented in cellar.arrow.)
    import ctypes
    seen = []
    real = {"enc": ca._encrypt_batch, "dec": ca._decrypt_batch}

    def spy(kind):
        def call(h, ctx, ctx_len, values, offsets, count, *rest):
            seen.append((kind, values, ctypes.addressof(offsets), count))
            return real[kind](h, ctx, ctx_len, values, offsets, count, *rest)
        return call

    monkeypatch.setattr(ca, "_encrypt_batch", spy("enc"))
    monkeypatch.setattr(ca, "_decrypt_batch", spy("dec"))
    whole = pa.array([os.urandom(i % 40 + 1) for i in range(500)], pa.large_binary())
    arr = whole.slice(37, 400)
    ct = ca.encrypt_array(cipher, arr, "t.c")
    back = ca.decrypt_array(cipher, ct, "t.c")
    assert back.equals(arr)
    kind, values, offsets, count = seen[0]
    assert kind == "enc" and count == 400
    assert values == arr.buffers()[2].address
    assert offsets == arr.buffers()[1].address + 8 * arr.offset
    kind, values, offsets, count = seen[1]
    assert kind == "dec" and count == 400
    assert values == ct.buffers()[2].address and offsets == ct.buffers()[1].address + 8 * ct.offset


def test_blind_index_array_both_versions(key):
    vals = pa.array([b"alice@example.com", None, b"bob@example.com", b"alice@example.com"])
    for version in (1, 2):
        idx = ca.blind_index_array(key, vals, "users.email", version=version)
        assert idx.null_count == 1 and idx[0] == idx[3] and idx[0] != idx[2]
        one = cellar.blind_index(key, b"alice@example.com", "users.email", version=version)
        assert idx[0].as_py() == one
    v1 = ca.blind_index_array(key, vals, "users.email", version=1)
    v2 = ca.blind_index_array(key, vals, "users.email", version=2)
    assert v1[0] != v2[0]                                   # the versions derive differently
