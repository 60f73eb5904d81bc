//! Empty on purpose: see this crate's Cargo.toml. Cellar's FIPS builds never use `aws-lc-sys`.
#![no_std]
