//! Attack class: the PCI side. BAR4 moved onto the legacy IDE ports, COM1,
//! the debug-exit port, port 0 and the configuration ports, a BAR size
//! probe; every configuration register of the three functions written
//! with all-ones and zeros at every width and put back; absent functions;
//! configuration-address games (enable bit clear, odd widths on
//! 0xCF8-0xCFB); a native-mode prog-if write; the IDETIM decode bit;
//! command-register storms. Nothing is printed while BAR4 sits on another
//! device's ports; the runner restores the configuration after each case.

use vmdma_guest::ata::regs::bm;
use vmdma_guest::msg;
use vmdma_guest::stamp::SECTOR;

use super::raw::{EOT, Expect, dma_verdict};
use super::{CaseResult, Hx, Verdict};
use crate::arch::io::{inb, inl, inw, outb, outl, outw};
use crate::pci::{
    COMMAND_IO, COMMAND_MASTER, CONFIG_ADDRESS, CONFIG_DATA, Function, REG_BAR4, REG_COMMAND,
    REG_IDETIM_PRIMARY,
};
use crate::{fail, pass};

/// Moves BAR4 to `base`, pokes the ports it now covers (a read of each,
/// a write of 0 to the BM command register), and reads it back.
fn move_bar4(hx: &mut Hx, base: u16) -> CaseResult {
    let f = hx.pci();
    let saved = f.read32(REG_BAR4);
    f.write32(REG_BAR4, u32::from(base) | 1);
    let back = f.read32(REG_BAR4);
    let aligned = u32::from(base & !0xF) | 1;
    for off in [0u16, 2, 4, 8, 10, 12] {
        let _ = inb(base.wrapping_add(off));
    }
    outb(base & !0xF, 0);
    f.write32(REG_BAR4, saved);
    let restored = f.read32(REG_BAR4);
    if restored != saved {
        return Ok(Verdict::Wedged(msg!(
            "BAR4 reads {restored:#x} after writing back {saved:#x} (configuration space unreachable?)"
        )));
    }
    if back != aligned {
        return pass!("BAR4 {base:#x} read back {back:#x}; moved back");
    }
    pass!("BAR4 at {:#x} and back", base & !0xF)
}

/// BAR4 on the legacy command block (0x1F0).
pub fn bar4_onto_ide_ports(hx: &mut Hx) -> CaseResult {
    move_bar4(hx, 0x1F0)
}

/// BAR4 on COM1 (0x3F0-0x3FF, also covering the IDE control port 0x3F6).
pub fn bar4_onto_com1(hx: &mut Hx) -> CaseResult {
    move_bar4(hx, 0x3F8)
}

/// BAR4 on the debug-exit port (0xF0-0xFF).
pub fn bar4_onto_debug_exit(hx: &mut Hx) -> CaseResult {
    move_bar4(hx, 0xF4)
}

/// BAR4 at port 0 (the legacy DMA controller's ports on a PC).
pub fn bar4_at_zero(hx: &mut Hx) -> CaseResult {
    move_bar4(hx, 0)
}

/// BAR4 on the configuration ports (0xCF0-0xCFF): a VMM that lets the BAR
/// shadow 0xCF8/0xCFC leaves the guest no way to move it back. Last in the
/// list for that reason.
pub fn bar4_onto_pci_config(hx: &mut Hx) -> CaseResult {
    move_bar4(hx, 0xCF8)
}

/// The BAR size probe: all-ones reads back a 16-byte I/O BAR.
pub fn bar4_size_probe(hx: &mut Hx) -> CaseResult {
    let f = hx.pci();
    let saved = f.read32(REG_BAR4);
    f.write32(REG_BAR4, 0xFFFF_FFFF);
    let probe = f.read32(REG_BAR4);
    f.write32(REG_BAR4, saved);
    if probe & 0xFFFF != 0xFFF1 {
        return fail!("BAR4 size probe reads {probe:#x} (want 0x....fff1: 16 bytes of I/O)");
    }
    pass!("size probe reads {probe:#x}")
}

