//! The 256-byte configuration space of one PCI function, with write masks.

use bitflags::bitflags;

use super::AccessWidth;

/// Offsets of the type-0 configuration header.
pub mod header {
    /// Vendor ID (16 bits, read-only).
    pub const VENDOR_ID: u8 = 0x00;
    /// Device ID (16 bits, read-only).
    pub const DEVICE_ID: u8 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u8 = 0x04;
    /// Status register (16 bits).
    pub const STATUS: u8 = 0x06;
    /// Revision ID (8 bits).
    pub const REVISION_ID: u8 = 0x08;
    /// Programming interface (8 bits).
    pub const PROG_IF: u8 = 0x09;
    /// Sub-class code (8 bits).
    pub const SUBCLASS: u8 = 0x0A;
    /// Base class code (8 bits).
    pub const CLASS: u8 = 0x0B;
    /// Cache line size (8 bits).
    pub const CACHE_LINE_SIZE: u8 = 0x0C;
    /// Latency timer (8 bits).
    pub const LATENCY_TIMER: u8 = 0x0D;
    /// Header type (8 bits; bit 7 = multi-function device).
    pub const HEADER_TYPE: u8 = 0x0E;
    /// Base address register 0 (32 bits); BAR n is at `BAR0 + 4 * n`.
    pub const BAR0: u8 = 0x10;
    /// Base address register 4 (32 bits).
    pub const BAR4: u8 = 0x20;
    /// Interrupt line (8 bits, software scratch).
    pub const INTERRUPT_LINE: u8 = 0x3C;
    /// Interrupt pin (8 bits; 0 = none).
    pub const INTERRUPT_PIN: u8 = 0x3D;
    /// Header type value for a single-function type-0 header.
    pub const TYPE_NORMAL: u8 = 0x00;
    /// Header type bit marking a multi-function device.
    pub const TYPE_MULTI_FUNCTION: u8 = 0x80;
    /// BAR bit 0: the BAR decodes I/O space.
    pub const BAR_IO: u32 = 0x1;
    /// Status: medium DEVSEL timing (bits 10:9 = 01).
    pub const STATUS_DEVSEL_MEDIUM: u16 = 0x0200;
    /// Status: fast back-to-back capable.
    pub const STATUS_FAST_BACK: u16 = 0x0080;
}

bitflags! {
    /// The PCI Command register (offset 0x04).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PciCommand: u16 {
        /// Bit 0: respond to I/O-space accesses (I/O BARs decode).
        const IO = 1 << 0;
        /// Bit 1: respond to memory-space accesses.
        const MEMORY = 1 << 1;
        /// Bit 2: the function may master the bus (do DMA).
        const MASTER = 1 << 2;
        /// Bit 10: legacy INTx assertion disabled.
        const INTX_DISABLE = 1 << 10;
    }
}

/// Size of a conventional PCI configuration space.
const SIZE: usize = 256;

/// The configuration space of one function.
///
/// `bytes` is what reads return. A guest write changes only the bits set in
/// `wmask`, and clears the bits set in both the written value and `w1c`
/// (write-1-to-clear status bits). The device model itself sets values with
/// the `set_*` methods, which ignore the masks.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; SIZE],
    wmask: [u8; SIZE],
    w1c: [u8; SIZE],
}

