"""A fast "certainly valid" check for the simple JSON Schemas most tools declare, built once per
tool at registration.

jsonschema spends several microseconds per call building validator and resource objects, even for
`{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}`: at a few
thousand calls a second that is a sixth of the routing node's CPU. A schema that uses only the
keywords below gets a compiled check instead. It answers True only when jsonschema (Draft 2020-12,
no format checking, as `toolkits.schema` configures it) would find the instance valid too; on
False, or past `MAX_STEPS` values visited, the caller asks jsonschema, which decides and writes
the errors. So it can only skip work, never change a verdict or a message, and it stays within a
bounded time on the event loop.
"""

import numbers
from collections.abc import Callable
from typing import Any

# Values visited before giving up (then jsonschema decides, under its own time budget).
MAX_STEPS = 2000
# Keywords that change nothing about validity (format is not checked: no format checker is used).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "format", "deprecated"})
_SUPPORTED = _ANNOTATIONS | {"type", "properties", "required", "additionalProperties", "items", "enum"}

Check = Callable[[Any, list[int]], bool]


def _is_integer(value: Any) -> bool:
    # Draft 6 and later: 1.0 is an integer; a bool never is (jsonschema._types)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "integer": _is_integer,
    "number": _is_number,
}


def compile_check(schema: Any) -> Callable[[Any], bool] | None:
    """A function telling whether an instance is certainly valid, or None when `schema` uses
    keywords outside the supported set (jsonschema then does all the work)."""
    check = _compile(schema)
    if check is None:
        return None

    def certainly_valid(instance: Any) -> bool:
        try:
            return check(instance, [MAX_STEPS])
        except RecursionError:  # a deep schema and instance: jsonschema's path handles that
            return False

    return certainly_valid


def _compile(schema: Any) -> Check | None:
    if schema is True:
        return lambda value, steps: True
    if not isinstance(schema, dict) or not schema.keys() <= _SUPPORTED:
        return None  # False, or keywords jsonschema alone handles
    checks: list[Check] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not names or not all(isinstance(name, str) and name in _TYPES for name in names):
            return None
        predicates = tuple(_TYPES[name] for name in set(names))
        if len(predicates) == 1:
            predicate = predicates[0]
            checks.append(lambda value, steps: predicate(value))
        else:
            checks.append(lambda value, steps: any(predicate(value) for predicate in predicates))
    if "enum" in schema:
        members = schema["enum"]
        # Strings only: jsonschema compares a string to anything with ==, and 1 == 1.0 == True
        # questions do not arise.
        if not isinstance(members, list) or not all(isinstance(member, str) for member in members):
            return None
        allowed = frozenset(members)
        checks.append(lambda value, steps: isinstance(value, str) and value in allowed)
    object_check = _object_check(schema)
    if object_check is None:
        return None
    if object_check is not _NOTHING:
        checks.append(object_check)
    if "items" in schema:
        item_check = _compile(schema["items"])
        if item_check is None:
            return None
        checks.append(lambda value, steps: not isinstance(value, list) or _all_items(item_check, value, steps))

    # Every argument of every call goes through these: plain loops, no generator per node.
    def check(value: Any, steps: list[int]) -> bool:
        steps[0] -= 1
        if steps[0] < 0:
            return False
        for each in checks:  # noqa: SIM110 (all() would build a generator per value)
            if not each(value, steps):
                return False
        return True

    return check


def _all_items(item_check: Check, value: list[Any], steps: list[int]) -> bool:
    steps[0] -= len(value)  # counted up front: a long list gives up at once
    return steps[0] >= 0 and all(item_check(item, steps) for item in value)


def _nothing(value: Any, steps: list[int]) -> bool:
    return True


_NOTHING: Check = _nothing


def _object_check(schema: dict[str, Any]) -> Check | None:
    """properties, required and additionalProperties, which apply to objects only."""
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    if not all(isinstance(name, str) for name in required):
        return None
    property_checks: dict[str, Check] = {}
    for name, subschema in properties.items():
        compiled = _compile(subschema)
        if compiled is None:
            return None
        property_checks[name] = compiled
    additional_check = None if additional is True else _compile(additional)
    if additional is not True and additional is not False and additional_check is None:
        return None
    if not property_checks and not required and additional is True:
        return _NOTHING

    def check(value: Any, steps: list[int]) -> bool:
        if not isinstance(value, dict):
            return True
        steps[0] -= len(value)  # counted up front: a large object gives up at once
        if steps[0] < 0:
            return False
        for name in required:
            if name not in value:
                return False
        for name, item in value.items():
            each = property_checks.get(name)
            if each is not None:
                if not each(item, steps):
                    return False
            elif additional is False or (additional_check is not None and not additional_check(item, steps)):
                return False
        return True

    return check
