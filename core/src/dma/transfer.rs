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
//! # Sectors that do not map piece by piece
//! When not even one whole sector maps directly — its pieces outnumber the
//! free I/O-vector elements, or its MMIO pieces do not all get bounce space
//! — the sector is *staged*: one contiguous 512-byte range of bounce space
//! stands for all its pieces (gathered from guest memory before a disk
//! write, scattered to it after a disk read). So a sector spread over any
//! number of tiny pieces moves whenever the arena can hold one sector, and
//! [`TransferError::Unmappable`] is left for the one shape that can never
//! run: an arena smaller than a sector.
//!
//! # The lease
//! From a successful submission until [`SgTransfer::complete`] receives the
//! matching completion (the request's token, given back), the transfer owns
//! the request's mappings: nothing else can unmap them
//! ([`SgTransfer::cancel`] refuses while in flight), and dropping the
//! transfer quarantines their bounce space under the request's id until the
//! token is handed to [`DmaMemory::reclaim`] wherever the completion ends up.
//! A backend that refuses a request with some other token is taken to still
//! hold the request: it stays in flight. The backend reaches
//! the memory only through the token ([`crate::block::lease`]). So the
//! memory a backend was given outlives the request, whatever the guest or
//! the host does.
//!
//! Every `step` either submits at least one sector, waits on the retry
//! queue, finishes, or fails: it never loops without progress.

use crate::block::{
    BlockDevice, BlockError, BlockRequest, Completion, Leased, RequestId, RequestToken, SECTOR_SIZE,
};
use crate::memory::{DeviceId, MemError, Probe};

use super::mapping::Mapping;
use super::retry::{RetryError, RetryStatus};
use super::sg::SgEntry;
use super::{BounceWait, DmaDirection, DmaMemory};

const SECTOR: u64 = SECTOR_SIZE as u64;

/// How often one `step` retries at once because bounce space was freed by
/// someone else meanwhile; each retry needs another client's release.
const MAX_IMMEDIATE_RETRIES: u32 = 64;

/// Bytes gathered or scattered per guest-memory access when staging.
const STAGE_CHUNK: usize = 256;

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
    Submitted(RequestId),
    /// Nothing could be mapped for lack of bounce space; the client is on
    /// the retry queue.
    WaitingForBounce,
    /// Every byte has been transferred.
    Done,
}

/// Why a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    /// Mapping failed (hole, overflow, re-entrancy, IOMMU fault, MMIO
    /// error) or a bounce write-back failed.
    Memory(MemError),
    /// The block device refused or failed the request.
    Block(BlockError),
    /// The SG list describes fewer bytes than the transfer needs.
    ShortSgList,
    /// A sector needs bounce space and the whole arena is smaller than a
    /// sector: it can never be mapped.
    Unmappable,
    /// The retry queue is full.
    Retry(RetryError),
    /// Bounce space was released and re-taken by others so often in one
    /// step that the transfer gave up rather than spin.
    Contended,
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
            TransferError::Unmappable => {
                f.write_str("a sector needs more bounce space than the arena has")
            }
            TransferError::Retry(e) => write!(f, "{e}"),
            TransferError::Contended => f.write_str("bounce space too contended to make progress"),
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

/// Position in an SG list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct SgPos {
    index: usize,
    offset: u64,
}

/// Walks `len` bytes of `sg` from `pos`, calling `f(addr, n, walked)` for
/// each contiguous piece (`walked` = bytes before it); returns the position
/// after the walk. Every round moves at least one byte or one entry, and
/// ends at the list's end, so it is bounded by `sg.len()` plus `len`.
fn walk(
    sg: &[SgEntry],
    mut pos: SgPos,
    len: u64,
    mut f: impl FnMut(u64, u64, u64) -> Result<(), TransferError>,
) -> Result<SgPos, TransferError> {
    let mut done = 0u64;
    while done < len {
        let entry = sg.get(pos.index).ok_or(TransferError::ShortSgList)?;
        let left = entry.len.saturating_sub(pos.offset);
        if left == 0 {
            pos = SgPos {
                index: pos.index + 1,
                offset: 0,
            };
            continue;
        }
        let n = left.min(len - done);
        let addr = entry
            .addr
            .checked_add(pos.offset)
            .ok_or(MemError::Overflow { addr: entry.addr })?;
        f(addr, n, done)?;
        done += n;
        pos.offset += n;
    }
    Ok(pos)
}

