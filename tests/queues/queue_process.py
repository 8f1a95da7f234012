"""A producer or consumer process for the exactly-once test, on the test database.

    python -m tests.queues.queue_process produce <room id> <queue> <first n> <count>
    python -m tests.queues.queue_process consume <room id> <queue> <name> <acks table> <total> [hang after]

A consumer records each message in the acks table in the same transaction as its ack, so a row
exists if and only if the ack committed. With `hang after`, it stops acknowledging after that many
acks while holding a freshly received batch, and writes `<name>.hanging` into the directory
$QUEUE_TEST_MARKERS: the test then SIGKILLs it with leases outstanding.
"""

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import django

T = TypeVar("T")


def retrying(action: Callable[[], T]) -> T:
    """SQLite answers "database is locked" when a writer waited its whole busy timeout (a loaded
    machine, seven processes writing): nothing was written, so doing it again is safe."""
    from django.db import OperationalError

    for _attempt in range(50):
        try:
            return action()
        except OperationalError as error:
            if "locked" not in str(error):
                raise
            print(f"retrying after: {error}", file=sys.stderr, flush=True)
            time.sleep(0.1)
    return action()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshsite.settings.test")
    django.setup()
    from django.db import connection, transaction

    from queues.actions import Delivery, do_ack, do_receive, do_send
    from queues.errors import MessageGone, StaleReceipt

    mode, room_id, queue = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "produce":
        first, count = int(sys.argv[4]), int(sys.argv[5])
        for n in range(first, first + count):
            retrying(lambda n=n: do_send(room=room_id, queue=queue, body={"n": n}, sent_by=f"producer-{first}"))
        return
    name, table, total = sys.argv[4], sys.argv[5], int(sys.argv[6])
    hang_after = int(sys.argv[7]) if len(sys.argv) > 7 else None
    acked = 0

    def acks() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            return int(cursor.fetchone()[0])

    while True:
        if retrying(acks) >= total:
            return
        batch = retrying(
            lambda: do_receive(room=room_id, queue=queue, consumer=name, max_messages=5, visibility_timeout=2.0)
        )
        if hang_after is not None and acked >= hang_after and batch:
            (Path(os.environ["QUEUE_TEST_MARKERS"]) / f"{name}.hanging").write_text(str(len(batch)))
            time.sleep(3600)
        if not batch:
            time.sleep(0.02)
        for delivery in batch:

            def ack_and_record(delivery: Delivery = delivery) -> None:
                with transaction.atomic():
                    do_ack(room=room_id, queue=queue, message_id=delivery.message_id, receipt=delivery.receipt)
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f"INSERT INTO {table} (message_id, n, consumer, attempt) VALUES (%s, %s, %s, %s)",
                            [delivery.message_id, delivery.body["n"], name, delivery.attempt],
                        )

            try:
                retrying(ack_and_record)
                acked += 1
            except (StaleReceipt, MessageGone):
                pass  # our lease ran out and someone else has it: theirs to ack


if __name__ == "__main__":
    main()
