//! Guest RAM in a snapshot: only the pages that are not zero.
//!
//! ```text
//! ram size u64 LE
//! runs     first page u64 LE, page count u64 LE, count × 4096 bytes
//! ```
//!
//! Runs are in ascending order and do not touch (two adjacent runs would be
//! one), inside the RAM size; a page left out is zero. Saving looks only at
//! the pages the host has resident (`mincore`: an untouched page of the
//! anonymous mapping is zero), so a 64 MiB guest that touched 2 MiB costs
//! about 2 MiB of reading and writing.

use std::io::{self, Write};

use thiserror::Error;

use crate::kvm::memory::{GuestRam, PAGE};

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
    /// A run header or its data is cut short.
    #[error("RAM section truncated")]
    Truncated,
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

/// The section's length for `runs`.
pub fn section_len(runs: &[(u64, u64)]) -> u64 {
    8 + runs.iter().map(|(_, n)| 16 + n * PAGE as u64).sum::<u64>()
}

/// Writes the section's payload for `runs` (from [`nonzero_runs`]; a page
/// the guest changed since is written as it is now).
pub fn write(ram: &GuestRam, runs: &[(u64, u64)], out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&(ram.len() as u64).to_le_bytes())?;
    // Up to 1 MiB at a time.
    let mut buf = vec![0u8; 256 * PAGE];
    for &(first, pages) in runs {
        out.write_all(&first.to_le_bytes())?;
        out.write_all(&pages.to_le_bytes())?;
        let mut page = first;
        let end = first + pages;
        while page < end {
            let n = (end - page).min(256);
            let chunk = buf.get_mut(..n as usize * PAGE).unwrap_or(&mut []);
            ram.read(page * PAGE as u64, chunk)
                .map_err(|e| io::Error::other(e.to_string()))?;
            out.write_all(chunk)?;
            page += n;
        }
    }
    Ok(())
}

/// Checks a RAM section against a VM of `ram_len` bytes without writing
/// anything (the snapshot is checked whole before any VM state changes).
pub fn check(payload: &[u8], ram_len: u64) -> Result<(), RamError> {
    apply_to(payload, ram_len, |_, _| {})
}

/// Writes the section's pages into `ram` (fresh: the pages left out are
/// zero already).
pub fn restore(payload: &[u8], ram: &GuestRam) -> Result<(), RamError> {
    apply_to(payload, ram.len() as u64, |addr, data| {
        // In range: checked by `apply_to` before.
        let _ = ram.write(addr, data);
    })
}

fn apply_to(payload: &[u8], ram_len: u64, mut put: impl FnMut(u64, &[u8])) -> Result<(), RamError> {
    let word = |b: &[u8], at: usize| -> Option<u64> {
        let mut w = [0u8; 8];
        w.copy_from_slice(b.get(at..at + 8)?);
        Some(u64::from_le_bytes(w))
    };
    let saved = word(payload, 0).ok_or(RamError::Truncated)?;
    if saved != ram_len {
        return Err(RamError::Size {
            saved,
            this: ram_len,
        });
    }
    let total_pages = ram_len / PAGE as u64;
    let mut at = 8usize;
    let mut next_free = 0u64;
    while at < payload.len() {
        let first = word(payload, at).ok_or(RamError::Truncated)?;
        let pages = word(payload, at + 8).ok_or(RamError::Truncated)?;
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
        let len = usize::try_from(pages * PAGE as u64).map_err(|_| bad("too large"))?;
        let data = payload
            .get(at + 16..)
            .and_then(|d| d.get(..len))
            .ok_or(RamError::Truncated)?;
        put(first * PAGE as u64, data);
        next_free = end;
        at += 16 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pages_that_are_not_zero_are_kept() {
        let ram = GuestRam::new(64 * PAGE).unwrap();
        ram.write(0, &[1]).unwrap();
        ram.write(PAGE as u64 + 5, &[2]).unwrap();
        ram.write(10 * PAGE as u64, &[3]).unwrap();
        // Touched but zero: left out.
        ram.write(20 * PAGE as u64, &[0]).unwrap();
        let runs = nonzero_runs(&ram);
        assert_eq!(runs, vec![(0, 2), (10, 1)]);
        let mut out = Vec::new();
        write(&ram, &runs, &mut out).unwrap();
        assert_eq!(out.len() as u64, section_len(&runs));
        let copy = GuestRam::new(64 * PAGE).unwrap();
        check(&out, copy.len() as u64).unwrap();
        restore(&out, &copy).unwrap();
        let (mut a, mut b) = (vec![0u8; 64 * PAGE], vec![0u8; 64 * PAGE]);
        ram.read(0, &mut a).unwrap();
        copy.read(0, &mut b).unwrap();
        assert!(a == b);
    }

    #[test]
    fn bad_sections_are_refused() {
        let len = 16 * PAGE as u64;
        let run = |first: u64, pages: u64| {
            let mut v = len.to_le_bytes().to_vec();
            v.extend_from_slice(&first.to_le_bytes());
            v.extend_from_slice(&pages.to_le_bytes());
            v.extend(std::iter::repeat_n(7u8, (pages.min(32) as usize) * PAGE));
            v
        };
        assert!(check(&run(0, 1), len).is_ok());
        assert!(matches!(
            check(&run(0, 1), len * 2),
            Err(RamError::Size { .. })
        ));
        assert!(matches!(check(&run(15, 2), len), Err(RamError::Run { .. })));
        assert!(matches!(check(&run(0, 0), len), Err(RamError::Run { .. })));
        assert!(matches!(
            check(&run(u64::MAX, 2), len),
            Err(RamError::Run { .. })
        ));
        let mut cut = run(0, 2);
        cut.truncate(cut.len() - 1);
        assert_eq!(check(&cut, len), Err(RamError::Truncated));
        let mut two = run(3, 1);
        two.extend_from_slice(&2u64.to_le_bytes());
        two.extend_from_slice(&1u64.to_le_bytes());
        two.extend(std::iter::repeat_n(0u8, PAGE));
        assert!(
            matches!(check(&two, len), Err(RamError::Run { .. })),
            "out of order"
        );
        assert_eq!(check(&[1, 2], len), Err(RamError::Truncated));
    }
}
