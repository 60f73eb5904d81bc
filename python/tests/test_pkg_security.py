"""Security review findings 3, 5, 6 and 8 (issue 13) through the package: keyring generations
and rollback refusal, key usage shared across handles, GCM page salts after fork(), and
plaintext/password scratch buffers wiped, with decrypt-into calls for a caller's buffer."""
import ctypes
import os

import pytest

import cellar
from cellar import CellCipher, CellMode, Key, Keyring, KeyType, PageCipher, PageMode
from cellar import _buffers, cells, pages
from pkg_helpers import approved

PW = "correct horse battery staple"
FAST = 100_000


# ---- Finding 3: keyring generation ---------------------------------------------------------

def test_generation_advances_and_rollback_is_refused():
    kr = Keyring.create()
    assert kr.generation == 1
    dek = Key.generate()
    old = kr.wrap(dek)
    kr.rotate()
    assert kr.generation == 2
    with Key.generate() as root:
        before = kr.export(root_key=root)
        before_pw = kr.export(password=PW, iterations=FAST)
        kr.retire(1)
        kr.retire(1)  # already retired: unchanged
        kr.lock()
        seen = kr.generation  # readable while locked; lock does not advance it
        assert seen == 3
        # The stale export imports without a minimum and resurrects version 1: the attack...
        stale = Keyring.import_state(before, root_key=root)
        assert stale.generation == 2 and stale.unwrap(old)[0].id == dek.id
        # ...and is refused once the host gives the generation it last saw.
        with pytest.raises(cellar.AuthenticationError, match="rollback"):
            Keyring.import_state(before, root_key=root, min_generation=seen)
        assert cellar.last_operation_approved() is None
        with pytest.raises(cellar.AuthenticationError, match="rollback"):
            Keyring.import_state(before_pw, password=PW, min_generation=seen)
        stale.retire(1)
        current = stale.export(root_key=root)
        kr2 = Keyring.import_state(current, root_key=root, min_generation=seen)
        approved()
        assert kr2.generation == seen
        with pytest.raises(cellar.KeyNotFoundError):
            kr2.unwrap(old)
    for bad in (-1, 1 << 64, "3", 1.0):
        with pytest.raises(ValueError):
            Keyring.import_state(current, password=PW, min_generation=bad)


# ---- Finding 5: usage per key across handles ------------------------------------------------

def test_usage_is_shared_by_handles_of_one_key():
    a = Key.generate()
    raw = a.export_raw()
    b = Key.import_raw(KeyType.AES256, raw)
    raw[:] = bytes(len(raw))
    ca, cb = CellCipher(a), CellCipher(b)
    ca.encrypt(b"x")
    cb.encrypt(b"y")
    cb.encrypt(b"z")
    assert a.usage[0] == 3 and b.usage[0] == 3
    a.set_usage_limit(5)
    b.set_usage_limit(5)
    ca.encrypt(b"1")
    cb.encrypt(b"2")
    for c in (ca, cb):
        with pytest.raises(cellar.UsageLimitError):
            c.encrypt(b"3")
    # Restoring a persisted count raises it, never lowers it.
    c = Key.generate()
    c.restore_usage_count(1000)
    assert c.usage[0] == 1000
    c.restore_usage_count(10)
    assert c.usage[0] == 1000
    with pytest.raises(ValueError):
        c.restore_usage_count(-1)


# ---- Finding 6: fork ----------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_gcm_pages_after_fork_use_another_salt():
    key = Key.generate()
    pc = PageCipher(key, PageMode.GCM, file_id=3)
    page = bytes(4096)
    salt = lambda p: p[-48 + 8:-48 + 20]  # noqa: E731  trailer: format, 3, version, salt (12)
    parent_salt = salt(pc.encrypt(1, page))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: write one page and hand it to the parent, then leave at once
        try:
            os.write(w, pc.encrypt(2, page))
        finally:
            os._exit(0)
    os.close(w)
    child_page = b""
    while len(child_page) < 4096:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        child_page += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert status == 0 and len(child_page) == 4096
    assert salt(child_page) != parent_salt
    assert salt(pc.encrypt(3, page)) == parent_salt  # the parent keeps its epoch
    assert pc.decrypt(2, child_page) == page[:-48] + bytes(48)


