//! The machine behind the protocol: the board `vmdma run` builds
//! ([`vmdma::board`]: guest RAM in the core's region map, host bridge, ISA
//! bridge, PIIX3 IDE at 00:01.1 over raw disk files) without the MMIO
//! scratch region, plus fw_cfg on the port bus, and no vCPU. Requests act
//! on those objects directly.
//!
//! Interrupts: the IDE channel's INTRQ (ISA IRQ 14) goes to an
//! [`IrqRecorder`]; once the client intercepts them, every level change is
//! reported as `IRQ raise 14` / `IRQ lower 14` before the reply to the
//! request that caused it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use vmdma_core::dma::DmaMemory;
use vmdma_core::ide::DriveInfo;
use vmdma_core::memory::DeviceId;

use vmdma::board::{self, Board, BoardError, BoardSpec};
use vmdma::devices::bus::{BusError, PioBus, Widths};
use vmdma::devices::chipset::{Chipset, IDE_IRQ, IrqSink};
use vmdma::devices::mmio::GuestSpace;
use vmdma::disk::Image;
use vmdma::disk::events::DiskEvents;
use vmdma::kvm::memory::{GuestRam, MemoryError};

use super::fw_cfg::{FW_CFG_LEN, FW_CFG_PORT, FwCfg};
use super::protocol::{InterceptKind, Request, Width};

/// Level changes kept for the client at most; beyond that the oldest
/// raise/lower pair is dropped (it has no net effect on the level).
const MAX_PENDING_IRQ: usize = 64;

/// Bytes `memset` writes per step (no allocation proportional to SIZE).
const MEMSET_CHUNK: usize = 64 << 10;

/// Device paths accepted by `irq_intercept_in` (the interrupt controller
/// the IDE IRQ enters) and `irq_intercept_out` (the IDE function itself).
const INTERCEPT_IN: &[&str] = &["ioapic", "/machine/ioapic"];
const INTERCEPT_OUT: &[&str] = &["ide", "piix3-ide", "/machine/piix3-ide"];

/// Records the IDE IRQ line's level changes.
#[derive(Debug, Default)]
pub struct IrqRecorder {
    state: Mutex<IrqState>,
}

#[derive(Debug, Default)]
struct IrqState {
    level: bool,
    pending: VecDeque<bool>,
}

impl IrqRecorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, IrqState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The changes since the last call, oldest first.
    pub fn take(&self) -> Vec<bool> {
        self.lock().pending.drain(..).collect()
    }

    /// The current level.
    pub fn level(&self) -> bool {
        self.lock().level
    }
}

/// The sink the chipset drives.
#[derive(Debug, Clone)]
struct RecorderSink(Arc<IrqRecorder>);

impl IrqSink for RecorderSink {
    fn set_level(&self, high: bool) {
        let mut s = self.0.lock();
        if s.level == high {
            return;
        }
        s.level = high;
        if s.pending.len() >= MAX_PENDING_IRQ {
            s.pending.pop_front();
            s.pending.pop_front();
        }
        s.pending.push_back(high);
    }
}

/// The reply to one request: `OK`, `OK VALUE`, or `FAIL REASON`.
pub type Reply = Result<Option<String>, String>;

/// The machine a qtest client drives.
pub struct Machine<'m> {
    space: &'m GuestSpace<'m>,
    pio: PioBus<'m>,
    pub(crate) chipset: Arc<Mutex<Chipset<'m>>>,
    irq: Arc<IrqRecorder>,
    intercept: Option<InterceptKind>,
    clock_ns: u64,
    /// The disks' error events (see `monitor`).
    pub(crate) events: Arc<DiskEvents>,
    /// Run state as the monitor reports it (no vCPU runs either way).
    pub(crate) run: RunState,
}

/// What `query-status` says: running, paused by `stop`, or paused because
/// a disk error stopped a request (`io_error`: QMP's `io-status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunState {
    /// `stop` (or an error policy) paused the machine.
    pub paused: bool,
    /// `failed` or `nospace` while a request waits for `cont`.
    pub io_error: Option<&'static str>,
}

impl std::fmt::Debug for Machine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("clock_ns", &self.clock_ns)
            .finish_non_exhaustive()
    }
}

/// The disks and identities the machine is built with.
#[derive(Debug)]
pub struct MachineDisks<'a> {
    /// Device 0 and 1 of the primary channel (opened and checked).
    pub units: [Option<Image>; 2],
    /// Which of them are CD-ROM drives (one without an image is empty).
    pub cdrom: [bool; 2],
    /// Their IDENTIFY strings.
    pub info: [DriveInfo<'a>; 2],
}

