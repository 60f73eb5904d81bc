#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cellar_fuzz::cell_key_version(data);
});
