//! Key handles: generation inside the module, raw import (bring your own key), HKDF derivation,
//! the public key id, envelope wrapping (AES-KWP, SP 800-38F), password-protected key files
//! (PBKDF2-HMAC-SHA256 + AES-KWP) and usage accounting. Formats: `docs/FORMATS.md`.

use crate::error::{Error, Result};
use crate::fips::{self, operation, service};
use crate::sys::mem::SecretBytes;
use aws_lc_rs::{hkdf, hmac, pbkdf2};
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
/// Format byte of both blob kinds for a key without a fixed purpose (inner record v1).
pub const BLOB_FORMAT_V1: u8 = 0x01;
/// Format byte of both blob kinds for a key with a purpose (inner record v2, which adds the
/// purpose byte after the key type; SPEC 10, `docs/FORMATS.md` 1.3).
pub const BLOB_FORMAT_V2: u8 = 0x02;
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
/// SP 800-108 label of derive v2 (SPEC 10).
const DERIVE_LABEL_V2: &[u8] = b"cellar derive v2";
/// SP 800-108 label of derive v2 for a child with a purpose (`docs/FORMATS.md` 1.2): a child of
/// one purpose never shares material with a child of another, or with a purpose-less child.
const DERIVE_LABEL_V2_PURPOSE: &[u8] = b"cellar derive v2 purpose";
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

/// What a key may be used for (NIST SP 800-57 Part 1 Rev. 5, 5.2: one purpose per key).
/// The integer values are the C `CELLAR_KEY_PURPOSE_*` constants and the purpose byte of the
/// v2 inner record of wrapped-key blobs and password files (`docs/FORMATS.md` 1.3).
///
/// A purpose is fixed when a key is made (generate, import, derive with a purpose; unwrap and
/// password import restore it) and checked by every operation that uses the key: page and
/// cell ciphers and blind indexes need [`KeyPurpose::DataEncryption`], wrapping and unwrapping
/// (the key-encryption key, a keyring's root key) need [`KeyPurpose::KeyWrapping`], derivation
/// (the parent) needs [`KeyPurpose::KeyDerivation`]. A key of another purpose is refused with
/// [`Error::InvalidKey`] naming both. [`KeyPurpose::None`] (keys from the SPEC 8 calls and
/// from format-0x01 blobs) works everywhere, as before purposes existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum KeyPurpose {
    /// No fixed purpose: the key works for every operation (SPEC 8 calls, format-0x01 blobs).
    #[default]
    None = 0,
    /// A data-encryption key: TDE pages, cells, blind indexes.
    DataEncryption = 1,
    /// A key-encryption (key-wrapping) key: wraps and unwraps other keys (AES-256 only).
    KeyWrapping = 2,
    /// A key-derivation key: the parent of derived keys.
    KeyDerivation = 3,
}

impl KeyPurpose {
    /// Parses a C `CELLAR_KEY_PURPOSE_*` integer.
    pub fn from_u32(v: u32) -> Result<Self> {
        match v {
            0 => Ok(KeyPurpose::None),
            1 => Ok(KeyPurpose::DataEncryption),
            2 => Ok(KeyPurpose::KeyWrapping),
            3 => Ok(KeyPurpose::KeyDerivation),
            _ => Err(Error::InvalidArgument("unknown key purpose")),
        }
    }

    /// Short name, for messages: "none", "data encryption", "key wrapping", "key derivation".
    pub fn name(self) -> &'static str {
        match self {
            KeyPurpose::None => "none",
            KeyPurpose::DataEncryption => "data encryption",
            KeyPurpose::KeyWrapping => "key wrapping",
            KeyPurpose::KeyDerivation => "key derivation",
        }
    }

    /// Whether a key of `key_type` may carry this purpose: key wrapping is AES-KWP with an
    /// AES-256 key, so an AES-256-XTS key cannot be a key-wrapping key.
    fn check_type(self, key_type: KeyType) -> Result<()> {
        if self == KeyPurpose::KeyWrapping && key_type != KeyType::Aes256 {
            return Err(Error::InvalidArgument(
                "an AES-256-XTS key cannot be a key-wrapping key (key wrapping uses AES-256 keys)",
            ));
        }
        Ok(())
    }

    /// The refusal of a key of purpose `have` for a use that needs `need` (both set, different).
    fn refusal(have: KeyPurpose, need: KeyPurpose) -> Error {
        use KeyPurpose::*;
        Error::InvalidKey(match (have, need) {
            (DataEncryption, KeyWrapping) => "a data-encryption key cannot be used as a key-encryption (key-wrapping) key",
            (DataEncryption, KeyDerivation) => "a data-encryption key cannot be used as a key-derivation (parent) key",
            (KeyWrapping, DataEncryption) => "a key-wrapping key cannot be used as a data-encryption key",
            (KeyWrapping, KeyDerivation) => "a key-wrapping key cannot be used as a key-derivation (parent) key",
            (KeyDerivation, DataEncryption) => "a key-derivation key cannot be used as a data-encryption key",
            (KeyDerivation, KeyWrapping) => "a key-derivation key cannot be used as a key-encryption (key-wrapping) key",
            _ => "the key's purpose does not allow this use",
        })
    }
}

struct KeyInner {
    key_type: KeyType,
    /// Fixed when the key is made; see [`KeyPurpose`].
    purpose: KeyPurpose,
    /// In locked, no-dump key memory (`sys::mem`; see [`key_memory_status`]); zeroed on drop.
    material: SecretBytes,
    id: KeyId,
    /// Shared by every handle of this key in the process (see [`usage_counter`]).
    encryptions: Arc<AtomicU64>,
    limit: AtomicU64,
}

/// The process-wide registry behind per-key usage counting: one counter per (type, key id),
/// shared by every handle of that key that is alive (two imports of the same material, a key
/// unwrapped twice from one blob, a keyring's copy...). Entries are weak: the counter lives
/// as long as some handle of the key does, and dead entries are pruned as the map grows. The
/// lookup happens once per handle creation; an encryption costs one atomic update only.
type UsageMap = std::collections::HashMap<(KeyType, KeyId), std::sync::Weak<AtomicU64>>;

fn usage_counter(key_type: KeyType, id: KeyId) -> Arc<AtomicU64> {
    use std::sync::{Mutex, Weak};
    static REGISTRY: Mutex<Option<(UsageMap, usize)>> = Mutex::new(None);
    let mut g = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    let (map, prune_at) = g.get_or_insert_with(|| (UsageMap::new(), 64));
    if let Some(c) = map.get(&(key_type, id)).and_then(Weak::upgrade) {
        return c;
    }
    if map.len() >= *prune_at {
        map.retain(|_, w| w.strong_count() > 0);
        *prune_at = (map.len() * 2).max(64);
    }
    let c = Arc::new(AtomicU64::new(0));
    map.insert((key_type, id), Arc::downgrade(&c));
    c
}

