//! The `qemu-system-x86_64` command line as libqtest and QEMU's
//! `ide-test` write it, parsed into a [`QtestConfig`].
//!
//! Only what vmdma can honour is accepted; every other option, sub-option
//! or value is a [`UsageError`] naming it (one line, exit status 64), never
//! silently ignored. Sub-options use QEMU's syntax: `key=value` pairs
//! separated by commas, `,,` for a comma inside a value, and for some
//! options an implied first key (`-machine pc` is `type=pc`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use vmdma::cli::{MAX_MEMORY, parse_size};
use vmdma::disk::Faults;
use vmdma::disk::options::split_blkdebug;
use vmdma::disk::policy::{ErrorPolicy, OnError};

/// Guest RAM when `-m` is absent (QEMU's default for `pc`).
pub const DEFAULT_RAM: u64 = 128 << 20;
/// Smallest `-m`: libqos allocates guest buffers from 1 MiB up.
pub const MIN_RAM: u64 = 2 << 20;

/// A command-line error: the text after `vmdma: error: `.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("qtest: {0}")]
pub struct UsageError(pub String);

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// IDENTIFY strings set with `-global ide-hd.PROP=VALUE` or on `-device`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriveStrings {
    /// `serial`.
    pub serial: Option<String>,
    /// `ver` (firmware revision).
    pub ver: Option<String>,
    /// `model`.
    pub model: Option<String>,
}

impl DriveStrings {
    fn set(&mut self, prop: &str, value: &str, option: &str) -> Result<(), UsageError> {
        let slot = match prop {
            "serial" => &mut self.serial,
            "ver" => &mut self.ver,
            "model" => &mut self.model,
            _ => return usage(format!("{option}: property '{prop}' is not supported")),
        };
        *slot = Some(value.to_string());
        Ok(())
    }

    /// `self`, with `global` filling what is unset.
    fn or(&self, global: &DriveStrings) -> DriveStrings {
        DriveStrings {
            serial: self.serial.clone().or_else(|| global.serial.clone()),
            ver: self.ver.clone().or_else(|| global.ver.clone()),
            model: self.model.clone().or_else(|| global.model.clone()),
        }
    }
}

/// A disk or CD-ROM drive attached to the primary IDE channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// The raw image (`None`: a CD-ROM drive without a medium).
    pub path: Option<PathBuf>,
    /// Opened read-only (always, for a CD-ROM).
    pub read_only: bool,
    /// An ATAPI CD-ROM drive (`media=cdrom`, `-device ide-cd`).
    pub cdrom: bool,
    /// IDENTIFY strings (device properties, then `-global`s).
    pub strings: DriveStrings,
    /// `werror=` / `rerror=` of `-drive`.
    pub policy: ErrorPolicy,
    /// `file=blkdebug:CONFIG:IMAGE`.
    pub faults: Option<Faults>,
}

/// Everything the front end needs from its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QtestConfig {
    /// `-qtest unix:PATH`: the socket the protocol runs on (we connect).
    pub qtest_socket: PathBuf,
    /// `-qtest-log PATH`: where requests and replies are logged.
    pub qtest_log: Option<PathBuf>,
    /// The QMP monitor's socket (`-chardev socket,path=P` used by `-mon`).
    pub qmp_socket: Option<PathBuf>,
    /// Guest RAM in bytes.
    pub ram: u64,
    /// Device 0 and device 1 of the primary channel.
    pub units: [Option<DiskConfig>; 2],
}

/// A block node from `-blockdev` or `-drive if=none`.
#[derive(Clone, Debug)]
struct Node {
    path: PathBuf,
    read_only: bool,
    /// `media=cdrom`.
    cdrom: bool,
    used: bool,
    policy: ErrorPolicy,
    faults: Option<Faults>,
}

/// The `-global` strings that apply: `ide-hd`'s, not to a CD-ROM.
fn globals_for(cdrom: bool, globals: &DriveStrings) -> &DriveStrings {
    static NONE: DriveStrings = DriveStrings {
        serial: None,
        ver: None,
        model: None,
    };
    if cdrom { &NONE } else { globals }
}

/// A `-device ide-hd` / `ide-cd`.
#[derive(Debug)]
struct Device {
    /// The block node (`None`: an ide-cd without a medium).
    node: Option<String>,
    unit: Option<u8>,
    strings: DriveStrings,
    cdrom: bool,
}

