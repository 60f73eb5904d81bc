//! The built-in PKCS#11 key provider (SPEC 3, issue 14): a keyring version backed by an AES-256
//! secret key object in an HSM token, which wraps and unwraps data keys inside the token with
//! AES key wrap with padding (RFC 5649). The tenant key never enters Cellar's memory.
//!
//! How it works:
//!
//! * The vendor's module is loaded at run time (the `cryptoki` crate, over `libloading`), once per
//!   path for the life of the process, and initialised with `CKF_OS_LOCKING_OK` (a module someone
//!   else in the process already initialised is used as it is). libcellar gains no link-time
//!   dependency.
//! * One connection per (module, slot) in the process ([`Pkcs11Token`]): a logged-in anchor
//!   session plus a bounded pool of sessions for operations (PKCS#11 sessions are not shared
//!   between threads: a thread takes one from the pool for one operation). The connection is
//!   shared by every keyring version on that token; when the last version holding it goes (the
//!   keyring is locked, freed, or the version retired), its sessions are closed and the user is
//!   logged out.
//! * Mechanism probe, once per connection: `CKM_AES_KEY_WRAP_KWP` (0x210B, PKCS#11 3.0), then
//!   `CKM_AES_KEY_WRAP_PAD` (0x210A, the code SoftHSM2 and some vendors use for the same
//!   algorithm). A candidate must advertise `CKF_WRAP | CKF_UNWRAP` and pass a known-answer test
//!   with a temporary extractable session AES-256 key whose value is read: the token must unwrap
//!   AWS-LC's own KWP of a fixed 53-byte record back to the record, its wrap of a 56-byte input
//!   (a multiple of 8) must equal AWS-LC's KWP byte for byte, and its wrap of the 53-byte record
//!   must equal either AWS-LC's KWP of the record ([`KwpFlavor::Exact`], what a conformant
//!   token produces) or AWS-LC's KWP of the record zero-padded to 56 bytes
//!   ([`KwpFlavor::ZeroPadded`], SoftHSM 2.6; accepted only when the configuration allows it).
//!   A token offering neither mechanism, or none that passes, is refused.
//! * Wrap: the SPEC 3 inner record becomes a temporary session object (`CKO_SECRET_KEY`,
//!   `CKK_GENERIC_SECRET`, extractable) that `C_WrapKey` wraps under the tenant key; the object is
//!   destroyed at once. On an exact token the blob is byte for byte what Cellar's own KWP
//!   produces (`0x57 | format | kek_id | AES-KWP(tenant key, record)`), the kek id being the
//!   token key's fingerprint (below); on a zero-padded token the KWP part is AES-KWP of the record
//!   followed by zeros up to a multiple of 8 bytes. Unwrap: `C_UnwrapKey` into a temporary
//!   session object whose value is read and the object destroyed; on a zero-padded token the
//!   record's own header says where it ends (`strip_zero_padding`).
//! * The version's 16-byte key id is the token key's fingerprint: the first 16 bytes of
//!   `HMAC-SHA256(key = AES-KWP(tenant key, "cellar pkcs11 key id v1"), "cellar key id v1")`,
//!   computed inside the token (KWP is deterministic). It names the version in blobs and proves on
//!   reconnect that the object found is the same key.
//! * Exported keyring state records a PKCS#11 version as a reference ([`Pkcs11Ref`]: module
//!   path, token label and serial, key `CKA_ID` and `CKA_LABEL`), never material; after import
//!   [`Keyring::unlock_pkcs11`] reconnects with the PIN.
//! * Every operation the token performed reports indicator 0 (SPEC 1): the HSM's own
//!   certificate covers it, not this module's approved services.
//!
//! Why this file has `unsafe`: `cryptoki` 0.12 does not know the PKCS#11 3.0 mechanism
//! `CKM_AES_KEY_WRAP_KWP` (it filters it out of mechanism lists and cannot name it), so the
//! mechanism list, mechanism info, `C_WrapKey` and `C_UnwrapKey` go through the module's own
//! function list (`cryptoki-sys`), on the sessions and objects `cryptoki` manages. That code is
//! the small [`raw`] module below.

use crate::error::{Error, Result};
use crate::fips;
use crate::keyring::{KeyProvider, Keyring, ProviderError};
use crate::keys::{self, KeyId, KEY_ID_LEN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use core::fmt;
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use zeroize::{Zeroize, Zeroizing};

/// `CKM_AES_KEY_WRAP_KWP` (PKCS#11 3.0): AES key wrap with padding, RFC 5649 / SP 800-38F KWP.
pub const CKM_AES_KEY_WRAP_KWP: u64 = 0x210B;
/// `CKM_AES_KEY_WRAP_PAD`: the older code for the same algorithm (SoftHSM2 and some vendors);
/// trusted only after the known-answer test.
pub const CKM_AES_KEY_WRAP_PAD: u64 = 0x210A;
/// Default bound on the sessions one token connection opens for operations.
pub const DEFAULT_MAX_SESSIONS: usize = 8;
/// Largest accepted session bound.
pub const MAX_SESSIONS: usize = 64;
/// Longest accepted module path, token label, key label or key `CKA_ID`, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Format of a [`Pkcs11Ref`] as recorded in exported keyring state: tag `'H'` (HSM) and
/// version 1.
pub const REF_TAG: u8 = 0x48;
const REF_VERSION: u8 = 0x01;
const FINGERPRINT_RECORD: &[u8] = b"cellar pkcs11 key id v1";
const KEY_ID_LABEL: &[u8] = b"cellar key id v1";

// ---------------------------------------------------------------------------------------------
// Errors: PKCS#11 return values become Cellar errors whose text names the CKR_ value.

/// Interned texts, so an error can name a PKCS#11 function and return value with a `'static`
/// message. The set of (function, return value) pairs is finite; past a bound a fixed text is used.
fn intern(s: String) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET.get_or_init(|| Mutex::new(HashSet::new())).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = set.get(s.as_str()) {
        return v;
    }
    if set.len() >= 512 {
        return "a PKCS#11 call failed";
    }
    let v: &'static str = Box::leak(s.into_boxed_str());
    set.insert(v);
    v
}

/// `CKR_DEVICE_REMOVED` from `RvError::DeviceRemoved`, and so on (the variant names are the
/// CamelCase of the CKR_ names).
fn ckr_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(v) => format!("CKR_VENDOR_DEFINED(0x{v:x})"),
        RvError::UnknownErrorCode(v) => format!("CKR_0x{v:x}"),
        other => {
            let dbg = format!("{other:?}");
            let mut s = String::from("CKR_");
            for (i, c) in dbg.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    s.push('_');
                }
                s.push(c.to_ascii_uppercase());
            }
            s
        }
    }
}

fn fn_name(f: &Function) -> String {
    format!("C_{f:?}")
}

/// The return value of a failed PKCS#11 call, if that is what `e` is.
fn rv_of(e: &CkError) -> Option<&RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(rv),
        _ => None,
    }
}

/// Maps a `cryptoki` failure onto a Cellar error; the text names the call and the CKR_ value.
fn ck_error(what: &'static str, e: CkError) -> Error {
    match &e {
        CkError::Pkcs11(rv, f) => {
            let text = intern(format!("{what}: {} returned {}", fn_name(f), ckr_name(rv)));
            match rv {
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange => Error::AuthenticationFailed(text),
                RvError::UserNotLoggedIn => Error::TenantLocked(text),
                _ => Error::ProviderFailed(text),
            }
        }
        CkError::LibraryLoading(_) | CkError::MissingSymbol(_) => {
            Error::ProviderFailed("the PKCS#11 module could not be loaded (no such file, or not a PKCS#11 library)")
        }
        other => Error::ProviderFailed(intern(format!("{what}: {other}"))),
    }
}

