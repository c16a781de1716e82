#!/usr/bin/env bash
# Peak memory of a shard flooded with distinct symbols (a producer bug) against a normal run:
# `kinetick demo` on one shard with 200,000 symbols under the default `symbols.max-per-shard`
# (10,000), and with 100 symbols; with FLOOD_UNBOUNDED=1 also the flood with the limit out of
# reach (every symbol kept, as before there was a limit: it takes minutes). Prints each run's
# rate, ticks, dead letters, checkpoint file size and peak RSS (the kernel's high-water mark,
# VmHWM, which `time -f %M` reports at exit). docs/performance.md has the figures.
#
#   scripts/symbol-flood.sh                     # 1,000,000 records a run
#   FLOOD_TICKS=300000 scripts/symbol-flood.sh
#   FLOOD_UNBOUNDED=1 scripts/symbol-flood.sh
#   FLOOD_BIN=path/to/kinetick scripts/symbol-flood.sh   # another build, not rebuilt
set -euo pipefail
cd "$(dirname "$0")/.."

ticks=${FLOOD_TICKS:-1000000}
bin=${FLOOD_BIN:-target/release/kinetick}
if [ -z "${FLOOD_BIN:-}" ]; then
    cargo build --release --quiet
fi
if [ ! -x /usr/bin/time ]; then
    echo "needs /usr/bin/time (GNU time) for the peak RSS" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-34s %10s %12s %10s %13s %12s %13s\n' run symbols records/s ticks "dead letters" checkpoint "peak RSS"
run() {
    local label=$1 symbols=$2 limit=$3
    local out=$work/out
    rm -rf "$out"
    KINETICK_SYMBOLS__MAX_PER_SHARD=$limit RUST_LOG=error /usr/bin/time -f %M -o "$work/rss" \
        "$bin" demo --no-progress --ticks "$ticks" --symbols "$symbols" --shards 1 \
        --out "$out" >"$work/summary"
    # "  records    N read (R/s): T ticks, D dead letters"
    local line rate ticks_kept dead checkpoint rss_kb
    line=$(grep -E '^ +records ' "$work/summary")
    rate=$(sed -E 's/.*\(([0-9]+)\/s\).*/\1/' <<<"$line")
    ticks_kept=$(sed -E 's/.*: ([0-9]+) ticks.*/\1/' <<<"$line")
    dead=$(sed -E 's/.*, ([0-9]+) dead letters.*/\1/' <<<"$line")
    checkpoint=$(stat -c %s "$out/checkpoints/shardId-000000000000.json")
    rss_kb=$(tail -n 1 "$work/rss")
    printf '%-34s %10s %12s %10s %13s %9s KB %10s MB\n' "$label" "$symbols" "$rate" \
        "$ticks_kept" "$dead" "$((checkpoint / 1024))" "$((rss_kb / 1024))"
}

run "flood, default limit (10,000)" 200000 10000
if [ -n "${FLOOD_UNBOUNDED:-}" ]; then
    run "flood, limit out of reach" 200000 100000000
fi
run "100 symbols" 100 10000
