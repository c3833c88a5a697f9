//! The qtest line protocol: one request per line, one reply line each
//! (`OK`, `OK VALUE` or `FAIL REASON`), with asynchronous `IRQ raise N` /
//! `IRQ lower N` lines before a reply when interrupts are intercepted.
//!
//! [`parse`] turns a line into a [`Request`] without touching the machine;
//! everything a client controls is checked here: the command name, the
//! number of words, every number (see [`codec`](super::codec)), the widths,
//! and the data lengths ([`MAX_DATA`]), so a hostile line costs at most a
//! bounded allocation and a `FAIL` reply. Lines themselves are bounded by
//! [`LineReader`].

use super::codec::{base64_decode, hex_decode, parse_i64, parse_u64};

/// Most bytes one `read`, `write`, `b64read` or `b64write` moves. libqtest
/// moves a few KiB at a time; the bound keeps replies and request lines
/// (hex doubles the size) far from memory trouble.
pub const MAX_DATA: u64 = 4 << 20;

/// Longest request line accepted, in bytes: a `write` of [`MAX_DATA`]
/// bytes in hex plus room for the command and numbers.
pub const MAX_LINE: usize = 2 * (MAX_DATA as usize) + 256;

/// The width of a port or memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 1 byte (`outb`, `readb`, ...).
    Byte,
    /// 2 bytes.
    Word,
    /// 4 bytes.
    Long,
    /// 8 bytes (memory only).
    Quad,
}

impl Width {
    /// Bytes in the access.
    pub fn bytes(self) -> usize {
        match self {
            Width::Byte => 1,
            Width::Word => 2,
            Width::Long => 4,
            Width::Quad => 8,
        }
    }

    /// The largest value of this width.
    pub fn max_value(self) -> u64 {
        u64::MAX >> (64 - 8 * self.bytes())
    }

    fn from_suffix(c: &str) -> Option<Width> {
        match c {
            "b" => Some(Width::Byte),
            "w" => Some(Width::Word),
            "l" => Some(Width::Long),
            "q" => Some(Width::Quad),
            _ => None,
        }
    }
}

/// Which side of a device's interrupt pins `irq_intercept_*` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterceptKind {
    /// `irq_intercept_in`: the inputs of an interrupt controller.
    In,
    /// `irq_intercept_out`: the outputs of a device.
    Out,
}

/// One parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `endianness`: the target's byte order.
    Endianness,
    /// `outb|outw|outl PORT VALUE`.
    Out {
        /// Access width (not [`Width::Quad`]).
        width: Width,
        /// First port.
        port: u16,
        /// The value, fitting the width.
        value: u32,
    },
    /// `inb|inw|inl PORT`.
    In {
        /// Access width (not [`Width::Quad`]).
        width: Width,
        /// First port.
        port: u16,
    },
    /// `writeb|writew|writel|writeq ADDR VALUE`.
    Write {
        /// Access width.
        width: Width,
        /// Guest-physical address.
        addr: u64,
        /// The value, fitting the width (stored little-endian).
        value: u64,
    },
    /// `readb|readw|readl|readq ADDR`.
    Read {
        /// Access width.
        width: Width,
        /// Guest-physical address.
        addr: u64,
    },
    /// `read ADDR SIZE`: reply with `0x` and lowercase hex.
    ReadHex {
        /// Guest-physical address.
        addr: u64,
        /// Bytes, 1..=[`MAX_DATA`].
        len: usize,
    },
    /// `b64read ADDR SIZE`: reply with base64.
    ReadBase64 {
        /// Guest-physical address.
        addr: u64,
        /// Bytes, 0..=[`MAX_DATA`].
        len: usize,
    },
    /// `write ADDR SIZE 0xHEX` or `b64write ADDR SIZE BASE64`: the data,
    /// already decoded to exactly SIZE bytes.
    WriteData {
        /// Guest-physical address.
        addr: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// `memset ADDR SIZE VALUE` (SIZE may be 0).
    Memset {
        /// Guest-physical address.
        addr: u64,
        /// Bytes (bounded by the machine's memory, not by [`MAX_DATA`]:
        /// nothing is allocated for it).
        len: u64,
        /// The byte.
        value: u8,
    },
    /// `irq_intercept_in QOM-PATH` / `irq_intercept_out QOM-PATH`.
    IrqIntercept {
        /// In or out.
        kind: InterceptKind,
        /// The device path as given.
        path: String,
    },
    /// `clock_step [NS]`: advance the virtual clock (to the next timer
    /// deadline without NS).
    ClockStep(Option<u64>),
    /// `clock_set NS`: advance the virtual clock to NS if it is earlier.
    ClockSet(i64),
}

