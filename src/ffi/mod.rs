//! The C boundary. Nothing here knows cryptography: each export checks its arguments, converts
//! handles, calls the core and maps the result to a `cellar_status`, all inside
//! [`ffi_boundary!`], which catches panics, sets or clears the thread's last-error text and never
//! lets an unwind cross into C.
#![allow(non_camel_case_types)]

use crate::error::Error;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub mod cell;
pub mod fips;
pub mod keys;
pub mod page;
pub mod keyring;
pub mod kmip;
pub mod pkcs11;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;

/// Status code returned by every fallible Cellar function. `CELLAR_OK` (0) is success; the other
/// values are listed below and are never renumbered or reused.
pub type cellar_status = i32;

/// Success.
pub const CELLAR_OK: cellar_status = 0;
/// A required pointer argument was NULL (or NULL with a non-zero length).
pub const CELLAR_ERR_NULL_POINTER: cellar_status = 1;
/// An argument is out of range: a length, an enum integer, a flag, overlapping buffers.
pub const CELLAR_ERR_INVALID_ARGUMENT: cellar_status = 2;
/// The output buffer is too small; `*out_len` holds the size needed.
pub const CELLAR_ERR_BUFFER_TOO_SMALL: cellar_status = 3;
/// Decryption, unwrapping or import failed: tampered, truncated, moved, or wrong key/context.
/// Every decryption failure is this one code.
pub const CELLAR_ERR_AUTHENTICATION_FAILED: cellar_status = 4;
/// Wrong key type or length, or unacceptable key material (equal XTS halves).
pub const CELLAR_ERR_INVALID_KEY: cellar_status = 5;
/// A format Cellar does not read (for example a key-version query on a non-Cellar page).
pub const CELLAR_ERR_UNSUPPORTED_FORMAT: cellar_status = 6;
/// The named key version or key id is not present (never existed, or retired).
pub const CELLAR_ERR_KEY_NOT_FOUND: cellar_status = 7;
/// The tenant keyring is locked.
pub const CELLAR_ERR_TENANT_LOCKED: cellar_status = 8;
/// The key reached its encryption limit.
pub const CELLAR_ERR_USAGE_LIMIT: cellar_status = 9;
/// FIPS mode was required and is not available.
pub const CELLAR_ERR_NOT_FIPS: cellar_status = 10;
/// An external key provider callback failed.
pub const CELLAR_ERR_PROVIDER_FAILED: cellar_status = 11;
/// The module's random bit generator failed.
pub const CELLAR_ERR_RANDOM_FAILED: cellar_status = 12;
/// Internal failure, including a panic caught at the boundary. The process remains usable.
pub const CELLAR_ERR_INTERNAL: cellar_status = 13;

/// ABI version: `major << 16 | minor`. Minor versions only add; a new major may break.
/// Compare with `cellar_abi_version()` at run time.
pub const CELLAR_ABI_VERSION: u32 = 0x0001_0002;

/// A failure at the boundary: a core error plus, optionally, detail text that replaces the
/// error's own message in `cellar_last_error` (for example the index of a bad value in a batch).
pub(crate) struct Fail {
    pub(crate) error: Error,
    pub(crate) detail: Option<String>,
    /// A size query (`out_cap == 0`): reported as `CELLAR_ERR_BUFFER_TOO_SMALL` with the size,
    /// but not a failure, so the last-error text and the approval indicator stay as they were.
    pub(crate) probe: bool,
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Fail { error, detail: None, probe: false }
    }
}

impl Fail {
    /// A failure whose last-error text is `detail` (never a secret).
    pub(crate) fn with_detail(error: Error, detail: String) -> Self {
        Fail { error, detail: Some(detail), probe: false }
    }

    /// The answer to a size query: `needed` was written to the caller's length out-parameter.
    pub(crate) fn size_probe(needed: usize) -> Self {
        Fail { error: Error::BufferTooSmall { needed }, detail: None, probe: true }
    }
}

pub(crate) type FfiResult<T = ()> = core::result::Result<T, Fail>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

// `try_with` throughout: a host may call Cellar from a thread-exit destructor after this
// thread-local was destroyed; that must not panic outside `catch_unwind` (an abort).
fn set_last_error(text: &str) {
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(text);
    });
}

