#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cellar_fuzz::kmip_ttlv(data);
});
