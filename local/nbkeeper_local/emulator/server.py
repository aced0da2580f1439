"""`nbkeeper emulator`: serve the ModelArts emulator over HTTP on a loopback address.

Also `serve_in_thread`, for tests that need real HTTP (the official SDK, subprocesses).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from .clock import SimClock
from .config import DEMO_ACCESS_KEY, DEMO_AUTH_TOKEN, DEMO_SECRET_KEY, EmulatorConfig
from .core import Emulator
from .fleet import DEMO_PROJECT_ID, FleetSpec

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _install_drop_hook(emulator: Emulator, server: uvicorn.Server) -> None:
    """Let DROP faults abort the real socket, so clients see a connection reset, no reply."""

    def drop(scope: Any) -> bool:
        client = tuple(scope.get("client") or ())
        for protocol in list(server.server_state.connections):
            if tuple(getattr(protocol, "client", None) or ()) == client:
                transport = getattr(protocol, "transport", None)
                if transport is not None:
                    transport.abort()
                    return True
        return False

    emulator.drop_hook = drop


@contextmanager
def serve_in_thread(
    emulator: Emulator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_non_loopback: bool = False,
) -> Iterator[str]:
    """Serve `emulator` with uvicorn in a daemon thread; yields the base URL (`http://127.0.0.1:N`)."""
    if not is_loopback(host) and not allow_non_loopback:
        raise ValueError(f"refusing to serve on non-loopback address {host}")
    config = uvicorn.Config(
        emulator.app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    _install_drop_hook(emulator, server)
    thread = threading.Thread(target=server.run, name="modelarts-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the emulator did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        emulator.drop_hook = None


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbkeeper emulator",
        description="Serve a local ModelArts notebook API emulator (see docs/emulator.md). "
        "Every flag has an EMULATOR_* environment variable; flags win.",
    )
    parser.add_argument("--host", default=_env("EMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("EMULATOR_PORT", "8765") or 8765))
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="serve on a non-loopback address (the emulator has demo credentials: don't)",
    )
    parser.add_argument(
        "--fleet", type=int, default=int(_env("EMULATOR_FLEET", "0") or 0), help="seed N notebooks"
    )
    parser.add_argument(
        "--projects",
        default=_env("EMULATOR_PROJECTS", DEMO_PROJECT_ID),
        help="comma-separated project ids the fleet is spread over",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=float(_env("EMULATOR_LATENCY_MS", "0") or 0)
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=float(_env("EMULATOR_FAULT_RATE", "0") or 0),
        help="fraction of API requests answered 429/500/503 (seeded)",
    )
    parser.add_argument(
        "--loose-rate",
        type=float,
        default=float(_env("EMULATOR_LOOSE_RATE", "0") or 0),
        help="fraction of notebooks answered loosely: unknown enum values, nulls, extra fields, "
        "unreadable list records (seeded; see docs/emulator.md)",
    )
    parser.add_argument(
        "--not-found-status",
        type=int,
        choices=(400, 404),
        default=int(_env("EMULATOR_NOT_FOUND_STATUS", "400") or 400),
        help="HTTP status of ModelArts.6309 (documented: 400)",
    )
    parser.add_argument(
        "--offset-reading",
        choices=("record", "page"),
        default=_env("EMULATOR_OFFSET_READING", "record"),
        help="how the notebook list reads offset: a record offset (documented) or a page number",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=float(_env("EMULATOR_RATE_LIMIT", "0") or 0),
        help="token bucket, requests per second over the API (0: off)",
    )
    parser.add_argument(
        "--clock-speed",
        type=float,
        default=float(_env("EMULATOR_CLOCK_SPEED", "1") or 1),
        help="simulated seconds per real second (0: stepped through /_emulator/clock)",
    )
    parser.add_argument("--seed", type=int, default=int(_env("EMULATOR_SEED", "0") or 0))
    return parser


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    access_key = _env("HUAWEICLOUD_SDK_AK")
    secret_key = _env("HUAWEICLOUD_SDK_SK")
    return EmulatorConfig(
        access_key=access_key or DEMO_ACCESS_KEY,
        secret_key=secret_key or DEMO_SECRET_KEY,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        rate_limit=args.rate_limit or None,
        seed=args.seed,
        loose_rate=args.loose_rate,
        not_found_status=args.not_found_status,
        offset_reading=args.offset_reading,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not is_loopback(args.host) and not args.allow_non_loopback:
        print(
            f"nbkeeper emulator: refusing to listen on {args.host}, which is not a loopback "
            "address (pass --allow-non-loopback to insist)",
            file=sys.stderr,
        )
        return 2
    config = config_from(args)
    emulator = Emulator(config, clock=SimClock(speed=args.clock_speed))
    projects = [p for p in args.projects.split(",") if p]
    if args.fleet:
        emulator.seed_fleet(FleetSpec(size=args.fleet, projects=projects, seed=args.seed))
    demo_keys = config.access_key == DEMO_ACCESS_KEY
    base = f"http://{args.host}:{args.port}"
    print(
        "\n".join(
            [
                f"ModelArts emulator on {base}  (endpoint for the SDK / MODELARTS_ENDPOINT)",
                f"  project id : {projects[0]}  (any /v1/<project_id>/ works)",
                f"  AK         : {config.access_key}"
                + ("  (demo pair; set HUAWEICLOUD_SDK_AK/SK to change)" if demo_keys else ""),
                f"  SK         : {config.secret_key if demo_keys else '(from HUAWEICLOUD_SDK_SK)'}",
                f"  X-Auth-Token: {DEMO_AUTH_TOKEN}",
                f"  fleet {args.fleet}, latency {args.latency_ms} ms, fault rate {args.fault_rate}, "
                f"loose replies {args.loose_rate}, rate limit {args.rate_limit or 'off'}, "
                f"clock speed {args.clock_speed}",
                f"  not found  : ModelArts.6309 with HTTP {args.not_found_status}; "
                f"offset read as a {args.offset_reading} offset",
                f"  control    : {base}/_emulator/state",
            ]
        ),
        flush=True,
    )
    uvicorn.run(emulator.app, host=args.host, port=args.port, log_level="info", lifespan="off")
    return 0
