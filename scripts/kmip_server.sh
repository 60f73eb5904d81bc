#!/usr/bin/env bash
# Starts a PyKMIP server for Cellar's KMIP tests in a fresh directory: a certificate authority,
# a server certificate (CN=localhost, SAN 127.0.0.1), a client certificate and key, a second CA
# with its own client and server certificates (for the wrong-CA tests), an SQLite database, a free
# loopback port. Prints shell assignments (KMIP_DIR, KMIP_PORT, KMIP_PID) on stdout.
#   usage: eval "$(scripts/kmip_server.sh start DIR)";  scripts/kmip_server.sh stop DIR
# PyKMIP ignores SIGTERM; it is stopped with SIGINT by its process id.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}
PY=${KMIP_PYTHON:-python3}
case "$cmd" in
stop)
  if [ -f "$dir/server.pid" ]; then
    pid=$(cat "$dir/server.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/server.pid"
  fi
  exit 0;;
start) ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2;;
esac
mkdir -p "$dir"; cd "$dir"
ossl() { openssl "$@" >/dev/null 2>&1; }
mkca() { # name
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.pem" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
}
mkcert() { # ca name cn eku san
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" -keyout "$2.key" -out "$2.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=%s\n%s\n' "$4" "$5" > "$2.ext"
  ossl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -days 2 -extfile "$2.ext" -out "$2.pem"
  rm -f "$2.csr" "$2.ext"
}
mkca ca
mkcert ca server localhost serverAuth "subjectAltName=DNS:localhost,IP:127.0.0.1"
mkcert ca client cellar-client clientAuth ""
mkca other-ca
mkcert other-ca other-client cellar-client clientAuth ""
mkcert other-ca other-server localhost serverAuth "subjectAltName=DNS:localhost,IP:127.0.0.1"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p policies
cat > server.conf <<CONF
[server]
hostname=127.0.0.1
port=$port
certificate_path=$dir/server.pem
key_path=$dir/server.key
ca_path=$dir/ca.pem
auth_suite=TLS1.2
policy_path=$dir/policies
enable_tls_client_auth=True
logging_level=INFO
database_path=$dir/pykmip.db
CONF
$PY - "$dir" >>"$dir/server.out" 2>>"$dir/server.err" <<'PY' &
import sys, os
os.chdir(sys.argv[1])
from kmip.services.server import server
s = server.KmipServer(config_path=os.path.join(sys.argv[1], "server.conf"),
                      log_path=os.path.join(sys.argv[1], "server.log"))
with s:
    s.serve()
PY
pid=$!
echo "$pid" > server.pid
for _ in $(seq 100); do
  if $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2).close()" 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "kmip server exited; log:" >&2; tail -20 server.log >&2 || true; exit 1; }
  sleep 0.2
done
echo "KMIP_DIR=$dir KMIP_PORT=$port KMIP_PID=$pid"
