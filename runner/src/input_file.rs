//! Opening the files the user names (kernel, disk image) without ever
//! hanging: only regular files are accepted.
//!
//! A FIFO would block `open` until a writer appears (or `read` forever), and
//! a character device such as `/dev/zero` reports size 0 yet reads without
//! end. So the path is checked before opening, the open itself cannot block
//! (`O_NONBLOCK`, which Linux ignores for regular files' reads and writes),
//! and the opened handle is checked again (the path may have been replaced
//! in between).
#![forbid(unsafe_code)]

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why an input file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    /// The file could not be inspected or opened.
    #[error("{0}")]
    Io(io::Error),
    /// The path names something other than a regular file.
    #[error("not a regular file ({0})")]
    NotRegularFile(&'static str),
}

/// What kind of non-regular file `t` is, for error messages.
pub fn describe(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// Fails unless `t` is a regular file.
fn require_regular(t: FileType) -> Result<(), InputFileError> {
    if t.is_file() {
        Ok(())
    } else {
        Err(InputFileError::NotRegularFile(describe(t)))
    }
}

/// Opens the regular file at `path` (symbolic links followed) for reading,
/// and for writing too when `write`. Refuses anything else without blocking.
pub fn open_regular(path: &Path, write: bool) -> Result<File, InputFileError> {
    open_regular_with(path, write, 0)
}

/// [`open_regular`] with extra `open(2)` flags (e.g. `O_DIRECT`).
pub fn open_regular_with(path: &Path, write: bool, flags: i32) -> Result<File, InputFileError> {
    let before = std::fs::metadata(path).map_err(InputFileError::Io)?;
    require_regular(before.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY | flags)
        .open(path)
        .map_err(InputFileError::Io)?;
    let after = file.metadata().map_err(InputFileError::Io)?;
    require_regular(after.file_type())?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn regular_files_open_and_read() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"data").unwrap();
        let mut opened = open_regular(f.path(), false).unwrap();
        let mut s = String::new();
        opened.read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
        let mut w = open_regular(f.path(), true).unwrap();
        w.write_all(b"DA").unwrap();
        assert_eq!(std::fs::read(f.path()).unwrap(), b"DAta");
    }

    #[test]
    fn other_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for write in [false, true] {
            assert!(matches!(
                open_regular(&fifo, write),
                Err(InputFileError::NotRegularFile("a FIFO"))
            ));
        }
        assert!(matches!(
            open_regular(Path::new("/dev/zero"), false),
            Err(InputFileError::NotRegularFile("a character device"))
        ));
        assert!(matches!(
            open_regular(dir.path(), false),
            Err(InputFileError::NotRegularFile("a directory"))
        ));
        assert!(matches!(
            open_regular(&dir.path().join("missing"), false),
            Err(InputFileError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