/// Test-only observation of key wiping (`test-hooks` feature): when a key's last reference
/// is dropped, its material is zeroized first and then its key-memory slot (still allocated) is
/// inspected and the result recorded here, before the slot is freed. Never in a production build.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod wipe_log {
    use std::sync::Mutex;

    /// One dropped key: its id, its material length, and whether every byte of its 64-byte
    /// key-memory slot read as zero after zeroize (and before the slot was freed).
    #[derive(Clone, Debug)]
    pub struct Wiped {
        pub id: super::KeyId,
        pub len: usize,
        pub all_zero: bool,
    }

    static LOG: Mutex<Vec<Wiped>> = Mutex::new(Vec::new());

    pub(crate) fn record(w: Wiped) {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).push(w);
    }

    /// The wipe record of the key with `id`, if it was dropped since the log was last taken.
    pub fn find(id: &super::KeyId) -> Option<Wiped> {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).iter().rev().find(|w| &w.id == id).cloned()
    }

    /// Every record so far.
    pub fn all() -> Vec<Wiped> {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(feature = "test-hooks")]
impl Drop for KeyInner {
    fn drop(&mut self) {
        let len = self.material.len();
        // Zeroize the slot (what dropping `SecretBytes` does anyway; again later is harmless),
        // then read it back with volatile reads while it is still allocated.
        self.material.wipe();
        let all_zero = self.material.slot_reads_zero();
        wipe_log::record(wipe_log::Wiped { id: self.id, len, all_zero });
    }
}

/// An immutable key handle. Cloning shares the same key (an `Arc`), never copies material.
/// Material lives in locked, no-dump key memory (see [`key_memory_status`]) and is zeroed when
/// the last clone is dropped.
/// `Debug` prints the algorithm and the key id only.
#[derive(Clone)]
pub struct Key {
    inner: Arc<KeyInner>,
    /// Set on keys that came from a tenant keyring (and keys derived from them): the tenant's
    /// lock flag, checked with one atomic load before each use (see [`TenantGate`]).
    gate: Option<Arc<TenantGate>>,
}

/// A tenant keyring's lock flag, shared with every data key unwrapped from it and every cipher
/// made from those keys: while the tenant is locked they refuse with [`Error::TenantLocked`].
#[derive(Debug, Default)]
pub(crate) struct TenantGate {
    locked: core::sync::atomic::AtomicBool,
}

impl TenantGate {
    pub(crate) fn set_locked(&self, locked: bool) {
        self.locked.store(locked, Ordering::Release);
    }

    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Key>();
};

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("type", &self.inner.key_type.name())
            .field("purpose", &self.inner.purpose.name())
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
    // HMAC_Final is the counted service; sign() cannot fail.
    match service(|| Ok::<_, core::convert::Infallible>(ctx.sign())) {
        Ok(tag) => tag,
        Err(never) => match never {},
    }
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
    // Compared without early exit: the halves are secret.
    if key_type == KeyType::Aes256Xts
        && material[..32].iter().zip(&material[32..]).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    {
        return Err(Error::InvalidKey("AES-256-XTS key halves must differ"));
    }
    Ok(())
}

impl Key {
    fn from_material(key_type: KeyType, material: SecretBytes) -> Result<Self> {
        validate_material(key_type, &material)?;
        let id = compute_id(&material);
        Ok(Key {
            gate: None,
            inner: Arc::new(KeyInner {
                key_type,
                purpose: KeyPurpose::None,
                material,
                id,
                encryptions: usage_counter(key_type, id),
                limit: AtomicU64::new(DEFAULT_USAGE_LIMIT),
            }),
        })
    }

