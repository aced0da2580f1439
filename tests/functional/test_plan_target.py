"""Where `nbkeeper plan` plans: a fresh clone (nothing set), `make emulator`, a configured
endpoint, and a ModelArts it cannot reach (one error line, no table, non-zero)."""

from __future__ import annotations

import io
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper_local import plan
from nbkeeper_local.emulator import Emulator, SimClock
from tests.emulator_fixtures import ACCESS_KEY, PROJECT_ID, SECRET_KEY, no_sleep

AT = "2026-11-23T10:00:00+00:00"
FIVE = {
    "MODELARTS_REGION": "ap-southeast-3",
    "MODELARTS_PROJECT_ID": PROJECT_ID,
    "HUAWEICLOUD_SDK_AK": ACCESS_KEY,
    "HUAWEICLOUD_SDK_SK": SECRET_KEY,
}


def run(argv: list[str], environ: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = plan.run(argv, environ, out=out, err=err, modelarts_options={"sleep": no_sleep})
    return code, out.getvalue(), err.getvalue()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_fresh_environment_plans_against_a_freshly_seeded_local_emulator() -> None:
    code, out, err = run(["--json", "--at", AT, "--fleet", "10"], {})
    assert code == 0
    assert err.startswith("Planned against a local emulator seeded with 10 notebooks")
    rows = [json.loads(line) for line in out.splitlines()]
    # The same seed at the same time: exactly the RUNNING notebooks of that fleet are decided.
    twin = Emulator(clock=SimClock.stepped(datetime.fromisoformat(AT)))
    running = {r.id for r in twin.seed_fleet(size=10) if r.status is NotebookStatus.RUNNING}
    assert running and {row["notebook_id"] for row in rows} == running
    assert {row["action"] for row in rows} <= {"noop", "prolong", "warn"}
    assert all(row["reason"] for row in rows)


def test_fresh_environment_table() -> None:
    code, out, err = run(["--at", AT, "--fleet", "6"], {})
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("Planned against a local emulator seeded with 6 notebooks")
    assert "local/nbkeeper.env.example" in lines[0]
    assert lines[2].split()[:2] == ["ACTION", "NOTEBOOK"]
    assert "Dry run: nothing was changed." in lines[-1]


def test_only_an_endpoint_plans_against_that_emulator_with_its_demo_credentials(
    emulator: Emulator, emulator_http: str
) -> None:
    ids = {r.id for r in emulator.seed_fleet(size=5) if r.status is NotebookStatus.RUNNING}
    code, out, err = run(
        ["--json", "--at", emulator.now().isoformat()], {"MODELARTS_ENDPOINT": emulator_http}
    )
    assert code == 0, err
    assert err.startswith(f"Planned against the emulator at {emulator_http}")
    assert {json.loads(line)["notebook_id"] for line in out.splitlines()} == ids


@pytest.mark.parametrize("configured", [False, True], ids=["endpoint-only", "all-five"])
def test_an_unreachable_endpoint_is_one_error_line_naming_host_and_variable(
    configured: bool,
) -> None:
    port = closed_port()
    environ = {"MODELARTS_ENDPOINT": f"http://127.0.0.1:{port}"} | (FIVE if configured else {})
    code, out, err = run([], environ)
    assert code == 1
    assert out == ""  # no table, no "nothing was changed": it did not run
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert f"cannot reach ModelArts at 127.0.0.1:{port}" in lines[0]
    assert lines[0].endswith("check MODELARTS_ENDPOINT")


def test_json_plan_that_cannot_reach_modelarts_prints_no_rows() -> None:
    code, out, err = run(["--json"], {"MODELARTS_ENDPOINT": f"http://127.0.0.1:{closed_port()}"})
    assert (code, out, len(err.splitlines())) == (1, "", 1)


def test_wrong_credentials_name_the_variables(emulator: Emulator, emulator_http: str) -> None:
    environ = FIVE | {"MODELARTS_ENDPOINT": emulator_http, "HUAWEICLOUD_SDK_SK": "wrong"}
    code, out, err = run([], environ)
    assert (code, out) == (1, "")
    assert "refused the credentials" in err and "HUAWEICLOUD_SDK_SK" in err
    assert "wrong" not in err  # the secret is never echoed


def test_partial_configuration_names_what_is_missing_and_the_example_file() -> None:
    code, out, err = run([], {"MODELARTS_REGION": "ap-southeast-3"})
    assert (code, out) == (2, "")
    assert "MODELARTS_PROJECT_ID is not set" in err
    assert "local/nbkeeper.env.example" in err


def test_a_non_loopback_endpoint_alone_is_not_guessed_at() -> None:
    code, _, err = run([], {"MODELARTS_ENDPOINT": "https://modelarts.example.com"})
    assert code == 2
    assert "set all five" in err


def test_env_file_is_read_over_the_environment(
    emulator: Emulator, emulator_http: str, tmp_path: Path
) -> None:
    emulator.seed_fleet(size=3)
    example = Path(plan.__file__).resolve().parents[1] / "nbkeeper.env.example"
    text = example.read_text().replace("http://127.0.0.1:8765", emulator_http)
    env_file = tmp_path / "nbkeeper.env"
    env_file.write_text(text)
    code, out, err = run(["--env-file", str(env_file)], {"MODELARTS_ENDPOINT": "http://nowhere:1"})
    assert code == 0, err
    assert out.startswith(f"Planned against ModelArts at {emulator_http}, project {PROJECT_ID}")


def test_env_file_lines_must_be_assignments(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("# fine\nexport A='x'\nnot an assignment\n")
    code, _, err = run(["--env-file", str(env_file)], {})
    assert code == 2
    assert f"{env_file}:3: expected KEY=VALUE" in err


def test_the_example_env_file_holds_the_five_variables() -> None:
    example = Path(plan.__file__).resolve().parents[1] / "nbkeeper.env.example"
    assert set(plan.read_env_file(str(example))) == {*FIVE, "MODELARTS_ENDPOINT"}


def test_at_is_parsed_with_its_offset() -> None:
    assert plan.parse_at("2026-11-23T19:55:00+01:00") == datetime(2026, 11, 23, 18, 55, tzinfo=UTC)
