"""Frames parse and encode through orjson where it is installed (the server requires it): the
results, and every refusal with its error code, are those of the `json` path, checked against
`json` itself on generated values and on the frames the protocol refuses."""

import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshsite_client import protocol
from meshsite_client.protocol import ErrorCode, FrameError, decode_frame, encode_decoded, encode_frame

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def test_orjson_is_what_the_server_runs() -> None:
    assert protocol._orjson is not None, "requirements.txt pins orjson: the server's frames go through it"


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_decoding_gives_what_json_gives(value: Any) -> None:
    text = json.dumps({"jsonrpc": "2.0", "id": 1, "params": value}, ensure_ascii=False)
    try:
        expected = json.loads(text)
    except RecursionError:
        return
    if protocol.has_lone_surrogate(expected):
        with pytest.raises(FrameError):
            decode_frame(text)
        return
    decoded = decode_frame(text)
    assert decoded == expected
    assert json.dumps(decoded) == json.dumps(expected)  # same types too: an int stays an int


@pytest.mark.parametrize(
    "text",
    [
        '{"id": 1, "n": 123456789012345678901234567890}',
        '{"id": 1, "n": -9223372036854775809}',
        '{"id": 1, "n": 18446744073709551615}',
    ],
)
def test_integers_beyond_64_bits_stay_exact(text: str) -> None:
    assert decode_frame(text) == json.loads(text)
    assert isinstance(decode_frame(text)["n"], int)


@pytest.mark.parametrize(
    ("text", "code", "request_id"),
    [
        ('{"jsonrpc": "2.0", "id": 7, "params": {"x": NaN}}', ErrorCode.INVALID_PARAMS, 7),
        ('{"jsonrpc": "2.0", "id": 7, "params": {"x": -Infinity}}', ErrorCode.INVALID_PARAMS, 7),
        ('{"jsonrpc": "2.0", "id": 7, "params": {"x": 1e400}}', ErrorCode.INVALID_PARAMS, 7),
        ('{"jsonrpc": "2.0", "id": 7, "params": {"x": "\\ud800"}}', ErrorCode.INVALID_PARAMS, 7),
        ('{"jsonrpc": "2.0", "id": 7, "params": {"x": "\\udc00 low"}}', ErrorCode.INVALID_PARAMS, 7),
        ('{"jsonrpc": "2.0", "id": 7, "params": ' + "[" * 70 + "]" * 70 + "}", ErrorCode.INVALID_REQUEST, 7),
        ("[" * 5000 + "]" * 5000, ErrorCode.INVALID_REQUEST, None),
        ('{"jsonrpc": "2.0", "id": 7, "params": {"x": 1,}}', ErrorCode.PARSE_ERROR, None),
        ('{"x": "tab\tin a string"}', ErrorCode.PARSE_ERROR, None),
        ("", ErrorCode.PARSE_ERROR, None),
    ],
)
def test_refusals_keep_their_codes(text: str, code: ErrorCode, request_id: Any) -> None:
    with pytest.raises(FrameError) as refused:
        decode_frame(text)
    assert refused.value.code == code
    assert refused.value.request_id == request_id


def test_a_valid_surrogate_pair_is_text() -> None:
    assert decode_frame('{"x": "\\ud83d\\ude00"}') == {"x": "\U0001f600"}


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_encoding_decoded_values_gives_the_same_json(value: Any) -> None:
    message = {"jsonrpc": "2.0", "id": "k_1", "result": {"output": value}}
    try:
        expected = encode_frame(message)
    except ValueError:  # a lone surrogate in a generated string (UnicodeEncodeError): not a decoded frame's
        return
    if protocol.has_lone_surrogate(value):
        return
    encoded = encode_decoded(message)
    assert json.loads(encoded) == json.loads(expected)
    assert json.dumps(json.loads(encoded)) == json.dumps(json.loads(expected))


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "message",
    [
        {"n": 2**70},  # beyond 64 bits: orjson refuses, json writes it exactly
        {1: "a key that is not a string"},  # json writes "1"
        {"colour": Colour.RED},  # a str subclass
    ],
)
def test_what_orjson_does_not_take_is_encoded_by_json(message: dict[Any, Any]) -> None:
    assert encode_decoded(message) == encode_frame(message)


def test_what_json_refuses_stays_refused() -> None:
    with pytest.raises(TypeError):
        encode_decoded({"when": datetime.now(UTC)})
    with pytest.raises(ValueError):
        encode_frame({"x": math.nan})
