//! DMA memory set up at boot: [`DmaMemory`] for `spin::Once<T>`, so that a
//! host without a heap can keep its address space in a `static` (built
//! once the RAM and device regions are known) while devices in `static`s
//! refer to it from compile time on. Until it is set, every access fails
//! as if nothing were mapped.

use spin::Once;

use crate::block::RequestToken;
use crate::memory::{DeviceId, MemError, Probe};

use super::mapping::Mapping;
use super::retry::{RetryError, RetryStatus};
use super::{BounceWait, DmaDirection, DmaMemory};

/// The waiter of a memory not set yet: no bounce space, no queue.
struct Unset;

impl BounceWait for Unset {
    fn bounce_capacity(&self) -> usize {
        0
    }

    fn bounce_generation(&self) -> u32 {
        0
    }

    fn register_retry(&self, _: DeviceId, _: u32) -> Result<RetryStatus, RetryError> {
        Err(RetryError::QueueFull)
    }

    fn cancel_retry(&self, _: DeviceId) -> bool {
        false
    }

    fn poll_retry(&self) -> Option<DeviceId> {
        None
    }
}

impl<T: DmaMemory> DmaMemory for Once<T> {
    fn map(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Mapping<'_>, MemError> {
        self.get()
            .ok_or(MemError::Hole { addr })?
            .map(requester, addr, len, dir)
    }

    fn map_staging(&self, requester: DeviceId, len: usize) -> Result<Mapping<'_>, MemError> {
        self.get()
            .ok_or(MemError::BounceBusy)?
            .map_staging(requester, len)
    }

    fn probe(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Probe, MemError> {
        self.get()
            .ok_or(MemError::Hole { addr })?
            .probe(requester, addr, len, dir)
    }

    fn read(&self, requester: DeviceId, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.get()
            .ok_or(MemError::Hole { addr })?
            .read(requester, addr, buf)
    }

    fn write(&self, requester: DeviceId, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.get()
            .ok_or(MemError::Hole { addr })?
            .write(requester, addr, buf)
    }

    fn bounce_wait(&self) -> &dyn BounceWait {
        match self.get() {
            Some(m) => m.bounce_wait(),
            None => &Unset,
        }
    }

    fn reclaim(&self, token: RequestToken) {
        // Nothing can be quarantined before the memory is set.
        if let Some(m) = self.get() {
            m.reclaim(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::{AddressSpace, BounceArena};
    use crate::memory::{RegionMap, StaticBytes};

    #[test]
    fn a_static_address_space_set_at_boot() {
        static ARENA: BounceArena<512> = BounceArena::new();
        static RAM: StaticBytes<4096> = StaticBytes::new();
        static SPACE: Once<AddressSpace<'static, 2>> = Once::new();
        let mut b = [0u8; 4];
        assert_eq!(
            SPACE.read(DeviceId::HOST, 0, &mut b),
            Err(MemError::Hole { addr: 0 }),
            "nothing mapped before boot"
        );
        assert_eq!(SPACE.bounce_capacity(), 0);
        let mut map = RegionMap::new();
        map.add_ram(0, RAM.claim_ram().unwrap()).unwrap();
        SPACE.call_once(|| AddressSpace::new(map, &ARENA));
        SPACE.write(DeviceId::HOST, 8, &[1, 2, 3, 4]).unwrap();
        SPACE.read(DeviceId::HOST, 8, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(SPACE.bounce_capacity(), 512);
    }
}
