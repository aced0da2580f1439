"""`make bench`: run every bench/bench_*.py and write their figures to docs/BENCHMARKS.md.

Each module exposes `TITLE: str` and `run() -> str`, which measures side by side in one run and
returns a Markdown section (figures only, no conclusions it did not measure); a module may also
write a figure the section shows (bench_savings: docs/savings.png).
`python -m bench NAME ...` runs only the named modules (e.g. `python -m bench coldstart`) and
rewrites only their sections.
"""

from __future__ import annotations

import importlib
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "BENCHMARKS.md"
SECTION = re.compile(
    r"^<!-- bench:(?P<name>[\w]+) -->\n(?P<body>.*?)^<!-- /bench:(?P=name) -->\n", re.S | re.M
)


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def existing_sections() -> dict[str, str]:
    if not OUTPUT.exists():
        return {}
    return {m["name"]: m["body"] for m in SECTION.finditer(OUTPUT.read_text())}


def main(argv: list[str]) -> int:
    names = argv or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(discover())}")
        return 2
    sections = existing_sections()
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {module.TITLE}", flush=True)
        body = module.run()
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections[name] = (
            f"## {module.TITLE}\n\nCommand: `make bench` (or `.venv/bin/python -m bench {name}`); "
            f"measured {stamp} on {platform.machine()}, Python {platform.python_version()}.\n\n"
            f"{body.strip()}\n\n"
        )
        print(body, flush=True)
    header = (
        "# Benchmarks\n\nEvery figure below was produced by the command shown in its section, "
        "on a 2-core machine, side by side in one run. Regenerate with `make bench`.\n\n"
    )
    text = header + "".join(
        f"<!-- bench:{name} -->\n{sections[name]}<!-- /bench:{name} -->\n"
        for name in sorted(sections)
    )
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
