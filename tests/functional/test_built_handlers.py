"""The deployable artefact itself: the real `sam build` output, checked and then run as Lambda
runs it.

- The layer built for the template's architecture (arm64) holds aarch64 binaries, exactly the
  lock in shared/requirements.txt, no AWS SDK, and is closed under its requirements except
  botocore (which the runtime provides).
- Each handler is imported from the build output by a clean interpreter (no site-packages, no
  user site, no script directory; PYTHONPATH = the built function, the layer's python/ and a
  runtime-like boto3/botocore only) with exactly the template's environment plus what the
  Lambda runtime sets, its endpoints pointed at loopback stand-ins (the ModelArts emulator, a
  moto server holding the stack's queues, tables, parameter and secrets, a fake Slack), and
  invoked on its events/ samples. Only 127.0.0.1 can be reached from it.

This machine may not run arm64 code, so the handlers run from a second `sam build` made for the
host's architecture (LAYER_ARCH), which must differ from the arm64 one only in compiled files.
Builds are cached under .aws-sam/test-builds by a hash of their inputs.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper_local.emulator import DEMO_ACCESS_KEY, DEMO_PROJECT_ID, DEMO_SECRET_KEY, Emulator
from nbkeeper_local.emulator.catalogue import DEFAULT_IMAGE_ID
from nbkeeper_local.emulator.clock import SimClock
from nbkeeper_local.emulator.server import serve_in_thread
from nbkeeper_local.harness import (
    LOCAL_BOT_TOKEN,
    LOCAL_SIGNING_SECRET,
    FakeSlack,
    fake_slack,
    resign,
)
from tests.functional.stack import REGION, Stack, deploy_to_moto, transformed_template

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_BIN = ROOT / ".venv-deploy" / "bin"
CACHE = ROOT / ".aws-sam" / "test-builds"
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
TEMPLATE_ARCH = "aarch64"  # template.yaml's arm64, as wheel tags and ELF headers name it
ELF_MACHINES = {183: "aarch64", 62: "x86_64"}
# What the Lambda Python runtime provides beside the standard library: the AWS SDK, as a pair.
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
FLEET_SIZE = 6
HOOKS = "https://hooks.slack.com/"
SECRETS = (DEMO_SECRET_KEY, LOCAL_SIGNING_SECRET, LOCAL_BOT_TOKEN)


def _host_arch() -> str:
    machine = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)


# ---------------------------------------------------------------------- the build


def _build_inputs(arch: str) -> str:
    """A digest of everything `sam build` reads, and the architecture."""
    digest = hashlib.sha256(arch.encode())
    files = [ROOT / "template.yaml", ROOT / "requirements-deploy.txt"]
    for folder in ("shared", "functions"):
        files += sorted(
            path
            for path in (ROOT / folder).rglob("*")
            if path.is_file()
            # caches and install records sam build does not ship (`make typecheck` writes
            # functions/*/.mypy_cache)
            and not any(
                part == "__pycache__" or part.startswith(".") or part.endswith(".egg-info")
                for part in path.relative_to(ROOT).parts
            )
        )
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def sam_build(arch: str) -> Path:
    """`sam build` of template.yaml with the layer's wheels for `arch`; cached by content."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"{arch}-{_build_inputs(arch)}"
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers build one at a time
        if (target / "done").is_file():
            return target / "build"
        # The deploy venv (SAM CLI) comes from requirements-deploy.txt, as for `make build`.
        subprocess.run(
            ["make", "--no-print-directory", "-s", "deploy-venv"],  # noqa: S607
            cwd=ROOT,
            check=True,
            timeout=1800,
        )
        for stale in CACHE.glob(f"{arch}-*"):
            shutil.rmtree(stale)
        environ = dict(os.environ)
        environ.pop("PYTHON", None)
        environ |= {
            "PATH": f"{DEPLOY_BIN}{os.pathsep}{os.environ['PATH']}",
            "SAM_CLI_TELEMETRY": "0",
            "LAYER_ARCH": arch,
        }
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - fixed argv
            [
                str(DEPLOY_BIN / "sam"),
                "build",
                "--template-file",
                str(ROOT / "template.yaml"),
                "--build-dir",
                str(target / "build"),
            ],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, (
            f"sam build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        (target / "done").write_text(f"{time.monotonic() - started:.1f} s\n")
    return target / "build"


@pytest.fixture(scope="session")
def built() -> Path:
    """The deployable build (the template's architecture)."""
    return sam_build(TEMPLATE_ARCH)


@pytest.fixture(scope="session")
def built_for_host(built: Path) -> Path:
    """The same build with the layer's compiled wheels for this machine."""
    host = _host_arch()
    return built if host == TEMPLATE_ARCH else sam_build(host)


def _layer(build: Path) -> Path:
    return build / "SharedLayer" / "python"


def _distributions(layer: Path) -> dict[str, importlib.metadata.Distribution]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist
        for dist in importlib.metadata.distributions(path=[str(layer)])
    }