/// Why the machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// `-m` does not fit this host's address space.
    #[error("{0} bytes of RAM do not fit")]
    RamTooLarge(u64),
    /// Guest RAM could not be mapped.
    #[error(transparent)]
    Ram(#[from] MemoryError),
    /// The board could not be built.
    #[error(transparent)]
    Board(#[from] BoardError),
    /// The disks' event queue could not be made.
    #[error("disk events eventfd: {0}")]
    Events(std::io::Error),
    /// fw_cfg could not be put on the port bus.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Builds the machine with `ram` bytes of RAM and `disks` (the board
/// `vmdma run` builds, without the MMIO scratch region) plus fw_cfg, and
/// runs `f` on it. Everything lives in this stack frame.
pub fn with_machine<R>(
    ram: u64,
    disks: MachineDisks<'_>,
    f: impl FnOnce(&mut Machine<'_>) -> R,
) -> Result<R, MachineError> {
    let len = usize::try_from(ram).map_err(|_| MachineError::RamTooLarge(ram))?;
    let ram = GuestRam::new(len)?;
    let irq = Arc::new(IrqRecorder::default());
    // The disks tell the monitor about I/O errors; their policy may stop
    // the machine (the QMP events and `cont` are the monitor's).
    let events = Arc::new(DiskEvents::new().map_err(MachineError::Events)?);
    // The disks on their engine (io_uring by default): completions that
    // arrive between requests are delivered by `service`, before each one.
    let spec = BoardSpec {
        ram: &ram,
        mmio_scratch: false,
        disks: disks.units,
        cdrom: disks.cdrom,
        info: disks.info,
        ide_irq: RecorderSink(irq.clone()),
        data_path: None,
        completions: false,
        disk_events: Some(events.clone()),
    };
    board::with_board(spec, |board| {
        let Board {
            space,
            mut pio,
            chipset,
            ..
        } = board;
        pio.insert(
            FW_CFG_PORT,
            FW_CFG_LEN,
            Widths::ANY,
            Arc::new(Mutex::new(FwCfg::new(ram.size()))),
        )?;
        let mut m = Machine {
            space,
            pio,
            chipset,
            irq,
            intercept: None,
            clock_ns: 0,
            events,
            run: RunState::default(),
        };
        Ok(f(&mut m))
    })?
}

impl Machine<'_> {
    /// Delivers backend completions and bounce retries to the device
    /// model; the server calls it before every request.
    pub fn service(&self) {
        self.chipset
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .service();
    }

    /// IRQ lines to send before the next reply (`IRQ raise 14` ...); empty
    /// unless interrupts are intercepted.
    pub fn irq_messages(&self) -> Vec<String> {
        let changes = self.irq.take();
        if self.intercept.is_none() {
            return Vec::new();
        }
        changes
            .into_iter()
            .map(|high| {
                let dir = if high { "raise" } else { "lower" };
                format!("IRQ {dir} {IDE_IRQ}")
            })
            .collect()
    }

    /// Executes one request.
    pub fn execute(&mut self, req: Request) -> Reply {
        match req {
            Request::Endianness => Ok(Some("little".into())),
            Request::Out { width, port, value } => {
                check_ports(port, width)?;
                let bytes = value.to_le_bytes();
                self.pio.write(port, &bytes[..width.bytes()]);
                Ok(None)
            }
            Request::In { width, port } => {
                check_ports(port, width)?;
                let mut b = [0u8; 4];
                let data = &mut b[..width.bytes()];
                self.pio.read(port, data);
                Ok(Some(format!("{:#06x}", u32::from_le_bytes(b))))
            }
            Request::Write { width, addr, value } => {
                let bytes = value.to_le_bytes();
                self.mem_write(addr, &bytes[..width.bytes()])?;
                Ok(None)
            }
            Request::Read { width, addr } => {
                let mut b = [0u8; 8];
                self.mem_read(addr, &mut b[..width.bytes()])?;
                Ok(Some(format!("0x{:016x}", u64::from_le_bytes(b))))
            }
            Request::ReadHex { addr, len } => {
                let mut buf = vec![0u8; len];
                self.mem_read(addr, &mut buf)?;
                Ok(Some(format!("0x{}", super::codec::hex_encode(&buf))))
            }
            Request::ReadBase64 { addr, len } => {
                let mut buf = vec![0u8; len];
                self.mem_read(addr, &mut buf)?;
                Ok(Some(super::codec::base64_encode(&buf)))
            }
            Request::WriteData { addr, data } => {
                self.mem_write(addr, &data)?;
                Ok(None)
            }
            Request::Memset { addr, len, value } => {
                self.memset(addr, len, value)?;
                Ok(None)
            }
            Request::IrqIntercept { kind, path } => self.intercept(kind, &path),
            Request::ClockStep(step) => {
                // No timers: without NS there is no deadline to step to.
                self.clock_ns = self
                    .clock_ns
                    .checked_add(step.unwrap_or(0))
                    .ok_or("clock_step: the clock would overflow")?;
                Ok(Some(self.clock_ns.to_string()))
            }
            Request::ClockSet(ns) => {
                if let Ok(ns) = u64::try_from(ns) {
                    self.clock_ns = self.clock_ns.max(ns);
                }
                Ok(Some(self.clock_ns.to_string()))
            }
        }
    }

    fn intercept(&mut self, kind: InterceptKind, path: &str) -> Reply {
        let known = match kind {
            InterceptKind::In => INTERCEPT_IN,
            InterceptKind::Out => INTERCEPT_OUT,
        };
        if !known.contains(&path) {
            return Err("Unknown device".into());
        }
        if self.intercept.is_some() {
            return Err("IRQ intercept already enabled".into());
        }
        self.intercept = Some(kind);
        // Changes before the intercept are not reported.
        self.irq.take();
        Ok(None)
    }

    fn mem_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        DmaMemory::read(self.space, DeviceId::HOST, addr, buf).map_err(|e| e.to_string())
    }

    /// Writes `data` at `addr`. Both ends are checked first, so a range
    /// that starts or ends outside memory writes nothing; one that crosses
    /// a hole in between stops there, as in QEMU.
    fn mem_write(&self, addr: u64, data: &[u8]) -> Result<(), String> {
        self.check_ends(addr, data.len() as u64)?;
        DmaMemory::write(self.space, DeviceId::HOST, addr, data).map_err(|e| e.to_string())
    }

    fn check_ends(&self, addr: u64, len: u64) -> Result<(), String> {
        let Some(last_offset) = len.checked_sub(1) else {
            return Ok(());
        };
        let last = addr
            .checked_add(last_offset)
            .ok_or("the range wraps around")?;
        self.mem_read(addr, &mut [0u8])?;
        self.mem_read(last, &mut [0u8])
    }

    fn memset(&self, addr: u64, len: u64, value: u8) -> Result<(), String> {
        self.check_ends(addr, len)?;
        let chunk = vec![value; MEMSET_CHUNK];
        let mut at = addr;
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).map_or(MEMSET_CHUNK, |l| l.min(MEMSET_CHUNK));
            self.mem_write(at, &chunk[..n])?;
            let step = n as u64;
            at = at.wrapping_add(step);
            left -= step;
        }
        Ok(())
    }

    /// The IDE IRQ's current level (tests).
    #[cfg(test)]
    fn irq_level(&self) -> bool {
        self.irq.level()
    }
}

