//! Cross-check against the reference implementation: the same guest ELF
//! (written out by `vmdma guest-elf`) runs its conformance suite on
//! `qemu-system-x86_64 -accel kvm -M pc` with the image as a raw IDE disk,
//! and must give the same per-test results as on vmdma (except the tests
//! that need vmdma's MMIO scratch region, which QEMU lacks; see docs/qemu-differences.md).
//! The QEMU-written image is checked against the guest's manifest too.

mod common;

use common::suite::{Outcome, check_image, parse_run};
use common::{
    ALWAYS_SKIPPED, SUITE_IMAGE_BYTES, TIMING_DEPENDENT, VMDMA_ONLY, kvm_available, qemu_available,
    sparse_image, status, stderr, vmdma,
};
use vmdma_protocol::{GUEST_EXIT_PASS, qemu_exit_status};

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_qemu)),
    ignore = "needs qemu-system-x86_64 on PATH (probed at build time; .ci/run installs it)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn same_guest_same_results_on_qemu_and_vmdma() {
    if !kvm_available() || !qemu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("guest.elf");
    let w = vmdma(&["guest-elf", elf.to_str().unwrap()]);
    assert_eq!(status(&w), 0, "{}", stderr(&w));

    // QEMU, the reference.
    let qimg = sparse_image(dir.path(), "qemu.img", SUITE_IMAGE_BYTES);
    let qmanifest = dir.path().join("qemu-manifest.txt");
    let q = common::qemu_pc(600, "128M")
        .arg("-drive")
        .arg(common::qemu_ide_drive(&qimg))
        .arg("-debugcon")
        .arg(format!("file:{}", qmanifest.display()))
        .arg("-kernel")
        .arg(&elf)
        .args(["-append", "suite=conformance"])
        .output()
        .expect("run qemu");
    let qtext = String::from_utf8_lossy(&q.stdout);
    let qrun = parse_run(
        &qtext,
        &std::fs::read_to_string(&qmanifest).unwrap_or_default(),
    );
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
    assert!(
        !qrun.manifest.is_empty(),
        "QEMU's debugcon recorded the manifest"
    );
    check_image(&qimg, &qrun.manifest);

    // vmdma, the same ELF.
    let vimg = sparse_image(dir.path(), "vmdma.img", SUITE_IMAGE_BYTES);
    let vmanifest = dir.path().join("vmdma-manifest.txt");
    let v = vmdma(&[
        "run",
        "--kernel",
        elf.to_str().unwrap(),
        "--disk",
        vimg.to_str().unwrap(),
        "--manifest",
        vmanifest.to_str().unwrap(),
        "--timeout",
        "900",
    ]);
    let vtext = String::from_utf8_lossy(&v.stdout);
    let vrun = parse_run(&vtext, &std::fs::read_to_string(&vmanifest).unwrap());
    assert_eq!(
        status(&v),
        0,
        "vmdma stdout:\n{vtext}\nstderr:\n{}",
        stderr(&v)
    );

    let qnames: Vec<&str> = qrun.tests.iter().map(|(n, _)| n.as_str()).collect();
    let vnames: Vec<&str> = vrun.tests.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(qnames, vnames, "both platforms run the same named tests");
    assert!(qnames.len() >= 35);
    for ((name, qo), (_, vo)) in qrun.tests.iter().zip(vrun.tests.iter()) {
        if VMDMA_ONLY.contains(&name.as_str()) {
            assert!(matches!(qo, Outcome::Skipped(_)), "{name} on QEMU: {qo:?}");
            assert_eq!(vo, &Outcome::Ok, "{name} on vmdma");
        } else if TIMING_DEPENDENT.contains(&name.as_str()) {
            // Ok or skipped on either (never failed: checked above).
        } else if ALWAYS_SKIPPED.contains(&name.as_str()) {
            assert!(
                matches!((qo, vo), (Outcome::Skipped(_), Outcome::Skipped(_))),
                "{name}"
            );
        } else {
            assert_eq!(qo, &Outcome::Ok, "{name} on QEMU");
            assert_eq!(vo, &Outcome::Ok, "{name} on vmdma");
        }
    }
    check_image(&vimg, &vrun.manifest);
}
