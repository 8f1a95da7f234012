"""The node's own WebSocket framing (rooms/management/commands/serve.py) against autobahn's."""

import secrets

import pytest
from autobahn.websocket.xormasker import create_xor_masker

from rooms.management.commands.serve import frame_header, unmask


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 1000, 65_537])
def test_unmasking_matches_autobahn(length):
    payload, mask = secrets.token_bytes(length), secrets.token_bytes(4)
    assert unmask(payload, mask) == create_xor_masker(mask, length).process(payload)


@pytest.mark.parametrize(
    ("length", "binary", "header"),
    [
        (0, False, b"\x81\x00"),
        (125, False, b"\x81\x7d"),
        (126, True, b"\x82\x7e\x00\x7e"),
        (65_535, False, b"\x81\x7e\xff\xff"),
        (65_536, False, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_frame_headers_use_the_shortest_length_form(length, binary, header):
    assert frame_header(length, binary) == header
