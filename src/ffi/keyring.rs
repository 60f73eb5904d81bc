//! C exports for the tenant keyring and external key providers.

use super::keys::cellar_key;
use super::{
    cellar_status, ffi_boundary, free_handle, handle, in_slice, new_handle, out_buffer, out_ptr, write_buffer,
    write_out, Castable, FfiResult, CELLAR_ERR_AUTHENTICATION_FAILED, CELLAR_OK,
};
use crate::error::Error;
use crate::keyring::{self, KeyProvider, Keyring, ProviderError};
use crate::keys::{Key, KeyId, KEY_ID_LEN};
use core::ffi::c_void;
use std::sync::Arc;
use zeroize::Zeroizing;

/// An opaque tenant keyring: one active tenant key, retained older versions, lock state.
///
/// Internally locked (a reader-writer lock): any number of threads may call any keyring
/// function on one handle at once. Create with `cellar_keyring_new` or `cellar_keyring_import`;
/// free with `cellar_keyring_free`, which wipes every tenant key it holds (no other call may be
/// running on the handle then). The keyring never shares its tenant keys: it copies a key it is
/// given, and unwrap returns data keys only.
pub struct cellar_keyring {
    _private: [u8; 0],
}

impl Castable for cellar_keyring {
    type Inner = Keyring;
    const MAGIC: u64 = 0x6365_6c6c_6b72_6731; // "cellkrg1"
    const NAME: &'static str = "cellar_keyring";
}

/// `cellar_keyring_version_info` flag: the active version.
pub const CELLAR_KEYRING_VERSION_ACTIVE: u32 = 1;
/// `cellar_keyring_version_info` flag: held by an external key provider.
pub const CELLAR_KEYRING_VERSION_PROVIDER: u32 = 2;
/// `cellar_keyring_version_info` flag: retained, but its material (or provider) is not in the
/// process (locked, or imported without its provider).
pub const CELLAR_KEYRING_VERSION_LOCKED: u32 = 4;
/// `cellar_keyring_version_info` flag: retired; material destroyed, blobs unreadable for good.
pub const CELLAR_KEYRING_VERSION_RETIRED: u32 = 8;
/// `cellar_keyring_version_info` flag: held by a PKCS#11 token (an HSM key; set with PROVIDER,
/// also while not attached). Versions created by `cellar_keyring_new_pkcs11` and friends.
pub const CELLAR_KEYRING_VERSION_PKCS11: u32 = 16;
/// Longest data-key blob a keyring writes (530): a local version writes
/// `cellar_key_wrapped_len(type)` bytes (82 or 114), a provider version 18 + what its wrap returns.
pub const CELLAR_KEYRING_MAX_WRAPPED_LEN: usize = 530;
/// The `out_cap` Cellar passes to a provider's wrap callback (512).
pub const CELLAR_PROVIDER_MAX_WRAPPED_LEN: usize = 512;
/// The `out_cap` Cellar passes to a provider's unwrap callback (128; records are 53 or 85 bytes).
pub const CELLAR_PROVIDER_MAX_UNWRAPPED_LEN: usize = 128;
/// Most versions (retired ones included) in one keyring.
pub const CELLAR_KEYRING_MAX_VERSIONS: usize = 4096;

// cbindgen emits only literal constants; these keep them equal to the core's.
const _: () = {
    assert!(CELLAR_KEYRING_MAX_WRAPPED_LEN == keyring::MAX_WRAPPED_LEN);
    assert!(CELLAR_PROVIDER_MAX_WRAPPED_LEN == keyring::MAX_PROVIDER_WRAPPED_LEN);
    assert!(CELLAR_PROVIDER_MAX_UNWRAPPED_LEN == keyring::MAX_PROVIDER_UNWRAPPED_LEN);
    assert!(CELLAR_KEYRING_MAX_VERSIONS == keyring::MAX_VERSIONS);
};

