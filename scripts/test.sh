#!/usr/bin/env bash
# Runs every check and test of kinetick: formatting, lints, unit, property and integration tests.
# Needs only Rust and Python 3: it installs the AWS emulator (moto's server, pinned) into a
# project-local virtualenv, starts it on a free loopback port for the AWS tests, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
venv=.venv
if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "Installing moto[server]==$MOTO_VERSION into $venv ..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
"$venv/bin/python" - "$port" <<'PY'
import sys, time, urllib.request
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/data.json", timeout=1)
        break
    except Exception:
        if time.time() > deadline:
            sys.exit("moto's server did not start: see target/moto.log")
        time.sleep(0.2)
PY
export AWS_EMULATOR_URL="http://127.0.0.1:$port"
echo "AWS emulator (moto $MOTO_VERSION) on $AWS_EMULATOR_URL"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# --all-targets also runs each criterion bench once, so benches cannot rot.
cargo test --all-targets --locked
