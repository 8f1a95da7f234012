"""HTTP upload and download over a real daphne server: the same token and grants as the toolkit,
4xx with a reason, and a 200 MB upload that leaves the server's memory flat."""

import hashlib
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests
from django.conf import settings

from tests.support.servers import ServerProcess

from .personas import STORAGE_GRANTS
from .transfer import GeneratedBody, memory_kib, reset_peak

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_blobs_removed")]


@pytest.fixture
def files_url(server):
    def url(path: str = "", room: str = "lobby") -> str:
        return f"{server.http_url}/api/v1/rooms/{room}/files/{path}"

    return url


@pytest.fixture
def auth(mint):
    def headers(identity: str, room: str = "lobby", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(identity, room=room, grants=STORAGE_GRANTS[identity])}", **extra}

    return headers


def reason(response: requests.Response) -> str:
    return response.json()["error"]["message"]


def test_upload_download_and_delete_a_file(files_url, auth):
    put = requests.put(
        files_url("users/bob/r.csv"), data=b"a,b\n1,2\n", headers=auth("bob", **{"Content-Type": "text/csv"})
    )
    assert put.status_code == 201, put.text
    assert put.json()["file"]["version"] == 1
    again = requests.put(files_url("users/bob/r.csv"), data=b"a,b\n3,4\n", headers=auth("bob"))
    assert again.status_code == 200 and again.json()["file"]["version"] == 2
    got = requests.get(files_url("users/bob/r.csv"), headers=auth("bob"))
    assert got.status_code == 200 and got.content == b"a,b\n3,4\n"
    assert got.headers["Content-Type"] == "text/csv" and got.headers["Content-Length"] == "8"
    digest = hashlib.sha256(b"a,b\n3,4\n").hexdigest()
    assert got.headers["ETag"] == f'"{digest}"'
    head = requests.head(files_url("users/bob/r.csv"), headers=auth("bob"))
    assert head.status_code == 200 and head.headers["Content-Length"] == "8"
    listing = requests.get(files_url(), params={"prefix": "users/bob/"}, headers=auth("bob")).json()
    assert [f["path"] for f in listing["files"]] == ["users/bob/r.csv"]
    assert requests.delete(files_url("users/bob/r.csv"), headers=auth("bob")).status_code == 204
    assert requests.get(files_url("users/bob/r.csv"), headers=auth("bob")).status_code == 404


def test_grants_apply_to_every_method(files_url, auth):
    assert requests.put(files_url("shared/a.txt"), data=b"x", headers=auth("alice")).status_code == 201
    for identity in ("bob", "charlie"):
        for method in ("GET", "HEAD", "DELETE"):
            response = requests.request(method, files_url("shared/a.txt"), headers=auth(identity))
            assert response.status_code == 403, (identity, method)
        refused = requests.put(files_url("shared/b.txt"), data=b"x", headers=auth(identity))
        assert refused.status_code == 403 and "may not write 'shared/b.txt'" in reason(refused)
    assert requests.get(files_url(), headers=auth("charlie")).status_code == 403
    assert requests.get(files_url(), params={"prefix": "shared/"}, headers=auth("bob")).status_code == 403
    assert requests.get(files_url("shared/a.txt"), headers=auth("alice")).content == b"x"


def test_it_answers_bad_requests_with_a_reason(files_url, auth, mint):
    no_token = requests.get(files_url("a.txt"))
    assert no_token.status_code == 401 and "Bearer" in reason(no_token)
    assert requests.get(files_url("a.txt"), headers={"Authorization": "Bearer nope"}).status_code == 401
    other_room = requests.get(files_url("a.txt", room="elsewhere"), headers=auth("alice"))
    assert other_room.status_code == 403 and "for room 'lobby'" in reason(other_room)
    for sneaky in ("%2e%2e/x", "users/bob/%2e%2e/alice/x", "a%00b", "a%5Cb", quote("users/bob\uff0f..\uff0fx")):
        response = requests.put(files_url(sneaky), data=b"x", headers=auth("alice"))
        assert response.status_code == 400, (sneaky, response.text)
        assert response.json()["error"]["type"] == "invalid_arguments"
    assert requests.post(files_url("a.txt"), headers=auth("alice")).status_code == 405
    assert requests.get(files_url("missing.txt"), headers=auth("alice")).status_code == 404


