//! The one image file every run uses: created (or grown) and filled with
//! data so that reads move real page-cache pages, not holes, and read
//! through before every I/O measurement so that each starts page-cached.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Bytes written or read per system call while filling or warming.
const CHUNK: usize = 1 << 20;

/// What failed while preparing, warming or syncing the image.
#[derive(Debug, Error)]
pub enum ImageError {
    /// The file could not be opened or created.
    #[error("image {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Its length could not be read.
    #[error("{0}")]
    Metadata(io::Error),
    /// Growing it or writing the data failed.
    #[error("filling {}: {source}", path.display())]
    Fill {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Reading it through the page cache failed.
    #[error("{0}")]
    Warm(io::Error),
    /// Writing its dirty pages back (`fsync`) failed.
    #[error("{0}")]
    Sync(io::Error),
}

/// The image, removed on drop if the bench created it in the temporary
/// directory.
#[derive(Debug)]
pub struct Image {
    path: PathBuf,
    used: u64,
    remove: bool,
}

impl Image {
    /// Uses `path` (or a new file in the temporary directory), at least
    /// `used` bytes long, with data in every byte the bench touches.
    pub fn prepare(path: Option<&Path>, used: u64) -> Result<Self, ImageError> {
        let (path, remove) = match path {
            Some(p) => (p.to_path_buf(), false),
            None => (
                std::env::temp_dir().join(format!("vmdma-bench-{}.img", std::process::id())),
                true,
            ),
        };
        let image = Image { path, used, remove };
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&image.path)
            .map_err(|source| ImageError::Create {
                path: image.path.clone(),
                source,
            })?;
        let len = f.metadata().map_err(ImageError::Metadata)?.len();
        if len < used {
            fill(&f, len, used).map_err(|source| ImageError::Fill {
                path: image.path.clone(),
                source,
            })?;
        }
        Ok(image)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the used part once through the page cache (before every I/O
    /// measurement: `O_DIRECT` writes drop the cached pages they
    /// overwrite, and a host may reclaim pages left idle).
    pub fn warm(&self) -> Result<(), ImageError> {
        let f = File::open(&self.path).map_err(ImageError::Warm)?;
        let mut buf = vec![0u8; CHUNK];
        let mut at = 0;
        while at < self.used {
            let n = f.read_at(&mut buf, at).map_err(ImageError::Warm)?;
            if n == 0 {
                break;
            }
            at += n as u64;
        }
        Ok(())
    }

    /// Writes the image's dirty pages back (`fsync`), so that the next
    /// measurement does not pay for writes an earlier one left in the page
    /// cache (a VMM's final flush at exit would).
    pub fn settle(&self) -> Result<(), ImageError> {
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(ImageError::Sync)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes non-zero data from `from` to `to` (and sets the length).
fn fill(f: &File, from: u64, to: u64) -> std::io::Result<()> {
    f.set_len(to)?;
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8 | 1).collect();
    let mut at = from - from % CHUNK as u64;
    while at < to {
        let n = usize::try_from((to - at).min(CHUNK as u64)).unwrap_or(CHUNK);
        f.write_all_at(chunk.get(..n).unwrap_or(&[]), at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_fills_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.img");
        {
            let img = Image::prepare(Some(&p), 3 << 20).unwrap();
            assert_eq!(std::fs::metadata(img.path()).unwrap().len(), 3 << 20);
        }
        assert!(p.exists(), "a named image stays");
        let mut b = [0u8; 1];
        File::open(&p)
            .unwrap()
            .read_at(&mut b, (3 << 20) - 1)
            .unwrap();
        assert_ne!(b[0], 0, "filled to the end");
        let tmp = Image::prepare(None, 4096).unwrap();
        let tp = tmp.path().to_path_buf();
        assert!(tp.exists());
        drop(tmp);
        assert!(!tp.exists(), "a temporary image goes");
        let missing = dir.path().join("no/such/dir.img");
        let e = Image::prepare(Some(&missing), 4096).unwrap_err();
        assert!(matches!(e, ImageError::Create { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("image {}: ", missing.display())),
            "{e}"
        );
    }
}
