"""When to refresh a token over the live connection (`connection.refresh_token`).

The server closes a connection with 4408 when its token expires. A client that was given a token
*provider* asks it for a fresh token well before that and hands the token to the server, so the
connection (and its participant id, hosted toolkits and running calls) stays.

Expiries are the server's wall-clock times, compared with this machine's clock: it has to be
roughly right (NTP). If the refresh comes too late anyway, the client falls back to reconnecting
with a fresh token after the 4408.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

# Refresh when this share of the remaining lifetime is left (80% in) ...
LEAD_SHARE = 0.2
# ... but at least this many seconds ahead, as long as that is under half the remaining lifetime.
MIN_LEAD = 10.0
# Never sooner than this after the previous refresh: keeps a badly skewed clock from spinning.
MIN_DELAY = 1.0
# Backoff after a failed attempt (the provider raised, the server refused or did not answer).
RETRY_FIRST = 1.0
RETRY_MAX = 60.0


def parse_expiry(value: Any) -> float | None:
    """A `token_expires_at` ("2026-11-24T11:00:00Z") as a unix time; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def refresh_delay(remaining: float) -> float:
    """Seconds to wait before refreshing a token that expires in `remaining` seconds.

    An hour-long token is refreshed after 48 minutes, a 20 s one after 10 s, a 3 s one after 1.5 s.
    """
    lead = max(remaining * LEAD_SHARE, min(MIN_LEAD, remaining / 2))
    return max(MIN_DELAY, remaining - lead)


def retry_delay(failures: int, remaining: float) -> float:
    """Seconds to wait after the `failures`-th failed attempt in a row (jittered).

    Doubles from RETRY_FIRST up to RETRY_MAX, but while the token is still valid the wait is kept
    to a third of its remaining lifetime, so several attempts fit before it expires.
    """
    backoff = min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, failures - 1))
    if remaining > 0:
        backoff = min(backoff, max(MIN_DELAY / 4, remaining / 3))
    return random.uniform(backoff / 2, backoff)
