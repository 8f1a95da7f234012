"""The proxy's requests on a raw connection: what `manage.py serve` reads itself
(observability.proxy.http11, when mounted) and what it hands to daphne's channel (anything
else), with the same answers either way. Every test runs on both servers of `proxy_server`."""

import json
import socket
import time

import pytest
from django.test import override_settings

from observability.proxy.http11 import HandOver, read_head

from .conftest import wait_for_usage

pytestmark = [pytest.mark.e2e]

BODY = json.dumps({"model": "acme-chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def request(api_key: str, *, body: bytes = BODY, version: str = "HTTP/1.1", extra: str = "") -> bytes:
    head = (
        f"POST /v1/chat/completions {version}\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


class Reader:
    """Reads whole HTTP/1.1 responses off a socket: (status, lower-case headers, body)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            assert self.fill(), f"the connection closed; got {self.buffer[:300]!r}"
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            assert self.fill(), "the connection closed inside a body"
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def response(self) -> tuple[int, dict[str, str], bytes]:
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            return status, headers, self.exactly(int(headers["content-length"]))
        if headers.get("transfer-encoding") != "chunked":  # the body ends with the connection
            while self.fill():
                pass
            body, self.buffer = self.buffer, b""
            return status, headers, body
        body = b""
        while size := int(self.until(b"\r\n"), 16):
            body += self.exactly(size)
            assert self.exactly(2) == b"\r\n"
        assert self.exactly(2) == b"\r\n"
        return status, headers, body

    def closed(self, timeout: float = 5) -> bool:
        self.sock.settimeout(timeout)
        try:
            return not self.fill()
        except TimeoutError:
            return False


@pytest.fixture
def connect(proxy_server):
    sockets: list[socket.socket] = []

    def _connect() -> tuple[socket.socket, Reader]:
        sock = socket.create_connection(("127.0.0.1", proxy_server.port), timeout=10)
        sockets.append(sock)
        return sock, Reader(sock)

    yield _connect
    for sock in sockets:
        sock.close()


def completion(response: tuple[int, dict[str, str], bytes]) -> str:
    status, headers, body = response
    assert status == 200, body
    assert headers["x-request-id"].startswith("req_")
    return json.loads(body)["choices"][0]["message"]["content"]


def test_pipelined_requests_are_answered_in_order_and_the_connection_then_serves_django(
    base_url, upstream, api_key, connect
):
    upstream.reply("first")
    upstream.reply("second")
    sock, reader = connect()
    sock.sendall(request(api_key) + request(api_key))  # the second before the first is answered
    assert completion(reader.response()) == "first"
    assert completion(reader.response()) == "second"
    # the same connection, now for a page that is not the proxy's
    sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, _headers, body = reader.response()
    assert status == 200 and json.loads(body)["status"] == "ok"
    # and the proxy again, after that
    upstream.reply("third")
    sock.sendall(request(api_key))
    assert completion(reader.response()) == "third"
    wait_for_usage(3)


def test_a_client_sending_past_the_buffer_limit_while_an_answer_waits_loses_nothing(
    base_url, upstream, api_key, connect
):
    """The channel stops reading while an answer is on its way and its buffer holds more than a
    whole request may be (16 kB of head and MESHSITE_PROXY_MAX_REQUEST_BYTES, 256 kB in these
    tests); it reads on after the answer."""
    upstream.reply("first", delay=1.0)
    padded = [{"role": "user", "content": "x" * 12_000}]
    for n in range(25):
        upstream.reply(f"r{n}")
    sock, reader = connect()
    body = json.dumps({"model": "acme-chat", "messages": padded}).encode()
    sock.sendall(request(api_key) + request(api_key, body=body) * 25)  # about 300 kB
    assert completion(reader.response()) == "first"
    assert [completion(reader.response()) for _ in range(25)] == [f"r{n}" for n in range(25)]
    wait_for_usage(26)


def test_a_request_that_arrives_in_pieces_is_answered_once_whole(base_url, upstream, api_key, connect):
    upstream.reply("pieced")
    sock, reader = connect()
    raw = request(api_key)
    for start in range(0, len(raw), 37):  # splits the request line, headers, the blank line, the body
        sock.sendall(raw[start : start + 37])
        time.sleep(0.01)
    assert completion(reader.response()) == "pieced"
    assert len(upstream.requests) == 1
    wait_for_usage(1)


def test_a_chunked_upload_and_an_http_1_0_request_are_answered_too(base_url, upstream, api_key, connect):
    upstream.reply("chunked upload")
    sock, reader = connect()
    head = request(api_key, body=b"").replace(b"Content-Length: 0\r\n", b"Transfer-Encoding: chunked\r\n")
    sock.sendall(head + b"%x\r\n%b\r\n0\r\n\r\n" % (len(BODY), BODY))
    assert completion(reader.response()) == "chunked upload"

    upstream.reply("old client")
    sock, reader = connect()
    sock.sendall(request(api_key, version="HTTP/1.0"))
    status, _headers, body = reader.response()
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "old client"
    wait_for_usage(2)


def test_connection_close_is_honoured(base_url, upstream, api_key, connect):
    upstream.reply("bye")
    sock, reader = connect()
    sock.sendall(request(api_key, extra="Connection: close\r\n"))
    response = reader.response()
    assert completion(response) == "bye"
    assert reader.closed()
    wait_for_usage(1)


def test_a_malformed_head_is_400_and_never_forwarded(base_url, upstream, api_key, connect):
    sock, reader = connect()
    sock.sendall(request(api_key, extra="Bad Header: x\r\n"))  # a space in a header name
    status, _headers, _body = reader.response()
    assert status == 400
    assert upstream.requests == []


def test_a_body_over_the_limit_is_413_without_being_read(base_url, upstream, api_key, connect):
    sock, reader = connect()
    sock.sendall(request(api_key, body=b"")[: -len(b"Content-Length: 0\r\n\r\n")] + b"Content-Length: 300000\r\n\r\n")
    sock.sendall(b"{" * 300_000)
    status, _headers, body = reader.response()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"
    assert upstream.requests == []


def test_a_stream_comes_in_http_chunks_ending_with_done(base_url, upstream, api_key, connect):
    upstream.reply("streamed words")
    sock, reader = connect()
    body = json.dumps({"model": "acme-chat", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    sock.sendall(request(api_key, body=body.encode()))
    status, headers, content = reader.response()
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [line for line in content.decode().split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    text = "".join(
        (json.loads(event[len("data: ") :])["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
        for event in events[:-1]
    )
    assert text == "streamed words"
    wait_for_usage(1)


# --- the head, read (no server) ------------------------------------------------------------------


def head_of(raw: bytes):
    return read_head(raw)


def test_the_head_of_a_plain_request_is_read():
    head = head_of(request("k", body=b"{}"))
    assert (head.method, head.route, head.length, head.close) == ("POST", "chat/completions", 2, False)
    assert (b"authorization", b"Bearer k") in head.headers
    assert head.size == len(request("k", body=b"{}")) - 2
    assert head_of(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n").route == "models"


def test_an_incomplete_head_waits():
    assert head_of(request("k")[:40]) is None
    assert head_of(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /api/v1/health HTTP/1.1\r\n\r\n",  # not the proxy's
        b"GET /v1/models?after=x HTTP/1.1\r\n\r\n",  # a query string
        b"GET /v1/models HTTP/1.0\r\n\r\n",
        b"HEAD /v1/models HTTP/1.1\r\n\r\n",
        b"GET  /v1/models HTTP/1.1\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nContent-Length: +2\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nX-A : 1\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",  # over the limit
        b"POST /v1/embeddings HTTP/1.1\r\nX-Long: " + b"a" * 20000,  # a head too long to be a proxy request
    ],
)
def test_anything_else_is_handed_to_daphne(raw):
    with pytest.raises(HandOver):
        head_of(raw)


def test_the_limit_is_read_from_the_settings():
    raw = b"POST /v1/embeddings HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
    assert head_of(raw).length == 10
    with override_settings(MESHSITE_PROXY_MAX_REQUEST_BYTES=9), pytest.raises(HandOver):
        head_of(raw)
