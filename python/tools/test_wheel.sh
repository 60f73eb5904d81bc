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
# The pure-Python build still works (no library inside, the loader finds one elsewhere).
mkdir "$tmp/src"  # from a copy, so that nothing is written into the checkout
cp -r "$root/python/pyproject.toml" "$root/python/README.md" "$root/python/cellar" "$tmp/src/"
rm -f "$tmp"/src/cellar/libcellar.so*
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/pure" "$tmp/src" >/dev/null
pure=$(ls "$tmp"/pure/cellar-*-py3-none-any.whl)
if "$py" -m zipfile -l "$pure" | grep -q libcellar; then echo "pure wheel carries a library"; exit 1; fi
echo "pure-Python wheel builds without the library: $(basename "$pure")"
