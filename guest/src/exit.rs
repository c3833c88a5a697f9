//! Ending the VM through the debug-exit port.

use vmdma_protocol::DEBUG_EXIT_PORT;

use crate::arch::{cpu, io};

/// Writes `value` (one of the `GUEST_EXIT_*` values) to the debug-exit port
/// with a 32-bit `out`, then halts in case the platform has no such port.
pub fn exit(value: u32) -> ! {
    io::outl(DEBUG_EXIT_PORT, value);
    cpu::halt_forever()
}
