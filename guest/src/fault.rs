//! Crash reporting: CPU exceptions and Rust panics end the VM with
//! `GUEST_EXIT_CRASH` after a report on the console, never a silent hang.

use core::panic::PanicInfo;

use vmdma_guest::cmdline::Crash;
use vmdma_protocol::GUEST_EXIT_CRASH;

use crate::arch::cpu;
use crate::arch::idt::ExceptionFrame;
use crate::exit::exit;
use crate::println;

/// Mnemonic of exception `vector`.
fn mnemonic(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        _ => "reserved",
    }
}

/// Reports a CPU exception and exits with `GUEST_EXIT_CRASH`.
pub fn exception(frame: &ExceptionFrame) -> ! {
    println!();
    println!(
        "vmdma-guest: CPU EXCEPTION vector {} ({}) error code {:#x} at rip {:#x}",
        frame.vector,
        mnemonic(frame.vector),
        frame.error,
        frame.rip
    );
    println!(
        "vmdma-guest:   cs {:#x} rflags {:#x} rsp {:#x} ss {:#x}",
        frame.cs, frame.rflags, frame.rsp, frame.ss
    );
    if frame.vector == 14 {
        println!("vmdma-guest:   cr2 {:#x}", cpu::read_cr2());
    }
    exit(GUEST_EXIT_CRASH)
}

/// Crashes on purpose (`crash=` on the command line), so that host tests
/// can check how crashes are reported.
pub fn deliberate(kind: Crash) -> ! {
    println!("vmdma-guest: crashing on purpose (crash={})", kind.name());
    match kind {
        Crash::Exception => cpu::ud2(),
        Crash::Panic => deliberate_panic(),
    }
}

#[expect(clippy::panic, reason = "the crash=panic self-test")]
fn deliberate_panic() -> ! {
    panic!("crash=panic on the command line")
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    cpu::cli();
    println!();
    println!("vmdma-guest: PANIC: {info}");
    exit(GUEST_EXIT_CRASH)
}
