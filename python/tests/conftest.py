"""Shared set-up for the cellar package tests.

The package is imported from this checkout (python/ is put first on sys.path), so the tests run
without `pip install`; the library comes from CELLAR_LIBRARY (what `make test-python` sets) or the
build tree (target/release, what `make build` produces).
"""
import gc
import os
import pathlib
import sys

import pytest

PY_DIR = pathlib.Path(__file__).resolve().parents[1]
REPO = PY_DIR.parent
sys.path.insert(0, str(PY_DIR))

import cellar  # noqa: E402
from cellar import _handles  # noqa: E402


def approved():
    """Asserts this thread's last Cellar operation was counted as FIPS-approved."""
    assert cellar.last_operation_approved() is True


def raw_of(key):
    """The key's material, for independent checks with `cryptography` (tests only)."""
    return bytes(key.export_raw())


@pytest.fixture
def aes_key():
    with cellar.Key.generate(cellar.KeyType.AES256) as k:
        yield k


@pytest.fixture
def xts_key():
    with cellar.Key.generate(cellar.KeyType.AES256_XTS) as k:
        yield k


@pytest.fixture
def no_leaks():
    """Fails the test if it leaves more handles open than it found (after a collection)."""
    gc.collect()
    before = _handles.live_counts()
    yield
    gc.collect()
    after = _handles.live_counts()
    assert {k: v for k, v in after.items() if v != before.get(k, 0)} == {}, (before, after)


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PY_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env