/// Sub-options of one option, with the implied first key resolved.
#[derive(Debug)]
struct Opts {
    option: String,
    map: BTreeMap<String, String>,
}

impl Opts {
    /// Splits `text` QEMU-style; `implied` names the key of a first
    /// element without `=`.
    fn parse(option: &str, text: &str, implied: Option<&str>) -> Result<Opts, UsageError> {
        let mut map = BTreeMap::new();
        for (i, part) in vmdma::qemu_opts::split_qemu_opts(text)
            .into_iter()
            .enumerate()
        {
            let (k, v) = match part.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => match (i, implied) {
                    (0, Some(key)) => (key.to_string(), part),
                    _ if part.is_empty() => return usage(format!("{option}: empty parameter")),
                    _ => return usage(format!("{option}: parameter '{part}' needs a value")),
                },
            };
            if k.is_empty() {
                return usage(format!("{option}: parameter without a name"));
            }
            if map.insert(k.clone(), v).is_some() {
                return usage(format!("{option}: parameter '{k}' given twice"));
            }
        }
        Ok(Opts {
            option: option.to_string(),
            map,
        })
    }

    fn take(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    fn require(&mut self, key: &str) -> Result<String, UsageError> {
        self.take(key)
            .ok_or_else(|| UsageError(format!("{}: parameter '{key}' is required", self.option)))
    }

    /// `key` must be absent or one of `allowed`; returns it.
    fn one_of(&mut self, key: &str, allowed: &[&str]) -> Result<Option<String>, UsageError> {
        match self.take(key) {
            Some(v) if !allowed.contains(&v.as_str()) => usage(format!(
                "{}: {key}={v} is not supported (only {})",
                self.option,
                allowed.join(", ")
            )),
            v => Ok(v),
        }
    }

    fn bool(&mut self, key: &str) -> Result<bool, UsageError> {
        match self.take(key).as_deref() {
            None | Some("off") | Some("false") => Ok(false),
            Some("on") | Some("true") => Ok(true),
            Some(v) => usage(format!("{}: {key}={v} is not on or off", self.option)),
        }
    }

    /// Fails on the first key nobody took.
    fn done(self) -> Result<(), UsageError> {
        match self.map.into_keys().next() {
            Some(k) => usage(format!("{}: parameter '{k}' is not supported", self.option)),
            None => Ok(()),
        }
    }
}

/// A file name with a `protocol:` prefix (a colon before any slash) means
/// a QEMU block protocol (`blkdebug:`, `nbd:`, ...), not a file.
fn check_file_name(option: &str, path: &str) -> Result<PathBuf, UsageError> {
    if path.is_empty() {
        return usage(format!("{option}: empty file name"));
    }
    let before_slash = path.split('/').next().unwrap_or("");
    if let Some((proto, _)) = before_slash.split_once(':') {
        return usage(format!(
            "{option}: block protocol '{proto}:' is not supported (raw files only)"
        ));
    }
    Ok(PathBuf::from(path))
}

/// Parses `-m` (QEMU: a number of MiB, or a size with a suffix).
fn parse_ram(text: &str) -> Result<u64, UsageError> {
    let mut o = Opts::parse("-m", text, Some("size"))?;
    let size = o.require("size")?;
    o.done()?;
    let bytes = if !size.is_empty() && size.chars().all(|c| c.is_ascii_digit()) {
        size.parse::<u64>()
            .ok()
            .and_then(|mib| mib.checked_mul(1 << 20))
    } else {
        parse_size(&size).ok()
    };
    match bytes {
        Some(b) if (MIN_RAM..=MAX_MEMORY).contains(&b) && b.is_multiple_of(4096) => Ok(b),
        _ => usage(format!(
            "-m {size}: RAM must be a multiple of 4K from 2M to 3G"
        )),
    }
}

/// Everything parsed, before drives are resolved.
#[derive(Default)]
struct Parsed {
    qtest_socket: Option<PathBuf>,
    qtest_log: Option<PathBuf>,
    chardevs: BTreeMap<String, PathBuf>,
    monitor: Option<String>,
    ram: Option<u64>,
    machine: bool,
    accel: bool,
    nodes: BTreeMap<String, Node>,
    /// `-drive if=ide` drives in order, with an optional index.
    ide_drives: Vec<(Option<u8>, Node, DriveStrings)>,
    /// `-device ide-hd`: node name, unit, device strings.
    devices: Vec<Device>,
    globals: DriveStrings,
}

