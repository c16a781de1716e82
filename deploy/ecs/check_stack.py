"""Deploys deploy/ecs/template.yaml on the AWS emulator and runs kinetick as the stack's ECS
service would (run by scripts/check-deploy.sh).

  check_stack.py TEMPLATE KINETICK_BIN [kinesis|kafka]
      with AWS_EMULATOR_URL set (moto's server); kafka also with KAFKA_BOOTSTRAP_SERVERS (a
      Kafka-protocol broker without TLS or SASL) and KAFKA_BROKER_BIN (its binary, which creates
      the topic), as scripts/test.sh and scripts/check-deploy.sh provide

The stack is created with CreateStack (with kafka: SourceKind kafka, on a new topic of
PARTITIONS partitions on that broker); the service's task definition is read back from ECS and
its container run here as ECS would run it: the same command and environment, plus only what the
emulator needs (endpoint, credentials, path-style S3) and a free port for the health endpoint.
kinetick produce writes ticks (some malformed) into the stack's stream (with kafka: the topic,
with the task's [kafka] settings). Then: the container's health check command passes; every
valid tick lands in the stack's table (with the attribute its TTL is on) and lake, each malformed
one in the lake's dead letters with its reason; SIGTERM ends the run with exit 0 after it
checkpointed every shard (partition) in the lease table; RecordsProcessed is in the stack's
metrics namespace (with kafka also RecordsBehindLatest, for every partition) and alerts reach the
stack's topic. With kafka, the stack has no stream and its task role no Kinesis right. Then the
daily report and the daily compaction: moto's CloudFormation skips AWS::Scheduler::Schedule (the
stack completes without it), so each schedule is created through the Scheduler API from the
template's properties with the stack's values, read back, and its command override run as the
scheduled task would run it (the task's environment). The report must land in the bucket under
reports/dt=<today, UTC>/ with its media types, and its digest reach a queue subscribed with the
e-mail subscription's filter policy. The compaction's command (--date yesterday) must succeed,
and run for each date the run wrote leave one file per date with the same rows, and a manifest.
The schedules' role, as IAM holds it, may run only the task definition's family in the cluster
and pass only the task definition's two roles and the lake maintenance role, which the
schedules' tasks run as. Last, the stack is deleted: the stream, the tables
and the bucket stay, with their data (DeletionPolicy Retain).

moto cannot create every resource type of the template: those are taken out first, with what
refers to them (NOT_ON_EMULATOR says which and where they are checked instead); the check fails if
the template gains a type moto is not known to create, or if a kept resource refers to one taken
out (it would be deployed without it)."""

import ast
import contextlib
import datetime
import fnmatch
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

from cfn_template import Deployed, Resolver, load

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
    "AWS::Scheduler::Schedule": "the daily report and compaction (created here through the Scheduler API, then run; "
                                "check_template.py schedule)",
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
    "AWS::IAM::ManagedPolicy",
    "AWS::EC2::SecurityGroup",
    "AWS::CloudWatch::Dashboard",
}

# The emulator's settings for the run, on top of the task's environment.
S3_PATH_STYLE = "KINETICK_AWS__S3_FORCE_PATH_STYLE"
HEALTH_LISTEN = "KINETICK_HEALTH__LISTEN"

TICKS = 2000
MALFORMED_RATE = "0.02"
WAIT_SECONDS = 120
# Partitions of the topic of a Kafka source.
PARTITIONS = 2


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


def decide_optional_items(value, resolver):
    """`value` with each list item `!If [condition, item, !Ref AWS::NoValue]` (or the other way
    round) decided for the stack's parameters: CloudFormation leaves out an item that is
    AWS::NoValue, moto keeps it as null (an environment variable without a name)."""
    if isinstance(value, dict):
        return {key: decide_optional_items(item, resolver) for key, item in value.items()}
    if not isinstance(value, list):
        return value
    kept = []
    for item in value:
        if isinstance(item, dict) and list(item) == ["Fn::If"] and {"Ref": "AWS::NoValue"} in item["Fn::If"][1:]:
            name, then, otherwise = item["Fn::If"]
            item = then if resolver.condition(name) else otherwise
            if item == {"Ref": "AWS::NoValue"}:
                continue
        kept.append(decide_optional_items(item, resolver))
    return kept


