"""Agents in Studio: stop a service's running agent in a room, enable or disable a service.
Listing agents, calling services in and asking TaskRunners go through the room's `agents` toolkit
from the room page itself (static/meshsite/studio-agents.js), with the person's own token."""

from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from agents.actions import do_set_service_enabled, do_stop_dispatch
from agents.models import Dispatch, Service
from rooms.models import Membership, Project

from ..access import access_project


def services_for_room(project: Project, room: str) -> QuerySet[Service]:
    """The project's services that serve every room or this one, enabled or not."""
    return (
        Service.objects.filter(project=project)
        .filter(Q(room__isnull=True) | Q(room__name=room))
        .select_related("room")
        .order_by("name")
    )


def may_manage(request: HttpRequest, project: Project) -> bool:
    """Enabling and disabling a service changes it for every room: project owners (and superusers)."""
    user = request.user
    if user.is_superuser:
        return True
    owners = Membership.objects.filter(project=project, role=Membership.Role.OWNER)
    return owners.filter(user__username=user.get_username()).exists()


@login_required
@require_POST
def stop_agent(request: HttpRequest, project: str, room: str, name: str) -> JsonResponse:
    found = access_project(request, project)
    unfinished = Dispatch.objects.filter(room__project=found, room__name=room, service__name=name).unfinished()
    stopped = sum(do_stop_dispatch(dispatch_id) for dispatch_id in unfinished.values_list("id", flat=True))
    if not stopped:
        message = (
            f"no instance of {name!r} started by a service is running in {room!r}; "
            "an agent that joined by itself leaves by itself"
        )
        return JsonResponse({"error": {"type": "not_found", "message": message}}, status=404)
    return JsonResponse({"stopped": stopped})


@login_required
@require_POST
def set_service_enabled(request: HttpRequest, project: str, name: str) -> HttpResponse:
    found = access_project(request, project)
    if not may_manage(request, found):
        return HttpResponseForbidden("Only the project's owners can enable or disable its services.")
    service = Service.objects.filter(project=found, name=name).first()
    if service is None:
        return JsonResponse({"error": {"type": "not_found", "message": f"no service named {name!r}"}}, status=404)
    do_set_service_enabled(service, request.POST.get("enabled") == "true")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = "studio-index"
    return redirect(back)