/// Parses the arguments after `vmdma qtest`.
pub fn parse(args: &[String]) -> Result<QtestConfig, UsageError> {
    let mut p = Parsed::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return usage(format!(
                "'{arg}': positional arguments (disk images) are not supported; use -drive"
            ));
        };
        let option = format!("-{name}");
        let known = [
            "qtest",
            "qtest-log",
            "chardev",
            "mon",
            "display",
            "accel",
            "machine",
            "M",
            "m",
            "drive",
            "global",
            "blockdev",
            "device",
        ];
        if !known.contains(&name) {
            return usage(format!("{option}: unsupported option"));
        }
        let Some(value) = it.next() else {
            return usage(format!("{option}: requires an argument"));
        };
        p.option(name, &option, value)?;
    }
    p.finish()
}

impl Parsed {
    fn option(&mut self, name: &str, option: &str, value: &str) -> Result<(), UsageError> {
        match name {
            "qtest" => {
                let path = value.strip_prefix("unix:").ok_or_else(|| {
                    UsageError(format!("{option} {value}: only unix:PATH is supported"))
                })?;
                if path.is_empty() || path.contains(',') {
                    return usage(format!("{option} {value}: only unix:PATH (no options)"));
                }
                if self.qtest_socket.replace(PathBuf::from(path)).is_some() {
                    return usage(format!("{option}: given twice"));
                }
            }
            "qtest-log" => {
                if value.is_empty() {
                    return usage(format!("{option}: empty path"));
                }
                self.qtest_log = Some(PathBuf::from(value));
            }
            "chardev" => self.chardev(option, value)?,
            "mon" => {
                let mut o = Opts::parse(option, value, Some("chardev"))?;
                let chardev = o.require("chardev")?;
                o.one_of("mode", &["control"])?.ok_or_else(|| {
                    UsageError(format!("{option}: only mode=control is supported"))
                })?;
                o.done()?;
                if self.monitor.replace(chardev).is_some() {
                    return usage(format!("{option}: only one monitor is supported"));
                }
            }
            "display" => {
                let mut o = Opts::parse(option, value, Some("type"))?;
                o.one_of("type", &["none"])?;
                o.done()?;
            }
            "accel" => {
                let mut o = Opts::parse(option, value, Some("accel"))?;
                o.one_of("accel", &["qtest"])?;
                o.done()?;
                self.accel = true;
            }
            "machine" | "M" => {
                let mut o = Opts::parse(option, value, Some("type"))?;
                o.one_of("type", &["pc"])?;
                o.done()?;
                self.machine = true;
            }
            "m" => self.ram = Some(parse_ram(value)?),
            "drive" => self.drive(option, value)?,
            "global" => self.global(option, value)?,
            "blockdev" => self.blockdev(option, value)?,
            "device" => self.device(option, value)?,
            _ => return usage(format!("{option}: unsupported option")),
        }
        Ok(())
    }

    fn chardev(&mut self, option: &str, value: &str) -> Result<(), UsageError> {
        let mut o = Opts::parse(option, value, Some("backend"))?;
        o.one_of("backend", &["socket"])?
            .ok_or_else(|| UsageError(format!("{option}: only 'socket' is supported")))?;
        let id = o.require("id")?;
        let path = o.require("path")?;
        if o.bool("server")? {
            return usage(format!(
                "{option}: server=on is not supported (vmdma connects)"
            ));
        }
        o.done()?;
        if path.is_empty() {
            return usage(format!("{option}: empty path"));
        }
        if self
            .chardevs
            .insert(id.clone(), PathBuf::from(path))
            .is_some()
        {
            return usage(format!("{option}: id '{id}' given twice"));
        }
        Ok(())
    }

    fn add_node(&mut self, option: &str, name: String, node: Node) -> Result<(), UsageError> {
        if name.is_empty() {
            return usage(format!("{option}: empty node name"));
        }
        if self.nodes.insert(name.clone(), node).is_some() {
            return usage(format!("{option}: node '{name}' defined twice"));
        }
        Ok(())
    }

