//! The bundled test guest, built from `guest/` by `build.rs` and embedded
//! in the binary.

/// The bundled guest ELF, if this build has one.
#[cfg(vmdma_bundled_guest)]
pub const BUNDLED_GUEST: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("OUT_DIR"), "/vmdma-guest.elf")));

/// The bundled guest ELF, if this build has one.
#[cfg(not(vmdma_bundled_guest))]
pub const BUNDLED_GUEST: Option<&[u8]> = None;
