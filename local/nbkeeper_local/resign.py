"""`nbkeeper resign FILE --secret S`: re-sign a Slack events/ sample, as Slack would sign it
now, and print it (for `sam local invoke -e`, or a curl to a deployed stage; Slack's window is
5 minutes). `nbkeeper invoke` re-signs by itself with the local secret."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nbkeeper_local.harness import resign
from nbkeeper_local.invoke import InvokeError, is_http, read_event


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nbkeeper resign", description=__doc__)
    parser.add_argument(
        "file", type=Path, help="the event file, e.g. events/slack_command_help.json"
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("SLACK_SIGNING_SECRET"),
        help="the signing secret (default: SLACK_SIGNING_SECRET)",
    )
    parser.add_argument("--at", type=float, help="sign as of this Unix time (default: now)")
    parser.add_argument("-o", "--output", type=Path, help="write the event here, not to stdout")
    args = parser.parse_args(argv)
    if not args.secret:
        print("nbkeeper resign: give --secret or set SLACK_SIGNING_SECRET", file=sys.stderr)
        return 2
    try:
        event = read_event(args.file)
    except InvokeError as exc:
        print(f"nbkeeper resign: {exc}", file=sys.stderr)
        return 2
    if not is_http(event) or not isinstance(event.get("headers"), dict):
        print(f"nbkeeper resign: {args.file} is not an API Gateway event", file=sys.stderr)
        return 2
    text = json.dumps(resign(event, args.secret, args.at), indent=2) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
