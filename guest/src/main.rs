//! # vmdma-guest
//!
//! A bare-metal, PVH-bootable x86-64 test guest. It drives the PIIX IDE
//! controller with PIO and bus-master DMA and runs a conformance suite whose
//! expectations are QEMU's IDE behaviour; the same ELF runs on QEMU and on
//! the vmdma runner. See `guest/README.md` for the command line, the output
//! format and the platform differences.
//!
//! Boot flow: `arch::boot` (32-bit PVH entry → long mode) → [`guest_main`]:
//! IDT, serial, start info and command line, PIC + LAPIC, PCI setup of the
//! IDE function, then the selected suite (or benchmark), then the
//! debug-exit port.
#![no_std]
#![no_main]
#![deny(unsafe_code)]
// The no-panic fence: no unwrap/expect/panic!/unchecked indexing.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod arch;
mod bench;
mod console;
mod exit;
mod fault;
mod ide;
mod lapic;
mod pci;
mod pic;
mod pit;
mod platform;
mod suite;
mod tsc;

use vmdma_guest::cmdline;
use vmdma_protocol::GUEST_EXIT_FAIL;

use crate::arch::{cpu, dma_memory, idt};
use crate::exit::exit;
use crate::platform::BootInfo;

/// Ends the VM with `GUEST_EXIT_FAIL` after printing why the guest could not
/// run its tests.
fn fatal(what: core::fmt::Arguments<'_>) -> ! {
    println!("vmdma-guest: fatal: {what}");
    exit(GUEST_EXIT_FAIL)
}

/// The Rust entry point, called by the boot stub in long mode with the
/// guest-physical address of `hvm_start_info`.
pub extern "C" fn guest_main(start_info: u32) -> ! {
    cpu::cli();
    idt::init();
    console::serial::init();
    console::started(start_info);

    let boot = BootInfo::read(start_info).unwrap_or_else(|e| fatal(format_args!("{e}")));
    let options =
        cmdline::parse(boot.cmdline()).unwrap_or_else(|e| fatal(format_args!("command line: {e}")));
    console::set_quiet(options.quiet);
    banner!(
        "vmdma-guest: start info v{}, cmdline \"{}\", {} memory map entries, {} MiB RAM",
        boot.info.version,
        boot.cmdline(),
        boot.memmap().len(),
        boot.ram_bytes() >> 20
    );
    if let Some(scratch) = &options.mmio_scratch
        && let Some(why) = boot.scratch_conflict(scratch)
    {
        fatal(format_args!(
            "MMIO scratch {:#x}+{:#x} {why}",
            scratch.base, scratch.len
        ));
    }
    if let Some(kind) = options.crash {
        fault::deliberate(kind);
    }
    pic::init();
    match lapic::virtual_wire() {
        Ok(lapic::ApicMode::Disabled) => banner!("vmdma-guest: local APIC disabled"),
        Ok(lapic::ApicMode::VirtualWire { base }) => {
            banner!("vmdma-guest: local APIC at {base:#x} in virtual-wire mode")
        }
        Err(e) => fatal(format_args!("local APIC at {:#x} is not usable", e.base)),
    }
    let ide = pci::setup_ide().unwrap_or_else(|e| fatal(format_args!("{e}")));
    banner!(
        "vmdma-guest: IDE {} 8086:{:04x} prog-if {:#04x}, BAR4 {:#x}{}{}{}",
        ide.function,
        ide.device_id,
        ide.prog_if,
        ide.bmiba,
        if ide.assigned_bar4 {
            " (assigned by the guest)"
        } else {
            ""
        },
        if ide.enabled_master {
            ", bus master enabled by the guest"
        } else {
            ""
        },
        if ide.enabled_decode {
            ", IDE decode enabled by the guest"
        } else {
            ""
        },
    );
    let Some((mem, stage)) = dma_memory::take() else {
        fatal(format_args!("DMA memory already taken"))
    };
    let value = match &options.bench {
        Some(b) => bench::run(b, &options, boot, ide.bmiba, mem, stage),
        None => suite::run(&options, boot, &ide, mem, stage),
    };
    exit(value)
}
