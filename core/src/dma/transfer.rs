//! The scatter/gather DMA helper: a resumable cursor that moves data between
//! a guest SG list and a block device (the `dma_blk_io` of vmdma, without
//! callbacks or a heap).
//!
//! The host drives it:
//! 1. [`SgTransfer::step`] maps as much of the SG list as fits into an
//!    I/O vector (`IOV` elements), trims it to whole sectors (unmapping and
//!    rewinding the trimmed tail, so no byte is skipped and no bounce space
//!    leaks), and submits **one** vectored request. It returns
//!    [`Progress::Submitted`], [`Progress::WaitingForBounce`] (registered on
//!    the retry queue; call `step` again when the client is handed back by
//!    `poll_retry`), or [`Progress::Done`].
//! 2. When the block device completes the token, [`SgTransfer::complete`]
//!    unmaps every mapping with the length really accessed and advances.
//!
//! Every `step` either submits at least one sector, waits on the retry
//! queue, finishes, or fails: it never loops without progress.

use crate::block::{BlockDevice, BlockError, BlockRequest, Completion, RequestToken, SECTOR_SIZE};
use crate::iovec::IoVec;
use crate::memory::{DeviceId, MemError};

use super::mapping::Mapping;
use super::retry::{ClientId, RetryError, RetryStatus};
use super::sg::SgEntry;
use super::{DmaDirection, DmaMemory};

const SECTOR: u64 = SECTOR_SIZE as u64;

/// How often one `step` retries at once because bounce space was freed by
/// someone else meanwhile; each retry needs another client's progress.
const MAX_IMMEDIATE_RETRIES: u32 = 64;

/// Which way a block transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockDir {
    /// Disk → guest memory (the device writes memory).
    Read,
    /// Guest memory → disk (the device reads memory).
    Write,
}

impl BlockDir {
    /// The DMA direction of this transfer.
    pub const fn dma_direction(self) -> DmaDirection {
        match self {
            BlockDir::Read => DmaDirection::DeviceWritesMemory,
            BlockDir::Write => DmaDirection::DeviceReadsMemory,
        }
    }
}

/// What a `step` achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A request is in flight; deliver its completion to `complete`.
    Submitted(RequestToken),
    /// Nothing could be mapped for lack of bounce space; the client is on
    /// the retry queue.
    WaitingForBounce,
    /// Every byte has been transferred.
    Done,
}

/// Why a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Mapping failed (hole, overflow, re-entrancy, IOMMU fault, MMIO
    /// error) or a bounce write-back failed.
    Memory(MemError),
    /// The block device refused or failed the request.
    Block(BlockError),
    /// The SG list describes fewer bytes than the transfer needs.
    ShortSgList,
    /// Not even one sector can be mapped with the whole bounce pool free, or
    /// the SG list is too fragmented for the I/O vector capacity.
    Unmappable,
    /// The retry queue is full.
    Retry(RetryError),
    /// A completion for a token this transfer does not wait for.
    WrongToken,
    /// `step` or `cancel` while a request is in flight.
    InFlight,
    /// The byte count is not a whole number of sectors.
    Misaligned,
}

impl core::fmt::Display for TransferError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TransferError::Memory(e) => write!(f, "DMA mapping failed: {e}"),
            TransferError::Block(e) => write!(f, "block request failed: {e}"),
            TransferError::ShortSgList => f.write_str("SG list shorter than the transfer"),
            TransferError::Unmappable => f.write_str("SG list cannot be mapped a sector at a time"),
            TransferError::Retry(e) => write!(f, "{e}"),
            TransferError::WrongToken => f.write_str("completion for an unknown request"),
            TransferError::InFlight => f.write_str("a request is still in flight"),
            TransferError::Misaligned => f.write_str("transfer is not a whole number of sectors"),
        }
    }
}

impl core::error::Error for TransferError {}

impl From<MemError> for TransferError {
    fn from(e: MemError) -> Self {
        TransferError::Memory(e)
    }
}