/// Whether this failure means the session (or the whole token) is gone: the session is then
/// dropped from the pool rather than reused.
fn session_is_dead(e: &CkError) -> bool {
    matches!(
        rv_of(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::CryptokiNotInitialized
                | RvError::UserNotLoggedIn
        )
    )
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Which token of a module to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSelector<'a> {
    /// The token whose `CKA_LABEL` (token info label, trailing blanks ignored) is this.
    Label(&'a str),
    /// The token with this serial number.
    Serial(&'a str),
    /// The token in this slot id.
    Slot(u64),
}

/// Which key object to adopt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySelector<'a> {
    /// The secret key whose `CKA_LABEL` is this.
    Label(&'a str),
    /// The secret key whose `CKA_ID` is these bytes.
    Id(&'a [u8]),
}

/// How to reach a token: the module's path, the token, the user PIN and the session bound.
/// `Debug` never prints the PIN.
#[derive(Clone, Copy)]
pub struct Pkcs11Config<'a> {
    /// Path of the vendor's PKCS#11 module (for SoftHSM2 on Debian
    /// `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: &'a str,
    /// The token.
    pub token: TokenSelector<'a>,
    /// The user PIN (`CKU_USER`), UTF-8.
    pub pin: &'a [u8],
    /// Most sessions this process opens on the token for operations (0: [`DEFAULT_MAX_SESSIONS`];
    /// at most [`MAX_SESSIONS`]). Threads beyond it wait for a free session.
    pub max_sessions: usize,
    /// Accept a token whose RFC 5649 mechanism zero-pads its input first
    /// ([`KwpFlavor::ZeroPadded`], SoftHSM 2.6). Off by default: such a token is refused.
    pub allow_zero_padded_kwp: bool,
}

impl fmt::Debug for Pkcs11Config<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("max_sessions", &self.max_sessions)
            .field("allow_zero_padded_kwp", &self.allow_zero_padded_kwp)
            .finish_non_exhaustive()
    }
}

fn check_name(s: &str, what: &'static str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(what));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The module: loaded once per path, never unloaded (C_Finalize would end every other user's
// sessions in the process).

struct Module {
    path: String,
    ctx: Pkcs11,
    raw: raw::Functions,
}

fn modules() -> &'static Mutex<Vec<Arc<Module>>> {
    static M: OnceLock<Mutex<Vec<Arc<Module>>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(Vec::new()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn load_module(path: &str) -> Result<Arc<Module>> {
    check_name(path, "the PKCS#11 module path must be 1 to 1024 bytes")?;
    let mut list = lock(modules());
    if let Some(m) = list.iter().find(|m| m.path == path) {
        return Ok(Arc::clone(m));
    }
    if !std::path::Path::new(path).is_file() {
        return Err(Error::ProviderFailed("the PKCS#11 module path does not name a file"));
    }
    let ctx = Pkcs11::new(path).map_err(|e| ck_error("loading the PKCS#11 module", e))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        // Another part of the process (the host itself) initialised it: use it as it is.
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck_error("initialising the PKCS#11 module", e)),
    }
    let raw = raw::Functions::load(path).map_err(|e| ck_error("loading the PKCS#11 function list", e))?;
    let m = Arc::new(Module { path: path.to_owned(), ctx, raw });
    list.push(Arc::clone(&m));
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// A token connection: one per (module, slot) in the process.

struct Pool {
    idle: Vec<Session>,
    open: usize,
}

/// A logged-in connection to one token: the anchor session that holds the login, a bounded pool
/// of operation sessions, and the probed key-wrap mechanism. Shared (`Arc`) by every keyring
/// version on the token; dropped with the last one, which closes the sessions and logs out.
pub struct Pkcs11Token {
    module: Arc<Module>,
    slot: Slot,
    label: String,
    serial: String,
    mechanism: u64,
    flavor: KwpFlavor,
    anchor: Mutex<Option<Session>>,
    pool: Mutex<Pool>,
    freed: Condvar,
    max_sessions: usize,
    pin_tag: [u8; 32],
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("module", &self.module.path)
            .field("slot", &self.slot.id())
            .field("label", &self.label)
            .field("serial", &self.serial)
            .field("mechanism", &format_args!("0x{:x}", self.mechanism))
            .finish_non_exhaustive()
    }
}

fn tokens() -> &'static Mutex<Vec<(String, u64, Weak<Pkcs11Token>)>> {
    static T: OnceLock<Mutex<Vec<(String, u64, Weak<Pkcs11Token>)>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(Vec::new()))
}

/// A per-process keyed tag of a PIN, so a second connection to a token this process is already
/// logged in to (where `C_Login` cannot check the PIN again) is refused unless it gives the same
/// PIN. The key is random per process; the tag is never stored outside memory.
fn pin_tag(pin: &[u8]) -> Result<[u8; 32]> {
    static K: OnceLock<[u8; 32]> = OnceLock::new();
    let k = match K.get() {
        Some(k) => k,
        None => {
            let mut k = [0u8; 32];
            fips::random(&mut k)?;
            K.get_or_init(|| k)
        }
    };
    let t = keys::hmac_sha256(k, &[b"cellar pkcs11 pin tag", pin]);
    let mut out = [0u8; 32];
    out.copy_from_slice(t.as_ref());
    Ok(out)
}

fn find_slot(module: &Module, sel: TokenSelector<'_>) -> Result<(Slot, String, String)> {
    let slots = module.ctx.get_slots_with_token().map_err(|e| ck_error("listing the token slots", e))?;
    for slot in slots {
        if let TokenSelector::Slot(id) = sel {
            if slot.id() != id {
                continue;
            }
        }
        let info = match module.ctx.get_token_info(slot) {
            Ok(i) => i,
            Err(_) => continue,
        };
        let label = info.label().trim_end().to_owned();
        let serial = info.serial_number().trim_end().to_owned();
        let hit = match sel {
            TokenSelector::Slot(_) => true,
            TokenSelector::Label(l) => l.trim_end() == label,
            TokenSelector::Serial(s) => s.trim_end() == serial,
        };
        if hit {
            return Ok((slot, label, serial));
        }
    }
    Err(Error::ProviderFailed(match sel {
        TokenSelector::Label(_) => "no token with this label is present in the PKCS#11 module",
        TokenSelector::Serial(_) => "no token with this serial number is present in the PKCS#11 module",
        TokenSelector::Slot(_) => "no token is present in this slot of the PKCS#11 module",
    }))
}

