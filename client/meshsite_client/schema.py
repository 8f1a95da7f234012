"""JSON Schemas and argument validation derived from a handler's signature."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .context import ToolContext


@dataclass(frozen=True)
class _Param:
    name: str
    field: str
    positional_only: bool


@dataclass
class HandlerSignature:
    """How to validate a call's `arguments` and turn them into a call of the handler."""

    model: type[BaseModel]
    params: list[_Param]
    context_param: str | None
    context_positional: bool
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    output_adapter: TypeAdapter[Any] | None

    def bind(self, arguments: dict[str, Any], ctx: ToolContext | None) -> tuple[list[Any], dict[str, Any]]:
        """Validate `arguments` (raises pydantic.ValidationError) and build the call's args."""
        instance = self.model.model_validate(arguments)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param in self.params:
            # getattr, not model_dump, so BaseModel-typed parameters arrive as instances.
            value = getattr(instance, param.field)
            if param.positional_only:
                args.append(value)
            else:
                kwargs[param.name] = value
        if self.context_param is not None:
            if self.context_positional:
                args.insert(0, ctx)
            else:
                kwargs[self.context_param] = ctx
        return args, kwargs

    def dump_output(self, value: Any) -> Any:
        """Make a handler's return value JSON-able, shaped like the output schema promises."""
        if self.output_adapter is not None:
            try:
                return self.output_adapter.dump_python(value, mode="json")
            except (pydantic.ValidationError, PydanticSerializationError, TypeError, ValueError):
                pass  # The server validates against output_schema; let it report the mismatch.
        return to_jsonable_python(value)


def _is_context(hint: Any) -> bool:
    if isinstance(hint, type) and issubclass(hint, ToolContext):
        return True
    args = typing.get_args(hint)
    # Optional[ToolContext] / ToolContext | None.
    return (
        bool(args)
        and any(a is not type(None) and _is_context(a) for a in args)
        and all(a is type(None) or _is_context(a) for a in args)
    )


def _is_any(hint: Any) -> bool:
    return hint is Any or hint is inspect.Signature.empty


def _resolve_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for unresolved forward references, mostly
        raise TypeError(f"cannot resolve the type hints of {fn!r}: {exc}") from exc


def analyze(fn: Callable[..., Any], tool_name: str) -> HandlerSignature:
    hints = _resolve_hints(fn)
    sig = inspect.signature(fn)
    fields: dict[str, Any] = {}
    params: list[_Param] = []
    context_param: str | None = None
    context_positional = False
    for index, (name, parameter) in enumerate(sig.parameters.items()):
        hint = hints.get(name, parameter.annotation)
        if _is_context(hint):
            context_param = name
            context_positional = parameter.kind is inspect.Parameter.POSITIONAL_ONLY
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r}: *args/**kwargs parameters cannot be described as a schema")
        annotation = Any if _is_any(hint) else hint
        default = parameter.default
        # Fields get neutral names with the parameter name as alias, so parameters called e.g.
        # `json`, `schema` or `model_config` cannot collide with BaseModel's own attributes.
        field_name = f"p{index}"
        if isinstance(default, FieldInfo):
            annotation = typing.Annotated[annotation, default]
            fields[field_name] = (annotation, Field(alias=name))
        elif default is inspect.Parameter.empty:
            fields[field_name] = (annotation, Field(alias=name))
        else:
            fields[field_name] = (annotation, Field(default, alias=name))
        params.append(_Param(name, field_name, parameter.kind is inspect.Parameter.POSITIONAL_ONLY))
    if context_positional and params and params[0].positional_only:
        raise TypeError(f"tool {tool_name!r}: a positional-only ToolContext must come first")
    try:
        model = pydantic.create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid", populate_by_name=False),
            **fields,
        )
        input_schema = model.model_json_schema()
    except pydantic.PydanticUserError as exc:
        raise TypeError(f"tool {tool_name!r}: cannot build an input schema: {exc}") from exc
    except pydantic.PydanticSchemaGenerationError as exc:
        raise TypeError(f"tool {tool_name!r}: cannot build an input schema: {exc}") from exc
    # The model's title is an internal name, not something a caller should see.
    input_schema.pop("title", None)
    input_schema.setdefault("properties", {})
    output_schema, adapter = _output(hints.get("return", sig.return_annotation))
    return HandlerSignature(
        model=model,
        params=params,
        context_param=context_param,
        context_positional=context_positional,
        input_schema=input_schema,
        output_schema=output_schema,
        output_adapter=adapter,
    )


def _output(hint: Any) -> tuple[dict[str, Any] | None, TypeAdapter[Any] | None]:
    if _is_any(hint):
        return None, None
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(hint)
        return adapter.json_schema(mode="serialization"), adapter
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        # A return type pydantic cannot describe only costs the schema, not the tool.
        return None, None


def first_paragraph(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn)
    if not doc:
        return ""
    paragraph = doc.strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines() if line.strip())
