//! The tenant keyring ("manage keys", SPEC section 3): one active tenant key plus retained older
//! versions, rotation, rewrap, retirement (crypto-shredding), lock and unlock, external key
//! providers and a sealed export of the whole state. Hierarchy, lifecycle and byte formats:
//! `docs/KEYS.md`.
//!
//! Data-key blobs are exactly the wrapped-key blobs of [`crate::keys::wrap`]:
//! `0x57 | 0x01 | kek_id (16) | AES-KWP(tenant key, type | version BE | key_id | material)` (or
//! `0x57 | 0x02 | ...` with the v2 record `type | purpose | version BE | key_id | material` for a
//! data key with a purpose), where
//! `kek_id` is the tenant version's key id (which selects the version on unwrap) and the inner
//! `version` is the tenant version number. A provider version writes the same header and puts
//! whatever its `wrap` returns (for an HSM doing AES-KWP: the same bytes) after it.
//!
//! Every local tenant key is a key-wrapping key ([`KeyPurpose::KeyWrapping`], SP 800-57): the
//! keyring fixes that purpose on its own copy whether it generated the key, was given it (a
//! customer key, a rotation or unlock key, which must have no purpose or key wrapping) or read
//! it from an export. A root key that seals exports must be usable for key wrapping too.
//!
//! Thread rules: every method takes `&self`; the state sits behind an `RwLock`. Operations with
//! a local tenant key hold the read lock for the whole key-wrap, so once [`Keyring::lock`] or
//! [`Keyring::retire`] returns no copy of the wiped material remains anywhere in Cellar. Provider
//! callbacks run with no lock held, so they may be slow or call back into Cellar.

use crate::error::{Error, Result};
use crate::fips::{operation, service};
use crate::keys::{self, Key, KeyId, KeyPurpose, KeyType, TenantGate, KEY_ID_LEN};
use core::fmt;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use zeroize::Zeroizing;

/// Most versions (including retired ones, which keep their id) one keyring holds.
pub const MAX_VERSIONS: usize = 4096;
/// Most bytes a provider's `wrap` may return.
pub const MAX_PROVIDER_WRAPPED_LEN: usize = 512;
/// Size of the buffer a provider's `unwrap` writes into (the largest inner record is 86 bytes).
pub const MAX_PROVIDER_UNWRAPPED_LEN: usize = 128;
/// Longest data-key blob a keyring produces: header (18) + [`MAX_PROVIDER_WRAPPED_LEN`].
/// Blobs under a local version are [`keys::wrapped_len`] bytes (82 or 114).
pub const MAX_WRAPPED_LEN: usize = WRAP_HEADER_LEN + MAX_PROVIDER_WRAPPED_LEN;
/// Exported state sealed under a root key: magic byte `'R'`.
pub const EXPORT_ROOT_MAGIC: u8 = 0x52;
/// Exported state sealed under a password: magic byte `'K'`.
pub const EXPORT_PASSWORD_MAGIC: u8 = 0x4B;
/// Format byte of both export forms and of the state record inside them, first version (no
/// generation; still read, as generation 0).
pub const EXPORT_FORMAT_V1: u8 = 0x01;
/// Format byte of exports that carry the keyring's generation (written since finding 3 of the
/// security review): the state header holds `generation (u64 BE)` after the format byte.
pub const EXPORT_FORMAT_V2: u8 = 0x02;
/// Generation of a new keyring. Every change of the persisted state adds 1; a version-1
/// export (no generation recorded) imports as generation 0.
pub const FIRST_GENERATION: u64 = 1;

const WRAP_HEADER_LEN: usize = 2 + KEY_ID_LEN;
const ROOT_HEADER_LEN: usize = 2 + KEY_ID_LEN;
const PASSWORD_HEADER_LEN: usize = 2 + 4 + 16;
const INNER_HEADER_LEN: usize = 1 + 4 + KEY_ID_LEN;
const STATE_HEADER_LEN: usize = 2 + 4 + 4;
const STATE_HEADER_LEN_V2: usize = 2 + 8 + 4 + 4;
const ENTRY_HEADER_LEN: usize = 4 + 1 + KEY_ID_LEN;
const KIND_LOCAL: u8 = 1;
const KIND_PROVIDER: u8 = 2;
const KIND_RETIRED: u8 = 3;
/// A local version whose material is not in process (locked): exported as its id only, and
/// imported locked, awaiting `unlock` with its key.
const KIND_LOCKED: u8 = 4;
/// A provider version with its public reference: `id | len (u16 BE) | reference`.
const KIND_PROVIDER_REF: u8 = 5;
/// Longest provider reference a version keeps.
pub const MAX_REFERENCE_LEN: usize = 4096;
const TENANT_MATERIAL_LEN: usize = 32;

/// Why a provider callback failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// `unwrap` was given bytes that do not authenticate under the provider's key (a tampered
    /// blob): reported as [`Error::AuthenticationFailed`].
    Rejected,
    /// Any other failure (the HSM or KMS is unreachable, refused, timed out...): reported as
    /// [`Error::ProviderFailed`].
    Failed,
    /// A failure the provider describes itself, reported as this error (the built-in PKCS#11
    /// provider names the PKCS#11 return value this way). A wrap may not report
    /// [`Error::AuthenticationFailed`]: it becomes [`Error::ProviderFailed`].
    Cellar(Error),
}

