//! CD-ROM media: opening an ISO or raw CD image as the medium of the ATAPI
//! drive (`--cdrom`, QMP `blockdev-change-medium`). A leaf module: the
//! command line and the monitor both use it.

use std::path::Path;

use crate::disk::{self, Aio, DiskSpec, Image};

/// Bytes in a CD block.
pub const CD_BLOCK: u64 = 2048;

/// The QMP name of the CD-ROM drive (device 1 of the primary channel, as
/// QEMU names `-drive if=ide,index=1,media=cdrom`).
pub const CDROM_DEVICE: &str = "ide0-cd1";

/// Opens a CD-ROM image: read-only (shared lock), synchronous I/O (only
/// device 0's io_uring completions reach the I/O thread), a whole number
/// of 2048-byte blocks. The error is the reason, for one line.
pub fn open(path: &Path) -> Result<Image, String> {
    let spec = DiskSpec {
        read_only: true,
        aio: Aio::Sync,
        ..DiskSpec::new(path)
    };
    let image = disk::open(&spec).map_err(|e| e.to_string())?;
    let bytes = image.sectors().saturating_mul(512);
    if bytes % CD_BLOCK != 0 {
        return Err(format!(
            "{bytes} bytes is not a multiple of 2048 (CD blocks)"
        ));
    }
    Ok(image)
}
