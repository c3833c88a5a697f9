//! Access widths of port I/O and configuration cycles.

/// The width of a port or configuration access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessWidth {
    /// 8 bits.
    Byte,
    /// 16 bits.
    Word,
    /// 32 bits.
    Dword,
}

impl AccessWidth {
    /// The width of an access of `len` bytes (1, 2 or 4), if valid.
    pub const fn from_len(len: usize) -> Option<Self> {
        match len {
            1 => Some(AccessWidth::Byte),
            2 => Some(AccessWidth::Word),
            4 => Some(AccessWidth::Dword),
            _ => None,
        }
    }

    /// Number of bytes (1, 2 or 4).
    pub const fn bytes(self) -> usize {
        match self {
            AccessWidth::Byte => 1,
            AccessWidth::Word => 2,
            AccessWidth::Dword => 4,
        }
    }

    /// The value mask: `0xFF`, `0xFFFF` or `0xFFFF_FFFF`.
    pub const fn mask(self) -> u32 {
        match self {
            AccessWidth::Byte => 0xFF,
            AccessWidth::Word => 0xFFFF,
            AccessWidth::Dword => 0xFFFF_FFFF,
        }
    }

    /// All ones in this width: what an access to nothing returns.
    pub const fn all_ones(self) -> u32 {
        self.mask()
    }
}
