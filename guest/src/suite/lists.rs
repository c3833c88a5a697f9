//! The test lists, in run order.

use super::{
    Test, async_io, atapi, commands, dma, errors, identify, integrity, irq, mmio, pio, prd,
    readonly, registers,
};

/// The conformance suite, in run order (later tests change device state:
/// transfer modes, multiple mode).
pub const CONFORMANCE: &[Test] = &[
    Test::new("srst_signature", registers::srst_signature),
    Test::new("identify_device", identify::identify_device),
    Test::new("identify_capacity", identify::identify_capacity),
    Test::new("identify_lba48_bits", identify::identify_lba48_bits),
    Test::new("identify_dma_modes", identify::identify_dma_modes),
    Test::new("identify_flush_bits", identify::identify_flush_bits),
    Test::new("identify_strings", identify::identify_strings),
    Test::new("pio_rw_16bit", pio::pio_rw_16bit),
    Test::new("pio_rw_32bit", pio::pio_rw_32bit),
    Test::new("pio_rw_lba48", pio::pio_rw_lba48),
    Test::new("read_write_multiple", pio::read_write_multiple),
    Test::new("set_multiple_invalid", pio::set_multiple_invalid),
    Test::new("dma_single_prd", dma::dma_single_prd),
    Test::new("dma_many_prds", dma::dma_many_prds),
    Test::new("dma_noncontiguous_odd", dma::dma_noncontiguous_odd),
    Test::new("dma_64k_entries", dma::dma_64k_entries),
    Test::new("dma_lba48_count_above_256", dma::dma_lba48_count_above_256),
    Test::new("dma_mmio_bounce", mmio::dma_mmio_bounce),
    Test::new("dma_mmio_retry", mmio::dma_mmio_retry),
    Test::new("lba28_last_sector", dma::lba28_last_sector),
    Test::new("lba48_above_2_28", dma::lba48_above_2_28),
    Test::new("lba48_cross_2_28", dma::lba48_cross_2_28),
    Test::new("disk_last_sectors", dma::disk_last_sectors),
    Test::new("prd_exact", prd::prd_exact),
    Test::new("prd_short_read", prd::prd_short_read),
    Test::new("prd_short_write", prd::prd_short_write),
    Test::new("prd_long", prd::prd_long),
    Test::new("bus_master_off", prd::bus_master_off),
    Test::new("start_before_command", prd::start_before_command),
    Test::new("start_after_command", prd::start_after_command),
    Test::new(
        "taskfile_locked_during_dma",
        prd::taskfile_locked_during_dma,
    ),
    Test::new("stop_mid_transfer_read", prd::stop_mid_transfer_read),
    Test::new("stop_mid_transfer_write", prd::stop_mid_transfer_write),
    Test::new(
        "async_read_active_before_completion",
        async_io::async_read_active_before_completion,
    ),
    Test::new("async_hlt_wakeup", async_io::async_hlt_wakeup),
    Test::new("async_stop_mid_transfer", async_io::async_stop_mid_transfer),
    Test::new("async_srst_mid_transfer", async_io::async_srst_mid_transfer),
    Test::new("async_flood_stop_srst", async_io::async_flood_stop_srst),
    Test::new("irq_dma_completion", irq::irq_dma_completion),
    Test::new("irq_non_data_sets_bm_int", irq::irq_non_data_sets_bm_int),
    Test::new("status_read_clears_irq", irq::status_read_clears_irq),
    Test::new("nien_dma_no_irq", irq::nien_dma_no_irq),
    Test::new("nien_non_data_no_irq", irq::nien_non_data_no_irq),
    Test::new("hob_readback", registers::hob_readback),
    Test::new(
        "hob_cleared_by_register_write",
        registers::hob_cleared_by_register_write,
    ),
    Test::new("absent_slave", registers::absent_slave),
    Test::new("bm_registers", registers::bm_registers),
    Test::new("out_of_range_pio_read", errors::out_of_range_pio_read),
    Test::new("out_of_range_dma_read", errors::out_of_range_dma_read),
    Test::new("out_of_range_dma_write", errors::out_of_range_dma_write),
    Test::new("unknown_command", errors::unknown_command),
    Test::new("set_features_invalid", errors::set_features_invalid),
    Test::new("readonly_refuses_writes", readonly::skipped_in_conformance),
    Test::new("flush_cache", commands::flush_cache),
    Test::new("flush_cache_ext", commands::flush_cache_ext),
    Test::new("write_cache_off", commands::write_cache_off),
    Test::new("trim", commands::trim),
    Test::new("trim_out_of_range", errors::trim_out_of_range),
    Test::new("set_features_mwdma2", commands::set_features_mwdma2),
    Test::new("set_features_udma5", commands::set_features_udma5),
    Test::new("read_verify", commands::read_verify),
    Test::new("read_verify_ext", commands::read_verify_ext),
    Test::new("check_power_mode", commands::check_power_mode),
    Test::new(
        "execute_device_diagnostic",
        commands::execute_device_diagnostic,
    ),
    Test::new("read_native_max", commands::read_native_max),
    Test::new("read_native_max_ext", commands::read_native_max_ext),
    Test::new(
        "data_integrity_scattered",
        integrity::data_integrity_scattered,
    ),
];

/// The read-only suite (run with `suite=readonly` on a read-only disk).
pub const READONLY: &[Test] = &[
    Test::new("srst_signature", registers::srst_signature),
    Test::new("identify_device", identify::identify_device),
    Test::new("identify_capacity", identify::identify_capacity),
    Test::new("readonly_reads_agree", readonly::reads_agree),
    Test::new("readonly_refuses_pio_write", readonly::refuses_pio_write),
    Test::new("readonly_refuses_dma_write", readonly::refuses_dma_write),
];

/// The ATAPI suite (run with `suite=atapi` and a CD-ROM on device 1 holding
/// the image `vmdma_protocol::CD_TEST_BLOCKS` / `CD_PATTERN` describe).
pub const ATAPI: &[Test] = &[
    Test::new("atapi_signature", atapi::signature),
    Test::new(
        "atapi_identify_device_aborts",
        atapi::identify_device_aborts,
    ),
    Test::new("atapi_identify_packet", atapi::identify_packet),
    Test::new("atapi_test_unit_ready", atapi::test_unit_ready),
    Test::new("atapi_inquiry", atapi::inquiry),
    Test::new("atapi_read_capacity", atapi::read_capacity),
    Test::new("atapi_pio_read_limits", atapi::pio_read_limits),
    Test::new("atapi_pio_limit_zero", atapi::pio_limit_zero),
    Test::new("atapi_dma_read_odd_prds", atapi::dma_read_odd_prds),
    Test::new("atapi_sense_bad_lba", atapi::sense_bad_lba),
    Test::new("atapi_unknown_opcode", atapi::unknown_opcode),
    Test::new("atapi_read_toc", atapi::read_toc),
];

/// The seed-ISO suite (run with `suite=iso` and a NoCloud seed ISO on the
/// CD-ROM on device 1).
pub const ISO: &[Test] = &[Test::new("iso_nocloud_seed", atapi::nocloud_seed)];

/// The tray suite (`suite=atapi_tray`, with the CD-ROM test image on device
/// 1 and a host that answers through QMP: see `tests/qmp.rs`).
pub const ATAPI_TRAY: &[Test] = &[Test::new("atapi_host_tray", atapi::host_tray)];
