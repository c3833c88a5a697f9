//! Save, restore and restart with an ATAPI CD-ROM (features `snapshot`
//! and `atapi`): scripts of PACKET commands against a deferred medium,
//! saved after every step and restored into a fresh controller; the rest
//! of the script must read exactly what the original reads.

use std::vec;
use std::vec::Vec;

use super::harness::*;
use crate::snapshot::{Reader, Writer};

const PACKET: u8 = 0xA0;
const RAM: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
enum Act {
    /// PACKET with this CDB, byte-count limit and DMA flag.
    Packet([u8; 12], u16, bool),
    /// Reads this many words of the data port.
    Words(usize),
    /// Releases one request of the medium.
    Release,
    /// Reads Status (acknowledges the IRQ).
    Status,
    /// BMDMA STOP then START (device to memory) over a PRD at 0x20000.
    Start(u32),
}

fn cdb(bytes: &[u8]) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[..bytes.len()].copy_from_slice(bytes);
    c
}

fn read10(lba: u32, n: u16) -> [u8; 12] {
    let l = lba.to_be_bytes();
    let c = n.to_be_bytes();
    cdb(&[0x28, 0, l[0], l[1], l[2], l[3], 0, c[0], c[1]])
}

fn act<'a>(r: &mut Rig<'a, Deferred<'a>, 256>, a: Act) -> Vec<u32> {
    let mut out = vec![];
    match a {
        Act::Packet(c, limit, dma) => {
            r.outb(DEVICE, 0x00);
            r.outb(FEATURES, u8::from(dma));
            r.outb(LBAM, limit.to_le_bytes()[0]);
            r.outb(LBAH, limit.to_le_bytes()[1]);
            r.command(PACKET);
            for w in c.chunks(2) {
                r.outw(DATA, u16::from_le_bytes([w[0], w[1]]));
            }
        }
        Act::Words(n) => out.extend((0..n).map(|_| u32::from(r.inw(DATA)))),
        Act::Release => {
            if r.master().in_flight() > 0 {
                r.complete(1);
            }
        }
        Act::Status => out.push(u32::from(r.status())),
        Act::Start(len) => {
            r.prds(PRD_TABLE, &[(0x20000, len, true)]);
            r.bm_cmd(0x08);
            r.bm_cmd(0x09);
        }
    }
    out.push(u32::from(r.irq.level()));
    for port in [FEATURES, NSECT, LBAL, LBAM, LBAH, DEVICE, CTRL] {
        out.push(u32::from(r.inb(port)));
    }
    out.push(u32::from(r.inb(BMDMA + 2)));
    out
}

fn save<'a>(r: &Rig<'a, Deferred<'a>, 256>) -> Vec<u8> {
    let mut buf = vec![0u8; r.ide.max_state_len()];
    let mut w = Writer::new(&mut buf);
    r.ide.save_state(&mut w).unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

/// Runs `script` on a CD-ROM, saving after step `at` and finishing the
/// script on the original and on a clone restored from the state.
fn check_script(script: &[Act]) {
    for at in 0..=script.len() {
        with_deferred_cdrom(disk_image(32), |a| {
            a.enable_pci();
            for &s in &script[..at] {
                act(a, s);
            }
            let state = save(a);
            let ram = a.mem(0, RAM);
            with_deferred_cdrom(disk_image(32), |b| {
                b.set_mem(0, &ram);
                let mut rd = Reader::new(&state);
                b.ide.restore_state(&mut rd).unwrap();
                assert_eq!(rd.remaining(), 0);
                b.ide.restart();
                for (i, &s) in script[at..].iter().enumerate() {
                    assert_eq!(
                        act(b, s),
                        act(a, s),
                        "saved after {at}, step {} {s:?}",
                        at + i
                    );
                }
                assert_eq!(b.mem(0x20000, 8192), a.mem(0x20000, 8192));
                assert_eq!(save(b), save(a), "saved after {at}: same state at the end");
            });
        });
    }
}

#[test]
fn pio_read_with_blocks_in_flight_and_half_read() {
    use Act::*;
    check_script(&[
        Packet(read10(1, 3), 5120, false),
        Release,
        Words(100),
        Words(2460),
        Status,
        Release,
        Words(1536),
        Status,
    ]);
}

#[test]
fn dma_read_reply_sense_and_tray_lock() {
    use Act::*;
    check_script(&[
        Packet(read10(0, 2), 0, true),
        Start(4096),
        Release,
        Status,
        // An address past the medium: CHECK CONDITION, sense kept.
        Packet(read10(100, 1), 2048, false),
        Status,
        Packet(cdb(&[0x03, 0, 0, 0, 18]), 18, false),
        Words(9),
        Status,
        // Lock the tray; an eject is then refused.
        Packet(cdb(&[0x1E, 0, 0, 0, 1]), 0, false),
        Status,
        Packet(cdb(&[0x1B, 0, 0, 0, 2]), 0, false),
        Status,
        // INQUIRY by DMA: a reply waiting for START.
        Packet(cdb(&[0x12, 0, 0, 0, 36]), 0, true),
        Start(36),
        Status,
    ]);
}
