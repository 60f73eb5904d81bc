"""Cell encryption through ctypes, checked against an independent implementation of every
format (docs/FORMATS.md "Cells", SPEC section 5) built only from `cryptography` and `hmac`.

Always Encrypted: the implementation follows Microsoft's published description of
AEAD_AES_256_CBC_HMAC_SHA256 (learn.microsoft.com, "Always Encrypted cryptography") and is checked
against the vectors published in tedious's test suite
(test/unit/always-encrypted/aead-aes-256-cbc-hmac-256-*.js, github.com/tediousjs/tedious).
"""

import ctypes
import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RANDOMIZED, DETERMINISTIC, MSSQL_RANDOMIZED, MSSQL_DETERMINISTIC = 1, 2, 3, 4
MODES = [RANDOMIZED, DETERMINISTIC, MSSQL_RANDOMIZED, MSSQL_DETERMINISTIC]
OK, ERR_NULL, ERR_ARG, ERR_SMALL, ERR_AUTH, ERR_KEY = 0, 1, 2, 3, 4, 5
KEY_AES256, KEY_XTS = 1, 2

u8p = ctypes.POINTER(ctypes.c_uint8)
szp = ctypes.POINTER(ctypes.c_size_t)


def load():
    lib = ctypes.CDLL(os.environ.get("CELLAR_LIBRARY", "target/release/libcellar.so"))
    vp = ctypes.c_void_p
    sigs = {
        "cellar_key_import": (ctypes.c_int32, [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(vp)]),
        "cellar_key_generate": (ctypes.c_int32, [ctypes.c_uint32, ctypes.POINTER(vp)]),
        "cellar_key_free": (None, [vp]),
        "cellar_cell_cipher_new": (ctypes.c_int32, [vp, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(vp)]),
        "cellar_cell_cipher_free": (None, [vp]),
        "cellar_cell_encrypt": (ctypes.c_int32, [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, szp]),
        "cellar_cell_decrypt": (ctypes.c_int32, [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, szp]),
        "cellar_cell_ciphertext_len": (ctypes.c_size_t, [ctypes.c_uint32, ctypes.c_size_t]),
        "cellar_cell_plaintext_max_len": (ctypes.c_size_t, [ctypes.c_uint32, ctypes.c_size_t]),
        "cellar_cell_key_version": (ctypes.c_int32, [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint32)]),
        "cellar_cell_batch_ciphertext_len": (ctypes.c_size_t, [ctypes.c_uint32, szp, ctypes.c_size_t]),
        "cellar_cell_batch_plaintext_max_len": (ctypes.c_size_t, [ctypes.c_uint32, szp, ctypes.c_size_t]),
        "cellar_cell_encrypt_batch": (ctypes.c_int32, [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, szp, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, szp, szp]),
        "cellar_cell_decrypt_batch": (ctypes.c_int32, [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, szp, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, szp, szp]),
        "cellar_blind_index": (ctypes.c_int32, [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]),
        "cellar_blind_index_versioned": (ctypes.c_int32, [vp, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]),
        "cellar_last_operation_approved": (ctypes.c_int32, []),
        "cellar_last_error": (ctypes.c_size_t, [ctypes.c_char_p, ctypes.c_size_t]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


LIB = load()


def last_error():
    buf = ctypes.create_string_buffer(512)
    LIB.cellar_last_error(buf, len(buf))
    return buf.value.decode()


def approved():
    return LIB.cellar_last_operation_approved() == 1


def scheme_verdict(mode):
    """SPEC 10: only RANDOMIZED is an approved scheme; DETERMINISTIC and both Always Encrypted
    modes succeed with indicator 0."""
    return LIB.cellar_last_operation_approved() == (1 if mode == RANDOMIZED else 0)


class Key:
    def __init__(self, material=None, key_type=KEY_AES256):
        self.h = ctypes.c_void_p()
        if material is None:
            assert LIB.cellar_key_generate(key_type, ctypes.byref(self.h)) == OK
        else:
            assert LIB.cellar_key_import(key_type, material, len(material), ctypes.byref(self.h)) == OK

    def __del__(self):
        LIB.cellar_key_free(self.h)


class CellCipher:
    def __init__(self, key, mode, version):
        self.mode = mode
        self.key = key
        self.h = ctypes.c_void_p()
        st = LIB.cellar_cell_cipher_new(key.h, mode, version, ctypes.byref(self.h))
        if st != OK:
            raise OSError(st, last_error())

    def __del__(self):
        LIB.cellar_cell_cipher_free(self.h)

    def encrypt(self, context, pt):
        cap = LIB.cellar_cell_ciphertext_len(self.mode, len(pt))
        out = ctypes.create_string_buffer(cap)
        n = ctypes.c_size_t()
        st = LIB.cellar_cell_encrypt(self.h, context, len(context), pt, len(pt), out, cap, ctypes.byref(n))
        if st != OK:
            raise OSError(st, last_error())
        return out.raw[: n.value]

    def decrypt(self, context, ct):
        cap = LIB.cellar_cell_plaintext_max_len(self.mode, len(ct))
        out = ctypes.create_string_buffer(max(cap, 1))
        n = ctypes.c_size_t()
        st = LIB.cellar_cell_decrypt(self.h, context, len(context), ct, len(ct), out, cap, ctypes.byref(n))
        if st != OK:
            raise OSError(st, last_error())
        return out.raw[: n.value]

    def batch(self, fn, sizer, context, values):
        data = b"".join(values)
        offs = [0]
        for v in values:
            offs.append(offs[-1] + len(v))
        count = len(values)
        offsets = (ctypes.c_size_t * (count + 1))(*offs)
        cap = sizer(self.mode, offsets, count)
        out = ctypes.create_string_buffer(max(cap, 1))
        out_offsets = (ctypes.c_size_t * (count + 1))()
        n = ctypes.c_size_t()
        st = fn(self.h, context, len(context), data, offsets, count, out, cap, out_offsets, ctypes.byref(n))
        if st != OK:
            raise OSError(st, last_error())
        return [out.raw[out_offsets[i] : out_offsets[i + 1]] for i in range(count)]

    def encrypt_batch(self, context, values):
        return self.batch(LIB.cellar_cell_encrypt_batch, LIB.cellar_cell_batch_ciphertext_len, context, values)

    def decrypt_batch(self, context, values):
        return self.batch(LIB.cellar_cell_decrypt_batch, LIB.cellar_cell_batch_plaintext_max_len, context, values)


# ---------------------------------------------------------------------------------------------
# Independent implementation of the formats


def hkdf(ikm, info, n=32):
    return HKDF(algorithm=SHA256(), length=n, salt=b"\0" * 32, info=info).derive(ikm)


def hm(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def cbc_enc(key, iv, pt):
    p = padding.PKCS7(128).padder()
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(p.update(pt) + p.finalize()) + e.finalize()


def cbc_dec(key, iv, c):
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    u = padding.PKCS7(128).unpadder()
    return u.update(d.update(c) + d.finalize()) + u.finalize()


def ref_randomized_seal(k, version, context, pt, nonce):
    h = b"\x01" + struct.pack(">I", version)
    sealed = AESGCM(k).encrypt(nonce, pt, h + context)
    return h + nonce + sealed


def ref_randomized_open(k, version, context, ct):
    h = ct[:5]
    assert h == b"\x01" + struct.pack(">I", version)
    return AESGCM(k).decrypt(ct[5:17], ct[17:], h + context)


def kdf(k, label, context, n=32):
    """SP 800-108 counter-mode KDF, HMAC-SHA-256 (docs/FORMATS.md section 0)."""
    fixed = label + b"\0" + context + struct.pack(">I", 8 * n)
    out, i = b"", 1
    while len(out) < n:
        out += hm(k, struct.pack(">I", i), fixed)
        i += 1
    return out[:n]


def ref_det_keys(k, fmt=3):
    if fmt == 3:
        return [kdf(k, b"cellar cell det v2", x) for x in (b"enc", b"mac", b"iv")]
    return [hkdf(k, b"cellar cell det v1 " + x) for x in (b"enc", b"mac", b"iv")]


def ref_det(k, version, context, pt, fmt=3):
    enc, mac, ivk = ref_det_keys(k, fmt)
    h = bytes([fmt]) + struct.pack(">I", version)
    L = struct.pack(">I", len(context))
    iv = hm(ivk, h, L, context, pt)[:16]
    c = cbc_enc(enc, iv, pt)
    return h + iv + c + hm(mac, h, iv, c, L, context)


def ref_det_open(k, version, context, ct):
    enc, mac, ivk = ref_det_keys(k, ct[0])
    h, iv, c, tag = ct[:5], ct[5:21], ct[21:-32], ct[-32:]
    L = struct.pack(">I", len(context))
    assert h == bytes([ct[0]]) + struct.pack(">I", version) and ct[0] in (2, 3)
    assert hmac.compare_digest(tag, hm(mac, h, iv, c, L, context))
    pt = cbc_dec(enc, iv, c)
    assert hm(ivk, h, L, context, pt)[:16] == iv
    return pt


def ms_label(x):
    return (
        f"Microsoft SQL Server cell {x} key with encryption algorithm:AEAD_AES_256_CBC_HMAC_SHA256 and key length:256"
    ).encode("utf-16-le")


def ms_keys(k):
    return [hm(k, ms_label(x)) for x in ("encryption", "MAC", "IV")]


def ms_seal(k, pt, iv=None):
    enc, mac, ivk = ms_keys(k)
    if iv is None:
        iv = hm(ivk, pt)[:16]
    c = cbc_enc(enc, iv, pt)
    return b"\x01" + hm(mac, b"\x01", iv, c, b"\x01") + iv + c


def ms_open(k, ct):
    enc, mac, _ = ms_keys(k)
    assert ct[0] == 1
    m, iv, c = ct[1:33], ct[33:49], ct[49:]
    assert hmac.compare_digest(m, hm(mac, b"\x01", iv, c, b"\x01"))
    return cbc_dec(enc, iv, c)


def ref_blind(k, context, value, n, version=1):
    bkey = kdf(k, b"cellar blind index v2", b"") if version == 2 else hkdf(k, b"cellar blind index v1")
    return hm(bkey, struct.pack(">I", len(context)), context, value)[:n]


# ---------------------------------------------------------------------------------------------
# Always Encrypted known answers (tedious) and interoperability

AE_KEY = bytes.fromhex("ED6FBC93EECDE0BFC6494FFB2EDB7998B7E94EF71FEDE584741A855238F0155E")
AE_ENC = bytes.fromhex("561776D3B78B732A6AE06021FD262E41083F4767B16033E11448A552A44B6A27")
AE_MAC = bytes.fromhex("C0AC8ECBE7A488D628EC3AA33023B2D7C05BF6BE76521E5CD0AE89D38ACDB674")
AE_IVK = bytes.fromhex("0832D643924BFDE0B383A60B758A56C008CD56129818EE27F6CD38F2532149BC")
AE_DET_PT = bytes.fromhex("760061006C005F00640065007400650072006D005F003100")
AE_DET_CT = bytes.fromhex(
    "01FF7225AFAD66E77407B12830D160B8BBFC7E5D3DE93B76EB3F3DEC8A8939474D1671AD4BC7581B57BB02B8E2"
    "ED33ECA604F1C513C98FE09F2C6FB1517B9F32BCF743FEF572EBF06AD0CE603B8D67D17A"
)
AE_RND_PT = bytes.fromhex("760061006C005F00720061006E0064005F003200")
AE_RND_IV = bytes.fromhex("EA7774AA98A2057C89941A7DD60E5272")
AE_RND_CT = bytes.fromhex(
    "01800066F289EF215A964C9D9B8E76E9D9189CC7B2DADEF261AE83C3AB62EC4160EA7774AA98A2057C89941A7D"
    "D60E5272C191A85FE166937F7F94449F52D7640560C68E0FBD00E9084C0B54206C2190EC"
)


def test_reference_reproduces_the_published_vectors():
    assert ms_keys(AE_KEY) == [AE_ENC, AE_MAC, AE_IVK]
    assert ms_seal(AE_KEY, AE_DET_PT) == AE_DET_CT
    assert ms_seal(AE_KEY, AE_RND_PT, AE_RND_IV) == AE_RND_CT


def test_cellar_always_encrypted_matches_published_and_reference():
    k = Key(AE_KEY)
    det = CellCipher(k, MSSQL_DETERMINISTIC, 0)
    assert det.encrypt(b"", AE_DET_PT) == AE_DET_CT
    assert scheme_verdict(MSSQL_DETERMINISTIC)
    for mode in (MSSQL_RANDOMIZED, MSSQL_DETERMINISTIC):
        c = CellCipher(k, mode, 0)
        assert c.decrypt(b"", AE_RND_CT) == AE_RND_PT
        assert scheme_verdict(mode)
        assert c.decrypt(b"", AE_DET_CT) == AE_DET_PT
    rnd = CellCipher(k, MSSQL_RANDOMIZED, 0)
    for n in (0, 1, 15, 16, 17, 1000):
        pt = os.urandom(n)
        ct = rnd.encrypt(b"", pt)
        assert ms_open(AE_KEY, ct) == pt  # the reference opens Cellar's cell
        assert ms_seal(AE_KEY, pt, ct[33:49]) == ct  # and rebuilds it from its IV
        assert rnd.decrypt(b"", ms_seal(AE_KEY, pt, os.urandom(16))) == pt
        assert det.encrypt(b"", pt) == ms_seal(AE_KEY, pt)


def test_mssql_modes_refuse_a_context():
    c = CellCipher(Key(), MSSQL_DETERMINISTIC, 0)
    with pytest.raises(OSError) as e:
        c.encrypt(b"ctx", b"v")
    assert e.value.args[0] == ERR_ARG


# ---------------------------------------------------------------------------------------------
# Native formats against the reference


@pytest.mark.parametrize("n", [0, 1, 16, 33, 1000])
def test_randomized_interoperates_with_reference(n):
    raw = os.urandom(32)
    k = Key(raw)
    c = CellCipher(k, RANDOMIZED, 0xA1B2C3D4)
    ctx = b"tenant/users/ssn/row 9"
    pt = os.urandom(n)
    ct = c.encrypt(ctx, pt)
    assert approved()
    assert len(ct) == n + 33 and ct[:5] == b"\x01\xa1\xb2\xc3\xd4"
    assert ref_randomized_open(raw, 0xA1B2C3D4, ctx, ct) == pt
    theirs = ref_randomized_seal(raw, 0xA1B2C3D4, ctx, pt, os.urandom(12))
    assert c.decrypt(ctx, theirs) == pt
    assert approved()
    v = ctypes.c_uint32()
    assert LIB.cellar_cell_key_version(ct, len(ct), ctypes.byref(v)) == OK and v.value == 0xA1B2C3D4


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1000])
def test_deterministic_matches_reference_byte_for_byte(n):
    raw = os.urandom(32)
    c = CellCipher(Key(raw), DETERMINISTIC, 7)
    for ctx in (b"", b"users.email", os.urandom(300)):
        pt = os.urandom(n)
        ct = c.encrypt(ctx, pt)
        assert scheme_verdict(DETERMINISTIC)
        assert ct == ref_det(raw, 7, ctx, pt)
        assert ref_det_open(raw, 7, ctx, ct) == pt
        assert c.decrypt(ctx, ct) == pt
        # A cell of header 0x02 (format v1, HKDF subkeys) made by the reference still reads.
        old = ref_det(raw, 7, ctx, pt, fmt=2)
        assert c.decrypt(ctx, old) == pt


