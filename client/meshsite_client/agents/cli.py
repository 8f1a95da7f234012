"""`meshsite agent run module:Class --url URL --token TOKEN [--config JSON]`.

Also `python -m meshsite_client.agents run ...`. `main(argv)` returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import signal
import sys
from typing import Any, NoReturn, TextIO

from ..errors import MeshError
from .run import run_agent
from .single_room import SingleRoomAgent

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meshsite agent", description="Run an agent in a Meshsite room.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = sub.add_parser("run", help="connect, start the agent and serve until interrupted")
    run.add_argument("target", metavar="MODULE:CLASS", help="e.g. myagents:Summarizer (imported from the cwd too)")
    run.add_argument("--url", default=os.environ.get("MESHSITE_URL"), help="room WebSocket URL (env MESHSITE_URL)")
    run.add_argument("--token", default=os.environ.get("MESHSITE_TOKEN"), help="participant token (env MESHSITE_TOKEN)")
    run.add_argument("--config", metavar="JSON", help="keyword arguments for the agent class, as a JSON object")
    run.add_argument("--drain-timeout", type=float, default=30.0, metavar="S", help="how long running calls may finish")
    run.add_argument("--requires-timeout", type=float, metavar="S", help="how long to wait for required toolkits")
    return parser


def load_agent(target: str, config: dict[str, Any] | None = None) -> SingleRoomAgent:
    """Import `module:attr` and make the agent: a class or factory is called with `config`;
    an agent instance is used as is."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise UsageError(f"{target!r} is not MODULE:CLASS")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: agents next to the shell's cwd
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr_path!r}") from None
    config = config or {}
    if isinstance(obj, SingleRoomAgent):
        if config:
            raise UsageError(f"{target} is an agent instance: --config needs a class or a factory")
        return obj
    if not callable(obj):
        raise UsageError(f"{target} is neither an agent class nor a factory")
    try:
        agent = obj(**config)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"cannot create {target}: {exc}") from None
    if not isinstance(agent, SingleRoomAgent):
        raise UsageError(f"{target} made {agent!r}, not a SingleRoomAgent")
    return agent


async def _serve(agent: SingleRoomAgent, args: argparse.Namespace, err: TextIO) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)

    def announce(agent: SingleRoomAgent) -> None:
        room = agent.room
        err.write(
            f"meshsite: agent {agent.name} is running in room {room.room.name if room.room else '?'}"
            f" as {room.participant.id}; Ctrl-C stops it\n"
        )
        err.flush()

    try:
        await run_agent(
            agent,
            args.url,
            args.token,
            stop_event=stop,
            drain_timeout=args.drain_timeout,
            requires_timeout=args.requires_timeout,
            on_started=announce,
        )
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        if not args.url:
            raise UsageError("--url is required (or set MESHSITE_URL)")
        if not args.token:
            raise UsageError("--token is required (or set MESHSITE_TOKEN)")
        config = None
        if args.config is not None:
            try:
                config = json.loads(args.config)
            except ValueError as exc:
                raise UsageError(f"--config is not valid JSON: {exc}") from None
            if not isinstance(config, dict):
                raise UsageError("--config must be a JSON object")
        agent = load_agent(args.target, config)
        asyncio.run(_serve(agent, args, err))
        return EXIT_OK
    except UsageError as exc:
        err.write(f"meshsite agent: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except MeshError as exc:
        err.write(f"meshsite agent: {type(exc).__name__}: {' '.join(str(exc).split())}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
