//! Replays the committed fuzz corpora (`fuzz/corpus/TARGET/`) and crash
//! regressions (`fuzz/regressions/TARGET/`) through the fuzz targets' bodies
//! on the stable toolchain, so that nothing a campaign found can come back
//! unnoticed. The bodies are the same files the libFuzzer wrappers include
//! (`core/fuzz/targets/`, `runner/fuzz/targets/`); they panic on a broken
//! promise, which fails this test with the input's path.
//!
//! Every `[[bin]]` of the fuzz crates must have a replayer here, and every
//! corpus or regression directory must belong to one, so a new target
//! cannot skip the replay. See `fuzz/README.md`.

mod common;

#[path = "../runner/fuzz/targets/elf_loader.rs"]
mod elf_loader;
#[path = "../core/fuzz/targets/ide_ports.rs"]
mod ide_ports;
#[path = "../core/fuzz/targets/inflight.rs"]
mod inflight;
#[path = "../runner/fuzz/targets/qtest_lines.rs"]
mod qtest_lines;
#[path = "../runner/fuzz/targets/snapshot_file.rs"]
mod snapshot_file;
#[path = "../core/fuzz/targets/snapshot_restore.rs"]
mod snapshot_restore;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use common::elf_builder::{ElfBuilder, ExtraLoad, LOAD_ADDR, code};

/// A fuzz target's body.
type Body = fn(&[u8]);

/// Target name → the body its libFuzzer wrapper calls.
const TARGETS: &[(&str, Body)] = &[
    ("ide_ports", ide_ports::run),
    ("inflight", inflight::run),
    ("elf_loader", elf_loader::run),
    ("qtest_lines", qtest_lines::run),
    ("snapshot_restore", snapshot_restore::run),
    ("snapshot_file", snapshot_file::run),
];

/// The cargo-fuzz crates whose `[[bin]]`s are fuzz targets.
const FUZZ_CRATES: &[&str] = &["core/fuzz", "runner/fuzz"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("runner/cli/ is inside the repository")
        .to_path_buf()
}

/// The files of `dir`, sorted (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("read a corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Names of the subdirectories of `dir`.
fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.map(|e| e.expect("read fuzz/").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The `name = "..."` of every `[[bin]]` in a fuzz crate's manifest.
fn bins(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("read a fuzz crate manifest");
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(v) = line.strip_prefix("name") {
            let name = v
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            out.push(name.to_string());
        }
    }
    out
}

fn replayer(name: &str) -> Option<Body> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

#[test]
fn every_fuzz_target_has_a_replayer_and_a_corpus() {
    let root = root();
    let mut targets = Vec::new();
    for c in FUZZ_CRATES {
        targets.extend(bins(&root.join(c).join("Cargo.toml")));
    }
    assert!(targets.len() >= 2, "fuzz targets found: {targets:?}");
    for t in &targets {
        assert!(
            replayer(t).is_some(),
            "fuzz target {t} has no replayer in TARGETS"
        );
        assert!(
            !files(&root.join("fuzz/corpus").join(t)).is_empty(),
            "fuzz target {t} has no committed corpus in fuzz/corpus/{t} (run fuzz/run.sh)"
        );
    }
    for kind in ["corpus", "regressions"] {
        for d in subdirs(&root.join("fuzz").join(kind)) {
            assert!(
                targets.contains(&d),
                "fuzz/{kind}/{d} belongs to no fuzz target"
            );
        }
    }
}

#[test]
fn corpora_and_regressions_replay_cleanly() {
    let root = root();
    let mut replayed = 0usize;
    for (name, run) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for input in files(&root.join("fuzz").join(kind).join(name)) {
                let data = std::fs::read(&input).expect("read a fuzz input");
                if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                    panic!("{name}: {} fails again", input.display());
                }
                replayed += 1;
            }
        }
    }
    assert!(replayed > 0);
    eprintln!("replayed {replayed} fuzz inputs");
}

/// Seed inputs for the ELF loader: valid kernels in the shapes the loader
/// accepts and a few it must refuse. `fuzz/run.sh` writes them into an
/// empty corpus with `cargo test --test fuzz_corpus -- --ignored
/// write_elf_loader_seeds` (they are not fixtures: the campaign's
/// minimisation decides what stays).
#[test]
#[ignore = "writes seed files; run by fuzz/run.sh"]
fn write_elf_loader_seeds() {
    let dir = root().join("fuzz/corpus/elf_loader");
    std::fs::create_dir_all(&dir).unwrap();
    let hello = ElfBuilder::new(code::hello(b"hi\n", 0));
    let mut seeds = vec![("hello", hello.clone())];
    let mut b = hello.clone();
    b.bss = 0x2000;
    seeds.push(("bss", b));
    let mut b = hello.clone();
    b.note_desc_size = 4;
    seeds.push(("note4", b));
    let mut b = hello.clone();
    b.load_addr = 0x8000;
    b.pvh_entry = Some(0x8000);
    seeds.push(("low", b));
    let mut b = hello.clone();
    b.extra_loads.push(ExtraLoad {
        paddr: 0x9000,
        data: vec![0x90; 64],
        mem_size: 0x1000,
    });
    seeds.push(("two_loads", b));
    let mut b = hello.clone();
    b.extra_loads.push(ExtraLoad {
        paddr: LOAD_ADDR,
        data: Vec::new(),
        mem_size: 0x100,
    });
    seeds.push(("overlap", b));
    let mut b = hello.clone();
    b.pvh_entry = Some(LOAD_ADDR + 0x10_0000);
    seeds.push(("entry_outside", b));
    for (name, b) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), b.build()).unwrap();
    }
}
