"""Tenant keys held by an enterprise key manager over KMIP (the built-in KMIP provider).

A :class:`KmipClient` holds the server address, the client certificate and key, the CA bundle
and timeouts; its TLS runs inside the same AWS-LC FIPS module as the rest of Cellar (rustls on
the aws-lc-rs FIPS provider). Keyring versions are server keys in one of two modes
(:class:`KmipMode`):

* ``FETCH``: the key's material is fetched (KMIP Get) when the version is attached, and data
  keys are wrapped locally by the module (blobs identical to a local version's; indicator 1);
* ``DELEGATED``: the server encrypts and decrypts data keys (KMIP Encrypt/Decrypt, AES-GCM) and
  the tenant key never leaves it (indicator 0).

::

    from cellar.kmip import KmipClient, KmipMode
    client = KmipClient("kms.example", 5696, cert="client.pem", key="client.key", ca="ca.pem")
    kr = client.create_keyring("tenant-42", KmipMode.DELEGATED)
    blob = kr.wrap(data_key)
    kr.lock(); client.unlock(kr)            # reattaches the server keys
"""

from __future__ import annotations

import ctypes
import enum
from ctypes import Structure, byref, c_char_p, c_int32, c_size_t, c_uint16, c_uint32, c_void_p
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ._handles import Handle
from ._native import lib
from .errors import raise_status
from .keyring import Keyring

__all__ = ["KmipClient", "KmipMode", "KmipStatus"]

_RETIRE_DESTROY = 1
_BUFFER_TOO_SMALL = 3


class KmipMode(enum.IntEnum):
    """How a keyring version uses its server key (``CELLAR_KMIP_*``)."""

    FETCH = 1
    DELEGATED = 2

    def __str__(self) -> str:
        return self.name


class _Config(Structure):
    """``struct cellar_kmip_config``."""

    _fields_ = [
        ("host", c_char_p), ("host_len", c_size_t), ("port", c_uint16),
        ("server_name", c_char_p), ("server_name_len", c_size_t),
        ("client_cert_path", c_char_p), ("client_cert_path_len", c_size_t),
        ("client_key_path", c_char_p), ("client_key_path_len", c_size_t),
        ("ca_path", c_char_p), ("ca_path_len", c_size_t),
        ("connect_timeout_ms", c_uint32), ("io_timeout_ms", c_uint32), ("max_connections", c_uint32),
    ]


class _Status(Structure):
    """``struct cellar_kmip_status``."""

    _fields_ = [("tls_fips", c_int32), ("tls_version", c_uint16), ("cipher_suite", c_uint16), ("kmip_version", c_uint32)]


@dataclass(frozen=True)
class KmipStatus:
    """What :meth:`KmipClient.check` negotiated (public facts only)."""

    #: rustls reports the TLS connection as FIPS (AWS-LC FIPS provider, approved configuration).
    tls_fips: bool
    #: ``"TLS 1.3"`` or ``"TLS 1.2"``.
    tls_version: str
    #: The cipher suite's IANA code.
    cipher_suite: int
    #: The KMIP protocol version, ``(major, minor)``.
    kmip_version: Tuple[int, int]


def _free(ptr: int) -> None:
    lib.cellar_kmip_client_free(ptr)


def _mode(mode: Any) -> int:
    if not isinstance(mode, KmipMode):
        raise TypeError("mode must be a cellar.kmip.KmipMode")
    return int(mode)


def _text(value: Optional[str], name: str) -> Tuple[Optional[bytes], int]:
    if value is None:
        return None, 0
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str")
    b = value.encode()
    return b, len(b)


