"""Prices and costs: which `ModelPrice` applies to a usage, what it costs, and money as it comes
over the wire. Exact Decimal arithmetic throughout; a cost is rounded (half up) to 1e-9 once, at
the end, because that is what the ledger stores."""

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings

from .models import ModelPrice
from .money import BadAmount, parse_money, round_money

MILLION = Decimal(1_000_000)


def _specificity(price: ModelPrice) -> tuple[int, int]:
    """Exact names first; among patterns, the one with the most literal characters."""
    if not price.is_pattern:
        return (1, len(price.model))
    return (0, sum(1 for c in price.model if c not in "*?[]"))


def _names(model: str) -> tuple[str, str | None, str]:
    """`openai/gpt-4o` is model `gpt-4o` of provider `openai`, as routers and proxies name it."""
    provider, slash, bare = model.partition("/")
    return (bare, provider.lower(), model) if slash and bare else (model, None, model)


# The price rows of each kind in this server's currency, newest first, by kind: (read at, rows).
# Reading them is most of what pricing a usage record costs (tens of rows made into objects), so
# each process keeps them MESHSITE_PRICE_CACHE_SECONDS; `effective_from` is still compared with
# each usage's time, so a price scheduled ahead takes effect exactly on time.
_rows: dict[str, tuple[float, list[ModelPrice]]] = {}
_rows_lock = threading.Lock()


def forget_prices(**_: Any) -> None:
    """Drops the cached price rows (connected to ModelPrice's save and delete signals)."""
    with _rows_lock:
        _rows.clear()


def price_rows(kind: str) -> list[ModelPrice]:
    ttl = settings.MESHSITE_PRICE_CACHE_SECONDS
    now = time.monotonic()
    with _rows_lock:
        entry = _rows.get(kind)
    if entry is not None and now - entry[0] < ttl:
        return entry[1]
    rows = list(
        ModelPrice.objects.filter(kind=kind, currency=settings.MESHSITE_CURRENCY).order_by("-effective_from", "-pk")
    )
    if ttl > 0:
        with _rows_lock:
            _rows[kind] = (now, rows)
    return rows


# The rows that can price a model name, by (kind, model), with the row list they were picked from
# (a list read again, or dropped by forget_prices, is a new list: the entry is then stale).
# Matching a name against every row's pattern was most of pricing a usage record.
_matching: dict[tuple[str, str], tuple[list[ModelPrice], list[ModelPrice]]] = {}
MAX_MATCHED_NAMES = 10_000  # past it, the cache starts over (names come from requests)


def matching_rows(kind: str, model: str) -> list[ModelPrice]:
    """The price rows of `kind` whose name or pattern (and provider) match `model`, newest first."""
    rows = price_rows(kind)
    entry = _matching.get((kind, model))
    if entry is not None and entry[0] is rows:
        return entry[1]
    bare, provider, full = _names(model)
    found = [
        price
        for price in rows
        if not (price.provider and provider is not None and price.provider.lower() != provider)
        and (fnmatchcase(full, price.model) or fnmatchcase(bare, price.model))
    ]
    if len(_matching) >= MAX_MATCHED_NAMES:
        _matching.clear()
    _matching[(kind, model)] = (rows, found)
    return found


def find_price(kind: str, model: str, at: datetime) -> ModelPrice | None:
    """The price of `model` for `kind` in effect at `at`: among the rows whose name or pattern
    matches, the most specific name, and for that name the row with the latest `effective_from`
    not after `at`. Prices in another currency than the server's never apply."""
    best: ModelPrice | None = None
    for price in matching_rows(kind, model):
        if price.effective_from > at:
            continue
        # the latest row of a name comes first, so a strictly better specificity is needed to win
        if best is None or _specificity(price) > _specificity(best):
            best = price
    return best


@dataclass(frozen=True)
class Amounts:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    quantity: float = 0


def cost_of(price: ModelPrice, amounts: Amounts) -> Decimal:
    """((input - cached) * input price + cached * cached input price + output * output price)
    / 1e6, plus quantity * unit price; cached tokens are part of the input tokens."""
    cached = min(amounts.cached_tokens, amounts.input_tokens)
    cached_price = price.input_per_million if price.cached_input_per_million is None else price.cached_input_per_million
    with localcontext(prec=60):  # exact: no operand here has more than about 40 digits
        tokens = (
            Decimal(amounts.input_tokens - cached) * Decimal(price.input_per_million)
            + Decimal(cached) * Decimal(cached_price)
            + Decimal(amounts.output_tokens) * Decimal(price.output_per_million)
        )
        units = Decimal(repr(float(amounts.quantity))) * Decimal(price.unit_price)
        return round_money(tokens / MILLION + units)


def price_usage(kind: str, model: str, amounts: Amounts, at: datetime) -> tuple[ModelPrice | None, Decimal]:
    """The price in effect and the cost; (None, 0) for a model without a price (unpriced)."""
    price = find_price(kind, model, at)
    if price is None:
        return None, Decimal(0)
    return price, cost_of(price, amounts)


def reported_cost(result: Any) -> tuple[Any, Decimal, str | None]:
    """A host's answer → (the tool's output, the cost the host reported, what is wrong with it).

    An object result's `_meta` member is the host's word to the server, not output: it is taken
    off. `_meta.cost` (a decimal string or a number, in the server's currency) is the call's cost
    on the ledger. A cost that is not a non-negative decimal is a protocol error (the call fails
    like an output that violates its schema)."""
    if not isinstance(result, dict) or "_meta" not in result:
        return result, Decimal(0), None
    output = {key: value for key, value in result.items() if key != "_meta"}
    meta = result["_meta"]
    if not isinstance(meta, dict) or "cost" not in meta:
        return output, Decimal(0), None
    try:
        return output, parse_money(meta["cost"]), None
    except BadAmount as exc:
        return output, Decimal(0), f"the tool's answer reports an invalid _meta.cost ({exc})"
