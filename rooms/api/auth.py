"""REST authentication with a project API key (`Authorization: Bearer msk_…`)."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..actions.projects import access_api_key
from ..models import Project


def api_error(status: int, error_type: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"type": error_type, "message": message}}, status=status)


ProjectView = Callable[..., HttpResponse]


def project_api_key_required(view: ProjectView) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            return api_error(401, "unauthorized", "send a project API key as 'Authorization: Bearer msk_…'")
        key = access_api_key(raw.strip())
        if key is None:
            return api_error(401, "unauthorized", "unknown or revoked API key")
        project: Project = key.project
        return view(request, project, *args, **kwargs)

    return wrapper
