//! The chipset's device state for a snapshot: the configuration address
//! latch (0xCF8), the host bridge's and the ISA bridge's configuration
//! spaces, and the IDE controller (its PCI function, both channels'
//! registers and the request it had outstanding, recorded as what
//! re-issues it). The bytes are `vmdma-core`'s format (core/README.md,
//! "Device state"): section `VCHP` version 1, then the sections of the
//! parts in that order. Host-side state is not part of it: the IDE
//! counters, the last-command shadow used in shutdown messages, the disk
//! backends' requests (re-issued by [`Chipset::restart`]).

use vmdma_core::snapshot::{Reader, SnapshotError, Writer};

use super::Chipset;

/// Magic of the chipset's section.
const MAGIC: &[u8; 4] = b"VCHP";
/// Its format version.
const VERSION: u16 = 1;
/// Bytes of the sections besides the IDE controller's: header (6), latch
/// (10), two configuration spaces (262 each).
const FIXED: usize = 6 + 10 + 2 * 262;

impl Chipset<'_> {
    /// Saves the chipset's device state. Requests in flight stay in
    /// flight: the running chipset is not disturbed (call it with the
    /// vCPUs paused, so the state is one moment's).
    pub fn save_state(&self) -> Result<Vec<u8>, SnapshotError> {
        let mut buf = vec![0u8; FIXED + self.ide.max_state_len()];
        let mut w = Writer::new(&mut buf);
        w.header(MAGIC, VERSION)?;
        self.cf8.save_state(&mut w)?;
        self.host.save_state(&mut w)?;
        self.isa.save_state(&mut w)?;
        self.ide.save_state(&mut w)?;
        let n = w.len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Restores a state saved by [`Chipset::save_state`] into a chipset
    /// built with the same disks (kind and size) and capacities. All or
    /// nothing: every part is validated, and the input must end where the
    /// state does, before anything changes; on an error the chipset is as
    /// it was. Issues no I/O: call [`Chipset::restart`] once guest RAM is
    /// restored, before the vCPUs run.
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, VERSION)?;
        let mut cf8 = self.cf8;
        let mut host = self.host.clone();
        let mut isa = self.isa.clone();
        cf8.restore_state(&mut r)?;
        host.restore_state(&mut r)?;
        isa.restore_state(&mut r)?;
        let mut check = r.clone();
        self.ide.validate_state(&mut check)?;
        if check.remaining() != 0 {
            return Err(SnapshotError::Invalid("bytes after the chipset state"));
        }
        self.ide.restore_state(&mut r)?;
        self.cf8 = cf8;
        self.host = host;
        self.isa = isa;
        Ok(())
    }

    /// Re-issues the IDE request that was outstanding when the restored
    /// state was saved (a DMA re-walks its PRD table in guest RAM, so
    /// restore RAM first), then services the controller as after a port
    /// access. Nothing happens if nothing was outstanding.
    pub fn restart(&mut self) {
        self.ide.restart();
        self.service();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use vmdma_core::dma::{AddressSpace, DmaMemory};
    use vmdma_core::ide::PioBuffer;
    use vmdma_core::memory::{DeviceId, RamBacking, RegionMap};
    use vmdma_core::snapshot::SnapshotError;

    use crate::devices::bus::PortDecoder;
    use crate::devices::chipset::{BMDMA_BASE, Chipset, IrqSink};
    use crate::devices::mmio::{GuestBounceArena, GuestSpace};
    use crate::disk::{Aio, temporary};

    #[derive(Clone, Default)]
    struct Line(Arc<AtomicBool>);

    impl IrqSink for Line {
        fn set_level(&self, high: bool) {
            self.0.store(high, Ordering::SeqCst);
        }
    }

    const RAM: usize = 1 << 20;
    const PRD: u64 = 0x1000;
    const BUF: u64 = 0x8000;

    /// A chipset over 1 MiB of RAM and a temporary disk of `sectors`
    /// sectors whose sector `i` is filled with `i` (synchronous I/O).
    fn with_chipset<R>(
        sectors: u64,
        f: impl FnOnce(&mut Chipset<'_>, &GuestSpace<'_>, &Line) -> R,
    ) -> R {
        let mut ram = vec![0u8; RAM];
        let mut map = RegionMap::new();
        map.add_ram(0, RamBacking::from_mut_slice(&mut ram))
            .unwrap();
        let bounce = GuestBounceArena::new();
        let space: GuestSpace<'_> = AddressSpace::new(map, &bounce);
        let pio = PioBuffer::<{ 16 * 512 }>::new();
        let image = temporary(sectors * 512, Aio::Sync).unwrap();
        let (disk, _, _) = image.into_backend(None, "ide0-hd0");
        let line = Line::default();
        let mut c = Chipset::new(&space, &pio, disk, line.clone()).unwrap();
        // Fill the disk through the guest's own path: WRITE SECTORS.
        for lba in 0..sectors.min(8) {
            outb(&mut c, 0x1F6, 0xE0);
            outb(&mut c, 0x1F2, 1);
            outb(&mut c, 0x1F3, lba as u8);
            outb(&mut c, 0x1F4, 0);
            outb(&mut c, 0x1F5, 0);
            outb(&mut c, 0x1F7, 0x30);
            for _ in 0..256 {
                c.write(
                    0x1F0,
                    &u16::from_le_bytes([lba as u8, lba as u8]).to_le_bytes(),
                );
            }
            inb(&mut c, 0x1F7);
        }
        f(&mut c, &space, &line)
    }

    fn outb(c: &mut Chipset<'_>, port: u16, v: u8) {
        assert!(c.write(port, &[v]), "port {port:#x}");
    }
    fn inb(c: &mut Chipset<'_>, port: u16) -> u8 {
        let mut b = [0u8];
        assert!(c.read(port, &mut b), "port {port:#x}");
        b[0]
    }
    fn outl(c: &mut Chipset<'_>, port: u16, v: u32) {
        assert!(c.write(port, &v.to_le_bytes()));
    }
    fn inl(c: &mut Chipset<'_>, port: u16) -> u32 {
        let mut b = [0u8; 4];
        assert!(c.read(port, &mut b));
        u32::from_le_bytes(b)
    }

    /// What the guest sees: config dwords of the three functions through
    /// 0xCF8/0xCFC (the latch restored to its value after), IDE
    /// registers, the IRQ line.
    fn observe(c: &mut Chipset<'_>, line: &Line) -> Vec<u32> {
        let latch = inl(c, 0xCF8);
        let mut v = vec![latch, u32::from(line.0.load(Ordering::SeqCst))];
        for dev_fn in [0u32, 8, 9] {
            for reg in (0..0x50u32).step_by(4) {
                outl(c, 0xCF8, 0x8000_0000 | dev_fn << 8 | reg);
                v.push(inl(c, 0xCFC));
            }
        }
        outl(c, 0xCF8, latch);
        for port in [0x1F1, 0x1F2, 0x1F3, 0x1F4, 0x1F5, 0x1F6, 0x3F6] {
            v.push(u32::from(inb(c, port)));
        }
        for off in [0, 2] {
            v.push(u32::from(inb(c, BMDMA_BASE + off)));
        }
        v
    }

    #[test]
    fn chipset_state_round_trips_with_a_dma_waiting_for_start() {
        with_chipset(64, |a, space_a, line_a| {
            // The guest's PCI set-up through mechanism 1: bus mastering
            // on, an interrupt line, the ISA bridge's PIRQ routing.
            outl(a, 0xCF8, 0x8000_0904);
            outl(a, 0xCFC, 0x0000_0005);
            outl(a, 0xCF8, 0x8000_093C);
            outl(a, 0xCFC, 0x0000_000E);
            outl(a, 0xCF8, 0x8000_0860);
            outl(a, 0xCFC, 0x0B0A_0980);
            outl(a, 0xCF8, 0x8000_0010);
            // READ DMA of 2 sectors from LBA 3, waiting for START.
            let prd = [BUF as u32, 1024 | 1 << 31];
            let raw: Vec<u8> = prd.iter().flat_map(|x| x.to_le_bytes()).collect();
            space_a.write(DeviceId::HOST, PRD, &raw).unwrap();
            outl(a, BMDMA_BASE + 4, PRD as u32);
            outb(a, 0x1F6, 0xE0);
            outb(a, 0x1F2, 2);
            outb(a, 0x1F3, 3);
            outb(a, 0x1F4, 0);
            outb(a, 0x1F5, 0);
            outb(a, 0x1F7, 0xC8);
            assert_eq!(inb(a, 0x3F6), 0x58);
            let state = a.save_state().unwrap();
            // Latch and bridges 540 bytes, the IDE controller 400 idle plus
            // 15 for the command waiting for START.
            assert_eq!(state.len(), 6 + 10 + 2 * 262 + 400 + 15);
            let seen = observe(a, line_a);
            let mut ram = vec![0u8; RAM];
            space_a.read(DeviceId::HOST, 0, &mut ram).unwrap();

            with_chipset(64, |b, space_b, line_b| {
                space_b.write(DeviceId::HOST, 0, &ram).unwrap();
                b.restore_state(&state).unwrap();
                b.restart();
                assert_eq!(observe(b, line_b), seen);
                outb(a, BMDMA_BASE, 0x09);
                outb(b, BMDMA_BASE, 0x09);
                assert_eq!(observe(b, line_b), observe(a, line_a));
                assert_eq!(inb(b, 0x1F7), 0x50);
                let mut got = vec![0u8; 1024];
                space_b.read(DeviceId::HOST, BUF, &mut got).unwrap();
                assert!(got[..512].iter().all(|&x| x == 3) && got[512..].iter().all(|&x| x == 4));
            });

            // Another disk size, trailing bytes, a truncated state: refused,
            // and the chipset is unchanged.
            with_chipset(32, |b, _, line_b| {
                let before = observe(b, line_b);
                let err = b.restore_state(&state).unwrap_err();
                assert!(
                    matches!(
                        err,
                        SnapshotError::Mismatch {
                            saved: 64,
                            here: 32,
                            ..
                        }
                    ),
                    "{err}"
                );
                assert_eq!(observe(b, line_b), before);
            });
            with_chipset(64, |b, _, line_b| {
                let before = observe(b, line_b);
                let mut long = state.clone();
                long.push(0);
                assert_eq!(
                    b.restore_state(&long),
                    Err(SnapshotError::Invalid("bytes after the chipset state"))
                );
                for n in [0, 5, 20, 300, state.len() - 1] {
                    assert!(b.restore_state(&state[..n]).is_err());
                }
                assert_eq!(observe(b, line_b), before);
            });
        });
    }
}