    /// Generates a fresh key of `key_type` with the module's DRBG.
    pub fn generate(key_type: KeyType) -> Result<Self> {
        operation(|| {
            let mut m = SecretBytes::zeroed(key_type.material_len())?;
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
    ///
    /// Not an approved scheme (SPEC 10): the module cannot vouch for bytes it did not generate
    /// (an all-zero key imports), so the indicator reports 0 after it. Keys from the module's
    /// DRBG ([`Key::generate`]), from a KDF ([`Key::derive`]) or unwrapped from a blob report 1.
    pub fn import(key_type: KeyType, material: &[u8]) -> Result<Self> {
        operation(|| {
            fips::not_approved();
            validate_material(key_type, material)?;
            Self::from_material(key_type, SecretBytes::copy_from(material)?)
        })
    }

    /// Rebuilds a key from material Cellar itself holds or authenticated (a keyring record, a
    /// key the keyring already has, a KMIP-fetched key): as [`Key::import`] without marking the
    /// operation not approved, because no caller-chosen bytes enter.
    pub(crate) fn from_trusted_material(key_type: KeyType, material: &[u8]) -> Result<Self> {
        operation(|| {
            validate_material(key_type, material)?;
            Self::from_material(key_type, SecretBytes::copy_from(material)?)
        })
    }

    /// Derives a child key of `key_type` (derive v2, SPEC 10) with the SP 800-108r1 counter-mode
    /// KDF (HMAC-SHA-256, the module's `KBKDF_ctr_hmac`):
    /// `child = KDF(self, "cellar derive v2", type (1) | label, len(type))`.
    /// `label` must be non-empty (per table, column or file names, say). Same inputs, same child.
    /// Keys derived before format v2 came from [`Key::derive_v1`]; use that to recreate them.
    pub fn derive(&self, key_type: KeyType, label: &[u8]) -> Result<Self> {
        operation(|| {
            if label.is_empty() {
                return Err(Error::InvalidArgument("derive label must be non-empty"));
            }
            let mut m = SecretBytes::zeroed(key_type.material_len())?;
            let mut context = Vec::with_capacity(1 + label.len());
            context.push(key_type as u8);
            context.extend_from_slice(label);
            self.check_unlocked()?;
            self.require_purpose(KeyPurpose::KeyDerivation)?;
            crate::kdf::kdf(self.material(), DERIVE_LABEL_V2, &context, &mut m)?;
            // A child of a tenant's data key is locked with the tenant.
            Self::from_material(key_type, m).map(|k| k.gated(self.gate.clone()))
        })
    }

    /// Derive v1 (before format v2), kept so that keys derived then can be derived again:
    /// `HKDF-SHA256(ikm = self, salt = 32 zero bytes, info = "cellar derive v1" | type (1) | label)`.
    /// HKDF (SP 800-56C) is meant for shared secrets, so the indicator reports 0 (not an
    /// approved scheme) for it; new keys use [`Key::derive`].
    pub fn derive_v1(&self, key_type: KeyType, label: &[u8]) -> Result<Self> {
        operation(|| {
            fips::not_approved();
            if label.is_empty() {
                return Err(Error::InvalidArgument("derive label must be non-empty"));
            }
            let mut m = SecretBytes::zeroed(key_type.material_len())?;
            self.check_unlocked()?;
            self.require_purpose(KeyPurpose::KeyDerivation)?;
            hkdf_sha256(self.material(), &ZERO_SALT, &[DERIVE_LABEL, &[key_type as u8], label], &mut m)?;
            // A child of a tenant's data key is locked with the tenant.
            Self::from_material(key_type, m).map(|k| k.gated(self.gate.clone()))
        })
    }

    /// Generates a fresh key of `key_type` with `purpose` fixed ([`KeyPurpose`]). A
    /// key-wrapping key must be AES-256 ([`Error::InvalidArgument`] otherwise).
    /// [`KeyPurpose::None`] is [`Key::generate`].
    pub fn generate_with_purpose(key_type: KeyType, purpose: KeyPurpose) -> Result<Self> {
        operation(|| {
            purpose.check_type(key_type)?;
            Self::generate(key_type)?.into_purpose(purpose)
        })
    }

    /// Imports raw key material ([`Key::import`]) with `purpose` fixed ([`KeyPurpose`]). A
    /// key-wrapping key must be AES-256 ([`Error::InvalidArgument`] otherwise).
    pub fn import_with_purpose(key_type: KeyType, material: &[u8], purpose: KeyPurpose) -> Result<Self> {
        operation(|| {
            purpose.check_type(key_type)?;
            Self::import(key_type, material)?.into_purpose(purpose)
        })
    }

    /// Derives a child key of `key_type` with `purpose` fixed. [`KeyPurpose::None`] is exactly
    /// [`Key::derive`]. With a purpose the child is
    /// `KDF(self, "cellar derive v2 purpose", purpose (1) | type (1) | label, len(type))`
    /// (SP 800-108r1 counter mode, HMAC-SHA-256; `docs/FORMATS.md` 1.2), so children of
    /// different purposes (and the purpose-less child) of one parent and label never share
    /// material. The parent must be a key-derivation key (or have no purpose); a key-wrapping
    /// child must be AES-256.
    pub fn derive_with_purpose(&self, key_type: KeyType, label: &[u8], purpose: KeyPurpose) -> Result<Self> {
        if purpose == KeyPurpose::None {
            return self.derive(key_type, label);
        }
        operation(|| {
            purpose.check_type(key_type)?;
            if label.is_empty() {
                return Err(Error::InvalidArgument("derive label must be non-empty"));
            }
            let mut m = SecretBytes::zeroed(key_type.material_len())?;
            let mut context = Vec::with_capacity(2 + label.len());
            context.push(purpose as u8);
            context.push(key_type as u8);
            context.extend_from_slice(label);
            self.check_unlocked()?;
            self.require_purpose(KeyPurpose::KeyDerivation)?;
            crate::kdf::kdf(self.material(), DERIVE_LABEL_V2_PURPOSE, &context, &mut m)?;
            // A child of a tenant's data key is locked with the tenant.
            Self::from_material(key_type, m)?.into_purpose(purpose).map(|k| k.gated(self.gate.clone()))
        })
    }

    /// The key's purpose ([`KeyPurpose::None`] for keys made by the calls without one and for
    /// keys read from format-0x01 blobs).
    pub fn purpose(&self) -> KeyPurpose {
        self.inner.purpose
    }

    /// Requires this key to be usable for `need`: its purpose is `need` or
    /// [`KeyPurpose::None`]. Otherwise [`Error::InvalidKey`] naming both purposes.
    pub fn require_purpose(&self, need: KeyPurpose) -> Result<()> {
        let have = self.inner.purpose;
        if have == KeyPurpose::None || need == KeyPurpose::None || have == need {
            Ok(())
        } else {
            Err(KeyPurpose::refusal(have, need))
        }
    }

    /// This key with `purpose` fixed. A key just made (no other handle shares it) is changed in
    /// place; otherwise the result is a new key with a copy of the material (same id and usage
    /// count), so no other handle's purpose changes.
    pub(crate) fn into_purpose(mut self, purpose: KeyPurpose) -> Result<Self> {
        purpose.check_type(self.inner.key_type)?;
        if self.inner.purpose == purpose {
            return Ok(self);
        }
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.purpose = purpose;
            return Ok(self);
        }
        let gate = self.gate.clone();
        let copy = Self::from_material(self.inner.key_type, SecretBytes::copy_from(self.material())?)?;
        drop(self);
        copy.into_purpose(purpose).map(|k| k.gated(gate))
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
    ///
    /// Counts as an operation that reports indicator 0 (SPEC 10: plaintext key export is not an
    /// approved service). The C call also refuses a key of a locked tenant.
    pub fn dangerous_export_raw(&self) -> Zeroizing<Vec<u8>> {
        let _ = operation(|| {
            fips::not_approved();
            Ok(())
        });
        Zeroizing::new(self.inner.material.to_vec())
    }

    /// Whether this key came from a tenant keyring that is now locked (such a key, and every
    /// cipher made from it, refuses to work until the keyring is unlocked).
    pub fn is_locked(&self) -> bool {
        self.gate.as_deref().is_some_and(TenantGate::is_locked)
    }

    /// [`Error::TenantLocked`] while the tenant keyring this key came from is locked: one atomic
    /// load, done before every operation with the key.
    #[inline]
    pub(crate) fn check_unlocked(&self) -> Result<()> {
        match &self.gate {
            Some(g) if g.is_locked() => Err(Error::TenantLocked(
                "the tenant keyring this key came from is locked; unlock the keyring to use it",
            )),
            _ => Ok(()),
        }
    }

    /// This key bound to a tenant's lock flag.
    pub(crate) fn gated(mut self, gate: Option<Arc<TenantGate>>) -> Key {
        if gate.is_some() {
            self.gate = gate;
        }
        self
    }

    pub(crate) fn material(&self) -> &[u8] {
        &self.inner.material
    }

    /// Test hook: the address and length of this key's material in key memory, so a test can
    /// find its mapping in `/proc/self/smaps`. Not in production builds.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn material_address(&self) -> (usize, usize) {
        (self.inner.material.addr(), self.inner.material.len())
    }

    /// Encryptions counted against this key so far (random-nonce AES-GCM invocations made
    /// directly under it; see `docs/SECURITY.md`), by every handle of this key in the process:
    /// handles with the same type and key id share one count while any of them is alive.
    pub fn usage_count(&self) -> u64 {
        self.inner.encryptions.load(Ordering::Relaxed)
    }

    /// Raises the shared count to `count` if it is lower (never lowers it): how a host carries
    /// a count it persisted (from [`Key::usage_count`]) across restarts, or adds the share of a
    /// budget another process used. Does no cryptography.
    pub fn restore_usage_count(&self, count: u64) {
        // Any count above 2^32 is past every limit; the cap keeps `reserve_encryptions`'s add
        // from wrapping.
        self.inner.encryptions.fetch_max(count.min(1 << 62), Ordering::Relaxed);
    }

    /// The key's encryption limit (default [`DEFAULT_USAGE_LIMIT`]).
    pub fn usage_limit(&self) -> u64 {
        self.inner.limit.load(Ordering::Relaxed)
    }

    /// Sets the encryption limit, shared by every clone of this handle and every cipher made
    /// from it (other handles of the same key keep their own limit but count against the same
    /// shared count). May be lowered below the current count, which refuses further encryptions.
    /// Must be between 1 and [`DEFAULT_USAGE_LIMIT`] (2^32).
    pub fn set_usage_limit(&self, limit: u64) -> Result<()> {
        if limit == 0 || limit > DEFAULT_USAGE_LIMIT {
            return Err(Error::InvalidArgument("usage limit must be between 1 and 2^32"));
        }
        self.inner.limit.store(limit, Ordering::Relaxed);
        Ok(())
    }

    /// Reserves `n` encryptions under this key, or fails with [`Error::UsageLimit`] without
    /// reserving any when that would pass the limit. One `fetch_add` (no compare-and-swap loop,
    /// which retries while two threads sharing the key contend for the counter); a reservation
    /// that passes the limit is taken back at once, so near the limit two concurrent callers
    /// may both be refused where one of them alone would have fitted (never both admitted).
    pub(crate) fn reserve_encryptions(&self, n: u64) -> Result<()> {
        let limit = self.inner.limit.load(Ordering::Relaxed);
        if n > limit {
            return Err(Error::UsageLimit("the key reached its encryption limit; rotate to a new key"));
        }
        // The count stays below 2^62 (`restore_usage_count` caps it) and `n` <= 2^32, so the
        // add cannot wrap.
        let old = self.inner.encryptions.fetch_add(n, Ordering::Relaxed);
        if old.checked_add(n).is_some_and(|t| t <= limit) {
            return Ok(());
        }
        self.inner.encryptions.fetch_sub(n, Ordering::Relaxed);
        Err(Error::UsageLimit("the key reached its encryption limit; rotate to a new key"))
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

/// How this process holds key material (see `docs/SECURITY.md`, "Key memory").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMemoryStatus {
    /// Every page holding key material is locked into RAM (`mlock`), so it is never written to
    /// swap. False when the process lacks the limit (`RLIMIT_MEMLOCK`) or the system refused:
    /// key material is then in ordinary pageable memory (still no-dump).
    pub locked: bool,
    /// Every page holding key material is excluded from core dumps (`MADV_DONTDUMP`; Linux).
    pub nodump: bool,
}

/// How key material is held in this process: every [`Key`]'s material lives in 64-byte slots of
/// page slabs that are locked into RAM and excluded from core dumps; when locking fails (no
/// `RLIMIT_MEMLOCK` left) keys keep working from unlocked, no-dump pages and this reports
/// `locked: false`. The answer covers every slab mapped so far (the first is mapped by this
/// call if none is), and the call locks slabs it could not lock before if the limit now allows.
/// Does no cryptography. Fails only if no memory can be mapped.
pub fn key_memory_status() -> Result<KeyMemoryStatus> {
    let s = crate::sys::mem::status()?;
    Ok(KeyMemoryStatus { locked: s.locked, nodump: s.nodump })
}

/// The blob format byte a key is written with: [`BLOB_FORMAT_V1`] for a key without a purpose
/// (byte-identical to the blobs made before purposes existed), [`BLOB_FORMAT_V2`] otherwise.
pub(crate) fn blob_format(key: &Key) -> u8 {
    if key.purpose() == KeyPurpose::None {
        BLOB_FORMAT_V1
    } else {
        BLOB_FORMAT_V2
    }
}

/// Serialises the inner record: v1 `key_type (1) | key_version (u32 BE) | key_id (16) |
/// material` for a key without a purpose; v2 `key_type (1) | purpose (1) | key_version (u32 BE)
/// | key_id (16) | material` for a key with one (the format byte is [`blob_format`]).
fn encode_inner(key: &Key, key_version: u32) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(INNER_HEADER_LEN + 1 + 64));
    v.push(key.key_type() as u8);
    if key.purpose() != KeyPurpose::None {
        v.push(key.purpose() as u8);
    }
    v.extend_from_slice(&key_version.to_be_bytes());
    v.extend_from_slice(&key.id());
    v.extend_from_slice(key.material());
    v
}

/// Parses and checks an inner record of `format` ([`BLOB_FORMAT_V1`] or [`BLOB_FORMAT_V2`]);
/// every failure is the one authentication error. The format byte sits outside the KWP layer,
/// but a v1 record read as v2 (or the reverse) is one byte off the material length of every
/// type, so a changed format byte fails here too.
fn decode_inner(format: u8, inner: &[u8]) -> Result<(Key, u32)> {
    const BAD: Error = Error::AuthenticationFailed("wrapped key record is invalid");
    let (purpose, rest) = match format {
        BLOB_FORMAT_V1 if !inner.is_empty() => (KeyPurpose::None, &inner[1..]),
        // A v2 record always carries a purpose: 0 (none) is written as v1, never as v2.
        BLOB_FORMAT_V2 if inner.len() >= 2 => match KeyPurpose::from_u32(u32::from(inner[1])) {
            Ok(KeyPurpose::None) | Err(_) => return Err(BAD),
            Ok(p) => (p, &inner[2..]),
        },
        _ => return Err(BAD),
    };
    // `rest` = key_version (4) | key_id (16) | material.
    if rest.len() < INNER_HEADER_LEN - 1 {
        return Err(BAD);
    }
    let key_type = KeyType::from_u32(u32::from(inner[0])).map_err(|_| BAD)?;
    let material = &rest[INNER_HEADER_LEN - 1..];
    if material.len() != key_type.material_len() {
        return Err(BAD);
    }
    let version = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let key = Key::from_material(key_type, SecretBytes::copy_from(material).map_err(|_| BAD)?).map_err(|_| BAD)?;
    if key.id()[..] != rest[4..INNER_HEADER_LEN - 1] {
        return Err(BAD);
    }
    // An XTS key-wrapping key cannot be made; a record claiming one is not authentic.
    Ok((key.into_purpose(purpose).map_err(|_| BAD)?, version))
}

fn kwp_len(plain_len: usize) -> usize {
    plain_len.div_ceil(8) * 8 + 8
}

/// AES-256-KWP of `plain` under `kek`, appended to `out`: the module's `AES_wrap_key_padded`
/// through `sys`, whose key schedule is cleansed after the call.
pub(crate) fn kwp_wrap(kek: &[u8], plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.resize(start + kwp_len(plain.len()), 0);
    let n = service(|| crate::sys::aes256_kwp_wrap(kek, plain, &mut out[start..]).ok_or(()))
        .map_err(|()| Error::Internal("AES-KWP wrap failed"))?;
    out.truncate(start + n);
    Ok(())
}

/// AES-256-KWP unwrap of `wrapped` under `kek` (the module's `AES_unwrap_key_padded` through
/// `sys`, schedule cleansed). Every failure is [`Error::AuthenticationFailed`].
pub(crate) fn kwp_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    const BAD: Error = Error::AuthenticationFailed("AES-KWP integrity check failed");
    if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
        return Err(BAD);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = service(|| crate::sys::aes256_kwp_unwrap(kek, wrapped, &mut out).ok_or(())).map_err(|()| BAD)?;
    out.truncate(n);
    Ok(out)
}

