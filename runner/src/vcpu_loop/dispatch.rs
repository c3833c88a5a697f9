//! Handling one VM exit: a free function over a decoded exit, so it can be
//! tested with fabricated exits and no KVM.

use crate::control::StopReason;
use crate::devices::bus::{Access, PioBus};
use crate::devices::mmio::MmioSpace;
use crate::kvm::exit::VcpuExit;
use crate::metrics::exits::{ExitKind, ExitStats};

/// ` at rip 0x...` for an exit report, or nothing when RIP is unknown.
fn at_rip(rip: Option<u64>) -> String {
    rip.map(|r| format!(" at rip {r:#x}")).unwrap_or_default()
}

/// Classifies an internal-error exit: the guest's doing (a guest fault,
/// status 71) when KVM says the guest's instruction or event could not be
/// handled, otherwise a failure of the host (status 70).
fn internal_error(suberror: u32, rip: Option<u64>) -> Action {
    use kvm_bindings::{
        KVM_INTERNAL_ERROR_DELIVERY_EV, KVM_INTERNAL_ERROR_EMULATION, KVM_INTERNAL_ERROR_SIMUL_EX,
    };
    let guest = match suberror {
        KVM_INTERNAL_ERROR_EMULATION => Some("KVM cannot emulate the guest's instruction"),
        KVM_INTERNAL_ERROR_SIMUL_EX => Some("the guest raised an exception while handling one"),
        KVM_INTERNAL_ERROR_DELIVERY_EV => {
            Some("the guest faulted while KVM delivered an event to it")
        }
        _ => None,
    };
    let rip = at_rip(rip);
    match guest {
        Some(what) => Action::Stop(StopReason::GuestFault(format!(
            "{what} (KVM_EXIT_INTERNAL_ERROR, suberror {suberror}){rip}"
        ))),
        None => Action::Fail(format!(
            "KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror {suberror}){rip}"
        )),
    }
}

/// What the vCPU loop does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Re-enter the guest.
    Continue,
    /// The guest is done.
    Stop(StopReason),
    /// The VMM cannot go on (reason for the error message).
    Fail(String),
}

/// The devices an exit may reach.
pub struct ExitContext<'a, 'd> {
    /// Port-I/O devices.
    pub pio: &'a PioBus<'d>,
    /// MMIO regions.
    pub mmio: &'a dyn MmioSpace,
    /// Log unclaimed accesses to stderr.
    pub trace: bool,
}

fn note_access(stats: &mut ExitStats, trace: bool, access: Access, what: std::fmt::Arguments<'_>) {
    match access {
        Access::Handled => {}
        Access::Unclaimed => {
            stats.unclaimed += 1;
            if trace {
                eprintln!("vmdma: trace: unclaimed {what}");
            }
        }
        Access::BadWidth => {
            stats.bad_width += 1;
            if trace {
                eprintln!("vmdma: trace: refused width {what}");
            }
        }
    }
}

/// A port-I/O exit carries whole items of 1, 2 or 4 bytes; anything else
/// means KVM and the runner disagree, and the VMM stops.
fn check_io_size(size: usize, len: usize) -> Result<(), Action> {
    if matches!(size, 1 | 2 | 4) && len.is_multiple_of(size) {
        Ok(())
    } else {
        Err(Action::Fail(format!(
            "bad port-I/O exit: size {size}, {len} bytes"
        )))
    }
}