/// The access must end at or below port 0xFFFF.
fn check_ports(port: u16, width: Width) -> Result<(), String> {
    let end = u32::from(port) + width.bytes() as u32;
    if end > 0x1_0000 || width == Width::Quad {
        return Err(format!(
            "port access {port:#x}+{} beyond 0xffff",
            width.bytes()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse;

    fn disks() -> (tempfile::TempDir, MachineDisks<'static>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.img");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let disk = vmdma::disk::open(&vmdma::disk::DiskSpec::new(&path)).unwrap();
        (
            dir,
            MachineDisks {
                units: [Some(disk), None],
                cdrom: [false; 2],
                info: [DriveInfo::MASTER, DriveInfo::SLAVE],
            },
        )
    }

    fn run(m: &mut Machine<'_>, line: &str) -> Reply {
        m.service();
        m.execute(parse(line).map_err(|e| e.to_string())?)
    }

    #[test]
    fn ports_memory_and_pci() {
        let (_dir, d) = disks();
        with_machine(16 << 20, d, |m| {
            assert_eq!(run(m, "endianness"), Ok(Some("little".into())));
            // PCI 00:01.1 vendor/device: 8086:7010.
            assert_eq!(run(m, "outl 0xcf8 0x80000900"), Ok(None));
            assert_eq!(run(m, "inl 0xcfc"), Ok(Some("0x70108086".into())));
            assert_eq!(run(m, "inb 0x0"), Ok(Some("0x00ff".into())), "unclaimed");
            assert_eq!(run(m, "writel 0x1000 0xdeadbeef"), Ok(None));
            assert_eq!(
                run(m, "readq 0x1000"),
                Ok(Some("0x00000000deadbeef".into()))
            );
            assert_eq!(run(m, "read 0x1001 0x2"), Ok(Some("0xbead".into())));
            assert_eq!(run(m, "b64write 0x2000 0x3 AQID"), Ok(None));
            assert_eq!(run(m, "b64read 0x2000 0x3"), Ok(Some("AQID".into())));
            assert_eq!(run(m, "memset 0x2000 0x2 0x55"), Ok(None));
            assert_eq!(run(m, "read 0x2000 0x3"), Ok(Some("0x555503".into())));
            // fw_cfg RAM size, as libqos reads it.
            assert_eq!(run(m, "outw 0x510 0x3"), Ok(None));
            let bytes: Vec<String> = (0..8)
                .map(|_| run(m, "inb 0x511").unwrap().unwrap())
                .collect();
            assert_eq!(bytes[2], "0x0000");
            assert_eq!(bytes[3], "0x0001", "16 MiB = 0x0100_0000");
            assert_eq!(run(m, "clock_step 10"), Ok(Some("10".into())));
            assert_eq!(run(m, "clock_set 5"), Ok(Some("10".into())));
            assert_eq!(run(m, "clock_set 50"), Ok(Some("50".into())));
            assert_eq!(run(m, "clock_step"), Ok(Some("50".into())));
        })
        .unwrap();
    }

    #[test]
    fn out_of_range_accesses_fail() {
        let (_dir, d) = disks();
        with_machine(16 << 20, d, |m| {
            for line in [
                "readb 0x1000000",
                "writeq 0xfffffc 0x1",
                "read 0xffffffffffffffff 0x2",
                "write 0xfffffe 0x4 0x01020304",
                "memset 0xffff00 0x1000 0x1",
                "memset 0xffffffffffffff00 0x1000 0x1",
                "memset 0x0 0xffffffffffffffff 0x1",
                "outl 0xfffe 0x1",
                "inw 0xffff",
                "clock_step 0xffffffffffffffff",
            ] {
                // The clock line fails only once the clock is past 0.
                if line.starts_with("clock") {
                    run(m, "clock_step 1").unwrap();
                }
                assert!(run(m, line).is_err(), "{line}");
            }
            assert_eq!(run(m, "readb 0xffffff"), Ok(Some(format!("0x{:016x}", 0))));
            assert_eq!(run(m, "memset 0xfffff0 0x10 0x7"), Ok(None));
        })
        .unwrap();
    }

    /// Services the machine until the disks have nothing in flight (a
    /// bounded wait for an asynchronous backend's completion).
    fn settle(m: &Machine<'_>) {
        for _ in 0..2000 {
            m.service();
            if m.irq_level() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn irq_changes_are_reported_after_the_intercept() {
        let (_dir, d) = disks();
        with_machine(16 << 20, d, |m| {
            assert_eq!(
                run(m, "irq_intercept_in nope"),
                Err("Unknown device".into())
            );
            // FLUSH CACHE raises IRQ 14 before any intercept: not reported.
            // (On io_uring the flush completes a moment later: the machine
            // delivers it when serviced, as the server does per request.)
            run(m, "outb 0x1f6 0xa0").unwrap();
            run(m, "outb 0x1f7 0xe7").unwrap();
            settle(m);
            assert!(m.irq_level());
            assert!(m.irq_messages().is_empty());
            assert_eq!(run(m, "irq_intercept_in ioapic"), Ok(None));
            assert_eq!(
                run(m, "irq_intercept_out ide"),
                Err("IRQ intercept already enabled".into())
            );
            run(m, "inb 0x1f7").unwrap();
            assert_eq!(m.irq_messages(), vec!["IRQ lower 14".to_string()]);
            run(m, "outb 0x1f7 0xe7").unwrap(); // FLUSH CACHE
            settle(m);
            assert_eq!(m.irq_messages(), vec!["IRQ raise 14".to_string()]);
            assert!(m.irq_messages().is_empty());
        })
        .unwrap();
    }

    #[test]
    fn recorder_is_bounded_and_keeps_the_final_level() {
        let rec = Arc::new(IrqRecorder::default());
        let sink = RecorderSink(rec.clone());
        for i in 0..1001 {
            sink.set_level(i % 2 == 0);
        }
        let changes = rec.take();
        assert!(changes.len() <= MAX_PENDING_IRQ);
        assert_eq!(changes.last(), Some(&true));
        assert!(changes.windows(2).all(|w| w[0] != w[1]), "alternating");
        assert!(rec.level());
    }
}
