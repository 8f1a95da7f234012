"""Schemas and argument handling derived from tool signatures."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
import pytest
from meshsite_client import Tool, ToolContext, tool
from pydantic import BaseModel, Field


class City(BaseModel):
    name: str
    country: str = "PT"


class Forecast(BaseModel):
    city: str
    celsius: float


def test_it_describes_simple_parameters_as_required_properties() -> None:
    @tool
    def add(a: int, b: float, label: str, flag: bool) -> float:
        return a + b

    schema = add.input_schema
    assert schema["type"] == "object"
    assert schema["required"] == ["a", "b", "label", "flag"]
    assert schema["properties"]["a"]["type"] == "integer"
    assert schema["properties"]["b"]["type"] == "number"
    assert schema["properties"]["label"]["type"] == "string"
    assert schema["properties"]["flag"]["type"] == "boolean"


def test_it_forbids_unknown_arguments_in_the_schema() -> None:
    @tool
    def ping() -> None:
        return None

    assert ping.input_schema["additionalProperties"] is False
    assert ping.input_schema["properties"] == {}
    assert "title" not in ping.input_schema


def test_it_makes_parameters_with_defaults_optional() -> None:
    @tool
    def search(query: str, limit: int = 10, lang: str | None = None) -> list[str]:
        return []

    schema = search.input_schema
    assert schema["required"] == ["query"]
    assert schema["properties"]["limit"]["default"] == 10
    assert schema["properties"]["lang"]["default"] is None
    assert {"type": "null"} in schema["properties"]["lang"]["anyOf"]


def test_it_nests_pydantic_model_parameters() -> None:
    @tool
    def locate(city: City) -> str:
        return city.name

    schema = locate.input_schema
    ref = schema["properties"]["city"]["$ref"]
    assert ref == "#/$defs/City"
    assert schema["$defs"]["City"]["required"] == ["name"]


def test_it_excludes_the_context_parameter_from_the_schema() -> None:
    @tool
    async def work(ctx: ToolContext, city: str) -> str:
        return city

    assert list(work.input_schema["properties"]) == ["city"]
    assert work.input_schema["required"] == ["city"]
    assert work.wants_context


def test_it_recognises_the_context_parameter_by_type_whatever_its_name() -> None:
    @tool
    async def work(city: str, *, anything: ToolContext | None = None) -> str:
        return city

    assert list(work.input_schema["properties"]) == ["city"]
    assert work.signature.context_param == "anything"


def test_it_builds_the_output_schema_from_the_return_annotation() -> None:
    @tool
    async def forecast(city: str) -> Forecast:
        return Forecast(city=city, celsius=20)

    assert forecast.output_schema is not None
    assert forecast.output_schema["required"] == ["city", "celsius"]


def test_it_has_no_output_schema_without_a_return_annotation_or_with_any() -> None:
    @tool
    def untyped(x: int):  # type: ignore[no-untyped-def]
        return x

    @tool
    def anything(x: int) -> Any:
        return x

    assert untyped.output_schema is None
    assert anything.output_schema is None


def test_it_treats_unannotated_parameters_as_any() -> None:
    @tool
    def echo(value):  # type: ignore[no-untyped-def]
        return value

    assert echo.input_schema["required"] == ["value"]
    assert "type" not in echo.input_schema["properties"]["value"]


def test_it_takes_the_description_from_the_first_docstring_paragraph() -> None:
    @tool
    def documented(x: int) -> int:
        """Double a number,
        quickly.

        Details that callers do not need.
        """
        return 2 * x

    assert documented.description == "Double a number, quickly."


def test_it_accepts_name_and_description_overrides() -> None:
    @tool(name="double.it", description="Doubles")
    def documented(x: int) -> int:
        """Ignored."""
        return 2 * x

    assert documented.name == "double.it"
    assert documented.description == "Doubles"
    assert documented(3) == 6


def test_it_keeps_field_metadata_from_annotated_and_field_defaults() -> None:
    @tool
    def forecast(
        city: Annotated[str, Field(description="City name")],
        days: int = Field(3, ge=1, le=14, description="Days ahead"),
    ) -> None:
        return None

    props = forecast.input_schema["properties"]
    assert props["city"]["description"] == "City name"
    assert props["days"]["minimum"] == 1
    assert props["days"]["default"] == 3
    assert forecast.input_schema["required"] == ["city"]


def test_it_allows_parameter_names_that_shadow_basemodel_attributes() -> None:
    @tool
    def odd(json: str, schema: int = 1, model_config: bool = False) -> str:
        return json

    assert set(odd.input_schema["properties"]) == {"json", "schema", "model_config"}


def test_it_refuses_star_parameters() -> None:
    with pytest.raises(TypeError, match="args"):
        tool(name="star")(lambda *args: None)


def test_it_refuses_invalid_tool_names() -> None:
    with pytest.raises(ValueError, match="invalid tool name"):
        tool(name="1bad")(lambda: None)


@pytest.mark.asyncio
async def test_it_passes_validated_arguments_with_models_as_instances() -> None:
    seen: dict[str, Any] = {}

    @tool
    async def locate(city: City, days: int = 1) -> Forecast:
        seen["city"] = city
        seen["days"] = days
        return Forecast(city=city.name, celsius=days)

    output = await locate.run({"city": {"name": "Lisbon"}, "days": "2"})
    assert isinstance(seen["city"], City)
    assert seen["days"] == 2
    assert output == {"city": "Lisbon", "celsius": 2.0}


@pytest.mark.asyncio
async def test_it_runs_sync_handlers_and_makes_their_output_json() -> None:
    @tool
    def make(n: int) -> list[City]:
        return [City(name=f"c{i}") for i in range(n)]

    assert await make.run({"n": 2}) == [
        {"name": "c0", "country": "PT"},
        {"name": "c1", "country": "PT"},
    ]


@pytest.mark.asyncio
async def test_it_rejects_arguments_that_do_not_validate() -> None:
    @tool
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(pydantic.ValidationError):
        await add.run({"a": 1})
    with pytest.raises(pydantic.ValidationError):
        await add.run({"a": 1, "b": 2, "c": 3})


def test_a_tool_object_keeps_the_original_function_callable() -> None:
    def plain(x: int) -> int:
        return x + 1

    wrapped = Tool(plain)
    assert wrapped(1) == 2
    assert wrapped.__name__ == "plain"
