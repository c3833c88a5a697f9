//! The debug-exit port (`isa-debug-exit` in QEMU): a guest write of value
//! `v` at ports 0xF4..0xF8 ends the run; the runner then exits with
//! `runner_exit_status(v)`.

use std::sync::Arc;

use crate::control::{RunControl, StopReason};
use crate::devices::bus::PioDevice;

/// Number of ports decoded (QEMU's `iosize=0x04`).
pub const DEBUG_EXIT_LEN: u16 = 4;

/// The debug-exit device.
#[derive(Debug)]
pub struct DebugExit {
    control: Arc<RunControl>,
}

impl DebugExit {
    /// A device that stops the run through `control`.
    pub fn new(control: Arc<RunControl>) -> Self {
        DebugExit { control }
    }
}

impl PioDevice for DebugExit {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xFF);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) {
        let mut v = [0u8; 4];
        for (d, s) in v.iter_mut().zip(data) {
            *d = *s;
        }
        self.control
            .request_stop(StopReason::GuestExit(u32::from_le_bytes(v)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_stops_with_value() {
        let control = Arc::new(RunControl::new());
        let mut d = DebugExit::new(control.clone());
        d.write(0, &[0x2A, 0x01]);
        assert_eq!(control.stop_reason(), Some(StopReason::GuestExit(0x12A)));
        // The first stop wins.
        d.write(0, &[5]);
        assert_eq!(control.stop_reason(), Some(StopReason::GuestExit(0x12A)));
    }
}
