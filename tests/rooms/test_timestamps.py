"""`iso_z`, the wire's one time format: a unix time is written exactly as the datetime it stands
for would be (the routed calls' deadlines go through a faster path than datetime)."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.timestamps import iso_z, utc_text


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(0, 4_000_000_000).map(float))
def test_unix_times_are_written_as_datetime_writes_them(moment: float) -> None:
    assert iso_z(moment) == datetime.fromtimestamp(moment, tz=UTC).isoformat().replace("+00:00", "Z")


def test_iso_z_of_a_datetime() -> None:
    assert iso_z(datetime(2026, 11, 30, 18, 0, 1, 5, tzinfo=UTC)) == "2026-11-30T18:00:01.000005Z"
    assert iso_z(datetime(2026, 11, 30, 18, 0, 1, tzinfo=UTC)) == "2026-11-30T18:00:01Z"


@settings(max_examples=1000, deadline=None)
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_the_ledgers_sqlite_text_is_what_django_stores(moment: float) -> None:
    # Django's SQLite backend stores a datetime as str() of its naive UTC value
    assert utc_text(moment, " ") == str(datetime.fromtimestamp(moment, tz=UTC).replace(tzinfo=None))
