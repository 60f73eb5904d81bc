"""The tenant keyring through ctypes: the full lifecycle; blobs and exports opened by an independent
implementation (`cryptography`'s AES-KWP, PBKDF2 and `hmac`) from the format in docs/KEYS.md, and
state built by it imported into Cellar; an external key provider written in Python as ctypes
CFUNCTYPE callbacks (round trip, failures without side effects, tampering, lock, export, threads)."""
import ctypes as C
import hashlib
import hmac
import os
import struct
import threading

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

lib = C.CDLL(os.environ["CELLAR_LIBRARY"])
vp, u32, i32, sz = C.c_void_p, C.c_uint32, C.c_int32, C.c_size_t
P = C.POINTER
u8p = P(C.c_uint8)

WRAP_FN = C.CFUNCTYPE(i32, vp, u8p, sz, u8p, sz, P(sz))


class Provider(C.Structure):
    _fields_ = [("context", vp), ("key_id", C.c_uint8 * 16), ("wrap", WRAP_FN), ("unwrap", WRAP_FN)]


def sig(name, args, res=i32):
    f = getattr(lib, name)
    f.argtypes, f.restype = args, res


sig("cellar_key_import", [u32, C.c_char_p, sz, P(vp)])
sig("cellar_key_generate", [u32, P(vp)])
sig("cellar_key_id", [vp, C.c_char_p])
sig("cellar_key_dangerous_export_raw", [vp, C.c_char_p, sz, P(sz)])
sig("cellar_key_free", [vp], None)
sig("cellar_keyring_new", [vp, P(vp)])
sig("cellar_keyring_active_version", [vp, P(u32)])
sig("cellar_keyring_versions", [vp, P(u32), C.c_char_p, sz, P(sz)])
sig("cellar_keyring_version_info", [vp, u32, C.c_char_p, P(u32)])
sig("cellar_keyring_rotate", [vp, vp, P(u32)])
sig("cellar_keyring_wrap", [vp, vp, C.c_char_p, sz, P(sz)])
sig("cellar_keyring_unwrap", [vp, C.c_char_p, sz, P(vp), P(u32)])
sig("cellar_keyring_rewrap", [vp, C.c_char_p, sz, C.c_char_p, sz, P(sz)])
sig("cellar_keyring_retire", [vp, u32])
sig("cellar_keyring_lock", [vp])
sig("cellar_keyring_lock_with", [vp, u32])
sig("cellar_keyring_unlock", [vp, vp])
sig("cellar_keyring_is_locked", [vp, P(i32)])
sig("cellar_keyring_export", [vp, vp, C.c_char_p, sz, u32, C.c_char_p, sz, P(sz)])
sig("cellar_keyring_import", [C.c_char_p, sz, vp, C.c_char_p, sz, P(vp)])
sig("cellar_keyring_add_provider", [vp, P(Provider), P(u32)])
sig("cellar_keyring_unlock_provider", [vp, P(Provider), P(u32)])
sig("cellar_keyring_free", [vp], None)
sig("cellar_last_operation_approved", [], i32)
sig("cellar_last_error", [C.c_char_p, sz], sz)

AES, XTS = 1, 2
OK, NULLP, INVALID_ARG, TOO_SMALL, AUTH, INVALID_KEY = 0, 1, 2, 3, 4, 5
NOT_FOUND, LOCKED, PROVIDER_FAILED = 7, 8, 11
PW = b"correct horse battery staple"
ITER = 100_000
MAXW = 530


def last_error():
    buf = C.create_string_buffer(512)
    lib.cellar_last_error(buf, 512)
    return buf.value.decode()


def approved():
    assert lib.cellar_last_operation_approved() == 1


def key_id_of(material):
    return hmac.new(material, b"cellar key id v1", hashlib.sha256).digest()[:16]


