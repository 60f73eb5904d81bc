"""The tenant keyring: lifecycle, lock/unlock, retire, export/import, and external key providers
written as Python callables (an AES-KWP "HSM" from `cryptography`)."""
import gc
import os
import threading

import pytest
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

import cellar
from cellar import Key, Keyring, KeyType
from pkg_helpers import approved, raw_of

PW = "correct horse battery staple"
FAST = 100_000


def test_lifecycle():
    with Key.generate() as customer:
        kr = Keyring.create(customer)
        approved()
    assert kr.active_version == 1 and kr.versions == [1] and not kr.locked
    info = kr.version_info(1)
    assert info.active and not (info.provider or info.locked or info.retired)
    with Key.generate(KeyType.AES256_XTS) as dek:
        b1 = kr.wrap(dek)
        approved()
        assert len(b1) == 114 and b1[2:18] == info.key_id
        assert kr.rotate() == 2
        approved()
        assert kr.active_version == 2 and kr.versions == [1, 2]
        back, v = kr.unwrap(b1)  # old versions keep unwrapping
        approved()
        assert v == 1 and back.id == dek.id
        b2 = kr.rewrap(b1)
        approved()
        assert b2[2:18] == kr.version_info(2).key_id
        assert kr.unwrap(b2)[1] == 2
        with pytest.raises(cellar.InvalidArgumentError):
            kr.retire(2)  # the active version
        kr.retire(1)
        assert kr.versions == [2] and kr.version_info(1).retired
        with pytest.raises(cellar.KeyNotFoundError) as e:
            kr.unwrap(b1)  # crypto-shredded
        assert e.value.status == 7 and isinstance(e.value, LookupError)
        with pytest.raises(cellar.KeyNotFoundError):
            kr.version_info(99)
        with pytest.raises(cellar.AuthenticationError):
            kr.unwrap(b2[:-1] + bytes([b2[-1] ^ 1]))
    kr.close()


def test_rotate_with_customer_key_and_bad_keys():
    kr = Keyring.create()
    with Key.generate() as k:
        assert kr.rotate(k) == 2
        assert kr.version_info(2).key_id == k.id
        with pytest.raises(cellar.InvalidKeyError):
            kr.rotate(k)  # already a version
    with Key.generate(KeyType.AES256_XTS) as xts:
        with pytest.raises(cellar.InvalidKeyError):
            Keyring.create(xts)
    with pytest.raises(TypeError):
        kr.rotate(b"raw bytes are not keys")


def test_lock_and_unlock():
    with Key.generate() as tenant, Key.generate() as dek:
        kr = Keyring.create(tenant)
        blob = kr.wrap(dek)
        kr.lock()
        assert kr.locked and kr.active_version == 1
        with pytest.raises(cellar.TenantLockedError) as e:
            kr.wrap(dek)
        assert e.value.status == 8
        with pytest.raises(cellar.TenantLockedError):
            kr.unwrap(blob)
        with Key.generate() as stranger:
            with pytest.raises(cellar.KeyNotFoundError):
                kr.unlock(stranger)
        kr.unlock(tenant)
        assert not kr.locked
        assert kr.unwrap(blob)[0].id == dek.id


def test_export_import():
    with Key.generate() as root, Key.generate() as dek:
        kr = Keyring.create()
        kr.rotate()
        blob = kr.wrap(dek)
        sealed_pw = kr.export(password=PW, iterations=FAST)
        approved()
        sealed_root = kr.export(root_key=root)
        for restored in (Keyring.import_state(sealed_pw, password=PW),
                         Keyring.import_state(bytearray(sealed_root), root_key=root)):
            approved()
            assert restored.versions == [1, 2] and restored.active_version == 2
            assert restored.unwrap(blob)[0].id == dek.id
        with pytest.raises(cellar.AuthenticationError):
            Keyring.import_state(sealed_pw, password=PW + "x")
        with Key.generate() as other:
            with pytest.raises(cellar.AuthenticationError):
                Keyring.import_state(sealed_root, root_key=other)
        with pytest.raises(ValueError, match="exactly one"):
            kr.export()
        with pytest.raises(ValueError, match="exactly one"):
            Keyring.import_state(sealed_root, password=PW, root_key=root)
        kr.lock()
        with pytest.raises(cellar.TenantLockedError):
            kr.export(root_key=root)


class Hsm:
    """A provider: AES-KWP under a key the library never sees."""

    def __init__(self):
        self.key = os.urandom(32)
        self.calls = 0
        self.lock = threading.Lock()
        self.fail = None  # an exception to raise, or a bad value to return

    def wrap(self, record):
        assert isinstance(record, bytearray) and len(record) in (53, 85)
        with self.lock:
            self.calls += 1
        if isinstance(self.fail, BaseException):
            raise self.fail
        if self.fail is not None:
            return self.fail
        return aes_key_wrap_with_padding(self.key, bytes(record))

    def unwrap(self, wrapped):
        with self.lock:
            self.calls += 1
        try:
            return aes_key_unwrap_with_padding(self.key, bytes(wrapped))
        except InvalidUnwrap:
            raise cellar.AuthenticationError("the HSM rejected the blob") from None


