//! Empty on purpose: see this crate's Cargo.toml. Cellar's FIPS build never uses `aws-lc-sys`.
#![no_std]