class Key:
    def __init__(self, material=None, kind=AES):
        self.h = vp()
        if material is None:
            assert lib.cellar_key_generate(kind, C.byref(self.h)) == OK
        else:
            kind = AES if len(material) == 32 else XTS
            assert lib.cellar_key_import(kind, material, len(material), C.byref(self.h)) == OK
        self.kind = kind

    @classmethod
    def adopt(cls, h):
        k = cls.__new__(cls)
        k.h = h
        return k

    def raw(self):
        buf, n = C.create_string_buffer(64), sz()
        assert lib.cellar_key_dangerous_export_raw(self.h, buf, 64, C.byref(n)) == OK
        return buf.raw[: n.value]

    def id(self):
        buf = C.create_string_buffer(16)
        assert lib.cellar_key_id(self.h, buf) == OK
        return buf.raw

    def __del__(self):
        lib.cellar_key_free(self.h)


class Keyring:
    def __init__(self, h):
        self.h = h

    @classmethod
    def new(cls, key=None):
        h = vp()
        st = lib.cellar_keyring_new(key.h if key else None, C.byref(h))
        assert st == OK, last_error()
        approved()
        return cls(h)

    def active(self):
        v = u32()
        assert lib.cellar_keyring_active_version(self.h, C.byref(v)) == OK
        return v.value

    def versions(self):
        n = sz()
        assert lib.cellar_keyring_versions(self.h, None, None, 0, C.byref(n)) == TOO_SMALL
        vs, ids = (u32 * n.value)(), C.create_string_buffer(16 * n.value)
        assert lib.cellar_keyring_versions(self.h, vs, ids, n.value, C.byref(n)) == OK
        return [(vs[i], ids.raw[16 * i : 16 * i + 16]) for i in range(n.value)]

    def info(self, v):
        kid, flags = C.create_string_buffer(16), u32()
        st = lib.cellar_keyring_version_info(self.h, v, kid, C.byref(flags))
        return st, kid.raw, flags.value

    def locked(self):
        l = i32(-1)
        assert lib.cellar_keyring_is_locked(self.h, C.byref(l)) == OK
        return l.value

    def rotate(self, key=None):
        v = u32()
        st = lib.cellar_keyring_rotate(self.h, key.h if key else None, C.byref(v))
        return st, v.value

    def wrap(self, dk):
        out, n = C.create_string_buffer(MAXW), sz()
        st = lib.cellar_keyring_wrap(self.h, dk.h, out, MAXW, C.byref(n))
        return st, out.raw[: n.value] if st == OK else None

    def unwrap(self, blob):
        k, v = vp(), u32(0)
        st = lib.cellar_keyring_unwrap(self.h, blob, len(blob), C.byref(k), C.byref(v))
        if st != OK:
            assert not k.value and v.value == 0  # out-params untouched
            return st, None, None
        return st, Key.adopt(k), v.value

    def rewrap(self, blob):
        out, n = C.create_string_buffer(MAXW), sz()
        st = lib.cellar_keyring_rewrap(self.h, blob, len(blob), out, MAXW, C.byref(n))
        return st, out.raw[: n.value] if st == OK else None

    def export(self, root=None, password=None, iterations=0):
        n = sz()
        pw, pwl = (password, len(password)) if password else (None, 0)
        st = lib.cellar_keyring_export(self.h, root.h if root else None, pw, pwl, iterations, None, 0, C.byref(n))
        if st != TOO_SMALL:
            return st, None
        out = C.create_string_buffer(n.value)
        st = lib.cellar_keyring_export(self.h, root.h if root else None, pw, pwl, iterations, out, n, C.byref(n))
        return st, out.raw[: n.value] if st == OK else None

    @classmethod
    def import_(cls, blob, root=None, password=None):
        h = vp()
        pw, pwl = (password, len(password)) if password else (None, 0)
        st = lib.cellar_keyring_import(blob, len(blob), root.h if root else None, pw, pwl, C.byref(h))
        return st, (cls(h) if st == OK else None)

    def __del__(self):
        lib.cellar_keyring_free(self.h)


