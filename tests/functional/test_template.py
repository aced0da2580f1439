"""template.yaml, checked the way CloudFormation will see it: transformed by aws-sam-translator."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from tests.functional.stack import Stack, deploy_to_moto, source_template, transformed_template

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {
    "COMMANDS_QUEUE_URL": "AWS::SQS::Queue",
    "FOLLOWUP_QUEUE_URL": "AWS::SQS::Queue",
    "STATE_TABLE": "AWS::DynamoDB::Table",
    "IDEMPOTENCY_TABLE": "AWS::DynamoDB::Table",
}
FUNCTIONS = ("LeaseKeeperFunction", "SlackCommandsFunction", "NotebookWorkerFunction")


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return source_template()


@pytest.fixture(scope="module")
def transformed(source: dict[str, Any]) -> dict[str, Any]:
    return transformed_template(source)


def _functions(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in source["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def _schedules(transformed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The schedules by the function they invoke."""
    return {
        _reference(schedule["Properties"]["Target"]["Arn"]) or name: schedule
        for name, schedule in _of_type(transformed, "AWS::Scheduler::Schedule").items()
    }


def test_template_transforms_to_three_functions_on_one_layer(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    functions = _of_type(transformed, "AWS::Lambda::Function")
    layers = [n for n, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert set(functions) == set(FUNCTIONS)
    assert len(layers) == 1
    for function in functions.values():
        assert function["Properties"]["Layers"] == [{"Ref": layers[0]}]


@contextmanager
def _deployed(
    source: dict[str, Any],
    transformed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> Iterator[tuple[ModuleType, str]]:
    """Function `name`'s handler module, imported under its deployed environment (moto holds the
    stack's queues, tables and SSM parameter); yields it with the handler's attribute name."""
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
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        stack = Stack(transformed)
        deploy_to_moto(stack)
        for variable, value in stack.environment(name).items():
            env.setenv(variable, value)
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


def _statements(transformed: dict[str, Any], role: str) -> list[dict[str, Any]]:
    properties = transformed["Resources"][role]["Properties"]
    return [
        statement
        for policy in properties.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


@pytest.mark.parametrize("function", ["LeaseKeeperFunction", "NotebookWorkerFunction"])
def test_keeper_and_worker_read_the_same_policy_with_the_overlay(
    function: str,
    source: dict[str, Any],
    transformed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's fan-out sweeps decide under the keeper's policy: the file shipped in the
    layer plus the stack's SSM overlay (named after the stack), which each function may read."""
    from nbkeeper.settings import DEFAULT_POLICY_PATH

    stack = Stack(transformed, name="team-a")
    environment = stack.environment(function)
    assert environment["POLICY_PARAMETER"] == "/team-a/policy"
    assert "POLICY_PATH" not in environment  # the default: the file in the layer
    with _deployed(source, transformed, monkeypatch, function) as (module, _):
        assert module.SETTINGS.policy_path == str(DEFAULT_POLICY_PATH)
        assert module.POLICY.current().idle_threshold_minutes > 0
    granted = [
        stack.resolve(statement["Resource"])
        for statement in _statements(transformed, f"{function}Role")
        if "ssm:GetParameter" in _actions(statement)
    ]
    assert granted == ["arn:aws:ssm:eu-west-1:123456789012:parameter/team-a/policy"]


def test_policy_parameter_name_override_and_pattern(source: dict[str, Any]) -> None:
    """An operator may name the parameter (without the leading slash); the pattern refuses a
    leading, trailing or doubled slash, which would make `//x` or an unusable path."""
    template = transformed_template(source)
    named = Stack(template, parameters={"PolicyParameterName": "ops/nbkeeper/policy"})
    assert named.environment("LeaseKeeperFunction")["POLICY_PARAMETER"] == "/ops/nbkeeper/policy"
    pattern = source["Parameters"]["PolicyParameterName"]["AllowedPattern"]
    for good in ("", "nbkeeper/policy", "team.a/nb-keeper_1/policy", "policy"):
        assert re.fullmatch(pattern, good), good
    for bad in ("/nbkeeper/policy", "//x", "a//b", "a/", "a b", "a/$"):
        assert not re.fullmatch(pattern, bad), bad


def test_policy_overlay_is_created_once_and_never_rewritten_by_an_update(
    transformed: dict[str, Any],
) -> None:
    """CloudFormation writes a resource again only when its properties change. The overlay's
    properties are constants (its name depends on the stack or on the one name parameter), so
    no update of the stack rewrites what an operator put there."""
    parameter = transformed["Resources"]["PolicyParameter"]
    properties = parameter["Properties"]
    assert properties["Value"] == "{}"
    assert set(properties) == {"Name", "Type", "Value", "Description"}
    assert all(isinstance(properties[key], str) for key in ("Type", "Value", "Description"))
    changed = Stack(transformed, parameters={"ScheduleTimezone": "Asia/Singapore"})
    assert changed.resolve(properties["Name"]) == Stack(transformed).resolve(properties["Name"])


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
        for n, r in _of_type(transformed, "AWS::Lambda::Function").items()
    }
    assert {"COMMANDS_QUEUE_URL", "STATE_TABLE"} <= env["SlackCommandsFunction"]
    assert {"COMMANDS_QUEUE_URL", "STATE_TABLE", "IDEMPOTENCY_TABLE"} <= env[
        "NotebookWorkerFunction"
    ]
    assert {"STATE_TABLE", "COMMANDS_QUEUE_URL"} <= env["LeaseKeeperFunction"]


def test_one_timezone_one_list_of_admins_one_warning_channel(transformed: dict[str, Any]) -> None:
    """The deploy's answers reach every function that reads them, from one parameter each."""
    stack = Stack(
        transformed,
        parameters={
            "ScheduleTimezone": "Asia/Singapore",
            "SlackAdmins": "U0ADMIN1,U0ADMIN2",
            "WarningChannel": "C0WARNINGS",
        },
    )
    for function in FUNCTIONS:
        environment = stack.environment(function)
        assert environment["NBKEEPER_TIMEZONE"] == "Asia/Singapore", function
        assert environment["SLACK_ADMINS"] == "U0ADMIN1,U0ADMIN2", function
    for function in ("LeaseKeeperFunction", "NotebookWorkerFunction"):
        assert stack.environment(function)["NBKEEPER_WARNING_CHANNEL"] == "C0WARNINGS"
    schedule = _schedules(transformed)["LeaseKeeperFunction"]
    assert stack.resolve(schedule["Properties"]["ScheduleExpressionTimezone"]) == "Asia/Singapore"


def _redrives(transformed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]["RedrivePolicy"]
        for name, resource in _of_type(transformed, "AWS::SQS::Queue").items()
        if "RedrivePolicy" in resource["Properties"]
    }


def test_queues_outlast_the_worker_and_have_dead_letter_queues(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    worker_timeout = resources["NotebookWorkerFunction"]["Properties"]["Timeout"]
    commands = resources["CommandsQueue"]["Properties"]
    assert commands["FifoQueue"] is True
    assert set(_redrives(transformed)) == {"CommandsQueue", "FollowUpQueue"}
    for queue in ("CommandsQueue", "FollowUpQueue"):
        properties = resources[queue]["Properties"]
        assert properties["VisibilityTimeout"] >= 6 * worker_timeout
        dlq = _reference(properties["RedrivePolicy"]["deadLetterTargetArn"])
        assert dlq in resources


def test_messages_get_five_receives_and_the_worker_knows_the_count(
    transformed: dict[str, Any],
) -> None:
    """AWS advises maxReceiveCount >= 5 with Lambda (throttled batches count as receives); the
    worker tells the author on the last receive, so it must know the same number."""
    counts = {
        queue: redrive["maxReceiveCount"] for queue, redrive in _redrives(transformed).items()
    }
    assert all(count >= 5 for count in counts.values()), counts
    worker = Stack(transformed).environment("NotebookWorkerFunction")
    assert {int(worker["MAX_RECEIVE_COUNT"])} == set(counts.values())


# Where each resource type takes a physical name that must be unique in an account and region.
PHYSICAL_NAMES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SSM::Parameter": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}
# Types with no account-unique name.
UNNAMED = {
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::SNS::Subscription",
}


def test_no_fixed_physical_names(transformed: dict[str, Any]) -> None:
    """A second stack in the same account and region deploys: every name is CloudFormation's
    (generated from the stack) or built from the stack name, so two stacks never share one."""
    one, two = Stack(transformed, name="nbkeeper"), Stack(transformed, name="nbkeeper-staging")
    for name, resource in transformed["Resources"].items():
        kind = resource["Type"]
        assert kind in PHYSICAL_NAMES or kind in UNNAMED, f"{name}: add {kind} to this test"
        key = PHYSICAL_NAMES.get(kind)
        if key is None or key not in resource.get("Properties", {}):
            continue
        value = resource["Properties"][key]
        assert one.resolve(value) != two.resolve(value), f"{name}.{key} is fixed: {value}"


def test_every_alarm_notifies_the_topic(transformed: dict[str, Any]) -> None:
    """Nobody watches the console: every alarm has an action, the topic always exists, and the
    optional email subscription exists exactly when an address is given."""
    topics = _of_type(transformed, "AWS::SNS::Topic")
    assert list(topics) == ["AlarmTopic"]
    assert "Condition" not in topics["AlarmTopic"]
    alarms = _of_type(transformed, "AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["Properties"].get("AlarmActions") == [{"Ref": "AlarmTopic"}], name
        assert "Condition" not in alarm, name
    subscription = transformed["Resources"]["AlarmEmailSubscription"]
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert not Stack(transformed).condition(subscription["Condition"])
    with_email = Stack(transformed, parameters={"AlarmEmail": "ops@example.com"})
    assert with_email.condition(subscription["Condition"])
    assert with_email.resolve(subscription["Properties"]["Endpoint"]) == "ops@example.com"


def _watched(alarm: dict[str, Any]) -> tuple[str, str, str | None]:
    properties = alarm["Properties"]
    (dimension,) = properties["Dimensions"]
    return properties["Namespace"], properties["MetricName"], _reference(dimension["Value"])


def test_alarms_cover_every_dead_letter_queue_function_and_the_api(
    transformed: dict[str, Any],
) -> None:
    """The keeper's missed passes (its Lambda DLQ and its schedule's DLQ), commands and
    follow-ups that gave up, every function's errors (the webhook's too) and API 5xx."""
    resources = transformed["Resources"]
    alarms = {
        name: _watched(alarm)
        for name, alarm in _of_type(transformed, "AWS::CloudWatch::Alarm").items()
    }
    keeper = resources["LeaseKeeperFunction"]["Properties"]
    schedule = _schedules(transformed)["LeaseKeeperFunction"]
    keeper_dlqs = {
        _reference(keeper["DeadLetterConfig"]["TargetArn"]),
        _reference(schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"]),
    }
    assert keeper_dlqs == {"KeeperDeadLetterQueue"}
    depth = ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarms["KeeperDeadLetterAlarm"] == (*depth, "KeeperDeadLetterQueue")
    assert alarms["CommandsDeadLetterAlarm"] == (*depth, "CommandsDeadLetterQueue")
    assert alarms["FollowUpDeadLetterAlarm"] == (*depth, "FollowUpDeadLetterQueue")
    assert alarms["LeaseKeeperErrorsAlarm"] == ("AWS/Lambda", "Errors", "LeaseKeeperFunction")
    assert alarms["WorkerErrorsAlarm"] == ("AWS/Lambda", "Errors", "NotebookWorkerFunction")
    assert alarms["SlackCommandsErrorsAlarm"] == ("AWS/Lambda", "Errors", "SlackCommandsFunction")
    assert alarms["SlackApiServerErrorsAlarm"] == ("AWS/ApiGateway", "5xx", "SlackApi")
    # and nothing slips through: every dead-letter queue and every function is watched
    dead_letter_queues = {
        _reference(redrive["deadLetterTargetArn"]) for redrive in _redrives(transformed).values()
    } | keeper_dlqs
    watched = {target for _, _, target in alarms.values()}
    assert dead_letter_queues | set(FUNCTIONS) <= watched


def test_every_function_logs_to_a_group_with_retention(transformed: dict[str, Any]) -> None:
    stack = Stack(transformed)
    groups = _of_type(transformed, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        assert int(stack.resolve(group["Properties"]["RetentionInDays"])) == 30, name
    assert transformed["Parameters"]["LogRetentionDays"]["Default"] == 30
    for function in FUNCTIONS:
        config = transformed["Resources"][function]["Properties"].get("LoggingConfig", {})
        target = _reference(config.get("LogGroup"))
        assert target in groups, f"{function} logs to a group the stack does not manage"


def test_tables_are_retained_on_delete_and_replacement(transformed: dict[str, Any]) -> None:
    tables = _of_type(transformed, "AWS::DynamoDB::Table")
    assert set(tables) == {"StateTable", "IdempotencyTable"}
    for name, table in tables.items():
        assert table.get("DeletionPolicy") == "Retain", name
        assert table.get("UpdateReplacePolicy") == "Retain", name


def test_functions_and_layer_run_python_3_13_on_arm64(transformed: dict[str, Any]) -> None:
    """The layer's compiled wheels must match: shared/Makefile builds for the same Python and
    the same architecture (aarch64 is arm64's name in wheel tags)."""
    for function in FUNCTIONS:
        properties = transformed["Resources"][function]["Properties"]
        assert properties["Runtime"] == "python3.13", function
        assert properties["Architectures"] == ["arm64"], function
    (layer,) = _of_type(transformed, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    makefile = (ROOT / "shared" / "Makefile").read_text()
    assert re.search(r"^LAYER_ARCH \?= aarch64$", makefile, re.MULTILINE)
    assert re.search(r"^PYTHON_VERSION = 3\.13$", makefile, re.MULTILINE)


def test_reserved_concurrency_is_the_keepers_one(transformed: dict[str, Any]) -> None:
    """A new account's pool can be 10: only the keeper reserves (1, one pass at a time); the
    worker is bounded by MaximumConcurrency on its queues, which takes nothing from the pool."""
    stack = Stack(transformed)
    reserved = {
        function: int(stack.resolve(properties["ReservedConcurrentExecutions"]))
        for function, resource in _of_type(transformed, "AWS::Lambda::Function").items()
        if "ReservedConcurrentExecutions" in (properties := resource["Properties"])
    }
    assert reserved == {"LeaseKeeperFunction": 1}
    assert sum(reserved.values()) <= 1
    mappings = _of_type(transformed, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 2
    for name, mapping in mappings.items():
        limit = stack.resolve(mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"])
        assert int(limit) == 5, name


def test_schedule_is_named_by_cloudformation_and_may_reach_its_dead_letter_queue(
    transformed: dict[str, Any],
) -> None:
    schedules = _schedules(transformed)
    assert set(schedules) == {"LeaseKeeperFunction", "NotebookWorkerFunction"}
    for schedule in schedules.values():
        assert "Name" not in schedule["Properties"]
    target = schedules["LeaseKeeperFunction"]["Properties"]["Target"]
    role = _reference(target["RoleArn"])
    assert role is not None
    sends = [
        _reference(statement["Resource"])
        for statement in _statements(transformed, role)
        if "sqs:SendMessage" in _actions(statement)
    ]
    assert sends == ["KeeperDeadLetterQueue"]


def test_worker_reads_every_dead_letter_queue_on_a_schedule_and_never_deletes(
    transformed: dict[str, Any],
) -> None:
    """The dead-letter reader (nbkeeper.worker.deadletters) runs in the worker on its own
    schedule, with the queues' DLQs in its environment, allowed to receive and release only."""
    from nbkeeper.worker.deadletters import DEAD_LETTER_SOURCE

    target = _schedules(transformed)["NotebookWorkerFunction"]["Properties"]["Target"]
    assert json.loads(target["Input"]) == {"source": DEAD_LETTER_SOURCE}
    redrive_targets = {
        _reference(redrive["deadLetterTargetArn"]) for redrive in _redrives(transformed).values()
    }
    worker = transformed["Resources"]["NotebookWorkerFunction"]["Properties"]
    variables = worker["Environment"]["Variables"]
    named = {_reference(variables["COMMANDS_DLQ_URL"]), _reference(variables["FOLLOWUP_DLQ_URL"])}
    assert named == redrive_targets == {"CommandsDeadLetterQueue", "FollowUpDeadLetterQueue"}
    on_dlqs = [
        statement
        for statement in _statements(transformed, "NotebookWorkerFunctionRole")
        if any(_reference(r) in redrive_targets for r in _resources(statement))
    ]
    actions = {action for statement in on_dlqs for action in _actions(statement)}
    assert actions == {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"}
    for statement in on_dlqs:
        assert {_reference(r) for r in _resources(statement)} == redrive_targets


def _resources(statement: dict[str, Any]) -> list[Any]:
    found = statement.get("Resource", [])
    return found if isinstance(found, list) else [found]


def test_every_parameter_says_what_to_enter_and_its_default_is_allowed(
    source: dict[str, Any],
) -> None:
    """`sam deploy --guided` asks each parameter: each has a description, and a default that
    CloudFormation accepts (only the project id has none: it cannot be guessed)."""
    for name, spec in source["Parameters"].items():
        assert len(spec.get("Description", "")) > 20, f"{name}: say what to enter"
        if "Default" not in spec:
            assert name == "ModelArtsProjectId", f"{name}: give a default"
            continue
        default = spec["Default"]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(default)), name
        if "AllowedValues" in spec:
            assert default in spec["AllowedValues"], name
        if "MinValue" in spec:
            assert spec["MinValue"] <= default <= spec["MaxValue"], name


def test_default_image_is_a_public_cpu_image_by_name(source: dict[str, Any]) -> None:
    """A fresh deployment's `/nb create NAME` needs no image UUID: the default names a public
    CPU image (the one the local harness uses too, so demo and deploy agree)."""
    from nbkeeper_local.emulator.catalogue import DEFAULT_IMAGE_NAME, PUBLIC_IMAGES

    default = source["Parameters"]["NotebookDefaultImage"]["Default"]
    assert default == DEFAULT_IMAGE_NAME
    (image,) = [i for i in PUBLIC_IMAGES if i["name"] == default]
    assert image["type"] == "BUILD_IN" and image["support_res_categories"] == ["CPU"]


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
    from nbkeeper_local.invoke import function_for

    files = sorted((ROOT / "events").glob("*.json"))
    assert files, "events/ is empty"
    with local_world(Emulator(clock=SimClock.stepped())):
        handlers = {
            folder: load_function(folder)
            for folder in ("lease_keeper", "slack_commands", "notebook_worker")
        }
        for path in files:
            folder = function_for(path, None)
            event = json.loads(path.read_text())
            if folder == "slack_commands":
                event = resign(event, LOCAL_SIGNING_SECRET)
            result = handlers[folder].lambda_handler(event, FakeLambdaContext(folder))
            if folder == "slack_commands":
                assert result["statusCode"] == 200, (path.name, result)
            elif folder == "notebook_worker" and "Records" not in event:
                assert result["read"] == 0, (path.name, result)  # the dead-letter reader
            elif folder == "notebook_worker":
                for record in event["Records"]:
                    parse_command(record["body"])
                assert isinstance(result["batchItemFailures"], list), path.name
            else:
                assert result["notebooks"] >= 0, (path.name, result)
