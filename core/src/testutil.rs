//! Test fixtures shared by the unit tests (compiled only for tests).

use std::sync::Mutex;
use std::vec;
use std::vec::Vec;

use crate::memory::{MmioError, MmioHandler};

/// An MMIO device that behaves like RAM and logs writes `(offset, len)`.
pub struct RamLikeMmio {
    pub bytes: Mutex<Vec<u8>>,
    pub writes: Mutex<Vec<(u64, usize)>>,
    pub reads: Mutex<usize>,
}

impl RamLikeMmio {
    pub fn new(len: usize) -> Self {
        RamLikeMmio {
            bytes: Mutex::new(vec![0; len]),
            writes: Mutex::new(Vec::new()),
            reads: Mutex::new(0),
        }
    }

    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    pub fn fill_with(&self, f: impl Fn(usize) -> u8) {
        for (i, b) in self.bytes.lock().unwrap().iter_mut().enumerate() {
            *b = f(i);
        }
    }
}

impl MmioHandler for RamLikeMmio {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), MmioError> {
        *self.reads.lock().unwrap() += 1;
        let b = self.bytes.lock().unwrap();
        let o = offset as usize;
        let src = b.get(o..o + data.len()).ok_or(MmioError::Unmapped)?;
        data.copy_from_slice(src);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MmioError> {
        self.writes.lock().unwrap().push((offset, data.len()));
        let mut b = self.bytes.lock().unwrap();
        let o = offset as usize;
        let dst = b.get_mut(o..o + data.len()).ok_or(MmioError::Unmapped)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

/// An MMIO handler that refuses everything.
pub struct DenyMmio;

impl MmioHandler for DenyMmio {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), MmioError> {
        Err(MmioError::Denied)
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), MmioError> {
        Err(MmioError::Denied)
    }
}