/// What one mapping pass produced.
struct Chunk {
    /// Whole-sector bytes mapped (and held in `mapped`).
    bytes: u64,
    /// Bounce space ran out.
    blocked: bool,
    /// The SG list ended before the transfer did.
    end_of_list: bool,
    /// Bounce mappings released by trimming to whole sectors.
    released_bounces: u32,
}

/// Position in an SG list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct SgPos {
    index: usize,
    offset: u64,
}

/// A resumable SG ↔ block transfer holding at most `IOV` mappings at once.
///
/// `'m` is the lifetime of the DMA memory the mappings borrow; the transfer
/// must be driven to `Done`, failed, or cancelled before that memory goes.
pub struct SgTransfer<'m, const IOV: usize> {
    requester: DeviceId,
    client: ClientId,
    dir: BlockDir,
    sector: u64,
    total: u64,
    done: u64,
    cursor: SgPos,
    mapped: heapless::Vec<(SgPos, Mapping<'m>), IOV>,
    in_flight: Option<(RequestToken, u64)>,
    requests: u32,
}

impl<const IOV: usize> core::fmt::Debug for SgTransfer<'_, IOV> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SgTransfer")
            .field("dir", &self.dir)
            .field("sector", &self.sector)
            .field("total", &self.total)
            .field("done", &self.done)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl<'m, const IOV: usize> SgTransfer<'m, IOV> {
    const CAPACITY_OK: () = assert!(IOV > 0, "a transfer needs room for one mapping");

    /// Prepares a transfer of `bytes` (a whole number of sectors) starting
    /// at `sector`, for DMA by `requester`, registering as `client` when it
    /// must wait for bounce space.
    pub fn new(
        requester: DeviceId,
        client: ClientId,
        dir: BlockDir,
        sector: u64,
        bytes: u64,
    ) -> Result<Self, TransferError> {
        let () = Self::CAPACITY_OK;
        if !bytes.is_multiple_of(SECTOR) {
            return Err(TransferError::Misaligned);
        }
        Ok(SgTransfer {
            requester,
            client,
            dir,
            sector,
            total: bytes,
            done: 0,
            cursor: SgPos::default(),
            mapped: heapless::Vec::new(),
            in_flight: None,
            requests: 0,
        })
    }

    /// Bytes transferred so far.
    pub fn bytes_done(&self) -> u64 {
        self.done
    }

    /// Bytes the transfer moves in all.
    pub fn bytes_total(&self) -> u64 {
        self.total
    }

    /// The next sector to be submitted.
    pub fn next_sector(&self) -> u64 {
        self.sector
    }

    /// Block requests submitted so far.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The token of the request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestToken> {
        self.in_flight.map(|(t, _)| t)
    }

    /// True when every byte has been transferred.
    pub fn is_done(&self) -> bool {
        self.done == self.total && self.in_flight.is_none()
    }

    /// Maps the next part of `sg` and submits it to `block`.
    pub fn step<M, B>(
        &mut self,
        mem: &'m M,
        sg: &[SgEntry],
        block: &mut B,
    ) -> Result<Progress, TransferError>
    where
        M: DmaMemory + ?Sized,
        B: BlockDevice + ?Sized,
    {
        if self.in_flight.is_some() {
            return Err(TransferError::InFlight);
        }
        let mut retries = 0u32;
        loop {
            if self.done >= self.total {
                return Ok(Progress::Done);
            }
            let generation = mem.bounce_generation();
            let chunk = self.map_chunk(mem, sg)?;
            if chunk.bytes > 0 {
                return self.submit(block, chunk.bytes);
            }
            if chunk.end_of_list || self.sg_bytes_left(sg) < self.total - self.done {
                return Err(TransferError::ShortSgList);
            }
            if !chunk.blocked {
                // The I/O vector filled up below one sector.
                return Err(TransferError::Unmappable);
            }
            if !mem.bounce_in_use() {
                // The whole pool is free and still no sector fits.
                return Err(TransferError::Unmappable);
            }
            let seen = generation.wrapping_add(chunk.released_bounces);
            match mem
                .register_retry(self.client, seen)
                .map_err(TransferError::Retry)?
            {
                RetryStatus::Queued => return Ok(Progress::WaitingForBounce),
                RetryStatus::RetryNow if retries < MAX_IMMEDIATE_RETRIES => retries += 1,
                RetryStatus::RetryNow => {
                    // Others keep freeing and re-taking space; wait for the
                    // next release rather than spin here.
                    return match mem.register_retry(self.client, mem.bounce_generation()) {
                        Ok(RetryStatus::Queued) => Ok(Progress::WaitingForBounce),
                        Ok(RetryStatus::RetryNow) => Err(TransferError::Unmappable),
                        Err(e) => Err(TransferError::Retry(e)),
                    };
                }
            }
        }
    }

    /// Bytes the SG list still describes from the cursor on (saturating).
    fn sg_bytes_left(&self, sg: &[SgEntry]) -> u64 {
        let rest = sg.get(self.cursor.index..).unwrap_or_default();
        rest.iter()
            .fold(0u64, |acc, e| acc.saturating_add(e.len))
            .saturating_sub(self.cursor.offset)
    }

    /// Maps from the cursor and trims to whole sectors.
    fn map_chunk<M>(&mut self, mem: &'m M, sg: &[SgEntry]) -> Result<Chunk, TransferError>
    where
        M: DmaMemory + ?Sized,
    {
        let want = self.total - self.done;
        let dir = self.dir.dma_direction();
        let mut bytes = 0u64;
        let mut blocked = false;
        let mut end_of_list = false;
        while bytes < want && !self.mapped.is_full() {
            let Some(entry) = sg.get(self.cursor.index) else {
                end_of_list = true;
                break;
            };
            let left = entry.len.saturating_sub(self.cursor.offset);
            if left == 0 {
                self.cursor = SgPos {
                    index: self.cursor.index + 1,
                    offset: 0,
                };
                continue;
            }
            let len = left.min(want - bytes);
            let addr = match entry.addr.checked_add(self.cursor.offset) {
                Some(a) => a,
                None => return Err(self.abandon(MemError::Overflow { addr: entry.addr })),
            };
            match mem.map(self.requester, addr, len, dir) {
                Ok(m) if !m.is_empty() => {
                    let n = m.len() as u64;
                    let start = self.cursor;
                    // Cannot fail: checked `is_full` above.
                    let _ = self.mapped.push((start, m));
                    self.cursor.offset += n;
                    bytes += n;
                }
                Ok(_) => return Err(self.abandon(MemError::ZeroLength)),
                Err(MemError::BounceBusy) => {
                    blocked = true;
                    break;
                }
                Err(e) => return Err(self.abandon(e)),
            }
        }
        let released_bounces = self.trim(bytes % SECTOR);
        Ok(Chunk {
            bytes: bytes - bytes % SECTOR,
            blocked,
            end_of_list,
            released_bounces,
        })
    }

    /// Unmaps (access 0) the last `rem` bytes and rewinds the cursor to
    /// them; returns how many bounce slots were released.
    fn trim(&mut self, mut rem: u64) -> u32 {
        let mut released = 0u32;
        while rem > 0 {
            let Some((pos, m)) = self.mapped.last_mut() else {
                break;
            };
            let len = m.len() as u64;
            if len > rem {
                let keep = len - rem;
                m.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
                self.cursor = SgPos {
                    index: pos.index,
                    offset: pos.offset + keep,
                };
                rem = 0;
            } else {
                rem -= len;
                if let Some((pos, m)) = self.mapped.pop() {
                    self.cursor = pos;
                    released += u32::from(m.is_bounce());
                    drop(m);
                }
            }
        }
        released
    }

    /// Drops every mapping of the current chunk (access 0) and rewinds the
    /// cursor to the chunk start.
    fn rewind_chunk(&mut self) {
        if let Some((pos, _)) = self.mapped.first() {
            self.cursor = *pos;
        }
        self.mapped.clear();
    }

    /// [`Self::rewind_chunk`], then `e` as a transfer error.
    fn abandon(&mut self, e: MemError) -> TransferError {
        self.rewind_chunk();
        TransferError::Memory(e)
    }

    fn submit<B>(&mut self, block: &mut B, bytes: u64) -> Result<Progress, TransferError>
    where
        B: BlockDevice + ?Sized,
    {
        let submitted = {
            let mut iov: IoVec<'_, IOV> = IoVec::new();
            for (_, m) in self.mapped.iter() {
                // Cannot fail: one element per mapping, same capacity.
                let _ = iov.push(m.slice());
            }
            let (sector, iov) = (self.sector, iov.as_slices());
            block.submit(match self.dir {
                BlockDir::Read => BlockRequest::Read { sector, iov },
                BlockDir::Write => BlockRequest::Write { sector, iov },
            })
        };
        match submitted {
            Ok(token) => {
                self.in_flight = Some((token, bytes));
                self.requests = self.requests.saturating_add(1);
                Ok(Progress::Submitted(token))
            }
            Err(e) => {
                self.rewind_chunk();
                Err(TransferError::Block(e))
            }
        }
    }

    /// Delivers the completion of the request in flight: unmaps with the
    /// real access length (everything on success, nothing on failure) and
    /// advances. After an error the transfer is finished with that error.
    pub fn complete(&mut self, c: Completion) -> Result<(), TransferError> {
        let Some((token, bytes)) = self.in_flight else {
            return Err(TransferError::WrongToken);
        };
        if token != c.token {
            return Err(TransferError::WrongToken);
        }
        self.in_flight = None;
        let ok = c.result.is_ok();
        let mut unmap_err = None;
        // In SG order, so overlapping bounce write-backs land as the guest's
        // list orders them.
        for (_, m) in core::mem::take(&mut self.mapped) {
            let access = if ok { m.len() } else { 0 };
            if let Err(e) = m.unmap(access) {
                unmap_err.get_or_insert(e);
            }
        }
        c.result.map_err(TransferError::Block)?;
        if let Some(e) = unmap_err {
            return Err(TransferError::Memory(e));
        }
        self.done += bytes;
        self.sector = self.sector.saturating_add(bytes / SECTOR);
        Ok(())
    }

    /// Abandons the transfer: leaves the retry queue and drops any mapping
    /// (nothing written back). Refused while a request is in flight: drain
    /// it with `complete` first.
    pub fn cancel<M: DmaMemory + ?Sized>(&mut self, mem: &M) -> Result<(), TransferError> {
        if self.in_flight.is_some() {
            return Err(TransferError::InFlight);
        }
        mem.cancel_retry(self.client);
        self.mapped.clear();
        self.total = self.done;
        Ok(())
    }

    /// Runs the transfer to the end with a backend that completes inside
    /// `submit` or `wait`; returns [`Progress::WaitingForBounce`] if it must
    /// wait for another client's bounce space, or `Done`.
    ///
    /// Each round moves at least one sector, so this ends after at most
    /// `bytes / 512` rounds.
    pub fn run<M, B>(
        &mut self,
        mem: &'m M,
        sg: &[SgEntry],
        block: &mut B,
    ) -> Result<Progress, TransferError>
    where
        M: DmaMemory + ?Sized,
        B: BlockDevice + ?Sized,
    {
        loop {
            match self.step(mem, sg, block)? {
                Progress::Submitted(token) => {
                    // A completion for another token belongs to someone else;
                    // with one transfer per device it cannot happen, so it is
                    // reported rather than lost silently.
                    let c = block.wait().ok_or(TransferError::WrongToken)?;
                    if c.token != token {
                        return Err(TransferError::WrongToken);
                    }
                    self.complete(c)?;
                }
                other => return Ok(other),
            }
        }
    }
}

#[cfg(test)]
mod tests;
