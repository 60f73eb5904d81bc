"""Fixtures for the cellar package tests.

The package is imported from this checkout (python/ is put first on sys.path by pkg_helpers), so
the tests run without `pip install`; the library comes from CELLAR_LIBRARY (what `make
test-python` sets) or the build tree (target/release, what `make build` produces).
"""
import gc

import pytest

import pkg_helpers  # noqa: F401  (puts python/ on sys.path)
import cellar
from cellar import _handles


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
