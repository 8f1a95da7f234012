import time


class TokenBucket:
    """Per-connection rate limit: `rate` units a second on average, bursts up to `burst`."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self, cost: float = 1.0) -> float:
        """Takes `cost` tokens; returns 0 if allowed, else seconds until they are available.

        A cost above the burst is allowed once the bucket is full, leaving it in debt, so one
        frame larger than the burst is never refused forever."""
        now = time.monotonic()
        tokens = self.tokens + (now - self.stamp) * self.rate
        burst = self.burst
        if tokens > burst:
            tokens = burst
        self.stamp = now
        needed = cost if cost < burst else burst
        if tokens >= needed:
            self.tokens = tokens - cost
            return 0.0
        self.tokens = tokens
        return (needed - tokens) / self.rate
