"""Fixtures for the data-stack tests (cellar.arrow, cellar.parquet, Dask): the package is
imported from this checkout; the library comes from CELLAR_LIBRARY (what `make
test-python-data` sets) or the build tree."""
import pathlib
import sys

import pytest

PY_DIR = pathlib.Path(__file__).resolve().parents[1]
if str(PY_DIR) not in sys.path:
    sys.path.insert(0, str(PY_DIR))

import cellar  # noqa: E402


@pytest.fixture
def key():
    with cellar.Key.generate(cellar.KeyType.AES256) as k:
        yield k


@pytest.fixture(params=[cellar.CellMode.RANDOMIZED, cellar.CellMode.DETERMINISTIC],
                ids=["RANDOMIZED", "DETERMINISTIC"])
def cipher(request, key):
    with cellar.CellCipher(key, request.param) as c:
        yield c