def for_emulator(template, parameters):
    """The template without the resources moto cannot create, nor the outputs and DependsOn
    entries that name them (alarm ARNs a dashboard lists are spelt out), with optional list
    items decided for `parameters`; and the names of the outputs taken out."""
    template = dict(template, Resources=decide_optional_items(template["Resources"], Resolver(template, parameters)))
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


class KafkaTopic:
    """A new topic of PARTITIONS partitions on the broker at KAFKA_BOOTSTRAP_SERVERS."""

    def __init__(self, name):
        self.servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or fail(
            "KAFKA_BOOTSTRAP_SERVERS is not set (a Kafka broker for the kafka source)")
        broker = os.environ.get("KAFKA_BROKER_BIN") or fail("KAFKA_BROKER_BIN is not set (it creates the topic)")
        self.name = name
        self.port = self.servers.split(",")[0].rsplit(":", 1)[1]
        created = subprocess.run([broker, "topic", "create", name, "--partitions", str(PARTITIONS),
                                  "--broker", f"tcp://{self.servers.split(',')[0]}"], capture_output=True, text=True)
        if created.returncode != 0:
            fail(f"creating topic {name}: {created.stdout}{created.stderr}")

    def parameters(self):
        return {"SourceKind": "kafka", "KafkaBootstrapServers": self.servers, "KafkaTopic": self.name,
                "KafkaPort": self.port, "KafkaTls": "false", "KafkaSaslMechanism": "none"}

    def shards(self):
        return {f"{self.name}-{partition}" for partition in range(PARTITIONS)}


def main(template_path, kinetick, source_kind="kinesis"):
    if source_kind not in ("kinesis", "kafka"):
        sys.exit(__doc__)
    url = os.environ.get("AWS_EMULATOR_URL") or fail("AWS_EMULATOR_URL is not set")
    aws = Emulator(url)
    stack_name = f"kinetick-{os.getpid()}-{time.time_ns() % 10**9}"
    kafka = KafkaTopic(f"{stack_name}-ticks") if source_kind == "kafka" else None

    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    namespace = f"Kinetick-{stack_name}"
    parameters = {
        "ImageUri": "localhost/kinetick:latest",
        "VpcId": vpc,
        "Subnets": subnet,
        "ShardCount": "2",
        "MaxTasks": "2",
        "MetricsNamespace": namespace,
        "AlertEmail": "ops@example.com",
        "LakeTargetFileSize": "64MiB",
        "LakeMaxFileAge": "2m",
        **(kafka.parameters() if kafka else {}),
    }
    source = load(template_path)
    template, dropped = for_emulator(source, parameters)
    print(f"{source_kind} source: deploying without {len(source['Resources']) - len(template['Resources'])} "
          f"resources moto cannot create; outputs left out: {', '.join(dropped) or 'none'}")
    outputs = create_stack(aws.client("cloudformation"), stack_name, template, parameters)
    for name in ["TicksTableName", "LeaseTableName", "BucketName", "TopicArn", "ClusterName",
                 "ServiceName", "LogGroupName", "TaskSecurityGroupId"] + ([] if kafka else ["StreamName"]):
        if name not in outputs:
            fail(f"output {name} missing: {sorted(outputs)}")
    if kafka:
        check_kafka_stack(aws, stack_name, outputs, kafka)

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
    for name, output in [("KINETICK_AWS__TICKS_TABLE", "TicksTableName"),
                         ("KINETICK_AWS__CHECKPOINT_TABLE", "LeaseTableName"),
                         ("KINETICK_AWS__BUCKET", "BucketName"),
                         ("KINETICK_AWS__TOPIC_ARN", "TopicArn")] + ([] if kafka else [
                         ("KINETICK_AWS__STREAM_NAME", "StreamName")]):
        if task_env.get(name) != outputs[output]:
            fail(f"the task's {name} is {task_env.get(name)!r}, the stack's {output} {outputs[output]!r}")
    for name, value in [("KINETICK_LAKE__TARGET_FILE_SIZE", "64MiB"), ("KINETICK_LAKE__MAX_FILE_AGE", "2m")]:
        if task_env.get(name) != value:
            fail(f"the task's {name} is {task_env.get(name)!r}, not the stack's parameter {value!r}")
    expected_source = {"KINETICK_SOURCE__KIND": source_kind}
    if kafka:
        expected_source.update({"KINETICK_KAFKA__BOOTSTRAP_SERVERS": kafka.servers, "KINETICK_KAFKA__TOPIC": kafka.name,
                                "KINETICK_KAFKA__TLS": "false", "KINETICK_KAFKA__SASL_MECHANISM": "none"})
    else:
        expected_source["KINETICK_AWS__STREAM_NAME"] = outputs["StreamName"]
    got_source = {k: v for k, v in task_env.items()
                  if k.startswith(("KINETICK_SOURCE__", "KINETICK_KAFKA__", "KINETICK_AWS__STREAM_NAME"))}
    if got_source != expected_source:
        fail(f"the task's source settings are {got_source}, not {expected_source}")

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

            def records_read():
                """The records the run has read, as its health endpoint counts them (none while
                it answers unhealthy)."""
                if run.poll() is not None:
                    fail(f"kinetick run exited with {run.returncode}:\n{tail(log)}")
                answer = subprocess.run(check, capture_output=True, text=True)
                return json.loads(answer.stdout or "{}").get("records", 0) if answer.returncode == 0 else 0

            # A producer of the topic uses the [kafka] settings of the task (brokers, TLS, SASL).
            into, producer_env = (["--topic", kafka.name], {**base_env, **{
                k: v for k, v in task_env.items() if k.startswith("KINETICK_KAFKA__")}}) if kafka \
                else (["--stream", outputs["StreamName"]], base_env)
            produced = subprocess.run(
                [kinetick, "produce", *into, "--count", str(TICKS),
                 "--rate", "0", "--symbols", "20", "--seed", "11", "--malformed-rate", MALFORMED_RATE,
                 # News on about one tick in 100, so alerts reach the topic.
                 "--jumps-per-session", "2340",
                 "--log-format", "pretty"],
                env=producer_env, capture_output=True, text=True)
            if produced.returncode != 0:
                fail(f"kinetick produce failed:\n{produced.stdout}{produced.stderr}")
            ttl = source["Resources"]["TicksTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"]
            shards = kafka.shards() if kafka else {
                s["ShardId"] for s in aws.client("kinesis").list_shards(StreamName=outputs["StreamName"])["Shards"]}
            verify_run(aws, outputs, task_env["KINETICK_LAKE__PREFIX"], ttl, namespace, queue, run, log, shards,
                       kafka is not None, records_read)
        finally:
            if run.poll() is None:
                run.kill()
    check_report_schedule(aws, source, parameters, stack_name, outputs, kinetick, run_env)
    check_compact_schedule(aws, source, parameters, stack_name, outputs, kinetick, run_env)
    check_retained(aws, stack_name, outputs)
    print(f"check_stack: stack {stack_name} ({source_kind} source) deployed on the emulator, ran "
          f"kinetick as its task definition says, and kept its data when deleted")


