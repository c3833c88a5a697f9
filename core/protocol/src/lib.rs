//! The contract between the bundled test guest, the `vmdma` runner and the
//! host-side tests: port numbers, exit values, command-line keys and the
//! sector stamp format. Defined once here so that all three agree.
//!
//! Nothing here touches memory; it is plain data and pure functions. It is
//! its own crate, beside `vmdma-core` rather than inside it: the guest, the
//! runner and the tests depend on the contract, not on the device code.
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

/// The `isa-debug-exit` port (QEMU: `-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
///
/// A guest write of value `v` ends the VM. QEMU exits with status
/// `(v << 1) | 1`; vmdma exits with status [`runner_exit_status`]`(v)`.
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

/// Exit value the guest writes when every test passed.
pub const GUEST_EXIT_PASS: u32 = 0;
/// Exit value the guest writes when at least one test failed.
pub const GUEST_EXIT_FAIL: u32 = 1;
/// Exit value the guest writes after a CPU exception or a guest panic.
pub const GUEST_EXIT_CRASH: u32 = 3;

/// vmdma's process exit status for a guest debug-exit write of `v`:
/// `v` itself for `v <= 63`, 63 for anything larger (so that guest values
/// never collide with the runner's own statuses, which are 64 and above).
pub const fn runner_exit_status(v: u32) -> u8 {
    if v <= 63 { (v & 0x3F) as u8 } else { 63 }
}

/// QEMU's process exit status for a debug-exit write of `v` (truncated to a
/// byte as the shell sees it).
pub const fn qemu_exit_status(v: u32) -> u8 {
    (((v << 1) | 1) & 0xFF) as u8
}

/// Runner exit status: command-line usage error (sysexits `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// Runner exit status: a user-supplied file (kernel ELF, disk image) is invalid.
pub const EXIT_BAD_INPUT: u8 = 65;
/// Runner exit status: the VMM itself failed (KVM error, I/O error, internal error).
pub const EXIT_VMM_ERROR: u8 = 70;
/// Runner exit status: the guest shut down, triple-faulted, or did something
/// KVM cannot carry out (a guest fault: an instruction KVM cannot emulate, a
/// fault while an event is delivered), without using the debug-exit port.
pub const EXIT_GUEST_SHUTDOWN: u8 = 71;
/// Runner exit status: `--timeout` expired (the same value as coreutils `timeout`).
pub const EXIT_TIMEOUT: u8 = 124;

/// Command-line key with which the vmdma runner announces an MMIO region that
/// behaves like RAM (every access is an MMIO exit, so device DMA to it goes
/// through the bounce buffer). Value: `BASE,LEN` in hex with `0x` prefix,
/// e.g. `vmdma.mmio_scratch=0xd0000000,0x10000`. QEMU has no such region;
/// the guest skips the bounce tests when the key is absent.
pub const CMDLINE_MMIO_SCRATCH: &str = "vmdma.mmio_scratch";

/// Guest-physical base of the MMIO scratch region the runner provides.
pub const MMIO_SCRATCH_BASE: u64 = 0xD000_0000;
/// Size of the MMIO scratch region the runner provides.
pub const MMIO_SCRATCH_LEN: u64 = 0x1_0000;

/// Sector size used by the stamp format (and by the ATA disk).
pub const STAMP_SECTOR: usize = 512;

/// Magic in bytes 12..16 of every sector the guest writes.
pub const STAMP_MAGIC: [u8; 4] = *b"VDMA";

/// The byte at `offset` (0..512) of the sector that the test guest writes at
/// `lba` with pattern `pattern`.
///
/// Layout: bytes 0..8 = `lba` (LE), 8..12 = `pattern` (LE), 12..16 =
/// [`STAMP_MAGIC`], and body byte `j` (16..512) = `j as u8 ^ pattern as u8`.
/// The body depends only on the pattern, so a guest fills one template per
/// pattern and stamps the first 16 bytes of each sector.
#[expect(
    clippy::cast_possible_truncation,
    reason = "byte extraction: every value is masked to 8 bits first"
)]
pub const fn stamp_byte(lba: u64, pattern: u32, offset: usize) -> u8 {
    match offset {
        0..=7 => ((lba >> (8 * offset)) & 0xFF) as u8,
        8..=11 => ((pattern >> (8 * (offset - 8))) & 0xFF) as u8,
        12..=15 => ((u32::from_le_bytes(STAMP_MAGIC) >> (8 * (offset - 12))) & 0xFF) as u8,
        _ => ((offset & 0xFF) as u8) ^ ((pattern & 0xFF) as u8),
    }
}