/// A provider's wrap callback. Wraps `record[0..record_len]` (a data key's inner record,
/// `type (1) | tenant version (u32 BE) | key id (16) | material`, 53 or 85 bytes: secret) under
/// the provider's key into `out[0..out_cap]` (`out_cap` is `CELLAR_PROVIDER_MAX_WRAPPED_LEN`) and
/// sets `*out_len` to 1..out_cap. Returns `CELLAR_OK`; any other value fails the operation with
/// `CELLAR_ERR_PROVIDER_FAILED`. `*out_len` starts at 0: returning `CELLAR_OK` without setting it
/// is a failure too. Must not keep `record`.
pub type cellar_provider_wrap_fn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        record: *const u8,
        record_len: usize,
        out: *mut u8,
        out_cap: usize,
        out_len: *mut usize,
    ) -> cellar_status,
>;

/// A provider's unwrap callback. Unwraps `wrapped[0..wrapped_len]` (what its wrap returned) into
/// `out[0..out_cap]` (`out_cap` is `CELLAR_PROVIDER_MAX_UNWRAPPED_LEN`; Cellar wipes it after
/// use) and sets `*out_len`. Returns `CELLAR_OK`; `CELLAR_ERR_AUTHENTICATION_FAILED` when the
/// input does not authenticate under its key (reported as such: a tampered blob); any other value
/// is `CELLAR_ERR_PROVIDER_FAILED`. `*out_len` starts at 0.
pub type cellar_provider_unwrap_fn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        wrapped: *const u8,
        wrapped_len: usize,
        out: *mut u8,
        out_cap: usize,
        out_len: *mut usize,
    ) -> cellar_status,
>;

/// An external key provider: callbacks that stand in for a tenant key held outside the process
/// (an HSM, a cloud KMS), registered as a keyring version with `cellar_keyring_add_provider`.
///
/// Cellar copies this struct; `context` must stay valid, and the callbacks callable, until
/// `cellar_keyring_free` returns on every keyring it was given to (also after the version is
/// retired or the keyring locked: a call may be in flight). Callbacks may be called from any
/// thread and concurrently with each other; no Cellar lock is held during a call, so a callback
/// may call Cellar. Callbacks must return: a callback that leaves by `longjmp` or a C++
/// exception skips Cellar's clean-up (the record being wrapped or unwrapped is not wiped, and the
/// memory the operation allocated leaks) and is not supported. Cellar only keeps the thread's
/// FIPS indicator honest: it reads -1 after such a call (every operation sets -1 when it
/// starts), and the next Cellar call on the thread starts clean. An operation whose wrap or
/// unwrap a provider performed reports `cellar_last_operation_approved() == 0`: it succeeded, but
/// not in this module's approved services (an HSM's own validation covers its part). `key_id`
/// names the version in blobs and must differ from every other version's id (if the provider key
/// is an AES-256 key, its Cellar key id is a good choice).
#[repr(C)]
pub struct cellar_key_provider {
    /// Passed unchanged to both callbacks.
    pub context: *mut c_void,
    /// The provider key's public 16-byte id.
    pub key_id: [u8; 16],
    /// Wraps a record (required).
    pub wrap: cellar_provider_wrap_fn,
    /// Unwraps a record (required).
    pub unwrap: cellar_provider_unwrap_fn,
}

type RawFn = unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut u8, usize, *mut usize) -> cellar_status;

struct CProvider {
    context: *mut c_void,
    key_id: KeyId,
    wrap: RawFn,
    unwrap: RawFn,
}

// SAFETY: the header makes the host promise that the context stays valid and that the
// callbacks may be called from any thread concurrently.
unsafe impl Send for CProvider {}
// SAFETY: as above.
unsafe impl Sync for CProvider {}

impl CProvider {
    fn call(&self, f: RawFn, input: &[u8], out: &mut [u8]) -> core::result::Result<usize, ProviderError> {
        let mut len: usize = 0;
        // SAFETY: `input` and `out` are live buffers of the lengths passed; the host promised the
        // callback is a valid function taking these arguments.
        let rc = unsafe { f(self.context, input.as_ptr(), input.len(), out.as_mut_ptr(), out.len(), &mut len) };
        match rc {
            CELLAR_OK if len > 0 && len <= out.len() => Ok(len),
            CELLAR_ERR_AUTHENTICATION_FAILED => Err(ProviderError::Rejected),
            _ => Err(ProviderError::Failed),
        }
    }
}

impl KeyProvider for CProvider {
    fn key_id(&self) -> KeyId {
        self.key_id
    }

