"""Cellar vs pgcrypto inside PostgreSQL (driven through psql; timings are psql's \\timing).

Three ways to protect a 64-byte text column:
  cellar   cellar.encrypt (AES-256-GCM, module nonce, bound to table/column/row) and a blind index
  pgp      pgcrypto pgp_sym_encrypt / pgp_sym_decrypt (its authenticated path; the key is in SQL),
           with its defaults (iterated S2K per value)
  pgp1     the same with 's2k-mode=1' (one salted hash per value instead of the iterated S2K)
  cbc      pgcrypto encrypt_iv AES-CBC with a random IV plus hmac-sha256 (encrypt-then-MAC)
Parallel query is off so that every number is one backend's per-row cost. psql and pgbench come
from $PG_CONFIG's bindir (the server major under test), else from PATH.
"""
import os
import re
import statistics
import subprocess
import sys

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
LOOKUPS_ONLY = len(sys.argv) > 3 and sys.argv[3] == "lookups"
PGBENCH_SECONDS = 10


def _bindir():
    pgc = os.environ.get("PG_CONFIG", "pg_config")
    try:
        return subprocess.run([pgc, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


BINDIR = _bindir()
PSQL = os.path.join(BINDIR, "psql") if BINDIR else "psql"
PGBENCH = os.path.join(BINDIR, "pgbench") if BINDIR else "pgbench"
LOOKUPS = 2000
PW = "'bench passphrase for pgcrypto'"
K = "decode('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex')"
MK = "decode('202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f', 'hex')"


def psql(*stmts, db="bench"):
    args = [PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db,
            "-c", "SET max_parallel_workers_per_gather = 0", "-c", "\\timing on"]
    for s in stmts:
        args += ["-c", s]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"psql failed: {p.stderr.strip()}")
    out = p.stdout
    return [float(x) for x in re.findall(r"Time: ([0-9.]+) ms", out)], out


def timed(sql):
    return psql(sql)[0][-1] / 1000.0


subprocess.run([PSQL, "-X", "-q", "-c", "CREATE DATABASE bench"], check=True)
psql("CREATE EXTENSION cellar", "CREATE EXTENSION pgcrypto",
     "SELECT cellar.create_keyring()",
     "SELECT cellar.create_column_key('k')",
     "SELECT cellar.create_column_key('kb', 'blind_index')",
     f"CREATE TABLE src AS SELECT i AS id, md5(i::text) || md5((i * 7)::text) AS v FROM generate_series(1, {ROWS}) i",
     "CREATE UNIQUE INDEX ON src (v)",
     "CREATE TABLE c_tab (id int, c bytea)", "CREATE TABLE p_tab (id int, c bytea)",
     "CREATE TABLE e_tab (id int, c bytea)", "CREATE TABLE x_tab (id int, c bytea)",
     "CREATE TABLE q_tab (id int, c bytea)",
     "VACUUM ANALYZE src")

INS = {
    "plain": "INSERT INTO x_tab SELECT id, convert_to(v, 'UTF8') FROM src",
    "cellar": "INSERT INTO c_tab SELECT id, cellar.encrypt('k', v, cellar.ctx('c_tab', 'c', id::text)) FROM src",
    "pgp": f"INSERT INTO p_tab SELECT id, pgp_sym_encrypt(v, {PW}) FROM src",
    "pgp1": f"INSERT INTO q_tab SELECT id, pgp_sym_encrypt(v, {PW}, 's2k-mode=1') FROM src",
    "cbc": (f"INSERT INTO e_tab SELECT id, ct || hmac(ct, {MK}, 'sha256') FROM "
            f"(SELECT id, iv || encrypt_iv(convert_to(v, 'UTF8'), {K}, iv, 'aes-cbc/pad:pkcs') AS ct "
            f"FROM (SELECT id, v, gen_random_bytes(16) AS iv FROM src) a) b"),
}
DEC = {
    "plain": "SELECT count(*) FROM x_tab WHERE convert_from(c, 'UTF8') IS NOT NULL",
    "cellar": "SELECT count(*) FROM c_tab WHERE cellar.decrypt_text('k', c, cellar.ctx('c_tab', 'c', id::text)) IS NOT NULL",
    "pgp": f"SELECT count(*) FROM p_tab WHERE pgp_sym_decrypt(c, {PW}) IS NOT NULL",
    "pgp1": f"SELECT count(*) FROM q_tab WHERE pgp_sym_decrypt(c, {PW}) IS NOT NULL",
    "cbc": (f"SELECT count(*) FROM e_tab WHERE CASE WHEN hmac(substr(c, 1, length(c) - 32), {MK}, 'sha256') = substr(c, length(c) - 31) "
            f"THEN convert_from(decrypt_iv(substr(c, 17, length(c) - 48), {K}, substr(c, 1, 16), 'aes-cbc/pad:pkcs'), 'UTF8') "
            f"ELSE NULL END IS NOT NULL"),
}
TABLE = {"cellar": "c_tab", "pgp": "p_tab", "pgp1": "q_tab", "cbc": "e_tab", "plain": "x_tab"}

res = {}
def add(name, t):
    res.setdefault(name, []).append(t)

for r in range(0 if LOOKUPS_ONLY else ROUNDS):
    order = ["plain", "cellar", "pgp", "pgp1", "cbc"] if r % 2 == 0 else ["cbc", "pgp1", "pgp", "cellar", "plain"]
    for w in order:
        psql(f"TRUNCATE {TABLE[w]}")
        add(f"insert/{w}", timed(INS[w]))
    for w in order:
        add(f"scan/{w}", timed(DEC[w]))
    print(f"round {r + 1}/{ROUNDS} done", file=sys.stderr)

# Point lookups: a blind-index column with a B-tree index vs the plaintext column's B-tree,
# LOOKUPS lookups of existing values in one plpgsql loop (no client round trips).
if LOOKUPS_ONLY:
    for w in ("cellar", "cbc"):
        psql(INS[w])
psql("ALTER TABLE c_tab ADD COLUMN bidx bytea",
     "UPDATE c_tab SET bidx = cellar.blind_index('kb', s.v, cellar.ctx('c_tab', 'c')) FROM src s WHERE s.id = c_tab.id",
     f"ALTER TABLE e_tab ADD COLUMN bidx bytea",
     f"UPDATE e_tab SET bidx = hmac(convert_to(s.v, 'UTF8'), {MK}, 'sha256') FROM src s WHERE s.id = e_tab.id",
     "CREATE INDEX ON c_tab (bidx)", "CREATE INDEX ON e_tab (bidx)", "VACUUM ANALYZE c_tab", "VACUUM ANALYZE e_tab")
LOOK = {
    "plain": "PERFORM id FROM src WHERE v = val",
    "cellar": "PERFORM id FROM c_tab WHERE bidx = cellar.blind_index('kb', val, cellar.ctx('c_tab', 'c'))",
    "cbc": f"PERFORM id FROM e_tab WHERE bidx = hmac(convert_to(val, 'UTF8'), {MK}, 'sha256')",
}
for r in range(ROUNDS):
    for w in (["plain", "cellar", "cbc"] if r % 2 == 0 else ["cbc", "cellar", "plain"]):
        body = (f"DO $$ DECLARE val text; n int := 0; BEGIN "
                f"FOR i IN 1..{LOOKUPS} LOOP val := md5(((i * 37) % {ROWS} + 1)::text) || md5(((((i * 37) % {ROWS}) + 1) * 7)::text); "
                f"{LOOK[w]}; IF FOUND THEN n := n + 1; END IF; END LOOP; "
                f"IF n <> {LOOKUPS} THEN RAISE EXCEPTION 'found %', n; END IF; END $$")
        add(f"lookup/{w}", timed(body))

# The same lookups from a client, one prepared statement per lookup (pgbench -M prepared, one
# connection, random existing values): transactions per second.
import tempfile
PGB = {
    "plain": "SELECT id FROM src WHERE v = md5(:i::text) || md5((:i * 7)::text);",
    "cellar": "SELECT id FROM c_tab WHERE bidx = cellar.blind_index('kb', md5(:i::text) || md5((:i * 7)::text), cellar.ctx('c_tab', 'c'));",
    "cbc": f"SELECT id FROM e_tab WHERE bidx = hmac(convert_to(md5(:i::text) || md5((:i * 7)::text), 'UTF8'), {MK}, 'sha256');",
}
pgbench = PGBENCH
for r in range(ROUNDS):
    for w in (["plain", "cellar", "cbc"] if r % 2 == 0 else ["cbc", "cellar", "plain"]):
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(f"\\set i random(1, {ROWS})\n" + PGB[w] + "\n")
        out = subprocess.run([pgbench, "-n", "-M", "prepared", "-c", "1", "-T", str(PGBENCH_SECONDS), "-f", f.name, "bench"],
                             capture_output=True, text=True)
        os.unlink(f.name)
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out.stdout)
        if not m:
            sys.exit(f"pgbench failed: {out.stdout} {out.stderr}")
        add(f"pgbench/{w}", float(m.group(1)))