/// Handles one exit: routes I/O to devices and decides whether to go on.
pub fn handle_exit(exit: VcpuExit<'_>, ctx: &ExitContext<'_, '_>, stats: &mut ExitStats) -> Action {
    match exit {
        VcpuExit::IoIn { port, size, data } => {
            stats.exit(ExitKind::IoIn);
            stats.port(port, false);
            if let Err(fail) = check_io_size(size, data.len()) {
                return fail;
            }
            for item in data.chunks_exact_mut(size) {
                let a = ctx.pio.read(port, item);
                note_access(
                    stats,
                    ctx.trace,
                    a,
                    format_args!("in port {port:#x} size {size}"),
                );
            }
            Action::Continue
        }
        VcpuExit::IoOut { port, size, data } => {
            stats.exit(ExitKind::IoOut);
            stats.port(port, true);
            if let Err(fail) = check_io_size(size, data.len()) {
                return fail;
            }
            for item in data.chunks_exact(size) {
                let a = ctx.pio.write(port, item);
                note_access(
                    stats,
                    ctx.trace,
                    a,
                    format_args!("out port {port:#x} {item:02x?}"),
                );
            }
            Action::Continue
        }
        VcpuExit::MmioRead { addr, data } => {
            stats.exit(ExitKind::MmioRead);
            stats.mmio(addr);
            if !ctx.mmio.read(addr, data) {
                data.fill(0xFF);
                note_access(
                    stats,
                    ctx.trace,
                    Access::Unclaimed,
                    format_args!("mmio read {addr:#x}"),
                );
            }
            Action::Continue
        }
        VcpuExit::MmioWrite { addr, data } => {
            stats.exit(ExitKind::MmioWrite);
            stats.mmio(addr);
            if !ctx.mmio.write(addr, data) {
                note_access(
                    stats,
                    ctx.trace,
                    Access::Unclaimed,
                    format_args!("mmio write {addr:#x}"),
                );
            }
            Action::Continue
        }
        VcpuExit::Hlt => {
            stats.exit(ExitKind::Hlt);
            Action::Stop(StopReason::Shutdown("the guest halted"))
        }
        VcpuExit::Shutdown => {
            stats.exit(ExitKind::Shutdown);
            Action::Stop(StopReason::Shutdown(
                "the guest triple-faulted (KVM_EXIT_SHUTDOWN)",
            ))
        }
        VcpuExit::Interrupted => {
            stats.exit(ExitKind::Interrupted);
            Action::Continue
        }
        VcpuExit::FailEntry { reason, rip } => {
            stats.exit(ExitKind::Other);
            Action::Fail(format!(
                "KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason {reason:#x}){}",
                at_rip(rip)
            ))
        }
        VcpuExit::InternalError { suberror, rip } => {
            stats.exit(ExitKind::Other);
            internal_error(suberror, rip)
        }
        VcpuExit::SystemEvent(kind) => {
            stats.exit(ExitKind::Other);
            Action::Stop(StopReason::Shutdown(match kind {
                kvm_bindings::KVM_SYSTEM_EVENT_RESET => "the guest reset",
                kvm_bindings::KVM_SYSTEM_EVENT_CRASH => "the guest crashed",
                _ => "the guest shut down",
            }))
        }
        VcpuExit::Unexpected(name) => {
            stats.exit(ExitKind::Other);
            Action::Fail(format!("unexpected VM exit {name}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::devices::bus::{PioDevice, Widths};
    use crate::devices::mmio::{GuestBounceArena, GuestSpace};
    use crate::devices::mmio_scratch::MmioScratch;
    use vmdma_core::dma::AddressSpace;
    use vmdma_core::memory::RegionMap;

    /// A space with nothing mapped: every MMIO access is unclaimed.
    fn empty_space(bounce: &GuestBounceArena) -> GuestSpace<'_> {
        AddressSpace::new(RegionMap::new(), bounce)
    }

    #[derive(Default)]
    struct Log(Vec<u8>);
    impl PioDevice for Log {
        fn read(&mut self, offset: u16, data: &mut [u8]) {
            data.fill(0x40 + offset as u8);
        }
        fn write(&mut self, _offset: u16, data: &[u8]) {
            self.0.extend_from_slice(data);
        }
    }

    fn setup() -> (PioBus<'static>, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        let mut bus = PioBus::new();
        bus.insert(0x3F8, 8, Widths::BYTE, log.clone()).unwrap();
        (bus, log)
    }

    #[test]
    fn string_io_is_split_into_items() {
        let (bus, log) = setup();
        let bounce = GuestBounceArena::new();
        let mmio = empty_space(&bounce);
        let ctx = ExitContext {
            pio: &bus,
            mmio: &mmio,
            trace: false,
        };
        let mut st = ExitStats::default();
        let a = handle_exit(
            VcpuExit::IoOut {
                port: 0x3F8,
                size: 1,
                data: b"abc",
            },
            &ctx,
            &mut st,
        );
        assert_eq!(a, Action::Continue);
        assert_eq!(log.lock().unwrap().0, b"abc");
        let mut buf = [0u8; 3];
        handle_exit(
            VcpuExit::IoIn {
                port: 0x3F9,
                size: 1,
                data: &mut buf,
            },
            &ctx,
            &mut st,
        );
        assert_eq!(buf, [0x41; 3]);
        assert_eq!(st.count(ExitKind::IoOut), 1);
        assert_eq!(st.count(ExitKind::IoIn), 1);
    }

    #[test]
    fn unclaimed_and_bad_width() {
        let (bus, _) = setup();
        let bounce = GuestBounceArena::new();
        let mmio = empty_space(&bounce);
        let ctx = ExitContext {
            pio: &bus,
            mmio: &mmio,
            trace: false,
        };
        let mut st = ExitStats::default();
        let mut w = [0u8; 4];
        handle_exit(
            VcpuExit::IoIn {
                port: 0x1F0,
                size: 4,
                data: &mut w,
            },
            &ctx,
            &mut st,
        );
        assert_eq!(w, [0xFF; 4]);
        let mut w2 = [0u8; 2];
        handle_exit(
            VcpuExit::IoIn {
                port: 0x3F8,
                size: 2,
                data: &mut w2,
            },
            &ctx,
            &mut st,
        );
        assert_eq!(w2, [0xFF; 2]);
        assert_eq!((st.unclaimed, st.bad_width), (1, 1));
        let mut m = [0u8; 8];
        handle_exit(
            VcpuExit::MmioRead {
                addr: 0xE000_0000,
                data: &mut m,
            },
            &ctx,
            &mut st,
        );
        assert_eq!(m, [0xFF; 8]);
        assert_eq!(st.unclaimed, 2);
        let mut odd = [0u8; 3];
        assert!(matches!(
            handle_exit(
                VcpuExit::IoIn {
                    port: 0x3F8,
                    size: 2,
                    data: &mut odd
                },
                &ctx,
                &mut st
            ),
            Action::Fail(_)
        ));
    }

    #[test]
    fn mmio_reaches_regions() {
        let (bus, _) = setup();
        let scratch = MmioScratch::new(0x1000);
        let mut map = RegionMap::new();
        map.add_mmio(0xD000_0000, 0x1000, &scratch, None).unwrap();
        let bounce = GuestBounceArena::new();
        let mmio: GuestSpace<'_> = AddressSpace::new(map, &bounce);
        let ctx = ExitContext {
            pio: &bus,
            mmio: &mmio,
            trace: false,
        };
        let mut st = ExitStats::default();
        handle_exit(
            VcpuExit::MmioWrite {
                addr: 0xD000_0010,
                data: &[1, 2, 3, 4],
            },
            &ctx,
            &mut st,
        );
        let mut r = [0u8; 4];
        handle_exit(
            VcpuExit::MmioRead {
                addr: 0xD000_0010,
                data: &mut r,
            },
            &ctx,
            &mut st,
        );
        assert_eq!(r, [1, 2, 3, 4]);
        assert_eq!(st.unclaimed, 0);
    }

    #[test]
    fn internal_errors_caused_by_the_guest_are_guest_faults() {
        let (bus, _) = setup();
        let bounce = GuestBounceArena::new();
        let mmio = empty_space(&bounce);
        let ctx = ExitContext {
            pio: &bus,
            mmio: &mmio,
            trace: false,
        };
        let mut st = ExitStats::default();
        let mut exit =
            |suberror, rip| handle_exit(VcpuExit::InternalError { suberror, rip }, &ctx, &mut st);
        assert_eq!(
            exit(1, Some(0xE000_0000)),
            Action::Stop(StopReason::GuestFault(
                "KVM cannot emulate the guest's instruction (KVM_EXIT_INTERNAL_ERROR, suberror 1) at rip 0xe0000000"
                    .into()
            ))
        );
        for suberror in [2, 3] {
            assert!(matches!(
                exit(suberror, Some(5)),
                Action::Stop(StopReason::GuestFault(m)) if m.ends_with("at rip 0x5")
            ));
        }
        // KVM's own trouble (an exit it did not expect, unknown codes) is
        // the host's failure; an unreadable RIP is left out.
        assert_eq!(
            exit(4, None),
            Action::Fail("KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror 4)".into())
        );
        assert!(matches!(exit(99, Some(1)), Action::Fail(_)));
    }

    #[test]
    fn terminal_exits() {
        let (bus, _) = setup();
        let bounce = GuestBounceArena::new();
        let mmio = empty_space(&bounce);
        let ctx = ExitContext {
            pio: &bus,
            mmio: &mmio,
            trace: false,
        };
        let mut st = ExitStats::default();
        assert!(matches!(
            handle_exit(VcpuExit::Shutdown, &ctx, &mut st),
            Action::Stop(StopReason::Shutdown(_))
        ));
        assert!(matches!(
            handle_exit(VcpuExit::Hlt, &ctx, &mut st),
            Action::Stop(StopReason::Shutdown(_))
        ));
        assert_eq!(
            handle_exit(VcpuExit::Interrupted, &ctx, &mut st),
            Action::Continue
        );
        assert_eq!(
            handle_exit(
                VcpuExit::FailEntry {
                    reason: 0x21,
                    rip: Some(0x10_0000)
                },
                &ctx,
                &mut st
            ),
            Action::Fail(
                "KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason 0x21) at rip 0x100000"
                    .into()
            )
        );
        assert!(matches!(
            handle_exit(VcpuExit::Unexpected("X"), &ctx, &mut st),
            Action::Fail(_)
        ));
    }
}
