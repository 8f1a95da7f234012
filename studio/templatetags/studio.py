"""Formatting for Studio pages: durations in ms, money exactly, byte sizes."""

from decimal import Decimal
from typing import Any

from django import template

from observability.money import money_text

register = template.Library()


@register.filter
def ms(value: Any) -> str:
    """A latency in milliseconds, to the precision that matters at its size: "0.42 ms", "12.3 ms", "1,204 ms"."""
    if value is None or value == "":
        return ""
    number = float(value)
    if number < 10:
        return f"{number:.2f} ms"
    if number < 100:
        return f"{number:.1f} ms"
    return f"{number:,.0f} ms"


@register.filter
def money(value: Any) -> str:
    return money_text(Decimal(value or 0))


@register.filter
def size(value: Any) -> str:
    number = int(value or 0)
    if number < 1024:
        return f"{number} B"
    if number < 1024 * 1024:
        return f"{number / 1024:.1f} KiB"
    return f"{number / 1024 / 1024:.1f} MiB"
