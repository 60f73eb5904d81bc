#!/usr/bin/env bash
# `make test-install`: installs into a temporary prefix with cargo, rustc, apt and pip poisoned
# on PATH (an install from a complete build tree must need none of them), then builds host
# programs against the prefix only:
#   1. shared, with `pkg-config --cflags --libs cellar`; it loads the installed libcellar.so.1
#   2. fully static, with `pkg-config --static` and -static: FIPS mode and self tests pass
#   3. the static archive inside a dynamic program (cellar-static.pc)
#   4. the static program with one byte of the FIPS module's text flipped must abort (the
#      module's integrity check holds in a static link)
#   5. the installed libcellar.a defines only cellar_ symbols globally, and links beside
#      OpenSSL's libcrypto in one program (static libcrypto.a when present, so a clash would be
#      a link error)
#   6. CMake: find_package(Cellar 1.0 CONFIG REQUIRED), a C++ program on Cellar::cellar and a C
#      program on Cellar::cellar_static; versions 2.0 and 1.<minor + 1> are refused
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
CC=${CC:-cc}
CWARN="-Wall -Wextra -Wpedantic -Werror"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# The complete build tree is the caller's (make test-install depends on build). Poison the tools
# an install must not need, and leave ~/.cargo/bin out of PATH (HOME points elsewhere).
mkdir -p "$tmp/poison" "$tmp/home"
for t in cargo rustc rustup apt-get apt dpkg pip pip3; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/called"\nexit 97\n' "$t" "$tmp" > "$tmp/poison/$t"
  chmod +x "$tmp/poison/$t"
done
syspath=$(echo "$PATH" | tr ':' '\n' | grep -v -e '\.cargo' -e '^$' | paste -sd: -)
if ! env -i PATH="$tmp/poison:$syspath" HOME="$tmp/home" make --no-print-directory install PREFIX="$prefix" \
    > "$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"; echo "FAIL: make install without cargo"; exit 1
fi
if [ -e "$tmp/called" ]; then echo "FAIL: make install called:"; cat "$tmp/called"; exit 1; fi
echo "install without cargo/apt/pip on PATH: ok ($(ls "$prefix/lib" | tr '\n' ' '))"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
inc=$(pkg-config --cflags cellar)

# 1. shared
$CC $CWARN ffi-tests/install/main.c $(pkg-config --cflags --libs cellar) -o "$tmp/host"
LD_LIBRARY_PATH=$prefix/lib "$tmp/host"
# ldd's output is captured first: under pipefail, `ldd | grep -q` fails when grep exits early
# and ldd dies of SIGPIPE (a CI failure on a fresh machine).
host_ldd=$(LD_LIBRARY_PATH=$prefix/lib ldd "$tmp/host")
if grep -q "libcellar.so.1 => $prefix/lib/" <<<"$host_ldd"; then
  echo "shared: links the installed libcellar.so.1"
else
  echo "FAIL: host does not load the installed library"; LD_LIBRARY_PATH=$prefix/lib ldd "$tmp/host"; exit 1
fi

# 2. fully static (glibc warns that getaddrinfo etc. would need its shared libraries at run time;
# Cellar calls none of them)
echo "pkg-config --static --libs cellar: $(pkg-config --static --libs cellar)"
$CC $CWARN -static ffi-tests/install/fips_static.c $(pkg-config --static --cflags --libs cellar) -o "$tmp/static" \
  2> "$tmp/static.log" || { cat "$tmp/static.log"; exit 1; }
if ldd "$tmp/static" >/dev/null 2>&1; then echo "FAIL: the -static program is dynamic"; exit 1; fi
"$tmp/static"

# 3. libcellar.a in a dynamic program
$CC $CWARN ffi-tests/install/fips_static.c $(pkg-config --cflags --libs cellar-static) -o "$tmp/static-a"
if grep -q libcellar <<<"$(ldd "$tmp/static-a")"; then echo "FAIL: cellar-static.pc linked the shared library"; exit 1; fi
"$tmp/static-a"

