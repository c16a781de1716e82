#!/usr/bin/env bash
# Starts the AWS emulator (moto's server) on 127.0.0.1:${PORT:-4566} and creates what
# `kinetick run` needs: the Kinesis stream, the ticks and lease tables, the lake bucket, the alert
# topic and a queue subscribed to it. Prints the environment to run kinetick against it.
# Stop the emulator with: kill $(cat target/local-aws.pid)
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
PORT=${PORT:-4566}
SHARDS=${SHARDS:-4}
venv=.venv
if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
mkdir -p target
"$venv/bin/moto_server" -H 127.0.0.1 -p "$PORT" > target/local-aws.log 2>&1 &
echo $! > target/local-aws.pid

"$venv/bin/python" - "$PORT" "$SHARDS" <<'PY'
import sys, time, urllib.request
import boto3

port, shards = sys.argv[1], int(sys.argv[2])
endpoint = f"http://127.0.0.1:{port}"
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1)
        break
    except Exception:
        if time.time() > deadline:
            sys.exit("moto's server did not start: see target/local-aws.log")
        time.sleep(0.2)

session = boto3.session.Session(aws_access_key_id="ANOTREAL", aws_secret_access_key="notreal", region_name="us-east-1")
client = lambda name: session.client(name, endpoint_url=endpoint)
client("kinesis").create_stream(StreamName="kinetick-ticks", ShardCount=shards)
dynamodb = client("dynamodb")
dynamodb.create_table(
    TableName="kinetick-ticks", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"}, {"AttributeName": "timestamp", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"}, {"AttributeName": "timestamp", "KeyType": "RANGE"}])
dynamodb.create_table(
    TableName="kinetick-leases", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "shard_id", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "shard_id", "KeyType": "HASH"}])
client("s3").create_bucket(Bucket="kinetick-lake")
topic = client("sns").create_topic(Name="kinetick-alerts")["TopicArn"]
sqs = client("sqs")
queue = sqs.create_queue(QueueName="kinetick-alerts")["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

print(f"""# The emulator runs on {endpoint}. To run kinetick against it:
export AWS_ENDPOINT_URL={endpoint} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=ANOTREAL AWS_SECRET_ACCESS_KEY=notreal
export KINETICK_AWS__BUCKET=kinetick-lake KINETICK_AWS__S3_FORCE_PATH_STYLE=true
export KINETICK_AWS__TOPIC_ARN={topic}
# alerts arrive in the queue {queue}""")
PY
