#!/usr/bin/env bash
# A longer chaos series than the test suite's single trial: CHAOS_TRIALS trials (default 10) of
# random kill -9 / SIGTERM of kinetick workers mid-stream, each checked for exactly-once output
# and unchanged computed values. CHAOS_SEED replays a series. Then as many trials of the stalled
# owner (tests/aws_stall.rs: a worker frozen past its leases, then resumed) and of alerts under
# kill -9 (tests/aws_alerts.rs: repeats only of publishes in flight at the kill).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/moto.sh
ensure_moto
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill "${moto_pid:-}" 2>/dev/null || true' EXIT
start_moto "$port" target/moto-chaos.log
export AWS_EMULATOR_URL="http://127.0.0.1:$port"
trials=${CHAOS_TRIALS:-10}
CHAOS_TRIALS=$trials cargo test --locked --test aws_chaos -- --nocapture
for trial in $(seq "$trials"); do
  echo "stall trial $trial of $trials"
  cargo test --locked --test aws_stall -- --nocapture
done
ALERT_KILL_TRIALS=$trials cargo test --locked --test aws_alerts -- --nocapture
