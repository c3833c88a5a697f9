//! A minimal i440FX-like PCI host bridge (bus 0, device 0, function 0).

use super::{AccessWidth, ConfigSpace, PciFunction, header};

/// The host bridge: identity only (`8086:1237`, class `0x0600`, revision 2).
///
/// Guests look for it to recognise a PC-compatible bus; no register beyond
/// the scratch fields is writable, and it has no BARs.
#[derive(Clone, Debug)]
pub struct HostBridge {
    pub(super) config: ConfigSpace,
}

impl Default for HostBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl HostBridge {
    /// Intel vendor ID.
    pub const VENDOR_ID: u16 = 0x8086;
    /// 82441FX (i440FX) PCI and memory controller.
    pub const DEVICE_ID: u16 = 0x1237;

    /// A host bridge in its reset state.
    pub const fn new() -> Self {
        let mut config = ConfigSpace::with_identity(
            Self::VENDOR_ID,
            Self::DEVICE_ID,
            0x06,
            0x00,
            0x00,
            0x02,
            header::TYPE_NORMAL,
        );
        // Memory decode and bus mastering are always on for a host bridge.
        config.set_u16(header::COMMAND, 0x0006);
        config.set_u16(
            header::STATUS,
            header::STATUS_DEVSEL_MEDIUM | header::STATUS_FAST_BACK,
        );
        HostBridge { config }
    }

    /// The configuration space.
    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }
}

impl PciFunction for HostBridge {
    fn config_read(&self, offset: u8, width: AccessWidth) -> u32 {
        self.config.read(offset, width)
    }

    fn config_write(&mut self, offset: u8, width: AccessWidth, value: u32) {
        self.config.write(offset, width, value);
    }
}
