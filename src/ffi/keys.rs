//! C exports for key handles.

use super::{
    ffi_boundary, free_handle, handle, in_slice, new_handle, out_buffer, out_ptr, write_buffer, write_out, Castable,
    cellar_status,
};
use crate::keys::{self, Key, KeyPurpose, KeyType};

/// An opaque key handle (AES-256 or AES-256-XTS).
///
/// Immutable and safe to share between threads: any number of threads may use one handle at
/// once. Ciphers made from a key hold their own reference, so the key may be freed while they
/// live. Create with `cellar_key_generate`, `cellar_key_import`, `cellar_key_derive` (or their
/// `_purpose` forms, which fix a purpose: `CELLAR_KEY_PURPOSE_*`), `cellar_key_unwrap` or
/// `cellar_key_import_password`; free with `cellar_key_free`, which wipes
/// the material once nothing else references it. No call consumes a key handle. The material
/// lives in locked, no-dump memory (`cellar_key_memory_status`; docs/SECURITY.md, "Key memory
/// and zeroization", says what else holds key-derived state and how it is wiped).
pub struct cellar_key {
    _private: [u8; 0],
}

impl Castable for cellar_key {
    type Inner = Key;
    const MAGIC: u64 = 0x6365_6c6c_6b65_7931; // "cellkey1"
    const NAME: &'static str = "cellar_key";
}

/// Key type: 32-byte AES-256 key (GCM, key wrapping, cells, derivation).
pub const CELLAR_KEY_AES256: u32 = 1;
/// Key type: 64-byte AES-256-XTS key (two distinct 32-byte halves), for XTS pages.
pub const CELLAR_KEY_AES256_XTS: u32 = 2;
/// Length in bytes of a key id.
pub const CELLAR_KEY_ID_LEN: usize = 16;

/// Key purposes (`uint32_t`, like key types): what a key may be used for (NIST SP 800-57 Part 1
/// 5.2: one purpose per key). Fixed when the key is made (`cellar_key_generate_purpose`,
/// `cellar_key_import_purpose`, `cellar_key_derive_purpose`; `cellar_key_unwrap` and
/// `cellar_key_import_password` restore it from the blob) and read with `cellar_key_purpose`.
/// Every operation that uses a key checks it: page ciphers, cell ciphers and blind indexes need
/// `DATA_ENCRYPTION`; the `kek` of wrap/unwrap and a keyring's root key need `KEY_WRAPPING`;
/// the parent of a derivation needs `KEY_DERIVATION`. A key of another purpose is refused with
/// `CELLAR_ERR_INVALID_KEY` and a `cellar_last_error` text naming both purposes. Keys made by
/// `cellar_key_generate`, `cellar_key_import` and `cellar_key_derive`, and keys read from
/// format-0x01 blobs, have `CELLAR_KEY_PURPOSE_NONE` and work everywhere. The purpose does not
/// change the approval indicator. An out-of-range purpose integer is
/// `CELLAR_ERR_INVALID_ARGUMENT`. Tenant keys inside a keyring are always key-wrapping keys.
///
/// `CELLAR_KEY_PURPOSE_NONE`: no purpose fixed; the key works for every operation (keys from
/// the calls without a purpose, and from format-0x01 blobs and password files).
pub const CELLAR_KEY_PURPOSE_NONE: u32 = 0;
/// Key purpose: data encryption (TDE pages, cells, blind indexes).
pub const CELLAR_KEY_PURPOSE_DATA_ENCRYPTION: u32 = 1;
/// Key purpose: key wrapping, a key-encryption key (AES-256 only): wraps and unwraps keys,
/// seals keyring exports, serves as a keyring tenant key.
pub const CELLAR_KEY_PURPOSE_KEY_WRAPPING: u32 = 2;
/// Key purpose: key derivation, the parent of `cellar_key_derive` / `cellar_key_derive_purpose`.
pub const CELLAR_KEY_PURPOSE_KEY_DERIVATION: u32 = 3;
/// Minimum password length in bytes for password files.
pub const CELLAR_PASSWORD_MIN_LEN: usize = 14;
/// Minimum PBKDF2 iteration count for password files.
pub const CELLAR_PASSWORD_MIN_ITERATIONS: u32 = 100_000;
/// Maximum PBKDF2 iteration count for password files.
pub const CELLAR_PASSWORD_MAX_ITERATIONS: u32 = 10_000_000;
/// Recommended PBKDF2 iteration count for password files.
pub const CELLAR_PASSWORD_DEFAULT_ITERATIONS: u32 = 600_000;

