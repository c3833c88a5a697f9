#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each on the nightly
# toolchain with cargo-fuzz, minimises each corpus in fuzz/corpus/TARGET,
# and appends one line per target to fuzz/campaigns.tsv, so that campaigns
# add up across sessions. See fuzz/README.md.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 60 s, every target
#   fuzz/run.sh --totals                   executions per target so far
#
# Environment: FUZZ_NICE (default 10) is the nice level of the fuzzers;
# FUZZ_TOOLCHAIN (default nightly); FUZZ_SANITIZER (default address; `none`
# is many times faster but sees only panics, not an out-of-bounds access in
# vmdma-core's unsafe memory views that does not fault). Exit status 1 if a target crashed or
# timed out: its input is in fuzz/artifacts/TARGET/ and must become a
# regression (fuzz/regressions/TARGET/) before the bug is fixed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
log="$fuzz/campaigns.tsv"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
nice_level="${FUZZ_NICE:-10}"
sanitizer="${FUZZ_SANITIZER:-address}"

# target  cargo-fuzz crate  max input length (bytes)
TARGETS="
ide_ports   core/fuzz    4096
inflight    core/fuzz    800
elf_loader  runner/fuzz  16384
qtest_lines runner/fuzz  4096
snapshot_restore core/fuzz 4096
snapshot_file runner/fuzz 65536
"

totals() {
    if [ ! -f "$log" ]; then
        echo "no campaigns recorded yet ($log)"
        return
    fi
    awk -F'\t' '!/^#/ && NF >= 8 {
            runs[$2]++; secs[$2] += $3; execs[$2] += $4; crashes[$2] += $10
            if ($6 > cov[$2]) cov[$2] = $6
        }
        END {
            printf "%-12s %8s %10s %14s %10s %8s\n", "target", "sessions", "seconds", "executions", "max cov", "crashes"
            for (t in runs)
                printf "%-12s %8d %10d %14d %10d %8d\n", t, runs[t], secs[t], execs[t], cov[t], crashes[t]
        }' "$log"
}

if [ "${1:-}" = "--totals" ]; then
    totals
    exit 0
fi

seconds="${1:-60}"
shift || true
case "$seconds" in
    '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...] | --totals" >&2; exit 64 ;;
esac
wanted=("$@")

if ! rustup toolchain list | grep -q "^$toolchain"; then
    echo "fuzz/run.sh: the $toolchain toolchain is missing (rustup toolchain install $toolchain)" >&2
    exit 69
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ ! -f "$log" ]; then
    printf '# date_utc\ttarget\tseconds\texecutions\texecs_per_s\tcoverage\tfeatures\tcorpus_files\tcorpus_bytes\tcrashes\tcommit\ttoolchain\n' >"$log"
fi

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$root" status --porcelain -- core runner 2>/dev/null)" ]; then
    commit="$commit+dirty"
fi
rustc_version="$(rustc "+$toolchain" --version | awk '{print $2 "-" $4}' | tr -d ')')"
failed=0

while read -r target crate max_len; do
    [ -n "$target" ] || continue
    if [ "${#wanted[@]}" -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $target " ]]; then
        continue
    fi
    corpus="$fuzz/corpus/$target"
    artifacts="$fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    if [ "$target" = elf_loader ] && [ -z "$(ls -A "$corpus")" ]; then
        (cd "$root" && cargo test -q -p vmdma-cli --test fuzz_corpus -- --ignored write_elf_loader_seeds)
    fi
    echo "==> $target: building (crate $crate)"
    if ! (cd "$root/$crate" && nice -n "$nice_level" cargo "+$toolchain" fuzz build -s "$sanitizer" --debug-assertions "$target"); then
        echo "fuzz/run.sh: building $target failed; nothing recorded" >&2
        exit 70
    fi
    echo "==> $target: $seconds s (corpus fuzz/corpus/$target)"
    out="$(mktemp)"
    status=0
    started="$(date +%s)"
    (cd "$root/$crate" && nice -n "$nice_level" cargo "+$toolchain" fuzz run -s "$sanitizer" --debug-assertions "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/") >"$out" 2>&1 || status=$?
    # What ran, not what was asked: a finding stops the target early.
    elapsed=$(($(date +%s) - started))
    tail -n 25 "$out"
    execs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$out" | tail -1)"
    done_line="$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|pulse|NEW|REDUCE)' "$out" | tail -1 || true)"
    cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")"
    ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")"
    crashes=0
    if [ "$status" -ne 0 ] || grep -qE '^==[0-9]+== ERROR: libFuzzer|^SUMMARY: libFuzzer|panicked at|ALARM: working on the last Unit' "$out"; then
        crashes=1
        failed=1
        echo "!! $target: the fuzzer stopped with a finding (status $status); input in fuzz/artifacts/$target/" >&2
        grep -E 'Test unit written to|panicked at' "$out" >&2 || true
    fi
    rm -f "$out"
    echo "==> $target: minimising the corpus"
    (cd "$root/$crate" && nice -n "$nice_level" cargo "+$toolchain" fuzz cmin -s "$sanitizer" --debug-assertions "$target" "$corpus" -- \
        -max_len="$max_len" -timeout=10) >/dev/null 2>&1 || echo "!! $target: corpus minimisation failed; corpus left as is" >&2
    files="$(find "$corpus" -type f | wc -l)"
    bytes="$(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
    rate=0
    if [ -n "$execs" ] && [ "$elapsed" -gt 0 ]; then
        rate=$((execs / elapsed))
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$target" "$elapsed" "${execs:-0}" "$rate" "${cov:-0}" "${ft:-0}" \
        "$files" "$bytes" "$crashes" "$commit" "$rustc_version" >>"$log"
    echo "==> $target: ${execs:-0} executions, cov ${cov:-?}, ft ${ft:-?}, corpus $files files / $bytes bytes"
done <<<"$TARGETS"

echo
totals
exit "$failed"