def _elf_machine(path: Path) -> str:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path.name} is not an ELF file"
    return ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), "unknown")


def test_deployable_layer_is_arm64_and_carries_no_aws_sdk(built: Path) -> None:
    layer = _layer(built)
    binaries = sorted(layer.rglob("*.so"))
    assert {p.parent.name for p in binaries} >= {"pydantic_core", "yaml", "wrapt"}
    assert {path.name: _elf_machine(path) for path in binaries} == {
        path.name: "aarch64" for path in binaries
    }
    for sdk in ("boto3", "botocore", "s3transfer"):
        assert not (layer / sdk).exists(), f"{sdk} in the layer shadows the runtime's"
    assert not {"boto3", "botocore", "s3transfer"} & set(_distributions(layer))
    # byte-compiled for the runtime: no module is compiled at a cold start
    assert (layer / "nbkeeper" / "__pycache__" / "settings.cpython-313.pyc").is_file()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "shared" / "requirements.txt").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{text}: pin it"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_deployable_layer_is_exactly_the_lock_and_closed_but_for_botocore(built: Path) -> None:
    """--no-deps installs only what the lock lists: so the lock must list every dependency,
    except botocore, which the runtime brings with its own boto3."""
    distributions = _distributions(_layer(built))
    assert {name: dist.version for name, dist in distributions.items()} == _pins()
    environment = default_environment() | {
        "python_version": "3.13",
        "python_full_version": "3.13.0",
        "platform_machine": TEMPLATE_ARCH,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    missing = []
    for name, dist in distributions.items():
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(environment | {"extra": ""}):
                continue
            wanted = canonicalize_name(requirement.name)
            if wanted == "botocore":
                continue
            found = distributions.get(wanted)
            if found is None or not requirement.specifier.contains(found.version, prereleases=True):
                missing.append(f"{name} needs {requirement}")
    assert not missing


def test_host_build_differs_from_the_deployable_only_in_compiled_files(
    built: Path, built_for_host: Path
) -> None:
    """What the handlers run below is what would be deployed, but for the machine code."""
    host = _host_arch()
    deployable = {
        str(path.relative_to(built)).replace(TEMPLATE_ARCH, "ARCH"): path
        for path in built.rglob("*")
        if path.is_file()
    }
    local = {
        str(path.relative_to(built_for_host)).replace(host, "ARCH"): path
        for path in built_for_host.rglob("*")
        if path.is_file()
    }
    assert set(deployable) == set(local)
    # Only machine code (.so) and the wheels' own records of their platform may differ.
    differing = sorted(
        name
        for name, path in deployable.items()
        if path.read_bytes() != local[name].read_bytes()
        and not name.endswith(".so")
        and not (".dist-info/" in name and not name.endswith("/METADATA"))
    )
    assert not differing
    for function, folder in FUNCTIONS.items():
        source = ROOT / "functions" / folder / "app.py"
        assert (built / function / "app.py").read_bytes() == source.read_bytes(), function


# ---------------------------------------------------------------------- the local world


@pytest.fixture(scope="session")
def runtime_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only the runtime's AWS SDK (boto3 with its botocore and their
    dependencies), linked from the dev venv, where the Lambda runtime keeps its own."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_SDK:
        dist = importlib.metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}
        for top in tops:
            (folder / top).symlink_to(Path(str(dist.locate_file(top))))
    return folder


