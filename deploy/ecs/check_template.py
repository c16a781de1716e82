"""Checks of deploy/ecs/template.yaml that cfn-lint cannot make (run by scripts/check-deploy.sh).

  check_template.py TEMPLATE rules      The Rules section accepts exactly the valid parameter sets:
                                        MinTasks <= MaxTasks <= ShardCount (PROVISIONED Kinesis),
                                        known alert severities, the Kafka settings that go
                                        together; the patterns of LakePrefix, the lake's file
                                        size and age and the Kafka parameters.
  check_template.py TEMPLATE sources    For each source in SOURCES (Kinesis; Kafka without
                                        authentication, with SCRAM, with MSK IAM): the stream
                                        exists only with Kinesis; the task role reads the stream,
                                        or the one MSK cluster and topic, and nothing else of
                                        either; the execution role reads the one SASL secret (and
                                        its key through Secrets Manager) only with a password; the
                                        container's source settings, secret, egress and the
                                        outputs are those of the source; everything else is the
                                        same for every source.
  check_template.py TEMPLATE env [SOURCE]
                                        Prints the container's KINETICK_* variables (parameter
                                        defaults, or those of SOURCE) as NAME=VALUE lines, a
                                        placeholder for a secret, for a kinetick run that
                                        validates their names and values.
  check_template.py TEMPLATE table DIR  The ticks table's TTL attribute is the one kinetick wrote
                                        into DIR/table/ticks.jsonl with those variables.
  check_template.py TEMPLATE metrics SRC
                                        The dashboard body is JSON, and every metric and dimension
                                        that the alarms and the dashboard read in kinetick's
                                        namespace is one kinetick publishes (SRC: src/metrics/mod.rs),
                                        with a Kinesis and a Kafka source (whose dashboard shows
                                        RecordsBehindLatest).
  check_template.py TEMPLATE durability The stream, the tables and the bucket are retained when the
                                        stack is deleted or replaces them; the bucket is versioned,
                                        expires noncurrent versions after NoncurrentVersionDays and
                                        aborts incomplete multipart uploads.
  check_template.py TEMPLATE alarms     Every alarm that scales nothing notifies the alarm topic;
                                        the records-lost and unhealthy alarms are there, as set
                                        (with either source).
  check_template.py TEMPLATE schedule SRC
                                        The daily report and compaction: a weekday schedule after
                                        the close in New York, and a daily one at 01:30 UTC; none
                                        with an empty ReportScheduleExpression or
                                        CompactScheduleExpression (and no role without either);
                                        their targets run the task definition in the cluster with
                                        the service's network and a command override: kinetick
                                        report on the stack's lake, for today, uploaded and
                                        published to the alert topic; kinetick compact of the
                                        stack's lake for yesterday; both tasks run as the lake
                                        maintenance role. Their role may only run that task
                                        definition family in that cluster and pass the task's two
                                        roles and that one to ECS tasks. The run's task role
                                        deletes only its snapshots under checkpoints/ and lists
                                        nothing; the lake maintenance role lists only the lake's
                                        ticks/, dead-letters/ and compaction/, may only put under
                                        reports/, deletes only under ticks/ and compaction/, and
                                        may do what report and compact need; the e-mail
                                        subscription takes the digest, whose kind is the one
                                        kinetick gives it (SRC: src/report/digest.rs).
"""

import itertools
import json
import re
import sys

from cfn_template import Resolver, load, resources_of_type


def fail(message):
    sys.exit(f"check_template: {message}")


# A cluster's ARN, a SCRAM secret (MSK's names start with AmazonMSK_) and its key, as AWS spells them.
MSK_CLUSTER = "arn:aws:kafka:us-east-1:123456789012:cluster/market/2f0c61b5-7d1a-4c9e-9d4b-0e6f1c2a3b4d-3"
SCRAM_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_kinetick-Ab12Cd"
SCRAM_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BROKERS = ("b-1.market.abc123.c3.kafka.us-east-1.amazonaws.com:{port},"
           "b-2.market.abc123.c3.kafka.us-east-1.amazonaws.com:{port}")

# The sources the checks deploy in thought: parameters given on top of the defaults.
SOURCES = {
    "kinesis": {},
    "kafka": {"SourceKind": "kafka", "KafkaBootstrapServers": BROKERS.format(port=9094)},
    "kafka-scram": {
        "SourceKind": "kafka", "KafkaBootstrapServers": BROKERS.format(port=9096), "KafkaPort": "9096",
        "KafkaSaslMechanism": "scram-sha-512", "KafkaSaslUsername": "kinetick",
        "KafkaSaslSecretArn": SCRAM_SECRET, "KafkaSaslSecretKeyArn": SCRAM_KEY,
    },
    "kafka-msk-iam": {
        "SourceKind": "kafka", "KafkaBootstrapServers": BROKERS.format(port=9098), "KafkaPort": "9098",
        "KafkaSaslMechanism": "aws-msk-iam", "MskClusterArn": MSK_CLUSTER, "KafkaTopic": "ticks.v2",
    },
}

