#!/usr/bin/env bash
# Checks the ECS deployment (deploy/ecs/): installs cfn-lint and DuckDB (pinned) into .venv if
# needed, then
#   1. cfn-lint deploy/ecs/template.yaml: no errors, no warnings;
#   2. the template's Rules accept exactly the valid parameter sets; with each source (Kinesis,
#      Kafka without authentication, with SCRAM, with MSK IAM) the stack has the stream only with
#      Kinesis, and the roles, container settings and egress of that source only; the alarms and
#      the dashboard read only metrics kinetick publishes; the stream, tables and bucket are
#      retained with the stack, the bucket versioned with noncurrent versions and incomplete
#      uploads expiring; every alarm notifies the alarm topic or scales, the records-lost and
#      unhealthy alarms as set; the daily report's and compaction's schedules run kinetick report
#      and kinetick compact on the stack's lake with a least-privilege role, and the task role
#      puts only under reports/ and deletes only what the compaction and the snapshots need
#      (deploy/ecs/check_template.py);
#   3. kinetick demo, run with the container's KINETICK_* variables (so a misspelt or invalid
#      setting fails it: kinetick refuses unknown settings and invalid values), writes items with
#      the TTL attribute the ticks table expires on; and kinetick accepts the container's
#      variables of each Kafka source too;
#   4. the Glue table matches that demo's Parquet files and every Athena named query runs on
#      them in DuckDB (deploy/ecs/check_athena.py); kinetick report on that lake writes its page
#      and charts, and answers the four seed queries as DuckDB does (deploy/ecs/check_report.py);
#   5. the stack deploys on the AWS emulator, and kinetick run, configured as its task definition
#      says, processes ticks into the stack's table, lake, lease table, topic and metrics; the
#      report's and compaction's schedules (created through the Scheduler API: moto's
#      CloudFormation skips them) run their commands as the scheduled task would, which puts the
#      report into the bucket and its digest on the topic, and compacts the run's lake to one
#      file a date with the same rows; deleted, the stack leaves the stream, tables and bucket
#      with their data; then the same with a Kafka source on a Kafka-protocol broker
#      (deploy/ecs/check_stack.py; the emulator at AWS_EMULATOR_URL and the broker at
#      KAFKA_BOOTSTRAP_SERVERS with KAFKA_BROKER_BIN, or ones started here).
# Needs a built kinetick: its path as the first argument, or target/debug/kinetick.
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION=1.58.0
DUCKDB_VERSION=1.5.6
venv=.venv
template=deploy/ecs/template.yaml
kinetick_bin=${1:-target/debug/kinetick}
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in deploy/ecs

# ensure PACKAGE VERSION: installs PACKAGE==VERSION into .venv unless that version is there.
ensure() {
  local package=$1 version=$2
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
    echo "Installing $package==$version into $venv ..."
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version"
  fi
}

if [ ! -x "$kinetick_bin" ]; then
  echo "check-deploy: no kinetick binary at $kinetick_bin: build it (cargo build) or pass its path" >&2
  exit 1
fi

ensure cfn-lint "$CFN_LINT_VERSION"
ensure duckdb "$DUCKDB_VERSION"

echo "== cfn-lint $CFN_LINT_VERSION $template"
"$venv/bin/cfn-lint" "$template"
echo "cfn-lint: no findings"

echo "== Rules, metric names, retained data, alarms, the daily report's and compaction's schedules"
"$venv/bin/python" deploy/ecs/check_template.py "$template" rules
"$venv/bin/python" deploy/ecs/check_template.py "$template" sources
"$venv/bin/python" deploy/ecs/check_template.py "$template" metrics src/metrics/mod.rs
"$venv/bin/python" deploy/ecs/check_template.py "$template" durability
"$venv/bin/python" deploy/ecs/check_template.py "$template" alarms
"$venv/bin/python" deploy/ecs/check_template.py "$template" schedule src/report/digest.rs

tmp=$(mktemp -d)
cleanup() {
  kill ${moto_pid:-} ${kafka_broker_pid:-} 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# task_env SOURCE: the arguments of env(1) that run kinetick with the task definition's KINETICK_*
# variables for SOURCE (see check_template.py) and no others, since kinetick reads every
# KINETICK_* variable as a setting; into the array task_env.
task_env() {
  "$venv/bin/python" deploy/ecs/check_template.py "$template" env "$1" > "$tmp/env"
  task_env=()
  for name in $(compgen -e | grep '^KINETICK_' || true); do task_env+=(-u "$name"); done
  while IFS= read -r line; do task_env+=("$line"); done < "$tmp/env"
}

echo "== kinetick demo with the task definition's KINETICK_* variables"
task_env kinesis
# News on about one tick in 100, so the named queries of big moves have rows to return.
if ! env "${task_env[@]}" "$kinetick_bin" demo --ticks 20000 --symbols 50 --jumps-per-session 2340 \
    --out "$tmp/out" --no-progress \
    > "$tmp/demo.log" 2>&1; then
  cat "$tmp/demo.log" >&2
  echo "check-deploy: kinetick demo failed with the task definition's variables (above)" >&2
  exit 1
fi
grep -v '^{' "$tmp/demo.log" | sed -n '1,6p'
"$venv/bin/python" deploy/ecs/check_template.py "$template" table "$tmp/out"
# kinetick checks every setting before it starts, the [kafka] ones too when the source is Kafka
# (the demo itself reads its simulated market).
for source in kafka kafka-scram kafka-msk-iam; do
  task_env "$source"
  if ! env "${task_env[@]}" "$kinetick_bin" demo --ticks 1000 --symbols 10 --out "$tmp/out-$source" \
      --no-progress > "$tmp/demo.log" 2>&1; then
    cat "$tmp/demo.log" >&2
    echo "check-deploy: kinetick refused the task definition's variables with source $source (above)" >&2
    exit 1
  fi
  echo "kinetick accepts the task definition's variables with source $source"
done

echo "== Glue table and Athena named queries (DuckDB $DUCKDB_VERSION)"
"$venv/bin/python" deploy/ecs/check_athena.py "$template" "$tmp/out"

echo "== kinetick report on that lake: its seed answers against DuckDB's"
task_env kinesis
if ! env "${task_env[@]}" "$kinetick_bin" report --lake "$tmp/out" --out "$tmp/report" --no-progress \
    > "$tmp/report.log" 2>&1; then
  cat "$tmp/report.log" >&2
  echo "check-deploy: kinetick report failed on the demo's lake (above)" >&2
  exit 1
fi
"$venv/bin/python" deploy/ecs/check_report.py "$tmp/out" "$tmp/report"

echo "== The stack on the AWS emulator, and kinetick run as its task definition says"
source scripts/moto.sh
source scripts/kafka.sh
if [ -z "${AWS_EMULATOR_URL:-}" ]; then
  ensure_moto
  port=$(free_port)
  start_moto "$port" "$tmp/moto.log"
  export AWS_EMULATOR_URL="http://127.0.0.1:$port"
fi
"$venv/bin/python" deploy/ecs/check_stack.py "$template" "$kinetick_bin" kinesis
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  ensure_kafka_broker
  port=$(free_port)
  start_kafka_broker "$port" "$tmp/kafka.log"
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$port"
  KAFKA_BROKER_BIN=$(kafka_broker_bin)
  export KAFKA_BROKER_BIN
fi
"$venv/bin/python" deploy/ecs/check_stack.py "$template" "$kinetick_bin" kafka

echo "check-deploy: all checks passed"
