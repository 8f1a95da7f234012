import time

import pytest
from django.contrib.auth.models import User

from observability.models import ToolCall
from rooms.actions.projects import do_create_api_key, do_revoke_api_key
from rooms.models import ApiKey, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_ledger_is_listed_in_the_admin(admin_client, project):
    room = Room.objects.create(project=project, name="lobby")
    from datetime import UTC, datetime

    ToolCall.objects.create(
        call_id="k_1",
        project=project,
        room=room,
        room_name="lobby",
        toolkit="calc",
        tool="add",
        caller_id="p_a",
        caller_identity="alice",
        host_id="p_b",
        host_identity="bob",
        started_at=datetime.fromtimestamp(time.time(), tz=UTC),
        latency_ms=1.5,
        request_bytes=10,
        response_bytes=20,
        status="ok",
    )
    page = admin_client.get("/admin/observability/toolcall/")
    assert page.status_code == 200
    assert b"alice" in page.content and b"bob" in page.content and b"calc" in page.content
    assert b"1.5 ms" in page.content
    assert admin_client.get("/admin/observability/toolcall/add/").status_code == 403


def test_creating_an_api_key_in_the_admin_shows_it_once(admin_client, project):
    response = admin_client.post("/admin/rooms/apikey/add/", {"project": project.pk, "name": "ci"}, follow=True)
    assert response.status_code == 200
    [message] = [str(m) for m in response.context["messages"] if "API key is" in str(m)]
    raw = message.split("The new API key is ")[1].split(" ")[0]
    assert raw.startswith("msk_")
    assert project.api_keys.get(name="ci").key_hash != raw


def test_the_revoked_at_date_is_read_only_in_the_admin(admin_client, project):
    key, _raw = do_create_api_key(project, "ci")
    page = admin_client.get(f"/admin/rooms/apikey/{key.pk}/change/")
    assert page.status_code == 200
    assert "revoked_at" not in page.context["adminform"].form.fields

    response = admin_client.post(
        f"/admin/rooms/apikey/{key.pk}/change/",
        {"project": project.pk, "name": "ci-renamed", "revoked_at_0": "2030-01-01", "revoked_at_1": "00:00:00"},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.revoked_at) == ("ci-renamed", None)


def test_the_revoke_action_revokes_the_selected_keys_once(admin_client, project):
    first, _ = do_create_api_key(project, "first")
    second, _ = do_create_api_key(project, "second")
    do_create_api_key(project, "kept")
    do_revoke_api_key(second)
    revoked_earlier = ApiKey.objects.get(pk=second.pk).revoked_at

    response = admin_client.post(
        "/admin/rooms/apikey/",
        {"action": "revoke", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert "Revoked 1 key(s)." in [str(m) for m in response.context["messages"]]
    assert set(project.api_keys.active().values_list("name", flat=True)) == {"kept"}
    assert ApiKey.objects.get(pk=second.pk).revoked_at == revoked_earlier
