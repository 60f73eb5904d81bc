"""Parquet with Cellar keys: pyarrow's modular encryption with keys wrapped by a Cellar keyring,
and Parquet files whose sensitive columns are Cellar cells.

Needs ``pyarrow`` (``pip install 'cellar[arrow]'``).

**Parquet modular encryption** (``pyarrow.parquet.encryption``): :class:`KeyringKmsClient` is a
``KmsClient`` whose master keys are Cellar keyrings, named by ``master_key_identifier``. Parquet
generates the data keys (footer and column keys, or with double wrapping the key-encryption keys)
and asks the client to wrap them; Cellar wraps each with AES-KWP under the keyring's active
version. A master key identifier is ``NAME`` (the keyring's active version, whichever it is) or
``NAME@N`` (keyring version ``N`` exactly: a writer refuses to wrap unless ``N`` is the active
version, and a reader refuses a key that version ``N`` did not wrap). A keyring version can be
held in software, in an HSM through PKCS#11 or in a KMIP server: the client only asks the keyring
to wrap and unwrap, so an HSM-held version wraps Parquet's keys inside the token::

    import pyarrow.parquet as pq, pyarrow.parquet.encryption as pe
    from cellar import parquet as cpq

    factory = cpq.crypto_factory({"tenant-a": keyring})
    enc = cpq.encryption_configuration(footer_key="tenant-a", column_keys={"tenant-a": ["email"]})
    props = factory.file_encryption_properties(cpq.KMS_CONNECTION, enc)
    pq.write_table(table, "t.parquet", encryption_properties=props)
    props = factory.file_decryption_properties(cpq.KMS_CONNECTION, pe.DecryptionConfiguration())
    table = pq.read_table("t.parquet", decryption_properties=props)

Parquet's data keys must be 256-bit for this client and wrapped directly by it
(``data_key_length_bits=256, double_wrapping=False``, which :func:`encryption_configuration`
sets): Cellar wraps AES-256 keys only, and double wrapping would hand it 128-bit key-encryption
keys.

**The wrapped-key string** (what the client returns and Parquet stores in its key material, for
a Java ``KmsClient`` in Spark or Trino to read): ``"cellar:kwp1:" + base64(blob)`` where ``blob``
is the wrapped-key envelope ``cellar_keyring_wrap`` returns (docs/FORMATS.md 1.3 and 1.5: 'W',
format 1, the id of the keyring version's key, AES-KWP of key type, version, key id and the 32
key bytes). A Java
client unwraps it by base64-decoding the rest of the string and calling
``cellar_keyring_unwrap`` on the keyring named by ``master_key_identifier`` (through JNI/JNA or
a service that holds the keyring), then exporting the 32 raw bytes. Rotation is transparent:
the blob names the tenant version it was wrapped under.

**Cellar cells in Parquet** (:func:`write_table` / :func:`read_table`): the chosen columns are
encrypted cell by cell (:mod:`cellar.arrow`) before the file is written, each with its own fresh
AES-256 column key (or one you pass, for deterministic lookups across files); the column key is
stored wrapped by the keyring in the column's field metadata (``cellar.key``, base64), beside
``cellar.mode``, ``cellar.key_version`` and the original type. The file is an ordinary Parquet
file: any reader sees ciphertext bytes, and :func:`read_table` with the keyring decrypts the
columns it is asked for, one by one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pyarrow.parquet.encryption as pe
except ImportError as exc:  # pragma: no cover - exercised only without pyarrow
    raise ImportError(
        "cellar.parquet needs pyarrow: pip install 'cellar[arrow]' (or pip install pyarrow)"
    ) from exc

from . import arrow as _arrow
from .cells import CellCipher, CellMode
from .errors import CellarError
from .keyring import Keyring
from .keys import Key, KeyType

__all__ = [
    "KeyringKmsClient",
    "KMS_CONNECTION",
    "WRAPPED_KEY_PREFIX",
    "crypto_factory",
    "encryption_configuration",
    "write_table",
    "read_table",
    "encrypted_columns",
]

#: Prefix of the wrapped-key strings :class:`KeyringKmsClient` returns.
WRAPPED_KEY_PREFIX = "cellar:kwp1:"
#: Field metadata keys written by :func:`write_table`.
META_KEY = b"cellar.key"
META_KEY_VERSION = b"cellar.key_version"

#: A KmsConnectionConfig for the factories (the keyrings are local: no URL or token is used).
KMS_CONNECTION = pe.KmsConnectionConfig()


class KeyringKmsClient(pe.KmsClient):
    """A ``pyarrow.parquet.encryption.KmsClient`` backed by Cellar keyrings.

    ``keyrings`` maps keyring names to :class:`~cellar.Keyring` objects (the client does not
    own them). A master key identifier is ``NAME`` or ``NAME@N``. ``wrap_key`` wraps under the
    keyring's active version (``NAME@N``: only if ``N`` is the active version); ``unwrap_key``
    finds the version in the blob (so files outlive rotations until the version is retired;
    ``NAME@N`` also requires that it is ``N``).
    Errors are raised as the Cellar exception (pyarrow reports them as ``OSError`` or
    ``ArrowException`` to the reader)."""

    def __init__(self, keyrings: Mapping[str, Keyring]) -> None:
        pe.KmsClient.__init__(self)
        for name, kr in keyrings.items():
            if not isinstance(name, str) or not name or "@" in name:
                raise ValueError(f"keyring name {name!r}: a non-empty string without '@' "
                                 "(NAME@N names version N of keyring NAME)")
            if not isinstance(kr, Keyring):
                raise TypeError(f"keyrings[{name!r}] must be a cellar.Keyring")
        self._keyrings = dict(keyrings)

    def _keyring(self, master_key_identifier: str) -> Tuple[Keyring, Optional[int]]:
        """The keyring an identifier names, and the version it pins (None: the active one)."""
        name, sep, ver = str(master_key_identifier).partition("@")
        version: Optional[int] = None
        if sep:
            if not ver.isdecimal() or not 1 <= int(ver) <= 0xFFFFFFFF:
                raise ValueError(f"master key {master_key_identifier!r}: the version after '@' "
                                 "must be a keyring version number (1 to 2^32-1)")
            version = int(ver)
        try:
            return self._keyrings[name], version
        except KeyError:
            raise KeyError(f"no Cellar keyring for master key {master_key_identifier!r}") from None

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        kr, version = self._keyring(master_key_identifier)
        if len(key_bytes) != 32:
            raise ValueError(
                f"Parquet handed a {8 * len(key_bytes)}-bit key; Cellar wraps AES-256 keys only: "
                f"use data_key_length_bits=256 and double_wrapping=False (cellar.parquet."
                f"encryption_configuration sets both)")
        if version is not None and version != kr.active_version:
            raise ValueError(
                f"master key {master_key_identifier!r} names keyring version {version}, but the "
                f"active version is {kr.active_version}: Cellar wraps only under the active "
                "version (name the active version, or the keyring alone)")
        with Key.import_raw(KeyType.AES256, key_bytes) as k:
            blob = kr.wrap(k)
        return WRAPPED_KEY_PREFIX + base64.b64encode(blob).decode("ascii")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        kr, version = self._keyring(master_key_identifier)
        if not isinstance(wrapped_key, str) or not wrapped_key.startswith(WRAPPED_KEY_PREFIX):
            raise ValueError("not a Cellar wrapped key (expected the prefix "
                             f"{WRAPPED_KEY_PREFIX!r})")
        try:
            blob = base64.b64decode(wrapped_key[len(WRAPPED_KEY_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("malformed Cellar wrapped key (bad base64)") from None
        key, got = kr.unwrap(blob)
        with key:
            if version is not None and got != version:
                raise ValueError(f"master key {master_key_identifier!r} names keyring version "
                                 f"{version}, but this key was wrapped by version {got}")
            raw = key.export_raw()  # Parquet needs the bytes: the one place they leave Cellar
        try:
            return bytes(raw)
        finally:
            raw[:] = bytes(len(raw))


def crypto_factory(keyrings: Mapping[str, Keyring]) -> "pe.CryptoFactory":
    """A ``pyarrow.parquet.encryption.CryptoFactory`` whose KMS client is a
    :class:`KeyringKmsClient` over ``keyrings``."""
    keyrings = dict(keyrings)
    KeyringKmsClient(keyrings)  # check the mapping now, not at first use

    def make(_config: "pe.KmsConnectionConfig") -> KeyringKmsClient:
        return KeyringKmsClient(keyrings)

    return pe.CryptoFactory(make)


def encryption_configuration(footer_key: str, column_keys: Optional[Mapping[str, List[str]]] = None,
                             **kwargs: Any) -> "pe.EncryptionConfiguration":
    """``pe.EncryptionConfiguration`` with 256-bit data keys (what Cellar wraps) and the
    authenticated GCM algorithm; other keyword arguments are passed on."""
    kwargs.setdefault("data_key_length_bits", 256)
    # Double wrapping hands the KMS 128-bit key-encryption keys; single wrapping hands it the
    # 256-bit data keys themselves (wrapped by the keyring, a local call: no round trip saved).
    kwargs.setdefault("double_wrapping", False)
    kwargs.setdefault("encryption_algorithm", "AES_GCM_V1")
    if column_keys is not None:
        kwargs["column_keys"] = {k: list(v) for k, v in column_keys.items()}
    return pe.EncryptionConfiguration(footer_key=footer_key, **kwargs)


# Cellar cells in Parquet -----------------------------------------------------------------------------


ColumnSpec = Union[CellMode, int, Tuple[Union[CellMode, int], Key]]


def write_table(table: "pa.Table", where: Any, keyring: Keyring, columns: Mapping[str, ColumnSpec], *,
                context: Any = None, blind_indexes: Optional[Mapping[str, Tuple[Key, str]]] = None,
                row_context: Optional[str] = None, **parquet_kwargs: Any) -> Dict[str, bytes]:
    """Writes ``table`` to ``where`` (a path or file, as ``pyarrow.parquet.write_table``) with
    the ``columns`` encrypted as Cellar cells.

    ``columns`` maps a column name to a :class:`~cellar.CellMode`, or to ``(mode, key)`` to use
    a given AES-256 column key (the same key in every file of a dataset keeps DETERMINISTIC
    columns and blind indexes comparable across files); otherwise a fresh key is generated per
    column. Each column key is stored wrapped by ``keyring`` in the field metadata. ``context``
    and ``row_context`` (a column whose value, such as the row key, is bound into each cell of
    its row) as in :func:`cellar.arrow.encrypt_table`. Returns the wrapped column keys by
    column name."""
    if not isinstance(keyring, Keyring):
        raise TypeError("keyring must be a cellar.Keyring")
    ciphers: Dict[str, CellCipher] = {}
    wrapped: Dict[str, bytes] = {}
    owned: List[Key] = []
    try:
        for name, spec in columns.items():
            if isinstance(spec, tuple):
                mode, key = spec
                if not isinstance(key, Key):
                    raise TypeError(f"columns[{name!r}]: the key must be a cellar.Key")
            else:
                mode, key = spec, Key.generate(KeyType.AES256)
                owned.append(key)
            ciphers[name] = CellCipher(key, CellMode(mode), key_version=1)
            wrapped[name] = keyring.wrap(key)
        out = _arrow.encrypt_table(table, ciphers, context=context, blind_indexes=blind_indexes,
                                   row_context=row_context)
        fields = []
        for field in out.schema:
            if field.name in wrapped:
                meta = dict(field.metadata or {})
                meta[META_KEY] = base64.b64encode(wrapped[field.name])
                meta[META_KEY_VERSION] = b"1"
                field = field.with_metadata(meta)
            fields.append(field)
        out = pa.Table.from_arrays(out.columns, schema=pa.schema(fields, metadata=out.schema.metadata))
        pq.write_table(out, where, **parquet_kwargs)
        return wrapped
    finally:
        for c in ciphers.values():
            c.close()
        for k in owned:
            k.close()


def encrypted_columns(schema: "pa.Schema") -> List[str]:
    """Names of the columns of ``schema`` that :func:`write_table` encrypted."""
    return [f.name for f in schema if f.metadata and META_KEY in f.metadata]


def read_table(source: Any, keyring: Keyring, columns: Optional[Iterable[str]] = None, *,
               decrypt: Optional[Iterable[str]] = None, context: Any = None,
               **parquet_kwargs: Any) -> "pa.Table":
    """Reads a file written by :func:`write_table`: the ``columns`` asked for (all when None)
    are read with ``pyarrow.parquet.read_table``, and those of them that hold Cellar cells
    (or only the names in ``decrypt``) are decrypted with their column keys, unwrapped by
    ``keyring``, and get their original type back. A keyring that does not hold the wrapping
    version raises :class:`~cellar.KeyNotFoundError` (or :class:`~cellar.AuthenticationError`
    for a foreign or tampered key or cell); no partial plaintext is returned."""
    if not isinstance(keyring, Keyring):
        raise TypeError("keyring must be a cellar.Keyring")
    wanted_cols = list(columns) if columns is not None else None
    read_cols = wanted_cols
    if wanted_cols is not None:
        # a row-context column needed by a requested encrypted column is read too
        schema = pq.read_schema(source)
        for name in list(wanted_cols):
            i = schema.get_field_index(name)
            meta = schema.field(i).metadata if i >= 0 else None
            rc = meta.get(_arrow.META_ROW_CONTEXT) if meta else None
            if rc is not None and rc.decode() not in read_cols:
                read_cols = read_cols + [rc.decode()]
    table = pq.read_table(source, columns=read_cols, **parquet_kwargs)
    names = encrypted_columns(table.schema)
    if decrypt is not None:
        wanted = list(decrypt)
        missing = [n for n in wanted if n not in names]
        if missing:
            raise KeyError(f"not Cellar-encrypted columns of this table: {missing}")
        names = wanted
    ciphers: Dict[str, CellCipher] = {}
    try:
        for name in names:
            meta = table.schema.field(name).metadata
            try:
                blob = base64.b64decode(meta[META_KEY], validate=True)
                mode = CellMode[meta[_arrow.META_MODE].decode()]
                kv = int(meta.get(META_KEY_VERSION, b"1"))
            except (KeyError, ValueError, binascii.Error):
                raise ValueError(f"column {name!r}: malformed Cellar metadata") from None
            key, _tenant_version = keyring.unwrap(blob)
            with key:
                ciphers[name] = CellCipher(key, mode, key_version=kv)
        out = _arrow.decrypt_table(table, ciphers, context=context)
    finally:
        for c in ciphers.values():
            c.close()
    fields = []
    for field in out.schema:
        if field.name in ciphers and field.metadata:
            meta = {k: v for k, v in field.metadata.items() if k not in (META_KEY, META_KEY_VERSION)}
            field = field.with_metadata(meta) if meta else field.remove_metadata()
        fields.append(field)
    out = pa.Table.from_arrays(out.columns, schema=pa.schema(fields, metadata=out.schema.metadata))
    return out.select(wanted_cols) if wanted_cols is not None else out
