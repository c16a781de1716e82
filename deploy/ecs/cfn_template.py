"""Reads deploy/ecs/template.yaml for the deployment checks: a YAML loader that accepts
CloudFormation's short tags (!Ref, !Sub, !GetAtt, ...), and a resolver that evaluates the few
intrinsic functions the checks need (Ref, Fn::Sub, Fn::If, Fn::Equals, Fn::Split, ...) with the
parameters' defaults, overridable, and placeholder names for the resources; it knows which
resources and outputs a set of parameters creates (their Condition)."""

import re

import yaml

# A value that Ref AWS::NoValue produces; lists and maps drop it.
NO_VALUE = object()

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "kinetick",
    "AWS::URLSuffix": "amazonaws.com",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref x` into {"Ref": x}, `!Condition c` into {"Condition": c},
    `!GetAtt A.B` into {"Fn::GetAtt": ["A", "B"]} and any other `!Fn` into {"Fn::Fn": ...}."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}


_Loader.add_multi_constructor("!", _tag)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)


class Resolver:
    """Evaluates intrinsic functions of `template` for given parameter values (defaults unless
    overridden; a placeholder `<Name>` for a parameter with neither). Refs to resources resolve to a placeholder `<LogicalId>`, except a Glue database,
    which resolves to its name, and an SNS topic, which resolves to its ARN (what Ref returns for
    them: kinetick checks that a topic ARN looks like one)."""

    def __init__(self, template, overrides=None):
        self.template = template
        self.params = {}
        for name, spec in template.get("Parameters", {}).items():
            value = (overrides or {}).get(name, spec.get("Default"))
            if spec.get("Type", "").startswith(("List<", "CommaDelimitedList")) and isinstance(value, str):
                value = value.split(",")
            self.params[name] = value
        self.conditions = {}
        self.pseudo = dict(PSEUDO)

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            value = self.params[name]
            if value is None:
                return f"<{name}>"
            return value if isinstance(value, list) else str(value)
        return self.resource_ref(name)

    def resource_ref(self, name):
        """What Ref gives for the resource `name`."""
        resource = self.template["Resources"][name]
        if resource["Type"] == "AWS::Glue::Database":
            return self.resolve(resource["Properties"]["DatabaseInput"]["Name"])
        if resource["Type"] == "AWS::SNS::Topic":
            topic = self.resolve(resource.get("Properties", {}).get("TopicName", name))
            return f"arn:{PSEUDO['AWS::Partition']}:sns:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:{topic}"
        return f"<{name}>"

    def attribute(self, name, attribute):
        """What Fn::GetAtt gives for `attribute` of the resource `name`: a placeholder."""
        return f"<{name}.{attribute}>"

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.resolve(self.template["Conditions"][name])
        return self.conditions[name]

    def sub(self, text, variables=None):
        def replace(match):
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"
            if variables and body in variables:
                return str(self.resolve(variables[body]))
            if "." in body and body.split(".", 1)[0] in self.template["Resources"]:
                return self.attribute(*body.split(".", 1))
            value = self.ref(body)
            if isinstance(value, list):
                raise ValueError(f"${{{body}}} is a list")
            return value

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def resolve(self, node):
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Condition":
                return self.condition(value)
            if key == "Fn::Sub":
                if isinstance(value, str):
                    return self.sub(value)
                return self.sub(value[0], value[1])
            if key == "Fn::If":
                name, then, otherwise = value
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in value)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in value)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in value)
            if key == "Fn::Contains":
                haystack, needle = self.resolve(value[0]), self.resolve(value[1])
                return str(needle) in [str(v) for v in haystack]
            if key == "Fn::EachMemberIn":
                members, allowed = self.resolve(value[0]), self.resolve(value[1])
                return all(str(m) in [str(a) for a in allowed] for m in members)
            if key == "Fn::Join":
                return value[0].join(str(v) for v in self.resolve(value[1]))
            if key == "Fn::Split":
                return str(self.resolve(value[1])).split(value[0])
            if key == "Fn::Select":
                items = self.resolve(value[1])
                index = int(self.resolve(value[0]))
                if not 0 <= index < len(items):
                    raise ValueError(f"Fn::Select of item {index} of {items}")
                return items[index]
            if key == "Fn::GetAtt":
                return self.attribute(value[0], value[1])
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not evaluated by the checks")
        out = {}
        for key, value in node.items():
            value = self.resolve(value)
            if value is not NO_VALUE:
                out[key] = value
        return out


    def exists(self, entry):
        """Whether a resource or output is created with these parameters (its Condition)."""
        return "Condition" not in entry or self.condition(entry["Condition"])

    def resources(self):
        """The resources created with these parameters, resolved, by logical id."""
        return {name: dict(r, Properties=self.resolve(r.get("Properties", {})))
                for name, r in self.template["Resources"].items() if self.exists(r)}

    def outputs(self):
        """The outputs given with these parameters, resolved, by name."""
        return {name: self.resolve(o["Value"])
                for name, o in self.template.get("Outputs", {}).items() if self.exists(o)}


def resources_of_type(template, type_name):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_name}


class Deployed(Resolver):
    """A Resolver for a deployed stack: Ref and Fn::GetAtt give the values in `values`
    ({"Cluster": name, "Cluster.Arn": arn, ...}), for what the stack made but could not make
    itself (a resource created afterwards through its own API); pseudo parameters (the stack's
    name) from `values` too."""

    def __init__(self, template, overrides, values):
        super().__init__(template, overrides)
        self.values = values
        self.pseudo.update({k: v for k, v in values.items() if k.startswith("AWS::")})

    def resource_ref(self, name):
        if name not in self.values:
            raise KeyError(f"no deployed value for Ref {name}")
        return self.values[name]

    def attribute(self, name, attribute):
        key = f"{name}.{attribute}"
        if key not in self.values:
            raise KeyError(f"no deployed value for {key}")
        return self.values[key]
