//! The one module that calls `aws-lc-fips-sys` directly (STYLE.md: no `unsafe` elsewhere outside
//! `src/ffi`). It holds what `aws-lc-rs` does not expose: the module's per-thread service
//! indicator, its version string, FIPS mode and self-test status, and (for pages) the AES-XTS
//! cipher, which `aws-lc-rs` has no API for.

use aws_lc_fips_sys as ffi;
use core::ffi::CStr;

/// The module's per-thread service indicator counter, read before a service call.
#[inline]
pub(crate) fn indicator_before() -> u64 {
    // SAFETY: no arguments; reads the calling thread's indicator state.
    unsafe { ffi::FIPS_service_indicator_before_call() }
}

/// The module's per-thread service indicator counter, read after a service call. It differs
/// from the value read before exactly when an approved service completed in between.
#[inline]
pub(crate) fn indicator_after() -> u64 {
    // SAFETY: no arguments; reads the calling thread's indicator state.
    unsafe { ffi::FIPS_service_indicator_after_call() }
}

/// The module's own version string, for example "AWS-LC FIPS 4.2.0".
pub(crate) fn module_version() -> &'static str {
    // SAFETY: awslc_version_string returns a pointer to a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ffi::awslc_version_string()) };
    s.to_str().unwrap_or("AWS-LC (unprintable version)")
}

/// Whether the module runs in FIPS mode (a FIPS build of AWS-LC always does).
pub(crate) fn fips_mode() -> bool {
    // SAFETY: no arguments.
    unsafe { ffi::FIPS_mode() == 1 }
}

/// Runs the module's full set of known-answer self tests again; true when all pass.
/// (The power-on self tests ran when the module was loaded: a failure there aborts the process.)
pub(crate) fn run_self_tests() -> bool {
    // SAFETY: no arguments.
    unsafe { ffi::BORINGSSL_self_test() == 1 }
}

// --- cells ---

/// One-shot HKDF-SHA256 (RFC 5869) through the module's `HKDF`, which counts as approved with a
/// non-empty salt and info. Used on hot paths (blind indexes derive their key per call) because
/// `aws-lc-rs`'s HKDF allocates on the heap (it boxes the secret and concatenates the info).
/// Returns false if the module refused (it does not for SHA-256 and `out.len() <= 8160`).
pub(crate) fn hkdf_sha256_oneshot(out: &mut [u8], secret: &[u8], salt: &[u8], info: &[u8]) -> bool {
    // SAFETY: every pointer comes from a live slice with its own length; `out` is writable;
    // EVP_sha256 returns a static digest description.
    unsafe {
        ffi::HKDF(
            out.as_mut_ptr(),
            out.len(),
            ffi::EVP_sha256(),
            secret.as_ptr(),
            secret.len(),
            salt.as_ptr(),
            salt.len(),
            info.as_ptr(),
            info.len(),
        ) == 1
    }
}
