#!/usr/bin/env bash
# A longer fuzz series than the test suite's single corpus: FUZZ_RUNS corpora (default 5) of
# FUZZ_RECORDS records each (default 100 000), with seeds FUZZ_SEED, FUZZ_SEED + 1, ... (default
# from 1000; the suite's own corpus is seed 1). Each goes through tests/fuzz_records.rs: hostile
# records and KPL aggregates interleaved with valid ticks, run through the in-process pipeline,
# every record checked to end as one tick or one dead letter with the expected reason, and the
# valid ticks checked against a clean run of only them. A failing corpus names its seed; replay it
# with FUZZ_SEED=<seed> FUZZ_RECORDS=<n> cargo test --test fuzz_records.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${FUZZ_RUNS:-5}
records=${FUZZ_RECORDS:-100000}
first=${FUZZ_SEED:-1000}
cargo test --locked --test fuzz_records --no-run
for run in $(seq 0 $((runs - 1))); do
  seed=$((first + run))
  echo "fuzz corpus $((run + 1)) of $runs: seed $seed, $records records"
  FUZZ_SEED=$seed FUZZ_RECORDS=$records cargo test --locked --test fuzz_records -- --nocapture
done