def ok(pair, expect=1):
    """The value of a successful call; `expect` is the indicator (0 when a provider did the work)."""
    st, val = pair[0], pair[1]
    assert st == OK, last_error()
    assert lib.cellar_last_operation_approved() == expect
    return val


def test_full_lifecycle():
    kr = Keyring.new()
    assert kr.active() == 1 and kr.locked() == 0
    dks = [Key(kind=AES if i % 2 == 0 else XTS) for i in range(4)]
    blobs = [ok(kr.wrap(k)) for k in dks]
    assert [len(b) for b in blobs] == [82, 114, 82, 114]

    assert ok(kr.rotate()) == 2  # generated
    customer = Key(os.urandom(32))
    assert ok(kr.rotate(customer)) == 3  # customer key
    assert [v for v, _ in kr.versions()] == [1, 2, 3]
    assert kr.versions()[2][1] == customer.id()

    rewrapped = [ok(kr.rewrap(b)) for b in blobs]
    for r, k in zip(rewrapped, dks):
        st, u, v = kr.unwrap(r)
        approved()  # (raw() below is an export, which reports 0)
        assert st == OK and v == 3 and u.raw() == k.raw()

    assert lib.cellar_keyring_retire(kr.h, 1) == OK
    for b, r in zip(blobs, rewrapped):
        assert kr.unwrap(b)[0] == NOT_FOUND
        assert kr.unwrap(r)[0] == OK
    assert kr.info(1)[2] == 8  # RETIRED

    # Version 2 was generated here and never exported: a plain lock is refused (issue 20).
    assert lib.cellar_keyring_lock(kr.h) == 2 and kr.locked() == 0
    assert lib.cellar_keyring_lock_with(kr.h, 1) == OK  # CELLAR_KEYRING_LOCK_FORCE
    assert kr.locked() == 1 and kr.active() == 3
    assert kr.wrap(dks[0])[0] == LOCKED
    assert lib.cellar_last_operation_approved() == -1
    assert kr.unwrap(rewrapped[0])[0] == LOCKED
    assert kr.rewrap(rewrapped[0])[0] == LOCKED

    assert lib.cellar_keyring_unlock(kr.h, Key().h) == NOT_FOUND
    assert lib.cellar_keyring_unlock(kr.h, Key(kind=XTS).h) == INVALID_KEY
    assert kr.locked() == 1
    assert lib.cellar_keyring_unlock(kr.h, customer.h) == OK
    approved()
    assert kr.locked() == 0
    assert kr.unwrap(rewrapped[1])[2] == 3

    # Version 2 (generated, never handed back) is still locked: exported by id, imported locked.
    exp = ok(kr.export(password=PW, iterations=ITER))
    kr2 = ok(Keyring.import_(exp, password=PW))
    assert kr2.active() == 3 and kr2.versions() == kr.versions()
    for r, k in zip(rewrapped, dks):
        st, u, v = kr2.unwrap(r)
        assert st == OK and u.raw() == k.raw() and v == 3

    assert Keyring.import_(exp, password=b"wrong horse battery staple")[0] == AUTH
    bad = bytearray(exp)
    bad[-5] ^= 0x01
    assert Keyring.import_(bytes(bad), password=PW)[0] == AUTH
    assert Keyring.import_(exp, root=Key())[0] == INVALID_ARG  # sealed under a password


def parse_inner(inner):
    return inner[0], struct.unpack(">I", inner[1:5])[0], inner[5:21], inner[21:]


