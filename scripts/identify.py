#!/usr/bin/env python3
"""Identification check for a built libcellar (docs/FIPS.md "Identification").

Loads the library with ctypes (nothing else from the repository) and prints what it reports:
Cellar's version, the cryptographic module's version, the module line and certificate (or "in
CMVP review"), FIPS mode, the self-test result and whether `cellar_init(CELLAR_INIT_REQUIRE_FIPS)`
accepts it (FIPS mode, self tests, and the module version the build pins). Exit status 0 only
when all of those hold.

    python3 scripts/identify.py [path/to/libcellar.so]      # default: target/release/libcellar.so
    make identify                                           # the same, on the release build

Loading the library runs the module's power-on self tests and integrity test; if one fails the
module aborts the process before this script prints anything (docs/FIPS.md "Identification").
"""
import ctypes
import hashlib
import sys
from pathlib import Path

CELLAR_INIT_REQUIRE_FIPS = 1


def main(argv):
    default = Path(__file__).resolve().parent.parent / "target" / "release" / "libcellar.so"
    path = Path(argv[1]) if len(argv) > 1 else default
    if not path.exists():
        print(f"identify: no library at {path} (build it with `make build`)", file=sys.stderr)
        return 2
    lib = ctypes.CDLL(str(path.resolve()))

    def text(name):
        fn = getattr(lib, name, None)
        if fn is None:
            return None
        fn.restype = ctypes.c_char_p
        fn.argtypes = []
        return fn().decode("utf-8", "replace")

    for name in ("cellar_fips_mode", "cellar_fips_self_test_passed", "cellar_init"):
        getattr(lib, name).restype = ctypes.c_int32
    lib.cellar_init.argtypes = [ctypes.c_uint32]
    lib.cellar_last_error.restype = ctypes.c_size_t
    lib.cellar_last_error.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    version = text("cellar_version")
    module = text("cellar_fips_module_version")
    certificate = text("cellar_fips_module_certificate")
    fips_mode = lib.cellar_fips_mode()
    self_tests = lib.cellar_fips_self_test_passed()
    st = lib.cellar_init(CELLAR_INIT_REQUIRE_FIPS)
    if st == 0:
        init = "ok"
    else:
        buf = ctypes.create_string_buffer(512)
        lib.cellar_last_error(buf, len(buf))
        init = f"REFUSED (status {st}): {buf.value.decode('utf-8', 'replace')}"

    print(f"library:           {path}")
    print(f"sha256:            {digest}")
    print(f"cellar version:    {version}")
    print(f"module version:    {module}")
    print(f"module line:       {certificate if certificate is not None else '(this library has no cellar_fips_module_certificate)'}")
    print(f"FIPS mode:         {fips_mode}")
    print(f"self tests passed: {self_tests}")
    print(f"REQUIRE_FIPS init: {init}")
    ok = st == 0 and fips_mode == 1 and self_tests == 1 and certificate is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