    fn wrap(&self, record: &[u8]) -> core::result::Result<Vec<u8>, ProviderError> {
        let mut out = vec![0u8; keyring::MAX_PROVIDER_WRAPPED_LEN];
        let n = self.call(self.wrap, record, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8]) -> core::result::Result<Zeroizing<Vec<u8>>, ProviderError> {
        let mut out = Zeroizing::new(vec![0u8; keyring::MAX_PROVIDER_UNWRAPPED_LEN]);
        let n = self.call(self.unwrap, wrapped, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

fn provider_arg(p: *const cellar_key_provider) -> FfiResult<Arc<dyn KeyProvider>> {
    let p = super::non_null(p, "provider")?;
    // SAFETY: non-NULL; the caller promises it points to a `cellar_key_provider` for this call.
    let p = unsafe { &*p };
    let wrap = p.wrap.ok_or(Error::NullPointer("provider->wrap"))?;
    let unwrap = p.unwrap.ok_or(Error::NullPointer("provider->unwrap"))?;
    Ok(Arc::new(CProvider { context: p.context, key_id: p.key_id, wrap, unwrap }))
}

fn optional_key<'a>(p: *const cellar_key, name: &'static str) -> FfiResult<Option<&'a Key>> {
    if p.is_null() {
        Ok(None)
    } else {
        handle::<cellar_key>(p, name).map(Some)
    }
}

/// Creates a keyring whose version 1 is `customer_key` (an AES-256 key, copied: the caller may
/// free its handle) or, when `customer_key` is NULL, a key generated by the module (the
/// service-managed default). To start from a password file or a blob under a host root key, turn
/// it into a key with `cellar_key_import_password` or `cellar_key_unwrap` first. An XTS key, or
/// a key whose purpose is not key wrapping (or none), is `CELLAR_ERR_INVALID_KEY`. Every tenant
/// key in a keyring is a key-wrapping key (`CELLAR_KEY_PURPOSE_KEY_WRAPPING`), however it came
/// in; the caller's handle keeps its own purpose. On success `*out_keyring` receives a new handle.
#[no_mangle]
pub extern "C" fn cellar_keyring_new(customer_key: *const cellar_key, out_keyring: *mut *mut cellar_keyring) -> cellar_status {
    ffi_boundary!("cellar_keyring_new", {
        let out = out_ptr(out_keyring, "out_keyring")?;
        let key = optional_key(customer_key, "customer_key")?;
        let kr = Keyring::new(key)?;
        write_out(out, new_handle::<cellar_keyring>(kr));
        Ok(())
    })
}

/// Writes the active version number (1, 2, ...) to `*out_version`; also works while locked.
#[no_mangle]
pub extern "C" fn cellar_keyring_active_version(keyring: *const cellar_keyring, out_version: *mut u32) -> cellar_status {
    ffi_boundary!("cellar_keyring_active_version", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        write_out(out, kr.active_version()?);
        Ok(())
    })
}

/// Lists the retained (not retired) versions, ascending: `out_versions[i]` and the 16-byte key
/// id at `out_key_ids + 16*i`, for `*out_count` entries. Both arrays hold `cap` entries. When
/// `cap` is too small, returns `CELLAR_ERR_BUFFER_TOO_SMALL` with the count in `*out_count`
/// (the arrays may be NULL when `cap` is 0). Works while locked.
#[no_mangle]
pub extern "C" fn cellar_keyring_versions(
    keyring: *const cellar_keyring,
    out_versions: *mut u32,
    out_key_ids: *mut u8,
    cap: usize,
    out_count: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_versions", {
        let count = out_ptr(out_count, "out_count")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let list = kr.versions()?;
        if cap < list.len() {
            write_out(count, list.len());
            if cap == 0 {
                return Err(super::Fail::size_probe(list.len()));
            }
            return Err(Error::BufferTooSmall { needed: list.len() }.into());
        }
        let ov = out_ptr(out_versions, "out_versions")?;
        let oi = out_ptr(out_key_ids, "out_key_ids")?;
        for (i, (n, id)) in list.iter().enumerate() {
            // SAFETY: the caller promises `cap` entries in both arrays; i < list.len() <= cap.
            unsafe {
                ov.add(i).write(*n);
                core::ptr::copy_nonoverlapping(id.as_ptr(), oi.add(i * KEY_ID_LEN), KEY_ID_LEN);
            }
        }
        write_out(count, list.len());
        Ok(())
    })
}

