//! Every bad input gives one `vmdma: error: ...` line and its status, and
//! no VM runs (these tests need no KVM: inputs are validated first).

mod common;

use std::fs::File;

use common::elf_builder::{ElfBuilder, ExtraLoad, LOAD_ADDR, code};
use common::{assert_one_line_error, make_fifo, status, vmdma, vmdma_guarded, write_file};

fn kernel(dir: &std::path::Path, b: &ElfBuilder) -> String {
    write_file(dir, "k.elf", &b.build()).display().to_string()
}

fn good() -> ElfBuilder {
    ElfBuilder::new(code::hello(b"hi", 0))
}

#[test]
fn garbage_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let k = write_file(
        dir.path(),
        "k.elf",
        b"this is not an ELF file at all, just text........................",
    );
    let o = vmdma(&["run", "--kernel", k.to_str().unwrap()]);
    assert_one_line_error(&o, 65, "not an ELF file");
}

#[test]
fn truncated_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = good().build();
    f.truncate(f.len() - 3);
    let k = write_file(dir.path(), "k.elf", &f);
    let o = vmdma(&["run", "--kernel", k.to_str().unwrap()]);
    assert_one_line_error(&o, 65, "outside the file");
}

#[test]
fn wrong_machine() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = good();
    b.machine = 183; // aarch64
    let o = vmdma(&["run", "--kernel", &kernel(dir.path(), &b)]);
    assert_one_line_error(&o, 65, "not an x86-64 ELF");
}

#[test]
fn missing_pvh_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = good();
    b.pvh_entry = None;
    let o = vmdma(&["run", "--kernel", &kernel(dir.path(), &b)]);
    assert_one_line_error(&o, 65, "no PVH entry note");
}

#[test]
fn segment_outside_ram() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = good();
    b.load_addr = 32 << 20;
    b.pvh_entry = Some(32 << 20);
    let o = vmdma(&[
        "run",
        "--kernel",
        &kernel(dir.path(), &b),
        "--memory",
        "16M",
    ]);
    assert_one_line_error(&o, 65, "outside guest RAM");
}

/// Two PT_LOAD segments over the same memory: loading the second (here its
/// zeroed tail) would wipe the first one's code. Before this check such a
/// kernel booted and died later in a KVM emulation failure.
#[test]
fn overlapping_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = good();
    b.extra_loads.push(ExtraLoad {
        paddr: LOAD_ADDR,
        data: Vec::new(),
        mem_size: 0x1000,
    });
    let o = vmdma(&["run", "--kernel", &kernel(dir.path(), &b)]);
    assert_one_line_error(&o, 65, "segments 0 and 1 overlap in memory");
}

#[test]
fn entry_outside_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = good();
    b.pvh_entry = Some(LOAD_ADDR + 0x8000);
    let o = vmdma(&["run", "--kernel", &kernel(dir.path(), &b)]);
    assert_one_line_error(&o, 65, "not inside a loaded segment");
}

#[test]
fn missing_kernel_file() {
    let o = vmdma(&["run", "--kernel", "/nonexistent/k.elf"]);
    assert_one_line_error(&o, 65, "/nonexistent/k.elf");
}

#[test]
fn kernel_from_a_device_is_refused() {
    // Size 0 by metadata, endless data when read.
    let o = vmdma_guarded(&["run", "--kernel", "/dev/zero"]);
    assert_one_line_error(&o, 65, "not a regular file (a character device)");
}

#[test]
fn kernel_from_a_fifo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("k.fifo");
    make_fifo(&fifo);
    let o = vmdma_guarded(&["run", "--kernel", fifo.to_str().unwrap()]);
    assert_one_line_error(&o, 65, "not a regular file (a FIFO)");
}

#[test]
fn disk_from_a_fifo_or_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = kernel(dir.path(), &good());
    let fifo = dir.path().join("d.fifo");
    make_fifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for (spec, what) in [
        (format!("{fifo},readonly"), "a FIFO"),
        (fifo.to_string(), "a FIFO"),
        ("/dev/zero,readonly".to_string(), "a character device"),
    ] {
        let o = vmdma_guarded(&["run", "--kernel", &k, "--disk", &spec]);
        assert_one_line_error(&o, 65, &format!("not a regular file ({what})"));
    }
}

#[test]
fn disk_not_a_multiple_of_512() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_file(dir.path(), "d.img", &[0u8; 1000]);
    let o = vmdma(&[
        "run",
        "--kernel",
        &kernel(dir.path(), &good()),
        "--disk",
        img.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 65, "not a multiple of 512");
}

