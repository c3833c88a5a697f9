//! The port-I/O bus: maps port ranges to devices.
//!
//! The bus checks every access before a device sees it: the access must lie
//! wholly inside one device's range and use a width the device declared.
//! Anything else is "unclaimed": reads return all-ones (as on a PC's ISA
//! bus with nothing driving it) and writes are dropped. Devices are shared
//! (`Arc<Mutex<..>>`) so that more vCPUs or an I/O thread can reach them.

use std::sync::{Arc, Mutex, PoisonError};

use thiserror::Error;

/// A device on the port-I/O bus. `offset` is relative to the start of the
/// device's range and `offset + data.len()` is inside it; the width is one
/// the device declared when it was inserted.
pub trait PioDevice: Send {
    /// Reads `data.len()` bytes (a little-endian value) at `offset`.
    fn read(&mut self, offset: u16, data: &mut [u8]);
    /// Writes `data` (a little-endian value) at `offset`.
    fn write(&mut self, offset: u16, data: &[u8]);
}

/// A device that decodes its ports itself (a PCI function whose BARs the
/// guest may move, or configuration mechanism #1): asked for every access
/// no fixed range claims. Returns `false` when the port is not its own.
pub trait PortDecoder: Send {
    /// Reads `data.len()` bytes at `port`.
    fn read(&mut self, port: u16, data: &mut [u8]) -> bool;
    /// Writes `data` at `port`.
    fn write(&mut self, port: u16, data: &[u8]) -> bool;
}

/// Access widths a device accepts, as a set of byte counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Widths(u8);

impl Widths {
    /// 8-bit accesses only.
    pub const BYTE: Widths = Widths(1);
    /// 8-, 16- and 32-bit accesses.
    pub const ANY: Widths = Widths(1 | 2 | 4);

    /// True when an access of `len` bytes is allowed.
    pub fn allows(self, len: usize) -> bool {
        matches!(len, 1 | 2 | 4) && self.0 & (len as u8) != 0
    }
}

/// Why a range could not be added.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusError {
    /// The range is empty or runs past port 0xFFFF.
    #[error("invalid port range {base:#x}+{len:#x}")]
    BadRange {
        /// First port.
        base: u16,
        /// Number of ports.
        len: u16,
    },
    /// The range overlaps one already on the bus.
    #[error("port range {base:#x}+{len:#x} overlaps the device at {existing:#x}")]
    Overlap {
        /// First port.
        base: u16,
        /// Number of ports.
        len: u16,
        /// First port of the existing range.
        existing: u16,
    },
}

/// What the bus did with an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A device handled it.
    Handled,
    /// No device decodes the port.
    Unclaimed,
    /// A device decodes the port but not this width (or the access runs
    /// past the device's range).
    BadWidth,
}

struct Range<'a> {
    base: u16,
    len: u16,
    widths: Widths,
    dev: Arc<Mutex<dyn PioDevice + 'a>>,
}

impl Range<'_> {
    fn end(&self) -> u32 {
        u32::from(self.base) + u32::from(self.len)
    }
}

/// The port-I/O bus. Devices may borrow from the VM's scope (`'a`), e.g.
/// the IDE controller borrows the guest address space it DMAs into.
#[derive(Default)]
pub struct PioBus<'a> {
    ranges: Vec<Range<'a>>,
    decoders: Vec<Arc<Mutex<dyn PortDecoder + 'a>>>,
}

impl std::fmt::Debug for PioBus<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.ranges.iter().map(|r| (r.base, r.len)))
            .finish()
    }
}

impl<'a> PioBus<'a> {
    /// An empty bus.
    pub fn new() -> Self {
        PioBus::default()
    }

    /// Adds a device that decodes its own ports (checked after the fixed
    /// ranges, in insertion order).
    pub fn add_decoder(&mut self, dev: Arc<Mutex<dyn PortDecoder + 'a>>) {
        self.decoders.push(dev);
    }

    /// Adds `dev` at ports `base..base + len`, accepting `widths`.
    pub fn insert(
        &mut self,
        base: u16,
        len: u16,
        widths: Widths,
        dev: Arc<Mutex<dyn PioDevice + 'a>>,
    ) -> Result<(), BusError> {
        let end = u32::from(base) + u32::from(len);
        if len == 0 || end > 0x1_0000 {
            return Err(BusError::BadRange { base, len });
        }
        if let Some(r) = self
            .ranges
            .iter()
            .find(|r| u32::from(base) < r.end() && end > u32::from(r.base))
        {
            return Err(BusError::Overlap {
                base,
                len,
                existing: r.base,
            });
        }
        let at = self.ranges.partition_point(|r| r.base < base);
        self.ranges.insert(
            at,
            Range {
                base,
                len,
                widths,
                dev,
            },
        );
        Ok(())
    }

    /// The device range containing `port` and the access's offset in it,
    /// if the whole access fits and the width is allowed.
    fn route(&self, port: u16, len: usize) -> Result<(&Range<'a>, u16), Access> {
        let idx = self.ranges.partition_point(|r| r.base <= port);
        let r = idx
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .filter(|r| u32::from(port) < r.end())
            .ok_or(Access::Unclaimed)?;
        let offset = port - r.base;
        let fits = u32::from(port)
            .checked_add(len as u32)
            .is_some_and(|end| end <= r.end());
        if !fits || !r.widths.allows(len) {
            return Err(Access::BadWidth);
        }
        Ok((r, offset))
    }

