"""Stopping dispatches, in the database: what `do_stop_dispatch` does in each state, and the
strict parsing of MESHSITE_AGENT_PATHS."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from agents.actions import (
    do_claim_dispatches,
    do_create_service,
    do_dispatch,
    do_end_dispatch,
    do_mark_running,
    do_set_service_enabled,
    do_stop_dispatch,
    stopping_dispatches,
)
from agents.models import Dispatch, Service
from meshsite.settings.env import env_paths
from rooms.actions.rooms import do_create_room
from rooms.models import Project, Room


@pytest.fixture
def room(project: Project) -> Room:
    return do_create_room(project, "lobby")


@pytest.fixture
def counter(project: Project) -> Service:
    return do_create_service(project, "counter", class_path="agents.demo.WordCounter", allow_multiple=True)


def status(dispatch: Dispatch) -> tuple[str, str]:
    dispatch.refresh_from_db()
    return dispatch.status, dispatch.error


def test_a_queued_dispatch_that_is_stopped_never_starts(room, counter):
    dispatch, _ = do_dispatch(room, "counter", {}, "alice")
    assert do_stop_dispatch(dispatch.pk, "not needed") is True
    assert status(dispatch) == ("stopped", "not needed")
    assert do_claim_dispatches("host-a", 10) == []
    assert do_stop_dispatch(dispatch.pk) is False  # already ended


def test_a_running_dispatch_is_stopping_until_its_host_ends_it(room, counter):
    dispatch, _ = do_dispatch(room, "counter", {}, "alice")
    [claimed] = do_claim_dispatches("host-a", 10)
    assert do_mark_running(claimed.pk, "p_1") is True
    assert do_stop_dispatch(dispatch.pk, "enough") is True
    assert status(dispatch) == ("stopping", "enough")
    assert stopping_dispatches("host-a") == {dispatch.pk: "enough"}
    assert stopping_dispatches("host-b") == {}
    assert do_stop_dispatch(dispatch.pk, "again") is True  # still stopping, the first reason stays
    do_end_dispatch(dispatch.pk, Dispatch.Status.STOPPED, "agent host stopped")
    assert status(dispatch) == ("stopped", "enough")


def test_a_dispatch_stopped_before_its_agent_joined_does_not_become_running(room, counter):
    dispatch, _ = do_dispatch(room, "counter", {}, "alice")
    do_claim_dispatches("host-a", 10)
    do_stop_dispatch(dispatch.pk)
    assert do_mark_running(dispatch.pk, "p_1") is False
    assert status(dispatch)[0] == "stopping"


def test_a_dispatch_of_a_host_that_stopped_beating_is_stopped_at_once(room, counter):
    dispatch, _ = do_dispatch(room, "counter", {}, "alice")
    do_claim_dispatches("host-gone", 10)
    Dispatch.objects.filter(pk=dispatch.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert do_stop_dispatch(dispatch.pk, "cleanup") is True
    assert status(dispatch) == ("stopped", "cleanup")


def test_a_webhook_agent_is_marked_stopped_but_not_under_our_control(project, room):
    do_create_service(project, "outside", kind="webhook", url="https://agents.example.com/invite", secret="s")
    dispatch, _ = do_dispatch(room, "outside", {}, "alice")
    assert dispatch.status == "running"
    assert do_stop_dispatch(dispatch.pk, "bye") is True
    assert status(dispatch) == ("stopped", "bye")


def test_disabling_a_service_stops_every_unfinished_instance(room, counter):
    claimed, _ = do_dispatch(room, "counter", {}, "alice")
    queued, _ = do_dispatch(room, "counter", {}, "alice")
    assert (claimed.identity, queued.identity) == ("counter", "counter-2")
    assert [d.pk for d in do_claim_dispatches("host-a", 1)] == [claimed.pk]  # the older one
    assert do_set_service_enabled(counter, False) == 2
    assert status(claimed) == ("stopping", "the service was disabled")
    assert status(queued) == ("stopped", "the service was disabled")
    assert do_set_service_enabled(counter, True) == 0


def test_the_first_free_instance_name_is_taken(room, counter):
    names = [do_dispatch(room, "counter", {}, "alice")[0] for _ in range(3)]
    assert [d.identity for d in names] == ["counter", "counter-2", "counter-3"]
    do_stop_dispatch(names[0].pk)
    assert do_dispatch(room, "counter", {}, "alice")[0].identity == "counter"
    assert do_dispatch(room, "counter", {}, "alice")[0].identity == "counter-4"


def test_agent_paths_are_parsed_strictly(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHSITE_AGENT_PATHS", f"{tmp_path}:{tmp_path / 'sub'}")
    with pytest.raises(ImproperlyConfigured, match="which is not a directory"):
        env_paths("MESHSITE_AGENT_PATHS", [])
    (tmp_path / "sub").mkdir()
    assert env_paths("MESHSITE_AGENT_PATHS", []) == [str(tmp_path), str(tmp_path / "sub")]
    monkeypatch.setenv("MESHSITE_AGENT_PATHS", "relative/agents")
    with pytest.raises(ImproperlyConfigured, match="absolute paths"):
        env_paths("MESHSITE_AGENT_PATHS", [])
    monkeypatch.setenv("MESHSITE_AGENT_PATHS", "")
    assert env_paths("MESHSITE_AGENT_PATHS", ["x"]) == []
    monkeypatch.delenv("MESHSITE_AGENT_PATHS")
    assert env_paths("MESHSITE_AGENT_PATHS", ["x"]) == ["x"]
