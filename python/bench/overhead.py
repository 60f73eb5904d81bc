"""Benchmark (not a test): what the Python layer adds per value above the C batch call.

    python3 python/bench/overhead.py [--values N] [--rounds R]

For 64-byte values (RANDOMIZED and DETERMINISTIC) it times, in alternating rounds:
  - the C batch call alone (ctypes, buffers made beforehand): the floor;
  - encrypt_many / decrypt_many (threads=1), and the difference per value;
  - the parts of that difference: packing the values (_pack: lengths, join, offsets) and
    splitting the output into one bytes object per value (_split_equal);
  - threads=2: one threaded C call (cellar_cell_*_batch_threads, what encrypt_many does now)
    against two Python threads each making one C call (what it did before).
Both wall time and this thread's CPU time are reported (median and min over the rounds): on a
shared machine the CPU time of a one-thread case is the steadier figure.
"""
from __future__ import annotations

import argparse
import array
import ctypes
import os
import statistics
import sys
import time
from pathlib import Path

try:
    import cellar
except ImportError:  # running from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import cellar
from cellar import cells as C


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args()
    n, rounds = a.values, a.rounds
    key = cellar.Key.generate(cellar.KeyType.AES256)
    values = [os.urandom(64) for _ in range(n)]
    ctx = b"tenant=42/users/email"
    print(f"{n} values of 64 bytes, {rounds} alternating rounds; us per value, median (min)")
    for mode in (cellar.CellMode.RANDOMIZED, cellar.CellMode.DETERMINISTIC):
        c = cellar.CellCipher(key, mode)
        h = c._handle
        data, offsets, _ = C._pack(values)
        cts = c.encrypt_many(values, ctx)
        cdata, coffsets, _ = C._pack(cts)
        total = C._batch_ct_len(c._mode, C._size_array(offsets), n)
        room = C._batch_pt_max(c._mode, C._size_array(coffsets), n)
        out = ctypes.create_string_buffer(total)
        pout = ctypes.create_string_buffer(room)
        oo = array.array(C.SIZE_T_CODE, [0]) * (n + 1)
        used = ctypes.c_size_t()

        def c_enc() -> None:
            assert C._encrypt_batch(h, ctx, len(ctx), data, C._size_array(offsets), n, out, total,
                                    C._size_array(oo), ctypes.byref(used)) == 0

        def c_dec() -> None:
            assert C._decrypt_batch(h, ctx, len(ctx), cdata, C._size_array(coffsets), n, pout, room,
                                    C._size_array(oo), ctypes.byref(used)) == 0

        def py_threads(fn, sizer, vals, exact):  # encrypt_many/decrypt_many's threads=2 path
            def run():                            # before issue 18: two Python threads
                d, o, same = C._pack(vals)
                out, results = C._run_batch(fn, sizer, h, c._mode, ctx, len(ctx), d, o, n, 2)
                try:
                    if same >= 0 and exact:
                        return C._split_equal(out, sum(r[1] for r in results) // n, n)
                    res, base = [], ctypes.addressof(out)
                    for start, used, oo in results:
                        res.extend(C._split(C._string_at(base + start, used) if used else b"", oo))
                    return res
                finally:
                    if fn is C._decrypt_batch:
                        C._wipe(out)
            return run

        cases = {
            "C encrypt batch call alone": c_enc,
            "encrypt_many": lambda: c.encrypt_many(values, ctx),
            "  part: _pack(values)": lambda: C._pack(values),
            "  part: _split_equal(output)": lambda: C._split_equal(out, total // n, n),
            "C decrypt batch call alone": c_dec,
            "decrypt_many": lambda: c.decrypt_many(cts, ctx),
            "encrypt_many threads=2 (one threaded C call)": lambda: c.encrypt_many(values, ctx, threads=2),
            "  before: 2 Python threads, one C call each": py_threads(C._encrypt_batch, C._batch_ct_len, values, True),
            "decrypt_many threads=2 (one threaded C call)": lambda: c.decrypt_many(cts, ctx, threads=2),
            "  before: 2 Python threads, one C call each ": py_threads(C._decrypt_batch, C._batch_pt_max, cts, c._randomized),
        }
        wall = {k: [] for k in cases}
        cpu = {k: [] for k in cases}
        for f in cases.values():
            f()
        for _ in range(rounds):
            for k, f in cases.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                f()
                cpu[k].append((time.thread_time() - c0) / n * 1e6)
                wall[k].append((time.perf_counter() - t0) / n * 1e6)
        print(f"\n{mode.name}")
        print(f"  {'case':<48} {'wall us/value':>18} {'thread CPU us/value':>22}")
        for k in cases:
            w, p = wall[k], cpu[k]
            print(f"  {k:<48} {statistics.median(w):>8.3f} ({min(w):.3f}) {statistics.median(p):>12.3f} ({min(p):.3f})")
        for many, floor in (("encrypt_many", "C encrypt batch call alone"), ("decrypt_many", "C decrypt batch call alone")):
            dw = statistics.median(wall[many]) - statistics.median(wall[floor])
            dc = statistics.median(cpu[many]) - statistics.median(cpu[floor])
            print(f"  => {many} adds {dw:.3f} us/value wall, {dc:.3f} us/value CPU above the C call")


if __name__ == "__main__":
    main()