/// Generates a key of `key_type` (`CELLAR_KEY_*`) with the module's DRBG.
/// On success `*out_key` receives a new handle (free with `cellar_key_free`).
#[no_mangle]
pub extern "C" fn cellar_key_generate(key_type: u32, out_key: *mut *mut cellar_key) -> cellar_status {
    ffi_boundary!("cellar_key_generate", {
        let out = out_ptr(out_key, "out_key")?;
        let key = Key::generate(KeyType::from_u32(key_type)?)?;
        write_out(out, new_handle::<cellar_key>(key));
        Ok(())
    })
}

/// Imports raw key material (bring your own key): 32 bytes for `CELLAR_KEY_AES256`, 64 bytes
/// with distinct halves for `CELLAR_KEY_AES256_XTS`. The material is copied into locked, no-dump
/// key memory (`cellar_key_memory_status`); the caller's buffer is not kept (wiping it is the
/// caller's part). Wrong length or equal halves: `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_key_import(
    key_type: u32,
    material: *const u8,
    material_len: usize,
    out_key: *mut *mut cellar_key,
) -> cellar_status {
    ffi_boundary!("cellar_key_import", {
        let out = out_ptr(out_key, "out_key")?;
        let kt = KeyType::from_u32(key_type)?;
        let m = in_slice(material, material_len, "material")?;
        let key = Key::import(kt, m)?;
        write_out(out, new_handle::<cellar_key>(key));
        Ok(())
    })
}

/// Derives a child key of `key_type` from `parent` and a non-empty `label` (for example a
/// table, column or file name) with the SP 800-108r1 counter-mode KDF, HMAC-SHA-256 (derive v2,
/// the module's `KBKDF_ctr_hmac`): `child = KDF(parent, "cellar derive v2", key_type (1 byte) |
/// label, length of the child type)`; see docs/FORMATS.md. Same inputs, same child. Keys that
/// were derived before format v2 (HKDF, derive v1) are derived again with `cellar_key_derive_v1`.
/// The child has no purpose (`cellar_key_derive_purpose` fixes one). A `parent` whose purpose is
/// not key derivation (or none) is `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_key_derive(
    parent: *const cellar_key,
    key_type: u32,
    label: *const u8,
    label_len: usize,
    out_key: *mut *mut cellar_key,
) -> cellar_status {
    ffi_boundary!("cellar_key_derive", {
        let out = out_ptr(out_key, "out_key")?;
        let parent = handle::<cellar_key>(parent, "parent")?;
        let kt = KeyType::from_u32(key_type)?;
        let label = in_slice(label, label_len, "label")?;
        let key = parent.derive(kt, label)?;
        write_out(out, new_handle::<cellar_key>(key));
        Ok(())
    })
}

/// Derive v1, kept so that keys derived before format v2 can be derived again:
/// `HKDF-SHA256(ikm = parent, salt = 32 zero bytes, info = "cellar derive v1" | key_type
/// (1 byte) | label)`. Arguments and errors as `cellar_key_derive`. HKDF is meant for shared
/// secrets (SP 800-56C), so this reports indicator 0; new keys use `cellar_key_derive`.
#[no_mangle]
pub extern "C" fn cellar_key_derive_v1(
    parent: *const cellar_key,
    key_type: u32,
    label: *const u8,
    label_len: usize,
    out_key: *mut *mut cellar_key,
) -> cellar_status {
    ffi_boundary!("cellar_key_derive_v1", {
        let out = out_ptr(out_key, "out_key")?;
        let parent = handle::<cellar_key>(parent, "parent")?;
        let kt = KeyType::from_u32(key_type)?;
        let label = in_slice(label, label_len, "label")?;
        let key = parent.derive_v1(kt, label)?;
        write_out(out, new_handle::<cellar_key>(key));
        Ok(())
    })
}

