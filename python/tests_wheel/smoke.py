"""Smoke test of an installed cellar wheel (run by test_wheel.sh inside a fresh virtual
environment, outside the checkout, with no Rust toolchain on PATH and CELLAR_LIBRARY unset).
Exits non-zero on the first failure."""
import os
import pathlib
import shutil
import sys
import sysconfig

assert "CELLAR_LIBRARY" not in os.environ, "CELLAR_LIBRARY must be unset for this test"
for tool in ("cargo", "rustc", "cmake", "go"):
    assert shutil.which(tool) is None, f"{tool} is on PATH: the test must hide the build tools"
assert not os.environ.get("LD_LIBRARY_PATH"), "LD_LIBRARY_PATH must be unset"


import cellar  # noqa: E402

site = pathlib.Path(sysconfig.get_paths()["platlib"]).resolve()
lib = pathlib.Path(cellar.library_path()).resolve()
assert lib == site / "cellar" / "libcellar.so", f"loaded {lib}, not the bundled library under {site}"
pkg = pathlib.Path(cellar.__file__).resolve()
assert site in pkg.parents, f"imported {pkg}, not the installed package"

status = cellar.fips_status()
print("fips_status:", status)
assert status.fips_mode and status.self_test_passed, status
cellar.init(require_fips=True)

# generate, wrap
kek = cellar.Key.generate(cellar.KeyType.AES256)
assert cellar.last_operation_approved() is True
dek = cellar.Key.generate(cellar.KeyType.AES256)
blob = dek.wrap(kek, version=3)
assert cellar.last_operation_approved() is True
dek2, version = cellar.Key.unwrap(kek, blob)
assert version == 3 and dek2.id == dek.id

kr = cellar.Keyring.create()
stored = kr.wrap(dek)
assert kr.unwrap(stored)[0].id == dek.id

# cells
for mode in (cellar.CellMode.RANDOMIZED, cellar.CellMode.DETERMINISTIC):
    cells = cellar.CellCipher(dek, mode)
    ct = cells.encrypt(b"alice@example.com", context=b"users/email/42")
    # SPEC 10: only RANDOMIZED is an approved scheme; DETERMINISTIC succeeds with False.
    assert cellar.last_operation_approved() is (mode == cellar.CellMode.RANDOMIZED), mode
    assert cells.decrypt(ct, context=b"users/email/42") == b"alice@example.com"
    many = cells.encrypt_many([b"a", b"", b"c" * 1000], context=b"col")
    assert cells.decrypt_many(many, context=b"col") == [b"a", b"", b"c" * 1000]
    try:
        cells.decrypt(ct, context=b"users/email/43")
    except cellar.AuthenticationError:
        pass
    else:
        raise AssertionError("a moved cell decrypted")

# pages
for mode, kt in ((cellar.PageMode.XTS, cellar.KeyType.AES256_XTS), (cellar.PageMode.GCM, cellar.KeyType.AES256)):
    with cellar.Key.generate(kt) as pk:
        pages = cellar.PageCipher(pk, mode, file_id=7)
        page = bytes(range(256)) * 16
        enc = pages.encrypt(5, page)
        assert cellar.last_operation_approved() is True, mode
        dec = pages.decrypt(5, enc)
        n = len(page) - pages.reserved_bytes
        assert dec[:n] == page[:n]
        run = bytearray(page * 4)
        pages.encrypt_pages(10, run, 4096)
        pages.decrypt_pages(10, run, 4096)
        assert bytes(run[:n]) == page[:n]

print("wheel smoke test passed:", lib, "|", cellar.version())
