//! [`Msg`]: a short, fixed-capacity text (failure reasons, skip reasons).
//!
//! The guest has no heap, so messages are formatted into a byte array.
//! Text beyond the capacity is cut off (at a character boundary) rather than
//! reported as an error: a truncated reason is still useful.

use core::fmt;

/// Capacity of a [`Msg`] in bytes.
pub const MSG_CAPACITY: usize = 200;

/// A fixed-capacity UTF-8 string; see the module documentation.
#[derive(Clone)]
pub struct Msg {
    buf: [u8; MSG_CAPACITY],
    len: usize,
}

impl Msg {
    /// An empty message.
    pub const fn new() -> Self {
        Msg {
            buf: [0; MSG_CAPACITY],
            len: 0,
        }
    }

    /// A message holding `s` (truncated to the capacity).
    pub fn from_text(s: &str) -> Self {
        let mut m = Msg::new();
        m.push_str(s);
        m
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or(&[]);
        // Only whole characters are ever appended (see `push_str`).
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// Appends as much of `s` as fits, cutting at a character boundary.
    pub fn push_str(&mut self, s: &str) {
        let room = MSG_CAPACITY.saturating_sub(self.len);
        let mut take = s.len().min(room);
        while take > 0 && !s.is_char_boundary(take) {
            take -= 1;
        }
        let src = s.as_bytes().get(..take).unwrap_or(&[]);
        if let Some(dst) = self.buf.get_mut(self.len..self.len + take) {
            dst.copy_from_slice(src);
            self.len += take;
        }
    }
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

impl fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Formats into a [`Msg`], like `format!`.
#[macro_export]
macro_rules! msg {
    ($($arg:tt)*) => {{
        let mut m = $crate::msg::Msg::new();
        // `Msg::write_str` never fails (it truncates).
        let _ = core::fmt::Write::write_fmt(&mut m, format_args!($($arg)*));
        m
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_truncates_at_char_boundary() {
        let m = msg!("x={} y={:#x}", 5, 255);
        assert_eq!(m.as_str(), "x=5 y=0xff");

        let long = "é".repeat(MSG_CAPACITY); // 2 bytes each
        let m = Msg::from_text(&long);
        assert_eq!(m.as_str().len(), MSG_CAPACITY);
        let m = msg!("a{}", long);
        assert_eq!(m.as_str().len(), MSG_CAPACITY - 1);
        assert!(m.as_str().starts_with('a'));
    }
}
