//! `include/cellar.h` must equal a fresh cbindgen generation from `src/ffi`.
//! Regenerate with `make header` (which runs this test with CELLAR_UPDATE_HEADER=1).

use std::path::PathBuf;

#[test]
fn committed_header_is_fresh() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_src(root.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not parse the crate");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = root.join("include/cellar.h");
    if std::env::var_os("CELLAR_UPDATE_HEADER").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/cellar.h is stale: regenerate it with `make header` \
         (CELLAR_UPDATE_HEADER=1 cargo test --release --test header) and commit it"
    );
}
