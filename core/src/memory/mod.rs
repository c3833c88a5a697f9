//! The guest-physical address space: RAM and MMIO regions, and the volatile
//! views through which host code touches guest RAM.

mod error;
mod region;
mod region_map;
mod volatile;

pub use error::{IommuFaultKind, MemError};
pub use region::{DeviceId, MmioError, MmioHandler, Region, RegionKind};
pub use region_map::RegionMap;
pub(crate) use region_map::ram_view;
pub(crate) use volatile::SharedBytes;
pub use volatile::{RamBacking, VolatileSlice};
