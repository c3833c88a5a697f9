//! Guest RAM: one anonymous host mapping registered as KVM memory slot 0
//! (parts of which a restore maps from a snapshot file, copy-on-write).
//!
//! This is the only module of the runner that maps memory or hands host
//! addresses to KVM. The mapping lives as long as the [`GuestRam`] value,
//! and so does its KVM memory slot: [`GuestRam`] deletes the slot before it
//! unmaps the memory, whoever else still holds the VM. Its unsafe code is
//! the mapping itself: `mmap`/`munmap`, the KVM slot, and the one
//! [`RamBacking`] made from the mapping ([`GuestRam::backing`]). Every
//! access to the bytes, the copies here ([`GuestRam::write`],
//! [`GuestRam::read`], [`GuestRam::zero`]) included, goes through the
//! core's [`VolatileSlice`] views cut from that backing (whose copies are
//! the unsafe of `core/src/memory/volatile.rs`), never through Rust
//! references, because vCPUs change it concurrently.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use thiserror::Error;

use vmdma_core::memory::{RamBacking, VolatileSlice};

/// Errors of guest RAM setup and access.
#[derive(Debug, Error)]
pub enum MemoryError {
    /// The requested size is zero.
    #[error("guest RAM size must not be zero")]
    ZeroSize,
    /// The host refused the mapping (address space or overcommit limits).
    #[error("cannot map {size} bytes of guest RAM: {source}")]
    Map {
        /// Requested size in bytes.
        size: usize,
        /// The `mmap` error.
        source: std::io::Error,
    },
    /// KVM refused the memory slot.
    #[error("KVM refused the guest RAM slot: {0}")]
    Register(kvm_ioctls::Error),
    /// The mapping already backs a KVM memory slot.
    #[error("guest RAM is already registered with a VM")]
    AlreadyRegistered,
    /// An access is not inside guest RAM.
    #[error("guest-physical range {addr:#x}+{len:#x} is outside guest RAM")]
    OutOfRange {
        /// Guest-physical start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// The page size `resident_pages` reports in.
pub const PAGE: usize = 4096;

/// Anonymous, private, zero-filled host memory that backs guest RAM from
/// guest-physical address 0. A restore maps ranges of a snapshot file over
/// it, privately ([`GuestRam::map_file_private`]).
///
/// Once registered ([`GuestRam::register`]) it keeps the VM and the slot
/// number, and its `Drop` deletes the slot before unmapping: KVM never
/// points at unmapped (or later re-used) host memory, however long other
/// holders of the VM file descriptor (vCPUs, interrupt lines) live.
#[derive(Debug)]
pub struct GuestRam {
    ptr: NonNull<u8>,
    len: usize,
    /// The VM and slot this mapping backs, once registered.
    slot: Option<(Arc<VmFd>, u32)>,
    /// Ranges mapped from a file (offset, length): `mincore` reports the
    /// file's page cache for their pages the guest has not written, so
    /// they count as resident.
    from_file: Mutex<Vec<(usize, usize)>>,
}

// SAFETY: `GuestRam` owns its mapping; all access goes through raw-pointer
// copies (no `&`/`&mut` into the mapping is created), which is the same
// discipline the vCPUs and the kernel follow. Sending or sharing the owner
// between threads therefore adds no aliasing.
unsafe impl Send for GuestRam {}
// SAFETY: see `Send`: all methods take `&self` and copy bytes through raw
// pointers; concurrent copies may tear, as on hardware, but are not UB for
// plain bytes accessed without references.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    /// Maps `len` bytes of zero-filled memory (`MAP_NORESERVE`: pages are
    /// only allocated when touched).
    pub fn new(len: usize) -> Result<Self, MemoryError> {
        if len == 0 {
            return Err(MemoryError::ZeroSize);
        }
        // SAFETY: an anonymous private mapping at a kernel-chosen address
        // does not touch any existing memory; the result is checked below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(MemoryError::Map {
                size: len,
                source: std::io::Error::last_os_error(),
            });
        }
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or(MemoryError::Map {
            size: len,
            source: std::io::Error::other("mmap returned a null address"),
        })?;
        Ok(GuestRam {
            ptr,
            len,
            slot: None,
            from_file: Mutex::new(Vec::new()),
        })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the mapping resident in host memory now (`mincore`), or
    /// `None` if the kernel refuses. This is how much RAM the guest has
    /// touched: the mapping is anonymous and populated on first touch.
    pub fn resident_bytes(&self) -> Option<u64> {
        let pages = self.resident_pages()?.iter().filter(|&&r| r).count();
        Some(pages as u64 * PAGE as u64)
    }

    /// For each 4 KiB page of the mapping, whether it is resident
    /// (`mincore`); `None` if the kernel refuses. A page that is not has
    /// never been touched and reads as zeros. Pages mapped from a file
    /// count as resident (they read as the file's bytes).
    pub fn resident_pages(&self) -> Option<Vec<bool>> {
        let mut vec = vec![0u8; self.len.div_ceil(PAGE)];
        // SAFETY: `ptr..ptr + len` is this object's live mapping (page
        // aligned, from mmap); `vec` has one byte per page of it, as
        // mincore(2) writes.
        let r = unsafe { libc::mincore(self.ptr.as_ptr().cast(), self.len, vec.as_mut_ptr()) };
        if r != 0 {
            return None;
        }
        let mut pages: Vec<bool> = vec.iter().map(|&b| b & 1 != 0).collect();
        for &(start, len) in self
            .from_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            for p in pages.iter_mut().skip(start / PAGE).take(len / PAGE) {
                *p = true;
            }
        }
        Some(pages)
    }

    /// Maps `len` bytes of `file` from `offset` over guest RAM at `addr`,
    /// privately: the guest reads the file's bytes and its first write to
    /// a page copies it (as `fork` does), so neither the file nor other
    /// mappings of it see guest writes. `addr`, `len` and `offset` are
    /// multiples of 4096. For a restore, before any vCPU runs.
    ///
    /// The file must stay as it is while the VM runs, as Firecracker's
    /// memory file: a page the guest has not written yet shows a later
    /// change to the file, and truncating the file discards even the pages
    /// the guest wrote (POSIX: a private mapping past the end of its file
    /// faults with `SIGBUS`, which ends the runner when it touches one).
    pub fn map_file_private(
        &self,
        addr: u64,
        len: usize,
        file: &File,
        offset: u64,
    ) -> Result<(), MemoryError> {
        let start = self.check(addr, len)?;
        let off = libc::off_t::try_from(offset).ok();
        let (Some(off), true) = (
            off,
            start.is_multiple_of(PAGE)
                && len.is_multiple_of(PAGE)
                && offset.is_multiple_of(PAGE as u64)
                && len > 0,
        ) else {
            return Err(MemoryError::OutOfRange {
                addr,
                len: len as u64,
            });
        };
        // SAFETY: `start..start + len` is inside this object's mapping
        // (checked above), page aligned; MAP_FIXED replaces exactly those
        // pages of it with a private mapping of the file, so the range
        // stays mapped, readable and writable for the object's lifetime
        // (`Drop` unmaps the whole range at once). Nothing forms Rust
        // references into the mapping (all access copies through raw
        // pointers), so a change of its contents is like a guest write;
        // KVM follows the change through its MMU notifier.
        let p = unsafe {
            libc::mmap(
                self.ptr.as_ptr().add(start).cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                file.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemoryError::Map {
                size: len,
                source: std::io::Error::last_os_error(),
            });
        }
        self.from_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((start, len));
        Ok(())
    }

    /// Always false: a mapping is never empty (`new` refuses size 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size in bytes as a guest-physical length.
    pub fn size(&self) -> u64 {
        self.len as u64
    }

    /// The KVM memory region describing this mapping in slot `slot` at
    /// guest-physical address 0 (`memory_size` 0 deletes the slot).
    fn region(&self, slot: u32, memory_size: u64) -> kvm_userspace_memory_region {
        kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: 0,
            memory_size,
            userspace_addr: self.ptr.as_ptr() as u64,
        }
    }

    /// Registers the mapping with `vm` as memory slot `slot` at guest-physical
    /// address 0. The slot is deleted again when `self` is dropped, before
    /// the memory is unmapped. A mapping backs at most one slot.
    pub fn register(&mut self, vm: &Arc<VmFd>, slot: u32) -> Result<(), MemoryError> {
        if self.slot.is_some() {
            return Err(MemoryError::AlreadyRegistered);
        }
        let region = self.region(slot, self.size());
        // SAFETY: the region describes exactly this mapping, which stays
        // mapped while `self` lives. Recording the slot below makes `Drop`
        // delete it before `munmap` (and leak the mapping if KVM refuses),
        // so KVM never refers to unmapped memory, whatever the lifetime of
        // the VM file descriptor and its vCPUs.
        unsafe { vm.set_user_memory_region(region) }.map_err(MemoryError::Register)?;
        self.slot = Some((vm.clone(), slot));
        Ok(())
    }

    /// Checks `addr..addr+len` and returns the offset as `usize`.
    fn check(&self, addr: u64, len: usize) -> Result<usize, MemoryError> {
        usize::try_from(addr)
            .ok()
            .and_then(|start| {
                let end = start.checked_add(len)?;
                (end <= self.len).then_some(start)
            })
            .ok_or(MemoryError::OutOfRange {
                addr,
                len: len as u64,
            })
    }

    /// The whole of guest RAM as a core [`RamBacking`] (for the region map
    /// that DMA goes through).
    pub fn backing(&self) -> RamBacking<'_> {
        // SAFETY: the mapping is valid for reads and writes for as long as
        // `&self` lives, and nothing forms Rust references into it.
        unsafe { RamBacking::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// A view of `addr..addr+len`, cut from [`GuestRam::backing`]: every
    /// access to guest RAM from the runner goes through the core's
    /// [`VolatileSlice`].
    pub fn slice(&self, addr: u64, len: usize) -> Result<VolatileSlice<'_>, MemoryError> {
        let start = self.check(addr, len)?;
        self.backing()
            .slice(start, len)
            .ok_or(MemoryError::OutOfRange {
                addr,
                len: len as u64,
            })
    }

    /// Copies `data` into guest RAM at `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.slice(addr, data.len())?.copy_from(0, data);
        Ok(())
    }

    /// Sets `len` bytes at `addr` to zero. Whole pages of the anonymous
    /// mapping are handed back to the kernel (`MADV_DONTNEED`: they read
    /// as zeros again without being touched, so zeroing a large `.bss`
    /// costs no page faults and no resident memory); the partial pages at
    /// the ends, pages mapped from a file, and everything if the kernel
    /// refuses, are written.
    pub fn zero(&self, addr: u64, len: usize) -> Result<(), MemoryError> {
        let start = self.check(addr, len)?;
        let end = start + len;
        let (first, last) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        let from_file = self
            .from_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|&(s, l)| s < last && first < s + l);
        if first < last && !from_file {
            // SAFETY: `first..last` is inside this object's mapping
            // (checked above) and page aligned; on an anonymous private
            // mapping DONTNEED only replaces those pages' contents with
            // zeros (the range stays mapped), which is what this function
            // promises. No Rust references into the mapping exist; KVM
            // follows the change through its MMU notifier.
            let r = unsafe {
                libc::madvise(
                    self.ptr.as_ptr().add(first).cast(),
                    last - first,
                    libc::MADV_DONTNEED,
                )
            };
            if r == 0 {
                self.slice(addr, first - start)?.fill(0, first - start, 0);
                self.slice(last as u64, end - last)?.fill(0, end - last, 0);
                return Ok(());
            }
        }
        self.slice(addr, len)?.fill(0, len, 0);
        Ok(())
    }

    /// Copies guest RAM at `addr` into `buf`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.slice(addr, buf.len())?.copy_to(0, buf);
        Ok(())
    }
}

