"""Benchmark (not a test): the cellar package against the `cryptography` package.

    make bench-python            # or: python3 python/bench/bench.py [--values N] [--pages N] [--rounds N]

Per-value / per-page cost of
  - CellCipher.encrypt_many / decrypt_many (RANDOMIZED, 64-byte values, one C call per batch) and
    encrypt_packed (Arrow-like layout, no per-value Python objects), against a Python loop over
    cryptography's AESGCM with os.urandom(12) nonces and the same context as AAD;
  - PageCipher.encrypt_pages (8 KiB pages, in place, XTS and GCM) against cryptography page by page
    (XTS: Cipher(algorithms.AES(64-byte key), modes.XTS(tweak)); GCM: AESGCM with a random nonce).

  - per-row contexts (``contexts=``) beside single calls and the shared-context batch, and
    blind indexes per call, through a BlindIndexKey, and batched (``--only rows``).

Each case runs in alternating rounds (ours, baseline, ours, ...) in one process; the report gives
the median per item and the spread (min-max) over the rounds, because these machines are noisy.
Single core unless a row says threads=N.
"""
from __future__ import annotations

import argparse
import array
import os
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

try:
    import cellar
except ImportError:  # running from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import cellar

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CTX = b"tenant=42/users/email"


def run_rounds(cases: Dict[str, Callable[[], object]], items: int, rounds: int) -> Dict[str, List[float]]:
    """Alternates the cases round by round; returns microseconds per item for each round."""
    out: Dict[str, List[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up (page faults, caches, lazy set-up)
        fn()
    for _ in range(rounds):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t0) / items * 1e6)
    return out


def report(title: str, results: Dict[str, List[float]], baseline: str) -> None:
    base = statistics.median(results[baseline])
    print(f"\n{title}")
    print(f"  {'case':<52} {'us/item':>9} {'spread':>17} {'vs baseline':>12}")
    for name, times in results.items():
        med = statistics.median(times)
        spread = f"{min(times):.3f}-{max(times):.3f}"
        ratio = "baseline" if name == baseline else f"{med / base:.2f}x time"
        print(f"  {name:<52} {med:>9.3f} {spread:>17} {ratio:>12}")


def bench_cells(n: int, size: int, rounds: int) -> None:
    key = cellar.Key.generate(cellar.KeyType.AES256)
    cells = cellar.CellCipher(key, cellar.CellMode.RANDOMIZED)
    raw = bytes(key.export_raw())  # the same key for the baseline
    aes = AESGCM(raw)
    values = [os.urandom(size) for _ in range(n)]
    packed = b"".join(values)
    offsets = array.array(cellar.cells.SIZE_T_CODE, range(0, size * n + 1, size))
    enc, urandom = aes.encrypt, os.urandom

    def aesgcm_loop():
        return [enc(urandom(12), v, CTX) for v in values]

    def aesgcm_loop_keep_nonce():  # what a stored cell needs: the nonce beside the ciphertext
        out = []
        for v in values:
            nonce = urandom(12)
            out.append(nonce + enc(nonce, v, CTX))
        return out

    encrypt = cells.encrypt
    results = run_rounds({
        "cellar encrypt_many (list in, list out)": lambda: cells.encrypt_many(values, CTX),
        "cellar encrypt_packed (buffer + offsets)": lambda: cells.encrypt_packed(packed, offsets, CTX),
        "cellar encrypt_many threads=2": lambda: cells.encrypt_many(values, CTX, threads=2),
        "cellar encrypt, one call per value": lambda: [encrypt(v, CTX) for v in values],
        "cryptography AESGCM loop, os.urandom(12) nonces": aesgcm_loop,
        "cryptography AESGCM loop, nonce || ciphertext": aesgcm_loop_keep_nonce,
    }, n, rounds)
    report(f"Cell encryption: {n} values of {size} B, RANDOMIZED (AES-256-GCM, module nonce)",
           results, "cryptography AESGCM loop, os.urandom(12) nonces")

    cts = cells.encrypt_many(values, CTX)
    assert cells.decrypt_many(cts, CTX) == values
    dec = aes.decrypt
    pairs = [(urandom(12), v) for v in values]
    gcm_cts = [(nonce, enc(nonce, v, CTX)) for nonce, v in pairs]
    results = run_rounds({
        "cellar decrypt_many": lambda: cells.decrypt_many(cts, CTX),
        "cellar decrypt_many threads=2": lambda: cells.decrypt_many(cts, CTX, threads=2),
        "cryptography AESGCM decrypt loop": lambda: [dec(nonce, c, CTX) for nonce, c in gcm_cts],
    }, n, rounds)
    report(f"Cell decryption: {n} values of {size} B", results, "cryptography AESGCM decrypt loop")
    cells.close()
    key.close()


