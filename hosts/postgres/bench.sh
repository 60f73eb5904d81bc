#!/usr/bin/env bash
# make bench-postgres: Cellar against pgcrypto in one run on a private cluster (not a test).
# 100 000 rows of 64-byte values; bulk INSERT ... SELECT, full-scan decrypt, point lookups.
# ROUNDS (default 3) alternating rounds; the median of each is reported with its spread.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tests/cluster.sh"
trap pg_cluster_stop EXIT
pg_cluster_start
pg_keyfiles
# Statement logging off for the benchmark.
"$PGBIN/psql" -X -q -c "ALTER SYSTEM SET log_statement = 'none'" -c "SELECT pg_reload_conf()" >/dev/null
export PG_CONFIG
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $("$PGBIN/postgres" --version); $(nproc) CPUs; load:$(uptime | sed 's/.*load average://')"
python3 "$here/bench.py" "${ROUNDS:-3}" "${ROWS:-100000}" ${BENCH_ONLY:-}
echo "== finished $(date -u '+%H:%M:%S UTC'); load:$(uptime | sed 's/.*load average://')"