/// Writes one version's key id (16 bytes) to `out_key_id` and its `CELLAR_KEYRING_VERSION_*`
/// flags to `*out_flags`. Retired versions are still known (flag RETIRED); a number that never
/// existed is `CELLAR_ERR_KEY_NOT_FOUND`.
#[no_mangle]
pub extern "C" fn cellar_keyring_version_info(
    keyring: *const cellar_keyring,
    version: u32,
    out_key_id: *mut u8,
    out_flags: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_version_info", {
        let oi = out_ptr(out_key_id, "out_key_id")?;
        let of = out_ptr(out_flags, "out_flags")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let info = kr.version_info(version)?;
        let mut flags = 0;
        for (on, bit) in [
            (info.active, CELLAR_KEYRING_VERSION_ACTIVE),
            (info.provider, CELLAR_KEYRING_VERSION_PROVIDER),
            (info.locked, CELLAR_KEYRING_VERSION_LOCKED),
            (info.retired, CELLAR_KEYRING_VERSION_RETIRED),
            (kr.is_pkcs11_version(version)?, CELLAR_KEYRING_VERSION_PKCS11),
        ] {
            if on {
                flags |= bit;
            }
        }
        // SAFETY: the caller promises `out_key_id` holds CELLAR_KEY_ID_LEN bytes.
        unsafe { core::ptr::copy_nonoverlapping(info.key_id.as_ptr(), oi, KEY_ID_LEN) };
        write_out(of, flags);
        Ok(())
    })
}

/// Rotates: adds a new version, which becomes active, from `new_key` (a customer AES-256 key,
/// copied) or, when NULL, a generated key; writes its number to `*out_version`. Older versions
/// keep unwrapping. Locked: `CELLAR_ERR_TENANT_LOCKED`. A key whose id is already a version (or
/// was retired), an XTS key, or a key whose purpose is not key wrapping (or none):
/// `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_keyring_rotate(
    keyring: *mut cellar_keyring,
    new_key: *const cellar_key,
    out_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_rotate", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let key = optional_key(new_key, "new_key")?;
        write_out(out, kr.rotate(key)?);
        Ok(())
    })
}

/// Wraps `data_key` (any type) under the active version into `out`: the blob format of
/// `cellar_key_wrap`, with the active version's key id as KEK id and the active version number
/// as the inner key version. Size: `cellar_key_wrapped_len(type)` for a local version; a provider
/// version's blob is 18 + its wrap output, at most `CELLAR_KEYRING_MAX_WRAPPED_LEN`. Too small:
/// `CELLAR_ERR_BUFFER_TOO_SMALL` with the size in `*out_len` (found by wrapping; nothing is
/// stored). Locked: `CELLAR_ERR_TENANT_LOCKED`.
#[no_mangle]
pub extern "C" fn cellar_keyring_wrap(
    keyring: *const cellar_keyring,
    data_key: *const cellar_key,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_wrap", {
        out_ptr(out_len, "out_len")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let dk = handle::<cellar_key>(data_key, "data_key")?;
        let blob = kr.wrap(dk)?;
        write_buffer(out, out_cap, out_len, &blob)
    })
}

/// Unwraps a data-key blob under the version its KEK id names. On success `*out_key` receives
/// a new data-key handle and `*out_tenant_version` the TENANT version that wrapped the blob.
/// Retired or unknown version: `CELLAR_ERR_KEY_NOT_FOUND`; keyring locked (or that version
/// still locked): `CELLAR_ERR_TENANT_LOCKED`; tampered: `CELLAR_ERR_AUTHENTICATION_FAILED`.
///
/// Two versions, not to be mixed: the tenant version says which tenant key wraps the blob and
/// changes when the blob is rewrapped after a rotation; a DATA-KEY version (the `key_version`
/// of `cellar_page_cipher_new` / `cellar_cell_cipher_new`, written into every page and cell)
/// names the data key itself and must stay the same for as long as that key's pages and cells
/// exist. Do not pass `*out_tenant_version` as a cipher's `key_version`: pages written under it
/// stop decrypting after the first rotation and rewrap. Keep the data-key version beside the
/// blob (README: "Tenant keyring").
#[no_mangle]
pub extern "C" fn cellar_keyring_unwrap(
    keyring: *const cellar_keyring,
    blob: *const u8,
    blob_len: usize,
    out_key: *mut *mut cellar_key,
    out_tenant_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_unwrap", {
        let ok = out_ptr(out_key, "out_key")?;
        let ov = out_ptr(out_tenant_version, "out_tenant_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let blob = in_slice(blob, blob_len, "blob")?;
        let (key, version) = kr.unwrap(blob)?;
        write_out(ok, new_handle::<cellar_key>(key));
        write_out(ov, version);
        Ok(())
    })
}

