//! The C allocator under the filters: glibc's `free` may shrink a thread
//! arena's heap, and the first time it does it reads
//! `/proc/sys/vm/overcommit_memory` (an `openat`, on no thread's list: the
//! vCPU thread was killed that way after freeing the buffers of a
//! snapshot). Fixing the trim threshold turns that trimming off (and, as
//! glibc documents, its dynamic mmap threshold with it: large blocks are
//! always mapped and unmapped, `mmap`/`munmap` being on the lists), so no
//! `free` on a sandboxed thread opens a file. The cost: memory freed in a
//! thread's heap stays with the process instead of going back to the
//! kernel; the runner's heaps are small.
#![allow(unsafe_code)]

/// Sets the allocator up for the filters; called once, before any thread
/// is spawned.
pub fn prepare() {
    #[cfg(target_env = "gnu")]
    {
        // A trim threshold no heap reaches (2 GiB: `c_int::MAX`).
        const NEVER: libc::c_int = libc::c_int::MAX;
        // SAFETY: mallopt only sets allocator parameters; it is called
        // before the VMM's threads exist, so nothing allocates meanwhile.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, NEVER);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        }
    }
}
