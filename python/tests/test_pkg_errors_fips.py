"""Every exception class (status mapping, attributes, pickling) and the FIPS status surface."""
import pickle
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import cellar
from cellar import errors
from pkg_helpers import approved

# status -> exception class; the ones the issue names first.
CLASSES = {
    4: cellar.AuthenticationError,
    5: cellar.InvalidKeyError,
    8: cellar.TenantLockedError,
    7: cellar.KeyNotFoundError,
    3: cellar.BufferTooSmallError,
    9: cellar.UsageLimitError,
    10: cellar.NotFipsError,
    11: cellar.ProviderError,
    1: cellar.NullPointerError,
    2: cellar.InvalidArgumentError,
    6: cellar.UnsupportedFormatError,
    12: cellar.RandomError,
    13: cellar.InternalError,
}
NAMES = {
    1: "CELLAR_ERR_NULL_POINTER", 2: "CELLAR_ERR_INVALID_ARGUMENT", 3: "CELLAR_ERR_BUFFER_TOO_SMALL",
    4: "CELLAR_ERR_AUTHENTICATION_FAILED", 5: "CELLAR_ERR_INVALID_KEY",
    6: "CELLAR_ERR_UNSUPPORTED_FORMAT", 7: "CELLAR_ERR_KEY_NOT_FOUND", 8: "CELLAR_ERR_TENANT_LOCKED",
    9: "CELLAR_ERR_USAGE_LIMIT", 10: "CELLAR_ERR_NOT_FIPS", 11: "CELLAR_ERR_PROVIDER_FAILED",
    12: "CELLAR_ERR_RANDOM_FAILED", 13: "CELLAR_ERR_INTERNAL",
}


@pytest.mark.parametrize("status", sorted(CLASSES))
def test_every_status_maps_to_its_class(status):
    exc = errors.error_for_status(status, "some detail")
    cls = CLASSES[status]
    assert type(exc) is cls and isinstance(exc, cellar.CellarError)
    assert exc.status == status and exc.name == NAMES[status] and exc.detail == "some detail"
    assert str(exc) == f"{NAMES[status]}: some detail"
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls and (back.status, back.name, back.detail) == (status, exc.name, exc.detail)
    # Raisable by user code (e.g. a provider callback) with just a detail.
    assert cls("x").status == status


def test_unknown_status_is_the_base_class():
    exc = errors.error_for_status(1234, "")
    assert type(exc) is cellar.CellarError and exc.name == "CELLAR_ERR_UNKNOWN"
    with pytest.raises(TypeError):
        cellar.CellarError("no status")


def test_python_conventions():
    assert issubclass(cellar.InvalidArgumentError, ValueError)
    assert issubclass(cellar.KeyNotFoundError, LookupError)


def test_detail_is_the_thread_last_error(aes_key):
    c = cellar.CellCipher(aes_key)
    with pytest.raises(cellar.AuthenticationError) as e:
        c.decrypt(c.encrypt(b"x", b"a"), b"b")
    assert "cellar_cell_decrypt" in e.value.detail
    c.encrypt(b"ok")
    assert errors.last_error() == ""  # cleared by a success


def test_fips_status():
    s = cellar.fips_status()
    assert isinstance(s, cellar.FipsStatus)
    assert s.fips_mode and s.self_test_passed and s.ok  # this is the FIPS build
    assert s.module.startswith("AWS-LC FIPS") and s.module in str(s)
    assert "FIPS mode" in str(s) and s.module in s.version and s.version == cellar.version()
    cellar.init()
    cellar.init(require_fips=True)  # fails closed only off a FIPS build
    assert s.certificate == cellar.module_certificate()


def _pinned_module_version():
    """EXPECTED_MODULE_VERSION of the default (FIPS 3) line, read from the Rust source, not
    from the library under test."""
    src = (Path(__file__).resolve().parents[2] / "src" / "fips.rs").read_text()
    block = src.split('#[cfg(not(feature = "line-fips4"))]\nmod line {', 1)[1].split("\n}\n", 1)[0]
    m = re.search(r'EXPECTED_MODULE_VERSION: &str = "([^"]+)"', block)
    assert m, "EXPECTED_MODULE_VERSION not found in src/fips.rs"
    return m.group(1)


def test_linked_module_is_the_pinned_version():
    pinned = _pinned_module_version()
    assert pinned == "AWS-LC FIPS 3.1.0"  # the version certificates #5314/#5298 name
    s = cellar.fips_status()
    assert s.module == pinned, f"linked {s.module!r}, pinned {pinned!r}"
    assert s.certificate == (
        f"AWS-LC FIPS 3 line, module {pinned}: FIPS 140-3 certificate #5314 (static module; #5298 dynamic)"
    )
    assert "#5314" in cellar.version() and pinned.removeprefix("AWS-LC FIPS ") in cellar.version()


def test_identify_script_reports_the_build(tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "identify.py"
    r = subprocess.run([sys.executable, str(script), cellar.library_path()], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "module version:    AWS-LC FIPS 3.1.0" in out
    assert "#5314" in out and "FIPS mode:         1" in out and "self tests passed: 1" in out
    assert "REQUIRE_FIPS init: ok" in out


def test_last_operation_approved_is_per_thread(aes_key):
    c = cellar.CellCipher(aes_key)
    c.encrypt(b"x")
    approved()
    seen = []
    t = threading.Thread(target=lambda: seen.append(cellar.last_operation_approved()))
    t.start()
    t.join()
    assert seen == [None]  # nothing has run on that thread
    with pytest.raises(cellar.AuthenticationError):
        c.decrypt(b"\x01" + bytes(40))
    assert cellar.last_operation_approved() is None  # a failure reports unknown
    c.encrypt(b"y")
    approved()