impl Pkcs11Token {
    /// Connects to the token `cfg` names (or joins this process's existing connection to it,
    /// which must have been made with the same PIN) and logs in as the user. Errors: module
    /// missing or not loadable, no such token: [`Error::ProviderFailed`]; wrong PIN:
    /// [`Error::AuthenticationFailed`] naming `CKR_PIN_INCORRECT`; a token without a usable
    /// RFC 5649 mechanism: [`Error::ProviderFailed`].
    pub fn connect(cfg: &Pkcs11Config<'_>) -> Result<Arc<Self>> {
        let max_sessions = match cfg.max_sessions {
            0 => DEFAULT_MAX_SESSIONS,
            n if n <= MAX_SESSIONS => n,
            _ => return Err(Error::InvalidArgument("max_sessions must be at most 64")),
        };
        if cfg.pin.is_empty() || cfg.pin.len() > 256 {
            return Err(Error::InvalidArgument("the PIN must be 1 to 256 bytes"));
        }
        let pin_str = core::str::from_utf8(cfg.pin).map_err(|_| Error::InvalidArgument("the PIN must be UTF-8"))?;
        match cfg.token {
            TokenSelector::Label(s) | TokenSelector::Serial(s) => check_name(s, "the token label or serial must be 1 to 1024 bytes")?,
            TokenSelector::Slot(_) => {}
        }
        let module = load_module(cfg.module)?;
        let tag = pin_tag(cfg.pin)?;
        // The registry lock is held while logging in and (in Drop) while logging out, so one
        // connection's logout never races another's login on the same token.
        let mut reg = lock(tokens());
        let (slot, label, serial) = find_slot(&module, cfg.token)?;
        reg.retain(|(_, _, w)| w.strong_count() > 0);
        if let Some(t) = reg.iter().find(|(p, s, _)| *p == module.path && *s == slot.id()).and_then(|(_, _, w)| w.upgrade()) {
            if t.pin_tag != tag {
                drop(reg);
                return Err(Error::AuthenticationFailed(
                    "this process is already logged in to the token with another PIN (CKR_PIN_INCORRECT)",
                ));
            }
            drop(reg);
            if t.flavor == KwpFlavor::ZeroPadded && !cfg.allow_zero_padded_kwp {
                return Err(Error::ProviderFailed(
                    "the token's AES key wrap with padding zero-pads its input before RFC 5649; refused unless the \
                     configuration allows the zero-padded flavour",
                ));
            }
            return Ok(t);
        }
        let anchor = module.ctx.open_rw_session(slot).map_err(|e| ck_error("opening a session", e))?;
        let pin = AuthPin::from(pin_str.to_owned());
        match anchor.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(ck_error("logging in to the token", e)),
        }
        drop(pin);
        let (mechanism, flavor) = probe_mechanism(&module, slot, &anchor, cfg.allow_zero_padded_kwp)?;
        let t = Arc::new(Pkcs11Token {
            module: Arc::clone(&module),
            slot,
            label,
            serial,
            mechanism,
            flavor,
            anchor: Mutex::new(Some(anchor)),
            pool: Mutex::new(Pool { idle: Vec::new(), open: 0 }),
            freed: Condvar::new(),
            max_sessions,
            pin_tag: tag,
        });
        reg.push((module.path.clone(), slot.id(), Arc::downgrade(&t)));
        Ok(t)
    }

    /// The key-wrap mechanism the probe chose: [`CKM_AES_KEY_WRAP_KWP`] or [`CKM_AES_KEY_WRAP_PAD`].
    pub fn mechanism(&self) -> u64 {
        self.mechanism
    }

    /// How the chosen mechanism wraps inputs that are not a multiple of 8 bytes.
    pub fn flavor(&self) -> KwpFlavor {
        self.flavor
    }

    /// The token's label (trailing blanks removed).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The token's serial number (trailing blanks removed).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Sessions currently open for operations (not counting the anchor session).
    pub fn open_sessions(&self) -> usize {
        lock(&self.pool).open
    }

    /// Runs `f` on a session from the pool (opening one while fewer than the bound are open,
    /// waiting otherwise). A session that fails with a dead-session return value is closed
    /// instead of being returned to the pool.
    fn with_session<T>(&self, what: &'static str, f: impl FnOnce(&Session) -> core::result::Result<T, CkError>) -> Result<T> {
        self.with_session_ck(f).map_err(|e| ck_error(what, e))
    }

    fn with_session_ck<T>(&self, f: impl FnOnce(&Session) -> core::result::Result<T, CkError>) -> core::result::Result<T, CkError> {
        let session = {
            let mut p = lock(&self.pool);
            loop {
                if let Some(s) = p.idle.pop() {
                    break Some(s);
                }
                if p.open < self.max_sessions {
                    p.open += 1;
                    break None;
                }
                p = self.freed.wait(p).unwrap_or_else(|e| e.into_inner());
            }
        };
        let session = match session {
            Some(s) => s,
            None => match self.module.ctx.open_rw_session(self.slot) {
                Ok(s) => s,
                Err(e) => {
                    lock(&self.pool).open -= 1;
                    self.freed.notify_one();
                    return Err(e);
                }
            },
        };
        let r = f(&session);
        let dead = matches!(&r, Err(e) if session_is_dead(e));
        {
            let mut p = lock(&self.pool);
            if dead {
                p.open -= 1;
                drop(p);
                drop(session);
            } else {
                p.idle.push(session);
            }
        }
        self.freed.notify_one();
        r
    }
}

impl Drop for Pkcs11Token {
    fn drop(&mut self) {
        // Held so no other connection logs in to this token while this one logs out.
        let reg = lock(tokens());
        let another = reg
            .iter()
            .any(|(p, s, w)| *p == self.module.path && *s == self.slot.id() && w.strong_count() > 0);
        let idle = std::mem::take(&mut lock(&self.pool).idle);
        drop(idle);
        if let Some(anchor) = lock(&self.anchor).take() {
            if !another {
                let _ = anchor.logout();
            }
            drop(anchor);
        }
        drop(reg);
    }
}

/// A session object holding `value` as an extractable generic secret: the form in which the
/// token wraps an inner record. Destroyed on drop.
struct TempObject<'s> {
    session: &'s Session,
    handle: ObjectHandle,
}

impl<'s> TempObject<'s> {
    fn create(session: &'s Session, value: &[u8]) -> core::result::Result<Self, CkError> {
        let mut v = Zeroizing::new(value.to_vec());
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Value(core::mem::take(&mut *v)),
        ];
        let r = session.create_object(&template);
        wipe_template(template);
        Ok(TempObject { session, handle: r? })
    }
}

impl Drop for TempObject<'_> {
    fn drop(&mut self) {
        let _ = self.session.destroy_object(self.handle);
    }
}

fn wipe_template<const N: usize>(template: [Attribute; N]) {
    for a in template {
        if let Attribute::Value(mut v) = a {
            v.zeroize();
        }
    }
}

/// Reads `CKA_VALUE` of an object into zeroizing memory.
fn read_value(session: &Session, obj: ObjectHandle) -> core::result::Result<Zeroizing<Vec<u8>>, CkError> {
    let attrs = session.get_attributes(obj, &[AttributeType::Value])?;
    let mut out = Zeroizing::new(Vec::new());
    for a in attrs {
        if let Attribute::Value(mut v) = a {
            out.extend_from_slice(&v);
            v.zeroize();
        }
    }
    Ok(out)
}

fn wrap_in_session(m: &Module, s: &Session, mech: u64, kek: ObjectHandle, record: &[u8]) -> core::result::Result<Vec<u8>, CkError> {
    let obj = TempObject::create(s, record)?;
    m.raw.wrap_key(s.handle(), mech, kek.handle(), obj.handle.handle())
}

fn unwrap_in_session(m: &Module, s: &Session, mech: u64, kek: ObjectHandle, wrapped: &[u8]) -> core::result::Result<Zeroizing<Vec<u8>>, CkError> {
    let h = m.raw.unwrap_generic_secret(s.handle(), mech, kek.handle(), wrapped)?;
    // SAFETY (of the handle): `h` was just returned by C_UnwrapKey in this session.
    let obj = TempObject { session: s, handle: unsafe { ObjectHandle::new_from_raw(h) } };
    read_value(s, obj.handle)
}

/// AWS-LC's own KWP (one module service), for the known-answer test.
fn software_kwp(kek: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plain.len().div_ceil(8) * 8 + 8);
    crate::keys::kwp_wrap(kek, plain, &mut out)?;
    Ok(out)
}

