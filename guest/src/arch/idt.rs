//! The interrupt descriptor table and its entry stubs.
//!
//! - Vectors 0-31 (CPU exceptions): a stub pushes a dummy error code where
//!   the CPU does not, then the vector, and jumps to a common path that calls
//!   [`crate::fault::exception`] with a copy of the frame. That function
//!   reports and exits the VM, so exception stubs never return.
//! - Vectors 0x20-0x2F (the remapped 8259 IRQs): the stub saves the
//!   caller-saved registers, calls [`crate::pic::interrupt`] with the IRQ
//!   number, restores and `iretq`s.
//! - Vector 0xFF (local APIC spurious interrupt): `iretq` only.
//!
//! All gates are 64-bit interrupt gates (IF cleared on entry) on the boot
//! code segment, without IST: interrupts only arrive at ring 0, so no TSS is
//! needed. The target disables the red zone, so handlers may use the
//! interrupted stack.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;

/// First vector of the remapped master 8259.
pub const IRQ_BASE: u8 = 0x20;
/// Vector of local APIC spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xFF;
const CODE_SELECTOR: u16 = 0x08;

/// What the exception stubs saved.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct ExceptionFrame {
    /// Exception vector (0-31).
    pub vector: u64,
    /// Error code (0 for exceptions without one).
    pub error: u64,
    /// Faulting instruction pointer.
    pub rip: u64,
    /// Code segment.
    pub cs: u64,
    /// Flags.
    pub rflags: u64,
    /// Stack pointer at the time of the exception.
    pub rsp: u64,
    /// Stack segment.
    pub ss: u64,
}

global_asm!(
    r#"
    .pushsection .text.idt_stubs, "ax", @progbits
    .macro EXC_STUB n
    .balign 16
idt_exc_stub_\n:
    .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushq $0
    .endif
    pushq $\n
    jmp idt_exc_common
    .endm

    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    EXC_STUB \n
    .endr

idt_exc_common:
    movq %rsp, %rdi
    andq $-16, %rsp
    call {exception}
    ud2

    .macro IRQ_STUB n
    .balign 16
idt_irq_stub_\n:
    pushq %rdi
    movl $\n, %edi
    jmp idt_irq_common
    .endm

    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    IRQ_STUB \n
    .endr

idt_irq_common:
    /* With %rdi already saved, these 8 pushes leave %rsp 16-byte aligned. */
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    call {irq}
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rax
    popq %rdi
    iretq

    .balign 16
idt_spurious_stub:
    iretq
    .popsection

    .pushsection .rodata.idt_stub_table, "a", @progbits
    .balign 8
    .globl idt_exc_stub_table
idt_exc_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad idt_exc_stub_\n
    .endr
    .globl idt_irq_stub_table
idt_irq_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .quad idt_irq_stub_\n
    .endr
    .globl idt_spurious_stub_addr
idt_spurious_stub_addr:
    .quad idt_spurious_stub
    .popsection
"#,
    exception = sym exception_entry,
    irq = sym irq_entry,
    options(att_syntax)
);

unsafe extern "C" {
    static idt_exc_stub_table: [u64; 32];
    static idt_irq_stub_table: [u64; 16];
    static idt_spurious_stub_addr: u64;
}

extern "C" fn exception_entry(frame: *const ExceptionFrame) -> ! {
    // SAFETY: the common stub passes the address of the frame it built on
    // the current stack (vector, error code, then the CPU's frame).
    let frame = unsafe { frame.read() };
    crate::fault::exception(&frame)
}

extern "C" fn irq_entry(irq: u64) {
    crate::pic::interrupt(u8::try_from(irq).unwrap_or(u8::MAX));
}

#[repr(C, align(16))]
struct Idt(UnsafeCell<[[u64; 2]; 256]>);

// SAFETY: written only by `init`, once, before interrupts are enabled;
// afterwards only the CPU reads it.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([[0; 2]; 256]));

/// A present 64-bit interrupt gate (DPL 0) to `handler`.
fn gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xFFFF)
        | (u64::from(CODE_SELECTOR) << 16)
        | (0x8E << 40)
        | ((handler >> 16) & 0xFFFF) << 48;
    [low, handler >> 32]
}

/// Fills and loads the IDT. Call once, before any `sti`.
pub fn init() {
    // SAFETY: the stub tables are read-only data defined above.
    let (exc, irq, spurious) = unsafe {
        (
            idt_exc_stub_table,
            idt_irq_stub_table,
            idt_spurious_stub_addr,
        )
    };
    // SAFETY: single-threaded boot, interrupts disabled, and the IDT is not
    // loaded yet, so nothing else reads or writes it.
    let table = unsafe { &mut *IDT.0.get() };
    for (slot, handler) in table.iter_mut().zip(exc.iter()) {
        *slot = gate(*handler);
    }
    for (slot, handler) in table.iter_mut().skip(usize::from(IRQ_BASE)).zip(irq.iter()) {
        *slot = gate(*handler);
    }
    if let Some(slot) = table.get_mut(usize::from(SPURIOUS_VECTOR)) {
        *slot = gate(spurious);
    }
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer {
        limit: (256 * 16 - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the table holds valid gates to the stubs above and lives
    // forever (static).
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}
