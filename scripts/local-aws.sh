#!/usr/bin/env bash
# Starts the AWS emulator (moto's server) on 127.0.0.1:${PORT:-4566} and creates what
# `kinetick run` needs: the Kinesis stream, the ticks and lease tables, the lake bucket, the alert
# topic and a queue subscribed to it. Prints the environment to run kinetick against it.
# Stop the emulator with: kill $(cat target/local-aws.pid)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-4566}
SHARDS=${SHARDS:-4}
source scripts/moto.sh
ensure_moto
start_moto "$PORT" target/local-aws.log
echo "$moto_pid" > target/local-aws.pid

"$venv/bin/python" - "$PORT" "$SHARDS" <<'PY'
import sys
import boto3

port, shards = sys.argv[1], int(sys.argv[2])
endpoint = f"http://127.0.0.1:{port}"

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
