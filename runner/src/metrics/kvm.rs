//! KVM's own per-vCPU counters, read from the binary statistics file that
//! `KVM_GET_STATS_FD` returns (Linux 5.14+, `Documentation/virt/kvm/api.rst`
//! "KVM_GET_STATS_FD"): a header, one descriptor per statistic (flags,
//! exponent, size, offset, bucket size, name) and a data block of `u64`s.
//!
//! Only cumulative counters of one value are kept (`exits`, `io_exits`,
//! `halt_exits`, `irq_injections`, ...): they count what KVM handled in the
//! kernel as well as what reached user space, so the difference between
//! KVM's `exits` and the runner's own count is the work done in the kernel.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Header: flags, name_size, num_desc, id_offset, desc_offset, data_offset.
const HEADER_LEN: usize = 24;
/// Descriptor without its name: flags u32, exponent i16, size u16, offset
/// u32, bucket_size u32.
const DESC_FIXED_LEN: usize = 16;
/// `KVM_STATS_TYPE_MASK` and `KVM_STATS_TYPE_CUMULATIVE`.
const TYPE_MASK: u32 = 0xF;
const TYPE_CUMULATIVE: u32 = 0;
/// Descriptors read at most (today's kernels have about 45 per vCPU).
const MAX_DESCRIPTORS: u32 = 512;
/// Longest name accepted (the kernel uses 48 bytes).
const MAX_NAME: u32 = 256;

/// A vCPU's statistics file and the counters found in it.
#[derive(Debug)]
pub struct KvmStats {
    file: File,
    data_offset: u64,
    /// (name, offset of the value in the data block).
    counters: Vec<(String, u64)>,
}

/// One reading of every counter, by KVM's name.
pub type KvmCounters = BTreeMap<String, u64>;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

impl KvmStats {
    /// Reads the descriptors of `file`; `None` if it is not a statistics
    /// file this code understands.
    pub fn new(file: File) -> Option<Self> {
        let mut h = [0u8; HEADER_LEN];
        file.read_exact_at(&mut h, 0).ok()?;
        let name_size = u32_at(&h, 4)?;
        let num_desc = u32_at(&h, 8)?;
        let desc_offset = u64::from(u32_at(&h, 16)?);
        let data_offset = u64::from(u32_at(&h, 20)?);
        if name_size > MAX_NAME || num_desc > MAX_DESCRIPTORS {
            return None;
        }
        let desc_len = DESC_FIXED_LEN + name_size as usize;
        let mut all = vec![0u8; desc_len * num_desc as usize];
        file.read_exact_at(&mut all, desc_offset).ok()?;
        let mut counters = Vec::new();
        for d in all.chunks_exact(desc_len) {
            let flags = u32_at(d, 0)?;
            let size = u16_at(d, 6)?;
            let offset = u64::from(u32_at(d, 8)?);
            if flags & TYPE_MASK != TYPE_CUMULATIVE || size != 1 {
                continue;
            }
            let name = d.get(DESC_FIXED_LEN..)?;
            let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
            let name = String::from_utf8_lossy(name.get(..end)?).into_owned();
            counters.push((name, offset));
        }
        Some(KvmStats {
            file,
            data_offset,
            counters,
        })
    }

    /// Reads every counter now (one read of the data block up to the
    /// last counter kept); `None` if the file cannot be read.
    pub fn read(&self) -> Option<KvmCounters> {
        let end = self.counters.iter().map(|(_, o)| o + 8).max().unwrap_or(0);
        let mut block = vec![0u8; usize::try_from(end).ok()?];
        self.file.read_exact_at(&mut block, self.data_offset).ok()?;
        let mut out = KvmCounters::new();
        for (name, offset) in &self.counters {
            let at = usize::try_from(*offset).ok()?;
            let v = block.get(at..at + 8)?.try_into().ok()?;
            out.insert(name.clone(), u64::from_le_bytes(v));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A fabricated statistics file: two cumulative counters, one peak
    /// value and one histogram (both skipped).
    fn fake_file() -> File {
        let name_size = 16u32;
        let descs: [(&str, u32, u16, u32); 4] = [
            ("exits", 0, 1, 0),
            ("max_rmap", 2, 1, 8),
            ("io_exits", 0, 1, 16),
            ("hist", 0, 32, 24),
        ];
        let desc_offset = 64u32;
        let desc_len = 16 + name_size;
        let data_offset = desc_offset + desc_len * descs.len() as u32;
        let mut b = Vec::new();
        for v in [
            0,
            name_size,
            descs.len() as u32,
            24,
            desc_offset,
            data_offset,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.resize(desc_offset as usize, 0);
        for (name, flags, size, offset) in descs {
            b.extend_from_slice(&flags.to_le_bytes());
            b.extend_from_slice(&0i16.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&offset.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            let mut n = [0u8; 16];
            n[..name.len()].copy_from_slice(name.as_bytes());
            b.extend_from_slice(&n);
        }
        for v in [7u64, 99, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&[0u8; 32 * 8]);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&b).unwrap();
        f
    }

    #[test]
    fn reads_cumulative_single_counters_only() {
        let s = KvmStats::new(fake_file()).unwrap();
        let c = s.read().unwrap();
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c["exits"], 7);
        assert_eq!(c["io_exits"], 3);
    }

    #[test]
    fn rejects_garbage() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[0xFF; 10]).unwrap();
        assert!(KvmStats::new(f).is_none());
        let mut f = tempfile::tempfile().unwrap();
        let mut h = vec![0u8; 24];
        h[8..12].copy_from_slice(&100_000u32.to_le_bytes());
        f.write_all(&h).unwrap();
        assert!(KvmStats::new(f).is_none(), "too many descriptors");
    }
}
