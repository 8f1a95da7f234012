"""Services in the admin: created through `do_create_service`, enabled and disabled by actions."""

import pytest
from django.contrib.auth.models import User

from agents.actions import do_create_service, do_dispatch
from agents.models import Dispatch, Service
from rooms.actions.rooms import do_create_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def service_form(project, **fields):
    return {
        "project": project.pk,
        "room": "",
        "name": "word-counter",
        "title": "",
        "description": "",
        "kind": "python",
        "class_path": "agents.demo.WordCounter",
        "config": "{}",
        "url": "",
        "secret": "",
        "input_schema": "null",
        "output_schema": "null",
        "enabled": "on",
        **fields,
    }


def test_adding_a_python_service_reads_its_title_and_schemas_from_the_class(admin_client, project):
    response = admin_client.post("/admin/agents/service/add/", service_form(project), follow=True)
    assert response.status_code == 200
    service = Service.objects.get(project=project, name="word-counter")
    assert response.redirect_chain[-1][0] == "/admin/agents/service/"
    assert service.title and service.input_schema and service.enabled
    assert f"/admin/agents/service/{service.pk}/change/" in response.content.decode()  # the "added" message


def test_adding_a_service_with_a_bad_class_path_shows_the_error(admin_client, project):
    response = admin_client.post("/admin/agents/service/add/", service_form(project, class_path="agents.demo.Nope"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["class_path"]
    assert not Service.objects.exists()


def test_the_enable_and_disable_actions_change_the_selected_services(admin_client, project):
    one = do_create_service(project, "one", class_path="agents.demo.WordCounter")
    two = do_create_service(project, "two", class_path="agents.demo.WordCounter")
    do_create_service(project, "other", class_path="agents.demo.WordCounter")

    response = admin_client.post(
        "/admin/agents/service/", {"action": "disable", "_selected_action": [one.pk, two.pk]}, follow=True
    )
    assert "Disabled 2 service(s)." in [str(m) for m in response.context["messages"]]
    assert dict(Service.objects.values_list("name", "enabled")) == {"one": False, "two": False, "other": True}

    response = admin_client.post(
        "/admin/agents/service/", {"action": "enable", "_selected_action": [one.pk]}, follow=True
    )
    assert "Enabled 1 service(s)." in [str(m) for m in response.context["messages"]]
    assert dict(Service.objects.values_list("name", "enabled")) == {"one": True, "two": False, "other": True}


def test_the_admin_names_dispatches_in_the_plural_properly(admin_client):
    page = admin_client.get("/admin/")
    assert b"Dispatches" in page.content and b"Dispatchs" not in page.content


def test_disabling_a_service_in_the_admin_stops_its_agents(admin_client, project):
    service = do_create_service(project, "one", class_path="agents.demo.WordCounter")
    dispatch, _ = do_dispatch(do_create_room(project, "lobby"), "one", {}, "alice")
    response = admin_client.post(
        "/admin/agents/service/", {"action": "disable", "_selected_action": [service.pk]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Disabled 1 service(s). Stopping 1 of their agents."]
    assert Dispatch.objects.get(pk=dispatch.pk).status == "stopped"
