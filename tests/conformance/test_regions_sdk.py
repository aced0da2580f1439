"""Our region table and override rule against huaweicloudsdkmodelarts' ModelArtsRegion."""

from __future__ import annotations

import pytest
from huaweicloudsdkmodelarts.v1.region.modelarts_region import ModelArtsRegion

from nbkeeper.modelarts.regions import (
    MODELARTS_ENDPOINTS,
    UnknownRegionError,
    endpoint_for,
    override_variable,
)


def test_same_regions_as_the_sdk() -> None:
    assert set(MODELARTS_ENDPOINTS) == set(ModelArtsRegion.static_fields)


@pytest.mark.parametrize("region", sorted(ModelArtsRegion.static_fields))
def test_same_endpoint_as_the_sdk(region: str) -> None:
    assert endpoint_for(region, {}) == ModelArtsRegion.static_fields[region].endpoints[0]


def test_ap_southeast_1_is_the_cn_domain() -> None:
    assert endpoint_for("ap-southeast-1", {}) == "https://modelarts.ap-southeast-1.myhuaweicloud.cn"


@pytest.mark.parametrize("region", ["cn-north-4", "xx-test-9"])
def test_environment_override_as_the_sdk(region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    name = override_variable(region)
    value = "https://127.0.0.1:9443,https://backup.example.com"
    monkeypatch.setenv(name, value)
    sdk = ModelArtsRegion.value_of(region)
    assert name == "HUAWEICLOUD_SDK_REGION_MODELARTS_" + region.upper().replace("-", "_")
    assert endpoint_for(region, {name: value}) == sdk.endpoints[0] == "https://127.0.0.1:9443"


def test_unknown_region_lists_known_ones() -> None:
    with pytest.raises(UnknownRegionError) as caught:
        endpoint_for("mars-north-1", {})
    message = str(caught.value)
    assert "mars-north-1" in message
    assert "cn-north-4" in message
    assert "HUAWEICLOUD_SDK_REGION_MODELARTS_MARS_NORTH_1" in message
    with pytest.raises(KeyError):
        ModelArtsRegion.value_of("mars-north-1")


def test_empty_region_is_rejected() -> None:
    with pytest.raises(UnknownRegionError, match="empty"):
        endpoint_for("", {})
