"""The `storage` toolkit over a real server: six operations, each gated by the caller's grants,
bad paths refused, and file changes announced to the room's readers (only)."""

import base64

import pytest
from meshsite_client.protocol import ErrorCode

from tests.support.peer import RawPeer

from .personas import STORAGE_GRANTS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.usefixtures("server_blobs_removed")]


async def connect(ws_url, mint, identity: str, room: str = "files") -> RawPeer:
    return await RawPeer.connect(ws_url(room), mint(identity, room=room, grants=STORAGE_GRANTS[identity]))


async def output(peer: RawPeer, tool: str, arguments: dict) -> dict:
    response = await peer.invoke("storage", tool, arguments)
    assert "result" in response, response
    return response["result"]["output"]


async def error(peer: RawPeer, tool: str, arguments: dict) -> dict:
    response = await peer.invoke("storage", tool, arguments)
    assert "error" in response, response
    return response["error"]


async def test_each_operation_is_gated_by_the_callers_grants(ws_url, mint):
    async with (
        await connect(ws_url, mint, "alice") as alice,
        await connect(ws_url, mint, "bob") as bob,
        await connect(ws_url, mint, "charlie") as charlie,
    ):
        await output(alice, "write", {"path": "shared/plan.md", "text": "plan"})
        await output(alice, "write", {"path": "users/bob/todo.txt", "text": "todo"})
        denied = ErrorCode.PERMISSION_DENIED

        # write
        assert (await output(bob, "write", {"path": "users/bob/a.txt", "text": "hi"}))["file"]["version"] == 1
        assert (await error(bob, "write", {"path": "shared/x.txt", "text": "no"}))["code"] == denied
        assert (await error(charlie, "write", {"path": "users/charlie/x", "text": "no"}))["code"] == denied
        # read
        assert (await output(bob, "read", {"path": "users/bob/todo.txt"}))["text"] == "todo"
        assert (await error(bob, "read", {"path": "shared/plan.md"}))["code"] == denied
        assert (await error(charlie, "read", {"path": "shared/plan.md"}))["code"] == denied
        # stat
        assert (await output(bob, "stat", {"path": "users/bob/a.txt"}))["file"]["size"] == 2
        assert (await error(bob, "stat", {"path": "shared/plan.md"}))["code"] == denied
        assert (await error(charlie, "stat", {"path": "users/bob/a.txt"}))["code"] == denied
        # list: only what the caller may read; refused where it may read nothing
        everything = await output(alice, "list", {})
        assert [f["path"] for f in everything["files"]] == ["shared/plan.md", "users/bob/a.txt", "users/bob/todo.txt"]
        assert [f["path"] for f in (await output(bob, "list", {}))["files"]] == [
            "users/bob/a.txt",
            "users/bob/todo.txt",
        ]
        assert (await error(bob, "list", {"prefix": "shared/"}))["code"] == denied
        assert (await error(charlie, "list", {}))["code"] == denied
        # move: write on source and destination
        assert (await error(bob, "move", {"source": "shared/plan.md", "destination": "users/bob/p.md"}))[
            "code"
        ] == denied
        assert (await error(bob, "move", {"source": "users/bob/a.txt", "destination": "shared/a.txt"}))[
            "code"
        ] == denied
        moved = await output(bob, "move", {"source": "users/bob/a.txt", "destination": "users/bob/b.txt"})
        assert moved["file"]["path"] == "users/bob/b.txt"
        # delete
        assert (await error(bob, "delete", {"path": "shared/plan.md"}))["code"] == denied
        assert (await error(charlie, "delete", {"path": "users/bob/b.txt"}))["code"] == denied
        assert await output(bob, "delete", {"path": "users/bob/b.txt"}) == {"deleted": "users/bob/b.txt"}
        assert (await error(bob, "stat", {"path": "users/bob/b.txt"}))["code"] == ErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    "path",
    [
        "../lobby/x",
        "/etc/passwd",
        "users/bob/../alice/x",
        "users/bob/\x00x",
        "users/bob/" + "a" * 300,
        "users/bob\uff0f..\uff0falice/x",
        "users/bob/\u2024\u2024/x",
        "users/bob\\..\\x",
    ],
)
async def test_traversal_and_lookalike_paths_are_refused_with_a_reason(ws_url, mint, path):
    async with await connect(ws_url, mint, "alice") as alice:
        for tool, arguments in (
            ("write", {"path": path, "text": "x"}),
            ("read", {"path": path}),
            ("stat", {"path": path}),
            ("delete", {"path": path}),
            ("move", {"source": "a.txt", "destination": path}),
        ):
            failure = await error(alice, tool, arguments)
            assert failure["code"] == ErrorCode.INVALID_ARGUMENTS, (tool, failure)
            assert "invalid" in failure["message"]


async def test_binary_files_round_trip_as_base64_and_pages_list_everything_once(ws_url, mint):
    async with await connect(ws_url, mint, "alice", room="pages") as alice:
        blob = bytes(range(256))
        written = await output(alice, "write", {"path": "bin/all.bytes", "base64": base64.b64encode(blob).decode()})
        assert written["file"]["content_type"] == "application/octet-stream"
        back = await output(alice, "read", {"path": "bin/all.bytes"})
        assert back["encoding"] == "base64" and base64.b64decode(back["base64"]) == blob
        assert (await error(alice, "read", {"path": "bin/all.bytes", "encoding": "text"}))["code"] == (
            ErrorCode.INVALID_PARAMS
        )
        for index in range(7):
            await output(alice, "write", {"path": f"docs/{index}.txt", "text": str(index)})
        listed, cursor = [], None
        while True:
            page = await output(
                alice, "list", {"prefix": "docs/", "limit": 3, **({"cursor": cursor} if cursor else {})}
            )
            listed += [f["path"] for f in page["files"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert listed == [f"docs/{index}.txt" for index in range(7)]


async def test_inline_writes_over_the_inline_limit_point_to_http(ws_url, mint):
    async with await connect(ws_url, mint, "alice") as alice:
        failure = await error(alice, "write", {"path": "big.txt", "text": "x" * (512 * 1024 + 1)})
        assert failure["code"] == ErrorCode.PAYLOAD_TOO_LARGE and "HTTP" in failure["message"]


async def test_changes_are_announced_to_readers_only(ws_url, mint):
    async with (
        await connect(ws_url, mint, "alice", room="news") as alice,
        await connect(ws_url, mint, "bob", room="news") as bob,
    ):
        await output(alice, "write", {"path": "users/bob/note.txt", "text": "for bob"})
        seen = await bob.notification("storage.changed")
        assert seen == {
            "path": "users/bob/note.txt",
            "action": "written",
            "size": 7,
            "content_type": "text/plain",
            "version": 1,
            "by": "alice",
        }
        await output(alice, "write", {"path": "shared/secret.txt", "text": "not for bob"})
        assert (await alice.notification("storage.changed"))["path"] == "users/bob/note.txt"
        assert (await alice.notification("storage.changed"))["path"] == "shared/secret.txt"
        # a move out of bob's folder reads to him as a deletion, naming no path he may not read
        await output(alice, "move", {"source": "users/bob/note.txt", "destination": "shared/note.txt"})
        moved = await alice.notification("storage.changed")
        assert (moved["action"], moved["previous_path"], moved["path"]) == (
            "moved",
            "users/bob/note.txt",
            "shared/note.txt",
        )
        gone = await bob.notification("storage.changed")
        assert (gone["action"], gone["path"], gone["version"]) == ("deleted", "users/bob/note.txt", 2)
        assert not [m for m in bob.inbox if m.get("method") == "storage.changed"]