    fn drive(&mut self, option: &str, value: &str) -> Result<(), UsageError> {
        let mut o = Opts::parse(option, value, None)?;
        let file = o.require("file")?;
        let (faults, file) =
            split_blkdebug(&file).map_err(|e| UsageError(format!("{option}: {e}")))?;
        let path = check_file_name(option, &file)?;
        let mut policy = ErrorPolicy::default();
        if let Some(v) = o.take("werror") {
            policy.write = OnError::parse(&v, true).ok_or_else(|| {
                UsageError(format!(
                    "{option}: werror={v} is not enospc, stop, report or ignore"
                ))
            })?;
        }
        if let Some(v) = o.take("rerror") {
            policy.read = OnError::parse(&v, false).ok_or_else(|| {
                UsageError(format!(
                    "{option}: rerror={v} is not stop, report or ignore"
                ))
            })?;
        }
        let interface = o.one_of("if", &["ide", "none"])?;
        o.one_of("format", &["raw"])?;
        o.one_of("cache", &["writeback"])?;
        let cdrom = match o.take("media").as_deref() {
            None | Some("disk") => false,
            Some("cdrom") => true,
            Some(m) => return usage(format!("{option}: media={m} is not supported")),
        };
        let read_only = o.bool("readonly")? || o.bool("read-only")? || cdrom;
        let id = o.take("id");
        let index = match o.take("index") {
            None => None,
            Some(i) => match i.as_str() {
                "0" => Some(0),
                "1" => Some(1),
                _ => {
                    return usage(format!(
                        "{option}: index={i} is not supported (only the primary channel: 0 or 1)"
                    ));
                }
            },
        };
        let node = Node {
            path,
            read_only,
            cdrom,
            used: false,
            policy,
            faults,
        };
        if interface.as_deref() == Some("none") {
            let Some(id) = id else {
                return usage(format!("{option}: if=none needs an id"));
            };
            o.done()?;
            // With if=none the index places nothing (QEMU accepts and
            // ignores it; ide-test's cdrom cases pass index=0).
            return self.add_node(option, id, node);
        }
        o.done()?;
        let _ = id;
        self.ide_drives.push((index, node, DriveStrings::default()));
        Ok(())
    }

    fn blockdev(&mut self, option: &str, value: &str) -> Result<(), UsageError> {
        if value.trim_start().starts_with('{') {
            return usage(format!("{option}: JSON syntax is not supported"));
        }
        let mut o = Opts::parse(option, value, None)?;
        o.one_of("driver", &["file"])?
            .ok_or_else(|| UsageError(format!("{option}: driver=file is required")))?;
        let name = o.require("node-name")?;
        let file = o.require("filename")?;
        let path = check_file_name(option, &file)?;
        let read_only = o.bool("read-only")?;
        o.done()?;
        self.add_node(
            option,
            name,
            Node {
                path,
                read_only,
                cdrom: false,
                used: false,
                policy: ErrorPolicy::default(),
                faults: None,
            },
        )
    }

    fn device(&mut self, option: &str, value: &str) -> Result<(), UsageError> {
        let mut o = Opts::parse(option, value, Some("driver"))?;
        let driver = o.require("driver")?;
        let cdrom = match driver.as_str() {
            "ide-hd" => false,
            "ide-cd" => true,
            _ => return usage(format!("{option}: device '{driver}' is not supported")),
        };
        // An ide-cd without a drive is an empty CD-ROM drive.
        let node = if cdrom {
            o.take("drive")
        } else {
            Some(o.require("drive")?)
        };
        match o.take("bus").as_deref() {
            None | Some("ide.0") => {}
            Some("ide.1") => {
                return usage(format!(
                    "{option}: bus=ide.1 is not supported (only the primary channel, ide.0)"
                ));
            }
            Some(b) => return usage(format!("{option}: bus={b} is not supported")),
        }
        let unit = match o.take("unit").as_deref() {
            None => None,
            Some("0") => Some(0),
            Some("1") => Some(1),
            Some(u) => return usage(format!("{option}: unit={u} is not 0 or 1")),
        };
        let mut strings = DriveStrings::default();
        for prop in ["serial", "ver", "model"] {
            if let Some(v) = o.take(prop) {
                strings.set(prop, &v, option)?;
            }
        }
        o.take("id");
        o.done()?;
        self.devices.push(Device {
            node,
            unit,
            strings,
            cdrom,
        });
        Ok(())
    }

