#!/usr/bin/env bash
# Starts a Kafka-protocol broker (tansu, in memory) on 127.0.0.1:${KAFKA_PORT:-9092} and creates
# the topic kinetick reads, ${KAFKA_TOPIC:-kinetick-ticks} with ${KAFKA_PARTITIONS:-4} partitions,
# after scripts/local-aws.sh has started the AWS emulator for the rest of `kinetick run` (tables,
# lake bucket, alert topic; LOCAL_AWS=0 skips it, e.g. when it runs already). Prints the
# environment to run kinetick against them.
# Stop the broker with: kill $(cat target/local-kafka.pid)  (and the emulator as local-aws.sh says)
set -euo pipefail
cd "$(dirname "$0")/.."

KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_TOPIC=${KAFKA_TOPIC:-kinetick-ticks}
KAFKA_PARTITIONS=${KAFKA_PARTITIONS:-4}
if [ "${LOCAL_AWS:-1}" != 0 ]; then
  scripts/local-aws.sh
fi
source scripts/moto.sh
source scripts/kafka.sh
ensure_moto
ensure_kafka_broker
start_kafka_broker "$KAFKA_PORT" target/local-kafka.log
echo "$kafka_broker_pid" > target/local-kafka.pid
"$(kafka_broker_bin)" topic create "$KAFKA_TOPIC" --partitions "$KAFKA_PARTITIONS" \
  --broker "tcp://127.0.0.1:$KAFKA_PORT"

cat <<SH
# The Kafka broker runs on 127.0.0.1:$KAFKA_PORT. To run kinetick on its topic $KAFKA_TOPIC:
export KINETICK_SOURCE__KIND=kafka KINETICK_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT KINETICK_KAFKA__TOPIC=$KAFKA_TOPIC
# Simulated ticks into the topic (with the export above; Ctrl-C to stop):
#   kinetick produce --topic $KAFKA_TOPIC
# and the pipeline on it, with the AWS settings printed above:
#   kinetick run
SH