/// An external key provider: stands in for a tenant key held outside the process (an HSM, a
/// cloud KMS). Cellar gives it the inner record of a data key
/// (`type (1) | tenant version (u32 BE) | data key id (16) | material`, or for a data key with a
/// purpose the v2 record `type (1) | purpose (1) | tenant version | data key id | material`) to
/// wrap, and the wrapped bytes to unwrap (opaque to the provider: return the record unchanged). Methods may be called from any thread, concurrently, with no keyring lock held.
pub trait KeyProvider: Send + Sync {
    /// The provider key's public 16-byte id; it names the provider version in blobs. It must
    /// differ from every other version's id in the keyring.
    fn key_id(&self) -> KeyId;
    /// Wraps `record`; the result must be 1 to [`MAX_PROVIDER_WRAPPED_LEN`] bytes.
    fn wrap(&self, record: &[u8]) -> core::result::Result<Vec<u8>, ProviderError>;
    /// Unwraps what [`KeyProvider::wrap`] returned; the result must be at most
    /// [`MAX_PROVIDER_UNWRAPPED_LEN`] bytes.
    fn unwrap(&self, wrapped: &[u8]) -> core::result::Result<Zeroizing<Vec<u8>>, ProviderError>;
    /// A public reference to the provider's key that exported keyring state records for this
    /// version (never material), so the host can reconnect after import; at most 4096 bytes.
    /// The PKCS#11 provider records the token and key (`src/provider/pkcs11.rs`). Default: none.
    fn reference(&self) -> Option<Vec<u8>> {
        None
    }
    /// True when the provider's wrap and unwrap run entirely in this module's approved services
    /// (the KMIP provider in fetch mode wraps with the module's AES-KWP): the operation then
    /// keeps indicator 1. Default: false (the provider did the cryptography: indicator 0).
    fn performed_in_module(&self) -> bool {
        false
    }
    /// Destroys the provider's key for good (used by [`Keyring::retire_destroying`]). Default:
    /// unsupported.
    fn destroy(&self) -> core::result::Result<(), ProviderError> {
        Err(ProviderError::Cellar(Error::InvalidArgument("this key provider cannot destroy its key")))
    }
}

/// Public facts about one version ([`Keyring::version_info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version number (1, 2, ...).
    pub version: u32,
    /// The tenant key's id (for a provider version, the provider's id).
    pub key_id: KeyId,
    /// This is the active version (new wraps use it).
    pub active: bool,
    /// Held by an external key provider.
    pub provider: bool,
    /// Retained but its material (or provider) is not in the process: locked, or imported
    /// without its provider. Unlock to use it.
    pub locked: bool,
    /// Retired: its material is destroyed and its blobs are unreadable for good.
    pub retired: bool,
}

enum Slot {
    /// A tenant key in process; `None` while locked.
    Local(Option<Key>),
    /// A provider; `None` while locked or after import until it is attached again.
    Provider(Option<Arc<dyn KeyProvider>>),
    /// Material destroyed; only the id remains (so the id cannot come back as a new version).
    Retired,
}

struct Version {
    number: u32,
    id: KeyId,
    provider: bool,
    slot: Slot,
    /// A provider version's public reference ([`KeyProvider::reference`]), kept while locked
    /// and carried by exports.
    reference: Option<Arc<[u8]>>,
}

impl Version {
    fn available(&self) -> bool {
        matches!(self.slot, Slot::Local(Some(_)) | Slot::Provider(Some(_)))
    }
}

struct State {
    /// Ascending by number.
    versions: Vec<Version>,
    active: u32,
    /// Monotonic: advanced by every change of the persisted state (rotate, add provider,
    /// retire); not by lock, unlock or attaching a provider, which change only what is in memory.
    generation: u64,
}

const LOCKED: Error = Error::TenantLocked("the tenant keyring is locked; unlock it with the active version's key");

impl State {
    fn by_number(&self, n: u32) -> Option<&Version> {
        self.versions.binary_search_by_key(&n, |v| v.number).ok().map(|i| &self.versions[i])
    }

    fn by_id(&self, id: &KeyId) -> Option<&Version> {
        self.versions.iter().find(|v| &v.id == id)
    }

    fn by_id_mut(&mut self, id: &KeyId) -> Option<&mut Version> {
        self.versions.iter_mut().find(|v| &v.id == id)
    }

    fn active(&self) -> Result<&Version> {
        self.by_number(self.active).ok_or(Error::Internal("the active version is missing"))
    }

    /// The tenant is usable only while the active version is available.
    fn ensure_unlocked(&self) -> Result<()> {
        if self.active()?.available() {
            Ok(())
        } else {
            Err(LOCKED)
        }
    }

    fn ensure_new_id(&self, id: &KeyId) -> Result<()> {
        if self.by_id(id).is_some() {
            return Err(Error::InvalidKey("a version with this key id is already in the keyring (or was retired)"));
        }
        Ok(())
    }

    fn push(&mut self, id: KeyId, slot: Slot) -> Result<u32> {
        if self.versions.len() >= MAX_VERSIONS {
            return Err(Error::InvalidArgument("the keyring holds the maximum number of versions"));
        }
        let last = self.versions.last().map_or(0, |v| v.number);
        let n = last.checked_add(1).ok_or(Error::InvalidArgument("version numbers are exhausted"))?;
        let g = self.next_generation()?;
        let provider = matches!(slot, Slot::Provider(_));
        let reference = match &slot {
            Slot::Provider(Some(p)) => p.reference().filter(|r| !r.is_empty() && r.len() <= MAX_REFERENCE_LEN).map(Arc::from),
            _ => None,
        };
        self.versions.push(Version { number: n, id, provider, slot, reference });
        self.active = n;
        self.generation = g;
        Ok(n)
    }

    fn next_generation(&self) -> Result<u64> {
        self.generation.checked_add(1).ok_or(Error::InvalidArgument("the keyring generation is exhausted"))
    }
}

/// A tenant keyring. See the module documentation; safe to share between threads (`Send + Sync`).
pub struct Keyring {
    state: RwLock<State>,
    guard: Guard,
}

/// What makes a lock a lock (issue 20): the tenant's lock flag, shared with every data key
/// unwrapped here (and the ciphers made from them), and the key ids of local versions whose
/// material exists only in this process (generated here, never exported), which a lock would
/// destroy for good.
struct Guard {
    gate: Arc<TenantGate>,
    /// Taken by export for its whole duration and by rotate after its state change, so a version
    /// is marked exported only when the export really holds it.
    unexported: Mutex<Vec<KeyId>>,
}

impl Guard {
    fn new(unexported: Vec<KeyId>, locked: bool) -> Self {
        let gate = Arc::new(TenantGate::default());
        gate.set_locked(locked);
        Guard { gate, unexported: Mutex::new(unexported) }
    }

