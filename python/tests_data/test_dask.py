"""Dask: the sensitive columns of a multi-file Parquet dataset encrypted on a LocalCluster of 2
worker processes, each opening the keyring from a sealed export and a password file; read back
and compared. Prints the throughput beside the same work in one process (not asserted: the
machine is shared)."""
import os
import pathlib
import sys
import time

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("pandas")
pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import cellar  # noqa: E402

PY_DIR = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = PY_DIR / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))
import dask_encrypt as de  # noqa: E402

ROWS, FILES = 20_000, 4


@pytest.fixture
def worker_env(monkeypatch):
    # Spawned workers import cellar and dask_encrypt by name (tasks refer to functions, never
    # carry them by value) and find the library the way this process does.
    path = os.pathsep.join([str(EXAMPLES), str(PY_DIR), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    if "CELLAR_LIBRARY" not in os.environ:
        monkeypatch.setenv("CELLAR_LIBRARY", cellar.library_path())


def test_dask_local_cluster_round_trip(tmp_path, worker_env):
    de.make_dataset(tmp_path / "raw", ROWS, FILES)
    password_file = tmp_path / "keyring.password"
    password_file.write_text(os.urandom(16).hex() + "\n")
    export = tmp_path / "keyring.export"
    with cellar.Keyring.create() as kr:
        export.write_bytes(kr.export(password=password_file.read_text().strip()))
        keys = de.make_column_keys(kr, {"email": cellar.CellMode.DETERMINISTIC,
                                        "ssn": cellar.CellMode.RANDOMIZED})
    # What the tasks carry: paths and wrapped keys, plain bytes and strings.
    for mode, blob in keys.values():
        assert isinstance(mode, str) and isinstance(blob, bytes)
    ex, pw = str(export), str(password_file)

    t0 = time.perf_counter()
    de.one_process(tmp_path / "raw", tmp_path / "single", keys, ex, pw)
    t_one = time.perf_counter() - t0

    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = client.run(de.warm, ex, pw)           # each worker opens the keyring itself
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
        t0 = time.perf_counter()
        de.encrypt_dataset(str(tmp_path / "raw"), str(tmp_path / "enc"), keys, ex, pw)
        t_dask = time.perf_counter() - t0
        back = de.decrypt_dataset(str(tmp_path / "enc"), keys, ex, pw,
                                  {"email": pa.string(), "ssn": pa.string()}).compute()
        # the workers that ran tasks built their ciphers from their own keyring
        busy = [n for n in client.run(lambda: len(de._ciphers)).values() if n]
        assert busy and all(n == 2 for n in busy)

    files = sorted((tmp_path / "enc").glob("*.parquet"))
    assert len(files) == FILES
    for f in files:
        assert b"customer1@example.com" not in f.read_bytes()
    enc = pq.read_table(tmp_path / "enc")
    assert enc.schema.field("email").type == pa.binary()
    assert enc.num_rows == ROWS
    orig = pq.read_table(tmp_path / "raw").to_pandas().sort_values("id").reset_index(drop=True)
    back = back.sort_values("id").reset_index(drop=True)
    assert back["id"].tolist() == orig["id"].tolist()
    assert back["email"].tolist() == orig["email"].tolist()
    assert back["ssn"].tolist() == orig["ssn"].tolist()
    assert back["balance"].tolist() == orig["balance"].tolist()
    # The cells decrypt value by value with the column key outside Dask, too.
    with cellar.Keyring.import_state(export.read_bytes(), password=password_file.read_text().strip()) as kr:
        key, _ = kr.unwrap(keys["email"][1])
        with key, cellar.CellCipher(key, cellar.CellMode.DETERMINISTIC) as c:
            e = enc.column("email").to_pylist()
            i = enc.column("id").to_pylist()
            for k in range(0, ROWS, 1999):
                assert c.decrypt(e[k], b"email") == f"customer{i[k]}@example.com".encode()
    print(f"\n{ROWS} rows, {FILES} files: one process {t_one:.2f} s, "
          f"dask 2 workers {t_dask:.2f} s ({t_one / t_dask:.2f}x)")


def test_worker_without_password_file_fails_cleanly(tmp_path):
    export = tmp_path / "keyring.export"
    with cellar.Keyring.create() as kr:
        export.write_bytes(kr.export(password="correct horse battery staple"))
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not the password at all\n")
    with pytest.raises(cellar.AuthenticationError):
        de.open_keyring(str(export), str(wrong))
    with pytest.raises(FileNotFoundError):
        de.open_keyring(str(export), str(tmp_path / "missing"))
