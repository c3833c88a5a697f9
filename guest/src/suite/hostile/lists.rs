//! The hostile cases, in run order, grouped by attack class (one file per
//! class). `bar4_onto_pci_config` comes last: on a VMM that lets the BAR
//! shadow the configuration ports the guest cannot move it back, and every
//! later case would only measure that.

use super::{
    Case, atapi, busy, irq, lba, midway, opcodes, params, pci_cfg, pio_flood, prd_addr, prd_table,
    trim,
};

/// Every hostile case.
pub const CASES: &[Case] = &[
    // Where PRDs point.
    Case::new("prd_beyond_ram", prd_addr::prd_beyond_ram),
    Case::new("prd_straddles_ram_end", prd_addr::prd_straddles_ram_end),
    Case::new("prd_in_legacy_hole", prd_addr::prd_in_legacy_hole),
    Case::new("prd_in_pci_hole", prd_addr::prd_in_pci_hole),
    Case::new("prd_at_ioapic", prd_addr::prd_at_ioapic),
    Case::new("prd_at_hpet", prd_addr::prd_at_hpet),
    Case::new("prd_at_lapic", prd_addr::prd_at_lapic),
    Case::new("prd_wraps_4g", prd_addr::prd_wraps_4g),
    Case::new("prd_split_sector_at_4g", prd_addr::prd_split_sector_at_4g),
    Case::new("prd_into_prd_table", prd_addr::prd_into_prd_table),
    Case::new("prd_table_in_hole", prd_addr::prd_table_in_hole),
    Case::new("prd_table_beyond_ram", prd_addr::prd_table_beyond_ram),
    Case::new("prd_table_at_lapic", prd_addr::prd_table_at_lapic),
    Case::new("prd_table_in_mmio", prd_addr::prd_table_in_mmio),
    Case::new(
        "prd_table_pointer_unaligned",
        prd_addr::prd_table_pointer_unaligned,
    ),
    Case::new(
        "prd_pointer_moved_after_start",
        prd_addr::prd_pointer_moved_after_start,
    ),
    Case::new("prd_write_from_hole", prd_addr::prd_write_from_hole),
    Case::new(
        "prd_write_from_beyond_ram",
        prd_addr::prd_write_from_beyond_ram,
    ),
    Case::new("prd_write_from_lapic", prd_addr::prd_write_from_lapic),
    Case::new("prd_mmio_overrun", prd_addr::prd_mmio_overrun),
    Case::new(
        "prd_sector_in_8_mmio_pages",
        prd_addr::prd_sector_in_8_mmio_pages,
    ),
    Case::new(
        "prd_mmio_long_exact_writeback",
        prd_addr::prd_mmio_long_exact_writeback,
    ),
    Case::new(
        "prd_table_straddles_ram_end",
        prd_addr::prd_table_straddles_ram_end,
    ),
    // The shape of the PRD table.
    Case::new("prd_count_zero_is_64k", prd_table::prd_count_zero_is_64k),
    Case::new("prd_count_one_is_64k", prd_table::prd_count_one_is_64k),
    Case::new("prd_odd_count", prd_table::prd_odd_count),
    Case::new("prd_odd_address", prd_table::prd_odd_address),
    Case::new("prd_no_eot_long", prd_table::prd_no_eot_long),
    Case::new("prd_no_eot_short", prd_table::prd_no_eot_short),
    Case::new(
        "prd_ends_two_bytes_short",
        prd_table::prd_ends_two_bytes_short,
    ),
    Case::new("prd_eot_on_first_entry", prd_table::prd_eot_on_first_entry),
    Case::new(
        "prd_long_extra_entry_in_hole",
        prd_table::prd_long_extra_entry_in_hole,
    ),
    Case::new(
        "prd_sector_in_32_pieces",
        prd_table::prd_sector_in_32_pieces,
    ),
    Case::new(
        "prd_256_tiny_contiguous",
        prd_table::prd_256_tiny_contiguous,
    ),
    Case::new(
        "prd_overlapping_entries",
        prd_table::prd_overlapping_entries,
    ),
    Case::new("prd_512_entries", prd_table::prd_512_entries),
    Case::new("prd_65536_sectors", prd_table::prd_65536_sectors),
    Case::new(
        "prd_512_entries_64k_for_one_sector",
        prd_table::prd_512_entries_64k_for_one_sector,
    ),
    // Addresses and counts.
    Case::new("lba48_at_capacity", lba::lba48_at_capacity),
    Case::new("lba48_max_count_at_end", lba::lba48_max_count_at_end),
    Case::new("lba48_max_lba", lba::lba48_max_lba),
    Case::new("lba48_sum_overflows", lba::lba48_sum_overflows),
    Case::new("lba28_at_capacity", lba::lba28_at_capacity),
    Case::new("lba28_across_end", lba::lba28_across_end),
    Case::new("lba28_count_zero_at_end", lba::lba28_count_zero_at_end),
    Case::new("lba28_max_lba_256", lba::lba28_max_lba_256),
    Case::new("pio_write_across_end", lba::pio_write_across_end),
    Case::new(
        "hob_fifo_written_three_times",
        lba::hob_fifo_written_three_times,
    ),
    Case::new("hob_set_while_loading", lba::hob_set_while_loading),
    Case::new("lba28_after_hob_garbage", lba::lba28_after_hob_garbage),
    Case::new("chs_sector_zero", lba::chs_sector_zero),
    Case::new("chs_beyond_geometry", lba::chs_beyond_geometry),
    Case::new("read_verify_beyond_end", lba::read_verify_beyond_end),
    Case::new("seek_beyond_end", lba::seek_beyond_end),
    Case::new(
        "pio_read_count_zero_beyond_end",
        lba::pio_read_count_zero_beyond_end,
    ),
    // Commands and register writes while busy.
    Case::new("command_while_dma_pending", busy::command_while_dma_pending),
    Case::new(
        "taskfile_and_select_while_dma_pending",
        busy::taskfile_and_select_while_dma_pending,
    ),
    Case::new(
        "data_port_reads_while_dma_pending",
        busy::data_port_reads_while_dma_pending,
    ),
    Case::new(
        "data_port_writes_while_dma_write_pending",
        busy::data_port_writes_while_dma_write_pending,
    ),
    Case::new("command_while_pio_in", busy::command_while_pio_in),
    Case::new("command_while_pio_out", busy::command_while_pio_out),
    Case::new("bm_start_while_pio_in", busy::bm_start_while_pio_in),
    Case::new("bm_registers_every_width", busy::bm_registers_every_width),
    Case::new("bm_direction_mismatch", busy::bm_direction_mismatch),
    Case::new(
        "dma_command_to_absent_slave",
        busy::dma_command_to_absent_slave,
    ),
    Case::new("srst_held_high", busy::srst_held_high),
    Case::new("srst_storm", busy::srst_storm),
    // Every opcode.
    Case::new("opcodes_00_3f", opcodes::opcodes_00_3f),
    Case::new("opcodes_40_7f", opcodes::opcodes_40_7f),
    Case::new("opcodes_80_bf", opcodes::opcodes_80_bf),
    Case::new("opcodes_c0_ff", opcodes::opcodes_c0_ff),
    // Absurd parameters, then the commands that use them.
    Case::new("set_multiple_absurd", params::set_multiple_absurd),
    Case::new(
        "set_multiple_zero_then_read_multiple",
        params::set_multiple_zero_then_read_multiple,
    ),
    Case::new("set_multiple_one", params::set_multiple_one),
    Case::new("init_params_zero_sectors", params::init_params_zero_sectors),
    Case::new(
        "init_params_largest_geometry",
        params::init_params_largest_geometry,
    ),
    Case::new("init_params_one_by_one", params::init_params_one_by_one),
    Case::new(
        "set_features_every_subcommand",
        params::set_features_every_subcommand,
    ),
    Case::new(
        "set_transfer_mode_every_value",
        params::set_transfer_mode_every_value,
    ),
    Case::new("write_cache_off_writes", params::write_cache_off_writes),
    // Interrupting data commands.
    Case::new("srst_mid_dma_read", midway::srst_mid_dma_read),
    Case::new("srst_mid_dma_write", midway::srst_mid_dma_write),
    Case::new("srst_mid_trim", midway::srst_mid_trim),
    Case::new("srst_mid_flush", midway::srst_mid_flush),
    Case::new("srst_mid_pio_in", midway::srst_mid_pio_in),
    Case::new("srst_mid_pio_out", midway::srst_mid_pio_out),
    Case::new("stop_mid_dma_read", midway::stop_mid_dma_read),
    Case::new("stop_mid_dma_write", midway::stop_mid_dma_write),
    Case::new("stop_mid_trim", midway::stop_mid_trim),
    Case::new("stop_mid_flush", midway::stop_mid_flush),
    Case::new("stop_mid_pio_in", midway::stop_mid_pio_in),
    Case::new("stop_mid_pio_out", midway::stop_mid_pio_out),
    Case::new("restart_mid_dma_read", midway::restart_mid_dma_read),
    Case::new(
        "bus_master_off_before_start",
        midway::bus_master_off_before_start,
    ),
    Case::new("bus_master_off_mid_dma", midway::bus_master_off_mid_dma),
    Case::new("io_decode_off_mid_dma", midway::io_decode_off_mid_dma),
    // The PIO data port.
    Case::new(
        "data_port_read_flood_idle",
        pio_flood::data_port_read_flood_idle,
    ),
    Case::new(
        "data_port_write_flood_idle",
        pio_flood::data_port_write_flood_idle,
    ),
    Case::new(
        "data_port_overrun_pio_in",
        pio_flood::data_port_overrun_pio_in,
    ),
    Case::new(
        "data_port_overrun_pio_out",
        pio_flood::data_port_overrun_pio_out,
    ),
    Case::new(
        "data_port_wrong_direction",
        pio_flood::data_port_wrong_direction,
    ),
    Case::new("data_port_byte_reads", pio_flood::data_port_byte_reads),
    Case::new("identify_overread", pio_flood::identify_overread),
    // TRIM.
    Case::new("trim_max_blocks", trim::trim_max_blocks),
    Case::new("trim_above_max_blocks", trim::trim_above_max_blocks),
    Case::new("trim_overlapping_ranges", trim::trim_overlapping_ranges),
    Case::new(
        "trim_out_of_range_between_valid",
        trim::trim_out_of_range_between_valid,
    ),
    Case::new("trim_largest_range", trim::trim_largest_range),
    Case::new(
        "trim_range_overflows_48_bits",
        trim::trim_range_overflows_48_bits,
    ),
    Case::new("trim_zero_blocks", trim::trim_zero_blocks),
    Case::new("trim_wrong_feature", trim::trim_wrong_feature),
    Case::new("trim_short_prd", trim::trim_short_prd),
    Case::new("trim_ranges_in_mmio", trim::trim_ranges_in_mmio),
    // Interrupts.
    Case::new("irq_mask_storm", irq::irq_mask_storm),
    Case::new("nien_storm", irq::nien_storm),
    Case::new("masked_irq_mask_toggles", irq::masked_irq_mask_toggles),
    Case::new("bm_int_never_cleared", irq::bm_int_never_cleared),
    // The PCI side.
    Case::new("bar4_size_probe", pci_cfg::bar4_size_probe),
    Case::new("bar4_onto_ide_ports", pci_cfg::bar4_onto_ide_ports),
    Case::new("bar4_onto_com1", pci_cfg::bar4_onto_com1),
    Case::new("bar4_onto_debug_exit", pci_cfg::bar4_onto_debug_exit),
    Case::new("bar4_at_zero", pci_cfg::bar4_at_zero),
    Case::new("config_sweep_ide", pci_cfg::config_sweep_ide),
    Case::new(
        "config_sweep_host_bridge",
        pci_cfg::config_sweep_host_bridge,
    ),
    Case::new("config_sweep_isa_bridge", pci_cfg::config_sweep_isa_bridge),
    Case::new("config_absent_functions", pci_cfg::config_absent_functions),
    Case::new("config_address_games", pci_cfg::config_address_games),
    Case::new("prog_if_native_mode", pci_cfg::prog_if_native_mode),
    Case::new("idetim_decode_off", pci_cfg::idetim_decode_off),
    Case::new("command_register_storm", pci_cfg::command_register_storm),
    // The ATAPI CD-ROM on device 1 (skipped without one; kept before the
    // last case, which may leave the configuration ports shadowed).
    Case::new("atapi_limit_zero", atapi::atapi_limit_zero),
    Case::new("atapi_limit_one", atapi::atapi_limit_one),
    Case::new("atapi_limit_odd", atapi::atapi_limit_odd),
    Case::new("atapi_read_past_end", atapi::atapi_read_past_end),
    Case::new("atapi_read12_wraps", atapi::atapi_read12_wraps),
    Case::new("atapi_packet_while_drq", atapi::atapi_packet_while_drq),
    Case::new("atapi_short_packet", atapi::atapi_short_packet),
    Case::new("atapi_srst_mid_packet", atapi::atapi_srst_mid_packet),
    Case::new("atapi_srst_mid_data", atapi::atapi_srst_mid_data),
    Case::new("bar4_onto_pci_config", pci_cfg::bar4_onto_pci_config),
];
