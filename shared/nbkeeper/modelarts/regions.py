"""ModelArts region id -> endpoint, resolved the way the official SDK does.

Mirrors huaweicloudsdkmodelarts 3.1.219 `ModelArtsRegion.value_of`: the environment override
`HUAWEICLOUD_SDK_REGION_MODELARTS_<REGION>` wins (first of a comma-separated list), then the
static table. The SDK's profile file (~/.huaweicloud/regions.yaml) is not consulted: Lambda has
none. tests/conformance/test_regions_sdk.py cross-checks the table against the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping

ENV_PREFIX = "HUAWEICLOUD_SDK_REGION_MODELARTS_"

_COM_REGIONS = (
    "cn-north-1",
    "cn-north-2",
    "cn-north-4",
    "cn-north-9",
    "cn-north-11",
    "cn-north-12",
    "cn-south-1",
    "cn-east-3",
    "cn-east-4",
    "cn-southwest-2",
    "cn-southwest-3",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "af-south-1",
    "af-north-1",
    "la-south-2",
    "la-north-2",
    "sa-brazil-1",
    "tr-west-1",
    "me-east-1",
)

MODELARTS_ENDPOINTS: Mapping[str, str] = {
    **{region: f"https://modelarts.{region}.myhuaweicloud.com" for region in _COM_REGIONS},
    # The one region the SDK serves from the .cn domain.
    "ap-southeast-1": "https://modelarts.ap-southeast-1.myhuaweicloud.cn",
}


class UnknownRegionError(ValueError):
    """The region has no known ModelArts endpoint and no override is set."""


def override_variable(region: str) -> str:
    """Name of the environment variable that overrides `region`'s endpoint."""
    return ENV_PREFIX + region.replace("-", "_").upper()


def known_regions() -> list[str]:
    return sorted(MODELARTS_ENDPOINTS)


def endpoint_for(region: str, environ: Mapping[str, str]) -> str:
    """The ModelArts endpoint (scheme + host) for `region`, as the official SDK resolves it."""
    if not region:
        raise UnknownRegionError("region is empty; use one of: " + ", ".join(known_regions()))
    override = environ.get(override_variable(region), "")
    first = override.split(",")[0].strip()
    if first:
        return first.rstrip("/")
    try:
        return MODELARTS_ENDPOINTS[region]
    except KeyError:
        raise UnknownRegionError(
            f"region {region!r} has no known ModelArts endpoint; use one of: "
            f"{', '.join(known_regions())}; or set {override_variable(region)} "
            "to the endpoint URL"
        ) from None
