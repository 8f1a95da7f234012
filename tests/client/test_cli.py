"""Command-line parsing and usage errors (nothing here reaches a server; see test_cli_live.py)."""

from __future__ import annotations

import io
from importlib import metadata

import pytest
from meshsite_client import cli
from meshsite_client.agents import cli as agent_cli
from meshsite_client.errors import RpcError


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    for key in ("MESHSITE_URL", "MESHSITE_TOKEN", "MESHSITE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_it_parses_the_invoke_command() -> None:
    args = cli.build_parser().parse_args(
        [
            "--url",
            "ws://h/rooms/r/ws",
            "--token",
            "t",
            "invoke",
            "weather",
            "forecast",
            '{"city": "Lisbon"}',
            "--participant",
            "p_1",
            "--timeout",
            "5",
        ]
    )
    assert (args.command, args.toolkit, args.tool) == ("invoke", "weather", "forecast")
    assert args.arguments == '{"city": "Lisbon"}'
    assert args.participant == "p_1"
    assert args.timeout == 5.0


def test_it_defaults_invoke_arguments_to_an_empty_object() -> None:
    args = cli.build_parser().parse_args(["invoke", "participants", "list"])
    assert args.arguments == "{}"


def test_it_takes_url_and_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHSITE_URL", "ws://env/rooms/r/ws")
    monkeypatch.setenv("MESHSITE_TOKEN", "envtoken")
    args = cli.build_parser().parse_args(["participants"])
    assert args.url == "ws://env/rooms/r/ws"
    assert args.token == "envtoken"


def test_it_parses_send_to_one_and_to_everyone() -> None:
    parser = cli.build_parser()
    one = parser.parse_args(["send", "--to", "p_1", "chat", '{"text": "hi"}'])
    assert (one.to, one.broadcast, one.type, one.message) == ("p_1", False, "chat", '{"text": "hi"}')
    everyone = parser.parse_args(["send", "--broadcast", "chat", '"hi"'])
    assert everyone.broadcast and everyone.to is None


def test_it_parses_listen_and_token() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["listen", "--count", "3"]).count == 3
    token = parser.parse_args(
        [
            "token",
            "--server",
            "http://h",
            "--api-key",
            "k",
            "--room",
            "lobby",
            "--identity",
            "alice",
            "--role",
            "agent",
            "--ttl",
            "60",
        ]
    )
    assert (token.server, token.api_key, token.room, token.identity, token.role, token.ttl) == (
        "http://h",
        "k",
        "lobby",
        "alice",
        "agent",
        60,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["send", "chat", "{}"],
        ["send", "--to", "p", "--broadcast", "chat", "{}"],
        ["invoke", "onlytoolkit"],
        ["invoke", "a", "b", "--timeout", "soon"],
        ["token", "--server", "http://h", "--room", "r"],
        ["token", "--server", "http://h", "--api-key", "k", "--room", "r", "--identity", "i", "--role", "god"],
    ],
)
def test_it_exits_2_with_one_line_on_usage_errors(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(argv, monkeypatch)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("meshsite: error:")


def test_it_requires_a_url_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["--token", "t", "participants"], monkeypatch)
    assert code == 2
    assert "--url is required" in err


def test_it_requires_a_token_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["--url", "ws://h/rooms/r/ws", "participants"], monkeypatch)
    assert code == 2
    assert "--token is required" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["invoke", "a", "b", "{not json"], "JSON_ARGS is not valid JSON"),
        (["invoke", "a", "b", "[1, 2]"], "JSON_ARGS must be a JSON object"),
        (["send", "--broadcast", "chat", "{oops"], "JSON is not valid JSON"),
        (["listen", "--count", "0"], "--count must be at least 1"),
    ],
)
def test_it_checks_json_arguments_before_connecting(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(argv, monkeypatch, {"MESHSITE_URL": "ws://h/rooms/r/ws", "MESHSITE_TOKEN": "t"})
    assert code == 2
    assert message in err


def test_token_needs_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["token", "--server", "http://h", "--room", "r", "--identity", "i"], monkeypatch)
    assert code == 2
    assert "--api-key is required" in err


def test_help_exits_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["--help"], monkeypatch)
    assert code == 0
    assert "participants" in capsys.readouterr().out


def test_a_connection_failure_exits_1_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 on localhost: nothing listens there, so the connect fails fast.
    code, out, err = run(["--url", "ws://127.0.0.1:9/rooms/r/ws", "--token", "t", "participants"], monkeypatch)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and "ConnectionLost" in err


def test_it_also_accepts_url_and_token_after_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHSITE_URL", raising=False)
    monkeypatch.setenv("MESHSITE_TOKEN", "envtoken")
    args = cli.build_parser().parse_args(["invoke", "a", "b", "--url", "ws://late/rooms/r/ws"])
    assert (args.url, args.token) == ("ws://late/rooms/r/ws", "envtoken")
    args = cli.build_parser().parse_args(["--url", "ws://early/rooms/r/ws", "participants"])
    assert args.url == "ws://early/rooms/r/ws"


def test_help_lists_the_agent_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["--help"], monkeypatch)
    assert code == 0
    assert "meshsite agent run MODULE:CLASS" in capsys.readouterr().out


def test_version_prints_the_installed_package_version(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(["--version"], monkeypatch)
    assert code == 0
    assert capsys.readouterr().out == f"meshsite {metadata.version('meshsite-client')}\n"


def test_the_agent_command_gets_url_and_token_given_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(agent_cli, "main", lambda argv, **_: seen.append(argv) or 0)
    assert run(["agent", "run", "m:C", "--url", "ws://a/rooms/r/ws"], monkeypatch)[0] == 0
    assert (
        run(["--url", "ws://b/rooms/r/ws", "--token", "t", "agent", "run", "m:C", "--token", "u"], monkeypatch)[0] == 0
    )
    assert seen == [
        ["run", "m:C", "--url", "ws://a/rooms/r/ws"],
        ["run", "--url", "ws://b/rooms/r/ws", "--token", "t", "m:C", "--token", "u"],
    ]


def test_an_invalid_arguments_error_lists_each_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(args: object, out: object) -> int:
        raise RpcError.from_error(
            {
                "code": -32003,
                "message": "arguments do not match the input schema",
                "data": {
                    "type": "invalid_arguments",
                    "errors": [
                        {"path": "", "message": "'b' is a required property"},
                        {"path": "/a", "message": "'one' is not of type 'number'"},
                    ],
                },
            }
        )

    monkeypatch.setattr(cli, "_run_room", refuse)
    code, out, err = run(
        ["--url", "ws://h/rooms/r/ws", "--token", "t", "invoke", "calc", "add", '{"a": "one"}'], monkeypatch
    )
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "meshsite: InvalidArguments: arguments do not match the input schema (invalid_arguments -32003)",
        "  (root): 'b' is a required property",
        "  /a: 'one' is not of type 'number'",
    ]
