"""Keyrings whose versions are AES-256 keys in a real SoftHSM2 token (issue 14).

The module makes its own token directory and SOFTHSM2_CONF in a temporary folder and initialises
tokens with softhsm2-util before the PKCS#11 module is first loaded in this process. The test's own
PKCS#11 calls (to make keys a customer might bring, and to destroy one behind Cellar's back) go
straight into the module with ctypes. Skipped when
SoftHSM2 is not installed, unless CELLAR_REQUIRE_SOFTHSM is set (`make test-pkcs11` sets it).
"""
import ctypes
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
from ctypes import byref, c_ubyte, c_ulong, c_void_p, sizeof

import pytest

import pkg_helpers  # noqa: F401  (puts python/ on sys.path)
import cellar
from cellar.fips import last_operation_approved

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4711-cellar"
TOKENS = ["py-round", "py-rotate", "py-lock", "py-export", "py-retire", "py-errors", "py-threads", "py-byok",
          "py-gone", "py-lock-state"]

if not os.path.exists(MODULE):
    if os.environ.get("CELLAR_REQUIRE_SOFTHSM"):
        raise RuntimeError(f"SoftHSM2 is required but {MODULE} is missing")
    pytest.skip("SoftHSM2 is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def hsm():
    with tempfile.TemporaryDirectory(prefix="cellar-pkcs11-") as d:
        tokens = pathlib.Path(d, "tokens")
        tokens.mkdir()
        conf = pathlib.Path(d, "softhsm2.conf")
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        env = dict(os.environ, SOFTHSM2_CONF=str(conf))
        for t in TOKENS:
            subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", t, "--so-pin", "so-pin-0815",
                            "--pin", PIN], check=True, env=env, capture_output=True)
        # Read by the module when it is first loaded (C_Initialize), which is after this.
        os.environ["SOFTHSM2_CONF"] = str(conf)
        yield pathlib.Path(d)


def _kw(token):
    # SoftHSM 2.6's CKM_AES_KEY_WRAP_PAD zero-pads its input; allowed explicitly.
    return dict(token=token, allow_zero_padded_kwp=True)


def test_round_trip_in_the_token_reports_not_approved(hsm):
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "tenant", **_kw("py-round"))
    assert last_operation_approved() is False
    info = kr.version_info(1)
    assert info.pkcs11 and info.provider and info.active and not info.locked
    with cellar.Key.generate(cellar.KeyType.AES256) as dek:
        blob = kr.wrap(dek)
        assert last_operation_approved() is False
        assert blob[:2] == b"W\x01" and blob[2:18] == info.key_id and len(blob) == 82
        back, version = kr.unwrap(blob)
        assert last_operation_approved() is False
        assert version == 1 and back.id == dek.id
        back.close()
        bad = bytearray(blob)
        bad[30] ^= 1
        with pytest.raises(cellar.AuthenticationError):
            kr.unwrap(bytes(bad))
    kr.close()


def test_every_purpose_and_key_size_round_trips_through_the_token(hsm):
    """Data keys with a purpose have a 54- or 86-byte record (blob format 0x02); SoftHSM returns
    them zero-padded to 56 or 88 bytes like the 53- and 85-byte records of keys without one."""
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "purposes", **_kw("py-round"))
    P = cellar.KeyPurpose
    kinds = [(t, p) for t in (cellar.KeyType.AES256, cellar.KeyType.AES256_XTS)
             for p in (P.NONE, P.DATA_ENCRYPTION, P.KEY_WRAPPING, P.KEY_DERIVATION)
             if not (t == cellar.KeyType.AES256_XTS and p == P.KEY_WRAPPING)]
    assert len(kinds) == 7
    for key_type, purpose in kinds:
        with cellar.Key.generate(key_type, purpose=purpose) as dek:
            blob = kr.wrap(dek)
            assert blob[1] == (1 if purpose == P.NONE else 2), (key_type, purpose)
            back, version = kr.unwrap(blob)
            assert last_operation_approved() is False
            assert (back.id, back.purpose, version) == (dek.id, purpose, 1), (key_type, purpose)
            back.close()
    kr.close()


def test_rotation_and_rewrap_between_token_and_software_versions(hsm):
    kr = cellar.Keyring.create()
    with cellar.Key.generate(cellar.KeyType.AES256) as dek:
        soft = kr.wrap(dek)
        assert kr.add_pkcs11(MODULE, PIN, "v2", **_kw("py-rotate")) == 2
        assert kr.version_info(2).pkcs11 and not kr.version_info(1).pkcs11
        hsm_blob = kr.rewrap(soft)
        k, v = kr.unwrap(hsm_blob)
        assert v == 2 and k.id == dek.id
        k.close()
        # Bring your own key: the same token key adopted by label into a second keyring.
        kr2 = cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_label="v2", **_kw("py-rotate"))
        assert kr2.version_info(1).key_id == kr.version_info(2).key_id
        # The blob binds its tenant version (2 in kr, 1 in kr2): refused, not mixed up.
        with pytest.raises(cellar.AuthenticationError):
            kr2.unwrap(hsm_blob)
        k2, v2 = kr2.unwrap(kr2.wrap(dek))
        assert k2.id == dek.id and v2 == 1
        k2.close()
        kr2.close()
        with pytest.raises(cellar.KeyNotFoundError):
            cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_label="nobody", **_kw("py-rotate"))
    kr.close()