impl core::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("vendor", &self.u16_at(header::VENDOR_ID))
            .field("device", &self.u16_at(header::DEVICE_ID))
            .field("command", &self.u16_at(header::COMMAND))
            .finish()
    }
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigSpace {
    /// All zeros, nothing writable.
    pub const fn new() -> Self {
        ConfigSpace {
            bytes: [0; SIZE],
            wmask: [0; SIZE],
            w1c: [0; SIZE],
        }
    }

    /// A type-0 header with the identity fields set and the scratch
    /// registers (cache line size, latency timer, interrupt line) writable.
    pub const fn with_identity(
        vendor: u16,
        device: u16,
        class: u8,
        subclass: u8,
        prog_if: u8,
        revision: u8,
        header_type: u8,
    ) -> Self {
        let mut c = ConfigSpace::new();
        c.set_u16(header::VENDOR_ID, vendor);
        c.set_u16(header::DEVICE_ID, device);
        c.set_u8(header::REVISION_ID, revision);
        c.set_u8(header::PROG_IF, prog_if);
        c.set_u8(header::SUBCLASS, subclass);
        c.set_u8(header::CLASS, class);
        c.set_u8(header::HEADER_TYPE, header_type);
        c.set_wmask(header::CACHE_LINE_SIZE, &[0xFF, 0xFF]);
        c.set_wmask(header::INTERRUPT_LINE, &[0xFF]);
        c
    }

    /// Reads `width` bytes at `offset` (little-endian); bytes past the end
    /// read as `0xFF`.
    pub fn read(&self, offset: u8, width: AccessWidth) -> u32 {
        let mut v = 0u32;
        for i in 0..width.bytes() {
            v |= u32::from(self.byte(usize::from(offset) + i)) << (8 * i);
        }
        v
    }

    /// A guest write of the low `width` bytes of `value` at `offset`,
    /// through the write and write-1-to-clear masks. Bytes past the end are
    /// dropped.
    pub fn write(&mut self, offset: u8, width: AccessWidth, value: u32) {
        for (i, new) in value
            .to_le_bytes()
            .into_iter()
            .take(width.bytes())
            .enumerate()
        {
            let at = usize::from(offset) + i;
            let (Some(b), Some(&wm), Some(&w1c)) =
                (self.bytes.get_mut(at), self.wmask.get(at), self.w1c.get(at))
            else {
                break;
            };
            *b = ((*b & !wm) | (new & wm)) & !(new & w1c);
        }
    }

    /// The byte at `offset` (device side).
    pub fn u8_at(&self, offset: u8) -> u8 {
        self.byte(usize::from(offset))
    }

    /// The little-endian `u16` at `offset` (device side; a byte past the
    /// end reads as `0xFF`).
    pub fn u16_at(&self, offset: u8) -> u16 {
        let at = usize::from(offset);
        u16::from_le_bytes([self.byte(at), self.byte(at + 1)])
    }

    /// The little-endian `u32` at `offset` (device side).
    pub fn u32_at(&self, offset: u8) -> u32 {
        self.read(offset, AccessWidth::Dword)
    }

    /// Sets a byte, ignoring the masks (device side).
    pub const fn set_u8(&mut self, offset: u8, v: u8) {
        copy_in(&mut self.bytes, offset, &[v]);
    }

    /// Sets a little-endian `u16`, ignoring the masks.
    pub const fn set_u16(&mut self, offset: u8, v: u16) {
        copy_in(&mut self.bytes, offset, &v.to_le_bytes());
    }

    /// Sets a little-endian `u32`, ignoring the masks.
    pub const fn set_u32(&mut self, offset: u8, v: u32) {
        copy_in(&mut self.bytes, offset, &v.to_le_bytes());
    }

    /// Makes the bits of `mask` (one byte per offset from `offset` on)
    /// guest-writable.
    pub const fn set_wmask(&mut self, offset: u8, mask: &[u8]) {
        copy_in(&mut self.wmask, offset, mask);
    }

    /// Makes the bits of `mask` (one byte per offset from `offset` on)
    /// write-1-to-clear.
    pub const fn set_w1c(&mut self, offset: u8, mask: &[u8]) {
        copy_in(&mut self.w1c, offset, mask);
    }

    /// The Command register.
    pub fn command(&self) -> PciCommand {
        PciCommand::from_bits_retain(self.u16_at(header::COMMAND))
    }

    fn byte(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0xFF)
    }
}

/// Copies `v` into `dst` from `offset` on; bytes past the end are dropped.
/// (A `const fn`, so the functions' reset states can be built at compile
/// time for `static` controllers.)
#[expect(
    clippy::indexing_slicing,
    reason = "const fn: both indices are checked against the lengths just before"
)]
const fn copy_in(dst: &mut [u8; SIZE], offset: u8, v: &[u8]) {
    let mut i = 0;
    while i < v.len() {
        let at = offset as usize + i;
        if at < SIZE {
            dst[at] = v[i];
        }
        i += 1;
    }
}

#[cfg(feature = "snapshot")]
impl ConfigSpace {
    /// Saves the 256 bytes.
    pub(crate) fn save(
        &self,
        w: &mut crate::snapshot::Writer<'_>,
    ) -> Result<(), crate::snapshot::SnapshotError> {
        w.bytes(&self.bytes)
    }

    /// Reads 256 saved bytes and checks them against this space: bits the
    /// guest cannot write must hold this space's values (a write-1-to-clear
    /// bit may be clear). Changes nothing; [`ConfigSpace::apply`] does.
    pub(crate) fn parse(
        &self,
        r: &mut crate::snapshot::Reader<'_>,
        what: &'static str,
    ) -> Result<[u8; SIZE], crate::snapshot::SnapshotError> {
        let saved: [u8; SIZE] = r.array()?;
        let fixed_ok = saved
            .iter()
            .zip(
                self.bytes
                    .iter()
                    .zip(self.wmask.iter().zip(self.w1c.iter())),
            )
            .all(|(&s, (&cur, (&wm, &w1c)))| {
                let differ = (s ^ cur) & !wm;
                // A differing bit is only allowed where the guest cleared it.
                differ & !(w1c & cur & !s) == 0
            });
        if fixed_ok {
            Ok(saved)
        } else {
            Err(crate::snapshot::SnapshotError::Invalid(what))
        }
    }

    /// Installs bytes [`ConfigSpace::parse`] accepted.
    pub(crate) fn apply(&mut self, bytes: [u8; SIZE]) {
        self.bytes = bytes;
    }
}