def policy_document(document):
    """A policy document as IAM returns it: JSON (or a dict); moto gives a role's inline policy
    from a template as Python's text of the dict."""
    if not isinstance(document, str):
        return document
    try:
        return json.loads(document)
    except ValueError:
        return ast.literal_eval(document)


def check_kafka_stack(aws, stack_name, outputs, kafka):
    """A stack on a Kafka topic: no stream, and its task role has no Kinesis right. (moto leaves
    out a security group's egress rules; check_template.py sources checks them.)"""
    cloudformation, iam = aws.client("cloudformation"), aws.client("iam")
    created = cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    streams = [r["LogicalResourceId"] for r in created if r["ResourceType"] == "AWS::Kinesis::Stream"]
    names = aws.client("kinesis").list_streams()["StreamNames"]
    if streams or f"{stack_name}-ticks" in names:
        fail(f"the stack on a Kafka topic made a Kinesis stream: {streams or names}")
    (role,) = [r["PhysicalResourceId"] for r in created if r["LogicalResourceId"] == "TaskRole"]
    role = role.rsplit("/", 1)[-1]
    documents = [iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                 for name in iam.list_role_policies(RoleName=role)["PolicyNames"]]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)[
            "PolicyVersion"]["Document"])
    documents = [policy_document(d) for d in documents]
    actions = [a for d in documents for st in d["Statement"]
               for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])]
    if not actions or any(a.startswith(("kinesis:", "kafka-cluster:")) for a in actions):
        fail(f"the task role of a stack on Kafka without IAM access control may {sorted(actions)}")
    print(f"no stream; the task role may {', '.join(sorted(set(actions)))}")


