"""The one wire format for times: ISO 8601 in UTC with a `Z`."""

import math
import time
from datetime import datetime
from functools import lru_cache


def iso_z(moment: datetime | float) -> str:
    """`moment` is an aware datetime in UTC or a unix time; microseconds are shown when there are
    any (as `datetime.isoformat` does)."""
    if isinstance(moment, datetime):
        return moment.isoformat().replace("+00:00", "Z")
    return utc_text(moment) + "Z"


def utc_text(moment: float, separator: str = "T") -> str:
    """A unix time as `datetime.fromtimestamp(moment, UTC)` writes itself without its offset
    (`isoformat(separator)`): `YYYY-MM-DDTHH:MM:SS`, then `.ffffff` when there are microseconds.

    Every routed call's deadline and ledger row goes through here: the date and time of day come
    from a small cache (calls in the same second share them), not a datetime per call. The
    fraction is rounded as datetime.fromtimestamp rounds it."""
    fraction, whole = math.modf(moment)
    micros = round(fraction * 1e6)
    seconds = int(whole)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    elif micros < 0:  # before 1970
        seconds, micros = seconds - 1, micros + 1_000_000
    stamp = _utc_second(seconds, separator)
    return f"{stamp}.{micros:06d}" if micros else stamp


@lru_cache(maxsize=16)
def _utc_second(seconds: int, separator: str) -> str:
    return time.strftime(f"%Y-%m-%d{separator}%H:%M:%S", time.gmtime(seconds))
