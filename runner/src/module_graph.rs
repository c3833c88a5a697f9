//! The runner's modules form layers: no module imports, directly or
//! through others, a module that imports it. The same holds inside the
//! crates beside the library (`bench/`, `qtest/`, `cli/`); between crates
//! cargo itself refuses a cycle. This test reads the sources
//! (`use crate::…`, `super::…` paths and `use child::…` in a parent), builds
//! the import graph twice (between files, and between top-level modules:
//! `machine`, `kvm`, `devices`…) and fails on any cycle, naming it.
//!
//! Test code (`#[cfg(test)] mod tests` at the end of a file, and the
//! `tests.rs` files beside a module) is left out: tests may reach anywhere.
//! Comments are left out too (doc links are not imports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `devices/bus.rs` → `[devices, bus]`, `devices/mod.rs` → `[devices]`,
/// `lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut m: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "lib")) {
        m.pop();
    }
    m
}

/// The source without comments and without the trailing test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path starting at a `crate::` or `super::` token, as segments
/// (`{` ends a path: a group's first segment is enough for the graph).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::"]
            .iter()
            .find(|k| code_at(&bytes, i, k) && (i == 0 || !is_ident(bytes[i - 1])));
        if starts.is_none() {
            i += 1;
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            if s == j {
                break;
            }
            segs.push(bytes[s..j].iter().collect::<String>());
            if code_at(&bytes, j, "::") {
                j += 2;
            } else {
                break;
            }
        }
        out.push(segs);
        i = j.max(i + 1);
    }
    out
}

fn code_at(s: &[char], i: usize, k: &str) -> bool {
    k.chars().enumerate().all(|(n, c)| s.get(i + n) == Some(&c))
}

/// The module graph of the crate in `dir` (`""`: this library; `bench`,
/// `qtest`, `cli`: the crates beside it): file modules and the modules each
/// imports.
fn graph_of(dir: &str) -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let files: Vec<(Module, PathBuf)> = files
        .into_iter()
        .filter(|f| {
            let name = f.file_name().unwrap();
            name != "main.rs" && name != "tests.rs" && name != "module_graph.rs"
        })
        .map(|f| (module_of(&src, &f), f))
        .collect();
    let known: BTreeSet<Module> = files.iter().map(|(m, _)| m.clone()).collect();
    let resolve = |path: &[String]| -> Option<Module> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| known.contains(m))
    };
    let mut edges = BTreeMap::new();
    for (m, f) in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let code = code(&text);
        let is_dir = matches!(f.file_name().unwrap().to_str(), Some("mod.rs" | "lib.rs"));
        let mut to = BTreeSet::new();
        for p in paths(&code) {
            let mut rest = p.as_slice();
            let mut base: Module = if is_dir {
                m.clone()
            } else {
                m[..m.len() - 1].to_vec()
            };
            if rest.first().map(String::as_str) == Some("crate") {
                base.clear();
                rest = &rest[1..];
            } else {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            let full: Module = base.into_iter().chain(rest.iter().cloned()).collect();
            if let Some(t) = resolve(&full) {
                to.insert(t);
            }
        }
        // `use child::…` in a parent (2018 paths relative to the module).
        if is_dir {
            for line in code.lines() {
                let Some(rest) = line.trim_start().strip_prefix("use ") else {
                    continue;
                };
                let first: String = rest.chars().take_while(|&c| is_ident(c)).collect();
                let child: Module = m.iter().cloned().chain([first]).collect();
                if known.contains(&child) {
                    to.insert(child);
                }
            }
        }
        to.remove(m);
        edges.insert(m.clone(), to);
    }
    edges
}

/// This library's module graph.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    graph_of("")
}

/// A cycle in `edges`, if there is one.
fn find_cycle<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        n: &N,
        edges: &BTreeMap<N, BTreeSet<N>>,
        state: &mut BTreeMap<N, u8>,
        stack: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|s| s == n).unwrap();
                let mut cycle = stack[at..].to_vec();
                cycle.push(n.clone());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for t in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(t, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut state, &mut Vec::new()))
}

fn show(cycle: &[Module]) -> String {
    cycle
        .iter()
        .map(|m| {
            if m.is_empty() {
                "lib".into()
            } else {
                m.join("::")
            }
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[test]
fn no_import_cycle_between_files() {
    let g = graph();
    assert!(
        g.len() > 50,
        "the sources were not found ({} files)",
        g.len()
    );
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle: {}", show(&c));
    }
}

#[test]
fn no_import_cycle_in_the_crates_beside_the_library() {
    for (dir, least) in [("bench", 9), ("qtest", 7), ("cli", 1)] {
        let g = graph_of(dir);
        assert!(
            g.len() >= least,
            "{dir}: the sources were not found ({} files)",
            g.len()
        );
        if let Some(c) = find_cycle(&g) {
            panic!("import cycle in {dir}/: {}", show(&c));
        }
    }
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let mut top: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, to) in graph() {
        let Some(a) = from.first() else { continue };
        let entry = top.entry(vec![a.clone()]).or_default();
        for t in to {
            if let Some(b) = t.first().filter(|b| *b != a) {
                entry.insert(vec![b.clone()]);
            }
        }
    }
    if let Some(c) = find_cycle(&top) {
        panic!("import cycle: {}", show(&c));
    }
}

#[test]
fn the_checker_sees_a_cycle() {
    let m = |s: &str| vec![s.to_string()];
    let mut g = BTreeMap::new();
    g.insert(m("a"), BTreeSet::from([m("b")]));
    g.insert(m("b"), BTreeSet::from([m("c")]));
    g.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(find_cycle(&g).map(|c| c.len()), Some(4));
    g.insert(m("c"), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
    let p = paths("use crate::devices::bus::{Access, PioBus};\nlet x = super::super::layout::GDT;");
    assert_eq!(p[0], ["crate", "devices", "bus"]);
    assert_eq!(p[1], ["super", "super", "layout", "GDT"]);
}
