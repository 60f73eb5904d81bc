//! Key handles: generation inside the module, raw import (bring your own key), HKDF derivation,
//! the public key id, envelope wrapping (AES-KWP, SP 800-38F), password-protected key files
//! (PBKDF2-HMAC-SHA256 + AES-KWP) and usage accounting. Formats: `docs/FORMATS.md`.

use crate::error::{Error, Result};
use crate::fips::{self, operation, service};
use aws_lc_rs::{hkdf, hmac, key_wrap, pbkdf2};
use aws_lc_rs::key_wrap::KeyWrapPadded;
use core::fmt;
use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 16;
/// A public 16-byte key fingerprint: the first 16 bytes of
/// `HMAC-SHA256(key = material, msg = "cellar key id v1")`.
pub type KeyId = [u8; KEY_ID_LEN];

/// Default encryption limit per key: 2^32 random-nonce AES-GCM invocations (SP 800-38D 8.3).
pub const DEFAULT_USAGE_LIMIT: u64 = 1 << 32;

/// Wrapped-key blob: magic byte `'W'`.
pub const WRAP_MAGIC: u8 = 0x57;
/// Password file: magic byte `'P'`.
pub const PASSWORD_MAGIC: u8 = 0x50;
/// Format byte of both blob kinds.
pub const BLOB_FORMAT_V1: u8 = 0x01;
/// Minimum password length in bytes for password files (also the module's PBKDF2 approval floor).
pub const MIN_PASSWORD_LEN: usize = 14;
/// Minimum PBKDF2 iteration count accepted for export and import.
pub const MIN_PASSWORD_ITERATIONS: u32 = 100_000;
/// Maximum PBKDF2 iteration count accepted on import, so a tampered count cannot stall a host.
pub const MAX_PASSWORD_ITERATIONS: u32 = 10_000_000;
/// Default PBKDF2 iteration count (OWASP 2023 guidance for PBKDF2-HMAC-SHA256).
pub const DEFAULT_PASSWORD_ITERATIONS: u32 = 600_000;

const KEY_ID_LABEL: &[u8] = b"cellar key id v1";
const DERIVE_LABEL: &[u8] = b"cellar derive v1";
/// `key_type (1) | key_version (4) | key_id (16)` before the material in a wrapped inner record.
const INNER_HEADER_LEN: usize = 1 + 4 + KEY_ID_LEN;
const WRAP_HEADER_LEN: usize = 2 + KEY_ID_LEN;
const PASSWORD_HEADER_LEN: usize = 2 + 4 + 16;
const PASSWORD_SALT_LEN: usize = 16;
/// RFC 5869's "absent salt": HashLen zero bytes. Passed explicitly because the module counts HKDF
/// as approved only with a salt, and `aws-lc-rs` always passes a (possibly empty) salt pointer.
pub(crate) const ZERO_SALT: [u8; 32] = [0u8; 32];

/// The kinds of key Cellar holds. The integer values are the C `CELLAR_KEY_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum KeyType {
    /// 32-byte AES-256 key: GCM, key wrapping, CBC-HMAC cells, HKDF input.
    Aes256 = 1,
    /// 64-byte AES-256-XTS key (K1 | K2, two distinct halves): XTS pages.
    Aes256Xts = 2,
}

impl KeyType {
    /// Parses a C `CELLAR_KEY_*` integer.
    pub fn from_u32(v: u32) -> Result<Self> {
        match v {
            1 => Ok(KeyType::Aes256),
            2 => Ok(KeyType::Aes256Xts),
            _ => Err(Error::InvalidArgument("unknown key type")),
        }
    }

    /// Length of this type's key material in bytes.
    pub fn material_len(self) -> usize {
        match self {
            KeyType::Aes256 => 32,
            KeyType::Aes256Xts => 64,
        }
    }

    /// Short algorithm name, for `Debug` and messages.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Aes256 => "AES-256",
            KeyType::Aes256Xts => "AES-256-XTS",
        }
    }
}

