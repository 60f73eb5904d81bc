"""The loader: the signature table matches include/cellar.h, the ABI check, the search order."""
import ctypes
import os
import re
import shutil
import subprocess
import sys
from ctypes import POINTER, c_char_p, c_int32, c_size_t, c_uint32, c_uint64, c_void_p

import pytest

import cellar
from cellar import _native
from pkg_helpers import REPO, subprocess_env

HEADER = REPO / "include" / "cellar.h"

_SCALARS = {
    "uint32_t": c_uint32,
    "uint64_t": c_uint64,
    "size_t": c_size_t,
    "int32_t": c_int32,
    "cellar_status": c_int32,
}


def _expected_ctype(ctype: str):
    """The ctypes type the table must use for a C type (conventions in cellar/_native.py)."""
    t = " ".join(ctype.replace("const ", "").split())
    stars = t.count("*")
    base = t.replace("*", "").strip()
    if base == "void" and stars == 0:
        return None
    if base == "struct cellar_key_provider" and stars == 1:
        return POINTER(_native.KeyProvider)
    if base == "struct cellar_row_contexts" and stars == 1:
        return POINTER(_native.RowContexts)
    if base.startswith("struct cellar_"):
        return {1: c_void_p, 2: POINTER(c_void_p)}[stars]
    if base == "uint8_t" and stars == 1:
        return c_void_p
    if base == "char" and stars == 1:
        return c_char_p
    if base in _SCALARS:
        return {0: _SCALARS[base], 1: POINTER(_SCALARS[base])}[stars]
    raise AssertionError(f"the test does not know the C type {ctype!r}")


def parse_header():
    """{name: (return C type, [parameter C types])} for every function declared in the header."""
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"typedef[^;]*;", "", text)  # function-pointer typedefs are not functions
    text = re.sub(r"^\s*#.*$", "", text, flags=re.M)  # preprocessor lines
    text = text.replace('extern "C" {', "")
    funcs = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(cellar_\w+)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = m.group(1), m.group(2), m.group(3)
        ptypes = []
        for p in params.split(","):
            p = " ".join(p.split())
            if p in ("", "void"):
                continue
            pm = re.match(r"(.*?)(\w+)$", p)  # drop the parameter name, keep the stars
            ptypes.append(pm.group(1).strip())
        ret = ret.strip()
        funcs[name] = (ret, ptypes)
    return funcs


def test_header_parse_sees_every_function():
    funcs = parse_header()
    # A sanity floor so that a broken parse cannot pass the comparison below vacuously.
    assert len(funcs) >= 60
    assert funcs["cellar_page_encrypt"][1] == [
        "const struct cellar_page_cipher *", "uint64_t", "const uint8_t *", "uint8_t *", "size_t"]
    assert funcs["cellar_key_free"] == ("void", ["struct cellar_key *"])


def test_signature_table_matches_header():
    funcs = parse_header()
    assert sorted(funcs) == sorted(_native.SIGNATURES), (
        "header-only: %s; table-only: %s" % (
            sorted(set(funcs) - set(_native.SIGNATURES)), sorted(set(_native.SIGNATURES) - set(funcs))))
    for name, (ret, params) in funcs.items():
        restype, argtypes = _native.SIGNATURES[name]
        assert restype is _expected_ctype(ret), (name, ret, restype)
        assert len(argtypes) == len(params), (name, params, argtypes)
        for i, (c, py) in enumerate(zip(params, argtypes)):
            assert py is _expected_ctype(c), (name, i, c, py)


def test_table_is_applied_to_the_library():
    for name, (restype, argtypes) in _native.SIGNATURES.items():
        fn = getattr(_native.lib, name)
        assert fn.restype is restype and list(fn.argtypes) == list(argtypes), name


def test_provider_struct_layout_matches_header():
    # context (pointer), key_id[16], two function pointers: 8 + 16 + 8 + 8 on LP64.
    p = ctypes.sizeof(c_void_p)
    assert ctypes.sizeof(_native.KeyProvider) == p + 16 + 2 * p
    assert _native.KeyProvider.key_id.offset == p


def test_abi_constant_matches_library():
    m = re.search(r"#define CELLAR_ABI_VERSION (0x[0-9a-fA-F]+|\d+)u?", HEADER.read_text())
    value = int(m.group(1), 0)
    v = cellar.abi_version()
    assert v == value and int(v) == value and v == (value >> 16, value & 0xFFFF)
    major, minor = v
    assert (v.major, v.minor) == (major, minor) and major == _native.ABI_MAJOR
    assert v != (major + 1, minor) and str(v) == f"{major}.{minor}"


def test_check_abi_refuses_other_majors_and_old_minors():
    _native.check_abi(_native.ABI_MAJOR << 16 | 7)
    with pytest.raises(_native.LibraryError, match=r"ABI 2\.0.*needs ABI 1\.x"):
        _native.check_abi(2 << 16)
    with pytest.raises(ImportError):
        _native.check_abi(0)


def test_loaded_from_the_expected_place():
    path = os.path.realpath(cellar.library_path())
    want = os.environ.get("CELLAR_LIBRARY") or str(REPO / "target" / "release" / "libcellar.so")
    assert path == os.path.realpath(want)


def _import_with(library):
    env = subprocess_env()
    env["CELLAR_LIBRARY"] = str(library)
    return subprocess.run([sys.executable, "-c", "import cellar"], env=env, capture_output=True,
                          text=True, timeout=60)


