"""`TaskRunner`: an agent that answers one kind of request, with validated input and output."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import jsonschema
import pydantic
from pydantic import BaseModel
from pydantic_core import PydanticCustomError, PydanticSerializationError, to_jsonable_python

from ..context import ToolContext
from ..errors import MeshError
from ..schema import HandlerSignature
from ..tools import Tool, Toolkit, check_name
from .errors import InvalidAnswer, InvalidAskArguments
from .single_room import SingleRoomAgent

if TYPE_CHECKING:
    from ..client import RoomClient

ASK_TOOL = "ask"

Schema = dict[str, Any] | type[BaseModel]


@dataclass
class AskContext(ToolContext):
    """What a TaskRunner knows about one ask: a `ToolContext` plus `agent`, `asker`, `invoke`.

    `caller` is the participant whose call reached the agent; `on_behalf_of` the participant
    it acted for, if any. `asker` is the one the agent works for: `on_behalf_of`, else `caller`.
    """

    agent: TaskRunner | None = None

    @classmethod
    def from_tool_context(cls, ctx: ToolContext, agent: TaskRunner | None = None) -> AskContext:
        values = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ToolContext) if f.init}
        return cls(**values, agent=agent)

    @classmethod
    def local(cls, agent: TaskRunner | None = None, room: RoomClient | None = None) -> AskContext:
        """A context for asking a TaskRunner directly from Python, without a call through a room."""
        return cls(
            call_id="local",
            toolkit=agent.name if agent is not None else "",
            tool=ASK_TOOL,
            caller={},
            on_behalf_of=None,
            deadline=None,
            room=cast("RoomClient", room),
            agent=agent,
        )

    @property
    def asker(self) -> dict[str, Any]:
        return self.on_behalf_of or self.caller

    async def invoke(self, toolkit: str, tool: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Invoke another tool on behalf of the participant who asked (same keywords as
        `RoomClient.invoke`); the server allows that while this ask is in flight."""
        if self.room is None:
            raise MeshError("this ask did not come through a room: there is no room to invoke tools in")
        asker_id = self.asker.get("id")
        if isinstance(asker_id, str) and asker_id:
            kwargs.setdefault("on_behalf_of_id", asker_id)
        if self.traceparent:
            kwargs.setdefault("traceparent", self.traceparent)
        return await self.room.invoke(toolkit, tool, arguments, **kwargs)


def json_schema_of(schema: Schema | None, *, mode: str = "validation") -> dict[str, Any] | None:
    """A JSON Schema dict from a dict (returned as is) or a pydantic model class."""
    if schema is None:
        return None
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema(mode="serialization" if mode == "serialization" else "validation")
    if isinstance(schema, dict):
        return schema
    raise TypeError(f"a schema must be a JSON Schema dict or a pydantic BaseModel subclass, got {schema!r}")


def _compile(schema: dict[str, Any] | None, what: str) -> jsonschema.Draft202012Validator | None:
    if schema is None:
        return None
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"the {what} is not a valid JSON Schema (draft 2020-12): {exc.message}") from None
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, value: Any) -> list[dict[str, Any]]:
    found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [{"path": "".join(f"/{part}" for part in error.absolute_path), "message": error.message} for error in found]