/// How a probed mechanism treats inputs whose length is not a multiple of 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KwpFlavor {
    /// Exact RFC 5649 for every length: blobs are byte for byte Cellar's own KWP.
    Exact,
    /// RFC 5649 of the input zero-padded to a multiple of 8 bytes first (SoftHSM 2.6's
    /// `CKM_AES_KEY_WRAP_PAD`): still AES-KWP (SP 800-38F) under the token key, and it unwraps
    /// exact RFC 5649 blobs correctly, but a 53-, 54-, 85- or 86-byte record wraps as 56 or 88
    /// bytes (with two or three zeros inside the KWP layer), so blobs it makes are not
    /// byte-identical to Cellar's own; inputs whose length is a multiple of 8 are. Used only when the configuration
    /// allows it ([`Pkcs11Config::allow_zero_padded_kwp`]).
    ZeroPadded,
}

/// The known-answer test of one candidate mechanism (see the module documentation): `None`
/// when the mechanism is not RFC 5649 in either flavour.
fn kat(module: &Module, s: &Session, mech: u64) -> Result<Option<KwpFlavor>> {
    let key = match s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(32.into()),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ],
    ) {
        Ok(k) => k,
        Err(e) => return Err(ck_error("creating the temporary key for the key-wrap known-answer test", e)),
    };
    let key = TempObject { session: s, handle: key };
    let material = read_value(s, key.handle).map_err(|e| ck_error("reading the temporary known-answer key", e))?;
    if material.len() != 32 {
        return Ok(None);
    }
    // 53 bytes: the length of an AES-256 data key's inner record, not a multiple of 8, so the
    // padding is exercised; and 56 bytes, a multiple of 8.
    let record: Vec<u8> = (0u8..53).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    let mut padded = record.clone();
    padded.resize(56, 0);
    let exact = software_kwp(&material, &record)?;
    let exact56 = software_kwp(&material, &padded)?;
    // Unwrapping Cellar's own KWP must give the record back, whatever the flavour.
    match unwrap_in_session(module, s, mech, key.handle, &exact) {
        Ok(back) if back[..] == record[..] => {}
        _ => return Ok(None),
    }
    match wrap_in_session(module, s, mech, key.handle, &padded) {
        Ok(w) if w == exact56 => {}
        _ => return Ok(None),
    }
    Ok(match wrap_in_session(module, s, mech, key.handle, &record) {
        Ok(w) if w == exact => Some(KwpFlavor::Exact),
        Ok(w) if w == exact56 => Some(KwpFlavor::ZeroPadded),
        _ => None,
    })
}

fn probe_mechanism(module: &Module, slot: Slot, s: &Session, allow_padded: bool) -> Result<(u64, KwpFlavor)> {
    let list = module.raw.mechanism_list(slot.id()).map_err(|e| ck_error("listing the token's mechanisms", e))?;
    let mut padded_only = false;
    for mech in [CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD] {
        if !list.contains(&mech) {
            continue;
        }
        match module.raw.mechanism_wraps(slot.id(), mech) {
            Ok(true) => {}
            _ => continue,
        }
        match kat(module, s, mech)? {
            Some(KwpFlavor::Exact) => return Ok((mech, KwpFlavor::Exact)),
            Some(KwpFlavor::ZeroPadded) if allow_padded => return Ok((mech, KwpFlavor::ZeroPadded)),
            Some(KwpFlavor::ZeroPadded) => padded_only = true,
            None => {}
        }
    }
    Err(Error::ProviderFailed(if padded_only {
        "the token's AES key wrap with padding zero-pads its input before RFC 5649 (SoftHSM 2.6 does), so its \
         blobs would not be byte-identical to Cellar's own; refused unless the configuration allows the \
         zero-padded flavour"
    } else {
        "the token offers no AES key wrap with padding (RFC 5649) that passes the known-answer test \
         (neither CKM_AES_KEY_WRAP_KWP nor CKM_AES_KEY_WRAP_PAD)"
    }))
}

// ---------------------------------------------------------------------------------------------
// A token key: the KeyProvider of one keyring version.

/// A reference to a token key, as exported with keyring state: never material.
/// Encoded `'H' | 0x01 | module | token label | token serial | key CKA_ID | key CKA_LABEL`,
/// each field `len (u16 BE) | bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Ref {
    /// Module path at the time of export.
    pub module: String,
    /// Token label.
    pub token_label: String,
    /// Token serial number.
    pub token_serial: String,
    /// The key object's `CKA_ID` (may be empty).
    pub key_id: Vec<u8>,
    /// The key object's `CKA_LABEL` (may be empty).
    pub key_label: String,
}

impl Pkcs11Ref {
    /// The encoded form.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![REF_TAG, REF_VERSION];
        for f in [self.module.as_bytes(), self.token_label.as_bytes(), self.token_serial.as_bytes(), &self.key_id, self.key_label.as_bytes()] {
            v.extend_from_slice(&(f.len().min(u16::MAX as usize) as u16).to_be_bytes());
            v.extend_from_slice(&f[..f.len().min(u16::MAX as usize)]);
        }
        v
    }

    /// Parses [`Pkcs11Ref::encode`] output; `None` for anything else (another provider's
    /// reference, or damage).
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < 2 || b[0] != REF_TAG || b[1] != REF_VERSION {
            return None;
        }
        let mut p = 2;
        let mut fields: Vec<&[u8]> = Vec::with_capacity(5);
        for _ in 0..5 {
            let l = u16::from_be_bytes([*b.get(p)?, *b.get(p + 1)?]) as usize;
            fields.push(b.get(p + 2..p + 2 + l)?);
            p += 2 + l;
        }
        if p != b.len() {
            return None;
        }
        let s = |x: &[u8]| String::from_utf8(x.to_vec()).ok();
        Some(Pkcs11Ref {
            module: s(fields[0])?,
            token_label: s(fields[1])?,
            token_serial: s(fields[2])?,
            key_id: fields[3].to_vec(),
            key_label: s(fields[4])?,
        })
    }
}

/// A token key serving as one keyring version ([`KeyProvider`]). Wrap and unwrap happen inside
/// the token; the key's material is never read.
pub struct Pkcs11Key {
    token: Arc<Pkcs11Token>,
    handle: ObjectHandle,
    id: KeyId,
    ck_id: Vec<u8>,
    label: String,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.token.label)
            .field("label", &self.label)
            .field("id", &self.id.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .finish_non_exhaustive()
    }
}

/// Attributes a secret key object must have to serve as a tenant key, checked on adoption, on
/// reconnect and after creation. Each refusal names the attribute.
fn check_key_attributes(s: &Session, h: ObjectHandle) -> core::result::Result<Result<()>, CkError> {
    let attrs = s.get_attributes(
        h,
        &[
            AttributeType::Class,
            AttributeType::KeyType,
            AttributeType::ValueLen,
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::Wrap,
            AttributeType::Unwrap,
        ],
    )?;
    let (mut class, mut kt, mut len) = (None, None, None);
    let (mut sensitive, mut extractable, mut wrap, mut unwrap) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::Class(c) => class = Some(c),
            Attribute::KeyType(k) => kt = Some(k),
            Attribute::ValueLen(l) => len = Some(u64::from(l)),
            Attribute::Sensitive(b) => sensitive = Some(b),
            Attribute::Extractable(b) => extractable = Some(b),
            Attribute::Wrap(b) => wrap = Some(b),
            Attribute::Unwrap(b) => unwrap = Some(b),
            _ => {}
        }
    }
    let refuse = |m: &'static str| Ok(Err(Error::InvalidKey(m)));
    if class != Some(ObjectClass::SECRET_KEY) || kt != Some(CkKeyType::AES) {
        return refuse("the token object is not an AES secret key (CKA_CLASS CKO_SECRET_KEY, CKA_KEY_TYPE CKK_AES)");
    }
    if len != Some(32) {
        return refuse("the token key is not AES-256 (CKA_VALUE_LEN must be 32)");
    }
    if extractable != Some(false) {
        return refuse("the token key is extractable (CKA_EXTRACTABLE must be false): its material could leave the HSM");
    }
    if sensitive != Some(true) {
        return refuse("the token key is not sensitive (CKA_SENSITIVE must be true)");
    }
    if unwrap != Some(true) {
        return refuse("the token key cannot unwrap (CKA_UNWRAP must be true)");
    }
    if wrap != Some(true) {
        return refuse("the token key cannot wrap (CKA_WRAP must be true)");
    }
    Ok(Ok(()))
}