def test_missing_library_is_a_clear_import_error(tmp_path):
    r = _import_with(tmp_path / "nope.so")
    assert r.returncode != 0
    assert "LibraryError" in r.stderr and "cannot load libcellar" in r.stderr and "nope.so" in r.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build fake libraries")
@pytest.mark.parametrize("abi, message", [
    (2 << 16, "has C ABI 2.0, but this cellar package needs ABI 1.x"),
    (1 << 16, "has C ABI 1.0, but this cellar package needs ABI 1.x with x >= 2"),  # too old a minor
    ((1 << 16) | 1, "has C ABI 1.1, but this cellar package needs ABI 1.x with x >= 2"),
    ((1 << 16) | 2, "lacks"),  # right ABI, missing functions
])
def test_mismatched_library_is_refused(tmp_path, abi, message):
    src = tmp_path / "fake.c"
    src.write_text(f"unsigned int cellar_abi_version(void) {{ return {abi}u; }}\n")
    lib = tmp_path / "libfake.so"
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    r = _import_with(lib)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_library_beside_the_package_is_found(tmp_path):
    # A copy of the package with the library beside it, and no CELLAR_LIBRARY.
    pkg = tmp_path / "cellar"
    shutil.copytree(REPO / "python" / "cellar", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(cellar.library_path(), pkg / "libcellar.so")
    env = dict(os.environ)
    env.pop("CELLAR_LIBRARY", None)
    env["PYTHONPATH"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-c", "import cellar; print(cellar.library_path())"],
                       env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(pkg / "libcellar.so")


def test_bundled_library_is_preferred_to_a_build_tree_and_overridden_by_env(tmp_path):
    # A checkout-shaped tree holding both a bundled library (beside the package) and a build
    # tree's library: the bundled one wins; CELLAR_LIBRARY, when set, wins over both.
    pkg = tmp_path / "python" / "cellar"
    shutil.copytree(REPO / "python" / "cellar", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    build = tmp_path / "target" / "release"
    build.mkdir(parents=True)
    shutil.copy(cellar.library_path(), pkg / "libcellar.so")
    shutil.copy(cellar.library_path(), build / "libcellar.so")
    other = tmp_path / "elsewhere" / "libcellar.so"
    other.parent.mkdir()
    shutil.copy(cellar.library_path(), other)
    env = dict(os.environ)
    env.pop("CELLAR_LIBRARY", None)
    env["PYTHONPATH"] = str(tmp_path / "python")
    code = "import cellar; print(cellar.library_path()); print(cellar.fips_status().ok)"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(pkg / "libcellar.so"), "True"]
    (pkg / "libcellar.so").unlink()                      # no bundled library: the build tree
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(build / "libcellar.so"), "True"]
    shutil.copy(cellar.library_path(), pkg / "libcellar.so")
    env["CELLAR_LIBRARY"] = str(other)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(other), "True"]


def test_package_type_checks(tmp_path):
    """The annotations are consistent (mypy, when installed), also as a user's code sees them."""
    pytest.importorskip("mypy")
    user = tmp_path / "user.py"
    user.write_text(
        "import cellar\n"
        "with cellar.Key.generate() as k:\n"
        "    c = cellar.CellCipher(k, cellar.CellMode.DETERMINISTIC)\n"
        "    ct: bytes = c.encrypt(b'v', 'ctx')\n"
        "    cts: list[bytes] = c.encrypt_many([b'a', bytearray(b'b')], threads=2)\n"
        "    blob: bytes = k.wrap(k)\n"
        "    back, version = cellar.Key.unwrap(k, blob)\n"
        "    n: int = version + back.type.value + cellar.abi_version().major\n"
        "    ok: bool = cellar.fips_status().ok\n")
    env = dict(os.environ, MYPYPATH=str(REPO / "python"))
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--strict-optional",
                        str(user), str(REPO / "python" / "cellar")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_builds_a_pure_python_wheel(tmp_path):
    """`pip install ./python` needs no compiler: pip builds a py3-none-any wheel with py.typed
    (as `pip install` does: in an isolated build environment, which fetches setuptools)."""
    import zipfile
    src = tmp_path / "src"
    shutil.copytree(REPO / "python", src, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", "libcellar.so*"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"),
                        str(src)], capture_output=True, text=True, timeout=300)
    offline = ("Could not find a version", "No matching distribution", "Failed to establish",
               "Temporary failure in name resolution", "Network is unreachable")
    if r.returncode != 0 and any(m in r.stdout + r.stderr for m in offline):
        pytest.skip("no package index reachable to fetch setuptools for the isolated build")
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = list((tmp_path / "dist").glob("cellar-*.whl"))
    assert len(wheels) == 1 and wheels[0].name.endswith("-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for module in ("__init__", "_native", "_buffers", "_handles", "errors", "fips", "keys", "keyring",
                   "pages", "cells"):
        assert f"cellar/{module}.py" in names
    assert "cellar/py.typed" in names


def test_row_contexts_struct_layout_matches_header():
    # prefix, prefix_len, suffixes, suffix_offsets (pointers / size_t), offset_width (uint32).
    p = ctypes.sizeof(c_void_p)
    assert _native.RowContexts.offset_width.offset == 4 * p
    assert ctypes.sizeof(_native.RowContexts) == 5 * p  # padded to pointer alignment
    text = HEADER.read_text()
    assert "#define CELLAR_OFFSETS_32 4" in text and "#define CELLAR_OFFSETS_64 8" in text
