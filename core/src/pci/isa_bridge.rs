//! A minimal PIIX3 PCI-to-ISA bridge (function 0 of the PIIX3 device).
//!
//! It exists so that the PIIX3 IDE function can sit at function 1 as on a
//! real PC (`00:01.1`): PCI scanners only look at functions 1..7 of a device
//! whose function 0 exists and sets the multi-function bit.

use super::{AccessWidth, ConfigSpace, PciFunction, header};

/// Offset of the first PIRQ route control register (PIRQRC\[A\]).
const PIRQRC: u8 = 0x60;

/// The PIIX3 ISA bridge: `8086:7000`, class `0x0601`, multi-function.
///
/// Only the PIRQ route control registers (0x60–0x63, reset value `0x80` =
/// routing disabled) are writable; nothing else is modelled.
#[derive(Clone, Debug)]
pub struct IsaBridge {
    pub(super) config: ConfigSpace,
}

impl Default for IsaBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl IsaBridge {
    /// Intel vendor ID.
    pub const VENDOR_ID: u16 = 0x8086;
    /// 82371SB PIIX3 PCI-to-ISA bridge.
    pub const DEVICE_ID: u16 = 0x7000;

    /// An ISA bridge in its reset state.
    pub const fn new() -> Self {
        let mut config = ConfigSpace::with_identity(
            Self::VENDOR_ID,
            Self::DEVICE_ID,
            0x06,
            0x01,
            0x00,
            0x00,
            header::TYPE_MULTI_FUNCTION,
        );
        config.set_u16(header::COMMAND, 0x0007);
        config.set_u16(header::STATUS, header::STATUS_DEVSEL_MEDIUM);
        config.set_u32(PIRQRC, 0x8080_8080);
        config.set_wmask(PIRQRC, &[0x8F; 4]);
        IsaBridge { config }
    }

    /// The configuration space.
    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }
}

impl PciFunction for IsaBridge {
    fn config_read(&self, offset: u8, width: AccessWidth) -> u32 {
        self.config.read(offset, width)
    }

    fn config_write(&mut self, offset: u8, width: AccessWidth, value: u32) {
        self.config.write(offset, width, value);
    }
}
