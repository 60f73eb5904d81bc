//! Cellar fuzz-target logic, shared by the cargo-fuzz binaries in `fuzz/fuzz_targets/` and by
//! `tests/fuzz_seeds.rs` (which includes this file with `#[path]` and replays every committed
//! corpus file under a normal `cargo test --release`).
//!
//! Every target takes raw fuzzer bytes, feeds them to one Cellar entry point that reads untrusted
//! bytes, and asserts invariants (a panic is a finding):
//!
//! * a failed decryption leaves its output buffer all zeros;
//! * a successful decryption is of a genuine encryption: deterministic modes re-encrypt to the
//!   exact input, randomized modes fail again on any single-bit change and round-trip;
//! * key-version readers agree with a direct parse of the documented format, and the C entry
//!   points agree with the Rust API status for status.
//!
//! Keys are fixed (derived from constant material), so seeds made by [`seeds`] stay valid
//! across processes. Each target's first input byte(s) select the variant (mode, flags, page
//! number, buffer shape); the rest is the untrusted blob.
//!
//! Password imports run PBKDF2 with the blob's own iteration count (at least 100 000, about
//! 30-60 ms per call), which would cut a fuzzer to a few dozen executions per second. So, with
//! `full_kdf == false` (the fuzz binaries), an input that passes every check that comes *before*
//! the KDF is not run through the KDF; everything up to the KDF is fuzzed at full speed. The part
//! after the KDF (AES-KWP unwrap, the inner key record and the keyring state parser) is the same
//! code as key unwrap and root-key keyring import, which the `key_unwrap` and `keyring_import`
//! targets reach directly by wrapping fuzzer bytes in-target. The seed replay test runs the
//! password seeds with `full_kdf == true` (the whole path, KDF included).

#![allow(clippy::missing_panics_doc)]

use cellar::cell::{self, CellCipher, CellMode};
use cellar::keyring::Keyring;
use cellar::keys::{self, Key, KeyPurpose, KeyType};
use cellar::page::{self, PageCipher, PageMode, FLAG_ZERO_IS_EMPTY, GCM_TRAILER_LEN};
use cellar::Error;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Fixed keys and parameters

/// Key version of every cipher the targets build.
pub const KEY_VERSION: u32 = 7;
/// File id of every page cipher the targets build.
pub const FILE_ID: u64 = 42;
/// The password of every password seed (16 bytes, above the 14-byte floor).
pub const PASSWORD: &[u8] = b"fuzz-password-16";
/// PBKDF2 iterations of the password seeds (the minimum Cellar accepts).
pub const SEED_ITERATIONS: u32 = 100_000;

const AES_MATERIAL: [u8; 32] = [0x11; 32];
const KEK_MATERIAL: [u8; 32] = [0x44; 32];
const ROOT_MATERIAL: [u8; 32] = [0x55; 32];
const WRAPPED_MATERIAL: [u8; 32] = [0x66; 32];

fn xts_material() -> [u8; 64] {
    let mut m = [0x22u8; 64];
    m[32..].fill(0x33);
    m
}

/// The AES-256 data key of the cell and GCM page ciphers.
pub fn aes_key() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key::import(KeyType::Aes256, &AES_MATERIAL).unwrap())
}

/// The AES-256-XTS key of the XTS page ciphers.
pub fn xts_key() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key::import(KeyType::Aes256Xts, &xts_material()).unwrap())
}

/// The key-encryption key of the key unwrap target.
pub fn kek() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key::import(KeyType::Aes256, &KEK_MATERIAL).unwrap())
}

/// The root key of the keyring import target.
pub fn root_key() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key::import(KeyType::Aes256, &ROOT_MATERIAL).unwrap())
}

fn page_ciphers() -> &'static [PageCipher; 4] {
    static C: OnceLock<[PageCipher; 4]> = OnceLock::new();
    C.get_or_init(|| {
        let mk = |mode, flags| {
            let key = if mode == PageMode::Xts { xts_key() } else { aes_key() };
            PageCipher::new(key, mode, FILE_ID, KEY_VERSION, flags).unwrap()
        };
        [
            mk(PageMode::Xts, 0),
            mk(PageMode::Gcm, 0),
            mk(PageMode::Xts, FLAG_ZERO_IS_EMPTY),
            mk(PageMode::Gcm, FLAG_ZERO_IS_EMPTY),
        ]
    })
}

/// The page cipher for a selector byte: bit 0 = GCM, bit 1 = FLAG_ZERO_IS_EMPTY.
pub fn page_cipher(sel: u8) -> &'static PageCipher {
    &page_ciphers()[(sel & 3) as usize]
}

/// Cell modes in C order.
pub const CELL_MODES: [CellMode; 4] =
    [CellMode::Randomized, CellMode::Deterministic, CellMode::MssqlRandomized, CellMode::MssqlDeterministic];

/// The cell cipher of a mode (fixed key, key version [`KEY_VERSION`]).
pub fn cell_cipher(mode: CellMode) -> &'static CellCipher {
    static C: OnceLock<Vec<CellCipher>> = OnceLock::new();
    let all = C.get_or_init(|| CELL_MODES.iter().map(|&m| CellCipher::new(aes_key(), m, KEY_VERSION).unwrap()).collect());
    &all[CELL_MODES.iter().position(|&m| m == mode).unwrap()]
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// AES-KWP (RFC 5649) under raw `kek` material, as Cellar's blobs use it.
pub fn kwp(kek: &[u8], plain: &[u8]) -> Vec<u8> {
    use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
    if plain.is_empty() {
        return Vec::new(); // RFC 5649 wraps 1 byte or more; an empty payload stays empty
    }
    let k = AesKek::new(&AES_256, kek).unwrap();
    let mut out = vec![0u8; plain.len().div_ceil(8) * 8 + 8];
    let n = k.wrap_with_padding(plain, &mut out).unwrap().len();
    out.truncate(n);
    out
}

// ---------------------------------------------------------------------------------------------
// Page decrypt (XTS and GCM)

