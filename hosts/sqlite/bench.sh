#!/usr/bin/env bash
# Runs bench.c's workload in alternating rounds (plain, xts, gcm, sqlcipher-nokey, sqlcipher, ...)
# and prints the median time of each with its ratio to plain SQLite, as a Markdown table.
# Usage: bench.sh BUILD_DIR [ROUNDS]   (make bench-sqlite)
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
ROUNDS=${2:-${ROUNDS:-5}}
work=$(mktemp -d "${TMPDIR:-/tmp}/cellar-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
modes="plain xts gcm sqlcipher-nokey sqlcipher"
for r in $(seq 1 "$ROUNDS"); do
    for m in $modes; do
        case $m in sqlcipher*) bin="$BUILD/bench-sqlcipher" ;; *) bin="$BUILD/bench" ;; esac
        "$bin" "$m" "$work" >>"$work/times"
    done
    echo "round $r of $ROUNDS done" >&2
done
median() { grep "^$1 " "$work/times" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
spread() { grep "^$1 " "$work/times" | awk '{print $2}' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.3f-%.3f", lo, hi}'; }
base=$(median plain)
nokey=$(median sqlcipher-nokey)
echo
echo "Workload: 100k inserts (100 transactions), 20k point lookups, 10% updated, 5% deleted, full scan;"
echo "WAL, synchronous=NORMAL, 4 KiB pages, 2 MB page cache (~20 MB database). Median of $ROUNDS rounds."
echo
echo "| configuration | median s | range s | vs plain SQLite |"
echo "|---|---|---|---|"
div() { awk -v a="$1" -v b="$2" 'BEGIN {print a / b}'; }
row() { printf '| %s | %.3f | %s | %.2fx |\n' "$1" "$2" "$3" "$(div "$2" "$base")"; }
row "plain SQLite $(sqlite3 --version | cut -d' ' -f1) (Debian)" "$base" "$(spread plain)"
row "Cellar VFS, AES-256-XTS" "$(median xts)" "$(spread xts)"
row "Cellar VFS, AES-256-GCM" "$(median gcm)" "$(spread gcm)"
sqlc="SQLCipher $(dpkg-query -W -f '${Version}' libsqlcipher-dev 2>/dev/null | cut -d- -f1) (SQLite $(sqlcipher --version 2>/dev/null | cut -d' ' -f1))"
row "$sqlc without a key" "$nokey" "$(spread sqlcipher-nokey)"
row "SQLCipher (AES-256-CBC + HMAC-SHA1, raw key)" "$(median sqlcipher)" "$(spread sqlcipher)"
printf '\nSQLCipher against its own engine without a key: %.2fx\n' "$(div "$(median sqlcipher)" "$nokey")"
