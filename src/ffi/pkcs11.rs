//! The C boundary of the built-in PKCS#11 key provider (`src/provider/pkcs11.rs`): keyrings
//! whose versions are AES-256 keys in an HSM token.

use super::keyring::cellar_keyring;
use super::{cellar_status, ffi_boundary, handle, in_slice, new_handle, non_null, out_ptr, write_out, FfiResult};
use crate::error::Error;
use crate::keyring::Keyring;
use crate::provider::pkcs11::{KeySelector, Pkcs11Config, TokenSelector};

/// `cellar_pkcs11_config.flags`: select the token by `slot_id` instead of `token_label`.
pub const CELLAR_PKCS11_USE_SLOT: u32 = 1;
/// `cellar_pkcs11_config.flags`: accept a token whose RFC 5649 mechanism zero-pads its input
/// to a multiple of 8 bytes before wrapping (SoftHSM 2.6's `CKM_AES_KEY_WRAP_PAD`). Its blobs are
/// still AES-KWP under the token key but not byte-identical to Cellar's own; without this flag
/// such a token is refused with `CELLAR_ERR_PROVIDER_FAILED`. See docs/KEYS.md.
pub const CELLAR_PKCS11_ALLOW_ZERO_PADDED_KWP: u32 = 2;
const KNOWN_FLAGS: u32 = CELLAR_PKCS11_USE_SLOT | CELLAR_PKCS11_ALLOW_ZERO_PADDED_KWP;

/// `cellar_keyring_retire_pkcs11` flag: also destroy the key object in the token
/// (`C_DestroyObject`). Irreversible: every blob under that key, in any keyring or export, is
/// lost. Without it the token object stays (only this keyring forgets it).
pub const CELLAR_KEYRING_RETIRE_DESTROY: u32 = 1;

/// Where a PKCS#11 token key lives and how to log in. Strings are UTF-8 bytes with their
/// lengths (no NUL needed); each at most 1024 bytes. The struct and every buffer it points to
/// need only live for the call; Cellar keeps copies of the module path and token names (never
/// the PIN: it is used to log in and not stored).
#[repr(C)]
pub struct cellar_pkcs11_config {
    /// Path of the vendor's PKCS#11 module (SoftHSM2 on Debian: `/usr/lib/softhsm/libsofthsm2.so`).
    /// Loaded at run time, once per path for the life of the process, with `CKF_OS_LOCKING_OK`.
    pub module_path: *const u8,
    /// Length of `module_path` in bytes (1 to 1024; for `cellar_keyring_unlock_pkcs11`, 0 means
    /// the path recorded with each version).
    pub module_path_len: usize,
    /// The token's label (as set by the token's initialisation; trailing blanks ignored).
    /// Ignored with `CELLAR_PKCS11_USE_SLOT`.
    pub token_label: *const u8,
    /// Length of `token_label` in bytes.
    pub token_label_len: usize,
    /// The token's slot id, used with `CELLAR_PKCS11_USE_SLOT`.
    pub slot_id: u64,
    /// The user PIN (`CKU_USER`), UTF-8, 1 to 256 bytes.
    pub pin: *const u8,
    /// Length of `pin` in bytes.
    pub pin_len: usize,
    /// Most sessions this process opens on the token for operations (0: 8; at most 64). Threads
    /// beyond it wait for a free session.
    pub max_sessions: u32,
    /// `CELLAR_PKCS11_*` flags; unknown bits: `CELLAR_ERR_INVALID_ARGUMENT`.
    pub flags: u32,
}

fn utf8<'a>(p: *const u8, len: usize, name: &'static str) -> FfiResult<&'a str> {
    let b = in_slice(p, len, name)?;
    core::str::from_utf8(b).map_err(|_| Error::InvalidArgument("names must be UTF-8").into())
}

struct Cfg<'a> {
    module: &'a str,
    label: &'a str,
    slot: Option<u64>,
    pin: &'a [u8],
    max_sessions: usize,
    allow_padded: bool,
}

impl<'a> Cfg<'a> {
    fn config(&self) -> Pkcs11Config<'_> {
        Pkcs11Config {
            module: self.module,
            token: match self.slot {
                Some(s) => TokenSelector::Slot(s),
                None => TokenSelector::Label(self.label),
            },
            pin: self.pin,
            max_sessions: self.max_sessions,
            allow_zero_padded_kwp: self.allow_padded,
        }
    }
}