# 4. a flipped byte in the module's text: AWS-LC's integrity check must stop the program
python3 - "$tmp/static" "$tmp/tampered" <<'PY'
import subprocess, sys
exe, out = sys.argv[1], sys.argv[2]
syms = {}
for line in subprocess.check_output(["nm", exe], text=True).splitlines():
    f = line.split()
    if len(f) == 3:
        syms[f[2]] = int(f[0], 16)
start, end = syms["BORINGSSL_bcm_text_start"], syms["BORINGSSL_bcm_text_end"]
target = start + (end - start) // 2
for line in subprocess.check_output(["readelf", "-lW", exe], text=True).splitlines():
    f = line.split()
    if f and f[0] == "LOAD":
        off, va, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
        if va <= target < va + filesz:
            data = bytearray(open(exe, "rb").read())
            data[target - va + off] ^= 0x01
            open(out, "wb").write(data)
            break
else:
    sys.exit("module text not found in a LOAD segment")
PY
chmod +x "$tmp/tampered"
if "$tmp/tampered" > "$tmp/tampered.out" 2>&1; then
  echo "FAIL: a static program with a changed FIPS module ran"; cat "$tmp/tampered.out"; exit 1
fi
grep -q "FIPS integrity test failed" "$tmp/tampered.out" || { echo "FAIL: no integrity failure"; cat "$tmp/tampered.out"; exit 1; }
echo "static: one flipped byte of the module text aborts with \"FIPS integrity test failed\""

# 5. only cellar_ symbols, and OpenSSL in the same program
bad=$(nm -g --defined-only "$prefix/lib/libcellar.a" | awk 'NF == 3 {print $3}' | grep -v '^cellar_' || true)
if [ -n "$bad" ]; then echo "FAIL: libcellar.a defines non-cellar globals:"; echo "$bad" | head; exit 1; fi
echo "libcellar.a: $(nm -g --defined-only "$prefix/lib/libcellar.a" | awk 'NF == 3' | wc -l) global symbols, all cellar_"
libcrypto=$(pkg-config --variable=libdir libcrypto 2>/dev/null || echo /usr/lib)/libcrypto.a
[ -f "$libcrypto" ] || libcrypto=-lcrypto
$CC $CWARN ffi-tests/install/with_openssl.c $inc $(pkg-config --cflags libcrypto 2>/dev/null) "$prefix/lib/libcellar.a" \
  "$libcrypto" -lpthread -lm -ldl -lrt -o "$tmp/openssl"
"$tmp/openssl"
echo "(libcrypto linked as $libcrypto)"

# 6. CMake
cm() { cmake -S ffi-tests/install/cmake -B "$tmp/cmake-$1" -DCMAKE_PREFIX_PATH="$prefix" -DCELLAR_WANT="$1" \
         -DCMAKE_C_COMPILER="$CC" > "$tmp/cmake-$1.log" 2>&1; }
cm 1.0 || { cat "$tmp/cmake-1.0.log"; exit 1; }
grep "Cellar " "$tmp/cmake-1.0.log"
cmake --build "$tmp/cmake-1.0" > "$tmp/cmake-build.log" 2>&1 || { cat "$tmp/cmake-build.log"; exit 1; }
LD_LIBRARY_PATH=$prefix/lib "$tmp/cmake-1.0/host_cxx"
"$tmp/cmake-1.0/host_static"
if grep -q libcellar <<<"$(ldd "$tmp/cmake-1.0/host_static")"; then echo "FAIL: Cellar::cellar_static is shared"; exit 1; fi
abi=$(sed -n 's/^#define CELLAR_ABI_VERSION \(0x[0-9a-fA-F]*\|[0-9]*\).*/\1/p' include/cellar.h)
for want in 2.0 "$((abi >> 16)).$(((abi & 0xffff) + 1))"; do
  if cm "$want"; then echo "FAIL: find_package(Cellar $want) accepted ABI $((abi >> 16)).$((abi & 0xffff))"; exit 1; fi
done
echo "cmake: find_package(Cellar 1.0) builds both targets; 2.0 and $((abi >> 16)).$(((abi & 0xffff) + 1)) are refused"
echo "test-install: all passed"
