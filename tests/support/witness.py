"""A witness participant that keeps pinging while another one attacks the server.

```python
async with ping_watch(witness) as watch:
    ...  # the attack
assert watch.max_rtt < 0.1, watch
```

Round trips are measured in the test process, so they include its own delays: an upper bound on
what the server made the witness wait.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from tests.support.peer import RawPeer


@dataclass(repr=False)
class PingWatch:
    rtts: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # when each answered ping was sent, in seconds since the watch started
    sent_at: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def max_rtt(self) -> float:
        """The slowest round trip in seconds; infinite if a ping went unanswered (or none ran)."""
        if self.failures or not self.rtts:
            return math.inf
        return max(self.rtts)

    def __str__(self) -> str:
        if not self.rtts:
            return f"no ping answered; failures: {self.failures[:3]}"
        slowest = sorted(zip(self.rtts, self.sent_at, strict=True))[-3:]
        shown = ", ".join(f"{rtt * 1000:.1f} ms at +{at:.2f}s" for rtt, at in slowest)
        return f"{len(self.rtts)} pings over {self.sent_at[-1]:.2f}s, slowest: {shown}; failures: {self.failures[:3]}"

    __repr__ = __str__


@asynccontextmanager
async def ping_watch(peer: RawPeer, interval: float = 0.02, timeout: float = 3.0) -> AsyncIterator[PingWatch]:
    """Pings through `peer` every `interval` seconds (one at a time) until the block ends, then
    finishes the ping in flight, so the last round trip measured covers the end of the attack."""
    watch = PingWatch()
    stop = asyncio.Event()

    async def keep_pinging() -> None:
        while True:
            started = time.perf_counter()
            try:
                response = await peer.request("ping", timeout=timeout)
            except TimeoutError:
                watch.failures.append(f"no pong within {timeout}s")
            except ConnectionError as exc:
                watch.failures.append(f"the witness lost its connection: {exc}")
                return
            else:
                if response.get("result", {}).get("pong") is True:
                    watch.rtts.append(time.perf_counter() - started)
                    watch.sent_at.append(started - watch.started)
                else:
                    watch.failures.append(f"unexpected answer to ping: {response}")
            if stop.is_set():
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    task = asyncio.create_task(keep_pinging())
    try:
        yield watch
    finally:
        stop.set()
        await task
