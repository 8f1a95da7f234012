"""Studio: server-rendered pages to work in a room as the signed-in user."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from .api.views import ws_url
from .models import ROOM_NAME_RE, Project, Room, room_name_validator
from .tokens import mint_token


def projects_for(request: HttpRequest) -> "list[Project]":
    user = request.user
    if user.is_superuser:
        return list(Project.objects.order_by("slug"))
    return list(Project.objects.filter(members=user).order_by("slug"))  # type: ignore[misc]


class OpenRoomForm(forms.Form):
    """The index's "Open a room": a project of the user's and a valid room name."""

    project = forms.ChoiceField()
    room = forms.CharField(max_length=63, initial="lobby", validators=[room_name_validator])

    def __init__(self, *args: Any, projects: "list[Project]", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        project = self.fields["project"]
        assert isinstance(project, forms.ChoiceField)
        project.choices = [(p.slug, p.slug) for p in projects]


@login_required
def index(request: HttpRequest) -> HttpResponse:
    projects = projects_for(request)
    # The form is sent with GET, so a refused name stays in the address bar to fix.
    form = OpenRoomForm(request.GET if "room" in request.GET else None, projects=projects)
    if form.is_valid():
        return redirect("studio-room", form.cleaned_data["project"], form.cleaned_data["room"])
    rooms = Room.objects.filter(project__in=projects).select_related("project").order_by("project__slug", "name")
    return render(request, "studio/index.html", {"projects": projects, "rooms": rooms, "form": form})


@login_required
def room_page(request: HttpRequest, project: str, room: str) -> HttpResponse:
    allowed = {p.slug: p for p in projects_for(request)}
    if project not in allowed:
        raise Http404("no such project or room")
    if not ROOM_NAME_RE.match(room):
        # A hand-typed or stale link: the index's form says what a room name may be.
        return redirect(f"{reverse('studio-index')}?{urlencode({'project': project, 'room': room})}")
    identity = f"studio-{request.user.get_username()}"
    token, _expires = mint_token(
        project=project, room=room, identity=identity, role="user", name=request.user.get_username()
    )
    response = render(
        request,
        "studio/room.html",
        {"project": allowed[project], "room": room, "token": token, "ws_url": ws_url(request, room)},
    )
    # The page embeds a live participant token: no cache (browser, proxy) may keep a copy.
    add_never_cache_headers(response)
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers (and the admin's pages, which do not link an icon) ask for /favicon.ico."""
    return redirect(static("meshsite/favicon.svg"), permanent=True)
