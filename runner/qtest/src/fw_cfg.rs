//! A minimal QEMU firmware-configuration device (the legacy I/O
//! interface: selector at 0x510, data at 0x511), enough for libqos: its
//! PC allocator reads the RAM size (`FW_CFG_RAM_SIZE`) to know where guest
//! buffers may go.
//!
//! Items: the signature `QEMU`, the interface id (1: traditional, no DMA),
//! the RAM size, the CPU counts (1) and an empty file directory. Unknown
//! keys and reads past an item's end read 0, as on QEMU.

use vmdma::devices::bus::PioDevice;

/// First port: the 16-bit selector (data byte at +1).
pub const FW_CFG_PORT: u16 = 0x510;
/// Ports used: selector and data.
pub const FW_CFG_LEN: u16 = 2;

/// Item keys (QEMU's `FW_CFG_*`).
mod key {
    pub const SIGNATURE: u16 = 0x00;
    pub const ID: u16 = 0x01;
    pub const RAM_SIZE: u16 = 0x03;
    pub const NB_CPUS: u16 = 0x05;
    pub const MAX_CPUS: u16 = 0x0F;
    pub const FILE_DIR: u16 = 0x19;
}

/// The device: the selected item and the read position in it.
#[derive(Debug)]
pub struct FwCfg {
    ram_size: u64,
    item: Vec<u8>,
    offset: usize,
}

impl FwCfg {
    /// A device reporting `ram_size` bytes of RAM; key 0 is selected.
    pub fn new(ram_size: u64) -> Self {
        let mut d = FwCfg {
            ram_size,
            item: Vec::new(),
            offset: 0,
        };
        d.select(key::SIGNATURE);
        d
    }

    fn select(&mut self, k: u16) {
        self.offset = 0;
        self.item = match k {
            key::SIGNATURE => b"QEMU".to_vec(),
            key::ID => 1u32.to_le_bytes().to_vec(),
            key::RAM_SIZE => self.ram_size.to_le_bytes().to_vec(),
            key::NB_CPUS | key::MAX_CPUS => 1u16.to_le_bytes().to_vec(),
            // A big-endian count of 0 files.
            key::FILE_DIR => 0u32.to_be_bytes().to_vec(),
            _ => Vec::new(),
        };
    }

    fn next_byte(&mut self) -> u8 {
        let b = self.item.get(self.offset).copied().unwrap_or(0);
        self.offset = self.offset.saturating_add(1).min(self.item.len());
        b
    }
}

impl PioDevice for FwCfg {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        match (offset, data.len()) {
            (1, 1) => data.fill(self.next_byte()),
            _ => data.fill(0),
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) {
        if let (0, [lo, hi]) = (offset, data) {
            self.select(u16::from_le_bytes([*lo, *hi]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(d: &mut FwCfg, k: u16, n: usize) -> Vec<u8> {
        d.write(0, &k.to_le_bytes());
        (0..n)
            .map(|_| {
                let mut b = [0u8];
                d.read(1, &mut b);
                b[0]
            })
            .collect()
    }

    #[test]
    fn items_libqos_reads() {
        let mut d = FwCfg::new(128 << 20);
        assert_eq!(item(&mut d, key::SIGNATURE, 4), b"QEMU");
        assert_eq!(
            u64::from_le_bytes(item(&mut d, key::RAM_SIZE, 8).try_into().unwrap()),
            128 << 20
        );
        assert_eq!(item(&mut d, key::ID, 4), [1, 0, 0, 0]);
        assert_eq!(item(&mut d, key::FILE_DIR, 4), [0; 4]);
    }

    #[test]
    fn unknown_keys_and_overreads_read_zero() {
        let mut d = FwCfg::new(1 << 20);
        assert_eq!(item(&mut d, 0x4242, 3), [0, 0, 0]);
        assert_eq!(item(&mut d, key::NB_CPUS, 5), [1, 0, 0, 0, 0]);
        // A byte write to the selector is ignored; reads of it are 0.
        d.write(0, &[3]);
        let mut b = [0xAAu8; 2];
        d.read(0, &mut b);
        assert_eq!(b, [0, 0]);
    }
}
