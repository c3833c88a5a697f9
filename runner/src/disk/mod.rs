//! Block storage for the guest: raw image files ([`raw`]), their locks
//! ([`lock`]), the system calls behind them ([`sys`]) and the accounting of
//! where the data goes ([`accounting`]).

pub mod accounting;
pub mod lock;
pub mod raw;
pub mod sys;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub use raw::{DiskError, RawDisk};

use crate::input_file::{InputFileError, open_regular};

/// Size of the default temporary image: 130 GiB, past the 2^28-sector
/// LBA28 limit (128 GiB) so the guest can test LBA48 above it.
pub const TEMP_IMAGE_SIZE: u64 = 130 << 30;

/// Opens the image at `path`, read-only with a shared lock or read-write
/// with an exclusive lock. Only regular files are accepted, checked without
/// blocking (a FIFO or device is refused, never waited on).
pub fn open(path: &Path, read_only: bool) -> Result<RawDisk, DiskError> {
    let file = open_regular(path, !read_only).map_err(|e| match e {
        InputFileError::Io(e) => DiskError::Open(e),
        InputFileError::NotRegularFile(what) => DiskError::NotRegularFile(what),
    })?;
    RawDisk::new(file, read_only)
}

/// Creates a sparse image of `size` bytes in the temporary directory
/// (`$TMPDIR`) that has no name: it disappears when the process ends, even
/// if killed.
pub fn temporary(size: u64) -> Result<RawDisk, DiskError> {
    RawDisk::new(temporary_file(size)?, false)
}

/// The file behind [`temporary`]: unnamed, sparse, `size` bytes long.
fn temporary_file(size: u64) -> Result<File, DiskError> {
    let dir = std::env::temp_dir();
    let err = |source| DiskError::Temporary {
        dir: dir.display().to_string(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).mode(0o600);
    let file = match opts.clone().custom_flags(libc::O_TMPFILE).open(&dir) {
        Ok(f) => f,
        // No O_TMPFILE support on this filesystem: create a uniquely named
        // file and unlink it at once.
        Err(_) => {
            let name = dir.join(format!(
                "vmdma-{}-{}.img",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            let f = opts.create_new(true).open(&name).map_err(err)?;
            std::fs::remove_file(&name).map_err(err)?;
            f
        }
    };
    file.set_len(size).map_err(err)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmdma_core::block::BlockDevice;

    #[test]
    fn temporary_image_is_sparse_and_unnamed() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;

        let f = temporary_file(TEMP_IMAGE_SIZE).unwrap();
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), TEMP_IMAGE_SIZE);
        // Sparse: 130 GiB long, (almost) nothing allocated. `blocks()`
        // counts 512-byte units.
        let allocated = meta.blocks() * 512;
        assert!(allocated < 1 << 20, "{allocated} bytes allocated");
        // Unnamed: no directory entry links to it.
        assert_eq!(meta.nlink(), 0);
        let link = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap();
        assert!(
            link.to_string_lossy().ends_with(" (deleted)"),
            "{}",
            link.display()
        );

        let d = temporary(TEMP_IMAGE_SIZE).unwrap();
        assert_eq!(d.sector_count(), TEMP_IMAGE_SIZE / 512);
        assert!(!d.is_read_only());
    }

    #[test]
    fn open_errors() {
        assert!(matches!(
            open(Path::new("/nonexistent/vmdma.img"), true),
            Err(DiskError::Open(_))
        ));
    }
}