/// Generates a key of `key_type` (`CELLAR_KEY_*`) with the module's DRBG, with `purpose`
/// (`CELLAR_KEY_PURPOSE_*`) fixed. An unknown type or purpose, or an AES-256-XTS key-wrapping
/// key (key wrapping is AES-256 only), is `CELLAR_ERR_INVALID_ARGUMENT`. `CELLAR_KEY_PURPOSE_NONE`
/// is `cellar_key_generate`. On success `*out_key` receives a new handle (free with
/// `cellar_key_free`). Wrapped or exported, a key with a purpose is a format-0x02 blob or file.
#[no_mangle]
pub extern "C" fn cellar_key_generate_purpose(
    key_type: u32,
    purpose: u32,
    out_key: *mut *mut cellar_key,
) -> cellar_status {
    ffi_boundary!("cellar_key_generate_purpose", {
        let out = out_ptr(out_key, "out_key")?;
        let kt = KeyType::from_u32(key_type)?;
        let p = KeyPurpose::from_u32(purpose)?;
        let key = Key::generate_with_purpose(kt, p)?;
        write_out(out, new_handle::<cellar_key>(key));
        Ok(())
    })
}

/// Imports raw key material as `cellar_key_import` does, with `purpose` (`CELLAR_KEY_PURPOSE_*`)
/// fixed. Wrong length or equal XTS halves: `CELLAR_ERR_INVALID_KEY`; an unknown type or
/// purpose, or an AES-256-XTS key-wrapping key: `CELLAR_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn cellar_key_import_purpose(
    key_type: u32,
    purpose: u32,
    material: *const u8,
    material_len: usize,
    out_key: *mut *mut cellar_key,
) -> cellar_status {
    ffi_boundary!("cellar_key_import_purpose", {
        let out = out_ptr(out_key, "out_key")?;
        let kt = KeyType::from_u32(key_type)?;
        let p = KeyPurpose::from_u32(purpose)?;
        let m = in_slice(material, material_len, "material")?;
        let key = Key::import_with_purpose(kt, m, p)?;
        write_out(out, new_handle::<cellar_key>(key));
        Ok(())
    })
}

/// Derives a child key of `key_type` with `purpose` (`CELLAR_KEY_PURPOSE_*`) fixed from
/// `parent` (a key-derivation key, or one without a purpose) and a non-empty `label`.
/// `CELLAR_KEY_PURPOSE_NONE` gives exactly `cellar_key_derive`'s child; with a purpose the child
/// is `KDF(parent, "cellar derive v2 purpose", purpose (1 byte) | key_type (1 byte) | label,
/// length of the child type)` with the SP 800-108r1 counter-mode KDF (HMAC-SHA-256), so children
/// of different purposes never share material (docs/FORMATS.md 1.2). A parent of another purpose
/// is `CELLAR_ERR_INVALID_KEY`; an unknown type or purpose, an empty label or an AES-256-XTS
/// key-wrapping child is `CELLAR_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn cellar_key_derive_purpose(
    parent: *const cellar_key,
    key_type: u32,
    purpose: u32,
    label: *const u8,
    label_len: usize,
    out_key: *mut *mut cellar_key,
) -> cellar_status {
    ffi_boundary!("cellar_key_derive_purpose", {
        let out = out_ptr(out_key, "out_key")?;
        let parent = handle::<cellar_key>(parent, "parent")?;
        let kt = KeyType::from_u32(key_type)?;
        let p = KeyPurpose::from_u32(purpose)?;
        let label = in_slice(label, label_len, "label")?;
        let key = parent.derive_with_purpose(kt, label, p)?;
        write_out(out, new_handle::<cellar_key>(key));
        Ok(())
    })
}

/// Writes the key's purpose (`CELLAR_KEY_PURPOSE_*`) to `*out_purpose`. Does no cryptography
/// (the approval indicator is unchanged).
#[no_mangle]
pub extern "C" fn cellar_key_purpose(key: *const cellar_key, out_purpose: *mut u32) -> cellar_status {
    ffi_boundary!("cellar_key_purpose", {
        let out = out_ptr(out_purpose, "out_purpose")?;
        let key = handle::<cellar_key>(key, "key")?;
        write_out(out, key.purpose() as u32);
        Ok(())
    })
}

