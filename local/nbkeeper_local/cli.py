"""`nbkeeper` console script: local and operator tooling (never deployed).

Each subcommand lives in its own module with its own argument parser and is imported only when
chosen, so `nbkeeper --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "emulator": ("nbkeeper_local.emulator.server", "serve the ModelArts emulator on 127.0.0.1"),
    "plan": ("nbkeeper_local.plan", "dry-run one lease keeper pass and print the decisions"),
    "demo": ("nbkeeper_local.demo", "run the end-to-end story against the emulator and moto"),
    "serve": ("nbkeeper_local.serve", "serve the Slack routes locally through the real handler"),
    "status": (
        "nbkeeper_local.status",
        "show the state table: warnings, reservations, owners, audit",
    ),
    "invoke": ("nbkeeper_local.invoke", "run one handler on an events/ file locally (no Docker)"),
    "resign": ("nbkeeper_local.resign", "re-sign a Slack events/ sample with a signing secret"),
    "manifest": ("nbkeeper_local.manifest", "fill slack/manifest.yaml with the deployed URLs"),
}


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: nbkeeper <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "Run `nbkeeper <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"nbkeeper: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        result: int = module.main(rest)
    except BrokenPipeError:  # `nbkeeper plan | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return result


if __name__ == "__main__":
    sys.exit(main())