/// One element of the I/O vector being built or in flight.
struct Piece<'m> {
    /// Where in the SG list the piece starts.
    start: SgPos,
    mapping: Mapping<'m>,
    /// Staging space standing for SG bytes from `start` (gathered or to be
    /// scattered by the transfer), not a mapping of one address.
    staged: bool,
}

/// A resumable SG ↔ block transfer holding at most `IOV` mappings at once.
///
/// `'m` is the lifetime of the DMA memory the mappings borrow; while a
/// request is in flight the transfer owns its mappings (see the module
/// docs), and dropping it then quarantines their bounce space.
///
/// `repr(C)`, fields in this order on purpose: the ones a new transfer
/// sets from its arguments first, the zeroed ones next, the mappings'
/// storage last, so building one does not zero that storage (tens of KiB
/// at the runner's IOV).
#[repr(C)]
pub struct SgTransfer<'m, const IOV: usize> {
    requester: DeviceId,
    dir: BlockDir,
    sector: u64,
    total: u64,
    done: u64,
    cursor: SgPos,
    in_flight: Option<(RequestId, u64)>,
    requests: u32,
    bounced: u64,
    staged: u64,
    pieces: heapless::Vec<Piece<'m>, IOV>,
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

impl<const IOV: usize> Drop for SgTransfer<'_, IOV> {
    fn drop(&mut self) {
        if let Some((id, _)) = self.in_flight {
            // The backend may still write into this space: nobody else may
            // have it until the request's token is gone.
            crate::vec_util::drain_in_order(&mut self.pieces, |p| p.mapping.quarantine(id));
        }
    }
}

impl<'m, const IOV: usize> SgTransfer<'m, IOV> {
    const CAPACITY_OK: () = assert!(IOV > 0, "a transfer needs room for one mapping");

