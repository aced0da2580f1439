"""AWS in-process (moto): one place for the fake credentials and the template's tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from nbkeeper_local.harness import AWS_REGION, create_aws_resources


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every boto3 client made inside the test, with fake credentials and no endpoint
    override (a developer's AWS_ENDPOINT_URL must not leak in)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def aws_resources(aws: None) -> dict[str, str]:
    """The template's queues and tables in moto; the functions' environment for them."""
    return create_aws_resources()


@pytest.fixture
def state_table(aws_resources: dict[str, str]) -> Any:
    """The state table (boto3 Table resource)."""
    return boto3.resource("dynamodb").Table(aws_resources["STATE_TABLE"])
