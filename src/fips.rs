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
//! An operation sets the indicator to -1 when it starts, so one that never completes (a
//! provider callback left by `longjmp`) leaves -1, never an earlier operation's verdict.
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
        // Until it completes, the operation shows "failed" (-1): one that never completes (a
        // provider callback left by `longjmp`) leaves no earlier verdict behind (finding 7).
        LAST.with(|l| l.set(Approval::Unknown));
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

/// Marks the current operation as not an approved scheme (SPEC 10): it reports 0 on success
/// even when every module service it used was counted (DETERMINISTIC and Always Encrypted
/// cells, raw key entry and export, v1 formats, provider-performed wrapping). Outside an
/// operation it does nothing.
#[inline]
pub(crate) fn not_approved() {
    if DEPTH.with(Cell::get) > 0 {
        ALL_COUNTED.with(|a| a.set(false));
    }
}

/// Fills `dest` from the module's DRBG (an approved, counted service).
pub(crate) fn random(dest: &mut [u8]) -> Result<()> {
    service(|| aws_lc_rs::rand::fill(dest)).map_err(|_| Error::RandomFailed("module DRBG failed"))
}

/// The module's name and version, for example "AWS-LC FIPS 3.1.0".
pub fn module_version() -> &'static str {
    sys::module_version()
}

/// The module line this build is on (docs/FIPS.md "Module line"). The default manifest builds the
/// validated FIPS 3 line; `fips4/Cargo.toml` builds the 4.x line with the `line-fips4` feature.
#[cfg(not(feature = "line-fips4"))]
mod line {
    /// The line's name.
    pub const NAME: &str = "AWS-LC FIPS 3";
    /// The module version the line's security policies name; the pinned aws-lc-fips-sys (0.13.11)
    /// bundles exactly this version.
    pub const EXPECTED_MODULE_VERSION: &str = "AWS-LC FIPS 3.1.0";
    /// The validation status of that module version. Cellar links the module statically (the
    /// static module, #5314); #5298 is the same version built as a shared library.
    pub const CERTIFICATE: &str = "FIPS 140-3 certificate #5314 (static module; #5298 dynamic)";
}

/// The opt-in 4.x line (`fips4/Cargo.toml`, aws-lc-fips-sys 0.14.4): submitted, not validated.
#[cfg(feature = "line-fips4")]
mod line {
    /// The line's name.
    pub const NAME: &str = "AWS-LC FIPS 4";
    /// The module version the pinned aws-lc-fips-sys (0.14.4) bundles.
    pub const EXPECTED_MODULE_VERSION: &str = "AWS-LC FIPS 4.2.0";
    /// The validation status: no certificate.
    pub const CERTIFICATE: &str = "in CMVP review, no certificate";
}

/// The module line this build is on, "AWS-LC FIPS 3" or "AWS-LC FIPS 4".
pub const MODULE_LINE: &str = line::NAME;

/// The module version this build pins (what [`module_version`] must report).
pub const EXPECTED_MODULE_VERSION: &str = line::EXPECTED_MODULE_VERSION;

/// The pinned version's validation status, without the line and version.
pub const MODULE_CERTIFICATE: &str = line::CERTIFICATE;

/// Whether the linked module reports the version this build pins.
pub fn module_version_is_pinned() -> bool {
    module_version() == EXPECTED_MODULE_VERSION
}

/// One line naming the module line, the linked module version and its certificate (or "in CMVP
/// review"), for example "AWS-LC FIPS 3 line, module AWS-LC FIPS 3.1.0: FIPS 140-3 certificate
/// #5314 (static module; #5298 dynamic)". When the linked module is not the pinned version it
/// says so and claims no certificate.
pub fn module_certificate() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| certificate_text(module_version()))
}

fn certificate_text(linked: &str) -> String {
    if linked == EXPECTED_MODULE_VERSION {
        format!("{MODULE_LINE} line, module {linked}: {MODULE_CERTIFICATE}")
    } else {
        format!(
            "{MODULE_LINE} line, module {linked}: not the pinned {EXPECTED_MODULE_VERSION}, no certificate applies"
        )
    }
}

