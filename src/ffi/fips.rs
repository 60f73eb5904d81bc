//! Library-wide calls: versions, status names, last error, FIPS status and initialisation.

use super::{boundary_value, cellar_status, ffi_boundary};
use crate::fips;
use core::ffi::c_char;
use std::ffi::CString;
use std::sync::OnceLock;

/// `cellar_init` flag: fail with `CELLAR_ERR_NOT_FIPS` unless the module runs in FIPS mode, its
/// self tests pass and it is the module version this build pins.
pub const CELLAR_INIT_REQUIRE_FIPS: u32 = 1;

/// Returns `CELLAR_ABI_VERSION` as compiled into the library. Compare it with the header's
/// constant: the major (`>> 16`) must be equal and the library's minor at least the header's.
#[no_mangle]
pub extern "C" fn cellar_abi_version() -> u32 {
    crate::ABI_VERSION
}

/// Returns a static, NUL-terminated string naming Cellar's version, the module's and the module's
/// certificate, for example "cellar 0.1.0 (AWS-LC FIPS 3.1.0; FIPS 140-3 certificate #5314
/// (static module; #5298 dynamic))"; on the opt-in 4.x build "...; in CMVP review, no
/// certificate)"; a linked module other than the pinned version claims none. Never NULL; valid
/// for the life of the process.
#[no_mangle]
pub extern "C" fn cellar_version() -> *const c_char {
    static V: OnceLock<CString> = OnceLock::new();
    boundary_value(c"cellar".as_ptr(), || {
        V.get_or_init(|| {
            CString::new(crate::version_string()).unwrap_or_else(|_| CString::from(c"cellar"))
        })
        .as_ptr()
    })
}

/// Returns a static, NUL-terminated name for a status code, such as "CELLAR_ERR_INVALID_KEY";
/// "CELLAR_ERR_UNKNOWN" for an integer that is not a status. Never NULL.
#[no_mangle]
pub extern "C" fn cellar_status_name(status: cellar_status) -> *const c_char {
    let s: &'static core::ffi::CStr = match status {
        0 => c"CELLAR_OK",
        1 => c"CELLAR_ERR_NULL_POINTER",
        2 => c"CELLAR_ERR_INVALID_ARGUMENT",
        3 => c"CELLAR_ERR_BUFFER_TOO_SMALL",
        4 => c"CELLAR_ERR_AUTHENTICATION_FAILED",
        5 => c"CELLAR_ERR_INVALID_KEY",
        6 => c"CELLAR_ERR_UNSUPPORTED_FORMAT",
        7 => c"CELLAR_ERR_KEY_NOT_FOUND",
        8 => c"CELLAR_ERR_TENANT_LOCKED",
        9 => c"CELLAR_ERR_USAGE_LIMIT",
        10 => c"CELLAR_ERR_NOT_FIPS",
        11 => c"CELLAR_ERR_PROVIDER_FAILED",
        12 => c"CELLAR_ERR_RANDOM_FAILED",
        13 => c"CELLAR_ERR_INTERNAL",
        _ => c"CELLAR_ERR_UNKNOWN",
    };
    s.as_ptr()
}

/// Copies the calling thread's last failure text (empty after a success) into `buf`, truncated
/// to `cap - 1` bytes and NUL-terminated, and returns its full length in bytes (without the NUL),
/// so a caller can size a buffer with `cellar_last_error(NULL, 0)`. The text never contains key
/// material or caller data. `buf` may be NULL only when `cap` is 0.
#[no_mangle]
pub extern "C" fn cellar_last_error(buf: *mut c_char, cap: usize) -> usize {
    boundary_value(0, || super::copy_last_error(buf.cast::<u8>(), cap))
}

