"""Writes to services and dispatches. The agent host and the `agents` toolkit call these."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meshsite.errors import ErrorCode, MeshError, not_found
from rooms.models import Participant, Project, Room

from .introspection import describe_agent_class
from .models import Dispatch, Service


def service_defaults(class_path: str, config: Any) -> dict[str, Any]:
    """What a Python service lists before it runs: the class's title, description and schemas,
    with a title or description in its config (keyword arguments for the class) taking precedence,
    as they do on the running agent."""
    declared = describe_agent_class(class_path)
    if isinstance(config, dict):
        for key in ("title", "description"):
            if isinstance(config.get(key), str) and config[key]:
                declared[key] = config[key]
    return declared


def do_create_service(project: Project, name: str, **fields: Any) -> Service:
    """Creates a service; a Python one is introspected for its title, description and schemas."""
    service = Service(project=project, name=name, **fields)
    if service.kind == Service.Kind.PYTHON:
        declared = service_defaults(service.class_path, service.config)
        service.title = service.title or declared["title"]
        service.description = service.description or declared["description"]
        service.input_schema = service.input_schema or declared["input_schema"]
        service.output_schema = service.output_schema or declared["output_schema"]
    service.full_clean()
    service.save()
    return service


@transaction.atomic
def do_set_service_enabled(service: Service, enabled: bool) -> int:
    """A disabled service can no longer be called into rooms, and disabling it stops every
    instance of it (`do_stop_dispatch`): queued ones never start, running ones leave. Returns how
    many instances were stopped."""
    # The update locks the service's row, which `do_dispatch` locks too: a call that is creating a
    # dispatch right now commits first, and its dispatch is stopped below.
    Service.objects.filter(pk=service.pk).update(enabled=enabled, updated_at=timezone.now())
    service.enabled = enabled
    if enabled:
        return 0
    unfinished = Dispatch.objects.filter(service=service).unfinished().values_list("id", flat=True)
    return sum(do_stop_dispatch(dispatch_id, "the service was disabled") for dispatch_id in unfinished)


@transaction.atomic
def do_stop_dispatch(dispatch_id: int, reason: str = "stopped on request") -> bool:
    """Stops one instance of a service. A queued dispatch never starts. One that a live agent host
    claimed or runs becomes `stopping`: the host notices within a poll, the agent finishes its
    asks in flight (up to 30 s), leaves the room, and the dispatch becomes `stopped`. An agent that
    is not ours to stop (a webhook service's, or one that joined by itself) is only marked
    `stopped`: its participant stays until it leaves by itself. False if the dispatch had ended."""
    dispatch = (
        Dispatch.objects.select_for_update(of=("self",))
        .select_related("service")
        .filter(id=dispatch_id)
        .unfinished()
        .first()
    )
    if dispatch is None:
        return False
    now = timezone.now()
    fresh = now - timedelta(seconds=settings.MESHSITE_AGENT_HOST_STALE_SECONDS)
    ours = (
        dispatch.service.kind == Service.Kind.PYTHON
        and bool(dispatch.host)
        and dispatch.heartbeat_at is not None
        and dispatch.heartbeat_at >= fresh
    )
    if ours:
        if dispatch.status != Dispatch.Status.STOPPING:
            Dispatch.objects.filter(id=dispatch_id).update(status=Dispatch.Status.STOPPING, error=reason[:2000])
    else:
        Dispatch.objects.filter(id=dispatch_id).update(
            status=Dispatch.Status.STOPPED, error=reason[:2000], ended_at=now
        )
    return True


def access_callable_service(room: Room, name: str) -> Service:
    service = Service.objects.callable_in(room).filter(name=name).first()
    if service is None:
        raise not_found(f"no enabled service named {name!r} can be called into this room")
    return service


def _instance_identity(service: Service, room: Room) -> str:
    """`<name>` for the first instance, then `<name>-2`, `<name>-3`, …: the first of these that no
    live instance of the service and no agent present in the room goes by."""
    if not service.allow_multiple:
        return service.name
    taken = set(
        Dispatch.objects.live(settings.MESHSITE_AGENT_HOST_STALE_SECONDS)
        .filter(service=service, room=room)
        .values_list("identity", flat=True)
    )
    taken.update(
        Participant.objects.present().filter(room=room, agent__startswith=service.name).values_list("agent", flat=True)
    )
    number = 1
    while (identity := service.name if number == 1 else f"{service.name}-{number}") in taken:
        number += 1
    return identity


@transaction.atomic
def do_dispatch(room: Room, name: str, arguments: dict[str, Any], requested_by: str) -> tuple[Dispatch, bool]:
    """Queues a service for this room; returns the live dispatch instead when one exists and the
    service does not allow several. The second value says whether a new dispatch was created."""
    service = access_callable_service(room, name)
    # serialise concurrent calls (and disabling) of one service
    if not Service.objects.select_for_update().get(pk=service.pk).enabled:
        raise not_found(f"no enabled service named {name!r} can be called into this room")
    if not service.allow_multiple:
        # the agent's token vouches for it: a participant merely named like the service is not it
        present = Participant.objects.present().filter(room=room, agent=service.name).first()
        if present is not None:
            live_for_present = (
                Dispatch.objects.filter(service=service, room=room, participant_id=present.id).unfinished().first()
            )
            if live_for_present is not None:
                return live_for_present, False
            # The agent joined by itself (run from elsewhere): record that instead of starting another.
            return Dispatch.objects.create(
                service=service,
                room=room,
                identity=service.name,
                arguments=arguments,
                requested_by=requested_by,
                status=Dispatch.Status.RUNNING,
                participant_id=present.id,
                heartbeat_at=timezone.now(),
            ), False
        live = (
            Dispatch.objects.active(settings.MESHSITE_AGENT_HOST_STALE_SECONDS)
            .filter(service=service, room=room)
            .first()
        )
        if live is not None:
            return live, False
    dispatch = Dispatch.objects.create(
        service=service,
        room=room,
        identity=_instance_identity(service, room),
        arguments=arguments,
        requested_by=requested_by,
        status=Dispatch.Status.RUNNING if service.kind == Service.Kind.WEBHOOK else Dispatch.Status.QUEUED,
        heartbeat_at=timezone.now(),
    )
    return dispatch, True


def do_claim_dispatches(host: str, limit: int) -> list[Dispatch]:
    """Claims up to `limit` queued Python dispatches for this host (safe with several hosts)."""
    candidates = Dispatch.objects.filter(
        status=Dispatch.Status.QUEUED, service__kind=Service.Kind.PYTHON, service__enabled=True
    ).order_by("created_at")[:limit]
    claimed = []
    now = timezone.now()
    for dispatch_id in candidates.values_list("id", flat=True):
        won = Dispatch.objects.filter(id=dispatch_id, status=Dispatch.Status.QUEUED).update(
            status=Dispatch.Status.CLAIMED, host=host, claimed_at=now, heartbeat_at=now
        )
        if won:
            claimed.append(Dispatch.objects.select_related("service", "room__project").get(id=dispatch_id))
    return claimed


def do_mark_running(dispatch_id: int, participant_id: str) -> bool:
    """The agent has joined; False when it was stopped meanwhile (it should leave again)."""
    return bool(
        Dispatch.objects.filter(id=dispatch_id, status=Dispatch.Status.CLAIMED).update(
            status=Dispatch.Status.RUNNING, participant_id=participant_id, heartbeat_at=timezone.now()
        )
    )


def do_end_dispatch(dispatch_id: int, status: str, error: str = "") -> None:
    now = timezone.now()
    if status == Dispatch.Status.STOPPED and Dispatch.objects.filter(
        id=dispatch_id, status=Dispatch.Status.STOPPING
    ).update(status=status, ended_at=now):
        return  # a stop that was asked for keeps the reason given then
    Dispatch.objects.filter(id=dispatch_id).unfinished().update(status=status, error=error[:2000], ended_at=now)


def do_host_heartbeat(host: str) -> None:
    Dispatch.objects.filter(host=host, status__in=Dispatch.HOSTED_STATUSES).update(heartbeat_at=timezone.now())


def stopping_dispatches(host: str) -> dict[int, str]:
    """The host's dispatches that were asked to stop, with the reason."""
    return dict(Dispatch.objects.filter(host=host, status=Dispatch.Status.STOPPING).values_list("id", "error"))


def do_expire_dispatch(dispatch_id: int) -> bool:
    """Gives up on a dispatch nobody claimed; False if a host claimed it meanwhile."""
    return bool(
        Dispatch.objects.filter(id=dispatch_id, status=Dispatch.Status.QUEUED).update(
            status=Dispatch.Status.EXPIRED, error="no agent host picked it up in time", ended_at=timezone.now()
        )
    )


def dispatch_progress(dispatch_id: int) -> Dispatch:
    dispatch = Dispatch.objects.select_related("service").get(id=dispatch_id)
    if dispatch.status == Dispatch.Status.RUNNING and not dispatch.participant_id:
        # Webhook agents join by themselves: running once their participant is present.
        joined = (
            Participant.objects.present()
            .filter(
                room_id=dispatch.room_id,
                agent=dispatch.identity,
                joined_at__gte=dispatch.created_at - timedelta(seconds=1),
            )
            .first()
        )
        if joined is not None:
            Dispatch.objects.filter(id=dispatch_id).update(participant_id=joined.id)
            dispatch.participant_id = joined.id
    return dispatch


def raise_for_dispatch(dispatch: Dispatch) -> None:
    if dispatch.status == Dispatch.Status.FAILED:
        raise MeshError(ErrorCode.TOOL_FAILED, f"the agent {dispatch.identity!r} failed to start: {dispatch.error}")
    if dispatch.status in (Dispatch.Status.EXPIRED, Dispatch.Status.STOPPING, Dispatch.Status.STOPPED):
        raise MeshError(ErrorCode.UNAVAILABLE, f"the agent {dispatch.identity!r} is {dispatch.status}")


ALWAYS_ON_RETRY_SECONDS = 30


def do_keep_always_on() -> int:
    """Dispatches each enabled always-on service into its room when no instance is live there
    (none queued, running or stopping, none present). Returns how many it dispatched. Safe with
    several agent hosts: `do_dispatch` serialises on the service's row and de-duplicates."""
    started = 0
    services = Service.objects.filter(
        always_on=True, enabled=True, room__isnull=False, kind=Service.Kind.PYTHON
    ).select_related("room__project")
    for service in services:
        room = service.room
        assert room is not None
        live = Dispatch.objects.live(settings.MESHSITE_AGENT_HOST_STALE_SECONDS).filter(service=service, room=room)
        if live.exists() or Participant.objects.present().filter(room=room, agent=service.name).exists():
            continue
        recently_failed = Dispatch.objects.filter(
            service=service,
            room=room,
            status=Dispatch.Status.FAILED,
            ended_at__gte=timezone.now() - timedelta(seconds=ALWAYS_ON_RETRY_SECONDS),
        )
        if recently_failed.exists():
            continue  # no crash loop: a failing agent is retried every ALWAYS_ON_RETRY_SECONDS
        _dispatch, created = do_dispatch(room, service.name, {}, "always-on")
        started += created
    return started
