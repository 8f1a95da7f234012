"""Toolkit definitions and JSON Schema validation, shared by participant-hosted and built-in tools.

Schemas come from participants, so everything about them is bounded (docs/protocol.md, "Limits"):
- at registration a schema must be small, use only refs inside itself (`#` or `#/json/pointer`)
  that resolve, contain no `$ref` cycle that consumes no input, and use only patterns RE2 accepts;
- validation runs on a time budget: one that needs more than about 2 ms is validated again on a
  worker thread with a larger budget, so no schema/instance pair can hold the event loop;
- `pattern`/`patternProperties` run on RE2 (linear time, no catastrophic backtracking), and
  `uniqueItems` hashes instead of comparing every pair.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import jsonschema._keywords
import jsonschema._utils
import re2
import referencing
import referencing.exceptions
from django.conf import settings
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from meshsite_client.protocol import TOOL_NAME_RE, TOOLKIT_NAME_RE, contains_nul, encode_frame, utf8_size

from meshsite.errors import ErrorCode, MeshError, invalid_params

from .fastcheck import compile_check

logger = logging.getLogger(__name__)
MAX_TOOLS_PER_TOOLKIT = 256
MAX_REPORTED_ERRORS = 10
MAX_DESCRIPTION_CHARS = 4096
MAX_SCHEMA_BYTES = 64 * 1024
MAX_TOOLKIT_BYTES = 256 * 1024
# Seconds a validation may take on the event loop before it moves to the worker thread.
INLINE_SECONDS = 0.002
MAX_OFFLOADED = 32

# --- RE2 for jsonschema's pattern keywords --------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class PatternError(ValueError):
    pass


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise PatternError(f"pattern {pattern[:80]!r} is not supported: {_re2_reason(exc)}") from None


def _re2_reason(exc: Exception) -> str:
    text = exc.args[0] if exc.args else exc
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


class _RE2Search:
    """Stands in for the `re` module inside jsonschema, which only calls `re.search`."""

    @staticmethod
    def search(pattern: str, string: str, flags: int = 0) -> Any:
        return compile_pattern(pattern).search(string)


# jsonschema evaluates `pattern`, `patternProperties` (and additional/unevaluated properties'
# view of them) with `re.search`; pointing those two modules' `re` at RE2 covers every path.
jsonschema._keywords.re = _RE2Search  # type: ignore[attr-defined]
jsonschema._utils.re = _RE2Search  # type: ignore[attr-defined]

# --- the time budget -------------------------------------------------------------------------


class ValidationBudgetExceeded(Exception):
    pass


# [keyword evaluations until the next clock check, deadline on perf_counter]
_budget: ContextVar[list[float] | None] = ContextVar("schema_budget", default=None)
_CLOCK_EVERY = 32


def _spend() -> None:
    budget = _budget.get()
    if budget is None:
        return
    budget[0] -= 1
    if budget[0] <= 0:
        budget[0] = _CLOCK_EVERY
        if time.perf_counter() > budget[1]:
            raise ValidationBudgetExceeded


def _counted(keyword: Any) -> Any:
    def counted_keyword(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _spend()
        return keyword(validator, value, instance, schema)

    return counted_keyword


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1 and 1.0 are the same JSON Schema value
    return value


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[str] = set()
    for item in instance:
        key = json.dumps(_canonical(item), sort_keys=True)
        if key in seen:
            yield ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


def _first_error(validator: Any, instance: Any, subschema: Any, index: int) -> ValidationError | None:
    return next(iter(validator.descend(instance, subschema, schema_path=index)), None)


def _any_of(validator: Any, any_of: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    # jsonschema's own keeps every branch's errors for the report: on an exponential schema that is
    # exponential memory, and the garbage collector walking it freezes every thread. Stopping at a
    # branch's first error keeps work and memory to what deciding needs.
    for index, subschema in enumerate(any_of):
        if _first_error(validator, instance, subschema, index) is None:
            return
    yield ValidationError(f"{_short(instance)} is not valid under any of the given schemas")


def _one_of(validator: Any, one_of: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    valid = []
    for index, subschema in enumerate(one_of):
        if _first_error(validator, instance, subschema, index) is None:
            valid.append(index)
            if len(valid) > 1:
                yield ValidationError(f"{_short(instance)} is valid under more than one of the given schemas")
                return
    if not valid:
        yield ValidationError(f"{_short(instance)} is not valid under any of the given schemas")


def _short(instance: Any, limit: int = 200) -> str:
    text = repr(instance)
    return text if len(text) <= limit else text[:limit] + "…"


def _refuse_retrieval(uri: str) -> Any:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


SafeValidator: Any = validators.extend(
    Draft202012Validator,
    {
        **{name: _counted(fn) for name, fn in Draft202012Validator.VALIDATORS.items()},
        "uniqueItems": _counted(_unique_items),
        "anyOf": _counted(_any_of),
        "oneOf": _counted(_one_of),
    },
)
_LOCAL_ONLY: referencing.Registry[Any] = referencing.Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def _new_validator(schema: Any) -> Validator:
    validator: Validator = SafeValidator(schema, registry=_LOCAL_ONLY)
    return validator


class SchemaTooCostly(Exception):
    pass


def schema_errors(validator: Validator, instance: Any, seconds: float) -> list[dict[str, str]]:
    """The violations (at most MAX_REPORTED_ERRORS), found within `seconds`; else SchemaTooCostly."""
    token = _budget.set([_CLOCK_EVERY, time.perf_counter() + seconds])
    try:
        # is_valid is the cheap path; only a failure pays for collecting readable errors.
        if validator.is_valid(instance):
            return []
        _budget.set([_CLOCK_EVERY, time.perf_counter() + seconds])
        errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    except (ValidationBudgetExceeded, RecursionError):
        raise SchemaTooCostly from None
    except (referencing.exceptions.Unresolvable, PatternError) as exc:
        return [{"path": "", "message": f"the schema cannot be applied: {exc}"}]
    finally:
        _budget.reset(token)
    return [
        {"path": "".join(f"/{part}" for part in error.absolute_path), "message": _truncated(error.message)}
        for error in errors[:MAX_REPORTED_ERRORS]
    ]


def _truncated(message: str, limit: int = 500) -> str:
    # jsonschema quotes the whole offending value; a megabyte of it helps nobody
    return message if len(message) <= limit else message[:limit] + "…"


_offloaded = ThreadPoolExecutor(max_workers=1, thread_name_prefix="schema-validation")
_offloaded_count = 0


async def bounded_schema_errors(validator: Validator, instance: Any) -> list[dict[str, str]]:
    """`schema_errors` that never holds the event loop for more than about INLINE_SECONDS.

    Raises MeshError(-32007) when too many costly validations are already queued, and
    SchemaTooCostly when even the worker's budget (MESHSITE_SCHEMA_SECONDS) is exceeded."""
    global _offloaded_count
    try:
        return schema_errors(validator, instance, INLINE_SECONDS)
    except SchemaTooCostly:
        pass
    if _offloaded_count >= MAX_OFFLOADED:
        raise MeshError(ErrorCode.RATE_LIMITED, "the server is busy validating costly arguments; retry later")
    _offloaded_count += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _offloaded, schema_errors, validator, instance, settings.MESHSITE_SCHEMA_SECONDS
        )
    finally:
        _offloaded_count -= 1