/// Writes the key's public 16-byte id (first 16 bytes of
/// `HMAC-SHA256(material, "cellar key id v1")`) to `out_id`.
#[no_mangle]
pub extern "C" fn cellar_key_id(key: *const cellar_key, out_id: *mut u8) -> cellar_status {
    ffi_boundary!("cellar_key_id", {
        let out = out_ptr(out_id, "out_id")?;
        let key = handle::<cellar_key>(key, "key")?;
        let id = key.id();
        // SAFETY: the caller promises `out_id` holds CELLAR_KEY_ID_LEN bytes.
        unsafe { core::ptr::copy_nonoverlapping(id.as_ptr(), out, id.len()) };
        Ok(())
    })
}

/// Writes the key's type (`CELLAR_KEY_*`) to `*out_type`.
#[no_mangle]
pub extern "C" fn cellar_key_type(key: *const cellar_key, out_type: *mut u32) -> cellar_status {
    ffi_boundary!("cellar_key_type", {
        let out = out_ptr(out_type, "out_type")?;
        let key = handle::<cellar_key>(key, "key")?;
        write_out(out, key.key_type() as u32);
        Ok(())
    })
}

/// Length in bytes of a wrapped-key blob for a key of `key_type` (82 for AES-256, 114 for
/// AES-256-XTS), with or without a purpose; 0 for an unknown type.
#[no_mangle]
pub extern "C" fn cellar_key_wrapped_len(key_type: u32) -> usize {
    KeyType::from_u32(key_type).map(keys::wrapped_len).unwrap_or(0)
}

/// Wraps `key` with its `key_version` under `kek` (an AES-256 key) into `out`:
/// `0x57 | 0x01 | kek_id (16) | AES-KWP(kek, key_type | key_version BE | key_id | material)`
/// for a key without a purpose; for a key with one, format `0x02` whose record carries the
/// purpose byte after `key_type` (same length; docs/FORMATS.md 1.3).
/// `out_cap` below `cellar_key_wrapped_len` gives `CELLAR_ERR_BUFFER_TOO_SMALL` with the size in
/// `*out_len`. An XTS `kek`, or a `kek` whose purpose is not key wrapping (or none), is
/// `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_key_wrap(
    kek: *const cellar_key,
    key: *const cellar_key,
    key_version: u32,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_key_wrap", {
        let kek = handle::<cellar_key>(kek, "kek")?;
        let key = handle::<cellar_key>(key, "key")?;
        out_buffer(out, out_cap, out_len, keys::wrapped_len(key.key_type()))?;
        let blob = keys::wrap(kek, key, key_version)?;
        write_buffer(out, out_cap, out_len, &blob)
    })
}

/// Unwraps a blob made by `cellar_key_wrap` under `kek` (format 0x01 or 0x02). On success
/// `*out_key` receives a new handle, with the purpose the blob carries (none for format 0x01),
/// and `*out_key_version` the version stored in the blob. A `kek` whose purpose is not key
/// wrapping (or none) is `CELLAR_ERR_INVALID_KEY`. A blob under another KEK, or
/// tampered, truncated or extended in any byte, is `CELLAR_ERR_AUTHENTICATION_FAILED` and no
/// handle is made.
#[no_mangle]
pub extern "C" fn cellar_key_unwrap(
    kek: *const cellar_key,
    blob: *const u8,
    blob_len: usize,
    out_key: *mut *mut cellar_key,
    out_key_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_key_unwrap", {
        let out_k = out_ptr(out_key, "out_key")?;
        let out_v = out_ptr(out_key_version, "out_key_version")?;
        let kek = handle::<cellar_key>(kek, "kek")?;
        let blob = in_slice(blob, blob_len, "blob")?;
        let (key, version) = keys::unwrap(kek, blob)?;
        write_out(out_k, new_handle::<cellar_key>(key));
        write_out(out_v, version);
        Ok(())
    })
}

/// Length in bytes of a password file for a key of `key_type` (86 for AES-256, 118 for
/// AES-256-XTS), with or without a purpose; 0 for an unknown type.
#[no_mangle]
pub extern "C" fn cellar_key_password_file_len(key_type: u32) -> usize {
    KeyType::from_u32(key_type).map(keys::password_file_len).unwrap_or(0)
}

