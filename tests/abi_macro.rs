//! Issue 20 item 9: the header's hex CELLAR_ABI_VERSION (written by cbindgen.toml's
//! `after_includes`, since cbindgen prints constants in decimal) equals the Rust constant, and
//! CELLAR_ABI_COMPATIBLE builds without warnings (-Wall -Wextra -Werror, which includes
//! -Wtype-limits) and answers the documented rule.

use std::process::Command;

#[test]
fn header_abi_version_is_the_rust_constant_in_hex() {
    let root = env!("CARGO_MANIFEST_DIR");
    let h = std::fs::read_to_string(format!("{root}/include/cellar.h")).unwrap();
    let want = format!("#define CELLAR_ABI_VERSION 0x{:08x}u", cellar::ffi::CELLAR_ABI_VERSION);
    assert!(h.contains(&want), "include/cellar.h lacks `{want}`: update cbindgen.toml's after_includes");
}

#[test]
fn abi_compatible_macro_compiles_clean_and_follows_the_rule() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::env::temp_dir().join(format!("cellar-abi-macro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("t.c");
    std::fs::write(
        &src,
        r#"#include "cellar.h"
#include <stdio.h>
int main(void) {
    uint32_t v = CELLAR_ABI_VERSION;
    int ok = CELLAR_ABI_COMPATIBLE(v) && CELLAR_ABI_COMPATIBLE(v + 1u) && CELLAR_ABI_COMPATIBLE(v | 0xFFFFu)
        && !CELLAR_ABI_COMPATIBLE(v + 0x10000u) && !CELLAR_ABI_COMPATIBLE(0u);
    if ((v & 0xFFFFu) > 0u) ok = ok && !CELLAR_ABI_COMPATIBLE(v - 1u);
    printf("%d\n", ok);
    return ok ? 0 : 1;
}
"#,
    )
    .unwrap();
    let exe = dir.join("t");
    for (cc, extra) in [("cc", vec!["-std=c99"]), ("c++", vec!["-x", "c++", "-std=c++17"])] {
        let out = Command::new(cc)
            .args(&extra)
            .args(["-Wall", "-Wextra", "-Wpedantic", "-Wtype-limits", "-Werror"])
            .arg(format!("-I{root}/include"))
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output()
            .expect("a C compiler");
        assert!(out.status.success(), "{cc}: {}", String::from_utf8_lossy(&out.stderr));
        let run = Command::new(&exe).output().unwrap();
        assert!(run.status.success(), "{cc}: CELLAR_ABI_COMPATIBLE broke its rule");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
