//! The built-in KMIP key provider: a tenant key held by an enterprise key manager (Thales
//! CipherTrust, Fortanix, Entrust KeyControl, HashiCorp Vault Enterprise, Cosmian, PyKMIP...),
//! reached over TLS 1.2/1.3 with mutual certificate authentication, run by rustls on the same
//! AWS-LC FIPS module as the rest of Cellar.
//!
//! Two modes, chosen per keyring version:
//!
//! * [`KmipMode::Fetch`] (as pg_tde and MongoDB do): the key is created (or registered) on the
//!   server with a name and activated; Cellar Gets its material into zeroizing memory when the
//!   version is attached (created, adopted or unlocked) and wraps data keys locally with the
//!   module's AES-KWP: blobs are byte-identical to a local version's, and the indicator reports 1.
//! * [`KmipMode::Delegated`] (as libmongocrypt's delegated KMIP): the server performs AES-GCM
//!   Encrypt/Decrypt of the data-key record and the tenant key never leaves it; the indicator
//!   reports 0 (SPEC 1: the server's own module did the cryptography).
//!
//! Either way the version's key id is public and stable: for fetch mode, the key id of the
//! material (as for any local key); for delegated mode, the first 16 bytes of
//! `SHA-256("cellar kmip key id v1" | unique identifier)`. Exported keyring state records the
//! server's unique identifier and the mode ([`KmipKey::reference`]), never material.

pub mod client;
pub mod ttlv;

pub use client::{KeyState, KmipClient, KmipConfig, TlsInfo};

use crate::error::{Error, Result};
use crate::fips::{self, service};
use crate::keyring::{KeyProvider, Keyring, ProviderError};
use crate::keys::{Key, KeyId, KeyPurpose, KeyType, KEY_ID_LEN};
use aws_lc_rs::key_wrap::{self, KeyWrapPadded};
use std::sync::Arc;
use zeroize::Zeroizing;

/// How a KMIP version uses its server key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum KmipMode {
    /// Get the key's material and wrap locally in the module (indicator 1).
    Fetch = 1,
    /// The server encrypts and decrypts; the key never leaves it (indicator 0).
    Delegated = 2,
}

impl KmipMode {
    /// From the C enum value.
    pub fn from_u32(v: u32) -> Result<Self> {
        match v {
            1 => Ok(KmipMode::Fetch),
            2 => Ok(KmipMode::Delegated),
            _ => Err(Error::InvalidArgument("unknown KMIP mode")),
        }
    }
}

/// Associated data bound into every delegated wrap (so a server ciphertext made for another
/// purpose under the same key does not unwrap as a Cellar data key).
const DELEGATED_AAD: &[u8] = b"cellar kmip delegated wrap v1";
/// Format byte of a delegated wrap: `0x01 | iv_len (1) | iv | ciphertext | tag (16)`.
const DELEGATED_FORMAT: u8 = 0x01;
/// Reference format: `"KMIP" | 0x01 | mode (1) | uid_len (u16 BE) | uid`.
const REFERENCE_MAGIC: &[u8; 4] = b"KMIP";

/// A keyring version held by a KMIP server.
pub struct KmipKey {
    client: Arc<KmipClient>,
    uid: String,
    mode: KmipMode,
    id: KeyId,
    /// Fetch mode: the key's material, in zeroizing memory.
    material: Option<Key>,
}

impl core::fmt::Debug for KmipKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KmipKey(uid {:?}, {:?})", self.uid, self.mode)
    }
}

/// The public key id of a delegated KMIP key.
pub fn delegated_key_id(uid: &str) -> KeyId {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &[b"cellar kmip key id v1".as_slice(), uid.as_bytes()].concat());
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&d.as_ref()[..KEY_ID_LEN]);
    id
}

impl KmipKey {
    /// Attaches an existing server key by unique identifier: checks it is an active AES-256 key
    /// (a revoked, destroyed or pre-active key is refused with a clear error) and, in fetch
    /// mode, Gets its material.
    pub fn attach(client: Arc<KmipClient>, uid: &str, mode: KmipMode) -> Result<Self> {
        if uid.is_empty() || uid.len() > 1024 {
            return Err(Error::InvalidArgument("a KMIP unique identifier is 1 to 1024 bytes"));
        }
        client.check_active_aes256(uid)?;
        let (id, material) = match mode {
            KmipMode::Fetch => {
                let m = client.get_aes256(uid)?;
                // A tenant key: a key-wrapping key (SP 800-57), like the keyring's own.
                let k = Key::import(KeyType::Aes256, &m)?.into_purpose(KeyPurpose::KeyWrapping)?;
                (k.id(), Some(k))
            }
            KmipMode::Delegated => (delegated_key_id(uid), None),
        };
        Ok(KmipKey { client, uid: uid.to_owned(), mode, id, material })
    }

