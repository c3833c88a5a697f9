//! ATA register values, task-file encoding and IDENTIFY parsing: the parts
//! of the IDE driver that need no hardware.

pub mod identify;
pub mod regs;
pub mod taskfile;