def deployed_values(aws, stack_name, outputs):
    """What Ref and Fn::GetAtt give for the resources of the deployed stack that the schedules
    refer to."""
    cloudformation, ecs, iam = aws.client("cloudformation"), aws.client("ecs"), aws.client("iam")
    created = {r["LogicalResourceId"]: r["PhysicalResourceId"]
               for r in cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]}
    service = ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][0]
    values = {
        "AWS::StackName": stack_name,
        "Cluster": outputs["ClusterName"],
        "Cluster.Arn": ecs.describe_clusters(clusters=[outputs["ClusterName"]])["clusters"][0]["clusterArn"],
        "TaskDefinition": service["taskDefinition"],
        "TaskSecurityGroup": outputs["TaskSecurityGroupId"],
        "LakeBucket": outputs["BucketName"],
        "LakeBucket.Arn": f"arn:aws:s3:::{outputs['BucketName']}",
    }
    for role in ("ScheduleRole", "TaskRole", "TaskExecutionRole", "LakeMaintenanceRole"):
        values[f"{role}.Arn"] = iam.get_role(RoleName=created[role].rsplit("/", 1)[-1])["Role"]["Arn"]
    return values


def scheduler_request(props):
    """A schedule's CloudFormation properties as the Scheduler API takes them (its network
    configuration's key is awsvpcConfiguration there)."""
    request = json.loads(json.dumps(props))
    ecs = request["Target"].get("EcsParameters", {})
    if "NetworkConfiguration" in ecs:
        ecs["NetworkConfiguration"] = {"awsvpcConfiguration": ecs["NetworkConfiguration"]["AwsvpcConfiguration"]}
    return request


