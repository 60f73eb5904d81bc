# Sourced by run.sh, multi_session.sh, bench.sh and demo.sh: a private PostgreSQL cluster.
#   pg_cluster_start   initdb in a new temp dir, a Unix socket in that dir (no TCP), start;
#                      exports PGHOST PGPORT PGUSER PGDATABASE SOFTHSM2_CONF, sets PGTMP, PG_PID, RUNAS
#   pg_cluster_stop    stops the postmaster by its pid, removes the temp dir
#   pg_keyfiles        tenant.pw (random, 0600), wrong.pw, open.pw (0644), ae.key (tedious's
#                      Always Encrypted test key, 0600), ae_open.key (0644), in $PGTMP/keys
# The server refuses to run as root: as root, the cluster runs as the `postgres` OS user.
PG_CONFIG=${PG_CONFIG:-pg_config}
PGBIN=$($PG_CONFIG --bindir)

pg_as_server() { if [ -n "$RUNAS" ]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi; }

pg_cluster_start() {
  RUNAS=""
  [ "$(id -u)" = 0 ] && RUNAS=postgres
  PGTMP=$(mktemp -d /tmp/cellar-pg.XXXXXX)
  mkdir -p "$PGTMP/sock" "$PGTMP/keys"
  chmod 0755 "$PGTMP"
  chmod 0700 "$PGTMP/keys"
  [ -n "$RUNAS" ] && chown -R "$RUNAS:" "$PGTMP"
  pg_as_server "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >"$PGTMP/initdb.log" 2>&1 || { cat "$PGTMP/initdb.log"; return 1; }
  cat >>"$PGTMP/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$PGTMP/sock'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
max_connections = 40
log_statement = 'all'
log_line_prefix = '%m [%p] %d '
# Relative to the data directory.
cellar.keyring_file = '../keys/tenant.keyring'
cellar.password_file = '../keys/tenant.pw'
cellar.keyring_iterations = ${CELLAR_PG_ITERATIONS:-100000}
CONF
  # A SoftHSM2 configuration of this cluster's own (tests/pkcs11.sh makes a token there): the
  # server inherits SOFTHSM2_CONF, and the token directory belongs to the server's OS user.
  mkdir -p "$PGTMP/hsm/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$PGTMP/hsm/tokens" >"$PGTMP/hsm/softhsm2.conf"
  [ -n "$RUNAS" ] && chown -R "$RUNAS:" "$PGTMP/hsm"
  export SOFTHSM2_CONF="$PGTMP/hsm/softhsm2.conf"
  pg_as_server "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -s -t 60 start ||
    { cat "$PGTMP/server.log"; return 1; }
  PG_PID=$(head -1 "$PGTMP/data/postmaster.pid")
  export PGHOST="$PGTMP/sock" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

pg_cluster_stop() {
  if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -TERM "$PG_PID"
    for _ in $(seq 1 300); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PG_PID" 2>/dev/null && kill -QUIT "$PG_PID"
  fi
  PG_PID=""
  [ -n "${PGTMP:-}" ] && rm -rf "$PGTMP"
  PGTMP=""
}

pg_secret_file() {  # path mode content-command...
  local path=$1 mode=$2; shift 2
  "$@" >"$path"
  chmod "$mode" "$path"
  [ -n "$RUNAS" ] && chown "$RUNAS:" "$path"
  return 0
}

pg_keyfiles() {
  local k=$PGTMP/keys
  pg_secret_file "$k/tenant.pw" 0600 sh -c 'head -c 24 /dev/urandom | base64'
  pg_secret_file "$k/wrong.pw" 0600 sh -c 'head -c 24 /dev/urandom | base64'
  pg_secret_file "$k/open.pw" 0644 cat "$k/tenant.pw"
  pg_secret_file "$k/ae.key" 0600 python3 -c \
    "import sys; sys.stdout.buffer.write(bytes.fromhex('ED6FBC93EECDE0BFC6494FFB2EDB7998B7E94EF71FEDE584741A855238F0155E'))"
  pg_secret_file "$k/ae_open.key" 0644 cat "$k/ae.key"
  pg_secret_file "$k/garbage.keyring" 0600 echo "this is not a Cellar keyring export"
}