/// Whether the module runs in FIPS mode. Every Cellar build links the AWS-LC FIPS module (there
/// is no non-FIPS build), so this is the module's own `FIPS_mode()`.
pub fn is_fips() -> bool {
    sys::fips_mode()
}

/// Whether the module's known-answer self tests pass. They are run again once, on first call,
/// and the result is cached (the power-on tests already ran when the module loaded).
pub fn self_tests_passed() -> bool {
    static PASSED: OnceLock<bool> = OnceLock::new();
    *PASSED.get_or_init(sys::run_self_tests)
}

/// Library initialisation. With `require_fips`, fails closed with [`Error::NotFips`] unless
/// the module is in FIPS mode, its self tests pass and it reports the module version this build
/// pins ([`EXPECTED_MODULE_VERSION`]). Safe to call any number of times.
pub fn init(require_fips: bool) -> Result<()> {
    if require_fips {
        check_required(is_fips(), self_tests_passed(), module_version())?;
    }
    Ok(())
}

fn check_required(fips_mode: bool, self_tests: bool, linked: &str) -> Result<()> {
    if !fips_mode {
        return Err(Error::NotFips("FIPS mode was required but the module is not in FIPS mode"));
    }
    if !self_tests {
        return Err(Error::NotFips("FIPS mode was required but the module's self tests failed"));
    }
    if linked != EXPECTED_MODULE_VERSION {
        return Err(Error::NotFips(
            "FIPS mode was required but the linked module is not the version this build pins (see cellar_fips_module_certificate)",
        ));
    }
    Ok(())
}

/// The indicator state of an operation in progress on this thread, saved by [`enter_boundary`].
pub(crate) struct BoundaryGuard {
    depth: u32,
    all_counted: bool,
}

impl Drop for BoundaryGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(self.depth));
        ALL_COUNTED.with(|a| a.set(self.all_counted));
    }
}

/// Called by the C boundary on entry to every export: the call runs as an outermost operation
/// of its own, with the state of any operation already in progress on this thread saved and
/// restored when it returns. A re-entrant call from a provider callback therefore reports its
/// own result and leaves the outer operation's accounting as it was; and a call made after a
/// callback that never returned (left by `longjmp`, skipping the guards that would have reset
/// the depth) starts clean instead of being folded into an operation that will never finish
/// (security review finding 7). The abandoned operation itself left -1 showing: [`operation`]
/// sets it when an outermost operation starts.
#[inline]
pub(crate) fn enter_boundary() -> BoundaryGuard {
    let depth = DEPTH.with(|d| d.replace(0));
    let all_counted = ALL_COUNTED.with(|a| a.replace(true));
    BoundaryGuard { depth, all_counted }
}

/// Records a failed call on this thread: the C boundary calls it for every failing export
/// (including failures before any operation started, such as a NULL argument, and caught
/// panics), so the indicator never shows a stale "approved" after a failure. Inside an
/// operation (a re-entrant call from a provider callback) it does nothing: the outermost
/// operation decides. The depth needs no reset: `operation`'s guard restores it on unwind.
pub(crate) fn mark_failed() {
    if DEPTH.with(Cell::get) == 0 {
        LAST.with(|l| l.set(Approval::Unknown));
    }
}

