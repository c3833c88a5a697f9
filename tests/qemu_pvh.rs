//! The PVH contract is shared with QEMU: a tiny kernel from the test ELF
//! generator boots both on `vmdma` and on `qemu-system-x86_64 -kernel`,
//! printing the same output and exiting through the same debug-exit port.
//! (QEMU exits with `(v << 1) | 1`.)

mod common;

use common::elf_builder::{ElfBuilder, code};
use common::{kvm_available, qemu_available, status, stderr, vmdma, write_file};
use vmdma_protocol::qemu_exit_status;

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_qemu)),
    ignore = "needs qemu-system-x86_64 on PATH (probed at build time; .ci/run installs it)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn tiny_pvh_kernel_boots_on_qemu_and_vmdma_alike() {
    if !kvm_available() || !qemu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = write_file(
        dir.path(),
        "k.elf",
        &ElfBuilder::new(code::hello(b"hello from pvh\n", 5)).build(),
    );
    let qemu = common::qemu_pc(120, "64M")
        .arg("-kernel")
        .arg(&k)
        .output()
        .expect("run qemu");
    let q_out = String::from_utf8_lossy(&qemu.stdout);
    assert_eq!(
        qemu.status.code(),
        Some(i32::from(qemu_exit_status(5))),
        "qemu stdout: {q_out} stderr: {}",
        String::from_utf8_lossy(&qemu.stderr)
    );
    assert!(q_out.contains("hello from pvh\n"), "{q_out}");

    let v = vmdma(&["run", "--kernel", k.to_str().unwrap()]);
    assert_eq!(status(&v), 5, "{}", stderr(&v));
    assert_eq!(v.stdout, b"hello from pvh\n");
}
