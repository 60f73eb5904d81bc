#!/usr/bin/env bash
# make test-wheel: builds the wheel (make wheel), installs it into a fresh virtual environment in a
# temporary directory outside the checkout, and runs tests_wheel/smoke.py there with the build tree
# and the Rust toolchain out of sight: PATH holds only the venv and the system directories (no
# ~/.cargo/bin, no CMake/Go needed), CELLAR_LIBRARY and LD_LIBRARY_PATH are unset, the working
# directory is the temporary one. Then checks that CELLAR_LIBRARY still overrides the bundled
# library, and that the pure-Python package (no library inside) still builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYTHON:-python3}
wheel=$(ls "$root"/dist/cellar-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || { echo "no wheel in $root/dist: run make wheel"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$tmp" in "$root"*) echo "temporary directory inside the checkout"; exit 1;; esac
"$py" -m venv "$tmp/venv"
cp "$wheel" "$root/python/tests_wheel/smoke.py" "$tmp/"
cd "$tmp"
# PATH: the venv, plus only those system directories that hold none of the build tools
# (cargo, rustc, cmake, go); smoke.py checks that none of them is found.
clean_path="$tmp/venv/bin"
for d in /usr/local/bin /usr/bin /bin; do
  hidden=0
  for t in cargo rustc cmake go; do [ -x "$d/$t" ] && hidden=1; done
  [ "$hidden" = 0 ] && clean_path="$clean_path:$d"
done
echo "smoke test PATH=$clean_path (cwd $tmp)"
env -i HOME="$tmp" PATH="$clean_path" "$tmp/venv/bin/python" -m pip install -q --no-index \
  --disable-pip-version-check "$tmp/$(basename "$wheel")"
env -i HOME="$tmp" PATH="$clean_path" "$tmp/venv/bin/python" "$tmp/smoke.py"
# CELLAR_LIBRARY overrides the bundled copy: a bad path is refused, a good one is used.
if env -i HOME="$tmp" PATH="$clean_path" CELLAR_LIBRARY="$tmp/nonexistent.so" \
     "$tmp/venv/bin/python" -c "import cellar" 2>/dev/null; then
  echo "CELLAR_LIBRARY=<missing file> did not override the bundled library"; exit 1
fi
got=$(env -i HOME="$tmp" PATH="$clean_path" CELLAR_LIBRARY="$root/target/release/libcellar.so" \
  "$tmp/venv/bin/python" -c "import cellar; print(cellar.library_path())")
[ "$got" = "$root/target/release/libcellar.so" ] || { echo "CELLAR_LIBRARY not honoured: $got"; exit 1; }
echo "CELLAR_LIBRARY overrides the bundled library: ok"
# The extra: `pip install 'cellar-...whl[arrow]'` in a venv that sees the system's pyarrow (so pip
# resolves the extra's requirement offline) installs a working cellar.arrow from the wheel.
"$py" -m venv --system-site-packages "$tmp/venv-arrow"
env -i HOME="$tmp" PATH="$clean_path" "$tmp/venv-arrow/bin/python" -m pip install -q --no-index \
  --disable-pip-version-check "$tmp/$(basename "$wheel")[arrow]"
env -i HOME="$tmp" PATH="$clean_path" "$tmp/venv-arrow/bin/python" - "$tmp" <<'PY'
import sys, pathlib, importlib.metadata as md
import pyarrow as pa, cellar, cellar.arrow as ca
site = pathlib.Path(cellar.__file__).resolve().parent
assert str(site).startswith(sys.argv[1]) and "site-packages" in str(site), site
assert pathlib.Path(cellar.library_path()).resolve().parent == site, cellar.library_path()
reqs = md.requires("cellar") or []
assert any(r.startswith("pyarrow") and 'extra == "arrow"' in r for r in reqs), reqs
with cellar.Key.generate(cellar.KeyType.AES256) as k, cellar.CellCipher(k, cellar.CellMode.RANDOMIZED) as c:
    arr = pa.array([b"a" * i if i % 3 else None for i in range(1000)], pa.binary())
    ct = ca.encrypt_array(c, arr, "t.c")
    assert ct.null_count == arr.null_count and ca.decrypt_array(c, ct, "t.c").equals(arr)
print("cellar[arrow] from the wheel: cellar.arrow round trip ok,", cellar.library_path())
PY
# The pure-Python build still works (no library inside, the loader finds one elsewhere).
mkdir "$tmp/src"  # from a copy, so that nothing is written into the checkout
cp -r "$root/python/pyproject.toml" "$root/python/README.md" "$root/python/cellar" "$tmp/src/"
rm -f "$tmp"/src/cellar/libcellar.so*
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/pure" "$tmp/src" >/dev/null
pure=$(ls "$tmp"/pure/cellar-*-py3-none-any.whl)
if "$py" -m zipfile -l "$pure" | grep -q libcellar; then echo "pure wheel carries a library"; exit 1; fi
echo "pure-Python wheel builds without the library: $(basename "$pure")"
