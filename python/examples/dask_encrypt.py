"""Encrypt the sensitive columns of a multi-file Parquet dataset with Dask, then read it back.

Every worker opens the tenant keyring itself, from a sealed keyring export and a password file
that it can read (a mounted secret on a real cluster); the tasks carry only file paths, the
column keys wrapped by the keyring, and the data. No key crosses the scheduler.

Run it on this machine (a LocalCluster of 2 worker processes, a generated dataset):

    python3 python/examples/dask_encrypt.py [--rows 200000] [--files 8]

Pointed at a real cluster, only the client changes (and the paths must be visible to every
worker, for example on a shared file system or object store)::

    from dask.distributed import Client
    client = Client("tcp://scheduler.internal:8786")
    keys = make_column_keys(driver_keyring, {"email": cellar.CellMode.DETERMINISTIC,
                                             "ssn": cellar.CellMode.RANDOMIZED})
    encrypt_dataset("s3://raw/customers/", "s3://secure/customers/", keys,
                    "/run/secrets/keyring.export", "/run/secrets/keyring.password")
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time
from typing import Dict, Mapping, Tuple

try:
    import cellar
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import cellar

import pandas as pd
import pyarrow as pa

import cellar.arrow as ca

#: Column name -> (cell mode name, keyring-wrapped column key). Plain data: safe to ship.
WrappedKeys = Dict[str, Tuple[str, bytes]]

_keyrings: Dict[Tuple[str, str], cellar.Keyring] = {}
_ciphers: Dict[Tuple[str, str, bytes], cellar.CellCipher] = {}


def open_keyring(export_path: str, password_file: str) -> cellar.Keyring:
    """The keyring of this process, opened once from the sealed export and the password file."""
    k = (export_path, password_file)
    kr = _keyrings.get(k)
    if kr is None:
        password = pathlib.Path(password_file).read_bytes().rstrip(b"\r\n")
        kr = cellar.Keyring.import_state(pathlib.Path(export_path).read_bytes(), password=password)
        _keyrings[k] = kr
    return kr


def _ciphers_for(keys: WrappedKeys, export_path: str, password_file: str) -> Dict[str, cellar.CellCipher]:
    kr = open_keyring(export_path, password_file)
    out = {}
    for col, (mode, blob) in keys.items():
        ck = (export_path, col, blob)
        c = _ciphers.get(ck)
        if c is None:
            key, _version = kr.unwrap(blob)
            with key:
                c = cellar.CellCipher(key, cellar.CellMode[mode])
            _ciphers[ck] = c
        out[col] = c
    return out


def warm(export_path: str, password_file: str) -> int:
    """Opens the keyring on a worker ahead of the work (returns the worker's pid, not the
    keyring: keyrings, keys and ciphers refuse to be pickled)."""
    open_keyring(export_path, password_file)
    return os.getpid()


def make_column_keys(keyring: cellar.Keyring, modes: Mapping[str, cellar.CellMode]) -> WrappedKeys:
    """One fresh AES-256 key per column, returned wrapped by ``keyring`` (run by the driver)."""
    out: WrappedKeys = {}
    for col, mode in modes.items():
        with cellar.Key.generate() as k:
            out[col] = (cellar.CellMode(mode).name, keyring.wrap(k))
    return out


def _binary_as_arrow(t: pa.DataType):
    return pd.ArrowDtype(t) if t in (pa.binary(), pa.large_binary()) else None


def encrypt_partition(df: pd.DataFrame, keys: WrappedKeys, export_path: str,
                      password_file: str) -> pd.DataFrame:
    """Runs on a worker: encrypts the columns named in ``keys`` (context: the column name)."""
    ciphers = _ciphers_for(keys, export_path, password_file)
    table = pa.Table.from_pandas(df, preserve_index=False)
    out = ca.encrypt_table(table, ciphers)
    return out.to_pandas(types_mapper=_binary_as_arrow).set_axis(df.index)


def decrypt_partition(df: pd.DataFrame, keys: WrappedKeys, export_path: str, password_file: str,
                      types: Mapping[str, pa.DataType]) -> pd.DataFrame:
    """Runs on a worker: the inverse of :func:`encrypt_partition`."""
    ciphers = _ciphers_for(keys, export_path, password_file)
    table = pa.Table.from_pandas(df, preserve_index=False)
    out = ca.decrypt_table(table, ciphers, types=types)
    return out.to_pandas().set_axis(df.index)


def encrypt_dataset(src: str, dst: str, keys: WrappedKeys, export_path: str, password_file: str) -> None:
    """Reads the Parquet dataset ``src``, encrypts the columns of ``keys`` partition by
    partition on the workers, writes the dataset ``dst`` (one file per partition)."""
    import dask.dataframe as dd

    ddf = dd.read_parquet(src)
    meta = ddf._meta.copy()
    for col in keys:
        meta[col] = pd.Series([], dtype=pd.ArrowDtype(pa.binary()))
    enc = ddf.map_partitions(encrypt_partition, keys, export_path, password_file, meta=meta)
    enc.to_parquet(dst, write_index=False)


def decrypt_dataset(src: str, keys: WrappedKeys, export_path: str, password_file: str,
                    types: Mapping[str, pa.DataType]):
    """A lazy Dask DataFrame of the decrypted dataset ``src``."""
    import dask.dataframe as dd

    ddf = dd.read_parquet(src)
    meta = ddf._meta.copy()
    for col, t in types.items():
        meta[col] = pd.Series([], dtype=pd.ArrowDtype(t)).astype(
            "string" if pa.types.is_string(t) or pa.types.is_large_string(t) else object)
    return ddf.map_partitions(decrypt_partition, keys, export_path, password_file, types, meta=meta)


def make_dataset(directory: pathlib.Path, rows: int, files: int) -> None:
    """A synthetic customer dataset: ``files`` Parquet files of ``rows // files`` rows."""
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    per = rows // files
    for f in range(files):
        ids = range(f * per, (f + 1) * per)
        t = pa.table({
            "id": pa.array(ids, pa.int64()),
            "email": pa.array([f"customer{i}@example.com" for i in ids], pa.string()),
            "ssn": pa.array([f"{(i * 7919) % 10**9:09d}" for i in ids], pa.string()),
            "balance": pa.array([i * 0.01 for i in ids], pa.float64()),
        })
        pq.write_table(t, directory / f"part-{f:03d}.parquet")


