"""Helpers shared by the package tests (a module with a unique name, so that it cannot collide
with ffi-tests/python/conftest.py when both suites run in one pytest session)."""
import os
import pathlib
import sys

PY_DIR = pathlib.Path(__file__).resolve().parents[1]
REPO = PY_DIR.parent
if str(PY_DIR) not in sys.path:
    sys.path.insert(0, str(PY_DIR))

import cellar  # noqa: E402


def approved():
    """Asserts this thread's last Cellar operation was counted as FIPS-approved."""
    assert cellar.last_operation_approved() is True


def scheme(mode):
    """Asserts the verdict SPEC 10 gives a cell mode: approved (True) for RANDOMIZED only;
    DETERMINISTIC and both Always Encrypted modes succeed with False."""
    assert cellar.last_operation_approved() is (mode == cellar.CellMode.RANDOMIZED), mode


def raw_of(key):
    """The key's material, for independent checks with `cryptography` (tests only)."""
    return bytes(key.export_raw())


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PY_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def sp800_108_kdf(key, label, context, length):
    """SP 800-108r1 counter-mode KDF with HMAC-SHA-256, computed with Python's `hmac` alone
    (docs/FORMATS.md section 0): K(i) = HMAC(key, [i]_32 | label | 0x00 | context | [8L]_32)."""
    import hashlib
    import hmac as _hmac
    import struct as _struct

    fixed = bytes(label) + b"\0" + bytes(context) + _struct.pack(">I", 8 * length)
    out = b""
    i = 1
    while len(out) < length:
        out += _hmac.new(bytes(key), _struct.pack(">I", i) + fixed, hashlib.sha256).digest()
        i += 1
    return out[:length]