/// Fills `out` with the sector [`stamp_byte`] describes.
pub fn stamp_sector(lba: u64, pattern: u32, out: &mut [u8; STAMP_SECTOR]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = stamp_byte(lba, pattern, i);
    }
}

/// The CD-ROM image the `suite=atapi` tests expect on device 1: this many
/// 2048-byte blocks, 512-byte sector `s` holding [`stamp_sector`]`(s,
/// CD_PATTERN)`.
pub const CD_TEST_BLOCKS: u64 = 64;
/// The stamp pattern of the `suite=atapi` CD-ROM image.
pub const CD_PATTERN: u32 = 0xC0D1_5C00;

/// Prefix of the manifest lines with which the guest announces every write
/// it makes to the disk, in order (decimal numbers). The host replays them
/// to compute the expected image:
///
/// - `vmdma-manifest: write LBA COUNT PATTERN`: sector `LBA + i` holds
///   [`stamp_sector`]`(LBA + i, PATTERN)` for `i < COUNT`;
/// - `vmdma-manifest: repeat LBA COUNT PATTERN FROM PERIOD`: sector
///   `LBA + i` holds `stamp_sector(FROM + i % PERIOD, PATTERN)` (one
///   buffer of `PERIOD` sectors written again and again, as the sequential
///   write benchmark does);
/// - `vmdma-manifest: random BASE SPAN SECTORS COUNT SEED PATTERN FROM`:
///   for each of the `COUNT` LBAs `l` of [`BenchLbas::new`]`(SEED, BASE,
///   SPAN, SECTORS)`, in order, sector `l + j` holds `stamp_sector(FROM + j,
///   PATTERN)` for `j < SECTORS` (the random write benchmark);
/// - `vmdma-manifest: trim LBA COUNT`: the sectors may read as zeros or
///   keep their content.
///
/// The lines travel on [`MANIFEST_PORT`], not on the console.
pub const MANIFEST_PREFIX: &str = "vmdma-manifest:";

/// The debug-console port that carries the manifest lines: QEMU's
/// `isa-debugcon` at its default address (`-debugcon file:PATH`), vmdma's
/// `--manifest PATH`. The guest writes each line with one `rep outsb`.
pub const MANIFEST_PORT: u16 = 0xE9;

/// What a byte read of [`MANIFEST_PORT`] returns when a listener records
/// the manifest (the isa-debugcon read-back value). Any other value (an
/// unclaimed port reads 0xFF) means nobody listens: the guest then sends no
/// manifest at all.
pub const MANIFEST_PORT_READBACK: u8 = 0xE9;

/// The PC's POST-code port. A byte written here marks a point in the
/// guest's progress: vmdma records its exit counters at every mark
/// (`--stats-json`, "marks"), so the host can count exactly the exits
/// between two marks. QEMU's `pc` machine accepts and ignores the writes.
pub const POST_CODE_PORT: u16 = 0x80;

/// Mark written right before a benchmark's timed loop.
pub const MARK_BENCH_START: u8 = 0xB1;
/// Mark written right after a benchmark's timed loop.
pub const MARK_BENCH_END: u8 = 0xB2;