def schedule_role_rights(aws, role_arn):
    """(action, resource, condition) of every statement of the role's inline policies, and its
    trust policy, as IAM holds them."""
    iam = aws.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    rights = set()
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = policy_document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
        for st in document["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            rights |= {(a, r, json.dumps(st.get("Condition"), sort_keys=True)) for a in actions for r in resources}
    trust = policy_document(iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"])
    return rights, trust


@contextlib.contextmanager
def scheduled_task(aws, template, parameters, stack_name, outputs, logical_id):
    """Creates the schedule `logical_id` through the Scheduler API from the template's properties
    with the deployed stack's values, reads it back and checks that it runs the stack's task
    definition in its cluster as a role that may only run that family there and pass the task
    definition's two roles and the lake maintenance role, which the task runs as; yields its
    container override's command. Deletes it afterwards."""
    values = deployed_values(aws, stack_name, outputs)
    props = Deployed(template, parameters, values).resolve(template["Resources"][logical_id]["Properties"])
    scheduler = aws.client("scheduler")
    name = f"{stack_name}-{logical_id}"[:64]
    scheduler.create_schedule(Name=name, **scheduler_request(props))
    try:
        target = scheduler.get_schedule(Name=name)["Target"]
        ecs_parameters = target["EcsParameters"]
        if (target["Arn"], ecs_parameters["TaskDefinitionArn"], target["RoleArn"]) != (
                values["Cluster.Arn"], values["TaskDefinition"], values["ScheduleRole.Arn"]):
            fail(f"{logical_id} runs {ecs_parameters['TaskDefinitionArn']} on {target['Arn']} as {target['RoleArn']}")

        # Its role, as deployed: that task definition family in that cluster, its two roles and
        # the lake maintenance role.
        task_definition = aws.client("ecs").describe_task_definition(
            taskDefinition=values["TaskDefinition"])["taskDefinition"]
        rights, trust = schedule_role_rights(aws, target["RoleArn"])
        principals = [st["Principal"] for st in trust["Statement"]]
        if principals != [{"Service": "scheduler.amazonaws.com"}]:
            fail(f"the schedules' role is assumed by {principals}")
        run_task = [(r, c) for a, r, c in rights if a == "ecs:RunTask"]
        to_ecs = json.dumps({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}, sort_keys=True)
        passed = {r for a, r, c in rights if a == "iam:PassRole" and c == to_ecs}
        cluster = json.dumps({"ArnEquals": {"ecs:cluster": values["Cluster.Arn"]}}, sort_keys=True)
        if len(run_task) != 1 or not fnmatch.fnmatchcase(values["TaskDefinition"], run_task[0][0]) \
                or run_task[0][1] != cluster or f"/{task_definition['family']}:" not in run_task[0][0]:
            fail(f"the schedules' role may run {run_task}, not the family {task_definition['family']} in the cluster")
        # moto's CloudFormation keeps no role in the task definition: then the stack's roles, which
        # the template's task definition names (check_template.py schedule).
        roles = {task_definition.get("executionRoleArn", values["TaskExecutionRole.Arn"]),
                 task_definition.get("taskRoleArn", values["TaskRole.Arn"])}
        roles.add(values["LakeMaintenanceRole.Arn"])
        if passed != roles or len(roles) != 3 or len(rights) != 4:
            fail(f"the schedules' role may {sorted(rights)}")

        overrides = json.loads(target["Input"])
        if overrides.get("taskRoleArn") != values["LakeMaintenanceRole.Arn"]:
            fail(f"{logical_id}'s task runs as {overrides.get('taskRoleArn')}, not the lake maintenance role")
        (override,) = overrides["containerOverrides"]
        if override["name"] != task_definition["containerDefinitions"][0]["name"]:
            fail(f"{logical_id} overrides the container {override['name']!r}, which the task definition lacks")
        yield override["command"]
    finally:
        scheduler.delete_schedule(Name=name)


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def check_report_schedule(aws, template, parameters, stack_name, outputs, kinetick, run_env):
    """Creates the daily report's schedule as the template describes it, runs its command as the
    scheduled task would, and checks the report in the bucket and the digest on the topic."""
    with scheduled_task(aws, template, parameters, stack_name, outputs, "ReportSchedule") as command:
        # The digest goes to whoever the e-mail subscription's filter admits: a queue with it.
        sqs, sns = aws.client("sqs"), aws.client("sns")
        queue = sqs.create_queue(QueueName=f"{stack_name}-digest")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        subscription = Resolver(template, parameters).resolve(
            template["Resources"]["AlertEmailSubscription"]["Properties"])
        sns.subscribe(TopicArn=outputs["TopicArn"], Protocol="sqs", Endpoint=queue_arn, Attributes={
            "FilterPolicy": json.dumps(subscription["FilterPolicy"]),
            "FilterPolicyScope": subscription["FilterPolicyScope"]})

        # The scheduled task: the task definition's container with the command override.
        days = {utc_today().isoformat()}
        report = subprocess.run([kinetick, *command], env=run_env, capture_output=True, text=True,
                                timeout=WAIT_SECONDS)
        days.add(utc_today().isoformat())
        if report.returncode != 0:
            fail(f"the scheduled kinetick report failed:\n{report.stdout}{report.stderr}")

        s3, bucket = aws.client("s3"), outputs["BucketName"]
        prefix = run_env["KINETICK_LAKE__PREFIX"]
        keys = objects(s3, bucket, f"{prefix}reports/")
        folders = {key.split("/report")[0] for key in keys if key.endswith("/report.html")}
        if len(folders) != 1:
            fail(f"not one report.html under {prefix}reports/: {keys}")
        (folder,) = folders
        date = folder.rsplit("dt=", 1)[-1]
        if folder != f"{prefix}reports/dt={date}" or date not in days:
            fail(f"the report went to {folder}, not {prefix}reports/dt=<today, UTC {sorted(days)}>")
        types = {key[len(folder) + 1:]: s3.head_object(Bucket=bucket, Key=key)["ContentType"] for key in keys}
        charts = {k: t for k, t in types.items() if k.startswith("charts/")}
        want = {"report.html": "text/html; charset=utf-8", "summary.json": "application/json",
                **{k: "image/svg+xml" for k in charts}}
        if types != want or not charts:
            fail(f"the report's objects are {types}, not {want} with charts")
        summary = json.loads(s3.get_object(Bucket=bucket, Key=f"{folder}/summary.json")["Body"].read())
        items = item_count(aws.client("dynamodb"), outputs["TicksTableName"])
        if summary["rows"] != items or summary["lake"] != f"s3://{bucket}/{prefix}":
            fail(f"the report read {summary['rows']} rows of {summary['lake']}, the stack's lake holds {items}")

        page = f"s3://{bucket}/{folder}/report.html"
        deadline = time.monotonic() + 10
        while not (messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages")):
            if time.monotonic() > deadline:
                fail("the digest did not reach a queue with the e-mail subscription's filter policy")
            time.sleep(0.2)
        envelope = json.loads(messages[0]["Body"])
        if not envelope["Subject"].startswith(f"kinetick digest {date}: ") or page not in envelope["Message"]:
            fail(f"the digest is {envelope['Subject']!r}:\n{envelope['Message']}\nnot of {date} with {page}")
        print(f"the report's schedule, created through the Scheduler API, runs kinetick {command[0]} "
              f"as the scheduled task would: {page} with {len(charts)} charts; digest {envelope['Subject']!r}")


def lake_files(s3, bucket, prefix, directory):
    """Every tick file of the lake, downloaded into `directory`: {dt: {key: rows}}, and the
    downloaded files' paths."""
    partitions, paths = {}, []
    for key in objects(s3, bucket, f"{prefix}ticks/"):
        if not key.endswith(".parquet"):
            continue
        path = os.path.join(directory, key.replace("/", "_"))
        s3.download_file(bucket, key, path)
        rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
        partitions.setdefault(key.split("/dt=", 1)[1].split("/", 1)[0], {})[key] = rows
        paths.append(path)
    return partitions, paths


def check_compact_schedule(aws, template, parameters, stack_name, outputs, kinetick, run_env):
    """Creates the daily compaction's schedule as the template describes it and runs its command
    as the scheduled task would, on the lake the run wrote. Its `--date yesterday` finds nothing
    there unless the run crossed midnight (UTC), so the same command is then run for each date the
    run wrote: each has one file after, and the lake the same rows."""
    s3, bucket = aws.client("s3"), outputs["BucketName"]
    prefix = run_env["KINETICK_LAKE__PREFIX"]
    with scheduled_task(aws, template, parameters, stack_name, outputs, "CompactSchedule") as command, \
            tempfile.TemporaryDirectory() as before_dir, tempfile.TemporaryDirectory() as after_dir:
        before, before_paths = lake_files(s3, bucket, prefix, before_dir)
        if not before or all(len(files) < 2 for files in before.values()):
            fail(f"the run wrote no date of two files or more to compact: {before}")

        def compact(command):
            done = subprocess.run([kinetick, *command], env=run_env, capture_output=True, text=True,
                                  timeout=WAIT_SECONDS)
            if done.returncode != 0:
                fail(f"kinetick {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
            return done.stdout

        yesterdays = {(utc_today() - datetime.timedelta(days=1)).isoformat()}
        scheduled = compact(command)
        yesterdays.add((utc_today() - datetime.timedelta(days=1)).isoformat())
        (date_index,) = [i + 1 for i, arg in enumerate(command) if arg == "--date"]
        if not any(scheduled.startswith(f"{day}  ") for day in yesterdays):
            fail(f"the scheduled kinetick compact did not compact yesterday (UTC {sorted(yesterdays)}):\n{scheduled}")
        for date in sorted(set(before) - yesterdays):
            compact([*command[:date_index], date, *command[date_index + 1:]])

        after, after_paths = lake_files(s3, bucket, prefix, after_dir)
        for date, files in before.items():
            if sum(files.values()) != sum(after.get(date, {}).values()) or len(after.get(date, {})) != 1:
                fail(f"dt={date}: {len(files)} files of {sum(files.values())} rows before the compaction, "
                     f"after it {after.get(date)}")
            if not objects(s3, bucket, f"{prefix}compaction/dt={date}/"):
                fail(f"dt={date} was compacted without a manifest under {prefix}compaction/dt={date}/")
        read = "SELECT * FROM read_parquet({})"
        for one, other in ((before_paths, after_paths), (after_paths, before_paths)):
            extra = duckdb.sql(f"SELECT count(*) FROM ({read.format(one)} EXCEPT ALL {read.format(other)})").fetchone()[0]
            if extra:
                fail(f"{extra} rows differ between the lake before and after the compaction")
    dates = ", ".join(f"{d}: {len(before[d])} files -> 1" for d in sorted(before))
    print(f"the compaction's schedule, created through the Scheduler API, runs kinetick {command[0]} "
          f"--date yesterday as the scheduled task would; the same command for the run's dates: {dates}, "
          f"the same {sum(sum(f.values()) for f in before.values())} rows")


def check_retained(aws, stack_name, outputs):
    """Deletes the stack, as a teardown would, and checks that what holds data is still there:
    the stream (if the stack has one), both tables and the bucket with the lake in it."""
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
        if "StreamName" in outputs:
            aws.client("kinesis").describe_stream_summary(StreamName=outputs["StreamName"])
        dynamodb = aws.client("dynamodb")
        for table in (outputs["TicksTableName"], outputs["LeaseTableName"]):
            if not item_count(dynamodb, table):
                fail(f"table {table} is empty after the stack was deleted")
        if not objects(aws.client("s3"), outputs["BucketName"], ""):
            fail(f"bucket {outputs['BucketName']} is empty after the stack was deleted")
    except botocore.exceptions.ClientError as error:
        fail(f"deleting the stack deleted data: {error}")


def wait_for_partition_lag(cloudwatch, namespace, partitions):
    """Waits for the first metrics of the run (the task publishes every minute; a reader's gauges
    go with its shard at SIGTERM) and checks that RecordsBehindLatest, the lag Kafka's own tools
    cannot see as no offsets are committed, is there for every partition and 0: all was read."""
    latest = {}

    def published():
        for metric in cloudwatch.list_metrics(Namespace=namespace, MetricName="RecordsBehindLatest")["Metrics"]:
            points = cloudwatch.get_metric_statistics(
                Namespace=namespace, MetricName="RecordsBehindLatest", Dimensions=metric["Dimensions"],
                StartTime=time.time() - 3600, EndTime=time.time() + 600, Period=60, Statistics=["Maximum"],
            )["Datapoints"]
            if points:
                shard = {d["Name"]: d["Value"] for d in metric["Dimensions"]}.get("ShardId")
                latest[shard] = max(points, key=lambda p: p["Timestamp"])["Maximum"]
        return set(latest) >= partitions

    wait_for("RecordsBehindLatest published for every partition", published)
    if set(latest) != partitions or any(latest.values()):
        fail(f"RecordsBehindLatest in {namespace} is {latest}, not 0 for each of the partitions {sorted(partitions)}")


def verify_run(aws, outputs, prefix, ttl, namespace, queue, run, log, shards, kafka, records_read):
    """Waits for the run to read every record (`records_read`), stops it as ECS would and checks
    where the records went; `shards` are the stream's shards (the topic's partitions with
    `kafka`)."""
    dynamodb, s3 = aws.client("dynamodb"), aws.client("s3")
    bucket = outputs["BucketName"]

    def dead_letters():
        rows = []
        for key in objects(s3, bucket, f"{prefix}dead-letters/"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            rows.extend(json.loads(line) for line in body.splitlines() if line)
        return rows

    table = outputs["TicksTableName"]
    # The lake's files and the dead letters beside them close at lake.max-file-age (5 minutes)
    # or when the run stops, which SIGTERM tells it to do once every record is read.
    wait_for("every record read (the health endpoint's count)", lambda: records_read() >= TICKS)
    if kafka:
        wait_for_partition_lag(aws.client("cloudwatch"), namespace, shards)

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

    leases = dynamodb.scan(TableName=outputs["LeaseTableName"])["Items"]
    checkpointed = {i["shard_id"]["S"] for i in leases if "sequence_number" in i}
    missing = shards - checkpointed
    if missing:
        fail(f"shards not checkpointed in the lease table: {sorted(missing)}")

    cloudwatch = aws.client("cloudwatch")
    # moto lists a metric once per publish: each set of dimensions is summed once.
    dimension_sets = {json.dumps(metric["Dimensions"], sort_keys=True)
                      for metric in cloudwatch.list_metrics(Namespace=namespace, MetricName="RecordsProcessed")["Metrics"]}
    processed = sum(
        point["Sum"]
        for dimensions in dimension_sets
        for point in cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName="RecordsProcessed", Dimensions=json.loads(dimensions),
            StartTime=time.time() - 3600, EndTime=time.time() + 600, Period=60, Statistics=["Sum"],
        )["Datapoints"]
    )
    if processed != TICKS:
        fail(f"RecordsProcessed in {namespace} sums to {processed}, not {TICKS}")

    alerts = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    if not alerts.get("Messages"):
        fail("no alert reached the stack's topic")
    print(f"{items} ticks in the table (all with {ttl}) and the lake, {len(rejected)} dead letters "
          f"with reasons, {len(checkpointed)} shards checkpointed, RecordsProcessed {processed:.0f}"
          f"{', RecordsBehindLatest per partition' if kafka else ''}, alerts on the topic")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])