struct KeyInner {
    key_type: KeyType,
    material: Zeroizing<Vec<u8>>,
    id: KeyId,
    encryptions: AtomicU64,
    limit: AtomicU64,
}

/// An immutable key handle. Cloning shares the same key (an `Arc`), never copies material.
/// Material lives in zeroizing memory and is wiped when the last clone is dropped.
/// `Debug` prints the algorithm and the key id only.
#[derive(Clone)]
pub struct Key {
    inner: Arc<KeyInner>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Key>();
};

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("type", &self.inner.key_type.name())
            .field("id", &hex16(&self.inner.id))
            .finish_non_exhaustive()
    }
}

fn hex16(id: &KeyId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 of the concatenated parts (one module service call).
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> hmac::Tag {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac_sha256_with(&k, parts)
}

/// HMAC-SHA256 under a prepared key (one module service call).
pub(crate) fn hmac_sha256_with(key: &hmac::Key, parts: &[&[u8]]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    for p in parts {
        ctx.update(p);
    }
    let mut tag = None;
    // HMAC_Final is the counted service; sign() cannot fail.
    let _ = service(|| -> core::result::Result<(), ()> {
        tag = Some(ctx.sign());
        Ok(())
    });
    tag.expect("set above")
}

struct HkdfLen(usize);
impl hkdf::KeyType for HkdfLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 (RFC 5869) into `out`. `salt` must be non-empty and `info` non-empty for the
/// module to count it as approved (use [`ZERO_SALT`] for "no salt").
pub(crate) fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    service(|| prk.expand(info, HkdfLen(out.len())).and_then(|okm| okm.fill(out)))
        .map_err(|_| Error::Internal("HKDF failed"))
}

fn compute_id(material: &[u8]) -> KeyId {
    let tag = hmac_sha256(material, &[KEY_ID_LABEL]);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&tag.as_ref()[..KEY_ID_LEN]);
    id
}

fn validate_material(key_type: KeyType, material: &[u8]) -> Result<()> {
    if material.len() != key_type.material_len() {
        return Err(Error::InvalidKey("key material has the wrong length for its type"));
    }
    if key_type == KeyType::Aes256Xts && material[..32] == material[32..] {
        return Err(Error::InvalidKey("AES-256-XTS key halves must differ"));
    }
    Ok(())
}

impl Key {
    fn from_material(key_type: KeyType, material: Zeroizing<Vec<u8>>) -> Result<Self> {
        validate_material(key_type, &material)?;
        let id = compute_id(&material);
        Ok(Key {
            inner: Arc::new(KeyInner {
                key_type,
                material,
                id,
                encryptions: AtomicU64::new(0),
                limit: AtomicU64::new(DEFAULT_USAGE_LIMIT),
            }),
        })
    }

    /// Generates a fresh key of `key_type` with the module's DRBG.
    pub fn generate(key_type: KeyType) -> Result<Self> {
        operation(|| {
            let mut m = Zeroizing::new(vec![0u8; key_type.material_len()]);
            loop {
                fips::random(&mut m)?;
                // Two equal XTS halves have probability 2^-256; draw again rather than fail.
                if validate_material(key_type, &m).is_ok() {
                    break;
                }
            }
            Self::from_material(key_type, m)
        })
    }

    /// Imports raw key material (bring your own key). The length must match `key_type`; an
    /// AES-256-XTS key must have distinct halves. The caller's copy is not touched.
    pub fn import(key_type: KeyType, material: &[u8]) -> Result<Self> {
        operation(|| Self::from_material(key_type, Zeroizing::new(material.to_vec())))
    }