def bench_pages(n: int, page_size: int, rounds: int) -> None:
    xkey = cellar.Key.generate(cellar.KeyType.AES256_XTS)
    xraw = bytes(xkey.export_raw())
    xts = cellar.PageCipher(xkey, cellar.PageMode.XTS, file_id=7)
    buf = bytearray(os.urandom(n * page_size))
    pages = [bytes(buf[i * page_size:(i + 1) * page_size]) for i in range(n)]

    # Correctness first: both sides produce the same XTS ciphertext.
    first = xts.encrypt(0, pages[0])
    e = Cipher(algorithms.AES(xraw), modes.XTS(struct.pack("<QQ", 0, 7))).encryptor()
    assert first == e.update(pages[0]) + e.finalize()

    def pyca_xts():
        out = []
        for i, p in enumerate(pages):
            e = Cipher(algorithms.AES(xraw), modes.XTS(struct.pack("<QQ", i, 7))).encryptor()
            out.append(e.update(p) + e.finalize())
        return out

    def one_by_one():
        enc = xts.encrypt_into
        mv = memoryview(buf)
        for i in range(n):
            enc(i, mv[i * page_size:(i + 1) * page_size])

    results = run_rounds({
        "cellar encrypt_pages XTS (in place, one call)": lambda: xts.encrypt_pages(0, buf, page_size),
        "cellar encrypt_pages XTS threads=2": lambda: xts.encrypt_pages(0, buf, page_size, threads=2),
        "cellar encrypt_into XTS, one call per page": one_by_one,
        "cryptography XTS page by page": pyca_xts,
    }, n, rounds)
    report(f"XTS pages: {n} pages of {page_size} B", results, "cryptography XTS page by page")

    gkey = cellar.Key.generate(cellar.KeyType.AES256)
    graw = bytes(gkey.export_raw())
    gcm = cellar.PageCipher(gkey, cellar.PageMode.GCM, file_id=7)
    aes = AESGCM(graw)
    payload = page_size - 48
    urandom = os.urandom

    def pyca_gcm():
        out = []
        for i, p in enumerate(pages):
            nonce = urandom(12)
            out.append(nonce + aes.encrypt(nonce, p[:payload], struct.pack("<Q", i)))
        return out

    results = run_rounds({
        "cellar encrypt_pages GCM (in place, one call)": lambda: gcm.encrypt_pages(0, buf, page_size),
        "cryptography AESGCM page by page, random nonce": pyca_gcm,
    }, n, rounds)
    report(f"GCM pages: {n} pages of {page_size} B ({payload} B payload)", results,
           "cryptography AESGCM page by page, random nonce")
    for o in (xts, gcm, xkey, gkey):
        o.close()


def bench_rows(n: int, size: int, rounds: int) -> None:
    """Per-row contexts (issue 20): single calls each given its row's context, against the
    shared-context batch and the per-row batch; blind indexes per call, by handle, batched."""
    key = cellar.Key.generate()
    prefix = b"tenant=42/users/email/"
    values = [os.urandom(size) for _ in range(n)]
    rows = [b"%08d" % i for i in range(n)]
    whole = [prefix + r for r in rows]
    for mode in (cellar.CellMode.RANDOMIZED, cellar.CellMode.DETERMINISTIC):
        c = cellar.CellCipher(key, mode)
        cts = c.encrypt_many(values, prefix, contexts=rows)
        enc, dec = c.encrypt, c.decrypt
        results = run_rounds({
            "encrypt: single calls, per-row context": lambda: [enc(v, x) for v, x in zip(values, whole)],
            "encrypt_many: one shared context": lambda: c.encrypt_many(values, prefix),
            "encrypt_many: contexts= (prefix + row key)": lambda: c.encrypt_many(values, prefix, contexts=rows),
            "decrypt: single calls, per-row context": lambda: [dec(v, x) for v, x in zip(cts, whole)],
            "decrypt_many: contexts= (prefix + row key)": lambda: c.decrypt_many(cts, prefix, contexts=rows),
        }, n, rounds)
        report(f"{mode.name} cells with per-row contexts: {n} values of {size} B",
               results, "encrypt: single calls, per-row context")
        c.close()
    b = cellar.BlindIndexKey(key)
    bi, comp = cellar.blind_index, b.compute
    results = run_rounds({
        "blind_index(): derives per call": lambda: [bi(key, v, prefix) for v in values],
        "BlindIndexKey.compute: single calls": lambda: [comp(v, prefix) for v in values],
        "BlindIndexKey.compute_many: shared context": lambda: b.compute_many(values, prefix),
        "BlindIndexKey.compute_many: contexts=": lambda: b.compute_many(values, prefix, contexts=rows),
    }, n, rounds)
    report(f"Blind indexes: {n} values of {size} B", results, "blind_index(): derives per call")
    b.close()
    key.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--values", type=int, default=100_000)
    ap.add_argument("--value-size", type=int, default=64)
    ap.add_argument("--pages", type=int, default=4096)
    ap.add_argument("--page-size", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", choices=["cells", "pages", "rows"], default=None)
    args = ap.parse_args()
    import cryptography
    from cryptography.hazmat.backends.openssl import backend
    print(f"{cellar.fips_status()}; {cellar.version()}; cryptography {cryptography.__version__} "
          f"({backend.openssl_version_text()}); "
          f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    if args.only in (None, "cells"):
        bench_cells(args.values, args.value_size, args.rounds)
    if args.only in (None, "pages"):
        bench_pages(args.pages, args.page_size, args.rounds)
    if args.only in (None, "rows"):
        bench_rows(min(args.values, 20_000), args.value_size, args.rounds)


if __name__ == "__main__":
    main()
