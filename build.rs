// The shared object's SONAME carries the ABI major, so a host linked against major 1 never
// loads a future incompatible libcellar.
fn main() {
    let major = 1;
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcellar.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
}
