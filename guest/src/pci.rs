//! PCI configuration mechanism #1 (ports 0xCF8/0xCFC) on bus 0, and the
//! setup of the PIIX IDE function the way PC firmware does it.

use core::fmt;

use crate::arch::io::{inb, inl, inw, outb, outl, outw};

/// Configuration mechanism #1: the address port.
pub const CONFIG_ADDRESS: u16 = 0xCF8;
/// Configuration mechanism #1: the data ports (0xCFC-0xCFF).
pub const CONFIG_DATA: u16 = 0xCFC;

/// Intel's vendor ID.
pub const VENDOR_INTEL: u16 = 0x8086;
/// PIIX3 IDE device ID.
pub const DEVICE_PIIX3_IDE: u16 = 0x7010;
/// PIIX4 IDE device ID (also accepted).
pub const DEVICE_PIIX4_IDE: u16 = 0x7111;
/// Class/subclass of an IDE controller.
pub const CLASS_IDE: u16 = 0x0101;
/// I/O address the guest gives BAR4 when firmware left it unassigned.
pub const DEFAULT_BMIBA: u16 = 0xC000;

const REG_VENDOR: u8 = 0x00;
/// Command register offset.
pub const REG_COMMAND: u8 = 0x04;
const REG_CLASS: u8 = 0x08;
const REG_HEADER: u8 = 0x0E;
/// BAR4 (bus-master I/O base) offset.
pub const REG_BAR4: u8 = 0x20;
/// Primary IDE timing register (IDETIM) offset.
pub const REG_IDETIM_PRIMARY: u8 = 0x40;
const REG_IDETIM_SECONDARY: u8 = 0x42;
/// Command register: I/O space decode.
pub const COMMAND_IO: u16 = 1 << 0;
/// Command register: bus mastering.
pub const COMMAND_MASTER: u16 = 1 << 2;
const IDETIM_DECODE: u16 = 0x8000;

/// A function on bus 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Device number (0-31).
    pub device: u8,
    /// Function number (0-7).
    pub function: u8,
}

impl Function {
    fn address(self, reg: u8) -> u32 {
        0x8000_0000
            | (u32::from(self.device & 0x1F) << 11)
            | (u32::from(self.function & 0x07) << 8)
            | u32::from(reg & 0xFC)
    }

    /// Reads the dword at `reg` (rounded down to a multiple of 4).
    pub fn read32(self, reg: u8) -> u32 {
        outl(CONFIG_ADDRESS, self.address(reg));
        inl(CONFIG_DATA)
    }

    /// Reads the word at `reg` (even).
    pub fn read16(self, reg: u8) -> u16 {
        outl(CONFIG_ADDRESS, self.address(reg));
        inw(CONFIG_DATA + u16::from(reg & 2))
    }

    /// Reads the byte at `reg`.
    pub fn read8(self, reg: u8) -> u8 {
        outl(CONFIG_ADDRESS, self.address(reg));
        inb(CONFIG_DATA + u16::from(reg & 3))
    }

    /// Writes the dword at `reg`.
    pub fn write32(self, reg: u8, v: u32) {
        outl(CONFIG_ADDRESS, self.address(reg));
        outl(CONFIG_DATA, v);
    }

    /// Writes the word at `reg` (even).
    pub fn write16(self, reg: u8, v: u16) {
        outl(CONFIG_ADDRESS, self.address(reg));
        outw(CONFIG_DATA + u16::from(reg & 2), v);
    }

    /// Writes the byte at `reg`.
    pub fn write8(self, reg: u8, v: u8) {
        outl(CONFIG_ADDRESS, self.address(reg));
        outb(CONFIG_DATA + u16::from(reg & 3), v);
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00:{:02x}.{}", self.device, self.function)
    }
}

/// Sets or clears the Command register's bus-master bit (bit 2) of
/// `function`, keeping the other bits.
pub fn set_bus_master(function: Function, on: bool) {
    let command = function.read16(REG_COMMAND);
    let command = if on {
        command | COMMAND_MASTER
    } else {
        command & !COMMAND_MASTER
    };
    function.write16(REG_COMMAND, command);
}

