"""A waiting receive is woken by a send committed in the same process, from any thread, at once."""

import asyncio
import threading

import pytest
from django.db import connection

from queues.actions import do_send
from queues.waiters import _waiting, waiting_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def send_in_a_thread(room_id: int, queue: str) -> None:
    def send() -> None:
        try:
            do_send(room=room_id, queue=queue, body=1, sent_by="alice")
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    thread.join()


async def test_a_send_wakes_the_waiter_of_its_queue_only(room):
    async with waiting_for(room.pk, "orders") as orders, waiting_for(room.pk, "other") as other:
        await asyncio.to_thread(send_in_a_thread, room.pk, "orders")
        await asyncio.wait_for(orders.wait(), timeout=0.5)
        assert not other.is_set()
    assert _waiting == {}  # waiters unregister when their block ends


async def test_a_send_with_nobody_waiting_costs_nothing(room):
    await asyncio.to_thread(send_in_a_thread, room.pk, "orders")
    assert _waiting == {}