class TaskRunner(SingleRoomAgent):
    """An agent that answers asks: JSON in (`input_schema`), JSON out (`output_schema`).

    It hosts a public toolkit named after the agent with one tool, `ask`. Arguments are
    validated before `ask()` runs and the answer after, so a wrong answer is an error to the
    caller, never a silent pass. A schema is a JSON Schema dict or a pydantic model class:
    with a model, `ask()` receives an instance and may return one.
    """

    kind = "task_runner"
    input_schema: Schema = {"type": "object"}
    output_schema: Schema | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.name:
            raise ValueError(f"{type(self).__name__} needs a name: it is the name of its toolkit")
        check_name("agent", self.name)
        self._input_json = json_schema_of(self.input_schema)
        self._output_json = json_schema_of(self.output_schema, mode="serialization")
        self._input_validator = _compile(self._input_json, "input schema")
        self._output_validator = _compile(self._output_json, "output schema")

    # -- to implement ----------------------------------------------------------------------

    async def ask(self, context: AskContext, arguments: Any) -> Any:
        """Answer one ask. `arguments` is a dict, or an instance of the input model."""
        raise NotImplementedError(f"{type(self).__name__} must implement `async def ask(self, context, arguments)`")

    # -- schemas and validation ------------------------------------------------------------

    @property
    def input_json_schema(self) -> dict[str, Any]:
        return self._input_json or {"type": "object"}

    @property
    def output_json_schema(self) -> dict[str, Any] | None:
        return self._output_json

    def agent_attributes(self) -> dict[str, Any]:
        attributes = super().agent_attributes()
        attributes["agent"]["input_schema"] = self.input_json_schema
        attributes["agent"]["output_schema"] = self.output_json_schema
        return attributes

    def argument_errors(self, arguments: Any) -> list[dict[str, Any]]:
        """The input-schema violations of `arguments` as `{path, message}` (empty when valid)."""
        return _errors(self._input_validator, arguments) if self._input_validator is not None else []

    def answer_errors(self, output: Any) -> list[dict[str, Any]]:
        """The output-schema violations of an (already JSON) answer."""
        return _errors(self._output_validator, output) if self._output_validator is not None else []

    def parse_arguments(self, arguments: Any) -> Any:
        """Validate `arguments`; returns them, or the input model's instance. Raises
        InvalidAskArguments."""
        errors = self.argument_errors(arguments)
        if errors:
            raise InvalidAskArguments(errors)
        model = self.input_schema
        if isinstance(model, type) and issubclass(model, BaseModel):
            try:
                return model.model_validate(arguments)
            except pydantic.ValidationError as exc:
                raise InvalidAskArguments(
                    [{"path": "".join(f"/{p}" for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
                ) from None
        return arguments

    def dump_answer(self, answer: Any) -> Any:
        """Make an answer JSON (pydantic models are dumped) and check it against the output
        schema; raises InvalidAnswer."""
        try:
            output = to_jsonable_python(answer)  # pydantic models become their JSON dump
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise InvalidAnswer([{"path": "", "message": f"the answer is not JSON: {exc}"}]) from None
        errors = self.answer_errors(output)
        if errors:
            raise InvalidAnswer(errors)
        return output

    async def answer(self, arguments: Any, context: AskContext | None = None) -> Any:
        """Validate, `ask`, validate: what the `ask` tool does, callable directly from Python."""
        parsed = self.parse_arguments(arguments)
        if context is None:
            context = AskContext.local(self, self._room)
        return self.dump_answer(await self.ask(context, parsed))

    # -- the toolkit -----------------------------------------------------------------------

    def exposed_toolkits(self) -> list[Toolkit]:
        return [*super().exposed_toolkits(), self.ask_toolkit()]

    def ask_toolkit(self) -> Toolkit:
        """The public toolkit `<name>` with the one tool `ask`."""
        runner = self

        async def ask(ctx: ToolContext, arguments: dict[str, Any]) -> Any:
            context = ctx if isinstance(ctx, AskContext) else AskContext.from_tool_context(ctx, runner)
            return runner.dump_answer(await runner.ask(context, arguments))

        tool = Tool(ask, name=ASK_TOOL, description=self.description)
        base = tool.signature
        values = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        values.update(input_schema=self.input_json_schema, output_schema=self.output_json_schema)
        tool.signature = _AskSignature(runner=self, **values)
        return Toolkit(self.name, [tool], description=self.description, public=True)


@dataclass
class _AskSignature(HandlerSignature):
    """Binds a call's whole `arguments` object (validated against the declared schema)."""

    runner: TaskRunner | None = None

    def bind(self, arguments: dict[str, Any], ctx: ToolContext | None) -> tuple[list[Any], dict[str, Any]]:
        assert self.runner is not None
        try:
            parsed = self.runner.parse_arguments(arguments)
        except InvalidAskArguments as exc:
            # As a pydantic ValidationError, the client answers `-32003 invalid_arguments` with
            # the violations, like the server does for the same schema.
            raise pydantic.ValidationError.from_exception_data(
                "arguments",
                [
                    {
                        "type": PydanticCustomError("json_schema", "{message}", {"message": e["message"]}),
                        "loc": tuple(part for part in e["path"].split("/") if part),
                        "input": arguments,
                    }
                    for e in exc.errors
                ],
            ) from None
        return [ctx, parsed], {}

    def dump_output(self, value: Any) -> Any:
        return value  # already checked JSON (TaskRunner.dump_answer)
