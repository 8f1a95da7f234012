"""Tool schemas written to hurt the server are refused at registration or bounded at validation,
and nobody else in the room waits while they are evaluated (project issue 15)."""

import asyncio
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import RawPeer
from tests.support.witness import ping_watch

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

REDOS_PATTERN = "^(a+)+$"


def tool(input_schema: dict[str, Any], name: str = "check") -> dict[str, Any]:
    return {"name": name, "description": "hostile", "input_schema": input_schema}


def exponential_schema(levels: int = 30) -> dict[str, Any]:
    """a_i tries a_(i-1) twice before null: a naive validator does 2**levels steps on a string."""
    defs: dict[str, Any] = {"a0": {"type": "integer"}}
    for i in range(1, levels + 1):
        previous = {"$ref": f"#/$defs/a{i - 1}"}
        defs[f"a{i}"] = {"anyOf": [previous, previous, {"type": "null"}]}
    return {"$defs": defs, "type": "object", "properties": {"x": {"$ref": f"#/$defs/a{levels}"}}}


def nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


class RecordingHandler(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def schema_host() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server serving a schema, and the paths anyone requested from it."""
    hits: list[str] = []
    handler = type("Handler", (RecordingHandler,), {"hits": hits})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_a_catastrophic_backtracking_pattern_is_answered_quickly_without_stalling_others(ws_url, mint):
    room = "schema-redos"
    async with (
        await RawPeer.connect(ws_url(room), mint("host", room=room)) as host,
        await RawPeer.connect(ws_url(room), mint("mallory", room=room)) as mallory,
        await RawPeer.connect(ws_url(room), mint("witness", room=room)) as witness,
    ):
        schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": REDOS_PATTERN}}}
        assert "result" in await host.register("redos", [tool(schema)])
        started = time.perf_counter()
        async with ping_watch(witness) as watch:
            answers = await asyncio.gather(
                *(mallory.invoke("redos", "check", {"s": "a" * 40 + "!"}) for _ in range(20))
            )
        elapsed = time.perf_counter() - started
        assert [a.get("error", {}).get("code") for a in answers] == [ErrorCode.INVALID_ARGUMENTS] * 20, answers[0]
        assert "pattern" in str(answers[0]["error"]["data"]["errors"]) or REDOS_PATTERN in str(answers[0])
        assert elapsed < 2, f"20 invalid invokes took {elapsed:.2f}s"
        assert watch.max_rtt < 0.1, watch
        # The same pattern still accepts what it should: RE2 runs it, it is not just refused.
        ok = asyncio.create_task(mallory.invoke("redos", "check", {"s": "a" * 40}))
        call = await host.next_call()
        await host.answer(call, "fine")
        assert (await ok)["result"]["output"] == "fine"
        assert not any(m.get("method") == "tools.call" for m in host.inbox), "an invalid invoke reached the host"


async def test_a_pattern_re2_cannot_run_is_refused_at_registration_naming_it(ws_url, mint):
    room = "schema-backref"
    async with await RawPeer.connect(ws_url(room), mint("host", room=room)) as host:
        for schema in (
            {"type": "object", "properties": {"s": {"type": "string", "pattern": "(a)\\1"}}},
            {"type": "object", "patternProperties": {"(a)\\1": {"type": "string"}}},
        ):
            response = await host.register("backref", [tool(schema)])
            assert response["error"]["code"] == ErrorCode.INVALID_PARAMS, response
            message = response["error"]["message"]
            assert "pattern" in message and "(a)" in message, message
        assert (await host.result("ping"))["pong"] is True


async def test_a_remote_ref_is_refused_at_registration_and_never_fetched(ws_url, mint, schema_host):
    base_url, hits = schema_host
    room = "schema-remote-ref"
    async with await RawPeer.connect(ws_url(room), mint("host", room=room)) as host:
        for ref in (
            f"{base_url}/x",
            "file:///etc/passwd",
            f"{base_url}/y#/definitions/s",
        ):
            response = await host.register("remote", [tool({"$ref": ref})])
            assert response["error"]["code"] == ErrorCode.INVALID_PARAMS, (ref, response)
            # Nested inside properties too, where a lazy resolver would only look at validation.
            nested = {"type": "object", "properties": {"s": {"$ref": ref}}}
            response = await host.register("remote", [tool(nested)])
            assert response["error"]["code"] == ErrorCode.INVALID_PARAMS, (ref, response)
        await asyncio.sleep(0.3)
        assert hits == [], f"the server fetched {hits}"
        assert not (await host.result("toolkits.list", {"participant_id": host.id}))["toolkits"]
    # The recorder works: a request does show up, so the empty record above means nobody asked.
    await asyncio.to_thread(lambda: urllib.request.urlopen(f"{base_url}/probe", timeout=5).read())
    assert hits == ["/probe"]


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/missing"},
        {"type": "object", "properties": {"a": {"$ref": "#/properties/nope"}}},
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
    ],
    ids=["missing-def", "missing-property", "self", "cycle"],
)
async def test_an_unresolvable_or_self_referencing_ref_is_refused_at_registration(ws_url, mint, schema):
    room = "schema-local-ref"
    async with await RawPeer.connect(ws_url(room), mint("host", room=room)) as host:
        response = await host.register("refs", [tool(schema)])
        assert response["error"]["code"] == ErrorCode.INVALID_PARAMS, response
        assert (await host.result("ping"))["pong"] is True


async def test_a_schema_nested_400_deep_is_refused_as_too_deep_and_the_connection_keeps_working(ws_url, mint):
    room = "schema-deep"
    async with await RawPeer.connect(ws_url(room), mint("host", room=room)) as host:
        response = await host.register("deep", [tool(nested_schema(400))])
        assert response["error"]["code"] == ErrorCode.INVALID_REQUEST, response
        assert (await host.result("ping"))["pong"] is True
        # A deep but legal schema still registers: the limit is on nesting, not on schemas.
        assert "result" in await host.register("shallow", [tool(nested_schema(10))])


async def test_an_exponential_schema_registers_but_its_validation_is_cut_off_without_stalling_others(ws_url, mint):
    # The default budget (MESHSITE_SCHEMA_SECONDS = 1 s), as production runs it.
    room = "schema-exponential"
    url = ws_url(room)
    async with (
        await RawPeer.connect(url, mint("host", room=room)) as host,
        await RawPeer.connect(url, mint("mallory", room=room)) as mallory,
        await RawPeer.connect(url, mint("witness", room=room)) as witness,
    ):
        registered = await host.register("blowup", [tool(exponential_schema(30))])
        assert "result" in registered, registered
        # A valid value takes the first branch at every level: cheap, and it reaches the host.
        ok = asyncio.create_task(mallory.invoke("blowup", "check", {"x": 1}))
        await host.answer(await host.next_call(), "fine")
        assert (await ok)["result"]["output"] == "fine"
        started = time.perf_counter()
        async with ping_watch(witness) as watch:
            response = await mallory.invoke("blowup", "check", {"x": "x"})
        elapsed = time.perf_counter() - started
        assert response["error"]["code"] == ErrorCode.INVALID_ARGUMENTS, response
        assert elapsed < 3, f"the costly invoke was answered after {elapsed:.2f}s"
        assert watch.max_rtt < 0.1, watch
        assert not any(m.get("method") == "tools.call" for m in host.inbox), "an invalid invoke reached the host"
        assert (await mallory.result("ping"))["pong"] is True
