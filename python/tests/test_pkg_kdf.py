"""Format v2 (SPEC 10): the SP 800-108 counter-mode KDF, computed independently with Python's
`hmac` (pkg_helpers.sp800_108_kdf), first checked on the NIST CAVP vectors Cellar's Rust tests
run through the module, then compared with every v2 derivation Cellar makes: derive v2, GCM page
subkeys (trailer 0x02), DETERMINISTIC subkeys (header 0x03) and blind index v2."""
import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import cellar
from cellar import CellCipher, CellMode, Key, KeyType, PageCipher, PageMode
from pkg_helpers import REPO, approved, raw_of, sp800_108_kdf

CAVP = REPO / "tests" / "data" / "KBKDF_CTR_HMAC_SHA256_R32.txt"


def cavp_records():
    rec, out = {}, []
    for line in CAVP.read_text().splitlines():
        line = line.strip()
        if " = " not in line:
            continue
        k, v = line.split(" = ", 1)
        rec[k] = v
        if k == "KO":
            out.append(rec)
            rec = {}
    return out


def test_python_kdf_matches_cavp():
    recs = cavp_records()
    assert len(recs) == 40
    for r in recs:
        ki, fixed, ko = bytes.fromhex(r["KI"]), bytes.fromhex(r["FixedInputData"]), bytes.fromhex(r["KO"])
        out, i = b"", 1
        while len(out) < len(ko):
            out += hmac.new(ki, struct.pack(">I", i) + fixed, hashlib.sha256).digest()
            i += 1
        assert out[: len(ko)] == ko and int(r["L"]) == 8 * len(ko)


def test_derive_v2_is_sp800_108():
    raw = os.urandom(32)
    with Key.import_raw(KeyType.AES256, raw) as parent:
        for kt, size in ((KeyType.AES256, 32), (KeyType.AES256_XTS, 64)):
            label = b"orders.card_number"
            with parent.derive(label, key_type=kt) as child:
                approved()
                assert raw_of(child) == sp800_108_kdf(raw, b"cellar derive v2", bytes([kt]) + label, size)


def test_page_v2_subkey_is_sp800_108():
    raw = os.urandom(32)
    with Key.import_raw(KeyType.AES256, raw) as key:
        pc = PageCipher(key, PageMode.GCM, file_id=0x0102030405060708, key_version=9)
        payload = os.urandom(4096 - 48)
        ct = pc.encrypt(77, payload + bytes(48))
        approved()
        t = ct[-48:]
        assert t[0] == 0x02
        salt, nonce, tag = t[8:20], t[20:32], t[32:48]
        sub = sp800_108_kdf(raw, b"cellar page v2", salt + struct.pack("<Q", 0x0102030405060708), 32)
        assert AESGCM(sub).decrypt(nonce, ct[:-48] + tag, t[:20] + struct.pack("<Q", 77)) == payload


def test_deterministic_v2_subkeys_are_sp800_108():
    raw = os.urandom(32)
    ctx, value = b"tenant|users|email|", b"carol@example.com"
    with Key.import_raw(KeyType.AES256, raw) as key:
        ct = CellCipher(key, CellMode.DETERMINISTIC, key_version=4).encrypt(value, ctx)
    enc, mac, ivk = (sp800_108_kdf(raw, b"cellar cell det v2", x, 32) for x in (b"enc", b"mac", b"iv"))
    h = b"\x03" + struct.pack(">I", 4)
    L = struct.pack(">I", len(ctx))
    assert ct[:5] == h
    iv, c, tag = ct[5:21], ct[21:-32], ct[-32:]
    assert iv == hmac.new(ivk, h + L + ctx + value, hashlib.sha256).digest()[:16]
    assert tag == hmac.new(mac, h + iv + c + L + ctx, hashlib.sha256).digest()
    d = Cipher(algorithms.AES(enc), modes.CBC(iv)).decryptor()
    padded = d.update(c) + d.finalize()
    assert padded[: len(value)] == value


def test_blind_index_v2_is_sp800_108():
    raw = os.urandom(32)
    ctx = b"users.email"
    with Key.import_raw(KeyType.AES256, raw) as key:
        got = cellar.blind_index(key, b"dave", ctx, length=32)
        approved()
        assert cellar.blind_index(key, b"dave", ctx, length=32, version=2) == got
        v1 = cellar.blind_index(key, b"dave", ctx, length=32, version=1)
        assert cellar.last_operation_approved() is False
        with pytest.raises(ValueError):
            cellar.blind_index(key, b"dave", ctx, version=3)
    bkey = sp800_108_kdf(raw, b"cellar blind index v2", b"", 32)
    assert got == hmac.new(bkey, struct.pack(">I", len(ctx)) + ctx + b"dave", hashlib.sha256).digest()
    assert v1 != got