@pytest.fixture(scope="module")
def small_limit_server(django_db_setup, django_db_blocker):
    """A server whose files may hold at most 1 MB, so refusing a larger one needs no huge upload."""
    with django_db_blocker.unblock():
        process = ServerProcess(redis_url=settings.REDIS_URL or None, env={"MESHSITE_STORAGE_MAX_BYTES": "1000000"})
        process.start()
    yield process
    process.stop()


def test_a_file_over_the_limit_is_refused_with_413_and_nothing_changes(small_limit_server, auth):
    url = f"{small_limit_server.http_url}/api/v1/rooms/lobby/files/users/alice/big.bin"
    assert requests.put(url, data=b"small", headers=auth("alice")).status_code == 201
    declared = requests.put(url, data=GeneratedBody(1_000_001), headers=auth("alice"))  # with Content-Length
    assert declared.status_code == 413 and "over the limit of 1000000 bytes" in reason(declared)
    chunks = (b"z" * 100_000 for _ in range(20))  # chunked: no length declared, cut off past the limit
    undeclared = requests.put(url, data=chunks, headers=auth("alice"))
    assert undeclared.status_code == 413 and undeclared.json()["error"]["type"] == "payload_too_large"
    got = requests.get(url, headers=auth("alice"))
    assert got.content == b"small" and got.headers["X-Meshsite-Version"] == "1"


BIG = 200 * 1024 * 1024
# No embedding backend: on the embedded default background work runs inside the server process,
# and the Indexer loading its model there mid-measurement would swamp what this test measures.
NO_EMBEDDINGS = {
    "MESHSITE_EMBEDDINGS": "openai",
    "MESHSITE_EMBEDDING_BASE_URL": "",
    "MESHSITE_EMBEDDING_API_KEY": "",
    "OPENAI_API_KEY": "",
}


@pytest.fixture(scope="module")
def quiet_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        process = ServerProcess(redis_url=settings.REDIS_URL or None, env=NO_EMBEDDINGS).start()
    yield process
    process.stop()


def test_a_200_mb_upload_and_download_stream_with_flat_server_memory(quiet_server, auth):
    server = quiet_server
    pid = server.process.pid

    def files_url(path: str) -> str:
        return f"{server.http_url}/api/v1/rooms/lobby/files/{path}"

    requests.put(files_url("warmup.bin"), data=GeneratedBody(4 * 1024 * 1024), headers=auth("alice"))
    requests.get(files_url("warmup.bin"), headers=auth("alice"))
    reset_peak(pid)
    before = memory_kib(pid)

    body = GeneratedBody(BIG)
    started = time.monotonic()
    put = requests.put(files_url("big/200mb.bin"), data=body, headers=auth("alice", **{"Content-Type": "video/mp4"}))
    upload_seconds = time.monotonic() - started
    assert put.status_code in (200, 201), put.text
    assert put.json()["file"]["size"] == BIG and put.json()["file"]["sha256"] == body.digest.hexdigest()
    after_upload = memory_kib(pid)

    reset_peak(pid)
    digest, received = hashlib.sha256(), 0
    started = time.monotonic()
    with requests.get(files_url("big/200mb.bin"), headers=auth("alice"), stream=True) as got:
        assert got.headers["Content-Length"] == str(BIG)
        for chunk in got.iter_content(1024 * 1024):
            digest.update(chunk)
            received += len(chunk)
    download_seconds = time.monotonic() - started
    after_download = memory_kib(pid)
    assert (received, digest.hexdigest()) == (BIG, body.digest.hexdigest())

    # a client that stops reading: the server waits for it instead of queueing the file in memory
    reset_peak(pid)
    stalled_before = memory_kib(pid)
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        target = "/api/v1/rooms/lobby/files/big/200mb.bin"
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth_header(auth('alice'))}Connection: close\r\n\r\n"
        client.sendall(request.encode())
        time.sleep(3)  # the response would have been written out to Twisted whole by now
        stalled = memory_kib(pid)
        stalled_received = 0
        while chunk := client.recv(1024 * 1024):
            stalled_received += len(chunk)
    requests.delete(files_url("big/200mb.bin"), headers=auth("alice"))
    assert stalled_received > BIG  # the headers and the whole body
    stalled_growth = stalled["VmHWM"] - stalled_before["VmRSS"]

    upload_growth = after_upload["VmHWM"] - before["VmRSS"]
    download_growth = after_download["VmHWM"] - after_upload["VmRSS"]
    print(
        f"\n200 MB upload {upload_seconds:.1f}s, server peak RSS growth {upload_growth / 1024:.1f} MiB; "
        f"download {download_seconds:.1f}s, growth {download_growth / 1024:.1f} MiB; "
        f"stalled reader growth {stalled_growth / 1024:.1f} MiB "
        f"(RSS before {before['VmRSS'] / 1024:.0f} MiB; load {os.getloadavg()[0]:.1f})"
    )
    assert upload_growth < 40 * 1024, (before, after_upload)  # well below the 200 MB uploaded
    assert download_growth < 40 * 1024, (after_upload, after_download)
    assert stalled_growth < 40 * 1024, (stalled_before, stalled)