# Parameter sets the Kafka rules must accept (True) or refuse (False).
KAFKA_RULE_CASES = [
    ({"SourceKind": "kafka"}, False),  # no brokers
    ({"SourceKind": "kinesis", "KafkaSaslMechanism": "aws-msk-iam"}, True),  # Kafka settings unused
    ({**SOURCES["kafka"], "KafkaTls": "false"}, True),
    ({**SOURCES["kafka-msk-iam"], "KafkaTls": "false"}, False),
    ({**SOURCES["kafka-msk-iam"], "MskClusterArn": ""}, False),
    ({**SOURCES["kafka-scram"], "KafkaSaslUsername": ""}, False),
    ({**SOURCES["kafka-scram"], "KafkaSaslSecretArn": ""}, False),
    ({**SOURCES["kafka-scram"], "KafkaSaslSecretKeyArn": ""}, True),  # a secret on aws/secretsmanager
    ({**SOURCES["kafka-scram"], "KafkaSaslMechanism": "plain", "KafkaTls": "false"}, True),
    ({**SOURCES["kafka"], "KafkaSaslMechanism": "scram-sha-256"}, False),
]

# Values each pattern must accept (True) or refuse (False).
PATTERN_CASES = {
    "LakePrefix": [("", True), ("kinetick/", True), ("a/b-c_d.e/", True), ("kinetick", False), ("/x/", False),
                   ("a//", False)],
    "LakeTargetFileSize": [("128MiB", True), ("64MB", True), ("1 GB", True), ("134217728", True), ("128M", False),
                           ("", False), ("1.5GB", False)],
    "LakeMaxFileAge": [("5m", True), ("90s", True), ("1h", True), ("10 min", True), ("5", False), ("", False),
                       ("5d", False)],
    "KafkaBootstrapServers": [("", True), ("broker:9092", True), ("10.0.1.5:9098,10.0.2.5:9098", True),
                              ("broker", False), ("broker:9092,", False), ("a:1, b:2", False)],
    "KafkaTopic": [("kinetick-ticks", True), ("ticks.v2_eu", True), ("", False), ("ticks/eu", False)],
    "MskClusterArn": [("", True), (MSK_CLUSTER, True), ("arn:aws:kafka:us-east-1:123456789012:topic/a/b/c", False),
                      ("market", False)],
    "KafkaSaslSecretArn": [("", True), (SCRAM_SECRET, True),
                           ("arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_kinetick", False)],
    "KafkaSaslSecretKeyArn": [("", True), (SCRAM_KEY, True), ("alias/aws/secretsmanager", False)],
    "ReportScheduleExpression": [("", True), ("cron(30 16 ? * MON-FRI *)", True), ("rate(1 day)", True),
                                 ("30 16 * * 1-5", False), ("cron(30 16 ? * MON-FRI *", False)],
    "CompactScheduleExpression": [("", True), ("cron(30 1 * * ? *)", True), ("rate(1 day)", True),
                                  ("30 1 * * *", False), ("cron(30 1 * * ? *", False)],
}


def rules_accept(template, params):
    """Whether CloudFormation's Rules section accepts these parameter values."""
    resolver = Resolver(template, params)
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule["Assertions"]:
            if not resolver.resolve(assertion["Assert"]):
                return False, f"{name}: {assertion.get('AssertDescription', '')}"
    return True, None


def check_rules(template):
    params = template["Parameters"]
    tasks = range(params["MaxTasks"]["MinValue"], params["MaxTasks"]["MaxValue"] + 1)
    min_tasks = range(params["MinTasks"]["MinValue"], params["MinTasks"]["MaxValue"] + 1)
    shards = range(1, params["MaxTasks"]["MaxValue"] + 5)
    checked = 0
    for source, mode, shard_count, low, high in itertools.product(
        params["SourceKind"]["AllowedValues"], params["StreamMode"]["AllowedValues"], shards, min_tasks, tasks
    ):
        values = {**SOURCES[source], "StreamMode": mode, "ShardCount": str(shard_count),
                  "MinTasks": str(low), "MaxTasks": str(high)}
        accepted, why = rules_accept(template, values)
        # A topic's partitions are no parameter: with Kafka, ShardCount does not bound MaxTasks.
        valid = low <= high and (source == "kafka" or mode == "ON_DEMAND" or high <= shard_count)
        if accepted != valid:
            fail(f"Rules {'accept' if accepted else 'reject'} {values} ({why})")
        checked += 1
    for values, valid in KAFKA_RULE_CASES:
        accepted, why = rules_accept(template, values)
        if accepted != valid:
            fail(f"Rules {'accept' if accepted else 'reject'} {values} ({why})")
        checked += 1
    for severities, valid in [("critical", True), ("info,warning,critical", True), ("critical,urgent", False)]:
        accepted, _ = rules_accept(template, {"AlertEmailSeverities": severities})
        if accepted != valid:
            fail(f"Rules {'accept' if accepted else 'reject'} AlertEmailSeverities={severities}")
    for name, cases in PATTERN_CASES.items():
        pattern = re.compile(params[name]["AllowedPattern"])
        for value, valid in cases:
            if bool(pattern.fullmatch(value)) != valid:
                fail(f"{name} pattern {'accepts' if not valid else 'rejects'} {value!r}")
    for source, values in SOURCES.items():
        for name, value in values.items():
            pattern = params[name].get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, value):
                fail(f"source {source}: {name}={value!r} does not match the parameter's pattern")
            if "AllowedValues" in params[name] and value not in [str(v) for v in params[name]["AllowedValues"]]:
                fail(f"source {source}: {name}={value!r} is not an allowed value")
    print(f"check_template: Rules give the expected verdict for {checked} parameter sets; "
          f"{', '.join(PATTERN_CASES)} patterns ok")


def container(template, params=None):
    (definition,) = resources_of_type(template, "AWS::ECS::TaskDefinition").values()
    resolved = Resolver(template, params).resolve(definition["Properties"])
    (container,) = resolved["ContainerDefinitions"]
    return container


def kinetick_env(template, params=None):
    env = {e["Name"]: e["Value"] for e in container(template, params)["Environment"]}
    return {name: value for name, value in env.items() if name.startswith("KINETICK_")}


