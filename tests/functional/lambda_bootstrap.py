"""A stand-in for the Lambda Python runtime's bootstrap, run by a clean interpreter (no site,
no user site, no script directory on sys.path): imports one handler from the `sam build` output
as Lambda does (`app.lambda_handler`, with PYTHONPATH = the function, the layer's python/ and a
runtime-like boto3/botocore) and invokes it on each event.

Usage: python -s -S -P lambda_bootstrap.py SPEC.json; SPEC holds `handler`, `function_name`,
`memory_mb`, `events` and `result` (the path the results are written to as JSON).

Only 127.0.0.1 may be reached: an audit hook refuses any other address and records it.
Standard library only: nothing else is importable before the handler's own path is set.
"""

import importlib
import json
import os
import sys
import traceback
from typing import Any

LOOPBACK = "127.0.0.1"
refused: list[str] = []


def _text(host: Any) -> str:
    return host.decode() if isinstance(host, bytes) else str(host)


def _only_loopback(event: str, args: tuple[Any, ...]) -> None:
    if event in ("socket.connect", "socket.sendto"):
        address = args[1]
        if not isinstance(address, tuple):
            return  # AF_UNIX paths
        host = _text(address[0])
    elif event in ("socket.getaddrinfo", "socket.gethostbyname"):
        if args[0] is None:
            return
        host = _text(args[0])
    else:
        return
    if host != LOOPBACK:
        refused.append(f"{event} {host}")
        raise OSError(f"test bootstrap: {host} is not loopback")


class Context:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, memory_mb: int, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:{function_name}"
        )
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _origin(name: str) -> str | None:
    module = sys.modules.get(name)
    return getattr(module, "__file__", None) if module else None


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    sys.addaudithook(_only_loopback)
    report: dict[str, Any] = {"results": [], "errors": []}
    module_name, _, attribute = spec["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException:  # the cold start itself failed: report it, as Lambda would
        report["errors"].append(traceback.format_exc())
        handler = None
    for number, event in enumerate(spec["events"] if handler else []):
        # The runtime sets the trace header for each invocation (Tracing: Active).
        os.environ["_X_AMZN_TRACE_ID"] = (
            f"Root=1-67890abc-{number:024x};Parent={number + 1:016x};Sampled=1"
        )
        context = Context(spec["function_name"], spec["memory_mb"], f"request-{number}")
        try:
            report["results"].append(handler(event, context))
        except BaseException:
            report["results"].append(None)
            report["errors"].append(traceback.format_exc())
    report["refused"] = refused
    report["sys_path"] = sys.path
    report["site_imported"] = "site" in sys.modules
    report["origins"] = {
        name: _origin(name)
        for name in (
            module_name,
            "nbkeeper",
            "pydantic",
            "pydantic_core",
            "yaml",
            "httpx",
            "aws_lambda_powertools",
            "aws_xray_sdk",
            "wrapt",
            "boto3",
            "botocore",
        )
    }
    with open(spec["result"], "w", encoding="utf-8") as handle:
        json.dump(report, handle, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
