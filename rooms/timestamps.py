"""The one wire format for times: ISO 8601 in UTC with a `Z`."""

from datetime import UTC, datetime


def iso_z(moment: datetime | float) -> str:
    """`moment` is an aware datetime or a unix time."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    return moment.isoformat().replace("+00:00", "Z")