def med(name):
    return statistics.median(res[name])

def spread(name):
    v = res[name]
    return (max(v) - min(v)) / statistics.median(v) * 100

print(f"\n{ROWS} rows of 64-byte text, {ROUNDS} alternating rounds (median, spread = (max-min)/median)\n")
if not LOOKUPS_ONLY:
  print("| workload | no encryption | Cellar | pgcrypto PGP | pgcrypto PGP s2k-mode=1 | pgcrypto CBC+HMAC | Cellar vs PGP | vs PGP s2k-mode=1 | vs CBC+HMAC |")
  print("|---|---|---|---|---|---|---|---|---|")
for op, label in [] if LOOKUPS_ONLY else (("insert", "bulk INSERT ... SELECT (encrypt)"), ("scan", "full-scan decrypt")):
    c, p, p1, e = med(f"{op}/cellar"), med(f"{op}/pgp"), med(f"{op}/pgp1"), med(f"{op}/cbc")
    print(f"| {label} | {med(f'{op}/plain'):.2f} s | {c:.2f} s ({ROWS / c / 1000:.0f}k rows/s, ±{spread(f'{op}/cellar'):.0f}%) "
          f"| {p:.2f} s (±{spread(f'{op}/pgp'):.0f}%) | {p1:.2f} s (±{spread(f'{op}/pgp1'):.0f}%) "
          f"| {e:.2f} s (±{spread(f'{op}/cbc'):.0f}%) "
          f"| {p / c:.1f}x faster | {p1 / c:.1f}x faster | {e / c:.1f}x faster |")
print(f"\n| {LOOKUPS} point lookups | time | per lookup | vs plaintext B-tree |")
print("|---|---|---|---|")
for w, label in (("plain", "plaintext B-tree"), ("cellar", "Cellar blind index (B-tree)"),
                 ("cbc", "pgcrypto hmac() index (B-tree)")):
    m = med(f"lookup/{w}")
    print(f"| {label} | {m * 1000:.1f} ms (±{spread(f'lookup/{w}'):.0f}%) | {m / LOOKUPS * 1e6:.1f} us "
          f"| {m / med('lookup/plain'):.2f}x |")
print(f"\n| point lookups from a client (pgbench -M prepared, 1 connection, {PGBENCH_SECONDS} s) | lookups/s | vs plaintext B-tree |")
print("|---|---|---|")
for w, label in (("plain", "plaintext B-tree"), ("cellar", "Cellar blind index (B-tree)"),
                 ("cbc", "pgcrypto hmac() index (B-tree)")):
    m = med(f"pgbench/{w}")
    print(f"| {label} | {m:.0f} (±{spread(f'pgbench/{w}'):.0f}%) | {m / med('pgbench/plain'):.2f}x |")
