"""Which projects a signed-in person may see in Studio, and the project they last worked in."""

from django.http import Http404, HttpRequest

from rooms.models import Project

# The session key of the project the person last switched to or opened a room of.
LAST_PROJECT = "studio_project"


def projects_for(request: HttpRequest) -> list[Project]:
    user = request.user
    if user.is_superuser:
        return list(Project.objects.order_by("slug"))
    return list(Project.objects.filter(members=user).order_by("slug"))  # type: ignore[misc]


def access_project(request: HttpRequest, slug: str) -> Project:
    """The project `slug` if the signed-in person is a member (or a superuser); else 404, so
    that projects of others are not even confirmed to exist. Remembers it as the last project."""
    user = request.user
    projects = Project.objects.filter(slug=slug)
    if not user.is_superuser:
        projects = projects.filter(members=user)  # type: ignore[misc]
    project = projects.first()
    if project is None:
        raise Http404("no such project")
    remember_project(request, project)
    return project


def remember_project(request: HttpRequest, project: Project) -> None:
    if request.session.get(LAST_PROJECT) != project.slug:
        request.session[LAST_PROJECT] = project.slug


def current_project(request: HttpRequest, projects: list[Project]) -> Project | None:
    """The project asked for (`?project=`), else the last one, else the first one."""
    by_slug = {p.slug: p for p in projects}
    wanted = request.GET.get("project") or request.session.get(LAST_PROJECT)
    project = by_slug.get(wanted or "") or (projects[0] if projects else None)
    if project is not None:
        remember_project(request, project)
    return project