    /// Adopts the one active key named `name` on the server (bring your own key manager key).
    /// No key, or several keys, with that name: [`Error::KeyNotFound`] / [`Error::InvalidArgument`].
    pub fn adopt(client: Arc<KmipClient>, name: &str, mode: KmipMode) -> Result<Self> {
        let uids = client.locate(name)?;
        match uids.len() {
            0 => Err(Error::KeyNotFound("no KMIP object has that name")),
            1 => Self::attach(client, &uids[0], mode),
            _ => Err(Error::InvalidArgument("several KMIP objects have that name: attach one by unique identifier")),
        }
    }

    /// Creates a new AES-256 key on the server named `name`, activates it and attaches it.
    /// The usage mask allows Encrypt and Decrypt, plus Export in fetch mode.
    pub fn create(client: Arc<KmipClient>, name: &str, mode: KmipMode) -> Result<Self> {
        if name.is_empty() || name.len() > 1024 {
            return Err(Error::InvalidArgument("a KMIP key name is 1 to 1024 bytes"));
        }
        let usage = match mode {
            KmipMode::Fetch => client::USAGE_FETCH,
            KmipMode::Delegated => client::USAGE_ENCRYPT_DECRYPT,
        };
        let uid = client.create_aes256(name, usage)?;
        client.activate(&uid)?;
        Self::attach(client, &uid, mode)
    }

    /// Registers the caller's AES-256 key on the server under `name` (fetch mode only makes
    /// sense for a key that was in the process already), activates and attaches it.
    pub fn register(client: Arc<KmipClient>, name: &str, key: &Key, mode: KmipMode) -> Result<Self> {
        key.expect_type(KeyType::Aes256, "a KMIP tenant key must be an AES-256 key")?;
        key.require_purpose(KeyPurpose::KeyWrapping)?;
        let usage = match mode {
            KmipMode::Fetch => client::USAGE_FETCH,
            KmipMode::Delegated => client::USAGE_ENCRYPT_DECRYPT,
        };
        let uid = client.register_aes256(name, key.material(), usage)?;
        client.activate(&uid)?;
        Self::attach(client, &uid, mode)
    }

    /// The server's unique identifier.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The mode.
    pub fn mode(&self) -> KmipMode {
        self.mode
    }

    /// The public reference exported keyring state records:
    /// `"KMIP" | 0x01 | mode (1) | uid_len (u16 BE) | uid`.
    pub fn encode_reference(&self) -> Vec<u8> {
        let mut r = Vec::with_capacity(8 + self.uid.len());
        r.extend_from_slice(REFERENCE_MAGIC);
        r.push(0x01);
        r.push(self.mode as u8);
        r.extend_from_slice(&(self.uid.len() as u16).to_be_bytes());
        r.extend_from_slice(self.uid.as_bytes());
        r
    }

    /// Reads a reference written by [`KmipKey::encode_reference`]: (mode, uid). `None` if it is
    /// not a KMIP reference.
    pub fn decode_reference(r: &[u8]) -> Option<(KmipMode, String)> {
        if r.len() < 8 || &r[..4] != REFERENCE_MAGIC || r[4] != 0x01 {
            return None;
        }
        let mode = KmipMode::from_u32(u32::from(r[5])).ok()?;
        let n = u16::from_be_bytes([r[6], r[7]]) as usize;
        if r.len() != 8 + n {
            return None;
        }
        Some((mode, String::from_utf8(r[8..].to_vec()).ok()?))
    }

    /// Revokes and destroys the server key (retire with destroy). Irreversible.
    pub fn destroy_on_server(&self) -> Result<()> {
        // A key already deactivated cannot be revoked again on some servers: go on to Destroy.
        let _ = self.client.revoke(&self.uid);
        self.client.destroy(&self.uid)
    }

    fn kek(&self) -> core::result::Result<key_wrap::AesKek, ProviderError> {
        let m = self.material.as_ref().ok_or(ProviderError::Failed)?;
        key_wrap::AesKek::new(&key_wrap::AES_256, m.material()).map_err(|_| ProviderError::Failed)
    }
}

fn to_provider(e: Error) -> ProviderError {
    match e {
        Error::AuthenticationFailed(_) => ProviderError::Rejected,
        e => ProviderError::Cellar(e),
    }
}

impl KeyProvider for KmipKey {
    fn key_id(&self) -> KeyId {
        self.id
    }

    fn wrap(&self, record: &[u8]) -> core::result::Result<Vec<u8>, ProviderError> {
        match self.mode {
            KmipMode::Fetch => {
                let kek = self.kek()?;
                let mut out = vec![0u8; record.len().div_ceil(8) * 8 + 8];
                let n = service(|| kek.wrap_with_padding(record, &mut out).map(|o| o.len())).map_err(|_| ProviderError::Failed)?;
                out.truncate(n);
                Ok(out)
            }
            KmipMode::Delegated => {
                // The server did the cryptography: the operation reports 0 (SPEC 1).
                fips::note_external();
                let (iv, ct, tag) = self.client.encrypt_gcm(&self.uid, record, DELEGATED_AAD).map_err(to_provider)?;
                let mut out = Vec::with_capacity(2 + iv.len() + ct.len() + tag.len());
                out.push(DELEGATED_FORMAT);
                out.push(iv.len() as u8);
                out.extend_from_slice(&iv);
                out.extend_from_slice(&ct);
                out.extend_from_slice(&tag);
                Ok(out)
            }
        }
    }