# --- checks at registration ------------------------------------------------------------------

_SUBSCHEMA = (
    "additionalProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "contentSchema",
    "items",
)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
# Keywords whose subschemas apply to the same instance: a cycle through these (and $ref) never
# consumes input and recurses forever.
_IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "dependencies")
_REFUSED_KEYWORDS = ("$id", "$dynamicRef", "$recursiveRef", "$dynamicAnchor", "$recursiveAnchor")

Pointer = tuple[str, ...]


def _children(schema: dict[str, Any], pointer: Pointer) -> Iterator[tuple[str, Pointer, Any]]:
    """(keyword, pointer, subschema) for every subschema directly inside `schema`."""
    for keyword in _SUBSCHEMA:
        value = schema.get(keyword)
        if isinstance(value, dict | bool):
            yield keyword, (*pointer, keyword), value
    for keyword in _SUBSCHEMA_LISTS:
        value = schema.get(keyword)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict | bool):
                    yield keyword, (*pointer, keyword, str(index)), item
    for keyword in _SUBSCHEMA_MAPS:
        value = schema.get(keyword)
        if isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict | bool):
                    yield keyword, (*pointer, keyword, name), item


def _resolve_pointer(root: Any, ref: str) -> tuple[Pointer, Any]:
    if ref == "#":
        return (), root
    if not ref.startswith("#/"):
        raise ValueError(f"$ref {ref[:100]!r} is not allowed: only refs inside the schema ('#' or '#/pointer')")
    tokens = tuple(unquote(part).replace("~1", "/").replace("~0", "~") for part in ref[2:].split("/"))
    target = root
    for token in tokens:
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            raise ValueError(f"$ref {ref[:100]!r} does not resolve inside the schema")
    if not isinstance(target, dict | bool):
        raise ValueError(f"$ref {ref[:100]!r} does not point at a schema")
    return tokens, target