    /// Prepares a transfer of `bytes` (a whole number of sectors) starting
    /// at `sector`, for DMA by `requester`, which is also the client id it
    /// waits under for bounce space.
    pub fn new(
        requester: DeviceId,
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
            dir,
            sector,
            total: bytes,
            done: 0,
            cursor: SgPos::default(),
            pieces: heapless::Vec::new(),
            in_flight: None,
            requests: 0,
            bounced: 0,
            staged: 0,
        })
    }

    /// A transfer of `sectors` whole sectors from `sector` on: as
    /// [`SgTransfer::new`], but infallible (whole sectors are never
    /// misaligned), so a device can build it where it keeps it.
    pub const fn of_sectors(requester: DeviceId, dir: BlockDir, sector: u64, sectors: u64) -> Self {
        let () = Self::CAPACITY_OK;
        SgTransfer {
            requester,
            dir,
            sector,
            total: sectors.saturating_mul(SECTOR) / SECTOR * SECTOR,
            done: 0,
            cursor: SgPos {
                index: 0,
                offset: 0,
            },
            pieces: heapless::Vec::new(),
            in_flight: None,
            requests: 0,
            bounced: 0,
            staged: 0,
        }
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

    /// Bytes that went through per-piece bounce mappings (MMIO) so far.
    pub fn bounced_bytes(&self) -> u64 {
        self.bounced
    }

    /// Bytes that went through staging (copied between guest memory and
    /// bounce space) so far.
    pub fn staged_bytes(&self) -> u64 {
        self.staged
    }

    /// The id of the request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestId> {
        self.in_flight.map(|(t, _)| t)
    }

    /// True when every byte has been transferred.
    pub fn is_done(&self) -> bool {
        self.done == self.total && self.in_flight.is_none()
    }

    /// Skips the first `bytes` of a transfer that has not started, as if
    /// they had been transferred: a transfer re-issued after a restore
    /// resumes where the original had completed. `bytes` must be whole
    /// sectors within the transfer and within `sg`; refused once a request
    /// was submitted.
    pub fn skip(&mut self, sg: &[SgEntry], bytes: u64) -> Result<(), TransferError> {
        if self.in_flight.is_some() || self.requests > 0 || !self.pieces.is_empty() {
            return Err(TransferError::InFlight);
        }
        if !bytes.is_multiple_of(SECTOR) || bytes > self.total - self.done {
            return Err(TransferError::Misaligned);
        }
        self.cursor = walk(sg, self.cursor, bytes, |_, _, _| Ok(()))?;
        self.done += bytes;
        self.sector = self.sector.saturating_add(bytes / SECTOR);
        Ok(())
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
        B: BlockDevice<'m> + ?Sized,
    {
        if self.in_flight.is_some() {
            return Err(TransferError::InFlight);
        }
        for _ in 0..=MAX_IMMEDIATE_RETRIES {
            if self.done >= self.total {
                return Ok(Progress::Done);
            }
            let generation = mem.bounce_generation();
            if let Some(bytes) = self.map_chunk(mem, sg)? {
                return self.submit(mem, block, bytes);
            }
            match mem
                .register_retry(self.requester, generation)
                .map_err(TransferError::Retry)?
            {
                RetryStatus::Queued => return Ok(Progress::WaitingForBounce),
                RetryStatus::RetryNow => {}
            }
        }
        Err(TransferError::Contended)
    }

    /// Bytes the SG list still describes from the cursor on (saturating).
    fn sg_bytes_left(&self, sg: &[SgEntry]) -> u64 {
        let rest = sg.get(self.cursor.index..).unwrap_or_default();
        rest.iter()
            .fold(0u64, |acc, e| acc.saturating_add(e.len))
            .saturating_sub(self.cursor.offset)
    }

    /// Maps from the cursor: whole sectors piece by piece, or else one
    /// staged sector. `None`: blocked on bounce space (nothing held).
    fn map_chunk<M>(&mut self, mem: &'m M, sg: &[SgEntry]) -> Result<Option<u64>, TransferError>
    where
        M: DmaMemory + ?Sized,
    {
        let want = self.total - self.done;
        let dir = self.dir.dma_direction();
        let mut bytes = 0u64;
        while bytes < want && !self.pieces.is_full() {
            let Some(entry) = sg.get(self.cursor.index) else {
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
                    let _ = self.pieces.push(Piece {
                        start,
                        mapping: m,
                        staged: false,
                    });
                    self.cursor.offset += n;
                    bytes += n;
                }
                Ok(_) => return Err(self.abandon(MemError::ZeroLength)),
                Err(MemError::BounceBusy) => break,
                Err(e) => return Err(self.abandon(e)),
            }
        }
        let whole = bytes - bytes % SECTOR;
        if whole > 0 {
            self.trim(bytes % SECTOR);
            return Ok(Some(whole));
        }
        // Not one whole sector: give back what was mapped and stage the
        // next sector instead.
        self.rewind_chunk();
        if self.sg_bytes_left(sg) < want {
            return Err(TransferError::ShortSgList);
        }
        if mem.bounce_capacity() < SECTOR_SIZE {
            return Err(TransferError::Unmappable);
        }
        self.stage(mem, sg)
    }

    /// Stages the sector at the cursor through one range of bounce space:
    /// checks every piece first (no side effects), then gathers the data if
    /// the device reads memory. `None` when no space is free.
    fn stage<M>(&mut self, mem: &'m M, sg: &[SgEntry]) -> Result<Option<u64>, TransferError>
    where
        M: DmaMemory + ?Sized,
    {
        let dir = self.dir.dma_direction();
        let requester = self.requester;
        walk(sg, self.cursor, SECTOR, |addr, n, _| {
            let (mut at, mut rest) = (addr, n);
            // Each probe covers at least one byte.
            while rest > 0 {
                let k = match mem.probe(requester, at, rest, dir)? {
                    Probe::Ram(k) | Probe::Mmio(k) => k.max(1),
                };
                at = at.saturating_add(k);
                rest = rest.saturating_sub(k);
            }
            Ok(())
        })?;
        let m = match mem.map_staging(requester, SECTOR_SIZE) {
            Ok(m) => m,
            Err(MemError::BounceBusy) => return Ok(None),
            Err(e) => return Err(TransferError::Memory(e)),
        };
        let start = self.cursor;
        if self.dir == BlockDir::Write {
            let view = m.slice();
            walk(sg, start, SECTOR, |addr, n, off| {
                gather(mem, requester, addr, n, |buf, at| {
                    view.copy_from(usize::try_from(off + at).unwrap_or(usize::MAX), buf);
                })
            })?;
        }
        self.cursor = walk(sg, start, SECTOR, |_, _, _| Ok(()))?;
        // Cannot fail: `rewind_chunk` emptied the vector.
        let _ = self.pieces.push(Piece {
            start,
            mapping: m,
            staged: true,
        });
        Ok(Some(SECTOR))
    }

    /// Unmaps (access 0) the last `rem` bytes and rewinds the cursor to
    /// them.
    fn trim(&mut self, mut rem: u64) {
        while rem > 0 {
            let Some(p) = self.pieces.last_mut() else {
                break;
            };
            let len = p.mapping.len() as u64;
            if len > rem {
                let keep = len - rem;
                p.mapping
                    .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
                self.cursor = SgPos {
                    index: p.start.index,
                    offset: p.start.offset + keep,
                };
                rem = 0;
            } else {
                rem -= len;
                if let Some(p) = self.pieces.pop() {
                    self.cursor = p.start;
                }
            }
        }
    }

    /// Drops every mapping of the current chunk (access 0) and rewinds the
    /// cursor to the chunk start.
    fn rewind_chunk(&mut self) {
        if let Some(p) = self.pieces.first() {
            self.cursor = p.start;
        }
        self.pieces.clear();
    }

    /// [`Self::rewind_chunk`], then `e` as a transfer error.
    fn abandon(&mut self, e: MemError) -> TransferError {
        self.rewind_chunk();
        TransferError::Memory(e)
    }

    fn submit<M, B>(
        &mut self,
        mem: &'m M,
        block: &mut B,
        bytes: u64,
    ) -> Result<Progress, TransferError>
    where
        M: DmaMemory + ?Sized,
        B: BlockDevice<'m> + ?Sized,
    {
        let token = RequestToken::new();
        let id = token.id();
        let submitted = {
            let mut iov: heapless::Vec<Leased<'m>, IOV> = heapless::Vec::new();
            for p in self.pieces.iter() {
                // Cannot fail: one element per mapping, same capacity.
                let _ = iov.push(Leased::new(p.mapping.lease_view(), &token));
            }
            let (sector, iov) = (self.sector, iov.as_slice());
            block.submit(
                token,
                match self.dir {
                    BlockDir::Read => BlockRequest::Read { sector, iov },
                    BlockDir::Write => BlockRequest::Write { sector, iov },
                },
            )
        };
        match submitted {
            Ok(()) => {
                self.in_flight = Some((id, bytes));
                self.requests = self.requests.saturating_add(1);
                Ok(Progress::Submitted(id))
            }
            Err(refused) if refused.token.id() == id => {
                // The backend gave the token back: it holds nothing.
                self.rewind_chunk();
                Err(TransferError::Block(refused.error))
            }
            Err(refused) => {
                // A refusal with some other token: the backend may still
                // hold this request's token, and with it the memory. The
                // request stays in flight (the mappings stay the
                // transfer's, quarantined if it is dropped) until its own
                // token comes back; the other token is over.
                self.in_flight = Some((id, bytes));
                self.requests = self.requests.saturating_add(1);
                let error = refused.error;
                mem.reclaim(refused.token);
                Err(TransferError::Block(error))
            }
        }
    }

    /// Delivers the completion of the request in flight: unmaps with the
    /// real access length (everything on success, nothing on failure),
    /// scatters staged sectors to `sg` after a successful read, and
    /// advances. After an error the transfer is finished with that error.
    ///
    /// A completion of another request is refused ([`TransferError::WrongToken`])
    /// and dropped.
    pub fn complete<M>(
        &mut self,
        mem: &'m M,
        sg: &[SgEntry],
        c: Completion,
    ) -> Result<(), TransferError>
    where
        M: DmaMemory + ?Sized,
    {
        let Some((_, bytes)) = self.in_flight.filter(|&(id, _)| id == c.id()) else {
            // Not this transfer's: that request is over, whoever made it.
            mem.reclaim(c.token);
            return Err(TransferError::WrongToken);
        };
        // The backend gave the token back: the memory is the transfer's
        // again, and it ends the mappings itself below.
        let Completion { token: _, result } = c;
        self.in_flight = None;
        let ok = result.is_ok();
        let mut unmap_err = None;
        // In SG order, so overlapping write-backs land as the guest's list
        // orders them. In place: the list is up to IOV entries, not to be
        // moved onto the stack.
        self.pieces.reverse();
        while let Some(p) = self.pieces.pop() {
            let len = p.mapping.len();
            if p.staged {
                self.staged = self.staged.saturating_add(len as u64);
                if ok && self.dir == BlockDir::Read {
                    let view = p.mapping.slice();
                    let r = walk(sg, p.start, len as u64, |addr, n, off| {
                        scatter(mem, self.requester, addr, n, |buf, at| {
                            view.copy_to(usize::try_from(off + at).unwrap_or(usize::MAX), buf);
                        })
                    });
                    if let Err(e) = r {
                        unmap_err.get_or_insert(e);
                    }
                }
            } else {
                if p.mapping.is_bounce() {
                    self.bounced = self.bounced.saturating_add(len as u64);
                }
                if let Err(e) = p.mapping.unmap(if ok { len } else { 0 }) {
                    unmap_err.get_or_insert(TransferError::Memory(e));
                }
            }
        }
        result.map_err(TransferError::Block)?;
        if let Some(e) = unmap_err {
            return Err(e);
        }
        self.done += bytes;
        self.sector = self.sector.saturating_add(bytes / SECTOR);
        Ok(())
    }

    /// Abandons the transfer: leaves the retry queue and gives up the
    /// remaining bytes. Refused while a request is in flight: its memory is
    /// leased to the backend until `complete` receives its completion.
    pub fn cancel<M: DmaMemory + ?Sized>(&mut self, mem: &M) -> Result<(), TransferError> {
        if self.in_flight.is_some() {
            return Err(TransferError::InFlight);
        }
        mem.cancel_retry(self.requester);
        self.pieces.clear();
        self.total = self.done;
        Ok(())
    }

    /// Runs the transfer to the end with a backend whose `wait` completes
    /// requests; returns [`Progress::WaitingForBounce`] if it must wait for
    /// another client's bounce space, `Submitted` if the backend's wait
    /// bound ran out (deliver the completion later), or `Done`.
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
        B: BlockDevice<'m> + ?Sized,
    {
        loop {
            match self.step(mem, sg, block)? {
                Progress::Submitted(id) => {
                    let Some(c) = block.wait() else {
                        return Ok(Progress::Submitted(id));
                    };
                    // With one transfer per device a foreign completion
                    // cannot happen; it is reported (and its request's
                    // quarantine given back) rather than lost.
                    if c.id() != id {
                        mem.reclaim(c.token);
                        return Err(TransferError::WrongToken);
                    }
                    self.complete(mem, sg, c)?;
                }
                other => return Ok(other),
            }
        }
    }
}

/// Copies `n` bytes of guest memory at `addr` through a stack buffer,
/// handing each chunk and its offset to `put`.
fn gather<M: DmaMemory + ?Sized>(
    mem: &M,
    requester: DeviceId,
    addr: u64,
    n: u64,
    mut put: impl FnMut(&[u8], u64),
) -> Result<(), TransferError> {
    let mut tmp = [0u8; STAGE_CHUNK];
    let mut done = 0u64;
    while done < n {
        let k = usize::try_from(n - done).map_or(STAGE_CHUNK, |r| r.min(STAGE_CHUNK));
        let buf = tmp.get_mut(..k).unwrap_or_default();
        mem.read(requester, addr.saturating_add(done), buf)?;
        put(buf, done);
        done += k as u64;
    }
    Ok(())
}

/// Copies `n` bytes into guest memory at `addr` through a stack buffer
/// that `get` fills for each chunk offset.
fn scatter<M: DmaMemory + ?Sized>(
    mem: &M,
    requester: DeviceId,
    addr: u64,
    n: u64,
    mut get: impl FnMut(&mut [u8], u64),
) -> Result<(), TransferError> {
    let mut tmp = [0u8; STAGE_CHUNK];
    let mut done = 0u64;
    while done < n {
        let k = usize::try_from(n - done).map_or(STAGE_CHUNK, |r| r.min(STAGE_CHUNK));
        let buf = tmp.get_mut(..k).unwrap_or_default();
        get(buf, done);
        mem.write(requester, addr.saturating_add(done), buf)?;
        done += k as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
