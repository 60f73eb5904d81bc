"""Keyrings whose versions are AES-256 keys in a real SoftHSM2 token (issue 14).

The module makes its own token directory and SOFTHSM2_CONF in a temporary folder and initialises
tokens with softhsm2-util before the PKCS#11 module is first loaded in this process. Skipped when
SoftHSM2 is not installed, unless CELLAR_REQUIRE_SOFTHSM is set (`make test-pkcs11` sets it).
"""
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

import pkg_helpers  # noqa: F401  (puts python/ on sys.path)
import cellar
from cellar.fips import last_operation_approved

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4711-cellar"
TOKENS = ["py-round", "py-rotate", "py-lock", "py-export", "py-retire", "py-errors"]

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