def check_schema_safety(root: dict[str, Any]) -> None:
    """Refuses what would make validating against `root` unbounded or reach outside it.

    Raises ValueError with a message fit for the participant."""
    edges: dict[Pointer, list[Pointer]] = {}
    todo: list[tuple[Pointer, Any]] = [((), root)]
    while todo:
        pointer, schema = todo.pop()
        if pointer in edges or not isinstance(schema, dict):
            continue
        in_place: list[Pointer] = []
        edges[pointer] = in_place
        for keyword in _REFUSED_KEYWORDS:
            if keyword in schema:
                raise ValueError(f"{keyword} is not supported; use $defs and '#/$defs/…' refs")
        ref = schema.get("$ref")
        if ref is not None:
            if not isinstance(ref, str):
                raise ValueError("$ref must be a string")
            target_pointer, target = _resolve_pointer(root, ref)
            in_place.append(target_pointer)
            todo.append((target_pointer, target))
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            compile_pattern(pattern)
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict):
            for key in patterns:
                compile_pattern(key)
        for keyword, child_pointer, child in _children(schema, pointer):
            if keyword in _IN_PLACE:
                in_place.append(child_pointer)
            todo.append((child_pointer, child))
    _refuse_in_place_cycles(edges)


def _refuse_in_place_cycles(edges: dict[Pointer, list[Pointer]]) -> None:
    done: set[Pointer] = set()
    for start in edges:
        if start in done:
            continue
        path: set[Pointer] = {start}
        stack: list[tuple[Pointer, Iterator[Pointer]]] = [(start, iter(edges.get(start, ())))]
        while stack:
            node, successors = stack[-1]
            following = next(successors, None)
            if following is None:
                stack.pop()
                path.discard(node)
                done.add(node)
            elif following in path:
                where = "#/" + "/".join(following) if following else "#"
                raise ValueError(f"the schema refers to itself at {where} without consuming any input")
            elif following not in done:
                path.add(following)
                stack.append((following, iter(edges.get(following, ()))))


def compile_schema(schema: Any, where: str) -> Validator:
    if not isinstance(schema, dict):
        raise invalid_params(f"{where} must be a JSON Schema object")
    if utf8_size(encode_frame(schema)) > MAX_SCHEMA_BYTES:
        raise invalid_params(f"{where} is larger than {MAX_SCHEMA_BYTES} bytes", limit=MAX_SCHEMA_BYTES)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise invalid_params(f"{where} is not a valid JSON Schema: {exc.message}") from None
    except RecursionError:
        raise invalid_params(f"{where} is nested too deeply") from None
    try:
        check_schema_safety(schema)
    except ValueError as exc:
        raise invalid_params(f"{where}: {exc}") from None
    return _new_validator(schema)