@dataclass
class World:
    emulator: Emulator
    emulator_url: str
    moto_url: str
    slack: FakeSlack
    xray: socket.socket
    stack: Stack

    def stand_ins(self) -> dict[str, str]:
        """The endpoints, pointed at loopback: the only values not taken from the template."""
        return {
            "MODELARTS_ENDPOINT": self.emulator_url,
            "AWS_ENDPOINT_URL": self.moto_url,
            "SLACK_API_URL": f"{self.slack.url}/api/",
        }

    def trace_documents(self) -> list[dict[str, Any]]:
        """What the X-Ray SDK sent to the daemon address (one JSON document per datagram)."""
        documents = []
        self.xray.setblocking(False)
        for _ in range(10_000):
            try:
                datagram = self.xray.recv(65536)
            except BlockingIOError:
                break
            _, _, body = datagram.decode().partition("\n")
            documents.append(json.loads(body))
        return documents


@contextmanager
def local_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Emulator, moto server and fake Slack on 127.0.0.1; the stack deployed into moto from the
    template, with the two secrets an operator creates (README, Deploy) holding local values."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    emulator = Emulator(clock=SimClock.stepped())
    emulator.seed_fleet(size=FLEET_SIZE, projects=[DEMO_PROJECT_ID], seed=7)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    xray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    xray.bind(("127.0.0.1", 0))
    try:
        with serve_in_thread(emulator) as emulator_url, fake_slack() as slack:
            monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
            monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
            stack = Stack(
                transformed_template(),
                name="nbkeeper-built",
                # the deploy's one answer: the project (`/nb create NAME` takes the template's
                # default image, a public CPU image by name)
                parameters={"ModelArtsProjectId": DEMO_PROJECT_ID},
            )
            for name, value in stack.parameters.items():  # answers CloudFormation accepts
                pattern = stack.template["Parameters"][name].get("AllowedPattern", ".*")
                assert re.fullmatch(pattern, value), f"{name}={value!r}"
            deploy_to_moto(stack)
            secrets = boto3.client("secretsmanager", region_name=REGION)
            parameters = stack.parameter_values()
            secrets.create_secret(
                Name=parameters["HuaweiCredentialsSecretName"],
                SecretString=json.dumps({"ak": DEMO_ACCESS_KEY, "sk": DEMO_SECRET_KEY}),
            )
            secrets.create_secret(
                Name=parameters["SlackSecretName"],
                SecretString=json.dumps(
                    {"signing_secret": LOCAL_SIGNING_SECRET, "bot_token": LOCAL_BOT_TOKEN}
                ),
            )
            yield World(emulator, emulator_url, moto_url, slack, xray, stack)
    finally:
        xray.close()
        moto.stop()


# ---------------------------------------------------------------------- the samples


def _to_loopback(text: str, slack: FakeSlack) -> str:
    """Samples' response_urls point at Slack; point them at the fake one."""
    return text.replace(HOOKS, f"{slack.url}/")


def _slack_event(path: Path, slack: FakeSlack) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text())
    raw = base64.b64decode(event["body"]).decode() if event["isBase64Encoded"] else event["body"]
    form = [(key, _to_loopback(value, slack)) for key, value in urllib.parse.parse_qsl(raw)]
    event["body"] = base64.b64encode(urllib.parse.urlencode(form).encode()).decode()
    event["isBase64Encoded"] = True
    return resign(event, LOCAL_SIGNING_SECRET)


def _samples(folder: str, slack: FakeSlack) -> list[dict[str, Any]]:
    events = ROOT / "events"
    if folder == "lease_keeper":
        return [json.loads((events / "schedule.json").read_text())]
    if folder == "slack_commands":
        return [_slack_event(path, slack) for path in sorted(events.glob("slack_*.json"))]
    batch = json.loads(_to_loopback((events / "sqs_commands_batch.json").read_text(), slack))
    return [batch]


# ---------------------------------------------------------------------- running them

FUNCTIONS = {
    "LeaseKeeperFunction": "lease_keeper",
    "SlackCommandsFunction": "slack_commands",
    "NotebookWorkerFunction": "notebook_worker",
}


def _lambda_environment(
    world: World, function: str, function_dir: Path, layer: Path, runtime: Path
) -> dict[str, str]:
    """What Lambda sets for a function (the template's variables and the runtime's own)."""
    properties = world.stack.template["Resources"][function]["Properties"]
    port = world.xray.getsockname()[1]
    return {
        **world.stack.environment(function),
        **world.stand_ins(),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties["MemorySize"]),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "LAMBDA_TASK_ROOT": str(function_dir),
        "LAMBDA_RUNTIME_DIR": str(runtime),
        "_HANDLER": properties["Handler"],
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(str(p) for p in (function_dir, layer, runtime)),
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task and /opt are read-only in Lambda
    }