# Callback exceptions must never reach ctypes' "Exception ignored" path.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def test_provider_round_trip():
    kr = Keyring.create()
    hsm = Hsm()
    kid = os.urandom(16)
    v = kr.add_provider(hsm.wrap, hsm.unwrap, key_id=kid)
    assert cellar.last_operation_approved() is False  # the provider wrapped (finding 4)
    assert v == 2 and kr.active_version == 2 and hsm.calls == 2  # checked with one round trip
    info = kr.version_info(2)
    assert info.provider and info.key_id == kid
    with Key.generate() as dek:
        blob = kr.wrap(dek)
        # The blob carries the provider's own output: open it with the HSM key.
        record = aes_key_unwrap_with_padding(hsm.key, blob[18:])
        assert record[5:21] == dek.id and record[21:] == raw_of(dek)
        back, version = kr.unwrap(blob)
        assert cellar.last_operation_approved() is False  # provider-performed unwrap
        assert version == 2 and back.id == dek.id
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(cellar.AuthenticationError):
            kr.unwrap(tampered)


@pytest.mark.parametrize("fail, cause", [
    (RuntimeError("HSM exploded"), RuntimeError),
    ("not bytes", TypeError),
    (b"", ValueError),  # an empty result is not a wrapping
    (bytes(600), ValueError),  # more than the 512 bytes allowed
])
def test_failing_provider_is_provider_error(fail, cause):
    kr = Keyring.create()
    hsm = Hsm()
    hsm.fail = fail
    with pytest.raises(cellar.ProviderError) as e:
        kr.add_provider(hsm.wrap, hsm.unwrap)
    assert e.value.status == 11 and isinstance(e.value.__cause__, cause)
    assert kr.versions == [1] and kr.active_version == 1  # nothing changed
    # Failing after registration: the operation fails, the keyring stays usable.
    hsm.fail = None
    kr.add_provider(hsm.wrap, hsm.unwrap)
    hsm.fail = fail
    with Key.generate() as dek:
        with pytest.raises(cellar.ProviderError):
            kr.wrap(dek)
        hsm.fail = None
        assert kr.unwrap(kr.wrap(dek))[0].id == dek.id


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_interrupt_in_a_callback_comes_back_as_itself(exc):
    """Ctrl-C inside a callback cannot cross C; the call fails cleanly (keyring unchanged) and
    the KeyboardInterrupt is raised again once back in Python."""
    kr = Keyring.create()
    hsm = Hsm()
    hsm.fail = exc()
    with pytest.raises(exc):
        kr.add_provider(hsm.wrap, hsm.unwrap)
    assert kr.versions == [1]
    hsm.fail = None
    assert kr.add_provider(hsm.wrap, hsm.unwrap) == 2


def test_provider_callbacks_stay_alive_and_reattach():
    kr = Keyring.create()
    hsm = Hsm()
    kid = os.urandom(16)
    # Lambdas referenced by nothing but the keyring.
    kr.add_provider(lambda r: hsm.wrap(r), lambda w: hsm.unwrap(w), key_id=kid)
    gc.collect()
    with Key.generate() as dek, Key.generate() as root:
        blob = kr.wrap(dek)
        kr.lock(force=True)  # version 1 was generated here and never exported
        with pytest.raises(cellar.TenantLockedError):
            kr.unwrap(blob)
        assert kr.unlock_provider(kid, hsm.wrap, hsm.unwrap) == 2
        assert kr.unwrap(blob)[0].id == dek.id
        restored = Keyring.import_state(kr.export(root_key=root), root_key=root)
        assert restored.version_info(2).locked and restored.locked  # detached
        with pytest.raises(cellar.KeyNotFoundError):
            restored.unlock_provider(os.urandom(16), hsm.wrap, hsm.unwrap)
        restored.unlock_provider(kid, hsm.wrap, hsm.unwrap)
        assert restored.unwrap(blob)[0].id == dek.id
    with pytest.raises(TypeError):
        kr.add_provider("wrap", "unwrap")
    with pytest.raises(ValueError, match="16 bytes"):
        kr.add_provider(hsm.wrap, hsm.unwrap, key_id=b"short")


def test_provider_from_many_threads():
    kr = Keyring.create()
    hsm = Hsm()
    kr.add_provider(hsm.wrap, hsm.unwrap)
    errors = []

    def work():
        try:
            for _ in range(50):
                with Key.generate() as dek:
                    back, v = kr.unwrap(kr.wrap(dek))
                    assert back.id == dek.id and v == 2
                    assert cellar.last_operation_approved() is False  # provider-performed
                    back.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert hsm.calls == 2 + 6 * 50 * 2
