"""Money: amounts as they come over the wire, as the ledger stores them (1e-9), as JSON shows them."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

NANO = Decimal("0.000000001")
# What a DecimalField(max_digits=18, decimal_places=9) holds.
MAX_MONEY = Decimal("999999999.999999999")


class BadAmount(ValueError):
    pass


def parse_money(value: Any) -> Decimal:
    """A non-negative amount given as a decimal string ("0.0125") or a JSON number, rounded to
    1e-9. Raises BadAmount for anything else (booleans, NaN, infinities, negatives, too large)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadAmount("must be a decimal string or a number")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise BadAmount(f"{value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise BadAmount(f"{value!r} is not a finite number")
    if amount < 0:
        raise BadAmount("cannot be negative")
    if amount > MAX_MONEY:
        raise BadAmount(f"cannot be over {MAX_MONEY}")
    return round_money(amount)


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(NANO, rounding=ROUND_HALF_UP)


def money_text(amount: Decimal | int) -> str:
    """Exact, fixed-point, without trailing zeros: "0", "0.03471125", "12.5"."""
    text = format(Decimal(amount), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
