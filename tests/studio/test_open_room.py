"""Opening a room from the Studio index: a valid name goes to the room, an invalid one is
explained on the form (server-side, whatever the browser let through)."""

import pytest
from django.contrib.auth.models import User

from rooms.actions.projects import do_create_project

RULE = "Room names are 1-63 characters of a-z, 0-9 and &#x27;-&#x27;"


@pytest.fixture
def alice_client(client, project):
    """alice is a member of `acme` only."""
    alice = User.objects.create_user("alice", "alice@example.com", "pw")
    project.members.add(alice)
    client.force_login(alice)
    return client


def test_the_index_says_what_a_room_name_may_be(alice_client):
    page = alice_client.get("/")
    assert page.status_code == 200
    text = " ".join(page.content.decode().split())
    assert "Its name is 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'" in text
    assert "any name works" not in text


def test_a_valid_name_opens_the_room(alice_client):
    response = alice_client.get("/", {"project": "acme", "room": "standup-2"})
    assert (response.status_code, response["Location"]) == (302, "/studio/acme/standup-2/")


@pytest.mark.parametrize("room", ["Stand_Up", "-lobby", "lobby-", "a" * 64, "", "café", "a/b"])
def test_an_invalid_name_is_a_form_error(alice_client, room, django_assert_num_queries):
    # session, user, projects, the rooms' count (none: no page query); the first visit also
    # remembers the project in the session (begin, update, commit)
    with django_assert_num_queries(7):
        page = alice_client.get("/", {"project": "acme", "room": room})
    assert page.status_code == 200
    form = page.context["form"]
    assert form.errors["room"]
    html = page.content.decode()
    assert 'id="open-room-errors"' in html and 'aria-invalid="true"' in html


def test_a_project_of_someone_else_is_a_form_error(alice_client):
    do_create_project("other", "Other")
    page = alice_client.get("/", {"project": "other", "room": "lobby"})
    assert page.status_code == 200
    assert page.context["form"].errors["project"]


def test_a_link_with_an_invalid_room_name_lands_on_the_form_with_the_error(alice_client):
    response = alice_client.get("/studio/acme/Stand_Up/", follow=True)
    assert response.redirect_chain == [("/?project=acme&room=Stand_Up", 302)]
    assert RULE in response.content.decode()
    assert 'value="Stand_Up"' in response.content.decode()


def test_a_link_to_another_projects_room_is_still_not_found(alice_client):
    do_create_project("other", "Other")
    assert alice_client.get("/studio/other/lobby/").status_code == 404
    assert alice_client.get("/studio/other/Stand_Up/").status_code == 404


def test_the_favicon_is_linked_and_favicon_ico_redirects_to_it(alice_client):
    page = alice_client.get("/")
    assert '<link rel="icon" href="/static/meshsite/favicon.svg"' in page.content.decode()
    response = alice_client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (301, "/static/meshsite/favicon.svg")
    icon = alice_client.get("/static/meshsite/favicon.svg")
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content)  # type: ignore[attr-defined]


def test_the_rooms_list_pages_with_counts_in_a_pinned_number_of_queries(
    alice_client, project, django_assert_num_queries
):
    from django.utils import timezone

    from rooms.models import Participant, Room

    rooms = Room.objects.bulk_create([Room(project=project, name=f"room-{n:02d}") for n in range(30)])
    for n, room in enumerate(rooms[:3]):
        for k in range(n + 1):
            Participant.objects.create(
                id=f"p_{n}{k}", room=room, identity=f"u{k}", role="user", node="n", joined_at=timezone.now()
            )
    alice_client.get("/")  # the first visit remembers the project in the session
    with django_assert_num_queries(5):  # session, user, projects, the rooms' count, the page with counts
        page = alice_client.get("/", {"page": 1})
    shown = {room.name: room.present for room in page.context["page"].object_list}
    assert len(shown) == 20 and (shown["room-00"], shown["room-01"], shown["room-02"], shown["room-03"]) == (1, 2, 3, 0)
    with django_assert_num_queries(5):
        second = alice_client.get("/", {"page": 2})
    assert second.context["page"].object_list[0].name == "room-20"
    counts = alice_client.get("/studio/acme/-/rooms/counts.json", {"rooms": "room-01,room-02,Bad_Name,room-29"})
    assert counts.json() == {"rooms": {"room-01": 2, "room-02": 3, "room-29": 0}}
