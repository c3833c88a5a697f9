//! The numbers the documentation states that can be computed are checked
//! here against what computes them: the hostile attack count against the
//! table's rows, the exit-status table against the runner's constants, the
//! ide-test table and its "7 of 13" against the lists the ide-test run
//! uses, the exits per DMA command against the counts `tests/bench_exits.rs`
//! measures. (The seccomp list sizes are checked by the runner's unit test
//! `sandbox::rules::tests::the_docs_state_the_list_sizes`.) Needs nothing
//! but the files.

mod common;

use std::path::Path;

use common::facts::{
    COALESCED_LBA28, COALESCED_LBA48, EXITS_LBA28, EXITS_LBA48, IDE_TEST_REQUIRED, IDE_TEST_SKIPPED,
};
use vmdma::error::EXIT_DISK_STUCK;
use vmdma_protocol::{
    EXIT_BAD_INPUT, EXIT_GUEST_SHUTDOWN, EXIT_TIMEOUT, EXIT_USAGE, EXIT_VMM_ERROR,
};

/// A file of the repository, with every run of whitespace made one space
/// (prose is wrapped anywhere).
fn prose(path: &str) -> String {
    let text = read(path);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn read(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn assert_says(path: &str, needle: &str) {
    assert!(
        prose(path).contains(needle),
        "{path} should say {needle:?} (computed from the code)"
    );
}

/// The rows of the first markdown table after the line containing `after`,
/// as cells (header and separator dropped).
fn table_after(text: &str, after: &str) -> Vec<Vec<String>> {
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in the text"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_hostile_attack_count_is_the_tables() {
    let doc = read("docs/hostile.md");
    let rows = table_after(&doc, "<!-- hostile-table:begin -->");
    assert!(rows.len() > 100, "only {} rows", rows.len());
    let n = rows.len();
    assert_says(
        "docs/hostile.md",
        &format!("`suite=hostile` runs {n} attacks"),
    );
    assert_says("README.md", &format!("{n} attacks on the controller"));
}

#[test]
fn the_exit_status_table_is_the_runners() {
    let doc = read("docs/guarantees.md");
    let rows = table_after(&doc, "## Runner exit statuses");
    let statuses: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let mut expected = vec![
        "0–63".to_string(),
        "130, 143".to_string(),
        "159".to_string(),
    ];
    for code in [
        EXIT_USAGE,
        EXIT_BAD_INPUT,
        EXIT_VMM_ERROR,
        EXIT_GUEST_SHUTDOWN,
        EXIT_TIMEOUT,
        EXIT_DISK_STUCK,
    ] {
        expected.push(code.to_string());
    }
    let mut have: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
    have.sort();
    expected.sort();
    assert_eq!(have, expected, "docs/guarantees.md's exit statuses");
    // The README's one-line summary names every one of them.
    for code in [
        EXIT_USAGE,
        EXIT_BAD_INPUT,
        EXIT_VMM_ERROR,
        EXIT_GUEST_SHUTDOWN,
        EXIT_DISK_STUCK,
        EXIT_TIMEOUT,
    ] {
        assert_says("README.md", &format!(" {code} "));
    }
    assert_says("README.md", "130/143 a signal, 159 a forbidden system call");
}

#[test]
fn the_ide_test_table_is_the_runs() {
    let doc = read("docs/ide-test.md");
    let rows = table_after(&doc, "| test | result | why |");
    let names = |result: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r[1].starts_with(result))
            .flat_map(|r| {
                r[0].split(", ")
                    .map(|n| format!("/x86_64/ide/{}", n.trim_matches('`')))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let passed = names("pass");
    let skipped = names("skipped");
    assert_eq!(passed, IDE_TEST_REQUIRED, "the pass rows");
    let expected_skips: Vec<&str> = IDE_TEST_SKIPPED.iter().map(|(p, _)| *p).collect();
    assert_eq!(skipped, expected_skips, "the skipped rows");
    let (run, all) = (passed.len(), passed.len() + skipped.len());
    assert_says("README.md", &format!("({run} of {all} cases;"));
    assert_says("docs/performance.md", &format!("({all} cases, {run} run:"));
}

#[test]
fn the_exits_per_command_are_the_measured_ones() {
    let exits = (EXITS_LBA28 - COALESCED_LBA28) as u32;
    assert_eq!(
        exits,
        (EXITS_LBA48 - COALESCED_LBA48) as u32,
        "LBA28 and LBA48 differ only in coalesced writes"
    );
    let (all28, all48) = (EXITS_LBA28 as u32, EXITS_LBA48 as u32);
    let (co28, co48) = (COALESCED_LBA28 as u32, COALESCED_LBA48 as u32);
    let perf = "docs/performance.md";
    assert_says(perf, &format!("the way Linux does: {exits} to user space"));
    assert_says(
        perf,
        &format!("the {co28} (LBA28) or {co48} (LBA48) task-file"),
    );
    assert_says(
        perf,
        &format!("(`--no-coalesced-pio`: {all28} and {all48} exits)"),
    );
    assert_says(
        perf,
        &format!("a command cost {all28} (LBA28) or {all48} (LBA48) exits to user space"),
    );
    assert_says(
        perf,
        &format!("today it costs {exits} (the exits table below)"),
    );
    assert_says(
        "runner/README.md",
        &format!("exits {exits} times instead of {all48} ({co48} coalesced writes)"),
    );
}
