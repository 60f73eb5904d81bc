//! Module status and the per-thread "last operation approved" indicator.
//!
//! Every public Cellar operation that performs cryptography runs inside [`operation`], and every
//! module service it calls runs inside [`service`], which reads the module's own service
//! indicator (`FIPS_service_indicator_before_call` / `_after_call`) around the call. When the
//! outermost operation returns, the thread's indicator becomes:
//!
//! * [`Approval::Approved`] (1): it succeeded and every service call advanced the module's
//!   indicator (also when it made none, such as building a cipher);
//! * [`Approval::NotApproved`] (0): it succeeded but some service call was not counted;
//! * [`Approval::Unknown`] (-1): it failed (the module counts only services that complete), or no
//!   operation has run on this thread yet.
//!
//! Calls that do no cryptography (size queries, names, versions) leave it unchanged.

use crate::error::{Error, Result};
use crate::sys;
use std::cell::Cell;
use std::sync::OnceLock;

/// The per-thread result of the last Cellar operation, as reported by the module's indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Approval {
    /// Succeeded, and every module service it used was counted as approved.
    Approved = 1,
    /// Succeeded, but some module service it used was not counted as approved.
    NotApproved = 0,
    /// Failed, or no operation has run on this thread.
    Unknown = -1,
}

thread_local! {
    static LAST: Cell<Approval> = const { Cell::new(Approval::Unknown) };
    // Nesting depth of `operation` and whether every service so far was counted.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static ALL_COUNTED: Cell<bool> = const { Cell::new(true) };
}

/// The calling thread's indicator for its last Cellar operation.
pub fn last_operation_approved() -> Approval {
    LAST.with(Cell::get)
}

/// Runs one public operation and records its approval for this thread. Nested operations (a
/// keyring operation that wraps a key, say) fold into the outermost one.
#[inline]
pub(crate) fn operation<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let depth = DEPTH.with(|d| {
        let v = d.get();
        d.set(v + 1);
        v
    });
    if depth == 0 {
        ALL_COUNTED.with(|a| a.set(true));
    }
    // Restore the depth even if `f` unwinds, so a caught panic does not wedge the thread.
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    let guard = Guard;
    let result = f();
    drop(guard);
    if depth == 0 {
        let approval = match &result {
            Ok(_) if ALL_COUNTED.with(Cell::get) => Approval::Approved,
            Ok(_) => Approval::NotApproved,
            Err(_) => Approval::Unknown,
        };
        LAST.with(|l| l.set(approval));
    }
    result
}

/// Runs one module service call and notes whether the module counted it as approved.
/// A failed call (`Err`) is not noted: the whole operation fails and reports unknown.
#[inline]
pub(crate) fn service<T, E>(f: impl FnOnce() -> core::result::Result<T, E>) -> core::result::Result<T, E> {
    let before = sys::indicator_before();
    let r = f();
    if r.is_ok() && sys::indicator_after() == before {
        ALL_COUNTED.with(|a| a.set(false));
    }
    r
}

/// Fills `dest` from the module's DRBG (an approved, counted service).
pub(crate) fn random(dest: &mut [u8]) -> Result<()> {
    service(|| aws_lc_rs::rand::fill(dest)).map_err(|_| Error::RandomFailed("module DRBG failed"))
}

/// The module's name and version, for example "AWS-LC FIPS 4.2.0".
pub fn module_version() -> &'static str {
    sys::module_version()
}

/// Whether this build links the FIPS module and it runs in FIPS mode.
pub fn is_fips() -> bool {
    cfg!(feature = "fips") && sys::fips_mode()
}

/// Whether the module's known-answer self tests pass. They are run again once, on first call,
/// and the result is cached (the power-on tests already ran when the module loaded).
pub fn self_tests_passed() -> bool {
    static PASSED: OnceLock<bool> = OnceLock::new();
    *PASSED.get_or_init(sys::run_self_tests)
}

/// Library initialisation. With `require_fips`, fails closed with [`Error::NotFips`] unless
/// the module is in FIPS mode and its self tests pass. Safe to call any number of times.
pub fn init(require_fips: bool) -> Result<()> {
    if require_fips && !(is_fips() && self_tests_passed()) {
        return Err(Error::NotFips("FIPS mode was required but the module is not in FIPS mode"));
    }
    Ok(())
}

/// Records a failed operation on this thread (used when a panic was caught at the boundary).
pub(crate) fn mark_failed() {
    LAST.with(|l| l.set(Approval::Unknown));
    DEPTH.with(|d| d.set(0));
}