def test_lock_unlock_and_wrong_pin(hsm):
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "locked", **_kw("py-lock"))
    with cellar.Key.generate(cellar.KeyType.AES256) as dek:
        blob = kr.wrap(dek)
        kr.lock()
        assert kr.locked and kr.version_info(1).locked
        with pytest.raises(cellar.TenantLockedError):
            kr.wrap(dek)
        with pytest.raises(cellar.AuthenticationError) as e:
            kr.unlock_pkcs11("wrong-pin-123", allow_zero_padded_kwp=True)
        assert "CKR_PIN_INCORRECT" in str(e.value)
        assert kr.locked
        assert kr.unlock_pkcs11(PIN, allow_zero_padded_kwp=True) == 1
        assert not kr.locked
        k, _ = kr.unwrap(blob)
        assert k.id == dek.id
        k.close()
    kr.close()


def test_errors_name_the_cause(hsm):
    with pytest.raises(cellar.ProviderError) as e:
        cellar.Keyring.create_pkcs11("/nonexistent/lib.so", PIN, "k", **_kw("py-errors"))
    assert "module" in str(e.value)
    with pytest.raises(cellar.ProviderError) as e:
        cellar.Keyring.create_pkcs11(MODULE, PIN, "k", **_kw("no-such-token"))
    assert "no token" in str(e.value)
    with pytest.raises(cellar.ProviderError) as e:
        cellar.Keyring.create_pkcs11(MODULE, PIN, "k", token="py-errors")
    assert "zero-pads" in str(e.value)
    with pytest.raises(cellar.AuthenticationError):
        cellar.Keyring.create_pkcs11(MODULE, "wrong-pin-123", "k", **_kw("py-errors"))
    with pytest.raises(ValueError):
        cellar.Keyring.create_pkcs11(MODULE, PIN, "k")


def test_retire_with_and_without_destroying(hsm):
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "first", **_kw("py-retire"))
    kr.add_pkcs11(MODULE, PIN, "second", **_kw("py-retire"))
    kr.add_pkcs11(MODULE, PIN, "third", **_kw("py-retire"))
    kr.retire_pkcs11(1)  # the token object stays: a second keyring can still adopt it
    other = cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_label="first", **_kw("py-retire"))
    other.close()
    kr.retire_pkcs11(2, destroy=True)  # gone from the token
    assert kr.version_info(2).retired
    with pytest.raises(cellar.KeyNotFoundError):
        cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_label="second", **_kw("py-retire"))
    kr.close()


CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import cellar
state, root, blob, dek_id = (open(p, "rb").read() for p in sys.argv[2:6])
with cellar.Key.import_raw(cellar.KeyType.AES256, root) as rk:
    kr = cellar.Keyring.import_state(state, root_key=rk)
