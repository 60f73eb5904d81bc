"""Handles: no leaks after long loops (the package's live-handle count), finalizers safe at
interpreter exit, threads sharing one cipher, the buffer helpers, and the example script."""
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import cellar
from cellar import CellCipher, CellMode, Key, Keyring, KeyType, PageCipher, PageMode, _buffers, _handles
from pkg_helpers import PY_DIR, approved, subprocess_env

PS = 4096


def test_live_count_tracks_open_and_close():
    gc.collect()
    base = _handles.live_count()
    k = Key.generate()
    assert _handles.live_count() == base + 1 and _handles.live_count("key") >= 1
    c = CellCipher(k)
    assert _handles.live_count() == base + 2
    k.close()
    assert _handles.live_count() == base + 1
    del c
    gc.collect()
    assert _handles.live_count() == base


def test_no_leaks_after_a_long_loop(no_leaks):
    gc.collect()
    base = _handles.live_count()
    kr = Keyring.create()
    for i in range(2000):
        k = Key.generate(KeyType.AES256_XTS if i % 2 else KeyType.AES256)
        blob = kr.wrap(k)
        back, _ = kr.unwrap(blob)
        if i % 2:
            with PageCipher(back, PageMode.XTS) as pc:  # closed by `with`
                pc.encrypt(i, bytes(PS))
        else:
            c = CellCipher(back)  # left to the garbage collector
            c.decrypt(c.encrypt(b"v"))
        with pytest.raises(cellar.AuthenticationError):
            Key.unwrap(back, b"garbage") if not i % 2 else kr.unwrap(blob[:-1])  # no handle made
        k.close()
        del back
    assert _handles.live_count() > base  # the last CellCipher and the keyring are still open
    del c
    kr.close()
    gc.collect()
    assert _handles.live_count() == base


def _run(code, timeout=60):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_handles_left_open_at_exit():
    """Objects never closed, in module globals, reference cycles and a daemon thread still
    encrypting: the interpreter exits cleanly (status 0, nothing on stderr)."""
    r = _run("""
        import os, threading, time, cellar
        k = cellar.Key.generate()
        x = cellar.Key.generate(cellar.KeyType.AES256_XTS)
        pc = cellar.PageCipher(x, cellar.PageMode.XTS)
        cc = cellar.CellCipher(k)
        kr = cellar.Keyring.create(k)
        kr.add_provider(lambda r: bytes(r)[::-1], lambda w: bytes(w)[::-1])
        class Holder: pass
        h = Holder(); h.self = h; h.key = cellar.Key.generate()   # a cycle
        def spin():
            buf = bytearray(8192 * 8)
            while True:
                pc.encrypt_pages(0, buf, 8192)
                cc.encrypt_many([b"v"] * 100)
        threading.Thread(target=spin, daemon=True).start()
        time.sleep(0.2)
        print("bye")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "bye" and r.stderr == "", r.stderr


def test_threads_share_one_cipher(aes_key, xts_key):
    cells = CellCipher(aes_key, CellMode.RANDOMIZED)
    det = CellCipher(aes_key, CellMode.DETERMINISTIC)
    pages = PageCipher(xts_key, PageMode.XTS, file_id=3)
    ref_page = os.urandom(PS)
    ref_ct = pages.encrypt(7, ref_page)
    ref_det = det.encrypt(b"same", b"ctx")
    errors = []
    barrier = threading.Barrier(8)

    def work(n):
        try:
            barrier.wait()
            for i in range(200):
                value = b"%d-%d" % (n, i)
                ctx = b"row=%d" % i
                assert cells.decrypt(cells.encrypt(value, ctx), ctx) == value
                approved()
                assert det.encrypt(b"same", b"ctx") == ref_det
                assert pages.encrypt(7, ref_page) == ref_ct
                buf = bytearray(os.urandom(4 * PS))
                plain = bytes(buf)
                pages.encrypt_pages(i, buf, PS)
                pages.decrypt_pages(i, buf, PS)
                assert buf == plain
                batch = [value] * 10
                assert cells.decrypt_many(cells.encrypt_many(batch, ctx), ctx) == batch
                approved()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_buffer_helpers():
    data = b"abcdef"
    p, n, keep = _buffers.readable(data)
    assert p is data and n == 6  # bytes pass through without a copy
    ba = bytearray(data)
    p, n, keep = _buffers.readable(ba)
    ba[0] = ord("z")
    assert bytes(p) == b"zbcdef"  # a view on the bytearray, not a copy
    mv = memoryview(data)[1:4]
    p, n, keep = _buffers.readable(mv)
    import ctypes
    assert n == 3 and ctypes.string_at(p, n) == b"bcd"
    assert _buffers.readable(b"")[1] == 0 and _buffers.readable(bytearray())[0] is None
    with pytest.raises(ValueError, match="contiguous"):
        _buffers.readable(memoryview(b"abcdef")[::2])
    with pytest.raises(TypeError, match="not int"):
        _buffers.readable(5)
    with pytest.raises(TypeError, match="read-only"):
        _buffers.writable(b"abc")
    with pytest.raises(TypeError, match="read-only"):
        _buffers.writable(memoryview(b"abc"))
    p, n = _buffers.writable(memoryview(ba)[2:])
    assert n == 4


def test_example_script_runs():
    r = subprocess.run([sys.executable, str(PY_DIR / "examples" / "example.py")], env=subprocess_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "all done" in r.stdout


def test_threads_share_one_keyring():
    """Rotation on one thread while others wrap and unwrap: every blob unwraps to its key."""
    kr = Keyring.create()
    errors = []
    stop = threading.Event()

    def rotate():
        try:
            while not stop.is_set() and kr.active_version < 1000:  # a keyring holds 4096 at most
                kr.rotate()
                time.sleep(0.0005)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def use():
        try:
            for _ in range(100):
                with Key.generate() as dek:
                    blob = kr.wrap(dek)
                    back, version = kr.unwrap(blob)
                    assert back.id == dek.id and version >= 1
                    assert kr.unwrap(kr.rewrap(blob))[0].id == dek.id
                    back.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    rotator = threading.Thread(target=rotate)
    users = [threading.Thread(target=use) for _ in range(4)]
    rotator.start()
    for t in users:
        t.start()
    for t in users:
        t.join()
    stop.set()
    rotator.join()
    assert errors == []
    assert kr.active_version == len(kr.versions) > 1
