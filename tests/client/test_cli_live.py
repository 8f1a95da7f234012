"""The command lines against a live server, run as real subprocesses.

`manage.py mesh ...` (the server's management command: it mints its own token and runs the client
CLI) and `python -m meshsite_client ...` (the standalone client CLI). Stdout is JSON (or the bare
token), errors are one line on stderr with exit status 1, usage errors exit with 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from meshsite_client import RoomClient, Toolkit, tool

from rooms.tokens import verify_token
from tests.support import servers as server_processes
from tests.support.servers import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

TIMEOUT = 60  # generous: each subprocess imports Django or the client from scratch


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        lines = self.out.splitlines()
        assert len(lines) == 1, self.out
        return json.loads(lines[0])

    @property
    def error_line(self) -> str:
        """The CLI's own error line (manage.py may print system-check warnings before it)."""
        return self.err.strip().splitlines()[-1]


async def run(argv: list[str], env: dict[str, str]) -> Result:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MESHSITE_URL", "MESHSITE_TOKEN", "MESHSITE_API_KEY")}


@pytest.fixture
def manage_env(project) -> dict[str, str]:
    """The management command on the test database, where the `acme` project exists.

    (`test_database_env` is not imported by name: pytest would collect it as a test.)
    """
    return {
        **clean_environ(),
        "DJANGO_SETTINGS_MODULE": "meshsite.settings.test",
        **server_processes.test_database_env(),
    }


@pytest.fixture
def mesh(manage_env, server):
    """`manage.py mesh ACTION ...`; room commands get `--project acme --room lobby --url <live server>`."""

    async def _mesh(action: str, *args: str, room: bool = True) -> Result:
        argv = [sys.executable, "manage.py", "mesh", action]
        if room:
            argv += ["--project", "acme", "--room", "lobby", "--url", server.http_url]
        return await run([*argv, *args], manage_env)

    return _mesh


@pytest.fixture
def meshsite(server):
    """`python -m meshsite_client ...`, the standalone client CLI."""

    async def _meshsite(*args: str) -> Result:
        return await run([sys.executable, "-m", "meshsite_client", *args], clean_environ())

    return _meshsite


@tool
async def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


CALC = Toolkit("calc", [add], description="Arithmetic")


# -- manage.py mesh --------------------------------------------------------------------------


async def test_mesh_token_prints_the_token_and_nothing_else(mesh):
    result = await mesh("token", "--project", "acme", "--room", "lobby", "--identity", "alice", room=False)
    assert result.code == 0, result.err
    token = result.out.removesuffix("\n")
    assert result.out == token + "\n" and "\n" not in token and " " not in token
    claims = verify_token(token)
    assert (claims.project, claims.room, claims.identity, claims.role) == ("acme", "lobby", "alice", "user")

    missing = await mesh("token", "--project", "nope", "--room", "lobby", "--identity", "alice", room=False)
    assert missing.code == 1 and missing.out == ""
    assert "no project 'nope'" in missing.error_line


async def test_mesh_participants_and_toolkits_print_the_live_room_as_json(mesh, ws_url, mint):
    async with RoomClient(ws_url("lobby"), mint("bob")) as bob:
        await bob.register_toolkit(CALC)
        participants = await mesh("participants")
        assert participants.code == 0, participants.err
        listed = participants.json
        assert sorted(p["identity"] for p in listed) == ["bob", "cli"]
        assert bob.participant.id in {p["id"] for p in listed}

        toolkits = await mesh("toolkits")
        assert toolkits.code == 0, toolkits.err
        by_name = {t["name"]: t for t in toolkits.json}
        assert {"messaging", "participants", "calc"} <= set(by_name)
        assert by_name["calc"]["participant_id"] == bob.participant.id
        assert by_name["calc"]["tools"][0]["input_schema"]["required"] == ["a", "b"]


async def test_mesh_invoke_calls_a_tool_hosted_by_a_room_client_and_prints_its_output(mesh, ws_url, mint):
    async with RoomClient(ws_url("lobby"), mint("bob")) as bob:
        await bob.register_toolkit(CALC)
        result = await mesh("invoke", "--", "calc", "add", '{"a": 1, "b": 2}', "--timeout", "10")
        assert (result.code, result.out) == (0, "3.0\n"), result.err
        builtin = await mesh("invoke", "--", "participants", "list", "{}")
        assert builtin.code == 0, builtin.err
        assert sorted(p["identity"] for p in builtin.json["participants"]) == ["bob", "cli"]

        failed = await mesh("invoke", "--", "calc", "add", '{"a": "one"}')
        assert (failed.code, failed.out) == (1, "")
        first, *violations = failed.err.strip().splitlines()[-3:]
        assert first.startswith("meshsite: InvalidArguments: arguments do not match the input schema")
        assert violations == ["  (root): 'b' is a required property", "  /a: 'one' is not of type 'number'"]
        missing = await mesh("invoke", "--", "calc", "divide", "{}")
        assert (missing.code, missing.out) == (1, "")
        assert missing.error_line.startswith("meshsite: NotFound:")
        usage = await mesh("invoke", "--", "calc", "add", "{not json")
        assert (usage.code, usage.out) == (2, "")
        assert usage.error_line.startswith("meshsite: error: JSON_ARGS is not valid JSON")