/// Finds the first PIIX IDE function (class 0x0101, 8086:7010 or 8086:7111)
/// on bus 0.
pub fn find_piix_ide() -> Option<(Function, u16)> {
    for device in 0..32u8 {
        let f0 = Function {
            device,
            function: 0,
        };
        if f0.read16(REG_VENDOR) == 0xFFFF {
            continue;
        }
        let functions = if f0.read8(REG_HEADER) & 0x80 != 0 {
            8
        } else {
            1
        };
        for function in 0..functions {
            let f = Function { device, function };
            let id = f.read32(REG_VENDOR);
            let vendor = (id & 0xFFFF) as u16;
            let dev_id = (id >> 16) as u16;
            let class = (f.read32(REG_CLASS) >> 16) as u16;
            if vendor == VENDOR_INTEL
                && (dev_id == DEVICE_PIIX3_IDE || dev_id == DEVICE_PIIX4_IDE)
                && class == CLASS_IDE
            {
                return Some((f, dev_id));
            }
        }
    }
    None
}

/// How the IDE function was configured.
#[derive(Clone, Copy, Debug)]
pub struct IdeSetup {
    /// The function.
    pub function: Function,
    /// Its device ID.
    pub device_id: u16,
    /// Programming interface byte.
    pub prog_if: u8,
    /// Bus-master register base (BAR4).
    pub bmiba: u16,
    /// Whether the guest assigned BAR4 (firmware had left it unassigned).
    pub assigned_bar4: bool,
    /// Whether bus mastering was off before the guest enabled it.
    pub enabled_master: bool,
    /// Whether the guest set the IDE decode enable bits (0x41/0x43 bit 7).
    pub enabled_decode: bool,
}

/// Why the IDE function cannot be used.
#[derive(Clone, Copy, Debug)]
pub enum PciError {
    /// No PIIX IDE function on bus 0.
    NotFound,
    /// The primary channel is in native-PCI mode (prog-if bit 0).
    NativeMode(u8),
    /// BAR4 does not hold the address written to it (or is not I/O).
    Bar4(u32),
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PciError::NotFound => f.write_str("no PIIX IDE controller (8086:7010) on PCI bus 0"),
            PciError::NativeMode(p) => {
                write!(f, "primary IDE channel in native mode (prog-if {p:#x})")
            }
            PciError::Bar4(v) => write!(f, "BAR4 reads {v:#x} after assignment"),
        }
    }
}

/// Finds the PIIX IDE function and sets it up like firmware: BAR4 assigned,
/// I/O decode and bus mastering on, IDE decode enabled for both channels.
pub fn setup_ide() -> Result<IdeSetup, PciError> {
    let (function, device_id) = find_piix_ide().ok_or(PciError::NotFound)?;
    let prog_if = function.read8(REG_CLASS + 1);
    if prog_if & 0x01 != 0 {
        return Err(PciError::NativeMode(prog_if));
    }
    let mut bar4 = function.read32(REG_BAR4);
    let assigned_bar4 = bar4 & 0xFFFC == 0;
    if assigned_bar4 {
        function.write32(REG_BAR4, u32::from(DEFAULT_BMIBA));
        bar4 = function.read32(REG_BAR4);
    }
    if bar4 & 1 == 0 || bar4 & 0xFFFC == 0 || bar4 > 0xFFFF {
        return Err(PciError::Bar4(bar4));
    }
    let bmiba = (bar4 & 0xFFFC) as u16;
    let command = function.read16(REG_COMMAND);
    let enabled_master = command & COMMAND_MASTER == 0;
    function.write16(REG_COMMAND, command | COMMAND_IO | COMMAND_MASTER);
    let mut enabled_decode = false;
    for reg in [REG_IDETIM_PRIMARY, REG_IDETIM_SECONDARY] {
        let v = function.read16(reg);
        if v & IDETIM_DECODE == 0 {
            function.write16(reg, v | IDETIM_DECODE);
            enabled_decode = true;
        }
    }
    Ok(IdeSetup {
        function,
        device_id,
        prog_if,
        bmiba,
        assigned_bar4,
        enabled_master,
        enabled_decode,
    })
}
