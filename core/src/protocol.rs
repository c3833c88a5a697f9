//! The contract between the bundled test guest, the `vmdma` runner and the
//! host-side tests: port numbers, exit values, command-line keys and the
//! sector stamp format. Defined once here so that all three agree.
//!
//! Nothing here touches memory; it is plain data and pure functions.

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

/// Prefix of the serial lines with which the guest reports every write it
/// made to the disk, in order: `vmdma-manifest: write LBA COUNT PATTERN` or
/// `vmdma-manifest: trim LBA COUNT` (decimal). The host replays them to
/// compute the expected image.
pub const MANIFEST_PREFIX: &str = "vmdma-manifest:";

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
    fn exit_status_mapping() {
        assert_eq!(runner_exit_status(0), 0);
        assert_eq!(runner_exit_status(63), 63);
        assert_eq!(runner_exit_status(1000), 63);
        assert_eq!(qemu_exit_status(0), 1);
        assert_eq!(qemu_exit_status(1), 3);
    }
}
