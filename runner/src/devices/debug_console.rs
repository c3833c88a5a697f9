//! The debug console at port 0xE9 (QEMU's `isa-debugcon`), the channel of
//! the guest's write manifest ([`vmdma_protocol::MANIFEST_PORT`]).
//!
//! With a sink (`--manifest FILE`) every byte written goes to the sink and a
//! read answers [`MANIFEST_PORT_READBACK`], telling the guest that someone
//! listens. Without one, reads give 0xFF like an unclaimed port and writes
//! are dropped, so the bundled guest sends no manifest at all.

use std::io::Write;

use vmdma_protocol::MANIFEST_PORT_READBACK;

use crate::devices::bus::PioDevice;

/// Ports decoded (QEMU's isa-debugcon decodes one).
pub const DEBUG_CONSOLE_LEN: u16 = 1;

/// The debug console, writing to `W`.
pub struct DebugConsole<W: Write> {
    sink: Option<W>,
    errors: u64,
}

impl<W: Write> std::fmt::Debug for DebugConsole<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugConsole")
            .field("listening", &self.sink.is_some())
            .field("errors", &self.errors)
            .finish()
    }
}

impl<W: Write> DebugConsole<W> {
    /// A console that records into `sink`, or ignores the guest if `None`.
    pub fn new(sink: Option<W>) -> Self {
        DebugConsole { sink, errors: 0 }
    }

    /// Failed writes to the sink so far (the guest is not told).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Flushes the sink; returns its error, if any.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write + Send> PioDevice for DebugConsole<W> {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        let v = if self.sink.is_some() {
            MANIFEST_PORT_READBACK
        } else {
            0xFF
        };
        data.fill(v);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) {
        if let Some(s) = &mut self.sink
            && s.write_all(data).is_err()
        {
            self.errors = self.errors.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_with_a_sink() {
        let mut c = DebugConsole::new(Some(Vec::new()));
        let mut b = [0u8];
        c.read(0, &mut b);
        assert_eq!(b[0], MANIFEST_PORT_READBACK);
        for &x in b"ab\n" {
            c.write(0, &[x]);
        }
        assert_eq!(c.sink.as_deref(), Some(&b"ab\n"[..]));

        let mut quiet: DebugConsole<Vec<u8>> = DebugConsole::new(None);
        quiet.read(0, &mut b);
        assert_eq!(b[0], 0xFF);
        quiet.write(0, b"x");
        assert!(quiet.flush().is_ok());
        assert_eq!(quiet.errors(), 0);
    }
}
