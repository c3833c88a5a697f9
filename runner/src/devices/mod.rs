//! Platform devices and the buses that route guest accesses to them.
//!
//! - [`bus`]: the port-I/O bus (port range → device, width/offset checks).
//! - [`chipset`]: PCI configuration, host/ISA bridges and the PIIX3 IDE
//!   controller from `vmdma-core` (zero-copy DMA to the raw disk).
//! - [`last_command`]: the guest's last ATA command, named when the disk
//!   stops answering at shutdown.
//! - [`irq`]: interrupt lines of the in-kernel irqchip.
//! - [`mmio`]: the MMIO path for exits that KVM did not handle.
//! - [`serial`]: COM1 16550 UART (rust-vmm `vm-superio`) → stdout.
//! - [`debug_exit`]: port 0xF4, ends the run with the value written.
//! - [`debug_console`]: port 0xE9, the guest's write manifest → `--manifest`.
//! - [`post_code`]: port 0x80, progress marks (counters recorded at each).
//! - [`mmio_scratch`]: 64 KiB of RAM-like MMIO (every access exits).

pub mod bus;
pub mod chipset;
pub mod debug_console;
pub mod debug_exit;
pub mod irq;
pub mod last_command;
pub mod mmio;
pub mod mmio_scratch;
pub mod post_code;
pub mod serial;