/// Rewraps a data-key blob to the active version into `out` (the data key itself, and so the
/// data it protects, is unchanged). Errors as `cellar_keyring_unwrap` and `cellar_keyring_wrap`.
/// `out` must not overlap `blob`.
#[no_mangle]
pub extern "C" fn cellar_keyring_rewrap(
    keyring: *const cellar_keyring,
    blob: *const u8,
    blob_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_rewrap", {
        out_ptr(out_len, "out_len")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let blob = in_slice(blob, blob_len, "blob")?;
        let new = kr.rewrap(blob)?;
        write_buffer(out, out_cap, out_len, &new)
    })
}

/// Retires `version`: its material (or provider reference) is destroyed before this returns and
/// its blobs fail with `CELLAR_ERR_KEY_NOT_FOUND` for good (crypto-shredding). Retiring a retired
/// version succeeds and does nothing. The active version: `CELLAR_ERR_INVALID_ARGUMENT`; a
/// number that never existed: `CELLAR_ERR_KEY_NOT_FOUND`. Allowed while locked. Does no
/// cryptography (the approval indicator is unchanged).
#[no_mangle]
pub extern "C" fn cellar_keyring_retire(keyring: *mut cellar_keyring, version: u32) -> cellar_status {
    ffi_boundary!("cellar_keyring_retire", {
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        Ok(kr.retire(version)?)
    })
}

/// Locks the tenant: every version's material is wiped and provider references dropped before
/// this returns (waiting for in-flight wraps); versions, ids and the active version remain.
/// Operations needing material then fail with `CELLAR_ERR_TENANT_LOCKED`, and so do the data
/// keys already unwrapped from this keyring (and keys derived from them) and every page or cell
/// cipher made from them, at their next call (one atomic load per operation), until the active
/// version is unlocked. Idempotent.
///
/// A lock that could never be undone is refused (`CELLAR_ERR_INVALID_ARGUMENT`, nothing
/// changed): while a retained version was generated by this keyring (`cellar_keyring_new` with
/// NULL, `cellar_keyring_rotate` with NULL) and the keyring was not exported since, no key
/// exists outside this process that could unlock it. Export first (`cellar_keyring_export`),
/// or call `cellar_keyring_lock_with(keyring, CELLAR_KEYRING_LOCK_FORCE)` to destroy it.
#[no_mangle]
pub extern "C" fn cellar_keyring_lock(keyring: *mut cellar_keyring) -> cellar_status {
    ffi_boundary!("cellar_keyring_lock", {
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        Ok(kr.lock()?)
    })
}

/// `cellar_keyring_lock_with` flag: lock even when versions generated here were never exported,
/// destroying them for good (their blobs become unreadable: crypto-shredding of the tenant).
pub const CELLAR_KEYRING_LOCK_FORCE: u32 = 1;

/// `cellar_keyring_lock` with `flags`: 0 (the same as `cellar_keyring_lock`) or
/// `CELLAR_KEYRING_LOCK_FORCE`. Another bit is `CELLAR_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn cellar_keyring_lock_with(keyring: *mut cellar_keyring, flags: u32) -> cellar_status {
    ffi_boundary!("cellar_keyring_lock_with", {
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        Ok(kr.lock_with(flags)?)
    })
}

const _: () = assert!(CELLAR_KEYRING_LOCK_FORCE == crate::keyring::LOCK_FORCE);

