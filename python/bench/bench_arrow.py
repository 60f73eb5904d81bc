"""cellar.arrow against the C batch call it wraps (a benchmark, not a test): ``make bench-python-arrow``.

1 000 000 values of 64 bytes (default), RANDOMIZED and DETERMINISTIC, encryption and decryption:

- ``C batch``: one ``cellar_cell_{en,de}crypt_batch`` call through ctypes on prepacked buffers
  (``size_t`` offsets ready, output buffer allocated once and reused): the floor;
- ``C new buffer``: the same call writing a newly allocated Arrow buffer (what any producer of
  a new column pays: the kernel maps and zeroes the pages on first touch);
- ``cellar.arrow``: ``encrypt_array``/``decrypt_array`` on a ``pa.binary()`` array (int32
  offsets widened, output buffers allocated per call, result built as an Arrow array);
- ``C rows new buf`` / ``arrow rows``: the same with a per-row context (a shared prefix and a
  12-digit row key column): the ``_rows`` C call into a new buffer, and ``cellar.arrow`` with
  ``row_context=`` (compare these two with each other: a longer context costs the C call more);
- ``encrypt_many``: ``CellCipher.encrypt_many``/``decrypt_many`` on a list of ``bytes``;
- ``cryptography``: a Python loop over ``cryptography``'s AESGCM (random 12-byte nonce from
  ``os.urandom``, context as AAD) for RANDOMIZED, AESSIV for DETERMINISTIC (OpenSSL, not FIPS).

Last, for each ``cellar.arrow`` call, the share of its time spent inside the C call it makes (the
C function timed from within the same call, so allocation and page-fault conditions are the
same): ``arrow / C inside`` is the factor that Python and Arrow add, free of the run-to-run noise
that separate measurements have on a shared machine.

Rounds alternate between the methods, in a new random order each round (what runs just before
changes how much freed memory the allocator can hand back without page faults). Every method is single-threaded, so the table gives the
calling thread's CPU time (``time.thread_time``: steady on a shared machine, where wall time
also counts the time other processes hold the core), median per value and spread (min-max), the
ratio to the C batch call, and the median wall time beside it.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import random
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402

import cellar  # noqa: E402
import cellar.arrow as ca  # noqa: E402
from cellar._native import RowContexts, lib  # noqa: E402

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
except ImportError:  # pragma: no cover
    AESGCM = AESSIV = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-crypto-loop", action="store_true")
    args = ap.parse_args()
    n, size = args.n, args.size
    print(cellar.fips_status())
    print(f"{n} values of {size} bytes, {args.rounds} alternating rounds; per-value CPU time, "
          f"median (min-max)")
    distinct = [os.urandom(size) for _ in range(4096)]
    values = [distinct[i % 4096] for i in range(n)]
    arr = pa.array(values, pa.binary())
    rows = pa.array([f"{i:012d}" for i in range(n)], pa.string())
    ctx = b"tenant=7/users/email"
    rng = random.Random(17)
    key = cellar.Key.generate()
    raw_key = bytes(key.export_raw())
    ctypes_offsets = (ctypes.c_size_t * (n + 1))(*range(0, size * n + 1, size))
    data = arr.buffers()[2]

    for mode in (cellar.CellMode.RANDOMIZED, cellar.CellMode.DETERMINISTIC):
        c = cellar.CellCipher(key, mode)
        ct_arr = ca.encrypt_array(c, arr, ctx)
        ct_rows = ca.encrypt_array(c, arr, ctx, row_context=rows)
        ct_list = c.encrypt_many(values, ctx)
        ct_len = c.ciphertext_len(size)
        ct_offsets = (ctypes.c_size_t * (n + 1))(*range(0, ct_len * n + 1, ct_len))
        ct_data = ct_arr.buffers()[2]
        enc_total = lib.cellar_cell_batch_ciphertext_len(mode, ctypes_offsets, n)
        dec_total = lib.cellar_cell_batch_plaintext_max_len(mode, ct_offsets, n)
        out = ctypes.create_string_buffer(max(enc_total, dec_total))
        out_offsets = (ctypes.c_size_t * (n + 1))()
        used = ctypes.c_size_t()

        def c_enc():
            st = lib.cellar_cell_encrypt_batch(c._handle, ctx, len(ctx), data.address, ctypes_offsets, n,
                                               out, enc_total, out_offsets, ctypes.byref(used))
            assert st == 0

        def c_enc_new():
            o = pa.allocate_buffer(enc_total)
            oo = pa.allocate_buffer(8 * (n + 1))
            st = lib.cellar_cell_encrypt_batch(c._handle, ctx, len(ctx), data.address, ctypes_offsets, n,
                                               o.address, enc_total,
                                               (ctypes.c_size_t * (n + 1)).from_address(oo.address),
                                               ctypes.byref(used))
            assert st == 0
            return o, oo

        def c_dec_new():
            o = pa.allocate_buffer(dec_total)
            oo = pa.allocate_buffer(8 * (n + 1))
            st = lib.cellar_cell_decrypt_batch(c._handle, ctx, len(ctx), ct_data.address, ct_offsets, n,
                                               o.address, dec_total,
                                               (ctypes.c_size_t * (n + 1)).from_address(oo.address),
                                               ctypes.byref(used))
            assert st == 0
            return o, oo

        rc = RowContexts()
        rc.prefix = ctypes.cast(ctypes.c_char_p(ctx), ctypes.c_void_p)
        rc.prefix_len = len(ctx)
        rc.suffixes = rows.buffers()[2].address
        rc.suffix_offsets = rows.buffers()[1].address
        rc.offset_width = 4

        def c_enc_rows():
            o = pa.allocate_buffer(enc_total)
            oo = pa.allocate_buffer(8 * (n + 1))
            st = lib.cellar_cell_encrypt_batch_rows(c._handle, ctypes.byref(rc), data.address, ctypes_offsets,
                                                    n, o.address, enc_total,
                                                    (ctypes.c_size_t * (n + 1)).from_address(oo.address),
                                                    ctypes.byref(used))
            assert st == 0
            return o, oo

        rows_data = ct_rows.buffers()[2]

        def c_dec_rows():
            o = pa.allocate_buffer(dec_total)
            oo = pa.allocate_buffer(8 * (n + 1))
            st = lib.cellar_cell_decrypt_batch_rows(c._handle, ctypes.byref(rc), rows_data.address, ct_offsets,
                                                    n, o.address, dec_total,
                                                    (ctypes.c_size_t * (n + 1)).from_address(oo.address),
                                                    ctypes.byref(used))
            assert st == 0
            return o, oo

        def c_dec():
            st = lib.cellar_cell_decrypt_batch(c._handle, ctx, len(ctx), ct_data.address, ct_offsets, n,
                                               out, dec_total, out_offsets, ctypes.byref(used))
            assert st == 0

        methods = {
            ("encrypt", "C batch"): c_enc,
            ("encrypt", "C new buffer"): c_enc_new,
            ("encrypt", "cellar.arrow"): lambda: ca.encrypt_array(c, arr, ctx),
            ("encrypt", "C rows new buf"): c_enc_rows,
            ("encrypt", "arrow rows"): lambda: ca.encrypt_array(c, arr, ctx, row_context=rows),
            ("encrypt", "encrypt_many"): lambda: c.encrypt_many(values, ctx),
            ("decrypt", "C batch"): c_dec,
            ("decrypt", "C new buffer"): c_dec_new,
            ("decrypt", "cellar.arrow"): lambda: ca.decrypt_array(c, ct_arr, ctx),
            ("decrypt", "C rows new buf"): c_dec_rows,
            ("decrypt", "arrow rows"): lambda: ca.decrypt_array(c, ct_rows, ctx, row_context=rows),
            ("decrypt", "encrypt_many"): lambda: c.decrypt_many(ct_list, ctx),
        }
        if AESGCM is not None and not args.no_crypto_loop:
            if mode == cellar.CellMode.RANDOMIZED:
                g = AESGCM(raw_key)
                urandom = os.urandom
                gcm_cts = [(nn, g.encrypt(nn, v, ctx)) for nn, v in ((urandom(12), v) for v in values)]

                def crypto_enc():
                    enc = g.encrypt
                    return [enc(urandom(12), v, ctx) for v in values]

                def crypto_dec():
                    dec = g.decrypt
                    return [dec(nn, ct, ctx) for nn, ct in gcm_cts]
            else:
                s = AESSIV(raw_key + raw_key)
                siv_cts = [s.encrypt(v, [ctx]) for v in values]
                aad = [ctx]

                def crypto_enc():
                    enc = s.encrypt
                    return [enc(v, aad) for v in values]

                def crypto_dec():
                    dec = s.decrypt
                    return [dec(ct, aad) for ct in siv_cts]
            methods[("encrypt", "cryptography")] = crypto_enc
            methods[("decrypt", "cryptography")] = crypto_dec

        times = {k: [] for k in methods}
        walls = {k: [] for k in methods}
        order = list(methods)
        for _ in range(args.rounds):
            rng.shuffle(order)
            for k in order:
                fn = methods[k]
                w0 = time.perf_counter()
                t0 = time.thread_time()
                r = fn()
                times[k].append(time.thread_time() - t0)
                walls[k].append(time.perf_counter() - w0)
                del r
        print(f"\n{mode.name}")
        for op in ("encrypt", "decrypt"):
            base = statistics.median(times[(op, "C batch")])
            new = statistics.median(times[(op, "C new buffer")])
            for (o, name), ts in times.items():
                if o != op:
                    continue
                med = statistics.median(ts)
                wall = statistics.median(walls[(o, name)])
                print(f"  {op:8s}{name:15s}{med / n * 1e6:7.3f} us/value CPU "
                      f"({min(ts) / n * 1e6:.3f}-{max(ts) / n * 1e6:.3f})  {med / base:5.2f}x C batch"
                      f"  {med / new:5.2f}x new buffer   wall {wall / n * 1e6:.3f} us")
        inside = {}
        names = {"encrypt": ("_encrypt_batch", "_encrypt_rows"), "decrypt": ("_decrypt_batch", "_decrypt_rows")}
        saved = {nm: getattr(ca, nm) for pair in names.values() for nm in pair}
        acc = [0.0]

        def timed(fn):
            def call(*a):
                t = time.thread_time()
                try:
                    return fn(*a)
                finally:
                    acc[0] += time.thread_time() - t
            return call

        try:
            for nm, fn in saved.items():
                setattr(ca, nm, timed(fn))
            for (op, name) in [("encrypt", "cellar.arrow"), ("encrypt", "arrow rows"),
                               ("decrypt", "cellar.arrow"), ("decrypt", "arrow rows")]:
                ratios = []
                for _ in range(args.rounds):
                    acc[0] = 0.0
                    t0 = time.thread_time()
                    r = methods[(op, name)]()
                    total = time.thread_time() - t0
                    del r
                    ratios.append((total, acc[0]))
                tot = statistics.median(t for t, _ in ratios)
                ins = statistics.median(i for _, i in ratios)
                inside[(op, name)] = (tot, ins)
                per = statistics.median((t - i) for t, i in ratios)
                print(f"  {op:8s}{name:15s}total {tot / n * 1e6:.3f} us/value, inside C "
                      f"{ins / n * 1e6:.3f}: {statistics.median(t / i for t, i in ratios):.3f}x C inside "
                      f"(+{per / n * 1e6:.4f} us/value outside C)")
        finally:
            for nm, fn in saved.items():
                setattr(ca, nm, fn)
        c.close()
    key.close()


if __name__ == "__main__":
    main()
