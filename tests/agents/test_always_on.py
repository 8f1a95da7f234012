"""An always-on service is kept in its room: dispatched when no instance is live, never twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.actions import do_create_service, do_end_dispatch, do_keep_always_on
from agents.models import Dispatch
from rooms.models import Room

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_always_on_service_is_dispatched_once_and_again_after_it_ended(project):
    lobby = Room.objects.create(project=project, name="lobby")
    do_create_service(project, "greeter", class_path="agents.demo.WordCounter", room=lobby, always_on=True)
    do_create_service(project, "on-call", class_path="agents.demo.WordCounter")  # not always on
    assert do_keep_always_on() == 1
    assert do_keep_always_on() == 0  # queued: live
    [dispatch] = Dispatch.objects.filter(service__name="greeter")
    assert (dispatch.room, dispatch.status, dispatch.requested_by) == (lobby, Dispatch.Status.QUEUED, "always-on")
    do_end_dispatch(dispatch.pk, Dispatch.Status.FAILED, "crashed")
    assert do_keep_always_on() == 0  # no crash loop: it waits before trying again
    Dispatch.objects.filter(pk=dispatch.pk).update(ended_at=timezone.now() - timedelta(seconds=60))
    assert do_keep_always_on() == 1
    assert not Dispatch.objects.filter(service__name="on-call").exists()
