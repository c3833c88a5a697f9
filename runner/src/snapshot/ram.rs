//! Guest RAM in a snapshot: only the pages that are not zero, their data
//! page-aligned in the file so that a restore maps it instead of reading
//! it.
//!
//! ```text
//! ram size   u64 LE
//! run count  u64 LE
//! runs       count × (first page u64 LE, page count u64 LE)
//! padding    zero bytes up to the next multiple of 4096 of the file offset
//! pages      the runs' pages, in the order of the runs
//! ```
//!
//! Runs are in ascending order and do not touch (two adjacent runs would be
//! one), inside the RAM size; a page left out is zero. Saving looks only at
//! the pages the host has resident (`mincore`: an untouched page of the
//! anonymous mapping is zero), so a 64 MiB guest that touched 2 MiB costs
//! about 2 MiB of reading and writing. Restoring maps the runs' pages from
//! the file privately (copy-on-write: [`GuestRam::map_file_private`]); the
//! guest's first touch of a page reads it from the page cache, its first
//! write copies it.

use std::fs::File;
use std::io::{self, Write};

use thiserror::Error;

use super::format::Source;
use crate::kvm::memory::{GuestRam, PAGE};

/// Runs mapped from the file at most; the rest are read in (each mapping
/// is a kernel VMA, and a process has at most `vm.max_map_count`, 65530 by
/// default).
pub const MAX_MAPPED_RUNS: usize = 4096;

/// Bytes copied out of guest RAM at a time while saving.
pub const CHUNK: usize = 16 * PAGE;

/// What is wrong with a RAM section.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RamError {
    /// Another RAM size than the restoring VM's.
    #[error("the snapshot's RAM is {saved} bytes, this VM has {this} (--memory must match)")]
    Size {
        /// In the snapshot.
        saved: u64,
        /// Of this VM.
        this: u64,
    },
    /// The run table or the pages are cut short, or the section is longer
    /// than its runs.
    #[error("RAM section truncated or of the wrong length")]
    Truncated,
    /// More runs than the RAM has pages.
    #[error("RAM section: {0} runs for a RAM this size")]
    Count(u64),
    /// The padding before the pages is not zero.
    #[error("RAM section: padding before the pages is not zero")]
    Padding,
    /// A run outside RAM, out of order, overlapping or empty.
    #[error("RAM section: run of {pages} page(s) at page {first} is {why}")]
    Run {
        /// First page.
        first: u64,
        /// Pages.
        pages: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// Reading or mapping the pages failed.
    #[error("RAM section: {0}")]
    Io(String),
}

/// Runs of pages that are not zero: `(first page, pages)`.
pub fn nonzero_runs(ram: &GuestRam) -> Vec<(u64, u64)> {
    let pages = ram.len() / PAGE;
    // Without mincore every page is looked at.
    let resident = ram.resident_pages().unwrap_or_else(|| vec![true; pages]);
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut buf = vec![0u8; PAGE];
    for (i, r) in resident.iter().enumerate().take(pages) {
        if !*r {
            continue;
        }
        if ram.read((i * PAGE) as u64, &mut buf).is_err() || buf.iter().all(|&b| b == 0) {
            continue;
        }
        let i = i as u64;
        match runs.last_mut() {
            Some((first, n)) if *first + *n == i => *n += 1,
            _ => runs.push((i, 1)),
        }
    }
    runs
}

/// Padding after a run table of `count` runs, for a payload at file
/// offset `payload_at`.
fn padding(payload_at: u64, count: u64) -> u64 {
    let table_end = payload_at + 16 + 16 * count;
    (PAGE as u64 - table_end % PAGE as u64) % PAGE as u64
}

/// The section's length for `runs`, its payload at file offset
/// `payload_at`.
pub fn section_len(runs: &[(u64, u64)], payload_at: u64) -> u64 {
    let count = runs.len() as u64;
    16 + 16 * count
        + padding(payload_at, count)
        + runs.iter().map(|(_, n)| n * PAGE as u64).sum::<u64>()
}

/// Writes the section's payload for `runs` (from [`nonzero_runs`]; a page
/// the guest changed since is written as it is now), the payload at file
/// offset `payload_at`.
pub fn write(
    ram: &GuestRam,
    runs: &[(u64, u64)],
    payload_at: u64,
    out: &mut dyn Write,
) -> io::Result<()> {
    out.write_all(&(ram.len() as u64).to_le_bytes())?;
    out.write_all(&(runs.len() as u64).to_le_bytes())?;
    for &(first, pages) in runs {
        out.write_all(&first.to_le_bytes())?;
        out.write_all(&pages.to_le_bytes())?;
    }
    let pad = padding(payload_at, runs.len() as u64) as usize;
    out.write_all(&[0u8; PAGE][..pad])?;
    let mut buf = vec![0u8; CHUNK];
    for &(first, pages) in runs {
        let mut page = first;
        let end = first + pages;
        while page < end {
            let n = (end - page).min((CHUNK / PAGE) as u64);
            let chunk = buf.get_mut(..n as usize * PAGE).unwrap_or(&mut []);
            ram.read(page * PAGE as u64, chunk)
                .map_err(|e| io::Error::other(e.to_string()))?;
            out.write_all(chunk)?;
            page += n;
        }
    }
    Ok(())
}

