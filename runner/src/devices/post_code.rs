//! Port 0x80, the PC's POST-code port ([`vmdma_protocol::POST_CODE_PORT`]):
//! a byte written here is a progress mark. The device only latches the
//! code; the vCPU loop takes it after the exit and records the counters
//! (see [`crate::metrics::marks`]). Reads give 0xFF, as on QEMU's `pc` machine.

use std::sync::Arc;

use crate::devices::bus::PioDevice;
use crate::metrics::marks::MarkLatch;

/// Ports decoded.
pub const POST_CODE_LEN: u16 = 1;

/// The POST-code port.
#[derive(Debug)]
pub struct PostCode {
    latch: Arc<MarkLatch>,
}

impl PostCode {
    /// A port that latches codes into `latch`.
    pub fn new(latch: Arc<MarkLatch>) -> Self {
        PostCode { latch }
    }
}

impl PioDevice for PostCode {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xFF);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) {
        if let [code] = data {
            self.latch.set(*code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latches_one_code_until_taken() {
        let latch = Arc::new(MarkLatch::default());
        let mut p = PostCode::new(latch.clone());
        assert_eq!(latch.take(), None);
        p.write(0, &[0]);
        assert_eq!(latch.take(), Some(0));
        assert_eq!(latch.take(), None);
        p.write(0, &[1]);
        p.write(0, &[0xB2]);
        assert_eq!(latch.take(), Some(0xB2));
        let mut b = [0u8];
        p.read(0, &mut b);
        assert_eq!(b, [0xFF]);
    }
}