/// Exports `key` with its `key_version` as a password-protected key file:
/// `0x50 | 0x01 | iterations (u32 BE) | salt (16) | AES-KWP(PBKDF2-HMAC-SHA256(password, salt,
/// iterations, 32), key_type | key_version BE | key_id | material)`; a key with a purpose is
/// format `0x02` with the purpose byte after `key_type` (docs/FORMATS.md 1.4). `password` is raw bytes
/// (UTF-8 recommended), at least `CELLAR_PASSWORD_MIN_LEN` bytes; `iterations` between
/// `CELLAR_PASSWORD_MIN_ITERATIONS` and `CELLAR_PASSWORD_MAX_ITERATIONS` (use
/// `CELLAR_PASSWORD_DEFAULT_ITERATIONS`). Takes about 0.25 s at 600 000 iterations.
#[no_mangle]
pub extern "C" fn cellar_key_export_password(
    key: *const cellar_key,
    key_version: u32,
    password: *const u8,
    password_len: usize,
    iterations: u32,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_key_export_password", {
        let key = handle::<cellar_key>(key, "key")?;
        let pw = in_slice(password, password_len, "password")?;
        out_buffer(out, out_cap, out_len, keys::password_file_len(key.key_type()))?;
        let blob = keys::export_with_password(key, key_version, pw, iterations)?;
        write_buffer(out, out_cap, out_len, &blob)
    })
}

/// Imports a password file made by `cellar_key_export_password` (format 0x01, read as a key
/// without a purpose, or 0x02, which restores the key's purpose). A wrong password or any
/// tampering is `CELLAR_ERR_AUTHENTICATION_FAILED`; a password shorter than
/// `CELLAR_PASSWORD_MIN_LEN` is `CELLAR_ERR_INVALID_ARGUMENT`. On success `*out_key` receives a
/// new handle and `*out_key_version` the stored version.
#[no_mangle]
pub extern "C" fn cellar_key_import_password(
    blob: *const u8,
    blob_len: usize,
    password: *const u8,
    password_len: usize,
    out_key: *mut *mut cellar_key,
    out_key_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_key_import_password", {
        let out_k = out_ptr(out_key, "out_key")?;
        let out_v = out_ptr(out_key_version, "out_key_version")?;
        let blob = in_slice(blob, blob_len, "blob")?;
        let pw = in_slice(password, password_len, "password")?;
        let (key, version) = keys::import_with_password(blob, pw)?;
        write_out(out_k, new_handle::<cellar_key>(key));
        write_out(out_v, version);
        Ok(())
    })
}

/// **Hazard: exports the raw key material in plaintext.** Only for handing a key to a system
/// that takes nothing else; prefer `cellar_key_wrap` or `cellar_key_export_password`. Writes 32
/// or 64 bytes; the caller must wipe them after use.
#[no_mangle]
pub extern "C" fn cellar_key_dangerous_export_raw(
    key: *const cellar_key,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_key_dangerous_export_raw", {
        let key = handle::<cellar_key>(key, "key")?;
        key.check_unlocked()?;
        write_buffer(out, out_cap, out_len, &key.dangerous_export_raw())
    })
}

/// Writes the number of encryptions counted against the key's limit (random-nonce AES-GCM
/// invocations under it, by every handle of this key alive in the process: see
/// `cellar_key_restore_usage_count`) to `*out_count` and this handle's limit to `*out_limit`.
#[no_mangle]
pub extern "C" fn cellar_key_usage(key: *const cellar_key, out_count: *mut u64, out_limit: *mut u64) -> cellar_status {
    ffi_boundary!("cellar_key_usage", {
        let c = out_ptr(out_count, "out_count")?;
        let l = out_ptr(out_limit, "out_limit")?;
        let key = handle::<cellar_key>(key, "key")?;
        write_out(c, key.usage_count());
        write_out(l, key.usage_limit());
        Ok(())
    })
}