/// One run of a checked section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First guest page.
    pub first: u64,
    /// Pages.
    pub pages: u64,
    /// Where its pages are in the file (a multiple of 4096).
    pub at: u64,
}

/// A checked RAM section: its runs and where their pages are.
#[derive(Debug, Default)]
pub struct Layout {
    /// In ascending order, inside RAM, not touching.
    pub runs: Vec<Run>,
}

impl Layout {
    /// Pages with data.
    pub fn pages(&self) -> u64 {
        self.runs.iter().map(|r| r.pages).sum()
    }
}

/// Checks the RAM section whose payload is `len` bytes at `at` in `src`
/// against a VM of `ram_len` bytes, reading only its run table and
/// padding (the container's CRC covered the pages already).
pub fn parse<S: Source + ?Sized>(
    src: &S,
    at: u64,
    len: u64,
    ram_len: u64,
) -> Result<Layout, RamError> {
    let read = |off: u64, buf: &mut [u8]| src.read_at(off, buf).map_err(|_| RamError::Truncated);
    if len < 16 {
        return Err(RamError::Truncated);
    }
    let mut words = [0u8; 16];
    read(at, &mut words)?;
    let word = |b: &[u8], i: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(b.get(i * 8..i * 8 + 8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(w)
    };
    let saved = word(&words, 0);
    if saved != ram_len {
        return Err(RamError::Size {
            saved,
            this: ram_len,
        });
    }
    let total_pages = ram_len / PAGE as u64;
    let count = word(&words, 1);
    if count > total_pages {
        return Err(RamError::Count(count));
    }
    let table_len = 16 * count;
    let pad = padding(at, count);
    let data_at = at + 16 + table_len + pad;
    if len < 16 + table_len + pad {
        return Err(RamError::Truncated);
    }
    // Bounded: at most 16 bytes per page of this VM, and inside the file.
    let mut table = vec![0u8; table_len as usize];
    read(at + 16, &mut table)?;
    let mut padding = vec![0u8; pad as usize];
    read(at + 16 + table_len, &mut padding)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(RamError::Padding);
    }
    let mut runs = Vec::with_capacity(count as usize);
    let mut next_free = 0u64;
    let mut data = data_at;
    for i in 0..count as usize {
        let first = word(&table, 2 * i);
        let pages = word(&table, 2 * i + 1);
        let bad = |why| RamError::Run { first, pages, why };
        if pages == 0 {
            return Err(bad("empty"));
        }
        if first < next_free || (first == next_free && first != 0) {
            return Err(bad("out of order or touching the run before"));
        }
        let end = first.checked_add(pages).ok_or(bad("past the end of RAM"))?;
        if end > total_pages {
            return Err(bad("past the end of RAM"));
        }
        runs.push(Run {
            first,
            pages,
            at: data,
        });
        // No overflow: pages ≤ total pages, and their sum too.
        data += pages * PAGE as u64;
        next_free = end;
    }
    if data - at != len {
        return Err(RamError::Truncated);
    }
    Ok(Layout { runs })
}

/// Puts the runs of `layout` (checked by [`parse`] against `file`) into
/// `ram`, fresh (the pages left out are zero already): the first
/// [`MAX_MAPPED_RUNS`] are mapped from `file` copy-on-write, the rest (and
/// every run, if the file system refuses to map the file) read in. Before
/// the guest runs.
pub fn restore(layout: &Layout, file: &File, ram: &GuestRam) -> Result<(), RamError> {
    restore_with(layout, file, ram, MAX_MAPPED_RUNS)
}

