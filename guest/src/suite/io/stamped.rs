//! Building and checking stamped sectors in the staging and data buffers.

use vmdma_guest::msg;
use vmdma_guest::stamp::{self, HEADER_LEN, SECTOR, Template};

use super::fail;
use crate::arch::mem;
use crate::suite::{Ctx, Fail};

/// Checks `sectors` stamped sectors in `buf`.
fn verify_sectors(buf: &[u8], template: &Template, lba: u64, sectors: u32) -> Result<(), Fail> {
    let pattern = template.pattern();
    for i in 0..u64::from(sectors) {
        let at = i as usize * SECTOR;
        let lba_i = lba + i;
        let s = buf
            .get(at..at + SECTOR)
            .ok_or_else(|| fail(msg!("verify: buffer too small")))?;
        if let Err(m) = stamp::check_header(s, lba_i, pattern) {
            return Err(match stamp::decode_header(s) {
                Some((l, p)) => fail(msg!(
                    "{m} (sector holds the stamp of LBA {l} pattern {p}, want LBA {lba_i} pattern {pattern})"
                )),
                None => fail(msg!("{m} (no stamp)")),
            });
        }
        let body = s.get(HEADER_LEN..).unwrap_or(&[]);
        if let Some(off) = mem::first_difference(body, template.body()) {
            let o = HEADER_LEN + off;
            return Err(fail(msg!(
                "sector {lba_i} byte {o}: got {:#04x}, want {:#04x}",
                s.get(o).copied().unwrap_or(0),
                template.sector().get(o).copied().unwrap_or(0)
            )));
        }
    }
    Ok(())
}

impl Ctx {
    pub(super) fn set_template(&mut self, pattern: u32) {
        if self.template.pattern() != pattern {
            self.template = Template::new(pattern);
        }
    }

    /// Builds `sectors` stamped sectors of (`lba`, `pattern`) at the start
    /// of the staging buffer.
    pub fn build(&mut self, lba: u64, sectors: u32, pattern: u32) -> Result<(), Fail> {
        self.set_template(pattern);
        for i in 0..u64::from(sectors) {
            let at = i as usize * SECTOR;
            let s = self
                .stage
                .bytes
                .get_mut(at..at + SECTOR)
                .ok_or_else(|| fail(msg!("{sectors} sectors exceed the staging buffer")))?;
            mem::copy(s, self.template.sector());
            stamp::write_header(s, lba + i, pattern);
        }
        Ok(())
    }

    /// Checks the start of the staging buffer for `sectors` stamped sectors.
    pub fn verify_stage(&mut self, lba: u64, sectors: u32, pattern: u32) -> Result<(), Fail> {
        self.set_template(pattern);
        verify_sectors(&self.stage.bytes, &self.template, lba, sectors)
    }

    /// Checks the RAM data buffer from `offset` for stamped sectors.
    pub fn verify_data(
        &mut self,
        offset: usize,
        lba: u64,
        sectors: u32,
        pattern: u32,
    ) -> Result<(), Fail> {
        self.set_template(pattern);
        let buf = self.mem.data.get(offset..).unwrap_or(&[]);
        verify_sectors(buf, &self.template, lba, sectors)
    }
}
