# Shared by scripts/test.sh, scripts/local-aws.sh and scripts/local-kafka.sh (source it from the
# repository root): installs the AWS emulator (moto's server, pinned) into .venv and starts it on
# loopback, through scripts/moto_server.py (which applies DynamoDB and Kinesis requests one at a
# time, as they are atomic in AWS and not in moto).

MOTO_VERSION=5.2.5
venv=.venv

# Installs moto[server]==$MOTO_VERSION into .venv unless it is there already.
ensure_moto() {
  if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "Installing moto[server]==$MOTO_VERSION into $venv ..."
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
}

# Prints a free loopback port.
free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto PORT LOG: starts the server in the background, sets moto_pid, and returns once it
# answers (or fails after 60 s, pointing to LOG).
start_moto() {
  local port=$1 log=$2
  mkdir -p "$(dirname "$log")"
  "$venv/bin/python" scripts/moto_server.py 127.0.0.1 "$port" > "$log" 2>&1 &
  moto_pid=$!
  "$venv/bin/python" - "$port" "$log" <<'PY'
import sys, time, urllib.request
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/data.json", timeout=1)
        break
    except Exception:
        if time.time() > deadline:
            sys.exit(f"moto's server did not start: see {sys.argv[2]}")
        time.sleep(0.2)
PY
}
