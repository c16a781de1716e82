"""Checks of deploy/ecs/template.yaml that cfn-lint cannot make (run by scripts/check-deploy.sh).

  check_template.py TEMPLATE rules      The Rules section accepts exactly the valid parameter sets:
                                        MinTasks <= MaxTasks <= ShardCount (PROVISIONED), known
                                        alert severities; LakePrefix's pattern.
  check_template.py TEMPLATE env        Prints the container's KINETICK_* variables (parameter
                                        defaults) as NAME=VALUE lines, for a kinetick run that
                                        validates their names and values.
  check_template.py TEMPLATE table DIR  The ticks table's TTL attribute is the one kinetick wrote
                                        into DIR/table/ticks.jsonl with those variables.
  check_template.py TEMPLATE metrics SRC
                                        The dashboard body is JSON, and every metric and dimension
                                        that the alarms and the dashboard read in kinetick's
                                        namespace is one kinetick publishes (SRC: src/metrics/mod.rs).
  check_template.py TEMPLATE durability The stream, the tables and the bucket are retained when the
                                        stack is deleted or replaces them; the bucket is versioned,
                                        expires noncurrent versions after NoncurrentVersionDays and
                                        aborts incomplete multipart uploads.
  check_template.py TEMPLATE alarms     Every alarm that scales nothing notifies the alarm topic;
                                        the records-lost and unhealthy alarms are there, as set.
"""

import itertools
import json
import re
import sys

from cfn_template import Resolver, load, resources_of_type


def fail(message):
    sys.exit(f"check_template: {message}")


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
    for mode, shard_count, low, high in itertools.product(
        params["StreamMode"]["AllowedValues"], shards, min_tasks, tasks
    ):
        values = {"StreamMode": mode, "ShardCount": str(shard_count), "MinTasks": str(low), "MaxTasks": str(high)}
        accepted, why = rules_accept(template, values)
        valid = low <= high and (mode == "ON_DEMAND" or high <= shard_count)
        if accepted != valid:
            fail(f"Rules {'accept' if accepted else 'reject'} {values} ({why})")
        checked += 1
    for severities, valid in [("critical", True), ("info,warning,critical", True), ("critical,urgent", False)]:
        accepted, _ = rules_accept(template, {"AlertEmailSeverities": severities})
        if accepted != valid:
            fail(f"Rules {'accept' if accepted else 'reject'} AlertEmailSeverities={severities}")
    pattern = re.compile(params["LakePrefix"]["AllowedPattern"])
    for prefix, valid in [("", True), ("kinetick/", True), ("a/b-c_d.e/", True), ("kinetick", False), ("/x/", False), ("a//", False)]:
        if bool(pattern.fullmatch(prefix)) != valid:
            fail(f"LakePrefix pattern {'accepts' if not valid else 'rejects'} {prefix!r}")
    print(f"check_template: Rules give the expected verdict for {checked} parameter sets; LakePrefix pattern ok")


def container(template):
    (definition,) = resources_of_type(template, "AWS::ECS::TaskDefinition").values()
    resolved = Resolver(template).resolve(definition["Properties"])
    (container,) = resolved["ContainerDefinitions"]
    return container


def kinetick_env(template):
    env = {e["Name"]: e["Value"] for e in container(template)["Environment"]}
    return {name: value for name, value in env.items() if name.startswith("KINETICK_")}


def print_env(template):
    for name, value in kinetick_env(template).items():
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
    resolver = Resolver(template)
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

    for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        props = resolver.resolve(alarm["Properties"])
        if props.get("Namespace") == namespace:
            by_dimension(None, props["MetricName"], name)
        for query in props.get("Metrics", []):
            stat = query.get("MetricStat", {}).get("Metric", {})
            if stat.get("Namespace") == namespace:
                by_dimension(None, stat["MetricName"], name)
            expressions(query.get("Expression", ""), name)

    for name, dashboard in resources_of_type(template, "AWS::CloudWatch::Dashboard").items():
        body = resolver.resolve(dashboard["Properties"])["DashboardBody"]
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
    for required in [
        "RecordsProcessed", "MillisBehindLatest", "DeadLetters", "AlertsPublished", "EndToEndLatency",
        "LeasesHeld", "CheckpointLag", "KinesisRequests", "DynamoDBRequests", "S3Requests",
        "SNSRequests", "CloudWatchRequests",
    ]:
        if required not in used:
            fail(f"neither an alarm nor the dashboard shows {required}")
    print(f"check_template: {len(used)} metric references in alarms and dashboard, all published by kinetick")


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
    resolver = Resolver(template)
    namespace = resolver.ref("MetricsNamespace")
    topic = resolver.ref("AlarmTopic")
    scaling = {resolver.ref(name) for name in resources_of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")}
    alarms = {name: resolver.resolve(a["Properties"])
              for name, a in resources_of_type(template, "AWS::CloudWatch::Alarm").items()}
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
    print(f"check_template: {len(alarms)} alarms scale the service or notify the alarm topic; "
          f"{', '.join(SELF_REPORTED_ALARMS)} alarms as set")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    template = load(sys.argv[1])
    command = sys.argv[2]
    if command == "rules":
        check_rules(template)
    elif command == "env":
        print_env(template)
    elif command == "table" and len(sys.argv) == 4:
        check_table(template, sys.argv[3])
    elif command == "metrics" and len(sys.argv) == 4:
        check_metrics(template, sys.argv[3])
    elif command == "durability":
        check_durability(template)
    elif command == "alarms":
        check_alarms(template)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
