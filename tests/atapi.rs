//! The ATAPI CD-ROM end to end: `vmdma run --cdrom` refuses an image that
//! is not whole 2048-byte blocks, and the bundled guest's `suite=atapi`
//! passes on vmdma (`--cdrom`) and on QEMU (`-drive if=ide,index=1,
//! media=cdrom`) with the same test image, with the same per-test results.

mod common;

use std::path::Path;

use common::suite::{Outcome, parse_run};
use common::{
    assert_one_line_error, cd_image, kvm_available, qemu_available, sparse_image, status, stderr,
    vmdma, write_file,
};
use vmdma_protocol::{EXIT_BAD_INPUT, GUEST_EXIT_PASS, qemu_exit_status};

const DISK_BYTES: u64 = 64 << 20;

#[test]
fn a_cdrom_image_must_be_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let odd = write_file(dir.path(), "odd.iso", &[0u8; 2048 + 512]);
    let out = vmdma(&["run", "--cdrom", odd.to_str().unwrap()]);
    assert_one_line_error(&out, i32::from(EXIT_BAD_INPUT), "not a multiple of 2048");
    let missing = dir.path().join("missing.iso");
    let out = vmdma(&["run", "--cdrom", missing.to_str().unwrap()]);
    assert_one_line_error(&out, i32::from(EXIT_BAD_INPUT), "cdrom");
}

/// Runs `suite=atapi` on vmdma; returns the per-test outcomes.
fn on_vmdma(dir: &Path, cd: &Path) -> Vec<(String, Outcome)> {
    let disk = sparse_image(dir, "vmdma.img", DISK_BYTES);
    let out = vmdma(&[
        "run",
        "--disk",
        disk.to_str().unwrap(),
        "--cdrom",
        cd.to_str().unwrap(),
        "--cmdline",
        "suite=atapi",
        "--timeout",
        "300",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let run = parse_run(&text, "");
    assert!(
        run.failures().is_empty(),
        "vmdma: {:#?}\n{text}",
        run.failures()
    );
    assert_eq!(
        status(&out),
        0,
        "vmdma stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    run.tests
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn guest_atapi_suite_passes_on_vmdma() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cd = cd_image(dir.path());
    let tests = on_vmdma(dir.path(), &cd);
    assert!(tests.len() >= 12, "{tests:?}");
    for (name, o) in &tests {
        assert_eq!(o, &Outcome::Ok, "{name}");
    }
}

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_qemu)),
    ignore = "needs qemu-system-x86_64 on PATH (probed at build time; .ci/run installs it)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn guest_atapi_suite_same_results_on_qemu() {
    if !kvm_available() || !qemu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("guest.elf");
    let w = vmdma(&["guest-elf", elf.to_str().unwrap()]);
    assert_eq!(status(&w), 0, "{}", stderr(&w));
    let cd = cd_image(dir.path());
    let disk = sparse_image(dir.path(), "qemu.img", DISK_BYTES);
    let q = common::qemu_pc(300, "128M")
        .arg("-drive")
        .arg(common::qemu_ide_drive(&disk))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=ide,index=1,media=cdrom",
            cd.display()
        ))
        .arg("-kernel")
        .arg(&elf)
        .args(["-append", "suite=atapi"])
        .output()
        .expect("run qemu");
    let qtext = String::from_utf8_lossy(&q.stdout);
    let qrun = parse_run(&qtext, "");
    assert!(
        qrun.failures().is_empty(),
        "QEMU: {:#?}\n{qtext}",
        qrun.failures()
    );
    assert_eq!(
        q.status.code(),
        Some(i32::from(qemu_exit_status(GUEST_EXIT_PASS))),
        "QEMU stdout:\n{qtext}\nstderr:\n{}",
        String::from_utf8_lossy(&q.stderr)
    );
    let vtests = on_vmdma(dir.path(), &cd);
    assert_eq!(qrun.tests, vtests, "the same tests with the same outcomes");
    assert!(vtests.iter().all(|(_, o)| o == &Outcome::Ok));
}