def auth_header(headers: dict[str, str]) -> str:
    return f"Authorization: {headers['Authorization']}\r\n"


def test_a_range_of_a_file_can_be_downloaded(files_url, auth):
    content = bytes(range(256)) * 4
    assert requests.put(files_url("ranges.bin"), data=content, headers=auth("alice")).status_code == 201
    for header, expected, content_range in (
        ("bytes=0-9", content[:10], "bytes 0-9/1024"),
        ("bytes=1000-", content[1000:], "bytes 1000-1023/1024"),
        ("bytes=-5", content[-5:], "bytes 1019-1023/1024"),
        ("bytes=1020-5000", content[1020:], "bytes 1020-1023/1024"),
    ):
        got = requests.get(files_url("ranges.bin"), headers=auth("alice", Range=header))
        assert (got.status_code, got.content, got.headers["Content-Range"]) == (206, expected, content_range)
    past_end = requests.get(files_url("ranges.bin"), headers=auth("alice", Range="bytes=2000-"))
    assert past_end.status_code == 416 and past_end.headers["Content-Range"] == "bytes */1024"
    several = requests.get(files_url("ranges.bin"), headers=auth("alice", Range="bytes=0-1,5-6"))
    assert several.status_code == 200 and several.content == content  # the whole file, as the RFC allows


def test_decomposed_and_composed_urls_name_the_same_file(files_url, auth):
    composed, decomposed = quote("users/bob/caf\u00e9.txt"), quote("users/bob/cafe\u0301.txt")
    assert requests.put(files_url(decomposed), data=b"menu", headers=auth("bob")).status_code == 201
    got = requests.get(files_url(composed), headers=auth("bob"))
    assert got.status_code == 200 and got.content == b"menu"
    listing = requests.get(files_url(), params={"prefix": "users/bob/"}, headers=auth("bob")).json()
    assert [f["path"] for f in listing["files"]] == ["users/bob/caf\u00e9.txt"]


def test_concurrent_uploads_to_one_path_leave_one_whole_upload(files_url, auth):
    uploads = [bytes([97 + index]) * (3 * 1024 * 1024 + index) for index in range(6)]

    def put(content: bytes) -> dict:
        response = requests.put(files_url("race.bin"), data=content, headers=auth("alice"))
        assert response.status_code in (200, 201), response.text
        return response.json()["file"]

    with ThreadPoolExecutor(len(uploads)) as pool:
        written = list(pool.map(put, uploads))
    assert sorted(f["version"] for f in written) == list(range(1, len(uploads) + 1))
    got = requests.get(files_url("race.bin"), headers=auth("alice"))
    assert got.content in uploads
    last = max(written, key=lambda f: f["version"])
    assert (got.headers["X-Meshsite-Version"], got.headers["ETag"]) == (str(last["version"]), f'"{last["sha256"]}"')
    assert hashlib.sha256(got.content).hexdigest() == last["sha256"]
