//! Points the linker at `linker/guest.ld` (relative to this manifest, so the
//! build works from any cwd and with any `CARGO_TARGET_DIR`).

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let script = manifest.join("..").join("linker").join("guest.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    // Only the guest binary is linked with the script; the host-side unit
    // tests of the library link normally.
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}
