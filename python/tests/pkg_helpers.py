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


def raw_of(key):
    """The key's material, for independent checks with `cryptography` (tests only)."""
    return bytes(key.export_raw())


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PY_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env
