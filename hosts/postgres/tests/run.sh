#!/usr/bin/env bash
# make test-postgres: pg_regress (PGXS installcheck) and the multi-session tests against a
# private cluster started here and stopped at the end. The extension must be installed
# (`make -C hosts/postgres install`, which the top-level target does).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/tests/cluster.sh"
trap pg_cluster_stop EXIT
pg_cluster_start
pg_keyfiles
echo "== cluster: $($PGBIN/postgres --version), pid $PG_PID, socket $PGHOST"

rm -rf "$here/results" "$here/regression.diffs" "$here/regression.out"
# The database is made here and kept (--use-existing), so that the multi-session script can
# check the regression run's keys against the server log too.
"$PGBIN/createdb" cellar_regression
if ! make -s -C "$here" installcheck PG_CONFIG="$PG_CONFIG" EXTRA_REGRESS_OPTS=--use-existing CONTRIB_TESTDB=cellar_regression; then
  [ -f "$here/regression.diffs" ] && head -200 "$here/regression.diffs"
  exit 1
fi
export PGTMP RUNAS
bash "$here/tests/multi_session.sh"
bash "$here/tests/pkcs11.sh"