# ---- Finding 8: scratch buffers and decrypt-into -----------------------------------------------

@pytest.fixture
def scratch(monkeypatch):
    """Every ctypes buffer the cell and page modules create, and every buffer they wipe, kept as
    the live object together with what it held just before the wipe."""
    created, wiped = [], []
    real_create = ctypes.create_string_buffer

    def create(*a, **k):
        b = real_create(*a, **k)
        created.append(b)
        return b

    def spy(buf, nbytes=None):
        wiped.append((buf, bytes(buf) if buf is not None else b""))
        _buffers.wipe(buf, nbytes)

    monkeypatch.setattr(cells, "_create", create)
    monkeypatch.setattr(ctypes, "create_string_buffer", create)
    monkeypatch.setattr(cells, "_wipe", spy)
    monkeypatch.setattr(pages, "_wipe", spy)
    return created, wiped


def test_decrypt_paths_wipe_their_scratch(scratch):
    created, wiped = scratch
    secret = b"top secret value"
    cc = CellCipher(Key.generate())
    assert cc.decrypt(cc.encrypt(secret, "ctx"), "ctx") == secret
    assert cc.decrypt_many([cc.encrypt(secret, "c")] * 3, "c") == [secret] * 3
    cts = [cc.encrypt(v, "c") for v in (b"a", b"bb", secret)]
    data = b"".join(cts)
    offs = [0]
    for ct in cts:
        offs.append(offs[-1] + len(ct))
    raw, _ = cc.decrypt_packed(data, offs, "c")
    assert raw == b"abb" + secret
    rows = [cc.encrypt(secret, "c/" + r) for r in ("1", "2")]
    assert cc.decrypt_many(rows, "c/", contexts=["1", "2"]) == [secret] * 2
    dc = CellCipher(Key.generate(), CellMode.DETERMINISTIC)
    assert dc.decrypt_many([dc.encrypt(b"x", "c"), dc.encrypt(secret, "c")], "c") == [b"x", secret]
    pc = PageCipher(Key.generate(), PageMode.GCM)
    page = secret * 256
    assert pc.decrypt(1, pc.encrypt(1, page))[:-48] == page[:-48]
    # Six decrypt paths, each wiped the very buffer the plaintext was decrypted into: it held the
    # secret just before the wipe, and the same (still live) object reads as zeros now.
    assert len(wiped) == 6
    for buf, before in wiped:
        assert secret in before
        assert bytes(buf) == bytes(len(before))
    # And no other buffer these modules made still holds it.
    assert created
    assert not [b for b in created if secret in bytes(b)]


def test_cell_decrypt_into_caller_buffer():
    cc = CellCipher(Key.generate())
    ct = cc.encrypt(b"plaintext!", "row 7")
    out = bytearray(cc.plaintext_max_len(len(ct)))
    n = cc.decrypt_into(ct, out, "row 7")
    approved()
    assert out[:n] == b"plaintext!"
    mv = memoryview(bytearray(64))
    assert cc.decrypt_into(bytearray(ct), mv[8:40], "row 7") == 10 and mv[8:18] == b"plaintext!"
    # Failure leaves the buffer zeroed; a short buffer reports the size needed.
    out[:] = b"\xff" * len(out)
    with pytest.raises(cellar.AuthenticationError):
        cc.decrypt_into(ct, out, "row 8")
    assert out == bytes(len(out))
    with pytest.raises(cellar.BufferTooSmallError) as e:
        cc.decrypt_into(ct, bytearray(3), "row 7")
    assert e.value.needed >= 10
    with pytest.raises(TypeError):
        cc.decrypt_into(ct, bytes(64), "row 7")


