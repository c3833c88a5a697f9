//! What every run needs besides its mode and target, and the QEMU
//! command line every QEMU run shares.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::plan::Sizes;

/// Everything a run needs besides the mode and target.
#[derive(Debug)]
pub struct Setup<'a> {
    /// This binary (for the vmdma runs).
    pub vmdma: &'a Path,
    /// The QEMU binary.
    pub qemu: &'a str,
    /// The guest ELF.
    pub kernel: &'a Path,
    /// The image.
    pub image: &'a Path,
    /// Guest RAM in bytes.
    pub memory: u64,
    /// How big the measurements are.
    pub sizes: Sizes,
    /// Longest run.
    pub timeout: Duration,
    /// Scratch directory for stats files.
    pub scratch: &'a Path,
}

/// vmdma (`vmdma run`) with the guest on `image`, with `--disk` options
/// `opts` appended to the path (none: the plain image, the default engine).
pub fn vmdma_command(setup: &Setup<'_>, image: &Path, opts: Option<&str>) -> Command {
    let disk = match opts {
        Some(o) => format!("{},{o}", image.display()),
        None => image.display().to_string(),
    };
    let mut c = Command::new(setup.vmdma);
    c.arg("run")
        .arg("--kernel")
        .arg(setup.kernel)
        .args(["--disk", &disk])
        .args(["--memory", &setup.memory.to_string()])
        .args(["--timeout", &setup.timeout.as_secs_f64().to_string()]);
    c
}

/// QEMU (under `timeout`) with the guest on `image` as an IDE disk with
/// `-drive` options `opts`, and the guest's command line `append`.
pub fn qemu_command(setup: &Setup<'_>, image: &Path, opts: &str, append: Option<&str>) -> Command {
    let secs = setup.timeout.as_secs().max(1);
    let mut c = Command::new("timeout");
    c.args(["-k", "5", &secs.to_string(), setup.qemu])
        .args(["-accel", "kvm", "-M", "pc"])
        .args(["-m", &format!("{}M", setup.memory >> 20)])
        .args(["-display", "none", "-nodefaults", "-no-reboot"])
        .args(["-serial", "stdio"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=ide,index=0,{opts}",
            image.display()
        ))
        .arg("-kernel")
        .arg(setup.kernel);
    if let Some(a) = append {
        c.args(["-append", a]);
    }
    c
}
