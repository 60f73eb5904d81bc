// The shared object's SONAME carries the ABI major, so a host linked against major 1 never
// loads a future incompatible libcellar.
fn main() {
    let major = 1;
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcellar.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
    check_module_build_env();
}

/// The `AWS_LC_FIPS_SYS_*` values `.cargo/config.toml` pins (with `force = true`).
const PINNED: &[(&str, &str)] = &[
    ("AWS_LC_FIPS_SYS_USE_SYSTEM", "0"),
    ("AWS_LC_FIPS_SYS_STATIC", "1"),
    ("AWS_LC_FIPS_SYS_NO_ASM", "0"),
    ("AWS_LC_FIPS_SYS_NO_PREFIX", "0"),
    ("AWS_LC_FIPS_SYS_PREGENERATING_BINDINGS", "0"),
    ("AWS_LC_FIPS_SYS_EXTERNAL_BINDGEN", "0"),
    ("AWS_LC_FIPS_SYS_CPU_JITTER_ENTROPY", "0"),
    ("AWS_LC_FIPS_SYS_NO_JITTER_ENTROPY", "0"),
];

/// Every other variable the aws-lc-fips-sys 0.13.11 and 0.14.4 build scripts read under their
/// own prefix (each also as `<name>_<target triple>`), listed so a change re-runs this check.
const KNOWN: &[&str] = &[
    "SYSTEM_DIR", "SYSTEM_BINDINGS", "SYSTEM_SKIP_VERSION_CHECK", "INCLUDES", "CC", "CXX",
    "CFLAGS", "TARGET_CC", "HOST_CC", "TARGET_CXX", "HOST_CXX", "TARGET_CFLAGS", "HOST_CFLAGS",
    "C_STD", "CMAKE_BUILDER", "EFFECTIVE_TARGET", "LINK_WHOLE_ARCHIVE", "NO_PREGENERATED_SRC",
    "PREBUILT_NASM", "SANITIZER", "SMALL",
];

/// Refuses a build whose environment could make aws-lc-fips-sys link something other than the
/// module built from its bundled source with the pinned settings (docs/FIPS.md "Build pinning"):
/// a pinned variable with another value (only possible if `.cargo/config.toml` was bypassed),
/// any other `AWS_LC_FIPS_SYS_*` variable (a system install, extra include paths, another
/// compiler or target, a sanitizer build, ...), or a CMake toolchain file (aws-lc-fips-sys 0.13
/// then skips its own configuration).
fn check_module_build_env() {
    let target = std::env::var("TARGET").unwrap_or_default().replace('-', "_");
    for (name, _) in PINNED {
        println!("cargo:rerun-if-env-changed={name}");
        println!("cargo:rerun-if-env-changed={name}_{target}");
    }
    for suffix in KNOWN {
        println!("cargo:rerun-if-env-changed=AWS_LC_FIPS_SYS_{suffix}");
        println!("cargo:rerun-if-env-changed=AWS_LC_FIPS_SYS_{suffix}_{target}");
    }
    println!("cargo:rerun-if-env-changed=CMAKE_TOOLCHAIN_FILE");
    println!("cargo:rerun-if-env-changed=CMAKE_TOOLCHAIN_FILE_{target}");

    let mut problems = Vec::new();
    for (name, value) in std::env::vars() {
        if let Some(&(_, pinned)) = PINNED.iter().find(|(n, _)| *n == name) {
            if value != pinned {
                problems.push(format!("{name}={value} (pinned to {pinned} in .cargo/config.toml)"));
            }
        } else if name.starts_with("AWS_LC_FIPS_SYS_") {
            problems.push(format!("{name} is set (not allowed: bundled source, pinned settings only)"));
        } else if name.starts_with("CMAKE_TOOLCHAIN_FILE") {
            problems.push(format!("{name} is set (the module is built without a toolchain file)"));
        }
    }
    for (name, pinned) in PINNED {
        if std::env::var_os(name).is_none() {
            problems.push(format!("{name} is unset (expected {pinned}: run cargo inside the repository so .cargo/config.toml applies)"));
        }
    }
    if !problems.is_empty() {
        panic!(
            "cellar: refusing to build the AWS-LC FIPS module with this environment:\n  {}\n\
             See docs/FIPS.md, \"Build pinning\".",
            problems.join("\n  ")
        );
    }
}