    fn unwrap(&self, wrapped: &[u8]) -> core::result::Result<Zeroizing<Vec<u8>>, ProviderError> {
        match self.mode {
            KmipMode::Fetch => {
                let kek = self.kek()?;
                if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
                    return Err(ProviderError::Rejected);
                }
                let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
                let n = service(|| kek.unwrap_with_padding(wrapped, &mut out).map(|o| o.len())).map_err(|_| ProviderError::Rejected)?;
                out.truncate(n);
                Ok(out)
            }
            KmipMode::Delegated => {
                if wrapped.len() < 2 || wrapped[0] != DELEGATED_FORMAT {
                    return Err(ProviderError::Rejected);
                }
                let ivl = wrapped[1] as usize;
                if ivl == 0 || wrapped.len() < 2 + ivl + 16 {
                    return Err(ProviderError::Rejected);
                }
                let iv = &wrapped[2..2 + ivl];
                let (ct, tag) = wrapped[2 + ivl..].split_at(wrapped.len() - 2 - ivl - 16);
                fips::note_external();
                self.client.decrypt_gcm(&self.uid, iv, ct, tag, DELEGATED_AAD).map_err(to_provider)
            }
        }
    }

    fn reference(&self) -> Option<Vec<u8>> {
        Some(self.encode_reference())
    }

    fn performed_in_module(&self) -> bool {
        self.mode == KmipMode::Fetch
    }

    fn destroy(&self) -> core::result::Result<(), ProviderError> {
        self.destroy_on_server().map_err(ProviderError::Cellar)
    }
}

/// How a KMIP version is chosen on the server: by name (Locate) or by unique identifier.
#[derive(Debug, Clone, Copy)]
pub enum KmipSelector<'a> {
    /// The one object with this Name.
    Name(&'a str),
    /// The object with this Unique Identifier.
    Uid(&'a str),
}

fn select(client: &Arc<KmipClient>, sel: KmipSelector<'_>, mode: KmipMode) -> Result<Arc<KmipKey>> {
    Ok(Arc::new(match sel {
        KmipSelector::Name(n) => KmipKey::adopt(client.clone(), n, mode)?,
        KmipSelector::Uid(u) => KmipKey::attach(client.clone(), u, mode)?,
    }))
}

// Keyring operations with KMIP versions.
impl Keyring {
    /// Creates a keyring whose version 1 is a new AES-256 key created on the KMIP server under
    /// `name` and activated ([`KmipKey::create`]).
    pub fn new_kmip(client: &Arc<KmipClient>, mode: KmipMode, name: &str) -> Result<Self> {
        fips::operation(|| Keyring::with_provider(Arc::new(KmipKey::create(client.clone(), name, mode)?)))
    }

    /// Creates a keyring whose version 1 is an existing active AES-256 server key (bring your
    /// own key-manager key), found by name or unique identifier.
    pub fn adopt_kmip(client: &Arc<KmipClient>, mode: KmipMode, key: KmipSelector<'_>) -> Result<Self> {
        fips::operation(|| Keyring::with_provider(select(client, key, mode)?))
    }

    /// Rotates to a new server key; returns the new version.
    pub fn rotate_kmip(&self, client: &Arc<KmipClient>, mode: KmipMode, name: &str) -> Result<u32> {
        fips::operation(|| self.add_provider(Arc::new(KmipKey::create(client.clone(), name, mode)?)))
    }

    /// Rotates to an existing server key; returns the new version.
    pub fn rotate_kmip_adopt(&self, client: &Arc<KmipClient>, mode: KmipMode, key: KmipSelector<'_>) -> Result<u32> {
        fips::operation(|| self.add_provider(select(client, key, mode)?))
    }

    /// Reconnects every KMIP version that is not attached (after [`Keyring::lock`] or after
    /// import): each version's reference names its unique identifier and mode; the key's
    /// state is checked (revoked or destroyed: refused), fetch mode Gets the material again,
    /// and the key id must match the version's. All are checked before any is attached.
    /// Returns how many versions were attached.
    pub fn unlock_kmip(&self, client: &Arc<KmipClient>) -> Result<usize> {
        fips::operation(|| {
            let mut attached = Vec::new();
            for (_, id, r) in self.detached_provider_references()? {
                let Some((mode, uid)) = KmipKey::decode_reference(&r) else { continue };
                let k = KmipKey::attach(client.clone(), &uid, mode)?;
                if k.key_id() != id {
                    return Err(Error::InvalidKey("the KMIP key does not match the keyring version that names it"));
                }
                attached.push(Arc::new(k));
            }
            let n = attached.len();
            for k in attached {
                self.unlock_provider(k)?;
            }
            Ok(n)
        })
    }

    /// The KMIP unique identifier and mode of `version`, or `None` for other versions. Unknown
    /// version: [`Error::KeyNotFound`]. Also while locked.
    pub fn kmip_reference(&self, version: u32) -> Result<Option<(KmipMode, String)>> {
        Ok(self.provider_reference(version)?.and_then(|r| KmipKey::decode_reference(&r)))
    }
}
