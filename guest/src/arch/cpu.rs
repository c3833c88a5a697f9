//! CPU control: interrupt flag, halt, MSRs, control registers.

use core::arch::asm;

/// Disables maskable interrupts.
pub fn cli() {
    // SAFETY: clearing IF only delays interrupt delivery.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Enables maskable interrupts. The IDT must be loaded first (it is, by
/// `crate::init` before anything calls this).
pub fn sti() {
    // SAFETY: every vector the 8259 or the LAPIC can deliver has a handler
    // in the IDT (`idt::init` runs before any `sti`).
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// Waits for the next interrupt: `sti; hlt` (the interrupt is taken after
/// `hlt` starts, so none can slip in between), then interrupts off again.
pub fn wait_for_interrupt() {
    // SAFETY: as `sti`: every deliverable vector has a handler; `hlt` only
    // stops this CPU until the next interrupt.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// `cpuid` of `leaf` (sub-leaf 0): (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Stops the CPU for good: interrupts off, `hlt` in a loop.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Executes `ud2`: raises the invalid-opcode exception (for the crash
/// self-test; the exception handler never returns).
pub fn ud2() -> ! {
    // SAFETY: `ud2` only raises #UD, which the IDT handles.
    unsafe { asm!("ud2", options(nomem, nostack, noreturn)) }
}

/// Reads a model-specific register.
///
/// Only architectural MSRs that exist on every x86-64 CPU are read (a
/// missing MSR would raise #GP, which the exception handler reports).
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdmsr` has no memory effects; a bad index faults cleanly.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Reads CR2 (the faulting address of the last page fault).
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads the time-stamp counter.
///
/// Not `nomem`, so the compiler keeps it in program order with the memory
/// accesses around it (port I/O is ordered anyway: every asm block is
/// volatile).
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` only reads the counter into EDX:EAX.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}
