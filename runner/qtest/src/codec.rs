//! The number and data encodings of the qtest protocol: integers as C's
//! `strtoul(s, NULL, 0)` reads them (`0x` hex, leading `0` octal, else
//! decimal), lowercase hex data with a `0x` prefix, and standard base64.
//!
//! Every decoder is strict: a character outside the alphabet, a sign, an
//! empty number or a value that does not fit is `None`, never a guess.

/// Parses an unsigned integer the way `strtoul` with base 0 does, without
/// its leniencies: no sign, no leading or trailing junk, no overflow.
pub fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1
        && let Some(o) = s.strip_prefix('0')
    {
        (o, 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Parses a signed integer: an optional `-` then [`parse_u64`]'s syntax.
pub fn parse_i64(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => {
            let v = parse_u64(rest)?;
            0i64.checked_sub_unsigned(v)
        }
        None => i64::try_from(parse_u64(s)?).ok(),
    }
}

/// Lowercase hex of `data` (libqtest's decoder only understands lowercase).
pub fn hex_encode(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len().saturating_mul(2));
    for b in data {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    s
}

/// Decodes `0xHEX` into exactly `len` bytes: fewer digits than `2 * len`
/// leave the rest zero (as QEMU does), more digits, an odd count or a
/// non-hex character are errors.
pub fn hex_decode(s: &str, len: usize) -> Option<Vec<u8>> {
    let digits = s.strip_prefix("0x")?.as_bytes();
    if !digits.len().is_multiple_of(2) || digits.len() / 2 > len {
        return None;
    }
    let mut out = vec![0u8; len];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = hex_nibble(pair[0])?;
        let lo = hex_nibble(pair[1])?;
        *o = (hi << 4) | lo;
    }
    Some(out)
}

fn hex_nibble(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3).saturating_mul(4));
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = (n >> (18 - 6 * i)) & 0x3F;
                s.push(char::from(B64[idx as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Decodes standard base64 (padding required, no whitespace).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.chunks_exact(4);
    let count = quads.len();
    for (qi, quad) in quads.enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && qi + 1 != count) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = B64.iter().position(|&x| x == c)?;
            n = (n << 6) | u32::try_from(v).ok()?;
        }
        n <<= 6 * pad as u32;
        let [_, b0, b1, b2] = n.to_be_bytes();
        out.extend_from_slice(&[b0, b1, b2][..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_strtoul_base_0() {
        assert_eq!(parse_u64("0x1f0"), Some(0x1F0));
        assert_eq!(parse_u64("0XFF"), Some(255));
        assert_eq!(parse_u64("017"), Some(15));
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("0xffffffffffffffff"), Some(u64::MAX));
        for bad in [
            "",
            "0x",
            "-1",
            "+1",
            "08",
            "1a",
            "0x1g",
            " 1",
            "0x10000000000000000",
            "99999999999999999999",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_i64("-5"), Some(-5));
        assert_eq!(parse_i64("-0x8000000000000000"), Some(i64::MIN));
        assert_eq!(parse_i64("0x8000000000000000"), None);
        assert_eq!(parse_i64("--1"), None);
    }

    #[test]
    fn hex_round_trip_and_zero_fill() {
        assert_eq!(hex_encode(&[0x00, 0xAB, 0x7F]), "00ab7f");
        assert_eq!(hex_decode("0x00ab7f", 3), Some(vec![0, 0xAB, 0x7F]));
        assert_eq!(hex_decode("0xAB", 3), Some(vec![0xAB, 0, 0]));
        assert_eq!(hex_decode("0x", 2), Some(vec![0, 0]));
        assert_eq!(hex_decode("ab", 1), None, "no prefix");
        assert_eq!(hex_decode("0xabc", 2), None, "odd digits");
        assert_eq!(hex_decode("0xabcd", 1), None, "longer than the size");
        assert_eq!(hex_decode("0xzz", 1), None);
        assert_eq!(hex_decode("0x+1", 1), None);
    }

    #[test]
    fn base64_round_trip() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let e = base64_encode(data);
            assert_eq!(base64_decode(&e).as_deref(), Some(data), "{e}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
    }

    #[test]
    fn base64_rejects_garbage() {
        for bad in [
            "Zm9", "Zm9v!A==", "Z===", "Zg==Zg==", "Zm 9v", "====", "Zm9v\n",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }
}