/// The calling thread's indicator for its last Cellar operation that performed cryptography:
/// 1 when it succeeded and the module counted every service it used as approved, 0 when it
/// succeeded but some service was not counted, -1 when none has run on this thread or the last
/// call failed (every call that returns an error status sets -1). Successful calls that do no
/// cryptography (ids, types, sizes, names) and size queries leave it unchanged. 1 means an
/// approved *scheme*, not only approved primitives (SPEC 10): DETERMINISTIC and both Always
/// Encrypted cell modes, raw key import, raw export, v1 (HKDF) formats and operations a key
/// provider performed succeed with 0. The per-operation table is in docs/FIPS.md. An operation
/// sets -1 when it starts, so one that never completes (a provider callback left by `longjmp`,
/// which is not supported) leaves -1, not an earlier verdict; if that callback itself made Cellar
/// calls before leaving, the last of those is what shows.
#[no_mangle]
pub extern "C" fn cellar_last_operation_approved() -> i32 {
    fips::last_operation_approved() as i32
}

/// Initialises the library (optional; every call works without it). With
/// `CELLAR_INIT_REQUIRE_FIPS` it fails closed with `CELLAR_ERR_NOT_FIPS` unless the module is in
/// FIPS mode, its self tests pass and `cellar_fips_module_version()` is exactly the module
/// version this build pins ("AWS-LC FIPS 3.1.0" on the default FIPS 3 line; see
/// `cellar_fips_module_certificate`). Unknown flag bits are `CELLAR_ERR_INVALID_ARGUMENT`.
/// Thread-safe and idempotent.
#[no_mangle]
pub extern "C" fn cellar_init(flags: u32) -> cellar_status {
    ffi_boundary!("cellar_init", {
        if flags & !CELLAR_INIT_REQUIRE_FIPS != 0 {
            return Err(crate::Error::InvalidArgument("unknown init flag bits").into());
        }
        Ok(fips::init(flags & CELLAR_INIT_REQUIRE_FIPS != 0)?)
    })
}

/// Returns a static, NUL-terminated name and version of the cryptographic module, for example
/// "AWS-LC FIPS 4.2.0". Never NULL.
#[no_mangle]
pub extern "C" fn cellar_fips_module_version() -> *const c_char {
    static V: OnceLock<CString> = OnceLock::new();
    boundary_value(c"AWS-LC".as_ptr(), || {
        V.get_or_init(|| CString::new(fips::module_version()).unwrap_or_else(|_| CString::from(c"AWS-LC")))
            .as_ptr()
    })
}

/// Returns a static, NUL-terminated line naming the module line this build is on, the linked
/// module version and its validation status, for example "AWS-LC FIPS 3 line, module AWS-LC
/// FIPS 3.1.0: FIPS 140-3 certificate #5314 (static module; #5298 dynamic)", or on the opt-in
/// 4.x build "AWS-LC FIPS 4 line, module AWS-LC FIPS 4.2.0: in CMVP review, no certificate".
/// When the linked module is not the version the build pins, the text says so and names no
/// certificate. The certificate covers the module only as its security policy states
/// (operating environments, build procedure): docs/FIPS.md. Never NULL; valid for the life of
/// the process; no cryptography (the indicator is unchanged).
#[no_mangle]
pub extern "C" fn cellar_fips_module_certificate() -> *const c_char {
    static V: OnceLock<CString> = OnceLock::new();
    boundary_value(c"AWS-LC".as_ptr(), || {
        V.get_or_init(|| {
            CString::new(fips::module_certificate()).unwrap_or_else(|_| CString::from(c"AWS-LC"))
        })
        .as_ptr()
    })
}

/// 1 when the module runs in FIPS mode (every Cellar build links the AWS-LC FIPS module), 0
/// otherwise.
#[no_mangle]
pub extern "C" fn cellar_fips_mode() -> i32 {
    i32::from(fips::is_fips())
}

/// 1 when the module's known-answer self tests pass (run once on first call, then cached),
/// 0 otherwise.
#[no_mangle]
pub extern "C" fn cellar_fips_self_test_passed() -> i32 {
    boundary_value(0, || i32::from(fips::self_tests_passed()))
}