impl Drop for GuestRam {
    fn drop(&mut self) {
        if let Some((vm, slot)) = self.slot.take() {
            let region = self.region(slot, 0);
            // SAFETY: a region of size 0 deletes the slot; KVM stops using
            // the mapping and touches no other host memory.
            if unsafe { vm.set_user_memory_region(region) }.is_err() {
                // KVM may still use the memory: leaking the mapping is the
                // only sound way out.
                return;
            }
        }
        // SAFETY: `ptr`/`len` are exactly the mapping created in `new`, no
        // KVM slot refers to it any more (deleted above), and no view
        // outlives `self` (views borrow it).
        // The result is ignored: nothing useful can be done about a failed
        // munmap at teardown.
        let _ = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_mapped_privately_reads_through_and_keeps_guest_writes() {
        use std::os::unix::fs::FileExt;
        let file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3 * PAGE).map(|i| (i / PAGE + 1) as u8).collect();
        file.write_all_at(&data, 0).unwrap();
        let ram = GuestRam::new(16 * PAGE).unwrap();
        // Misaligned or outside RAM: refused.
        assert!(ram.map_file_private(1, PAGE, &file, 0).is_err());
        assert!(ram.map_file_private(0, PAGE, &file, 1).is_err());
        assert!(
            ram.map_file_private(15 * PAGE as u64, 2 * PAGE, &file, 0)
                .is_err()
        );
        // File pages 1..3 at guest page 4.
        ram.map_file_private(4 * PAGE as u64, 2 * PAGE, &file, PAGE as u64)
            .unwrap();
        let mut b = [0u8; 2];
        ram.read(5 * PAGE as u64 - 1, &mut b).unwrap();
        assert_eq!(b, [2, 3]);
        ram.read(6 * PAGE as u64 - 1, &mut b).unwrap();
        assert_eq!(b, [3, 0]);
        // Counted as resident although the guest never touched them.
        let resident = ram.resident_pages().unwrap();
        assert!(resident[4] && resident[5] && !resident[10]);
        // A guest write stays in the guest.
        ram.write(4 * PAGE as u64, &[9]).unwrap();
        let mut f = [0u8; 1];
        file.read_exact_at(&mut f, PAGE as u64).unwrap();
        assert_eq!(f, [2]);
        ram.read(4 * PAGE as u64, &mut b).unwrap();
        assert_eq!(b, [9, 2]);
        // The file's descriptor can go: the mapping holds the file.
        drop(file);
        ram.read(6 * PAGE as u64 - 1, &mut b).unwrap();
        assert_eq!(b, [3, 0]);
    }

