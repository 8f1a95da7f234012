"""The rooms list (per project, with live participant counts) and the room page."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers

from rooms.api.views import ws_url
from rooms.models import ROOM_NAME_RE, Participant, Project, Room, room_name_validator
from rooms.tokens import mint_token

from ..access import access_project, current_project, projects_for, remember_project
from .agents import may_manage, services_for_room

ROOMS_PER_PAGE = 20


class OpenRoomForm(forms.Form):
    """The index's "Open or create a room": a project of the user's and a valid room name."""

    project = forms.ChoiceField()
    room = forms.CharField(max_length=63, initial="lobby", validators=[room_name_validator])

    def __init__(self, *args: Any, projects: list[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        project = self.fields["project"]
        assert isinstance(project, forms.ChoiceField)
        project.choices = [(p.slug, p.slug) for p in projects]


def rooms_with_counts(project: Project) -> Any:
    present = Count("participants", filter=Q(participants__left_at__isnull=True))
    return Room.objects.filter(project=project).annotate(present=present).order_by("name")


@login_required
def index(request: HttpRequest) -> HttpResponse:
    projects = projects_for(request)
    # The form is sent with GET, so a refused name stays in the address bar to fix.
    form = OpenRoomForm(request.GET if "room" in request.GET else None, projects=projects)
    if form.is_valid():
        return redirect("studio-room", form.cleaned_data["project"], form.cleaned_data["room"])
    project = current_project(request, projects)
    page = Paginator(rooms_with_counts(project), ROOMS_PER_PAGE).get_page(request.GET.get("page")) if project else None
    return render(
        request,
        "studio/index.html",
        {
            "projects": projects,
            "project": project,
            "page": page,
            "form": form,
            "query": f"project={project.slug}" if project else "",
        },
    )


@login_required
def room_counts(request: HttpRequest, project: str) -> JsonResponse:
    """How many participants are present in the named rooms (`?rooms=a,b`): the index polls it."""
    found = access_project(request, project)
    names = [n for n in request.GET.get("rooms", "").split(",") if ROOM_NAME_RE.match(n)][:ROOMS_PER_PAGE]
    counts = dict.fromkeys(names, 0)
    rows = (
        Participant.objects.present()
        .filter(room__project=found, room__name__in=names)
        .values_list("room__name")
        .annotate(n=Count("id"))
    )
    counts.update({name: n for name, n in rows})
    return JsonResponse({"rooms": counts})


def files_url(room: str) -> str:
    """The room storage's HTTP base for uploads, when the files app is installed."""
    try:
        return reverse("api-room-files", kwargs={"room": room})
    except NoReverseMatch:
        return ""


@login_required
def room_page(request: HttpRequest, project: str, room: str) -> HttpResponse:
    allowed = {p.slug: p for p in projects_for(request)}
    if project not in allowed:
        raise Http404("no such project or room")
    if not ROOM_NAME_RE.match(room):
        # A hand-typed or stale link: the index's form says what a room name may be.
        return redirect(f"{reverse('studio-index')}?{urlencode({'project': project, 'room': room})}")
    remember_project(request, allowed[project])
    identity = f"studio-{request.user.get_username()}"
    manages = may_manage(request, allowed[project])
    # A project owner approves spending past a soft budget (usage.request_approval asks them here).
    grants = {"usage": {"approve": ["project"]}} if manages else None
    # Not a singleton: each tab of the same person is its own participant, none replaces another.
    token, _expires = mint_token(
        project=project,
        room=room,
        identity=identity,
        role="user",
        name=request.user.get_username(),
        singleton=False,
        grants=grants,
    )
    response = render(
        request,
        "studio/room.html",
        {
            "projects": list(allowed.values()),
            "project": allowed[project],
            "room": room,
            "token": token,
            "ws_url": ws_url(request, room),
            "files_url": files_url(room),
            "services": services_for_room(allowed[project], room),
            "may_manage": manages,
        },
    )
    # The page embeds a live participant token: no cache (browser, proxy) may keep a copy.
    add_never_cache_headers(response)
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers (and the admin's pages, which do not link an icon) ask for /favicon.ico."""
    return redirect(static("meshsite/favicon.svg"), permanent=True)