def test_blind_index_matches_reference():
    raw = os.urandom(32)
    k = Key(raw)
    for ctx, value, n in [(b"", b"", 4), (b"users.email", b"alice@example.com", 16), (os.urandom(50), os.urandom(500), 32)]:
        out = ctypes.create_string_buffer(n)
        assert LIB.cellar_blind_index(k.h, ctx, len(ctx), value, len(value), out, n) == OK
        assert LIB.cellar_last_operation_approved() == 0  # version 1: HKDF blind-index key
        assert out.raw == ref_blind(raw, ctx, value, n)
        for version in (1, 2):
            out = ctypes.create_string_buffer(n)
            st = LIB.cellar_blind_index_versioned(k.h, version, ctx, len(ctx), value, len(value), out, n)
            assert st == OK
            assert LIB.cellar_last_operation_approved() == (1 if version == 2 else 0)
            assert out.raw == ref_blind(raw, ctx, value, n, version)


@pytest.mark.parametrize("mode", MODES)
def test_every_flipped_byte_fails(mode):
    c = CellCipher(Key(), mode, 3)
    ctx = b"" if mode >= MSSQL_RANDOMIZED else b"c"
    ct = c.encrypt(ctx, b"hello world")
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x04
        with pytest.raises(OSError) as e:
            c.decrypt(ctx, bytes(bad))
        assert e.value.args[0] == ERR_AUTH
        assert LIB.cellar_last_operation_approved() == -1
    for cut in (1, 16, len(ct)):
        with pytest.raises(OSError):
            c.decrypt(ctx, ct[:-cut])
    with pytest.raises(OSError):
        c.decrypt(ctx, ct + b"\0")