    /// Derives a child key of `key_type` with HKDF-SHA256:
    /// `HKDF(ikm = self, salt = 32 zero bytes, info = "cellar derive v1" | type (1) | label)`.
    /// `label` must be non-empty (per table, column or file names, say).
    pub fn derive(&self, key_type: KeyType, label: &[u8]) -> Result<Self> {
        operation(|| {
            if label.is_empty() {
                return Err(Error::InvalidArgument("derive label must be non-empty"));
            }
            let mut m = Zeroizing::new(vec![0u8; key_type.material_len()]);
            hkdf_sha256(self.material(), &ZERO_SALT, &[DERIVE_LABEL, &[key_type as u8], label], &mut m)?;
            Self::from_material(key_type, m)
        })
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.inner.key_type
    }

    /// The public key id (see [`KeyId`]).
    pub fn id(&self) -> KeyId {
        self.inner.id
    }

    /// **Hazard**: returns the raw key material. Only for handing a key to another system that
    /// cannot take a wrapped or password-protected form; the copy is zeroized when dropped.
    pub fn dangerous_export_raw(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.inner.material.to_vec())
    }

    pub(crate) fn material(&self) -> &[u8] {
        &self.inner.material
    }

    /// Encryptions counted against this key's limit so far (random-nonce AES-GCM invocations
    /// made directly under it; see `docs/KEYS.md`).
    pub fn usage_count(&self) -> u64 {
        self.inner.encryptions.load(Ordering::Relaxed)
    }

    /// The key's encryption limit (default [`DEFAULT_USAGE_LIMIT`]).
    pub fn usage_limit(&self) -> u64 {
        self.inner.limit.load(Ordering::Relaxed)
    }

    /// Sets the encryption limit, shared by every clone of this handle and every cipher made
    /// from it. May be lowered below the current count, which refuses further encryptions.
    /// Must be between 1 and [`DEFAULT_USAGE_LIMIT`] (2^32).
    pub fn set_usage_limit(&self, limit: u64) -> Result<()> {
        if limit == 0 || limit > DEFAULT_USAGE_LIMIT {
            return Err(Error::InvalidArgument("usage limit must be between 1 and 2^32"));
        }
        self.inner.limit.store(limit, Ordering::Relaxed);
        Ok(())
    }

    /// Reserves `n` encryptions under this key, or fails with [`Error::UsageLimit`] without
    /// reserving any when that would pass the limit.
    pub(crate) fn reserve_encryptions(&self, n: u64) -> Result<()> {
        let limit = self.inner.limit.load(Ordering::Relaxed);
        self.inner
            .encryptions
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                c.checked_add(n).filter(|&t| t <= limit)
            })
            .map(|_| ())
            .map_err(|_| Error::UsageLimit("the key reached its encryption limit; rotate to a new key"))
    }

    /// Requires this key to be of `key_type`.
    pub(crate) fn expect_type(&self, key_type: KeyType, what: &'static str) -> Result<()> {
        if self.inner.key_type == key_type {
            Ok(())
        } else {
            Err(Error::InvalidKey(what))
        }
    }
}

/// Serialises `key_type (1) | key_version (u32 BE) | key_id (16) | material`.
fn encode_inner(key: &Key, key_version: u32) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(INNER_HEADER_LEN + 64));
    v.push(key.key_type() as u8);
    v.extend_from_slice(&key_version.to_be_bytes());
    v.extend_from_slice(&key.id());
    v.extend_from_slice(key.material());
    v
}

/// Parses and checks an inner record; every failure is the one authentication error.
fn decode_inner(inner: &[u8]) -> Result<(Key, u32)> {
    const BAD: Error = Error::AuthenticationFailed("wrapped key record is invalid");
    if inner.len() < INNER_HEADER_LEN {
        return Err(BAD);
    }
    let key_type = KeyType::from_u32(u32::from(inner[0])).map_err(|_| BAD)?;
    let material = &inner[INNER_HEADER_LEN..];
    if material.len() != key_type.material_len() {
        return Err(BAD);
    }
    let version = u32::from_be_bytes([inner[1], inner[2], inner[3], inner[4]]);
    let key = Key::from_material(key_type, Zeroizing::new(material.to_vec())).map_err(|_| BAD)?;
    if key.id()[..] != inner[5..INNER_HEADER_LEN] {
        return Err(BAD);
    }
    Ok((key, version))
}

