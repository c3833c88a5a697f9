//! Saving and restoring the PCI functions' state (feature `snapshot`):
//! each function's configuration space (checked on restore: bits the
//! guest cannot write must match the restoring function) and the
//! mechanism-1 address latch. Each is a section with its own magic and
//! version (see [`crate::snapshot`]).

use crate::snapshot::{Reader, SnapshotError, Writer};

use super::{ConfigMechanism1, HostBridge, IsaBridge, Piix3Ide};

/// Format version of the sections in this file.
const VERSION: u16 = 1;

macro_rules! function_state {
    ($ty:ty, $magic:expr, $what:expr) => {
        impl $ty {
            /// Saves the configuration space (a section of 262 bytes).
            pub fn save_state(&self, w: &mut Writer<'_>) -> Result<(), SnapshotError> {
                w.header($magic, VERSION)?;
                self.config.save(w)
            }

            /// Restores a configuration space saved by `save_state`. Bits
            /// the guest cannot write must match this function's (else
            /// [`SnapshotError::Invalid`]); on error nothing changes.
            pub fn restore_state(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
                let bytes = self.parse_state(r)?;
                self.apply_state(bytes);
                Ok(())
            }

            /// `restore_state`'s checks, changing nothing.
            pub(crate) fn parse_state(
                &self,
                r: &mut Reader<'_>,
            ) -> Result<[u8; 256], SnapshotError> {
                r.header($magic, VERSION)?;
                self.config.parse(r, $what)
            }

            /// Installs what `parse_state` accepted.
            pub(crate) fn apply_state(&mut self, bytes: [u8; 256]) {
                self.config.apply(bytes);
            }
        }
    };
}

function_state!(HostBridge, b"PCHB", "host bridge read-only config bits");
function_state!(IsaBridge, b"PCIS", "ISA bridge read-only config bits");
function_state!(Piix3Ide, b"PCID", "IDE function read-only config bits");

impl ConfigMechanism1 {
    /// Saves the address latch (0xCF8), a section of 10 bytes.
    pub fn save_state(&self, w: &mut Writer<'_>) -> Result<(), SnapshotError> {
        w.header(b"PCF8", VERSION)?;
        w.u32(self.address)
    }

    /// Restores the address latch; bits a guest write cannot set are
    /// refused ([`SnapshotError::Invalid`]); on error nothing changes.
    pub fn restore_state(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        r.header(b"PCF8", VERSION)?;
        let v = r.u32()?;
        if v & !super::mechanism1::LATCH_BITS != 0 {
            return Err(SnapshotError::Invalid("PCI config address latch"));
        }
        self.address = v;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::{AccessWidth, PciFunction};

    #[test]
    fn functions_round_trip_and_refuse_read_only_changes() {
        let mut ide = Piix3Ide::new();
        ide.firmware_init(0xC000).unwrap();
        ide.config_write(0x04, AccessWidth::Word, 0x0005);
        ide.config_write(0x40, AccessWidth::Dword, 0x8123_8456);
        let mut buf = [0u8; 300];
        let mut w = Writer::new(&mut buf);
        ide.save_state(&mut w).unwrap();
        let n = w.len();
        assert_eq!(n, 262);
        let mut fresh = Piix3Ide::new();
        fresh.restore_state(&mut Reader::new(&buf[..n])).unwrap();
        for off in (0..=252u8).step_by(4) {
            assert_eq!(
                fresh.config_read(off, AccessWidth::Dword),
                ide.config_read(off, AccessWidth::Dword)
            );
        }
        assert_eq!(fresh.bmdma_base(), Some(0xC000));
        // The device id is read-only: a state claiming another is refused
        // and changes nothing.
        buf[6 + 2] ^= 1;
        let mut other = Piix3Ide::new();
        assert_eq!(
            other.restore_state(&mut Reader::new(&buf[..n])),
            Err(SnapshotError::Invalid("IDE function read-only config bits"))
        );
        assert_eq!(other.config_read(0x04, AccessWidth::Word), 0);
        // Another function's section is not this one's.
        let mut host = HostBridge::new();
        assert_eq!(
            host.restore_state(&mut Reader::new(&buf[..n])),
            Err(SnapshotError::BadMagic)
        );
    }

    #[test]
    fn latch_round_trip() {
        let mut m = ConfigMechanism1::new();
        let mut bus: [(crate::pci::PciAddress, &mut dyn PciFunction); 0] = [];
        m.write(&mut bus[..], 0, AccessWidth::Dword, 0x8000_0903);
        let mut buf = [0u8; 10];
        let mut w = Writer::new(&mut buf);
        m.save_state(&mut w).unwrap();
        let mut n = ConfigMechanism1::new();
        n.restore_state(&mut Reader::new(&buf)).unwrap();
        assert_eq!(n.address(), m.address());
        assert_eq!(n.read(&mut bus[..], 0, AccessWidth::Dword), 0x8000_0900);
        buf[9] = 0x7F; // bits 24..30 are reserved
        assert!(n.restore_state(&mut Reader::new(&buf)).is_err());
    }
}