/// After generation only: the key Cellar asked for can do nothing but wrap and unwrap. A token
/// that ignored `CKA_ENCRYPT`, `CKA_DECRYPT`, `CKA_SIGN`, `CKA_VERIFY` or `CKA_DERIVE` false in
/// the template is refused, naming the attribute. (Adopted keys are not held to this: a customer's
/// key may have other uses their HSM policy allows.)
fn check_generated_usage(s: &Session, h: ObjectHandle) -> core::result::Result<Result<()>, CkError> {
    let attrs = s.get_attributes(
        h,
        &[AttributeType::Encrypt, AttributeType::Decrypt, AttributeType::Sign, AttributeType::Verify, AttributeType::Derive],
    )?;
    for a in attrs {
        let bad = match a {
            Attribute::Encrypt(true) => "CKA_ENCRYPT",
            Attribute::Decrypt(true) => "CKA_DECRYPT",
            Attribute::Sign(true) => "CKA_SIGN",
            Attribute::Verify(true) => "CKA_VERIFY",
            Attribute::Derive(true) => "CKA_DERIVE",
            _ => continue,
        };
        return Ok(Err(Error::InvalidKey(intern(format!("the key has {bad} true; it must only wrap and unwrap")))));
    }
    Ok(Ok(()))
}

fn bytes_attr(s: &Session, h: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match s.get_attributes(h, &[t]) {
        Ok(v) => v
            .into_iter()
            .find_map(|a| match a {
                Attribute::Id(b) | Attribute::Label(b) => Some(b),
                _ => None,
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

impl Pkcs11Key {
    fn fingerprint(token: &Pkcs11Token, s: &Session, h: ObjectHandle) -> core::result::Result<KeyId, CkError> {
        let w = wrap_in_session(&token.module, s, token.mechanism, h, FINGERPRINT_RECORD)?;
        let tag = keys::hmac_sha256(&w, &[KEY_ID_LABEL]);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&tag.as_ref()[..KEY_ID_LEN]);
        Ok(id)
    }

    fn from_handle(token: Arc<Pkcs11Token>, s: &Session, h: ObjectHandle) -> core::result::Result<Result<Self>, CkError> {
        if let Err(e) = check_key_attributes(s, h)? {
            return Ok(Err(e));
        }
        let id = Self::fingerprint(&token, s, h)?;
        let ck_id = bytes_attr(s, h, AttributeType::Id);
        let label = String::from_utf8_lossy(&bytes_attr(s, h, AttributeType::Label)).into_owned();
        Ok(Ok(Pkcs11Key { token, handle: h, id, ck_id, label }))
    }

    /// Generates a new AES-256 tenant key in the token: `CKA_TOKEN`, `CKA_PRIVATE`,
    /// `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, `CKA_WRAP` and `CKA_UNWRAP` true, and
    /// encrypt, decrypt, sign, verify and derive false, with `CKA_LABEL` = `label` and a random
    /// 16-byte `CKA_ID`. Its attributes (all of these) are read back and checked before it is
    /// used; a token that did not honour the template has the key destroyed and the call fails.
    pub fn generate(cfg: &Pkcs11Config<'_>, label: &str) -> Result<Arc<Self>> {
        check_name(label, "the key label must be 1 to 1024 bytes")?;
        let token = Pkcs11Token::connect(cfg)?;
        let mut ck_id = vec![0u8; 16];
        fips::random(&mut ck_id)?;
        let t2 = Arc::clone(&token);
        token
            .with_session("creating the tenant key in the token", move |s| {
                let h = s.generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::ValueLen(32.into()),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Wrap(true),
                        Attribute::Unwrap(true),
                        Attribute::Encrypt(false),
                        Attribute::Decrypt(false),
                        Attribute::Sign(false),
                        Attribute::Verify(false),
                        Attribute::Derive(false),
                        Attribute::Label(label.as_bytes().to_vec()),
                        Attribute::Id(ck_id.clone()),
                    ],
                )?;
                let checked = match check_generated_usage(s, h)? {
                    Ok(()) => Self::from_handle(t2, s, h)?,
                    Err(e) => Err(e),
                };
                match checked {
                    Ok(k) => Ok(Ok(Arc::new(k))),
                    Err(e) => {
                        // A token that silently ignored the template: do not leave the key behind.
                        let _ = s.destroy_object(h);
                        Ok(Err(e))
                    }
                }
            })?
            .map_err(|e| match e {
                Error::InvalidKey(m) => Error::ProviderFailed(intern(format!("the token did not create the key as asked: {m}"))),
                e => e,
            })
    }

    /// Adopts an existing token key (bring your own HSM key), found by label or `CKA_ID`.
    /// No such key: [`Error::KeyNotFound`]; several: [`Error::InvalidArgument`]; a key that is
    /// extractable, not sensitive, not AES-256, or lacks `CKA_WRAP` / `CKA_UNWRAP`:
    /// [`Error::InvalidKey`] naming the attribute.
    pub fn adopt(cfg: &Pkcs11Config<'_>, key: KeySelector<'_>) -> Result<Arc<Self>> {
        match key {
            KeySelector::Label(l) => check_name(l, "the key label must be 1 to 1024 bytes")?,
            KeySelector::Id(i) => {
                if i.is_empty() || i.len() > MAX_NAME_LEN {
                    return Err(Error::InvalidArgument("the key CKA_ID must be 1 to 1024 bytes"));
                }
            }
        }
        let token = Pkcs11Token::connect(cfg)?;
        let found = find_keys(&token, key)?;
        let h = match found.as_slice() {
            [] => return Err(Error::KeyNotFound("no secret key with this label or CKA_ID in the token")),
            [h] => *h,
            _ => return Err(Error::InvalidArgument("several secret keys in the token match; select the key by CKA_ID")),
        };
        let t2 = Arc::clone(&token);
        token.with_session("adopting the token key", move |s| Self::from_handle(t2, s, h))?.map(Arc::new)
    }

    /// **Hazard, tests only**: adopts a token key by label *without* the attribute checks, so an
    /// extractable test key whose material is known can show that a blob wrapped inside the token
    /// is byte for byte Cellar's own KWP. Never use it for a real tenant key. Not in the C API.
    #[doc(hidden)]
    pub fn dangerous_adopt_unchecked(cfg: &Pkcs11Config<'_>, label: &str) -> Result<Arc<Self>> {
        let token = Pkcs11Token::connect(cfg)?;
        let h = match find_keys(&token, KeySelector::Label(label))?.as_slice() {
            [h] => *h,
            _ => return Err(Error::KeyNotFound("no single secret key with this label in the token")),
        };
        let t2 = Arc::clone(&token);
        token.with_session("adopting the token key", move |s| {
            let id = Self::fingerprint(&t2, s, h)?;
            let ck_id = bytes_attr(s, h, AttributeType::Id);
            Ok(Arc::new(Pkcs11Key { token: t2, handle: h, id, ck_id, label: label.to_owned() }))
        })
    }

    /// Reconnects to the key a [`Pkcs11Ref`] names, requiring its fingerprint to be `id`.
    fn reconnect(r: &Pkcs11Ref, module: Option<&str>, pin: &[u8], max_sessions: usize, allow_padded: bool, id: &KeyId) -> Result<Arc<Self>> {
        let module = module.unwrap_or(&r.module);
        let sel = if r.token_serial.is_empty() { TokenSelector::Label(&r.token_label) } else { TokenSelector::Serial(&r.token_serial) };
        let token = Pkcs11Token::connect(&Pkcs11Config { module, token: sel, pin, max_sessions, allow_zero_padded_kwp: allow_padded })?;
        let found = if !r.key_id.is_empty() {
            find_keys(&token, KeySelector::Id(&r.key_id))?
        } else {
            find_keys(&token, KeySelector::Label(&r.key_label))?
        };
        for h in found {
            let t2 = Arc::clone(&token);
            if let Ok(k) = token.with_session("reconnecting to the token key", move |s| Self::from_handle(t2, s, h))? {
                if &k.id == id {
                    return Ok(Arc::new(k));
                }
            }
        }
        Err(Error::KeyNotFound("the token key this keyring version names is not in the token (destroyed?)"))
    }

    /// The reference exported keyring state records for this key.
    pub fn reference(&self) -> Pkcs11Ref {
        Pkcs11Ref {
            module: self.token.module.path.clone(),
            token_label: self.token.label.clone(),
            token_serial: self.token.serial.clone(),
            key_id: self.ck_id.clone(),
            key_label: self.label.clone(),
        }
    }

    /// The connection this key uses.
    pub fn token(&self) -> &Arc<Pkcs11Token> {
        &self.token
    }

    /// The key object's current `CKA_SENSITIVE`, `CKA_EXTRACTABLE`, `CKA_NEVER_EXTRACTABLE` and
    /// `CKA_ALWAYS_SENSITIVE`, read from the token (for audits and tests).
    pub fn attributes(&self) -> Result<KeyAttributes> {
        let h = self.handle;
        self.token.with_session("reading the token key's attributes", move |s| {
            let attrs = s.get_attributes(
                h,
                &[AttributeType::Sensitive, AttributeType::Extractable, AttributeType::NeverExtractable, AttributeType::AlwaysSensitive],
            )?;
            let mut k = KeyAttributes::default();
            for a in attrs {
                match a {
                    Attribute::Sensitive(b) => k.sensitive = b,
                    Attribute::Extractable(b) => k.extractable = b,
                    Attribute::NeverExtractable(b) => k.never_extractable = b,
                    Attribute::AlwaysSensitive(b) => k.always_sensitive = b,
                    _ => {}
                }
            }
            Ok(k)
        })
    }

    /// Destroys the key object in the token (`C_DestroyObject`): irreversible.
    pub fn destroy_object(&self) -> Result<()> {
        let h = self.handle;
        self.token.with_session("destroying the token key", move |s| s.destroy_object(h))
    }
}

/// Security attributes of a token key ([`Pkcs11Key::attributes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyAttributes {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
}