/// Notes, inside an operation, that an external key provider (a PKCS#11 token) performed part
/// of it: the operation then reports [`Approval::NotApproved`] (0) if it succeeds (SPEC 1: the
/// HSM's own certificate covers that work, not this module's approved services).
pub(crate) fn note_external() {
    ALL_COUNTED.with(|a| a.set(false));
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hkdf;

    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    /// HKDF-SHA256 through `aws-lc-rs` directly, as one counted service call.
    fn hkdf_service(salt: &[u8], info: &[&[u8]]) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(b"input keying material");
        service(|| prk.expand(info, Len(32)).and_then(|okm| okm.fill(&mut out)))
            .map_err(|_| Error::Internal("HKDF failed"))?;
        Ok(out)
    }

    // Each test runs on its own thread, so the thread-local indicator starts fresh.

    #[test]
    fn fresh_thread_reports_unknown() {
        assert_eq!(last_operation_approved(), Approval::Unknown);
    }

    #[test]
    fn counted_service_is_approved() {
        operation(|| hkdf_service(&[0u8; 32], &[b"info"])).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
    }

    /// The mechanism can say "no": HKDF with an empty (non-NULL) salt is not counted by the module.
    #[test]
    fn hkdf_with_empty_salt_is_not_approved() {
        let out = operation(|| hkdf_service(&[], &[b"info"])).unwrap();
        assert_eq!(last_operation_approved(), Approval::NotApproved);
        // RFC 5869: an absent salt is HashLen zero bytes, so the output is identical; only the
        // module's accounting differs.
        let approved = operation(|| hkdf_service(&[0u8; 32], &[b"info"])).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
        assert_eq!(out, approved);
    }

    /// HKDF with empty info is not counted either.
    #[test]
    fn hkdf_with_empty_info_is_not_approved() {
        operation(|| hkdf_service(&[0u8; 32], &[])).unwrap();
        assert_eq!(last_operation_approved(), Approval::NotApproved);
    }

    /// One uncounted service spoils the whole operation, even between counted ones.
    #[test]
    fn one_uncounted_call_marks_the_operation() {
        operation(|| {
            hkdf_service(&[0u8; 32], &[b"a"])?;
            hkdf_service(&[0u8; 32], &[])?;
            hkdf_service(&[0u8; 32], &[b"b"])
        })
        .unwrap();
        assert_eq!(last_operation_approved(), Approval::NotApproved);
        // ... and the next operation starts clean.
        operation(|| hkdf_service(&[0u8; 32], &[b"a"])).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
    }

    #[test]
    fn nested_operations_fold_into_the_outermost() {
        operation(|| {
            operation(|| hkdf_service(&[0u8; 32], &[]))?;
            // The inner operation does not publish its own result.
            assert_eq!(last_operation_approved(), Approval::Unknown);
            operation(|| hkdf_service(&[0u8; 32], &[b"x"]))
        })
        .unwrap();
        assert_eq!(last_operation_approved(), Approval::NotApproved);
    }

    /// While an operation runs (and if it never completes) the indicator shows -1, not the
    /// previous operation's verdict (security review finding 7).
    #[test]
    fn operation_in_progress_reads_unknown() {
        operation(|| hkdf_service(&[0u8; 32], &[b"info"])).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
        operation(|| {
            assert_eq!(last_operation_approved(), Approval::Unknown);
            hkdf_service(&[0u8; 32], &[b"info"])?;
            assert_eq!(last_operation_approved(), Approval::Unknown);
            Ok(())
        })
        .unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
        // A call at the C boundary starts a fresh outermost operation even when an abandoned
        // one is still open on the thread (its guards skipped): the indicator shows -1 while it runs.
        let _abandoned = enter_boundary();
        DEPTH.with(|d| d.set(1));
        {
            let _g = enter_boundary();
            operation(|| {
                assert_eq!(last_operation_approved(), Approval::Unknown);
                hkdf_service(&[0u8; 32], &[b"info"])
            })
            .unwrap();
            assert_eq!(last_operation_approved(), Approval::Approved);
        }
        assert_eq!(DEPTH.with(Cell::get), 1);
    }

    #[test]
    fn failing_operation_reports_unknown() {
        operation(|| hkdf_service(&[0u8; 32], &[b"info"])).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
        let r: Result<()> = operation(|| {
            hkdf_service(&[0u8; 32], &[b"info"])?;
            Err(Error::AuthenticationFailed("test"))
        });
        assert!(r.is_err());
        assert_eq!(last_operation_approved(), Approval::Unknown);
    }

    /// A module call that fails (HKDF asked for more than 255 * 32 bytes) fails the operation.
    #[test]
    fn failing_service_reports_unknown() {
        let r = operation(|| {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[0u8; 32]).extract(b"ikm");
            let mut out = vec![0u8; 255 * 32 + 1];
            service(|| prk.expand(&[b"info"], Len(out.len())).and_then(|okm| okm.fill(&mut out)))
                .map_err(|_| Error::Internal("HKDF failed"))
        });
        assert!(r.is_err());
        assert_eq!(last_operation_approved(), Approval::Unknown);
    }

    /// An operation that calls no counted service (building a cipher, say) is approved.
    #[test]
    fn operation_without_services_is_approved() {
        operation(|| Ok(())).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
    }

    #[test]
    fn drbg_is_counted() {
        let mut buf = [0u8; 32];
        operation(|| random(&mut buf)).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
        assert_ne!(buf, [0u8; 32]);
    }

    #[test]
    fn panic_inside_an_operation_does_not_wedge_the_thread() {
        let r = std::panic::catch_unwind(|| {
            let _: Result<()> = operation(|| panic!("boom"));
        });
        assert!(r.is_err());
        mark_failed();
        assert_eq!(last_operation_approved(), Approval::Unknown);
        // Depth was restored by the guard: a new operation publishes its result again.
        operation(|| hkdf_service(&[0u8; 32], &[b"info"])).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
    }

    #[test]
    fn mark_failed_inside_an_operation_defers_to_the_outermost() {
        operation(|| {
            mark_failed();
            hkdf_service(&[0u8; 32], &[b"info"])
        })
        .unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
    }

    /// The linked module is exactly the pinned version: this fails if the build picked up any
    /// other AWS-LC (another aws-lc-fips-sys, a system library) than the one the line pins.
    #[test]
    fn linked_module_is_the_pinned_version() {
        assert_eq!(module_version(), EXPECTED_MODULE_VERSION);
        assert!(module_version_is_pinned());
        #[cfg(not(feature = "line-fips4"))]
        assert_eq!(EXPECTED_MODULE_VERSION, "AWS-LC FIPS 3.1.0");
        #[cfg(feature = "line-fips4")]
        assert!(EXPECTED_MODULE_VERSION.starts_with("AWS-LC FIPS 4."));
        let text = module_certificate();
        assert!(text.starts_with(&format!("{MODULE_LINE} line, module {EXPECTED_MODULE_VERSION}: ")), "{text}");
        assert!(text.ends_with(MODULE_CERTIFICATE), "{text}");
    }

    #[test]
    fn certificate_text_claims_nothing_for_another_version() {
        let t = certificate_text("AWS-LC FIPS 9.9.9");
        assert!(t.contains("not the pinned"), "{t}");
        assert!(!t.contains('#') && !t.contains("review"), "{t}");
    }

    #[test]
    fn require_fips_refuses_an_unexpected_module_version() {
        check_required(true, true, EXPECTED_MODULE_VERSION).unwrap();
        for other in ["AWS-LC FIPS 3.0.0", "AWS-LC FIPS 4.2.0", "AWS-LC FIPS 3.1.0 ", "AWS-LC 1.60.0", ""] {
            if other == EXPECTED_MODULE_VERSION {
                continue;
            }
            assert!(matches!(check_required(true, true, other), Err(Error::NotFips(_))), "{other:?}");
        }
        assert!(matches!(check_required(false, true, EXPECTED_MODULE_VERSION), Err(Error::NotFips(_))));
        assert!(matches!(check_required(true, false, EXPECTED_MODULE_VERSION), Err(Error::NotFips(_))));
    }

    #[test]
    fn module_status() {
        assert!(is_fips(), "the default build must run the module in FIPS mode");
        assert!(self_tests_passed());
        assert!(module_version().contains("AWS-LC"), "{}", module_version());
        assert!(module_version().contains("FIPS"), "{}", module_version());
        init(true).unwrap();
        init(false).unwrap();
    }
}
