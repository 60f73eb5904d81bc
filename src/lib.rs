//! # Cellar
//!
//! A small cryptographic kernel for encrypting database data at rest, built on the AWS-LC
//! FIPS 140-3 validated module (through `aws-lc-rs` with its `fips` feature). It holds keys as
//! opaque handles, wraps data keys under tenant keys, encrypts database pages (TDE) and single
//! column values (cells), and reports for every operation whether the module counted it as an
//! approved service.
//!
//! The same API is exported to C through `include/cellar.h` (see `src/ffi`). Byte formats are in
//! `docs/FORMATS.md`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod error;
pub mod fips;
pub mod cell;
pub mod keys;
pub mod page;
#[doc(hidden)]
pub mod par;
pub mod keyring;
pub mod provider;
mod sys;
pub(crate) mod kdf;

#[doc(hidden)]
pub mod ffi;

pub use error::{Error, Result};
pub use fips::{last_operation_approved, Approval};
pub use cell::{BlindIndexKey, CellCipher, CellMode};
pub use keys::{Key, KeyId, KeyPurpose, KeyType};
pub use page::{PageCipher, PageMode};
pub use keyring::Keyring;

/// ABI version of the C interface: `major << 16 | minor`.
pub const ABI_VERSION: u32 = ffi::CELLAR_ABI_VERSION;

/// Cellar's version, the module's and its certificate, for example "cellar 0.1.0 (AWS-LC FIPS
/// 3.1.0; FIPS 140-3 certificate #5314 (static module; #5298 dynamic))", or "...; in CMVP review,
/// no certificate)" on the 4.x line; a module other than the pinned version claims none.
pub fn version_string() -> String {
    let status = if fips::module_version_is_pinned() {
        fips::MODULE_CERTIFICATE.to_string()
    } else {
        format!("not the pinned {}, no certificate applies", fips::EXPECTED_MODULE_VERSION)
    };
    format!("cellar {} ({}; {})", env!("CARGO_PKG_VERSION"), fips::module_version(), status)
}