@dataclass
class Run:
    report: dict[str, Any]
    output: str
    layer: Path
    function_dir: Path
    runtime: Path


def _run(world: World, build: Path, runtime: Path, function: str, tmp_path: Path) -> Run:
    function_dir = build / function
    layer = _layer(build)
    properties = world.stack.template["Resources"][function]["Properties"]
    spec = tmp_path / f"{function}.json"
    result = tmp_path / f"{function}-result.json"
    spec.write_text(
        json.dumps(
            {
                "handler": properties["Handler"],
                "function_name": function,
                "memory_mb": properties["MemorySize"],
                "events": _samples(FUNCTIONS[function], world.slack),
                "result": str(result),
            }
        )
    )
    interpreter = getattr(sys, "_base_executable", sys.executable)
    done = subprocess.run(  # noqa: S603 - fixed argv
        [interpreter, "-s", "-S", "-P", str(BOOTSTRAP), str(spec)],
        env=_lambda_environment(world, function, function_dir, layer, runtime),
        cwd=function_dir,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return Run(json.loads(result.read_text()), output, layer, function_dir, runtime)


def _check_clean_run(run: Run) -> None:
    report = run.report
    assert not report["errors"], "\n".join(report["errors"])[-4000:]
    assert report["refused"] == [], "the handler tried to leave loopback"
    assert not report["site_imported"]
    assert not [p for p in report["sys_path"] if "site-packages" in p]
    origins = {name: Path(path) for name, path in report["origins"].items() if path}
    assert origins["app"].parent == run.function_dir
    assert {"nbkeeper", "pydantic", "pydantic_core", "aws_lambda_powertools"} <= set(origins)
    for name, path in origins.items():
        home = run.runtime if name in ("boto3", "botocore") else run.layer
        if name != "app":
            assert path.is_relative_to(home), f"{name} imported from {path}"
    for secret in SECRETS:
        assert secret not in run.output, "a secret reached the function's output"


def _queued(world: World) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = world.stack.attribute("CommandsQueue", "Ref")
    reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(message["Body"]) for message in reply.get("Messages", [])]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with local_world(monkeypatch) as world:
        yield world


def test_built_keeper_passes_over_the_fleet(
    world: World, built_for_host: Path, runtime_sdk: Path, tmp_path: Path
) -> None:
    run = _run(world, built_for_host, runtime_sdk, "LeaseKeeperFunction", tmp_path)
    _check_clean_run(run)
    (summary,) = run.report["results"]
    records = world.emulator.store.project(DEMO_PROJECT_ID).records.values()
    running = [record for record in records if record.status == NotebookStatus.RUNNING]
    assert summary["notebooks"] == len(running) > 0  # the pass looks at running notebooks
    assert summary["project_errors"] == 0
    # X-Ray (from the layer) traced AWS calls made by the runtime's botocore
    traced = {doc.get("name") for doc in world.trace_documents() if doc.get("namespace") == "aws"}
    assert {"dynamodb", "secretsmanager"} <= traced, traced


def test_built_webhook_acks_every_sample_and_queues_the_create(
    world: World, built_for_host: Path, runtime_sdk: Path, tmp_path: Path
) -> None:
    run = _run(world, built_for_host, runtime_sdk, "SlackCommandsFunction", tmp_path)
    _check_clean_run(run)
    statuses = [result["statusCode"] for result in run.report["results"]]
    assert statuses == [200] * len(statuses) and statuses
    (create,) = [c for c in _queued(world) if c["type"] == "create" and c["name"] == "exp-42"]
    assert create["image_id"] == DEFAULT_IMAGE_ID  # the template's default image, found by name


def test_built_worker_executes_the_sample_batch(
    world: World, built_for_host: Path, runtime_sdk: Path, tmp_path: Path
) -> None:
    run = _run(world, built_for_host, runtime_sdk, "NotebookWorkerFunction", tmp_path)
    _check_clean_run(run)
    (result,) = run.report["results"]
    assert result["batchItemFailures"] == []
    records = world.emulator.store.project(DEMO_PROJECT_ID).records.values()
    names = {record.name for record in records}
    assert "exp-42" in names
    assert world.slack.posts, "the worker told nobody"