def test_blobs_open_with_pyca_and_pyca_blobs_open_in_cellar():
    tenant = os.urandom(32)
    kr = Keyring.new(Key(tenant))
    data = os.urandom(64)
    dk = Key(data)
    blob = ok(kr.wrap(dk))
    # 0x57 | 0x01 | kek_id (16) | AES-KWP(tenant, type | version BE | key_id | material)
    assert blob[:2] == b"\x57\x01" and blob[2:18] == key_id_of(tenant)
    kt, ver, kid, material = parse_inner(aes_key_unwrap_with_padding(tenant, blob[18:]))
    assert (kt, ver, kid, material) == (XTS, 1, key_id_of(data), data)

    # After a rotation to a second customer key the inner version is 2 and the KEK id moves.
    t2 = os.urandom(32)
    assert ok(kr.rotate(Key(t2))) == 2
    r = ok(kr.rewrap(blob))
    assert r[2:18] == key_id_of(t2)
    assert parse_inner(aes_key_unwrap_with_padding(t2, r[18:])) == (XTS, 2, key_id_of(data), data)
    with pytest.raises(InvalidUnwrap):
        aes_key_unwrap_with_padding(tenant, r[18:])

    # A blob built by pyca from the documented format opens in Cellar.
    d2 = os.urandom(32)
    inner = bytes([AES]) + struct.pack(">I", 2) + key_id_of(d2) + d2
    pyblob = b"\x57\x01" + key_id_of(t2) + aes_key_wrap_with_padding(t2, inner)
    st, k, v = kr.unwrap(pyblob)
    approved()
    assert st == OK and v == 2 and k.raw() == d2
    # ... but not with a wrong inner version or a wrong inner key id.
    for bad_inner in (inner[:1] + struct.pack(">I", 1) + inner[5:], inner[:5] + bytes(16) + inner[21:]):
        b = b"\x57\x01" + key_id_of(t2) + aes_key_wrap_with_padding(t2, bad_inner)
        assert kr.unwrap(b)[0] == AUTH


def parse_state(state, magic, generation=None):
    """Format 0x02 (written since generations exist): magic | 0x02 | generation (u64 BE) |
    active | count | entries; format 0x01 has no generation."""
    assert state[0] == magic and state[1] in (1, 2)
    h = 2
    if state[1] == 2:
        (gen,) = struct.unpack(">Q", state[2:10])
        if generation is not None:
            assert gen == generation
        h = 10
    active, count = struct.unpack(">II", state[h : h + 8])
    entries, p = [], h + 8
    for _ in range(count):
        v, kind = struct.unpack(">IB", state[p : p + 5])
        kid = state[p + 5 : p + 21]
        p += 21
        material = None
        if kind == 1:
            assert state[p] == AES
            material = state[p + 1 : p + 33]
            p += 33
        entries.append((v, kind, kid, material))
    assert p == len(state)
    return active, entries


def test_exports_open_with_pyca_and_pyca_state_imports():
    t1, t2, root = os.urandom(32), os.urandom(32), os.urandom(32)
    kr = Keyring.new(Key(t1))
    ok(kr.rotate(Key(t2)))
    ok(kr.rotate())
    assert lib.cellar_keyring_retire(kr.h, 2) == OK

    exp = ok(kr.export(root=Key(root)))
    assert exp[:2] == b"\x52\x02" and exp[2:18] == key_id_of(root)
    # generation: created 1, two rotations, one retire
    active, entries = parse_state(aes_key_unwrap_with_padding(root, exp[18:]), 0x52, generation=4)
    assert active == 3
    assert [(v, kind) for v, kind, _, _ in entries] == [(1, 1), (2, 3), (3, 1)]
    assert entries[0][2:] == (key_id_of(t1), t1)
    assert entries[1][2:] == (key_id_of(t2), None)  # retired: id only, material gone
    assert entries[2][2] == key_id_of(entries[2][3])

    pexp = ok(kr.export(password=PW, iterations=ITER))
    assert pexp[:2] == b"\x4b\x02" and struct.unpack(">I", pexp[2:6])[0] == ITER
    kek = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=pexp[6:22], iterations=ITER).derive(PW)
    assert parse_state(aes_key_unwrap_with_padding(kek, pexp[22:]), 0x4B, generation=4) == (active, entries)

    # A state built by pyca imports into Cellar: versions 5 (local, active) and 9 (provider ref).
    t5 = os.urandom(32)
    state = b"\x52\x01" + struct.pack(">II", 5, 2)
    state += struct.pack(">IB", 5, 1) + key_id_of(t5) + bytes([AES]) + t5
    state += struct.pack(">IB", 9, 2) + b"\xab" * 16
    blob = b"\x52\x01" + key_id_of(root) + aes_key_wrap_with_padding(root, state)
    st, kr2 = Keyring.import_(blob, root=Key(root))
    assert st == OK, last_error()
    approved()
    assert kr2.active() == 5 and kr2.locked() == 0
    assert kr2.info(9)[1:] == (b"\xab" * 16, 2 | 4)  # PROVIDER | LOCKED (detached)
    d = os.urandom(32)
    assert ok(kr2.wrap(Key(d)))[2:18] == key_id_of(t5)
    # Out-of-order versions are refused.
    swapped = b"\x52\x01" + struct.pack(">II", 5, 2) + state[10 + 54 :] + state[10 : 10 + 54]
    bad = b"\x52\x01" + key_id_of(root) + aes_key_wrap_with_padding(root, swapped)
    assert Keyring.import_(bad, root=Key(root))[0] == AUTH


