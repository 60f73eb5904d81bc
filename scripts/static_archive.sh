#!/usr/bin/env bash
# Makes the installable static archive from cargo's libcellar.a: one relocatable object that
# defines only `cellar_*` globally, so a program can link it beside OpenSSL's libcrypto, another
# Rust static library or anything else without clashing on AWS-LC's unprefixed assembly
# symbols (bignum_*, curve25519_*, ...), Rust's std or compiler-builtins.
#   ld -r --whole-archive   every member into one object (their cross references resolved)
#   objcopy -R .llvmbc ...  drop the embedded LLVM bitcode (unused by a C linker; binutils' LLVM
#                           plugin of another version fails on it)
#   objcopy --keep-global-symbol='cellar_*'   every other defined global becomes local
# The FIPS module (AWS-LC's bcm object) is copied byte for byte: its integrity hash covers its
# own text between BORINGSSL_bcm_text_start and _end, which a partial link leaves unchanged
# (`make test-install` checks a static program reports FIPS mode and that a flipped byte in
# that text makes it abort). Needs only binutils (ld, objcopy, ar, nm).
# Usage: scripts/static_archive.sh IN.a OUT.a
set -euo pipefail
in=$1 out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ld -r --whole-archive "$in" -o "$tmp/cellar.o"
objcopy -R .llvmbc -R .llvmcmd -w --keep-global-symbol='cellar_*' "$tmp/cellar.o" "$tmp/libcellar.o"
mkdir -p "$(dirname "$out")"
rm -f "$tmp/libcellar.a"
ar rcsD "$tmp/libcellar.a" "$tmp/libcellar.o"
bad=$(nm -g --defined-only "$tmp/libcellar.a" | awk 'NF == 3 {print $3}' | grep -v '^cellar_' || true)
if [ -n "$bad" ]; then
  echo "static_archive: non-cellar symbols still global:" >&2
  echo "$bad" | head -20 >&2
  exit 1
fi
mv "$tmp/libcellar.a" "$out"
echo "static_archive: $out: $(nm -g --defined-only "$out" | awk 'NF == 3' | wc -l) global symbols, all cellar_"