def print_env(template, source="kinesis"):
    if source not in SOURCES:
        fail(f"no source {source!r}: one of {', '.join(SOURCES)}")
    env = kinetick_env(template, SOURCES[source])
    # ECS injects a secret's value; kinetick only needs one to be there.
    for secret in container(template, SOURCES[source]).get("Secrets", []):
        env[secret["Name"]] = "not-the-secret"
    for name, value in env.items():
        if "\n" in value:
            fail(f"{name} has a line break")
        print(f"{name}={value}")


def check_table(template, out_dir):
    env = kinetick_env(template)
    (table,) = [
        r for r in resources_of_type(template, "AWS::DynamoDB::Table").values()
        if {k["AttributeName"] for k in r["Properties"]["KeySchema"]} == {"symbol", "timestamp"}
    ]
    ttl = table["Properties"]["TimeToLiveSpecification"]
    if not ttl.get("Enabled"):
        fail("the ticks table has TTL disabled")
    if "KINETICK_TABLE__TTL" not in env:
        fail("the task sets no KINETICK_TABLE__TTL by default, so kinetick writes no TTL attribute")
    with open(f"{out_dir}/table/ticks.jsonl", encoding="utf-8") as f:
        items = [json.loads(line) for line in itertools.islice(f, 1000)]
    if not items:
        fail("the demo wrote no table items")
    missing = [i["symbol"]["S"] for i in items if "N" not in i.get(ttl["AttributeName"], {})]
    if missing:
        fail(f"{len(missing)} of {len(items)} items lack the TTL attribute {ttl['AttributeName']} (N)")
    print(f"check_template: table items carry the TTL attribute {ttl['AttributeName']} the table expires on")


def published_metrics(source_path):
    """Metric names kinetick publishes, read from its metrics module: (all, per ShardId, per
    WorkerId). Fails if the module no longer looks as expected."""
    with open(source_path, encoding="utf-8") as f:
        source = f.read()
    names = set(re.findall(r'=> "([A-Za-z0-9]+)",', source)) | set(re.findall(r'name: "([A-Za-z0-9]+)",', source))
    per_shard = set(re.findall(r'ShardGauge::\w+ => "([A-Za-z0-9]+)",', source))
    worker_match = re.search(r"fn per_worker\(self\) -> bool \{\s*matches!\(\s*self,\s*([^)]*)\)", source)
    counter_names = dict(re.findall(r'Counter::(\w+) => "([A-Za-z0-9]+)",', source))
    if not (names and per_shard and worker_match and counter_names and '"LeasesHeld"' in source):
        fail(f"{source_path} no longer has the shape this check reads metric names from")
    per_worker = {"LeasesHeld"} | {
        counter_names[v.split("::")[1].strip()] for v in worker_match.group(1).split("|")
    }
    return names, per_shard, per_worker


def check_metrics(template, source_path):
    names, per_shard, per_worker = published_metrics(source_path)
    counts = [f"{metric_references(template, SOURCES[source], names, per_shard, per_worker)} with {source}"
              for source in ("kinesis", "kafka")]
    print(f"check_template: {' and '.join(counts)} metric references in alarms and dashboard, "
          f"all published by kinetick")


def metric_references(template, params, names, per_shard, per_worker):
    """Checks the metrics that the alarms and the dashboard read with these parameters; returns
    how many references there are."""
    resolver = Resolver(template, params)
    kafka = params.get("SourceKind") == "kafka"
    namespace = resolver.ref("MetricsNamespace")
    filters = {
        t["MetricName"]
        for r in resources_of_type(template, "AWS::Logs::MetricFilter").values()
        for t in resolver.resolve(r["Properties"])["MetricTransformations"]
    }
    known = names | filters
    used = []  # (where, metric, dimension or None)

    def by_dimension(dimension, metric, where):
        expected = {"ShardId": per_shard, "WorkerId": per_worker, None: known - per_shard - per_worker}[dimension]
        if metric not in expected:
            fail(f"{where}: {metric} is not published {'per ' + dimension if dimension else 'without a dimension'}")
        used.append(metric)

    def expressions(text, where):
        for dimension, metric in re.findall(r'\{\\?"?' + re.escape(namespace) + r'\\?"?,(\w+)\} MetricName=\\?"(\w+)', text):
            by_dimension(dimension, metric, where)
        for metric, dimension in re.findall(r'SELECT \w+\((\w+)\) FROM SCHEMA\("' + re.escape(namespace) + r'", (\w+)\)', text):
            by_dimension(dimension, metric, where)

    created = resolver.resources()
    for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        if name not in created:
            continue
        props = created[name]["Properties"]
        if props.get("Namespace") == namespace:
            by_dimension(None, props["MetricName"], name)
        for query in props.get("Metrics", []):
            stat = query.get("MetricStat", {}).get("Metric", {})
            if stat.get("Namespace") == namespace:
                by_dimension(None, stat["MetricName"], name)
            expressions(query.get("Expression", ""), name)

    for name, dashboard in resources_of_type(template, "AWS::CloudWatch::Dashboard").items():
        if name not in created:
            continue
        body = created[name]["Properties"]["DashboardBody"]
        try:
            widgets = json.loads(body)["widgets"]
        except (ValueError, KeyError) as error:
            fail(f"{name}: the dashboard body is not valid JSON with widgets: {error}")
        for widget in widgets:
            for line in widget.get("properties", {}).get("metrics", []):
                if isinstance(line[0], dict):
                    expressions(line[0].get("expression", ""), f"{name} widget {widget['properties'].get('title')}")
                elif line[0] == namespace:
                    dimension = line[2] if len(line) > 2 and isinstance(line[2], str) else None
                    by_dimension(dimension, line[1], f"{name} widget {widget['properties'].get('title')}")
    source = "Kafka" if kafka else "Kinesis"
    for required in [
        "RecordsProcessed", "MillisBehindLatest", "DeadLetters", "AlertsPublished", "EndToEndLatency",
        "LeasesHeld", "CheckpointLag", "KinesisRequests", "DynamoDBRequests", "S3Requests",
        "SNSRequests", "CloudWatchRequests",
    ] + (["RecordsBehindLatest"] if kafka else []):
        if required not in used:
            fail(f"with a {source} source, neither an alarm nor the dashboard shows {required}")
    # Kinesis publishes no RecordsBehindLatest: a widget of it would stay empty.
    if not kafka and "RecordsBehindLatest" in used:
        fail("with a Kinesis source, the dashboard shows RecordsBehindLatest, which only Kafka's reads give")
    return len(used)