#[test]
fn empty_disk() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_file(dir.path(), "d.img", &[]);
    let o = vmdma(&[
        "run",
        "--kernel",
        &kernel(dir.path(), &good()),
        "--disk",
        img.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 65, "empty");
}

#[test]
fn missing_disk_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = vmdma(&[
        "run",
        "--kernel",
        &kernel(dir.path(), &good()),
        "--disk",
        "/nonexistent/d.img",
    ]);
    assert_one_line_error(&o, 65, "/nonexistent/d.img");
}

#[test]
fn locked_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_file(dir.path(), "d.img", &[0u8; 4096]);
    let k = kernel(dir.path(), &good());
    let holder = File::open(&img).unwrap();
    holder.lock().unwrap(); // exclusive, as a read-write vmdma would hold it
    let o = vmdma(&["run", "--kernel", &k, "--disk", img.to_str().unwrap()]);
    assert_one_line_error(&o, 65, "locked");
    let spec = format!("{},readonly", img.display());
    let o = vmdma(&["run", "--kernel", &k, "--disk", &spec]);
    assert_one_line_error(&o, 65, "locked");
    drop(holder);

    let reader = File::open(&img).unwrap();
    reader.lock_shared().unwrap(); // as a read-only vmdma would hold it
    let o = vmdma(&["run", "--kernel", &k, "--disk", img.to_str().unwrap()]);
    assert_one_line_error(&o, 65, "locked");
}

#[test]
fn usage_errors() {
    assert_one_line_error(&vmdma(&["--bogus"]), 64, "--bogus");
    assert_one_line_error(&vmdma(&["run", "--memory", "1M"]), 64, "minimum");
    assert_one_line_error(&vmdma(&["run", "--memory", "4G"]), 64, "maximum");
    assert_one_line_error(&vmdma(&["run", "--memory", "lots"]), 64, "not a size");
    assert_one_line_error(&vmdma(&["run", "--timeout", "0"]), 64, "more than 0");
    // Would overflow a deadline; a year is the most accepted.
    assert_one_line_error(&vmdma(&["run", "--timeout", "1e19"]), 64, "too large");
    // Positive, but rounds to a zero duration.
    assert_one_line_error(
        &vmdma(&["run", "--timeout", "1e-300"]),
        64,
        "shorter than 1 ns",
    );
    let long = "x".repeat(5000);
    let dir = tempfile::tempdir().unwrap();
    let o = vmdma(&[
        "run",
        "--kernel",
        &kernel(dir.path(), &good()),
        "--cmdline",
        &long,
    ]);
    assert_one_line_error(&o, 64, "command line is");
}

#[test]
fn help_and_version_succeed() {
    let o = vmdma(&["--help"]);
    assert_eq!(status(&o), 0);
    let help = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--kernel",
        "--disk",
        "--memory",
        "--cmdline",
        "--timeout",
        "--stats",
        "guest-elf",
    ] {
        assert!(help.contains(opt), "help lacks {opt}: {help}");
    }
    let o = vmdma(&["run", "--help"]);
    assert_eq!(status(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("readonly"));
    let o = vmdma(&["--version"]);
    assert_eq!(status(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("vmdma "));
}

#[test]
fn guest_elf_writes_the_bundled_guest_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("guest.elf");
    let o = vmdma(&["guest-elf", out.to_str().unwrap()]);
    let guest_sources =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/Cargo.toml");
    if guest_sources.exists() {
        assert_eq!(status(&o), 0, "{}", common::stderr(&o));
        let elf = std::fs::read(&out).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
    } else {
        assert_one_line_error(&o, 70, "without the bundled guest");
        assert!(!out.exists());
    }
    let o = vmdma(&["guest-elf", "/nonexistent/dir/guest.elf"]);
    let why = if guest_sources.exists() {
        "/nonexistent/dir/guest.elf"
    } else {
        "without the bundled guest"
    };
    assert_one_line_error(&o, 70, why);
}

/// Malformed `--disk` suboptions are usage errors naming the suboption,
/// not file names (the image named before them exists).
#[test]
fn disk_suboptions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let img = common::sparse_image(dir.path(), "d.img", 1 << 20);
    let k = kernel(dir.path(), &good());
    for (opt, needle) in [
        ("unknown=1", "unknown --disk option 'unknown=1'"),
        ("aio=threads", "aio=threads"),
        ("cache=unsafe", "cache=unsafe"),
        ("aio=sync,aio=sync", "'aio' given twice"),
    ] {
        let spec = format!("{},{opt}", img.display());
        let o = vmdma(&["run", "--kernel", &k, "--disk", &spec]);
        assert_one_line_error(&o, 64, needle);
    }
}
