//! The guest-physical address space: RAM and MMIO regions, and the volatile
//! views through which host code touches guest RAM.

mod engaged;
mod error;
mod ids;
mod region;
mod region_map;
mod static_bytes;
mod volatile;

pub use engaged::MAX_CONCURRENT_DISPATCHES;
pub use error::{IommuFaultKind, MemError};
pub use ids::DeviceId;
pub use region::{MmioError, MmioHandler, Region, RegionKind};
pub(crate) use region_map::ram_view;
pub use region_map::{Probe, RegionMap};
pub use static_bytes::{StaticBytes, StaticRam};
pub(crate) use volatile::SharedBytes;
pub use volatile::{RamBacking, VolatileSlice};