def test_page_decrypt_into_caller_buffer():
    pc = PageCipher(Key.generate(), PageMode.GCM, file_id=1)
    page = os.urandom(4096)
    enc = pc.encrypt(5, page)
    out = bytearray(4096)
    pc.decrypt_into(5, enc, out)  # from read-only bytes into the caller's buffer
    approved()
    assert out[:-48] == page[:-48] and out[-48:] == bytes(48)
    run = pc.encrypt(5, page) + pc.encrypt(6, page)
    outs = bytearray(len(run))
    pc.decrypt_pages(5, run, 4096, out=outs)
    assert outs[:4048] == page[:-48] and outs[4096:8144] == page[:-48]
    with pytest.raises(cellar.AuthenticationError):
        pc.decrypt_into(6, enc, out)
    assert out == bytes(4096)
    with pytest.raises(ValueError):
        pc.decrypt_into(5, enc, bytearray(4095))
    with pytest.raises(TypeError):
        pc.decrypt_into(5, enc, bytes(4096))


def test_password_copies_are_bytearrays_wiped_after_use(monkeypatch):
    s = _buffers.Secret("pässwörd of some length", "password")
    copy = s._copy
    assert isinstance(copy, bytearray) and copy == "pässwörd of some length".encode()
    s.wipe()
    assert copy == bytes(len(copy))
    b = bytearray(b"caller's own password")
    with _buffers.Secret(b, "password") as s2:
        assert s2._copy is None  # bytes-like passwords are passed as they are, not copied
    assert b == bytearray(b"caller's own password")  # and the caller's buffer is left alone

    copies = []
    orig = _buffers.Secret.wipe

    def spy(self):
        c = self._copy
        orig(self)
        if c is not None:
            copies.append(bytes(c))

    monkeypatch.setattr(_buffers.Secret, "wipe", spy)
    k = Key.generate()
    f = k.export_with_password(PW, iterations=FAST)
    assert Key.import_with_password(f, PW).id == k.id
    kr = Keyring.create()
    kr2 = Keyring.import_state(kr.export(password=PW, iterations=FAST), password=PW, min_generation=1)
    assert kr2.generation == 1
    with pytest.raises(cellar.AuthenticationError):
        Key.import_with_password(f, "wrong password, long enough")
    assert len(copies) == 5 and all(c == bytes(len(c)) for c in copies)


def test_pkcs11_pin_copies_are_bytearrays_wiped_after_use(monkeypatch):
    from cellar import keyring as keyring_mod

    # A str PIN: encoded straight into a private bytearray that the config points to, wiped after.
    args = keyring_mod._Pkcs11Args("/nonexistent/module.so", "pin 1234 ünïcode", "token", None, 0, False)
    copy = args._pin._copy
    assert isinstance(copy, bytearray) and copy == "pin 1234 ünïcode".encode()
    assert ctypes.string_at(args.cfg.pin, args.cfg.pin_len) == bytes(copy)
    assert args.cfg.pin == ctypes.addressof((ctypes.c_char * len(copy)).from_buffer(copy))
    args.wipe()
    assert copy == bytes(len(copy)) and not args.cfg.pin and args.cfg.pin_len == 0
    # A bytes-like PIN is passed as it is (no copy), and left to its owner.
    pin = bytearray(b"caller's pin")
    args = keyring_mod._Pkcs11Args("/nonexistent/module.so", pin, "token", None, 0, False)
    assert args._pin._copy is None
    assert args.cfg.pin == ctypes.addressof((ctypes.c_char * len(pin)).from_buffer(pin))
    args.wipe()
    assert pin == bytearray(b"caller's pin")

    # Every PKCS#11 call wipes its PIN copy once the C call returns, also when it fails.
    copies = []
    orig = _buffers.Secret.wipe

    def spy(self):
        c = self._copy
        orig(self)
        if c is not None:
            copies.append(bytes(c))

    monkeypatch.setattr(_buffers.Secret, "wipe", spy)
    with pytest.raises(cellar.CellarError):
        Keyring.create_pkcs11("/nonexistent/module.so", "a pin", "label", token="t")
    try:  # no token versions: nothing to attach (or a module error); the PIN is wiped either way
        Keyring.create().unlock_pkcs11("another pin", "/nonexistent/module.so")
    except cellar.CellarError:
        pass
    assert len(copies) >= 2 and all(c == bytes(len(c)) for c in copies)  # (__del__ wipes again)