@pytest.mark.parametrize("mode", MODES)
def test_batch_equals_singles_and_reports_index(mode):
    k = Key()
    c = CellCipher(k, mode, 1)
    ctx = b"" if mode >= MSSQL_RANDOMIZED else b"col"
    vals = [os.urandom(i * 5) for i in range(12)]
    cts = c.encrypt_batch(ctx, vals)
    assert scheme_verdict(mode)
    assert [c.decrypt(ctx, x) for x in cts] == vals
    if mode in (DETERMINISTIC, MSSQL_DETERMINISTIC):
        assert cts == [c.encrypt(ctx, v) for v in vals]
    assert c.decrypt_batch(ctx, cts) == vals
    assert scheme_verdict(mode)
    bad = list(cts)
    bad[5] = bad[5][:-1] + bytes([bad[5][-1] ^ 1])
    with pytest.raises(OSError) as e:
        c.decrypt_batch(ctx, bad)
    assert e.value.args[0] == ERR_AUTH
    assert "value 5" in e.value.args[1]


def test_xts_key_and_bad_mode_are_refused():
    with pytest.raises(OSError) as e:
        CellCipher(Key(key_type=KEY_XTS), RANDOMIZED, 1)
    assert e.value.args[0] == ERR_KEY
    for m in (0, 5, 2**32 - 1):
        with pytest.raises(OSError) as e:
            CellCipher(Key(), m, 1)
        assert e.value.args[0] == ERR_ARG
        assert LIB.cellar_cell_ciphertext_len(m, 10) == 0