async def test_mesh_room_commands_find_the_server_from_port_or_the_public_url(manage_env, server):
    argv = [sys.executable, "manage.py", "mesh", "participants", "--project", "acme", "--room", "lobby"]
    by_port = await run(argv, {**manage_env, "PORT": str(server.port), "MESHSITE_PUBLIC_URL": ""})
    assert by_port.code == 0, by_port.err
    assert [p["identity"] for p in by_port.json] == ["cli"]

    by_public_url = await run(argv, {**manage_env, "PORT": "9", "MESHSITE_PUBLIC_URL": server.http_url + "/"})
    assert by_public_url.code == 0, by_public_url.err


async def test_mesh_send_delivers_a_message_to_a_room_client(mesh, ws_url, mint):
    async with RoomClient(ws_url("lobby"), mint("bob")) as bob:
        arrived = asyncio.create_task(bob.wait_for("messaging.message", timeout=TIMEOUT))
        result = await mesh("send", "--", "--to", bob.participant.id, "chat", '{"text": "hi from a shell"}')
        assert result.code == 0, result.err
        assert result.json == {"delivered": True}
        message = await arrived
        assert (message["from"]["identity"], message["type"], message["message"]) == (
            "cli",
            "chat",
            {"text": "hi from a shell"},
        )


# -- python -m meshsite_client -----------------------------------------------------------------


async def test_the_client_cli_lists_participants_and_invokes_tools(meshsite, ws_url, mint):
    url = ws_url("lobby")
    async with RoomClient(url, mint("bob")) as bob:
        await bob.register_toolkit(CALC)
        token = mint("carol")
        participants = await meshsite("--url", url, "--token", token, "participants")
        assert participants.code == 0, participants.err
        assert sorted(p["identity"] for p in participants.json) == ["bob", "carol"]

        toolkits = await meshsite("--url", url, "--token", token, "toolkits", "--participant", bob.participant.id)
        assert toolkits.code == 0, toolkits.err
        assert [t["name"] for t in toolkits.json] == ["calc"]

        invoked = await meshsite("--url", url, "--token", token, "invoke", "calc", "add", '{"a": 2, "b": 3}')
        assert (invoked.code, invoked.out, invoked.err) == (0, "5.0\n", "")

        failed = await meshsite("--url", url, "--token", token, "invoke", "calc", "add", "{}")
        assert (failed.code, failed.out) == (1, "")
        assert failed.err.splitlines() == [
            "meshsite: InvalidArguments: arguments do not match the input schema (invalid_arguments -32003)",
            "  (root): 'a' is a required property",
            "  (root): 'b' is a required property",
        ]

        refused = await meshsite("--url", url, "--token", "forged", "participants")
        assert (refused.code, refused.out) == (1, "")
        assert refused.err.count("\n") == 1 and refused.err.startswith("meshsite: AuthError:")

        usage = await meshsite("--token", token, "participants")
        assert (usage.code, usage.out) == (2, "")
        assert usage.err == "meshsite: error: --url is required (or set MESHSITE_URL)\n"


async def test_the_client_cli_listens_to_what_another_client_sends(meshsite, ws_url, mint):
    url = ws_url("lobby")
    async with RoomClient(url, mint("bob")) as bob:
        joined = asyncio.create_task(
            bob.wait_for("participant.joined", lambda p: p["participant"]["identity"] == "ear", timeout=TIMEOUT)
        )
        listener = asyncio.create_task(meshsite("--url", url, "--token", mint("ear"), "listen", "--count", "2"))
        ear = (await joined)["participant"]["id"]
        assert await bob.send_message(ear, "chat", {"text": "psst"}) == {"delivered": True}
        assert await bob.broadcast("chat", "all") == {"delivered": 1}

        listened = await listener
        assert listened.code == 0, listened.err
        lines = [json.loads(line) for line in listened.out.splitlines()]
        assert [line["method"] for line in lines] == ["messaging.message", "messaging.message"]
        direct, everyone = (line["params"] for line in lines)
        assert (direct["from"]["identity"], direct["to"], direct["message"]) == ("bob", ear, {"text": "psst"})
        assert (everyone["from"]["identity"], everyone["to"], everyone["message"]) == ("bob", None, "all")


async def test_the_client_cli_broadcasts_to_everyone_else(meshsite, ws_url, mint):
    url = ws_url("lobby")
    async with RoomClient(url, mint("bob")) as bob, RoomClient(url, mint("alice")) as alice:
        arrived = [asyncio.create_task(peer.wait_for("messaging.message", timeout=TIMEOUT)) for peer in (bob, alice)]
        sent = await meshsite("--url", url, "--token", mint("carol"), "send", "--broadcast", "chat", '{"text": "hi"}')
        assert sent.code == 0, sent.err
        assert sent.json == {"delivered": 2}
        for message in await asyncio.gather(*arrived):
            assert (message["from"]["identity"], message["to"], message["message"]) == ("carol", None, {"text": "hi"})


async def test_the_client_cli_mints_a_token_over_rest(meshsite, server, api_key):
    minted = await meshsite(
        "token", "--server", server.http_url, "--api-key", api_key, "--room", "lobby", "--identity", "dave"
    )
    assert minted.code == 0, minted.err
    token = minted.out.removesuffix("\n")
    assert minted.out == token + "\n" and "\n" not in token
    claims = verify_token(token)
    assert (claims.project, claims.room, claims.identity) == ("acme", "lobby", "dave")

    refused = await meshsite(
        "token", "--server", server.http_url, "--api-key", "msk_wrong", "--room", "lobby", "--identity", "dave"
    )
    assert (refused.code, refused.out) == (1, "")
    assert refused.err.count("\n") == 1 and refused.err.startswith("meshsite: TokenError:")
