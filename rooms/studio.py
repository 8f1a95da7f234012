"""Studio: server-rendered pages to work in a room as the signed-in user."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .api.views import ws_url
from .models import ROOM_NAME_RE, Project, Room
from .tokens import mint_token


def projects_for(request: HttpRequest) -> "list[Project]":
    user = request.user
    if user.is_superuser:
        return list(Project.objects.order_by("slug"))
    return list(Project.objects.filter(members=user).order_by("slug"))  # type: ignore[misc]


@login_required
def index(request: HttpRequest) -> HttpResponse:
    projects = projects_for(request)
    rooms = Room.objects.filter(project__in=projects).select_related("project").order_by("project__slug", "name")
    return render(request, "studio/index.html", {"projects": projects, "rooms": rooms})


@login_required
def room_page(request: HttpRequest, project: str, room: str) -> HttpResponse:
    allowed = {p.slug: p for p in projects_for(request)}
    if project not in allowed or not ROOM_NAME_RE.match(room):
        raise Http404("no such project or room")
    identity = f"studio-{request.user.get_username()}"
    token, _expires = mint_token(
        project=project, room=room, identity=identity, role="user", name=request.user.get_username()
    )
    return render(
        request,
        "studio/room.html",
        {"project": allowed[project], "room": room, "token": token, "ws_url": ws_url(request, room)},
    )
