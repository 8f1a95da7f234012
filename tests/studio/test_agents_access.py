"""Who may change a service from Studio: owners (and superusers) enable and disable; members may
not; nobody outside the project learns it exists."""

import pytest
from django.contrib.auth.models import User

from agents.actions import do_create_service
from agents.models import Service
from rooms.actions.projects import do_create_project
from rooms.models import Membership, Project


@pytest.fixture
def service(project: Project) -> Service:
    return do_create_service(project, "word-counter", class_path="agents.demo.WordCounter")


def sign_in(client, project: Project, username: str, role: str | None):
    user = User.objects.create_user(username, f"{username}@example.com", "pw")
    if role:
        Membership.objects.create(project=project, user=user, role=role)
    client.force_login(user)
    return client


def test_an_owner_disables_a_service_and_goes_back_to_the_room(client, project, service):
    sign_in(client, project, "olga", Membership.Role.OWNER)
    response = client.post(
        "/studio/acme/-/services/word-counter/enabled/", {"enabled": "false", "next": "/studio/acme/lobby/"}
    )
    assert (response.status_code, response["Location"]) == (302, "/studio/acme/lobby/")
    service.refresh_from_db()
    assert service.enabled is False
    page = client.get("/studio/acme/lobby/")
    assert 'aria-label="Enable word-counter"' in page.content.decode()


def test_a_member_may_not_and_is_told_why(client, project, service):
    sign_in(client, project, "mia", Membership.Role.MEMBER)
    response = client.post("/studio/acme/-/services/word-counter/enabled/", {"enabled": "false"})
    assert response.status_code == 403
    assert b"Only the project's owners" in response.content
    service.refresh_from_db()
    assert service.enabled is True
    response = client.get("/studio/acme/lobby/")
    assert response.context["may_manage"] is False
    page = response.content.decode()
    assert "Disable word-counter" not in page and "Only the project's owners" in page


def test_outside_the_project_it_is_not_found_and_off_site_next_is_ignored(client, project, service):
    do_create_project("beta", "Beta")
    sign_in(client, project, "olga", Membership.Role.OWNER)
    assert client.post("/studio/beta/-/services/word-counter/enabled/", {"enabled": "false"}).status_code == 404
    assert client.post("/studio/acme/lobby/agents/word-counter/stop/").status_code == 404
    response = client.post(
        "/studio/acme/-/services/word-counter/enabled/", {"enabled": "false", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    assert client.get("/studio/acme/-/services/word-counter/enabled/").status_code == 405