# --- tools and toolkits ----------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    input_validator: Validator
    output_validator: Validator | None
    # compiled once per tool: answers most calls without jsonschema (toolkits/fastcheck.py)
    input_check: Callable[[Any], bool] | None = None
    output_check: Callable[[Any], bool] | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }

    def arguments_certainly_valid(self, arguments: Any) -> bool:
        """The compiled check alone, without a coroutine: False means check_arguments decides."""
        return self.input_check is not None and self.input_check(arguments)

    def output_certainly_valid(self, output: Any) -> bool:
        """No output schema, or the compiled check passes: False means output_errors decides."""
        return self.output_validator is None or (self.output_check is not None and self.output_check(output))

    async def check_arguments(self, arguments: Any) -> None:
        if self.arguments_certainly_valid(arguments):
            return
        try:
            errors = await bounded_schema_errors(self.input_validator, arguments)
        except SchemaTooCostly:
            raise MeshError(
                ErrorCode.INVALID_ARGUMENTS,
                "validating these arguments against the tool's input schema exceeds the server's budget",
                limit_seconds=settings.MESHSITE_SCHEMA_SECONDS,
            ) from None
        if errors:
            raise MeshError(ErrorCode.INVALID_ARGUMENTS, "arguments do not match the input schema", errors=errors)

    async def output_errors(self, output: Any) -> list[dict[str, str]]:
        if self.output_certainly_valid(output):
            return []
        assert self.output_validator is not None  # output_certainly_valid is True without one
        try:
            return await bounded_schema_errors(self.output_validator, output)
        except SchemaTooCostly:
            return [{"path": "", "message": "validating the output against the output schema exceeds the budget"}]


def _description(raw: dict[str, Any], where: str) -> str:
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise invalid_params(f"{where}description must be a string")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise invalid_params(f"{where}description is longer than {MAX_DESCRIPTION_CHARS} characters")
    return description


def build_tool(raw: Any, where: str = "tool") -> ToolSpec:
    if not isinstance(raw, dict):
        raise invalid_params(f"{where} must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
        raise invalid_params(f"{where}.name must match {TOOL_NAME_RE.pattern}")
    description = _description(raw, f"{where}.")
    input_schema = raw.get("input_schema", {"type": "object"})
    output_schema = raw.get("output_schema")
    input_validator = compile_schema(input_schema, f"{where}.input_schema")
    output_validator = compile_schema(output_schema, f"{where}.output_schema") if output_schema is not None else None
    return ToolSpec(
        name,
        description,
        input_schema,
        output_schema,
        input_validator,
        output_validator,
        compile_check(input_schema),
        compile_check(output_schema) if output_schema is not None else None,
    )


@dataclass(frozen=True)
class ToolkitDefinition:
    name: str
    description: str
    public: bool
    tools: dict[str, ToolSpec]

    def tool_records(self) -> list[dict[str, Any]]:
        return [spec.to_record() for spec in self.tools.values()]


def parse_toolkit_definition(params: Any) -> ToolkitDefinition:
    """Validates `toolkits.register` params; raises MeshError(-32602) with the first problem."""
    if not isinstance(params, dict):
        raise invalid_params("params must be an object")
    name = params.get("name")
    if not isinstance(name, str) or not TOOLKIT_NAME_RE.match(name):
        raise invalid_params(f"name must match {TOOLKIT_NAME_RE.pattern} (letters, digits, '_' and '-')")
    description = _description(params, "")
    public = params.get("public", True)
    if not isinstance(public, bool):
        raise invalid_params("public must be true or false")
    raw_tools = params.get("tools")
    if not isinstance(raw_tools, list) or not raw_tools:
        raise invalid_params("tools must be a non-empty list")
    if len(raw_tools) > MAX_TOOLS_PER_TOOLKIT:
        raise invalid_params(f"a toolkit holds at most {MAX_TOOLS_PER_TOOLKIT} tools")
    if contains_nul(raw_tools) or "\x00" in description:
        raise invalid_params("toolkit definitions may not contain the NUL character (U+0000)")
    tools: dict[str, ToolSpec] = {}
    for index, raw in enumerate(raw_tools):
        spec = build_tool(raw, f"tools[{index}]")
        if spec.name in tools:
            raise invalid_params(f"tool {spec.name!r} is defined twice")
        tools[spec.name] = spec
    definition = ToolkitDefinition(name, description, public, tools)
    size = utf8_size(encode_frame(definition.tool_records())) + len(description.encode())
    if size > MAX_TOOLKIT_BYTES:
        raise MeshError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"a toolkit definition holds at most {MAX_TOOLKIT_BYTES} bytes", limit=size
        )
    return definition


def tools_from_records(records: list[dict[str, Any]]) -> dict[str, ToolSpec]:
    """Rebuilds validators for tool records already checked at registration."""
    tools = {}
    for record in records:
        try:
            tools[record["name"]] = build_tool(record)
        except MeshError as error:
            # Only a record stored by an older, laxer server can fail here; calls to it get -32002.
            logger.warning("tool record %r no longer passes registration checks: %s", record.get("name"), error)
    return tools