/// Clears without freeing, so the success path of a hot call does not allocate.
fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|e| e.borrow_mut().clear());
}

/// Copies the thread's last error text into `buf` (NUL-terminated, truncated to `cap - 1`) and
/// returns its full length in bytes, excluding the NUL.
pub(crate) fn copy_last_error(buf: *mut u8, cap: usize) -> usize {
    let copy = |bytes: &[u8]| {
        if !buf.is_null() && cap > 0 {
            let n = bytes.len().min(cap - 1);
            // SAFETY: the caller promises `buf` holds `cap` bytes; we write at most `cap`.
            unsafe {
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, n);
                *buf.add(n) = 0;
            }
        }
        bytes.len()
    };
    LAST_ERROR.try_with(|e| copy(e.borrow().as_bytes())).unwrap_or_else(|_| copy(&[]))
}

/// Runs one export's body: catches panics, maps errors to status codes, sets or clears the
/// thread's last-error text. Use through [`ffi_boundary!`].
#[inline]
pub(crate) fn boundary(name: &'static str, f: impl FnOnce() -> FfiResult) -> cellar_status {
    // Every export is an outermost operation (see `fips::enter_boundary`); the guard outlives
    // `mark_failed` below and restores any interrupted or enclosing operation's state last.
    let _indicator = crate::fips::enter_boundary();
    match catch_unwind(AssertUnwindSafe(|| {
        #[cfg(feature = "test-hooks")]
        test_hooks::maybe_panic(name);
        f()
    })) {
        Ok(Ok(())) => {
            clear_last_error();
            CELLAR_OK
        }
        // A size query is answered, not failed: last-error and indicator are left as they were.
        Ok(Err(fail)) if fail.probe => fail.error.code(),
        Ok(Err(fail)) => {
            // A failed call reports "unknown", also when it failed before any cryptography.
            crate::fips::mark_failed();
            match fail.detail {
                Some(d) => set_last_error(&format!("{name}: {d}")),
                None => set_last_error(&format!("{name}: {}", fail.error)),
            }
            fail.error.code()
        }
        Err(_) => {
            crate::fips::mark_failed();
            set_last_error(&format!("{name}: internal error: a panic was caught at the C boundary"));
            CELLAR_ERR_INTERNAL
        }
    }
}

/// Like [`boundary`] for exports that return a value rather than a status (sizes, frees):
/// a panic yields `fallback`.
#[inline]
pub(crate) fn boundary_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The one boundary macro: wraps an export's body (returning `FfiResult`) so that panics,
/// errors and last-error text are handled in one place.
macro_rules! ffi_boundary {
    ($name:literal, $body:block) => {
        $crate::ffi::boundary($name, move || -> $crate::ffi::FfiResult { $body })
    };
}
pub(crate) use ffi_boundary;

// ---------------------------------------------------------------------------------------------
// Arguments

/// A required input: fails with `CELLAR_ERR_NULL_POINTER` naming the argument when NULL.
pub(crate) fn non_null<T>(p: *const T, name: &'static str) -> FfiResult<*const T> {
    if p.is_null() {
        Err(Error::NullPointer(name).into())
    } else {
        Ok(p)
    }
}

/// A required out-pointer, checked before any work so nothing is done for a call that cannot
/// report its result.
pub(crate) fn out_ptr<T>(p: *mut T, name: &'static str) -> FfiResult<*mut T> {
    if p.is_null() {
        Err(Error::NullPointer(name).into())
    } else {
        Ok(p)
    }
}

/// Writes an out-parameter (already checked by [`out_ptr`]).
pub(crate) fn write_out<T>(p: *mut T, v: T) {
    // SAFETY: `p` was checked non-NULL; the caller promises it points to a writable `T`.
    unsafe { p.write(v) }
}

/// An input buffer: NULL is allowed only with length 0.
pub(crate) fn in_slice<'a>(p: *const u8, len: usize, name: &'static str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::NullPointer(name).into());
    }
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument("length exceeds the address space").into());
    }
    // SAFETY: the caller promises `p` points to `len` readable bytes for the call's duration.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// A caller-owned output buffer `out[0..out_cap]` with its `*out_len`: checks the pointers and