/// Gives back one version's material: `key` (AES-256, copied) is accepted only when its key id
/// matches a retained local version; otherwise `CELLAR_ERR_KEY_NOT_FOUND` (also for a retired
/// version), `CELLAR_ERR_INVALID_KEY` for an XTS key or a key whose purpose is not key
/// wrapping (or none), `CELLAR_ERR_INVALID_ARGUMENT` for a
/// provider version (use `cellar_keyring_unlock_provider`). Unlocking an unlocked version
/// succeeds. The keyring is usable again once its active version is back.
#[no_mangle]
pub extern "C" fn cellar_keyring_unlock(keyring: *mut cellar_keyring, key: *const cellar_key) -> cellar_status {
    ffi_boundary!("cellar_keyring_unlock", {
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let key = handle::<cellar_key>(key, "key")?;
        kr.unlock(key)?;
        Ok(())
    })
}

/// Writes 1 to `*out_locked` when the keyring is locked (its active version's material or
/// provider is not in the process), else 0.
#[no_mangle]
pub extern "C" fn cellar_keyring_is_locked(keyring: *const cellar_keyring, out_locked: *mut i32) -> cellar_status {
    ffi_boundary!("cellar_keyring_is_locked", {
        let out = out_ptr(out_locked, "out_locked")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        write_out(out, i32::from(kr.is_locked()?));
        Ok(())
    })
}

/// Registers an external key provider as a new version, which becomes active; writes its
/// number to `*out_version`. The provider is first checked with one wrap and one unwrap of a
/// random record; if a callback fails or does not round-trip, the result is
/// `CELLAR_ERR_PROVIDER_FAILED` and the keyring is unchanged. Locked: `CELLAR_ERR_TENANT_LOCKED`;
/// a `key_id` already in the keyring: `CELLAR_ERR_INVALID_KEY`; a NULL callback:
/// `CELLAR_ERR_NULL_POINTER`. See `cellar_key_provider` for the thread and lifetime rules.
#[no_mangle]
pub extern "C" fn cellar_keyring_add_provider(
    keyring: *mut cellar_keyring,
    provider: *const cellar_key_provider,
    out_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_add_provider", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let p = provider_arg(provider)?;
        write_out(out, kr.add_provider(p)?);
        Ok(())
    })
}

/// Attaches a provider to the provider version with its `key_id` (after `cellar_keyring_lock`,
/// or after `cellar_keyring_import`, which brings provider versions back detached); checked like
/// `cellar_keyring_add_provider`. Writes the version to `*out_version`. No such id:
/// `CELLAR_ERR_KEY_NOT_FOUND`; a local version's id: `CELLAR_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn cellar_keyring_unlock_provider(
    keyring: *mut cellar_keyring,
    provider: *const cellar_key_provider,
    out_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_unlock_provider", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let p = provider_arg(provider)?;
        write_out(out, kr.unlock_provider(p)?);
        Ok(())
    })
}

enum Seal<'a> {
    Root(&'a Key),
    Password(&'a [u8]),
}

fn seal_arg<'a>(root_key: *const cellar_key, password: *const u8, password_len: usize) -> FfiResult<Seal<'a>> {
    let pw = in_slice(password, password_len, "password")?;
    match (optional_key(root_key, "root_key")?, pw.is_empty()) {
        (Some(k), true) => Ok(Seal::Root(k)),
        (None, false) => Ok(Seal::Password(pw)),
        _ => Err(Error::InvalidArgument("give exactly one of root_key and a password").into()),
    }
}

/// Exports the whole keyring state (every version's number, key id, kind and material; the
/// active version; retired and provider markers, without provider material) sealed under
/// exactly one of `root_key` (AES-256; then `password` is NULL with length 0 and `iterations`
/// is ignored) or `password` (>= `CELLAR_PASSWORD_MIN_LEN` bytes, `iterations` between
/// `CELLAR_PASSWORD_MIN_ITERATIONS` and `CELLAR_PASSWORD_MAX_ITERATIONS`; `root_key` NULL).
/// Formats in docs/KEYS.md. Call with `out_cap` 0 to learn the size (no sealing is done). A
/// locked version: `CELLAR_ERR_TENANT_LOCKED`. A `root_key` whose purpose is not key wrapping
/// (or none): `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_keyring_export(
    keyring: *const cellar_keyring,
    root_key: *const cellar_key,
    password: *const u8,
    password_len: usize,
    iterations: u32,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_export", {
        out_ptr(out_len, "out_len")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let seal = seal_arg(root_key, password, password_len)?;
        out_buffer(out, out_cap, out_len, kr.export_len(matches!(seal, Seal::Password(_)))?)?;
        let blob = match seal {
            Seal::Root(k) => kr.export_with_root_key(k)?,
            Seal::Password(pw) => kr.export_with_password(pw, iterations)?,
        };
        write_buffer(out, out_cap, out_len, &blob)
    })
}

