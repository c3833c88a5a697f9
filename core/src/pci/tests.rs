use super::*;

fn bus_of<'a>(
    host: &'a mut HostBridge,
    isa: &'a mut IsaBridge,
    ide: &'a mut Piix3Ide,
) -> [(PciAddress, &'a mut dyn PciFunction); 3] {
    [
        (PciAddress::new(0, 0, 0).unwrap(), host),
        (PciAddress::new(0, 1, 0).unwrap(), isa),
        (PciAddress::new(0, 1, 1).unwrap(), ide),
    ]
}

fn cfg_addr(dev: u32, func: u32, reg: u32) -> u32 {
    0x8000_0000 | (dev << 11) | (func << 8) | reg
}

#[test]
fn mechanism1_latch_and_enumeration() {
    let (mut h, mut i, mut d) = (HostBridge::new(), IsaBridge::new(), Piix3Ide::new());
    let mut funcs = bus_of(&mut h, &mut i, &mut d);
    let bus = &mut funcs[..];
    let mut m = ConfigMechanism1::new();

    // Linux's type-1 probe: write 0x80000000, read it back.
    m.write(bus, 0, AccessWidth::Dword, 0x8000_0000);
    assert_eq!(m.read(bus, 0, AccessWidth::Dword), 0x8000_0000);
    // Reserved bits read as zero.
    m.write(bus, 0, AccessWidth::Dword, 0xFFFF_FFFF);
    assert_eq!(m.read(bus, 0, AccessWidth::Dword), 0x80FF_FFFC);
    // Narrow accesses to 0xCF8..0xCFB are not the latch.
    m.write(bus, 1, AccessWidth::Byte, 0x06);
    assert_eq!(m.address(), 0x80FF_FFFC);
    assert_eq!(m.read(bus, 1, AccessWidth::Byte), 0xFF);

    m.write(bus, 0, AccessWidth::Dword, cfg_addr(0, 0, 0));
    assert_eq!(m.read(bus, 4, AccessWidth::Dword), 0x1237_8086);
    m.write(bus, 0, AccessWidth::Dword, cfg_addr(1, 0, 0));
    assert_eq!(m.read(bus, 4, AccessWidth::Dword), 0x7000_8086);
    m.write(bus, 0, AccessWidth::Dword, cfg_addr(1, 0, 0x0C));
    assert_eq!(
        m.read(bus, 6, AccessWidth::Byte),
        0x80,
        "ISA bridge is multi-function"
    );
    m.write(bus, 0, AccessWidth::Dword, cfg_addr(1, 1, 0));
    assert_eq!(m.read(bus, 4, AccessWidth::Dword), 0x7010_8086);
    // Byte lanes and widths of the data window.
    assert_eq!(m.read(bus, 4, AccessWidth::Word), 0x8086);
    assert_eq!(m.read(bus, 6, AccessWidth::Word), 0x7010);
    assert_eq!(m.read(bus, 7, AccessWidth::Byte), 0x70);
    m.write(bus, 0, AccessWidth::Dword, cfg_addr(1, 1, 0x08));
    assert_eq!(m.read(bus, 4, AccessWidth::Dword), 0x0101_8000);

    // Non-existent function and disabled cycles: all ones, writes dropped.
    m.write(bus, 0, AccessWidth::Dword, cfg_addr(2, 0, 0));
    assert_eq!(m.read(bus, 4, AccessWidth::Dword), 0xFFFF_FFFF);
    assert_eq!(m.read(bus, 5, AccessWidth::Word), 0xFFFF);
    m.write(bus, 4, AccessWidth::Dword, 0);
    m.write(bus, 0, AccessWidth::Dword, 0x0000_0800 | 0x10);
    assert_eq!(m.read(bus, 4, AccessWidth::Dword), 0xFFFF_FFFF);
    // Bits 1:0 read as zero but select the byte, as in QEMU (libqos
    // reads the device ID with 0x80000902 and a word read of 0xCFC).
    m.write(bus, 0, AccessWidth::Dword, cfg_addr(1, 1, 0x02));
    assert_eq!(m.read(bus, 0, AccessWidth::Dword), cfg_addr(1, 1, 0));
    assert_eq!(m.read(bus, 4, AccessWidth::Word), 0x7010);
    assert_eq!(m.read(bus, 6, AccessWidth::Word), 0x7010, "OR, not add");
    m.write(bus, 0, AccessWidth::Dword, cfg_addr(1, 1, 0x03));
    assert_eq!(m.read(bus, 4, AccessWidth::Byte), 0x70);
    assert_eq!(m.read(bus, 5, AccessWidth::Byte), 0x70);
    // Other buses are empty.
    m.write(bus, 0, AccessWidth::Dword, 0x8001_0000);
    assert_eq!(m.read(bus, 4, AccessWidth::Dword), 0xFFFF_FFFF);
    assert_eq!(m.read(bus, 8, AccessWidth::Byte), 0xFF);
}

#[test]
fn piix_ide_bar4_probe_and_decode() {
    let mut ide = Piix3Ide::new();
    assert_eq!(ide.config_read(header::BAR4, AccessWidth::Dword), 0x1);
    assert_eq!(ide.bmdma_base(), None);
    // BARs 0-3 are hard-wired to zero.
    ide.config_write(header::BAR0, AccessWidth::Dword, 0xFFFF_FFFF);
    assert_eq!(ide.config_read(header::BAR0, AccessWidth::Dword), 0);
    // Size probe.
    ide.config_write(header::BAR4, AccessWidth::Dword, 0xFFFF_FFFF);
    let probe = ide.config_read(header::BAR4, AccessWidth::Dword);
    assert_eq!(probe, 0xFFFF_FFF1);
    assert_eq!((!(probe & !0x3)).wrapping_add(1), 16);
    // Assign; decode needs I/O space enabled.
    ide.config_write(header::BAR4, AccessWidth::Dword, 0xC000);
    assert_eq!(ide.config_read(header::BAR4, AccessWidth::Dword), 0xC001);
    assert_eq!(ide.bmdma_base(), None);
    ide.config_write(header::COMMAND, AccessWidth::Word, 0x0001);
    assert_eq!(ide.bmdma_base(), Some(0xC000));
    assert!(ide.io_enabled() && !ide.bus_master_enabled());
    ide.config_write(header::COMMAND, AccessWidth::Word, 0xFFFF);
    assert_eq!(ide.config_read(header::COMMAND, AccessWidth::Word), 0x0407);
    assert!(ide.bus_master_enabled());
    // A BAR past 64 KiB does not decode.
    ide.config_write(header::BAR4, AccessWidth::Dword, 0x1_0000);
    assert_eq!(ide.bmdma_base(), None);
    ide.config_write(header::BAR4, AccessWidth::Dword, 0xFFF0);
    assert_eq!(ide.bmdma_base(), Some(0xFFF0));
    // Status is read-only.
    ide.config_write(header::STATUS, AccessWidth::Word, 0xFFFF);
    assert_eq!(ide.config_read(header::STATUS, AccessWidth::Word), 0x0280);
    // Vendor/device/class are read-only.
    ide.config_write(0, AccessWidth::Dword, 0);
    assert_eq!(ide.config_read(0, AccessWidth::Dword), 0x7010_8086);
}

#[test]
fn piix_ide_timing_registers() {
    let mut ide = Piix3Ide::new();
    // Decode-enable bits preset as firmware would.
    assert_eq!(ide.config_read(0x41, AccessWidth::Byte), 0x80);
    assert_eq!(ide.config_read(0x43, AccessWidth::Byte), 0x80);
    assert_eq!(ide.config_read(0x40, AccessWidth::Dword), 0x8000_8000);
    // Linux's set_piomode/set_dmamode writes, all widths.
    ide.config_write(0x40, AccessWidth::Word, 0xA307);
    ide.config_write(0x44, AccessWidth::Byte, 0x5A);
    ide.config_write(0x48, AccessWidth::Byte, 0x03);
    ide.config_write(0x4A, AccessWidth::Word, 0x1212);
    assert_eq!(ide.config_read(0x40, AccessWidth::Word), 0xA307);
    assert_eq!(ide.config_read(0x44, AccessWidth::Byte), 0x5A);
    assert_eq!(ide.config_read(0x48, AccessWidth::Dword), 0x1212_0003);
    // Past the timing block nothing is writable.
    ide.config_write(0x4C, AccessWidth::Dword, 0xFFFF_FFFF);
    assert_eq!(ide.config_read(0x4C, AccessWidth::Dword), 0);
    // An access reaching past 0xFF reads 0xFF there and writes nothing.
    assert_eq!(ide.config_read(0xFE, AccessWidth::Dword), 0xFFFF_0000);
    ide.config_write(0xFF, AccessWidth::Dword, 0xFFFF_FFFF);
}

#[test]
fn firmware_init_assigns_bar4_and_io() {
    let mut ide = Piix3Ide::new();
    assert_eq!(ide.firmware_init(0), Err(PciError::BadIoBase { base: 0 }));
    assert_eq!(
        ide.firmware_init(0xC004),
        Err(PciError::BadIoBase { base: 0xC004 })
    );
    assert!(ide.firmware_init(0xC000).is_ok());
    assert_eq!(ide.bmdma_base(), Some(0xC000));
    assert!(!ide.bus_master_enabled());
}

#[test]
fn host_and_isa_bridges_are_mostly_read_only() {
    let mut h = HostBridge::new();
    assert_eq!(
        h.config_read(header::REVISION_ID, AccessWidth::Dword),
        0x0600_0002
    );
    h.config_write(header::COMMAND, AccessWidth::Word, 0);
    assert_eq!(h.config().command().bits(), 0x0006);
    h.config_write(header::LATENCY_TIMER, AccessWidth::Byte, 0x40);
    assert_eq!(
        h.config_read(header::LATENCY_TIMER, AccessWidth::Byte),
        0x40
    );
    let mut i = IsaBridge::new();
    assert_eq!(i.config_read(0x60, AccessWidth::Dword), 0x8080_8080);
    i.config_write(0x60, AccessWidth::Byte, 0x0B);
    assert_eq!(i.config_read(0x60, AccessWidth::Byte), 0x0B);
    assert_eq!(i.config().u8_at(header::HEADER_TYPE), 0x80);
}

#[test]
fn config_space_w1c() {
    let mut c = ConfigSpace::new();
    c.set_u16(header::STATUS, 0xF900);
    c.set_w1c(header::STATUS + 1, &[0xF9]);
    c.write(header::STATUS, AccessWidth::Word, 0x2000);
    assert_eq!(c.u16_at(header::STATUS), 0xD900);
    assert_eq!(c.u16_at(0xFF), 0xFF00);
}
