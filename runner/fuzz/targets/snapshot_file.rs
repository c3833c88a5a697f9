//! Bytes → the runner's reading of a snapshot file (`vmdma run --incoming`)
//! without KVM: the container (`snapshot::format::Sections::parse`, the RAM
//! section left in the file), the configuration, vCPU and VM state parsers,
//! the RAM section's run table (`snapshot::ram::parse`) and, for a table
//! that passes, the restore of its pages into a fresh fake guest RAM
//! (mapped from a file holding the input, as `--incoming` maps them).
//! Nothing may panic, and:
//!
//! - a file the container accepts ends in `END `, and the RAM section it
//!   leaves in the file lies inside it;
//! - accepted runs are ascending, not touching, inside RAM, their pages at
//!   multiples of 4096 in the file, one after the other, filling the
//!   section to its end;
//! - after the restore, RAM holds each run's pages from the file and zeros
//!   everywhere else.
//!
//! A random file almost never has valid CRCs, so the first byte picks the
//! input's shape: odd, the raw file; even, a list of sections (a tag index,
//! a 16-bit length, the payload) that the target writes with correct CRCs
//! (`SnapshotWriter`), the RAM section's payload placed where its pages end
//! up page-aligned, as `migrate` writes them.
//!
//! Plain stable Rust: the libFuzzer wrapper (`../fuzz_targets/snapshot_file.rs`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`) both include this
//! file and call [`run`]. `fuzz/run.sh` caps inputs at 64 KiB.

use std::io::Write;
use std::os::unix::fs::FileExt;

use vmdma::kvm::memory::{GuestRam, PAGE};
use vmdma::kvm::state::{VcpuState, VmState};
use vmdma::snapshot::config::Config;
use vmdma::snapshot::format::{Sections, SnapshotWriter, tags};
use vmdma::snapshot::ram;

/// The fake guest RAM: 32 pages.
pub const RAM_SIZE: usize = 32 * PAGE;

/// Builds a file from `data` (see the module docs).
fn file_bytes(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    if mode & 1 == 1 {
        return rest.to_vec();
    }
    let Ok(mut w) = SnapshotWriter::new(Vec::new()) else {
        return Vec::new();
    };
    let mut at = 0usize;
    while let Some(head) = rest.get(at..at + 3) {
        let tag = tags::ALL[usize::from(head[0]) % tags::ALL.len()];
        let len = usize::from(u16::from_le_bytes([head[1], head[2]]));
        at += 3;
        let payload = rest.get(at..).map_or(&[][..], |r| &r[..len.min(r.len())]);
        at += payload.len();
        if tag == tags::END {
            break;
        }
        // The RAM section: its first 16 bytes (ram size, run count) and
        // table as given, then zero padding to a page boundary, then the
        // rest as pages.
        let payload = if tag == tags::RAM && payload.len() >= 16 {
            let count = u64::from_le_bytes(payload[8..16].try_into().unwrap_or([0; 8])) as usize;
            let table_end = 16usize
                .saturating_add(count.saturating_mul(16))
                .min(payload.len());
            let start = w.next_payload_at() as usize;
            let pad = (PAGE - (start + table_end) % PAGE) % PAGE;
            let mut p = payload[..table_end].to_vec();
            p.resize(table_end + pad, 0);
            p.extend_from_slice(&payload[table_end..]);
            p
        } else {
            payload.to_vec()
        };
        if w.section(tag, &payload).is_err() {
            return Vec::new();
        }
    }
    w.finish().map(|(v, _)| v).unwrap_or_default()
}

/// Parses (and restores) `data`; panics if a promise is broken.
pub fn run(data: &[u8]) {
    let file = file_bytes(data);
    let Ok(s) = Sections::parse(&file[..], &[tags::RAM]) else {
        return;
    };
    // The last section is `END ` (tag, zero length, CRC: 16 bytes).
    let end = file
        .len()
        .checked_sub(16)
        .expect("a header and END at least");
    assert_eq!(&file[end..end + 12], b"END \0\0\0\0\0\0\0\0");
    let _ = Config::from_bytes(s.get(tags::CONFIG));
    let _ = VcpuState::from_bytes(s.get(tags::VCPU));
    let _ = VmState::from_bytes(s.get(tags::KVM));
    let (at, len) = s
        .in_source(tags::RAM)
        .expect("the RAM section stays in the file");
    assert!(
        at.checked_add(len)
            .is_some_and(|end| end <= file.len() as u64)
    );
    let Ok(layout) = ram::parse(&file[..], at, len, RAM_SIZE as u64) else {
        return;
    };
    let page = PAGE as u64;
    let mut next_free: Option<u64> = None;
    let mut data_at = layout.runs.first().map_or(at + len, |r| r.at);
    assert!(data_at >= at);
    for r in &layout.runs {
        assert!(r.pages > 0 && r.first + r.pages <= RAM_SIZE as u64 / page);
        assert!(
            next_free.is_none_or(|n| r.first > n),
            "ascending, not touching"
        );
        assert_eq!(r.at % page, 0);
        assert_eq!(r.at, data_at);
        data_at += r.pages * page;
        next_free = Some(r.first + r.pages);
    }
    assert_eq!(data_at, at + len, "the pages fill the section");

    let mut f = tempfile::tempfile().expect("a temporary file");
    f.write_all(&file).expect("write the file");
    let ram_mem = GuestRam::new(RAM_SIZE).expect("map the fake guest RAM");
    ram::restore(&layout, &f, &ram_mem).expect("a checked layout restores");
    let mut got = vec![0u8; RAM_SIZE];
    ram_mem.read(0, &mut got).expect("read RAM");
    let mut want = vec![0u8; RAM_SIZE];
    for r in &layout.runs {
        let bytes = (r.pages * page) as usize;
        let dst = (r.first * page) as usize;
        f.read_exact_at(&mut want[dst..dst + bytes], r.at)
            .expect("the run's pages are in the file");
    }
    assert!(got == want, "RAM holds the runs and zeros");
}