/// Imports `cellar_keyring_export` output into a new keyring, given exactly one of `root_key`
/// and `password` (the one it was sealed with; the other kind is `CELLAR_ERR_INVALID_ARGUMENT`).
/// Wrong key or password, or any tampering: `CELLAR_ERR_AUTHENTICATION_FAILED`. Provider
/// versions come back detached (flag LOCKED): attach them with `cellar_keyring_unlock_provider`.
/// A `root_key` whose purpose is not key wrapping (or none): `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_keyring_import(
    blob: *const u8,
    blob_len: usize,
    root_key: *const cellar_key,
    password: *const u8,
    password_len: usize,
    out_keyring: *mut *mut cellar_keyring,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_import", {
        let out = out_ptr(out_keyring, "out_keyring")?;
        let blob = in_slice(blob, blob_len, "blob")?;
        let kr = match seal_arg(root_key, password, password_len)? {
            Seal::Root(k) => Keyring::import_with_root_key(blob, k)?,
            Seal::Password(pw) => Keyring::import_with_password(blob, pw)?,
        };
        write_out(out, new_handle::<cellar_keyring>(kr));
        Ok(())
    })
}

/// Like `cellar_keyring_import`, but refuses an export whose generation (see
/// `cellar_keyring_generation`) is below `min_generation` with
/// `CELLAR_ERR_AUTHENTICATION_FAILED` (last error: "... a rollback"), so an export taken before a
/// retire, rotate or add-provider cannot be imported past it. Pass the generation the host read
/// after its last export, kept where an attacker who can replace the export cannot roll it back
/// (an HSM counter, a database row, a signed log). Exports written before generations existed
/// (format 0x01) read as generation 0. `min_generation` 0 accepts any export. Other errors as
/// `cellar_keyring_import`; `*out_keyring` is written only on success.
#[no_mangle]
pub extern "C" fn cellar_keyring_import_min_generation(
    blob: *const u8,
    blob_len: usize,
    root_key: *const cellar_key,
    password: *const u8,
    password_len: usize,
    min_generation: u64,
    out_keyring: *mut *mut cellar_keyring,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_import_min_generation", {
        let out = out_ptr(out_keyring, "out_keyring")?;
        let blob = in_slice(blob, blob_len, "blob")?;
        let kr = match seal_arg(root_key, password, password_len)? {
            Seal::Root(k) => Keyring::import_with_root_key_min_generation(blob, k, min_generation)?,
            Seal::Password(pw) => Keyring::import_with_password_min_generation(blob, pw, min_generation)?,
        };
        write_out(out, new_handle::<cellar_keyring>(kr));
        Ok(())
    })
}

/// Writes the keyring's generation to `*out_generation`: 1 for a new keyring, plus one for
/// every change of the state an export persists (rotate, add provider, retire of a version not
/// yet retired); lock, unlock and unlock-provider do not change it. Exports carry it and import
/// restores it. Read it after each export and keep it for `cellar_keyring_import_min_generation`.
/// Works while locked; does no cryptography (the approval indicator is unchanged).
#[no_mangle]
pub extern "C" fn cellar_keyring_generation(keyring: *const cellar_keyring, out_generation: *mut u64) -> cellar_status {
    ffi_boundary!("cellar_keyring_generation", {
        let out = out_ptr(out_generation, "out_generation")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        write_out(out, kr.generation()?);
        Ok(())
    })
}

/// Frees a keyring, wiping every tenant key it holds. NULL does nothing. No other call may be
/// running on the handle; it must not be used afterwards.
#[no_mangle]
pub extern "C" fn cellar_keyring_free(keyring: *mut cellar_keyring) {
    super::boundary_value((), || free_handle::<cellar_keyring>(keyring));
}