    #[test]
    fn zeroing_gives_whole_pages_back_and_writes_the_ends() {
        let ram = GuestRam::new(8 * PAGE).unwrap();
        let ones = vec![1u8; 8 * PAGE];
        ram.write(0, &ones).unwrap();
        // From the middle of page 1 to the middle of page 5.
        let (from, to) = (PAGE + 100, 5 * PAGE + 7);
        ram.zero(from as u64, to - from).unwrap();
        // Pages 2..5 are no longer resident; 1 and 5 (written) are.
        let r = ram.resident_pages().unwrap();
        assert!(r[1] && !r[2] && !r[3] && !r[4] && r[5]);
        let mut all = vec![0u8; 8 * PAGE];
        ram.read(0, &mut all).unwrap();
        for (i, b) in all.iter().enumerate() {
            assert_eq!(*b, u8::from(!(from..to).contains(&i)), "byte {i}");
        }
        // Inside one page, and empty.
        ram.zero(7 * PAGE as u64 + 1, 2).unwrap();
        ram.zero(3, 0).unwrap();
        let mut b = [9u8; 4];
        ram.read(7 * PAGE as u64, &mut b).unwrap();
        assert_eq!(b, [1, 0, 0, 1]);
        assert!(ram.zero(8 * PAGE as u64 - 1, 2).is_err());
    }

