"""The official SDK's ModelArts client, pointed at the emulator (the oracle of these tests)."""

from __future__ import annotations

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmodelarts.v1 import ModelArtsClient

from tests.emulator_fixtures import ACCESS_KEY, PROJECT_ID, SECRET_KEY


@pytest.fixture
def sdk(emulator_http: str) -> ModelArtsClient:
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    config.timeout = (5, 10)
    return (
        ModelArtsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ACCESS_KEY, SECRET_KEY, PROJECT_ID))
        .with_endpoints([emulator_http])
        .build()
    )
