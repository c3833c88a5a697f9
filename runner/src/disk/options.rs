//! How an image is opened: `--disk
//! [blkdebug:CONFIG:]PATH[,readonly][,aio=sync|io_uring][,cache=writeback|none][,werror=..][,rerror=..]`.

use std::path::PathBuf;

use super::policy::{ErrorPolicy, OnError};

/// The I/O engine of the disk backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Aio {
    /// `preadv`/`pwritev` inside the port access that needs them (the
    /// vCPU thread waits for the disk).
    Sync,
    /// io_uring: requests complete in the kernel's own time and are
    /// delivered by the runner's I/O thread, so the vCPU never waits for
    /// the disk (except in the BMDMA-stop/SRST drain, bounded). Page-cached
    /// data still completes inline, as fast as `preadv`. The default; if
    /// the kernel refuses io_uring the runner warns once and uses `sync`.
    #[default]
    IoUring,
}

impl Aio {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Aio::Sync => "sync",
            Aio::IoUring => "io_uring",
        }
    }
}

/// The host page cache policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Cache {
    /// Through the page cache; FLUSH CACHE makes writes durable (the
    /// default, like QEMU's `cache=writeback`).
    #[default]
    Writeback,
    /// `O_DIRECT`: around the page cache (see `disk::direct` for the
    /// alignment rules); FLUSH CACHE still syncs the device cache.
    None,
}

impl Cache {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Cache::Writeback => "writeback",
            Cache::None => "none",
        }
    }
}

/// A `--disk` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// Image file.
    pub path: PathBuf,
    /// Open read-only (shared lock) instead of read-write (exclusive lock).
    pub read_only: bool,
    /// I/O engine.
    pub aio: Aio,
    /// Page-cache policy.
    pub cache: Cache,
    /// What host I/O errors do (`werror=`, `rerror=`).
    pub policy: ErrorPolicy,
    /// Fault injection (`blkdebug:CONFIG:PATH`).
    pub faults: Option<Faults>,
}

/// `blkdebug:CONFIG:PATH`: fault injection with QEMU's blkdebug rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    /// The rules file; none for `blkdebug::PATH` (breakpoints set later
    /// through the monitor).
    pub config: Option<PathBuf>,
}

/// Splits QEMU's `blkdebug:CONFIG:IMAGE` file name (CONFIG may be empty);
/// any other name is the image itself.
pub fn split_blkdebug(name: &str) -> Result<(Option<Faults>, String), String> {
    let Some(rest) = name.strip_prefix("blkdebug:") else {
        return Ok((None, name.to_string()));
    };
    let Some((config, image)) = rest.split_once(':') else {
        return Err(format!(
            "'{name}': blkdebug needs blkdebug:CONFIG:IMAGE (CONFIG may be empty)"
        ));
    };
    if image.is_empty() {
        return Err(format!("'{name}': blkdebug with no image"));
    }
    let config = (!config.is_empty()).then(|| PathBuf::from(config));
    Ok((Some(Faults { config }), image.to_string()))
}

impl DiskSpec {
    /// A read-write spec for `path` with the default engine and cache.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DiskSpec {
            path: path.into(),
            read_only: false,
            aio: Aio::default(),
            cache: Cache::default(),
            policy: ErrorPolicy::default(),
            faults: None,
        }
    }
}

const KNOWN: &str = "readonly, ro, rw, aio=sync|io_uring, cache=writeback|none, \
                     werror=enospc|stop|report|ignore, rerror=stop|report|ignore";

/// What is wrong with a `--disk` value; each names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskOptionError {
    /// Nothing before the first comma.
    #[error("empty disk path")]
    EmptyPath,
    /// An empty option (two commas after the path, or one at the end).
    #[error("empty --disk option (a comma in the path is written ',,')")]
    EmptyOption,
    /// An option given twice (`readonly/rw`, `aio` or `cache`).
    #[error("--disk option '{0}' given twice")]
    Twice(&'static str),
    /// `aio=` with another value than `sync` or `io_uring`.
    #[error("--disk option aio={0}: expected sync or io_uring")]
    Aio(String),
    /// `cache=` with another value than `writeback` or `none`.
    #[error("--disk option cache={0}: expected writeback or none")]
    Cache(String),
    /// `werror=` with another value than QEMU's.
    #[error("--disk option werror={0}: expected enospc, stop, report or ignore")]
    Werror(String),
    /// `rerror=` with another value than QEMU's.
    #[error("--disk option rerror={0}: expected stop, report or ignore")]
    Rerror(String),
    /// A malformed `blkdebug:` name.
    #[error("--disk {0}")]
    Blkdebug(String),
    /// An option that is none of the known ones.
    #[error("unknown --disk option '{0}' (known: {KNOWN}; a comma in the path is written ',,')")]
    Unknown(String),
}