class PyHsm:
    """An external provider in Python: AES-KWP under a key the library never sees."""

    def __init__(self, key_id=b"\x5a" * 16):
        self.key = os.urandom(32)
        self.fail = False
        self.raise_ = False
        self.calls = 0
        self.lock = threading.Lock()
        self.wrap_cb = WRAP_FN(self._wrap)
        self.unwrap_cb = WRAP_FN(self._unwrap)
        self.struct = Provider(None, (C.c_uint8 * 16)(*key_id), self.wrap_cb, self.unwrap_cb)

    def _io(self, fn, inp, n, out, cap, out_len):
        with self.lock:
            self.calls += 1
        if self.raise_:
            raise RuntimeError("HSM exploded")  # ctypes prints it and returns 0 without a length
        if self.fail:
            return 99
        try:
            res = fn(self.key, C.string_at(inp, n))
        except InvalidUnwrap:
            return AUTH
        if len(res) > cap:
            return 98
        C.memmove(out, res, len(res))
        out_len[0] = len(res)
        return OK

    def _wrap(self, ctx, inp, n, out, cap, out_len):
        return self._io(aes_key_wrap_with_padding, inp, n, out, cap, out_len)

    def _unwrap(self, ctx, inp, n, out, cap, out_len):
        return self._io(aes_key_unwrap_with_padding, inp, n, out, cap, out_len)