    fn unexported(&self) -> std::sync::MutexGuard<'_, Vec<KeyId>> {
        self.unexported.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// [`Keyring::lock_with`] flag: lock even when versions generated here were never exported
/// (their material is destroyed for good: crypto-shredding of the whole tenant).
pub const LOCK_FORCE: u32 = 1;

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Keyring>();
};

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Keyring");
        if let Ok(st) = self.state.read() {
            d.field("active", &st.active).field("versions", &st.versions.len());
        }
        d.finish_non_exhaustive()
    }
}

/// A keyring-owned copy of a tenant key (never an `Arc` shared with the caller, so lock and
/// retire really wipe), or a fresh one from the DRBG; either way a key-wrapping key. A caller's
/// key of another purpose is refused ([`Error::InvalidKey`], naming both purposes).
fn tenant_copy(key: Option<&Key>) -> Result<Key> {
    match key {
        None => Key::generate(KeyType::Aes256)?.into_purpose(KeyPurpose::KeyWrapping),
        Some(k) => {
            k.expect_type(KeyType::Aes256, "a tenant key must be an AES-256 key")?;
            k.require_purpose(KeyPurpose::KeyWrapping)?;
            Key::import(KeyType::Aes256, k.material())?.into_purpose(KeyPurpose::KeyWrapping)
        }
    }
}

/// `key_type (1) | version (u32 BE) | key_id (16) | material`: the inner record of SPEC 3; for a
/// key with a purpose the v2 record, with `purpose (1)` after the type (blob format 0x02).
fn encode_record(key: &Key, version: u32) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(INNER_HEADER_LEN + 1 + key.key_type().material_len()));
    v.push(key.key_type() as u8);
    if key.purpose() != KeyPurpose::None {
        v.push(key.purpose() as u8);
    }
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&key.id());
    v.extend_from_slice(key.material());
    v
}

/// Reads a record [`encode_record`] wrote, of blob `format` (0x01: v1; 0x02: v2 with purpose).
fn decode_record(format: u8, rec: &[u8]) -> Result<(Key, u32)> {
    const BAD: Error = Error::AuthenticationFailed("the provider returned an invalid key record");
    let (purpose, o) = match format {
        keys::BLOB_FORMAT_V1 => (KeyPurpose::None, 0),
        keys::BLOB_FORMAT_V2 => match rec.get(1).map(|&b| KeyPurpose::from_u32(u32::from(b))) {
            Some(Ok(p)) if p != KeyPurpose::None => (p, 1),
            _ => return Err(BAD),
        },
        _ => return Err(BAD),
    };
    let h = INNER_HEADER_LEN + o;
    if rec.len() < h {
        return Err(BAD);
    }
    let kt = KeyType::from_u32(u32::from(rec[0])).map_err(|_| BAD)?;
    let key = Key::import(kt, &rec[h..]).map_err(|_| BAD)?;
    if key.id()[..] != rec[5 + o..h] {
        return Err(BAD);
    }
    let key = key.into_purpose(purpose).map_err(|_| BAD)?;
    Ok((key, u32::from_be_bytes([rec[1 + o], rec[2 + o], rec[3 + o], rec[4 + o]])))
}

fn map_provider(e: ProviderError) -> Error {
    match e {
        ProviderError::Rejected => Error::AuthenticationFailed("the key provider rejected the wrapped key"),
        ProviderError::Failed => Error::ProviderFailed("the key provider's callback failed"),
        ProviderError::Cellar(e) => e,
    }
}

fn provider_wrap(p: &dyn KeyProvider, record: &[u8]) -> Result<Vec<u8>> {
    // The wrapping is done by the provider, not by this module's approved services: the
    // operation reports indicator 0 (SPEC 1 and 10; security review finding 4).
    if !p.performed_in_module() {
        crate::fips::not_approved();
    }
    let w = p.wrap(record).map_err(|e| match e {
        // A wrap cannot be "unauthentic": any failure of it is the provider's.
        ProviderError::Rejected | ProviderError::Failed => map_provider(ProviderError::Failed),
        ProviderError::Cellar(Error::AuthenticationFailed(m)) => Error::ProviderFailed(m),
        ProviderError::Cellar(e) => e,
    })?;
    if w.is_empty() || w.len() > MAX_PROVIDER_WRAPPED_LEN {
        return Err(Error::ProviderFailed("the key provider's wrap returned a bad length"));
    }
    Ok(w)
}

fn provider_unwrap(p: &dyn KeyProvider, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    // As in `provider_wrap`: provider-performed cryptography reports 0.
    if !p.performed_in_module() {
        crate::fips::not_approved();
    }
    let r = p.unwrap(wrapped).map_err(map_provider)?;
    if r.len() > MAX_PROVIDER_UNWRAPPED_LEN {
        return Err(Error::ProviderFailed("the key provider's unwrap returned a bad length"));
    }
    Ok(r)
}

/// Registration check: a fresh random record must round-trip through the provider.
fn probe(p: &dyn KeyProvider) -> Result<()> {
    let dk = Key::generate(KeyType::Aes256)?;
    let rec = encode_record(&dk, 0);
    let w = provider_wrap(p, &rec)?;
    let back = provider_unwrap(p, &w).map_err(|e| match e {
        Error::AuthenticationFailed(_) => Error::ProviderFailed("the key provider could not unwrap its own wrap"),
        e => e,
    })?;
    if back[..] != rec[..] {
        return Err(Error::ProviderFailed("the key provider's unwrap did not return what its wrap was given"));
    }
    Ok(())
}

fn kwp_len(n: usize) -> usize {
    n.div_ceil(8) * 8 + 8
}

fn kwp_seal(kek: &Key, plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.resize(start + kwp_len(plain.len()), 0);
    // The module's AES_wrap_key_padded through `sys`, key schedule cleansed after the call.
    let n = service(|| crate::sys::aes256_kwp_wrap(kek.material(), plain, &mut out[start..]).ok_or(()))
        .map_err(|()| Error::Internal("AES-KWP wrap failed"))?;
    out.truncate(start + n);
    Ok(())
}

fn kwp_open(kek: &Key, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    const BAD: Error = Error::AuthenticationFailed("the keyring export does not authenticate under this key");
    if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
        return Err(BAD);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = service(|| crate::sys::aes256_kwp_unwrap(kek.material(), wrapped, &mut out).ok_or(())).map_err(|()| BAD)?;
    out.truncate(n);
    Ok(out)
}

