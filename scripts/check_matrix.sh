#!/usr/bin/env bash
# Checks that the bad-input matrix (ffi-tests/c/test_matrix.c) names every function declared in
# include/cellar.h, so a new entry point cannot be added without a row in the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
fns=$(grep -E '^[A-Za-z_][A-Za-z0-9_ ]*[ *]cellar_[a-z0-9_]+\(' include/cellar.h | grep -oE 'cellar_[a-z0-9_]+\(' | tr -d '(' | sort -u)
n=0; missing=0
for f in $fns; do
  n=$((n + 1))
  if ! grep -qE "\\b$f\\b" ffi-tests/c/test_matrix.c; then echo "not in the matrix: $f"; missing=$((missing + 1)); fi
done
echo "matrix coverage: $((n - missing))/$n header functions"
[ "$missing" -eq 0 ]
