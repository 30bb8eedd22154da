#!/usr/bin/env bash
# Runs every cargo-fuzz target of the repository, one after another, for SECONDS each (default 60),
# and prints executions and crashes per target. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`).
#
#   scripts/fuzz.sh [--save] [SECONDS] [TARGET...]
#
# The fuzz crates: `fuzz/` (one target per parser of untrusted input) and
# `strategies/udp-multicast/fuzz/` (the multicast packet). Each target starts from its saved corpus
# (`<crate>/corpus/<target>/`, which `cargo test` replays on any toolchain). New inputs go to a
# temporary directory that is thrown away, unless --save: then they are added to the saved corpus
# and the corpus is minimised (`cargo fuzz cmin`) afterwards, ready to commit. A crash leaves its
# input in `<crate>/artifacts/<target>/` and makes the script exit 1 after the other targets ran.
# Targets run one at a time, one process each, under `nice`: the machine stays usable.
set -euo pipefail
cd "$(dirname "$0")/.."

save=false
if [ "${1:-}" = "--save" ]; then
  save=true
  shift
fi
seconds=${1:-60}
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [--save] [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
shift || true
only=("$@")

crates=(fuzz strategies/udp-multicast/fuzz)
cargo_fuzz=(nice -n 10 cargo +nightly fuzz)
# One target directory for every fuzz crate: their dependencies are built once.
target_dir="$PWD/fuzz/target"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

rows=()
failed=0
for crate in "${crates[@]}"; do
  targets=$(cd "$crate" && cargo +nightly fuzz list)
  for target in $targets; do
    if [ "${#only[@]}" -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx "$target"; then
      continue
    fi
    saved="$PWD/$crate/corpus/$target"
    mkdir -p "$saved"
    # libFuzzer adds new inputs to the first corpus directory and reads the others.
    if $save; then
      corpora=("$saved")
    else
      corpora=("$scratch/$target" "$saved")
      mkdir -p "$scratch/$target"
    fi
    before=$(find "$saved" -type f | wc -l)
    log="$scratch/$target.log"
    echo "== $target ($crate): ${seconds} s" >&2
    set +e
    (cd "$crate" && "${cargo_fuzz[@]}" run --target-dir "$target_dir" "$target" "${corpora[@]}" -- \
      -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048) \
      >"$log" 2>&1
    status=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n1)
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    crashes=0
    if [ "$status" -ne 0 ] || [ -n "$artifact" ]; then
      crashes=1
      failed=1
      tail -n 40 "$log" >&2
      [ -n "$artifact" ] || artifact="(exit $status; see the output above)"
    fi
    if $save && [ "$crashes" -eq 0 ]; then
      (cd "$crate" && "${cargo_fuzz[@]}" cmin --target-dir "$target_dir" "$target" >"$scratch/$target.cmin.log" 2>&1) || {
        tail -n 20 "$scratch/$target.cmin.log" >&2
        failed=1
      }
    fi
    after=$(find "$saved" -type f | wc -l)
    rows+=("$(printf '| %-20s | %7s | %12s | %7s | %8s | %s' "$target" "$seconds" "${execs:-?}" \
      "$crashes" "$before->$after" "${artifact:-}")")
  done
done

printf '| %-20s | %7s | %12s | %7s | %8s | %s\n' target seconds executions crashes corpus artifact
printf '|%s|%s|%s|%s|%s|%s\n' ---------------------- --------- -------------- --------- ---------- ---------
printf '%s\n' "${rows[@]}"
exit "$failed"