/// Length in bytes of a wrapped-key blob for a key of `key_type`, with or without a purpose:
/// the v2 record's purpose byte fits in the KWP padding of both types (54 and 86 bytes pad to
/// 56 and 88, as 53 and 85 do).
pub fn wrapped_len(key_type: KeyType) -> usize {
    WRAP_HEADER_LEN + kwp_len(INNER_HEADER_LEN + key_type.material_len())
}

/// Length in bytes of a password file for a key of `key_type`, with or without a purpose.
pub fn password_file_len(key_type: KeyType) -> usize {
    PASSWORD_HEADER_LEN + kwp_len(INNER_HEADER_LEN + key_type.material_len())
}

/// Wraps `key` under `kek` (an AES-256 key-encryption key) with its `key_version`:
/// `0x57 | 0x01 | kek_id (16) | AES-KWP(kek, type | version BE | key_id | material)` for a key
/// without a purpose, `0x57 | 0x02 | kek_id | AES-KWP(kek, type | purpose | version BE | key_id
/// | material)` for a key with one. `kek` must be a key-wrapping key or have no purpose.
pub fn wrap(kek: &Key, key: &Key, key_version: u32) -> Result<Vec<u8>> {
    operation(|| wrap_inner(kek, key, key_version))
}

pub(crate) fn wrap_inner(kek: &Key, key: &Key, key_version: u32) -> Result<Vec<u8>> {
    kek.check_unlocked()?;
    key.check_unlocked()?;
    kek.expect_type(KeyType::Aes256, "the key-encryption key must be an AES-256 key")?;
    kek.require_purpose(KeyPurpose::KeyWrapping)?;
    let inner = encode_inner(key, key_version);
    let mut blob = Vec::with_capacity(wrapped_len(key.key_type()));
    blob.push(WRAP_MAGIC);
    blob.push(blob_format(key));
    blob.extend_from_slice(&kek.id());
    kwp_wrap(kek.material(), &inner, &mut blob)?;
    Ok(blob)
}