/// reports `CELLAR_ERR_BUFFER_TOO_SMALL` with the size needed in `*out_len` when `needed` does
/// not fit. Returns the writable slice (`needed` bytes of it are to be used).
pub(crate) fn out_buffer<'a>(
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    needed: usize,
) -> FfiResult<&'a mut [u8]> {
    let out_len = out_ptr(out_len, "out_len")?;
    if out_cap < needed {
        write_out(out_len, needed);
        if out_cap == 0 {
            return Err(Fail::size_probe(needed));
        }
        return Err(Error::BufferTooSmall { needed }.into());
    }
    if needed == 0 {
        return Ok(&mut []);
    }
    if out.is_null() {
        return Err(Error::NullPointer("out").into());
    }
    // A capacity past the address space cannot be real; clamp it so the slice stays valid
    // (a Rust slice may not exceed isize::MAX bytes).
    let out_cap = out_cap.min(isize::MAX as usize);
    // SAFETY: the caller promises `out` points to `out_cap` writable bytes, `out_cap >= needed`.
    Ok(unsafe { core::slice::from_raw_parts_mut(out, out_cap) })
}

/// Copies `data` to a caller-owned output buffer and sets `*out_len` (see [`out_buffer`]).
pub(crate) fn write_buffer(out: *mut u8, out_cap: usize, out_len: *mut usize, data: &[u8]) -> FfiResult {
    let buf = out_buffer(out, out_cap, out_len, data.len())?;
    buf[..data.len()].copy_from_slice(data);
    write_out(out_len, data.len());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Handles

/// Opaque handles are boxed `Handle<T>`s: a magic tag first (so a handle of the wrong kind, or a
/// freed one whose memory was not reused, is refused with `CELLAR_ERR_INVALID_ARGUMENT`), then
/// the core value.
#[repr(C)]
pub(crate) struct Handle<T> {
    magic: u64,
    value: T,
}

/// Ties a public opaque C type to the core value its handle holds.
pub(crate) trait Castable {
    type Inner;
    const MAGIC: u64;
    const NAME: &'static str;
}

/// Boxes a core value as a new handle of the opaque C type `C`.
pub(crate) fn new_handle<C: Castable>(value: C::Inner) -> *mut C {
    Box::into_raw(Box::new(Handle { magic: C::MAGIC, value })).cast::<C>()
}

/// Whether `p` (non-NULL) carries `C`'s magic. A misaligned pointer cannot be a handle (they are
/// boxed), so it is refused before anything is read through it.
fn has_magic<C: Castable>(p: *const Handle<C::Inner>) -> bool {
    if !p.is_aligned() {
        return false;
    }
    // SAFETY: the caller promises `p` points to readable memory of at least a handle header;
    // every Cellar handle is a `Handle<_>` whose first field is the `u64` magic.
    unsafe { core::ptr::addr_of!((*p).magic).read() == C::MAGIC }
}

/// Borrows the core value behind a handle, checking NULL and its kind.
pub(crate) fn handle<'a, C: Castable>(p: *const C, name: &'static str) -> FfiResult<&'a C::Inner> {
    let p = non_null(p, name)?.cast::<Handle<C::Inner>>();
    if !has_magic::<C>(p) {
        return Err(Fail::with_detail(
            Error::InvalidArgument("wrong handle kind"),
            format!("invalid argument: {name} is not a live {}", C::NAME),
        ));
    }
    // SAFETY: the magic matched, so `p` came from `new_handle::<C>` and is live (caller's promise).
    Ok(unsafe { &(*p).value })
}

/// Frees a handle; NULL does nothing, a handle of another kind is ignored (never freed as this
/// kind). The magic is cleared first so a stale pointer is refused while the memory is not reused.
pub(crate) fn free_handle<C: Castable>(p: *mut C) {
    if p.is_null() {
        return;
    }
    let p = p.cast::<Handle<C::Inner>>();
    if !has_magic::<C>(p) {
        return;
    }
    // SAFETY: see `handle`; the caller gives up `p`, which came from `new_handle::<C>`.
    unsafe {
        (*p).magic = 0;
        drop(Box::from_raw(p));
    }
}
