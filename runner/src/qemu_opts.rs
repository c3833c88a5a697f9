//! QEMU's option syntax, shared by the options that follow it (`--qmp`,
//! `vmdma qtest`'s command line): a leaf, imported by whoever parses them.

/// Splits a QEMU-style option string at its commas; `,,` stands for a
/// comma inside a value (QEMU's escape). `a,,b,c` gives `["a,b", "c"]`.
pub fn split_qemu_opts(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                parts.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_opts_split_at_single_commas() {
        assert_eq!(split_qemu_opts("a,,b,c"), ["a,b", "c"]);
        assert_eq!(split_qemu_opts(""), [""]);
        assert_eq!(split_qemu_opts("x,"), ["x", ""]);
        assert_eq!(split_qemu_opts(",,,"), [",", ""]);
    }
}
