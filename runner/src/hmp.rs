//! The part of QEMU's human monitor that QMP's `human-monitor-command`
//! reaches here: `qemu-io DEVICE "COMMAND"` with the blkdebug breakpoint
//! commands QEMU's tests use (`break EVENT TAG`, `resume TAG`,
//! `remove_break TAG`, `wait_break TAG`). Parsing only; the monitors carry them out on the
//! disk (`disk::blkdebug`, `disk::stage`) with [`execute`].

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vmdma_core::ide::Unit;

use crate::disk::Disk;
use crate::disk::stage::Release;
use crate::qmp::{self, Outcome};

/// A parsed `qemu-io` breakpoint command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QemuIo {
    /// `break EVENT TAG`.
    Break {
        /// The blkdebug event.
        event: String,
        /// The breakpoint's tag.
        tag: String,
    },
    /// `resume TAG`: the first request held at `TAG` goes on.
    Resume {
        /// The tag.
        tag: String,
    },
    /// `remove_break TAG`: the breakpoints of `TAG` go, and every request
    /// held there goes on.
    RemoveBreak {
        /// The tag.
        tag: String,
    },
    /// `wait_break TAG`: returns once a request is held at `TAG` (the
    /// monitors bound the wait).
    WaitBreak {
        /// The tag.
        tag: String,
    },
}

/// What [`execute`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Done; nothing to submit.
    Done,
    /// Held requests were released: the caller has them submitted on a
    /// thread that may do disk I/O (`Disk::submit_released`, through the
    /// chipset's `service`).
    Released,
    /// `wait_break`: no request is held at the tag yet (ask again).
    NotYet,
}

/// A command line for the human monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hmp {
    /// `qemu-io [-d] DEVICE "COMMAND"`.
    QemuIo {
        /// The drive's name (`ide0-hd0`).
        device: String,
        /// What to do.
        command: QemuIo,
    },
}

/// How a monitor reaches the drives for [`serve`].
pub trait Drives {
    /// The unit of the drive QEMU calls `device`.
    fn unit(&self, device: &str) -> Option<Unit>;
    /// Runs `command` on the disk of `unit` (`Ok(None)`: no disk there);
    /// `Err` is the monitor's reply when it cannot reach the disks.
    fn execute(
        &mut self,
        unit: Unit,
        command: &QemuIo,
    ) -> Result<Option<Result<Effect, String>>, Outcome>;
    /// Held requests were released: have them submitted.
    fn released(&mut self);
}

/// A monitor's `human-monitor-command`, from its arguments to its reply
/// (QEMU's: the text the command printed, each line ending in `\r\n`).
/// `wait_break` asks again until a request is held, for at most `wait`.
pub fn serve(drives: &mut dyn Drives, arguments: Option<&Value>, wait: Duration) -> Outcome {
    let text = |t: &str| Outcome::Return(json!(format!("{t}\r\n")));
    let line = match qmp::hmp_command_line(arguments) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let Hmp::QemuIo { device, command } = match parse(line) {
        Ok(h) => h,
        Err(t) => return text(&t),
    };
    let not_found = || text(&format!("Device '{device}' not found"));
    let Some(unit) = drives.unit(&device) else {
        return not_found();
    };
    let deadline = Instant::now() + wait;
    loop {
        return match drives.execute(unit, &command) {
            Err(e) => e,
            Ok(None) => not_found(),
            Ok(Some(Err(t))) => text(&t),
            Ok(Some(Ok(Effect::NotYet))) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Ok(Some(Ok(Effect::NotYet))) if wait.is_zero() => {
                text("no request is held at that breakpoint")
            }
            Ok(Some(Ok(Effect::NotYet))) => text(&format!(
                "no request reached the breakpoint within {} s",
                wait.as_secs()
            )),
            Ok(Some(Ok(Effect::Released))) => {
                drives.released();
                Outcome::Return(json!(""))
            }
            Ok(Some(Ok(Effect::Done))) => Outcome::Return(json!("")),
        };
    }
}

