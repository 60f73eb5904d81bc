#![no_main]
// Inputs that would reach PBKDF2 (>= 100 000 iterations) are skipped here: see fuzz/src/lib.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cellar_fuzz::password_import(data, false);
});