fn find_keys(token: &Pkcs11Token, key: KeySelector<'_>) -> Result<Vec<ObjectHandle>> {
    let mut template = vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Token(true)];
    match key {
        KeySelector::Label(l) => template.push(Attribute::Label(l.as_bytes().to_vec())),
        KeySelector::Id(i) => template.push(Attribute::Id(i.to_vec())),
    }
    token.with_session("finding the token key", move |s| s.find_objects(&template))
}

/// A zero-padded-flavour token returns the record padded with zeros to a multiple of 8 bytes.
/// The true length comes from the record itself: its key type gives the material length, and
/// its second byte tells the two layouts of SPEC 3 apart (docs/FORMATS.md 1.3):
///
/// * v1 (blob format 0x01) `type | version (4) | key id (16) | material`: 53 or 85 bytes;
/// * v2 (blob format 0x02) `type | purpose (1) | version (4) | key id (16) | material`, purpose
///   1 to 3: 54 or 86 bytes.
///
/// Such a token unwraps an exact RFC 5649 blob (one Cellar's own KWP made) to the record alone,
/// and its own blobs to the record and zeros. Both layouts pad to the same 56 or 88 bytes, and a
/// v1 record's second byte (the version's top byte) is not forbidden from being 1 to 3, so a
/// layout is accepted only when the length is its own or its padded one, what follows it is all
/// zeros, *and* the key id at its place equals the id of the material at its place
/// (`HMAC-SHA256(material, "cellar key id v1")`, as SPEC 3 defines it). Exactly one layout must
/// fit; none, or both (which needs a 128-bit id collision), is a rejected blob. The keyring's
/// record check (format byte against layout, XTS halves, version) still runs afterwards.
fn strip_zero_padding(rec: &mut Zeroizing<Vec<u8>>) -> core::result::Result<(), ProviderError> {
    let Some(&t) = rec.first() else { return Err(ProviderError::Rejected) };
    let Ok(kt) = crate::keys::KeyType::from_u32(u32::from(t)) else { return Err(ProviderError::Rejected) };
    let m = kt.material_len();
    let fits = |o: usize| -> Option<usize> {
        // `o`: 0 for v1, 1 for v2 (the purpose byte).
        let want = 1 + o + 4 + KEY_ID_LEN + m;
        // The record alone (a blob Cellar's own exact KWP made, which such a token unwraps
        // exactly), or the record and zeros up to a multiple of 8 (a blob the token made).
        if (rec.len() != want && rec.len() != want.div_ceil(8) * 8) || rec[want..].iter().any(|&b| b != 0) {
            return None;
        }
        if o == 1 && !matches!(rec[1], 1..=3) {
            return None;
        }
        let id_at = 1 + o + 4;
        let tag = keys::hmac_sha256(&rec[id_at + KEY_ID_LEN..want], &[KEY_ID_LABEL]);
        // Not secret-dependent timing that matters: both ids are public (the id of a key is
        // public, SPEC 3), only the material is secret and it is not compared.
        (tag.as_ref()[..KEY_ID_LEN] == rec[id_at..id_at + KEY_ID_LEN]).then_some(want)
    };
    match (fits(0), fits(1)) {
        (Some(want), None) | (None, Some(want)) => {
            rec.truncate(want);
            Ok(())
        }
        _ => Err(ProviderError::Rejected),
    }
}

/// Failures of wrap/unwrap inside the token, passed to the keyring with their CKR_ text.
fn provider_error(what: &'static str, e: CkError, unwrapping: bool) -> ProviderError {
    if unwrapping
        && matches!(
            rv_of(&e),
            Some(
                RvError::WrappedKeyInvalid
                    | RvError::WrappedKeyLenRange
                    | RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::DataInvalid
            )
        )
    {
        return ProviderError::Rejected;
    }
    // Some tokens (SoftHSM2) report a KWP integrity failure as CKR_GENERAL_ERROR or
    // CKR_FUNCTION_FAILED: on unwrap that is reported as a blob that does not authenticate,
    // with the CKR_ value in the text.
    if unwrapping {
        if let CkError::Pkcs11(rv @ (RvError::GeneralError | RvError::FunctionFailed), f @ Function::UnwrapKey) = &e {
            return ProviderError::Cellar(Error::AuthenticationFailed(intern(format!(
                "{what}: {} returned {} (the blob does not authenticate under the token key)",
                fn_name(f),
                ckr_name(rv)
            ))));
        }
    }
    ProviderError::Cellar(ck_error(what, e))
}

impl KeyProvider for Pkcs11Key {
    fn key_id(&self) -> KeyId {
        self.id
    }

    fn wrap(&self, record: &[u8]) -> core::result::Result<Vec<u8>, ProviderError> {
        // The token performed this: not one of this module's approved services (SPEC 1).
        fips::note_external();
        let (m, mech, h) = (&self.token.module, self.token.mechanism, self.handle);
        self.token
            .with_session_ck(|s| wrap_in_session(m, s, mech, h, record))
            .map_err(|e| provider_error("wrapping inside the token", e, false))
    }