/// Reads configuration register `off` of width `w` (1, 2, 4).
fn cfg_read(f: Function, off: u8, w: u8) -> u32 {
    match w {
        1 => u32::from(f.read8(off)),
        2 => u32::from(f.read16(off)),
        _ => f.read32(off),
    }
}

/// Writes configuration register `off` of width `w`.
fn cfg_write(f: Function, off: u8, w: u8, v: u32) {
    match w {
        1 => f.write8(off, v as u8),
        2 => f.write16(off, v as u16),
        _ => f.write32(off, v),
    }
}

/// The 256 configuration bytes of `f`.
fn dump(f: Function) -> [u32; 64] {
    let mut d = [0u32; 64];
    for (i, v) in d.iter_mut().enumerate() {
        *v = f.read32((i * 4) as u8);
    }
    d
}

/// Every register of `f` at every width: all-ones, zeros, then the old
/// value back. Bytes that do not come back (write-1-to-clear status bits,
/// write-once locks) are counted in the reason.
fn sweep(f: Function, skip: impl Fn(u8) -> bool) -> CaseResult {
    let before = dump(f);
    for w in [1u8, 2, 4] {
        for off in (0..=255u8).step_by(usize::from(w)) {
            if skip(off) {
                continue;
            }
            let old = cfg_read(f, off, w);
            cfg_write(f, off, w, 0xFFFF_FFFF);
            let _ = cfg_read(f, off, w);
            cfg_write(f, off, w, 0);
            let _ = cfg_read(f, off, w);
            cfg_write(f, off, w, old);
        }
    }
    let after = dump(f);
    let mut changed = 0u32;
    let mut first = None;
    for (i, (a, b)) in before.iter().zip(after.iter()).enumerate() {
        for byte in 0..4 {
            let off = i * 4 + byte;
            // Status (0x06-0x07) is write-1-to-clear.
            if off == 6 || off == 7 {
                continue;
            }
            if (a >> (8 * byte)) & 0xFF != (b >> (8 * byte)) & 0xFF {
                changed += 1;
                first.get_or_insert(off);
            }
        }
    }
    if f.read16(0) == 0xFFFF {
        return fail!("the function disappeared after the sweep");
    }
    match first {
        None => pass!("every register written at every width and restored"),
        Some(off) => pass!(
            "every register written at every width; {changed} bytes kept another value (first {off:#04x})"
        ),
    }
}

/// The IDE function (its BAR4 and command register are restored right
/// after each write, and again by the runner).
pub fn config_sweep_ide(hx: &mut Hx) -> CaseResult {
    sweep(hx.pci(), |_| false)
}

/// The host bridge (00:00.0).
pub fn config_sweep_host_bridge(_hx: &mut Hx) -> CaseResult {
    sweep(
        Function {
            device: 0,
            function: 0,
        },
        |_| false,
    )
}

/// The ISA bridge (function 0 of the IDE function's device).
pub fn config_sweep_isa_bridge(hx: &mut Hx) -> CaseResult {
    sweep(
        Function {
            device: hx.pci().device,
            function: 0,
        },
        |_| false,
    )
}

/// Functions that read as absent stay absent after writes to them.
pub fn config_absent_functions(hx: &mut Hx) -> CaseResult {
    let mut probed = 0u32;
    let ide = hx.pci();
    for device in 0..32u8 {
        for function in 0..8u8 {
            let f = Function { device, function };
            if f.read16(0) != 0xFFFF {
                continue;
            }
            if function > 0 && device != ide.device && device != 0 {
                continue;
            }
            f.write32(REG_COMMAND, 0xFFFF_FFFF);
            f.write32(REG_BAR4, 0xFFFF_FFFF);
            f.write32(0x40, 0xFFFF_FFFF);
            probed += 1;
            if f.read32(0) != 0xFFFF_FFFF || f.read32(REG_BAR4) != 0xFFFF_FFFF {
                return fail!("absent function 00:{device:02x}.{function} answered after writes");
            }
        }
    }
    // Bus 255, device 31, function 7 through the raw address.
    outl(CONFIG_ADDRESS, 0x80FF_FF00);
    outl(CONFIG_DATA, 0xFFFF_FFFF);
    outl(CONFIG_ADDRESS, 0x80FF_FF00);
    if inl(CONFIG_DATA) != 0xFFFF_FFFF {
        return fail!("bus 255 device 31 function 7 answered");
    }
    pass!("{probed} absent functions on bus 0 and one on bus 255 stayed absent")
}

