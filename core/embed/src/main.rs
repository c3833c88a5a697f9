//! The embedding example as a program: on a bare-metal target a `no_std`,
//! `no_main` image with its own entry point (nothing runs it here; CI builds
//! it, measures it and proves it panic-free at the link), on the host a
//! normal program that runs the demonstration.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod bare_metal {
    /// The entry point: run the demonstration, then stop.
    // SAFETY: `_start` is the one symbol of this name in the image; the
    // linker makes it the entry point, which is what `no_mangle` is for.
    #[allow(unsafe_code)]
    #[unsafe(no_mangle)]
    pub extern "C" fn _start() -> ! {
        let ok = vmdma_embed::demo().is_ok();
        loop {
            core::hint::black_box(ok);
            core::hint::spin_loop();
        }
    }

    /// The state sizes of this target, for `size_budget.py` to report.
    // SAFETY: a unique name, only read from the ELF file by the size report.
    #[allow(unsafe_code)]
    #[unsafe(no_mangle)]
    #[used]
    static VMDMA_EMBED_STATE_SIZES: [u32; 4] = vmdma_embed::STATE_SIZES;

    /// With `no-panic-proof`, a panic path that survived optimisation calls
    /// a symbol nothing defines, so the image does not link.
    #[cfg(feature = "no-panic-proof")]
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        #[allow(unsafe_code)]
        // SAFETY: never defined, never called: the link fails first if any
        // code path can reach this handler.
        unsafe extern "C" {
            fn vmdma_embed_panic_path_is_reachable() -> !;
        }
        #[allow(unsafe_code)]
        // SAFETY: see above; this call only exists to be unresolvable.
        unsafe {
            vmdma_embed_panic_path_is_reachable()
        }
    }

    /// Without the proof, a panic stops the CPU.
    #[cfg(not(feature = "no-panic-proof"))]
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        loop {
            core::hint::spin_loop();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    match vmdma_embed::demo() {
        Ok(()) => {
            println!(
                "vmdma-embed: READ DMA and WRITE DMA checked; channel state {} bytes",
                vmdma_embed::channel_state_bytes()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vmdma-embed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
