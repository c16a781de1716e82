#!/usr/bin/env bash
# Runs every check and test of kinetick: formatting, lints, unit, property and integration tests.
# Needs only Rust and Python 3: it installs the AWS emulator (moto's server, pinned) into a
# project-local virtualenv, and Node.js (from PyPI) and the Kinesis emulator kinesalite (for the
# resharding tests) beside it, starts both on free loopback ports for the AWS tests, and stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/moto.sh
source scripts/kinesalite.sh
ensure_moto
ensure_kinesalite
trap 'kill "${moto_pid:-}" "${kinesalite_pid:-}" 2>/dev/null || true' EXIT
port=$(free_port)
start_moto "$port" target/moto.log
export AWS_EMULATOR_URL="http://127.0.0.1:$port"
echo "AWS emulator (moto $MOTO_VERSION) on $AWS_EMULATOR_URL"
port=$(free_port)
start_kinesalite "$port" target/kinesalite.log
export KINESIS_EMULATOR_URL="http://127.0.0.1:$port"
echo "Kinesis emulator (kinesalite $KINESALITE_VERSION) on $KINESIS_EMULATOR_URL"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# --all-targets also runs each bench once, briefly, so benches cannot rot.
cargo test --all-targets --locked
# The ECS deployment: cfn-lint, the template's rules and metric names, and the Glue table and
# Athena queries against Parquet the binary just built writes (DuckDB).
scripts/check-deploy.sh "${CARGO_TARGET_DIR:-target}/debug/kinetick"
