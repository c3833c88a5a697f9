//! The controller's saved state (feature `snapshot`): a section with magic
//! `VIDE` and a version, the capacities it was saved with, the channel,
//! the PCI function and the secondary channel's BMDMA registers. The
//! layout is documented in core/README.md ("Device state").

use crate::block::BlockDevice;
use crate::dma::DmaMemory;
use crate::snapshot::{Reader, SnapshotError, Writer};

use super::super::IrqLine;
use super::super::bus_master::BusMaster;
use super::super::channel::snapshot::{ChannelImage, read_bm, write_bm};
use super::IdeController;

/// Magic bytes of the controller's section.
const MAGIC: &[u8; 4] = b"VIDE";

impl<'m, M, B, I, const IOV: usize, const PRD: usize> IdeController<'m, M, B, I, IOV, PRD>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// Format version of the controller's state.
    pub const STATE_VERSION: u16 = 1;
    /// Bytes of a saved state besides the PIO buffer's: `save_state`
    /// needs at most this plus the PIO buffer's size.
    pub const STATE_OVERHEAD: usize = 512;

    /// The most bytes [`IdeController::save_state`] writes for this
    /// controller.
    pub fn max_state_len(&self) -> usize {
        Self::STATE_OVERHEAD.saturating_add(self.channel.pio_buffer_len())
    }

    /// Saves everything the guest can observe of the controller, and the
    /// operation outstanding as what re-issues it (never host addresses),
    /// into `w`. A request in flight stays in flight: nothing changes.
    /// [`SnapshotError::TooSmall`] if `w` has less room than the state
    /// needs (at most [`IdeController::max_state_len`] bytes).
    pub fn save_state(&self, w: &mut Writer<'_>) -> Result<(), SnapshotError> {
        w.header(MAGIC, Self::STATE_VERSION)?;
        w.usize(IOV)?;
        w.usize(PRD)?;
        w.usize(self.channel.pio_buffer_len())?;
        self.channel.save(w)?;
        self.pci.save_state(w)?;
        write_bm(w, &self.secondary)
    }

    /// Restores a state saved by [`IdeController::save_state`] of a
    /// controller with the same capacities (`IOV`, `PRD`, PIO buffer) and
    /// the same drives (kind and size). Every field is validated first; on
    /// any error nothing has changed. Issues nothing: the operation that
    /// was outstanding is re-issued by [`IdeController::restart`] (or by
    /// the next register access, `poll`, `on_bounce_free` or `drain`,
    /// whichever comes first). Refused with [`SnapshotError::Busy`] while
    /// this controller has a request in flight or a transfer waiting for
    /// bounce space. The counters ([`IdeController::stats`]) and
    /// [`IdeController::last_error`] are host-side and not restored.
    pub fn restore_state(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        let (channel, pci, secondary) = self.parse_state(r)?;
        self.channel.apply(channel);
        self.pci.apply_state(pci);
        self.secondary = secondary;
        Ok(())
    }

    /// Everything [`IdeController::restore_state`] checks, without
    /// changing the controller: `Ok` means `restore_state` of the same
    /// bytes succeeds now (and reads as many). For hosts that restore
    /// several devices all or nothing.
    pub fn validate_state(&self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        self.parse_state(r).map(drop)
    }

    /// Reads and validates a whole state.
    fn parse_state<'r>(
        &self,
        r: &mut Reader<'r>,
    ) -> Result<(ChannelImage<'r>, [u8; 256], BusMaster), SnapshotError> {
        r.header(MAGIC, Self::STATE_VERSION)?;
        let caps = [
            ("I/O vector capacity (IOV)", IOV),
            ("PRD capacity (PRD)", PRD),
            ("PIO buffer bytes", self.channel.pio_buffer_len()),
        ];
        for (what, here) in caps {
            let saved = r.u64()?;
            let here = u64::try_from(here).unwrap_or(u64::MAX);
            if saved != here {
                return Err(SnapshotError::Mismatch { what, saved, here });
            }
        }
        if !self.channel.is_quiescent() {
            return Err(SnapshotError::Busy);
        }
        let channel = self.channel.parse(r)?;
        let pci = self.pci.parse_state(r)?;
        let secondary: BusMaster = read_bm(r)?;
        if secondary.active() != secondary.command.contains(super::super::BmCommand::START) {
            return Err(SnapshotError::Invalid(
                "secondary BMDMA ACTIVE differs from START",
            ));
        }
        Ok((channel, pci, secondary))
    }

    /// Re-issues the operation that was outstanding when the restored
    /// state was saved, from where it was: a DMA re-walks its PRD table in
    /// guest memory (restore guest RAM first) and skips the bytes already
    /// completed, a PIO block is read or written again, a flush or the
    /// current TRIM range is issued again, a transfer that waited for
    /// bounce space waits again. Completions then arrive as usual
    /// ([`IdeController::poll`]). Does nothing when nothing is pending.
    pub fn restart(&mut self) {
        self.channel.restart();
    }

    /// True when a restored operation waits for [`IdeController::restart`].
    pub fn restart_pending(&self) -> bool {
        self.channel.restart_pending()
    }
}