# A raising callback is part of the test: ctypes reports it as unraisable and returns 0 with no
# length, which Cellar must treat as a failure.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_python_provider():
    kr = Keyring.new()
    d = os.urandom(32)
    dk = Key(d)
    b1 = ok(kr.wrap(dk))
    hsm = PyHsm()
    v = u32(0)

    hsm.fail = True
    assert lib.cellar_keyring_add_provider(kr.h, C.byref(hsm.struct), C.byref(v)) == PROVIDER_FAILED
    assert kr.active() == 1 and len(kr.versions()) == 1 and v.value == 0
    hsm.fail = False

    assert lib.cellar_keyring_add_provider(kr.h, C.byref(hsm.struct), C.byref(v)) == OK, last_error()
    assert lib.cellar_last_operation_approved() == 0  # the provider wrapped the probe (finding 4)
    assert v.value == 2 and kr.active() == 2
    bp = ok(kr.wrap(dk), expect=0)
    # The provider does AES-KWP, so the blob is a standard one under the HSM key.
    inner = bytes([AES]) + struct.pack(">I", 2) + key_id_of(d) + d
    assert bp == b"\x57\x01" + b"\x5a" * 16 + aes_key_wrap_with_padding(hsm.key, inner)
    st, k, ver = kr.unwrap(bp)
    assert st == OK and ver == 2 and k.raw() == d
    assert ok(kr.rewrap(b1), expect=0) == bp

    # Failures: provider-failed, nothing changed.
    for mode in ("fail", "raise_"):
        setattr(hsm, mode, True)
        assert kr.wrap(dk)[0] == PROVIDER_FAILED
        assert kr.unwrap(bp)[0] == PROVIDER_FAILED
        assert kr.rewrap(b1)[0] == PROVIDER_FAILED
        assert "provider" in last_error()
        setattr(hsm, mode, False)
        assert kr.active() == 2 and kr.locked() == 0 and len(kr.versions()) == 2
    # Tampered: the provider rejects it.
    t = bytearray(bp)
    t[-1] ^= 1
    assert kr.unwrap(bytes(t))[0] == AUTH

    # Concurrent use from Python threads (callbacks run on whichever thread calls).
    errors = []

    def worker():
        try:
            for _ in range(25):
                k = Key()
                st, b = kr.wrap(k)
                assert st == OK
                st, u, ver = kr.unwrap(b)
                assert st == OK and ver == 2 and u.raw() == k.raw()
        except AssertionError as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors

    # Lock drops the provider; unlock_provider attaches it again. (Version 1 was generated
    # here and never exported: the lock must be forced.)
    assert lib.cellar_keyring_lock_with(kr.h, 1) == OK
    calls = hsm.calls
    assert kr.unwrap(bp)[0] == LOCKED and hsm.calls == calls
    assert lib.cellar_keyring_unlock_provider(kr.h, C.byref(hsm.struct), C.byref(v)) == OK
    assert v.value == 2 and kr.locked() == 0

    # Export (root key) keeps a reference; the import comes back detached until attached.
    root = Key()
    lib.cellar_keyring_retire(kr.h, 1)
    exp = ok(kr.export(root=root))
    st, kr2 = Keyring.import_(exp, root=root)
    assert st == OK and kr2.locked() == 1
    assert kr2.unwrap(bp)[0] == LOCKED
    assert lib.cellar_keyring_unlock_provider(kr2.h, C.byref(hsm.struct), C.byref(v)) == OK
    assert kr2.unwrap(bp)[2] == 2
    del kr, kr2  # keyrings go before the callbacks they reference


def test_generation_rollback_with_pyca_built_exports():
    """Finding 3: a format-0x02 state built by pyca carries its generation; import with a higher
    minimum is refused as a rollback, a format-0x01 state reads as generation 0."""
    lib.cellar_keyring_import_min_generation.argtypes = [vp, sz, vp, vp, sz, C.c_uint64, P(vp)]
    lib.cellar_keyring_generation.argtypes = [vp, P(C.c_uint64)]
    root, t5 = os.urandom(32), os.urandom(32)
    entry = struct.pack(">IB", 5, 1) + key_id_of(t5) + bytes([AES]) + t5

    def sealed(fmt, state):
        return bytes([0x52, fmt]) + key_id_of(root) + aes_key_wrap_with_padding(root, state)

    v2 = sealed(2, b"\x52\x02" + struct.pack(">QII", 41, 5, 1) + entry)
    v1 = sealed(1, b"\x52\x01" + struct.pack(">II", 5, 1) + entry)
    rk = Key(root)
    for blob, gen in ((v2, 41), (v1, 0)):
        out = vp()
        assert lib.cellar_keyring_import_min_generation(blob, len(blob), rk.h, None, 0, gen, C.byref(out)) == OK
        g = C.c_uint64()
        assert lib.cellar_keyring_generation(out, C.byref(g)) == OK and g.value == gen
        lib.cellar_keyring_free(out)
        bad = vp()
        assert lib.cellar_keyring_import_min_generation(
            blob, len(blob), rk.h, None, 0, gen + 1, C.byref(bad)) == AUTH
        assert "rollback" in last_error() and bad.value is None
    # The outer format byte must agree with the sealed state's.
    relabelled = sealed(1, b"\x52\x02" + struct.pack(">QII", 41, 5, 1) + entry)
    assert Keyring.import_(relabelled, root=rk)[0] == AUTH
