"""Deploys deploy/ecs/template.yaml on the AWS emulator and runs kinetick as the stack's ECS
service would (run by scripts/check-deploy.sh).

  check_stack.py TEMPLATE KINETICK_BIN    with AWS_EMULATOR_URL set (moto's server)

The stack is created with CreateStack; the service's task definition is read back from ECS and
its container run here as ECS would run it: the same command and environment, plus only what the
emulator needs (endpoint, credentials, path-style S3) and a free port for the health endpoint.
kinetick produce writes ticks (some malformed) into the stack's stream. Then: the container's
health check command passes; every valid tick lands in the stack's table (with the attribute its
TTL is on) and lake, each malformed one in the lake's dead letters with its reason; SIGTERM ends
the run with exit 0 after it checkpointed every shard in the lease table; RecordsProcessed is in
the stack's metrics namespace and alerts reach the stack's topic. Last, the stack is deleted: the
stream, the tables and the bucket stay, with their data (DeletionPolicy Retain).

moto cannot create every resource type of the template: those are taken out first, with what
refers to them (NOT_ON_EMULATOR says which and where they are checked instead); the check fails if
the template gains a type moto is not known to create, or if a kept resource refers to one taken
out (it would be deployed without it)."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.exceptions
import duckdb

from cfn_template import load

# Resource types moto 5.2.5's CloudFormation does not implement (it skips them, then fails on the
# first reference to one), and what covers them instead.
NOT_ON_EMULATOR = {
    "AWS::S3::BucketPolicy": "the TLS-only policy (cfn-lint; the emulator is plain HTTP anyway)",
    "AWS::SNS::TopicPolicy": "who may publish alarms (cfn-lint)",
    "AWS::SNS::Subscription": "the e-mail subscription (this check subscribes a queue itself)",
    "AWS::Logs::MetricFilter": "ERROR log lines (check_template.py metrics)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "task scaling (no task runs on the emulator)",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "task scaling (check_template.py metrics)",
    "AWS::CloudWatch::Alarm": "alarms (check_template.py metrics)",
    "AWS::Glue::Database": "the lake's catalog (check_athena.py)",
    "AWS::Glue::Table": "the lake's table (check_athena.py)",
    "AWS::Athena::WorkGroup": "Athena (check_athena.py runs the named queries in DuckDB)",
    "AWS::Athena::NamedQuery": "Athena (check_athena.py runs the named queries in DuckDB)",
}

# Resource types moto creates (it accepts, without enforcing, stream and bucket encryption, TTL,
# point-in-time recovery, bucket versioning and lifecycle rules: check_template.py durability
# checks those).
ON_EMULATOR = {
    "AWS::Kinesis::Stream",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::SNS::Topic",
    "AWS::ECS::Cluster",
    "AWS::ECS::TaskDefinition",
    "AWS::ECS::Service",
    "AWS::Logs::LogGroup",
    "AWS::IAM::Role",
    "AWS::EC2::SecurityGroup",
    "AWS::CloudWatch::Dashboard",
}

# The emulator's settings for the run, on top of the task's environment.
S3_PATH_STYLE = "KINETICK_AWS__S3_FORCE_PATH_STYLE"
HEALTH_LISTEN = "KINETICK_HEALTH__LISTEN"

TICKS = 2000
MALFORMED_RATE = "0.02"
WAIT_SECONDS = 120


def fail(message):
    sys.exit(f"check_stack: {message}")


def references(value, found):
    """Adds to `found` the logical ids `value` refers to (Ref, Fn::GetAtt, Fn::Sub variables);
    parameters and pseudo parameters too, which never name a resource."""
    if isinstance(value, list):
        for item in value:
            references(item, found)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref":
                found.add(argument)
            elif key == "Fn::GetAtt":
                found.add(argument[0])
            elif key == "Fn::Sub":
                text, local = (argument, {}) if isinstance(argument, str) else argument
                for part in text.split("${")[1:]:
                    name = part.split("}")[0].split(".")[0]
                    if not name.startswith("!") and name not in local:
                        found.add(name)
                references(local, found)
            else:
                references(argument, found)
    return found


def alarm_arns_as_text(value, alarms):
    """`value` with `${Alarm.Arn}` in Fn::Sub strings spelt out for the alarms in `alarms`
    (the ARN CloudFormation would give them), so a dashboard can list alarms not deployed."""
    if isinstance(value, list):
        return [alarm_arns_as_text(item, alarms) for item in value]
    if not isinstance(value, dict):
        return value
    rewritten = {}
    for key, argument in value.items():
        if key == "Fn::Sub":
            text, local = (argument, None) if isinstance(argument, str) else argument
            for alarm in alarms:
                text = text.replace(
                    f"${{{alarm}.Arn}}",
                    f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{alarm}",
                )
            rewritten[key] = text if local is None else [text, alarm_arns_as_text(local, alarms)]
        else:
            rewritten[key] = alarm_arns_as_text(argument, alarms)
    return rewritten


def for_emulator(template):
    """The template without the resources moto cannot create, nor the outputs and DependsOn
    entries that name them (alarm ARNs a dashboard lists are spelt out); and the names of the
    outputs taken out."""
    removed = set()
    for name, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind in NOT_ON_EMULATOR:
            removed.add(name)
        elif kind not in ON_EMULATOR:
            fail(f"{kind} is new in the template: does moto create it? Add it to ON_EMULATOR or NOT_ON_EMULATOR")
    alarms = {name for name in removed if template["Resources"][name]["Type"] == "AWS::CloudWatch::Alarm"}
    resources = {
        name: dict(r, Properties=alarm_arns_as_text(r.get("Properties", {}), alarms))
        for name, r in template["Resources"].items()
        if name not in removed
    }
    for name, resource in resources.items():
        broken = references(resource.get("Properties", {}), set()) & removed
        if broken:
            fail(f"{name} refers to {sorted(broken)}, which the emulator cannot create")
        depends = resource.get("DependsOn")
        if isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in removed]
        elif depends in removed:
            del resource["DependsOn"]
    outputs, dropped = {}, []
    for name, output in template.get("Outputs", {}).items():
        if references(output, set()) & removed:
            dropped.append(name)
        else:
            outputs[name] = output
    return dict(template, Resources=resources, Outputs=outputs), sorted(dropped)


def tail(log):
    log.seek(0)
    return log.read().decode(errors="replace")[-4000:]


def free_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def wait_for(what, ready, seconds=WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            fail(f"{what}: not within {seconds} s")
        time.sleep(0.5)


class Emulator:
    def __init__(self, url):
        self.env = {
            "AWS_ENDPOINT_URL": url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "ANOTREAL",
            "AWS_SECRET_ACCESS_KEY": "notrealrnrELgWzOk3IfjzDKtFBhDby",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        self.session = boto3.session.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_REGION"],
        )
        self.url = url

    def client(self, service):
        return self.session.client(service, endpoint_url=self.url)


def create_stack(cloudformation, name, template, parameters):
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    stack = {}

    def created():
        stack.update(cloudformation.describe_stacks(StackName=name)["Stacks"][0])
        if stack["StackStatus"] not in ("CREATE_IN_PROGRESS", "CREATE_COMPLETE"):
            fail(f"stack {name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
        return stack["StackStatus"] == "CREATE_COMPLETE"

    wait_for(f"stack {name} created", created)
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def item_count(dynamodb, table):
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
    return sum(page["Count"] for page in pages)


def objects(s3, bucket, prefix):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def main(template_path, kinetick):
    url = os.environ.get("AWS_EMULATOR_URL") or fail("AWS_EMULATOR_URL is not set")
    aws = Emulator(url)
    source = load(template_path)
    template, dropped = for_emulator(source)
    print(f"deploying without {len(source['Resources']) - len(template['Resources'])} resources "
          f"moto cannot create; outputs left out: {', '.join(dropped) or 'none'}")

    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    stack_name = f"kinetick-{os.getpid()}-{time.time_ns() % 10**9}"
    namespace = f"Kinetick-{stack_name}"
    outputs = create_stack(aws.client("cloudformation"), stack_name, template, {
        "ImageUri": "localhost/kinetick:latest",
        "VpcId": vpc,
        "Subnets": subnet,
        "ShardCount": "2",
        "MaxTasks": "2",
        "MetricsNamespace": namespace,
        "AlertEmail": "ops@example.com",
    })
    for name in ["StreamName", "TicksTableName", "LeaseTableName", "BucketName", "TopicArn",
                 "ClusterName", "ServiceName", "LogGroupName"]:
        if name not in outputs:
            fail(f"output {name} missing: {sorted(outputs)}")

    # The container as the service's task definition describes it.
    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])
    task_definition = service["services"][0]["taskDefinition"]
    container = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"][
        "containerDefinitions"][0]
    if container.get("stopTimeout", 30) < 60:
        fail(f"stopTimeout {container.get('stopTimeout')} s leaves no time for a graceful hand-off")
    health_command = container["healthCheck"]["command"]
    if health_command[:2] != ["CMD", "/usr/local/bin/kinetick"]:
        fail(f"the health check does not run kinetick: {health_command}")
    task_env = {pair["name"]: pair["value"] for pair in container["environment"]}
    for name, output in [("KINETICK_AWS__STREAM_NAME", "StreamName"),
                         ("KINETICK_AWS__TICKS_TABLE", "TicksTableName"),
                         ("KINETICK_AWS__CHECKPOINT_TABLE", "LeaseTableName"),
                         ("KINETICK_AWS__BUCKET", "BucketName"),
                         ("KINETICK_AWS__TOPIC_ARN", "TopicArn")]:
        if task_env.get(name) != outputs[output]:
            fail(f"the task's {name} is {task_env.get(name)!r}, the stack's {output} {outputs[output]!r}")

    sqs, sns = aws.client("sqs"), aws.client("sns")
    queue = sqs.create_queue(QueueName=f"{stack_name}-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=outputs["TopicArn"], Protocol="sqs", Endpoint=queue_arn)

    # kinetick reads every KINETICK_* variable as a setting: the run gets the task's and no others.
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("KINETICK_", "AWS_"))}
    base_env.update(aws.env)
    health = free_address()
    run_env = {**base_env, **task_env, S3_PATH_STYLE: "true", HEALTH_LISTEN: health}
    with tempfile.TemporaryFile() as log:
        run = subprocess.Popen([kinetick, *container["command"]], env=run_env,
                               stdout=log, stderr=subprocess.STDOUT)
        try:
            check = [kinetick, *health_command[2:]]
            check = [arg.replace(task_env[HEALTH_LISTEN], health) for arg in check]

            def healthy():
                if run.poll() is not None:
                    fail(f"kinetick run exited with {run.returncode}:\n{tail(log)}")
                return subprocess.run(check, capture_output=True).returncode == 0

            wait_for("the container's health check passes", healthy)
            produced = subprocess.run(
                [kinetick, "produce", "--stream", outputs["StreamName"], "--count", str(TICKS),
                 "--rate", "0", "--symbols", "20", "--seed", "11", "--malformed-rate", MALFORMED_RATE,
                 "--log-format", "pretty"],
                env=base_env, capture_output=True, text=True)
            if produced.returncode != 0:
                fail(f"kinetick produce failed:\n{produced.stdout}{produced.stderr}")
            ttl = source["Resources"]["TicksTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"]
            verify_run(aws, outputs, task_env["KINETICK_LAKE__PREFIX"], ttl, namespace, queue, run, log)
        finally:
            if run.poll() is None:
                run.kill()
    check_retained(aws, stack_name, outputs)
    print(f"check_stack: stack {stack_name} deployed on the emulator, ran kinetick as its task "
          f"definition says, and kept its data when deleted")


def check_retained(aws, stack_name, outputs):
    """Deletes the stack, as a teardown would, and checks that what holds data is still there:
    the stream, both tables and the bucket with the lake in it."""
    cloudformation = aws.client("cloudformation")
    stack_id = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackId"]
    cloudformation.delete_stack(StackName=stack_name)

    def deleted():
        status = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
        if status == "DELETE_FAILED":
            fail(f"stack {stack_name}: {status}")
        return status == "DELETE_COMPLETE"

    wait_for(f"stack {stack_name} deleted", deleted)
    try:
        aws.client("kinesis").describe_stream_summary(StreamName=outputs["StreamName"])
        dynamodb = aws.client("dynamodb")
        for table in (outputs["TicksTableName"], outputs["LeaseTableName"]):
            if not item_count(dynamodb, table):
                fail(f"table {table} is empty after the stack was deleted")
        if not objects(aws.client("s3"), outputs["BucketName"], ""):
            fail(f"bucket {outputs['BucketName']} is empty after the stack was deleted")
    except botocore.exceptions.ClientError as error:
        fail(f"deleting the stack deleted data: {error}")


def verify_run(aws, outputs, prefix, ttl, namespace, queue, run, log):
    """Waits for the run to take in every record, stops it as ECS would and checks where the
    records went."""
    dynamodb, s3 = aws.client("dynamodb"), aws.client("s3")
    bucket = outputs["BucketName"]

    def dead_letters():
        rows = []
        for key in objects(s3, bucket, f"{prefix}dead-letters/"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            rows.extend(json.loads(line) for line in body.splitlines() if line)
        return rows

    table = outputs["TicksTableName"]
    wait_for("every tick in the table or the dead letters",
             lambda: item_count(dynamodb, table) + len(dead_letters()) >= TICKS)

    # SIGTERM, as ECS stops a task: flush, checkpoint, release the leases, exit 0.
    run.send_signal(signal.SIGTERM)
    try:
        code = run.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = None
    if code != 0:
        fail(f"kinetick run ended with {code} on SIGTERM:\n{tail(log)}")

    items, rejected = item_count(dynamodb, table), dead_letters()
    if not rejected or any(not row.get("reason") for row in rejected):
        fail(f"{len(rejected)} dead letters, each with a reason expected: {rejected[:3]}")
    if items + len(rejected) != TICKS:
        fail(f"{items} items + {len(rejected)} dead letters, not {TICKS}")
    without_ttl = dynamodb.scan(TableName=table, Select="COUNT",
                                FilterExpression="attribute_not_exists(#ttl)",
                                ExpressionAttributeNames={"#ttl": ttl})["Count"]
    if without_ttl:
        fail(f"{without_ttl} items without {ttl}, the attribute the table's TTL is on")

    with tempfile.TemporaryDirectory() as lake:
        for key in objects(s3, bucket, f"{prefix}ticks/"):
            path = os.path.join(lake, key.replace("/", "_"))
            s3.download_file(bucket, key, path)
        rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/*.parquet')").fetchone()[0]
    if rows != items:
        fail(f"{rows} rows in the lake, {items} items in the table")

    shards = aws.client("kinesis").list_shards(StreamName=outputs["StreamName"])["Shards"]
    leases = dynamodb.scan(TableName=outputs["LeaseTableName"])["Items"]
    checkpointed = {i["shard_id"]["S"] for i in leases if "sequence_number" in i}
    missing = {s["ShardId"] for s in shards} - checkpointed
    if missing:
        fail(f"shards not checkpointed in the lease table: {sorted(missing)}")

    cloudwatch = aws.client("cloudwatch")
    processed = sum(
        point["Sum"]
        for metric in cloudwatch.list_metrics(Namespace=namespace, MetricName="RecordsProcessed")["Metrics"]
        for point in cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName="RecordsProcessed", Dimensions=metric["Dimensions"],
            StartTime=time.time() - 3600, EndTime=time.time() + 600, Period=60, Statistics=["Sum"],
        )["Datapoints"]
    )
    if processed != TICKS:
        fail(f"RecordsProcessed in {namespace} sums to {processed}, not {TICKS}")

    alerts = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    if not alerts.get("Messages"):
        fail("no alert reached the stack's topic")
    print(f"{items} ticks in the table (all with {ttl}) and the lake, {len(rejected)} dead letters "
          f"with reasons, {len(checkpointed)} shards checkpointed, RecordsProcessed {processed:.0f}, "
          f"alerts on the topic")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