fn read_config<'a>(config: *const cellar_pkcs11_config) -> FfiResult<Cfg<'a>> {
    let c = non_null(config, "config")?;
    // SAFETY: non-NULL; the caller promises a valid struct for the call's duration.
    let c = unsafe { &*c };
    if c.flags & !KNOWN_FLAGS != 0 {
        return Err(Error::InvalidArgument("unknown cellar_pkcs11_config flags").into());
    }
    Ok(Cfg {
        module: utf8(c.module_path, c.module_path_len, "config->module_path")?,
        label: utf8(c.token_label, c.token_label_len, "config->token_label")?,
        slot: (c.flags & CELLAR_PKCS11_USE_SLOT != 0).then_some(c.slot_id),
        pin: in_slice(c.pin, c.pin_len, "config->pin")?,
        max_sessions: c.max_sessions as usize,
        allow_padded: c.flags & CELLAR_PKCS11_ALLOW_ZERO_PADDED_KWP != 0,
    })
}

fn key_selector<'a>(label: *const u8, label_len: usize, id: *const u8, id_len: usize) -> FfiResult<KeySelector<'a>> {
    match (label_len, id_len) {
        (0, 0) => Err(Error::InvalidArgument("give the key's label or its CKA_ID").into()),
        (_, 0) => Ok(KeySelector::Label(utf8(label, label_len, "key_label")?)),
        (0, _) => Ok(KeySelector::Id(in_slice(id, id_len, "key_id")?)),
        _ => Err(Error::InvalidArgument("give the key's label or its CKA_ID, not both").into()),
    }
}

/// Creates a keyring whose version 1 is a new AES-256 key generated in the token: `CKA_TOKEN`,
/// `CKA_PRIVATE`, `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, `CKA_WRAP` and `CKA_UNWRAP` true,
/// encrypt/decrypt/sign/verify/derive false, `CKA_LABEL` = `key_label`, a random 16-byte
/// `CKA_ID`; its attributes are read back and checked. Data keys are then wrapped and unwrapped
/// inside the token (SPEC 3 blobs; the version's key id is the token key's fingerprint) and the
/// indicator reports 0 for those operations. Errors: module missing or not a PKCS#11 library, no
/// such token, a token with no RFC 5649 mechanism passing the known-answer probe, a failing
/// PKCS#11 call: `CELLAR_ERR_PROVIDER_FAILED` (last-error names the `CKR_` value); wrong PIN:
/// `CELLAR_ERR_AUTHENTICATION_FAILED` naming `CKR_PIN_INCORRECT`.
#[no_mangle]
pub extern "C" fn cellar_keyring_new_pkcs11(
    config: *const cellar_pkcs11_config,
    key_label: *const u8,
    key_label_len: usize,
    out_keyring: *mut *mut cellar_keyring,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_new_pkcs11", {
        let out = out_ptr(out_keyring, "out_keyring")?;
        let c = read_config(config)?;
        let label = utf8(key_label, key_label_len, "key_label")?;
        let kr = Keyring::new_pkcs11(&c.config(), label)?;
        write_out(out, new_handle::<cellar_keyring>(kr));
        Ok(())
    })
}

/// Creates a keyring whose version 1 is an existing token key (bring your own HSM key), found
/// by `key_label` or by `key_id` (its `CKA_ID`): exactly one of the two has a non-zero length.
/// The key must be an AES-256 secret key with `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false and
/// `CKA_WRAP`, `CKA_UNWRAP` true; otherwise `CELLAR_ERR_INVALID_KEY` with last-error naming the
/// attribute. No such key: `CELLAR_ERR_KEY_NOT_FOUND`; several match:
/// `CELLAR_ERR_INVALID_ARGUMENT`. Other errors as `cellar_keyring_new_pkcs11`.
#[no_mangle]
pub extern "C" fn cellar_keyring_adopt_pkcs11(
    config: *const cellar_pkcs11_config,
    key_label: *const u8,
    key_label_len: usize,
    key_id: *const u8,
    key_id_len: usize,
    out_keyring: *mut *mut cellar_keyring,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_adopt_pkcs11", {
        let out = out_ptr(out_keyring, "out_keyring")?;
        let c = read_config(config)?;
        let sel = key_selector(key_label, key_label_len, key_id, key_id_len)?;
        let kr = Keyring::adopt_pkcs11(&c.config(), sel)?;
        write_out(out, new_handle::<cellar_keyring>(kr));
        Ok(())
    })
}

