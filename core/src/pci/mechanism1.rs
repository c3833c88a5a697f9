//! PCI configuration mechanism #1: the `CONFIG_ADDRESS` latch at port
//! `0xCF8` and the `CONFIG_DATA` window at `0xCFC..=0xCFF`.

use super::{AccessWidth, PciFunction};

/// Bus/device/function of a PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// `bus:device.function`, if `device < 32` and `function < 8`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device < 32 && function < 8 {
            Some(PciAddress {
                bus,
                device,
                function,
            })
        } else {
            None
        }
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// The device number (0..32).
    pub const fn device(self) -> u8 {
        self.device
    }

    /// The function number (0..8).
    pub const fn function(self) -> u8 {
        self.function
    }

    /// The address a `CONFIG_ADDRESS` value selects (bits 23:16 bus, 15:11
    /// device, 10:8 function).
    pub const fn from_config_address(v: u32) -> Self {
        let [_, f, bus, _] = v.to_le_bytes();
        PciAddress {
            bus,
            device: f >> 3,
            function: f & 0x7,
        }
    }
}

/// The functions behind a configuration mechanism, provided by the host.
pub trait PciBus {
    /// The function at `address`, if one exists there.
    fn function(&mut self, address: PciAddress) -> Option<&mut dyn PciFunction>;
}

/// A fixed list of functions is a bus.
impl PciBus for [(PciAddress, &mut dyn PciFunction)] {
    fn function(&mut self, address: PciAddress) -> Option<&mut dyn PciFunction> {
        let (_, f) = self.iter_mut().find(|(a, _)| *a == address)?;
        Some(&mut **f)
    }
}

/// `CONFIG_ADDRESS` bit 31: configuration cycles enabled.
const ENABLE: u32 = 1 << 31;
/// The bits of `CONFIG_ADDRESS` that read back: enable, bus, device,
/// function and dword register number (bits 30:24 and 1:0 read as zero).
const ADDRESS_BITS: u32 = ENABLE | 0x00FF_FFFC;
/// Bits 1:0 of `CONFIG_ADDRESS`: read as zero, but latched and ORed into
/// the register offset of data-window accesses, as QEMU does.
const BYTE_BITS: u32 = 0x3;
/// Every bit the address latch can hold.
#[cfg(feature = "snapshot")]
pub(super) const LATCH_BITS: u32 = ADDRESS_BITS | BYTE_BITS;

/// Configuration mechanism #1.
///
/// The host routes ports `0xCF8..=0xCFF` here as offsets 0..=7.
/// - Offset 0, 32-bit: the `CONFIG_ADDRESS` latch (read back as stored).
///   Narrower accesses to offsets 0..=3 are not the latch (on a PIIX,
///   `0xCF9` is the reset control register, which the host handles); they
///   read as all ones and writes are ignored.
/// - Offsets 4..=7: the data window, any width, at byte lane `offset - 4`
///   of the latched dword register, ORed with the latched bits 1:0.
///   The PCI specification makes those bits read-only zero (PCI Local Bus
///   3.0 §3.2.2.3.2) and conforming software writes them as zero; QEMU
///   latches them and ORs them into the offset, and its test library
///   (libqos) addresses registers that way (`0x80000902`, then a word read
///   of `0xCFC` for the device ID). vmdma follows QEMU there and keeps the
///   specified read-back (bits 1:0 read as zero). With the enable bit clear, or no
///   function at the latched address, reads return all ones and writes are
///   dropped (a master abort).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfigMechanism1 {
    pub(super) address: u32,
}

impl ConfigMechanism1 {
    /// First port (`CONFIG_ADDRESS`).
    pub const PORT_BASE: u16 = 0xCF8;
    /// Number of ports (`0xCF8..=0xCFF`).
    pub const PORT_COUNT: u16 = 8;

    /// The mechanism with a cleared latch.
    pub const fn new() -> Self {
        ConfigMechanism1 { address: 0 }
    }

    /// The latched `CONFIG_ADDRESS` as it reads back (bits 1:0 zero).
    pub const fn address(&self) -> u32 {
        self.address & ADDRESS_BITS
    }

    /// A read of `width` at port `PORT_BASE + offset`.
    pub fn read<B: PciBus + ?Sized>(&self, bus: &mut B, offset: u16, width: AccessWidth) -> u32 {
        match offset {
            0 if width == AccessWidth::Dword => self.address & ADDRESS_BITS,
            4..=7 => match self.target(offset) {
                Some((addr, reg)) => bus
                    .function(addr)
                    .map_or(width.all_ones(), |f| f.config_read(reg, width)),
                None => width.all_ones(),
            },
            _ => width.all_ones(),
        }
    }

    /// A write of the low `width` bytes of `value` at port
    /// `PORT_BASE + offset`.
    pub fn write<B: PciBus + ?Sized>(
        &mut self,
        bus: &mut B,
        offset: u16,
        width: AccessWidth,
        value: u32,
    ) {
        match offset {
            0 if width == AccessWidth::Dword => {
                self.address = value & (ADDRESS_BITS | BYTE_BITS);
            }
            4..=7 => {
                if let Some((addr, reg)) = self.target(offset)
                    && let Some(f) = bus.function(addr)
                {
                    f.config_write(reg, width, value & width.mask());
                }
            }
            _ => {}
        }
    }

    /// The function address and register byte a data-window access at
    /// `offset` (4..=7) reaches, if cycles are enabled.
    fn target(&self, offset: u16) -> Option<(PciAddress, u8)> {
        if self.address & ENABLE == 0 {
            return None;
        }
        let lane = u8::try_from(offset.checked_sub(4)?).ok()?;
        let [reg, ..] = self.address.to_le_bytes();
        // Both OR operands of the low two bits are <= 3: the byte stays in
        // the latched dword.
        Some((
            PciAddress::from_config_address(self.address),
            (reg & 0xFC) | (reg & 0x03) | lane,
        ))
    }
}
