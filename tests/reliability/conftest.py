"""Reliability suites: seed, size, figures, and docs/RELIABILITY.md.

- `RELIABILITY_SEED` replays a run (default: 1, the seed docs/RELIABILITY.md and `make test` use;
  `random` draws a fresh one, printed before the first suite).
- `RELIABILITY_SIZE=bounded` (default, the form `make test` runs) or `full` (`make reliability`).
- `RELIABILITY_DOC=path` writes the figures there as Markdown at the end of the session.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.reliability.figures import Report, SuiteFigures, doc_path, seed_from_env, size_from_env

REPORT = pytest.StashKey[Report]()
STARTED = pytest.StashKey[float]()


def _report(config: pytest.Config) -> Report:
    if REPORT not in config.stash:
        config.stash[REPORT] = Report(seed_from_env(), size_from_env())
        config.stash[STARTED] = time.monotonic()
    return config.stash[REPORT]


@pytest.fixture(scope="session")
def reliability(request: pytest.FixtureRequest) -> Report:
    report = _report(request.config)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        # Fixtures run under output capture: without this the line would only be shown when
        # the first test using it fails.
        quiet = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with quiet:
            reporter.write_line(
                f"\nreliability: seed {report.seed}, size {report.size} "
                f"(replay: RELIABILITY_SEED={report.seed} RELIABILITY_SIZE={report.size})"
            )
    return report


@pytest.fixture
def seed(reliability: Report) -> int:
    return reliability.seed


@pytest.fixture
def size(reliability: Report) -> str:
    return reliability.size


def suite_figures(
    reliability: Report, name: str, description: str | None
) -> Iterator[SuiteFigures]:
    figures = reliability.suite(name)
    figures.replay = reliability.command(name)
    paragraphs = (description or "").strip().split("\n\n")
    figures.description = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    started = time.monotonic()
    try:
        yield figures
    finally:
        figures.wall_s += time.monotonic() - started


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report = terminalreporter.config.stash.get(REPORT, None)
    if report is None or not report.suites:
        return
    terminalreporter.section("reliability figures")
    for line in report.text().splitlines():
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = session.config.stash.get(REPORT, None)
    path = doc_path()
    if report is None or not report.suites or path is None:
        return
    runtime = time.monotonic() - session.config.stash[STARTED]
    path.write_text(report.markdown(runtime))