/// Rotates to a new key generated in the token (as `cellar_keyring_new_pkcs11`); writes the new
/// version to `*out_version`. Older versions (local or in a token) keep unwrapping. Locked:
/// `CELLAR_ERR_TENANT_LOCKED`.
#[no_mangle]
pub extern "C" fn cellar_keyring_rotate_pkcs11(
    keyring: *mut cellar_keyring,
    config: *const cellar_pkcs11_config,
    key_label: *const u8,
    key_label_len: usize,
    out_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_rotate_pkcs11", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let c = read_config(config)?;
        let label = utf8(key_label, key_label_len, "key_label")?;
        write_out(out, kr.rotate_pkcs11(&c.config(), label)?);
        Ok(())
    })
}

/// Rotates to an existing token key (as `cellar_keyring_adopt_pkcs11`); writes the new version
/// to `*out_version`. A key already in the keyring: `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_keyring_rotate_pkcs11_adopt(
    keyring: *mut cellar_keyring,
    config: *const cellar_pkcs11_config,
    key_label: *const u8,
    key_label_len: usize,
    key_id: *const u8,
    key_id_len: usize,
    out_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_rotate_pkcs11_adopt", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let c = read_config(config)?;
        let sel = key_selector(key_label, key_label_len, key_id, key_id_len)?;
        write_out(out, kr.rotate_pkcs11_adopt(&c.config(), sel)?);
        Ok(())
    })
}

/// Reconnects every token version that is not attached: after `cellar_keyring_lock` (which
/// logs out of the token and closes this keyring's sessions once no other keyring in the process
/// uses the token) or after `cellar_keyring_import` (exports record a token version as a
/// reference: module path, token label and serial, key `CKA_ID` and label, never material).
/// Uses `config`'s PIN, `max_sessions` and flags; its `module_path` (when non-empty) overrides
/// the recorded path; its token fields are ignored (the token is found by the recorded serial).
/// Each key's fingerprint must match its version. Writes how many versions were attached to
/// `*out_attached`. A wrong PIN: `CELLAR_ERR_AUTHENTICATION_FAILED` naming `CKR_PIN_INCORRECT`,
/// and the keyring stays locked; a key object no longer in the token: `CELLAR_ERR_KEY_NOT_FOUND`.
#[no_mangle]
pub extern "C" fn cellar_keyring_unlock_pkcs11(
    keyring: *mut cellar_keyring,
    config: *const cellar_pkcs11_config,
    out_attached: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_unlock_pkcs11", {
        let out = out_ptr(out_attached, "out_attached")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let c = read_config(config)?;
        let module = (!c.module.is_empty()).then_some(c.module);
        write_out(out, kr.unlock_pkcs11(c.pin, module, c.max_sessions, c.allow_padded)?);
        Ok(())
    })
}

/// Retires `version` like `cellar_keyring_retire`; with `CELLAR_KEYRING_RETIRE_DESTROY` it first
/// destroys the token key object (`C_DestroyObject`; the version must be attached, else
/// `CELLAR_ERR_TENANT_LOCKED`; a version not held by a provider: `CELLAR_ERR_INVALID_ARGUMENT`).
/// If the token refuses, nothing is retired. With `flags` 0 the token object stays.
#[no_mangle]
pub extern "C" fn cellar_keyring_retire_pkcs11(keyring: *mut cellar_keyring, version: u32, flags: u32) -> cellar_status {
    ffi_boundary!("cellar_keyring_retire_pkcs11", {
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        match flags {
            0 => kr.retire(version)?,
            CELLAR_KEYRING_RETIRE_DESTROY => kr.retire_destroying(version)?,
            _ => return Err(Error::InvalidArgument("unknown cellar_keyring_retire_pkcs11 flags").into()),
        }
        Ok(())
    })
}