/// Carries out `command` on `disk`. The error is the monitor's answer.
pub fn execute(disk: &mut Disk<'_>, command: &QemuIo) -> Result<Effect, String> {
    let rules = disk.faults_mut().ok_or(NO_BLKDEBUG)?;
    match command {
        QemuIo::Break { event, tag } => {
            rules
                .add_break(event, tag)
                .map_err(|e| format!("Could not set breakpoint: {e}"))?;
            Ok(Effect::Done)
        }
        QemuIo::Resume { tag } => match disk.release(Release::Tag(tag)) {
            0 => Err(format!(
                "Could not resume request: no request waits at '{tag}'"
            )),
            _ => Ok(Effect::Released),
        },
        QemuIo::RemoveBreak { tag } => {
            let removed = rules.remove_break(tag);
            let released = disk.release(Release::AllTagged(tag));
            match (removed, released) {
                (false, 0) => Err(format!("Could not remove breakpoint {tag}: none is set")),
                (_, 0) => Ok(Effect::Done),
                _ => Ok(Effect::Released),
            }
        }
        QemuIo::WaitBreak { tag } => Ok(if disk.is_held(tag) {
            Effect::Done
        } else {
            Effect::NotYet
        }),
    }
}

const NO_BLKDEBUG: &str =
    "the drive has no blkdebug layer (open it as blkdebug:CONFIG:IMAGE; CONFIG may be empty)";

/// Splits a command line into words: whitespace separates them, double
/// quotes group (no escapes, as the tests need none).
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

/// Parses a human-monitor command line. The error is the text the monitor
/// answers with (HMP answers errors as output, not as QMP errors).
pub fn parse(line: &str) -> Result<Hmp, String> {
    let w = words(line)?;
    let Some(cmd) = w.first() else {
        return Err("empty command".into());
    };
    if cmd != "qemu-io" {
        return Err(format!(
            "unknown command: '{cmd}' (vmdma's human monitor has qemu-io only)"
        ));
    }
    let mut rest: Vec<&str> = w.iter().skip(1).map(String::as_str).collect();
    if rest.first() == Some(&"-d") {
        rest.remove(0);
    }
    let [device, io] = rest.as_slice() else {
        return Err("usage: qemu-io [-d] DEVICE \"COMMAND\"".into());
    };
    let iw = words(io)?;
    let iw: Vec<&str> = iw.iter().map(String::as_str).collect();
    let command = match iw.as_slice() {
        ["break", event, tag] => QemuIo::Break {
            event: event.to_string(),
            tag: tag.to_string(),
        },
        ["resume", tag] => QemuIo::Resume {
            tag: tag.to_string(),
        },
        ["remove_break", tag] => QemuIo::RemoveBreak {
            tag: tag.to_string(),
        },
        ["wait_break", tag] => QemuIo::WaitBreak {
            tag: tag.to_string(),
        },
        _ => {
            return Err(format!(
                "qemu-io: '{io}' is not supported (break EVENT TAG, resume TAG, remove_break TAG, wait_break TAG)"
            ));
        }
    };
    Ok(Hmp::QemuIo {
        device: device.to_string(),
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_qemus_ide_test_sends() {
        assert_eq!(
            parse("qemu-io ide0-hd0 \"break flush_to_os A\""),
            Ok(Hmp::QemuIo {
                device: "ide0-hd0".into(),
                command: QemuIo::Break {
                    event: "flush_to_os".into(),
                    tag: "A".into()
                }
            })
        );
        assert_eq!(
            parse("qemu-io -d ide0-hd0 \"resume A\""),
            Ok(Hmp::QemuIo {
                device: "ide0-hd0".into(),
                command: QemuIo::Resume { tag: "A".into() }
            })
        );
        assert!(matches!(
            parse("qemu-io ide0-hd0 \"remove_break A\""),
            Ok(Hmp::QemuIo {
                command: QemuIo::RemoveBreak { .. },
                ..
            })
        ));
    }

    #[test]
    fn everything_else_is_a_one_line_answer() {
        for (line, want) in [
            ("info status", "unknown command: 'info'"),
            ("", "empty"),
            ("qemu-io ide0-hd0", "usage"),
            ("qemu-io ide0-hd0 \"read 0 512\"", "not supported"),
            ("qemu-io ide0-hd0 \"break x", "unterminated"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