assert kr.locked and kr.version_info(1).pkcs11
n = kr.unlock_pkcs11(sys.argv[6], allow_zero_padded_kwp=True)
k, v = kr.unwrap(blob)
assert k.id == dek_id and v == 1
print("child reconnected", n)
"""


def test_export_reimported_in_a_new_process_reconnects(hsm, tmp_path):
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "exported", **_kw("py-export"))
    with cellar.Key.generate(cellar.KeyType.AES256) as dek, cellar.Key.generate(cellar.KeyType.AES256) as root:
        blob = kr.wrap(dek)
        state = kr.export(root_key=root)
        files = {"state": state, "root": bytes(root.export_raw()), "blob": blob, "dek": dek.id}
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
    kr.close()
    pkg = str(pathlib.Path(cellar.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", CHILD, pkg] + [str(tmp_path / n) for n in files] + [PIN],
                         capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "child reconnected 1" in out.stdout


# ---- The test's own PKCS#11 calls, straight into the module (the same library instance
# libcellar loaded), to make keys a customer might bring and to destroy one behind Cellar's back.

class _Attr(ctypes.Structure):
    _fields_ = [("type", c_ulong), ("pValue", c_void_p), ("ulValueLen", c_ulong)]


class _Mech(ctypes.Structure):
    _fields_ = [("mechanism", c_ulong), ("pParameter", c_void_p), ("ulParameterLen", c_ulong)]


class _InitArgs(ctypes.Structure):
    _fields_ = [("create", c_void_p), ("destroy", c_void_p), ("lock", c_void_p), ("unlock", c_void_p),
                ("flags", c_ulong), ("reserved", c_void_p)]


CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_ID = 0x1, 0x2, 0x3, 0x102
CKA_SENSITIVE, CKA_WRAP, CKA_UNWRAP, CKA_VALUE_LEN, CKA_EXTRACTABLE = 0x103, 0x106, 0x107, 0x161, 0x162
CKR_OK, CKR_USER_ALREADY_LOGGED_IN, CKR_ALREADY_INITIALIZED = 0, 0x100, 0x191


def _module():
    """The module through ctypes (the same library instance libcellar loaded), initialised."""
    lib = ctypes.CDLL(MODULE)
    for name in ("C_Initialize", "C_GetSlotList", "C_GetTokenInfo", "C_OpenSession", "C_CloseSession",
                 "C_GetSessionInfo", "C_Login", "C_GenerateKey", "C_FindObjectsInit", "C_FindObjects",
                 "C_FindObjectsFinal", "C_DestroyObject"):
        getattr(lib, name).restype = c_ulong
    args = _InitArgs(flags=2)  # CKF_OS_LOCKING_OK, as Cellar initialises it
    rv = lib.C_Initialize(byref(args))
    assert rv in (CKR_OK, CKR_ALREADY_INITIALIZED), hex(rv)
    return lib


def _open_session(lib, label):
    """A new read/write session on the token labelled ``label`` (not logged in by itself)."""
    n = c_ulong(32)
    slots = (c_ulong * 32)()
    assert lib.C_GetSlotList(c_ubyte(1), slots, byref(n)) == CKR_OK
    want = label.encode().ljust(32)
    info = ctypes.create_string_buffer(512)  # CK_TOKEN_INFO starts with the 32-byte label
    slot = next(slots[i] for i in range(n.value)
                if lib.C_GetTokenInfo(c_ulong(slots[i]), info) == CKR_OK and info.raw[:32] == want)
    s = c_ulong()
    assert lib.C_OpenSession(c_ulong(slot), c_ulong(6), None, None, byref(s)) == CKR_OK  # RW | SERIAL
    return s


class _Token:
    """A logged-in session of the test's own on one token."""

    def __init__(self, label):
        self.lib = _module()
        self.s = _open_session(self.lib, label)
        rv = self.lib.C_Login(self.s, c_ulong(1), PIN.encode(), c_ulong(len(PIN)))
        assert rv in (CKR_OK, CKR_USER_ALREADY_LOGGED_IN), hex(rv)

    @staticmethod
    def _template(items):
        keep = []
        arr = (_Attr * len(items))()
        for i, (t, v) in enumerate(items):
            if isinstance(v, bool):
                buf = ctypes.create_string_buffer(bytes([v]), 1)
            elif isinstance(v, int):
                buf = c_ulong(v)
            else:
                buf = ctypes.create_string_buffer(v, len(v))
            keep.append(buf)
            arr[i] = _Attr(t, ctypes.cast(ctypes.pointer(buf), c_void_p), sizeof(buf))
        return arr, keep

    def generate(self, label, key_id, extractable=False, unwrap=True):
        """An AES-256 token key as a customer might make it (or wrongly)."""
        arr, keep = self._template([(CKA_TOKEN, True), (CKA_PRIVATE, True), (CKA_LABEL, label.encode()),
                                    (CKA_ID, key_id), (CKA_VALUE_LEN, 32), (CKA_SENSITIVE, not extractable),
                                    (CKA_EXTRACTABLE, extractable), (CKA_WRAP, True), (CKA_UNWRAP, unwrap)])
        mech = _Mech(0x1080, None, 0)  # CKM_AES_KEY_GEN
        h = c_ulong()
        assert self.lib.C_GenerateKey(self.s, byref(mech), arr, c_ulong(len(arr)), byref(h)) == CKR_OK

    def destroy(self, label):
        arr, keep = self._template([(CKA_LABEL, label.encode())])
        assert self.lib.C_FindObjectsInit(self.s, arr, c_ulong(1)) == CKR_OK
        objs, n = (c_ulong * 8)(), c_ulong()
        assert self.lib.C_FindObjects(self.s, objs, c_ulong(8), byref(n)) == CKR_OK
        assert self.lib.C_FindObjectsFinal(self.s) == CKR_OK
        assert n.value == 1
        assert self.lib.C_DestroyObject(self.s, c_ulong(objs[0])) == CKR_OK

    def close(self):
        self.lib.C_CloseSession(self.s)


class _SessionInfo(ctypes.Structure):
    _fields_ = [("slotID", c_ulong), ("state", c_ulong), ("flags", c_ulong), ("ulDeviceError", c_ulong)]