class KmipClient(Handle):
    """A KMIP client with a bounded pool of TLS connections; safe to share between threads.
    Keyring versions made with it keep their own reference, so the client may be closed while
    they are in use."""

    _kind = "kmip_client"

    def __init__(self, host: str, port: int = 5696, *, cert: str, key: str, ca: str,
                 server_name: Optional[str] = None, connect_timeout_ms: int = 0, io_timeout_ms: int = 0,
                 max_connections: int = 0) -> None:
        for name, v in (("host", host), ("cert", cert), ("key", key), ("ca", ca)):
            if not isinstance(v, str):
                raise TypeError(f"{name} must be a str")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("port must be 1 to 65535")
        for name, v in (("connect_timeout_ms", connect_timeout_ms), ("io_timeout_ms", io_timeout_ms),
                        ("max_connections", max_connections)):
            if not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
                raise ValueError(f"{name} must be a non-negative 32-bit integer")
        parts = [s.encode() for s in (host, server_name or "", cert, key, ca)]
        cfg = _Config(parts[0], len(parts[0]), port, parts[1], len(parts[1]), parts[2], len(parts[2]),
                      parts[3], len(parts[3]), parts[4], len(parts[4]), connect_timeout_ms, io_timeout_ms,
                      max_connections)
        out = c_void_p()
        st = lib.cellar_kmip_client_new(byref(cfg), byref(out))
        if st:
            raise_status(st)
        self._adopt(out.value, _free)
        self._where = f"{host}:{port}"

    def __repr__(self) -> str:
        return f"<cellar.KmipClient {self._where}{' closed' if self.closed else ''}>"

    def check(self) -> KmipStatus:
        """Connects and reports the negotiated TLS and KMIP versions: the check that TLS to the
        key manager runs inside the FIPS module (``tls_fips``)."""
        s = _Status()
        st = lib.cellar_kmip_client_check(self._handle, byref(s))
        if st:
            raise_status(st)
        tls = {0x0304: "TLS 1.3", 0x0303: "TLS 1.2"}.get(s.tls_version, hex(s.tls_version))
        return KmipStatus(bool(s.tls_fips), tls, s.cipher_suite, (s.kmip_version >> 16, s.kmip_version & 0xFFFF))

    def create_keyring(self, name: str, mode: KmipMode = KmipMode.FETCH) -> Keyring:
        """A keyring whose version 1 is a new AES-256 key created on the server under ``name``
        and activated."""
        n, nl = _text(name, "name")
        out = c_void_p()
        st = lib.cellar_keyring_new_kmip(self._handle, _mode(mode), n, nl, byref(out))
        if st:
            raise_status(st)
        return Keyring._from_handle(out.value)

    def adopt_keyring(self, *, name: Optional[str] = None, uid: Optional[str] = None,
                      mode: KmipMode = KmipMode.FETCH) -> Keyring:
        """A keyring whose version 1 is an existing active server key (bring your own key),
        named by ``name`` or ``uid`` (exactly one)."""
        n, nl = _text(name, "name")
        u, ul = _text(uid, "uid")
        out = c_void_p()
        st = lib.cellar_keyring_adopt_kmip(self._handle, _mode(mode), n, nl, u, ul, byref(out))
        if st:
            raise_status(st)
        return Keyring._from_handle(out.value)

    def rotate(self, keyring: Keyring, name: Optional[str] = None, *, uid: Optional[str] = None,
               adopt: bool = False, mode: KmipMode = KmipMode.FETCH) -> int:
        """Rotates ``keyring`` to a server key: a new one named ``name``, or with ``adopt=True``
        the existing key with that name (or ``uid``). Returns the new version."""
        n, nl = _text(name, "name")
        u, ul = _text(uid, "uid")
        v = c_uint32()
        if adopt:
            st = lib.cellar_keyring_rotate_kmip_adopt(keyring._handle, self._handle, _mode(mode), n, nl, u, ul, byref(v))
        else:
            if uid is not None:
                raise ValueError("uid needs adopt=True")
            st = lib.cellar_keyring_rotate_kmip(keyring._handle, self._handle, _mode(mode), n, nl, byref(v))
        if st:
            raise_status(st)
        return v.value

    def unlock(self, keyring: Keyring) -> int:
        """Reattaches the keyring's KMIP versions (after :meth:`Keyring.lock` or
        :meth:`Keyring.import_state`); returns how many. Revoked or destroyed keys raise and
        nothing is attached."""
        n = c_size_t()
        st = lib.cellar_keyring_unlock_kmip(keyring._handle, self._handle, byref(n))
        if st:
            raise_status(st)
        return n.value


def retire(keyring: Keyring, version: int, *, destroy: bool = False) -> None:
    """Retires a KMIP ``version``; with ``destroy=True`` the key is first revoked and destroyed on
    the server (irreversible, for every keyring and export that names it)."""
    st = lib.cellar_keyring_retire_kmip(keyring._handle, version, _RETIRE_DESTROY if destroy else 0)
    if st:
        raise_status(st)


def version_uid(keyring: Keyring, version: int) -> Tuple[KmipMode, str]:
    """The server unique identifier and mode of a KMIP ``version`` (works while locked)."""
    mode = c_uint32()
    n = c_size_t()
    st = lib.cellar_keyring_kmip_uid(keyring._handle, version, byref(mode), None, 0, byref(n))
    if st not in (0, _BUFFER_TOO_SMALL):
        raise_status(st)
    buf = ctypes.create_string_buffer(max(n.value, 1))
    st = lib.cellar_keyring_kmip_uid(keyring._handle, version, byref(mode), buf, n.value, byref(n))
    if st:
        raise_status(st)
    return KmipMode(mode.value), buf.raw[: n.value].decode()
