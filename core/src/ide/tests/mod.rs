//! Register-level tests of the IDE controller, split by topic. Every test
//! drives the controller through port accesses, as a guest would.

mod harness;

#[cfg(feature = "atapi")]
mod atapi;
mod bmdma_regs;
mod dma;
mod dma_errors;
mod identify;
mod inflight_prop;
mod non_data;
mod pci;
mod pio;
mod prd_outcomes;
mod prop;
mod registers;
#[cfg(feature = "snapshot")]
mod snapshot;
#[cfg(all(feature = "snapshot", feature = "atapi"))]
mod snapshot_atapi;
mod srst;
mod stop;
mod trim;

/// The controller over a `Sync` memory (the address space) is `Send`, so a
/// host can move it to a vCPU thread or keep it behind `Arc<Mutex<..>>`.
#[test]
fn controller_is_send_over_an_address_space() {
    fn assert_send<T: Send>() {}
    assert_send::<
        crate::ide::IdeController<
            'static,
            crate::dma::AddressSpace<'static, 4>,
            crate::block::MemDisk<'static>,
            harness::TestIrq,
        >,
    >();
}