def one_process(src: pathlib.Path, dst: pathlib.Path, keys: WrappedKeys, export_path: str,
                password_file: str) -> None:
    """The same work in this process, file by file (the baseline for the throughput)."""
    import pyarrow.parquet as pq

    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.parquet")):
        df = pq.read_table(f).to_pandas()
        pq.write_table(pa.Table.from_pandas(encrypt_partition(df, keys, export_path, password_file),
                                            preserve_index=False), dst / f.name)


def main() -> None:
    # Tasks must refer to these functions by module name (pickled by reference, imported by the
    # workers), never by value from __main__: put this folder and the package on the workers'
    # path, and run the importable copy of this module.
    here = pathlib.Path(__file__).resolve().parent
    paths = [str(here), str(here.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    sys.path[:0] = [str(here)]
    import dask_encrypt

    dask_encrypt._main()


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from dask.distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = pathlib.Path(tmp_s)
        make_dataset(tmp / "raw", args.rows, args.files)
        # The tenant keyring, sealed under a password kept in a file only the workers read.
        password_file = tmp / "keyring.password"
        password_file.write_text(os.urandom(18).hex() + "\n")
        os.chmod(password_file, 0o600)
        with cellar.Keyring.create() as kr:
            export = tmp / "keyring.export"
            export.write_bytes(kr.export(password=password_file.read_text().strip()))
            keys = make_column_keys(kr, {"email": cellar.CellMode.DETERMINISTIC,
                                         "ssn": cellar.CellMode.RANDOMIZED})
        t0 = time.perf_counter()
        cellar.Keyring.import_state(export.read_bytes(), password=password_file.read_text().strip()).close()
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        one_process(tmp / "raw", tmp / "single", keys, str(export), str(password_file))
        t_one = time.perf_counter() - t0
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            # warm the workers (imports, keyring open) so the timing is the data work
            client.run(warm, str(export), str(password_file))
            t0 = time.perf_counter()
            encrypt_dataset(str(tmp / "raw"), str(tmp / "enc"), keys, str(export), str(password_file))
            t_dask = time.perf_counter() - t0
            back = decrypt_dataset(str(tmp / "enc"), keys, str(export), str(password_file),
                                   {"email": pa.string(), "ssn": pa.string()}).compute()
        import pyarrow.parquet as pq
        orig = pq.read_table(tmp / "raw").to_pandas()
        ok = (back.sort_values("id")["email"].tolist() == orig.sort_values("id")["email"].tolist())
        print(f"rows {args.rows} in {args.files} files; keyring open {t_open * 1e3:.0f} ms")
        print(f"one process: {t_one:.2f} s ({args.rows / t_one:,.0f} rows/s)")
        print(f"dask, {args.workers} worker processes: {t_dask:.2f} s ({args.rows / t_dask:,.0f} rows/s), "
              f"{t_one / t_dask:.2f}x one process; read back equal: {ok}")


if __name__ == "__main__":
    main()