    fn global(&mut self, option: &str, value: &str) -> Result<(), UsageError> {
        let (target, v) = value
            .split_once('=')
            .ok_or_else(|| UsageError(format!("{option} {value}: expected DRIVER.PROP=VALUE")))?;
        let (driver, prop) = target
            .split_once('.')
            .ok_or_else(|| UsageError(format!("{option} {value}: expected DRIVER.PROP=VALUE")))?;
        if driver != "ide-hd" {
            return usage(format!(
                "{option} {target}: only ide-hd properties are supported"
            ));
        }
        self.globals.set(prop, v, &format!("{option} {target}"))
    }

    fn finish(mut self) -> Result<QtestConfig, UsageError> {
        let qtest_socket = self
            .qtest_socket
            .take()
            .ok_or_else(|| UsageError("-qtest unix:PATH is required".into()))?;
        if !self.machine {
            return usage("-machine pc is required");
        }
        if !self.accel {
            return usage("-accel qtest is required");
        }
        let qmp_socket = match self.monitor.take() {
            Some(id) => Some(
                self.chardevs
                    .remove(&id)
                    .ok_or_else(|| UsageError(format!("-mon: no chardev with id '{id}'")))?,
            ),
            None => None,
        };
        if let Some(id) = self.chardevs.keys().next() {
            return usage(format!(
                "-chardev id={id}: only the monitor's chardev is supported"
            ));
        }
        let mut units: [Option<DiskConfig>; 2] = [None, None];
        let place = |units: &mut [Option<DiskConfig>; 2],
                     unit: Option<u8>,
                     disk: DiskConfig,
                     what: &str|
         -> Result<(), UsageError> {
            let slot = match unit {
                Some(u) => usize::from(u),
                None => match units.iter().position(Option::is_none) {
                    Some(i) => i,
                    None => {
                        return usage(format!(
                            "{what}: the primary IDE channel is full (two disks)"
                        ));
                    }
                },
            };
            match units.get_mut(slot) {
                Some(s @ None) => {
                    *s = Some(disk);
                    Ok(())
                }
                _ => usage(format!("{what}: unit {slot} of ide.0 is already in use")),
            }
        };
        // Explicitly placed drives first, then the rest in order.
        let (placed, free): (Vec<_>, Vec<_>) =
            self.ide_drives.into_iter().partition(|(i, ..)| i.is_some());
        for (index, node, strings) in placed.into_iter().chain(free) {
            let disk = DiskConfig {
                path: Some(node.path),
                read_only: node.read_only,
                cdrom: node.cdrom,
                strings: strings.or(globals_for(node.cdrom, &self.globals)),
                policy: node.policy,
                faults: node.faults,
            };
            place(&mut units, index, disk, "-drive")?;
        }
        for dev in self.devices {
            let what = if dev.cdrom {
                "-device ide-cd"
            } else {
                "-device ide-hd"
            };
            let disk = match dev.node {
                Some(name) => {
                    let node = self
                        .nodes
                        .get_mut(&name)
                        .ok_or_else(|| UsageError(format!("{what}: no drive '{name}'")))?;
                    if std::mem::replace(&mut node.used, true) {
                        return usage(format!("{what}: drive '{name}' is already in use"));
                    }
                    DiskConfig {
                        path: Some(node.path.clone()),
                        read_only: node.read_only || dev.cdrom,
                        cdrom: dev.cdrom,
                        strings: dev.strings.or(globals_for(dev.cdrom, &self.globals)),
                        policy: node.policy,
                        faults: node.faults.clone(),
                    }
                }
                None => DiskConfig {
                    path: None,
                    read_only: true,
                    cdrom: true,
                    strings: dev.strings,
                    policy: ErrorPolicy::default(),
                    faults: None,
                },
            };
            place(&mut units, dev.unit, disk, what)?;
        }
        Ok(QtestConfig {
            qtest_socket,
            qtest_log: self.qtest_log,
            qmp_socket,
            ram: self.ram.unwrap_or(DEFAULT_RAM),
            units,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const BASE: &str = "-qtest unix:/tmp/q.sock -qtest-log /dev/null \
        -chardev socket,path=/tmp/q.qmp,id=char0 -mon chardev=char0,mode=control \
        -display none -machine pc";

    fn parse_with(extra: &str) -> Result<QtestConfig, UsageError> {
        parse(&args(&format!("{BASE} {extra} -accel qtest")))
    }

    #[test]
    fn what_libqtest_and_ide_test_pass() {
        let c = parse_with(
            "-drive file=/tmp/a,if=ide,cache=writeback,format=raw \
             -global ide-hd.serial=testdisk -global ide-hd.ver=version",
        )
        .unwrap();
        assert_eq!(c.qtest_socket, PathBuf::from("/tmp/q.sock"));
        assert_eq!(c.qmp_socket, Some(PathBuf::from("/tmp/q.qmp")));
        assert_eq!(c.qtest_log, Some(PathBuf::from("/dev/null")));
        assert_eq!(c.ram, DEFAULT_RAM);
        let d = c.units[0].as_ref().unwrap();
        assert_eq!(d.path, Some(PathBuf::from("/tmp/a")));
        assert!(!d.read_only);
        assert_eq!(d.strings.serial.as_deref(), Some("testdisk"));
        assert_eq!(d.strings.ver.as_deref(), Some("version"));
        assert!(c.units[1].is_none());

        let c = parse_with(
            "-blockdev driver=file,node-name=hda,filename=/tmp/a \
             -blockdev driver=file,node-name=hdb,filename=/tmp/b \
             -device ide-hd,drive=hda,bus=ide.0,unit=0 \
             -device ide-hd,drive=hdb,bus=ide.0,unit=1",
        )
        .unwrap();
        assert_eq!(
            c.units[1].as_ref().unwrap().path,
            Some(PathBuf::from("/tmp/b"))
        );

        let c = parse_with("").unwrap();
        assert_eq!(c.units, [None, None], "flush/nodev: no disk at all");

        // flush and flush/retry_pci.
        let c = parse_with(
            "-drive file=blkdebug:/tmp/rules:/tmp/a,if=ide,cache=writeback,format=raw,\
             rerror=stop,werror=stop",
        )
        .unwrap();
        let d = c.units[0].as_ref().unwrap();
        assert_eq!(d.path, Some(PathBuf::from("/tmp/a")));
        assert_eq!(
            d.faults,
            Some(Faults {
                config: Some(PathBuf::from("/tmp/rules"))
            })
        );
        assert_eq!(
            (d.policy.read, d.policy.write),
            (OnError::Stop, OnError::Stop)
        );
        let c = parse_with("-drive file=blkdebug::/tmp/a,if=ide").unwrap();
        let d = c.units[0].as_ref().unwrap();
        assert_eq!(d.faults, Some(Faults { config: None }));
        assert_eq!(d.policy, ErrorPolicy::default());

        let c = parse_with("-m 256 -drive file=/tmp/a,,b,if=ide,media=disk").unwrap();
        assert_eq!(c.ram, 256 << 20);
        assert_eq!(
            c.units[0].as_ref().unwrap().path,
            Some(PathBuf::from("/tmp/a,b"))
        );
        assert_eq!(parse_with("-m 1G").unwrap().ram, 1 << 30);
        assert_eq!(parse_with("-m size=64M").unwrap().ram, 64 << 20);
    }

    #[test]
    fn unsupported_options_are_named() {
        let cases = [
            ("-trace foo", "-trace: unsupported option"),
            ("-S", "-S: unsupported option"),
            ("disk.img", "positional"),
            ("-drive file=nbd:x:1,if=ide", "block protocol 'nbd:'"),
            (
                "-drive file=blkdebug:/tmp/a,if=ide",
                "blkdebug:CONFIG:IMAGE",
            ),
            ("-drive file=/tmp/a,if=ide,rerror=enospc", "rerror=enospc"),
            ("-drive file=/tmp/a,if=ide,werror=halt", "werror=halt"),
            ("-drive file=/tmp/a,if=ide,format=qcow2", "format=qcow2"),
            ("-drive file=/tmp/a,if=ide,cache=none", "cache=none"),
            ("-drive file=/tmp/a,if=virtio", "if=virtio"),
            ("-drive file=/tmp/a,media=floppy", "media=floppy"),
            ("-drive file=/tmp/a,index=2", "index=2"),
            ("-drive if=ide", "'file' is required"),
            ("-device virtio-blk,drive=x", "'virtio-blk'"),
            (
                "-blockdev driver=file,node-name=a,filename=/x -device ide-hd,drive=a,bus=ide.1",
                "bus=ide.1",
            ),
            ("-device ide-hd,drive=nope", "no drive 'nope'"),
            ("-blockdev driver=qcow2,node-name=a,file=x", "driver=qcow2"),
            ("-blockdev {\"driver\":\"file\"}", "JSON"),
            ("-global ide-cd.serial=x", "only ide-hd"),
            ("-global ide-hd.wwn=1", "'wwn'"),
            ("-m 1", "RAM must be"),
            ("-m 4T", "RAM must be"),
            ("-m 128,slots=2", "'slots'"),
            ("-machine q35", "type=q35"),
            ("-machine pc,accel=kvm", "'accel'"),
            ("-display gtk", "type=gtk"),
            (
                "-chardev socket,path=/x,id=s0",
                "only the monitor's chardev",
            ),
            ("-serial chardev:s0", "-serial"),
            (
                "-drive file=/a,if=ide -drive file=/b,if=ide -drive file=/c,if=ide",
                "full",
            ),
            (
                "-drive file=/a,if=ide,index=0 -drive file=/b,if=ide,index=0",
                "unit 0 of ide.0 is already in use",
            ),
            (
                "-drive file=/a,if=ide,cache=writeback,cache=writeback",
                "given twice",
            ),
        ];
        for (extra, needle) in cases {
            let e = parse_with(extra).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn required_options() {
        let e = parse(&args("-machine pc -accel qtest")).unwrap_err();
        assert!(e.0.contains("-qtest"), "{e}");
        let e = parse(&args("-qtest unix:/x -accel qtest")).unwrap_err();
        assert!(e.0.contains("-machine"), "{e}");
        let e = parse(&args("-qtest unix:/x -machine pc")).unwrap_err();
        assert!(e.0.contains("-accel"), "{e}");
        let e = parse(&args("-qtest tcp:localhost:1 -machine pc -accel qtest")).unwrap_err();
        assert!(e.0.contains("unix:PATH"), "{e}");
        let e = parse(&args(
            "-qtest unix:/x -machine pc -accel qtest -mon chardev=c",
        ))
        .unwrap_err();
        assert!(e.0.contains("mode=control"), "{e}");
        let e = parse(&args(
            "-qtest unix:/x -machine pc -accel qtest -mon chardev=c,mode=control",
        ))
        .unwrap_err();
        assert!(e.0.contains("no chardev with id 'c'"), "{e}");
        let e = parse(&args("-qtest unix:/x -machine pc -accel")).unwrap_err();
        assert!(e.0.contains("requires an argument"), "{e}");
        assert!(parse(&args("-qtest unix:/x -machine pc -accel qtest")).is_ok());
    }

    #[test]
    fn cdrom_drives_as_ide_test_passes_them() {
        let c = parse_with(
            "-drive if=none,file=/tmp/cd,media=cdrom,format=raw,id=sr0,index=0 \
             -device ide-cd,drive=sr0,bus=ide.0",
        )
        .unwrap();
        let d = c.units[0].as_ref().unwrap();
        assert!(d.cdrom && d.read_only);
        assert_eq!(d.path, Some(PathBuf::from("/tmp/cd")));
        let c = parse_with("-device ide-cd,bus=ide.0").unwrap();
        let d = c.units[0].as_ref().unwrap();
        assert!(d.cdrom && d.path.is_none(), "flush/empty_drive: no medium");
        let c = parse_with("-drive file=/tmp/cd,if=ide,media=cdrom,index=1").unwrap();
        assert!(c.units[1].as_ref().unwrap().cdrom);
        assert!(c.units[0].is_none());
    }

    #[test]
    fn device_strings_override_globals() {
        let c = parse_with(
            "-global ide-hd.serial=g -global ide-hd.model=M \
             -drive if=none,id=d0,file=/a -device ide-hd,drive=d0,serial=dev",
        )
        .unwrap();
        let s = &c.units[0].as_ref().unwrap().strings;
        assert_eq!(s.serial.as_deref(), Some("dev"));
        assert_eq!(s.model.as_deref(), Some("M"));
    }
}