/// Configuration-address games: data accesses with the enable bit clear,
/// reserved bits set, byte and word accesses to 0xCF8-0xCFB (0xCF9 gets
/// only 0, as it is the PIIX reset control register), unaligned data
/// accesses. Afterwards the IDE function reads back its identity.
pub fn config_address_games(hx: &mut Hx) -> CaseResult {
    let f = hx.pci();
    let want = f.read32(0);
    let addr = 0x8000_0000 | (u32::from(f.device) << 11) | (u32::from(f.function) << 8);
    outl(CONFIG_ADDRESS, addr & !0x8000_0000);
    let disabled = inl(CONFIG_DATA);
    outl(CONFIG_DATA, 0);
    outl(CONFIG_ADDRESS, addr | 0x0F00_0003);
    let _ = inl(CONFIG_DATA);
    outb(CONFIG_ADDRESS, 0xFF);
    outb(CONFIG_ADDRESS + 1, 0);
    outb(CONFIG_ADDRESS + 2, 0xFF);
    outb(CONFIG_ADDRESS + 3, 0xFF);
    outw(CONFIG_ADDRESS, 0xFFFF);
    outw(CONFIG_ADDRESS + 2, 0xFFFF);
    let _ = inb(CONFIG_ADDRESS + 1);
    let _ = inw(CONFIG_ADDRESS + 2);
    outl(CONFIG_ADDRESS, addr);
    let _ = inw(CONFIG_DATA + 1);
    let _ = inl(CONFIG_DATA + 2);
    let _ = inb(CONFIG_DATA + 3);
    let got = f.read32(0);
    if got != want {
        return fail!("vendor/device {got:#010x} after the games (was {want:#010x})");
    }
    pass!(
        "configuration space intact; a data read with the enable bit clear gave {}",
        if disabled == 0xFFFF_FFFF {
            "all-ones"
        } else {
            "something else"
        }
    )
}

/// Native mode requested through prog-if (0x09 = 0x8F).
pub fn prog_if_native_mode(hx: &mut Hx) -> CaseResult {
    let f = hx.pci();
    let before = f.read8(0x09);
    f.write8(0x09, 0x8F);
    let after = f.read8(0x09);
    f.write8(0x09, before);
    if after == before {
        return pass!("prog-if is read-only ({before:#04x})");
    }
    pass!("prog-if {before:#04x} became {after:#04x}; written back")
}

/// IDETIM decode enable (0x41 bit 7) cleared: the legacy ports may stop
/// decoding; then set again.
pub fn idetim_decode_off(hx: &mut Hx) -> CaseResult {
    let f = hx.pci();
    let v = f.read16(REG_IDETIM_PRIMARY);
    f.write16(REG_IDETIM_PRIMARY, v & !0x8000);
    let st = hx.ctx.ch.alt_status();
    f.write16(REG_IDETIM_PRIMARY, v);
    pass!(
        "with decode off the legacy ports {}",
        if st == 0xFF {
            "stopped answering"
        } else {
            "still answer"
        }
    )
}

/// I/O decode and bus mastering toggled 64 times, then a DMA read works.
pub fn command_register_storm(hx: &mut Hx) -> CaseResult {
    let f = hx.pci();
    let c = f.read16(REG_COMMAND);
    for i in 0..64u16 {
        f.write16(
            REG_COMMAND,
            c ^ (if i % 2 == 0 {
                COMMAND_IO
            } else {
                COMMAND_MASTER
            }),
        );
        let _ = inb(hx.ide.bmiba + bm::STATUS);
    }
    f.write16(REG_COMMAND, c);
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (2 * SECTOR as u32) | EOT)])?;
    let o = hx.read(lba, 2)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
    }))
}