/// The key id of the key-encryption key named in a wrapped-key blob (format 0x01 or 0x02),
/// without any key.
pub fn wrapped_kek_id(blob: &[u8]) -> Result<KeyId> {
    if blob.len() < WRAP_HEADER_LEN || blob[0] != WRAP_MAGIC || !matches!(blob[1], BLOB_FORMAT_V1 | BLOB_FORMAT_V2) {
        return Err(Error::AuthenticationFailed("not a Cellar wrapped-key blob"));
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&blob[2..WRAP_HEADER_LEN]);
    Ok(id)
}

/// Unwraps a blob made by [`wrap`], returning the key (with its purpose: none for a format
/// 0x01 blob) and its key version. Checks the KEK id, the KWP integrity check, the lengths, the
/// purpose byte and the inner key id; any mismatch is [`Error::AuthenticationFailed`]. `kek`
/// must be a key-wrapping key or have no purpose ([`Error::InvalidKey`]).
pub fn unwrap(kek: &Key, blob: &[u8]) -> Result<(Key, u32)> {
    operation(|| unwrap_inner(kek, blob))
}

pub(crate) fn unwrap_inner(kek: &Key, blob: &[u8]) -> Result<(Key, u32)> {
    kek.expect_type(KeyType::Aes256, "the key-encryption key must be an AES-256 key")?;
    kek.require_purpose(KeyPurpose::KeyWrapping)?;
    let kek_id = wrapped_kek_id(blob)?;
    if kek_id != kek.id() {
        return Err(Error::AuthenticationFailed("the blob was wrapped under another key-encryption key"));
    }
    let inner = kwp_unwrap(kek.material(), &blob[WRAP_HEADER_LEN..])?;
    decode_inner(blob[1], &inner)
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
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn password_seal(magic: u8, secret: &[u8], password: &[u8], iterations: u32) -> Result<Vec<u8>> {
    password_seal_format(magic, BLOB_FORMAT_V1, secret, password, iterations)
}

/// [`password_seal`] with another format byte at offset 1 (the keyring's versioned exports).
pub(crate) fn password_seal_format(
    magic: u8,
    format: u8,
    secret: &[u8],
    password: &[u8],
    iterations: u32,
) -> Result<Vec<u8>> {
    check_password(password)?;
    if !(MIN_PASSWORD_ITERATIONS..=MAX_PASSWORD_ITERATIONS).contains(&iterations) {
        return Err(Error::InvalidArgument("iterations must be between 100000 and 10000000"));
    }
    let mut salt = [0u8; PASSWORD_SALT_LEN];
    fips::random(&mut salt)?;
    let kek = password_kek(password, &salt, iterations)?;
    let mut blob = Vec::with_capacity(PASSWORD_HEADER_LEN + kwp_len(secret.len()));
    blob.push(magic);
    blob.push(format);
    blob.extend_from_slice(&iterations.to_be_bytes());
    blob.extend_from_slice(&salt);
    kwp_wrap(&kek[..], secret, &mut blob)?;
    Ok(blob)
}

/// Opens [`password_seal`]'s output. Any mismatch, including a wrong password, is
/// [`Error::AuthenticationFailed`]; a short password is [`Error::InvalidArgument`].
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn password_open(magic: u8, blob: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    password_open_formats(magic, &[BLOB_FORMAT_V1], blob, password)
}

/// [`password_open`] accepting any of `formats` at offset 1 (the caller checks that the sealed
/// secret agrees with the format byte, which is not itself authenticated).
pub(crate) fn password_open_formats(
    magic: u8,
    formats: &[u8],
    blob: &[u8],
    password: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    const BAD: Error = Error::AuthenticationFailed("not a valid password file, or wrong password");
    check_password(password)?;
    if blob.len() < PASSWORD_HEADER_LEN + 16
        || (blob.len() - PASSWORD_HEADER_LEN) % 8 != 0
        || blob[0] != magic
        || !formats.contains(&blob[1])
    {
        // Shape checks first, so a truncated or extended file fails without running PBKDF2.
        return Err(BAD);
    }
    let iterations = u32::from_be_bytes([blob[2], blob[3], blob[4], blob[5]]);
    if !(MIN_PASSWORD_ITERATIONS..=MAX_PASSWORD_ITERATIONS).contains(&iterations) {
        return Err(BAD);
    }
    let kek = password_kek(password, &blob[6..PASSWORD_HEADER_LEN], iterations)?;
    kwp_unwrap(&kek[..], &blob[PASSWORD_HEADER_LEN..]).map_err(|_| BAD)
}

/// Exports `key` (with its `key_version`) as a password-protected key file:
/// `0x50 | format | iterations (u32 BE) | salt (16) | AES-KWP(PBKDF2(pw, salt, it, 32), inner)`,
/// format 0x01 with the v1 inner record for a key without a purpose, 0x02 with the v2 record
/// (which carries the purpose) otherwise.
/// The password must be at least 14 bytes and `iterations` between 100 000 and 10 000 000
/// (600 000 is the recommended default, [`DEFAULT_PASSWORD_ITERATIONS`]).
pub fn export_with_password(key: &Key, key_version: u32, password: &[u8], iterations: u32) -> Result<Vec<u8>> {
    operation(|| {
        key.check_unlocked()?;
        let inner = encode_inner(key, key_version);
        password_seal_format(PASSWORD_MAGIC, blob_format(key), &inner, password, iterations)
    })
}

/// Imports a password-protected key file (format 0x01 or 0x02), returning the key (with the
/// purpose the file carries; none for format 0x01) and its key version.
pub fn import_with_password(blob: &[u8], password: &[u8]) -> Result<(Key, u32)> {
    operation(|| {
        let inner = password_open_formats(PASSWORD_MAGIC, &[BLOB_FORMAT_V1, BLOB_FORMAT_V2], blob, password)?;
        decode_inner(blob[1], &inner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fips::{last_operation_approved, Approval};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    // ---- RFC 5869 appendix A, test cases 1-3 (HKDF-SHA256) through `hkdf_sha256` ----

    struct Rfc5869 {
        ikm: &'static str,
        salt: &'static str,
        info: &'static str,
        okm: &'static str,
    }

    const RFC5869: [Rfc5869; 3] = [
        Rfc5869 {
            ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            salt: "000102030405060708090a0b0c",
            info: "f0f1f2f3f4f5f6f7f8f9",
            okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        },
        Rfc5869 {
            ikm: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                  202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
                  404142434445464748494a4b4c4d4e4f",
            salt: "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
                   808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
                   a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
            info: "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf\
                   d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef\
                   f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
            okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
                  59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
                  cc30c58179ec3e87c14c01d5c1f3434f1d87",
        },
        Rfc5869 {
            ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            salt: "",
            info: "",
            okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        },
    ];

    fn unspace(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn hkdf_rfc5869_test_cases_1_to_3() {
        for (i, tc) in RFC5869.iter().enumerate() {
            let (ikm, salt, info, okm) =
                (h(&unspace(tc.ikm)), h(&unspace(tc.salt)), h(&unspace(tc.info)), h(&unspace(tc.okm)));
            let mut out = vec![0u8; okm.len()];
            operation(|| hkdf_sha256(&ikm, &salt, &[&info], &mut out)).unwrap();
            assert_eq!(out, okm, "RFC 5869 test case {}", i + 1);
            // Cases 1 and 2 have a salt and info: counted. Case 3 has neither: not counted.
            let expected = if i < 2 { Approval::Approved } else { Approval::NotApproved };
            assert_eq!(last_operation_approved(), expected, "RFC 5869 test case {}", i + 1);
        }
    }

    /// RFC 5869 defines an absent salt as HashLen zero bytes: `ZERO_SALT` gives test case 3's OKM.
    #[test]
    fn zero_salt_is_rfc5869_absent_salt() {
        let tc = &RFC5869[2];
        let mut out = vec![0u8; 42];
        hkdf_sha256(&h(tc.ikm), &ZERO_SALT, &[&[]], &mut out).unwrap();
        assert_eq!(out, h(tc.okm));
    }

    /// Info parts are concatenated: split info gives the same OKM as whole info (test case 1).
    #[test]
    fn hkdf_info_parts_concatenate() {
        let tc = &RFC5869[0];
        let info = h(tc.info);
        let mut out = vec![0u8; 42];
        hkdf_sha256(&h(tc.ikm), &h(tc.salt), &[&info[..3], &info[3..7], &[], &info[7..]], &mut out).unwrap();
        assert_eq!(out, h(tc.okm));
    }

    #[test]
    fn hkdf_too_long_output_is_an_error() {
        let mut out = vec![0u8; 255 * 32 + 1];
        assert!(operation(|| hkdf_sha256(b"ikm", &ZERO_SALT, &[b"info"], &mut out)).is_err());
        assert_eq!(last_operation_approved(), Approval::Unknown);
    }

    // ---- NIST SP 800-38F KWP (CAVP KWP_AE_256 / KWP_AD_256) through kwp_wrap / kwp_unwrap ----

    /// One CAVP record: `K`, `P` (absent for FAIL), `C`.
    struct Cavp {
        count: String,
        k: Vec<u8>,
        p: Option<Vec<u8>>,
        c: Vec<u8>,
        fail: bool,
    }

    fn cavp(file: &str) -> Vec<Cavp> {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut out = Vec::new();
        let mut cur: Option<Cavp> = None;
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("COUNT = ") {
                out.extend(cur.take());
                cur = Some(Cavp { count: v.to_string(), k: vec![], p: None, c: vec![], fail: false });
            } else if let Some(c) = cur.as_mut() {
                if let Some(v) = line.strip_prefix("K = ") {
                    c.k = h(v);
                } else if let Some(v) = line.strip_prefix("P = ") {
                    c.p = Some(h(v));
                } else if let Some(v) = line.strip_prefix("C = ") {
                    c.c = h(v);
                } else if line == "FAIL" {
                    c.fail = true;
                }
            }
        }
        out.extend(cur);
        out
    }

    #[test]
    fn kwp_ae_256_cavp() {
        let vectors = cavp("KWP_AE_256.txt");
        assert_eq!(vectors.len(), 500);
        for v in &vectors {
            let p = v.p.as_ref().expect("AE vectors have P");
            let mut out = vec![0xAA];
            operation(|| kwp_wrap(&v.k, p, &mut out)).unwrap();
            assert_eq!(last_operation_approved(), Approval::Approved, "COUNT {}", v.count);
            assert_eq!(out[0], 0xAA, "kwp_wrap appends");
            assert_eq!(out[1..], v.c[..], "KWP_AE_256 COUNT {} (|P| = {})", v.count, p.len());
            assert_eq!(kwp_len(p.len()), v.c.len());
        }
    }

    #[test]
    fn kwp_ad_256_cavp_including_failures() {
        let vectors = cavp("KWP_AD_256.txt");
        assert_eq!(vectors.len(), 500);
        let fails = vectors.iter().filter(|v| v.fail).count();
        assert_eq!(fails, 100, "the file's FAIL cases are all read");
        for v in &vectors {
            let r = operation(|| kwp_unwrap(&v.k, &v.c));
            if v.fail {
                assert!(v.p.is_none());
                assert_eq!(
                    r.err(),
                    Some(Error::AuthenticationFailed("AES-KWP integrity check failed")),
                    "KWP_AD_256 COUNT {} must fail",
                    v.count
                );
                assert_eq!(last_operation_approved(), Approval::Unknown);
            } else {
                let p = r.unwrap_or_else(|e| panic!("KWP_AD_256 COUNT {}: {e}", v.count));
                assert_eq!(&p[..], &v.p.as_ref().unwrap()[..], "KWP_AD_256 COUNT {}", v.count);
                assert_eq!(last_operation_approved(), Approval::Approved);
            }
        }
    }

    // ---- Formats and checks the public tests cannot reach (they need the KWP primitive) ----

    fn kek() -> Key {
        Key::import(KeyType::Aes256, &[7u8; 32]).unwrap()
    }

    /// A blob with a valid KWP layer around `inner`, as `wrap` would frame it.
    fn frame(kek: &Key, inner: &[u8]) -> Vec<u8> {
        let mut blob = vec![WRAP_MAGIC, BLOB_FORMAT_V1];
        blob.extend_from_slice(&kek.id());
        kwp_wrap(kek.material(), inner, &mut blob).unwrap();
        blob
    }

    #[test]
    fn wrap_layout_matches_the_format() {
        let kek = kek();
        let key = Key::import(KeyType::Aes256Xts, &(0u8..64).collect::<Vec<_>>()).unwrap();
        let blob = wrap(&kek, &key, 0x0102_0304).unwrap();
        assert_eq!(blob.len(), wrapped_len(KeyType::Aes256Xts));
        assert_eq!(&blob[..2], &[0x57, 0x01]);
        assert_eq!(&blob[2..18], &kek.id());
        let inner = kwp_unwrap(kek.material(), &blob[18..]).unwrap();
        assert_eq!(inner[0], 2);
        assert_eq!(&inner[1..5], &[1, 2, 3, 4]);
        assert_eq!(&inner[5..21], &key.id());
        assert_eq!(&inner[21..], key.material());
        assert_eq!(wrapped_len(KeyType::Aes256), 82);
        assert_eq!(wrapped_len(KeyType::Aes256Xts), 114);
        assert_eq!(password_file_len(KeyType::Aes256), 86);
        assert_eq!(password_file_len(KeyType::Aes256Xts), 118);
    }

    /// Well-wrapped records whose contents are inconsistent are refused: the KWP check alone is
    /// not enough (wrong inner key id, unknown type, wrong length, equal XTS halves).
    #[test]
    fn unwrap_checks_the_inner_record() {
        let kek = kek();
        let material = [9u8; 32];
        let key = Key::import(KeyType::Aes256, &material).unwrap();
        let good = encode_inner(&key, 5);
        assert_eq!(unwrap(&kek, &frame(&kek, &good)).unwrap().1, 5);

        let mut bad_id = good.to_vec();
        bad_id[5] ^= 1;
        let mut bad_type = good.to_vec();
        bad_type[0] = 3;
        let mut xts_type = good.to_vec();
        xts_type[0] = 2; // AES-256-XTS with 32 bytes of material
        let mut short = good.to_vec();
        short.pop();
        let mut long = good.to_vec();
        long.push(0);
        let xts_equal = {
            let mut v = vec![2u8, 0, 0, 0, 1];
            let m = [3u8; 64];
            v.extend_from_slice(&compute_id(&m));
            v.extend_from_slice(&m);
            v
        };
        let header_only = good[..INNER_HEADER_LEN].to_vec();
        for (what, inner) in [
            ("inner key id", bad_id),
            ("unknown type", bad_type),
            ("type/length mismatch", xts_type),
            ("short material", short),
            ("long material", long),
            ("equal XTS halves", xts_equal),
            ("no material", header_only),
            ("tiny record", vec![1u8]),
        ] {
            let r = unwrap(&kek, &frame(&kek, &inner));
            assert!(
                matches!(r, Err(Error::AuthenticationFailed(_))),
                "{what}: {:?}",
                r.map(|(k, v)| (k.id(), v))
            );
            assert_eq!(last_operation_approved(), Approval::Unknown);
        }
    }

    /// A blob of `format` with a valid KWP layer around `inner`.
    fn frame_format(kek: &Key, format: u8, inner: &[u8]) -> Vec<u8> {
        let mut blob = frame(kek, inner);
        blob[1] = format;
        blob
    }

    /// Format 0x02: the purpose byte after the type, the same blob lengths as 0x01.
    #[test]
    fn wrap_v2_layout_carries_the_purpose() {
        let kek = kek();
        for (t, p) in [
            (KeyType::Aes256, KeyPurpose::DataEncryption),
            (KeyType::Aes256, KeyPurpose::KeyWrapping),
            (KeyType::Aes256, KeyPurpose::KeyDerivation),
            (KeyType::Aes256Xts, KeyPurpose::DataEncryption),
            (KeyType::Aes256Xts, KeyPurpose::KeyDerivation),
        ] {
            let key = Key::generate_with_purpose(t, p).unwrap();
            let blob = wrap(&kek, &key, 0x0A0B_0C0D).unwrap();
            assert_eq!(blob.len(), wrapped_len(t), "{t:?} {p:?}: padding-neutral");
            assert_eq!(&blob[..2], &[0x57, 0x02]);
            assert_eq!(&blob[2..18], &kek.id());
            let inner = kwp_unwrap(kek.material(), &blob[18..]).unwrap();
            assert_eq!(inner.len(), 1 + 1 + 4 + 16 + t.material_len());
            assert_eq!(inner[0], t as u8);
            assert_eq!(inner[1], p as u8);
            assert_eq!(&inner[2..6], &[0x0A, 0x0B, 0x0C, 0x0D]);
            assert_eq!(&inner[6..22], &key.id());
            assert_eq!(&inner[22..], key.material());
            let (back, v) = unwrap(&kek, &blob).unwrap();
            assert_eq!((back.purpose(), back.id(), v), (p, key.id(), 0x0A0B_0C0D));
            // The password file: format byte 0x02 at offset 1, same length as 0x01.
            let file = export_with_password(&key, 3, b"correct horse battery", MIN_PASSWORD_ITERATIONS).unwrap();
            assert_eq!(&file[..2], &[0x50, 0x02]);
            assert_eq!(file.len(), password_file_len(t));
            let (back, v) = import_with_password(&file, b"correct horse battery").unwrap();
            assert_eq!((back.purpose(), back.id(), v), (p, key.id(), 3));
        }
        // A key without a purpose still writes format 0x01.
        let plain = Key::generate(KeyType::Aes256).unwrap();
        assert_eq!(wrap(&kek, &plain, 1).unwrap()[1], 0x01);
    }

    /// Inside an authentic KWP layer, a v2 record with a purpose byte out of range (0 = none is
    /// never written as v2), an XTS key-wrapping key, or a format byte that disagrees with the
    /// record, is the one authentication error.
    #[test]
    fn unwrap_checks_the_v2_purpose_byte() {
        let kek = kek();
        let key = Key::import_with_purpose(KeyType::Aes256, &[9u8; 32], KeyPurpose::DataEncryption).unwrap();
        let good = encode_inner(&key, 5);
        assert_eq!(good[1], 1);
        let (k, v) = unwrap(&kek, &frame_format(&kek, BLOB_FORMAT_V2, &good)).unwrap();
        assert_eq!((k.purpose(), v), (KeyPurpose::DataEncryption, 5));
        let mut cases: Vec<(String, u8, Vec<u8>)> = Vec::new();
        for b in [0u8, 4, 5, 0x7F, 0x80, 0xFF] {
            let mut r = good.to_vec();
            r[1] = b;
            cases.push((format!("purpose byte {b:#04x}"), BLOB_FORMAT_V2, r));
        }
        let xts = Key::generate(KeyType::Aes256Xts).unwrap();
        let mut xts_kw = vec![2u8, KeyPurpose::KeyWrapping as u8, 0, 0, 0, 1];
        xts_kw.extend_from_slice(&xts.id());
        xts_kw.extend_from_slice(xts.material());
        cases.push(("XTS key-wrapping key".into(), BLOB_FORMAT_V2, xts_kw));
        // The format byte is outside KWP: flipping it makes the record one byte off its type.
        cases.push(("v2 record read as v1".into(), BLOB_FORMAT_V1, good.to_vec()));
        let v1 = encode_inner(&Key::import(KeyType::Aes256, &[9u8; 32]).unwrap(), 5);
        cases.push(("v1 record read as v2".into(), BLOB_FORMAT_V2, v1.to_vec()));
        let v1x = encode_inner(&xts, 5);
        cases.push(("v1 XTS record read as v2".into(), BLOB_FORMAT_V2, v1x.to_vec()));
        cases.push(("unknown format 0x03".into(), 0x03, good.to_vec()));
        cases.push(("v2 tiny record".into(), BLOB_FORMAT_V2, vec![1u8, 1]));
        for (what, format, inner) in cases {
            let r = unwrap(&kek, &frame_format(&kek, format, &inner));
            assert!(matches!(r, Err(Error::AuthenticationFailed(_))), "{what}: {:?}", r.map(|(k, v)| (k.id(), v)));
            assert_eq!(last_operation_approved(), Approval::Unknown, "{what}");
            // The same record in a password file.
            let mut file = password_seal(PASSWORD_MAGIC, &inner, b"correct horse battery", MIN_PASSWORD_ITERATIONS).unwrap();
            file[1] = format;
            let r = import_with_password(&file, b"correct horse battery");
            assert!(matches!(r, Err(Error::AuthenticationFailed(_))), "password file, {what}");
        }
    }

    #[test]
    fn password_open_checks_shape_before_pbkdf2() {
        let blob = password_seal(PASSWORD_MAGIC, &[1u8; 32], b"correct horse battery", MIN_PASSWORD_ITERATIONS).unwrap();
        assert_eq!(&blob[..6], &[0x50, 0x01, 0x00, 0x01, 0x86, 0xa0]);
        let opened = password_open(PASSWORD_MAGIC, &blob, b"correct horse battery").unwrap();
        assert_eq!(&opened[..], &[1u8; 32]);
        // Another magic is refused: password_seal serves other blob kinds too.
        assert!(matches!(password_open(b'X', &blob, b"correct horse battery"), Err(Error::AuthenticationFailed(_))));
        // A salt is random per file.
        let again = password_seal(PASSWORD_MAGIC, &[1u8; 32], b"correct horse battery", MIN_PASSWORD_ITERATIONS).unwrap();
        assert_ne!(blob[6..22], again[6..22]);
    }

    #[test]
    fn xts_halves_must_differ() {
        let mut m = [5u8; 64];
        assert_eq!(
            Key::import(KeyType::Aes256Xts, &m).unwrap_err(),
            Error::InvalidKey("AES-256-XTS key halves must differ")
        );
        m[63] = 6;
        assert!(Key::import(KeyType::Aes256Xts, &m).is_ok());
        m[63] = 5;
        m[0] = 6;
        assert!(Key::import(KeyType::Aes256Xts, &m).is_ok());
    }

    #[test]
    fn usage_reservation() {
        // A generated key: a fixed one would share its count with the other tests' handles.
        let k = Key::generate(KeyType::Aes256).unwrap();
        k.set_usage_limit(3).unwrap();
        k.reserve_encryptions(2).unwrap();
        assert!(matches!(k.reserve_encryptions(2), Err(Error::UsageLimit(_))));
        assert_eq!(k.usage_count(), 2, "a refused reservation reserves nothing");
        k.reserve_encryptions(1).unwrap();
        assert!(matches!(k.reserve_encryptions(1), Err(Error::UsageLimit(_))));
        assert!(matches!(k.reserve_encryptions(u64::MAX), Err(Error::UsageLimit(_))));
        assert_eq!(k.usage_count(), 3);
        // Clones share the counter.
        assert_eq!(k.clone().usage_count(), 3);
    }

    #[test]
    fn debug_shows_no_material() {
        let k = Key::import(KeyType::Aes256, &[0xABu8; 32]).unwrap();
        let d = format!("{k:?}");
        assert!(d.contains("AES-256"));
        assert!(d.contains(&hex::encode(k.id())));
        assert!(!d.contains("abababab"), "{d}");
    }
}
