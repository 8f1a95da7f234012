"""`storage.changed` reaches the other participants of the room, whichever node they are on and
whichever way the file changed (the toolkit or HTTP)."""

import asyncio

import pytest
import requests

from tests.support.peer import RawPeer

from .personas import STORAGE_GRANTS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.usefixtures("server_blobs_removed")]


def token(mint, identity: str, room: str) -> str:
    return mint(identity, room=room, grants=STORAGE_GRANTS[identity])


async def test_an_http_upload_is_announced_to_the_room(server, mint):
    async with await RawPeer.connect(server.ws_url("uploads"), token(mint, "bob", "uploads")) as bob:
        url = f"{server.http_url}/api/v1/rooms/uploads/files/users/bob/photo.png"
        headers = {"Authorization": f"Bearer {token(mint, 'alice', 'uploads')}", "Content-Type": "image/png"}
        response = await asyncio.to_thread(requests.put, url, data=b"\x89PNG....", headers=headers)
        assert response.status_code == 201, response.text
        seen = await bob.notification("storage.changed")
        assert (seen["path"], seen["action"], seen["size"], seen["content_type"], seen["by"]) == (
            "users/bob/photo.png",
            "written",
            8,
            "image/png",
            "alice",
        )
        deleted = await asyncio.to_thread(requests.delete, url, headers=headers)
        assert deleted.status_code == 204
        assert (await bob.notification("storage.changed"))["action"] == "deleted"


@pytest.mark.redis
async def test_a_change_on_one_node_is_announced_on_the_other(two_nodes, mint):
    first, second = two_nodes
    async with (
        await RawPeer.connect(first.ws_url("spread"), token(mint, "alice", "spread")) as alice,
        await RawPeer.connect(second.ws_url("spread"), token(mint, "bob", "spread")) as bob,
    ):
        response = await alice.invoke("storage", "write", {"path": "users/bob/hello.txt", "text": "hi"})
        assert "result" in response, response
        seen = await bob.notification("storage.changed")
        assert (seen["path"], seen["version"], seen["by"]) == ("users/bob/hello.txt", 1, "alice")
