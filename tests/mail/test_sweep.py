"""The mail sweep: messages whose task was lost are enqueued again; others are left alone."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mail.actions import do_claim_inbound
from mail.models import InboundMessage, Mailbox
from mail.sweep import sweep_mail

from .conftest import PostRaw, fixture_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_processing_message_whose_lease_ran_out_is_queued_and_enqueued_again(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    swept: list[int] = []
    monkeypatch.setattr("mail.sweep.enqueue", lambda task, pk: swept.append(pk))
    post_raw(fixture_bytes("multipart_alternative.eml"))
    inbound, _wait = do_claim_inbound(InboundMessage.objects.get().pk)
    assert inbound is not None
    assert sweep_mail() == 0  # its attempt holds the lease
    InboundMessage.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # the worker was killed
    assert sweep_mail() == 1 and swept == [inbound.pk]
    assert InboundMessage.objects.get().status == "queued"
    assert sweep_mail() == 0  # not again before MESHSITE_MAIL_REQUEUE_SECONDS
    claimed, _wait = do_claim_inbound(inbound.pk)
    assert claimed is not None and claimed.attempts == 2


def test_a_queued_message_whose_task_never_ran_is_enqueued_after_the_grace_period(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    swept: list[int] = []
    monkeypatch.setattr("mail.sweep.enqueue", lambda task, pk: swept.append(pk))
    post_raw(fixture_bytes("multipart_alternative.eml"))
    assert sweep_mail() == 0
    InboundMessage.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert sweep_mail() == 1 and swept == [InboundMessage.objects.get().pk]


def test_replied_and_ignored_messages_are_never_swept(
    mailbox: Mailbox, post_raw: PostRaw, enqueued: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mail.sweep.enqueue", lambda task, pk: pytest.fail("enqueued"))
    post_raw(fixture_bytes("multipart_alternative.eml"))
    InboundMessage.objects.update(status="replied", lease_until=timezone.now() - timedelta(hours=1))
    assert sweep_mail() == 0
