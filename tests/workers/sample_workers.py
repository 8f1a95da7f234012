"""Worker agents the Worker tests bind to queues; run by the Celery worker process.

They write what they do to the event log file named in the message body (one JSON line per event,
appended), so a test can see starts, ends and their order across processes and kills."""

import asyncio
import json
import os
import time
from typing import Any

from meshsite_client.agents import Worker, WorkerMessage


def log_event(path: str, **event: Any) -> None:
    line = json.dumps({"t": time.time(), "pid": os.getpid(), **event}) + "\n"
    # one write() of a short line with O_APPEND: lines from several processes never interleave
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Recorder(Worker):
    """Logs start and end, sleeps `sleep` seconds, announces the message in the room (a routed tool
    call, so it is in the ledger) and returns `{"n": n, "attempt": attempt}`."""

    name = "recorder"
    queue = "jobs"

    async def process_message(self, message: WorkerMessage) -> Any:
        body = message.body
        log_event(body["log"], event="start", id=message.id, n=body.get("n"), attempt=message.attempt)
        await asyncio.sleep(float(body.get("sleep", 0)))
        await self.room.broadcast("worker.done", {"message_id": message.id, "n": body.get("n")})
        log_event(body["log"], event="end", id=message.id, n=body.get("n"), attempt=message.attempt)
        return {"n": body.get("n"), "attempt": message.attempt}


class Poison(Worker):
    """Fails every message whose body says `poison`."""

    name = "poison"
    queue = "risky"

    async def process_message(self, message: WorkerMessage) -> Any:
        if message.body.get("poison"):
            # a TimeoutError of its own is a failure like any other, not "still running"
            raise TimeoutError(f"cannot digest message {message.body.get('n')}")
        return {"ok": True}