    #[test]
    fn bounds_are_checked() {
        let ram = GuestRam::new(8192).unwrap();
        assert_eq!(ram.len(), 8192);
        ram.write(8190, &[1, 2]).unwrap();
        let mut b = [0u8; 2];
        ram.read(8190, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        assert!(ram.write(8191, &[1, 2]).is_err());
        assert!(ram.read(u64::MAX, &mut b).is_err());
        assert!(ram.zero(8000, 193).is_err());
        ram.zero(8190, 2).unwrap();
        ram.read(8190, &mut b).unwrap();
        assert_eq!(b, [0, 0]);
        assert_eq!(ram.slice(4096, 4096).unwrap().len(), 4096);
        assert!(ram.slice(4097, 4096).is_err());
        assert!(matches!(GuestRam::new(0), Err(MemoryError::ZeroSize)));
    }

    /// A VM to register RAM with, or `None` (visibly skipped) without
    /// /dev/kvm; under `CI=true` a missing /dev/kvm fails the test.
    fn test_vm() -> Option<Arc<VmFd>> {
        match kvm_ioctls::Kvm::new() {
            Ok(kvm) => Some(Arc::new(kvm.create_vm().unwrap())),
            Err(e) => {
                assert!(
                    std::env::var("CI").map_or(true, |v| v != "true"),
                    "/dev/kvm is not available ({e}), and CI=true requires the KVM tests to run"
                );
                eprintln!("skipped: /dev/kvm not available");
                None
            }
        }
    }

    #[test]
    fn dropping_ram_deletes_its_slot() {
        let Some(vm) = test_vm() else { return };
        let mut first = GuestRam::new(1 << 20).unwrap();
        first.register(&vm, 0).unwrap();
        assert!(matches!(
            first.register(&vm, 1),
            Err(MemoryError::AlreadyRegistered)
        ));
        // Slot 0 is taken: KVM refuses another mapping for it (changing an
        // existing slot's host address is not allowed).
        let mut second = GuestRam::new(1 << 20).unwrap();
        assert!(matches!(
            second.register(&vm, 0),
            Err(MemoryError::Register(_))
        ));
        // Dropping the first RAM deletes slot 0, though the VM lives on.
        drop(first);
        second.register(&vm, 0).unwrap();
    }

    #[test]
    fn huge_mapping_is_refused_cleanly() {
        assert!(matches!(
            GuestRam::new(usize::MAX & !0xfff),
            Err(MemoryError::Map { .. })
        ));
    }
}
