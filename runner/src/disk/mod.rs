//! Block storage for the guest: raw image files opened as [`Image`]s and
//! turned into a [`Disk`] backend — synchronous ([`raw`]) or io_uring
//! ([`uring`]) — with their locks ([`lock`]), direct-I/O rules
//! ([`direct`]), the system calls behind them ([`sys`]) and the accounting
//! of where the data goes ([`accounting`]). In front of the engine, the
//! [`stage`] applies fault injection ([`blkdebug`]) and the error policies
//! ([`policy`]), and tells the monitor about errors ([`events`]).

pub mod accounting;
pub mod backend;
pub mod blkdebug;
pub mod direct;
pub mod events;
pub mod lock;
pub mod options;
pub mod policy;
pub mod raw;
pub mod stage;
pub mod sys;
pub mod uring;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

pub use backend::{Disk, DiskMode, Engine};
pub use options::{Aio, Cache, DiskSpec, Faults};
pub use raw::{DiskError, RawDisk};
pub use uring::UringDisk;

use blkdebug::Blkdebug;
use direct::DirectIo;
use events::DiskEvents;
use policy::ErrorPolicy;

use crate::input_file::{InputFileError, open_regular_with};

/// Size of the default temporary image: 130 GiB, past the 2^28-sector
/// LBA28 limit (128 GiB) so the guest can test LBA48 above it.
pub const TEMP_IMAGE_SIZE: u64 = 130 << 30;

/// An image file that is open, checked and locked: everything about the
/// disk that can fail on bad input, before any VM exists.
#[derive(Debug)]
pub struct Image {
    file: File,
    sectors: u64,
    read_only: bool,
    aio: Aio,
    cache: Cache,
    direct: Option<DirectIo>,
    policy: ErrorPolicy,
    faults: Option<Blkdebug>,
}

impl Image {
    /// Size in sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The image file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The error policy.
    pub fn policy(&self) -> ErrorPolicy {
        self.policy
    }

    /// Sets the error policy (front ends with their own option syntax).
    pub fn set_policy(&mut self, policy: ErrorPolicy) {
        self.policy = policy;
    }

    /// The backend for this image. With `aio=io_uring` on a kernel that
    /// refuses io_uring, the synchronous engine is used instead and the
    /// second value is the one-line warning to print. `events` is the
    /// monitor's queue: without one the policy cannot stop the VM (see
    /// [`ErrorPolicy::without_monitor`]).
    pub fn into_backend<'m>(
        self,
        events: Option<Arc<DiskEvents>>,
        device: &'static str,
    ) -> (Disk<'m>, DiskMode, Option<String>) {
        let Image {
            file,
            sectors,
            read_only,
            aio,
            cache,
            direct,
            policy,
            faults,
        } = self;
        let sync = |file| {
            Disk::new(Engine::Sync(RawDisk::checked(
                file, sectors, read_only, direct,
            )))
        };
        let (disk, warning) = match aio {
            Aio::Sync => (sync(file), None),
            Aio::IoUring => match UringDisk::new(file, sectors, read_only, direct) {
                Ok(u) => (Disk::new(Engine::Uring(Box::new(u))), None),
                Err((e, file)) => (sync(file), Some(format!("{e}; using aio=sync"))),
            },
        };
        let mode = DiskMode {
            aio: disk.aio(),
            cache,
        };
        let policy = if events.is_some() {
            policy
        } else {
            policy.without_monitor()
        };
        let mut disk = disk.with_policy(policy, events, device);
        if let Some(rules) = faults {
            disk = disk.with_faults(rules);
        }
        (disk, mode, warning)
    }
}

/// Opens the image `spec` names: read-only with a shared lock or read-write
/// with an exclusive lock, `O_DIRECT` for `cache=none`. Only regular files
/// are accepted, checked without blocking (a FIFO or device is refused,
/// never waited on).
pub fn open(spec: &DiskSpec) -> Result<Image, DiskError> {
    let flags = match spec.cache {
        Cache::None => libc::O_DIRECT,
        Cache::Writeback => 0,
    };
    let file = open_regular_with(&spec.path, !spec.read_only, flags).map_err(|e| match e {
        InputFileError::Io(e) => DiskError::Open(e),
        InputFileError::NotRegularFile(what) => DiskError::NotRegularFile(what),
    })?;
    let faults = match &spec.faults {
        None => None,
        Some(Faults { config: None }) => Some(Blkdebug::new()),
        Some(Faults { config: Some(p) }) => {
            Some(Blkdebug::from_file(p).map_err(DiskError::Blkdebug)?)
        }
    };
    let mut image = image(file, spec.read_only, spec.aio, spec.cache)?;
    image.policy = spec.policy;
    image.faults = faults;
    Ok(image)
}

fn image(file: File, read_only: bool, aio: Aio, cache: Cache) -> Result<Image, DiskError> {
    let sectors = raw::check_and_lock(&file, read_only)?;
    let direct = match cache {
        Cache::None => Some(DirectIo::probe(&file)?),
        Cache::Writeback => None,
    };
    Ok(Image {
        file,
        sectors,
        read_only,
        aio,
        cache,
        direct,
        policy: ErrorPolicy::default(),
        faults: None,
    })
}

/// Creates a sparse image of `size` bytes in the temporary directory
/// (`$TMPDIR`) that has no name: it disappears when the process ends, even
/// if killed.
pub fn temporary(size: u64, aio: Aio) -> Result<Image, DiskError> {
    image(temporary_file(size)?, false, aio, Cache::Writeback)
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
    use std::path::Path;
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

        for aio in [Aio::Sync, Aio::IoUring] {
            let img = temporary(TEMP_IMAGE_SIZE, aio).unwrap();
            assert_eq!(img.sectors(), TEMP_IMAGE_SIZE / 512);
            let (d, mode, warning) = img.into_backend(None, "ide0-hd0");
            assert_eq!((mode.aio, warning), (aio, None), "this kernel has io_uring");
            assert_eq!(d.sector_count(), TEMP_IMAGE_SIZE / 512);
            assert!(!d.is_read_only());
        }
    }

    #[test]
    fn open_errors() {
        assert!(matches!(
            open(&DiskSpec::new(Path::new("/nonexistent/vmdma.img"))),
            Err(DiskError::Open(_))
        ));
    }
}
