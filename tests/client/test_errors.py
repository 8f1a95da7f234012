"""Mapping JSON-RPC error objects to exception classes."""

from __future__ import annotations

import pytest
from meshsite_client import (
    BudgetExceeded,
    Cancelled,
    Conflict,
    InternalError,
    InvalidArguments,
    InvalidParams,
    InvalidRequest,
    MeshError,
    MethodNotFound,
    NotFound,
    ParseError,
    ParticipantGone,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RpcError,
    Timeout,
    ToolFailed,
    Unavailable,
)

TABLE = [
    (-32700, "parse_error", ParseError),
    (-32600, "invalid_request", InvalidRequest),
    (-32601, "method_not_found", MethodNotFound),
    (-32602, "invalid_params", InvalidParams),
    (-32603, "internal_error", InternalError),
    (-32001, "permission_denied", PermissionDenied),
    (-32002, "not_found", NotFound),
    (-32003, "invalid_arguments", InvalidArguments),
    (-32004, "timeout", Timeout),
    (-32005, "participant_gone", ParticipantGone),
    (-32006, "payload_too_large", PayloadTooLarge),
    (-32007, "rate_limited", RateLimited),
    (-32008, "budget_exceeded", BudgetExceeded),
    (-32009, "tool_failed", ToolFailed),
    (-32010, "conflict", Conflict),
    (-32011, "cancelled", Cancelled),
    (-32012, "unavailable", Unavailable),
]


@pytest.mark.parametrize(("code", "type_name", "klass"), TABLE)
def test_it_maps_every_row_of_the_error_table_by_type(code: int, type_name: str, klass: type) -> None:
    error = RpcError.from_error({"code": code, "message": "m", "data": {"type": type_name}})
    assert type(error) is klass
    assert error.code == code
    assert error.type == type_name
    assert isinstance(error, RpcError)
    assert isinstance(error, MeshError)


@pytest.mark.parametrize(("code", "type_name", "klass"), TABLE)
def test_it_falls_back_to_the_code_when_data_has_no_type(code: int, type_name: str, klass: type) -> None:
    error = RpcError.from_error({"code": code, "message": "m"})
    assert type(error) is klass
    assert error.type == type_name


def test_data_type_wins_over_the_code() -> None:
    error = RpcError.from_error({"code": -32603, "message": "m", "data": {"type": "not_found"}})
    assert isinstance(error, NotFound)
    assert error.code == -32603


def test_it_keeps_unknown_errors_as_plain_rpc_errors() -> None:
    error = RpcError.from_error({"code": -31999, "message": "new", "data": {"type": "brand_new"}})
    assert type(error) is RpcError
    assert error.type == "brand_new"
    assert error.message == "new"


def test_it_survives_malformed_error_objects() -> None:
    assert isinstance(RpcError.from_error("nonsense"), InternalError)
    error = RpcError.from_error({"code": "x", "data": [1]})
    assert error.code == -32603
    assert error.message == "unknown error"
    assert error.data == {"value": [1]}


def test_it_exposes_the_fields_some_errors_add() -> None:
    invalid = RpcError.from_error(
        {
            "code": -32003,
            "message": "arguments do not match the input schema",
            "data": {"type": "invalid_arguments", "errors": [{"path": "", "message": "'city' is a required property"}]},
        }
    )
    assert isinstance(invalid, InvalidArguments)
    assert invalid.errors[0]["message"] == "'city' is a required property"
    limited = RpcError.from_error(
        {"code": -32007, "message": "slow down", "data": {"type": "rate_limited", "retry_after": 2}}
    )
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 2.0
    big = RpcError.from_error(
        {"code": -32006, "message": "too big", "data": {"type": "payload_too_large", "limit": 16384}}
    )
    assert isinstance(big, PayloadTooLarge)
    assert big.limit == 16384


def test_a_tool_failure_shows_the_hosts_message() -> None:
    error = RpcError.from_error(
        {
            "code": -32009,
            "message": "tool failed",
            "data": {"type": "tool_failed", "message": "city not found", "host_error": {"code": -32009}},
        }
    )
    assert isinstance(error, ToolFailed)
    assert "city not found" in str(error)
    assert error.host_error == {"code": -32009}


def test_a_timeout_is_also_a_builtin_timeout_error() -> None:
    error = RpcError.from_error({"code": -32004, "message": "deadline passed"})
    assert isinstance(error, TimeoutError)


def test_it_turns_back_into_an_error_object() -> None:
    error = NotFound(-32002, "no such toolkit", {"type": "not_found"})
    assert error.to_error() == {"code": -32002, "message": "no such toolkit", "data": {"type": "not_found"}}
