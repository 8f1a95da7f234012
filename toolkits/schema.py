"""Toolkit definitions and JSON Schema validation, shared by participant-hosted and built-in tools."""

import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from rooms.errors import ErrorCode, MeshError, invalid_params

NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$")
MAX_TOOLS_PER_TOOLKIT = 256
MAX_REPORTED_ERRORS = 10


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    input_validator: Draft202012Validator
    output_validator: Draft202012Validator | None

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }

    def check_arguments(self, arguments: Any) -> None:
        errors = schema_errors(self.input_validator, arguments)
        if errors:
            raise MeshError(ErrorCode.INVALID_ARGUMENTS, "arguments do not match the input schema", errors=errors)

    def output_errors(self, output: Any) -> list[dict[str, str]]:
        return schema_errors(self.output_validator, output) if self.output_validator else []


def schema_errors(validator: Draft202012Validator, instance: Any) -> list[dict[str, str]]:
    # is_valid is the cheap path; only a failure pays for collecting readable errors.
    if validator.is_valid(instance):
        return []
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [
        {"path": "".join(f"/{part}" for part in error.absolute_path), "message": error.message}
        for error in errors[:MAX_REPORTED_ERRORS]
    ]


def compile_schema(schema: Any, where: str) -> Draft202012Validator:
    if not isinstance(schema, dict):
        raise invalid_params(f"{where} must be a JSON Schema object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise invalid_params(f"{where} is not a valid JSON Schema: {exc.message}") from None
    return Draft202012Validator(schema)


def build_tool(raw: Any, where: str = "tool") -> ToolSpec:
    if not isinstance(raw, dict):
        raise invalid_params(f"{where} must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise invalid_params(f"{where}.name must match {NAME_RE.pattern}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise invalid_params(f"{where}.description must be a string")
    input_schema = raw.get("input_schema", {"type": "object"})
    output_schema = raw.get("output_schema")
    input_validator = compile_schema(input_schema, f"{where}.input_schema")
    output_validator = compile_schema(output_schema, f"{where}.output_schema") if output_schema is not None else None
    return ToolSpec(name, description, input_schema, output_schema, input_validator, output_validator)


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
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise invalid_params(f"name must match {NAME_RE.pattern}")
    description = params.get("description", "")
    if not isinstance(description, str):
        raise invalid_params("description must be a string")
    public = params.get("public", True)
    if not isinstance(public, bool):
        raise invalid_params("public must be true or false")
    raw_tools = params.get("tools")
    if not isinstance(raw_tools, list) or not raw_tools:
        raise invalid_params("tools must be a non-empty list")
    if len(raw_tools) > MAX_TOOLS_PER_TOOLKIT:
        raise invalid_params(f"a toolkit holds at most {MAX_TOOLS_PER_TOOLKIT} tools")
    tools: dict[str, ToolSpec] = {}
    for index, raw in enumerate(raw_tools):
        spec = build_tool(raw, f"tools[{index}]")
        if spec.name in tools:
            raise invalid_params(f"tool {spec.name!r} is defined twice")
        tools[spec.name] = spec
    return ToolkitDefinition(name, description, public, tools)


def tools_from_records(records: list[dict[str, Any]]) -> dict[str, ToolSpec]:
    """Rebuilds validators for tool records already checked at registration."""
    return {record["name"]: build_tool(record) for record in records}
