#!/usr/bin/env bash
# Query times of the lake in DuckDB against the layouts it replaces: writes LAKE_TICKS ticks
# (default 10,000,000) with `kinetick demo --symbols 1000 --shards 4`, compacts them with
# `kinetick compact`, lays the same rows out as the lake was written before (a small Snappy file
# per shard and checkpoint) and as one JSON object per tick, then prints each layout's files and
# bytes a tick and the times of the seeds' four Athena queries and of a one-symbol, one-hour
# query over each (scripts/lake_query_bench.py says how). docs/performance.md has the figures.
#
#   scripts/lake-query-bench.sh                           # 10 M ticks: about 8 minutes
#   LAKE_TICKS=1000000 scripts/lake-query-bench.sh        # a quick try
#   LAKE_BENCH_BIN=path/to/kinetick scripts/lake-query-bench.sh   # that build, not rebuilt
#
# LAKE_BENCH_RUNS: timed runs per query (default 5; one more runs first, untimed).
# LAKE_BENCH_DIR: scratch directory (default a new one under /tmp, deleted at the end; one given
# is kept). It holds about 0.9 KB a tick at any time (the demo's ticks table until the demo
# ends, then the JSON layout): 9 GB at 10 M ticks.
# DuckDB is the version scripts/check-deploy.sh pins, installed into .venv if needed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
duckdb_version=$(sed -n 's/^DUCKDB_VERSION=//p' scripts/check-deploy.sh)
ticks=${LAKE_TICKS:-10000000}
runs=${LAKE_BENCH_RUNS:-5}
bin=${LAKE_BENCH_BIN:-target/release/kinetick}

if [ -z "$duckdb_version" ]; then
  echo "lake-query-bench: no DUCKDB_VERSION= line in scripts/check-deploy.sh" >&2
  exit 1
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('duckdb') != '$duckdb_version')" 2>/dev/null; then
  echo "Installing duckdb==$duckdb_version into $venv ..."
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "duckdb==$duckdb_version"
fi

if [ -z "${LAKE_BENCH_BIN:-}" ]; then
  cargo build --release --quiet
fi
if [ ! -x "$bin" ]; then
  echo "lake-query-bench: no kinetick binary at $bin" >&2
  exit 1
fi

if [ -n "${LAKE_BENCH_DIR:-}" ]; then
  work=$LAKE_BENCH_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/lake-query-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi

PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" scripts/lake_query_bench.py \
  --kinetick "$bin" --work "$work" --ticks "$ticks" --runs "$runs"
