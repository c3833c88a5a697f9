//! Bytes → the runner's kernel loader: the goblin parse and every validation
//! of `boot::elf::parse`, then, for a kernel that passes, `boot::load` into a
//! fake guest RAM (an anonymous mapping, no KVM) with the start info, memory
//! map and command line. Nothing may panic, and the promises of the
//! validation must hold:
//!
//! - a kernel is accepted by `parse` exactly when `load` accepts it, with
//!   the same error otherwise;
//! - accepted segments lie inside RAM, outside the boot area and the legacy
//!   hole, pairwise disjoint, with the entry inside one segment's file data;
//! - after `load`, RAM holds each segment's bytes followed by zeros, and the
//!   boot area holds the start info, the memory map and the command line.
//!
//! Plain stable Rust: the libFuzzer wrapper (`../fuzz_targets/elf_loader.rs`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`) both include this
//! file and call [`run`]. Inputs are whole ELF files; `fuzz/run.sh` caps
//! them at 16 KiB.

use std::sync::{Mutex, OnceLock};

use vmdma::boot::elf::{self, KernelImage};
use vmdma::boot::pvh::{self, HVM_START_MAGIC, MEMMAP_ENTRY_SIZE};
use vmdma::boot::{self, BootError};
use vmdma::kvm::memory::GuestRam;
use vmdma::layout::{
    BOOT_AREA_END, BOOT_AREA_START, CMDLINE_ADDR, HIGH_RAM_START, LEGACY_HOLE_START, MEMMAP_ADDR,
    START_INFO_ADDR,
};

/// Size of the fake guest RAM: room for kernels below the legacy hole and
/// one MiB above it, small enough that loading stays cheap.
pub const RAM_SIZE: usize = 2 << 20;
/// The command line written into the boot area.
const CMDLINE: &str = "vmdma.mmio_scratch=0xd0000000,0x10000 suite=hostile";
/// MMIO ranges reported as reserved in the memory map.
const MMIO: &[(u64, u64)] = &[(0xD000_0000, 0x1_0000)];

/// The fake RAM, mapped once per process (loading overwrites what it needs).
fn ram() -> &'static Mutex<GuestRam> {
    static RAM: OnceLock<Mutex<GuestRam>> = OnceLock::new();
    RAM.get_or_init(|| Mutex::new(GuestRam::new(RAM_SIZE).expect("map the fake guest RAM")))
}

/// Parses and, if valid, loads `data`; panics if a promise is broken.
pub fn run(data: &[u8]) {
    let ram = ram().lock().unwrap_or_else(|e| e.into_inner());
    let size = ram.size();
    let parsed = elf::parse(data, size);
    let loaded = boot::load(&ram, data, CMDLINE, MMIO);
    match (parsed, loaded) {
        (Ok(image), Ok(entry)) => {
            check_image(&image, size);
            assert_eq!(entry.entry, image.entry);
            assert_eq!(u64::from(entry.start_info), START_INFO_ADDR);
            check_loaded(&ram, &image);
            check_boot_area(&ram);
        }
        (Err(e), Err(BootError::Elf(le))) => {
            assert_eq!(e, le, "parse and load disagree");
            // Every error renders as one line.
            assert!(!e.to_string().contains('\n'));
        }
        (Ok(_), Err(e)) => panic!("parse accepted a kernel that load refused: {e}"),
        (Err(e), Ok(_)) => panic!("load accepted a kernel that parse refused: {e}"),
        (Err(e), Err(le)) => panic!("parse failed with {e}, load with another error: {le}"),
    }
}

/// The validation's promises about an accepted kernel.
fn check_image(image: &KernelImage<'_>, ram: u64) {
    assert!(!image.segments.is_empty());
    let mut entry_inside = false;
    for (i, s) in image.segments.iter().enumerate() {
        let end = s.paddr.checked_add(s.mem_size).expect("no overflow");
        assert!(s.mem_size > 0 && end <= ram, "segment {i} outside RAM");
        assert!(s.data.len() as u64 <= s.mem_size);
        assert!(
            end <= BOOT_AREA_START || s.paddr >= BOOT_AREA_END,
            "segment {i} in the boot area"
        );
        assert!(
            end <= LEGACY_HOLE_START || s.paddr >= HIGH_RAM_START,
            "segment {i} in the legacy hole"
        );
        for o in &image.segments[i + 1..] {
            assert!(
                end <= o.paddr || o.paddr + o.mem_size <= s.paddr,
                "segments overlap"
            );
        }
        let e = u64::from(image.entry);
        entry_inside |= e >= s.paddr && e - s.paddr < s.data.len() as u64;
    }
    assert!(entry_inside, "entry outside the segments");
}

/// RAM holds every segment's file bytes, then zeros up to `p_memsz`.
fn check_loaded(ram: &GuestRam, image: &KernelImage<'_>) {
    let mut buf = vec![0u8; 64 << 10];
    for s in &image.segments {
        let mut at = 0usize;
        let size = usize::try_from(s.mem_size).expect("segment inside RAM");
        while at < size {
            let n = (size - at).min(buf.len());
            let chunk = &mut buf[..n];
            ram.read(s.paddr + at as u64, chunk)
                .expect("segment inside RAM");
            let file = s.data.get(at..).unwrap_or(&[]);
            let k = file.len().min(n);
            assert!(
                chunk[..k] == file[..k],
                "segment at {:#x}: RAM differs from the file bytes",
                s.paddr
            );
            assert!(
                chunk[k..].iter().all(|&b| b == 0),
                "segment at {:#x}: the tail past p_filesz is not zeroed",
                s.paddr
            );
            at += n;
        }
    }
}

/// The boot area: start info (magic, version, pointers), a sorted memory map
/// with RAM up to the RAM size, and the NUL-terminated command line.
fn check_boot_area(ram: &GuestRam) {
    let u32_at = |a: u64| {
        let mut b = [0u8; 4];
        ram.read(a, &mut b).expect("boot area in RAM");
        u32::from_le_bytes(b)
    };
    let u64_at = |a: u64| {
        let mut b = [0u8; 8];
        ram.read(a, &mut b).expect("boot area in RAM");
        u64::from_le_bytes(b)
    };
    assert_eq!(u32_at(START_INFO_ADDR), HVM_START_MAGIC);
    assert_eq!(u32_at(START_INFO_ADDR + 4), pvh::HVM_START_VERSION);
    assert_eq!(u64_at(START_INFO_ADDR + 24), CMDLINE_ADDR);
    assert_eq!(u64_at(START_INFO_ADDR + 40), MEMMAP_ADDR);
    let entries = u64::from(u32_at(START_INFO_ADDR + 48));
    let want = pvh::memory_map(ram.size(), MMIO);
    assert_eq!(entries, want.len() as u64);
    let mut last_end = 0;
    for (i, m) in want.iter().enumerate() {
        let at = MEMMAP_ADDR + i as u64 * MEMMAP_ENTRY_SIZE as u64;
        assert_eq!(u64_at(at), m.addr);
        assert_eq!(u64_at(at + 8), m.size);
        assert_eq!(u32_at(at + 16), m.kind as u32);
        assert!(m.addr >= last_end, "memory map entries overlap");
        last_end = m.addr + m.size;
    }
    let mut cmd = vec![0u8; CMDLINE.len() + 1];
    ram.read(CMDLINE_ADDR, &mut cmd).expect("boot area in RAM");
    assert_eq!(&cmd[..CMDLINE.len()], CMDLINE.as_bytes());
    assert_eq!(cmd[CMDLINE.len()], 0);
}