# What holds kinetick's data: the input stream, the ticks and lease tables, the lake bucket.
STATEFUL = {"AWS::Kinesis::Stream": 1, "AWS::DynamoDB::Table": 2, "AWS::S3::Bucket": 1}


def check_durability(template):
    for kind, count in STATEFUL.items():
        resources = resources_of_type(template, kind)
        if len(resources) < count:
            fail(f"{len(resources)} {kind} resources, {count} expected")
        for name, resource in resources.items():
            for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                if resource.get(policy) != "Retain":
                    fail(f"{name} ({kind}) has {policy} {resource.get(policy)!r}, not Retain: it holds data")
    days = template["Parameters"].get("NoncurrentVersionDays") or fail("no parameter NoncurrentVersionDays")
    if days.get("Type") != "Number" or days.get("MinValue", 0) < 1 or days.get("Default", 0) < days["MinValue"]:
        fail(f"NoncurrentVersionDays must be a Number of at least 1 day with a default: {days}")
    for name, bucket in resources_of_type(template, "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        if props.get("VersioningConfiguration", {}).get("Status") != "Enabled":
            fail(f"{name} is not versioned")
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        # Rules without a prefix or filter apply to every object.
        everywhere = [r for r in rules if r.get("Status") == "Enabled" and not r.get("Prefix") and not r.get("Filter")]
        if not any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == {"Ref": "NoncurrentVersionDays"}
                   for r in everywhere):
            fail(f"{name}: no enabled rule expires every noncurrent version after NoncurrentVersionDays")
        if not any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation", 0) >= 1 for r in everywhere):
            fail(f"{name}: no enabled rule aborts every incomplete multipart upload")
    print("check_template: the stream, tables and bucket are retained; the bucket is versioned, expires "
          "noncurrent versions and aborts incomplete uploads")


# The alarms on what kinetick reports about itself: (metric, what the alarm must be).
SELF_REPORTED_ALARMS = {
    # Any record lost to the stream's retention, within the minute.
    "RecordsLostToRetention": {"Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1,
                               "ComparisonOperator": "GreaterThanThreshold", "Threshold": 0},
    # A task unhealthy for 3 consecutive minutes.
    "Unhealthy": {"Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 3, "DatapointsToAlarm": 3,
                  "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Threshold": 1},
}


def check_alarms(template):
    for source in ("kinesis", "kafka"):
        count = alarms_of(template, SOURCES[source])
    print(f"check_template: {count} alarms scale the service or notify the alarm topic; "
          f"{', '.join(SELF_REPORTED_ALARMS)} alarms as set (Kinesis and Kafka sources)")