/// Why a line is not a valid request (the text after `FAIL `).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line is empty.
    #[error("empty command")]
    Empty,
    /// The command name is not one this front end serves.
    #[error("Unknown command '{0}'")]
    Unknown(String),
    /// Wrong number of arguments.
    #[error("{command}: expected {expected}")]
    Arguments {
        /// The command.
        command: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A number does not parse or does not fit.
    #[error("{command}: invalid {what} '{text}'")]
    Number {
        /// The command.
        command: String,
        /// Which argument.
        what: &'static str,
        /// The text given (shortened).
        text: String,
    },
    /// A length is above [`MAX_DATA`] (or zero for `read`).
    #[error("{command}: size {len:#x} is not in 1..={max:#x}")]
    Size {
        /// The command.
        command: String,
        /// The size given.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The data argument of `write`/`b64write` is malformed or longer than
    /// SIZE.
    #[error("{0}: malformed data (or longer than SIZE)")]
    Data(&'static str),
    /// A `b64write` whose data decodes to a different size.
    #[error("b64write: data is {got} bytes, SIZE says {want}")]
    DataSize {
        /// Decoded bytes.
        got: usize,
        /// SIZE.
        want: usize,
    },
}

/// Parses one request line (without its newline; a trailing `\r` is
/// ignored).
pub fn parse(line: &str) -> Result<Request, ParseError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
    let Some((&name, args)) = words.split_first() else {
        return Err(ParseError::Empty);
    };
    match name {
        "endianness" => {
            no_args("endianness", args)?;
            Ok(Request::Endianness)
        }
        "outb" | "outw" | "outl" => {
            let cmd = name;
            let width = width_of(name, "out");
            let [p, v] = exact::<2>(cmd, "PORT VALUE", args)?;
            let port = port(cmd, p)?;
            let value = number(cmd, "value", v)?;
            if value > width.max_value() {
                return Err(number_err(cmd, "value", v));
            }
            let value = u32::try_from(value).map_err(|_| number_err(cmd, "value", v))?;
            Ok(Request::Out { width, port, value })
        }
        "inb" | "inw" | "inl" => {
            let cmd = name;
            let [p] = exact::<1>(cmd, "PORT", args)?;
            Ok(Request::In {
                width: width_of(name, "in"),
                port: port(cmd, p)?,
            })
        }
        "writeb" | "writew" | "writel" | "writeq" => {
            let cmd = name;
            let width = width_of(name, "write");
            let [a, v] = exact::<2>(cmd, "ADDR VALUE", args)?;
            let addr = number(cmd, "address", a)?;
            let value = number(cmd, "value", v)?;
            if value > width.max_value() {
                return Err(number_err(cmd, "value", v));
            }
            Ok(Request::Write { width, addr, value })
        }
        "readb" | "readw" | "readl" | "readq" => {
            let cmd = name;
            let [a] = exact::<1>(cmd, "ADDR", args)?;
            Ok(Request::Read {
                width: width_of(name, "read"),
                addr: number(cmd, "address", a)?,
            })
        }
        "read" | "b64read" => {
            let cmd = name;
            let [a, l] = exact::<2>(cmd, "ADDR SIZE", args)?;
            let addr = number(cmd, "address", a)?;
            let len = data_len(cmd, l, cmd == "read")?;
            Ok(if cmd == "read" {
                Request::ReadHex { addr, len }
            } else {
                Request::ReadBase64 { addr, len }
            })
        }
        "write" | "b64write" => {
            let cmd = name;
            let [a, l, d] = exact::<3>(cmd, "ADDR SIZE DATA", args)?;
            let addr = number(cmd, "address", a)?;
            let len = data_len(cmd, l, false)?;
            let data = if cmd == "write" {
                hex_decode(d, len).ok_or(ParseError::Data("write"))?
            } else {
                let data = base64_decode(d).ok_or(ParseError::Data("b64write"))?;
                if data.len() != len {
                    return Err(ParseError::DataSize {
                        got: data.len(),
                        want: len,
                    });
                }
                data
            };
            Ok(Request::WriteData { addr, data })
        }
        "memset" => {
            let [a, l, v] = exact::<3>("memset", "ADDR SIZE VALUE", args)?;
            let value = number("memset", "value", v)?;
            Ok(Request::Memset {
                addr: number("memset", "address", a)?,
                len: number("memset", "size", l)?,
                value: u8::try_from(value).map_err(|_| number_err("memset", "value", v))?,
            })
        }
        "irq_intercept_in" | "irq_intercept_out" => {
            let cmd = name;
            let [p] = exact::<1>(cmd, "QOM-PATH", args)?;
            let kind = if cmd == "irq_intercept_in" {
                InterceptKind::In
            } else {
                InterceptKind::Out
            };
            Ok(Request::IrqIntercept {
                kind,
                path: p.to_string(),
            })
        }
        "clock_step" => match args {
            [] => Ok(Request::ClockStep(None)),
            [ns] => Ok(Request::ClockStep(Some(number("clock_step", "step", ns)?))),
            _ => Err(ParseError::Arguments {
                command: "clock_step".into(),
                expected: "[NS]",
            }),
        },
        "clock_set" => {
            let [ns] = exact::<1>("clock_set", "NS", args)?;
            let v = parse_i64(ns).ok_or_else(|| number_err("clock_set", "time", ns))?;
            Ok(Request::ClockSet(v))
        }
        other => Err(ParseError::Unknown(shorten(other))),
    }
}

/// The width from the suffix after `prefix` (the caller matched the name).
fn width_of(name: &str, prefix: &str) -> Width {
    name.strip_prefix(prefix)
        .and_then(Width::from_suffix)
        .unwrap_or(Width::Byte)
}

fn no_args(command: &str, args: &[&str]) -> Result<(), ParseError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(ParseError::Arguments {
            command: command.to_string(),
            expected: "no arguments",
        })
    }
}