impl Keyring {
    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| Error::Internal("keyring lock poisoned"))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| Error::Internal("keyring lock poisoned"))
    }

    /// Creates a keyring whose version 1 is `customer_key` (an AES-256 key; the keyring keeps
    /// its own copy, so the caller may free its handle) or, with `None`, a key generated by the
    /// module's DRBG (service-managed, the default).
    pub fn new(customer_key: Option<&Key>) -> Result<Self> {
        operation(|| {
            let key = tenant_copy(customer_key)?;
            let unexported = if customer_key.is_none() { vec![key.id()] } else { Vec::new() };
            let v = Version { number: 1, id: key.id(), provider: false, slot: Slot::Local(Some(key)), reference: None };
            Ok(Keyring {
                state: RwLock::new(State { versions: vec![v], active: 1, generation: FIRST_GENERATION }),
                guard: Guard::new(unexported, false),
            })
        })
    }

    /// The active version number (known also while locked).
    pub fn active_version(&self) -> Result<u32> {
        Ok(self.read()?.active)
    }

    /// The keyring's generation: [`FIRST_GENERATION`] for a new keyring, plus one for every
    /// change of the state an export persists (rotate, add provider, retire of a version not yet
    /// retired). Lock, unlock and attaching a provider do not change it. Carried by exports and
    /// restored by import (0 for a version-1 export); a host keeps the value it last exported
    /// (somewhere an attacker who can replace the export cannot roll back) and passes it to
    /// [`Keyring::import_with_root_key_min_generation`] or
    /// [`Keyring::import_with_password_min_generation`]. Known also while locked.
    pub fn generation(&self) -> Result<u64> {
        Ok(self.read()?.generation)
    }

    /// Retained (not retired) versions with their key ids, ascending.
    pub fn versions(&self) -> Result<Vec<(u32, KeyId)>> {
        let st = self.read()?;
        Ok(st
            .versions
            .iter()
            .filter(|v| !matches!(v.slot, Slot::Retired))
            .map(|v| (v.number, v.id))
            .collect())
    }

    /// Facts about `version` (retired versions included); [`Error::KeyNotFound`] if it never existed.
    pub fn version_info(&self, version: u32) -> Result<VersionInfo> {
        let st = self.read()?;
        let v = st.by_number(version).ok_or(Error::KeyNotFound("no such keyring version"))?;
        Ok(VersionInfo {
            version: v.number,
            key_id: v.id,
            active: v.number == st.active,
            provider: v.provider,
            locked: matches!(v.slot, Slot::Local(None) | Slot::Provider(None)),
            retired: matches!(v.slot, Slot::Retired),
        })
    }

    /// Whether the keyring is locked: the active version's material (or provider) is absent.
    pub fn is_locked(&self) -> Result<bool> {
        Ok(!self.read()?.active()?.available())
    }

    /// Adds a new version, which becomes active: `new_key` (a customer AES-256 key, copied) or,
    /// with `None`, a generated key. Returns its number. Older versions keep unwrapping.
    /// Refused while locked ([`Error::TenantLocked`]) and for a key id already present or
    /// retired ([`Error::InvalidKey`]).
    pub fn rotate(&self, new_key: Option<&Key>) -> Result<u32> {
        operation(|| {
            let key = tenant_copy(new_key)?;
            let mut st = self.write()?;
            st.ensure_unlocked()?;
            st.ensure_new_id(&key.id())?;
            let id = key.id();
            let n = st.push(id, Slot::Local(Some(key)))?;
            drop(st);
            if new_key.is_none() {
                self.guard.unexported().push(id);
            }
            Ok(n)
        })
    }

    /// Adds an external key provider as a new, active version and returns its number. The
    /// provider is first checked with one wrap and unwrap of a random record (no keyring lock
    /// held); any failure is [`Error::ProviderFailed`] and nothing is added.
    pub fn add_provider(&self, provider: Arc<dyn KeyProvider>) -> Result<u32> {
        operation(|| {
            let id = provider.key_id();
            {
                let st = self.read()?;
                st.ensure_unlocked()?;
                st.ensure_new_id(&id)?;
            }
            probe(&*provider)?;
            let mut st = self.write()?;
            st.ensure_unlocked()?;
            st.ensure_new_id(&id)?;
            st.push(id, Slot::Provider(Some(provider)))
        })
    }

    /// Creates a keyring whose version 1 is `provider` (checked first like
    /// [`Keyring::add_provider`]): the tenant key is held outside the process from the start.
    pub fn with_provider(provider: Arc<dyn KeyProvider>) -> Result<Self> {
        operation(|| {
            probe(&*provider)?;
            // push() advances the generation to FIRST_GENERATION.
            let mut st = State { versions: Vec::new(), active: 0, generation: FIRST_GENERATION - 1 };
            st.push(provider.key_id(), Slot::Provider(Some(provider)))?;
            Ok(Keyring { state: RwLock::new(st), guard: Guard::new(Vec::new(), false) })
        })
    }

    /// The public reference a provider version recorded ([`KeyProvider::reference`]); `None`
    /// for local versions and providers without one. Unknown version: [`Error::KeyNotFound`].
    pub fn provider_reference(&self, version: u32) -> Result<Option<Vec<u8>>> {
        let st = self.read()?;
        let v = st.by_number(version).ok_or(Error::KeyNotFound("no such keyring version"))?;
        Ok(v.reference.as_ref().map(|r| r.to_vec()))
    }

    /// Provider versions not attached (locked or imported) that carry a reference:
    /// `(version, key id, reference)`.
    pub(crate) fn detached_provider_references(&self) -> Result<Vec<(u32, KeyId, Vec<u8>)>> {
        let st = self.read()?;
        Ok(st
            .versions
            .iter()
            .filter(|v| matches!(v.slot, Slot::Provider(None)))
            .filter_map(|v| v.reference.as_ref().map(|r| (v.number, v.id, r.to_vec())))
            .collect())
    }

    /// Retires a provider version and destroys the provider's key itself first (for PKCS#11:
    /// `C_DestroyObject` on the token key). Irreversible: every blob under that version, and
    /// every other keyring or export naming that key, loses it. The version must be attached
    /// (unlock first: [`Error::TenantLocked`]); a local version is [`Error::InvalidArgument`]
    /// (plain [`Keyring::retire`] already destroys local material). If the provider fails to
    /// destroy its key, nothing is retired.
    pub fn retire_destroying(&self, version: u32) -> Result<()> {
        let provider = {
            let st = self.read()?;
            if version == st.active {
                return Err(Error::InvalidArgument("the active version cannot be retired; rotate first"));
            }
            let v = st.by_number(version).ok_or(Error::KeyNotFound("no such keyring version"))?;
            match &v.slot {
                Slot::Provider(Some(p)) => Arc::clone(p),
                Slot::Provider(None) => {
                    return Err(Error::TenantLocked("the provider version is not attached; unlock it before destroying its key"))
                }
                Slot::Local(_) => return Err(Error::InvalidArgument("that version is not a provider version")),
                Slot::Retired => return Err(Error::KeyNotFound("that version was retired")),
            }
        };
        provider.destroy().map_err(map_provider)?;
        drop(provider);
        self.retire(version)
    }

    /// Wraps `data_key` under the active version: a SPEC 3 wrapped-key blob whose KEK id is the
    /// active version's key id and whose inner key version is the active version number.
    pub fn wrap(&self, data_key: &Key) -> Result<Vec<u8>> {
        operation(|| self.wrap_active(data_key))
    }

    fn wrap_active(&self, data_key: &Key) -> Result<Vec<u8>> {
        let st = self.read()?;
        let v = st.active()?;
        let (n, id) = (v.number, v.id);
        let provider = match &v.slot {
            // The read lock stays held across the key-wrap: lock() waits for it.
            Slot::Local(Some(k)) => return keys::wrap_inner(k, data_key, n),
            Slot::Provider(Some(p)) => Arc::clone(p),
            Slot::Local(None) | Slot::Provider(None) => return Err(LOCKED),
            Slot::Retired => return Err(Error::Internal("the active version is retired")),
        };
        drop(st);
        let rec = encode_record(data_key, n);
        let w = provider_wrap(&*provider, &rec)?;
        let mut blob = Vec::with_capacity(WRAP_HEADER_LEN + w.len());
        blob.push(keys::WRAP_MAGIC);
        blob.push(keys::blob_format(data_key));
        blob.extend_from_slice(&id);
        blob.extend_from_slice(&w);
        Ok(blob)
    }

    /// Unwraps a data-key blob under whichever retained version its KEK id names; returns the
    /// data key and that version number. Unknown or retired version: [`Error::KeyNotFound`];
    /// keyring locked, or that version still locked: [`Error::TenantLocked`]; any tampering or
    /// an inner version that differs from the version: [`Error::AuthenticationFailed`].
    pub fn unwrap(&self, blob: &[u8]) -> Result<(Key, u32)> {
        operation(|| self.unwrap_any(blob))
    }

    fn unwrap_any(&self, blob: &[u8]) -> Result<(Key, u32)> {
        let kek_id = keys::wrapped_kek_id(blob)?;
        let st = self.read()?;
        st.ensure_unlocked()?;
        let v = st.by_id(&kek_id).ok_or(Error::KeyNotFound("no version of this keyring wrapped this blob"))?;
        let n = v.number;
        let provider = match &v.slot {
            Slot::Local(Some(k)) => {
                let (dk, inner) = keys::unwrap_inner(k, blob)?;
                return check_version(dk.gated(Some(self.guard.gate.clone())), inner, n);
            }
            Slot::Provider(Some(p)) => Arc::clone(p),
            Slot::Local(None) | Slot::Provider(None) => {
                return Err(Error::TenantLocked("this blob's version is locked; unlock it with its key"))
            }
            Slot::Retired => return Err(Error::KeyNotFound("this blob's version was retired")),
        };
        drop(st);
        let rec = provider_unwrap(&*provider, &blob[WRAP_HEADER_LEN..])?;
        let (dk, inner) = decode_record(blob[1], &rec)?;
        check_version(dk.gated(Some(self.guard.gate.clone())), inner, n)
    }

    /// Rewraps a data-key blob to the active version (unwrap, then wrap); the data it protects
    /// is untouched. The same errors as [`Keyring::unwrap`] and [`Keyring::wrap`].
    pub fn rewrap(&self, blob: &[u8]) -> Result<Vec<u8>> {
        operation(|| {
            let (dk, _) = self.unwrap_any(blob)?;
            self.wrap_active(&dk)
        })
    }

    /// Retires `version`: its material (or provider reference) is destroyed now, its blobs fail
    /// with [`Error::KeyNotFound`] for good, and its key id can never be added again. Retiring
    /// a retired version does nothing. The active version cannot be retired
    /// ([`Error::InvalidArgument`]); an unknown one is [`Error::KeyNotFound`]. Allowed while locked.
    pub fn retire(&self, version: u32) -> Result<()> {
        let mut st = self.write()?;
        if version == st.active {
            return Err(Error::InvalidArgument("the active version cannot be retired; rotate first"));
        }
        let i = st
            .versions
            .binary_search_by_key(&version, |v| v.number)
            .map_err(|_| Error::KeyNotFound("no such keyring version"))?;
        if matches!(st.versions[i].slot, Slot::Retired) {
            return Ok(());
        }
        let g = st.next_generation()?;
        // Dropping the keyring's only reference zeroizes the material before the lock is released.
        st.versions[i].slot = Slot::Retired;
        st.generation = g;
        let id = st.versions[i].id;
        drop(st);
        self.guard.unexported().retain(|x| x != &id);
        Ok(())
    }

    /// Locks the tenant: every version's material is wiped (and provider references dropped)
    /// before this returns, while versions, ids and the active version stay. Every operation
    /// that needs material then fails with [`Error::TenantLocked`], and so does every data key
    /// unwrapped from this keyring (and every cipher made from one) until the active version is
    /// unlocked. Idempotent.
    ///
    /// Refused ([`Error::InvalidArgument`], nothing changed) while a retained version was
    /// generated here and never exported: no key could ever unlock it. Export the keyring
    /// first, or use [`Keyring::lock_with`] with [`LOCK_FORCE`] to destroy such versions.
    pub fn lock(&self) -> Result<()> {
        self.lock_with(0)
    }

    /// [`Keyring::lock`] with flags: 0, or [`LOCK_FORCE`] to lock even when versions generated
    /// here were never exported (their material is then gone for good).
    pub fn lock_with(&self, flags: u32) -> Result<()> {
        if flags & !LOCK_FORCE != 0 {
            return Err(Error::InvalidArgument("unknown keyring lock flag"));
        }
        // Lock order: `unexported` before the state (as export takes them).
        let mut unexported = self.guard.unexported();
        let mut st = self.write()?;
        if flags & LOCK_FORCE == 0
            && st.versions.iter().any(|v| matches!(v.slot, Slot::Local(Some(_))) && unexported.contains(&v.id))
        {
            return Err(Error::InvalidArgument(
                "this keyring holds a version generated here and never exported: locking would destroy it for \
                 good (no key could unlock it); export the keyring first, or lock with the force flag",
            ));
        }
        unexported.clear();
        drop(unexported);
        self.guard.gate.set_locked(true);
        for v in st.versions.iter_mut() {
            match &mut v.slot {
                Slot::Local(k) => *k = None,
                Slot::Provider(p) => *p = None,
                Slot::Retired => {}
            }
        }
        Ok(())
    }

    /// Gives one version its material back: accepted only when `key`'s id matches a retained,
    /// local version ([`Error::KeyNotFound`] otherwise, also for a retired one; a provider
    /// version is [`Error::InvalidArgument`]: use [`Keyring::unlock_provider`]). Returns the
    /// version. The tenant is usable again once its active version is back.
    pub fn unlock(&self, key: &Key) -> Result<u32> {
        operation(|| {
            key.expect_type(KeyType::Aes256, "a tenant key must be an AES-256 key")?;
            let copy = tenant_copy(Some(key))?;
            let mut st = self.write()?;
            let v = st
                .by_id_mut(&copy.id())
                .ok_or(Error::KeyNotFound("no version of this keyring has this key id"))?;
            match &mut v.slot {
                Slot::Local(slot) => {
                    if slot.is_none() {
                        *slot = Some(copy);
                    }
                    let n = v.number;
                    self.guard.gate.set_locked(st.ensure_unlocked().is_err());
                    Ok(n)
                }
                Slot::Provider(_) => Err(Error::InvalidArgument("that version is held by a key provider")),
                Slot::Retired => Err(Error::KeyNotFound("that version was retired")),
            }
        })
    }

    /// Attaches `provider` to the provider version with its key id (after a lock, or after
    /// import), checked first like [`Keyring::add_provider`]. Returns the version.
    pub fn unlock_provider(&self, provider: Arc<dyn KeyProvider>) -> Result<u32> {
        operation(|| {
            let id = provider.key_id();
            {
                let st = self.read()?;
                let v = st.by_id(&id).ok_or(Error::KeyNotFound("no version of this keyring has this key id"))?;
                match v.slot {
                    Slot::Provider(_) => {}
                    Slot::Local(_) => return Err(Error::InvalidArgument("that version is not a provider version")),
                    Slot::Retired => return Err(Error::KeyNotFound("that version was retired")),
                }
            }
            probe(&*provider)?;
            let mut st = self.write()?;
            let v = st.by_id_mut(&id).ok_or(Error::KeyNotFound("no version of this keyring has this key id"))?;
            match &mut v.slot {
                Slot::Provider(p) => {
                    *p = Some(provider);
                    let n = v.number;
                    self.guard.gate.set_locked(st.ensure_unlocked().is_err());
                    Ok(n)
                }
                Slot::Local(_) => Err(Error::InvalidArgument("that version is not a provider version")),
                Slot::Retired => Err(Error::KeyNotFound("that version was retired")),
            }
        })
    }

    fn state_len(st: &State) -> usize {
        STATE_HEADER_LEN_V2
            + st.versions
                .iter()
                .map(|v| {
                    ENTRY_HEADER_LEN
                        + match (&v.slot, &v.reference) {
                            (Slot::Local(Some(_)), _) => 1 + TENANT_MATERIAL_LEN,
                            (Slot::Provider(_), Some(r)) => 2 + r.len(),
                            _ => 0,
                        }
                })
                .sum::<usize>()
    }

    /// Length in bytes of [`Keyring::export_with_root_key`] (`password == false`) or
    /// [`Keyring::export_with_password`] output for the current state.
    pub fn export_len(&self, password: bool) -> Result<usize> {
        let n = kwp_len(Self::state_len(&*self.read()?));
        Ok(n + if password { PASSWORD_HEADER_LEN } else { ROOT_HEADER_LEN })
    }

    /// `magic | 0x02 | generation (u64 BE) | active (u32 BE) | count (u32 BE) | entries`. Needs the active version
    /// ([`Error::TenantLocked`] while the keyring is locked); other versions still locked are
    /// recorded by id only and come back locked.
    fn encode_state(&self, magic: u8) -> Result<Zeroizing<Vec<u8>>> {
        let st = self.read()?;
        st.ensure_unlocked()?;
        let mut s = Zeroizing::new(Vec::with_capacity(Self::state_len(&st)));
        s.push(magic);
        s.push(EXPORT_FORMAT_V2);
        s.extend_from_slice(&st.generation.to_be_bytes());
        s.extend_from_slice(&st.active.to_be_bytes());
        s.extend_from_slice(&(st.versions.len() as u32).to_be_bytes());
        for v in &st.versions {
            s.extend_from_slice(&v.number.to_be_bytes());
            match &v.slot {
                Slot::Local(Some(k)) => {
                    s.push(KIND_LOCAL);
                    s.extend_from_slice(&v.id);
                    s.push(KeyType::Aes256 as u8);
                    s.extend_from_slice(k.material());
                }
                Slot::Local(None) => {
                    s.push(KIND_LOCKED);
                    s.extend_from_slice(&v.id);
                }
                Slot::Provider(_) => match &v.reference {
                    Some(r) => {
                        s.push(KIND_PROVIDER_REF);
                        s.extend_from_slice(&v.id);
                        s.extend_from_slice(&(r.len() as u16).to_be_bytes());
                        s.extend_from_slice(r);
                    }
                    None => {
                        s.push(KIND_PROVIDER);
                        s.extend_from_slice(&v.id);
                    }
                },
                Slot::Retired => {
                    s.push(KIND_RETIRED);
                    s.extend_from_slice(&v.id);
                }
            }
        }
        Ok(s)
    }

    fn decode_state(magic: u8, s: &[u8]) -> Result<Self> {
        const BAD: Error = Error::AuthenticationFailed("the keyring export holds an invalid state");
        // Version 1 has no generation (read as 0); version 2 carries it after the format byte.
        let (generation, h) = match s.get(1) {
            Some(&EXPORT_FORMAT_V1) if s.len() >= STATE_HEADER_LEN => (0, 2),
            Some(&EXPORT_FORMAT_V2) if s.len() >= STATE_HEADER_LEN_V2 => {
                let mut g = [0u8; 8];
                g.copy_from_slice(&s[2..10]);
                (u64::from_be_bytes(g), 10)
            }
            _ => return Err(BAD),
        };
        if s[0] != magic {
            return Err(BAD);
        }
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let active = be32(&s[h..h + 4]);
        let count = be32(&s[h + 4..h + 8]) as usize;
        if count == 0 || count > MAX_VERSIONS {
            return Err(BAD);
        }
        let mut versions: Vec<Version> = Vec::with_capacity(count);
        let mut p = h + 8;
        for _ in 0..count {
            let e = s.get(p..p + ENTRY_HEADER_LEN).ok_or(BAD)?;
            let number = be32(&e[0..4]);
            let mut id = [0u8; KEY_ID_LEN];
            id.copy_from_slice(&e[5..]);
            p += ENTRY_HEADER_LEN;
            if number == 0 || versions.last().is_some_and(|l| l.number >= number) || versions.iter().any(|v| v.id == id) {
                return Err(BAD);
            }
            let mut reference = None;
            let (provider, slot) = match e[4] {
                KIND_LOCAL => {
                    let m = s.get(p..p + 1 + TENANT_MATERIAL_LEN).ok_or(BAD)?;
                    p += 1 + TENANT_MATERIAL_LEN;
                    if m[0] != KeyType::Aes256 as u8 {
                        return Err(BAD);
                    }
                    let k = Key::import(KeyType::Aes256, &m[1..])
                        .and_then(|k| k.into_purpose(KeyPurpose::KeyWrapping))
                        .map_err(|_| BAD)?;
                    if k.id() != id {
                        return Err(BAD);
                    }
                    (false, Slot::Local(Some(k)))
                }
                // A provider comes back detached: the host attaches it with unlock_provider.
                KIND_PROVIDER => (true, Slot::Provider(None)),
                // The same with its reference: the host reconnects (for PKCS#11,
                // `Keyring::unlock_pkcs11`).
                KIND_PROVIDER_REF => {
                    let l = s.get(p..p + 2).ok_or(BAD)?;
                    let l = u16::from_be_bytes([l[0], l[1]]) as usize;
                    if l == 0 || l > MAX_REFERENCE_LEN {
                        return Err(BAD);
                    }
                    reference = Some(Arc::from(s.get(p + 2..p + 2 + l).ok_or(BAD)?));
                    p += 2 + l;
                    (true, Slot::Provider(None))
                }
                // A version that was locked at export comes back locked: unlock supplies its key.
                KIND_LOCKED => (false, Slot::Local(None)),
                // Whether a retired version was a provider is not recorded.
                KIND_RETIRED => (false, Slot::Retired),
                _ => return Err(BAD),
            };
            versions.push(Version { number, id, provider, slot, reference });
        }
        if p != s.len() {
            return Err(BAD);
        }
        let st = State { versions, active, generation };
        match st.by_number(active) {
            Some(v) if !matches!(v.slot, Slot::Retired) => {}
            _ => return Err(BAD),
        }
        // Everything in an import is held by the export it came from.
        let locked = st.ensure_unlocked().is_err();
        Ok(Keyring { state: RwLock::new(st), guard: Guard::new(Vec::new(), locked) })
    }

    /// Exports the whole state sealed under `root_key` (AES-256):
    /// `0x52 | 0x02 | root_key_id (16) | AES-KWP(root_key, state)` (state: `docs/KEYS.md`),
    /// carrying the keyring's [`Keyring::generation`].
    pub fn export_with_root_key(&self, root_key: &Key) -> Result<Vec<u8>> {
        operation(|| {
            root_key.expect_type(KeyType::Aes256, "the root key must be an AES-256 key")?;
            root_key.require_purpose(KeyPurpose::KeyWrapping)?;
            let mut unexported = self.guard.unexported();
            let state = self.encode_state(EXPORT_ROOT_MAGIC)?;
            let mut blob = Vec::with_capacity(ROOT_HEADER_LEN + kwp_len(state.len()));
            blob.push(EXPORT_ROOT_MAGIC);
            blob.push(EXPORT_FORMAT_V2);
            blob.extend_from_slice(&root_key.id());
            kwp_seal(root_key, &state, &mut blob)?;
            // Every version now has a copy outside: a later lock can be undone.
            unexported.clear();
            Ok(blob)
        })
    }

    /// Exports the whole state sealed under a password:
    /// `0x4B | 0x02 | iterations (u32 BE) | salt (16) | AES-KWP(PBKDF2-HMAC-SHA256(pw, salt,
    /// iterations, 32), state)`. Password at least 14 bytes; iterations 100 000 to 10 000 000.
    pub fn export_with_password(&self, password: &[u8], iterations: u32) -> Result<Vec<u8>> {
        operation(|| {
            let mut unexported = self.guard.unexported();
            let state = self.encode_state(EXPORT_PASSWORD_MAGIC)?;
            let blob = keys::password_seal_format(EXPORT_PASSWORD_MAGIC, EXPORT_FORMAT_V2, &state, password, iterations)?;
            unexported.clear();
            Ok(blob)
        })
    }

    /// Imports [`Keyring::export_with_root_key`] output (format 0x02, or 0x01 from before
    /// generations, read as generation 0). Another root key, or any tampering:
    /// [`Error::AuthenticationFailed`]. Provider versions come back locked (detached). Accepts
    /// any generation: a host that can roll back should use
    /// [`Keyring::import_with_root_key_min_generation`].
    pub fn import_with_root_key(blob: &[u8], root_key: &Key) -> Result<Self> {
        operation(|| Self::import_root(blob, root_key))
    }

    /// [`Keyring::import_with_root_key`], refusing an export whose generation is below
    /// `min_generation` (the generation the host last exported) with
    /// [`Error::AuthenticationFailed`] ("rollback"): an export taken before a retire, rotate or
    /// add-provider cannot be imported past it. `min_generation` 0 accepts every export.
    pub fn import_with_root_key_min_generation(blob: &[u8], root_key: &Key, min_generation: u64) -> Result<Self> {
        operation(|| Self::import_root(blob, root_key)?.at_least(min_generation))
    }

    /// [`Keyring::import_with_password`] with the rollback check of
    /// [`Keyring::import_with_root_key_min_generation`].
    pub fn import_with_password_min_generation(blob: &[u8], password: &[u8], min_generation: u64) -> Result<Self> {
        operation(|| Self::import_password(blob, password)?.at_least(min_generation))
    }

    fn at_least(self, min_generation: u64) -> Result<Self> {
        if self.generation()? < min_generation {
            // The new keyring (and its tenant keys) is dropped, and wiped, here.
            return Err(Error::AuthenticationFailed(
                "the keyring export is older than the generation the host last saw (a rollback)",
            ));
        }
        Ok(self)
    }

    fn import_root(blob: &[u8], root_key: &Key) -> Result<Self> {
        {
            const BAD: Error = Error::AuthenticationFailed("not a keyring export sealed under a root key");
            root_key.expect_type(KeyType::Aes256, "the root key must be an AES-256 key")?;
            root_key.require_purpose(KeyPurpose::KeyWrapping)?;
            if blob.len() < ROOT_HEADER_LEN + 16 || !matches!(blob[1], EXPORT_FORMAT_V1 | EXPORT_FORMAT_V2) {
                return Err(BAD);
            }
            match blob[0] {
                EXPORT_ROOT_MAGIC => {}
                EXPORT_PASSWORD_MAGIC => {
                    return Err(Error::InvalidArgument("this keyring export is sealed under a password"))
                }
                _ => return Err(BAD),
            }
            if blob[2..ROOT_HEADER_LEN] != root_key.id() {
                return Err(Error::AuthenticationFailed("the keyring export was sealed under another root key"));
            }
            let state = kwp_open(root_key, &blob[ROOT_HEADER_LEN..])?;
            // The outer format byte is not sealed: the sealed state's must agree with it.
            if state.get(1) != Some(&blob[1]) {
                return Err(Error::AuthenticationFailed("the keyring export holds an invalid state"));
            }
            Self::decode_state(EXPORT_ROOT_MAGIC, &state)
        }
    }

    /// Imports [`Keyring::export_with_password`] output. A wrong password or any tampering:
    /// [`Error::AuthenticationFailed`]. Provider versions come back locked (detached).
    pub fn import_with_password(blob: &[u8], password: &[u8]) -> Result<Self> {
        operation(|| Self::import_password(blob, password))
    }

    fn import_password(blob: &[u8], password: &[u8]) -> Result<Self> {
        if blob.first() == Some(&EXPORT_ROOT_MAGIC) {
            return Err(Error::InvalidArgument("this keyring export is sealed under a root key"));
        }
        let state = keys::password_open_formats(EXPORT_PASSWORD_MAGIC, &[EXPORT_FORMAT_V1, EXPORT_FORMAT_V2], blob, password)
            .map_err(|e| match e {
                // The shared opener speaks of password files; this is a keyring export.
                Error::AuthenticationFailed(_) => Error::AuthenticationFailed(
                    "not a valid keyring export sealed under a password, or the wrong password",
                ),
                e => e,
            })?;
        if state.get(1) != blob.get(1) {
            return Err(Error::AuthenticationFailed("the keyring export holds an invalid state"));
        }
        Self::decode_state(EXPORT_PASSWORD_MAGIC, &state)
    }
}

