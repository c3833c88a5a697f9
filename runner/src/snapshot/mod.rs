//! Snapshots of a running VM to a file, and restoring them (`docs/snapshot.md`).
//!
//! - [`format`]: the container (header, sections with CRCs), read as
//!   untrusted input.
//! - [`ram`]: guest RAM without its zero pages.

pub mod config;
pub mod format;
pub mod ram;

use std::fs::File;
use std::io::BufWriter;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use thiserror::Error;

use crate::control::SnapshotDone;
use crate::devices::chipset::Chipset;
use crate::devices::mmio_scratch::MmioScratch;
use crate::kvm::memory::PAGE;
use crate::kvm::state::{StateError, VcpuState, VmState};
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::Vm;

use config::{Config, ConfigError};
use format::{FormatError, Sections, SnapshotWriter, tags};

/// Why a snapshot could not be written or restored (one line).
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// Writing the file.
    #[error("writing the snapshot: {0}")]
    Io(#[from] std::io::Error),
    /// A file larger than any snapshot of this VM.
    #[error("the file is {len} bytes, more than a snapshot of this VM can be ({limit})")]
    TooLarge {
        /// Its size.
        len: u64,
        /// RAM plus room for the other sections.
        limit: u64,
    },
    /// The container is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The configuration does not match, or the image differs.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The RAM section.
    #[error(transparent)]
    Ram(#[from] ram::RamError),
    /// KVM state (reading, parsing, or KVM refusing it).
    #[error(transparent)]
    State(#[from] StateError),
    /// The chipset's state.
    #[error("chipset state: {0}")]
    Chipset(String),
    /// The other port devices or the scratch region.
    #[error("{0}")]
    Device(&'static str),
}

/// The devices a snapshot covers besides KVM and RAM.
pub struct Devices<'a, 'm> {
    /// PCI, bridges, IDE.
    pub chipset: &'a Mutex<Chipset<'m>>,
    /// COM1's state bytes, read under its lock.
    pub serial_state: &'a dyn Fn() -> Vec<u8>,
    /// The MMIO scratch region.
    pub scratch: Option<&'a MmioScratch>,
    /// Makes the write manifest durable up to now (`--manifest`).
    pub flush_manifest: &'a dyn Fn(),
}

/// Writes a snapshot of the paused VM (`vcpu` parked) to `file`, and
/// makes it durable. `config` is the run's own configuration; its disk
/// fingerprints are taken here.
pub fn save(
    vm: &Vm,
    vcpu: &Vcpu,
    devices: &Devices<'_, '_>,
    mut config: Config,
    disk_file: Option<&File>,
    in_flight: Option<Option<(u64, u64)>>,
    file: File,
) -> Result<SnapshotDone, SnapshotError> {
    let start = Instant::now();
    let cpu = vm.read_vcpu_state(vcpu)?;
    let kvm = vm.read_state()?;
    let chip = devices
        .chipset
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .save_state()
        .map_err(|e| SnapshotError::Chipset(e.to_string()))?;
    let ports = (devices.serial_state)();
    let scratch = devices.scratch.map(MmioScratch::bytes).unwrap_or_default();
    if let (Some(f), Some(u)) = (disk_file, config.units.first_mut())
        && u.kind == 1
    {
        // `in_flight`: None when nothing writes, Some(None) when a TRIM
        // may touch anything.
        let exclude = match in_flight {
            None => Some((0, 0)),
            Some(range) => range,
        };
        u.samples = config::fingerprint(f, &config::sample_sectors(u.sectors, exclude))?;
    }
    (devices.flush_manifest)();
    let runs = ram::nonzero_runs(vm.ram());
    let ram_pages: u64 = runs.iter().map(|(_, n)| n).sum();
    // Small buffers (here and in `ram::write`): the allocator keeps them in
    // its heap between snapshots, where a larger one would be a fresh
    // mapping whose pages fault in every time.
    let mut out = SnapshotWriter::new(BufWriter::with_capacity(ram::CHUNK, file))?;
    out.section(tags::CONFIG, &config.to_bytes())?;
    let ram_at = out.next_payload_at();
    out.streamed(tags::RAM, ram::section_len(&runs, ram_at), |w| {
        ram::write(vm.ram(), &runs, ram_at, w)
    })?;
    let mut b = Vec::new();
    cpu.to_bytes(&mut b);
    out.section(tags::VCPU, &b)?;
    b.clear();
    kvm.to_bytes(&mut b);
    out.section(tags::KVM, &b)?;
    out.section(tags::CHIPSET, &chip)?;
    out.section(tags::PORTS, &ports)?;
    out.section(tags::SCRATCH, &scratch)?;
    let (w, file_bytes) = out.finish()?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()?;
    Ok(SnapshotDone {
        file_bytes,
        ram_bytes: ram_pages * PAGE as u64,
        zero_pages: (vm.ram().len() / PAGE) as u64 - ram_pages,
        took: start.elapsed(),
    })
}

/// A snapshot read and checked whole, before any VM state changes
/// (`vmdma run --incoming file:PATH`): every section but the RAM's pages
/// in memory, the file kept open to map those.
#[derive(Debug)]
pub struct Incoming {
    file: File,
    sections: Sections,
    ram: ram::Layout,
}

impl Incoming {
    /// Opens `path` (a regular file of at most `limit` bytes) and checks
    /// it: the container (every CRC, the RAM pages' too, read through
    /// once), the configuration against `this` (and the disk images,
    /// unless `any_disk`), the RAM section's runs, the KVM state's
    /// lengths.
    pub fn read(
        path: &std::path::Path,
        limit: u64,
        this: &Config,
        files: [Option<&File>; 2],
        any_disk: bool,
    ) -> Result<Self, SnapshotError> {
        let file = crate::input_file::open_regular(path, false)
            .map_err(|e| SnapshotError::Io(std::io::Error::other(e.to_string())))?;
        let len = file.metadata()?.len();
        if len > limit {
            return Err(SnapshotError::TooLarge { len, limit });
        }
        let s = Sections::parse(&file, &[tags::RAM])?;
        Config::from_bytes(s.get(tags::CONFIG))?.check(this, files, any_disk)?;
        let (at, ram_len) = s.in_source(tags::RAM).unwrap_or((0, 0));
        let layout = ram::parse(&file, at, ram_len, this.ram)?;
        VcpuState::from_bytes(s.get(tags::VCPU))?;
        VmState::from_bytes(s.get(tags::KVM))?;
        if s.get(tags::SCRATCH).len() as u64 != this.scratch {
            return Err(SnapshotError::Device("MMIO scratch region of another size"));
        }
        Ok(Incoming {
            file,
            sections: s,
            ram: layout,
        })
    }

    /// The payload of `tag`.
    fn get(&self, tag: format::Tag) -> &[u8] {
        self.sections.get(tag)
    }

    /// COM1's saved state bytes.
    pub fn serial_state(&self) -> &[u8] {
        self.get(tags::PORTS)
    }

    /// Puts the snapshot into a VM built like the saved one: RAM, the
    /// in-kernel devices and clock, `vcpu`, the chipset and the scratch
    /// region (COM1 is built from [`Incoming::serial_state`] by the
    /// caller). The requests the chipset had in flight are issued again by
    /// its `restart`, which the caller runs once completions can be
    /// delivered.
    pub fn restore(
        &self,
        vm: &Vm,
        vcpu: &Vcpu,
        devices: &Devices<'_, '_>,
    ) -> Result<(), SnapshotError> {
        ram::restore(&self.ram, &self.file, vm.ram())?;
        vm.write_state(&VmState::from_bytes(self.get(tags::KVM))?)?;
        vm.write_vcpu_state(vcpu, &VcpuState::from_bytes(self.get(tags::VCPU))?)?;
        devices
            .chipset
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .restore_state(self.get(tags::CHIPSET))
            .map_err(|e| SnapshotError::Chipset(e.to_string()))?;
        if let Some(sc) = devices.scratch {
            sc.restore(self.get(tags::SCRATCH))
                .map_err(SnapshotError::Device)?;
        }
        Ok(())
    }
}

/// Creates a snapshot file at `path` (through a symbolic link, at its
/// target). An existing regular file there is replaced, never truncated in
/// place: a VM restored from it maps its pages (`ram::restore`), and keeps
/// the old file while it runs. Anything else there (a directory, a device,
/// a FIFO) is refused; the new file is created exclusively (`O_EXCL`), so
/// nothing planted between the two steps is followed.
pub fn create_file(path: &std::path::Path) -> std::io::Result<File> {
    use std::io::ErrorKind;
    use std::os::unix::fs::OpenOptionsExt;
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.is_file() => std::fs::remove_file(&target)?,
        Ok(_) => return Err(std::io::Error::other("not a regular file")),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_file_replaces_the_old_one_and_refuses_what_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.snap");
        std::fs::write(&path, b"old").unwrap();
        let old = File::open(&path).unwrap();
        let mut new = create_file(&path).unwrap();
        std::io::Write::write_all(&mut new, b"new!").unwrap();
        // The old file is untouched (a VM restored from it maps it).
        let mut b = String::new();
        std::io::Read::read_to_string(&mut &old, &mut b).unwrap();
        assert_eq!(b, "old");
        assert_eq!(std::fs::read(&path).unwrap(), b"new!");
        // Through a link: at its target.
        let link = dir.path().join("link.snap");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        create_file(&link).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // Not a regular file: refused, left alone.
        assert!(create_file(dir.path()).is_err());
        assert!(create_file(std::path::Path::new("/dev/null")).is_err());
        assert!(dir.path().is_dir());
    }
}
