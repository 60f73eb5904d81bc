//! Key providers: stand-ins for a tenant key held outside the process. They all implement one
//! trait, [`KeyProvider`] (defined with the keyring in `src/keyring.rs`, re-exported here): host
//! C callbacks (`src/ffi/keyring.rs`), the built-in PKCS#11 provider ([`pkcs11`]) and the
//! built-in KMIP provider ([`kmip`]).

pub mod kmip;
pub mod pkcs11;

pub use crate::keyring::{KeyProvider, ProviderError};