fn exact<'a, const N: usize>(
    command: &str,
    expected: &'static str,
    args: &[&'a str],
) -> Result<[&'a str; N], ParseError> {
    <[&str; N]>::try_from(args).map_err(|_| ParseError::Arguments {
        command: command.to_string(),
        expected,
    })
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

fn number_err(command: &str, what: &'static str, text: &str) -> ParseError {
    ParseError::Number {
        command: command.to_string(),
        what,
        text: shorten(text),
    }
}

fn number(command: &str, what: &'static str, text: &str) -> Result<u64, ParseError> {
    parse_u64(text).ok_or_else(|| number_err(command, what, text))
}

fn port(command: &str, text: &str) -> Result<u16, ParseError> {
    let v = number(command, "port", text)?;
    u16::try_from(v).map_err(|_| number_err(command, "port", text))
}

fn data_len(command: &str, text: &str, nonzero: bool) -> Result<usize, ParseError> {
    let len = number(command, "size", text)?;
    if len > MAX_DATA || (nonzero && len == 0) {
        return Err(ParseError::Size {
            command: command.to_string(),
            len,
            max: MAX_DATA,
        });
    }
    usize::try_from(len).map_err(|_| number_err(command, "size", text))
}

/// A line as the reader produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line (without its newline).
    Text(String),
    /// A line longer than [`MAX_LINE`] (its bytes were dropped as they
    /// came) or not UTF-8; it still gets one `FAIL` reply.
    Invalid(&'static str),
}

/// Splits a byte stream into lines, holding at most [`MAX_LINE`] bytes of
/// an unfinished line: the rest of an overlong line is discarded up to its
/// newline, and the line is reported as [`Line::Invalid`].
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
    overlong: bool,
    limit: Option<usize>,
}

impl LineReader {
    /// A reader with the protocol's [`MAX_LINE`] limit.
    pub fn new() -> Self {
        LineReader::default()
    }

    /// A reader with a smaller limit (tests).
    #[cfg(test)]
    fn with_limit(limit: usize) -> Self {
        LineReader {
            limit: Some(limit),
            ..LineReader::default()
        }
    }

