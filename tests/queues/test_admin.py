"""Queues and their messages in the admin: depths at a glance, messages read-only."""

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.urls import reverse

from queues.actions import do_receive, do_send
from queues.models import QueueMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_queues_show_their_depths_and_messages_are_read_only(admin_client, room):
    for n in range(3):
        do_send(room=room, queue="orders", body={"n": n}, sent_by="alice")
    do_receive(room=room, queue="orders", consumer="robot", visibility_timeout=60)
    page = admin_client.get("/admin/queues/queue/")
    assert page.status_code == 200
    assert "orders" in page.text and "2 / 1 / 0 / 0" in page.text
    message = QueueMessage.objects.first()
    # an id the admin's URL escaping would misread ("_24" is its escape for "$") unless quoted
    QueueMessage.objects.filter(pk=message.pk).update(id="m_24" + message.pk[4:])
    message = QueueMessage.objects.get(pk="m_24" + message.pk[4:])
    assert admin_client.get("/admin/queues/queuemessage/").status_code == 200
    change = reverse("admin:queues_queuemessage_change", args=[quote(message.pk)])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"queue": "x"}).status_code == 403
    assert admin_client.get("/admin/queues/queuemessage/add/").status_code == 403
