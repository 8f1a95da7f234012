"""HTTP Range requests on downloads: one `bytes=` range (RFC 9110 §14); anything else is the whole
file, as the RFC allows a server to answer."""

import re

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Unsatisfiable(Exception):
    """The range starts past the end of the file (answered 416)."""


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte offsets, inclusive; None for the whole file. Raises Unsatisfiable."""
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if match is None:  # several ranges, other units, malformed: serve the whole file
        return None
    first_raw, last_raw = match.groups()
    if first_raw == "":
        if last_raw == "" or int(last_raw) == 0:
            raise Unsatisfiable
        suffix = int(last_raw)  # the last N bytes
        return max(0, size - suffix), size - 1
    first = int(first_raw)
    last = size - 1 if last_raw == "" else min(int(last_raw), size - 1)
    if first >= size:
        raise Unsatisfiable
    if last < first:
        return None
    return first, last
