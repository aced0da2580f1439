"""Configuration contract: variables named in errors, secrets hidden, client built from settings."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from nbkeeper.modelarts.client import run_sync
from nbkeeper.settings import (
    ModelArtsSettings,
    SettingsError,
    build_client,
    env,
    load_settings,
)

PROJECT = "0123456789abcdef0123456789abcdef"
AK = "AKEXAMPLE0000000001"
SK = "SK-very-secret-value-123"
BASE = {"MODELARTS_REGION": "cn-north-4", "MODELARTS_PROJECT_ID": PROJECT}
LOCAL = {**BASE, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}


def problems(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(ModelArtsSettings, environ)
    return str(caught.value)


def capture(settings: ModelArtsSettings, **options: Any) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "nb-1"})

    client = build_client(settings, transport=httpx.MockTransport(handler), **options)
    run_sync(client.show_notebook("nb-1"))
    return seen[0]


def test_local_credentials_and_region_endpoint() -> None:
    settings = load_settings(ModelArtsSettings, {**LOCAL, "UNRELATED": "x"})
    assert settings.endpoint == "https://modelarts.cn-north-4.myhuaweicloud.com"
    assert settings.project_id == PROJECT
    request = capture(settings)
    assert request.url.host == "modelarts.cn-north-4.myhuaweicloud.com"
    assert request.headers["Authorization"].startswith(f"SDK-HMAC-SHA256 Access={AK}, ")
    assert request.headers["X-Project-Id"] == PROJECT


def test_secrets_never_in_repr_or_str() -> None:
    settings = load_settings(
        ModelArtsSettings, {**LOCAL, "HUAWEICLOUD_SDK_SECURITY_TOKEN": "st-secret-999"}
    )
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert SK not in text
        assert AK not in text
        assert "st-secret-999" not in text


def test_missing_variables_are_named_with_a_fix() -> None:
    text = problems({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK})
    assert "MODELARTS_REGION is not set: set it to the ModelArts region id" in text
    assert "MODELARTS_PROJECT_ID is not set" in text


def test_blank_values_count_as_unset() -> None:
    assert "MODELARTS_REGION is not set" in problems({**LOCAL, "MODELARTS_REGION": "  "})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (BASE, "no ModelArts credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK"),
        ({**BASE, "HUAWEICLOUD_SDK_AK": AK}, "HUAWEICLOUD_SDK_SK is not set"),
        ({**BASE, "HUAWEICLOUD_SDK_SK": SK}, "HUAWEICLOUD_SDK_AK is not set"),
        (
            {**LOCAL, "HUAWEICLOUD_CREDENTIALS_SECRET": "nbkeeper/huawei"},
            "more than one source",
        ),
        (
            {**BASE, "MODELARTS_IAM_TOKEN": "t", "HUAWEICLOUD_SDK_SECURITY_TOKEN": "s"},
            "HUAWEICLOUD_SDK_SECURITY_TOKEN is set without HUAWEICLOUD_SDK_AK/SK",
        ),
        (
            {**LOCAL, "MODELARTS_REGION": "mars-north-1"},
            "MODELARTS_REGION: region 'mars-north-1' has no known ModelArts endpoint; use one of:",
        ),
        ({**LOCAL, "MODELARTS_REGION": "North 4"}, "MODELARTS_REGION is invalid"),
        ({**LOCAL, "MODELARTS_PROJECT_ID": "a b"}, "MODELARTS_PROJECT_ID is invalid"),
        ({**LOCAL, "MODELARTS_ENDPOINT": "localhost:8765"}, "MODELARTS_ENDPOINT is invalid"),
    ],
)
def test_bad_configuration_is_named(environ: dict[str, str], expected: str) -> None:
    text = problems(environ)
    assert expected in text
    assert SK not in text


def test_unknown_region_error_lists_known_regions_and_fixes() -> None:
    text = problems({**LOCAL, "MODELARTS_REGION": "mars-north-1"})
    assert "cn-north-4" in text
    assert "HUAWEICLOUD_SDK_REGION_MODELARTS_MARS_NORTH_1" in text
    assert "MODELARTS_ENDPOINT" in text


def test_sdk_region_override_variable_is_honoured() -> None:
    environ = {
        **LOCAL,
        "MODELARTS_REGION": "mars-north-1",
        "HUAWEICLOUD_SDK_REGION_MODELARTS_MARS_NORTH_1": "https://127.0.0.1:9443",
    }
    assert load_settings(ModelArtsSettings, environ).endpoint == "https://127.0.0.1:9443"


def test_endpoint_override_for_the_emulator() -> None:
    settings = load_settings(
        ModelArtsSettings, {**LOCAL, "MODELARTS_ENDPOINT": "http://127.0.0.1:8765/"}
    )
    assert settings.endpoint == "http://127.0.0.1:8765"
    request = capture(settings)
    assert str(request.url) == f"http://127.0.0.1:8765/v1/{PROJECT}/notebooks/nb-1"


def test_iam_token_is_sent_as_x_auth_token() -> None:
    settings = load_settings(ModelArtsSettings, {**BASE, "MODELARTS_IAM_TOKEN": "iam-tok"})
    assert "iam-tok" not in repr(settings)
    request = capture(settings)
    assert request.headers["X-Auth-Token"] == "iam-tok"
    assert "Authorization" not in request.headers


def test_temporary_credentials_sign_the_security_token() -> None:
    settings = load_settings(
        ModelArtsSettings, {**LOCAL, "HUAWEICLOUD_SDK_SECURITY_TOKEN": "st-123"}
    )
    request = capture(settings)
    assert request.headers["X-Security-Token"] == "st-123"
    assert "x-security-token" in request.headers["Authorization"]


def test_credentials_secret_through_a_loader() -> None:
    settings = load_settings(
        ModelArtsSettings, {**BASE, "HUAWEICLOUD_CREDENTIALS_SECRET": "nbkeeper/huawei"}
    )
    asked: list[str] = []

    def loader(name: str) -> Any:
        asked.append(name)
        return {"ak": "SECRETAK", "sk": "SECRETSK"}

    request = capture(settings, secret_loader=loader)
    assert asked == ["nbkeeper/huawei"]
    assert "Access=SECRETAK" in request.headers["Authorization"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"ak": "A"}, "lacks 'sk'"),
        ({"access": "A", "secret": "S"}, "lacks 'ak' and 'sk'"),
        ("plain-string-sk", 'must be JSON {"ak": ..., "sk": ...}'),
    ],
)
def test_bad_secret_content_is_named_without_values(value: Any, expected: str) -> None:
    settings = load_settings(ModelArtsSettings, {**BASE, "HUAWEICLOUD_CREDENTIALS_SECRET": "s1"})
    with pytest.raises(SettingsError) as caught:
        settings.auth(lambda name: value)
    text = str(caught.value)
    assert "HUAWEICLOUD_CREDENTIALS_SECRET" in text
    assert expected in text
    assert "plain-string-sk" not in text


def test_unreadable_secret_names_the_variable() -> None:
    settings = load_settings(ModelArtsSettings, {**BASE, "HUAWEICLOUD_CREDENTIALS_SECRET": "s1"})

    def loader(name: str) -> Any:
        raise PermissionError("AccessDenied")

    with pytest.raises(SettingsError, match=r"cannot read secret 's1'.*GetSecretValue"):
        settings.auth(loader)


def test_credentials_secret_through_powertools_and_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="nbkeeper/huawei-moto", SecretString=json.dumps({"ak": "MOTOAK", "sk": "MOTOSK"})
        )
        settings = load_settings(
            ModelArtsSettings, {**BASE, "HUAWEICLOUD_CREDENTIALS_SECRET": "nbkeeper/huawei-moto"}
        )
        request = capture(settings)
    assert "Access=MOTOAK" in request.headers["Authorization"]


class WorkerSettings(ModelArtsSettings):
    """How a function composes its own settings on top of the ModelArts ones."""

    queue_url: str = env("QUEUE_URL", "set it to the SQS FIFO queue URL")
    batch: int = env("BATCH_SIZE", "set it to a whole number of messages", default=10)


def test_function_settings_extend_the_contract() -> None:
    settings = load_settings(WorkerSettings, {**LOCAL, "QUEUE_URL": "https://sqs/q.fifo"})
    assert (settings.queue_url, settings.batch) == ("https://sqs/q.fifo", 10)
    with pytest.raises(SettingsError) as caught:
        load_settings(WorkerSettings, {**LOCAL, "BATCH_SIZE": "ten"})
    assert caught.value.problems[0] == "QUEUE_URL is not set: set it to the SQS FIFO queue URL"
    assert caught.value.problems[1].startswith("BATCH_SIZE is invalid: ")
    assert "set it to a whole number" in caught.value.problems[1]


def test_importing_settings_loads_no_aws_sdk() -> None:
    code = (
        "import sys, nbkeeper.settings; "
        "bad = [m for m in ('aws_lambda_powertools', 'boto3') if m in sys.modules]; "
        "print(*bad); sys.exit(1 if bad else 0)"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ({"signing_secret": "s3cr3t", "bot_token": "xoxb-1"}, None),
        ({"bot_token": "xoxb-1"}, 'non-empty "signing_secret"'),
        ({"signing_secret": ""}, 'non-empty "signing_secret"'),
        (["not", "an", "object"], 'non-empty "signing_secret"'),
    ],
)
def test_secret_field_names_the_variable_and_what_the_secret_must_hold(
    secret: Any, expected: str | None
) -> None:
    from nbkeeper.settings import SettingsError, secret_field

    def loader(name: str) -> Any:
        assert name == "nbkeeper/slack"
        return secret

    if expected is None:
        assert secret_field("SLACK_SECRET", "nbkeeper/slack", "signing_secret", loader) == "s3cr3t"
        return
    with pytest.raises(SettingsError) as raised:
        secret_field("SLACK_SECRET", "nbkeeper/slack", "signing_secret", loader)
    assert "SLACK_SECRET" in str(raised.value)
    assert expected in str(raised.value)
    assert "xoxb-1" not in str(raised.value)


def test_secret_field_when_the_secret_cannot_be_read() -> None:
    from nbkeeper.settings import SettingsError, secret_field

    def loader(name: str) -> Any:
        raise RuntimeError("AccessDenied for arn:...")

    with pytest.raises(SettingsError, match="SLACK_SECRET: cannot read secret 'x'"):
        secret_field("SLACK_SECRET", "x", "bot_token", loader)
