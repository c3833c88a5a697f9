//! The controller as a PCI function, found through mechanism #1.

use super::harness::*;
use crate::ide::AccessWidth;
use crate::pci::{ConfigMechanism1, HostBridge, IsaBridge, PciAddress, PciFunction};

#[test]
fn guest_enumerates_and_programs_the_ide_function() {
    with_disk(64, |r| {
        let mut host = HostBridge::new();
        let mut isa = IsaBridge::new();
        let mut mech = ConfigMechanism1::new();
        let ide: &mut dyn PciFunction = &mut r.ide;
        let mut bus = [
            (
                PciAddress::new(0, 0, 0).unwrap(),
                &mut host as &mut dyn PciFunction,
            ),
            (PciAddress::new(0, 1, 0).unwrap(), &mut isa),
            (PciAddress::new(0, 1, 1).unwrap(), ide),
        ];
        let bus = &mut bus[..];
        let addr = |reg: u32| 0x8000_0000 | (1 << 11) | (1 << 8) | reg;
        mech.write(bus, 0, AccessWidth::Dword, addr(0));
        assert_eq!(mech.read(bus, 4, AccessWidth::Dword), 0x7010_8086);
        mech.write(bus, 0, AccessWidth::Dword, addr(8));
        assert_eq!(mech.read(bus, 4, AccessWidth::Dword) >> 8, 0x01_0180);
        // BAR4 probe and assignment, then I/O + bus master.
        mech.write(bus, 0, AccessWidth::Dword, addr(0x20));
        mech.write(bus, 4, AccessWidth::Dword, 0xFFFF_FFFF);
        assert_eq!(mech.read(bus, 4, AccessWidth::Dword), 0xFFFF_FFF1);
        mech.write(bus, 4, AccessWidth::Dword, u32::from(BMDMA));
        mech.write(bus, 0, AccessWidth::Dword, addr(0x04));
        mech.write(bus, 4, AccessWidth::Word, 0x0005);
        // IDETIM decode-enable bits, as ata_piix checks them.
        mech.write(bus, 0, AccessWidth::Dword, addr(0x40));
        assert_eq!(mech.read(bus, 5, AccessWidth::Byte) & 0x80, 0x80);
        assert_eq!(mech.read(bus, 7, AccessWidth::Byte) & 0x80, 0x80);
        assert!(r.ide.pci().bus_master_enabled());
        assert_eq!(r.ide.pci().bmdma_base(), Some(BMDMA));
        assert_eq!(r.bm_status(), 0);
    });
}

#[test]
fn firmware_init_assigns_bar4() {
    with_disk(64, |r| {
        r.ide.firmware_init(0xC040).unwrap();
        assert_eq!(r.ide.pci().bmdma_base(), Some(0xC040));
        assert!(!r.ide.pci().bus_master_enabled());
        assert!(r.ide.firmware_init(0xC041).is_err());
        assert_eq!(r.ide.config_read(0, AccessWidth::Word), 0x8086);
    });
}

#[test]
fn stats_display() {
    with_disk(64, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba28(0, 1);
        r.command(crate::ide::opcode::READ_DMA);
        r.bm_cmd(0x09);
        let s = std::format!("{}", r.ide.stats());
        assert!(s.contains("dma read 1"), "{s}");
        assert!(s.contains("1.00 per command, max 1"), "{s}");
        assert_eq!(r.ide.stats().requests_per_dma_x100(), Some(100));
    });
}
