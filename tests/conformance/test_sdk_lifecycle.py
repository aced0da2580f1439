"""The official huaweicloudsdkmodelarts client, unmodified, drives the emulator over real HTTP.

The SDK signs with its own SDK-HMAC-SHA256 signer: this is the independent check that the
emulator verifies signatures, routes, bodies and error replies the way the service does, with
its documented defaults (ModelArts.6309 as HTTP 400, limit 10/20/50 only), and that its loose
replies are ones the SDK itself reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    AffinityRule,
    AffinityType,
    Config,
    ContainerHooks,
    CreateNotebookRequest,
    CreateNotebookTagsRequest,
    CreateTmsTagsRequest,
    CustomHooks,
    DeleteNotebookRequest,
    DeleteNotebookTagsRequest,
    DeleteTmsTagsRequest,
    LeaseReq,
    ListAllNotebooksRequest,
    ListFlavorsRequest,
    ListNotebooksRequest,
    ModelArtsClient,
    NotebookCreateRequest,
    NotebookCustomSpec,
    NotebookUpdateRequest,
    PublicNetworkConfig,
    RenewLeaseRequest,
    ShowLeaseRequest,
    ShowNotebookRequest,
    ShowNotebookTagsRequest,
    StartNotebookRequest,
    StopNotebookRequest,
    TmsTag,
    UpdateNotebookRequest,
    VolumeMountRequest,
)

from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper_local.emulator import Emulator, Looseness, Timings
from tests.emulator_fixtures import ACCESS_KEY, IMAGE_ID, PROJECT_ID, ClientFactory

HOUR_MS = 3_600_000
T = Timings()


def refused(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def create(sdk: ModelArtsClient, name: str = "sdk-nb") -> Any:
    body = NotebookCreateRequest(
        name=name,
        image_id=IMAGE_ID,
        flavor="modelarts.vm.cpu.2u",
        description="created by the official SDK",
        volume=VolumeMountRequest(category="EVS", ownership="MANAGED", capacity=5),
        lease=LeaseReq(duration=2 * HOUR_MS, type="TIMING"),
    )
    return sdk.create_notebook(CreateNotebookRequest(body=body))


def test_whole_lifecycle(sdk: ModelArtsClient, emulator: Emulator) -> None:
    created = create(sdk)
    assert created.status == "CREATING"
    assert created.url.endswith(f"/{created.id}/lab")
    emulator.advance(T.create_s)

    listed = sdk.list_notebooks(ListNotebooksRequest(limit=10, offset=0))
    assert (listed.total, listed.current, [n.id for n in listed.data]) == (1, 0, [created.id])
    everyone = sdk.list_all_notebooks(ListAllNotebooksRequest(status="RUNNING", name="sdk"))
    assert [n.id for n in everyone.data] == [created.id]

    shown = sdk.show_notebook(ShowNotebookRequest(id=created.id))
    assert (shown.status, shown.flavor, shown.token) == (
        "RUNNING",
        "modelarts.vm.cpu.2u",
        created.token,
    )

    lease = sdk.show_lease(ShowLeaseRequest(id=created.id))
    assert (lease.duration, lease.type, lease.enable) == (2 * HOUR_MS, "TIMING", True)
    emulator.advance(600)
    renewed = sdk.renew_lease(
        RenewLeaseRequest(id=created.id, body=LeaseReq(duration=3 * HOUR_MS, type="TIMING"))
    )
    assert renewed.duration == (T.create_s + 600) * 1000 + 3 * HOUR_MS

    assert sdk.stop_notebook(StopNotebookRequest(id=created.id)).status == "STOPPING"
    emulator.advance(T.stop_s)
    updated = sdk.update_notebook(
        UpdateNotebookRequest(
            id=created.id,
            body=NotebookUpdateRequest(name="sdk-renamed", flavor="modelarts.vm.cpu.8u"),
        )
    )
    assert (updated.name, updated.flavor) == ("sdk-renamed", "modelarts.vm.cpu.8u")

    started = sdk.start_notebook(
        StartNotebookRequest(id=created.id, duration=HOUR_MS, type="TIMING")
    )
    assert started.status == "STARTING"
    emulator.advance(T.start_s)
    assert sdk.show_notebook(ShowNotebookRequest(id=created.id)).status == "RUNNING"

    sdk.create_notebook_tags(
        CreateNotebookTagsRequest(
            resource_id=created.id,
            body=CreateTmsTagsRequest(
                tags=[TmsTag(key="owner", value="alice"), TmsTag(key="env", value="dev")]
            ),
        )
    )
    summary = sdk.show_notebook_tags(ShowNotebookTagsRequest())
    assert sorted((t.key, t.values) for t in summary.tags) == [
        ("env", ["dev"]),
        ("owner", ["alice"]),
    ]
    sdk.delete_notebook_tags(
        DeleteNotebookTagsRequest(
            resource_id=created.id, body=DeleteTmsTagsRequest(tags=[TmsTag(key="env")])
        )
    )
    assert [t.key for t in sdk.show_notebook(ShowNotebookRequest(id=created.id)).tags] == ["owner"]

    assert sdk.delete_notebook(DeleteNotebookRequest(id=created.id)).status == "DELETING"
    emulator.advance(T.delete_s)
    gone = refused(lambda: sdk.show_notebook(ShowNotebookRequest(id=created.id)))
    assert (gone.status_code, gone.error_code) == (400, "ModelArts.6309")
    assert gone.request_id


def test_flavor_catalogue(sdk: ModelArtsClient) -> None:
    flavors = sdk.list_flavors(ListFlavorsRequest())
    assert "modelarts.vm.cpu.2u" in {f.id for f in flavors.flavors}


def test_illegal_transitions_raise_the_documented_errors(
    sdk: ModelArtsClient, emulator: Emulator
) -> None:
    notebook_id = create(sdk).id
    emulator.advance(T.create_s)
    start_running = refused(lambda: sdk.start_notebook(StartNotebookRequest(id=notebook_id)))
    update_running = refused(
        lambda: sdk.update_notebook(
            UpdateNotebookRequest(id=notebook_id, body=NotebookUpdateRequest(name="x"))
        )
    )
    sdk.stop_notebook(StopNotebookRequest(id=notebook_id))
    stop_stopping = refused(lambda: sdk.stop_notebook(StopNotebookRequest(id=notebook_id)))
    emulator.advance(T.stop_s)
    stop_stopped = refused(lambda: sdk.stop_notebook(StopNotebookRequest(id=notebook_id)))
    lease_stopped = refused(lambda: sdk.show_lease(ShowLeaseRequest(id=notebook_id)))
    renew_stopped = refused(
        lambda: sdk.renew_lease(RenewLeaseRequest(id=notebook_id, body=LeaseReq(duration=HOUR_MS)))
    )
    assert [
        (e.status_code, e.error_code)
        for e in (
            start_running,
            update_running,
            stop_stopping,
            stop_stopped,
            lease_stopped,
            renew_stopped,
        )
    ] == [
        (400, "ModelArts.6305"),
        (400, "ModelArts.6347"),
        (400, "ModelArts.6308"),
        (400, "ModelArts.6307"),
        (400, "ModelArts.6327"),
        (400, "ModelArts.6327"),
    ]


def test_bad_input_is_refused_with_the_service_codes(
    sdk: ModelArtsClient, emulator: Emulator
) -> None:
    notebook_id = create(sdk).id
    emulator.advance(T.create_s)
    out_of_range = refused(
        lambda: sdk.renew_lease(
            RenewLeaseRequest(id=notebook_id, body=LeaseReq(duration=80 * HOUR_MS))
        )
    )
    bad_chars = refused(
        lambda: sdk.create_notebook(
            CreateNotebookRequest(
                body=NotebookCreateRequest(
                    name="ok",
                    image_id=IMAGE_ID,
                    flavor="modelarts.vm.cpu.2u",
                    description="<script>",
                    volume=VolumeMountRequest(category="EVS", ownership="MANAGED"),
                )
            )
        )
    )
    assert (out_of_range.error_code, bad_chars.error_code) == ("ModelArts.6349", "ModelArts.6334")


def test_wrong_secret_is_rejected_by_signature_check(emulator_http: str) -> None:
    client = (
        ModelArtsClient.new_builder()
        .with_credentials(BasicCredentials(ACCESS_KEY, "not-the-secret", PROJECT_ID))
        .with_endpoints([emulator_http])
        .build()
    )
    error = refused(lambda: client.list_notebooks(ListNotebooksRequest()))
    assert (error.status_code, error.error_code) == (401, "APIG.0303")


def test_fields_only_the_sdk_documents_are_accepted(
    sdk: ModelArtsClient, emulator: Emulator
) -> None:
    body = NotebookCreateRequest(
        name="sdk-extras",
        image_id=IMAGE_ID,
        flavor="modelarts.vm.cpu.2u",
        volume=VolumeMountRequest(
            category="EVS", ownership="MANAGED", mount_path="/home/ma-user/work/", read_only=False
        ),
        hooks=CustomHooks(container_hooks=ContainerHooks(post_start=Config(type="SCRIPT"))),
        public_network_config=PublicNetworkConfig(public_network_type="SHARED"),
    )
    notebook_id = sdk.create_notebook(CreateNotebookRequest(body=body)).id
    emulator.advance(T.create_s)
    sdk.stop_notebook(StopNotebookRequest(id=notebook_id))
    emulator.advance(T.stop_s)
    change = NotebookUpdateRequest(
        custom_spec=NotebookCustomSpec(cpu=2, memory=8192, arch="X86_64", category="CPU"),
        affinity=AffinityType(
            required_during_scheduling_ignored_during_execution=[
                AffinityRule(key="zone", operator="In", values=["a"])
            ]
        ),
        public_network_config=PublicNetworkConfig(public_network_type="FORBIDDEN"),
    )
    updated = sdk.update_notebook(UpdateNotebookRequest(id=notebook_id, body=change))
    assert updated.id == notebook_id
    sdk.create_notebook_tags(
        CreateNotebookTagsRequest(
            resource_id=notebook_id,
            body=CreateTmsTagsRequest(tags=[TmsTag(key="チーム", value="データ")]),
        )
    )
    shown = sdk.show_notebook(ShowNotebookRequest(id=notebook_id))
    assert [(t.key, t.value) for t in shown.tags] == [("チーム", "データ")]


def test_a_limit_the_sdk_does_not_document_is_refused(sdk: ModelArtsClient) -> None:
    for limit in (10, 20, 50):
        assert sdk.list_notebooks(ListNotebooksRequest(limit=limit)).total == 0
    error = refused(lambda: sdk.list_notebooks(ListNotebooksRequest(limit=25)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.0104")


@pytest.mark.parametrize(
    "looseness",
    [Looseness.UNKNOWN_VALUES, Looseness.NULLS, Looseness.EXTRA_FIELDS],
)
def test_the_sdk_reads_loose_replies(
    sdk: ModelArtsClient, emulator: Emulator, looseness: Looseness
) -> None:
    """Loose replies are ones the official SDK accepts: they are plausible service replies."""
    records = emulator.seed_fleet(size=30, status_weights={NotebookStatus.RUNNING: 1.0})
    emulator.set_loose_rate(1.0, kinds=(looseness,))
    listed = sdk.list_all_notebooks(ListAllNotebooksRequest(limit=50))
    assert sorted(n.id for n in listed.data) == sorted(r.id for r in records)
    shown = sdk.show_notebook(ShowNotebookRequest(id=records[0].id))
    lease = sdk.show_lease(ShowLeaseRequest(id=records[0].id))
    if looseness is Looseness.UNKNOWN_VALUES:
        assert (shown.feature, lease.type) == ("FUTURE_NOTEBOOK", "FUTURE_TIMING")
    assert emulator.loose.applied[looseness] >= 31


def test_a_broken_record_fails_the_sdks_page_but_not_ours(
    sdk: ModelArtsClient, emulator: Emulator, emulator_client: ClientFactory
) -> None:
    """Why nbkeeper reads records one by one: the SDK loses the whole page to one record."""
    records = emulator.seed_fleet(size=20, status_weights={NotebookStatus.RUNNING: 1.0})
    emulator.set_loose_rate(0.3, seed=5, kinds=(Looseness.BROKEN,))
    broken = {r.id for r in records if emulator.loose.looseness(r.id) is not None}
    assert broken
    with pytest.raises((ValueError, TypeError)):
        sdk.list_all_notebooks(ListAllNotebooksRequest(limit=50))

    async def ours() -> list[str]:
        async with emulator_client() as client:
            return [n.id for n in await client.list_notebooks(all_users=True)]

    assert sorted(asyncio.run(ours())) == sorted({r.id for r in records} - broken)