    fn unwrap(&self, wrapped: &[u8]) -> core::result::Result<Zeroizing<Vec<u8>>, ProviderError> {
        fips::note_external();
        if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
            return Err(ProviderError::Rejected);
        }
        let (m, mech, h) = (&self.token.module, self.token.mechanism, self.handle);
        let mut rec = self
            .token
            .with_session_ck(|s| unwrap_in_session(m, s, mech, h, wrapped))
            .map_err(|e| provider_error("unwrapping inside the token", e, true))?;
        if self.token.flavor == KwpFlavor::ZeroPadded {
            strip_zero_padding(&mut rec)?;
        }
        Ok(rec)
    }

    fn reference(&self) -> Option<Vec<u8>> {
        Some(Pkcs11Ref::encode(&Pkcs11Key::reference(self)))
    }

    fn destroy(&self) -> core::result::Result<(), ProviderError> {
        self.destroy_object().map_err(ProviderError::Cellar)
    }
}

// ---------------------------------------------------------------------------------------------
// Keyring operations with token versions.

impl Keyring {
    /// Creates a keyring whose version 1 is a new AES-256 key generated in the token
    /// ([`Pkcs11Key::generate`]).
    pub fn new_pkcs11(cfg: &Pkcs11Config<'_>, key_label: &str) -> Result<Self> {
        fips::operation(|| Keyring::with_provider(Pkcs11Key::generate(cfg, key_label)?))
    }

    /// Creates a keyring whose version 1 is an existing token key ([`Pkcs11Key::adopt`]).
    pub fn adopt_pkcs11(cfg: &Pkcs11Config<'_>, key: KeySelector<'_>) -> Result<Self> {
        fips::operation(|| Keyring::with_provider(Pkcs11Key::adopt(cfg, key)?))
    }

    /// Rotates to a new key generated in the token; returns the new version.
    pub fn rotate_pkcs11(&self, cfg: &Pkcs11Config<'_>, key_label: &str) -> Result<u32> {
        fips::operation(|| self.add_provider(Pkcs11Key::generate(cfg, key_label)?))
    }

    /// Rotates to an existing token key; returns the new version.
    pub fn rotate_pkcs11_adopt(&self, cfg: &Pkcs11Config<'_>, key: KeySelector<'_>) -> Result<u32> {
        fips::operation(|| self.add_provider(Pkcs11Key::adopt(cfg, key)?))
    }

    /// Reconnects every PKCS#11 version that is not attached (after [`Keyring::lock`] or
    /// after import): logs in with `pin` to the token each version's reference names (by
    /// serial number), finds the key by `CKA_ID` (or label) and checks its fingerprint against
    /// the version's key id. `module` overrides the module path recorded in the reference (the
    /// module may live elsewhere on another machine); `max_sessions` and
    /// `allow_zero_padded_kwp` as in [`Pkcs11Config`]. Returns how many versions were attached.
    /// A wrong PIN is [`Error::AuthenticationFailed`] naming `CKR_PIN_INCORRECT` and nothing is
    /// attached (the keyring stays locked); a missing key object is [`Error::KeyNotFound`].
    pub fn unlock_pkcs11(&self, pin: &[u8], module: Option<&str>, max_sessions: usize, allow_zero_padded_kwp: bool) -> Result<usize> {
        fips::operation(|| {
            let pending = self.detached_provider_references()?;
            let mut attached = Vec::new();
            for (_, id, r) in &pending {
                let Some(r) = Pkcs11Ref::decode(r) else { continue };
                attached.push(Pkcs11Key::reconnect(&r, module, pin, max_sessions, allow_zero_padded_kwp, id)?);
            }
            let n = attached.len();
            for k in attached {
                self.unlock_provider(k)?;
            }
            if n > 0 {
                fips::note_external();
            }
            Ok(n)
        })
    }

    /// Whether `version` is held by a PKCS#11 token (attached or not). Unknown version:
    /// [`Error::KeyNotFound`]. Also while locked.
    pub fn is_pkcs11_version(&self, version: u32) -> Result<bool> {
        Ok(self.provider_reference(version)?.is_some_and(|r| Pkcs11Ref::decode(&r).is_some()))
    }

    /// The token reference of a PKCS#11 version (`None` for other versions).
    pub fn pkcs11_reference(&self, version: u32) -> Result<Option<Pkcs11Ref>> {
        Ok(self.provider_reference(version)?.and_then(|r| Pkcs11Ref::decode(&r)))
    }
}

// ---------------------------------------------------------------------------------------------

/// Direct calls into the module's function list for what `cryptoki` 0.12 cannot express: the
/// PKCS#11 3.0 mechanism code `CKM_AES_KEY_WRAP_KWP` in mechanism lists, mechanism info,
/// `C_WrapKey` and `C_UnwrapKey`. The sessions and objects are `cryptoki`'s.
mod raw {
    use cryptoki::context::Function;
    use cryptoki::error::{Error as CkError, Rv};
    use cryptoki_sys::{
        CK_ATTRIBUTE, CK_BBOOL, CK_FALSE, CK_FUNCTION_LIST, CK_KEY_TYPE, CK_MECHANISM, CK_MECHANISM_INFO,
        CK_OBJECT_CLASS, CK_OBJECT_HANDLE, CK_SESSION_HANDLE, CK_TRUE, CK_ULONG, CKA_CLASS, CKA_EXTRACTABLE,
        CKA_KEY_TYPE, CKA_SENSITIVE, CKA_TOKEN, CKF_UNWRAP, CKF_WRAP, CKK_GENERIC_SECRET, CKO_SECRET_KEY,
    };
    use core::ffi::c_void;
    use core::ptr;

    pub(super) struct Functions {
        // Keeps the library mapped: `list` points into it.
        _lib: cryptoki_sys::Pkcs11,
        list: *const CK_FUNCTION_LIST,
    }

    // SAFETY: the function list is immutable data of a library that stays loaded for the life of
    // `Functions`; PKCS#11 functions are callable from any thread once the module is initialised
    // with CKF_OS_LOCKING_OK (which `load_module` does before any call here).
    unsafe impl Send for Functions {}
    unsafe impl Sync for Functions {}

    fn check(rv: CK_ULONG, f: Function) -> Result<(), CkError> {
        Rv::from(rv).into_result(f)
    }

    impl Functions {
        pub(super) fn load(path: &str) -> Result<Self, CkError> {
            // SAFETY: loading a PKCS#11 module runs its initialisers; the same library was just
            // loaded by `cryptoki` from the same path, so this only takes another reference.
            let lib = unsafe { cryptoki_sys::Pkcs11::new(path) }.map_err(CkError::LibraryLoading)?;
            if lib.C_GetFunctionList.is_err() {
                return Err(CkError::MissingSymbol("C_GetFunctionList"));
            }
            let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
            // SAFETY: C_GetFunctionList writes one pointer.
            check(unsafe { lib.C_GetFunctionList(&mut list) }, Function::GetFunctionList)?;
            if list.is_null() {
                return Err(CkError::NullFunctionPointer);
            }
            Ok(Functions { _lib: lib, list })
        }

        fn list(&self) -> &CK_FUNCTION_LIST {
            // SAFETY: non-null, checked in `load`, valid while the library is loaded.
            unsafe { &*self.list }
        }

        pub(super) fn mechanism_list(&self, slot: u64) -> Result<Vec<u64>, CkError> {
            let f = self.list().C_GetMechanismList.ok_or(CkError::NullFunctionPointer)?;
            let mut n: CK_ULONG = 0;
            // SAFETY: the first call only writes the count.
            check(unsafe { f(slot as _, ptr::null_mut(), &mut n) }, Function::GetMechanismList)?;
            let mut v = vec![0 as CK_ULONG; n as usize];
            // SAFETY: `v` holds `n` entries.
            check(unsafe { f(slot as _, v.as_mut_ptr(), &mut n) }, Function::GetMechanismList)?;
            v.truncate(n as usize);
            Ok(v.into_iter().map(|m| m as u64).collect())
        }

