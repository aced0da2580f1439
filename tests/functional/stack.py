"""template.yaml as CloudFormation would see it, for tests: transformed by aws-sam-translator,
with values resolved the way CloudFormation resolves them (parameters, pseudo parameters,
conditions, Ref/GetAtt/Sub/If), and its queues, tables and parameter created in moto.

Physical ids are given the shape CloudFormation gives them (`<stack>-<LogicalId>-<suffix>`), or
are read from moto when the resources are created there.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "eu-west-1"
REQUIRED_PARAMETERS = {"ModelArtsProjectId": "0" * 32}


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only when a template names them by name."""

    def load(self) -> dict[str, str]:
        return {}


def source_template() -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return template


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` does before CloudFormation sees it: local folders become S3 URIs."""
    result = copy.deepcopy(template)
    for name, resource in result["Resources"].items():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://artifacts/{name}.zip"
    return result


def transformed_template(source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template after the SAM transform (AWS::Serverless::* expanded)."""
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    try:
        result: dict[str, Any] = transform(
            packaged(source or source_template()), REQUIRED_PARAMETERS, NoManagedPolicies()
        )
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved
    return result


def _suffix(logical_id: str) -> str:
    """A stable stand-in for the random suffix CloudFormation appends to generated names."""
    return hashlib.sha256(logical_id.encode()).hexdigest()[:12].upper()


@dataclass
class Stack:
    """Resolves template values for one stack: `parameters` override the defaults, `physical`
    gives resources' attributes (`Ref`, `Arn`, `QueueName`, ...) where known."""

    template: dict[str, Any]
    name: str = "nbkeeper"
    parameters: dict[str, str] = field(default_factory=dict)
    physical: dict[str, dict[str, str]] = field(default_factory=dict)

    def parameter_values(self) -> dict[str, str]:
        defaults = {
            name: str(spec["Default"])
            for name, spec in self.template.get("Parameters", {}).items()
            if "Default" in spec
        }
        return defaults | REQUIRED_PARAMETERS | self.parameters

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def generated_name(self, logical_id: str) -> str:
        return f"{self.name}-{logical_id}-{_suffix(logical_id)}"

    def attribute(self, logical_id: str, attribute: str) -> str:
        """Resource `logical_id`'s `Ref` or GetAtt `attribute`, as deployed (or shaped so)."""
        known = self.physical.get(logical_id, {})
        if attribute in known:
            return known[attribute]
        resource = self.template["Resources"][logical_id]
        kind = resource["Type"]
        service = kind.split("::")[1].lower()
        name = self.generated_name(logical_id)
        if kind == "AWS::SQS::Queue":
            if resource["Properties"].get("FifoQueue"):
                name += ".fifo"
            shapes = {
                "Ref": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
                "QueueName": name,
                "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            }
        elif kind == "AWS::SSM::Parameter":
            shapes = {"Ref": self.resolve(resource["Properties"]["Name"])}
        else:
            shapes = {"Ref": name, "Arn": f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"}
        assert attribute in shapes, f"{logical_id}.{attribute}: no stand-in for {kind}"
        return shapes[attribute]

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function resolved."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        (function, argument), *_ = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            target, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.attribute(target, attribute)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
        if function == "Fn::If":
            name, then, otherwise = argument
            return self.resolve(then if self.condition(name) else otherwise)
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.resolve(argument[0])
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(items))
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        if name in self.pseudo():
            return self.pseudo()[name]
        parameters = self.parameter_values()
        if name in parameters:
            return parameters[name]
        return self.attribute(name, "Ref")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            reference, _, rest = after.partition("}")
            out.append(before)
            if reference in variables:
                out.append(str(variables[reference]))
            elif "." in reference:
                target, attribute = reference.split(".", 1)
                out.append(self.attribute(target, attribute))
            else:
                out.append(str(self._ref(reference)))
        out.append(rest)
        return "".join(out)

    def environment(self, function: str) -> dict[str, str]:
        """Function `function`'s environment as Lambda would set it from the template."""
        properties = self.template["Resources"][function]["Properties"]
        variables = properties.get("Environment", {}).get("Variables", {})
        return {name: str(self.resolve(value)) for name, value in variables.items()}


def deploy_to_moto(stack: Stack) -> None:
    """Create the stack's queues, tables and SSM parameters with boto3 (moto behind it), as
    CloudFormation would from the template, and record their physical ids in `stack`."""
    import boto3

    resources = stack.template["Resources"]
    sqs = boto3.client("sqs", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    ssm = boto3.client("ssm", region_name=REGION)
    queues = [n for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    # Dead-letter queues first: the others name their ARN.
    queues.sort(key=lambda n: "RedrivePolicy" in resources[n]["Properties"])
    for logical_id in queues:
        properties = resources[logical_id]["Properties"]
        name = stack.attribute(logical_id, "QueueName")
        attributes = {
            key: str(stack.resolve(properties[key])).lower()
            if isinstance(properties[key], bool)
            else str(stack.resolve(properties[key]))
            for key in ("FifoQueue", "ContentBasedDeduplication", "VisibilityTimeout")
            if key in properties
        }
        if "MessageRetentionPeriod" in properties:
            attributes["MessageRetentionPeriod"] = str(properties["MessageRetentionPeriod"])
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps(stack.resolve(properties["RedrivePolicy"]))
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        stack.physical[logical_id] = {
            "Ref": url,
            "QueueName": name,
            "Arn": arn["Attributes"]["QueueArn"],
        }
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::DynamoDB::Table":
            name = stack.generated_name(logical_id)
            table = dynamodb.create_table(
                TableName=name,
                KeySchema=properties["KeySchema"],
                AttributeDefinitions=properties["AttributeDefinitions"],
                BillingMode=properties["BillingMode"],
            )
            ttl = properties.get("TimeToLiveSpecification")
            if ttl:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"],
                        "Enabled": ttl["Enabled"],
                    },
                )
            stack.physical[logical_id] = {
                "Ref": name,
                "Arn": table["TableDescription"]["TableArn"],
            }
        elif resource["Type"] == "AWS::SSM::Parameter":
            name = stack.resolve(properties["Name"])
            ssm.put_parameter(Name=name, Value=properties["Value"], Type=properties["Type"])
            stack.physical[logical_id] = {"Ref": name}