    /// Reads from `port`; unclaimed or refused reads return all-ones.
    pub fn read(&self, port: u16, data: &mut [u8]) -> Access {
        match self.route(port, data.len()) {
            Ok((r, offset)) => {
                r.dev
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .read(offset, data);
                Access::Handled
            }
            Err(Access::Unclaimed) if self.decode_read(port, data) => Access::Handled,
            Err(a) => {
                data.fill(0xFF);
                a
            }
        }
    }

    fn decode_read(&self, port: u16, data: &mut [u8]) -> bool {
        self.decoders.iter().any(|d| {
            d.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .read(port, data)
        })
    }

    fn decode_write(&self, port: u16, data: &[u8]) -> bool {
        self.decoders.iter().any(|d| {
            d.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write(port, data)
        })
    }

    /// Writes to `port`; unclaimed or refused writes are dropped.
    pub fn write(&self, port: u16, data: &[u8]) -> Access {
        match self.route(port, data.len()) {
            Ok((r, offset)) => {
                r.dev
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .write(offset, data);
                Access::Handled
            }
            Err(Access::Unclaimed) if self.decode_write(port, data) => Access::Handled,
            Err(a) => a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u16, Vec<u8>)>,
    }

    impl PioDevice for Recorder {
        fn read(&mut self, offset: u16, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u16, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn routing_widths_and_unclaimed() {
        let mut bus = PioBus::new();
        let a = Arc::new(Mutex::new(Recorder::default()));
        let b = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(0x3F8, 8, Widths::BYTE, a.clone()).unwrap();
        bus.insert(0xF4, 4, Widths::ANY, b.clone()).unwrap();

        let mut d = [0u8; 1];
        assert_eq!(bus.read(0x3FA, &mut d), Access::Handled);
        assert_eq!(d, [2]);
        let mut d2 = [0u8; 2];
        assert_eq!(bus.read(0x3F8, &mut d2), Access::BadWidth);
        assert_eq!(d2, [0xFF, 0xFF]);
        assert_eq!(bus.read(0x80, &mut d), Access::Unclaimed);
        assert_eq!(d, [0xFF]);
        let mut d4 = [0u8; 4];
        assert_eq!(
            bus.read(0xF6, &mut d4),
            Access::BadWidth,
            "runs past the range"
        );
        assert_eq!(bus.read(0xF4, &mut d4), Access::Handled);

        assert_eq!(bus.write(0x3FF, &[7]), Access::Handled);
        assert_eq!(bus.write(0x400, &[7]), Access::Unclaimed);
        assert_eq!(bus.write(0xF4, &[1, 2, 3]), Access::BadWidth);
        assert_eq!(a.lock().unwrap().writes, vec![(7, vec![7])]);
        assert!(b.lock().unwrap().writes.is_empty());
    }

    struct OddPorts;
    impl PortDecoder for OddPorts {
        fn read(&mut self, port: u16, data: &mut [u8]) -> bool {
            data.fill(0x42);
            port % 2 == 1
        }
        fn write(&mut self, port: u16, _: &[u8]) -> bool {
            port % 2 == 1
        }
    }

    #[test]
    fn decoders_see_only_unclaimed_ports() {
        let mut bus = PioBus::new();
        let r = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(0x101, 1, Widths::BYTE, r).unwrap();
        bus.add_decoder(Arc::new(Mutex::new(OddPorts)));
        let mut d = [0u8; 1];
        assert_eq!(bus.read(0x101, &mut d), Access::Handled);
        assert_eq!(d, [0], "the fixed range wins");
        assert_eq!(bus.read(0x103, &mut d), Access::Handled);
        assert_eq!(d, [0x42]);
        assert_eq!(bus.read(0x104, &mut d), Access::Unclaimed);
        assert_eq!(d, [0xFF]);
        assert_eq!(bus.write(0x105, &[1]), Access::Handled);
        assert_eq!(bus.write(0x106, &[1]), Access::Unclaimed);
    }

    #[test]
    fn bad_and_overlapping_ranges() {
        let mut bus = PioBus::new();
        let d = Arc::new(Mutex::new(Recorder::default()));
        assert_eq!(
            bus.insert(0x10, 0, Widths::ANY, d.clone()),
            Err(BusError::BadRange { base: 0x10, len: 0 })
        );
        assert!(bus.insert(0xFFFF, 2, Widths::ANY, d.clone()).is_err());
        bus.insert(0xFFFF, 1, Widths::ANY, d.clone()).unwrap();
        bus.insert(0x100, 0x10, Widths::ANY, d.clone()).unwrap();
        assert_eq!(
            bus.insert(0x10F, 1, Widths::ANY, d.clone()),
            Err(BusError::Overlap {
                base: 0x10F,
                len: 1,
                existing: 0x100
            })
        );
        assert!(bus.insert(0xF0, 0x11, Widths::ANY, d.clone()).is_err());
        bus.insert(0xF0, 0x10, Widths::ANY, d).unwrap();
        let mut x = [0u8; 1];
        assert_eq!(bus.read(0xFFFF, &mut x), Access::Handled);
    }
}