fn restore_with(
    layout: &Layout,
    file: &File,
    ram: &GuestRam,
    max_mapped: usize,
) -> Result<(), RamError> {
    use std::os::unix::fs::FileExt;
    let io = |e: String| RamError::Io(e);
    let mut buf = Vec::new();
    // A file system that cannot map files: everything is read in.
    let mut can_map = true;
    for (i, r) in layout.runs.iter().enumerate() {
        let addr = r.first * PAGE as u64;
        let len = usize::try_from(r.pages * PAGE as u64).map_err(|_| RamError::Truncated)?;
        if i < max_mapped && can_map {
            match ram.map_file_private(addr, len, file, r.at) {
                Ok(()) => continue,
                Err(_) => can_map = false,
            }
        }
        // Up to 1 MiB at a time.
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(256 * PAGE);
            buf.resize(n, 0);
            file.read_exact_at(&mut buf, r.at + done as u64)
                .map_err(|e| io(e.to_string()))?;
            ram.write(addr + done as u64, &buf)
                .map_err(|e| io(e.to_string()))?;
            done += n;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// A section for `runs` (data: each page filled with its number), its
    /// payload at offset 0.
    fn section(ram_len: u64, runs: &[(u64, u64)]) -> Vec<u8> {
        let mut v = ram_len.to_le_bytes().to_vec();
        v.extend_from_slice(&(runs.len() as u64).to_le_bytes());
        for (f, n) in runs {
            v.extend_from_slice(&f.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
        }
        v.resize(v.len() + padding(0, runs.len() as u64) as usize, 0);
        for (f, n) in runs {
            for p in *f..f.saturating_add(*n.min(&64)) {
                v.extend(std::iter::repeat_n(p as u8, PAGE));
            }
        }
        v
    }

    fn all(ram: &GuestRam) -> Vec<u8> {
        let mut a = vec![0u8; ram.len()];
        ram.read(0, &mut a).unwrap();
        a
    }

    #[test]
    fn only_pages_that_are_not_zero_are_kept_and_mapped_back() {
        let ram = GuestRam::new(64 * PAGE).unwrap();
        ram.write(0, &[1]).unwrap();
        ram.write(PAGE as u64 + 5, &[2]).unwrap();
        ram.write(10 * PAGE as u64, &[3]).unwrap();
        ram.write(30 * PAGE as u64, &[4]).unwrap();
        // Touched but zero: left out.
        ram.write(20 * PAGE as u64, &[0]).unwrap();
        let runs = nonzero_runs(&ram);
        assert_eq!(runs, vec![(0, 2), (10, 1), (30, 1)]);
        // The payload at an odd offset of the file: its pages still start
        // at a multiple of 4096.
        for (prefix, max_mapped) in [(100u64, MAX_MAPPED_RUNS), (4096, 1), (5000, 0)] {
            let mut out = vec![0xA5u8; prefix as usize];
            write(&ram, &runs, prefix, &mut out).unwrap();
            assert_eq!(out.len() as u64 - prefix, section_len(&runs, prefix));
            let file = tempfile::tempfile().unwrap();
            file.write_all_at(&out, 0).unwrap();
            let layout = parse(&file, prefix, out.len() as u64 - prefix, ram.len() as u64).unwrap();
            assert_eq!(layout.pages(), 4);
            assert!(layout.runs.iter().all(|r| r.at % PAGE as u64 == 0));
            let copy = GuestRam::new(64 * PAGE).unwrap();
            restore_with(&layout, &file, &copy, max_mapped).unwrap();
            // The file goes away: mapped pages stay.
            drop(file);
            assert!(all(&ram) == all(&copy), "prefix {prefix}");
            // Writing a mapped page changes the guest's copy only.
            copy.write(5, &[9]).unwrap();
            let mut b = [0u8; 1];
            copy.read(5, &mut b).unwrap();
            assert_eq!(b, [9]);
        }
    }

    #[test]
    fn bad_sections_are_refused() {
        let len = 16 * PAGE as u64;
        let check = |v: &[u8], ram_len| parse(v, 0, v.len() as u64, ram_len).map(|_| ());
        assert!(check(&section(len, &[(0, 1)]), len).is_ok());
        assert!(check(&section(len, &[(0, 1), (2, 3)]), len).is_ok());
        assert!(check(&section(len, &[]), len).is_ok());
        assert!(matches!(
            check(&section(len, &[(0, 1)]), len * 2),
            Err(RamError::Size { .. })
        ));
        assert!(matches!(
            check(&section(len, &[(15, 2)]), len),
            Err(RamError::Run { .. })
        ));
        assert!(matches!(
            check(&section(len, &[(0, 0)]), len),
            Err(RamError::Run { .. })
        ));
        assert!(matches!(
            check(&section(len, &[(u64::MAX, 2)]), len),
            Err(RamError::Run { .. })
        ));
        assert!(
            matches!(
                check(&section(len, &[(3, 1), (2, 1)]), len),
                Err(RamError::Run { .. })
            ),
            "out of order"
        );
        assert!(
            matches!(
                check(&section(len, &[(1, 1), (2, 1)]), len),
                Err(RamError::Run { .. })
            ),
            "touching"
        );
        let mut cut = section(len, &[(0, 2)]);
        cut.truncate(cut.len() - 1);
        assert_eq!(check(&cut, len), Err(RamError::Truncated));
        let mut long = section(len, &[(0, 2)]);
        long.push(0);
        assert_eq!(check(&long, len), Err(RamError::Truncated));
        let mut pad = section(len, &[(0, 1)]);
        pad[40] = 1;
        assert_eq!(check(&pad, len), Err(RamError::Padding));
        // A huge count is refused before anything is allocated.
        let mut huge = section(len, &[(0, 1)]);
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(check(&huge, len), Err(RamError::Count(u64::MAX)));
        let mut many = section(len, &[(0, 1)]);
        many[8..16].copy_from_slice(&16u64.to_le_bytes());
        assert!(check(&many, len).is_err());
        assert_eq!(check(&[1, 2], len), Err(RamError::Truncated));
    }
}
