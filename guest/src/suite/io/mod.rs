//! Stamped disk I/O for the tests: building and checking sector stamps,
//! buffer layouts (PRD fragments in RAM or MMIO scratch), canaries around
//! fragments, the write manifest, and DMA/PIO transfers with the usual
//! checks.

mod layout;
mod non_data;
mod stamped;
mod transfer;
mod xfer;

pub use layout::{CANARY, Layout, Space};
pub use xfer::{Mode, Xfer, expect_bm, expect_clean};

use vmdma_guest::msg::Msg;

use super::Fail;

/// Wraps a message as a failure.
fn fail(m: Msg) -> Fail {
    Fail(m)
}