fn kwp_len(plain_len: usize) -> usize {
    plain_len.div_ceil(8) * 8 + 8
}

fn kwp_wrap(kek: &[u8], plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.resize(start + kwp_len(plain.len()), 0);
    let k = key_wrap::AesKek::new(&key_wrap::AES_256, kek).map_err(|_| Error::Internal("KWP key setup failed"))?;
    let n = service(|| k.wrap_with_padding(plain, &mut out[start..]).map(|o| o.len()))
        .map_err(|_| Error::Internal("AES-KWP wrap failed"))?;
    out.truncate(start + n);
    Ok(())
}

fn kwp_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    const BAD: Error = Error::AuthenticationFailed("AES-KWP integrity check failed");
    if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
        return Err(BAD);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let k = key_wrap::AesKek::new(&key_wrap::AES_256, kek).map_err(|_| Error::Internal("KWP key setup failed"))?;
    let n = service(|| k.unwrap_with_padding(wrapped, &mut out).map(|o| o.len())).map_err(|_| BAD)?;
    out.truncate(n);
    Ok(out)
}

/// Length in bytes of a wrapped-key blob for a key of `key_type`.
pub fn wrapped_len(key_type: KeyType) -> usize {
    WRAP_HEADER_LEN + kwp_len(INNER_HEADER_LEN + key_type.material_len())
}

/// Length in bytes of a password file for a key of `key_type`.
pub fn password_file_len(key_type: KeyType) -> usize {
    PASSWORD_HEADER_LEN + kwp_len(INNER_HEADER_LEN + key_type.material_len())
}

/// Wraps `key` under `kek` (an AES-256 key-encryption key) with its `key_version`:
/// `0x57 | 0x01 | kek_id (16) | AES-KWP(kek, type | version BE | key_id | material)`.
pub fn wrap(kek: &Key, key: &Key, key_version: u32) -> Result<Vec<u8>> {
    operation(|| wrap_inner(kek, key, key_version))
}

pub(crate) fn wrap_inner(kek: &Key, key: &Key, key_version: u32) -> Result<Vec<u8>> {
    kek.expect_type(KeyType::Aes256, "the key-encryption key must be an AES-256 key")?;
    let inner = encode_inner(key, key_version);
    let mut blob = Vec::with_capacity(wrapped_len(key.key_type()));
    blob.push(WRAP_MAGIC);
    blob.push(BLOB_FORMAT_V1);
    blob.extend_from_slice(&kek.id());
    kwp_wrap(kek.material(), &inner, &mut blob)?;
    Ok(blob)
}

/// The key id of the key-encryption key named in a wrapped-key blob, without any key.
pub fn wrapped_kek_id(blob: &[u8]) -> Result<KeyId> {
    if blob.len() < WRAP_HEADER_LEN || blob[0] != WRAP_MAGIC || blob[1] != BLOB_FORMAT_V1 {
        return Err(Error::AuthenticationFailed("not a Cellar wrapped-key blob"));
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&blob[2..WRAP_HEADER_LEN]);
    Ok(id)
}

/// Unwraps a blob made by [`wrap`], returning the key and its key version. Checks the KEK id,
/// the KWP integrity check, the lengths and the inner key id; any mismatch is
/// [`Error::AuthenticationFailed`].
pub fn unwrap(kek: &Key, blob: &[u8]) -> Result<(Key, u32)> {
    operation(|| unwrap_inner(kek, blob))
}

pub(crate) fn unwrap_inner(kek: &Key, blob: &[u8]) -> Result<(Key, u32)> {
    kek.expect_type(KeyType::Aes256, "the key-encryption key must be an AES-256 key")?;
    let kek_id = wrapped_kek_id(blob)?;
    if kek_id != kek.id() {
        return Err(Error::AuthenticationFailed("the blob was wrapped under another key-encryption key"));
    }
    let inner = kwp_unwrap(kek.material(), &blob[WRAP_HEADER_LEN..])?;
    decode_inner(&inner)
}

