#!/usr/bin/env bash
# Checks the ECS deployment (deploy/ecs/): installs cfn-lint and DuckDB (pinned) into .venv if
# needed, then
#   1. cfn-lint deploy/ecs/template.yaml: no errors, no warnings;
#   2. the template's Rules accept exactly the valid parameter sets; the alarms and the
#      dashboard read only metrics kinetick publishes; the stream, tables and bucket are retained
#      with the stack, the bucket versioned with noncurrent versions and incomplete uploads
#      expiring; every alarm notifies the alarm topic or scales, the records-lost and unhealthy
#      alarms as set (deploy/ecs/check_template.py);
#   3. kinetick demo, run with the container's KINETICK_* variables (so a misspelt or invalid
#      setting fails it: kinetick refuses unknown settings and invalid values), writes items with
#      the TTL attribute the ticks table expires on;
#   4. the Glue table matches that demo's Parquet files and every Athena named query runs on
#      them in DuckDB (deploy/ecs/check_athena.py);
#   5. the stack deploys on the AWS emulator, and kinetick run, configured as its task definition
#      says, processes ticks into the stack's table, lake, lease table, topic and metrics; deleted,
#      the stack leaves the stream, tables and bucket with their data
#      (deploy/ecs/check_stack.py; the emulator at AWS_EMULATOR_URL, or one started here).
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

echo "== Rules, metric names, retained data, alarms"
"$venv/bin/python" deploy/ecs/check_template.py "$template" rules
"$venv/bin/python" deploy/ecs/check_template.py "$template" metrics src/metrics/mod.rs
"$venv/bin/python" deploy/ecs/check_template.py "$template" durability
"$venv/bin/python" deploy/ecs/check_template.py "$template" alarms

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== kinetick demo with the task definition's KINETICK_* variables"
"$venv/bin/python" deploy/ecs/check_template.py "$template" env > "$tmp/env"
# kinetick reads every KINETICK_* variable as a setting, so the demo gets the template's and no
# others.
demo_env=()
for name in $(compgen -e | grep '^KINETICK_' || true); do demo_env+=(-u "$name"); done
while IFS= read -r line; do demo_env+=("$line"); done < "$tmp/env"
if ! env "${demo_env[@]}" "$kinetick_bin" demo --ticks 20000 --symbols 50 --out "$tmp/out" --no-progress \
    > "$tmp/demo.log" 2>&1; then
  cat "$tmp/demo.log" >&2
  echo "check-deploy: kinetick demo failed with the task definition's variables (above)" >&2
  exit 1
fi
grep -v '^{' "$tmp/demo.log" | sed -n '1,6p'
"$venv/bin/python" deploy/ecs/check_template.py "$template" table "$tmp/out"

echo "== Glue table and Athena named queries (DuckDB $DUCKDB_VERSION)"
"$venv/bin/python" deploy/ecs/check_athena.py "$template" "$tmp/out"

echo "== The stack on the AWS emulator, and kinetick run as its task definition says"
if [ -z "${AWS_EMULATOR_URL:-}" ]; then
  source scripts/moto.sh
  ensure_moto
  port=$(free_port)
  start_moto "$port" "$tmp/moto.log"
  trap 'kill "$moto_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
  export AWS_EMULATOR_URL="http://127.0.0.1:$port"
fi
"$venv/bin/python" deploy/ecs/check_stack.py "$template" "$kinetick_bin"

echo "check-deploy: all checks passed"