        pub(super) fn mechanism_wraps(&self, slot: u64, mech: u64) -> Result<bool, CkError> {
            let f = self.list().C_GetMechanismInfo.ok_or(CkError::NullFunctionPointer)?;
            let mut info = CK_MECHANISM_INFO::default();
            // SAFETY: writes one CK_MECHANISM_INFO.
            check(unsafe { f(slot as _, mech as _, &mut info) }, Function::GetMechanismInfo)?;
            Ok(info.flags & (CKF_WRAP | CKF_UNWRAP) == (CKF_WRAP | CKF_UNWRAP))
        }

        pub(super) fn wrap_key(&self, s: CK_SESSION_HANDLE, mech: u64, kek: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE) -> Result<Vec<u8>, CkError> {
            let f = self.list().C_WrapKey.ok_or(CkError::NullFunctionPointer)?;
            let mut m = CK_MECHANISM { mechanism: mech as _, pParameter: ptr::null_mut(), ulParameterLen: 0 };
            let mut n: CK_ULONG = 0;
            // SAFETY: a size query (NULL output) writes only `n`.
            check(unsafe { f(s, &mut m, kek, key, ptr::null_mut(), &mut n) }, Function::WrapKey)?;
            let mut out = vec![0u8; n as usize];
            // SAFETY: `out` holds `n` bytes.
            check(unsafe { f(s, &mut m, kek, key, out.as_mut_ptr(), &mut n) }, Function::WrapKey)?;
            out.truncate(n as usize);
            Ok(out)
        }

        /// Unwraps into a new session object: an extractable, non-sensitive generic secret.
        pub(super) fn unwrap_generic_secret(&self, s: CK_SESSION_HANDLE, mech: u64, kek: CK_OBJECT_HANDLE, wrapped: &[u8]) -> Result<CK_OBJECT_HANDLE, CkError> {
            let f = self.list().C_UnwrapKey.ok_or(CkError::NullFunctionPointer)?;
            let mut m = CK_MECHANISM { mechanism: mech as _, pParameter: ptr::null_mut(), ulParameterLen: 0 };
            let mut class: CK_OBJECT_CLASS = CKO_SECRET_KEY;
            let mut kt: CK_KEY_TYPE = CKK_GENERIC_SECRET;
            let mut f_: CK_BBOOL = CK_FALSE;
            let mut t_: CK_BBOOL = CK_TRUE;
            let ulong = core::mem::size_of::<CK_ULONG>() as CK_ULONG;
            let mut template = [
                CK_ATTRIBUTE { type_: CKA_CLASS, pValue: &mut class as *mut _ as *mut c_void, ulValueLen: ulong },
                CK_ATTRIBUTE { type_: CKA_KEY_TYPE, pValue: &mut kt as *mut _ as *mut c_void, ulValueLen: ulong },
                CK_ATTRIBUTE { type_: CKA_TOKEN, pValue: &mut f_ as *mut _ as *mut c_void, ulValueLen: 1 },
                CK_ATTRIBUTE { type_: CKA_SENSITIVE, pValue: &mut f_ as *mut _ as *mut c_void, ulValueLen: 1 },
                CK_ATTRIBUTE { type_: CKA_EXTRACTABLE, pValue: &mut t_ as *mut _ as *mut c_void, ulValueLen: 1 },
            ];
            let mut h: CK_OBJECT_HANDLE = 0;
            // SAFETY: every pointer is valid for the call; the module copies the template.
            check(
                unsafe {
                    f(s, &mut m, kek, wrapped.as_ptr() as *mut u8, wrapped.len() as CK_ULONG, template.as_mut_ptr(), template.len() as CK_ULONG, &mut h)
                },
                Function::UnwrapKey,
            )?;
            Ok(h)
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Key, KeyPurpose, KeyType};

    /// The SPEC 3 record as the keyring writes it (v1 without a purpose, v2 with one).
    fn record(k: &Key, version: u32) -> Vec<u8> {
        let mut r = vec![k.key_type() as u8];
        if k.purpose() != KeyPurpose::None {
            r.push(k.purpose() as u8);
        }
        r.extend_from_slice(&version.to_be_bytes());
        r.extend_from_slice(&k.id());
        r.extend_from_slice(k.material());
        r
    }

    fn padded(r: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut p = Zeroizing::new(r.to_vec());
        p.resize(r.len().div_ceil(8) * 8, 0);
        p
    }

    #[test]
    fn zero_padding_is_stripped_to_the_records_own_length() {
        let purposes = [KeyPurpose::None, KeyPurpose::DataEncryption, KeyPurpose::KeyWrapping, KeyPurpose::KeyDerivation];
        for kt in [KeyType::Aes256, KeyType::Aes256Xts] {
            for p in purposes {
                if p == KeyPurpose::KeyWrapping && kt == KeyType::Aes256Xts {
                    continue;
                }
                // Versions whose top byte is 0, and 1..3 (a v1 record whose second byte looks
                // like a purpose byte).
                for version in [1u32, 7, 0x0100_0000, 0x0300_0001] {
                    for _ in 0..64 {
                        let k = Key::generate_with_purpose(kt, p).unwrap();
                        let r = record(&k, version);
                        let want = match (kt, p) {
                            (KeyType::Aes256, KeyPurpose::None) => 53,
                            (KeyType::Aes256, _) => 54,
                            (KeyType::Aes256Xts, KeyPurpose::None) => 85,
                            (KeyType::Aes256Xts, _) => 86,
                        };
                        assert_eq!(r.len(), want);
                        let mut got = padded(&r);
                        assert_eq!(got.len(), if kt == KeyType::Aes256 { 56 } else { 88 });
                        strip_zero_padding(&mut got).unwrap_or_else(|_| panic!("{kt:?} {p:?} v{version}"));
                        assert_eq!(&got[..], &r[..], "{kt:?} {p:?} v{version}");
                        // An unpadded (exact) record is kept as it is.
                        let mut exact = Zeroizing::new(r.clone());
                        strip_zero_padding(&mut exact).unwrap();
                        assert_eq!(&exact[..], &r[..]);
                    }
                }
            }
        }
    }

    #[test]
    fn damaged_or_ambiguous_padding_is_rejected() {
        let k = Key::generate_with_purpose(KeyType::Aes256, KeyPurpose::DataEncryption).unwrap();
        let r = record(&k, 3);
        // Non-zero padding.
        let mut p = padded(&r);
        *p.last_mut().unwrap() = 1;
        assert!(strip_zero_padding(&mut p).is_err());
        // A changed id or material byte: neither layout's id matches.
        for i in [6, 30, 53] {
            let mut p = padded(&r);
            p[i] ^= 0x80;
            assert!(strip_zero_padding(&mut p).is_err(), "byte {i}");
        }
        // Wrong lengths, unknown key type, empty.
        for n in [0usize, 8, 48, 55, 64] {
            let mut p = padded(&r);
            p.resize(n, 0);
            assert!(strip_zero_padding(&mut p).is_err(), "len {n}");
        }
        let mut p = padded(&r);
        p[0] = 9;
        assert!(strip_zero_padding(&mut p).is_err());
        // A purpose byte outside 1..3 makes the v2 reading fail; the v1 reading fails on the id.
        let mut p = padded(&r);
        p[1] = 4;
        assert!(strip_zero_padding(&mut p).is_err());
        // (Both layouts fitting at once would need two 128-bit key ids to match at overlapping
        // places; strip_zero_padding refuses that case too, but no real record reaches it.)
    }
}