    /// Feeds bytes; complete lines are appended to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Line>) {
        let limit = self.limit.unwrap_or(MAX_LINE);
        while !data.is_empty() {
            let (chunk, rest, complete) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            if !self.overlong {
                if self.buf.len().saturating_add(chunk.len()) > limit {
                    self.overlong = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            if complete {
                let line = std::mem::take(&mut self.buf);
                out.push(if std::mem::take(&mut self.overlong) {
                    Line::Invalid("line too long")
                } else {
                    match String::from_utf8(line) {
                        Ok(s) => Line::Text(s),
                        Err(_) => Line::Invalid("line is not UTF-8"),
                    }
                });
            }
            data = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_libqtest_sends() {
        assert_eq!(parse("endianness"), Ok(Request::Endianness));
        assert_eq!(
            parse("outb 0x1f6 0x40"),
            Ok(Request::Out {
                width: Width::Byte,
                port: 0x1F6,
                value: 0x40
            })
        );
        assert_eq!(
            parse("outl 0xcf8 0x80000904"),
            Ok(Request::Out {
                width: Width::Long,
                port: 0xCF8,
                value: 0x8000_0904
            })
        );
        assert_eq!(
            parse("inw 0x1f0"),
            Ok(Request::In {
                width: Width::Word,
                port: 0x1F0
            })
        );
        assert_eq!(
            parse("writeq 0x100000 0xffffffffffffffff"),
            Ok(Request::Write {
                width: Width::Quad,
                addr: 0x10_0000,
                value: u64::MAX
            })
        );
        assert_eq!(
            parse("readl 0x1000"),
            Ok(Request::Read {
                width: Width::Long,
                addr: 0x1000
            })
        );
        assert_eq!(
            parse("read 0x1000 0x4"),
            Ok(Request::ReadHex {
                addr: 0x1000,
                len: 4
            })
        );
        assert_eq!(
            parse("write 0x1000 0x3 0x0102"),
            Ok(Request::WriteData {
                addr: 0x1000,
                data: vec![1, 2, 0]
            })
        );
        assert_eq!(
            parse("b64write 0x1000 0x3 AQID"),
            Ok(Request::WriteData {
                addr: 0x1000,
                data: vec![1, 2, 3]
            })
        );
        assert_eq!(
            parse("b64read 0x1000 0x0"),
            Ok(Request::ReadBase64 {
                addr: 0x1000,
                len: 0
            })
        );
        assert_eq!(
            parse("memset 0x1000 0x0 0xff"),
            Ok(Request::Memset {
                addr: 0x1000,
                len: 0,
                value: 0xFF
            })
        );
        assert_eq!(
            parse("irq_intercept_in ioapic"),
            Ok(Request::IrqIntercept {
                kind: InterceptKind::In,
                path: "ioapic".into()
            })
        );
        assert_eq!(parse("clock_step"), Ok(Request::ClockStep(None)));
        assert_eq!(parse("clock_step 400"), Ok(Request::ClockStep(Some(400))));
        assert_eq!(parse("clock_set -3"), Ok(Request::ClockSet(-3)));
        assert_eq!(
            parse("inb 0x0\r"),
            Ok(Request::In {
                width: Width::Byte,
                port: 0
            })
        );
    }

    #[test]
    fn hostile_lines_fail_cleanly() {
        let cases = [
            "",
            " ",
            "\r",
            "bogus",
            "outb",
            "outb 0x10000 0",
            "outb 0x1f0 0x100",
            "outw 0x1f0 0x10000",
            "outl 0x1f0 0x100000000",
            "outb 0x1f0 0x1 extra",
            "outb -1 0",
            "inq 0x10",
            "writeb 0x0 0x100",
            "writel 0x0 0x100000000",
            "readq 0x1g",
            "read 0x0 0x0",
            "read 0x0 0x400001",
            "read 0x0 0xffffffffffffffff",
            "read 0x0 99999999999999999999999",
            "b64read 0x0 0x400001",
            "write 0x0 0x2 0x010203",
            "write 0x0 0x2 0102",
            "write 0x0 0x2 0xzz",
            "write 0x0 0x1000000000 0x00",
            "b64write 0x0 0x2 AQID",
            "b64write 0x0 0x3 AQI*",
            "memset 0x0 0x10 0x100",
            "memset 0x0 0x10",
            "clock_step -1",
            "clock_step 1 2",
            "clock_set x",
            "irq_intercept_in",
            "endianness big",
        ];
        for line in cases {
            assert!(parse(line).is_err(), "{line:?} parsed");
        }
        let long = "x".repeat(10_000);
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.len() < 100, "error text is bounded: {e}");
    }

    #[test]
    fn line_reader_splits_and_bounds() {
        let mut r = LineReader::with_limit(8);
        let mut out = Vec::new();
        r.push(b"inb 0x0\nou", &mut out);
        r.push(b"tb 1\n", &mut out);
        assert_eq!(
            out,
            vec![Line::Text("inb 0x0".into()), Line::Text("outb 1".into())]
        );
        out.clear();
        r.push(b"0123456789", &mut out);
        assert!(out.is_empty());
        assert!(r.buf.is_empty(), "the overlong line is not kept");
        r.push(b"abcdef\nok\n\xff\xfe\n", &mut out);
        assert_eq!(
            out,
            vec![
                Line::Invalid("line too long"),
                Line::Text("ok".into()),
                Line::Invalid("line is not UTF-8"),
            ]
        );
        out.clear();
        r.push(b"12345678\n", &mut out);
        assert_eq!(
            out,
            vec![Line::Text("12345678".into())],
            "the limit is inclusive"
        );
    }

    #[test]
    fn widths() {
        assert_eq!(Width::Byte.max_value(), 0xFF);
        assert_eq!(Width::Long.max_value(), 0xFFFF_FFFF);
        assert_eq!(Width::Quad.max_value(), u64::MAX);
    }
}
