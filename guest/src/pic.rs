//! The legacy 8259 interrupt controllers and the IDE interrupt (IRQ 14).
//!
//! Both PICs are remapped to vectors 0x20-0x2F. Only the cascade (IRQ 2)
//! and IRQ 14 are unmasked (IRQ 0, the PIT, only while a test waits in
//! `hlt`). The IRQ 14 handler counts and sends EOI to both controllers.
//! Everything else that arrives is counted as stray.
//!
//! The guest runs with interrupts disabled except inside
//! [`with_interrupts`], so an IDE interrupt stays pending in the slave's
//! IRR until a test opens a window. In edge mode (the default) IRR latches
//! a rising edge; in level mode (ELCR bit set) IRR follows the line, which
//! is how the tests observe whether a register read lowered INTRQ.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::io::{inb, outb};
use crate::arch::{cpu, idt};

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xA0;
const SLAVE_DATA: u16 = 0xA1;
/// Edge/level control register of IRQs 8-15.
const ELCR_SLAVE: u16 = 0x4D1;
const EOI: u8 = 0x20;
const OCW3_READ_IRR: u8 = 0x0A;
const OCW3_READ_ISR: u8 = 0x0B;
/// IRQ 14 as a bit of the slave's registers.
const IRQ14_BIT: u8 = 1 << 6;

static IRQ14_COUNT: AtomicU32 = AtomicU32::new(0);
static STRAY_COUNT: AtomicU32 = AtomicU32::new(0);

/// Remaps and masks the PICs (IRQ 2 and 14 open), IRQ 14 edge-triggered.
pub fn init() {
    outb(MASTER_CMD, 0x11); // ICW1: edge, cascade, ICW4 follows
    outb(SLAVE_CMD, 0x11);
    outb(MASTER_DATA, idt::IRQ_BASE); // ICW2: vector base
    outb(SLAVE_DATA, idt::IRQ_BASE + 8);
    outb(MASTER_DATA, 0x04); // ICW3: slave on IRQ 2
    outb(SLAVE_DATA, 0x02); // ICW3: cascade identity
    outb(MASTER_DATA, 0x01); // ICW4: 8086 mode
    outb(SLAVE_DATA, 0x01);
    outb(MASTER_DATA, !0x04); // only the cascade
    outb(SLAVE_DATA, !IRQ14_BIT); // only IRQ 14
    set_irq14_level(false);
}

/// Called by the interrupt stubs with the IRQ number (0-15).
pub fn interrupt(irq: u8) {
    match irq {
        0 => {
            crate::pit::tick();
            outb(MASTER_CMD, EOI);
        }
        14 => {
            IRQ14_COUNT.fetch_add(1, Ordering::Relaxed);
            outb(SLAVE_CMD, EOI);
            outb(MASTER_CMD, EOI);
        }
        7 => {
            // Spurious unless the master really has IRQ 7 in service.
            outb(MASTER_CMD, OCW3_READ_ISR);
            let real = inb(MASTER_CMD) & 0x80 != 0;
            outb(MASTER_CMD, OCW3_READ_IRR);
            if real {
                STRAY_COUNT.fetch_add(1, Ordering::Relaxed);
                outb(MASTER_CMD, EOI);
            }
        }
        15 => {
            // A spurious IRQ 15 still needs the master's cascade EOI.
            outb(SLAVE_CMD, OCW3_READ_ISR);
            let real = inb(SLAVE_CMD) & 0x80 != 0;
            outb(SLAVE_CMD, OCW3_READ_IRR);
            if real {
                STRAY_COUNT.fetch_add(1, Ordering::Relaxed);
                outb(SLAVE_CMD, EOI);
            }
            outb(MASTER_CMD, EOI);
        }
        _ => {
            STRAY_COUNT.fetch_add(1, Ordering::Relaxed);
            if irq >= 8 {
                outb(SLAVE_CMD, EOI);
            }
            outb(MASTER_CMD, EOI);
        }
    }
}

/// IRQ 14 interrupts taken so far.
pub fn irq14_count() -> u32 {
    IRQ14_COUNT.load(Ordering::Relaxed)
}

/// Interrupts other than IRQ 14 taken so far.
pub fn stray_count() -> u32 {
    STRAY_COUNT.load(Ordering::Relaxed)
}

/// Whether IRQ 14 is pending in the slave PIC's IRR.
pub fn irq14_requested() -> bool {
    outb(SLAVE_CMD, OCW3_READ_IRR);
    inb(SLAVE_CMD) & IRQ14_BIT != 0
}

/// Switches IRQ 14 between level (IRR follows the line) and edge mode.
pub fn set_irq14_level(level: bool) {
    let elcr = inb(ELCR_SLAVE);
    let v = if level {
        elcr | IRQ14_BIT
    } else {
        elcr & !IRQ14_BIT
    };
    outb(ELCR_SLAVE, v);
}

/// Masks or unmasks IRQ 0 (the PIT) at the master PIC.
pub fn set_irq0_masked(masked: bool) {
    let imr = inb(MASTER_DATA);
    let v = if masked { imr | 1 } else { imr & !1 };
    outb(MASTER_DATA, v);
}

/// Masks or unmasks IRQ 14 at the slave PIC.
pub fn set_irq14_masked(masked: bool) {
    let imr = inb(SLAVE_DATA);
    let v = if masked {
        imr | IRQ14_BIT
    } else {
        imr & !IRQ14_BIT
    };
    outb(SLAVE_DATA, v);
}

/// Runs `f` with interrupts enabled, then disables them again.
///
/// `f` should poll a register that the VMM emulates in user space (an IDE
/// register): on a nested/emulated host, pending interrupts were seen to be
/// injected only on exits to user space, not on port accesses the
/// hypervisor handles itself (such as the PIC's).
pub fn with_interrupts<R>(f: impl FnOnce() -> R) -> R {
    cpu::sti();
    let r = f();
    cpu::cli();
    r
}

/// Polls [`drain`] makes at most.
pub const DRAIN_POLLS: u32 = 64;

/// Opens an interrupt window until IRQ 14 is no longer requested (at most
/// [`DRAIN_POLLS`] rounds of `poll`, see [`with_interrupts`]), so that a
/// latched edge from an earlier command is taken now; returns how many
/// IRQ 14s arrived.
pub fn drain(poll: impl Fn()) -> u32 {
    let before = irq14_count();
    with_interrupts(|| {
        for _ in 0..DRAIN_POLLS {
            if !irq14_requested() {
                break;
            }
            poll();
        }
    });
    irq14_count().wrapping_sub(before)
}

/// Opens an interrupt window of `polls` calls of `poll` (a bounded settle
/// time for "no interrupt arrives" checks); returns how many IRQ 14s
/// arrived.
pub fn window(polls: u32, poll: impl Fn()) -> u32 {
    let before = irq14_count();
    with_interrupts(|| {
        for _ in 0..polls {
            poll();
        }
    });
    irq14_count().wrapping_sub(before)
}
