//! Boots purpose-built tiny kernels with the real `vmdma` binary under KVM
//! and checks output and exit statuses.

mod common;

use common::elf_builder::{ElfBuilder, code};
use common::{kvm_available, status, stderr, vmdma, write_file};

fn run_code(code: Vec<u8>, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let k = write_file(dir.path(), "k.elf", &ElfBuilder::new(code).build());
    let mut args = vec!["run", "--kernel", k.to_str().unwrap()];
    args.extend_from_slice(extra);
    vmdma(&args)
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn hello_and_debug_exit_value() {
    if !kvm_available() {
        return;
    }
    let o = run_code(code::hello(b"hello\n", 5), &[]);
    assert_eq!(o.stdout, b"hello\n");
    assert_eq!(status(&o), 5, "stderr: {}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn debug_exit_values_map_to_statuses() {
    if !kvm_available() {
        return;
    }
    for (value, expected) in [(0u32, 0), (63, 63), (64, 63), (0xFFFF_FFFF, 63)] {
        let o = run_code(code::hello(b"", value), &[]);
        assert_eq!(status(&o), expected, "value {value}: {}", stderr(&o));
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn no_subcommand_means_run() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = write_file(
        dir.path(),
        "k.elf",
        &ElfBuilder::new(code::hello(b"x", 2)).build(),
    );
    let o = vmdma(&["--kernel", k.to_str().unwrap(), "--memory", "16M"]);
    assert_eq!((status(&o), o.stdout.as_slice()), (2, &b"x"[..]));
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn timeout_gives_124() {
    if !kvm_available() {
        return;
    }
    let o = run_code(code::spin(b"spinning\n"), &["--timeout", "1"]);
    assert_eq!(status(&o), 124, "stderr: {}", stderr(&o));
    assert_eq!(o.stdout, b"spinning\n");
    assert!(stderr(&o).contains("timeout"));
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn triple_fault_is_a_shutdown() {
    if !kvm_available() {
        return;
    }
    let o = run_code(code::triple_fault(), &["--timeout", "60"]);
    assert_eq!(status(&o), 71, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("triple-fault"), "{}", stderr(&o));
}

/// Executing from an address with no memory behind it: KVM cannot emulate
/// the instruction fetch. That is the guest's fault (71), reported in one
/// line with the exit and the guest's RIP, not a VMM error (70).
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn code_outside_ram_is_a_guest_fault() {
    if !kvm_available() {
        return;
    }
    for target in [0xE000_0000u32, 0xD000_0000] {
        let o = run_code(code::jump_to(target), &["--timeout", "60"]);
        let err = stderr(&o);
        assert_eq!(status(&o), 71, "stderr: {err}");
        assert_eq!(err.lines().count(), 1, "{err:?}");
        assert!(err.starts_with("vmdma: guest fault: "), "{err:?}");
        assert!(err.contains("KVM_EXIT_INTERNAL_ERROR"), "{err:?}");
        assert!(err.contains(&format!("at rip {target:#x}")), "{err:?}");
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn halt_with_interrupts_off_is_a_shutdown() {
    if !kvm_available() {
        return;
    }
    let o = run_code(code::halt(b"bye\n"), &["--timeout", "60"]);
    assert_eq!(status(&o), 71, "stderr: {}", stderr(&o));
    assert_eq!(o.stdout, b"bye\n");
    assert!(stderr(&o).contains("halted"), "{}", stderr(&o));
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn start_info_and_cmdline_reach_the_guest() {
    if !kvm_available() {
        return;
    }
    let o = run_code(code::print_cmdline(), &["--cmdline", "foo=bar baz"]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "vmdma.mmio_scratch=0xd0000000,0x10000 foo=bar baz\n"
    );
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn unclaimed_port_and_mmio_read_all_ones() {
    if !kvm_available() {
        return;
    }
    let mut c = code::echo_port_byte(0x2F8); // COM2: no device there
    code::print_low_byte_at(&mut c, 0xE000_0000);
    code::debug_exit(&mut c, 0);
    code::cli_hlt(&mut c);
    let o = run_code(c, &[]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(o.stdout, [0xFF, 0xFF]);
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn ide_status_register_answers_after_reset() {
    if !kvm_available() {
        return;
    }
    // Status (0x1F7) of the primary master after reset: DRDY|DSC.
    let mut c = code::echo_port_byte(0x1F7);
    code::debug_exit(&mut c, 0);
    code::cli_hlt(&mut c);
    let o = run_code(c, &[]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(o.stdout, [0x50]);
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn mmio_scratch_behaves_like_ram() {
    if !kvm_available() {
        return;
    }
    let mut c = Vec::new();
    code::store_dword(&mut c, 0xD000_0010, 0x4443_4241); // "ABCD"
    code::store_dword(&mut c, 0xD000_FFFC, 0x0000_005A); // last dword: "Z"
    code::print_low_byte_at(&mut c, 0xD000_0010);
    code::print_low_byte_at(&mut c, 0xD000_0011);
    code::print_low_byte_at(&mut c, 0xD000_FFFC);
    code::debug_exit(&mut c, 0);
    code::cli_hlt(&mut c);
    let o = run_code(c, &["--stats"]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(o.stdout, b"ABZ");
    let err = stderr(&o);
    assert!(err.contains("mmio page 0xd0000000"), "{err}");
    assert!(err.contains("vm exits"), "{err}");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn stats_count_port_exits() {
    if !kvm_available() {
        return;
    }
    // Without coalescing every byte to COM1 is an exit of its own.
    let o = run_code(code::hello(b"abc", 0), &["--stats", "--no-coalesced-pio"]);
    assert_eq!(status(&o), 0);
    let err = stderr(&o);
    assert!(err.contains("port 0x03f8 in 0 out 3"), "{err}");
    assert!(err.contains("port 0x00f4 in 0 out 1"), "{err}");
    assert!(err.contains("run time"), "{err}");
}

/// COM1's transmit register is a coalesced zone while the guest has no
/// UART interrupt enabled: the bytes cost no exit and still reach stdout,
/// in order, before the run ends. With the THRE interrupt enabled every
/// byte exits again and the interrupt is raised at the write (the guest
/// sees IRQ 4 in the PIC's IRR before any other exit).
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn serial_output_is_coalesced_only_without_uart_interrupts() {
    if !kvm_available() {
        return;
    }
    let o = run_code(code::hello(b"abc\n", 0), &["--stats"]);
    let err = stderr(&o);
    assert_eq!(
        (status(&o), o.stdout.as_slice()),
        (0, &b"abc\n"[..]),
        "{err}"
    );
    assert!(err.contains("port 0x03f8 coalesced writes 4"), "{err}");
    assert!(!err.contains("port 0x03f8 in"), "{err}");
    // A guest that prints and then spins gets its output at the timeout.
    let o = run_code(code::spin(b"spinning\n"), &["--timeout", "1"]);
    assert_eq!((status(&o), o.stdout.as_slice()), (124, &b"spinning\n"[..]));

    let o = run_code(code::serial_thre_irq(b'A'), &["--stats"]);
    let err = stderr(&o);
    assert_eq!(o.stdout, b"A", "{err}");
    assert_eq!(status(&o), 16, "IRQ 4 not raised at the write: {err}");
    assert!(err.contains("port 0x03f8 in 0 out 1"), "{err}");
    assert!(!err.contains("port 0x03f8 coalesced"), "{err}");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn memory_the_host_cannot_map_is_one_clear_error() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = write_file(
        dir.path(),
        "k.elf",
        &ElfBuilder::new(code::hello(b"", 0)).build(),
    );
    // 1 GiB of address space cannot hold 3 GiB of guest RAM.
    let script = format!(
        "ulimit -v 1048576 && exec '{}' run --kernel '{}' --memory 3G",
        env!("CARGO_BIN_EXE_vmdma"),
        k.display()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    common::assert_one_line_error(&o, 70, "cannot map 3221225472 bytes of guest RAM");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn trace_io_logs_unclaimed_accesses() {
    if !kvm_available() {
        return;
    }
    let mut c = code::echo_port_byte(0x2F8);
    code::debug_exit(&mut c, 0);
    let o = run_code(c, &["--trace-io"]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains("vmdma: trace: unclaimed in port 0x2f8 size 1"),
        "{}",
        stderr(&o)
    );
}
