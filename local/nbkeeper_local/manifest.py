"""`nbkeeper manifest`: fill slack/manifest.yaml with the deployed Slack request URLs."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

PLACEHOLDERS = {
    "SLACK_COMMANDS_URL": "SlackCommandsUrl",
    "SLACK_INTERACTIONS_URL": "SlackInteractionsUrl",
}


def fill(template: str, urls: dict[str, str]) -> str:
    """Replace every `{{NAME}}` placeholder; fail on any left unfilled or not https (Slack
    accepts only https request URLs)."""
    for name, value in urls.items():
        if not value.startswith("https://"):
            raise ValueError(f"{name} must be an https:// URL (Slack refuses others): {value}")
        template = template.replace("{{" + name + "}}", value)
    if "{{" in template:
        raise ValueError("manifest still has unfilled placeholders: give every URL")
    return template


def is_https_url(url: str) -> bool:
    """Slack calls request URLs over https only; anything else is a mistake to stop early."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def stack_outputs(stack: str, sam: str) -> dict[str, str]:
    """Read the stack's outputs with `sam list stack-outputs` (needs AWS credentials)."""
    reply = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sam, "list", "stack-outputs", "--stack-name", stack, "--output", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return {row["OutputKey"]: row["OutputValue"] for row in json.loads(reply.stdout)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nbkeeper manifest", description=__doc__)
    parser.add_argument("--stack", help="deployed stack name (reads its outputs with sam)")
    parser.add_argument("--commands-url", help="Slash command Request URL")
    parser.add_argument("--interactions-url", help="Interactivity Request URL")
    parser.add_argument("--template", type=Path, default=Path("slack/manifest.yaml"))
    parser.add_argument("--output", type=Path, default=Path("slack/manifest.filled.yaml"))
    args = parser.parse_args(argv)

    urls = {
        "SLACK_COMMANDS_URL": args.commands_url,
        "SLACK_INTERACTIONS_URL": args.interactions_url,
    }
    if args.stack:
        sam = shutil.which("sam") or ".venv-deploy/bin/sam"
        outputs = stack_outputs(args.stack, sam)
        for name, key in PLACEHOLDERS.items():
            urls[name] = urls[name] or outputs.get(key)
    missing = [name for name, value in urls.items() if not value]
    if missing:
        print(
            "nbkeeper manifest: missing "
            + ", ".join(missing)
            + "; pass --stack NAME (after `make deploy`) or --commands-url/--interactions-url",
            file=sys.stderr,
        )
        return 2
    insecure = [(name, str(value)) for name, value in urls.items() if not is_https_url(str(value))]
    if insecure:
        for name, value in insecure:
            flag = "--" + name.removeprefix("SLACK_").lower().replace("_", "-")
            print(
                f"nbkeeper manifest: {flag} must be an https:// URL with a host (Slack sends "
                f"request URLs over https only), not {value!r}",
                file=sys.stderr,
            )
        return 2
    try:
        text = fill(args.template.read_text(), {k: str(v) for k, v in urls.items()})
    except ValueError as exc:
        print(f"nbkeeper manifest: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(text)
    print(
        f"wrote {args.output}: paste it into https://api.slack.com/apps (Create New App, From a "
        "manifest), install the app, then store its signing secret and bot token (README, Deploy)"
    )
    return 0