/// Mark before the `rdtsc` section of `bench=calibrate` (every section
/// ends with its mark plus one).
pub const MARK_CAL_RDTSC: u8 = 0xC0;
/// Mark before the null-exit section.
pub const MARK_CAL_NULL_EXIT: u8 = 0xC2;
/// Mark before the device-exit section.
pub const MARK_CAL_DEVICE_EXIT: u8 = 0xC4;
/// Mark before the kernel-exit section.
pub const MARK_CAL_KERNEL_EXIT: u8 = 0xC6;
/// Mark before the register-loop section.
pub const MARK_CAL_ALU: u8 = 0xC8;
/// Mark before the 4 KiB command section.
pub const MARK_CAL_COMMANDS: u8 = 0xCA;
/// The sections of `bench=calibrate` by the name its report lines use.
pub const MARKS_CALIBRATE: [(&str, u8); 6] = [
    ("rdtsc", MARK_CAL_RDTSC),
    ("null_exit", MARK_CAL_NULL_EXIT),
    ("device_exit", MARK_CAL_DEVICE_EXIT),
    ("kernel_exit", MARK_CAL_KERNEL_EXIT),
    ("alu", MARK_CAL_ALU),
    ("commands", MARK_CAL_COMMANDS),
];

/// The benchmarks' random LBA sequence: `SECTORS`-aligned LBAs in
/// `BASE .. BASE + SPAN`, from a seeded SplitMix64 generator. The guest
/// draws its random command addresses from it and the host replays it to
/// check a `random` manifest line, so both must agree on every value.
#[derive(Clone, Debug)]
pub struct BenchLbas {
    state: u64,
    base: u64,
    slots: u64,
    sectors: u64,
}

impl BenchLbas {
    /// The sequence for `seed` over the `span / sectors` aligned slots of
    /// `sectors` sectors from `base`; `None` if there is no whole slot or
    /// the range overflows.
    pub fn new(seed: u64, base: u64, span: u64, sectors: u64) -> Option<Self> {
        let slots = span.checked_div(sectors).filter(|s| *s > 0)?;
        base.checked_add(span)?;
        Some(BenchLbas {
            state: seed,
            base,
            slots,
            sectors,
        })
    }
}

impl Iterator for BenchLbas {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        // SplitMix64 (Steele, Lea, Flood 2014).
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let slot = z.checked_rem(self.slots)?;
        // `slot < slots = span / sectors` and `base + span` does not overflow.
        Some(self.base + slot * self.sectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_layout() {
        let mut s = [0u8; STAMP_SECTOR];
        stamp_sector(0x0102_0304_0506_0708, 0xAABB_CCDD, &mut s);
        assert_eq!(&s[..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&s[8..12], &0xAABB_CCDDu32.to_le_bytes());
        assert_eq!(&s[12..16], b"VDMA");
        assert_eq!(s[16], 16 ^ 0xDD);
        assert_eq!(s[511], 255 ^ 0xDD);
    }

    #[test]
    fn bench_lbas_are_aligned_in_range_and_reproducible() {
        let a: [u64; 64] = core::array::from_fn({
            let mut it = BenchLbas::new(42, 2048, 1 << 19, 8).unwrap();
            move |_| it.next().unwrap()
        });
        for l in a {
            assert!((2048..2048 + (1 << 19)).contains(&l));
            assert_eq!((l - 2048) % 8, 0);
        }
        let mut again = BenchLbas::new(42, 2048, 1 << 19, 8).unwrap();
        assert!(a.iter().all(|l| Some(*l) == again.next()));
        assert!(a.windows(2).any(|w| w[0] != w[1]), "not constant");
        let mut other = BenchLbas::new(43, 2048, 1 << 19, 8).unwrap();
        assert!(a.iter().any(|l| Some(*l) != other.next()));
        assert!(BenchLbas::new(1, 0, 7, 8).is_none(), "no whole slot");
        assert!(BenchLbas::new(1, u64::MAX, 8, 8).is_none(), "overflow");
        let mut one = BenchLbas::new(9, 100, 8, 8).unwrap();
        assert_eq!((one.next(), one.next()), (Some(100), Some(100)));
    }

    #[test]
    fn exit_status_mapping() {
        assert_eq!(runner_exit_status(0), 0);
        assert_eq!(runner_exit_status(63), 63);
        assert_eq!(runner_exit_status(1000), 63);
        assert_eq!(qemu_exit_status(0), 1);
        assert_eq!(qemu_exit_status(1), 3);
    }
}
