//! The MMIO scratch region: 64 KiB that behaves like RAM but is not a KVM
//! memory slot, so every guest access is an MMIO exit and device DMA to it
//! goes through the core's bounce path. The guest finds it through the
//! `vmdma.mmio_scratch=BASE,LEN` command-line key.

use std::sync::{Mutex, PoisonError};

use vmdma_core::memory::{MmioError, MmioHandler};
use vmdma_protocol::{CMDLINE_MMIO_SCRATCH, MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN};

/// The command-line key/value announcing the region.
pub fn cmdline_key() -> String {
    format!("{CMDLINE_MMIO_SCRATCH}={MMIO_SCRATCH_BASE:#x},{MMIO_SCRATCH_LEN:#x}")
}

/// A RAM-like MMIO device backed by a host buffer.
#[derive(Debug)]
pub struct MmioScratch {
    buf: Mutex<Vec<u8>>,
}

impl MmioScratch {
    /// A zero-filled region of `len` bytes.
    pub fn new(len: usize) -> Self {
        MmioScratch {
            buf: Mutex::new(vec![0; len]),
        }
    }

    /// Its bytes (for a snapshot).
    pub fn bytes(&self) -> Vec<u8> {
        self.buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts saved bytes back; they must be exactly its length.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), &'static str> {
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        if bytes.len() != buf.len() {
            return Err("MMIO scratch region of another size");
        }
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn range(
        &self,
        offset: u64,
        len: usize,
        buf_len: usize,
    ) -> Result<std::ops::Range<usize>, MmioError> {
        let start = usize::try_from(offset).map_err(|_| MmioError::Unmapped)?;
        let end = start.checked_add(len).ok_or(MmioError::Unmapped)?;
        if end > buf_len {
            return Err(MmioError::Unmapped);
        }
        Ok(start..end)
    }
}

impl MmioHandler for MmioScratch {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), MmioError> {
        let buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let r = self.range(offset, data.len(), buf.len())?;
        data.copy_from_slice(buf.get(r).ok_or(MmioError::Unmapped)?);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MmioError> {
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let r = self.range(offset, data.len(), buf.len())?;
        buf.get_mut(r)
            .ok_or(MmioError::Unmapped)?
            .copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_ram() {
        let s = MmioScratch::new(16);
        s.write(4, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 6];
        s.read(3, &mut b).unwrap();
        assert_eq!(b, [0, 1, 2, 3, 4, 0]);
        assert_eq!(s.read(12, &mut b), Err(MmioError::Unmapped));
        assert_eq!(s.write(u64::MAX, &[1]), Err(MmioError::Unmapped));
        assert_eq!(cmdline_key(), "vmdma.mmio_scratch=0xd0000000,0x10000");
    }
}
