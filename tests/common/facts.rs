//! Numbers the tests check and the documentation states, in one place:
//! `tests/docs.rs` checks the prose against them, the tests that measure
//! or run the thing check the thing.

/// VM exits of one LBA28 DMA command driven the way Linux's libata drives
/// a PIIX (the guest's `run_lean`), all port I/O, when every access exits
/// (`--no-coalesced-pio`): drive select 4 (idle poll, Device write,
/// Alternate Status read, idle poll: the polls read Alternate Status and
/// find the drive idle at once), task file 6 (Features, Count, LBA
/// low/mid/high, Device), PRD table pointer 1, BM command 2 (read it, write
/// the direction), ATA command 1, BM START 1 (the whole data phase
/// completes inside this write), one BM status poll 1, stop 2 (BM command
/// write clearing START, Alternate Status read), ATA Status read 1
/// (acknowledges the interrupt), BM status write-back (W1C) 1.
pub const EXITS_LBA28: f64 = 20.0;
/// An LBA48 (EXT) command writes the five HOB registers too.
pub const EXITS_LBA48: f64 = 25.0;
/// Writes KVM coalesces by default: the select's Device write, the task
/// file, the PRD pointer and the BM status write-back.
pub const COALESCED_LBA28: f64 = 9.0;
/// ... and the five HOB registers.
pub const COALESCED_LBA48: f64 = 14.0;

/// QEMU 7.2's ide-test cases that must pass against vmdma
/// (`tests/qemu_ide_test.rs`).
pub const IDE_TEST_REQUIRED: &[&str] = &[
    "/x86_64/ide/identify",
    "/x86_64/ide/diagnostic",
    "/x86_64/ide/bmdma/simple_rw",
    "/x86_64/ide/bmdma/trim",
    "/x86_64/ide/bmdma/various_prdts",
    "/x86_64/ide/bmdma/no_busmaster",
    "/x86_64/ide/flush/nodev",
    "/x86_64/ide/flush",
    "/x86_64/ide/flush/retry_pci",
    "/x86_64/ide/flush/empty_drive",
    "/x86_64/ide/cdrom/pio",
    "/x86_64/ide/cdrom/pio_large",
    "/x86_64/ide/cdrom/dma",
];

/// ide-test cases skipped with `-s`, and why (docs/ide-test.md has the same list).
pub const IDE_TEST_SKIPPED: &[(&str, &str)] = &[];