/// Sets the key's encryption limit (default 2^32, the SP 800-38D bound for random 96-bit
/// nonces). Encryptions past it fail with `CELLAR_ERR_USAGE_LIMIT`. Shared by every cipher made
/// from this handle; other handles of the same key keep their own limit, checked against the
/// same shared count. A limit of 0 is `CELLAR_ERR_INVALID_ARGUMENT`; limits above 2^32 are refused too.
#[no_mangle]
pub extern "C" fn cellar_key_set_usage_limit(key: *const cellar_key, limit: u64) -> cellar_status {
    ffi_boundary!("cellar_key_set_usage_limit", {
        let key = handle::<cellar_key>(key, "key")?;
        Ok(key.set_usage_limit(limit)?)
    })
}

/// Raises the key's encryption count to `count` when it is lower; never lowers it. The count is
/// per key, not per handle: every handle of the same key (same type and key id, however it was
/// made: imported twice, unwrapped twice, a keyring's copy) that is alive in this process shares
/// it, and `cellar_key_usage` reports it. A host that must keep the SP 800-38D bound across
/// restarts persists the count it reads with `cellar_key_usage` and restores it here after the
/// key is loaded again (the count vanishes when the last handle of the key is freed). Any value
/// is accepted (a count at or above the limit refuses further encryptions). Does no
/// cryptography (the approval indicator is unchanged).
#[no_mangle]
pub extern "C" fn cellar_key_restore_usage_count(key: *const cellar_key, count: u64) -> cellar_status {
    ffi_boundary!("cellar_key_restore_usage_count", {
        let key = handle::<cellar_key>(key, "key")?;
        key.restore_usage_count(count);
        Ok(())
    })
}

/// Frees a key handle. NULL does nothing. The material is wiped once no cipher or keyring still
/// references the key. The handle must not be used afterwards.
#[no_mangle]
pub extern "C" fn cellar_key_free(key: *mut cellar_key) {
    super::boundary_value((), || free_handle::<cellar_key>(key));
}

/// Writes 1 to `*out_locked` when `key` came from a tenant keyring (`cellar_keyring_unwrap`, or
/// `cellar_key_derive` from such a key) that is now locked, so the key and every cipher made
/// from it refuse with `CELLAR_ERR_TENANT_LOCKED`; 0 otherwise (also for keys that came from no
/// keyring). Does no cryptography.
#[no_mangle]
pub extern "C" fn cellar_key_is_locked(key: *const cellar_key, out_locked: *mut i32) -> cellar_status {
    ffi_boundary!("cellar_key_is_locked", {
        let out = out_ptr(out_locked, "out_locked")?;
        let key = handle::<cellar_key>(key, "key")?;
        write_out(out, i32::from(key.is_locked()));
        Ok(())
    })
}

/// Reports how this process holds key material: `*out_locked` = 1 when every page holding key
/// material is locked into RAM (`mlock`: never written to swap), `*out_nodump` = 1 when every
/// such page is excluded from core dumps (`MADV_DONTDUMP`, Linux). Each key's material (at most
/// 64 bytes) sits in a slot of such pages from creation until its last handle is freed, when the
/// slot is zeroed. When the process lacks the limit (`RLIMIT_MEMLOCK`, see `ulimit -l`) or the
/// system refuses, keys keep working from unlocked pages (still no-dump) and `*out_locked` is 0;
/// raise the limit (or grant `CAP_IPC_LOCK`) and this call locks those pages and reports 1. The
/// answer covers every key page mapped so far (the first is mapped by this call if none is).
/// Key pages are whole pages in slabs of 1 to 16 pages (64 keys per 4 KiB page), kept for the
/// life of the process.
/// Both out-parameters are required and written only on success. Does no cryptography (the
/// approval indicator is unchanged). Thread-safe.
#[no_mangle]
pub extern "C" fn cellar_key_memory_status(out_locked: *mut i32, out_nodump: *mut i32) -> cellar_status {
    ffi_boundary!("cellar_key_memory_status", {
        let locked = out_ptr(out_locked, "out_locked")?;
        let nodump = out_ptr(out_nodump, "out_nodump")?;
        let s = crate::keys::key_memory_status()?;
        write_out(locked, i32::from(s.locked));
        write_out(nodump, i32::from(s.nodump));
        Ok(())
    })
}