CKS_RW_PUBLIC_SESSION, CKS_RW_USER_FUNCTIONS = 2, 3


def _login_state(label):
    """The state of a fresh session of the test's own on the token, opened without logging in:
    it shows whether this process is logged in to the token (login state is per application)."""
    lib = _module()
    s, si = _open_session(lib, label), _SessionInfo()
    try:
        assert lib.C_GetSessionInfo(s, byref(si)) == CKR_OK
    finally:
        lib.C_CloseSession(s)
    return si.state


def test_lock_logs_out_as_seen_from_outside(hsm):
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "seen", **_kw("py-lock-state"))
    assert _login_state("py-lock-state") == CKS_RW_USER_FUNCTIONS
    kr.lock()
    assert _login_state("py-lock-state") == CKS_RW_PUBLIC_SESSION
    with pytest.raises(cellar.AuthenticationError):
        kr.unlock_pkcs11("wrong-pin-123", allow_zero_padded_kwp=True)
    assert _login_state("py-lock-state") == CKS_RW_PUBLIC_SESSION
    assert kr.unlock_pkcs11(PIN, allow_zero_padded_kwp=True) == 1
    assert _login_state("py-lock-state") == CKS_RW_USER_FUNCTIONS
    kr.close()
    assert _login_state("py-lock-state") == CKS_RW_PUBLIC_SESSION


def test_eight_threads_wrap_and_unwrap_at_once(hsm):
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "busy", max_sessions=3, **_kw("py-threads"))
    errors, start = [], threading.Barrier(8)

    def worker():
        try:
            start.wait()
            for _ in range(20):
                with cellar.Key.generate(cellar.KeyType.AES256) as dek:
                    blob = kr.wrap(dek)
                    assert last_operation_approved() is False
                    back, v = kr.unwrap(blob)
                    assert last_operation_approved() is False
                    assert v == 1 and back.id == dek.id
                    back.close()
        except Exception as e:  # noqa: BLE001  (reported by the main thread)
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    kr.close()


def test_byok_by_id_and_refusal_of_unsafe_keys(hsm):
    with cellar.Keyring.create_pkcs11(MODULE, PIN, "anchor", **_kw("py-byok")) as anchor:
        tok = _Token("py-byok")
        try:
            tok.generate("customer", b"customer-id-01")
            tok.generate("leaky", b"leaky-id", extractable=True)
            tok.generate("wrap-only", b"wrap-only-id", unwrap=False)
        finally:
            tok.close()
        by_id = cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_id=b"customer-id-01", **_kw("py-byok"))
        by_label = cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_label="customer", **_kw("py-byok"))
        assert by_id.version_info(1).key_id == by_label.version_info(1).key_id
        assert by_id.version_info(1).pkcs11
        with cellar.Key.generate(cellar.KeyType.AES256) as dek:
            k, v = by_label.unwrap(by_id.wrap(dek))
            assert v == 1 and k.id == dek.id
            k.close()
        by_id.close()
        by_label.close()
        with pytest.raises(cellar.KeyNotFoundError):
            cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_id=b"no-such-id", **_kw("py-byok"))
        for sel in (dict(key_label="leaky"), dict(key_id=b"leaky-id")):
            with pytest.raises(cellar.InvalidKeyError) as e:
                cellar.Keyring.adopt_pkcs11(MODULE, PIN, **sel, **_kw("py-byok"))
            assert "CKA_EXTRACTABLE" in str(e.value)
        with pytest.raises(cellar.InvalidKeyError) as e:
            cellar.Keyring.adopt_pkcs11(MODULE, PIN, key_label="wrap-only", **_kw("py-byok"))
        assert "CKA_UNWRAP" in str(e.value)
        with pytest.raises(cellar.InvalidKeyError) as e:
            anchor.add_pkcs11(MODULE, PIN, "wrap-only", adopt=True, **_kw("py-byok"))
        assert "CKA_UNWRAP" in str(e.value)
        assert anchor.active_version == 1


def test_key_destroyed_behind_cellars_back(hsm):
    kr = cellar.Keyring.create_pkcs11(MODULE, PIN, "victim", **_kw("py-gone"))
    with cellar.Key.generate(cellar.KeyType.AES256) as dek:
        blob = kr.wrap(dek)
        tok = _Token("py-gone")
        try:
            tok.destroy("victim")
        finally:
            tok.close()
        with pytest.raises(cellar.ProviderError) as e:
            kr.wrap(dek)
        assert "CKR_" in str(e.value)
        with pytest.raises(cellar.ProviderError) as e:
            kr.unwrap(blob)
        assert "CKR_" in str(e.value)
    kr.lock()
    with pytest.raises(cellar.KeyNotFoundError):
        kr.unlock_pkcs11(PIN, allow_zero_padded_kwp=True)
    assert kr.locked
    kr.close()
