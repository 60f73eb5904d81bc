"""The Python KMIP API (cellar.kmip) against a live PyKMIP server started by `make test-kmip`
(KMIP_DIR holds its certificates, KMIP_PORT its port)."""

import os
import threading

import pytest

import cellar
from cellar import kmip
from cellar.kmip import KmipClient, KmipMode

DIR = os.environ.get("KMIP_DIR")
PORT = int(os.environ.get("KMIP_PORT", "0"))

if not DIR or not PORT:
    pytest.fail("KMIP_DIR and KMIP_PORT must be set (make test-kmip starts the server)", pytrace=False)


def client(cert="client", ca="ca"):
    return KmipClient("127.0.0.1", PORT, cert=f"{DIR}/{cert}.pem", key=f"{DIR}/{cert}.key", ca=f"{DIR}/{ca}.pem",
                      io_timeout_ms=10000)


_n = [0]


def name(what):
    _n[0] += 1
    return f"cellar-py-{os.getpid()}-{_n[0]}-{what}"


def test_check_reports_fips_tls():
    with client() as c:
        s = c.check()
        assert s.tls_fips is True
        assert s.tls_version in ("TLS 1.2", "TLS 1.3")
        assert s.kmip_version >= (1, 2)
        assert "KmipClient" in repr(c)


@pytest.mark.parametrize("mode", [KmipMode.FETCH, KmipMode.DELEGATED])
def test_round_trip_lock_unlock_export_import(mode):
    c = client()
    kr = c.create_keyring(name("py"), mode)
    dk = cellar.Key.generate()
    blob = kr.wrap(dk)
    assert cellar.last_operation_approved() is (mode is KmipMode.FETCH)
    back, version = kr.unwrap(blob)
    assert back.id == dk.id and version == 1
    m, uid = kmip.version_uid(kr, 1)
    assert m is mode and uid
    kr.lock()
    with pytest.raises(cellar.TenantLockedError):
        kr.unwrap(blob)
    assert c.unlock(kr) == 1
    assert kr.unwrap(blob)[0].id == dk.id
    root = cellar.Key.generate()
    sealed = kr.export(root_key=root)
    again = cellar.Keyring.import_state(sealed, root_key=root)
    with pytest.raises(cellar.TenantLockedError):
        again.unwrap(blob)
    assert c.unlock(again) == 1
    assert again.unwrap(blob)[0].id == dk.id
    # Rotate, adopt by uid in a second keyring, retire with destroy.
    v2 = c.rotate(kr, name("rot"), mode=mode)
    assert v2 == 2
    other = c.adopt_keyring(uid=uid, mode=mode)
    assert other.unwrap(blob)[0].id == dk.id
    kmip.retire(kr, 1, destroy=True)
    with pytest.raises(cellar.KeyNotFoundError):
        kr.unwrap(blob)


def test_bad_input_is_refused():
    c = client()
    with pytest.raises(TypeError):
        c.create_keyring(name("x"), 1)
    with pytest.raises(cellar.InvalidArgumentError):
        c.adopt_keyring(name="a", uid="1")
    with pytest.raises(cellar.KeyNotFoundError):
        c.adopt_keyring(name=name("absent"))
    with pytest.raises(ValueError):
        KmipClient("127.0.0.1", 0, cert="a", key="b", ca="c")
    with pytest.raises(cellar.InvalidArgumentError):
        KmipClient("127.0.0.1", PORT, cert="/nonexistent.pem", key="/nonexistent.key", ca=f"{DIR}/ca.pem")
    foreign = client(ca="other-ca")
    with pytest.raises(cellar.ProviderError) as e:
        foreign.check()
    assert "not trusted" in str(e.value)


def test_threads_share_one_keyring():
    c = client()
    kr = c.create_keyring(name("mt"), KmipMode.DELEGATED)
    errors = []

    def work():
        try:
            for _ in range(5):
                dk = cellar.Key.generate()
                assert kr.unwrap(kr.wrap(dk))[0].id == dk.id
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