fn check_password(password: &[u8]) -> Result<()> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(Error::InvalidArgument("password must be at least 14 bytes"));
    }
    Ok(())
}

fn password_kek(password: &[u8], salt: &[u8], iterations: u32) -> Result<Zeroizing<[u8; 32]>> {
    let mut k = Zeroizing::new([0u8; 32]);
    let it = NonZeroU32::new(iterations).ok_or(Error::InvalidArgument("iterations must be non-zero"))?;
    service(|| -> core::result::Result<(), ()> {
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, it, salt, password, &mut k[..]);
        Ok(())
    })
    .map_err(|()| Error::Internal("PBKDF2 failed"))?;
    Ok(k)
}

/// Seals arbitrary secret bytes under a password:
/// `magic | 0x01 | iterations (u32 BE) | salt (16) | AES-KWP(PBKDF2-HMAC-SHA256(pw, salt, it, 32), secret)`.
pub(crate) fn password_seal(magic: u8, secret: &[u8], password: &[u8], iterations: u32) -> Result<Vec<u8>> {
    check_password(password)?;
    if !(MIN_PASSWORD_ITERATIONS..=MAX_PASSWORD_ITERATIONS).contains(&iterations) {
        return Err(Error::InvalidArgument("iterations must be between 100000 and 10000000"));
    }
    let mut salt = [0u8; PASSWORD_SALT_LEN];
    fips::random(&mut salt)?;
    let kek = password_kek(password, &salt, iterations)?;
    let mut blob = Vec::with_capacity(PASSWORD_HEADER_LEN + kwp_len(secret.len()));
    blob.push(magic);
    blob.push(BLOB_FORMAT_V1);
    blob.extend_from_slice(&iterations.to_be_bytes());
    blob.extend_from_slice(&salt);
    kwp_wrap(&kek[..], secret, &mut blob)?;
    Ok(blob)
}

/// Opens [`password_seal`]'s output. Any mismatch, including a wrong password, is
/// [`Error::AuthenticationFailed`]; a short password is [`Error::InvalidArgument`].
pub(crate) fn password_open(magic: u8, blob: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    const BAD: Error = Error::AuthenticationFailed("not a valid password file, or wrong password");
    check_password(password)?;
    if blob.len() < PASSWORD_HEADER_LEN + 16 || blob[0] != magic || blob[1] != BLOB_FORMAT_V1 {
        return Err(BAD);
    }
    let iterations = u32::from_be_bytes([blob[2], blob[3], blob[4], blob[5]]);
    if !(MIN_PASSWORD_ITERATIONS..=MAX_PASSWORD_ITERATIONS).contains(&iterations) {
        return Err(BAD);
    }
    let kek = password_kek(password, &blob[6..PASSWORD_HEADER_LEN], iterations)?;
    kwp_unwrap(&kek[..], &blob[PASSWORD_HEADER_LEN..])
}

/// Exports `key` (with its `key_version`) as a password-protected key file:
/// `0x50 | 0x01 | iterations (u32 BE) | salt (16) | AES-KWP(PBKDF2(pw, salt, it, 32), inner)`.
/// The password must be at least 14 bytes and `iterations` between 100 000 and 10 000 000
/// (600 000 is the recommended default, [`DEFAULT_PASSWORD_ITERATIONS`]).
pub fn export_with_password(key: &Key, key_version: u32, password: &[u8], iterations: u32) -> Result<Vec<u8>> {
    operation(|| {
        let inner = encode_inner(key, key_version);
        password_seal(PASSWORD_MAGIC, &inner, password, iterations)
    })
}

/// Imports a password-protected key file, returning the key and its key version.
pub fn import_with_password(blob: &[u8], password: &[u8]) -> Result<(Key, u32)> {
    operation(|| {
        let inner = password_open(PASSWORD_MAGIC, blob, password)?;
        decode_inner(&inner)
    })
}
