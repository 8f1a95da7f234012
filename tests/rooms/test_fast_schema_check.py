"""The compiled check of simple schemas (toolkits/fastcheck.py) never calls valid what jsonschema
calls invalid, and it answers the common cases itself. Checked against jsonschema, the judge, on
generated schemas and instances."""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkits.fastcheck import MAX_STEPS, compile_check
from toolkits.schema import build_tool, compile_schema

TYPES = ["object", "array", "string", "boolean", "null", "integer", "number"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, 1.0, -2.0, 3.5])
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), children),
    max_leaves=12,
)


def schemas(depth: int = 2) -> st.SearchStrategy[Any]:
    leaf = st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
            "enum": st.lists(st.text(max_size=3), min_size=1, max_size=3),
            "description": st.text(max_size=5),
            "format": st.sampled_from(["email", "date-time"]),
        },
    )
    if depth == 0:
        return leaf | st.booleans()
    child = schemas(depth - 1)
    return st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
            "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), child, max_size=3),
            "required": st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3, unique=True),
            "additionalProperties": st.booleans() | child,
            "items": child,
            "enum": st.lists(st.text(max_size=3), min_size=1, max_size=3),
        },
    )


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas(), instances=st.lists(json_values, min_size=1, max_size=6))
def test_it_never_accepts_what_jsonschema_refuses(schema: Any, instances: list[Any]) -> None:
    check = compile_check(schema)
    validator = compile_schema(schema, "schema") if isinstance(schema, dict) else None
    for instance in instances:
        if check is not None and check(instance):
            assert validator is None or validator.is_valid(instance), (schema, instance)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}, {"n": 5}),
        ({"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": 5.0, "extra": [1]}),
        ({"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}, ["a", "b", "a"]),
        ({"type": ["string", "null"], "description": "either"}, None),
        ({"type": "object", "additionalProperties": {"type": "number"}}, {"x": 1, "y": 2.5}),
        ({}, {"anything": True}),
    ],
)
def test_it_answers_the_common_valid_cases_itself(schema: dict[str, Any], instance: Any) -> None:
    check = compile_check(schema)
    assert check is not None and check(instance)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}, {}),
        ({"type": "integer"}, True),
        ({"type": "integer"}, 1.5),
        ({"type": "object", "additionalProperties": False}, {"x": 1}),
        ({"enum": ["a"]}, 1),
    ],
)
def test_it_leaves_invalid_instances_to_jsonschema(schema: dict[str, Any], instance: Any) -> None:
    check = compile_check(schema)
    assert check is not None and not check(instance)


def test_schemas_outside_the_simple_set_get_no_check_and_big_instances_are_left_to_jsonschema() -> None:
    assert compile_check({"type": "string", "pattern": "^a"}) is None
    assert compile_check({"$ref": "#/$defs/x", "$defs": {"x": {}}}) is None
    assert compile_check({"enum": [1, 2]}) is None
    assert compile_check(False) is None
    check = compile_check({"type": "array", "items": {"type": "integer"}})
    assert check is not None
    assert check(list(range(100)))
    assert not check(list(range(MAX_STEPS + 1)))


async def test_a_tool_uses_its_check_and_still_reports_jsonschema_errors() -> None:
    spec = build_tool(
        {
            "name": "add",
            "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            "output_schema": {"type": "integer"},
        }
    )
    assert spec.input_check is not None and spec.output_check is not None
    await spec.check_arguments({"a": 1})
    assert await spec.output_errors(3) == []
    assert await spec.output_errors("three") == [{"path": "", "message": "'three' is not of type 'integer'"}]
    with pytest.raises(Exception, match="arguments do not match the input schema") as refused:
        await spec.check_arguments({"a": "one"})
    assert refused.value.data["errors"] == [{"path": "/a", "message": "'one' is not of type 'integer'"}]
