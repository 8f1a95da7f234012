"""Toolkit declarations and their `toolkits.register` form."""

from __future__ import annotations

import pytest
from meshsite_client import Toolkit, tool


@tool
async def forecast(city: str) -> dict[str, float]:
    """Forecast for a city."""
    return {"celsius": 20.0}


def test_it_produces_the_register_params_of_the_protocol() -> None:
    kit = Toolkit("weather", [forecast], description="Weather lookups")
    wire = kit.to_wire()
    assert wire == {
        "name": "weather",
        "description": "Weather lookups",
        "public": True,
        "tools": [
            {
                "name": "forecast",
                "description": "Forecast for a city.",
                "input_schema": forecast.input_schema,
                "output_schema": forecast.output_schema,
            }
        ],
    }
    assert wire["tools"][0]["input_schema"]["required"] == ["city"]


def test_it_wraps_plain_functions_as_tools() -> None:
    def shout(text: str) -> str:
        return text.upper()

    kit = Toolkit("ui", [shout], public=False)
    assert kit.to_wire()["public"] is False
    assert kit.get("shout") is not None
    assert kit.get("shout").input_schema["required"] == ["text"]  # type: ignore[union-attr]


def test_it_refuses_duplicate_tool_names() -> None:
    with pytest.raises(ValueError, match="two tools"):
        Toolkit("weather", [forecast, forecast])


@pytest.mark.parametrize("name", ["", "1abc", "a b", "x" * 65, "-a"])
def test_it_refuses_names_the_protocol_does_not_allow(name: str) -> None:
    with pytest.raises(ValueError, match="invalid toolkit name"):
        Toolkit(name, [])


def test_it_accepts_dots_dashes_and_underscores_in_names() -> None:
    assert Toolkit("a.b-c_d", []).name == "a.b-c_d"