/// Parses `PATH[,OPTION]...`. A comma inside the path is written `,,` (as
/// in QEMU). Every option must be known and given once; anything else is
/// an error naming it.
pub fn parse(s: &str) -> Result<DiskSpec, DiskOptionError> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') && parts.len() == 1 {
                chars.next();
                if let Some(p) = parts.last_mut() {
                    p.push(',');
                }
            } else {
                parts.push(String::new());
            }
        } else if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    let mut it = parts.into_iter();
    let path = it.next().unwrap_or_default();
    if path.is_empty() {
        return Err(DiskOptionError::EmptyPath);
    }
    let (faults, path) = split_blkdebug(&path).map_err(DiskOptionError::Blkdebug)?;
    let mut spec = DiskSpec::new(path);
    spec.faults = faults;
    let (mut seen_mode, mut seen_aio, mut seen_cache) = (false, false, false);
    let (mut seen_werror, mut seen_rerror) = (false, false);
    for opt in it {
        let once = |seen: &mut bool, what: &'static str| {
            if std::mem::replace(seen, true) {
                Err(DiskOptionError::Twice(what))
            } else {
                Ok(())
            }
        };
        match opt.split_once('=') {
            None if matches!(opt.as_str(), "readonly" | "ro" | "rw") => {
                once(&mut seen_mode, "readonly/rw")?;
                spec.read_only = opt != "rw";
            }
            Some(("aio", v)) => {
                once(&mut seen_aio, "aio")?;
                spec.aio = match v {
                    "sync" => Aio::Sync,
                    "io_uring" => Aio::IoUring,
                    _ => return Err(DiskOptionError::Aio(v.to_string())),
                };
            }
            Some(("cache", v)) => {
                once(&mut seen_cache, "cache")?;
                spec.cache = match v {
                    "writeback" => Cache::Writeback,
                    "none" => Cache::None,
                    _ => return Err(DiskOptionError::Cache(v.to_string())),
                };
            }
            Some(("werror", v)) => {
                once(&mut seen_werror, "werror")?;
                spec.policy.write = OnError::parse(v, true)
                    .ok_or_else(|| DiskOptionError::Werror(v.to_string()))?;
            }
            Some(("rerror", v)) => {
                once(&mut seen_rerror, "rerror")?;
                spec.policy.read = OnError::parse(v, false)
                    .ok_or_else(|| DiskOptionError::Rerror(v.to_string()))?;
            }
            _ if opt.is_empty() => {
                return Err(DiskOptionError::EmptyOption);
            }
            _ => {
                return Err(DiskOptionError::Unknown(opt));
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let d = parse("a.img,readonly").unwrap();
        assert_eq!(
            (d.path, d.read_only, d.aio),
            (PathBuf::from("a.img"), true, Aio::IoUring)
        );
        let d = parse("a.img,aio=sync,cache=none,rw").unwrap();
        assert_eq!(
            (d.read_only, d.aio, d.cache),
            (false, Aio::Sync, Cache::None)
        );
        let d = parse("a,,b.img,ro").unwrap();
        assert_eq!(d.path, PathBuf::from("a,b.img"));
        assert!(d.read_only);
        assert_eq!(parse("x.img").unwrap(), DiskSpec::new("x.img"));
        let d = parse("x.img,werror=stop,rerror=ignore").unwrap();
        assert_eq!(
            (d.policy.write, d.policy.read),
            (OnError::Stop, OnError::Ignore)
        );
        assert_eq!(parse("x.img").unwrap().policy, ErrorPolicy::default());
        let d = parse("blkdebug:rules.conf:x.img,ro").unwrap();
        assert_eq!(
            (d.path, d.faults),
            (
                PathBuf::from("x.img"),
                Some(Faults {
                    config: Some(PathBuf::from("rules.conf"))
                })
            )
        );
        let d = parse("blkdebug::x.img").unwrap();
        assert_eq!(d.faults, Some(Faults { config: None }));
    }

    #[test]
    fn errors_name_the_option() {
        for (s, want) in [
            ("a.img,unknown=1", "unknown --disk option 'unknown=1'"),
            ("a,b.img", "unknown --disk option 'b.img'"),
            (
                "a.img,aio=threads",
                "aio=threads: expected sync or io_uring",
            ),
            (
                "a.img,cache=unsafe",
                "cache=unsafe: expected writeback or none",
            ),
            ("a.img,ro,rw", "'readonly/rw' given twice"),
            ("a.img,aio=sync,aio=sync", "'aio' given twice"),
            ("a.img,", "empty --disk option"),
            ("a.img,werror=halt", "werror=halt: expected"),
            ("a.img,rerror=enospc", "rerror=enospc: expected"),
            ("a.img,werror=stop,werror=stop", "'werror' given twice"),
            ("blkdebug:x.img", "blkdebug needs blkdebug:CONFIG:IMAGE"),
            ("blkdebug:c:", "blkdebug with no image"),
            (",readonly", "empty disk path"),
            ("", "empty disk path"),
        ] {
            let e = parse(s).unwrap_err();
            assert!(e.to_string().contains(want), "{s}: {e}");
        }
        // A caller can match on what is wrong.
        assert_eq!(
            parse("a.img,ro,rw"),
            Err(DiskOptionError::Twice("readonly/rw"))
        );
    }
}
