//! A real cloud-init seed disk: a NoCloud ISO (volume `cidata`, files
//! `user-data` and `meta-data`) built with `genisoimage`, attached with
//! `vmdma run --cdrom`. The bundled guest (`suite=iso`) finds the ISO 9660
//! primary volume descriptor at block 16, checks the label, reads the root
//! directory and its first file by DMA and prints the file; the test
//! compares it with the file it put in the ISO.

mod common;

use std::process::Command;

use common::{kvm_available, sparse_image, status, stderr, vmdma, write_file};

const META_DATA: &str = "instance-id: vmdma-seed-test\nlocal-hostname: vmdma-guest\n";
const USER_DATA: &str = "#cloud-config\nhostname: vmdma-guest\nruncmd:\n  - echo seeded\n";

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_genisoimage)),
    ignore = "needs genisoimage on PATH (probed at build time; .ci/run installs it)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn the_guest_reads_a_nocloud_seed_iso() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "meta-data", META_DATA.as_bytes());
    write_file(dir.path(), "user-data", USER_DATA.as_bytes());
    let iso = dir.path().join("seed.iso");
    let g = Command::new("genisoimage")
        .current_dir(dir.path())
        .args(["-quiet", "-output"])
        .arg(&iso)
        .args([
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            "user-data",
            "meta-data",
        ])
        .output()
        .expect("genisoimage runs (the build found it, or CI=true requires it)");
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let disk = sparse_image(dir.path(), "disk.img", 64 << 20);
    let out = vmdma(&[
        "run",
        "--disk",
        disk.to_str().unwrap(),
        "--cdrom",
        iso.to_str().unwrap(),
        "--cmdline",
        "suite=iso",
        "--timeout",
        "300",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        status(&out),
        0,
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    assert!(text.contains("test iso_nocloud_seed ... ok"), "{text}");
    let file = text
        .lines()
        .find_map(|l| l.strip_prefix("iso-file "))
        .expect("the guest names the file");
    let (name, size) = file.rsplit_once(' ').unwrap();
    // ISO 9660 names are upper case 8.3 (`META_DAT.;1`); sorted, meta-data
    // comes first.
    let want = if name.to_ascii_uppercase().starts_with("META") {
        META_DATA
    } else {
        USER_DATA
    };
    assert!(
        name.to_ascii_uppercase().starts_with("META"),
        "first file {name}"
    );
    assert_eq!(size.parse::<usize>().unwrap(), want.len(), "{file}");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix("iso-data "))
        .expect("the guest prints the data");
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes, want.as_bytes(), "the file's bytes, read by DMA");
}