def alarms_of(template, params):
    """Checks the alarms created with these parameters; returns how many there are."""
    resolver = Resolver(template, params)
    namespace = resolver.ref("MetricsNamespace")
    topic = resolver.ref("AlarmTopic")
    created = resolver.resources()
    scaling = {resolver.ref(name) for name in resources_of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
               if name in created}
    alarms = {name: r["Properties"] for name, r in created.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for name, props in alarms.items():
        actions = props.get("AlarmActions", [])
        if not actions or not (set(actions) <= scaling or topic in actions):
            fail(f"{name} neither scales the service nor notifies the alarm topic: {actions}")
    for metric, expected in SELF_REPORTED_ALARMS.items():
        found = [(name, props) for name, props in alarms.items()
                 if props.get("Namespace") == namespace and props.get("MetricName") == metric]
        if len(found) != 1:
            fail(f"{len(found)} alarms on {metric} in {namespace}, 1 expected")
        (name, props), = found
        for key, value in expected.items():
            if str(props.get(key)) != str(value):
                fail(f"{name}: {key} is {props.get(key)!r}, not {value!r}")
        if props.get("Dimensions"):
            fail(f"{name}: kinetick publishes {metric} without a dimension, the alarm reads {props['Dimensions']}")
        if topic not in props.get("AlarmActions", []):
            fail(f"{name} does not notify the alarm topic")
    return len(alarms)


# The rights that depend on the source: (action, resource, condition) for each action of these
# services; every other statement must be the same whatever the source.
SOURCE_SERVICES = ("kinesis:", "kafka-cluster:", "secretsmanager:", "kms:")


def statements(resources, role):
    """The statements of `role`'s inline policies and of the stack's managed policies attached
    to it; and the ARNs of the other managed policies attached (AWS's)."""
    props = resources[role]["Properties"]
    found = [st for policy in props.get("Policies", []) for st in policy["PolicyDocument"]["Statement"]]
    others = []
    for arn in props.get("ManagedPolicyArns", []):
        logical = arn[1:-1] if arn.startswith("<") else None
        if logical in resources and resources[logical]["Type"] == "AWS::IAM::ManagedPolicy":
            found += resources[logical]["Properties"]["PolicyDocument"]["Statement"]
        else:
            others.append(arn)
    return found, others


def rights(found, source_specific):
    """(action, resource, condition) of each action in `found`, those of SOURCE_SERVICES if
    `source_specific`, else the others."""
    out = set()
    for st in found:
        if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
            fail(f"statement {st.get('Sid')} is not a plain Allow: {st}")
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        targets = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in actions:
            if action.startswith(SOURCE_SERVICES) == source_specific:
                out |= {(action, target, json.dumps(st.get("Condition"), sort_keys=True)) for target in targets}
    return out


def expected_rights(params, region):
    """What the task role and the execution role may do with the source, with these parameters."""
    kafka = params.get("SourceKind") == "kafka"
    mechanism = params.get("KafkaSaslMechanism", "none")
    task, execution = set(), set()
    if not kafka:
        task |= {(f"kinesis:{a}", "<Stream.Arn>", "null") for a in ("ListShards", "GetShardIterator", "GetRecords")}
    elif mechanism == "aws-msk-iam":
        cluster = params["MskClusterArn"]
        topic = cluster.replace(":cluster/", ":topic/", 1) + "/" + params.get("KafkaTopic", "kinetick-ticks")
        task |= {("kafka-cluster:Connect", cluster, "null"),
                 ("kafka-cluster:DescribeTopic", topic, "null"), ("kafka-cluster:ReadData", topic, "null")}
    elif mechanism != "none":
        execution.add(("secretsmanager:GetSecretValue", params["KafkaSaslSecretArn"], "null"))
        if params.get("KafkaSaslSecretKeyArn"):
            via = json.dumps({"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}, sort_keys=True)
            execution.add(("kms:Decrypt", params["KafkaSaslSecretKeyArn"], via))
    return task, execution


def source_settings(params, template):
    """The container's KINETICK_* variables that depend on the source, and its secrets."""
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    value = {**defaults, **params}
    env = {"KINETICK_SOURCE__KIND": value["SourceKind"]}
    secrets = []
    if value["SourceKind"] == "kinesis":
        env["KINETICK_AWS__STREAM_NAME"] = "<Stream>"
    else:
        env.update({
            "KINETICK_KAFKA__BOOTSTRAP_SERVERS": value["KafkaBootstrapServers"],
            "KINETICK_KAFKA__TOPIC": value["KafkaTopic"],
            "KINETICK_KAFKA__TLS": value["KafkaTls"],
            "KINETICK_KAFKA__SASL_MECHANISM": value["KafkaSaslMechanism"],
        })
        if value["KafkaSaslMechanism"] not in ("none", "aws-msk-iam"):
            env["KINETICK_KAFKA__SASL_USERNAME"] = value["KafkaSaslUsername"]
            secrets = [{"Name": "KINETICK_KAFKA__SASL_PASSWORD", "ValueFrom": f"{value['KafkaSaslSecretArn']}:password::"}]
    return env, secrets


SOURCE_VARIABLES = ("KINETICK_SOURCE__", "KINETICK_KAFKA__", "KINETICK_AWS__STREAM_NAME")


def check_sources(template):
    baseline = None
    for source, params in SOURCES.items():
        accepted, why = rules_accept(template, params)
        if not accepted:
            fail(f"source {source}: the Rules refuse its parameters ({why})")
        resolver = Resolver(template, params)
        resources, outputs = resolver.resources(), resolver.outputs()
        kafka = params.get("SourceKind") == "kafka"
        where = f"source {source}"

        # Nothing created refers to a resource that is not.
        absent = set(template["Resources"]) - set(resources)
        dangling = set(re.findall(r"<(\w+)(?:\.\w+)?>", json.dumps([resources, outputs]))) & absent
        if dangling:
            fail(f"{where}: refers to {sorted(dangling)}, which it does not create")
        streams = [n for n, r in resources.items() if r["Type"] == "AWS::Kinesis::Stream"]
        if len(streams) != (0 if kafka else 1):
            fail(f"{where}: creates {len(streams)} Kinesis streams")
        for name in ("StreamName", "StreamArn"):
            if (name in outputs) == kafka:
                fail(f"{where}: output {name} {'given' if kafka else 'missing'}")

        # The roles: the source's rights exactly, everything else as with any other source.
        task_found, task_managed = statements(resources, "TaskRole")
        exec_found, exec_managed = statements(resources, "TaskExecutionRole")
        want_task, want_exec = expected_rights(params, resolver.ref("AWS::Region"))
        for role, found, want in (("task role", task_found, want_task), ("execution role", exec_found, want_exec)):
            got = rights(found, True)
            if got != want:
                fail(f"{where}: the {role} may {sorted(got - want) or 'not'}"
                     f"{' and lacks ' + str(sorted(want - got)) if want - got else ''}")

        # The container: the source's settings and secret, the rest as with any other source.
        box = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
        env = {e["Name"]: e["Value"] for e in box["Environment"]}
        want_env, want_secrets = source_settings(params, template)
        got_env = {k: v for k, v in env.items() if k.startswith(SOURCE_VARIABLES)}
        if got_env != want_env:
            fail(f"{where}: the container's source settings are {got_env}, not {want_env}")
        if box.get("Secrets", []) != want_secrets:
            fail(f"{where}: the container's secrets are {box.get('Secrets')}, not {want_secrets}")
        egress = resources["TaskSecurityGroup"]["Properties"]["SecurityGroupEgress"]
        ports = {str(rule["FromPort"]) for rule in egress} | {str(rule["ToPort"]) for rule in egress}
        kafka_port = params.get("KafkaPort", str(template["Parameters"]["KafkaPort"]["Default"]))
        want_ports = {"443", kafka_port} if kafka else {"443"}
        if ports != want_ports:
            fail(f"{where}: the tasks may connect out to ports {sorted(ports)}, not {sorted(want_ports)}")

        rest = {
            "resources": sorted(n for n in resources if n not in ("Stream", "MskReadPolicy", "KafkaSaslPasswordPolicy")),
            "task role": sorted(rights(task_found, False)), "task role managed": task_managed,
            "execution role": sorted(rights(exec_found, False)), "execution role managed": exec_managed,
            "environment": {k: v for k, v in env.items() if not k.startswith(SOURCE_VARIABLES)},
            "container": {k: v for k, v in box.items() if k not in ("Environment", "Secrets")},
        }
        if baseline is None:
            baseline = rest
        for key, value in rest.items():
            if value != baseline[key]:
                fail(f"{where}: {key} differs from the Kinesis source's: {value} against {baseline[key]}")
        print(f"check_template: source {source}: {'no stream' if kafka else 'the stream'}; task role "
              f"{', '.join(sorted({a for a, _, _ in want_task})) or 'no source rights'}; execution role "
              f"{', '.join(sorted({a for a, _, _ in want_exec})) or 'no secret'}; "
              f"egress {', '.join(sorted(want_ports))}")


def digest_kind(source_path):
    """The `kind` attribute kinetick gives the digest, read from its digest module."""
    with open(source_path, encoding="utf-8") as f:
        found = re.findall(r'pub const KIND: &str = "([a-z_]+)";', f.read())
    if len(found) != 1:
        fail(f"{source_path} no longer has the shape this check reads the digest's kind from")
    return found[0]


def option_values(command):
    """`--name value` and `--flag` (None) of a command line, by name."""
    options, i = {}, 0
    while i < len(command):
        if not command[i].startswith("--"):
            fail(f"the report's command has {command[i]!r} where an option belongs: {command}")
        name = command[i]
        if i + 1 < len(command) and not command[i + 1].startswith("--"):
            options[name], i = command[i + 1], i + 2
        else:
            options[name], i = None, i + 1
    return options


# The schedules: (logical id, output naming it, parameter of its expression, what it runs by
# default).
SCHEDULES = {
    "ReportSchedule": {"output": "ReportScheduleName", "parameter": "ReportScheduleExpression",
                       "expression": "cron(30 16 ? * MON-FRI *)", "timezone": "America/New_York"},
    "CompactSchedule": {"output": "CompactScheduleName", "parameter": "CompactScheduleExpression",
                        "expression": "cron(30 1 * * ? *)", "timezone": "UTC"},
}


def scheduled_command(resources, resolver, name):
    """Checks that the schedule `name` runs one task of the stack's task definition in its
    cluster, on the service's network, as a role that may only do that; returns its command and
    options, and the container."""
    props = resources[name]["Properties"]
    expected = {"ScheduleExpression": SCHEDULES[name]["expression"],
                "ScheduleExpressionTimezone": SCHEDULES[name]["timezone"],
                "State": "ENABLED", "FlexibleTimeWindow": {"Mode": "OFF"}}
    for key, value in expected.items():
        if props.get(key) != value:
            fail(f"{name}: {key} is {props.get(key)!r}, not {value!r}")

    # The target: the stack's task definition in its cluster, on the service's network.
    target = props["Target"]
    ecs = target["EcsParameters"]
    if target["Arn"] != "<Cluster.Arn>" or ecs.get("TaskDefinitionArn") != "<TaskDefinition>":
        fail(f"{name} runs {ecs.get('TaskDefinitionArn')} on {target['Arn']}, not the stack's task definition and cluster")
    if ecs.get("LaunchType") != "FARGATE" or ecs.get("TaskCount", 1) != 1:
        fail(f"{name}: {ecs.get('TaskCount')} tasks of launch type {ecs.get('LaunchType')}, not one on FARGATE")
    network = resources["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    if ecs.get("NetworkConfiguration", {}).get("AwsvpcConfiguration") != network:
        fail(f"{name}: the task's network is {ecs.get('NetworkConfiguration')}, not the service's {network}")

    # The command override, for the task definition's container.
    box = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    overrides = json.loads(target["Input"])
    (override,) = overrides["containerOverrides"]
    if set(overrides) != {"containerOverrides", "taskRoleArn"} or set(override) != {"name", "command"} \
            or override["name"] != box["Name"]:
        fail(f"{name}: the override is {overrides}, not a command for the container {box['Name']} and a role")
    if overrides["taskRoleArn"] != "<LakeMaintenanceRole.Arn>":
        fail(f"{name}: the task runs as {overrides['taskRoleArn']}, not the lake maintenance role")
    command = override["command"]
    options = option_values(command[1:])
    if "--out" in options and box.get("ReadonlyRootFilesystem"):
        fail(f"{name}: --out {options['--out']} on the container's read-only root file system")
    if options.get("--log-format") != "json":
        fail(f"{name}: kinetick {command[0]} logs {options.get('--log-format')}, not JSON as the service "
             f"(the error metric filter reads it)")

    # The scheduler's role: run that task definition family in that cluster, pass its two roles
    # and the one the task runs as.
    role_name = target["RoleArn"][1:-len(".Arn>")]
    role = resources[role_name]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    if [(st["Principal"], st["Action"]) for st in trust] != [({"Service": "scheduler.amazonaws.com"}, "sts:AssumeRole")] \
            or trust[0]["Condition"]["StringEquals"].get("aws:SourceAccount") != resolver.ref("AWS::AccountId"):
        fail(f"{role_name} is not assumed by EventBridge Scheduler of this account only: {trust}")
    if role.get("ManagedPolicyArns"):
        fail(f"{role_name} has managed policies: {role['ManagedPolicyArns']}")
    definition = resources["TaskDefinition"]["Properties"]
    arn_start = f"arn:{resolver.ref('AWS::Partition')}:ecs:{resolver.ref('AWS::Region')}:{resolver.ref('AWS::AccountId')}"
    passed = json.dumps({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}, sort_keys=True)
    want_rights = {
        ("ecs:RunTask", f"{arn_start}:task-definition/{definition['Family']}:*",
         json.dumps({"ArnEquals": {"ecs:cluster": "<Cluster.Arn>"}}, sort_keys=True)),
        ("iam:PassRole", definition["ExecutionRoleArn"], passed),
        ("iam:PassRole", definition["TaskRoleArn"], passed),
        ("iam:PassRole", "<LakeMaintenanceRole.Arn>", passed),
    }
    got = rights([st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]], False)
    if got != want_rights:
        fail(f"{role_name} may {sorted(got - want_rights) or 'not'}"
             f"{' and lacks ' + str(sorted(want_rights - got)) if want_rights - got else ''}")
    if definition["ExecutionRoleArn"] == definition["TaskRoleArn"]:
        fail("the task definition's execution and task roles are one role")
    return command, options, box


# What each role may do in each of the lake's folders ({LakePrefix}<folder>/*). The run's task
# role writes ticks, dead letters and snapshots (and aborts their unfinished uploads) and reads
# and deletes superseded snapshots: it never deletes a tick file. The lake maintenance role, as
# which the schedules run report and compact: the report reads ticks and dead letters and puts
# reports; the compaction reads, writes and deletes ticks and its manifests under compaction/,
# and reads large snapshots.
OBJECT_RIGHTS = {
    "TaskRole": {
        "ticks": {"s3:PutObject", "s3:AbortMultipartUpload"},
        "dead-letters": {"s3:PutObject", "s3:AbortMultipartUpload"},
        "checkpoints": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"},
    },
    "LakeMaintenanceRole": {
        "ticks": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"},
        "dead-letters": {"s3:GetObject"},
        "checkpoints": {"s3:GetObject"},
        "reports": {"s3:PutObject"},
        "compaction": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"},
    },
}
# What each role may do on the bucket itself: a shard's new owner lists the unfinished uploads of
# the lake, to abort those of its files; report and compact list the folders they read.
LISTED = ("ticks", "dead-letters", "compaction")
# What kinetick report and kinetick compact need (README, "Compacting the lake").
MAINTENANCE_NEEDS = {
    (action, folder) for folder in ("ticks", "compaction")
    for action in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject")
} | {("s3:GetObject", "checkpoints"), ("s3:PutObject", "reports"), ("s3:GetObject", "dead-letters")}


def check_role_objects(resources, prefix, role):
    """`role` touches no object outside the lake's folders and no more than OBJECT_RIGHTS in each,
    and on the bucket itself only what it needs; the lake maintenance role may do what the report
    and the compaction need. Returns the folders it may delete in."""
    bucket = "<LakeBucket.Arn>"
    found, _ = statements(resources, role)
    granted = rights(found, False)
    s3 = {r for r in granted if r[0].startswith("s3:")}
    on_bucket = {r for r in s3 if r[1] == bucket}
    if role == "TaskRole":
        want_on_bucket = {("s3:ListBucketMultipartUploads", bucket, "null")}
    else:
        listing = json.dumps({"StringLike": {"s3:prefix": [f"{prefix}{f}/*" for f in LISTED]}}, sort_keys=True)
        want_on_bucket = {("s3:ListBucket", bucket, listing)}
    if on_bucket != want_on_bucket:
        fail(f"{role} may {sorted(on_bucket)} on the bucket, not {sorted(want_on_bucket)}")
    may = set()
    for action, resource, condition in s3 - on_bucket:
        folder = resource[len(bucket) + 1:] if resource.startswith(bucket + "/") else None
        name = folder[len(prefix):-len("/*")] if folder and folder.startswith(prefix) and folder.endswith("/*") else None
        if name not in OBJECT_RIGHTS[role] or condition != "null":
            fail(f"{role} may {action} on {resource} ({condition}), outside its folders of the lake")
        if action not in OBJECT_RIGHTS[role][name]:
            fail(f"{role} may {action} on {prefix}{name}/, where it needs only {sorted(OBJECT_RIGHTS[role][name])}")
        may.add((action, name))
    if role == "LakeMaintenanceRole":
        if MAINTENANCE_NEEDS - may:
            fail(f"{role} may not {sorted(MAINTENANCE_NEEDS - may)}, which kinetick report or compact needs")
        dynamodb = {r for r in granted if r[0].startswith("dynamodb:")}
        if dynamodb != {("dynamodb:GetItem", "<LeaseTable.Arn>", "null")}:
            fail(f"{role} may {sorted(dynamodb)}, not only read the checkpoints (dynamodb:GetItem on the lease table)")
        others = {r[0] for r in granted} - {r[0] for r in s3 | dynamodb}
        if others != {"sns:Publish", "cloudwatch:GetMetricStatistics"}:
            fail(f"{role} may {sorted(others)} besides S3 and the checkpoints, not only publish the digest and read AlertsCapped")
    return sorted(name for action, name in may if action == "s3:DeleteObject")


def check_schedule(template, digest_source):
    kind = digest_kind(digest_source)
    for prefix in ("", "kinetick/"):
        resolver = Resolver(template, {"LakePrefix": prefix})
        resources, outputs = resolver.resources(), resolver.outputs()
        for name, schedule in SCHEDULES.items():
            if name not in resources or schedule["output"] not in outputs:
                fail(f"no {name} or no output {schedule['output']} with the default schedules")
        if {n for n, r in resources.items() if r["Type"] == "AWS::Scheduler::Schedule"} != set(SCHEDULES):
            fail(f"the schedules are not {sorted(SCHEDULES)}")
        lake = f"s3://{resolver.ref('LakeBucket')}/{prefix}"

        # The report: kinetick report on the stack's lake, today, uploaded and published.
        command, options, box = scheduled_command(resources, resolver, "ReportSchedule")
        want = {"--lake": lake, "--date": "today", "--upload": None, "--publish": None}
        if command[0] != "report" or {k: options.get(k, "absent") for k in want} != want:
            fail(f"ReportSchedule: the command is {command}, not kinetick report with {want}")
        env = {e["Name"]: e["Value"] for e in box["Environment"]}
        if env.get("KINETICK_AWS__TOPIC_ARN") != resolver.ref("AlertTopic"):
            fail(f"ReportSchedule: --publish goes to {env.get('KINETICK_AWS__TOPIC_ARN')}, not the alert topic")

        # The compaction: kinetick compact of the stack's lake, the closed day before, for real.
        command, options, _ = scheduled_command(resources, resolver, "CompactSchedule")
        want = {"--lake": lake, "--date": "yesterday", "--no-progress": None, "--log-format": "json"}
        if command[0] != "compact" or options != want:
            fail(f"CompactSchedule: the command is {command}, not kinetick compact with {want} and nothing else")

        # The run's role never deletes a tick file; the lake maintenance role reads the lake
        # (listing only its folders that are read), puts only reports, deletes only where the
        # compaction needs to.
        run_deletes = check_role_objects(resources, prefix, "TaskRole")
        deletes = check_role_objects(resources, prefix, "LakeMaintenanceRole")

        # The e-mail subscription takes the digest, and still only the chosen severities.
        policy = resources["AlertEmailSubscription"]["Properties"]["FilterPolicy"]
        want_policy = {"$or": [{"severity": resolver.ref("AlertEmailSeverities")}, {"kind": [kind]}]}
        if policy != want_policy:
            fail(f"the e-mail subscription's filter is {policy}, not {want_policy}")

    # Without a schedule: neither it nor its output, the role only while the other needs it, and
    # nothing refers to what is not made.
    for absent_schedules in ({"ReportSchedule"}, {"CompactSchedule"}, set(SCHEDULES)):
        params = {SCHEDULES[name]["parameter"]: "" for name in absent_schedules}
        resolver = Resolver(template, params)
        resources, outputs = resolver.resources(), resolver.outputs()
        made = {n for n, r in resources.items() if r["Type"] == "AWS::Scheduler::Schedule"}
        if made != set(SCHEDULES) - absent_schedules:
            fail(f"with {params} the stack makes the schedules {sorted(made)}")
        if any(SCHEDULES[name]["output"] in outputs for name in absent_schedules):
            fail(f"with {params} the stack still has an output of a schedule it does not make")
        roles = {resources[n]["Properties"]["Target"]["RoleArn"] for n in made}
        scheduler_roles = {n for n, r in resources.items() if r["Type"] == "AWS::IAM::Role"
                           and "scheduler.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])}
        if {f"<{n}.Arn>" for n in scheduler_roles} != roles:
            fail(f"with {params} the stack makes the roles {sorted(scheduler_roles)} for the schedules' {sorted(roles)}")
        absent = set(template["Resources"]) - set(resources)
        dangling = set(re.findall(r"<(\w+)(?:\.\w+)?>", json.dumps([resources, outputs]))) & absent
        if dangling:
            fail(f"with {params}, the stack refers to {sorted(dangling)}")
    print("check_template: the daily report runs the task definition at 16:30 New York time on weekdays "
          "with kinetick report --date today --upload --publish on the stack's lake, the daily compaction at "
          "01:30 UTC with kinetick compact --date yesterday, both as the lake maintenance role; their role may "
          "run that family in the cluster and pass the task's two roles and that one only; the run's task role "
          f"deletes only under {', '.join(d + '/' for d in run_deletes)}; the lake maintenance role lists the "
          f"lake's ticks/, dead-letters/ and compaction/ only, may only put under reports/, deletes only under "
          f"{', '.join(d + '/' for d in deletes)} and may do what the report and the compaction need; the e-mail "
          f"subscription takes kind {kind}; an empty "
          "ReportScheduleExpression or CompactScheduleExpression makes no such schedule (and no role "
          "when both are)")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    template = load(sys.argv[1])
    command = sys.argv[2]
    if command == "rules":
        check_rules(template)
    elif command == "env" and len(sys.argv) in (3, 4):
        print_env(template, *sys.argv[3:])
    elif command == "sources":
        check_sources(template)
    elif command == "table" and len(sys.argv) == 4:
        check_table(template, sys.argv[3])
    elif command == "metrics" and len(sys.argv) == 4:
        check_metrics(template, sys.argv[3])
    elif command == "durability":
        check_durability(template)
    elif command == "alarms":
        check_alarms(template)
    elif command == "schedule" and len(sys.argv) == 4:
        check_schedule(template, sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
