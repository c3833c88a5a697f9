//! Decides, for the integration tests (`tests/`, run by this package), what
//! this host can do (`../probes.rs`): a test whose precondition is missing
//! is ignored with the reason, which libtest shows.

#[path = "../probes.rs"]
mod probes;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../probes.rs");
    probes::test_preconditions(&[
        "vmdma_kvm",
        "vmdma_fuse",
        "vmdma_qemu",
        "vmdma_qemu_7_2",
        "vmdma_ide_test",
        "vmdma_tmpfs",
        "vmdma_odirect",
        "vmdma_qemu_qmp",
        "vmdma_socat",
        "vmdma_genisoimage",
    ]);
}
