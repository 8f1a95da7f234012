"""Helpers for HTTP transfers in tests: a generated body of any size, and a process's memory."""

import hashlib
from pathlib import Path


class GeneratedBody:
    """`size` bytes of a repeating pattern, read in chunks (requests streams it with a
    Content-Length), hashed as it goes so the test never holds the whole body either."""

    def __init__(self, size: int, seed: bytes = b"meshsite-") -> None:
        self.size = size
        self.sent = 0
        self.pattern = (seed * (65536 // len(seed) + 1))[:65536]
        self.digest = hashlib.sha256()

    def __len__(self) -> int:
        return self.size

    def read(self, amount: int = -1) -> bytes:
        remaining = self.size - self.sent
        amount = remaining if amount is None or amount < 0 else min(amount, remaining)
        chunk = (self.pattern * (amount // len(self.pattern) + 1))[:amount]
        self.sent += len(chunk)
        self.digest.update(chunk)
        return chunk


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> None:
    """Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