/// `data[0]`: bit 0 GCM (else XTS), bit 1 FLAG_ZERO_IS_EMPTY, bit 2 in place; `data[1]`: page
/// number; `data[2..]`: the page (any length; only 512..=65536, multiple of 16, is valid).
pub fn page_decrypt(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (sel, page_no, input) = (data[0], u64::from(data[1]), &data[2..]);
    let c = page_cipher(sel);
    let mut out = vec![0xA5u8; input.len()];
    let r = if sel & 4 != 0 {
        out.copy_from_slice(input);
        c.decrypt_in_place(page_no, &mut out)
    } else {
        c.decrypt(page_no, input, &mut out)
    };
    match r {
        Err(e) => {
            assert!(all_zero(&out), "failed page decrypt left output bytes: {e:?}");
            if page::check_page_size(input.len()).is_ok() {
                assert!(matches!(e, Error::AuthenticationFailed(_)), "unexpected page error {e:?}");
            }
        }
        Ok(()) => check_page_ok(c, page_no, input, &out),
    }
}

fn check_page_ok(c: &PageCipher, page_no: u64, input: &[u8], out: &[u8]) {
    page::check_page_size(input.len()).expect("a page of an invalid size decrypted");
    let zero_is_empty = std::ptr::eq(c, page_cipher(2)) || std::ptr::eq(c, page_cipher(3));
    if zero_is_empty && all_zero(input) {
        assert!(all_zero(out), "an empty page must decrypt to zeros");
        return;
    }
    match c.mode() {
        PageMode::Xts => {
            // Length-preserving: re-encrypting the plaintext must give the input back.
            let mut back = vec![0u8; input.len()];
            c.encrypt(page_no, out, &mut back).unwrap();
            assert!(back == input, "XTS decrypt/encrypt did not round-trip");
        }
        PageMode::Gcm => {
            assert!(all_zero(&out[out.len() - GCM_TRAILER_LEN..]), "decrypted GCM trailer not zeroed");
            assert_eq!(page::page_key_version(input), Ok(KEY_VERSION), "GCM page of another key version decrypted");
            // A genuine page: any single-bit change must fail, and so must another page number.
            let mut t = input.to_vec();
            let mut o = vec![0u8; input.len()];
            for pos in [0, input.len() / 2, input.len() - GCM_TRAILER_LEN, input.len() - 1] {
                t[pos] ^= 0x01;
                assert!(c.decrypt(page_no, &t, &mut o).is_err(), "GCM page with byte {pos} flipped decrypted");
                assert!(all_zero(&o));
                t[pos] ^= 0x01;
            }
            assert!(c.decrypt(page_no ^ 1, input, &mut o).is_err(), "GCM page decrypted at another page number");
            // Decrypting twice gives the same plaintext; the plaintext round-trips.
            c.decrypt(page_no, input, &mut o).unwrap();
            assert!(o == out);
            let mut e = vec![0u8; input.len()];
            c.encrypt(page_no, out, &mut e).unwrap();
            c.decrypt(page_no, &e, &mut o).unwrap();
            assert!(o == out, "GCM page did not round-trip");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Page key-version reader (Rust and C)

/// The whole input is a page.
pub fn page_key_version(data: &[u8]) {
    let r = page::page_key_version(data);
    let size_ok = page::check_page_size(data.len()).is_ok();
    let expect = if !size_ok {
        None
    } else {
        let t = &data[data.len() - GCM_TRAILER_LEN..];
        // Trailer formats 0x01 (before format v2) and 0x02.
        ((t[0] == 1 || t[0] == 2) && t[1..4] == [0, 0, 0]).then(|| u32::from_le_bytes([t[4], t[5], t[6], t[7]]))
    };
    match (&r, expect) {
        (Ok(v), Some(e)) => assert_eq!(*v, e),
        (Err(Error::InvalidArgument(_)), None) if !size_ok => {}
        (Err(Error::UnsupportedFormat(_)), None) if size_ok => {}
        _ => panic!("page_key_version({} bytes) = {r:?}, expected {expect:?}", data.len()),
    }
    // The C entry point agrees.
    let mut v = 0xDEAD_BEEFu32;
    let st = cellar::ffi::page::cellar_page_key_version(data.as_ptr(), data.len(), &mut v);
    match r {
        Ok(x) => assert_eq!((st, v), (0, x)),
        Err(e) => assert_eq!(st, e.code()),
    }
}

// ---------------------------------------------------------------------------------------------
// KMIP TTLV decoder (bytes from a key-management server)

/// Decodes server bytes as one TTLV item and, as a response message, as a KMIP response.
/// Invariants: no panic; a decoded item re-encodes to bytes that decode to the same item, and
/// to exactly the input when the input's padding bytes were zero (the canonical form).
pub fn kmip_ttlv(data: &[u8]) {
    use cellar::provider::kmip::client::parse_response;
    use cellar::provider::kmip::ttlv::Ttlv;
    let Ok(item) = Ttlv::decode(data) else { return };
    let again = item.to_bytes();
    assert_eq!(Ttlv::decode(&again).as_ref(), Ok(&item), "re-encoding changed the item");
    assert_eq!(again.len(), data.len(), "re-encoding changed the length");
    // Responses Cellar reads: any operation code, never a panic.
    let op = data.get(3).copied().unwrap_or(0) as u32;
    let _ = parse_response(item, op);
}

// ---------------------------------------------------------------------------------------------
// Cell decrypt (all four modes)

/// `data[0]`: mode (`% 4`, C order); `data[1]`: bits 0-4 context length (taken from the input),
/// bit 5 give an MSSQL cipher a non-empty context anyway, bit 6 a one-byte-short output buffer,
/// bit 7 also decrypt as a two-cell batch; `data[2..2+ctx]`: context; the rest: the ciphertext.
pub fn cell_decrypt(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let mode = CELL_MODES[(data[0] % 4) as usize];
    let ctl = data[1];
    let rest = &data[2..];
    let mut clen = usize::from(ctl & 0x1F).min(rest.len());
    if mode.is_mssql() && ctl & 0x20 == 0 {
        clen = 0;
    }
    let (ctx, ct) = rest.split_at(clen);
    let c = cell_cipher(mode);
    let max = c.plaintext_max_len(ct.len());
    let short = ctl & 0x40 != 0 && max > 0;
    let mut out = vec![0xA5u8; if short { max - 1 } else { max }];
    let r = c.decrypt_to(ctx, ct, &mut out);
    // The allocating API agrees with the buffer API.
    let r2 = c.decrypt(ctx, ct);
    match (&r, &r2) {
        (Ok(n), Ok(v)) => assert_eq!(&out[..*n], &v[..]),
        (Err(_), Err(_)) if short => {}
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
        (Ok(_), Err(Error::BufferTooSmall { .. })) | (Err(Error::BufferTooSmall { .. }), Ok(_)) if short => {}
        _ => panic!("decrypt_to {r:?} and decrypt {:?} disagree", r2.as_ref().map(|v| v.len())),
    }
    match r {
        Err(ref e) => {
            // An authentication failure zeroes the output; an argument error (a context for an
            // MSSQL cipher, a short buffer) is raised before anything is written.
            if matches!(e, Error::AuthenticationFailed(_)) {
                assert!(all_zero(&out), "failed cell decrypt left output bytes: {e:?}");
            } else {
                assert!(out.iter().all(|&b| b == 0xA5 || b == 0), "argument error wrote output: {e:?}");
            }
            if !short && !(mode.is_mssql() && !ctx.is_empty()) {
                assert!(matches!(e, Error::AuthenticationFailed(_)), "unexpected cell error {e:?}");
            }
            if short {
                assert!(matches!(e, Error::BufferTooSmall { .. }) || (mode.is_mssql() && !ctx.is_empty()));
            }
        }
        Ok(n) => {
            assert!(!short, "decrypt into a short buffer succeeded");
            assert!(n <= max);
            check_cell_ok(c, ctx, ct, &out[..n]);
        }
    }
    if ctl & 0x80 != 0 {
        // Compared with the allocating decrypt, which never has a short buffer.
        cell_batch(c, ctx, ct, r2.ok().map(|v| v.to_vec()));
    }
}

fn check_cell_ok(c: &CellCipher, ctx: &[u8], ct: &[u8], pt: &[u8]) {
    let mode = c.mode();
    if !mode.is_mssql() {
        assert_eq!(cell::key_version(ct), Ok(KEY_VERSION), "native cell of another key version decrypted");
    }
    assert_eq!(c.ciphertext_len(pt.len()), Some(ct.len()), "decrypted cell has a non-canonical length");
    let again = c.encrypt(ctx, pt).unwrap();
    match mode {
        CellMode::Deterministic if ct[0] == cell::FORMAT_DETERMINISTIC_V2 => {
            assert!(again == ct, "DETERMINISTIC cell does not re-encrypt to itself")
        }
        CellMode::Deterministic => {
            // A cell of header 0x02 (before format v2) re-encrypts as 0x03, deterministically.
            assert_eq!(ct[0], cell::FORMAT_DETERMINISTIC, "DETERMINISTIC cell of an unknown header decrypted");
            assert_eq!(again[0], cell::FORMAT_DETERMINISTIC_V2);
            assert_eq!(again, c.encrypt(ctx, pt).unwrap());
            assert_eq!(&c.decrypt(ctx, &again).unwrap()[..], pt);
        }
        CellMode::MssqlDeterministic if again == ct => {}
        _ => {
            // Randomized (or an MSSQL randomized cell read by the deterministic cipher, which
            // SQL Server allows): a genuine cell, so any bit flip fails.
            let mut t = ct.to_vec();
            for pos in [0, ct.len() / 2, ct.len() - 1] {
                t[pos] ^= 0x80;
                assert!(c.decrypt(ctx, &t).is_err(), "cell with byte {pos} flipped decrypted");
                t[pos] ^= 0x80;
            }
            if !mode.is_mssql() {
                let mut other = ctx.to_vec();
                other.push(0);
                assert!(c.decrypt(&other, ct).is_err(), "cell decrypted under another context");
            }
        }
    }
    assert_eq!(&c.decrypt(ctx, &again).unwrap()[..], pt, "cell did not round-trip");
}

fn cell_batch(c: &CellCipher, ctx: &[u8], ct: &[u8], single: Option<Vec<u8>>) {
    let mut values = ct.to_vec();
    values.extend_from_slice(ct);
    let offsets = [0, ct.len(), 2 * ct.len()];
    let room = cell::batch_plaintext_max_len(c.mode(), &offsets).unwrap();
    let mut out = vec![0xA5u8; room];
    let mut out_offsets = [7usize; 3];
    match c.decrypt_batch_to(ctx, &values, &offsets, &mut out, &mut out_offsets) {
        Ok(total) => {
            let pt = single.expect("batch decrypt succeeded where the single decrypt failed");
            assert_eq!(total, 2 * pt.len());
            assert_eq!(out_offsets, [0, pt.len(), 2 * pt.len()]);
            assert_eq!(&out[..pt.len()], &pt[..]);
            assert_eq!(&out[pt.len()..total], &pt[..]);
        }
        Err(e) => {
            assert!(single.is_none(), "batch decrypt failed where the single decrypt succeeded: {e:?}");
            // A failure in a cell zeroes the output; an argument error is raised before any
            // output is written (the buffers are left as they were).
            if e.index.is_some() {
                assert!(all_zero(&out) && out_offsets == [0; 3], "failed batch left output: {e:?}");
            } else {
                assert!(out.iter().all(|&b| b == 0xA5 || b == 0), "argument error wrote output: {e:?}");
            }
            if !(c.mode().is_mssql() && !ctx.is_empty()) {
                assert_eq!(e.index, Some(0));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cell key-version reader (Rust and C)

/// The whole input is a cell.
pub fn cell_key_version(data: &[u8]) {
    let r = cell::key_version(data);
    let expect = match data.first() {
        Some(1) if data.len() >= 33 => Some(u32::from_be_bytes([data[1], data[2], data[3], data[4]])),
        Some(2 | 3) if data.len() >= 69 => Some(u32::from_be_bytes([data[1], data[2], data[3], data[4]])),
        _ => None,
    };
    match (&r, expect) {
        (Ok(v), Some(e)) => assert_eq!(*v, e),
        (Err(Error::UnsupportedFormat(_)), None) => {}
        _ => panic!("cell key_version({} bytes) = {r:?}, expected {expect:?}", data.len()),
    }
    let mut v = 0xDEAD_BEEFu32;
    let st = cellar::ffi::cell::cellar_cell_key_version(data.as_ptr(), data.len(), &mut v);
    match r {
        Ok(x) => assert_eq!((st, v), (0, x)),
        Err(e) => assert_eq!(st, e.code()),
    }
}

// ---------------------------------------------------------------------------------------------
// Key unwrap



/// `data[0]` bit 0 clear: `data[1..]` is a wrapped-key blob. Set: `data[1..]` is an inner record
/// (`type | version BE | key_id | material`) that the target wraps under the KEK first, so the
/// fuzzer reaches the record parser behind the AES-KWP integrity check.
pub fn key_unwrap(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let kek = kek();
    let blob = if data[0] & 1 == 0 {
        data[1..].to_vec()
    } else {
        // Bit 1 of the prefix: format 0x02 (inner v2, with a purpose byte after the type).
        let format = if data[0] & 2 != 0 { keys::BLOB_FORMAT_V2 } else { keys::BLOB_FORMAT_V1 };
        let mut b = vec![keys::WRAP_MAGIC, format];
        b.extend_from_slice(&kek.id());
        b.extend_from_slice(&kwp(&KEK_MATERIAL, &data[1..]));
        b
    };
    let id = keys::wrapped_kek_id(&blob);
    match &id {
        Ok(id) => assert_eq!(&id[..], &blob[2..18]),
        Err(e) => assert!(matches!(e, Error::AuthenticationFailed(_))),
    }
    let r = keys::unwrap(kek, &blob);
    match r {
        Err(ref e) => assert!(matches!(e, Error::AuthenticationFailed(_)), "unexpected unwrap error {e:?}"),
        Ok((ref key, version)) => {
            assert!(id.is_ok());
            assert_eq!(blob.len(), keys::wrapped_len(key.key_type()));
            // AES-KWP is deterministic: re-wrapping gives the blob back byte for byte.
            let again = keys::wrap(kek, &key, version).unwrap();
            assert!(again == blob, "unwrapped key does not re-wrap to its blob");
        }
    }
    // The C entry point agrees (status and, on success, the key id).
    ffi_key_unwrap(&blob, r.as_ref().map(|(k, v)| (k.id(), *v)).map_err(|e| e.code()));
    // A keyring whose version 1 is the KEK reads the same blobs (its local versions wrap with
    // the same format), accepting exactly those whose inner version is 1.
    match tenant_keyring().unwrap(&blob) {
        Ok((key, version)) => {
            assert_eq!(version, 1);
            let (k2, v2) = r.as_ref().expect("keyring unwrapped a blob that key unwrap refused");
            assert_eq!((key.id(), 1), (k2.id(), *v2));
            assert!(tenant_keyring().rewrap(&blob).unwrap() == blob, "keyring rewrap changed the blob");
        }
        Err(e) => {
            assert!(
                matches!(e, Error::AuthenticationFailed(_) | Error::KeyNotFound(_)),
                "unexpected keyring unwrap error {e:?}"
            );
            assert!(!matches!(r, Ok((_, 1))), "key unwrap accepted a version-1 blob the keyring refused: {e:?}");
        }
    }
}

/// A keyring whose only (active) version 1 is the KEK.
pub fn tenant_keyring() -> &'static Keyring {
    static K: OnceLock<Keyring> = OnceLock::new();
    K.get_or_init(|| Keyring::new(Some(kek())).unwrap())
}

fn ffi_key_unwrap(blob: &[u8], expect: Result<([u8; 16], u32), i32>) {
    use cellar::ffi::keys::*;
    let mut kek_h = std::ptr::null_mut();
    assert_eq!(cellar_key_import(1, KEK_MATERIAL.as_ptr(), 32, &mut kek_h), 0);
    let mut out = std::ptr::null_mut();
    let mut ver = 0u32;
    let st = cellar_key_unwrap(kek_h, blob.as_ptr(), blob.len(), &mut out, &mut ver);
    match expect {
        Ok((id, v)) => {
            assert_eq!(st, 0);
            assert_eq!(ver, v);
            let mut got = [0u8; 16];
            assert_eq!(cellar_key_id(out, got.as_mut_ptr()), 0);
            assert_eq!(got, id);
        }
        Err(code) => {
            assert_eq!(st, code);
            assert!(out.is_null(), "failed unwrap returned a handle");
        }
    }
    cellar_key_free(out);
    cellar_key_free(kek_h);
}

// ---------------------------------------------------------------------------------------------
// Password imports (key files and keyring exports)

const PASSWORD_HEADER_LEN: usize = 22;

/// Whether `blob` passes every check `password_open` makes before PBKDF2.
pub fn reaches_kdf(magic: u8, blob: &[u8]) -> bool {
    blob.len() >= PASSWORD_HEADER_LEN + 16
        && (blob.len() - PASSWORD_HEADER_LEN) % 8 == 0
        && blob[0] == magic
        // Key files are format 1; keyring exports are read in formats 1 and 2 (generation).
        && (blob[1] == keys::BLOB_FORMAT_V1
            || (magic == cellar::keyring::EXPORT_PASSWORD_MAGIC && blob[1] == cellar::keyring::EXPORT_FORMAT_V2))
        && (keys::MIN_PASSWORD_ITERATIONS..=keys::MAX_PASSWORD_ITERATIONS)
            .contains(&u32::from_be_bytes([blob[2], blob[3], blob[4], blob[5]]))
}

/// `data[0]` bit 0 clear: `data[1..]` is a password key file, else a password keyring export;
/// bit 1 set: use a 13-byte (too short) password. With `full_kdf == false` an input that would
/// reach PBKDF2 is not imported (see the module comment).
pub fn password_import(data: &[u8], full_kdf: bool) {
    if data.is_empty() {
        return;
    }
    let keyring = data[0] & 1 != 0;
    let pw: &[u8] = if data[0] & 2 != 0 { &PASSWORD[..13] } else { PASSWORD };
    let blob = &data[1..];
    let magic = if keyring { cellar::keyring::EXPORT_PASSWORD_MAGIC } else { keys::PASSWORD_MAGIC };
    let kdf = pw.len() >= keys::MIN_PASSWORD_LEN && reaches_kdf(magic, blob);
    if kdf && !full_kdf {
        return;
    }
    if keyring {
        let r = Keyring::import_with_password(blob, pw);
        match r {
            Err(e) => check_import_error(&e, pw, kdf),
            Ok(kr) => {
                assert!(kdf);
                let _ = kr.versions().unwrap();
            }
        }
    } else {
        match keys::import_with_password(blob, pw) {
            Err(e) => check_import_error(&e, pw, kdf),
            Ok((key, _v)) => {
                assert!(kdf);
                assert_eq!(blob.len(), keys::password_file_len(key.key_type()));
            }
        }
    }
}

fn check_import_error(e: &Error, pw: &[u8], kdf: bool) {
    if pw.len() < keys::MIN_PASSWORD_LEN {
        assert!(matches!(e, Error::InvalidArgument(_) | Error::AuthenticationFailed(_)), "{e:?}");
    } else {
        assert!(matches!(e, Error::AuthenticationFailed(_) | Error::InvalidArgument(_)), "{e:?}");
        let _ = kdf;
    }
}

// ---------------------------------------------------------------------------------------------
// Keyring state import

const ROOT_HEADER_LEN: usize = 18;

/// `data[0]` bit 0 clear: `data[1..]` is a root-key keyring export. Set: `data[1..]` is a keyring
/// *state* (`magic | 0x01 | active | count | entries`, docs/KEYS.md) that the target seals under
/// the root key first, so the fuzzer reaches the state parser behind AES-KWP.
pub fn keyring_import(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let root = root_key();
    let blob = if data[0] & 1 == 0 {
        data[1..].to_vec()
    } else {
        let mut b = vec![cellar::keyring::EXPORT_ROOT_MAGIC, 0x01];
        b.extend_from_slice(&root.id());
        b.extend_from_slice(&kwp(&ROOT_MATERIAL, &data[1..]));
        b
    };
    match Keyring::import_with_root_key(&blob, root) {
        Err(e) => assert!(
            matches!(e, Error::AuthenticationFailed(_) | Error::InvalidArgument(_)),
            "unexpected keyring import error {e:?}"
        ),
        Ok(kr) => {
            let active = kr.active_version().unwrap();
            let versions = kr.versions().unwrap();
            assert!(versions.iter().any(|&(n, _)| n == active), "active version missing");
            assert!(versions.windows(2).all(|w| w[0].0 < w[1].0), "versions not increasing");
            // An unlocked state re-exports to the very same blob (AES-KWP is deterministic).
            match kr.export_with_root_key(root) {
                // (Format-1 exports come back as format 2, which adds the generation.)
                Ok(again) if blob.get(1) == Some(&cellar::keyring::EXPORT_FORMAT_V1) => {
                    let back = Keyring::import_with_root_key(&again, root).expect("re-export imports");
                    assert_eq!(back.versions().unwrap(), kr.versions().unwrap(), "re-export changed the versions");
                }
                Ok(again) => assert!(again == blob, "imported keyring does not re-export to its blob"),
                Err(e) => assert!(matches!(e, Error::TenantLocked(_)), "{e:?}"),
            }
            // Wrapping a data key with an available active version round-trips.
            if let Ok(w) = kr.wrap(&Key::import(KeyType::Aes256, &WRAPPED_MATERIAL).unwrap()) {
                let (k, v) = kr.unwrap(&w).unwrap();
                assert_eq!(v, active);
                assert_eq!(k.dangerous_export_raw()[..], WRAPPED_MATERIAL[..]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Through the C API: cell and page decrypt, differential against the Rust API

thread_local! {
    static FFI: FfiHandles = FfiHandles::new();
}

struct FfiHandles {
    cells: Vec<*mut cellar::ffi::cell::cellar_cell_cipher>,
    pages: Vec<*mut cellar::ffi::page::cellar_page_cipher>,
}

impl FfiHandles {
    fn new() -> Self {
        use cellar::ffi::{cell::*, keys::*, page::*};
        let mut aes = std::ptr::null_mut();
        let mut xts = std::ptr::null_mut();
        assert_eq!(cellar_key_import(1, AES_MATERIAL.as_ptr(), 32, &mut aes), 0);
        let xm = xts_material();
        assert_eq!(cellar_key_import(2, xm.as_ptr(), 64, &mut xts), 0);
        let cells = (1..=4)
            .map(|m| {
                let mut c = std::ptr::null_mut();
                assert_eq!(cellar_cell_cipher_new(aes, m, KEY_VERSION, &mut c), 0);
                c
            })
            .collect();
        let pages = (0..4u8)
            .map(|sel| {
                let (k, mode) = if sel & 1 == 0 { (xts, 1) } else { (aes, 2) };
                let mut c = std::ptr::null_mut();
                assert_eq!(cellar_page_cipher_new(k, mode, FILE_ID, KEY_VERSION, u32::from(sel >> 1), &mut c), 0);
                c
            })
            .collect();
        // Ciphers hold their own key references.
        cellar_key_free(aes);
        cellar_key_free(xts);
        FfiHandles { cells, pages }
    }
}

impl Drop for FfiHandles {
    fn drop(&mut self) {
        for &c in &self.cells {
            cellar::ffi::cell::cellar_cell_cipher_free(c);
        }
        for &c in &self.pages {
            cellar::ffi::page::cellar_page_cipher_free(c);
        }
    }
}

/// Same layout as [`cell_decrypt`], plus `data[1]` bit 7 passes a NULL context pointer when the
/// context is empty. Through `cellar_cell_decrypt`, checked against the Rust API.
pub fn ffi_cell_decrypt(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let m = data[0] % 4;
    let mode = CELL_MODES[m as usize];
    let ctl = data[1];
    let rest = &data[2..];
    let mut clen = usize::from(ctl & 0x1F).min(rest.len());
    if mode.is_mssql() && ctl & 0x20 == 0 {
        clen = 0;
    }
    let (ctx, ct) = rest.split_at(clen);
    let max = cellar::ffi::cell::cellar_cell_plaintext_max_len(u32::from(m) + 1, ct.len());
    assert_eq!(max, mode.plaintext_max_len(ct.len()));
    let cap = if ctl & 0x40 != 0 { max.saturating_sub(1) } else { max };
    let mut out = vec![0xA5u8; cap.max(1)];
    let mut out_len = usize::MAX;
    let ctx_ptr = if ctx.is_empty() && ctl & 0x80 != 0 { std::ptr::null() } else { ctx.as_ptr() };
    let st = FFI.with(|h| {
        cellar::ffi::cell::cellar_cell_decrypt(
            h.cells[m as usize],
            ctx_ptr,
            ctx.len(),
            ct.as_ptr(),
            ct.len(),
            out.as_mut_ptr(),
            cap,
            &mut out_len,
        )
    });
    let mut rout = vec![0u8; cap];
    let r = cell_cipher(mode).decrypt_to(ctx, ct, &mut rout);
    match r {
        Ok(n) => {
            assert_eq!(st, 0, "C decrypt failed where Rust succeeded");
            assert_eq!(out_len, n);
            assert_eq!(&out[..n], &rout[..n]);
        }
        Err(e) => {
            assert_eq!(st, e.code(), "C status differs from Rust error {e:?}");
            if let Error::BufferTooSmall { needed } = e {
                assert_eq!(out_len, needed);
            } else if e.code() == cellar::ffi::CELLAR_ERR_AUTHENTICATION_FAILED {
                assert!(all_zero(&out[..cap]), "failed C decrypt left output bytes");
            } else {
                assert!(out.iter().all(|&b| b == 0xA5 || b == 0), "C argument error wrote output: {e:?}");
            }
        }
    }
}

/// Same layout as [`page_decrypt`] (bit 2: in place). Through `cellar_page_decrypt`, checked
/// against the Rust API.
pub fn ffi_page_decrypt(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (sel, page_no, input) = (data[0], u64::from(data[1]), &data[2..]);
    let mut out = vec![0xA5u8; input.len().max(1)];
    let st = FFI.with(|h| {
        let c = h.pages[(sel & 3) as usize];
        if sel & 4 != 0 {
            out[..input.len()].copy_from_slice(input);
            let p = out.as_mut_ptr();
            cellar::ffi::page::cellar_page_decrypt(c, page_no, p, p, input.len())
        } else {
            cellar::ffi::page::cellar_page_decrypt(c, page_no, input.as_ptr(), out.as_mut_ptr(), input.len())
        }
    });
    let mut rout = vec![0u8; input.len()];
    match page_cipher(sel).decrypt(page_no, input, &mut rout) {
        Ok(()) => {
            assert_eq!(st, 0, "C page decrypt failed where Rust succeeded");
            assert!(out[..input.len()] == rout[..], "C and Rust page plaintexts differ");
        }
        Err(e) => {
            assert_eq!(st, e.code(), "C status differs from Rust error {e:?}");
            if page::check_page_size(input.len()).is_ok() {
                assert!(all_zero(&out[..input.len()]), "failed C page decrypt left output bytes");
            }
        }
    }
}

/// Runs the named target on one input (`full_kdf` for the password target).
pub fn run(target: &str, data: &[u8], full_kdf: bool) {
    match target {
        "page_decrypt" => page_decrypt(data),
        "page_key_version" => page_key_version(data),
        "cell_decrypt" => cell_decrypt(data),
        "cell_key_version" => cell_key_version(data),
        "key_unwrap" => key_unwrap(data),
        "password_import" => password_import(data, full_kdf),
        "keyring_import" => keyring_import(data),
        "ffi_cell_decrypt" => ffi_cell_decrypt(data),
        "ffi_page_decrypt" => ffi_page_decrypt(data),
        "kmip_ttlv" => kmip_ttlv(data),
        _ => panic!("unknown fuzz target {target}"),
    }
}

/// Every target name.
pub const TARGETS: [&str; 10] = [
    "page_decrypt",
    "page_key_version",
    "cell_decrypt",
    "cell_key_version",
    "key_unwrap",
    "password_import",
    "keyring_import",
    "ffi_cell_decrypt",
    "ffi_page_decrypt",
    "kmip_ttlv",
];

// ---------------------------------------------------------------------------------------------
// Seed corpora: valid and near-valid inputs for every target

/// One seed: target, file name, bytes.
pub type Seed = (&'static str, String, Vec<u8>);

fn variants(base: &[u8], name: &str) -> Vec<(String, Vec<u8>)> {
    // Near-valid neighbours of a valid blob: truncated, extended, one bit flipped at the start,
    // middle and end.
    let mut v = vec![(format!("{name}-valid"), base.to_vec())];
    if !base.is_empty() {
        v.push((format!("{name}-trunc1"), base[..base.len() - 1].to_vec()));
        let mut e = base.to_vec();
        e.push(0);
        v.push((format!("{name}-ext1"), e));
        for (tag, pos) in [("first", 0), ("mid", base.len() / 2), ("last", base.len() - 1)] {
            let mut f = base.to_vec();
            f[pos] ^= 0x01;
            v.push((format!("{name}-flip-{tag}"), f));
        }
    }
    v
}

fn with_prefix(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(body);
    v
}

/// Generates every target's seed corpus (deterministic keys; random nonces and salts, so the
/// bytes differ from run to run but every "valid" seed stays valid).
pub fn seeds() -> Vec<Seed> {
    let mut out: Vec<Seed> = Vec::new();
    let mut push = |t: &'static str, name: String, bytes: Vec<u8>| out.push((t, name, bytes));

    // KMIP: a Discover Versions request and a success and a failure response.
    {
        use cellar::provider::kmip::ttlv::Ttlv;
        let pv = |a, b| Ttlv::structure(0x420069, vec![Ttlv::int(0x42006A, a), Ttlv::int(0x42006B, b)]);
        let header = |t| Ttlv::structure(t, vec![pv(1, 4), Ttlv::int(0x42000D, 1)]);
        let req = Ttlv::structure(
            0x420078,
            vec![header(0x420077), Ttlv::structure(0x42000F, vec![Ttlv::enumeration(0x42005C, 0x1E), Ttlv::structure(0x420079, vec![pv(2, 0), pv(1, 4)])])],
        );
        let ok = Ttlv::structure(
            0x42007B,
            vec![
                header(0x42007A),
                Ttlv::structure(
                    0x42000F,
                    vec![
                        Ttlv::enumeration(0x42005C, 0x0A),
                        Ttlv::enumeration(0x42007F, 0),
                        Ttlv::structure(
                            0x42007C,
                            vec![Ttlv::text(0x420094, "1"), Ttlv::bytes(0x420043, &[7u8; 32]), Ttlv::boolean(0x4200C5, true)],
                        ),
                    ],
                ),
            ],
        );
        let fail = Ttlv::structure(
            0x42007B,
            vec![
                header(0x42007A),
                Ttlv::structure(
                    0x42000F,
                    vec![Ttlv::enumeration(0x42005C, 0x1F), Ttlv::enumeration(0x42007F, 1), Ttlv::enumeration(0x42007E, 1), Ttlv::text(0x42007D, "no")],
                ),
            ],
        );
        push("kmip_ttlv", "discover-request".into(), req.to_bytes());
        push("kmip_ttlv", "get-response".into(), ok.to_bytes());
        push("kmip_ttlv", "failed-response".into(), fail.to_bytes());
    }

    // Pages: XTS and GCM, 512 and 4096 bytes, page numbers 3 and 200.
    let mut pages: Vec<(String, u8, u8, Vec<u8>)> = Vec::new();
    for (mode_name, sel) in [("xts", 0u8), ("gcm", 1u8)] {
        for size in [512usize, 4096] {
            let pt: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let c = page_cipher(sel);
            let mut ct = vec![0u8; size];
            c.encrypt(3, &pt, &mut ct).unwrap();
            pages.push((format!("{mode_name}-{size}-p3"), sel, 3, ct));
        }
        let mut ct = vec![0u8; 512];
        page_cipher(sel).encrypt(200, &[0u8; 512], &mut ct).unwrap();
        pages.push((format!("{mode_name}-512-p200-zeros"), sel, 200, ct));
    }
    for (name, sel, no, ct) in &pages {
        for (n, b) in variants(ct, name) {
            push("page_decrypt", n.clone(), with_prefix(&[*sel, *no], &b));
            push("ffi_page_decrypt", n.clone(), with_prefix(&[*sel, *no], &b));
            if *sel == 1 {
                push("page_key_version", n, b);
            }
        }
        // In place, with the zero-is-empty flag, and at the wrong page number.
        push("page_decrypt", format!("{name}-inplace"), with_prefix(&[*sel | 4, *no], ct));
        push("page_decrypt", format!("{name}-wrongpage"), with_prefix(&[*sel, no ^ 1], ct));
        push("ffi_page_decrypt", format!("{name}-inplace"), with_prefix(&[*sel | 4, *no], ct));
    }
    for sel in 0..4u8 {
        push("page_decrypt", format!("empty-512-sel{sel}"), with_prefix(&[sel, 0], &[0u8; 512]));
        push("ffi_page_decrypt", format!("empty-512-sel{sel}"), with_prefix(&[sel, 0], &[0u8; 512]));
    }
    push("page_decrypt", "badsize-500".into(), with_prefix(&[1, 0], &[1u8; 500]));
    push("page_key_version", "zeros-512".into(), vec![0u8; 512]);
    let mut other = pages[3].3.clone(); // a GCM page; rewrite its key version
    let n = other.len();
    other[n - 44..n - 40].copy_from_slice(&9u32.to_le_bytes());
    push("page_key_version", "gcm-version9".into(), other.clone());
    push("page_decrypt", "gcm-version9".into(), with_prefix(&[1, 3], &other));
    push("page_key_version", "short-496".into(), vec![1u8; 496]);

    // Cells: each mode, a few plaintext lengths (0, 1, 15, 16, 100), context "tenant/t/c/7".
    let ctx: &[u8] = b"tenant/t/c/7";
    for (m, &mode) in CELL_MODES.iter().enumerate() {
        let c = cell_cipher(mode);
        let cx: &[u8] = if mode.is_mssql() { b"" } else { ctx };
        let ctl = cx.len() as u8;
        for len in [0usize, 1, 15, 16, 100] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            let ct = c.encrypt(cx, &pt).unwrap();
            let name = format!("{mode:?}-{len}").to_lowercase();
            let vs = if len == 16 { variants(&ct, &name) } else { vec![(format!("{name}-valid"), ct.clone())] };
            for (n, b) in vs {
                let mut prefix = vec![m as u8, ctl];
                prefix.extend_from_slice(cx);
                push("cell_decrypt", n.clone(), with_prefix(&prefix, &b));
                push("ffi_cell_decrypt", n.clone(), with_prefix(&prefix, &b));
                if !mode.is_mssql() {
                    push("cell_key_version", n, b);
                }
            }
            if len == 15 {
                // Short buffer + batch, wrong mode, wrong context.
                let mut prefix = vec![m as u8, ctl | 0xC0];
                prefix.extend_from_slice(cx);
                push("cell_decrypt", format!("{name}-short-batch"), with_prefix(&prefix, &ct));
                let mut prefix = vec![m as u8, ctl | 0x80];
                prefix.extend_from_slice(cx);
                push("cell_decrypt", format!("{name}-batch"), with_prefix(&prefix, &ct));
                push("ffi_cell_decrypt", format!("{name}-short"), with_prefix(&prefix, &ct).iter().enumerate().map(|(i, &b)| if i == 1 { b | 0x40 } else { b }).collect());
                let mut prefix = vec![((m + 1) % 4) as u8, ctl];
                prefix.extend_from_slice(cx);
                push("cell_decrypt", format!("{name}-othermode"), with_prefix(&prefix, &ct));
                if !mode.is_mssql() {
                    let mut prefix = vec![m as u8, ctl];
                    prefix.extend_from_slice(b"tenant/t/c/8");
                    push("cell_decrypt", format!("{name}-otherctx"), with_prefix(&prefix, &ct));
                }
            }
        }
    }
    push("cell_key_version", "empty".into(), vec![]);
    push("cell_key_version", "rand-32".into(), vec![1u8; 32]);
    push("cell_key_version", "det-68".into(), vec![2u8; 68]);

    // Key unwrap: AES-256 and XTS keys wrapped under the KEK, raw and as inner records.
    let data_keys = [
        Key::import(KeyType::Aes256, &WRAPPED_MATERIAL).unwrap(),
        Key::import(KeyType::Aes256Xts, &xts_material()).unwrap(),
    ];
    for (i, k) in data_keys.iter().enumerate() {
        let blob = keys::wrap(kek(), k, 5).unwrap();
        for (n, b) in variants(&blob, &format!("wrapped{i}")) {
            push("key_unwrap", n, with_prefix(&[0], &b));
        }
        // The inner record, for the in-target wrapping mode.
        let mut inner = vec![k.key_type() as u8];
        inner.extend_from_slice(&5u32.to_be_bytes());
        inner.extend_from_slice(&k.id());
        inner.extend_from_slice(&k.dangerous_export_raw());
        for (n, b) in variants(&inner, &format!("inner{i}")) {
            push("key_unwrap", n, with_prefix(&[1], &b));
        }
        let mut wrongtype = inner.clone();
        wrongtype[0] = 3 - wrongtype[0];
        push("key_unwrap", format!("inner{i}-wrongtype"), with_prefix(&[1], &wrongtype));
    }
    // Format 0x02: data keys with a purpose, wrapped, and their v2 inner records (prefix 3).
    let purposed = [
        Key::import_with_purpose(KeyType::Aes256, &WRAPPED_MATERIAL, KeyPurpose::DataEncryption).unwrap(),
        Key::import_with_purpose(KeyType::Aes256Xts, &xts_material(), KeyPurpose::KeyDerivation).unwrap(),
    ];
    for (i, k) in purposed.iter().enumerate() {
        let blob = keys::wrap(kek(), k, 5).unwrap();
        for (n, b) in variants(&blob, &format!("purpose-wrapped{i}")) {
            push("key_unwrap", n, with_prefix(&[0], &b));
        }
        let mut inner = vec![k.key_type() as u8, k.purpose() as u8];
        inner.extend_from_slice(&5u32.to_be_bytes());
        inner.extend_from_slice(&k.id());
        inner.extend_from_slice(&k.dangerous_export_raw());
        for (n, b) in variants(&inner, &format!("purpose-inner{i}")) {
            push("key_unwrap", n, with_prefix(&[3], &b));
        }
        let mut bad = inner.clone();
        bad[1] = 4;
        push("key_unwrap", format!("purpose-inner{i}-badpurpose"), with_prefix(&[3], &bad));
        // The v2 record under format byte 0x01.
        push("key_unwrap", format!("purpose-inner{i}-asv1"), with_prefix(&[1], &inner));
    }
    // Inner version 1: the tenant keyring (version 1 = the KEK) accepts it too.
    for (n, b) in variants(&keys::wrap(kek(), &data_keys[0], 1).unwrap(), "wrapped-v1") {
        push("key_unwrap", n, with_prefix(&[0], &b));
    }
    let other_kek = Key::import(KeyType::Aes256, &[0x77; 32]).unwrap();
    push("key_unwrap", "otherkek".into(), with_prefix(&[0], &keys::wrap(&other_kek, &data_keys[0], 1).unwrap()));

    // Password imports: one key file and one keyring export (100 000 iterations).
    let kf = keys::export_with_password(&data_keys[0], 5, PASSWORD, SEED_ITERATIONS).unwrap();
    let kr = Keyring::new(Some(aes_key())).unwrap();
    kr.rotate(None).unwrap();
    let ke = kr.export_with_password(PASSWORD, SEED_ITERATIONS).unwrap();
    for (sel, name, blob) in [(0u8, "keyfile", &kf), (1u8, "keyring", &ke)] {
        for (n, b) in variants(blob, name) {
            push("password_import", n, with_prefix(&[sel], &b));
        }
        push("password_import", format!("{name}-shortpw"), with_prefix(&[sel | 2], blob));
        let mut it = blob.clone();
        it[2..6].copy_from_slice(&99_999u32.to_be_bytes());
        push("password_import", format!("{name}-iter99999"), with_prefix(&[sel], &it));
        it[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
        push("password_import", format!("{name}-itermax"), with_prefix(&[sel], &it));
        push("password_import", format!("{name}-othersel"), with_prefix(&[sel ^ 1], blob));
    }

    // Keyring state import: a few keyring shapes, sealed and as raw states.
    let root = root_key();
    let k1 = Keyring::new(Some(aes_key())).unwrap();
    let k2 = Keyring::new(Some(aes_key())).unwrap();
    k2.rotate(Some(&Key::import(KeyType::Aes256, &[0x12; 32]).unwrap())).unwrap();
    k2.rotate(Some(&Key::import(KeyType::Aes256, &[0x13; 32]).unwrap())).unwrap();
    k2.retire(1).unwrap();
    for (i, kr) in [k1, k2].iter().enumerate() {
        let blob = kr.export_with_root_key(root).unwrap();
        for (n, b) in variants(&blob, &format!("sealed{i}")) {
            push("keyring_import", n, with_prefix(&[0], &b));
        }
        // The sealed state, unsealed (AES-KWP unwrap under the fixed root key).
        let state = {
            use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
            let k = AesKek::new(&AES_256, &ROOT_MATERIAL).unwrap();
            let w = &blob[ROOT_HEADER_LEN..];
            let mut o = vec![0u8; w.len()];
            let n = k.unwrap_with_padding(w, &mut o).unwrap().len();
            o.truncate(n);
            o
        };
        for (n, b) in variants(&state, &format!("state{i}")) {
            push("keyring_import", n, with_prefix(&[1], &b));
        }
        // Locked / provider / retired kinds for the active or another version.
        for kind in [2u8, 3, 4, 9] {
            let mut s = state.clone();
            s[10 + 4] = kind; // first entry's kind byte
            push("keyring_import", format!("state{i}-kind{kind}"), with_prefix(&[1], &s));
        }
    }
    push("keyring_import", "password-magic".into(), with_prefix(&[0], &ke));
    out
}
