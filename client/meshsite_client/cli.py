"""The `meshsite` command line: talk to a room from a shell (JSON in, JSON out).

`main(argv)` never calls sys.exit itself, so the server's management command can reuse it with
`main([...])` and get the exit status back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from importlib import metadata
from typing import Any, NoReturn, TextIO

from .client import RoomClient
from .errors import MeshError, RpcError
from .tokens import mint_token

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the whole usage block and exit; we want one line and a return code.
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meshsite", description="Talk to a Meshsite room.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--url",
        default=os.environ.get("MESHSITE_URL"),
        help="room WebSocket URL, ws://HOST/rooms/ROOM/ws (env MESHSITE_URL)",
    )
    parser.add_argument(
        "--token", default=os.environ.get("MESHSITE_TOKEN"), help="participant token (env MESHSITE_TOKEN)"
    )
    # The same options after the command name too (`meshsite invoke ... --url X`); SUPPRESS keeps
    # a subcommand that does not see them from overwriting the global value with None.
    room_options = _Parser(add_help=False)
    room_options.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    room_options.add_argument("--token", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser("participants", parents=[room_options], help="list the participants in the room")

    toolkits = sub.add_parser("toolkits", parents=[room_options], help="list the toolkits this participant may invoke")
    toolkits.add_argument("--participant", metavar="ID", help="only this participant's toolkits")

    invoke = sub.add_parser("invoke", parents=[room_options], help="invoke a tool and print its output")
    invoke.add_argument("toolkit")
    invoke.add_argument("tool")
    invoke.add_argument(
        "arguments",
        nargs="?",
        default="{}",
        metavar="JSON_ARGS",
        help="the tool's arguments as a JSON object (default {})",
    )
    invoke.add_argument("--participant", metavar="ID", help="the host to target")
    invoke.add_argument("--timeout", type=float, metavar="S", help="deadline in seconds")

    send = sub.add_parser("send", parents=[room_options], help="send a message to one participant or to everyone")
    target = send.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="ID", help="participant id")
    target.add_argument("--broadcast", action="store_true", help="everyone else in the room")
    send.add_argument("type", help="message type, e.g. chat")
    send.add_argument("message", metavar="JSON", help="the message as JSON")

    listen = sub.add_parser("listen", parents=[room_options], help="print notifications as JSON lines")
    listen.add_argument("--count", type=int, metavar="N", help="stop after N notifications")

    token = sub.add_parser("token", help="mint a participant token with a project API key")
    token.add_argument("--server", required=True, metavar="HTTP_URL", help="e.g. http://localhost:8000")
    token.add_argument(
        "--api-key",
        default=os.environ.get("MESHSITE_API_KEY"),
        metavar="KEY",
        help="project API key (env MESHSITE_API_KEY)",
    )
    token.add_argument("--room", required=True)
    token.add_argument("--identity", required=True)
    token.add_argument("--role", default="user", choices=["user", "agent", "service"])
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, metavar="SECONDS")
    token.add_argument("--grants", metavar="JSON", help="grants as a JSON object")

    # Listed for --help; `main` hands `meshsite agent ...` to meshsite_client.agents.cli.
    agent = sub.add_parser(
        "agent",
        add_help=False,
        help="run an agent in a room: meshsite agent run MODULE:CLASS (see meshsite agent --help)",
    )
    agent.add_argument("agent_argv", nargs=argparse.REMAINDER)
    return parser


def _version() -> str:
    try:
        return metadata.version("meshsite-client")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown"


def _json_arg(text: str, what: str, *, want_object: bool = False) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None
    if want_object and not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object")
    return value


def _print_json(value: Any, out: TextIO) -> None:
    if isinstance(value, list):
        value = [v.to_dict() if hasattr(v, "to_dict") else v for v in value]
    elif hasattr(value, "to_dict"):
        value = value.to_dict()
    out.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    out.flush()


def _check(args: argparse.Namespace) -> None:
    """Usage checks argparse cannot express; raises UsageError before anything connects."""
    if args.command == "token":
        if not args.api_key:
            raise UsageError("--api-key is required (or set MESHSITE_API_KEY)")
        if args.grants is not None:
            _json_arg(args.grants, "--grants", want_object=True)
        return
    if not args.url:
        raise UsageError("--url is required (or set MESHSITE_URL)")
    if not args.token:
        raise UsageError("--token is required (or set MESHSITE_TOKEN)")
    if args.command == "invoke":
        _json_arg(args.arguments, "JSON_ARGS", want_object=True)
        if args.timeout is not None and args.timeout <= 0:
            raise UsageError("--timeout must be positive")
    elif args.command == "send":
        _json_arg(args.message, "JSON")
    elif args.command == "listen" and args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")


async def _run_room(args: argparse.Namespace, out: TextIO) -> int:
    reconnect = args.command == "listen"
    async with RoomClient(args.url, args.token, reconnect=reconnect) as room:
        if args.command == "participants":
            _print_json(await room.list_participants(), out)
        elif args.command == "toolkits":
            _print_json(await room.list_toolkits(args.participant), out)
        elif args.command == "invoke":
            output = await room.invoke(
                args.toolkit,
                args.tool,
                json.loads(args.arguments),
                participant_id=args.participant,
                timeout=args.timeout,
            )
            _print_json(output, out)
        elif args.command == "send":
            message = json.loads(args.message)
            if args.broadcast:
                _print_json(await room.broadcast(args.type, message), out)
            else:
                _print_json(await room.send_message(args.to, args.type, message), out)
        elif args.command == "listen":
            seen = 0
            async with room.events() as stream:
                async for event in stream:
                    _print_json(event.to_dict(), out)
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        break
            if room.error is not None:
                raise room.error
    return EXIT_OK


def run_cli(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run an already-parsed command; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        _check(args)
        if args.command == "token":
            grants = json.loads(args.grants) if args.grants else None
            data = mint_token(
                args.server,
                args.api_key,
                room=args.room,
                identity=args.identity,
                role=args.role,
                name=args.name,
                ttl=args.ttl,
                grants=grants,
            )
            out.write(data["token"] + "\n")
            out.flush()
            return EXIT_OK
        return asyncio.run(_run_room(args, out))
    except UsageError as exc:
        err.write(f"meshsite: error: {exc}\n")
        return EXIT_USAGE
    except MeshError as exc:
        err.write(f"meshsite: {type(exc).__name__}: {_one_line(str(exc))}\n")
        for violation in _violations(exc):
            err.write(f"  {violation}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _violations(exc: MeshError) -> list[str]:
    """`path: message` for each schema violation an error carries in `data.errors`
    (invalid_arguments, invalid_params); the empty path is the arguments object itself."""
    errors = exc.data.get("errors") if isinstance(exc, RpcError) else None
    if not isinstance(errors, list):
        return []
    lines = []
    for error in errors:
        if isinstance(error, dict):
            path = error.get("path") or "(root)"
            lines.append(f"{path}: {_one_line(str(error.get('message', '')))}")
        else:
            lines.append(_one_line(str(error)))
    return lines


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["agent"]:  # `meshsite agent run module:Class ...`: see meshsite_client.agents.cli
        from .agents.cli import main as agent_main

        return agent_main(argv[1:], stdout=stdout, stderr=err)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        err.write(f"meshsite: error: {exc} (see meshsite --help)\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if args.command == "agent":  # `meshsite --url X --token T agent run ...`
        from .agents.cli import main as agent_main

        return agent_main(_agent_argv(args), stdout=stdout, stderr=err)
    return run_cli(args, stdout=stdout, stderr=err)


def _agent_argv(args: argparse.Namespace) -> list[str]:
    """The agent command's arguments, with --url/--token given before `agent` passed on to `run`
    (ahead of its own, so options after `run` still win)."""
    rest: list[str] = list(args.agent_argv)
    if rest[:1] != ["run"]:
        return rest
    inherited: list[str] = []
    for name in ("url", "token"):
        value = getattr(args, name)
        if value:
            inherited += [f"--{name}", value]
    return ["run", *inherited, *rest[1:]]
