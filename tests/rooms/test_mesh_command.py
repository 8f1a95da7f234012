"""`manage.py mesh`: where the room commands connect, and the services subcommands (in-process;
the room commands against a live server are in tests/client/test_cli_live.py)."""

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agents.models import Service
from rooms.management.commands.mesh import default_server_url, room_ws_url
from rooms.models import Room

CREATE_WORD_COUNTER = "create-service --project acme --name word-counter --class-path agents.demo.WordCounter"


def mesh(command: str) -> Any:
    out = StringIO()
    call_command("mesh", *command.split(), stdout=out)
    return json.loads(out.getvalue())


def test_room_commands_connect_to_port_on_localhost_by_default(monkeypatch, settings):
    settings.MESHSITE_PUBLIC_URL = ""
    monkeypatch.delenv("PORT", raising=False)
    assert default_server_url() == "http://127.0.0.1:8000"
    monkeypatch.setenv("PORT", "8123")
    assert default_server_url() == "http://127.0.0.1:8123"
    monkeypatch.setenv("PORT", "")
    assert default_server_url() == "http://127.0.0.1:8000"


def test_room_commands_prefer_the_public_url(monkeypatch, settings):
    monkeypatch.setenv("PORT", "8123")
    settings.MESHSITE_PUBLIC_URL = "https://mesh.example.com/"
    assert default_server_url() == "https://mesh.example.com/"


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("http://127.0.0.1:8123", "ws://127.0.0.1:8123/rooms/lobby/ws"),
        ("https://mesh.example.com/", "wss://mesh.example.com/rooms/lobby/ws"),
        ("https://mesh.example.com/mesh", "wss://mesh.example.com/mesh/rooms/lobby/ws"),
        ("HTTP://h:1", "ws://h:1/rooms/lobby/ws"),
        ("127.0.0.1:8123", "ws://127.0.0.1:8123/rooms/lobby/ws"),
        ("ws://already:1", "ws://already:1/rooms/lobby/ws"),
    ],
)
def test_it_turns_a_server_url_into_the_room_socket(server, expected):
    assert room_ws_url(server, "lobby") == expected


def test_create_service_registers_a_python_service_for_one_room(project):
    record = mesh(f"{CREATE_WORD_COUNTER} --room standup")
    assert (record["name"], record["kind"]) == ("word-counter", "python")
    assert record["title"]  # read from the class
    service = Service.objects.get(project=project, name="word-counter")
    assert service.room == Room.objects.get(project=project, name="standup")


def test_create_service_refuses_an_invalid_room_name(project):
    with pytest.raises(CommandError, match="Room names are 1-63 characters"):
        mesh(f"{CREATE_WORD_COUNTER} --room Stand_Up")
    assert not Room.objects.exists()
    assert not Service.objects.exists()


def test_disable_and_enable_service_flip_the_flag_and_the_listing_shows_it(project):
    mesh(CREATE_WORD_COUNTER)
    before = Service.objects.get(name="word-counter").updated_at

    assert mesh("disable-service --project acme --name word-counter") == {
        "name": "word-counter",
        "enabled": False,
        "stopped": 0,  # running agents it stopped (tests/agents/test_agent_lifecycle.py)
    }
    service = Service.objects.get(name="word-counter")
    assert not service.enabled and service.updated_at > before
    listed = mesh("services --project acme")
    assert [(s["name"], s["enabled"], s["running"]) for s in listed] == [("word-counter", False, 0)]

    assert mesh("enable-service --project acme --name word-counter") == {"name": "word-counter", "enabled": True}
    assert Service.objects.get(name="word-counter").enabled


def test_enable_service_names_a_missing_service(project):
    with pytest.raises(CommandError, match="no service 'ghost' in project 'acme'"):
        mesh("enable-service --project acme --name ghost")
