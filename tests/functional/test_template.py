"""template.yaml, checked the way CloudFormation will see it: transformed by aws-sam-translator."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = {"ModelArtsProjectId": "0" * 32}
CONTRACT = {
    "COMMANDS_QUEUE_URL": "AWS::SQS::Queue",
    "FOLLOWUP_QUEUE_URL": "AWS::SQS::Queue",
    "STATE_TABLE": "AWS::DynamoDB::Table",
    "IDEMPOTENCY_TABLE": "AWS::DynamoDB::Table",
}


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only when a template names them by name."""

    def load(self) -> dict[str, str]:
        return {}


def _source() -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return template


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` does before CloudFormation sees it: local folders become S3 URIs."""
    packaged = copy.deepcopy(template)
    for name, resource in packaged["Resources"].items():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://artifacts/{name}.zip"
    return packaged


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return _source()


@pytest.fixture(scope="module")
def transformed(source: dict[str, Any]) -> dict[str, Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    try:
        result: dict[str, Any] = transform(_packaged(source), PARAMETERS, NoManagedPolicies())
    finally:
        mp.undo()
    return result


def _functions(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in source["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_template_transforms_to_three_functions_on_one_layer(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    layers = [n for n, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert set(functions) == {
        "LeaseKeeperFunction",
        "SlackCommandsFunction",
        "NotebookWorkerFunction",
    }
    assert len(layers) == 1
    for function in functions.values():
        assert function["Properties"]["Layers"] == [{"Ref": layers[0]}]


def _resolver(transformed: dict[str, Any]) -> Callable[[Any], str]:
    """Resolves a template value as CloudFormation would, with the parameters at their defaults
    and resources given values of the right shape (queue URLs, parameter and table names)."""
    resources = transformed["Resources"]
    parameters = {
        name: str(spec.get("Default", ""))
        for name, spec in transformed.get("Parameters", {}).items()
    } | PARAMETERS

    def resolve(value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Fn::Sub" in value:
            text = str(value["Fn::Sub"])
            for name, parameter in parameters.items():
                text = text.replace("${" + name + "}", parameter)
            return text
        target = _reference(value)
        assert target is not None, value
        if target in parameters:
            return parameters[target]
        if resources[target]["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.eu-west-1.amazonaws.com/123456789012/{target}"
        if resources[target]["Type"] == "AWS::SSM::Parameter":
            return resolve(resources[target]["Properties"]["Name"])
        return target

    return resolve


def _deployed_environment(transformed: dict[str, Any], function: str) -> dict[str, str]:
    """The function's environment as Lambda would set it."""
    resolve = _resolver(transformed)
    variables = transformed["Resources"][function]["Properties"]["Environment"]["Variables"]
    return {name: resolve(value) for name, value in variables.items()}


def _create_parameters(transformed: dict[str, Any]) -> None:
    """The stack's SSM parameters, in moto, with the template's values."""
    import boto3

    resolve = _resolver(transformed)
    ssm = boto3.client("ssm")
    for resource in transformed["Resources"].values():
        if resource["Type"] == "AWS::SSM::Parameter":
            properties = resource["Properties"]
            ssm.put_parameter(
                Name=resolve(properties["Name"]), Value=properties["Value"], Type=properties["Type"]
            )


@contextmanager
def _deployed(
    source: dict[str, Any],
    transformed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> Iterator[tuple[ModuleType, str]]:
    """Function `name`'s handler module, imported under its deployed environment (moto holds the
    stack's SSM parameters); yields it with the handler's attribute name."""
    globals_ = source["Globals"]["Function"]
    properties = source["Resources"][name]["Properties"]
    handler = properties.get("Handler", globals_["Handler"])
    module_name, _, attribute = handler.rpartition(".")
    path = ROOT / properties["CodeUri"] / f"{module_name}.py"
    assert path.is_file(), f"{name}: {path} does not exist"
    with monkeypatch.context() as env, mock_aws():
        env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        for variable, value in _deployed_environment(transformed, name).items():
            env.setenv(variable, value)
        _create_parameters(transformed)
        spec = importlib.util.spec_from_file_location(f"_template_check_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
            yield module, attribute
        finally:
            sys.modules.pop(spec.name, None)


def test_every_handler_resolves_to_a_callable_under_its_deployed_environment(
    source: dict[str, Any], transformed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each handler imports (so its settings model accepts the template's environment at cold
    start) and exposes a callable. Secrets are named, not read, at import."""
    for name in _functions(source):
        with _deployed(source, transformed, monkeypatch, name) as (module, attribute):
            assert callable(getattr(module, attribute, None)), f"{name}: {attribute} not callable"


@pytest.mark.parametrize("function", ["LeaseKeeperFunction", "NotebookWorkerFunction"])
def test_keeper_and_worker_read_the_same_policy_with_the_overlay(
    function: str,
    source: dict[str, Any],
    transformed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's fan-out sweeps decide under the keeper's policy: the file shipped in the
    layer plus the stack's SSM overlay, which each function may read."""
    from nbkeeper.wiring import DEFAULT_POLICY_PATH

    environment = _deployed_environment(transformed, function)
    assert environment["POLICY_PARAMETER"] == "/nbkeeper/policy"
    assert "POLICY_PATH" not in environment  # the default: the file in the layer
    with _deployed(source, transformed, monkeypatch, function) as (module, _):
        assert module.SETTINGS.policy_path == str(DEFAULT_POLICY_PATH)
        assert module.POLICY.current().idle_threshold_minutes > 0
    role = transformed["Resources"][f"{function}Role"]["Properties"]
    ssm_reads = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "ssm:GetParameter" in statement["Action"]
    ]
    assert ssm_reads, f"{function} may not read the policy parameter"


def _reference(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in value:
            return None
    return None


def test_environment_names_resources_that_exist(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    parameters = transformed.get("Parameters", {})
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        variables = resource["Properties"]["Environment"]["Variables"]
        for variable, value in variables.items():
            target = _reference(value)
            if target is not None:
                assert target in resources or target in parameters, f"{name}.{variable} -> {target}"
            if variable in CONTRACT:
                assert target in resources, f"{name}.{variable} must name a resource"
                assert resources[target]["Type"] == CONTRACT[variable], f"{name}.{variable}"


def test_each_function_gets_the_contract_variables_it_reads(transformed: dict[str, Any]) -> None:
    env = {
        n: set(r["Properties"]["Environment"]["Variables"])
        for n, r in transformed["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert {"COMMANDS_QUEUE_URL", "STATE_TABLE"} <= env["SlackCommandsFunction"]
    assert {"COMMANDS_QUEUE_URL", "STATE_TABLE", "IDEMPOTENCY_TABLE"} <= env[
        "NotebookWorkerFunction"
    ]
    assert {"STATE_TABLE", "COMMANDS_QUEUE_URL"} <= env["LeaseKeeperFunction"]


def test_queues_outlast_the_worker_and_have_dead_letter_queues(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    worker_timeout = resources["NotebookWorkerFunction"]["Properties"]["Timeout"]
    commands = resources["CommandsQueue"]["Properties"]
    assert commands["FifoQueue"] is True
    for queue in ("CommandsQueue", "FollowUpQueue"):
        properties = resources[queue]["Properties"]
        assert properties["VisibilityTimeout"] >= 6 * worker_timeout
        dlq = _reference(properties["RedrivePolicy"]["deadLetterTargetArn"])
        assert dlq in resources


def test_no_policy_grants_a_wildcard_action(transformed: dict[str, Any]) -> None:
    for name, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                assert all(a != "*" and not a.endswith(":*") for a in actions), (name, actions)


def test_slack_routes_are_the_two_outputs(source: dict[str, Any]) -> None:
    outputs = source["Outputs"]
    assert outputs["SlackCommandsUrl"]["Value"]["Fn::Sub"].endswith("/slack/commands")
    assert outputs["SlackInteractionsUrl"]["Value"]["Fn::Sub"].endswith("/slack/interactions")


EVENT_HANDLERS = {
    "schedule": "lease_keeper",
    "slack_command": "slack_commands",
    "slack_interaction": "slack_commands",
    "sqs_commands": "notebook_worker",
}


def _handler_for(event_file: Path) -> str:
    for prefix, folder in EVENT_HANDLERS.items():
        if event_file.name.startswith(prefix):
            return folder
    raise AssertionError(f"{event_file.name}: no handler claims it; name it after one")


def test_every_event_sample_is_accepted_by_its_handler() -> None:
    """Each events/*.json (the `sam local invoke -e` samples) goes through its real handler in
    the loopback world. Slack samples carry a placeholder signature (no real secret is ever
    committed), so they are re-signed with the local secret, as a person invoking them would."""
    from nbkeeper.commands import parse_command
    from nbkeeper_local.emulator.clock import SimClock
    from nbkeeper_local.emulator.core import Emulator
    from nbkeeper_local.harness import (
        LOCAL_SIGNING_SECRET,
        FakeLambdaContext,
        load_function,
        local_world,
        resign,
    )

    files = sorted((ROOT / "events").glob("*.json"))
    assert files, "events/ is empty"
    with local_world(Emulator(clock=SimClock.stepped())):
        handlers = {folder: load_function(folder) for folder in set(EVENT_HANDLERS.values())}
        for path in files:
            folder = _handler_for(path)
            event = json.loads(path.read_text())
            if folder == "slack_commands":
                event = resign(event, LOCAL_SIGNING_SECRET)
            result = handlers[folder].lambda_handler(event, FakeLambdaContext(folder))
            if folder == "slack_commands":
                assert result["statusCode"] == 200, (path.name, result)
            elif folder == "notebook_worker":
                for record in event["Records"]:
                    parse_command(record["body"])
                assert isinstance(result["batchItemFailures"], list), path.name
            else:
                assert result["notebooks"] >= 0, (path.name, result)