fn check_version(dk: Key, inner: u32, version: u32) -> Result<(Key, u32)> {
    if inner != version {
        return Err(Error::AuthenticationFailed("the blob's inner version does not match its tenant version"));
    }
    Ok((dk, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lock must leave no material in the keyring itself (white-box: the slots are empty).
    #[test]
    fn lock_empties_every_slot_and_retire_destroys() {
        let kr = Keyring::new(None).unwrap();
        kr.rotate(None).unwrap();
        kr.retire(1).unwrap();
        {
            let st = kr.state.read().unwrap();
            assert!(matches!(st.versions[0].slot, Slot::Retired));
            assert!(matches!(st.versions[1].slot, Slot::Local(Some(_))));
        }
        // Version 2 was generated here and never exported: a plain lock refuses (issue 20).
        kr.lock_with(LOCK_FORCE).unwrap();
        let st = kr.state.read().unwrap();
        assert!(st.versions.iter().all(|v| !v.available()));
        assert_eq!(st.versions.len(), 2);
        assert_eq!(st.active, 2);
    }

    #[test]
    fn state_round_trips_byte_for_byte() {
        let kr = Keyring::new(None).unwrap();
        kr.rotate(None).unwrap();
        kr.retire(1).unwrap();
        let s = kr.encode_state(EXPORT_ROOT_MAGIC).unwrap();
        assert_eq!(s.len(), Keyring::state_len(&kr.state.read().unwrap()));
        let back = Keyring::decode_state(EXPORT_ROOT_MAGIC, &s).unwrap();
        assert_eq!(back.encode_state(EXPORT_ROOT_MAGIC).unwrap()[..], s[..]);
        // Any trailing byte or a wrong magic is refused.
        let mut longer = s.to_vec();
        longer.push(0);
        assert!(Keyring::decode_state(EXPORT_ROOT_MAGIC, &longer).is_err());
        assert!(Keyring::decode_state(EXPORT_PASSWORD_MAGIC, &s).is_err());
    }
}
