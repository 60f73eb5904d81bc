//! The one error type of Cellar, mapped one-to-one onto the C status codes.
//!
//! Messages are fixed, static texts chosen by Cellar: they never contain key material,
//! plaintext or caller data, so they are safe to log and to return through
//! `cellar_last_error`.

/// Every failure Cellar reports. Each variant has a stable numeric code ([`Error::code`]) that is
/// the `cellar_status` value of the C API; codes are never renumbered or reused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A required pointer was NULL (C boundary only).
    #[error("null pointer: {0}")]
    NullPointer(&'static str),
    /// An argument is out of range: a length, an enum integer, an overlap, a flag.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The output buffer is too small; the value is the size that is needed, in bytes.
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// A ciphertext, page, wrapped key or sealed file did not authenticate or is malformed.
    /// All decryption failures are this one error, whatever their cause.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(&'static str),
    /// The key is of the wrong type or length, or its material is unacceptable.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A format byte or structure that this version of Cellar does not read.
    #[error("unsupported format: {0}")]
    UnsupportedFormat(&'static str),
    /// The named key (key version or key id) is not present (never existed or was retired).
    #[error("key not found: {0}")]
    KeyNotFound(&'static str),
    /// The tenant keyring is locked: its key material has been wiped from memory.
    #[error("tenant locked: {0}")]
    TenantLocked(&'static str),
    /// The key reached its configured encryption limit (SP 800-38D invocation limit).
    #[error("usage limit reached: {0}")]
    UsageLimit(&'static str),
    /// FIPS mode was required but the module is not in FIPS mode.
    #[error("not FIPS: {0}")]
    NotFips(&'static str),
    /// An external key provider callback reported failure.
    #[error("key provider failed: {0}")]
    ProviderFailed(&'static str),
    /// The module's random bit generator failed.
    #[error("random generation failed: {0}")]
    RandomFailed(&'static str),
    /// An internal failure: a module call that should not fail did, or a caught panic.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Cellar's result type.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// The stable C status code of this error (`CELLAR_ERR_*`).
    pub fn code(&self) -> i32 {
        match self {
            Error::NullPointer(_) => 1,
            Error::InvalidArgument(_) => 2,
            Error::BufferTooSmall { .. } => 3,
            Error::AuthenticationFailed(_) => 4,
            Error::InvalidKey(_) => 5,
            Error::UnsupportedFormat(_) => 6,
            Error::KeyNotFound(_) => 7,
            Error::TenantLocked(_) => 8,
            Error::UsageLimit(_) => 9,
            Error::NotFips(_) => 10,
            Error::ProviderFailed(_) => 11,
            Error::RandomFailed(_) => 12,
            Error::Internal(_) => 13,
        }
    }
}
